//! Unit tests of the live analysis on recorded py-spy captures and synthetic stacks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diagnosis::{
    BackendLookup, LiveContext, MemoryTrend, WorkerDiagnosis, WorkerInput, diagnose,
};
use super::findings::{findings, live_advice};
use super::reading::{class_from_stacks, read_stacks, read_threads};
use super::workers::diagnose_worker;
use crate::live::dump;
use crate::live::dump::ThreadStack;
use crate::live::gunicorn_config::WorkerClass;
use crate::live::pg_activity::{Backend, BackendActivity};
use crate::live::sampler::Sample;
use crate::report::{Cause, Confidence, Frame, Severity};
use chrono::DateTime;

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pyspy")
}

/// The samples of one recorded state (fixtures/pyspy/<state>/NN.json + times.txt).
fn recorded(state: &str) -> Vec<Sample> {
    let dir = captures().join(state);
    let times = std::fs::read_to_string(dir.join("times.txt")).unwrap();
    times
        .lines()
        .enumerate()
        .map(|(i, ms)| {
            let json = std::fs::read(dir.join(format!("{i:02}.json"))).unwrap();
            Sample {
                at: Duration::from_millis(ms.trim().parse().unwrap()),
                took: Duration::ZERO,
                threads: dump::parse(&json).unwrap(),
            }
        })
        .collect()
}

fn context(timeout: f64) -> LiveContext {
    LiveContext {
        timeout: Some(timeout),
        system_swap_used: Some(0),
        started_at: DateTime::parse_from_rfc3339("2026-11-26T22:43:50Z").unwrap(),
    }
}

fn input(pid: u32, heartbeat_age: Option<f64>, backend: BackendLookup) -> WorkerInput {
    WorkerInput {
        pid,
        exited: false,
        heartbeat_age,
        memory: None,
        backend,
        class: WorkerClass::Sync,
        threads: 1,
        request_thread: false,
    }
}

