//! The Gunicorn master's settings that decide what a stuck request means: its `timeout`, its
//! worker class and its `threads`, read the way Gunicorn resolves them: the command line wins
//! over `GUNICORN_CMD_ARGS`, which wins over the config file (`-c FILE`, else `./gunicorn.conf.py`
//! in the master's working directory), which wins over the defaults (30 s, `sync`, 1 thread). The
//! config file is Python; only literal assignments (`timeout = N`, `worker_class = "gthread"`)
//! are read, anything else is reported as unreadable.

use std::path::{Path, PathBuf};

use regex::Regex;

/// Gunicorn's default `timeout`.
pub const DEFAULT_TIMEOUT: f64 = 30.0;

/// Where the timeout in force comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeoutSource {
    /// `-t N` / `--timeout N` on the master's command line.
    CommandLine,
    /// `GUNICORN_CMD_ARGS` in the master's environment.
    Environment,
    /// A literal `timeout = N` in this config file.
    ConfigFile(PathBuf),
    /// Nothing sets it: Gunicorn's default.
    Default,
    /// wtdiag's own `--timeout`.
    Given,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MasterTimeout {
    /// Seconds; 0 means the master never kills silent workers.
    pub seconds: f64,
    pub source: TimeoutSource,
    /// Set when something could not be read and the value may be wrong: what, for a warning.
    pub doubt: Option<String>,
}

/// What the master process shows: enough to resolve its settings.
#[derive(Debug, Clone, Default)]
pub struct MasterView {
    pub args: Vec<String>,
    pub env_cmd_args: Option<String>,
    pub cwd: Option<PathBuf>,
}

/// Reads a config file as the master sees it (through /proc/PID/root).
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> Option<String>;

pub fn resolve(master: &MasterView, read: ReadFile<'_>) -> MasterTimeout {
    if let Some(seconds) = option_value(&master.args, "-t", "--timeout").and_then(parse_seconds) {
        return MasterTimeout {
            seconds,
            source: TimeoutSource::CommandLine,
            doubt: None,
        };
    }
    let env_args = master
        .env_cmd_args
        .as_deref()
        .map(split_shell_words)
        .unwrap_or_default();
    if let Some(seconds) = option_value(&env_args, "-t", "--timeout").and_then(parse_seconds) {
        return MasterTimeout {
            seconds,
            source: TimeoutSource::Environment,
            doubt: None,
        };
    }
    let config = option_value(&master.args, "-c", "--config")
        .or_else(|| option_value(&env_args, "-c", "--config"));
    let (path, explicit) = match config {
        Some(c) if c.starts_with("python:") => {
            return default_with(Some(format!(
                "the config is the Python module {c}, which wtdiag does not import"
            )));
        }
        Some(c) => (PathBuf::from(c.strip_prefix("file:").unwrap_or(&c)), true),
        None => (PathBuf::from("gunicorn.conf.py"), false),
    };
    let path = match (&master.cwd, path.is_absolute()) {
        (Some(cwd), false) => cwd.join(path),
        _ => path,
    };
    match read(&path) {
        Some(text) => match config_timeout(&text) {
            ConfigTimeout::Literal(seconds) => MasterTimeout {
                seconds,
                source: TimeoutSource::ConfigFile(path),
                doubt: None,
            },
            // The expression is not shown: nothing of the target's file but `timeout` is printed.
            ConfigTimeout::NotLiteral(_) => default_with(Some(format!(
                "{} sets the timeout with an expression wtdiag cannot evaluate",
                path.display()
            ))),
            ConfigTimeout::Absent => default_with(None),
        },
        None if explicit => default_with(Some(format!(
            "the config file {} could not be read",
            path.display()
        ))),
        None => default_with(None),
    }
}

/// How a worker serves requests, which decides which clock a stuck request runs against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerClass {
    /// `sync`: one request at a time; the master aborts a worker whose request outlasts `timeout`.
    Sync,
    /// `gthread`: a pool of `threads` request threads; the main thread's loop notifies the master.
    Gthread,
    /// `gevent` (and `gevent_wsgi`, `gevent_pywsgi`): greenlets on one OS thread; the hub notifies.
    Gevent,
    /// `eventlet`: green threads on one OS thread.
    Eventlet,
    /// An asyncio worker: uvicorn's `UvicornWorker` (or Gunicorn's own ASGI worker).
    Asyncio,
    /// Anything else (tornado, a custom class), as written.
    Other(String),
}

