//! The kernel log (`dmesg`, `dmesg -T`, `/var/log/kern.log` or syslog, `journalctl -k`): the OOM
//! killer's `Killed process N (comm)` lines (mm/oom_kill.c `__oom_kill_process`: "%s: Killed
//! process %d (%s) total-vm:..." with "Out of memory" or "Memory cgroup out of memory"). A
//! worker pid there is what turns a Gunicorn SIGKILL into a proven out-of-memory kill.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};

use crate::parse::number::leading_u32;

/// One OOM kill.
#[derive(Debug, Clone, PartialEq)]
pub struct OomKill {
    pub pid: u32,
    /// The process name the kernel gives (`gunicorn`, `python3`, ...).
    pub comm: String,
    /// The memory cgroup's limit, not the whole machine, was reached (a container limit).
    pub cgroup: bool,
    /// Wall-clock time when the line has one (`dmesg -T`, syslog, journal); `dmesg`'s seconds
    /// since boot are not one.
    pub time: Option<DateTime<FixedOffset>>,
    /// The whole line, cut to 400 bytes, for evidence.
    pub text: String,
}

const KILLED: &str = "Killed process ";

/// True when the first lines look like a kernel log: `dmesg`'s `[ 3549.548683] ` or a syslog /
/// journal line from `kernel:`.
pub fn looks_like_kernel_log(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let lines: Vec<&str> = text.lines().take(50).collect();
    let kernel = lines
        .iter()
        .filter(|l| dmesg_uptime(l).is_some() || l.contains(" kernel: ") || dmesg_t(l).is_some())
        .count();
    !lines.is_empty() && kernel * 2 > lines.len()
}

/// The OOM kill a line reports, if any. `offset` is the zone for times written without one.
pub fn parse_line(line: &str, offset: FixedOffset) -> Option<OomKill> {
    let at = line.find(KILLED)?;
    let before = &line[..at];
    if !(before.ends_with("out of memory: ") || before.ends_with("Out of memory: ")) {
        return None;
    }
    let rest = &line[at + KILLED.len()..];
    let pid = leading_u32(rest.as_bytes())?;
    let comm = rest
        .split_once(" (")
        .and_then(|(_, c)| c.split_once(')'))
        .map(|(c, _)| c.to_string())
        .unwrap_or_default();
    Some(OomKill {
        pid,
        comm,
        cgroup: before.ends_with("Memory cgroup out of memory: "),
        time: wall_time(line, offset),
        text: super::cap(line, 400).to_string(),
    })
}

/// `[ 3549.548683] ` at the start: seconds since boot, always with six decimals (printk's
/// `[%5lu.%06lu]`), which tells it from `[1] [CRITICAL] ...` (a Gunicorn record without time).
fn dmesg_uptime(line: &str) -> Option<f64> {
    let inner = line.strip_prefix('[')?.split_once(']')?.0.trim();
    let (secs, micros) = inner.split_once('.')?;
    if micros.len() != 6
        || secs.is_empty()
        || !(secs.bytes().chain(micros.bytes())).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    inner.parse::<f64>().ok().filter(|s| s.is_finite())
}

/// `[Wed Dec  2 11:31:46 2026] ` at the start (`dmesg -T`, local time without a zone).
fn dmesg_t(line: &str) -> Option<NaiveDateTime> {
    let inner = line.strip_prefix('[')?.split_once(']')?.0;
    let words: Vec<&str> = inner.split_whitespace().collect();
    if words.len() != 5 {
        return None;
    }
    NaiveDateTime::parse_from_str(&words[1..].join(" "), "%b %d %H:%M:%S %Y").ok()
}

fn wall_time(line: &str, offset: FixedOffset) -> Option<DateTime<FixedOffset>> {
    if let Some(naive) = dmesg_t(line) {
        return offset.from_local_datetime(&naive).single();
    }
    // journalctl -o short-iso / RFC 3339 syslog: `2026-12-02T11:31:46+0000 host kernel: ...`.
    if let Some(word) = line.split_whitespace().next()
        && word.len() >= 19
        && word.as_bytes()[4] == b'-'
        && let Some(t) = crate::parse::timestamp::parse(&word.replace('T', " "))
    {
        return Some(t);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    #[test]
    fn reads_the_oom_killers_line_in_every_shape() {
        let raw = "[ 3549.549123] Memory cgroup out of memory: Killed process 19106 (gunicorn) total-vm:173644kB, anon-rss:142112kB, file-rss:4844kB, shmem-rss:0kB, UID:0 pgtables:352kB oom_score_adj:0";
        let k = parse_line(raw, utc()).unwrap();
        assert_eq!(
            (k.pid, k.comm.as_str(), k.cgroup, k.time),
            (19106, "gunicorn", true, None)
        );
        let t =
            "[Wed Dec  2 11:31:46 2026] Out of memory: Killed process 77 (python3) total-vm:1kB";
        let k = parse_line(t, utc()).unwrap();
        assert!(!k.cgroup);
        assert_eq!(k.time.unwrap().to_rfc3339(), "2026-12-02T11:31:46+00:00");
        assert!(
            parse_line(
                "[ 1.0] oom-kill:constraint=CONSTRAINT_MEMCG,task=gunicorn,pid=19106",
                utc()
            )
            .is_none()
        );
        assert!(parse_line("Killed process 5 (x)", utc()).is_none());
    }

    #[test]
    fn tells_a_kernel_log_from_others() {
        assert!(looks_like_kernel_log(
            b"[ 3549.548683] gunicorn invoked oom-killer: gfp_mask=0xcc0\n[ 3549.548710] CPU: 0\n"
        ));
        assert!(!looks_like_kernel_log(
            b"[2026-12-02 11:31:46 +0000] [19091] [INFO] Starting gunicorn 27.0.1\n"
        ));
    }
}
