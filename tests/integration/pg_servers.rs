//! `wtdiag pg` on logs as real servers write them, beyond our own configurations (issue 8):
//! times in a zone abbreviation (fixtures/pg/zones, made by fixtures/pg/make-zones.sh with
//! `log_timezone` set to named zones), prefixes whose connection lines carry `[unknown]` and
//! `[local]`, and inputs that are not PostgreSQL logs at all.

use std::path::{Path, PathBuf};

use chrono::DateTime;
use serde_json::Value;

use crate::common::{events_of, fixture, wtdiag};

fn zone_log(name: &str, ext: &str) -> PathBuf {
    fixture(&format!("pg/zones/{name}.{ext}"))
}

/// The client's clock (Unix seconds) just before each marker statement was sent.
fn markers(name: &str) -> Vec<(f64, String)> {
    let text = std::fs::read_to_string(zone_log(name, "markers")).expect("markers file");
    let out: Vec<(f64, String)> = text
        .lines()
        .map(|l| {
            let (at, marker) = l.split_once(' ').expect("'<seconds> <marker>'");
            (at.parse().expect("seconds"), marker.to_string())
        })
        .collect();
    assert_eq!(out.len(), 3, "{name}.markers");
    out
}

fn pg_json(log: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "pg",
        log.to_str().unwrap(),
        "--format",
        "json",
        "--event-min-ms",
        "0",
    ];
    args.extend_from_slice(extra);
    let run = wtdiag(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()
}

/// For each marker statement: its logged time (Unix seconds) minus the client's clock before it
/// was sent. A reader that gets the zone right gives a small positive number.
fn marker_lags(report: &Value, name: &str) -> Vec<f64> {
    let statements = events_of(report, "statement");
    markers(name)
        .iter()
        .map(|(at, marker)| {
            let e = statements
                .iter()
                .find(|e| {
                    e["query"]
                        .as_str()
                        .is_some_and(|q| q.contains(marker.as_str()))
                })
                .unwrap_or_else(|| panic!("no statement event with {marker}"));
            let time = e["time"]
                .as_str()
                .unwrap_or_else(|| panic!("{marker}: time is {}", e["time"]));
            let t = DateTime::parse_from_rfc3339(time).expect("RFC 3339");
            t.timestamp_millis() as f64 / 1000.0 - at
        })
        .collect()
}

fn assert_on_time(lags: &[f64], what: &str) {
    for lag in lags {
        assert!(
            (-0.5..3.0).contains(lag),
            "{what}: statement logged {lag:.3} s after the client sent it (want 0..3 s)"
        );
    }
}

fn warnings<'a>(report: &'a Value, code: &str) -> Vec<&'a str> {
    report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == code)
        .map(|w| w["message"].as_str().unwrap())
        .collect()
}

#[test]
fn est_from_america_new_york_is_read_at_minus_five_and_the_australian_meaning_is_named() {
    for ext in ["log", "csv", "json"] {
        let report = pg_json(&zone_log("new-york", ext), &[]);
        assert_on_time(&marker_lags(&report, "new-york"), ext);
        let times: Vec<&str> = events_of(&report, "statement")
            .iter()
            .filter_map(|e| e["time"].as_str())
            .collect();
        assert!(times.iter().all(|t| t.ends_with("-05:00")), "{times:?}");
        let warned = warnings(&report, "pg_tz_ambiguous");
        assert_eq!(warned.len(), 1, "{ext}: {:?}", report["warnings"]);
        for want in ["EST", "-05:00", "+10:00", "Australia"] {
            assert!(warned[0].contains(want), "{ext}: {want} in {}", warned[0]);
        }
        assert!(warnings(&report, "pg_tz_unknown").is_empty());
    }
}

