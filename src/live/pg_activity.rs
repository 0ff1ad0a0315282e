//! `--pg DSN`: what PostgreSQL says about the backends that stuck workers wait on. A worker's
//! backend is found by its TCP client port (the worker's end of the connection, from /proc), then
//! `pg_stat_activity` says what the backend does, `pg_blocking_pids()` and `pg_locks` who blocks
//! it and on what. A data source: it returns rows, the diagnosis decides what they mean.
//!
//! The DSN may carry a password (`password=...`, `postgresql://user:password@host/db`), and
//! without one the password comes from `PGPASSWORD` or the password file (`PGPASSFILE`, else
//! `~/.pgpass`), as libpq does. Every message this module returns has each of those secrets
//! replaced by `***` ([`Secrets::redact`]), and a DSN that fails to parse is never quoted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;
use postgres::{Client, Config, NoTls};

/// A backend as `pg_stat_activity` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub pid: i32,
    /// `active`, `idle`, `idle in transaction`, ...
    pub state: Option<String>,
    pub wait_event_type: Option<String>,
    pub wait_event: Option<String>,
    /// The statement running, or the last one when idle.
    pub query: Option<String>,
    /// Seconds since the statement started.
    pub query_seconds: Option<f64>,
    /// Seconds since the transaction started.
    pub xact_seconds: Option<f64>,
    pub application_name: Option<String>,
}

/// A worker's backend, with who blocks it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendActivity {
    pub backend: Backend,
    /// The lock it waits for, e.g. `ShareLock on transaction 745` or
    /// `RowExclusiveLock on relation wtapp_account`.
    pub awaited_lock: Option<String>,
    pub blockers: Vec<Backend>,
}

/// `--pg` failed; the diagnosis goes on without it.
#[derive(Debug, thiserror::Error)]
pub enum PgLookupError {
    #[error(
        "--pg: not a connection string ({0}); use 'host=... port=... dbname=... user=...' or postgresql://..."
    )]
    BadDsn(String),
    #[error("--pg: cannot connect: {0}")]
    Connect(String),
    #[error("--pg: query failed: {0}")]
    Query(String),
}

pub struct PgLookup {
    client: Client,
    secrets: Secrets,
}

impl PgLookup {
    pub fn connect(dsn: &str) -> Result<PgLookup, PgLookupError> {
        let mut secrets = Secrets::of_dsn(dsn);
        let mut config = Config::from_str(dsn).map_err(|e| {
            PgLookupError::BadDsn(if secrets.dsn_has_password {
                "its details are not shown because it holds a password".to_string()
            } else {
                secrets.redact(&flatten(&e))
            })
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("wtdiag live");
        }
        let mut note = String::new();
        if config.get_password().is_none() {
            let env_password = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty());
            if let Some(password) = env_password {
                secrets.add(&password);
                config.password(password);
            } else {
                match password_file_entry(&config) {
                    PassFile::Found(password) => {
                        secrets.add(&password);
                        config.password(password);
                    }
                    PassFile::Unsafe(path) => {
                        note = format!(
                            " ({} was not read: group or others may read it; chmod 600 it)",
                            path.display()
                        );
                    }
                    PassFile::None => {}
                }
            }
        }
        let client = config
            .connect(NoTls)
            .map_err(|e| PgLookupError::Connect(secrets.redact(&flatten(&e)) + &note))?;
        Ok(PgLookup { client, secrets })
    }

    fn query_error(&self, e: &postgres::Error) -> PgLookupError {
        PgLookupError::Query(self.secrets.redact(&flatten(e)))
    }

    /// The backends whose client end is one of `clients` (the workers' local addresses), keyed by
    /// that address.
    pub fn by_client(
        &mut self,
        clients: &[SocketAddr],
    ) -> Result<HashMap<SocketAddr, BackendActivity>, PgLookupError> {
        if clients.is_empty() {
            return Ok(HashMap::new());
        }
        let ports: Vec<i32> = clients.iter().map(|c| i32::from(c.port())).collect();
        let rows = self
            .client
            .query(
                &format!("{SELECT_BACKEND} WHERE client_port = ANY($1)"),
                &[&ports],
            )
            .map_err(|e| self.query_error(&e))?;
        let mut out = HashMap::new();
        for row in rows {
            let port: Option<i32> = row.get("client_port");
            let addr: Option<String> = row.get("client_host");
            let Some(client) = clients.iter().find(|c| {
                Some(i32::from(c.port())) == port
                    && addr
                        .as_deref()
                        .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                        .is_none_or(|ip| same_ip(ip, c.ip()))
            }) else {
                continue;
            };
            let backend = backend_from(&row);
            let blocking: Vec<i32> = row.get("blocking");
            let awaited_lock = self.awaited_lock(backend.pid)?;
            let blockers = self.backends(&blocking)?;
            out.insert(
                *client,
                BackendActivity {
                    backend,
                    awaited_lock,
                    blockers,
                },
            );
        }
        Ok(out)
    }

