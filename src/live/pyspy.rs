//! The external `py-spy` binary: finding it (`--py-spy`, else wtdiag's own PATH), checking that
//! it is safe to run ([`trust::program`]) and can `dump --json`, and running one dump with its
//! stderr kept. A py-spy beside the target (its venv's `bin/`, its command line's or executable's
//! directory) is only named in the error, never run: the target's user chose it, and wtdiag runs
//! as root.
//!
//! Each dump is a short-lived child in its own process group, so a Ctrl-C typed at wtdiag's
//! terminal reaches wtdiag only: py-spy is never killed half-way through its ptrace attach.
//! py-spy 0.4 attaches with `PTRACE_SEIZE` + `PTRACE_INTERRUPT`, which a dying tracer releases;
//! releases whose remoteprocess used `PTRACE_ATTACH` send a SIGSTOP that can outlive a killed
//! tracer. So a dump that hangs is killed after a deadline, and [`resume_if_stopped`] then makes
//! sure the target runs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::dump::{self, ThreadStack};
use super::procfs;
use super::trust::{self, Privilege, Refusal};

/// Every py-spy release with `dump --json`; the one the fixtures were captured with.
pub const TESTED_VERSION: &str = "0.4.3";

/// A py-spy binary that can dump JSON.
#[derive(Debug, Clone)]
pub struct PySpy {
    pub path: PathBuf,
    /// As `py-spy --version` prints it, without the name: `0.4.3`.
    pub version: String,
}

/// Why py-spy cannot be used, or why one dump failed.
#[derive(Debug, thiserror::Error)]
pub enum PySpyError {
    #[error("py-spy not found on PATH; {}", not_found_advice(.beside, *.elevated))]
    NotFound {
        /// py-spy binaries beside the target, named and never run.
        beside: Vec<Beside>,
        elevated: bool,
    },
    #[error("--py-spy {0}: no such executable file; give the path of the py-spy binary")]
    NotExecutable(PathBuf),
    #[error(
        "{given} ({origin}) is not run: {refusal}; as root (or with capabilities) wtdiag runs a \
         program only when it and every directory above it are owned by root (or the sudo \
         user) and writable by no one else: install py-spy on root's PATH (`sudo pip install \
         py-spy`, or `sudo install -o root -m 755 py-spy /usr/local/bin/`) or `chmod go-w` it"
    )]
    Untrusted {
        given: PathBuf,
        origin: &'static str,
        refusal: Refusal,
    },
    #[error(
        "{path}: py-spy {version} cannot `dump --json`; upgrade it: `pip install -U py-spy` (wtdiag is tested with {TESTED_VERSION})"
    )]
    TooOld { path: PathBuf, version: String },
    #[error("{path}: cannot run it as py-spy ({why}); give a working py-spy with --py-spy")]
    Unusable { path: PathBuf, why: String },
    #[error(
        "pid {pid}: permission denied by ptrace; run wtdiag as the user that runs Gunicorn, or as root; \
         in a container add CAP_SYS_PTRACE (docker run --cap-add SYS_PTRACE); with kernel.yama.ptrace_scope \
         above 0 only root may attach (sysctl kernel.yama.ptrace_scope=0){}",
        stderr_suffix(.stderr)
    )]
    PermissionDenied { pid: u32, stderr: String },
    #[error("pid {pid}: the process exited")]
    Exited { pid: u32 },
    #[error(
        "pid {pid}: py-spy finds no Python interpreter in it ({stderr}); give the pid of the Gunicorn master or of a worker"
    )]
    NotPython { pid: u32, stderr: String },
    #[error("pid {pid}: py-spy did not finish within {seconds:.0} s and was stopped")]
    TimedOut { pid: u32, seconds: f64 },
    #[error("pid {pid}: the dump was interrupted (py-spy was stopped; the worker runs on)")]
    Interrupted { pid: u32 },
    #[error("pid {pid}: py-spy failed ({status}): {stderr}")]
    Failed {
        pid: u32,
        status: String,
        stderr: String,
    },
    #[error("pid {pid}: {source}")]
    BadOutput {
        pid: u32,
        source: dump::DumpParseError,
    },
}

