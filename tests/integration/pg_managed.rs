//! `wtdiag pg` on managed services' log exports, from real published samples (kept verbatim in
//! fixtures/pg/pgbadger and fixtures/pg/managed, sources in their SOURCES.md): Heroku's logplex
//! (`heroku logs` and a drain), Google Cloud Logging (Cloud SQL), CloudNativePG's JSON, Azure's
//! diagnostic export; RFC 5424 syslog is a real server's (fixtures/pg/pg15-k-syslog5424.log,
//! checked with the other PostgreSQL 15 fixtures in `pg.rs`). Each is told from its content.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{TempDir, events_of, fixture, wtdiag};

fn pgbadger(name: &str) -> PathBuf {
    fixture(&format!("pg/pgbadger/{name}"))
}

fn managed(name: &str) -> PathBuf {
    fixture(&format!("pg/managed/{name}"))
}

fn pg_json(log: &Path) -> Value {
    let run = wtdiag(&[
        "pg",
        log.to_str().unwrap(),
        "--format",
        "json",
        "--event-min-ms",
        "0",
        "--top",
        "1000",
    ]);
    assert_eq!(run.code, 0, "{}: {}", log.display(), run.stderr);
    run.json()
}

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// The skip reasons of the first input and their counts.
fn skipped(r: &Value) -> Vec<(String, u64)> {
    r["inputs"][0]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["reason"].as_str().unwrap().to_string(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn heroku_logplex_is_read_with_pgbadgers_cte_total_and_its_drain_continuations_joined() {
    let r = pg_json(&pgbadger("logplex.gz"));
    assert_eq!(r["inputs"][0]["format"], "heroku");
    assert_eq!(r["inputs"][0]["skipped_lines"], 0, "{:?}", skipped(&r));
    assert_eq!(
        r["pg"]["inputs"][0]["log_line_prefix"],
        "sql_error_code = %e "
    );
    // pgBadger's t/03_consistency.t: database GREEN's "cte|duration" is 21761.546 (ms)
    let cte_ms: f64 = r["pg"]["statements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["normalized"].as_str().unwrap().starts_with("with "))
        .map(|s| s["total_ms"].as_f64().unwrap())
        .sum();
    assert!((cte_ms - 21761.546).abs() < 0.001, "{cte_ms}");
    // ... and the drain's statement split over [921320-1]..[921320-6] is one statement
    let statements = events_of(&r, "statement");
    let joined: Vec<&&Value> = statements
        .iter()
        .filter(|e| {
            e["query"]
                .as_str()
                .unwrap()
                .contains("WHERE missions.checker_id = ")
        })
        .collect();
    assert_eq!(joined.len(), 1, "{statements:?}");
    assert_eq!(joined[0]["pid"], 5925);
    assert_eq!(joined[0]["duration_ms"], 85756.273);
    // the backend pid is the one in app[postgres.N], and the SQLSTATE is the prefix's
    let deadlocks = events_of(&r, "deadlock");
    assert_eq!(deadlocks.len(), 1);
    assert_eq!(deadlocks[0]["pid"], 4849);
    let waits = events_of(&r, "lock_wait");
    assert!(
        waits
            .iter()
            .any(|w| w["pid"] == 4882 && w["state"] == "waiting")
    );
}

#[test]
fn a_heroku_drain_frame_is_read_its_priority_is_not_a_pid_and_other_sources_are_skipped() {
    let r = pg_json(&managed("heroku-drain.log"));
    assert_eq!(r["inputs"][0]["format"], "heroku");
    assert_eq!(
        skipped(&r),
        vec![(
            "Heroku log line of another source than Heroku Postgres (router, dyno, metrics)"
                .to_string(),
            2
        )]
    );
    let statements = events_of(&r, "statement");
    assert_eq!(statements.len(), 1);
    let s = statements[0];
    // pid="1991397" in Heroku's prefix, not 134 (the priority) nor 1105947 (the dyno number)
    assert_eq!(s["pid"], 1991397);
    assert_eq!(s["time"], "2023-06-05T19:33:14.793Z");
    assert_eq!(s["duration_ms"], 2405.887);
    assert_eq!(s["query"], "WITH naptime(value) AS (\nSELECT");
    assert_eq!(s["database"], "databasedataba");
    assert_eq!(s["application"], "pganalyze_test_run");
}

/// How many Cloud Logging entries carry a server message (not a DETAIL/HINT/... part), read
/// independently: the word before `:  ` after Cloud SQL's `[pid]: [n-1] db=...,user=... `.
fn cloud_sql_messages(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            let entry: Value = serde_json::from_str(l).unwrap();
            let payload = entry["textPayload"].as_str().unwrap();
            // a continuation line of the message before (autovacuum's report)
            if payload.starts_with('\t') {
                return false;
            }
            let after_user = &payload[payload.find(",user=").unwrap()..];
            let word = after_user.split(' ').nth(1).unwrap();
            !matches!(
                word,
                "DETAIL:" | "HINT:" | "CONTEXT:" | "STATEMENT:" | "QUERY:" | "LOCATION:"
            )
        })
        .count()
}

#[test]
fn cloud_sql_entries_are_read_one_a_line_or_pretty_printed_as_gcloud_prints_them() {
    let log = pgbadger("cloudsql.log.gz");
    let text = gunzip(&log);
    let r = pg_json(&log);
    assert_eq!(r["inputs"][0]["format"], "cloud_logging");
    assert_eq!(r["inputs"][0]["skipped_lines"], 0, "{:?}", skipped(&r));
    assert_eq!(
        r["pg"]["inputs"][0]["log_line_prefix"],
        "[%p]: [%l-1] db=%d,user=%u "
    );
    assert_eq!(r["pg"]["inputs"][0]["messages"], cloud_sql_messages(&text));
    // pgBadger's t/03_consistency.t counts 151 connections of cloudsqladmin to cloudsqladmin;
    // wtdiag does not count connections, so it checks every entry is read instead (above).
    // The payload has no time: events take the entry's.
    let errors = events_of(&r, "error");
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|e| e["time"].as_str().unwrap().starts_with("2020-05-0"))
    );

    // `gcloud logging read --format=json` prints the same entries as an indented array
    let entries: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tmp = TempDir::new("pg-cloud-logging");
    let pretty = tmp.join("cloudsql.json");
    std::fs::write(&pretty, serde_json::to_string_pretty(&entries).unwrap()).unwrap();
    let p = pg_json(&pretty);
    assert_eq!(p["inputs"][0]["format"], "cloud_logging");
    assert_eq!(p["inputs"][0]["skipped_lines"], 0, "{:?}", skipped(&p));
    assert_eq!(
        p["pg"]["inputs"][0]["messages"],
        r["pg"]["inputs"][0]["messages"]
    );
    assert_eq!(p["summary"], r["summary"]);
    assert_eq!(p["pg"]["errors_by_sqlstate"], r["pg"]["errors_by_sqlstate"]);
}