#[test]
fn ist_is_read_as_postgres_default_set_reads_it_with_a_warning_and_pg_tz_overrides_it() {
    let log = zone_log("kolkata", "log");
    // The documented rule: PostgreSQL's Default set, where IST is Israel (+02:00), so a log in
    // Asia/Kolkata (+05:30) comes out 3.5 h late, and the warning says so and how to fix it.
    let report = pg_json(&log, &[]);
    for lag in marker_lags(&report, "kolkata") {
        assert!((12_600.0 - 0.5..12_603.0).contains(&lag), "lag {lag}");
    }
    let warned = warnings(&report, "pg_tz_ambiguous");
    assert_eq!(warned.len(), 1, "{:?}", report["warnings"]);
    for want in [
        "IST",
        "+02:00",
        "Israel",
        "+05:30 (Indian Standard Time",
        "+01:00 (Irish",
    ] {
        assert!(warned[0].contains(want), "{want} in {}", warned[0]);
    }
    let advice = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "pg_tz_ambiguous")
        .unwrap()["advice"]
        .as_str()
        .unwrap();
    assert!(advice.contains("--pg-tz IST=+HH:MM"), "{advice}");

    for flag in ["IST=+05:30", "+05:30", "ist=+0530"] {
        let fixed = pg_json(&log, &["--pg-tz", flag]);
        assert_on_time(&marker_lags(&fixed, "kolkata"), flag);
        assert!(
            warnings(&fixed, "pg_tz_ambiguous").is_empty(),
            "{flag}: {:?}",
            fixed["warnings"]
        );
    }
}

