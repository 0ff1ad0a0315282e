//! Every log a deployment has, read together (fixtures/stack/make.sh: nginx in front of
//! Gunicorn 27 sync, 20.1 sync and 27 gthread in front of Django + PostgreSQL 15, each run's
//! nginx error and access logs, Gunicorn error and access logs, slow-request app log and
//! PostgreSQL log). Each input is told from its content; the report names each killed worker's
//! request where a log names it, never gives a worker a cause its exit or its worker class rules
//! out, shows what clients saw and which endpoint is next to time out, and under gthread says
//! that hung requests are never timed out.

use serde_json::Value;

use crate::common::{fixture, wtdiag};

const KINDS: [(&str, &str); 6] = [
    ("gunicorn-error.log", "gunicorn"),
    ("gunicorn-access.log", "access"),
    ("nginx-error.log", "nginx_error"),
    ("nginx-access.log", "access"),
    ("app.log", "applog"),
    ("postgres.log", "stderr"),
];

fn run(name: &str, extra: &[&str]) -> Value {
    let mut args: Vec<String> = vec!["logs".into(), "--format".into(), "json".into()];
    for (file, _) in KINDS {
        args.push(
            fixture(&format!("stack/{name}.{file}"))
                .to_str()
                .unwrap()
                .into(),
        );
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = wtdiag(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

fn with_cause<'a>(json: &'a Value, cause: &str) -> Vec<&'a Value> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["cause"] == cause)
        .collect()
}

fn pids(f: &Value) -> Vec<u64> {
    f["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect()
}

/// The pids that logged `Worker exiting` after their own `WORKER TIMEOUT` (the abort handler
/// ran: they were in Python, not in the database driver).
fn exited_after_timeout(name: &str) -> Vec<u64> {
    let log =
        std::fs::read_to_string(fixture(&format!("stack/{name}.gunicorn-error.log"))).unwrap();
    let mut timed_out = Vec::new();
    let mut out = Vec::new();
    for line in log.lines() {
        if let Some(p) = line.split("WORKER TIMEOUT (pid:").nth(1) {
            timed_out.push(p.trim_end_matches(')').parse::<u64>().unwrap());
        }
        if let Some(p) = line.split("Worker exiting (pid: ").nth(1) {
            let pid = p.trim_end_matches(')').parse::<u64>().unwrap();
            if timed_out.contains(&pid) {
                out.push(pid);
            }
        }
    }
    out
}

/// The 5xx statuses the script's curl got, from its truth file: what clients saw.
fn truth_5xx(name: &str) -> u64 {
    let truth = std::fs::read_to_string(fixture(&format!("stack/{name}.truth"))).unwrap();
    truth
        .lines()
        .filter(|l| {
            l.starts_with("request ") && l.split("-> ").nth(1).is_some_and(|s| s.starts_with('5'))
        })
        .count() as u64
}

#[test]
fn every_input_is_read_as_what_it_is() {
    for name in ["sync-27", "sync-20.1", "gthread-27"] {
        let json = run(name, &["--timeout", "3"]);
        for (file, kind) in KINDS {
            let input = json["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| {
                    i["path"]
                        .as_str()
                        .unwrap()
                        .ends_with(&format!("{name}.{file}"))
                })
                .unwrap_or_else(|| panic!("{name}.{file} not in inputs"));
            assert_eq!(input["format"], kind, "{name}.{file}");
            assert_eq!(input["skipped_lines"], 0, "{name}.{file}");
        }
        assert!(
            !json["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["code"] == "not_gunicorn_log"),
            "{name}"
        );
    }
}

#[test]
fn no_worker_gets_a_cause_its_exit_or_class_rules_out() {
    for name in ["sync-27", "sync-20.1", "gthread-27"] {
        let json = run(name, &["--timeout", "3"]);
        let exited = exited_after_timeout(name);
        for f in json["findings"].as_array().unwrap() {
            let cause = f["cause"].as_str().unwrap();
            if ["lock_wait", "slow_query", "deadlock"].contains(&cause) {
                for pid in pids(f) {
                    assert!(
                        !exited.contains(&pid),
                        "{name}: {cause} for worker {pid}, which logged Worker exiting"
                    );
                }
                assert!(
                    !name.starts_with("gthread"),
                    "{name}: {cause} under gthread"
                );
            }
            if name.starts_with("gthread") {
                assert!(
                    !["missing_api_timeout", "n_plus_one", "proxy_timeout"].contains(&cause),
                    "{name}: {cause} under gthread"
                );
            }
        }
        // Nginx gave up on nothing in the sync runs, and only on a hung request under
        // gthread: the timeout ladder (proxy_read_timeout 10 s > timeout 3 s) is in order.
        assert!(with_cause(&json, "proxy_timeout").is_empty(), "{name}");
    }
}

#[test]
fn sync_27_names_both_requests_and_the_lock_wait() {
    let json = run("sync-27", &["--timeout", "3"]);
    let api = with_cause(&json, "missing_api_timeout");
    assert_eq!(api.len(), 1);
    assert_eq!(api[0]["request"], "GET /api/upstream");
    // The lock waiter died in libpq (SIGKILL, no Worker exiting); nginx's `upstream
    // prematurely closed` names its request: the other worker that died in that second
    // answered its client (its abort traceback and Gunicorn's 500).
    let lock = with_cause(&json, "lock_wait");
    assert_eq!(lock.len(), 1, "{:#}", json["findings"]);
    assert_eq!(lock[0]["request"], "GET /db/lock");
    assert_ne!(pids(lock[0]), pids(api[0]));
    assert_eq!(
        lock[0]["confidence"], "low",
        "time alone never names it with confidence"
    );
}

#[test]
fn gunicorn_20_1_keeps_the_database_off_the_worker_that_exited() {
    let json = run("sync-20.1", &["--timeout", "3"]);
    let exited = exited_after_timeout("sync-20.1");
    assert_eq!(
        exited.len(),
        1,
        "the fixture has one abort that ran its handler"
    );
    let theirs: Vec<&Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| pids(f).contains(&exited[0]))
        .collect();
    assert_eq!(theirs.len(), 1);
    let ruled: Vec<&str> = theirs[0]["ruled_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cause"].as_str().unwrap())
        .collect();
    assert!(
        ruled.contains(&"lock_wait") && ruled.contains(&"slow_query"),
        "{ruled:?}"
    );
}

