//! What Linux tells about a process without stopping it: `/proc/PID/{stat,status,cmdline,environ,
//! exe,cwd,fd,maps,net/tcp}`, and the process tree (through sysinfo). Readers return typed values;
//! the text formats they parse are checked by unit tests on real lines.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Why a process cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("no such process")]
    NotFound,
    #[error("permission denied")]
    PermissionDenied,
    #[error("{0}")]
    Io(io::Error),
}

impl From<io::Error> for ProcError {
    fn from(e: io::Error) -> ProcError {
        match e.kind() {
            io::ErrorKind::NotFound => ProcError::NotFound,
            io::ErrorKind::PermissionDenied => ProcError::PermissionDenied,
            // ESRCH: the process went away between opening its directory and reading a file.
            _ if e.raw_os_error() == Some(3) => ProcError::NotFound,
            _ => ProcError::Io(e),
        }
    }
}

fn proc_path(pid: u32, rel: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{rel}"))
}

/// The fields of `/proc/PID/stat` wtdiag uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `D`, `T` (stopped), `t` (tracing stop), `Z` (zombie), ...
    pub state: char,
    pub ppid: u32,
    /// Page faults that needed a disk read (swap-in or file pages).
    pub major_faults: u64,
    /// User + system CPU time, in clock ticks.
    pub cpu_ticks: u64,
}

pub fn stat(pid: u32) -> Result<Stat, ProcError> {
    let text = fs::read_to_string(proc_path(pid, "stat"))?;
    parse_stat(&text).ok_or_else(|| {
        ProcError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected /proc/{pid}/stat"),
        ))
    })
}

/// Parses `/proc/PID/stat`; the command name may hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state) of proc(5).
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: u32::try_from(field(4)?).ok()?,
        major_faults: field(12)?,
        cpu_ticks: field(14)? + field(15)?,
    })
}

/// True while the process exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    matches!(stat(pid), Ok(s) if s.state != 'Z' && s.state != 'X')
}

/// Resident and swapped-out memory, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryUse {
    pub rss_bytes: u64,
    pub swap_bytes: u64,
}

pub fn memory(pid: u32) -> Result<MemoryUse, ProcError> {
    Ok(parse_status_memory(&fs::read_to_string(proc_path(
        pid, "status",
    ))?))
}

pub fn parse_status_memory(text: &str) -> MemoryUse {
    let kib = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .map(|k| k * 1024)
            .unwrap_or(0)
    };
    MemoryUse {
        rss_bytes: kib("VmRSS:"),
        swap_bytes: kib("VmSwap:"),
    }
}

/// NUL-separated `/proc/PID/cmdline`.
pub fn cmdline(pid: u32) -> Result<Vec<String>, ProcError> {
    let raw = fs::read(proc_path(pid, "cmdline"))?;
    Ok(split_nul(&raw))
}

/// `/proc/PID/environ` as `KEY=VALUE` pairs.
pub fn environ(pid: u32) -> Result<Vec<(String, String)>, ProcError> {
    let raw = fs::read(proc_path(pid, "environ"))?;
    Ok(split_nul(&raw)
        .into_iter()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect())
}

fn split_nul(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

pub fn exe(pid: u32) -> Result<PathBuf, ProcError> {
    Ok(fs::read_link(proc_path(pid, "exe"))?)
}

pub fn cwd(pid: u32) -> Result<PathBuf, ProcError> {
    Ok(fs::read_link(proc_path(pid, "cwd"))?)
}

/// A file as the process sees it (through its root, so containers work).
pub fn path_in(pid: u32, path: &Path) -> PathBuf {
    let rel = path.strip_prefix("/").unwrap_or(path);
    proc_path(pid, "root").join(rel)
}

/// True when the process runs a Python interpreter: its executable is named python*, or it
/// maps a libpython (uWSGI and other embedders).
pub fn is_python(pid: u32) -> Result<bool, ProcError> {
    let exe = exe(pid)?;
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with("python") || name.starts_with("pypy") {
        return Ok(true);
    }
    let maps = fs::read_to_string(proc_path(pid, "maps"))?;
    Ok(maps.contains("/libpython"))
}

/// The direct child processes of `pid` (threads excluded), in pid order.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(mut system) = System::new() else {
        return Vec::new();
    };
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, ProcessRefreshKind::nothing());
    let parent = Pid::from_u32(pid);
    let mut out: Vec<u32> = system
        .processes()
        .values()
        .filter(|p| p.parent() == Some(parent) && p.thread_kind().is_none())
        .map(|p| p.pid().as_u32())
        .collect();
    out.sort_unstable();
    out
}

