//! Small versions of the worst shapes of the adversarial scale suite
//! (`bench/adversarial/gen.py`, timed at scale by `bench/adversarial/run.sh`): each run must end
//! well inside a generous limit, without a panic, with the report it should give. A
//! super-linear path or a panic on a hostile line fails here before it lands.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::{Run, TempDir, root, wtdiag, wtdiag_within};

/// Far above what these sizes take (well under a second in a debug build), far below what a
/// quadratic or exponential path takes on them.
const LIMIT: Duration = Duration::from_secs(20);

/// Writes the inputs of `shape` at size `n` into `dir`; returns wtdiag's arguments.
fn generate(shape: &str, n: usize, dir: &Path) -> Vec<String> {
    let out = Command::new("python3")
        .arg(root().join("bench/adversarial/gen.py"))
        .args([shape, &n.to_string()])
        .arg(dir)
        .output()
        .expect("python3 is needed to generate the worst shapes");
    assert!(
        out.status.success(),
        "gen.py {shape}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("gen.py prints paths")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Generates `shape` and runs wtdiag on it with `--format json`, within the limit.
fn run_shape(shape: &str, n: usize, tmp: &TempDir) -> (Run, Value) {
    run_shape_within(shape, n, tmp, LIMIT)
}

fn run_shape_within(shape: &str, n: usize, tmp: &TempDir, limit: Duration) -> (Run, Value) {
    let mut args = generate(shape, n, tmp.path());
    args.extend(["--format".into(), "json".into(), "--no-progress".into()]);
    let run = wtdiag_within(&args, limit);
    assert!(
        !run.stderr.contains("panicked"),
        "{shape}: panic\n{}",
        run.stderr
    );
    assert_eq!(run.code, 0, "{shape}: exit code\n{}", run.stderr);
    let json = run.json();
    (run, json)
}

fn findings_of<'a>(json: &'a Value, cause: &str) -> Vec<&'a Value> {
    json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["cause"] == cause)
        .collect()
}

/// How many timeouts, kills or statements the findings explain together.
fn counted_by_findings(json: &Value) -> u64 {
    json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["count"].as_u64().unwrap())
        .sum()
}

fn warning_codes(json: &Value) -> Vec<String> {
    json["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w["code"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_lock_storm_of_hundreds_of_waits_is_one_lock_finding_with_a_bounded_title() {
    let tmp = TempDir::new("ws-storm");
    let (_, json) = run_shape("pg-lock-storm", 600, &tmp);
    let locks = findings_of(&json, "lock_wait");
    assert!(!locks.is_empty(), "no lock_wait finding: {json}");
    for f in &locks {
        let title = f["title"].as_str().unwrap();
        assert!(title.len() < 2_000, "title of {} bytes", title.len());
    }
    assert!(
        locks
            .iter()
            .any(|f| f["title"].as_str().unwrap().contains(" more")),
        "the 50 waiters are not summarised as 'first 20 + N more': {locks:?}"
    );
}

#[test]
fn lock_timeouts_long_holders_and_many_backends_finish_quickly() {
    for (shape, n) in [
        ("pg-lock-timeouts", 3_000),
        ("pg-long-holder", 3_000),
        ("pg-n1-backends", 5_000),
        ("pg-autoexplain", 2_000),
    ] {
        let tmp = TempDir::new(&format!("ws-{shape}"));
        let (_, json) = run_shape(shape, n, &tmp);
        assert!(json["inputs"][0]["lines"].as_u64().unwrap() > n as u64);
    }
}

#[test]
fn a_raise_log_that_reads_like_a_lock_wait_is_not_a_lock_wait() {
    let tmp = TempDir::new("ws-raise");
    let (_, json) = run_shape("pg-raise-log", 200, &tmp);
    assert!(findings_of(&json, "lock_wait").is_empty(), "{json}");
}

#[test]
fn absurd_durations_are_skipped_and_counted() {
    let tmp = TempDir::new("ws-absurd");
    let (_, json) = run_shape("pg-absurd-durations", 60, &tmp);
    let input = &json["inputs"][0];
    // Every odd duration and every odd lock wait: 2 of each 3 messages.
    assert_eq!(input["skipped_lines"], 120, "{input}");
    let reason = input["skipped"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("duration out of range"), "{reason}");
    // The ordinary 1.2 s statements are still read.
    assert_eq!(findings_of(&json, "slow_query")[0]["count"], 60);
}

#[test]
fn huge_traceback_lines_are_read_and_shown_cut() {
    let tmp = TempDir::new("ws-huge");
    let (_, json) = run_shape("logs-huge-traceback-lines", 20, &tmp);
    let cpu = findings_of(&json, "cpu_bound");
    assert_eq!(cpu.len(), 1, "{json}");
    assert_eq!(cpu[0]["count"], 20);
    for f in json["findings"].as_array().unwrap() {
        assert!(f["title"].as_str().unwrap().len() < 1_000);
        assert!(f["reason"].as_str().unwrap().len() < 1_000);
    }
}

#[test]
fn kills_with_a_lost_client_each_are_joined_to_their_backend() {
    let tmp = TempDir::new("ws-kills");
    let (_, json) = run_shape("logs-kills-client-lost", 2_000, &tmp);
    let slow = findings_of(&json, "slow_query");
    let joined: u64 = slow.iter().map(|f| f["count"].as_u64().unwrap()).sum();
    assert_eq!(joined, 2_000, "{slow:?}");
}

#[test]
fn incidents_against_many_lock_waits_and_big_statements_finish_quickly() {
    let tmp = TempDir::new("ws-vs-waits");
    let (_, json) = run_shape("logs-incidents-vs-lock-waits", 20_000, &tmp);
    assert_eq!(json["summary"]["worker_timeout"], 10_000);
    let tmp = TempDir::new("ws-big-sql");
    let (run, json) = run_shape("logs-big-statements", 20, &tmp);
    assert!(
        run.stdout.len() < 2 << 20,
        "{} bytes of JSON",
        run.stdout.len()
    );
    let counted = counted_by_findings(&json);
    assert_eq!(counted, 20, "{json}");
}

#[test]
fn aborted_requests_to_one_path_with_different_queries_are_one_finding() {
    let tmp = TempDir::new("ws-paths");
    let (_, json) = run_shape("logs-aborted-paths", 500, &tmp);
    let cpu = findings_of(&json, "cpu_bound");
    assert_eq!(cpu.len(), 1, "{cpu:?}");
    assert_eq!(cpu[0]["count"], 500);
    assert_eq!(cpu[0]["request"], "GET /orders/export");
}

#[test]
fn an_access_log_of_more_endpoints_than_kept_counts_every_request() {
    let tmp = TempDir::new("ws-access");
    let (_, json) = run_shape("logs-access-paths", 12_000, &tmp);
    // 12,000 endpoints: 5,000 measured one by one, the rest counted out with a note; what
    // clients saw counts them all.
    let codes: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"endpoints_capped"), "{codes:?}");
    assert_eq!(json["client_impact"]["requests"], 12_000);
    assert_eq!(json["client_impact"]["by_status"]["502"], 1_200);
    assert_eq!(json["endpoints"].as_array().unwrap().len(), 20);
}

