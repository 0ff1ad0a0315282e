//! `wtdiag logs` on real Gunicorn error logs of every version (fixtures/gunicorn, made by
//! fixtures/gunicorn/make.sh), checked against the ground truth recorded beside each log.

use std::path::{Path, PathBuf};

use chrono::DateTime;
use serde_json::Value;

use crate::common::{TempDir, events_of, fixture, gzip, wtdiag, wtdiag_stdin};

/// Every `*.expect.json` of a real run (not the boot-failure ones).
fn run_fixtures() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixture("gunicorn")).expect("fixtures/gunicorn") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".expect.json") {
            continue;
        }
        let expect: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if expect["kind"] == "run" {
            out.push((path, expect));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 6,
        "expected a run fixture per Gunicorn version"
    );
    out
}

fn log_of(expect: &Value) -> PathBuf {
    fixture(&format!(
        "gunicorn/{}",
        expect["error_log"].as_str().unwrap()
    ))
}

fn logs_json(args: &[&str]) -> Value {
    let mut full = vec!["logs", "--format", "json"];
    full.extend_from_slice(args);
    let run = wtdiag(&full);
    assert_eq!(run.code, 0, "wtdiag {full:?}: {}", run.stderr);
    run.json()
}

fn line_of(path: &Path, line: u64) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().nth(line as usize - 1).unwrap().to_string()
}

/// The `[2026-11-26 22:49:00 +0000]` timestamp of a Gunicorn record line.
fn record_time(line: &str) -> DateTime<chrono::FixedOffset> {
    let start = line.find('[').unwrap() + 1;
    let end = start + line[start..].find(']').unwrap();
    DateTime::parse_from_str(&line[start..end], "%Y-%m-%d %H:%M:%S %z").unwrap()
}

fn event_time(e: &Value) -> DateTime<chrono::FixedOffset> {
    DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap()
}

#[test]
fn every_version_every_timeout_and_kill_has_the_right_pid_time_and_cause() {
    for (path, expect) in run_fixtures() {
        let log = log_of(&expect);
        let report = logs_json(&[log.to_str().unwrap()]);
        let timeouts = events_of(&report, "worker_timeout");
        let kills = events_of(&report, "worker_killed");
        let name = path.display();
        let mut expected_timeouts = 0;
        for req in expect["requests"].as_array().unwrap() {
            let pid = req["pid"].as_u64().unwrap();
            let ending = req["ending"].as_str().unwrap();
            let mine_t: Vec<_> = timeouts.iter().filter(|e| e["pid"] == pid).collect();
            let mine_k: Vec<_> = kills.iter().filter(|e| e["pid"] == pid).collect();
            let what = format!(
                "{name}: {} {} (pid {pid}, {ending})",
                req["method"], req["path"]
            );
            match ending {
                "ok" => {
                    assert!(
                        mine_t.is_empty() && mine_k.is_empty(),
                        "{what}: no event expected"
                    );
                    continue;
                }
                "outside_sigkill" => {
                    assert!(mine_t.is_empty(), "{what}: no timeout expected");
                    if req["cause"].is_null() {
                        // 19.x logs nothing when a worker dies of a signal.
                        assert!(mine_k.is_empty(), "{what}: nothing in this version's log");
                        continue;
                    }
                    assert_eq!(mine_k.len(), 1, "{what}: one kill event");
                    assert_eq!(mine_k[0]["after_timeout"], false, "{what}");
                    assert_eq!(mine_k[0]["cause"], "memory", "{what}");
                    assert_eq!(mine_k[0]["signal"], "SIGKILL", "{what}");
                }
                _ => {
                    expected_timeouts += 1;
                    assert_eq!(mine_t.len(), 1, "{what}: one worker_timeout event");
                    let t = mine_t[0];
                    assert_eq!(t["cause"], req["cause"], "{what}: cause");
                    let text = line_of(&log, t["source"]["line"].as_u64().unwrap());
                    assert!(
                        text.contains(&format!("WORKER TIMEOUT (pid:{pid})")),
                        "{what}: {text}"
                    );
                    assert_eq!(event_time(t), record_time(&text), "{what}: time");
                    let kill_logged = req["expected_error_log_records"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| {
                            let m = r["message"].as_str().unwrap();
                            m.contains("was sent SIGKILL") || m.contains("due to signal 9")
                        });
                    if ending.contains("sigkill") && kill_logged {
                        assert_eq!(mine_k.len(), 1, "{what}: one kill event");
                        assert_eq!(mine_k[0]["after_timeout"], true, "{what}");
                        assert_ne!(
                            mine_k[0]["cause"], "memory",
                            "{what}: escalation is not OOM"
                        );
                        assert_eq!(mine_k[0]["cause"], req["cause"], "{what}");
                    }
                    if req["traceback_in_error_log"] == true {
                        let uri = req["uri"].as_str().unwrap();
                        assert!(
                            t["request"].as_str().unwrap_or("").ends_with(uri),
                            "{what}: request {} should name {uri}",
                            t["request"]
                        );
                        assert_eq!(t["view"]["function"], req["view"], "{what}: view");
                    }
                }
            }
        }
        assert_eq!(
            timeouts.len(),
            expected_timeouts,
            "{name}: no other WORKER TIMEOUT event"
        );
    }
}

