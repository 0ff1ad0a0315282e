//! What wtdiag may run and read when it has more rights than the process it inspects.
//!
//! `wtdiag live` is run as root (or with `CAP_SYS_PTRACE`) against workers of an unprivileged
//! user. Anything that user can write is theirs to choose, so two rules hold here:
//!
//! * A program is executed only when nobody but root (or the user who invoked sudo) can change
//!   it: the file and every directory above it are owned by a trusted uid and writable by neither
//!   group nor others. These are the checks OpenSSH's `StrictModes` makes on `authorized_keys`
//!   (`safe_path()` in OpenSSH's misc.c) and sudo on its `secure_path`. The canonical path is the
//!   one checked and the one executed, so a symlink swapped in between cannot redirect it.
//! * A file the target names (its config file, the source files of its frames) is read only if
//!   the target's own uid and groups could read it, so root never turns a path chosen by the
//!   target into the content of a file the target may not see (`/etc/shadow` renamed `x.py`).

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// wtdiag's own rights: whether it can inspect other users' processes, and whose files it
/// trusts to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privilege {
    /// euid 0, or any effective capability (`CAP_SYS_PTRACE` given to a non-root user).
    pub elevated: bool,
    /// Owners whose programs may be executed: root, and the invoking user (`SUDO_UID` under
    /// sudo, else the euid when it is not root).
    pub trusted_uids: Vec<u32>,
}

impl Privilege {
    /// wtdiag's own, from `/proc/self/status` and `SUDO_UID`.
    pub fn current() -> Privilege {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let euid = status_ids(&status, "Uid:")
            .get(1)
            .copied()
            // Unknown: assume root, the stricter case.
            .unwrap_or(0);
        let caps = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        let sudo_uid = std::env::var("SUDO_UID")
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok());
        Privilege::new(euid, caps != 0, sudo_uid)
    }

    pub fn new(euid: u32, has_capabilities: bool, sudo_uid: Option<u32>) -> Privilege {
        let mut trusted_uids = vec![0];
        let invoker = if euid == 0 { sudo_uid } else { Some(euid) };
        if let Some(uid) = invoker.filter(|u| *u != 0) {
            trusted_uids.push(uid);
        }
        Privilege {
            elevated: euid == 0 || has_capabilities,
            trusted_uids,
        }
    }
}

/// Why a program is not executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}: no such executable file")]
    NotExecutable(PathBuf),
    #[error("{path} is owned by uid {uid}, not by root{}", invoker_suffix(.trusted))]
    Owner {
        path: PathBuf,
        uid: u32,
        trusted: Vec<u32>,
    },
    #[error("{path} is writable by {by} (mode {mode:o})")]
    Writable {
        path: PathBuf,
        by: &'static str,
        mode: u32,
    },
}

fn invoker_suffix(trusted: &[u32]) -> String {
    match trusted.iter().find(|u| **u != 0) {
        Some(uid) => format!(" or uid {uid} (you)"),
        None => String::new(),
    }
}

/// The path to execute for `path`: its canonical form, once the file is an executable regular
/// file and, when wtdiag is elevated, nobody but a trusted uid can change it or any directory
/// above it.
pub fn program(path: &Path, privilege: &Privilege) -> Result<PathBuf, Refusal> {
    program_within(path, privilege, 2)
}

/// [`program`], and for a script its `#!` interpreter too (a root-owned wrapper whose
/// interpreter the app's user can write is theirs), `depth` levels down.
fn program_within(path: &Path, privilege: &Privilege, depth: u8) -> Result<PathBuf, Refusal> {
    let canonical =
        std::fs::canonicalize(path).map_err(|_| Refusal::NotExecutable(path.to_path_buf()))?;
    let meta =
        std::fs::metadata(&canonical).map_err(|_| Refusal::NotExecutable(path.to_path_buf()))?;
    if !meta.is_file() || meta.mode() & 0o111 == 0 {
        return Err(Refusal::NotExecutable(path.to_path_buf()));
    }
    if !privilege.elevated {
        return Ok(canonical);
    }
    safe_entry(&canonical, &meta, privilege)?;
    for dir in canonical.ancestors().skip(1) {
        let meta = std::fs::metadata(dir).map_err(|_| Refusal::NotExecutable(path.into()))?;
        safe_entry(dir, &meta, privilege)?;
    }
    if let Some(interpreter) = interpreter_of(&canonical) {
        if depth == 0 {
            return Err(Refusal::NotExecutable(path.to_path_buf()));
        }
        program_within(&interpreter, privilege, depth - 1)?;
    }
    Ok(canonical)
}

/// The absolute interpreter path of a `#!` script (`#!/usr/bin/env bash` gives `/usr/bin/env`).
fn interpreter_of(path: &Path) -> Option<PathBuf> {
    let mut head = [0u8; 256];
    let n = File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let first = std::str::from_utf8(line).ok()?.split_whitespace().next()?;
    Some(PathBuf::from(first)).filter(|p| p.is_absolute())
}

