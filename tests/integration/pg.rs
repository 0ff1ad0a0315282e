//! `wtdiag pg` on real PostgreSQL 15 logs (fixtures/pg, made by fixtures/pg/make.sh): every
//! fixture is checked against the ground truth beside it (`<log>.expect.json`, recorded from the
//! client sessions and pg_locks while the scenarios ran), so pids are never hard-coded here.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{TempDir, events_of, fixture, gzip, wtdiag, wtdiag_stdin};

/// Every fixture log with an expect file.
fn fixtures() -> Vec<(PathBuf, Value)> {
    let dir = fixture("pg");
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(&dir)
        .expect("fixtures/pg")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?.to_string();
            let log = name.strip_suffix(".expect.json")?;
            let expect: Value =
                serde_json::from_slice(&std::fs::read(&path).ok()?).expect("expect JSON");
            Some((dir.join(log), expect))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 5, "fixtures/pg has {} expect files", out.len());
    out
}

/// `wtdiag pg --format json` with every statement listed as an event.
fn report(log: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "pg".to_string(),
        log.to_string_lossy().into_owned(),
        "--format".into(),
        "json".into(),
    ];
    if !extra.contains(&"--event-min-ms") {
        args.extend(["--event-min-ms".to_string(), "0".to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = wtdiag(&args);
    assert_eq!(run.code, 0, "{}: {}", log.display(), run.stderr);
    run.json()
}

fn scenario<'a>(expect: &'a Value, id: &str) -> &'a Value {
    expect["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("scenario {id}"))
}

fn expected<'a>(expect: &'a Value, id: &str, kind: &str) -> Vec<&'a Value> {
    scenario(expect, id)["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// True when the log tells backends apart (a pid in the prefix, syslog's, or csv/json).
fn has_pid(expect: &Value) -> bool {
    expect["prefix_has_pid"] == true || expect["format"] != "stderr"
}

/// The event's pid is the expected one, or the log cannot say.
fn same_pid(got: &Value, want: &Value, expect: &Value) -> bool {
    if has_pid(expect) {
        got["pid"] == want["pid"]
    } else {
        got["pid"].is_null()
    }
}

fn name(log: &Path) -> String {
    log.file_name().unwrap().to_string_lossy().into_owned()
}

/// Milliseconds between two RFC 3339 times.
fn ms_between(a: &str, b: &str) -> f64 {
    let a = chrono::DateTime::parse_from_rfc3339(a).unwrap();
    let b = chrono::DateTime::parse_from_rfc3339(b).unwrap();
    (b - a).num_milliseconds() as f64
}

#[test]
fn every_format_and_prefix_is_detected_without_flags() {
    for (log, expect) in fixtures() {
        let r = report(&log, &[]);
        let input = &r["inputs"][0];
        assert_eq!(input["format"], expect["format"], "{}", name(&log));
        assert_eq!(
            input["skipped_lines"],
            0,
            "{}: {}",
            name(&log),
            input["skipped"]
        );
        if matches!(
            expect["format"].as_str(),
            Some("stderr" | "syslog" | "syslog_rfc5424")
        ) {
            assert_eq!(
                r["pg"]["inputs"][0]["log_line_prefix"],
                expect["settings"]["log_line_prefix"],
                "{}",
                name(&log)
            );
        }
        assert_eq!(r["command"], "pg");
    }
}

#[test]
fn slow_statements_have_pid_time_text_and_duration() {
    for (log, expect) in fixtures() {
        let r = report(&log, &[]);
        let statements = events_of(&r, "statement");
        let bare = expect["settings"]["log_duration"] == "on";
        for want in expected(&expect, "slow_statements", "statement") {
            if !(want["expect_duration_line"] == true || bare) {
                continue;
            }
            let client_ms = want["client_ms"].as_f64().unwrap();
            let got = statements
                .iter()
                .find(|e| {
                    same_pid(e, want, &expect)
                        && e["query"] == want["text"]
                        && e["phase"] != "parse"
                        && e["phase"] != "bind"
                        && e["phase"] != "plan"
                })
                .unwrap_or_else(|| panic!("{}: no statement event for {want}", name(&log)));
            let ms = got["duration_ms"].as_f64().unwrap();
            assert!(
                ms <= client_ms + 1.0 && ms >= client_ms * 0.8,
                "{}: {} ms logged, client saw {client_ms} ms",
                name(&log),
                ms
            );
            // logged when it ended: start + duration, to the log's precision (%t: 1 s)
            let end = ms_between(
                want["start"].as_str().unwrap(),
                got["time"].as_str().unwrap(),
            );
            assert!(
                (end - ms).abs() <= 1100.0,
                "{}: logged {end} ms after start",
                name(&log)
            );
            assert!(got["fingerprint"].as_str().unwrap().len() == 16);
        }
    }
}

#[test]
fn lock_waits_have_state_lock_object_holders_and_statement() {
    for (log, expect) in fixtures() {
        let r = report(&log, &[]);
        let waits = events_of(&r, "lock_wait");
        let mut checked = 0;
        for id in [
            "lock_chain",
            "relation_lock",
            "deadlock",
            "avoided_deadlock",
            "cancels",
        ] {
            for want in expected(&expect, id, "lock_wait") {
                let got = waits
                    .iter()
                    .find(|e| {
                        e["pid"] == want["pid"]
                            && e["state"] == want["state"]
                            && e["lock"] == want["lock_mode"]
                            && e["object"] == want["lock_object"]
                    })
                    .unwrap_or_else(|| panic!("{}: no lock_wait event for {want}", name(&log)));
                // (in the soft deadlock pg_locks counts the queue ahead as blockers; the log
                // names only the holders)
                if want["state"] != "acquired" && id != "avoided_deadlock" {
                    assert_eq!(
                        got["blocked_by"],
                        want["blocked_by"],
                        "{}: {want}",
                        name(&log)
                    );
                }
                if want["statement"].is_string() {
                    assert_eq!(got["statement"], want["statement"], "{}", name(&log));
                }
                checked += 1;
            }
        }
        assert!(checked >= 8, "{}: {checked} lock waits checked", name(&log));
    }
}

#[test]
fn lock_chain_is_reported_with_its_root_blocker() {
    for (log, expect) in fixtures() {
        let r = report(&log, &[]);
        let sc = scenario(&expect, "lock_chain");
        let root = sc["root_blocker"].as_u64().unwrap();
        let (a, b, c) = (
            sc["pids"]["A"].as_u64().unwrap(),
            sc["pids"]["B"].as_u64().unwrap(),
            sc["pids"]["C"].as_u64().unwrap(),
        );
        assert_eq!(root, a);
        let chain = format!("chain {c} → {b} → {a}");
        let finding = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["cause"] == "lock_wait" && f["title"].as_str().unwrap().contains(&chain))
            .unwrap_or_else(|| panic!("{}: no lock_wait finding with {chain}", name(&log)));
        assert!(
            finding["title"]
                .as_str()
                .unwrap()
                .starts_with(&format!("Lock wait: backend {root} blocked"))
        );
        let pids: Vec<u64> = finding["pids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap())
            .collect();
        assert!(
            pids.contains(&a) && pids.contains(&b) && pids.contains(&c),
            "{pids:?}"
        );

        let rel = scenario(&expect, "relation_lock");
        let holder = rel["root_blocker"].as_u64().unwrap();
        assert!(
            r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["cause"] == "lock_wait"
                    && f["title"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("Lock wait: backend {holder} blocked"))),
            "{}: relation lock holder {holder} not reported",
            name(&log)
        );
    }
}