#[test]
fn every_recorded_state_reads_as_expected() {
    let mut states: Vec<String> = std::fs::read_dir(captures())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("expect.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    states.sort();
    assert!(states.len() >= 6, "captures missing: {states:?}");
    for state in states {
        let expect: serde_json::Value = serde_json::from_slice(
            &std::fs::read(captures().join(&state).join("expect.json")).unwrap(),
        )
        .unwrap();
        let reading = read_stacks(&recorded(&state), 1.0);
        let d = diagnose(
            &reading,
            &input(1, Some(5.0), BackendLookup::NotAsked),
            &context(30.0),
        );
        let got_cause = d.state.cause.map(|c| c.name().to_string());
        assert_eq!(
            got_cause.as_deref(),
            expect["cause"].as_str(),
            "{state}: cause ({})",
            d.reason
        );
        let states: Vec<&str> = match &expect["state"] {
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
            v => v.as_str().into_iter().collect(),
        };
        assert!(
            states.contains(&d.state.state.as_str()),
            "{state}: state {} not in {states:?}",
            d.state.state
        );
        assert_eq!(
            reading.waits_on_database,
            expect["waits_on_database"].as_bool().unwrap(),
            "{state}: waits_on_database"
        );
        match expect["site_contains"].as_str() {
            Some(part) => {
                let frame = d.state.frame.clone().unwrap_or_default();
                assert!(
                    frame.contains(part),
                    "{state}: frame {frame:?} lacks {part:?}"
                );
            }
            None => assert_eq!(d.state.frame, None, "{state}: frame"),
        }
        if d.state.state == "idle" {
            assert_eq!(d.state.seconds_left, None, "{state}: idle has no deadline");
            assert!(d.cause.is_none());
        } else {
            assert_eq!(d.state.seconds_left, Some(25.0), "{state}: 30 s - 5 s");
            assert!(!d.state.hot_frames.is_empty(), "{state}: hot frames");
        }
    }
}

fn backend(pid: i32, state: &str, wait: Option<(&str, &str)>, query: &str) -> Backend {
    Backend {
        pid,
        state: Some(state.into()),
        wait_event_type: wait.map(|w| w.0.into()),
        wait_event: wait.map(|w| w.1.into()),
        query: Some(query.into()),
        query_seconds: Some(4.2),
        xact_seconds: Some(4.2),
        application_name: None,
    }
}

#[test]
fn postgres_tells_a_lock_wait_from_a_slow_statement() {
    let lock = read_stacks(&recorded("db_lock"), 1.0);
    let waiting = BackendActivity {
        backend: backend(
            4242,
            "active",
            Some(("Lock", "transactionid")),
            "SELECT ... FOR UPDATE",
        ),
        awaited_lock: Some("ShareLock on transaction 745".into()),
        blockers: vec![backend(
            4200,
            "idle in transaction",
            None,
            "SELECT pg_sleep(600)",
        )],
    };
    let d = diagnose(
        &lock,
        &input(7, Some(28.0), BackendLookup::Found(Box::new(waiting))),
        &context(30.0),
    );
    assert_eq!(d.cause, Some(Cause::LockWait));
    assert_eq!(d.confidence, Confidence::High);
    assert!(
        d.reason.contains("ShareLock on transaction 745"),
        "{}",
        d.reason
    );
    assert!(d.reason.contains("held by backend 4200"), "{}", d.reason);
    assert_eq!(d.state.seconds_left, Some(2.0));
    assert_eq!(d.severity, Severity::Critical, "2 s left");
    assert!(
        d.extra_advice
            .unwrap()
            .contains("pg_terminate_backend(4200)")
    );

    let slow = read_stacks(&recorded("db_slow"), 1.0);
    let running = BackendActivity {
        backend: backend(
            4243,
            "active",
            Some(("Timeout", "PgSleep")),
            "SELECT pg_sleep(120)",
        ),
        awaited_lock: None,
        blockers: vec![],
    };
    let d = diagnose(
        &slow,
        &input(8, Some(4.0), BackendLookup::Found(Box::new(running))),
        &context(30.0),
    );
    assert_eq!(d.cause, Some(Cause::SlowQuery));
    assert!(d.reason.contains("SELECT pg_sleep(120)"), "{}", d.reason);
    assert_eq!(d.severity, Severity::High);

    // Without --pg: the database wait is named with low confidence and how to tell.
    let d = diagnose(
        &slow,
        &input(8, None, BackendLookup::NotAsked),
        &context(30.0),
    );
    assert_eq!(d.cause, Some(Cause::SlowQuery));
    assert_eq!(d.confidence, Confidence::Low);
    assert!(d.reason.contains("a slow statement or a lock wait"));
    assert!(d.extra_advice.unwrap().contains("pg_blocking_pids"));
    assert_eq!(d.state.seconds_left, None, "no heartbeat, no deadline");
}

/// A loop of lazy loads on a busy machine: PostgreSQL answers slowly, so the thread sits
/// blocked in the same lazy-load stack for over a second. Still N+1, unless PostgreSQL says
/// the backend waits on a lock.
#[test]
fn an_n_plus_one_loop_blocked_for_a_moment_stays_n_plus_one() {
    let mut samples = recorded("nplus1");
    let blocked = samples[0].threads.clone();
    for (i, s) in samples.iter_mut().enumerate() {
        s.threads = blocked.clone();
        for t in &mut s.threads {
            t.active = false;
            if i == 1 {
                // Between two queries: building the next one.
                if let Some(f) = t.frames.last_mut() {
                    f.line += 1;
                }
            }
        }
    }
    let reading = read_stacks(&samples, 1.0);
    assert_eq!(reading.cause, Some(Cause::NPlusOne), "{}", reading.reason);
    assert!(reading.waits_on_database);
    assert!(reading.database_block_seconds >= 1.0);

    let quick = BackendActivity {
        backend: backend(
            4300,
            "active",
            Some(("Client", "ClientRead")),
            "SELECT ... author",
        ),
        awaited_lock: None,
        blockers: vec![],
    };
    let mut quick = quick;
    quick.backend.query_seconds = Some(0.01);
    let d = diagnose(
        &reading,
        &input(11, Some(6.0), BackendLookup::Found(Box::new(quick))),
        &context(30.0),
    );
    assert_eq!(d.cause, Some(Cause::NPlusOne), "{}", d.reason);

    let locked = BackendActivity {
        backend: backend(
            4300,
            "active",
            Some(("Lock", "transactionid")),
            "SELECT ... author",
        ),
        awaited_lock: Some("ShareLock on transaction 9".into()),
        blockers: vec![backend(
            4100,
            "idle in transaction",
            None,
            "UPDATE author ...",
        )],
    };
    let d = diagnose(
        &reading,
        &input(11, Some(6.0), BackendLookup::Found(Box::new(locked))),
        &context(30.0),
    );
    assert_eq!(d.cause, Some(Cause::LockWait), "{}", d.reason);
}

/// Every sample in the same lazy-load stack, blocked: the stacks alone cannot tell a loop
/// from one slow load, PostgreSQL can: its statement is younger than the block.
#[test]
fn postgres_tells_a_loop_of_quick_queries_from_one_slow_one() {
    let mut samples = recorded("nplus1");
    let blocked = samples[0].threads.clone();
    for s in samples.iter_mut() {
        s.threads = blocked.clone();
        for t in &mut s.threads {
            t.active = false;
        }
    }
    let reading = read_stacks(&samples, 1.0);
    assert_eq!(reading.cause, Some(Cause::SlowQuery));
    assert!(reading.waits_on_database && reading.lazy_samples > 0);
    let mut fresh = BackendActivity {
        backend: backend(4300, "idle", None, "SELECT ... author"),
        awaited_lock: None,
        blockers: vec![],
    };
    let d = diagnose(
        &reading,
        &input(12, Some(6.0), BackendLookup::Found(Box::new(fresh.clone()))),
        &context(30.0),
    );
    assert_eq!(d.cause, Some(Cause::NPlusOne), "{}", d.reason);
    fresh.backend.state = Some("active".into());
    fresh.backend.query_seconds = Some(reading.database_block_seconds + 2.0);
    let d = diagnose(
        &reading,
        &input(12, Some(6.0), BackendLookup::Found(Box::new(fresh))),
        &context(30.0),
    );
    assert_eq!(
        d.cause,
        Some(Cause::SlowQuery),
        "one statement as old as the block"
    );
}

#[test]
fn swap_thrashing_is_memory_and_fast_growth_names_a_sleeping_request() {
    let idle = read_stacks(&recorded("idle"), 1.0);
    let mut w = input(9, None, BackendLookup::NotAsked);
    w.memory = Some(MemoryTrend {
        rss_bytes: 900 << 20,
        swap_bytes: 300 << 20,
        rss_growth_bytes: 0,
        major_faults_per_second: 400.0,
        seconds: 3.0,
    });
    let d = diagnose(&idle, &w, &context(30.0));
    assert_eq!(d.cause, Some(Cause::Memory));
    assert_eq!(d.severity, Severity::Critical);
    assert_eq!(d.state.state, "idle");

    let memory = read_stacks(&recorded("memory"), 1.0);
    let mut w = input(10, Some(3.0), BackendLookup::NotAsked);
    w.memory = Some(MemoryTrend {
        rss_bytes: 400 << 20,
        swap_bytes: 0,
        rss_growth_bytes: 300 << 20,
        major_faults_per_second: 0.0,
        seconds: 3.0,
    });
    let d = diagnose(&memory, &w, &context(30.0));
    assert_eq!(d.cause, Some(Cause::Memory));
    assert!(d.reason.contains("RSS grew by 300 MiB"), "{}", d.reason);
}

#[test]
fn findings_group_workers_by_cause_and_call_site() {
    let ctx = context(30.0);
    let up = read_stacks(&recorded("upstream"), 1.0);
    let cpu = read_stacks(&recorded("cpu"), 1.0);
    let idle = read_stacks(&recorded("idle"), 1.0);
    let ds = vec![
        diagnose(&up, &input(1, Some(10.0), BackendLookup::NotAsked), &ctx),
        diagnose(&up, &input(2, Some(12.0), BackendLookup::NotAsked), &ctx),
        diagnose(&cpu, &input(3, Some(1.0), BackendLookup::NotAsked), &ctx),
        diagnose(&idle, &input(4, Some(0.1), BackendLookup::NotAsked), &ctx),
    ];
    let f = findings(&ds);
    assert_eq!(f.len(), 2, "{f:#?}");
    let api = f
        .iter()
        .find(|f| f.cause == Cause::MissingApiTimeout)
        .unwrap();
    assert_eq!(api.pids, vec![1, 2]);
    assert_eq!(api.count, 2);
    assert!(
        api.title.contains("wtapp/views.py:30 in upstream_api_view"),
        "{}",
        api.title
    );
    assert!(
        api.title.contains("18 s before the master's timeout"),
        "{}",
        api.title
    );
    assert!(
        api.evidence
            .iter()
            .any(|e| e.text.contains("socket.py:706"))
    );
    assert!(
        f.iter().all(|f| !f.pids.contains(&4)),
        "idle workers are no finding"
    );
}

const SP: &str = "/venv/lib/python3.11/site-packages";
const LIB: &str = "/usr/lib/python3.11";

fn frame(file: &str, function: &str, line: u32, code: Option<&str>) -> Frame {
    Frame {
        file: file.into(),
        line,
        function: function.into(),
        code: code.map(str::to_string),
    }
}

fn thread(id: u64, name: &str, active: bool, frames: Vec<Frame>) -> ThreadStack {
    ThreadStack {
        thread_id: id,
        os_thread_id: None,
        thread_name: Some(name.into()),
        active,
        owns_gil: active,
        frames,
    }
}

/// gthread's main thread, idle in its selector.
fn gthread_main() -> ThreadStack {
    thread(
        1,
        "MainThread",
        false,
        vec![
            frame("/venv/bin/gunicorn", "<module>", 8, None),
            frame(
                &format!("{SP}/gunicorn/workers/gthread.py"),
                "ThreadWorker.run",
                425,
                None,
            ),
            frame(
                &format!("{LIB}/selectors.py"),
                "EpollSelector.select",
                468,
                None,
            ),
        ],
    )
}

/// A pool thread in `handle_request`, then the given innermost frames.
fn pool_thread(id: u64, active: bool, inner: Vec<Frame>) -> ThreadStack {
    let mut frames = vec![
        frame(
            &format!("{LIB}/threading.py"),
            "Thread._bootstrap",
            1002,
            None,
        ),
        frame(
            &format!("{SP}/gunicorn/workers/gthread.py"),
            "ThreadWorker.handle_request",
            771,
            None,
        ),
        frame(
            &format!("{SP}/django/core/handlers/base.py"),
            "BaseHandler._get_response",
            197,
            None,
        ),
    ];
    frames.extend(inner);
    thread(id, &format!("ThreadPoolExecutor-0_{id}"), active, frames)
}

fn samples_of(threads: impl Fn(usize) -> Vec<ThreadStack>) -> Vec<Sample> {
    (0..10)
        .map(|i| Sample {
            at: Duration::from_millis(200 * i as u64),
            took: Duration::ZERO,
            threads: threads(i),
        })
        .collect()
}

fn gthread_samples() -> Vec<Sample> {
    samples_of(|i| {
        vec![
            pool_thread(
                2,
                false,
                vec![frame(
                    "/srv/app/shop/views.py",
                    "raw_socket_view",
                    42,
                    Some("reply = conn.recv(1024)"),
                )],
            ),
            pool_thread(
                3,
                true,
                vec![frame(
                    "/srv/app/shop/views.py",
                    "primes",
                    59 + (i % 3) as u32,
                    Some("found += 1"),
                )],
            ),
            gthread_main(),
        ]
    })
}

fn gthread_input(heartbeat_age: f64) -> WorkerInput {
    WorkerInput {
        class: WorkerClass::Gthread,
        threads: 4,
        ..input(20, Some(heartbeat_age), BackendLookup::NotAsked)
    }
}

#[test]
fn gthread_threads_are_diagnosed_one_by_one_with_no_deadline() {
    let samples = gthread_samples();
    assert_eq!(class_from_stacks(&samples), Some(WorkerClass::Gthread));
    let primary = read_stacks(&samples, 1.0);
    let threads = read_threads(&samples, 1.0);
    assert_eq!(threads.len(), 2, "the main thread serves nothing");
    let o = diagnose_worker(&primary, &threads, &gthread_input(0.4), &context(30.0));
    let mut causes: Vec<Option<Cause>> = o.requests.iter().map(|r| r.cause).collect();
    causes.sort();
    assert_eq!(
        causes,
        vec![Some(Cause::MissingApiTimeout), Some(Cause::CpuBound)]
    );
    let raw = o
        .requests
        .iter()
        .find(|r| r.cause == Some(Cause::MissingApiTimeout))
        .unwrap();
    assert_eq!(raw.state.outbound, Some("socket"), "{}", raw.reason);
    assert!(raw.reason.contains("raw socket"), "{}", raw.reason);
    for r in &o.requests {
        assert_eq!(r.state.seconds_left, None, "{}", r.reason);
        assert!(r.state.busy_seconds_at_least);
        assert!(r.evidence[0].contains("never times out a request thread"));
        assert!(
            r.evidence
                .iter()
                .any(|e| e == "worker 20: 2 of 4 threads serve requests, 2 left"),
            "{:?}",
            r.evidence
        );
    }
    let state = o.state();
    assert_eq!(
        (state.threads_busy, state.threads_total),
        (Some(2), Some(4))
    );
    assert_eq!(state.seconds_left, None, "the main thread notifies");
    assert_eq!(state.threads.len(), 2);
    let mut names: Vec<&str> = state
        .threads
        .iter()
        .filter_map(|t| t.thread_name.as_deref())
        .collect();
    names.sort();
    assert_eq!(names, ["ThreadPoolExecutor-0_2", "ThreadPoolExecutor-0_3"]);

    let f = findings(&o.requests);
    assert_eq!(f.len(), 2, "{f:#?}");
    for finding in &f {
        assert!(
            finding.title.contains("never kills it (gthread)"),
            "{}",
            finding.title
        );
        assert!(!finding.advice.contains("The log does not say"));
    }
    let raw = f
        .iter()
        .find(|f| f.cause == Cause::MissingApiTimeout)
        .unwrap();
    assert!(raw.advice.contains("settimeout"), "{}", raw.advice);

    // The main thread silent for 5 s: the master will abort the worker, threads and all.
    let o = diagnose_worker(&primary, &threads, &gthread_input(5.0), &context(30.0));
    assert_eq!(o.worker.state.seconds_left, Some(25.0));
    assert!(
        o.requests
            .iter()
            .all(|r| r.state.seconds_left == Some(25.0))
    );
}

#[test]
fn an_exhausted_pool_makes_its_stuck_requests_critical() {
    let samples = gthread_samples();
    let threads = read_threads(&samples, 1.0);
    let mut input = gthread_input(0.4);
    input.threads = 2;
    let o = diagnose_worker(
        &read_stacks(&samples, 1.0),
        &threads,
        &input,
        &context(30.0),
    );
    let stuck: Vec<&WorkerDiagnosis> = o
        .requests
        .iter()
        .filter(|r| r.state.state == "stuck")
        .collect();
    assert!(!stuck.is_empty());
    assert!(stuck.iter().all(|r| r.severity == Severity::Critical));
}

/// uvicorn's main thread: the loop's callback running the app.
fn asyncio_samples(blocked: bool) -> Vec<Sample> {
    samples_of(|i| {
        let mut frames = vec![
            frame("/venv/bin/gunicorn", "<module>", 8, None),
            frame(
                &format!("{SP}/gunicorn/arbiter.py"),
                "Arbiter.run",
                247,
                None,
            ),
            frame(
                &format!("{SP}/uvicorn/workers.py"),
                "UvicornWorker.run",
                104,
                None,
            ),
            frame(
                &format!("{LIB}/asyncio/base_events.py"),
                "BaseEventLoop._run_once",
                1922,
                None,
            ),
        ];
        if blocked || i == 9 {
            frames.extend([
                frame(&format!("{LIB}/asyncio/events.py"), "Handle._run", 80, None),
                frame(
                    "/srv/app/asgiapp.py",
                    "blocking_view",
                    34,
                    Some("requests.get(url)"),
                ),
                frame(&format!("{SP}/requests/api.py"), "get", 87, None),
                frame(&format!("{LIB}/socket.py"), "SocketIO.readinto", 706, None),
            ]);
        } else {
            frames.push(frame(
                &format!("{LIB}/selectors.py"),
                "EpollSelector.select",
                468,
                None,
            ));
        }
        vec![thread(1, "MainThread", false, frames)]
    })
}

#[test]
fn an_event_loop_is_blocked_only_when_one_call_holds_it() {
    let ctx = context(30.0);
    let samples = asyncio_samples(true);
    assert_eq!(class_from_stacks(&samples), Some(WorkerClass::Asyncio));
    let mut w = input(30, Some(12.0), BackendLookup::NotAsked);
    w.class = WorkerClass::Asyncio;
    let reading = read_stacks(&samples, 1.0);
    let o = diagnose_worker(&reading, &read_threads(&samples, 1.0), &w, &ctx);
    assert_eq!(o.worker.cause, Some(Cause::MissingApiTimeout));
    assert_eq!(o.worker.state.loop_blocked, Some(true));
    assert_eq!(o.worker.state.seconds_left, Some(18.0));
    assert_eq!(o.requests.len(), 1);
    let f = findings(&o.requests);
    assert!(f[0].advice.contains("asyncio.to_thread"), "{}", f[0].advice);

    // Seen once, between samples of an idle loop: running, not holding it.
    let samples = asyncio_samples(false);
    let reading = read_stacks(&samples, 1.0);
    let o = diagnose_worker(&reading, &read_threads(&samples, 1.0), &w, &ctx);
    assert_eq!(
        o.worker.state.loop_blocked,
        Some(false),
        "{:?}",
        o.worker.state
    );
    assert_eq!(o.worker.state.seconds_left, None);
}

#[test]
fn live_advice_is_never_the_logs_text() {
    for cause in Cause::ALL {
        assert!(
            !live_advice(cause).contains("The log does not say"),
            "{cause}"
        );
    }
}

/// A fresh worker's first request imports modules for a few tenths of a second before its
/// upstream call blocks: the wait it is in now names it, not the busy start.
#[test]
fn a_request_blocked_on_a_peer_now_is_that_wait_after_a_busy_start() {
    let samples = samples_of(|i| {
        let mut inner = vec![
            frame(
                "/srv/app/shop/views.py",
                "upstream",
                30,
                Some("requests.get(url)"),
            ),
            frame(&format!("{SP}/requests/api.py"), "get", 87, None),
        ];
        inner.push(if i < 6 {
            frame(
                &format!("{LIB}/importlib/__init__.py"),
                "import_module",
                90 + i as u32,
                None,
            )
        } else {
            frame(&format!("{LIB}/socket.py"), "SocketIO.readinto", 706, None)
        });
        vec![pool_thread(2, i < 6, inner)]
    });
    let reading = read_stacks(&samples, 1.0);
    assert_eq!(
        reading.cause,
        Some(Cause::MissingApiTimeout),
        "{}",
        reading.reason
    );
    assert_eq!(reading.call.map(|c| c.client), Some("requests".to_string()));
}

/// Two gthread requests wait on PostgreSQL: the backend found for the worker cannot be given to
/// either; each says so instead of borrowing the other's statement.
#[test]
fn two_database_waits_in_one_gthread_worker_do_not_share_a_backend() {
    let db = |id| {
        pool_thread(
            id,
            false,
            vec![
                frame(
                    "/srv/app/shop/views.py",
                    "report",
                    12,
                    Some("cursor.execute(sql)"),
                ),
                frame(
                    &format!("{SP}/django/db/backends/utils.py"),
                    "CursorWrapper._execute",
                    103,
                    None,
                ),
            ],
        )
    };
    let samples = samples_of(|_| vec![db(2), db(3), gthread_main()]);
    let threads = read_threads(&samples, 1.0);
    assert_eq!(threads.len(), 2);
    let found = BackendActivity {
        backend: backend(4400, "active", Some(("Timeout", "PgSleep")), "SELECT 1"),
        awaited_lock: None,
        blockers: vec![],
    };
    let input = WorkerInput {
        backend: BackendLookup::Found(Box::new(found)),
        ..gthread_input(0.3)
    };
    let o = diagnose_worker(
        &read_stacks(&samples, 1.0),
        &threads,
        &input,
        &context(30.0),
    );
    for r in &o.requests {
        assert_eq!(r.cause, Some(Cause::SlowQuery));
        assert!(!r.database_confirmed, "{}", r.reason);
        assert!(r.reason.contains("matched to a process"), "{}", r.reason);
    }
}

/// What py-spy shows of an idle gevent worker: the hub alone, no Gunicorn frame.
#[test]
fn an_idle_gevent_hub_names_its_class_and_serves_nothing() {
    let hub = |_| {
        vec![ThreadStack {
            thread_name: None,
            ..thread(
                1,
                "",
                false,
                vec![frame(&format!("{SP}/gevent/hub.py"), "Hub.run", 647, None)],
            )
        }]
    };
    let samples = samples_of(hub);
    assert_eq!(class_from_stacks(&samples), Some(WorkerClass::Gevent));
    assert!(read_threads(&samples, 1.0).is_empty());
    let mut w = input(40, Some(0.5), BackendLookup::NotAsked);
    w.class = WorkerClass::Gevent;
    let o = diagnose_worker(&read_stacks(&samples, 1.0), &[], &w, &context(30.0));
    assert_eq!(o.worker.state.state, "idle");
    assert_eq!(o.worker.state.loop_blocked, Some(false));
    assert_eq!(o.worker.state.seconds_left, None);
    assert!(o.requests.is_empty());
}

/// A sync worker aborted in a CPU loop: its last dumps show Gunicorn answering 500 and lingering
/// in `close_graceful` (22+) until the SIGKILL. `watch` reads the request up to its last dump in
/// application code, so the abort's tail is not read as the cause.
#[test]
fn an_aborted_request_is_read_without_the_workers_way_out() {
    let gunicorn = |function: &str, line: u32| {
        frame(
            &format!("{SP}/gunicorn/workers/sync.py"),
            function,
            line,
            None,
        )
    };
    let samples = samples_of(|i| {
        let mut frames = vec![
            frame("/venv/bin/gunicorn", "<module>", 8, None),
            gunicorn("SyncWorker.run_for_one", 68),
            gunicorn("SyncWorker.handle", 141),
        ];
        if i < 7 {
            frames.push(gunicorn("SyncWorker.handle_request", 184));
            frames.push(frame(
                &format!("{SP}/django/core/handlers/base.py"),
                "BaseHandler._get_response",
                197,
                None,
            ));
            frames.push(frame("/app/wtapp/views.py", "count_primes_until", 38, None));
        } else {
            frames.push(frame(
                &format!("{SP}/gunicorn/util.py"),
                "close_graceful",
                312,
                None,
            ));
        }
        // Running in the loop; blocked in close_graceful's recv.
        vec![thread(1, "MainThread", i < 7, frames)]
    });
    let kept = super::reading::serving_samples(&samples);
    assert_eq!(kept, 7);
    let mut killed = input(42, Some(11.0), BackendLookup::NotAsked);
    killed.exited = true;
    let (reading, outcome) =
        super::workers::diagnose_samples(&samples[..kept], &killed, &context(10.0), 1.0);
    assert_eq!(outcome.worker.cause, Some(Cause::CpuBound));
    assert_eq!(
        reading.call_site.map(|f| f.function),
        Some("count_primes_until".to_string())
    );
    // Read whole, the tail outvotes the request.
    let whole = read_stacks(&samples, 0.4);
    assert_ne!(whole.cause, Some(Cause::CpuBound));
}