#[test]
fn findings_rank_causes_and_escalations_are_not_oom() {
    for (path, expect) in run_fixtures() {
        let report = logs_json(&[log_of(&expect).to_str().unwrap()]);
        let outside: Vec<u64> = expect["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["ending"] == "outside_sigkill")
            .map(|r| r["pid"].as_u64().unwrap())
            .collect();
        let findings = report["findings"].as_array().unwrap();
        assert!(!findings.is_empty(), "{}", path.display());
        for (i, f) in findings.iter().enumerate() {
            assert_eq!(f["rank"], i + 1);
            assert!(!f["evidence"].as_array().unwrap().is_empty());
            assert!(!f["advice"].as_str().unwrap().is_empty());
            if f["cause"] == "memory" {
                for pid in f["pids"].as_array().unwrap() {
                    assert!(
                        outside.contains(&pid.as_u64().unwrap()),
                        "{}: pid {pid} reported as OOM but was a timeout escalation",
                        path.display()
                    );
                }
            }
        }
    }
}

#[test]
fn table_names_cause_call_site_and_escalation() {
    let run = wtdiag(&[
        "logs",
        fixture("gunicorn/gunicorn-27.0.1.log").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = &run.stdout;
    for needle in [
        "Root causes, most important first",
        "missing_api_timeout",
        "outbound HTTP call with no timeout",
        "views.py:",
        "upstream_api_view",
        "n_plus_one",
        "cpu_bound",
        "escalated to SIGKILL: stuck in native code (not an OOM kill)",
        "out of memory (kernel OOM killer)",
        "fix: Give every outbound call a timeout",
        "note [native_stall_unrefined]",
    ] {
        assert!(out.contains(needle), "table lacks {needle:?}:\n{out}");
    }
}

#[test]
fn old_gunicorn_says_how_to_see_more_and_app_log_names_requests() {
    let expect: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("gunicorn/gunicorn-20.1.0.expect.json")).unwrap(),
    )
    .unwrap();
    let log = fixture("gunicorn/gunicorn-20.1.0.log");
    let app = fixture("gunicorn/app-20.1.0.log");
    let bare = logs_json(&[log.to_str().unwrap()]);
    let codes: Vec<_> = bare["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["code"])
        .collect();
    assert!(codes.contains(&&Value::from("no_traceback")), "{codes:?}");
    let warning = bare["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "no_traceback")
        .unwrap();
    assert!(warning["message"].as_str().unwrap().contains("20.1.0"));
    assert!(warning["advice"].as_str().unwrap().contains("wtdiag live"));

    let with_app = logs_json(&[log.to_str().unwrap(), "--app-log", app.to_str().unwrap()]);
    let timeouts = events_of(&with_app, "worker_timeout");
    for req in expect["requests"].as_array().unwrap() {
        if req["ending"] == "ok" || req["ending"] == "outside_sigkill" {
            continue;
        }
        let t = timeouts
            .iter()
            .find(|e| e["pid"] == req["pid"])
            .expect("timeout event");
        let want = format!(
            "{} {}",
            req["method"].as_str().unwrap(),
            req["path"].as_str().unwrap()
        );
        assert_eq!(t["request"], Value::from(want));
    }
    let memory = with_app["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cause"] == "memory")
        .unwrap();
    assert!(
        memory["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"].as_str().unwrap().contains("/memory")),
        "the app log should name the request of the OOM-killed worker"
    );
}

#[test]
fn boot_and_app_load_failures_are_critical_and_gate_ci() {
    for entry in std::fs::read_dir(fixture("gunicorn")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with("-bootfail.log") || name.ends_with("-appfail.log")) {
            continue;
        }
        let run = wtdiag(&[
            "logs",
            "--format",
            "json",
            "--fail-on",
            "critical",
            path.to_str().unwrap(),
        ]);
        assert_eq!(
            run.code, 1,
            "{name}: a boot failure must fail --fail-on critical"
        );
        let report = run.json();
        let f = &report["findings"][0];
        assert_eq!(f["severity"], "critical", "{name}");
        assert!(
            f["title"].as_str().unwrap().contains("failed to"),
            "{name}: {}",
            f["title"]
        );
        if name.ends_with("-bootfail.log") && !name.contains("19.9") {
            assert!(
                f["title"].as_str().unwrap().contains("ModuleNotFoundError"),
                "{name}: title should name the exception: {}",
                f["title"]
            );
        }
    }
}