#[test]
fn deadlocks_have_both_processes_statements_and_table() {
    for (log, expect) in fixtures() {
        let r = report(&log, &[]);
        let want = expected(&expect, "deadlock", "deadlock")[0];
        let got = events_of(&r, "deadlock");
        assert_eq!(got.len(), 1, "{}", name(&log));
        let got = got[0];
        if has_pid(&expect) {
            assert_eq!(got["pid"], want["victim_pid"]);
        }
        for edge in want["cycle"].as_array().unwrap() {
            let p = got["processes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["pid"] == edge["pid"])
                .unwrap_or_else(|| panic!("{}: process {} missing", name(&log), edge["pid"]));
            assert_eq!(p["blocked_by"], edge["blocked_by"]);
            assert_eq!(
                p["waits_for"],
                format!(
                    "{} on {}",
                    edge["lock_mode"].as_str().unwrap(),
                    edge["lock_object"].as_str().unwrap()
                )
            );
            assert_eq!(
                p["statement"],
                want["statements"][edge["pid"].to_string()],
                "{}",
                name(&log)
            );
        }
        assert!(
            got["relations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "app_order")
        );
        let finding = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["cause"] == "deadlock")
            .unwrap();
        assert!(finding["title"].as_str().unwrap().contains("app_order"));
        assert_eq!(finding["count"], 1);
    }
}

#[test]
fn cancels_have_reason_pid_and_statement() {
    for (log, expect) in fixtures() {
        let r = report(&log, &[]);
        let got = events_of(&r, "cancel");
        let want = expected(&expect, "cancels", "cancel");
        assert_eq!(got.len(), want.len(), "{}", name(&log));
        for w in want {
            assert!(
                got.iter().any(|e| same_pid(e, w, &expect)
                    && e["reason"] == w["reason"]
                    && e["statement"] == w["statement"]),
                "{}: no cancel event for {w}",
                name(&log)
            );
        }
        for reason in ["statement_timeout", "lock_timeout", "user_request"] {
            assert!(
                r["findings"].as_array().unwrap().iter().any(|f| f["title"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("Cancelled ({reason})"))),
                "{}: no finding for {reason}",
                name(&log)
            );
        }
    }
}

#[test]
fn n_plus_one_bursts_are_found_with_their_count() {
    for (log, expect) in fixtures() {
        let want = expected(&expect, "n_plus_one", "n_plus_one");
        let visible = has_pid(&expect)
            && want
                .iter()
                .all(|w| w["visible_in_log"] == true && w["attributable"] == true);
        for (extra, min_ms) in [(&[][..], 50.0), (&["--n1-min-total-ms", "10"][..], 10.0)] {
            let r = report(&log, extra);
            let bursts = r["pg"]["bursts"].as_array().unwrap();
            if !visible {
                assert!(
                    bursts.is_empty(),
                    "{}: bursts in a log that cannot show them",
                    name(&log)
                );
                continue;
            }
            let fine_times = expect["settings"]["log_line_prefix"]
                .as_str()
                .unwrap()
                .contains("%m")
                // an RFC 5424 header has microseconds, but of the relay's clock, not the server's
                || !matches!(
                    expect["format"].as_str(),
                    Some("stderr" | "syslog" | "syslog_rfc5424")
                );
            let mut found = 0;
            for w in &want {
                let span = ms_between(
                    w["first_start"].as_str().unwrap(),
                    w["last_end"].as_str().unwrap(),
                );
                // the server's clock sees a little less than the client's (one round trip)
                if fine_times && span < min_ms + 10.0 {
                    continue;
                }
                let b = bursts
                    .iter()
                    .find(|b| b["pid"] == w["pid"])
                    .unwrap_or_else(|| panic!("{}: no burst for {w} with {extra:?}", name(&log)));
                assert_eq!(b["count"], w["count"], "{}: {b}", name(&log));
                assert!(
                    b["normalized"]
                        .as_str()
                        .unwrap()
                        .contains("from app_author where app_author.id = ?")
                );
                found += 1;
            }
            assert!(found >= 2, "{}: {found} bursts checked", name(&log));
            let finding = r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["cause"] == "n_plus_one")
                .unwrap();
            let largest = want
                .iter()
                .map(|w| w["count"].as_u64().unwrap())
                .max()
                .unwrap();
            let in_a_row = format!("{largest} times in a row");
            assert!(
                finding["title"].as_str().unwrap().contains(&in_a_row),
                "{}",
                finding["title"]
            );
            // with millisecond times and the default thresholds nothing else is taken for a
            // burst (the other worker polls one query with the same values; the fingerprint
            // families are a handful of runs; the settings reader's 28 lookups take 20 ms)
            if fine_times && extra.is_empty() {
                assert_eq!(bursts.len(), found, "{}: {bursts:?}", name(&log));
            }
        }
    }
}

