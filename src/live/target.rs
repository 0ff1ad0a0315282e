//! `--pid` → what to sample: the Gunicorn master and all its worker children, one worker (whose
//! parent is then the master whose timeout applies), or a lone Python process. Refuses a pid
//! that does not exist, that wtdiag may not trace, or that runs no Python, each with the next
//! step to take.

use std::path::PathBuf;

use super::gunicorn_config::{self, MasterTimeout, MasterView, TimeoutSource};
use super::procfs::{self, ProcError};
use super::trust::{self, Credentials};

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "pid {0}: no such process; give the pid of the running Gunicorn master (`pgrep -fa gunicorn`, or the file given to gunicorn --pid)"
    )]
    NotFound(u32),
    #[error(
        "pid {0}: permission denied; run wtdiag as the user that runs Gunicorn, or as root; in a container add CAP_SYS_PTRACE (docker run --cap-add SYS_PTRACE); with kernel.yama.ptrace_scope above 0 only root may attach"
    )]
    PermissionDenied(u32),
    #[error(
        "pid {pid} ({exe}) is not a Python process; give the pid of the Gunicorn master or of one of its workers (`pgrep -fa gunicorn`)"
    )]
    NotPython { pid: u32, exe: String },
    #[error("pid {pid}: cannot read /proc: {source}")]
    Proc { pid: u32, source: std::io::Error },
}

fn proc_error(pid: u32, e: ProcError) -> TargetError {
    match e {
        ProcError::NotFound => TargetError::NotFound(pid),
        ProcError::PermissionDenied => TargetError::PermissionDenied(pid),
        ProcError::Io(source) => TargetError::Proc { pid, source },
    }
}

/// What the given pid turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A process with Python children: every child is sampled.
    Master,
    /// One worker of a master.
    Worker,
    /// A Python process with neither a Gunicorn parent nor children: sampled alone.
    Lone,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub given: u32,
    pub kind: TargetKind,
    /// The Gunicorn master: the given pid, or the given worker's parent.
    pub master: Option<u32>,
    pub workers: Vec<u32>,
    /// The master's command line, `GUNICORN_CMD_ARGS` and working directory, for its timeout.
    pub master_view: Option<MasterView>,
}

impl Target {
    /// The master's `timeout`: `given` (the command's --timeout) when set, else read from the
    /// master's command line, environment and config file, else Gunicorn's default, with why.
    pub fn master_timeout(&self, given: Option<f64>) -> MasterTimeout {
        if let Some(seconds) = given {
            return MasterTimeout {
                seconds,
                source: TimeoutSource::Given,
                doubt: None,
            };
        }
        match (&self.master_view, self.master) {
            (Some(view), Some(master)) => gunicorn_config::resolve(view, &|p| read_as(master, p)),
            _ => MasterTimeout {
                seconds: gunicorn_config::DEFAULT_TIMEOUT,
                source: TimeoutSource::Default,
                doubt: Some(format!(
                    "pid {} has no Gunicorn master above it, so no timeout could be read",
                    self.given
                )),
            },
        }
    }
}

pub fn resolve(pid: u32) -> Result<Target, TargetError> {
    let stat = procfs::stat(pid).map_err(|e| proc_error(pid, e))?;
    if stat.state == 'Z' {
        return Err(TargetError::NotFound(pid));
    }
    check_python(pid)?;
    let args = procfs::cmdline(pid).map_err(|e| proc_error(pid, e))?;
    let parent_args = procfs::cmdline(stat.ppid).unwrap_or_default();
    let parent_is_python = procfs::is_python(stat.ppid).unwrap_or(false);
    let is_worker = args.iter().any(|a| a.starts_with("gunicorn: worker"))
        || (parent_is_python
            && stat.ppid > 1
            && (parent_args == args
                || parent_args
                    .iter()
                    .any(|a| a.starts_with("gunicorn: master"))));
    if is_worker {
        return Ok(Target {
            given: pid,
            kind: TargetKind::Worker,
            master: Some(stat.ppid),
            workers: vec![pid],
            master_view: Some(master_view(stat.ppid, parent_args)),
        });
    }
    let workers: Vec<u32> = procfs::children(pid)
        .into_iter()
        .filter(|c| procfs::is_python(*c).unwrap_or(false))
        .collect();
    if workers.is_empty() {
        return Ok(Target {
            given: pid,
            kind: TargetKind::Lone,
            master: None,
            workers: vec![pid],
            master_view: None,
        });
    }
    Ok(Target {
        given: pid,
        kind: TargetKind::Master,
        master: Some(pid),
        workers,
        master_view: Some(master_view(pid, args)),
    })
}

fn check_python(pid: u32) -> Result<(), TargetError> {
    match procfs::is_python(pid) {
        Ok(true) => Ok(()),
        Ok(false) => Err(TargetError::NotPython {
            pid,
            exe: procfs::exe(pid)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "?".into()),
        }),
        Err(e) => Err(proc_error(pid, e)),
    }
}

fn master_view(pid: u32, args: Vec<String>) -> MasterView {
    MasterView {
        args,
        env_cmd_args: procfs::environ(pid).ok().and_then(|env| {
            env.into_iter()
                .find(|(k, _)| k == "GUNICORN_CMD_ARGS")
                .map(|(_, v)| v)
        }),
        cwd: procfs::cwd(pid).ok(),
    }
}

/// Reads a file as process `pid` sees it, and only if it may read it: the path comes from the
/// target (its `-c FILE`), so root reads no more through it than the target could. Its content
/// is data: the caller keeps the parsed `timeout` and prints nothing else of it.
pub fn read_as(pid: u32, path: &std::path::Path) -> Option<String> {
    const MAX_CONFIG_BYTES: u64 = 1 << 20;
    let reader = Credentials::of(pid)?;
    let root: PathBuf = procfs::path_in(pid, std::path::Path::new("/"));
    let bytes = trust::read_as(&root, path, &reader, MAX_CONFIG_BYTES)
        .or_else(|| trust::read_as(std::path::Path::new("/"), path, &reader, MAX_CONFIG_BYTES))?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_pid_and_a_non_python_pid_are_refused() {
        assert!(matches!(
            resolve(u32::MAX - 1),
            Err(TargetError::NotFound(_))
        ));
        // The test binary itself is no Python.
        let me = std::process::id();
        let err = resolve(me).unwrap_err();
        assert!(matches!(err, TargetError::NotPython { .. }), "{err}");
        assert!(err.to_string().contains("not a Python process"));
    }
}