#[test]
fn dynamic_and_unambiguous_abbreviations_are_read_without_a_warning() {
    for (name, offset) in [("moscow", "+03:00"), ("sydney", "+11:00")] {
        for ext in ["log", "csv", "json"] {
            let report = pg_json(&zone_log(name, ext), &[]);
            assert_on_time(&marker_lags(&report, name), name);
            let first = events_of(&report, "statement")[0]["time"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(first.ends_with(offset), "{name}.{ext}: {first}");
            assert!(
                warnings(&report, "pg_tz_ambiguous").is_empty()
                    && warnings(&report, "pg_tz_unknown").is_empty(),
                "{name}.{ext}: {:?}",
                report["warnings"]
            );
        }
    }
}

#[test]
fn an_unknown_abbreviation_is_never_guessed_its_times_are_null_and_counted() {
    for ext in ["log", "csv", "json"] {
        let log = zone_log("posix-wtd", ext);
        let report = pg_json(&log, &[]);
        let statements = events_of(&report, "statement");
        assert!(!statements.is_empty(), "{ext}: the lines are still read");
        assert!(
            statements.iter().all(|e| e["time"].is_null()),
            "{ext}: a time was guessed"
        );
        let warned = warnings(&report, "pg_tz_unknown");
        assert_eq!(warned.len(), 1, "{ext}: {:?}", report["warnings"]);
        assert!(warned[0].contains("WTD"), "{}", warned[0]);
        assert!(
            warned[0].contains("time(s) written in WTD"),
            "{}",
            warned[0]
        );
        let fixed = pg_json(&log, &["--pg-tz", "WTD=+03:00"]);
        assert_on_time(&marker_lags(&fixed, "posix-wtd"), ext);
        assert!(warnings(&fixed, "pg_tz_unknown").is_empty());
    }
}

#[test]
fn pg_tz_applies_to_the_pg_log_of_logs_and_bad_values_exit_2() {
    let gunicorn = fixture("gunicorn/gunicorn-27.0.1.log");
    let log = zone_log("kolkata", "log");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "logs".to_string(),
            gunicorn.to_string_lossy().into_owned(),
            "--pg-log".into(),
            log.to_string_lossy().into_owned(),
            "--format".into(),
            "json".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = wtdiag(&args(&[]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(warnings(&run.json(), "pg_tz_ambiguous").len(), 1);
    let run = wtdiag(&args(&["--pg-tz", "IST=+05:30"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(warnings(&run.json(), "pg_tz_ambiguous").is_empty());

    for bad in ["IST=India", "5:30", "I5T=+05:30"] {
        let run = wtdiag(&["pg", log.to_str().unwrap(), "--pg-tz", bad]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stdout);
        assert!(run.stderr.contains("--pg-tz"), "{bad}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    }
}

/// fixtures/pg/prefixes/index.tsv: each log and the log_line_prefix the server reported.
fn prefix_logs() -> Vec<(String, String)> {
    let index = std::fs::read_to_string(fixture("pg/prefixes/index.tsv")).expect("index.tsv");
    let out: Vec<(String, String)> = index
        .lines()
        .map(|l| {
            let (name, prefix) = l.split_once('\t').expect("name<TAB>prefix");
            (name.to_string(), prefix.to_string())
        })
        .collect();
    assert_eq!(out.len(), 30, "index.tsv");
    out
}

/// A log as a rotated file that begins with a connection: the server's own lines from its
/// first `connection received` on (`[unknown]` user, database and application, `[local]`).
fn from_first_connection(log: &str) -> String {
    let at = log.find("connection received").expect("a connection line");
    let start = log[..at].rfind('\n').map_or(0, |i| i + 1);
    log[start..].to_string()
}

#[test]
fn connection_lines_full_of_unknown_and_local_first_do_not_fool_prefix_detection() {
    let tmp = crate::common::TempDir::new("pg-prefixes");
    for (name, truth) in prefix_logs() {
        let whole = std::fs::read_to_string(fixture(&format!("pg/prefixes/{name}.log"))).unwrap();
        let rotated = from_first_connection(&whole);
        assert!(
            rotated.lines().next().unwrap().contains("[unknown]"),
            "{name}"
        );
        let path = tmp.join(&format!("{name}.log"));
        std::fs::write(&path, &rotated).unwrap();
        for (what, log) in [
            ("whole", fixture(&format!("pg/prefixes/{name}.log"))),
            ("rotated", path.clone()),
        ] {
            let r = pg_json(&log, &[]);
            let input = &r["inputs"][0];
            assert_eq!(
                input["skipped_lines"], 0,
                "{name} {what}: {}",
                input["skipped"]
            );
            let detected = r["pg"]["inputs"][0]["log_line_prefix"].as_str().unwrap();
            if name.starts_with("order-") {
                assert_eq!(detected, truth, "{name} {what}");
            }
            // two sessions: SET, 6 statements and SHOW (one also fails)
            let statements = events_of(&r, "statement");
            assert_eq!(statements.len(), 15, "{name} {what}: detected {detected:?}");
            for e in &statements {
                assert_eq!(e["user"], "django", "{name} {what}: {detected:?} {e}");
                assert_eq!(e["database"], "shop", "{name} {what}: {detected:?} {e}");
            }
            let errors = events_of(&r, "error");
            assert_eq!(errors.len(), 2, "{name} {what}");
            assert!(
                errors.iter().all(|e| e["sqlstate"] == "22012"),
                "{name} {what}: {errors:?}"
            );
        }
    }
}

#[test]
fn a_log_no_prefix_reads_most_of_exits_2_with_the_best_candidates() {
    // log_line_prefix changed twice within one file: three real logs, a third of each
    let tmp = crate::common::TempDir::new("pg-undecided");
    let mut mixed = String::new();
    for name in ["pid-first", "order-udah", "remote-local"] {
        let log = std::fs::read_to_string(fixture(&format!("pg/prefixes/{name}.log"))).unwrap();
        mixed.push_str(&log);
    }
    let path = tmp.join("mixed.log");
    std::fs::write(&path, &mixed).unwrap();
    let run = wtdiag(&["pg", path.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    let err = run.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot tell its log_line_prefix"), "{err}");
    assert_eq!(
        err.matches(" lines").count(),
        2 + 1,
        "two candidates: {err}"
    );
    assert!(err.contains("--prefix"), "{err}");
    // told the prefix, it reads that third and says the rest did not match
    let r = pg_json(&path, &["--prefix", "%p %m %u %d "]);
    assert!(r["inputs"][0]["skipped_lines"].as_u64().unwrap() > 40);
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "prefix_mismatch")
    );
}

#[test]
fn an_input_that_yields_no_server_line_exits_2_saying_what_it_looks_like() {
    for (file, looks) in [
        ("gunicorn/gunicorn-27.0.1.log", "a Gunicorn error log"),
        ("pg/pg15-a-default.log.expect.json", "JSON, but not"),
        (
            "gunicorn/app-27.0.1.log",
            "no line has a PostgreSQL severity",
        ),
    ] {
        let run = wtdiag(&["pg", fixture(file).to_str().unwrap()]);
        assert_eq!(run.code, 2, "{file}: {}", run.stdout);
        let err = run.stderr.trim();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("not a PostgreSQL server log"), "{err}");
        assert!(err.contains(looks), "{file}: {err}");
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn a_shipper_that_collapses_spaces_and_expands_tabs_loses_no_line() {
    let original = fixture("pg/pg15-a-default.log");
    let text = std::fs::read_to_string(&original).unwrap();
    assert!(text.contains("LOG:  ") && text.contains("\n\t"));
    // what rsyslog/fluent-bit setups do: tabs to spaces, runs of spaces to one
    let mut shipped = String::new();
    for line in text.lines() {
        let line = line.replace('\t', "    ");
        let mut prev_space = false;
        let mut out = String::new();
        for c in line.chars() {
            if c == ' ' && prev_space && !out.trim().is_empty() {
                continue;
            }
            prev_space = c == ' ';
            out.push(c);
        }
        shipped.push_str(&out);
        shipped.push('\n');
    }
    assert!(!shipped.contains("LOG:  ") && !shipped.contains('\t'));
    let tmp = crate::common::TempDir::new("pg-shipped");
    let path = tmp.join("shipped.log");
    std::fs::write(&path, &shipped).unwrap();
    let a = pg_json(&original, &[]);
    let b = pg_json(&path, &[]);
    assert_eq!(
        b["inputs"][0]["skipped_lines"], 0,
        "{}",
        b["inputs"][0]["skipped"]
    );
    let fingerprints = |r: &Value| {
        let mut f: Vec<String> = events_of(r, "statement")
            .iter()
            .map(|e| e["fingerprint"].to_string())
            .collect();
        f.sort();
        f
    };
    assert_eq!(
        events_of(&a, "statement").len(),
        events_of(&b, "statement").len()
    );
    assert_eq!(fingerprints(&a), fingerprints(&b));
    assert_eq!(a["summary"], b["summary"]);
}

/// pgBadger's own sample logs (fixtures/pg/pgbadger, kept verbatim with their source).
fn pgbadger(name: &str) -> PathBuf {
    fixture(&format!("pg/pgbadger/{name}"))
}

#[test]
fn pgbadgers_begin_end_log_starting_with_unknown_placeholders_is_read_whole_in_cet() {
    let r = pg_json(&pgbadger("begin_end.log"), &[]);
    assert_eq!(
        r["inputs"][0]["skipped_lines"], 0,
        "{}",
        r["inputs"][0]["skipped"]
    );
    assert_eq!(
        r["pg"]["inputs"][0]["log_line_prefix"],
        "%t [%p]: db=%d,user=%u,app=%a,client=%h "
    );
    assert_eq!(r["pg"]["inputs"][0]["messages"], 24);
    assert!(warnings(&r, "pg_tz_ambiguous").is_empty());
    assert!(warnings(&r, "pg_tz_unknown").is_empty());
}

#[test]
fn pgbadgers_msk_and_cet_samples_are_read_at_their_offsets_with_pgbadgers_counts() {
    // t/02_basics.t "statement type": 12 queries
    let r = pg_json(&pgbadger("stmt_type.log"), &[]);
    let statements = events_of(&r, "statement");
    assert_eq!(statements.len(), 12);
    assert_eq!(statements[0]["time"], "2019-10-21T12:03:31.311+03:00");
    assert!(warnings(&r, "pg_tz_ambiguous").is_empty());
    let r = pg_json(&pgbadger("anonymize.log"), &[]);
    let statements = events_of(&r, "statement");
    assert_eq!(statements.len(), 8);
    assert!(
        statements
            .iter()
            .all(|e| e["time"].as_str().unwrap().ends_with("+01:00"))
    );
}

#[test]
fn auto_explains_query_parameters_line_is_not_glued_onto_the_query() {
    // PostgreSQL 18 with auto_explain.log_parameter_max_length = -1 (fixtures/pg/make-pg18.sh)
    let r = pg_json(&fixture("pg/pg18-autoexplain-params.log"), &[]);
    assert_eq!(r["inputs"][0]["skipped_lines"], 0);
    let statements = events_of(&r, "statement");
    let plans: Vec<&&Value> = statements.iter().filter(|e| e["phase"] == "plan").collect();
    assert!(!plans.is_empty());
    for e in &statements {
        assert!(
            !e["query"]
                .as_str()
                .unwrap_or("")
                .contains("Query Parameters"),
            "{e}"
        );
    }
    // a plan is the same statement shape as its execution, and carries its values
    for p in &plans {
        assert!(
            statements
                .iter()
                .any(|e| e["phase"] == "execute" && e["fingerprint"] == p["fingerprint"]),
            "{p}"
        );
        let query = p["query"].as_str().unwrap();
        if query.contains("$1") {
            assert!(
                p["parameters"].as_str().unwrap().starts_with("$1 = '"),
                "{p}"
            );
        }
    }
    let texts = text_of_statement_table(&r);
    assert!(
        !texts.iter().any(|t| t.contains("query parameters")),
        "{texts:?}"
    );
}

fn text_of_statement_table(r: &Value) -> Vec<String> {
    r["pg"]["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["normalized"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pgbadgers_other_samples_are_read_whole_with_pgbadgers_figures_where_both_count_alike() {
    let report = |name: &str| pg_json(&pgbadger(name), &["--top", "1000"]);
    // t/03_consistency.t: 1450 autoanalyze and 2094 autovacuum reports, in stderr and in
    // jsonlog; the logs hold nothing else, so every message is one of them
    for name in ["pg_vacuums.log.gz", "pg_vacuums.json.gz"] {
        let r = report(name);
        assert_eq!(r["inputs"][0]["skipped_lines"], 0, "{name}");
        assert_eq!(r["pg"]["inputs"][0]["messages"], 1450 + 2094, "{name}");
    }
    // t/07_csv_statement_duration.t: a csvlog (its first field quoted) whose slow query keeps
    // its 688786.283 ms, and whose statement-only line gets no duration
    let r = report("csv_statement_without_duration.log");
    assert_eq!(r["inputs"][0]["format"], "csvlog");
    let statements = r["pg"]["statements"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert!(
        statements[0]["normalized"]
            .as_str()
            .unwrap()
            .contains("slow_table")
    );
    assert_eq!(statements[0]["total_ms"], 688786.283);
    // t/04_advanced.t "Bind parameter with range" and "Multiline bind parameters"
    let r = report("postgresql_param_range.log");
    assert!(events_of(&r, "statement").iter().any(|e| {
        e["parameters"]
            .as_str()
            .is_some_and(|p| p.contains("$4 = '[2023-02-24T00:00,2023-02-25T00:00]'"))
    }));
    let r = report("multiline_param.log");
    let multiline = events_of(&r, "statement")
        .iter()
        .filter(|e| {
            e["parameters"]
                .as_str()
                .is_some_and(|p| p.contains("'njvarchar\nbye'"))
        })
        .count();
    assert_eq!(multiline, 2, "the bind and the execute");
    // t/04_advanced.t dumps pg_rawcsv.log: two lines in it are pg_ctl's, not the server's
    let r = report("pg_rawcsv.log");
    assert_eq!(r["inputs"][0]["skipped_lines"], 2);
    assert_eq!(r["pg"]["errors_by_sqlstate"]["42P01"], 1);
    // pgBadger reads pg-timezones.log with --log-timezone +5 and shows 12:00:00 to 12:46:39;
    // the lines say UTC, which wtdiag reads as written
    let r = report("pg-timezones.log");
    let times: Vec<&str> = events_of(&r, "statement")
        .iter()
        .map(|e| e["time"].as_str().unwrap())
        .collect();
    assert_eq!(times, ["2021-05-27T17:00:00Z", "2021-05-27T17:46:39Z"]);
    // read whole, no option: %Q in the prefix, log_temp_files alone, csvlog across weeks
    for (name, statements) in [
        ("queryid.log.gz", 20),
        ("tempfile_only.log.gz", 65),
        ("weeknumber.log", 6),
    ] {
        let r = report(name);
        assert_eq!(r["inputs"][0]["skipped_lines"], 0, "{name}");
        assert_eq!(r["summary"]["statement"], statements, "{name}");
    }
    let r = report("tempfile_only.log.gz");
    assert_eq!(r["summary"]["temp_file"], 5);
}