    fn backends(&mut self, pids: &[i32]) -> Result<Vec<Backend>, PgLookupError> {
        if pids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .query(&format!("{SELECT_BACKEND} WHERE pid = ANY($1)"), &[&pids])
            .map_err(|e| self.query_error(&e))?;
        Ok(rows.iter().map(backend_from).collect())
    }

    fn awaited_lock(&mut self, pid: i32) -> Result<Option<String>, PgLookupError> {
        let rows = self
            .client
            .query(
                "SELECT mode, locktype, relation::regclass::text AS relation, \
                        transactionid::text AS xid \
                 FROM pg_locks WHERE pid = $1 AND NOT granted LIMIT 1",
                &[&pid],
            )
            .map_err(|e| self.query_error(&e))?;
        Ok(rows.first().map(|r| {
            let mode: String = r.get("mode");
            let locktype: String = r.get("locktype");
            let relation: Option<String> = r.get("relation");
            let xid: Option<String> = r.get("xid");
            match (locktype.as_str(), relation, xid) {
                ("transactionid", _, Some(xid)) => format!("{mode} on transaction {xid}"),
                (_, Some(rel), _) => format!("{mode} on {locktype} of {rel}"),
                _ => format!("{mode} on {locktype}"),
            }
        }))
    }
}

const SELECT_BACKEND: &str = "SELECT pid, client_port, host(client_addr) AS client_host, state, \
       wait_event_type, wait_event, query, application_name, \
       EXTRACT(EPOCH FROM now() - query_start)::float8 AS query_seconds, \
       EXTRACT(EPOCH FROM now() - xact_start)::float8 AS xact_seconds, \
       pg_blocking_pids(pid) AS blocking \
  FROM pg_stat_activity";

fn backend_from(row: &postgres::Row) -> Backend {
    Backend {
        pid: row.get("pid"),
        state: row.get("state"),
        wait_event_type: row.get("wait_event_type"),
        wait_event: row.get("wait_event"),
        query: row.get("query"),
        query_seconds: row.get("query_seconds"),
        xact_seconds: row.get("xact_seconds"),
        application_name: row
            .get::<_, Option<String>>("application_name")
            .filter(|a| !a.is_empty()),
    }
}

fn same_ip(a: std::net::IpAddr, b: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let v4 = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    v4(a) == v4(b)
}

/// The error and its causes in one line (the postgres crate puts the useful part in the source).
fn flatten(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The secrets of one `--pg` connection: what no message may show.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Vec<String>,
    /// The DSN itself holds a password (then a parse error, which may quote any part of it, is
    /// not shown).
    pub dsn_has_password: bool,
}

impl Secrets {
    /// The password of a key=value DSN (`password=...`, quoted or not) or of a URL (its
    /// userinfo or `?password=`), raw and percent-decoded, plus `PGPASSWORD`.
    pub fn of_dsn(dsn: &str) -> Secrets {
        let mut secrets = Secrets::default();
        let trimmed = dsn.trim_start();
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            let rest = &trimmed[trimmed.find("://").map_or(0, |i| i + 3)..];
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            if let Some((userinfo, _)) = authority.rsplit_once('@')
                && let Some((_, password)) = userinfo.split_once(':')
            {
                secrets.add_dsn_password(password);
                secrets.add_dsn_password(&percent_decode(password));
            }
            if let Some((_, query)) = rest.split_once('?') {
                for pair in query.split('&') {
                    if let Some(("password", v)) = pair.split_once('=') {
                        secrets.add_dsn_password(v);
                        secrets.add_dsn_password(&percent_decode(v));
                    }
                }
            }
        } else {
            for (key, value) in keyword_pairs(dsn) {
                if key == "password" {
                    secrets.add_dsn_password(&value);
                }
            }
            // What the tokenizer could not make out (an unquoted password with a space) is
            // secret too.
            if let Some(at) = dsn.find("password") {
                secrets.dsn_has_password = true;
                let tail = dsn[at + "password".len()..]
                    .trim_start()
                    .trim_start_matches('=')
                    .trim();
                // The value, and the words after it up to the next `key=`.
                for (i, word) in tail.split_whitespace().enumerate() {
                    if i > 0 && word.contains('=') {
                        break;
                    }
                    secrets.add(word.trim_matches('\''));
                }
            }
        }
        if let Ok(p) = std::env::var("PGPASSWORD") {
            secrets.add(&p);
        }
        secrets
    }

    fn add_dsn_password(&mut self, password: &str) {
        if !password.is_empty() {
            self.dsn_has_password = true;
            self.add(password);
        }
    }

    pub fn add(&mut self, secret: &str) {
        if !secret.is_empty() && !self.values.iter().any(|v| v == secret) {
            self.values.push(secret.to_string());
            // Longest first, so that a secret containing another is replaced whole.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// `text` with every secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }
}

/// `text` with whatever reads like a DSN password (`password=...`, `scheme://user:...@`) replaced
/// by `***`: for messages that quote command-line words wtdiag did not parse itself (clap's
/// "unexpected argument 'password=...'" after a DSN typed without quotes).
pub fn redact_password_like(text: &str) -> String {
    use std::sync::LazyLock;
    static KEYWORD: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"(?i)(password\s*=\s*)\S+").expect("static regex"));
    static URL: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?i)(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@").expect("static regex")
    });
    let text = KEYWORD.replace_all(text, "${1}***");
    URL.replace_all(&text, "${1}***@").into_owned()
}