#[test]
fn cloudnativepg_records_are_read_and_the_instance_managers_lines_are_counted_apart() {
    let log = pgbadger("cnpg.log.gz");
    let text = gunzip(&log);
    let records = text
        .lines()
        .filter(|l| l.contains("\"logger\":\"postgres\"") && l.contains("\"record\":{"))
        .count();
    let r = pg_json(&log);
    assert_eq!(r["inputs"][0]["format"], "cloudnativepg");
    assert_eq!(r["pg"]["inputs"][0]["messages"], records);
    let skips = skipped(&r);
    assert_eq!(
        skips.iter().map(|s| s.1).sum::<u64>() as usize + records,
        text.lines().filter(|l| !l.trim().is_empty()).count(),
        "{skips:?}"
    );
    assert!(
        skips
            .iter()
            .any(|(reason, n)| reason.contains("instance manager") && *n > 0)
    );
    // the SQLSTATEs are the records' sql_state_code
    assert_eq!(r["pg"]["errors_by_sqlstate"]["42601"], 3);
    assert_eq!(r["pg"]["errors_by_sqlstate"]["57P03"], 1);
    // process_id is a string in CloudNativePG's records
    let statements = events_of(&r, "statement");
    assert!(statements.len() >= 400);
    assert!(statements.iter().all(|s| s["pid"].as_u64().is_some()));

    // `kubectl logs --timestamps` puts the time the line was read before each line
    let stamped: String = text
        .lines()
        .map(|l| format!("2022-11-27T18:58:02.096892400Z {l}\n"))
        .collect();
    let tmp = TempDir::new("pg-cnpg-kubectl");
    let path = tmp.join("cnpg-kubectl.log");
    std::fs::write(&path, stamped).unwrap();
    let k = pg_json(&path);
    assert_eq!(k["inputs"][0]["format"], "cloudnativepg");
    assert_eq!(k["pg"]["inputs"][0]["messages"], records);
    assert_eq!(k["summary"], r["summary"]);
    assert_eq!(skipped(&k), skips);
}