#[test]
fn temp_files_and_errors() {
    for (log, expect) in fixtures() {
        let r = report(&log, &[]);
        let temps = events_of(&r, "temp_file");
        let delta = scenario(&expect, "temp_files")["pg_stat_database_delta"]["temp_bytes"]
            .as_u64()
            .unwrap();
        let sum: u64 = temps.iter().map(|t| t["size"].as_u64().unwrap()).sum();
        assert_eq!(sum, delta, "{}", name(&log));
        for w in expected(&expect, "temp_files", "temp_file") {
            assert!(temps.iter().any(|t| {
                same_pid(t, w, &expect)
                    && t["path"]
                        .as_str()
                        .unwrap()
                        .starts_with(w["path_prefix"].as_str().unwrap())
            }));
        }
        let errors = events_of(&r, "error");
        for w in expected(&expect, "errors", "error") {
            assert!(
                errors.iter().any(|e| same_pid(e, w, &expect)
                    && e["sqlstate"] == w["sqlstate"]
                    && e["message"] == w["message"]),
                "{}: no error event for {w}",
                name(&log)
            );
        }
    }
}

#[test]
fn fingerprint_families_group_into_one_shape_each() {
    for (log, expect) in fixtures() {
        if expect["settings"]["log_min_duration_statement"] != "0" {
            continue;
        }
        let r = report(&log, &[]);
        let statements = events_of(&r, "statement");
        for fam in expected(&expect, "fingerprints", "fingerprint_family") {
            let mut prints: Vec<&str> = statements
                .iter()
                .filter(|e| {
                    same_pid(e, fam, &expect)
                        && fam["texts"].as_array().unwrap().contains(&e["query"])
                        && e["phase"] != "parse"
                        && e["phase"] != "bind"
                })
                .map(|e| e["fingerprint"].as_str().unwrap())
                .collect();
            assert_eq!(
                prints.len() as u64,
                fam["count"].as_u64().unwrap(),
                "{}: {}",
                name(&log),
                fam["family"]
            );
            prints.dedup();
            assert_eq!(
                prints.len(),
                1,
                "{}: {} split into {prints:?}",
                name(&log),
                fam["family"]
            );
        }
    }
}