/// A py-spy found next to the target's Python.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beside {
    pub path: PathBuf,
    pub uid: u32,
    /// Why `--py-spy PATH` would be refused too (wtdiag is elevated and the file or a directory
    /// above it is not safe).
    pub refusal: Option<Refusal>,
}

fn not_found_advice(beside: &[Beside], elevated: bool) -> String {
    let install = if elevated {
        "install it on root's PATH: `sudo pip install py-spy` (or copy the py-spy binary to \
         /usr/local/bin, owned by root, mode 755)"
    } else {
        "install it on your PATH: `pip install py-spy`"
    };
    if beside.is_empty() {
        return format!("{install}, or give its path with --py-spy");
    }
    let named: Vec<String> = beside
        .iter()
        .map(|b| match &b.refusal {
            None => format!(
                "py-spy found at {}, owned by uid {}, beside the target; pass --py-spy {} if you \
                 trust it",
                b.path.display(),
                b.uid,
                b.path.display()
            ),
            Some(refusal) => format!(
                "py-spy found at {}, owned by uid {}, beside the target, would be refused with \
                 --py-spy too ({refusal})",
                b.path.display(),
                b.uid
            ),
        })
        .collect();
    format!(
        "{}; wtdiag never runs a program from the target's directories; {install}",
        named.join("; ")
    )
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(" (py-spy: {stderr})")
    }
}

impl PySpyError {
    /// True when retrying this worker is pointless: the same failure will come back.
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self,
            PySpyError::TimedOut { .. } | PySpyError::Failed { .. } | PySpyError::BadOutput { .. }
        )
    }
}

/// Where py-spy may come from, and where it is only looked for to be named.
pub struct Candidates {
    pub explicit: Option<PathBuf>,
    /// Directories of wtdiag's own PATH (root's under sudo), absolute ones only.
    pub path_dirs: Vec<PathBuf>,
    /// Directories next to the target's Python: its venv's bin/, its executable's directory.
    /// A py-spy found there is named in the error, never run.
    pub target_dirs: Vec<PathBuf>,
    pub privilege: Privilege,
}

impl Candidates {
    /// wtdiag's PATH, and the directories beside the target's interpreter: the directory of
    /// argv[0] and argv[1] (the venv's `bin/gunicorn` or `bin/python`), `$VIRTUAL_ENV/bin` of
    /// its environment, and the directory of its executable. Only `VIRTUAL_ENV` is taken from
    /// the target's environment.
    pub fn for_target(explicit: Option<PathBuf>, target_pid: u32) -> Candidates {
        let mut target_dirs = Vec::new();
        let cwd = procfs::cwd(target_pid).ok();
        if let Ok(args) = procfs::cmdline(target_pid) {
            for arg in args.iter().take(2) {
                let p = Path::new(arg);
                if arg.contains('/')
                    && let Some(dir) = p.parent()
                {
                    let dir = match (&cwd, dir.is_absolute()) {
                        (Some(cwd), false) => cwd.join(dir),
                        _ => dir.to_path_buf(),
                    };
                    target_dirs.push(dir);
                }
            }
        }
        let venv = procfs::environ(target_pid)
            .unwrap_or_default()
            .into_iter()
            .find(|(k, _)| k == "VIRTUAL_ENV")
            .map(|(_, v)| v);
        if let Some(venv) = venv.filter(|v| v.starts_with('/')) {
            target_dirs.push(Path::new(&venv).join("bin"));
        }
        if let Ok(exe) = procfs::exe(target_pid)
            && let Some(dir) = exe.parent()
        {
            target_dirs.push(dir.to_path_buf());
        }
        let mut seen = std::collections::HashSet::new();
        target_dirs.retain(|d| seen.insert(d.clone()));
        Candidates {
            explicit,
            path_dirs: std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
            target_dirs,
            privilege: Privilege::current(),
        }
    }

