//! `wtdiag logs` on real Gunicorn error-log excerpts that users pasted into public threads
//! (fixtures/wild, sources and reasons in fixtures/wild/SOURCES.md): every WORKER TIMEOUT,
//! signal, exit and aborted-request line is recognised, and the top cause is what the excerpt
//! alone supports (fixtures/wild/expected.tsv).

use serde_json::Value;

use crate::common::{events_of, fixture, wtdiag};

struct Expectation {
    file: String,
    timeouts: usize,
    kills: usize,
    exits: usize,
    aborts: usize,
    top_cause: String,
    never: Vec<String>,
}

fn expectations() -> Vec<Expectation> {
    let text = std::fs::read_to_string(fixture("wild/expected.tsv")).expect("expected.tsv");
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 7, "expected.tsv: 7 columns in {line:?}");
        let n = |i: usize| cols[i].parse::<usize>().expect("a count");
        out.push(Expectation {
            file: cols[0].to_string(),
            timeouts: n(1),
            kills: n(2),
            exits: n(3),
            aborts: n(4),
            top_cause: cols[5].to_string(),
            never: cols[6]
                .split(',')
                .filter(|c| *c != "-")
                .map(str::to_string)
                .collect(),
        });
    }
    out
}

fn report(file: &str) -> Value {
    let path = fixture(&format!("wild/{file}"));
    let run = wtdiag(&[
        "logs",
        "--format",
        "json",
        path.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(run.code, 0, "wtdiag logs {file}: {}", run.stderr);
    run.json()
}

#[test]
fn every_excerpt_has_an_expectation_and_the_corpus_is_forty_strong() {
    let listed: Vec<String> = expectations().into_iter().map(|e| e.file).collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture("wild"))
        .expect("fixtures/wild")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(
        sorted, on_disk,
        "expected.tsv and fixtures/wild/*.log differ"
    );
    assert!(listed.len() >= 40, "only {} excerpts", listed.len());
    let sources = std::fs::read_to_string(fixture("wild/SOURCES.md")).expect("SOURCES.md");
    for f in &listed {
        assert!(sources.contains(f.as_str()), "SOURCES.md does not cite {f}");
    }
}

#[test]
fn wild_excerpts_events_and_top_cause_match_the_recorded_expectation() {
    let mut failures = Vec::new();
    for e in expectations() {
        let r = report(&e.file);
        let got = (
            events_of(&r, "worker_timeout").len(),
            events_of(&r, "worker_killed").len(),
            events_of(&r, "worker_exit").len(),
            events_of(&r, "request_abort").len(),
        );
        let want = (e.timeouts, e.kills, e.exits, e.aborts);
        if got != want {
            failures.push(format!(
                "{}: events (timeout, killed, exit, abort) {got:?}, expected {want:?}",
                e.file
            ));
        }
        let findings = r["findings"].as_array().expect("findings");
        let top = findings
            .first()
            .map_or("-", |f| f["cause"].as_str().unwrap_or("?"));
        if top != e.top_cause {
            failures.push(format!(
                "{}: top cause {top}, expected {} ({})",
                e.file,
                e.top_cause,
                findings
                    .first()
                    .map(|f| f["title"].to_string())
                    .unwrap_or_default()
            ));
        }
        for f in findings {
            let cause = f["cause"].as_str().unwrap_or("?");
            if e.never.iter().any(|n| n == cause) {
                failures.push(format!(
                    "{}: a finding says {cause}: {}",
                    e.file, f["title"]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn advice_names_the_database_only_when_the_log_shows_one() {
    // An LLM call that hung (konveyor/kai#109): no database anywhere in the excerpt.
    let r = report("kai-109-llm-sigkill.log");
    let text = serde_json::to_string(&r).unwrap();
    assert!(
        !text.contains("most often the database driver"),
        "database named without a database in the log: {text}"
    );
}

/// Workers replaced again and again with no end in the log (Gunicorn 19.9 logs nothing when a
/// worker dies of a signal): a `restart_loop` note that says where to look; never on logs where
/// every replaced worker's end is logged.
#[test]
fn a_silent_restart_loop_is_a_note() {
    let warnings = |rel: &str| -> Vec<String> {
        let path = fixture(rel);
        let run = wtdiag(&["logs", "--format", "json", path.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.json()["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(warnings("wild/gunicorn-1663-restart-loop-19.9.log").contains(&"restart_loop".into()));
    for rel in [
        "gunicorn/gunicorn-19.9.0.log",
        "gunicorn/gunicorn-27.0.1.log",
        "gunicorn/gunicorn-27.0.1-burst.log",
        "wild/inventree-4718-lockstep-20.1.0.log",
    ] {
        assert!(!warnings(rel).contains(&"restart_loop".into()), "{rel}");
    }
}