/// `key=value` pairs of a libpq keyword DSN: values quoted with `'` (and `\'`, `\\` inside) or
/// bare up to the next space.
fn keyword_pairs(dsn: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if key.is_empty() {
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

enum PassFile {
    Found(String),
    /// The file exists but group or others may read it: libpq ignores it too.
    Unsafe(PathBuf),
    None,
}

/// The password for this connection from `PGPASSFILE` (else `~/.pgpass`), matched the way
/// libpq does: `hostname:port:database:username:password`, `*` for any, `\:` and `\\` escaped,
/// the first matching line wins; a Unix-socket host matches `localhost`.
fn password_file_entry(config: &Config) -> PassFile {
    let path = match std::env::var_os("PGPASSFILE") {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(".pgpass"),
            None => return PassFile::None,
        },
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return PassFile::None;
    };
    {
        use std::os::unix::fs::MetadataExt;
        if !meta.is_file() {
            return PassFile::None;
        }
        if meta.mode() & 0o077 != 0 {
            return PassFile::Unsafe(path);
        }
    }
    let Ok(text) = std::fs::read_to_string(&path) else {
        return PassFile::None;
    };
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(_)) | None => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default().to_string();
    let dbname = config
        .get_dbname()
        .map_or_else(|| user.clone(), str::to_string);
    match pgpass_lookup(&text, [&host, &port, &dbname, &user]) {
        Some(p) => PassFile::Found(p),
        None => PassFile::None,
    }
}

/// The password of the first line of a pgpass file matching host, port, database, user.
fn pgpass_lookup(text: &str, wanted: [&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let last = fields.last_mut()?;
                    last.extend(chars.next());
                }
                ':' if fields.len() < 5 => fields.push(String::new()),
                c => fields.last_mut()?.push(c),
            }
        }
        if fields.len() == 5
            && fields[..4]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want)
        {
            return fields.pop();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_of_every_dsn_form_are_secret() {
        let cases = [
            ("host=db user=app password=S3cr3t dbname=x", "S3cr3t"),
            ("host=db password = 'it''s' user=app", "it"),
            (r"host=db password='a b\'c' user=app", "a b'c"),
            ("postgresql://app:p%40ss@db:5432/x", "p@ss"),
            ("postgresql://app:p%40ss@db:5432/x", "p%40ss"),
            ("postgres://db/x?user=app&password=Qz9", "Qz9"),
        ];
        for (dsn, secret) in cases {
            let s = Secrets::of_dsn(dsn);
            assert!(s.dsn_has_password, "{dsn}");
            let text = format!("error near {secret} in {dsn}");
            let redacted = s.redact(&text);
            assert!(!redacted.contains(secret), "{dsn}: {redacted}");
        }
        // An unquoted password with a space: both words are secret.
        let s = Secrets::of_dsn("host=db password=two words user=app");
        assert_eq!(s.redact("unknown option `words`"), "unknown option `***`");
        let s = Secrets::of_dsn("host=db user=app");
        assert!(!s.dsn_has_password);
    }

    #[test]
    fn a_bad_dsn_with_a_password_is_not_quoted() {
        let Err(e) = PgLookup::connect("host=db password=Hunter2 Hunter3 port=x") else {
            panic!("parsed");
        };
        let text = e.to_string();
        assert!(text.starts_with("--pg: not a connection string"), "{text}");
        assert!(!text.contains("Hunter"), "{text}");
    }

    #[test]
    fn password_like_words_are_redacted() {
        assert_eq!(
            redact_password_like("unexpected argument 'password=Hunter2' found"),
            "unexpected argument 'password=*** found"
        );
        assert_eq!(
            redact_password_like("'postgresql://app:Hunter2@db/x' and PASSWORD = x"),
            "'postgresql://app:***@db/x' and PASSWORD = ***"
        );
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let file = "# comment\n\
                    other:5432:*:app:wrong\n\
                    db\\:1:5432:x:app:a\\:b\\\\c\n\
                    *:*:*:app:fallback:with:colons\n";
        assert_eq!(
            pgpass_lookup(file, ["db:1", "5432", "x", "app"]).as_deref(),
            Some("a:b\\c")
        );
        assert_eq!(
            pgpass_lookup(file, ["db", "6000", "y", "app"]).as_deref(),
            Some("fallback:with:colons")
        );
        assert_eq!(pgpass_lookup(file, ["db", "5432", "x", "root"]), None);
    }
}