    /// The py-spy to run: `--py-spy`, else the first one on PATH, as [`trust::program`] lets
    /// it run. A relative PATH entry (`.`, empty) is skipped: it names whatever directory
    /// wtdiag was started in.
    fn choose(&self) -> Result<PathBuf, PySpyError> {
        if let Some(given) = &self.explicit {
            return trust::program(given, &self.privilege).map_err(|refusal| match refusal {
                Refusal::NotExecutable(_) => PySpyError::NotExecutable(given.clone()),
                refusal => PySpyError::Untrusted {
                    given: given.clone(),
                    origin: "--py-spy",
                    refusal,
                },
            });
        }
        let on_path = self
            .path_dirs
            .iter()
            .filter(|d| d.is_absolute())
            .map(|d| d.join("py-spy"))
            .find(|p| is_executable_file(p));
        if let Some(found) = on_path {
            return trust::program(&found, &self.privilege).map_err(|refusal| {
                PySpyError::Untrusted {
                    given: found.clone(),
                    origin: "on PATH",
                    refusal,
                }
            });
        }
        Err(PySpyError::NotFound {
            beside: self.beside_target(),
            elevated: self.privilege.elevated,
        })
    }

    /// py-spy files beside the target, looked at (stat) and never run.
    fn beside_target(&self) -> Vec<Beside> {
        use std::os::unix::fs::MetadataExt;
        self.target_dirs
            .iter()
            .filter(|d| d.is_absolute())
            .map(|d| d.join("py-spy"))
            .filter_map(|path| {
                let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
                let refusal = trust::program(&path, &self.privilege).err();
                Some(Beside {
                    path,
                    uid: meta.uid(),
                    refusal,
                })
            })
            .collect()
    }
}

fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl PySpy {
    /// Finds py-spy, checks that it may be run, then that it can dump JSON. `path` is the
    /// canonical path that was checked: the one every dump executes.
    pub fn locate(candidates: &Candidates) -> Result<PySpy, PySpyError> {
        let path = candidates.choose()?;
        let version = Self::version_of(&path)?;
        let help = run_quick(&path, &["dump", "--help"])?;
        if !help.contains("--json") {
            return Err(PySpyError::TooOld { path, version });
        }
        Ok(PySpy { path, version })
    }

    fn version_of(path: &Path) -> Result<String, PySpyError> {
        let out = run_quick(path, &["--version"])?;
        let version = out
            .split_whitespace()
            .nth(1)
            .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .ok_or_else(|| PySpyError::Unusable {
                path: path.to_path_buf(),
                why: format!("`--version` printed {:?}", out.trim()),
            })?;
        Ok(version.to_string())
    }

    /// One `py-spy dump --json` of `pid`. Stops waiting for it at `deadline` and kills it.
    pub fn dump(
        &self,
        pid: u32,
        nonblocking: bool,
        deadline: Duration,
    ) -> Result<Vec<ThreadStack>, PySpyError> {
        let options = DumpOptions {
            nonblocking,
            requests: false,
            deadline,
        };
        self.dump_until(pid, &options, None).map(|d| d.threads)
    }

    /// One dump of `pid` that also ends when `stop` is set (Ctrl-C, SIGTERM): py-spy is killed
    /// then and the target is made to run if it was left stopped ([`resume_if_stopped`]).
    /// With `options.requests`, py-spy reads the frames' locals too, for the request each
    /// thread serves ([`dump::requests`]); nothing else of the locals is kept.
    pub fn dump_until(
        &self,
        pid: u32,
        options: &DumpOptions,
        stop: Option<&AtomicBool>,
    ) -> Result<Dump, PySpyError> {
        let mut cmd = Command::new(&self.path);
        cmd.args(["dump", "--json", "--pid", &pid.to_string()]);
        if options.nonblocking {
            cmd.arg("--nonblocking");
        }
        if options.requests {
            // Six `l`s: py-spy shows up to 768 characters of a value, enough to reach the
            // REQUEST_METHOD and RAW_URI keys of a WSGI environ dict.
            cmd.arg("-llllll");
        }
        let output = run_with_deadline(cmd, options.deadline, stop).map_err(|e| match e {
            RunError::Spawn(e) => PySpyError::Unusable {
                path: self.path.clone(),
                why: e.to_string(),
            },
            RunError::TimedOut => {
                resume_if_stopped(pid);
                PySpyError::TimedOut {
                    pid,
                    seconds: options.deadline.as_secs_f64(),
                }
            }
            RunError::Interrupted => {
                resume_if_stopped(pid);
                PySpyError::Interrupted { pid }
            }
        })?;
        if output.success {
            let threads = dump::parse(&output.stdout)
                .map_err(|source| PySpyError::BadOutput { pid, source })?;
            let requests = if options.requests {
                dump::requests(&output.stdout)
            } else {
                Vec::new()
            };
            return Ok(Dump { threads, requests });
        }
        let stderr = error_text(&output.stderr);
        Err(classify_failure(pid, output.status, stderr))
    }
}