#[test]
fn more_rotated_files_than_descriptors_are_read_one_at_a_time() {
    let tmp = TempDir::new("ws-files");
    let args = generate("logs-many-files", 120, tmp.path());
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec '{}' {} --format json --no-progress",
            env!("CARGO_BIN_EXE_wtdiag"),
            quoted.join(" ")
        ))
        .output()
        .expect("sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["inputs"].as_array().unwrap().len(), 120);
    assert_eq!(json["summary"]["worker_timeout"], 120);
}

#[test]
fn the_same_log_given_twice_is_read_once_with_a_note() {
    let log = root().join("fixtures/gunicorn/gunicorn-27.0.1.log");
    let once = wtdiag(&["logs", log.to_str().unwrap(), "--format", "json"]).json();
    let tmp = TempDir::new("ws-dup");
    let copy = tmp.join("copy.log");
    std::fs::copy(&log, &copy).unwrap();
    let twice = wtdiag(&[
        "logs",
        log.to_str().unwrap(),
        copy.to_str().unwrap(),
        log.to_str().unwrap(),
        "--format",
        "json",
    ])
    .json();
    assert_eq!(twice["summary"], once["summary"]);
    assert_eq!(twice["inputs"].as_array().unwrap().len(), 1);
    let codes = warning_codes(&twice);
    assert_eq!(
        codes.iter().filter(|c| *c == "duplicate_input").count(),
        2,
        "{codes:?}"
    );
}

#[test]
fn a_log_with_cr_line_endings_reads_like_the_same_log_with_lf() {
    let log = root().join("fixtures/gunicorn/gunicorn-27.0.1.log");
    let lf = wtdiag(&["logs", log.to_str().unwrap(), "--format", "json"]).json();
    let tmp = TempDir::new("ws-cr");
    let cr = tmp.join("cr.log");
    let bytes: Vec<u8> = std::fs::read(&log)
        .unwrap()
        .into_iter()
        .map(|b| if b == b'\n' { b'\r' } else { b })
        .collect();
    std::fs::write(&cr, bytes).unwrap();
    let crs = wtdiag(&["logs", cr.to_str().unwrap(), "--format", "json"]).json();
    assert_eq!(crs["summary"], lf["summary"]);
    let causes = |j: &Value| -> Vec<(String, u64)> {
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["cause"].to_string(), f["count"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(causes(&crs), causes(&lf));
}

#[test]
fn incidents_past_the_cap_are_counted_not_kept() {
    let tmp = TempDir::new("ws-cap");
    // Each is a timeout, its worker's exit and the next boot; 100,000 are kept one by one.
    // About 8 s in a debug build; a quadratic pass over 100,000 incidents takes hours.
    let (_, json) = run_shape_within("logs-incident-memory", 100_500, &tmp, LIMIT * 4);
    assert_eq!(json["summary"]["worker_timeout"], 100_500);
    let counted = counted_by_findings(&json);
    assert_eq!(counted, 100_500);
    assert!(warning_codes(&json).contains(&"incidents_capped".to_string()));
}

#[test]
fn lines_repeating_the_prefix_separators_are_skipped_quickly() {
    let tmp = TempDir::new("ws-prefix");
    let (_, json) = run_shape("pg-prefix-backtracking", 2_000, &tmp);
    let input = &json["inputs"][0];
    assert_eq!(input["skipped_lines"], 2_000, "{input}");
    // The 20 well-formed lines are still read.
    assert_eq!(findings_of(&json, "slow_query")[0]["count"], 20);
}