/// Swap in use on the whole machine, and its size.
pub fn system_swap() -> Option<(u64, u64)> {
    let mut system = System::new().ok()?;
    system.refresh_memory();
    Some((system.used_swap(), system.total_swap()))
}

/// Gunicorn's worker heartbeat file: created in `--worker-tmp-dir`, unlinked, kept open; the
/// worker touches it (utime, or fchmod before 20.x) on every loop turn, so its ctime is the last
/// notify and `now - ctime` how long the worker has been silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// As `/proc/PID/fd` shows it, e.g. `/tmp/wgunicorn-k2x9 (deleted)`.
    pub path: String,
    pub changed: SystemTime,
}

impl Heartbeat {
    /// Seconds since the last notify (0 when the clock went backwards).
    pub fn age(&self, now: SystemTime) -> f64 {
        now.duration_since(self.changed)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
    }
}

/// True for the name Gunicorn's `WorkerTmp` gives its heartbeat file.
pub fn is_heartbeat_name(link: &str) -> bool {
    let name = link.rsplit('/').next().unwrap_or(link);
    name.starts_with("wgunicorn-")
}

pub fn heartbeat(pid: u32) -> Result<Option<Heartbeat>, ProcError> {
    use std::os::unix::fs::MetadataExt;
    for entry in fs::read_dir(proc_path(pid, "fd"))? {
        let entry = entry?;
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if !is_heartbeat_name(&target) {
            continue;
        }
        let meta = fs::metadata(entry.path())?;
        let changed = SystemTime::UNIX_EPOCH
            + Duration::new(
                u64::try_from(meta.ctime()).unwrap_or(0),
                u32::try_from(meta.ctime_nsec()).unwrap_or(0),
            );
        return Ok(Some(Heartbeat {
            path: target,
            changed,
        }));
    }
    Ok(None)
}

/// Every Gunicorn heartbeat file the process holds open, with its inode: a worker holds its own,
/// and, for a moment after it was forked, its siblings' (inherited from the master). Read anew
/// on every call: fd numbers are reused, so nothing may be remembered by fd.
pub fn heartbeat_files(pid: u32) -> Result<Vec<(u64, Heartbeat)>, ProcError> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for entry in fs::read_dir(proc_path(pid, "fd"))? {
        let entry = entry?;
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if !is_heartbeat_name(&target) {
            continue;
        }
        // The fd may have been closed since it was listed.
        let Ok(meta) = fs::metadata(entry.path()) else {
            continue;
        };
        let changed = SystemTime::UNIX_EPOCH
            + Duration::new(
                u64::try_from(meta.ctime()).unwrap_or(0),
                u32::try_from(meta.ctime_nsec()).unwrap_or(0),
            );
        if out.iter().all(|(inode, _)| *inode != meta.ino()) {
            out.push((
                meta.ino(),
                Heartbeat {
                    path: target,
                    changed,
                },
            ));
        }
    }
    Ok(out)
}

/// The direct children of `pid` from `/proc/PID/task/*/children` (one small read per thread,
/// no scan of every process); None when the kernel does not provide that file.
pub fn task_children(pid: u32) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for task in fs::read_dir(proc_path(pid, "task")).ok()? {
        let text = fs::read_to_string(task.ok()?.path().join("children")).ok()?;
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// One TCP connection of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConnection {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// The process's established TCP connections (its fds matched against its net namespace's
/// `/proc/PID/net/tcp{,6}`).
pub fn tcp_connections(pid: u32) -> Result<Vec<TcpConnection>, ProcError> {
    let inodes = socket_inodes(pid)?;
    let mut out = Vec::new();
    for table in ["net/tcp", "net/tcp6"] {
        let Ok(text) = fs::read_to_string(proc_path(pid, table)) else {
            continue;
        };
        out.extend(
            parse_net_tcp(&text)
                .into_iter()
                .filter(|(inode, _)| inodes.contains(inode))
                .map(|(_, c)| c),
        );
    }
    Ok(out)
}

/// The inodes of the sockets among the process's fds.
fn socket_inodes(pid: u32) -> Result<HashSet<u64>, ProcError> {
    let mut inodes = HashSet::new();
    for entry in fs::read_dir(proc_path(pid, "fd"))? {
        let Ok(target) = fs::read_link(entry?.path()) else {
            continue;
        };
        if let Some(inode) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok())
        {
            inodes.insert(inode);
        }
    }
    Ok(inodes)
}