/// How one dump runs.
#[derive(Debug, Clone, Copy)]
pub struct DumpOptions {
    /// py-spy `--nonblocking`: never pause the target, accept torn stacks.
    pub nonblocking: bool,
    /// Read the WSGI environ of each thread's stack for its request line.
    pub requests: bool,
    /// The dump is killed when it takes longer.
    pub deadline: Duration,
}

/// One dump: the threads' stacks and, when asked, the request each thread serves.
#[derive(Debug, Clone)]
pub struct Dump {
    pub threads: Vec<ThreadStack>,
    /// (thread id, `GET /path?query`) for threads with a WSGI environ in their stack.
    pub requests: Vec<(u64, String)>,
}

/// Names a failed dump from py-spy's stderr and what /proc says about the target afterwards.
fn classify_failure(pid: u32, status: String, stderr: String) -> PySpyError {
    if !procfs::is_alive(pid) {
        return PySpyError::Exited { pid };
    }
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("permission denied") || lower.contains("operation not permitted") {
        return PySpyError::PermissionDenied { pid, stderr };
    }
    if lower.contains("failed to find python version")
        || lower.contains("failed to find a python interpreter")
        || lower.contains("doesn't look like a python")
    {
        return PySpyError::NotPython { pid, stderr };
    }
    PySpyError::Failed {
        pid,
        status,
        stderr,
    }
}

/// py-spy's error without its Rust backtrace: the lines before `Stack backtrace:`, joined.
pub fn error_text(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut lines = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Stack backtrace:") || line.starts_with("stack backtrace:") {
            break;
        }
        if !line.is_empty() && line != "Caused by:" {
            lines.push(line.trim_start_matches("Error: ").to_string());
        }
    }
    lines.join("; ")
}

/// If a target was left stopped (`T`) by an interrupted attach, lets it run again. A process
/// that someone stopped on purpose is also resumed, which is why this runs only after wtdiag
/// itself had to kill a py-spy. Returns true when it sent SIGCONT.
pub fn resume_if_stopped(pid: u32) -> bool {
    if matches!(procfs::stat(pid), Ok(s) if s.state == 'T') {
        let Ok(raw) = i32::try_from(pid) else {
            return false;
        };
        return nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(raw),
            nix::sys::signal::Signal::SIGCONT,
        )
        .is_ok();
    }
    false
}

struct RunOutput {
    success: bool,
    status: String,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

enum RunError {
    Spawn(std::io::Error),
    TimedOut,
    /// `stop` was set: the child was killed.
    Interrupted,
}

fn run_with_deadline(
    mut cmd: Command,
    deadline: Duration,
    stop: Option<&AtomicBool>,
) -> Result<RunOutput, RunError> {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // No Rust backtrace in py-spy's errors: they are shown to the user.
        .env("RUST_BACKTRACE", "0")
        .process_group(0);
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let mut stdout_pipe = child.stdout.take();
    let mut stderr_pipe = child.stderr.take();
    let started = Instant::now();
    std::thread::scope(|s| {
        let out = s.spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = stdout_pipe.as_mut() {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        });
        let err = s.spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = stderr_pipe.as_mut() {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        });
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(RunError::TimedOut);
                }
                Ok(None) if stop.is_some_and(|s| s.load(Ordering::SeqCst)) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(RunError::Interrupted);
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                Err(e) => break Err(RunError::Spawn(e)),
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        status.map(|status| RunOutput {
            success: status.success(),
            status: status.to_string(),
            stdout,
            stderr,
        })
    })
}

