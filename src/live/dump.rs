//! `py-spy dump --json` output → one [`ThreadStack`] per Python thread. Knows py-spy's JSON shape
//! (its `StackTrace` and `Frame` structs, serialised with serde) and nothing about causes.
//!
//! py-spy lists frames innermost first; wtdiag's [`Frame`] lists are outermost first, like a
//! Python traceback, so they are reversed here. Fields py-spy added over time (`is_entry`,
//! `is_shim_entry`, `process_info`) are ignored; the ones read are in every 0.3+ release.

use serde::Deserialize;

use crate::report::Frame;

/// One Python thread of one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStack {
    /// The Python thread id (`threading.get_ident()`).
    pub thread_id: u64,
    /// The kernel's thread id, when py-spy could map it.
    pub os_thread_id: Option<u64>,
    pub thread_name: Option<String>,
    /// py-spy's reading of the OS thread state: running or runnable (`R`), as opposed to blocked
    /// in a system call. This is what tells a busy C call from a wait.
    pub active: bool,
    /// The thread held the GIL when sampled.
    pub owns_gil: bool,
    /// Outermost first.
    pub frames: Vec<Frame>,
}

/// py-spy's stdout was not its dump JSON.
#[derive(Debug, thiserror::Error)]
#[error("py-spy's output is not a `dump --json` document ({0})")]
pub struct DumpParseError(String);

#[derive(Deserialize)]
struct RawThread {
    thread_id: u64,
    #[serde(default)]
    thread_name: Option<String>,
    #[serde(default)]
    os_thread_id: Option<u64>,
    #[serde(default)]
    active: bool,
    #[serde(default)]
    owns_gil: bool,
    frames: Vec<RawFrame>,
}

#[derive(Deserialize)]
struct RawFrame {
    name: String,
    filename: String,
    /// 0 when py-spy could not read the line table (native frames, or a failed read).
    #[serde(default)]
    line: i64,
}

/// Parses one `py-spy dump --json` document.
pub fn parse(json: &[u8]) -> Result<Vec<ThreadStack>, DumpParseError> {
    let raw: Vec<RawThread> =
        serde_json::from_slice(json).map_err(|e| DumpParseError(e.to_string()))?;
    Ok(raw
        .into_iter()
        .map(|t| ThreadStack {
            thread_id: t.thread_id,
            os_thread_id: t.os_thread_id,
            thread_name: t.thread_name,
            active: t.active,
            owns_gil: t.owns_gil,
            frames: t
                .frames
                .into_iter()
                .rev()
                .map(|f| Frame {
                    file: f.filename,
                    line: u32::try_from(f.line).unwrap_or(0),
                    function: f.name,
                    code: None,
                })
                .collect(),
        })
        .collect())
}

#[derive(Deserialize)]
struct RawThreadLocals {
    thread_id: u64,
    frames: Vec<RawFrameLocals>,
}

#[derive(Deserialize)]
struct RawFrameLocals {
    #[serde(default)]
    locals: Option<Vec<RawLocal>>,
}

#[derive(Deserialize)]
struct RawLocal {
    name: String,
    #[serde(default)]
    repr: Option<String>,
}

/// Longest request line kept (a query string can be long).
const MAX_REQUEST_CHARS: usize = 300;

/// The request each thread serves, from a `py-spy dump --json --locals` document: the
/// innermost local named `environ` whose shown value holds `REQUEST_METHOD` and `RAW_URI` (or
/// `PATH_INFO`), as Gunicorn's `wsgi.create` fills them. Only those keys are read; the rest of
/// the environ (headers, cookies) is dropped here.
pub fn requests(json: &[u8]) -> Vec<(u64, String)> {
    let Ok(raw) = serde_json::from_slice::<Vec<RawThreadLocals>>(json) else {
        return Vec::new();
    };
    raw.into_iter()
        .filter_map(|t| {
            let request = t
                .frames
                .iter()
                .filter_map(|f| f.locals.as_ref())
                .flatten()
                .filter(|l| l.name == "environ")
                .find_map(|l| request_of_environ(l.repr.as_deref()?))?;
            Some((t.thread_id, request))
        })
        .collect()
}