/// The TCP ports the process listens on (sockets in state LISTEN among its fds: a Gunicorn
/// worker's inherited listeners).
pub fn listening_ports(pid: u32) -> Result<Vec<u16>, ProcError> {
    let inodes = socket_inodes(pid)?;
    let mut ports = Vec::new();
    for table in ["net/tcp", "net/tcp6"] {
        let Ok(text) = fs::read_to_string(proc_path(pid, table)) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let listening = f.get(3) == Some(&"0A");
            let inode = f.get(9).and_then(|i| i.parse::<u64>().ok());
            if let (true, Some(inode), Some(local)) =
                (listening, inode, f.get(1).and_then(|a| parse_hex_addr(a)))
                && inodes.contains(&inode)
            {
                ports.push(local.port());
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}

/// Parses `/proc/net/tcp` or `tcp6`: established connections (state 01) with their inode.
pub fn parse_net_tcp(text: &str) -> Vec<(u64, TcpConnection)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3) != Some(&"01") {
                return None;
            }
            let local = parse_hex_addr(f.get(1)?)?;
            let remote = parse_hex_addr(f.get(2)?)?;
            let inode = f.get(9)?.parse().ok()?;
            Some((inode, TcpConnection { local, remote }))
        })
        .collect()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits + port (IPv6); each 32-bit word is in host order.
fn parse_hex_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(addr, 16).ok()?.swap_bytes(),
        )),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16).ok()?;
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_of_this_process_is_listed_and_its_accepted_connection_is_local_to_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        assert!(listening_ports(me).unwrap().contains(&port));
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let inbound = tcp_connections(me)
            .unwrap()
            .into_iter()
            .filter(|c| c.local.port() == port)
            .count();
        assert_eq!(inbound, 1, "the accepted side, not the client's");
    }

    #[test]
    fn stat_with_spaces_and_parens_in_the_name() {
        let line = "4242 (gunicorn: wor) ker) S 4200 4200 4200 0 -1 4194560 9051 0 17 0 \
                    120 35 0 0 20 0 1 0 123456 100000000 9000 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 4200);
        assert_eq!(s.major_faults, 17);
        assert_eq!(s.cpu_ticks, 155);
    }

    #[test]
    fn own_stat_and_memory_are_readable() {
        let me = std::process::id();
        let s = stat(me).unwrap();
        assert!(matches!(s.state, 'R' | 'S'));
        assert!(memory(me).unwrap().rss_bytes > 0);
        assert!(matches!(stat(u32::MAX - 1), Err(ProcError::NotFound)));
    }

    #[test]
    fn status_memory_lines() {
        let m = parse_status_memory("Name:\tpython\nVmRSS:\t   51200 kB\nVmSwap:\t    1024 kB\n");
        assert_eq!(m.rss_bytes, 51200 * 1024);
        assert_eq!(m.swap_bytes, 1024 * 1024);
        assert_eq!(
            parse_status_memory("Name: kthreadd\n"),
            MemoryUse::default()
        );
    }

    #[test]
    fn net_tcp_lines() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:A1B2 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 998877 1 0000000000000000 20 4 30 10 -1\n\
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 112233 1 0000000000000000 100 0 0 10 0\n";
        let conns = parse_net_tcp(text);
        assert_eq!(conns.len(), 1, "only established connections");
        let (inode, c) = conns[0];
        assert_eq!(inode, 998877);
        assert_eq!(c.local, "127.0.0.1:41394".parse().unwrap());
        assert_eq!(c.remote, "127.0.0.1:5432".parse().unwrap());
        let v6 = "sl local rem st\n 0: 0000000000000000FFFF00000100007F:A1B2 00000000000000000000000001000000:1538 01 0:0 0:0 0 0 0 4455 1\n";
        let (_, c6) = parse_net_tcp(v6)[0];
        assert_eq!(c6.local, "127.0.0.1:41394".parse().unwrap());
        assert_eq!(c6.remote, "[::1]:5432".parse().unwrap());
    }

    #[test]
    fn heartbeat_names() {
        assert!(is_heartbeat_name("/tmp/wgunicorn-k2x9_a (deleted)"));
        assert!(is_heartbeat_name("/dev/shm/wgunicorn-abc"));
        assert!(!is_heartbeat_name("/tmp/other (deleted)"));
    }
}