#[test]
fn the_same_run_as_stderr_csvlog_and_jsonlog_gives_the_same_findings() {
    let strip = |r: &Value| -> Vec<Value> {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let mut f = f.clone();
                f.as_object_mut().unwrap().remove("evidence");
                f
            })
            .collect()
    };
    let stderr = report(
        &fixture("pg/pg15-a-default.log"),
        &["--event-min-ms", "500"],
    );
    let csv = report(
        &fixture("pg/pg15-a-default.csv"),
        &["--event-min-ms", "500"],
    );
    let json = report(
        &fixture("pg/pg15-a-default.json"),
        &["--event-min-ms", "500"],
    );
    assert!(strip(&stderr).len() >= 8);
    assert_eq!(strip(&stderr), strip(&csv));
    assert_eq!(strip(&stderr), strip(&json));
    assert_eq!(stderr["summary"], csv["summary"]);
    assert_eq!(stderr["summary"], json["summary"]);
}

#[test]
fn gaps_are_said_plainly() {
    for (log, expect) in fixtures() {
        let r = report(&log, &[]);
        let codes: Vec<&str> = r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["code"].as_str().unwrap())
            .collect();
        let high_threshold = expect["settings"]["log_min_duration_statement"]
            .as_str()
            .unwrap()
            != "0"
            && expect["settings"]["log_duration"] != "on";
        assert_eq!(
            codes.contains(&"log_min_duration_too_high"),
            high_threshold,
            "{}: {codes:?}",
            name(&log)
        );
        assert_eq!(
            codes.contains(&"no_backend_pid"),
            expect["prefix_has_pid"] == false && expect["format"] == "stderr",
            "{}",
            name(&log)
        );
        assert!(!codes.contains(&"no_lock_wait_lines"), "{}", name(&log));
        // %t, or no time in the prefix and syslog's whole-second header time (RFC 5424's has
        // microseconds)
        let prefix = expect["settings"]["log_line_prefix"].as_str().unwrap();
        let whole_seconds = !prefix.contains("%m")
            && !prefix.contains("%n")
            && expect["format"] != "csvlog"
            && expect["format"] != "jsonlog"
            && expect["format"] != "syslog_rfc5424";
        assert_eq!(
            codes.contains(&"whole_second_times"),
            whole_seconds,
            "{}: {codes:?}",
            name(&log)
        );
    }
}