/// `GET /path?query` from py-spy's rendering of a WSGI environ dict
/// (`{"REQUEST_METHOD": "GET", ..., "RAW_URI": "/path?query", ...}`).
pub fn request_of_environ(repr: &str) -> Option<String> {
    let method = string_value(repr, "REQUEST_METHOD")?;
    let target = string_value(repr, "RAW_URI").or_else(|| {
        let path = string_value(repr, "PATH_INFO")?;
        match string_value(repr, "QUERY_STRING").filter(|q| !q.is_empty()) {
            Some(q) => Some(format!("{path}?{q}")),
            None => Some(path),
        }
    })?;
    let ok_method =
        !method.is_empty() && method.len() <= 16 && method.bytes().all(|b| b.is_ascii_uppercase());
    if !ok_method || target.is_empty() {
        return None;
    }
    let line: String = format!("{method} {target}")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REQUEST_CHARS)
        .collect();
    Some(line)
}

/// The string value of `"KEY": "value"` in py-spy's dict rendering (None when the key is not
/// shown, or its value was cut).
fn string_value(repr: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\": \"");
    let start = repr.find(&needle)? + needle.len();
    let mut out = String::new();
    let mut chars = repr[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_read_from_a_wsgi_environ_local_and_nothing_else() {
        // py-spy 0.4.3 `dump --json -llllll` of a Gunicorn 27 worker (cut to two frames).
        let json = br#"[{"thread_id": 139, "active": false, "frames": [
            {"name": "upstream_api_view", "filename": "/app/wtapp/views.py", "line": 30,
             "locals": [{"name": "port", "arg": false, "repr": "\"19999\""}]},
            {"name": "WSGIHandler.__call__", "filename": "/v/django/core/handlers/wsgi.py", "line": 124,
             "locals": [{"name": "environ", "arg": true, "repr": "{\"wsgi.errors\": <WSGIErrorsWrapper at 0x7f>, \"REQUEST_METHOD\": \"GET\", \"QUERY_STRING\": \"user=42\", \"RAW_URI\": \"/api/upstream?user=42\", \"HTTP_COOKIE\": \"sessionid=secret\", ...}"}]}
        ]}]"#;
        assert_eq!(
            requests(json),
            vec![(139, "GET /api/upstream?user=42".to_string())]
        );
        // Cut before RAW_URI: PATH_INFO and QUERY_STRING; cut before both: nothing.
        assert_eq!(
            request_of_environ(
                r#"{"REQUEST_METHOD": "POST", "QUERY_STRING": "", "PATH_INFO": "/cart", ...}"#
            )
            .as_deref(),
            Some("POST /cart")
        );
        assert_eq!(
            request_of_environ(r#"{"REQUEST_METHOD": "GET", "RAW_URI": "/api/upstr..."#),
            None
        );
        assert!(requests(b"not json").is_empty());
    }

    fn capture(rel: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/pyspy")
            .join(rel);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn reads_a_real_socket_wait_outermost_first() {
        let threads = parse(&capture("upstream/00.json")).unwrap();
        assert_eq!(threads.len(), 1);
        let t = &threads[0];
        assert!(!t.active);
        let first = t.frames.first().unwrap();
        assert_eq!(first.function, "<module>");
        let last = t.frames.last().unwrap();
        assert_eq!(last.function, "SocketIO.readinto");
        assert!(last.file.ends_with("/socket.py"));
        assert!(last.line > 0);
    }

    #[test]
    fn reads_every_thread_of_the_master() {
        let threads = parse(&capture("master.json")).unwrap();
        assert!(
            threads.len() >= 2,
            "the master has a main and a helper thread"
        );
        assert!(
            threads
                .iter()
                .any(|t| t.thread_name.as_deref() == Some("MainThread"))
        );
    }

    #[test]
    fn tolerates_missing_optional_fields_and_refuses_text() {
        let minimal = br#"[{"thread_id": 7, "frames": [{"name": "f", "filename": "a.py"}]}]"#;
        let threads = parse(minimal).unwrap();
        assert_eq!(threads[0].frames[0].line, 0);
        assert!(!threads[0].active);
        assert!(parse(b"Error: Failed to find python version").is_err());
    }
}