impl WorkerClass {
    /// The contract name in JSON (`workers[].worker_class`).
    pub fn name(&self) -> &str {
        match self {
            WorkerClass::Sync => "sync",
            WorkerClass::Gthread => "gthread",
            WorkerClass::Gevent => "gevent",
            WorkerClass::Eventlet => "eventlet",
            WorkerClass::Asyncio => "asyncio",
            WorkerClass::Other(name) => name,
        }
    }

    /// Greenlets or coroutines on one OS thread: a call that does not yield blocks them all.
    pub fn is_event_loop(&self) -> bool {
        matches!(
            self,
            WorkerClass::Gevent | WorkerClass::Eventlet | WorkerClass::Asyncio
        )
    }

    /// A `-k`/`worker_class` value: a short name (`gthread`), a dotted path
    /// (`uvicorn.workers.UvicornWorker`) or an egg URI (`egg:gunicorn#gevent`).
    pub fn parse(value: &str) -> WorkerClass {
        let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
        let lower = v.to_ascii_lowercase();
        let name = lower.rsplit(['#', '.']).next().unwrap_or(&lower);
        if lower.contains("uvicorn") || name == "asgi" || lower.contains("gasgi") {
            WorkerClass::Asyncio
        } else if lower.contains("gevent") {
            WorkerClass::Gevent
        } else if lower.contains("eventlet") {
            WorkerClass::Eventlet
        } else if name == "gthread" || name == "threadworker" || lower.contains(".gthread") {
            WorkerClass::Gthread
        } else if name == "sync" || name == "syncworker" {
            WorkerClass::Sync
        } else {
            WorkerClass::Other(v.to_string())
        }
    }
}

/// The master's worker settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerModel {
    pub class: WorkerClass,
    /// `threads` (gthread's pool size per worker).
    pub threads: u32,
    /// Set when a setting could not be read: what, for a warning.
    pub doubt: Option<String>,
}

impl Default for WorkerModel {
    fn default() -> WorkerModel {
        WorkerModel {
            class: WorkerClass::Sync,
            threads: 1,
            doubt: None,
        }
    }
}

/// The worker class and thread count in force. Gunicorn runs `gthread` when the class is `sync`
/// and `threads` is above 1 (`Config.worker_class_str` and `Config.worker_class` in
/// gunicorn/config.py: `if is_sync and self.threads > 1: return "gthread"`).
pub fn resolve_workers(master: &MasterView, read: ReadFile<'_>) -> WorkerModel {
    let env_args = master
        .env_cmd_args
        .as_deref()
        .map(split_shell_words)
        .unwrap_or_default();
    let (config_text, config_path) = config_file(master, &env_args, read);
    let mut doubt = None;
    let mut setting = |short: &str, long: &str, name: &str| -> Option<String> {
        option_value(&master.args, short, long)
            .or_else(|| option_value(&env_args, short, long))
            .or_else(
                || match config_text.as_deref().map(|t| config_literal(t, name)) {
                    Some(ConfigLiteral::Literal(v)) => Some(v),
                    Some(ConfigLiteral::NotLiteral(line)) => {
                        doubt.get_or_insert_with(|| {
                            format!(
                                "{} sets {name} with an expression wtdiag cannot evaluate ({line})",
                                config_path.display()
                            )
                        });
                        None
                    }
                    _ => None,
                },
            )
    };
    let class = setting("-k", "--worker-class", "worker_class");
    let threads = setting("", "--threads", "threads");
    let threads = threads
        .and_then(|t| t.trim().parse::<u32>().ok())
        .filter(|t| *t >= 1)
        .unwrap_or(1);
    let mut class = class
        .map(|c| WorkerClass::parse(&c))
        .unwrap_or(WorkerClass::Sync);
    if class == WorkerClass::Sync && threads > 1 {
        class = WorkerClass::Gthread;
    }
    WorkerModel {
        class,
        threads,
        doubt,
    }
}

/// The config file's text and path, as Gunicorn picks it.
fn config_file(
    master: &MasterView,
    env_args: &[String],
    read: ReadFile<'_>,
) -> (Option<String>, PathBuf) {
    let config = option_value(&master.args, "-c", "--config")
        .or_else(|| option_value(env_args, "-c", "--config"))
        .filter(|c| !c.starts_with("python:"));
    let path = PathBuf::from(
        config
            .as_deref()
            .map_or("gunicorn.conf.py", |c| c.strip_prefix("file:").unwrap_or(c)),
    );
    let path = match (&master.cwd, path.is_absolute()) {
        (Some(cwd), false) => cwd.join(path),
        _ => path,
    };
    (read(&path), path)
}