fn run_quick(path: &Path, args: &[&str]) -> Result<String, PySpyError> {
    let mut cmd = Command::new(path);
    cmd.args(args);
    match run_with_deadline(cmd, Duration::from_secs(10), None) {
        Ok(out) if out.success => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(PySpyError::Unusable {
            path: path.to_path_buf(),
            why: format!(
                "`py-spy {}` failed ({}): {}",
                args.join(" "),
                out.status,
                error_text(&out.stderr)
            ),
        }),
        Err(RunError::Spawn(e)) => Err(PySpyError::Unusable {
            path: path.to_path_buf(),
            why: e.to_string(),
        }),
        Err(RunError::TimedOut | RunError::Interrupted) => Err(PySpyError::Unusable {
            path: path.to_path_buf(),
            why: format!("`py-spy {}` did not finish in 10 s", args.join(" ")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_drops_the_backtrace() {
        let stderr = b"Error: Failed to get process executable name. Check that the process is running.\n\nCaused by:\n    0: No such file or directory (os error 2)\n\nStack backtrace:\n   0: anyhow\n";
        assert_eq!(
            error_text(stderr),
            "Failed to get process executable name. Check that the process is running.; 0: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn failures_are_named_from_stderr() {
        let me = std::process::id();
        let e = classify_failure(
            me,
            "exit status: 1".into(),
            "Permission Denied: Try running again with elevated permissions".into(),
        );
        assert!(matches!(e, PySpyError::PermissionDenied { .. }));
        let e = classify_failure(
            me,
            "exit status: 1".into(),
            "Failed to find python version from target process".into(),
        );
        assert!(matches!(e, PySpyError::NotPython { .. }));
        let e = classify_failure(u32::MAX - 1, "exit status: 1".into(), "whatever".into());
        assert!(matches!(e, PySpyError::Exited { .. }));
    }

    #[test]
    fn missing_explicit_binary_is_refused() {
        let c = Candidates {
            explicit: Some(PathBuf::from("/nonexistent/py-spy")),
            path_dirs: vec![],
            target_dirs: vec![],
            privilege: Privilege::new(0, false, None),
        };
        assert!(matches!(
            PySpy::locate(&c),
            Err(PySpyError::NotExecutable(_))
        ));
        let c = Candidates {
            explicit: None,
            path_dirs: vec![PathBuf::from("/nonexistent")],
            target_dirs: vec![PathBuf::from("/srv/venv/bin")],
            privilege: Privilege::new(0, false, None),
        };
        let err = PySpy::locate(&c).unwrap_err().to_string();
        assert!(err.contains("sudo pip install py-spy"), "{err}");
        assert!(err.contains("--py-spy"), "{err}");
    }

    #[test]
    fn a_py_spy_beside_the_target_is_named_never_run() {
        let dir = std::env::temp_dir().join(format!("wtdiag-beside-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("ran");
        let planted = dir.join("py-spy");
        std::fs::write(
            &planted,
            format!(
                "#!/bin/sh\ntouch {}\necho 'py-spy 0.4.3'\n",
                marker.display()
            ),
        )
        .unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let c = Candidates {
            explicit: None,
            path_dirs: vec![PathBuf::from("relative-dir"), PathBuf::from("/nonexistent")],
            target_dirs: vec![dir.clone()],
            privilege: Privilege::new(1000, false, None),
        };
        let err = PySpy::locate(&c).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("py-spy found at {}", planted.display())),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "pass --py-spy {} if you trust it",
                planted.display()
            )),
            "{text}"
        );
        assert!(!marker.exists(), "the planted py-spy was run");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
