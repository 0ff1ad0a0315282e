//! The Gunicorn master's `timeout`, read the way Gunicorn resolves it: the command line wins over
//! `GUNICORN_CMD_ARGS`, which wins over the config file (`-c FILE`, else `./gunicorn.conf.py` in
//! the master's working directory), which wins over the default of 30 s. The config file is
//! Python; only a literal `timeout = N` is read, anything else is reported as unreadable.

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

fn default_with(doubt: Option<String>) -> MasterTimeout {
    MasterTimeout {
        seconds: DEFAULT_TIMEOUT,
        source: TimeoutSource::Default,
        doubt,
    }
}

/// The value of an option the way argparse takes it: `-t 20`, `-t20`, `--timeout 20`,
/// `--timeout=20`; the last one wins.
pub fn option_value(args: &[String], short: &str, long: &str) -> Option<String> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            break;
        }
        if a == short || a == long {
            if let Some(v) = args.get(i + 1) {
                found = Some(v.clone());
            }
            i += 2;
            continue;
        }
        if let Some(v) = a.strip_prefix(long).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_string());
        } else if let Some(v) = a.strip_prefix(short)
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
