//! `wtdiag live` on the worker classes other than sync, each against a real Gunicorn from the
//! test venv (scripts/test-env.sh): gthread (`--threads 4`, requests stuck in different calls in
//! one worker), gevent (a psycopg2 call and a CPU loop that never yield to the hub, a green wait
//! that does) and uvicorn's worker (a sync call inside `async def`). Each request must get its
//! own exact cause, and "seconds left" only where the master will kill. Servers are the ones of
//! `live.rs`, stopped by pid when a test ends.

use std::time::Duration;

use serde_json::Value;

use crate::live::{Gunicorn, PgCluster, TIMEOUT, blackhole, live, venv, wait_until, worker};

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().expect("findings array")
}

fn warnings_with<'a>(report: &'a Value, code: &str) -> Vec<&'a Value> {
    report["warnings"]
        .as_array()
        .expect("warnings array")
        .iter()
        .filter(|w| w["code"] == code)
        .collect()
}

/// The request thread of `w` whose view is `view`.
fn thread_with_view<'a>(w: &'a Value, view: &str) -> &'a Value {
    w["threads"]
        .as_array()
        .expect("threads array")
        .iter()
        .find(|t| t["view"].as_str().is_some_and(|v| v.contains(view)))
        .unwrap_or_else(|| panic!("no thread in {view}: {w:#}"))
}

/// The finding about the request whose frame is in `view`.
fn finding_at<'a>(report: &'a Value, view: &str) -> &'a Value {
    findings(report)
        .iter()
        .find(|f| f["title"].as_str().is_some_and(|t| t.contains(view)))
        .unwrap_or_else(|| panic!("no finding at {view}: {:#}", report["findings"]))
}

/// Every piece of advice is written for live mode: the logs-mode text never shows.
fn assert_live_advice(report: &Value) {
    for f in findings(report) {
        let advice = f["advice"].as_str().unwrap_or_default();
        assert!(
            !advice.contains("The log does not say"),
            "logs-mode advice in live: {f:#}"
        );
    }
}