/// One file or directory: owned by a trusted uid, writable by neither group nor others (the
/// sticky bit does not help: OpenSSH and sudo refuse `/tmp` too).
fn safe_entry(path: &Path, meta: &Metadata, privilege: &Privilege) -> Result<(), Refusal> {
    if !privilege.trusted_uids.contains(&meta.uid()) {
        return Err(Refusal::Owner {
            path: path.to_path_buf(),
            uid: meta.uid(),
            trusted: privilege.trusted_uids.clone(),
        });
    }
    let mode = meta.mode() & 0o7777;
    for (bit, by) in [(0o002, "others"), (0o020, "group")] {
        if mode & bit != 0 {
            return Err(Refusal::Writable {
                path: path.to_path_buf(),
                by,
                mode,
            });
        }
    }
    Ok(())
}

/// A process's file-access identity: its effective uid and gid and its supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gids: Vec<u32>,
}

impl Credentials {
    /// The credentials of process `pid`, from `/proc/PID/status` (filesystem uid and gid, as
    /// the kernel uses them for access checks). None when the process is gone.
    pub fn of(pid: u32) -> Option<Credentials> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Credentials::from_status(&status)
    }

    pub fn from_status(status: &str) -> Option<Credentials> {
        let uid = *status_ids(status, "Uid:").get(3)?;
        let mut gids = vec![*status_ids(status, "Gid:").get(3)?];
        gids.extend(status_ids(status, "Groups:"));
        Some(Credentials { uid, gids })
    }

    /// Anyone at all: a file every user can read is all such a reader gets.
    pub fn anyone() -> Credentials {
        Credentials {
            uid: u32::MAX,
            gids: Vec::new(),
        }
    }

    /// True when these credentials pass the permission bits `want` (0o4 read, 0o1 search) of
    /// `meta`, the way the kernel picks the owner, group or other class.
    fn may(&self, meta: &Metadata, want: u32) -> bool {
        if self.uid == 0 {
            return true;
        }
        let mode = meta.mode();
        let class = if meta.uid() == self.uid {
            mode >> 6
        } else if self.gids.contains(&meta.gid()) {
            mode >> 3
        } else {
            mode
        };
        class & want == want
    }
}

