//! Bad input never panics and never yields a silently partial report: it is refused with one
//! line and exit code 2, or read with what was skipped counted in the report.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::common::{TempDir, events_of, fixture, gzip, wtdiag, wtdiag_stdin};

/// Exit 2, exactly one line on stderr naming `what`, nothing on stdout, no panic.
fn assert_refused(args: &[&str], what: &str) -> String {
    let run = wtdiag(args);
    assert_eq!(
        run.code, 2,
        "wtdiag {args:?} should fail with 2; stderr: {}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "no report on a refused input: {}",
        run.stdout
    );
    assert_eq!(run.stderr.lines().count(), 1, "one line: {:?}", run.stderr);
    assert!(
        run.stderr.contains(what),
        "stderr should name {what:?}: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run.stderr
}

fn real_log() -> Vec<u8> {
    std::fs::read(fixture("gunicorn/gunicorn-27.0.1.log")).unwrap()
}

#[test]
fn missing_file() {
    let err = assert_refused(
        &["logs", "/nonexistent/error.log"],
        "/nonexistent/error.log",
    );
    assert!(err.contains("no such file"));
}

#[test]
fn directory() {
    let dir = TempDir::new("dir-input");
    let err = assert_refused(&["logs", dir.path().to_str().unwrap()], "is a directory");
    assert!(
        err.contains("error.log*"),
        "should say what to give instead: {err}"
    );
}

#[test]
fn permission_denied() {
    let dir = TempDir::new("perm");
    let path = dir.join("error.log");
    std::fs::write(&path, real_log()).unwrap();
    let status = Command::new("chmod")
        .arg("000")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    // root reads any file: drop to `nobody` for this check.
    let is_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut cmd = if is_root {
        let dir_mode = Command::new("chmod")
            .arg("755")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(dir_mode.success());
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        c.arg(env!("CARGO_BIN_EXE_wtdiag"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_wtdiag"))
    };
    let out = cmd.arg("logs").arg(&path).output().expect("run wtdiag");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn binary_garbage() {
    let dir = TempDir::new("binary");
    let path = dir.join("core");
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, garbage).unwrap();
    let err = assert_refused(&["logs", path.to_str().unwrap()], "binary");
    assert!(err.contains(path.to_str().unwrap()), "{err}");
}

#[test]
fn corrupt_and_truncated_gzip() {
    let dir = TempDir::new("corrupt-gz");
    let mut gz = gzip(&real_log());
    // Truncate a rotated log mid-stream, as a full disk would.
    gz.truncate(gz.len() / 2);
    let truncated = dir.join("error.log.2.gz");
    std::fs::write(&truncated, &gz).unwrap();
    let err = assert_refused(&["logs", truncated.to_str().unwrap()], "gzip");
    assert!(err.contains("gzip -t"), "{err}");
    // Flip bytes in the middle of the deflate stream.
    let mut flipped = gzip(&real_log());
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 64] {
        *b ^= 0xa5;
    }
    let corrupt = dir.join("error.log.3.gz");
    std::fs::write(&corrupt, &flipped).unwrap();
    assert_refused(&["logs", corrupt.to_str().unwrap()], "error.log.3.gz");
}

#[test]
fn empty_file_is_a_report_with_a_warning() {
    let dir = TempDir::new("empty");
    let path = dir.join("error.log");
    std::fs::write(&path, b"").unwrap();
    let run = wtdiag(&["logs", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["inputs"][0]["lines"], 0);
    assert_eq!(report["warnings"][0]["code"], "empty_input");
    assert!(report["findings"].as_array().unwrap().is_empty());
    let table = wtdiag(&["logs", path.to_str().unwrap()]);
    assert!(table.stdout.contains("is empty"), "{}", table.stdout);
}

#[test]
fn invalid_utf8_is_read_and_counted() {
    let mut data = real_log();
    // A worker's traceback line with Latin-1 bytes, as a misconfigured locale writes them.
    let at = data.windows(10).position(|w| w == b"Traceback ").unwrap();
    data.splice(at..at, b"caf\xe9 \xff\xfe garbage line\n".iter().copied());
    let run = wtdiag_stdin(&["logs", "--format", "json", "-"], &data);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["inputs"][0]["lossy_lines"], 1);
    assert_eq!(events_of(&report, "worker_timeout").len(), 7);
}

#[test]
fn fifty_megabyte_line_is_skipped_and_counted() {
    let dir = TempDir::new("huge-line");
    let path = dir.join("error.log");
    let log = real_log();
    let mut data = Vec::with_capacity(log.len() + (50 << 20));
    let half = log.len() / 2;
    let cut = half + log[half..].iter().position(|&b| b == b'\n').unwrap() + 1;
    data.extend_from_slice(&log[..cut]);
    data.extend(std::iter::repeat_n(b'A', 50 << 20));
    data.push(b'\n');
    data.extend_from_slice(&log[cut..]);
    std::fs::write(&path, &data).unwrap();
    let run = wtdiag(&["logs", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let input = &report["inputs"][0];
    assert_eq!(input["skipped_lines"], 1);
    assert_eq!(input["skipped"][0]["reason"], "line longer than 1 MiB");
    let line_no = log[..cut].iter().filter(|&&b| b == b'\n').count() + 1;
    assert_eq!(input["skipped"][0]["first_line"], line_no as u64);
    assert_eq!(
        events_of(&report, "worker_timeout").len(),
        7,
        "the rest is still read"
    );
    let table = wtdiag(&["logs", path.to_str().unwrap()]);
    assert!(
        table.stdout.contains("skipped:") && table.stdout.contains("longer than 1 MiB"),
        "{}",
        table.stdout
    );
}

#[test]
fn truncated_last_line_is_still_read() {
    let log = real_log();
    let text = String::from_utf8(log).unwrap();
    let last_timeout = text.rfind("WORKER TIMEOUT").unwrap();
    let end = last_timeout + text[last_timeout..].find('\n').unwrap();
    // The log ends right after the last WORKER TIMEOUT record, without its newline.
    let run = wtdiag_stdin(&["logs", "--format", "json", "-"], &text.as_bytes()[..end]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(events_of(&report, "worker_timeout").len(), 7);
}

#[test]
fn stdin_twice_is_a_usage_error() {
    assert_refused(&["logs", "-", "-"], "stdin");
}

#[test]
fn not_a_gunicorn_log_says_so() {
    let app = fixture("gunicorn/app-27.0.1.log");
    let run = wtdiag(&["logs", "--format", "json", app.to_str().unwrap()]);
    assert_eq!(run.code, 0);
    assert_eq!(run.json()["warnings"][0]["code"], "not_gunicorn_log");
}

/// `wtdiag logs big.log | head -1` ends quietly with success.
#[test]
fn broken_pipe_is_not_an_error() {
    let dir = TempDir::new("pipe");
    let path = dir.join("error.log");
    let log = real_log();
    let mut data = Vec::new();
    for _ in 0..200 {
        data.extend_from_slice(&log);
    }
    std::fs::write(&path, &data).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wtdiag"))
        .args(["logs", "--format", "json", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // stdout is dropped here: the reader is gone, like `head` exiting.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