#[test]
fn missing_log_lock_waits_and_pid_are_reported() {
    let text = std::fs::read_to_string(fixture("pg/pg15-a-default.log")).unwrap();
    // the same log as a server without log_lock_waits and without %p would write it
    let tmp = TempDir::new("pg-gaps");
    let stripped: String = text
        .lines()
        .filter(|l| {
            !l.contains(" still waiting for ")
                && !l.contains(" acquired ")
                && !l.contains("] DETAIL:  Process holding")
                && !l.contains("] DETAIL:  Processes holding")
        })
        .map(|l| {
            let l = match (l.find(" ["), l.find("] ")) {
                (Some(a), Some(b)) if a < b && b < 40 => format!("{}{}", &l[..a + 1], &l[b + 2..]),
                _ => l.to_string(),
            };
            l + "\n"
        })
        .collect();
    let path = tmp.join("nopid.log");
    std::fs::write(&path, stripped).unwrap();
    let r = report(&path, &[]);
    assert_eq!(r["pg"]["inputs"][0]["log_line_prefix"], "%m ");
    let codes: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"no_backend_pid"), "{codes:?}");
    assert!(r["pg"]["bursts"].as_array().unwrap().is_empty());
    let table = wtdiag(&["pg", path.to_str().unwrap()]);
    assert!(
        table.stdout.contains("note [no_backend_pid]"),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            .contains("log_line_prefix = '%m [%p] %q%u@%d '")
    );
}