/// The gthread case: one worker, four threads; three requests stuck in different calls
/// (an HTTP upstream, a raw socket read, a CPU loop) and one idle thread; then a fourth stuck
/// request (an SMTP server that never greets) takes the last thread.
#[test]
fn gthread_threads_are_diagnosed_one_by_one_and_the_master_never_kills_them() {
    let venv = venv();
    let (_blackhole, bh_port) = blackhole(&venv);
    // `-k sync --threads 4` is what people write: Gunicorn runs gthread for it.
    let mut g = Gunicorn::start_with(
        "gthread",
        &venv,
        1,
        ("wtapp.wsgi:application", &["-k", "sync", "--threads", "4"]),
        None,
        Some(bh_port),
        true,
    );
    let endpoints = [
        (
            "/api/upstream",
            "missing_api_timeout",
            "upstream_api_view",
            Some("http"),
        ),
        (
            "/raw/recv",
            "missing_api_timeout",
            "raw_socket_view",
            Some("socket"),
        ),
        ("/cpu", "cpu_bound", "count_primes_until", None),
    ];
    // The first request of a worker imports the views (requests, urllib3...): not what is sampled.
    assert!(g.get("/ok").contains("200 OK"), "/ok answers");
    for (path, ..) in endpoints {
        g.fire(path);
    }
    let pids: Vec<u32> = endpoints.iter().map(|e| g.serving(e.0).0).collect();
    let pid = pids[0];
    assert!(
        pids.iter().all(|p| *p == pid),
        "one worker serves all: {pids:?}"
    );

    let run = live(&[
        "--pid",
        &g.master().to_string(),
        "--duration",
        "2s",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let report = run.json();
    let w = worker(&report, pid);
    assert_eq!(w["worker_class"], "gthread", "{w:#}");
    assert_eq!(w["threads_total"], 4, "{w:#}");
    assert_eq!(w["threads_busy"], 3, "one thread idle: {w:#}");
    assert_eq!(w["threads"].as_array().unwrap().len(), 3, "{w:#}");
    assert!(
        w["seconds_left"].is_null(),
        "the master does not kill a gthread worker for a hung request: {w:#}"
    );
    for (path, cause, view, outbound) in endpoints {
        let t = thread_with_view(
            w,
            if view == "count_primes_until" {
                "cpu_view"
            } else {
                view
            },
        );
        assert_eq!(t["cause"], cause, "{path}: {t:#}");
        assert!(
            t["frame"].as_str().unwrap_or_default().contains(view),
            "{path}: {t:#}"
        );
        assert_eq!(
            t["outbound"].as_str(),
            outbound,
            "{path}: the peer is named: {t:#}"
        );
        assert!(t["seconds_left"].is_null(), "{path}: no deadline: {t:#}");
        assert!(
            t["busy_seconds"].as_f64().unwrap() >= 1.0 && t["busy_seconds_at_least"] == true,
            "{path}: ran for at least the sampling: {t:#}"
        );
        assert!(
            t["thread_name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("ThreadPoolExecutor"),
            "{path}: {t:#}"
        );
        let f = finding_at(&report, view);
        assert_eq!(f["cause"], cause, "{path}: {f:#}");
        let left = format!("worker {pid}: 3 of 4 threads serve requests, 1 left");
        assert!(
            f["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["text"] == left.as_str()),
            "{path}: threads left: {f:#}"
        );
        let title = f["title"].as_str().unwrap();
        assert!(
            title.contains("never kills it (gthread)") && !title.contains("s before the master"),
            "{path}: {title}"
        );
    }
    let raw = finding_at(&report, "raw_socket_view");
    assert!(
        raw["title"].as_str().unwrap().contains("raw socket")
            && raw["advice"].as_str().unwrap().contains("settimeout"),
        "{raw:#}"
    );
    assert!(
        warnings_with(&report, "thread_pool_exhausted").is_empty(),
        "a thread is left: {:#}",
        report["warnings"]
    );
    assert_live_advice(&report);

    // The last thread is taken: the pool is exhausted.
    g.fire("/smtp");
    assert_eq!(g.serving("/smtp").0, pid);
    let run = live(&[
        "--pid",
        &g.master().to_string(),
        "--duration",
        "1500ms",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let report = run.json();
    let w = worker(&report, pid);
    assert_eq!(w["threads_busy"], 4, "{w:#}");
    let smtp = thread_with_view(w, "smtp_view");
    assert_eq!(
        (&smtp["cause"], &smtp["outbound"]),
        (&Value::from("missing_api_timeout"), &Value::from("smtp")),
        "{smtp:#}"
    );
    let f = finding_at(&report, "smtp_view");
    assert!(
        f["title"].as_str().unwrap().contains("SMTP server")
            && f["advice"].as_str().unwrap().contains("EMAIL_TIMEOUT"),
        "{f:#}"
    );
    let exhausted = warnings_with(&report, "thread_pool_exhausted");
    assert_eq!(exhausted.len(), 1, "{:#}", report["warnings"]);
    assert!(
        exhausted[0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("worker {pid}: all 4 thread(s)")),
        "{:#}",
        exhausted[0]
    );
    assert_live_advice(&report);

    // The table shows each thread under its worker, and no deadline.
    let run = live(&["--pid", &g.master().to_string(), "--duration", "1s"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    for text in [
        "(4/4 threads)",
        "ThreadPoolExecutor",
        "never",
        "thread_pool_exhausted",
    ] {
        assert!(
            run.stdout.contains(text),
            "table lacks {text:?}:\n{}",
            run.stdout
        );
    }
}

/// gevent: a psycopg2 call without a green wait callback and a CPU loop each hold their
/// worker's hub (the master will kill them: seconds left); a request waiting on a green socket
/// leaves its worker's loop free, and py-spy cannot see it (said, not guessed).
#[test]
fn gevent_workers_blocked_by_psycopg2_or_cpu_are_named_and_a_green_wait_is_not_a_block() {
    let venv = venv();
    let pg = PgCluster::start_seeded("gevent", &venv, 100);
    let (_blackhole, bh_port) = blackhole(&venv);
    let mut g = Gunicorn::start_with(
        "gevent",
        &venv,
        3,
        ("wtapp.wsgi:application", &["-k", "gevent"]),
        Some(&pg),
        Some(bh_port),
        true,
    );
    // One at a time: a worker whose hub is held accepts nothing more.
    g.fire("/db/slow");
    let (db, _) = g.serving("/db/slow");
    g.fire("/cpu");
    let (cpu, _) = g.serving("/cpu");
    g.fire("/api/upstream");
    let (green, _) = g.serving("/api/upstream");
    assert!(
        db != cpu && cpu != green && db != green,
        "{db} {cpu} {green}"
    );
    let mut monitor = pg.client();
    wait_until("pg_sleep to run", Duration::from_secs(30), || {
        monitor
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' \
                     AND state = 'active'",
                &[],
            )
            .map(|r| r.get::<_, i64>(0) == 1)
            .unwrap_or(false)
    });

    let run = live(&[
        "--pid",
        &g.master().to_string(),
        "--duration",
        "2s",
        "--pg",
        &pg.dsn(),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let report = run.json();
    for (pid, cause, view) in [
        (db, "slow_query", "db_slow_query_view"),
        (cpu, "cpu_bound", "count_primes_until"),
    ] {
        let w = worker(&report, pid);
        assert_eq!(w["worker_class"], "gevent", "{w:#}");
        assert_eq!(w["cause"], cause, "{w:#}");
        assert!(
            w["frame"].as_str().unwrap_or_default().contains(view),
            "{w:#}"
        );
        assert_eq!(w["loop_blocked"], true, "{w:#}");
        let left = w["seconds_left"]
            .as_f64()
            .unwrap_or_else(|| panic!("a blocked hub stops the heartbeat: {w:#}"));
        assert!(left > 0.0 && left < TIMEOUT, "{w:#}");
        assert_eq!(w["threads"].as_array().unwrap().len(), 1, "{w:#}");
        assert_eq!(w["threads"][0]["cause"], cause, "{w:#}");
    }
    let slow = finding_at(&report, "db_slow_query_view");
    assert_eq!(slow["confidence"], "high", "told by PostgreSQL: {slow:#}");
    assert!(
        slow["reason"].as_str().unwrap().contains("pg_sleep(120)")
            && slow["advice"].as_str().unwrap().contains("psycogreen"),
        "{slow:#}"
    );
    let cpu_finding = finding_at(&report, "count_primes_until");
    assert!(
        cpu_finding["advice"]
            .as_str()
            .unwrap()
            .contains("never yields to the hub"),
        "{cpu_finding:#}"
    );
    let w = worker(&report, green);
    assert_eq!(
        w["state"], "idle",
        "a green wait leaves the hub free: {w:#}"
    );
    assert_eq!(w["loop_blocked"], false, "{w:#}");
    assert!(w["cause"].is_null() && w["seconds_left"].is_null(), "{w:#}");
    assert!(
        w["client_connections"].as_u64().unwrap_or(0) >= 1,
        "its client is still connected: {w:#}"
    );
    let view = warnings_with(&report, "event_loop_partial_view");
    assert_eq!(view.len(), 1, "{:#}", report["warnings"]);
    let message = view[0]["message"].as_str().unwrap();
    assert!(
        message.contains("requests suspended on I/O")
            && message.contains(&format!("worker {green} holds")),
        "{:#}",
        view[0]
    );
    assert_live_advice(&report);
}

/// uvicorn's worker: a sync HTTP call inside `async def` holds the event loop (the master will
/// kill the worker), while a coroutine awaiting a socket leaves its worker's loop free.
#[test]
fn uvicorn_worker_blocked_by_a_sync_call_in_async_def_is_told_from_one_awaiting() {
    let venv = venv();
    let (_blackhole, bh_port) = blackhole(&venv);
    let mut g = Gunicorn::start_with(
        "uvicorn",
        &venv,
        2,
        ("asgiapp:app", &["-k", "uvicorn.workers.UvicornWorker"]),
        None,
        Some(bh_port),
        true,
    );
    g.fire("/blocking");
    let (blocked, _) = g.serving("/blocking");
    g.fire("/awaiting");
    let (awaiting, _) = g.serving("/awaiting");
    assert_ne!(blocked, awaiting, "a blocked loop accepts nothing more");

    let run = live(&[
        "--pid",
        &g.master().to_string(),
        "--duration",
        "2s",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let report = run.json();
    let w = worker(&report, blocked);
    assert_eq!(w["worker_class"], "asyncio", "{w:#}");
    assert_eq!(w["state"], "stuck", "{w:#}");
    assert_eq!(w["cause"], "missing_api_timeout", "{w:#}");
    assert_eq!(w["outbound"], "http", "{w:#}");
    assert!(
        w["frame"]
            .as_str()
            .unwrap_or_default()
            .contains("blocking_view"),
        "{w:#}"
    );
    assert_eq!(w["loop_blocked"], true, "{w:#}");
    let left = w["seconds_left"].as_f64().expect("seconds left");
    assert!(left > 0.0 && left < TIMEOUT, "{w:#}");
    let f = finding_at(&report, "blocking_view");
    assert!(
        f["advice"].as_str().unwrap().contains("asyncio.to_thread")
            && f["advice"].as_str().unwrap().contains("timeout=(3.05, 10)"),
        "{f:#}"
    );

    let w = worker(&report, awaiting);
    assert_eq!(w["state"], "idle", "awaiting is no block: {w:#}");
    assert_eq!(w["loop_blocked"], false, "{w:#}");
    assert!(w["seconds_left"].is_null() && w["cause"].is_null(), "{w:#}");
    assert!(
        w["client_connections"].as_u64().unwrap_or(0) >= 1,
        "the awaiting request's client is connected: {w:#}"
    );
    assert_eq!(warnings_with(&report, "event_loop_partial_view").len(), 1);
    assert_live_advice(&report);
}

/// gthread's other case: a request thread holding the GIL in C code (the `re` engine
/// backtracking) starves the main thread, whose loop is the heartbeat: the master will abort
/// the worker, so here, and only here, a gthread worker and its request have seconds left.
#[test]
fn gthread_worker_whose_main_thread_is_starved_by_the_gil_has_seconds_left() {
    let venv = venv();
    let mut g = Gunicorn::start_with(
        "gthread-gil",
        &venv,
        1,
        (
            "wtapp.wsgi:application",
            &["-k", "gthread", "--threads", "2"],
        ),
        None,
        None,
        true,
    );
    // Imports first, so that the regex holds the GIL from the moment its request starts.
    assert!(g.get("/ok").contains("200 OK"), "/ok answers");
    g.fire("/regex");
    let (pid, started) = g.serving("/regex");
    // Past gthread's silence threshold (3 s) before sampling.
    wait_until("the heartbeat to age", Duration::from_secs(10), || {
        started.elapsed().unwrap_or_default() >= Duration::from_millis(4500)
    });
    let run = live(&[
        "--pid",
        &g.master().to_string(),
        "--duration",
        "1s",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let report = run.json();
    let w = worker(&report, pid);
    assert_eq!(w["worker_class"], "gthread", "{w:#}");
    let left = w["seconds_left"]
        .as_f64()
        .unwrap_or_else(|| panic!("the main thread cannot notify: {w:#}"));
    assert!(left > 0.0 && left <= TIMEOUT - 3.0, "{w:#}");
    let t = thread_with_view(w, "regex_view");
    assert_eq!(t["cause"], "cpu_bound", "{t:#}");
    assert_eq!(t["seconds_left"], w["seconds_left"], "{t:#}");
    let f = finding_at(&report, "regex_view");
    assert!(
        f["title"]
            .as_str()
            .unwrap()
            .contains("s before the master's timeout kills it"),
        "{f:#}"
    );
}