#[test]
fn azure_flexible_server_records_give_pid_parameters_and_time_from_properties() {
    let r = pg_json(&managed("azure-flexible.json"));
    assert_eq!(r["inputs"][0]["format"], "azure");
    assert_eq!(r["inputs"][0]["skipped_lines"], 0, "{:?}", skipped(&r));
    assert_eq!(r["pg"]["inputs"][0]["messages"], 4);
    let statements = events_of(&r, "statement");
    assert_eq!(statements.len(), 2);
    assert_eq!(statements[0]["pid"], 2030);
    assert_eq!(statements[0]["phase"], "bind");
    assert_eq!(statements[0]["parameters"], "$1 = '4234', $2 = '2'");
    assert_eq!(statements[0]["time"], "2023-02-27T22:21:11.823Z");
    assert_eq!(statements[1]["query"], "SELECT 1");
}

#[test]
fn a_managed_export_without_a_server_message_exits_2_saying_what_it_is() {
    let tmp = TempDir::new("pg-managed-empty");
    // a drain with only the metrics and Redis lines of the Heroku sample
    let drain = std::fs::read_to_string(managed("heroku-drain.log")).unwrap();
    let others: String = drain
        .lines()
        .filter(|l| !l.contains("app postgres."))
        .map(|l| format!("{l}\n"))
        .collect();
    let heroku = tmp.join("heroku-others.log");
    std::fs::write(&heroku, others).unwrap();
    // CloudNativePG's instance manager alone
    let cnpg_text = gunzip(&pgbadger("cnpg.log.gz"));
    let manager: String = cnpg_text
        .lines()
        .filter(|l| !l.contains("\"logger\":\"postgres\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let cnpg = tmp.join("cnpg-manager.log");
    std::fs::write(&cnpg, manager).unwrap();
    for (path, looks) in [
        // a STATEMENT part whose message is not in the sample (pgBadger issue #747)
        (
            managed("cloudsql-gcloud-pretty.json"),
            "Google Cloud Logging entries",
        ),
        (heroku, "a Heroku log without a Heroku Postgres line"),
        (cnpg, "CloudNativePG JSON without a record"),
    ] {
        let run = wtdiag(&["pg", path.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{}: {}", path.display(), run.stdout);
        let err = run.stderr.trim();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("not a PostgreSQL server log"), "{err}");
        assert!(err.contains(looks), "{err}");
        // `logs --pg-log` keeps going with a note
        let logs = wtdiag(&[
            "logs",
            fixture("gunicorn/gunicorn-27.0.1.log").to_str().unwrap(),
            "--pg-log",
            path.to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert_eq!(logs.code, 0, "{}", logs.stderr);
        let warnings = logs.json()["warnings"].clone();
        assert!(
            warnings
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["code"] == "not_pg_log"),
            "{warnings}"
        );
    }
}