/// A setting's value in a gunicorn.conf.py.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigLiteral {
    /// A number or a quoted string, unquoted.
    Literal(String),
    /// The assignment, as written.
    NotLiteral(String),
    Absent,
}

/// The last top-level `NAME = literal` of a gunicorn.conf.py.
pub fn config_literal(text: &str, name: &str) -> ConfigLiteral {
    let mut out = ConfigLiteral::Absent;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        if value.starts_with('=') {
            continue;
        }
        let value = value.split('#').next().unwrap_or("").trim();
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')));
        out = match unquoted {
            Some(v) => ConfigLiteral::Literal(v.to_string()),
            None if !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '_' || c == '.') =>
            {
                ConfigLiteral::Literal(value.replace('_', ""))
            }
            None => ConfigLiteral::NotLiteral(line.trim().to_string()),
        };
    }
    out
}

fn default_with(doubt: Option<String>) -> MasterTimeout {
    MasterTimeout {
        seconds: DEFAULT_TIMEOUT,
        source: TimeoutSource::Default,
        doubt,
    }
}

/// The value of an option the way argparse takes it: `-t 20`, `-t20`, `--timeout 20`,
/// `--timeout=20`; the last one wins. An empty `short` is an option with no short form.
pub fn option_value(args: &[String], short: &str, long: &str) -> Option<String> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            break;
        }
        if a == long || (!short.is_empty() && a == short) {
            if let Some(v) = args.get(i + 1) {
                found = Some(v.clone());
            }
            i += 2;
            continue;
        }
        if let Some(v) = a.strip_prefix(long).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_string());
        } else if !short.is_empty()
            && let Some(v) = a.strip_prefix(short)
            && !a.starts_with("--")
            && !v.is_empty()
        {
            found = Some(v.to_string());
        }
        i += 1;
    }
    found
}

fn parse_seconds(v: String) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|s| *s >= 0.0)
}

/// Splits `GUNICORN_CMD_ARGS` like `shlex.split` does for the common cases (quotes, spaces).
pub fn split_shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    current.push(n);
                    in_word = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConfigTimeout {
    Literal(f64),
    /// The assignment, as written.
    NotLiteral(String),
    Absent,
}