fn status_ids(status: &str, key: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|n| n.parse::<u32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Reads `path` as `reader` could: through `root` (the target's `/proc/PID/root`, or `/`), only
/// a regular file of at most `max_bytes` that `reader` may read, in directories it may search.
/// Never blocks on a FIFO or device the target put there.
pub fn read_as(root: &Path, path: &Path, reader: &Credentials, max_bytes: u64) -> Option<Vec<u8>> {
    if !path.is_absolute() {
        return None;
    }
    let rel = path.strip_prefix("/").ok()?;
    for dir in rel.ancestors().skip(1) {
        let meta = std::fs::metadata(root.join(dir)).ok()?;
        if !meta.is_dir() || !reader.may(&meta, 0o1) {
            return None;
        }
    }
    let file = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(root.join(rel))
        .ok()?;
    // The opened file, not the name: a rename after the check cannot swap it.
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > max_bytes || !reader.may(&meta, 0o4) {
        return None;
    }
    // And the directories it really is in: a directory swapped for a symlink between the check
    // above and the open is caught here. (In another mount namespace the fd's path is not one
    // of ours to check; the checks above stand alone there.)
    if shares_our_mounts(root) {
        use std::os::fd::AsRawFd;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
        for dir in real.ancestors().skip(1) {
            let meta = std::fs::metadata(dir).ok()?;
            if !reader.may(&meta, 0o1) {
                return None;
            }
        }
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max_bytes).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// True when paths under `root` (`/`, or `/proc/PID/root`) are paths in wtdiag's own mount
/// namespace.
fn shares_our_mounts(root: &Path) -> bool {
    if root == Path::new("/") {
        return true;
    }
    let Some(proc_dir) = root.parent() else {
        return false;
    };
    let ns = |dir: &Path| std::fs::read_link(dir.join("ns/mnt")).ok();
    matches!((ns(proc_dir), ns(Path::new("/proc/self"))), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wtdiag-trust-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_invoking_user_is_trusted_beside_root() {
        assert_eq!(Privilege::new(0, false, Some(1000)).trusted_uids, [0, 1000]);
        assert_eq!(Privilege::new(0, false, None).trusted_uids, [0]);
        let p = Privilege::new(1000, false, Some(7));
        assert_eq!(p.trusted_uids, [0, 1000]);
        assert!(!p.elevated);
        assert!(Privilege::new(1000, true, None).elevated);
    }

    #[test]
    fn credentials_from_status() {
        let status = "Name:\tpython3\nUid:\t1000\t1000\t1000\t1001\nGid:\t100\t100\t100\t101\nGroups:\t27 44 \n";
        assert_eq!(
            Credentials::from_status(status),
            Some(Credentials {
                uid: 1001,
                gids: vec![101, 27, 44]
            })
        );
    }

    #[test]
    fn a_program_others_can_write_is_refused_when_elevated() {
        let dir = scratch("program");
        let file = dir.join("py-spy");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        chmod(&file, 0o775);
        let me = Privilege::current();
        let elevated = Privilege {
            elevated: true,
            trusted_uids: me.trusted_uids.clone(),
        };
        let err = program(&file, &elevated).unwrap_err();
        assert!(
            matches!(&err, Refusal::Writable { path, by: "group", .. } if path.ends_with("py-spy")),
            "{err}"
        );
        chmod(&file, 0o755);
        chmod(&dir, 0o777);
        let err = program(&file, &elevated).unwrap_err();
        let canonical_dir = std::fs::canonicalize(&dir).unwrap();
        assert!(
            matches!(&err, Refusal::Writable { path, by: "others", .. } if *path == canonical_dir),
            "{err}"
        );
        let nobody = Privilege {
            elevated: true,
            trusted_uids: vec![u32::MAX - 1],
        };
        assert!(matches!(
            program(&file, &nobody),
            Err(Refusal::Owner { .. })
        ));
        // A script's interpreter (checked as a program too: see live_security.rs).
        let safe_dir = std::fs::canonicalize(&dir).unwrap();
        chmod(&dir, 0o755);
        let interpreter = dir.join("interp");
        std::fs::write(&interpreter, "#!/bin/sh\n").unwrap();
        chmod(&interpreter, 0o777);
        let script = dir.join("wrapper");
        std::fs::write(
            &script,
            format!("#!{} -x\n", safe_dir.join("interp").display()),
        )
        .unwrap();
        chmod(&script, 0o755);
        assert_eq!(interpreter_of(&script), Some(safe_dir.join("interp")));
        assert_eq!(interpreter_of(&interpreter), Some(PathBuf::from("/bin/sh")));
        std::fs::write(&script, "#!relative\n").unwrap();
        assert_eq!(interpreter_of(&script), None);
        // Not elevated: only "is it an executable file".
        let plain = Privilege::new(1000, false, None);
        assert_eq!(
            program(&file, &plain),
            Ok(std::fs::canonicalize(&file).unwrap())
        );
        chmod(&file, 0o644);
        assert!(matches!(
            program(&file, &plain),
            Err(Refusal::NotExecutable(_))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_is_read_only_when_its_reader_could() {
        let dir = scratch("read");
        chmod(&dir, 0o755);
        let file = dir.join("x.py");
        std::fs::write(&file, "secret\n").unwrap();
        let root = Path::new("/");
        let owner = std::fs::metadata(&file).unwrap().uid();
        let stranger = Credentials {
            uid: owner.wrapping_add(12345),
            gids: vec![],
        };
        chmod(&file, 0o600);
        assert_eq!(read_as(root, &file, &stranger, 100), None);
        chmod(&file, 0o644);
        assert_eq!(
            read_as(root, &file, &stranger, 100).as_deref(),
            Some(&b"secret\n"[..])
        );
        assert_eq!(read_as(root, &file, &stranger, 3), None, "too large");
        chmod(&dir, 0o700);
        assert_eq!(
            read_as(root, &file, &stranger, 100),
            None,
            "dir not searchable"
        );
        chmod(&dir, 0o755);
        assert_eq!(
            read_as(root, Path::new("x.py"), &stranger, 100),
            None,
            "relative"
        );
        // A link to a searchable directory inside one the reader may not search: the name's
        // directories pass, the real ones do not.
        let private = dir.join("private");
        let inner = private.join("inner");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(inner.join("y.py"), "hidden\n").unwrap();
        chmod(&inner.join("y.py"), 0o644);
        chmod(&inner, 0o755);
        chmod(&private, 0o700);
        std::os::unix::fs::symlink(&inner, dir.join("public")).unwrap();
        let linked = dir.join("public/y.py");
        assert_eq!(
            read_as(root, &linked, &stranger, 100),
            None,
            "through a link"
        );
        let me = std::process::id();
        let through_proc = PathBuf::from(format!("/proc/{me}/root/"));
        assert!(shares_our_mounts(&through_proc));
        assert_eq!(read_as(&through_proc, &linked, &stranger, 100), None);
        chmod(&private, 0o755);
        assert_eq!(
            read_as(&through_proc, &linked, &stranger, 100).as_deref(),
            Some(&b"hidden\n"[..])
        );
        // A FIFO is never opened for reading (it would block).
        let fifo = dir.join("f.py");
        nix_mkfifo(&fifo);
        assert_eq!(read_as(root, &fifo, &Credentials::anyone(), 100), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn nix_mkfifo(p: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg("-m")
            .arg("644")
            .arg(p)
            .status()
            .unwrap();
        assert!(status.success());
    }
}