#[test]
fn fail_on_gates_on_severity() {
    let log = fixture("gunicorn/gunicorn-22.0.0.log");
    let log = log.to_str().unwrap();
    assert_eq!(wtdiag(&["logs", "--fail-on", "high", log]).code, 1);
    assert_eq!(wtdiag(&["logs", log]).code, 0);
    let ok = fixture("gunicorn/gunicorn-27.0.1-bootfail.log");
    // A log whose only finding is a boot failure (critical) passes a gate set above nothing.
    assert_eq!(
        wtdiag(&["logs", "--fail-on", "info", ok.to_str().unwrap()]).code,
        1
    );
}

/// The same log as a file, gzip'd, and on stdin gives the same JSON but for the input's name.
#[test]
fn plain_gzip_and_stdin_give_identical_json() {
    let plain_path = fixture("gunicorn/gunicorn-27.0.1.log");
    let data = std::fs::read(&plain_path).unwrap();
    let dir = TempDir::new("three-ways");
    // A rotated name without .gz: the magic bytes, not the name, say it is gzip.
    let gz_path = dir.join("error.log.2");
    std::fs::write(&gz_path, gzip(&data)).unwrap();

    let plain = normalise_input(logs_json(&[plain_path.to_str().unwrap()]));
    let gz = normalise_input(logs_json(&[gz_path.to_str().unwrap()]));
    let stdin_run = wtdiag_stdin(&["logs", "--format", "json", "-"], &data);
    assert_eq!(stdin_run.code, 0, "{}", stdin_run.stderr);
    let stdin = normalise_input(stdin_run.json());
    assert_eq!(plain, gz);
    assert_eq!(plain, stdin);
    assert_eq!(
        logs_json(&[gz_path.to_str().unwrap()])["inputs"][0]["compressed"],
        true
    );
}

/// Replaces the one input's name (and its compressed flag) so that reports of the same log
/// read three ways can be compared.
fn normalise_input(mut report: Value) -> Value {
    let name = report["inputs"][0]["path"].as_str().unwrap().to_string();
    report["inputs"][0]["path"] = "INPUT".into();
    report["inputs"][0]["compressed"] = Value::Null;
    for e in report["events"].as_array_mut().unwrap() {
        assert_eq!(e["source"]["path"], Value::from(name.clone()));
        e["source"]["path"] = "INPUT".into();
        assert_eq!(e["origin"], Value::from(name.clone()));
        e["origin"] = "INPUT".into();
    }
    for f in report["findings"].as_array_mut().unwrap() {
        // A file's origin is the log its rotations share: `error.log` for `error.log.2`.
        for o in f["origins"].as_array_mut().unwrap() {
            assert!(name.starts_with(o.as_str().unwrap()), "{o} of {name}");
            *o = "INPUT".into();
        }
        for ev in f["evidence"].as_array_mut().unwrap() {
            if ev["path"] == name.as_str() {
                ev["path"] = "INPUT".into();
            }
        }
    }
    report
}