#[test]
fn clients_saw_what_the_proxy_logged() {
    for name in ["sync-27", "sync-20.1", "gthread-27"] {
        let json = run(name, &["--timeout", "3"]);
        let impact = &json["client_impact"];
        assert_eq!(impact["source"], "proxy_access", "{name}");
        assert_eq!(impact["errors_5xx"], truth_5xx(name), "{name}");
    }
    let json = run("gthread-27", &["--timeout", "3"]);
    assert_eq!(json["client_impact"]["by_status"]["504"], 1);
}

#[test]
fn the_endpoint_next_to_time_out_is_named() {
    for name in ["sync-27", "sync-20.1", "gthread-27"] {
        let json = run(name, &["--timeout", "3"]);
        let slow = with_cause(&json, "slow_endpoint");
        assert_eq!(slow.len(), 1, "{name}: {:#}", json["findings"]);
        assert_eq!(slow[0]["request"], "GET /slowish");
        assert_eq!(slow[0]["count"], 3);
        let title = slow[0]["title"].as_str().unwrap();
        assert!(title.contains("of a 3 s timeout"), "{title}");
        let endpoint = json["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["request"] == "GET /slowish")
            .unwrap();
        assert!(endpoint["p95_s"].as_f64().unwrap() > 2.0);
        assert_eq!(endpoint["over_timeout"], 0);
        assert_eq!(json["summary"]["app_database_errors"], 1, "{name}");
    }
    // Under Gunicorn's default of 30 s nothing here is near the timeout, and the report says
    // that the default was assumed.
    let json = run("sync-27", &[]);
    assert!(with_cause(&json, "slow_endpoint").is_empty());
}

#[test]
fn the_slow_request_log_alone_gives_latency() {
    let g = fixture("stack/sync-20.1.gunicorn-error.log");
    let a = fixture("stack/sync-20.1.app.log");
    let out = wtdiag(&[
        "logs",
        g.to_str().unwrap(),
        a.to_str().unwrap(),
        "--timeout",
        "3",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json = out.json();
    let slow = with_cause(&json, "slow_endpoint");
    assert_eq!(slow.len(), 1, "{:#}", json["findings"]);
    assert_eq!(slow[0]["request"], "/slowish");
    assert!(
        json["client_impact"].is_null(),
        "no access log: no client impact"
    );
    assert_eq!(json["endpoints"][0]["source"], "app_log");
}

#[test]
fn gthread_hung_requests_are_never_timed_out() {
    let json = run("gthread-27", &["--timeout", "3"]);
    let hung = with_cause(&json, "hung_request");
    assert_eq!(hung.len(), 1, "{:#}", json["findings"]);
    let title = hung[0]["title"].as_str().unwrap();
    assert!(
        title.contains("GET /db/lock") && title.contains("GET /api/upstream"),
        "{title}"
    );
    assert!(
        !title.contains("/regex"),
        "the regex worker did time out: {title}"
    );
    assert_eq!(hung[0]["count"], 2);
    // The one worker that did time out held the GIL in C: a stall of the whole process.
    let regex: Vec<&Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["request"] == "GET /regex")
        .collect();
    assert_eq!(regex.len(), 1);
    assert_eq!(regex[0]["cause"], "unknown");
    assert!(
        regex[0]["title"]
            .as_str()
            .unwrap()
            .contains("gthread worker")
    );
    assert!(
        !json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "no_traceback"),
        "Gunicorn 27 logs tracebacks; a gthread worker's SIGKILL is not a missing one"
    );
    // Without --timeout the proxy's 504 still shows the hung request.
    let json = run("gthread-27", &[]);
    let hung = with_cause(&json, "hung_request");
    assert_eq!(hung.len(), 1);
    assert!(hung[0]["title"].as_str().unwrap().contains("assumed"));
}

#[test]
fn the_table_shows_clients_and_endpoints() {
    let mut args: Vec<String> = vec!["logs".into(), "--timeout".into(), "3".into()];
    for (file, _) in KINDS {
        args.push(
            fixture(&format!("stack/gthread-27.{file}"))
                .to_str()
                .unwrap()
                .into(),
        );
    }
    let out = wtdiag(&args);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout
            .contains("Clients: 3 of 12 request(s) answered 5xx, per the proxy access log"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Endpoints, slowest first"));
    assert!(out.stdout.contains("hung_request"));
}
