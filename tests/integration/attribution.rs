//! What a worker's end proves (ATTRIBUTION.md), checked on real runs: a worker that ran its
//! abort handler (`Worker exiting` or an abort traceback after its timeout) was in Python code,
//! never blocked in the database driver's wait, so no PostgreSQL activity joined by time alone
//! may name `lock_wait`, `slow_query` or `deadlock` for it, with or without a SIGKILL after
//! its exit; and a time match that fits several workers names none.

use serde_json::Value;

use crate::common::{TempDir, fixture, wtdiag};

const DATABASE_CAUSES: [&str; 3] = ["lock_wait", "slow_query", "deadlock"];

/// The Gunicorn 20.1 run of the fixture lab: worker 6481 served `/db/nplus1`, timed out at
/// 23:05:17 and logged `Worker exiting`; backend 7559's lock wait (`/db/lock`, worker 7398)
/// spans 23:05:17.4 to 23:05:22. Without PostgreSQL's `connection to client lost` lines only
/// time ties the two logs.
fn pg_log_without_links(tmp: &TempDir) -> String {
    let text = std::fs::read_to_string(fixture("gunicorn/postgres-20.1.0.log")).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.contains("connection to client lost"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = tmp.join("postgres-no-links.log");
    std::fs::write(&path, kept).unwrap();
    path.to_str().unwrap().to_string()
}

/// The 20.1 error log with only the lines `keep` accepts.
fn error_log_with(
    tmp: &TempDir,
    name: &str,
    keep: impl Fn(&str) -> bool,
    extra: &[&str],
) -> String {
    let text = std::fs::read_to_string(fixture("gunicorn/gunicorn-20.1.0.log")).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if keep(line) {
            out.push_str(line);
            out.push('\n');
        }
        if line.contains("Worker exiting (pid: 6481)") {
            for e in extra {
                out.push_str(e);
                out.push('\n');
            }
        }
    }
    let path = tmp.join(name);
    std::fs::write(&path, out).unwrap();
    path.to_str().unwrap().to_string()
}

fn database_findings_for(json: &Value, pid: u64) -> Vec<String> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| DATABASE_CAUSES.contains(&f["cause"].as_str().unwrap()))
        .filter(|f| f["pids"].as_array().unwrap().iter().any(|p| *p == pid))
        .map(|f| f["title"].as_str().unwrap().to_string())
        .collect()
}

fn logs(error_log: &str, pg_log: &str) -> Value {
    let run = wtdiag(&["logs", error_log, "--pg-log", pg_log, "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()
}

#[test]
fn a_worker_that_logged_worker_exiting_never_gets_a_database_cause_by_time() {
    let tmp = TempDir::new("attr-exiting");
    let pg = pg_log_without_links(&tmp);
    // Worker 6481 alone: its timeout falls inside backend 7559's lock wait, nothing else
    // competes for it, and it logged `Worker exiting`.
    let only_6481 = error_log_with(
        &tmp,
        "only-6481.log",
        |l| {
            !(l.contains("TIMEOUT") || l.contains("signal 9") || l.contains("exiting"))
                || l.contains("6481")
        },
        &[],
    );
    let json = logs(&only_6481, &pg);
    assert!(
        database_findings_for(&json, 6481).is_empty(),
        "{}",
        json["findings"]
    );
    let finding = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["pids"].as_array().unwrap().iter().any(|p| *p == 6481))
        .expect("a finding for 6481");
    let reason = finding["reason"].as_str().unwrap();
    assert!(reason.contains("exited through Python"), "{reason}");

    // The same with a SIGKILL after its exit (the exit outlasted the master's next pass).
    let killed_after_exit = error_log_with(
        &tmp,
        "6481-killed.log",
        |l| {
            !(l.contains("TIMEOUT") || l.contains("signal 9") || l.contains("exiting"))
                || l.contains("6481")
        },
        &[
            "[2026-11-26 23:05:18 +0000] [6433] [WARNING] Worker with pid 6481 was terminated due to signal 9",
        ],
    );
    let json = logs(&killed_after_exit, &pg);
    assert!(
        database_findings_for(&json, 6481).is_empty(),
        "{}",
        json["findings"]
    );
    assert!(
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["cause"] != "memory"),
        "{}",
        json["findings"]
    );
}

#[test]
fn a_lock_wait_that_spans_several_killed_workers_names_none_of_them() {
    let tmp = TempDir::new("attr-ambiguous");
    let pg = pg_log_without_links(&tmp);
    let json = logs(
        fixture("gunicorn/gunicorn-20.1.0.log").to_str().unwrap(),
        &pg,
    );
    // 6483 (/hash, a GIL-holding C call), 7398 (/db/lock, the real waiter) and 7404 (/db/slow)
    // were all SIGKILLed while backend 7559 waited: time cannot tell them apart.
    for pid in [6481, 6483, 7398, 7404] {
        assert!(
            database_findings_for(&json, pid).is_empty(),
            "{pid}: {}",
            json["findings"]
        );
    }
    let note = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "pg_ambiguous")
        .expect("a pg_ambiguous note");
    let message = note["message"].as_str().unwrap();
    assert!(
        message.contains("6483") && message.contains("7398"),
        "{message}"
    );
    assert!(!message.contains("6481"), "{message}");

    // With the real logs (the lost clients tie each backend to its worker) the lock wait is
    // 7398's.
    let json = logs(
        fixture("gunicorn/gunicorn-20.1.0.log").to_str().unwrap(),
        fixture("gunicorn/postgres-20.1.0.log").to_str().unwrap(),
    );
    assert_eq!(
        database_findings_for(&json, 7398).len(),
        1,
        "{}",
        json["findings"]
    );
    assert!(database_findings_for(&json, 6481).is_empty());
}

#[test]
fn under_gthread_no_timeout_gets_a_database_or_io_cause() {
    // The 20.1 run's log as a gthread deployment would start it (`Using worker: gthread`, the
    // line arbiter.py writes from `worker_class_str`); the PostgreSQL log with its lost
    // clients, which under sync tie backend 7559's lock wait to worker 7398. Under gthread a
    // request waiting on a lock releases the GIL and the main thread keeps notifying the
    // master: no timeout is a lock wait, a slow query or an outbound call.
    let tmp = TempDir::new("attr-gthread");
    let text = std::fs::read_to_string(fixture("gunicorn/gunicorn-20.1.0.log")).unwrap();
    assert!(text.contains("Using worker: sync"));
    let path = tmp.join("gthread.log");
    std::fs::write(
        &path,
        text.replace("Using worker: sync", "Using worker: gthread"),
    )
    .unwrap();
    let json = logs(
        path.to_str().unwrap(),
        fixture("gunicorn/postgres-20.1.0.log").to_str().unwrap(),
    );
    for f in json["findings"].as_array().unwrap() {
        let cause = f["cause"].as_str().unwrap();
        assert!(
            !DATABASE_CAUSES.contains(&cause) && cause != "missing_api_timeout",
            "{f}"
        );
        if f["title"].as_str().unwrap().contains("worker timeout") {
            assert!(f["reason"].as_str().unwrap().contains("gthread"), "{f}");
        }
    }
}