/// logrotate splits a log across files; given in any order they make one timeline.
#[test]
fn rotated_files_merge_in_time_order() {
    let whole_path = fixture("gunicorn/gunicorn-22.0.0.log");
    let text = std::fs::read_to_string(&whole_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Split between two records, not inside a traceback.
    let mut cut = lines.len() / 2;
    while !lines[cut].starts_with('[') {
        cut += 1;
    }
    let dir = TempDir::new("rotated");
    let older = dir.join("error.log.1.gz");
    let newer = dir.join("error.log");
    std::fs::write(&older, gzip((lines[..cut].join("\n") + "\n").as_bytes())).unwrap();
    std::fs::write(&newer, lines[cut..].join("\n") + "\n").unwrap();

    let whole = logs_json(&[whole_path.to_str().unwrap()]);
    let merged = logs_json(&[newer.to_str().unwrap(), older.to_str().unwrap()]);
    let key = |r: &Value| -> Vec<(String, u64, String, String)> {
        r["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e["pid"].as_u64().unwrap(),
                    e["time"].as_str().unwrap().to_string(),
                    e["cause"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let mut whole_key = key(&whole);
    let merged_key = key(&merged);
    let mut sorted = merged_key.clone();
    sorted.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(merged_key, sorted, "events are in time order");
    whole_key.sort();
    let mut merged_sorted = merged_key;
    merged_sorted.sort();
    assert_eq!(whole_key, merged_sorted);
    assert_eq!(
        whole["findings"].as_array().unwrap().len(),
        merged["findings"].as_array().unwrap().len()
    );
}

/// `docker logs -t` and journald prefixes in front of each record do not change the result.
#[test]
fn docker_and_journald_prefixes_parse_the_same() {
    let plain = logs_json(&[fixture("gunicorn/gunicorn-27.0.1.log").to_str().unwrap()]);
    let summary = |r: &Value| {
        let mut v: Vec<(u64, String, String)> = r["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "worker_timeout" || e["kind"] == "worker_killed")
            .map(|e| {
                (
                    e["pid"].as_u64().unwrap(),
                    e["kind"].to_string(),
                    e["cause"].to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    for derived in [
        "gunicorn/gunicorn-27.0.1.derived-docker-t.log",
        "gunicorn/gunicorn-27.0.1.derived-journalctl-short-iso.log",
        "gunicorn/gunicorn-27.0.1.derived-journalctl-short-iso-v255.log",
    ] {
        let report = logs_json(&[fixture(derived).to_str().unwrap()]);
        assert_eq!(summary(&plain), summary(&report), "{derived}");
        assert_eq!(report["inputs"][0]["skipped_lines"], 0, "{derived}");
    }
}

#[test]
fn since_and_until_limit_the_window() {
    let log = fixture("gunicorn/gunicorn-27.0.1.log");
    let all = logs_json(&[log.to_str().unwrap()]);
    let timeouts = events_of(&all, "worker_timeout");
    let second = timeouts[1]["time"].as_str().unwrap().to_string();
    let later = logs_json(&[log.to_str().unwrap(), "--since", &second]);
    let got = events_of(&later, "worker_timeout");
    assert_eq!(got.len(), timeouts.len() - 1);
    assert!(
        got.iter()
            .all(|e| event_time(e) >= DateTime::parse_from_rfc3339(&second).unwrap())
    );
    let bad = wtdiag(&["logs", log.to_str().unwrap(), "--until", "yesterday"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("--until") && bad.stderr.lines().count() == 1,
        "{}",
        bad.stderr
    );
}

/// With the PostgreSQL log of the same run, a worker stuck in the driver is told apart: the
/// row-lock wait and the long statement get their true cause; a stall outside the database
/// (OpenSSL in /hash) stays unknown; nothing else changes.
#[test]
fn pg_log_refines_workers_stuck_in_the_database() {
    for (path, expect) in run_fixtures() {
        let name = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".expect.json", "");
        let pg = fixture(&format!(
            "gunicorn/{}",
            name.replace("gunicorn-", "postgres-") + ".log"
        ));
        assert!(pg.exists(), "{}: no PostgreSQL log beside it", pg.display());
        let log = log_of(&expect);
        let plain = logs_json(&[log.to_str().unwrap()]);
        let joined = logs_json(&[log.to_str().unwrap(), "--pg-log", pg.to_str().unwrap()]);
        assert_eq!(joined["inputs"][1]["format"], "stderr", "{name}");
        let cause_of = |report: &Value, pid: &Value| {
            events_of(report, "worker_timeout")
                .into_iter()
                .find(|e| &e["pid"] == pid)
                .map(|e| e["cause"].as_str().unwrap().to_string())
        };
        for req in expect["requests"].as_array().unwrap() {
            let Some(before) = cause_of(&plain, &req["pid"]) else {
                continue;
            };
            let after = cause_of(&joined, &req["pid"]).unwrap();
            let truth = req["true_cause"].as_str().unwrap();
            let what = format!("{name}: {} (pid {})", req["path"], req["pid"]);
            let burst = name.contains("burst");
            match truth {
                "lock_wait" | "slow_query" if req["ending"] == "timeout_escalated_sigkill" => {
                    if burst && after == before {
                        // Killed in the same second as others: left alone, and said so.
                        let codes: Vec<_> = joined["warnings"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|w| w["code"].clone())
                            .collect();
                        assert!(
                            codes.contains(&Value::from("pg_ambiguous")),
                            "{what}: {codes:?}"
                        );
                    } else {
                        assert_eq!(after, truth, "{what}: the PostgreSQL log says {truth}");
                    }
                }
                _ => assert_eq!(after, before, "{what}: unchanged by the PostgreSQL log"),
            }
        }
        if name.contains("burst") {
            continue;
        }
        let lock = joined["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["cause"] == "lock_wait")
            .unwrap_or_else(|| panic!("{name}: no lock_wait finding"));
        let evidence = lock["evidence"].as_array().unwrap();
        assert!(
            evidence.iter().any(|e| e["text"]
                .as_str()
                .unwrap()
                .contains("still waiting for ShareLock")),
            "{name}: the lock wait's log line is evidence: {evidence:?}"
        );
        assert!(
            lock["reason"].as_str().unwrap().contains("held by process"),
            "{name}"
        );
    }
}

/// Django's TIME_ZONE puts the app log (no offset) and the workers' records in New York time
/// while the master logs UTC: the app log is read in the workers' zone, so a later request of
/// the same worker is not mistaken for the one that timed out.
#[test]
fn app_log_without_offset_is_read_in_the_workers_zone() {
    let log = fixture("gunicorn/gunicorn-27.0.1-tz-new-york.log");
    let app = std::fs::read_to_string(fixture("gunicorn/app-27.0.1-tz-new-york.log")).unwrap();
    let report = logs_json(&[log.to_str().unwrap()]);
    let killed = events_of(&report, "worker_killed")
        .into_iter()
        .find(|e| e["cause"] == "memory")
        .expect("the /memory kill")
        .clone();
    let pid = killed["pid"].as_u64().unwrap();
    // A line of the same pid an hour after the kill (local time), as a recycled pid would
    // write: read in UTC it would come before the kill and be taken for the killed request.
    let dir = TempDir::new("tz");
    let later = dir.join("app.log");
    std::fs::write(
        &later,
        format!("{app}2026-11-26 19:10:00,000 {pid} INFO request start GET /later\n"),
    )
    .unwrap();
    let joined = logs_json(&[log.to_str().unwrap(), "--app-log", later.to_str().unwrap()]);
    let memory = events_of(&joined, "worker_killed")
        .into_iter()
        .find(|e| e["pid"] == pid)
        .unwrap();
    assert_eq!(memory["request"], "GET /memory");
    let finding = joined["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cause"] == "memory")
        .unwrap();
    let text = finding["evidence"].to_string();
    assert!(
        text.contains("started GET /memory at 2026-11-26 18:07"),
        "{text}"
    );
}