#[test]
fn table_output_names_causes_and_the_statement_table() {
    let run = wtdiag(&["pg", fixture("pg/pg15-a-default.log").to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = &run.stdout;
    assert!(out.starts_with("wtdiag pg: 1 input"), "{out}");
    for cause in ["n_plus_one", "lock_wait", "deadlock", "slow_query"] {
        assert!(out.contains(cause), "{cause} missing:\n{out}");
    }
    assert!(out.contains("Top statements"), "{out}");
}

#[test]
fn top_since_until_and_fail_on() {
    let log = fixture("pg/pg15-a-default.log");
    let full = report(&log, &[]);
    let deadlock_time = events_of(&full, "deadlock")[0]["time"]
        .as_str()
        .unwrap()
        .to_string();
    let after = report(&log, &["--since", &deadlock_time]);
    assert_eq!(events_of(&after, "deadlock").len(), 1);
    assert!(events_of(&after, "statement").len() < events_of(&full, "statement").len());
    let before = report(&log, &["--until", "2000-01-01 00:00:00"]);
    assert!(before["events"].as_array().unwrap().is_empty());
    let top1 = report(&log, &["--top", "1"]);
    assert!(top1["pg"]["statements"].as_array().unwrap().len() <= 4);
    let gate = wtdiag(&["pg", log.to_str().unwrap(), "--fail-on", "high"]);
    assert_eq!(gate.code, 1);
    let quiet = wtdiag(&[
        "pg",
        log.to_str().unwrap(),
        "--until",
        "2000-01-01 00:00:00",
        "--fail-on",
        "low",
    ]);
    assert_eq!(quiet.code, 0, "{}", quiet.stdout);
}

#[test]
fn stdin_gzip_and_rotated_files_read_as_one_log() {
    let text = std::fs::read(fixture("pg/pg15-a-default.log")).unwrap();
    let whole = report(&fixture("pg/pg15-a-default.log"), &[]);
    let run = wtdiag_stdin(
        &["pg", "-", "--format", "json", "--event-min-ms", "0"],
        &text,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["summary"], whole["summary"]);

    // split at a line boundary in the middle, the older half gzipped, given newest first
    let tmp = TempDir::new("pg-rotated");
    let cut = text[text.len() / 2..]
        .iter()
        .position(|&b| b == b'\n')
        .unwrap()
        + text.len() / 2
        + 1;
    // move the cut to a line that starts a message (not a continuation)
    let cut = cut
        + text[cut..]
            .windows(2)
            .position(|w| w[0] == b'\n' && w[1] == b'2')
            .unwrap()
        + 1;
    std::fs::write(tmp.join("postgresql.log.1.gz"), gzip(&text[..cut])).unwrap();
    std::fs::write(tmp.join("postgresql.log"), &text[cut..]).unwrap();
    let newest = tmp.join("postgresql.log");
    let older = tmp.join("postgresql.log.1.gz");
    let r = report(&newest, &[older.to_str().unwrap()]);
    assert_eq!(r["inputs"][0]["compressed"], true, "older file first");
    assert_eq!(r["summary"], whole["summary"]);
    assert_eq!(
        r["pg"]["bursts"].as_array().unwrap().len(),
        whole["pg"]["bursts"].as_array().unwrap().len()
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2_or_a_counted_skip() {
    let tmp = TempDir::new("pg-bad");
    let missing = wtdiag(&["pg", tmp.join("nope.log").to_str().unwrap()]);
    assert_eq!(missing.code, 2);
    assert_eq!(
        missing.stderr.trim().lines().count(),
        1,
        "{}",
        missing.stderr
    );
    assert!(missing.stderr.contains("no such file"));

    let binary = tmp.join("bin.log");
    std::fs::write(&binary, [0u8, 1, 2, 3, 0, 0, 7, 8].repeat(100)).unwrap();
    let run = wtdiag(&["pg", binary.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("binary"), "{}", run.stderr);

    let bad_prefix = wtdiag(&[
        "pg",
        fixture("pg/pg15-a-default.log").to_str().unwrap(),
        "--prefix",
        "%m %z",
    ]);
    assert_eq!(bad_prefix.code, 2);
    assert!(
        bad_prefix.stderr.contains("unknown escape %z"),
        "{}",
        bad_prefix.stderr
    );

    let twice = wtdiag(&["pg", "-", "-"]);
    assert_eq!(twice.code, 2);

    // not a PostgreSQL log: one line saying so, exit 2 (a CI gate must not pass on nothing)
    let text = tmp.join("notes.txt");
    std::fs::write(&text, "hello\nworld\n").unwrap();
    let run = wtdiag(&["pg", text.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("not a PostgreSQL server log"),
        "{}",
        run.stderr
    );

    // garbage in the middle of a real log, a truncated csv record, an overlong line
    let mut log = std::fs::read(fixture("pg/pg15-a-default.log")).unwrap();
    log.extend_from_slice(b"random garbage line\n");
    log.extend(std::iter::repeat_n(b'x', (1 << 20) + 5));
    log.extend_from_slice(b"\n2026-11-26 22:53:32.000 UTC [1] DETAIL:  orphan\n");
    let path = tmp.join("mixed.log");
    std::fs::write(&path, &log).unwrap();
    let r = report(&path, &[]);
    let reasons: Vec<&str> = r["inputs"][0]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(r["inputs"][0]["skipped_lines"], 3, "{reasons:?}");
    let mut csv = std::fs::read(fixture("pg/pg15-a-default.csv")).unwrap();
    csv.extend_from_slice(b"2026-11-26 22:53:32.000 UTC,\"unterminated\n");
    let path = tmp.join("cut.csv");
    std::fs::write(&path, &csv).unwrap();
    let r = report(&path, &[]);
    assert_eq!(r["inputs"][0]["skipped_lines"], 1);
}

#[test]
fn prefix_flag_overrides_detection() {
    let log = fixture("pg/pg15-b-debian.log");
    // a wrong prefix reads only the background processes' lines (they stop at %q)
    let r = report(&log, &["--prefix", "%m [%p] "]);
    assert!(r["inputs"][0]["skipped_lines"].as_u64().unwrap() > 100);
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "prefix_mismatch")
    );
    let r = report(&log, &["--prefix", "%m [%p] %q%u@%d "]);
    assert_eq!(r["inputs"][0]["skipped_lines"], 0);
    let stmt = events_of(&r, "statement")
        .into_iter()
        .find(|e| e["user"] == "django")
        .expect("user from %u");
    assert_eq!(stmt["database"], "shop");
}

#[test]
fn sqlstates_the_log_does_not_carry_are_inferred_from_the_wording_and_marked() {
    for (log, expect) in fixtures() {
        let r = report(&log, &[]);
        let prefix = expect["settings"]["log_line_prefix"].as_str().unwrap_or("");
        let log_says = matches!(expect["format"].as_str(), Some("csvlog" | "jsonlog"))
            || prefix.contains("%e");
        let errors = events_of(&r, "error");
        for w in expected(&expect, "errors", "error") {
            let e = errors
                .iter()
                .find(|e| same_pid(e, w, &expect) && e["message"] == w["message"])
                .unwrap_or_else(|| panic!("{}: no error event for {w}", name(&log)));
            // the code the client received, read from the log or from PostgreSQL's table
            assert_eq!(e["sqlstate"], w["sqlstate"], "{}: {e}", name(&log));
            assert_eq!(e["sqlstate_inferred"], !log_says, "{}: {e}", name(&log));
        }
        // the class counts add up to the errors, with the inferred ones counted
        let classes = r["pg"]["errors_by_sqlstate_class"].as_array().unwrap();
        let total: u64 = classes.iter().map(|c| c["errors"].as_u64().unwrap()).sum();
        let by_code: u64 = r["pg"]["errors_by_sqlstate"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, by_code, "{}", name(&log));
        let inferred: u64 = classes
            .iter()
            .map(|c| c["inferred"].as_u64().unwrap())
            .sum();
        let marked = errors
            .iter()
            .filter(|e| e["sqlstate_inferred"] == true)
            .count() as u64;
        assert_eq!(inferred, marked, "{}", name(&log));
        let integrity = classes.iter().find(|c| c["class"] == "23").unwrap();
        assert_eq!(integrity["name"], "Integrity Constraint Violation");
    }
    // and the table says it
    let run = wtdiag(&["pg", fixture("pg/pg15-b-debian.log").to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "Errors by SQLSTATE class: 23 Integrity Constraint Violation 2 (2 inferred from the \
             wording), 42 Syntax Error or Access Rule Violation 2 (2 inferred from the wording)"
        ),
        "{}",
        run.stdout
    );
}
