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
    for ext in ["log", "csv"] {
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
        for ext in ["log", "csv"] {
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
    for ext in ["log", "csv"] {
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