/// The last top-level `timeout = ...` of a gunicorn.conf.py.
pub fn config_timeout(text: &str) -> ConfigTimeout {
    let assignment = Regex::new(r"^timeout\s*=\s*(.+?)\s*(?:#.*)?$").expect("static regex");
    let literal = Regex::new(r"^[0-9]+(?:\.[0-9]*)?$").expect("static regex");
    let mut out = ConfigTimeout::Absent;
    for line in text.lines() {
        if let Some(caps) = assignment.captures(line.trim_end()) {
            let value = caps[1].trim().replace('_', "");
            out = if literal.is_match(&value) {
                value
                    .parse()
                    .map(ConfigTimeout::Literal)
                    .unwrap_or(ConfigTimeout::NotLiteral(line.trim().to_string()))
            } else {
                ConfigTimeout::NotLiteral(line.trim().to_string())
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn view(a: &str) -> MasterView {
        MasterView {
            args: args(a),
            env_cmd_args: None,
            cwd: Some(PathBuf::from("/srv/app")),
        }
    }

    fn no_files(_: &Path) -> Option<String> {
        None
    }

    #[test]
    fn command_line_forms() {
        for a in [
            "gunicorn app:wsgi -t 20",
            "gunicorn -t20 app:wsgi",
            "gunicorn --timeout 20 app:wsgi",
            "gunicorn --timeout=20 -w 4 app:wsgi",
            "python -m gunicorn -t 5 --timeout=20 app:wsgi",
        ] {
            let t = resolve(&view(a), &no_files);
            assert_eq!(t.seconds, 20.0, "{a}");
            assert_eq!(t.source, TimeoutSource::CommandLine);
        }
        // `--threads`/`-w` must not be read as a timeout.
        let t = resolve(&view("gunicorn --threads 4 -w 3 app:wsgi"), &no_files);
        assert_eq!((t.seconds, t.source), (30.0, TimeoutSource::Default));
    }

    #[test]
    fn environment_then_config_file_then_default() {
        let mut v = view("gunicorn app:wsgi");
        v.env_cmd_args = Some("--bind=0.0.0.0:80 --timeout '45'".into());
        let t = resolve(&v, &no_files);
        assert_eq!((t.seconds, t.source), (45.0, TimeoutSource::Environment));

        let read = |p: &Path| {
            (p == Path::new("/srv/app/gunicorn.conf.py"))
                .then(|| "workers = 4\ntimeout = 90  # slow reports\n".to_string())
        };
        let t = resolve(&view("gunicorn app:wsgi"), &read);
        assert_eq!(t.seconds, 90.0);
        assert_eq!(
            t.source,
            TimeoutSource::ConfigFile(PathBuf::from("/srv/app/gunicorn.conf.py"))
        );
        // The command line still wins over the file.
        assert_eq!(resolve(&view("gunicorn -t 7 app:wsgi"), &read).seconds, 7.0);
    }

    #[test]
    fn an_expression_in_the_config_is_doubted_not_guessed() {
        let read = |_: &Path| Some("timeout = int(os.environ.get('T', 60))\n".to_string());
        let t = resolve(&view("gunicorn -c conf/g.py app:wsgi"), &read);
        assert_eq!(t.source, TimeoutSource::Default);
        assert!(t.doubt.unwrap().contains("/srv/app/conf/g.py"));
        let t = resolve(&view("gunicorn -c /etc/missing.py app:wsgi"), &no_files);
        assert!(t.doubt.unwrap().contains("could not be read"));
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            split_shell_words(r#"-t 20 --name "my app" 'a b'"#),
            vec!["-t", "20", "--name", "my app", "a b"]
        );
    }

    #[test]
    fn worker_class_from_every_place_gunicorn_reads_it() {
        let model = |a: &str| resolve_workers(&view(a), &no_files);
        assert_eq!(model("gunicorn app:wsgi").class, WorkerClass::Sync);
        assert_eq!(
            model("gunicorn -k gevent app:wsgi").class,
            WorkerClass::Gevent
        );
        assert_eq!(
            model("gunicorn --worker-class=uvicorn.workers.UvicornWorker app:asgi").class,
            WorkerClass::Asyncio
        );
        assert_eq!(
            model("gunicorn -k egg:gunicorn#eventlet app:wsgi").class,
            WorkerClass::Eventlet
        );
        // gunicorn/config.py: a sync worker with threads > 1 is gthread.
        let m = model("gunicorn --threads 4 -w 2 app:wsgi");
        assert_eq!((m.class, m.threads), (WorkerClass::Gthread, 4));
        let m = model("gunicorn -k gthread app:wsgi");
        assert_eq!((m.class, m.threads), (WorkerClass::Gthread, 1));
        // threads also sizes nothing else: gevent with --threads stays gevent.
        assert_eq!(
            model("gunicorn -k gevent --threads 8 a:b").class,
            WorkerClass::Gevent
        );

        let mut v = view("gunicorn app:wsgi");
        v.env_cmd_args = Some("--threads=3".into());
        assert_eq!(resolve_workers(&v, &no_files).class, WorkerClass::Gthread);

        let read = |_: &Path| {
            Some("worker_class = 'gthread'  # I/O bound\nthreads = 8\ntimeout = 60\n".to_string())
        };
        let m = resolve_workers(&view("gunicorn app:wsgi"), &read);
        assert_eq!(
            (m.class, m.threads, m.doubt),
            (WorkerClass::Gthread, 8, None)
        );
        let read = |_: &Path| Some("threads = os.cpu_count() * 2\n".to_string());
        let m = resolve_workers(&view("gunicorn app:wsgi"), &read);
        assert_eq!(m.threads, 1);
        assert!(m.doubt.unwrap().contains("threads = os.cpu_count() * 2"));
    }

    #[test]
    fn config_literals() {
        assert_eq!(config_timeout("timeout=120"), ConfigTimeout::Literal(120.0));
        assert_eq!(
            config_timeout("timeout = 1_000"),
            ConfigTimeout::Literal(1000.0)
        );
        assert_eq!(
            config_timeout("graceful_timeout = 5"),
            ConfigTimeout::Absent
        );
        assert_eq!(config_timeout("    timeout = 5"), ConfigTimeout::Absent);
    }
}
