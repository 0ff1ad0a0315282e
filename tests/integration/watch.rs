//! `wtdiag watch` beside a real Gunicorn (27.0.1 from the test venv, 20.1.0 from the venv
//! scripts/test-env.sh builds beside it) serving the fixture app, sync workers with a timeout of
//! a few seconds, and a throw-away PostgreSQL: watch is started first, then requests that time
//! out for each cause and one that nearly does. Every process a test starts is stopped by pid
//! when the test ends (Drop guards), and everything listens on 127.0.0.1 only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::common::{TempDir, wtdiag, wtdiag_cmd};
use crate::live::{
    Guarded, Gunicorn, PgCluster, alive, blackhole, proc_state, py_spy_dumping, signal, venv,
    wait_until,
};

/// The master's --timeout here: a worker is caught at 6 s without heartbeat (half the timeout
/// plus the 1 s margin over an idle worker's peak), and killed from 10 s on.
const TIMEOUT: f64 = 10.0;

/// The Gunicorn 20.1 venv scripts/test-env.sh makes beside the test venv.
fn venv_gunicorn20() -> PathBuf {
    let dir = std::env::var_os("WTDIAG_TEST_VENV_GUNICORN20")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            venv()
                .parent()
                .expect("the test venv's directory")
                .join("venv-gunicorn-20.1")
        });
    let gunicorn = dir.join("bin/gunicorn");
    assert!(
        gunicorn.exists(),
        "{}: missing; run scripts/test-env.sh first (it builds the Gunicorn 20.1 venv)",
        gunicorn.display()
    );
    dir
}

/// `wtdiag watch` running in the background, writing to a file; stopped by pid on drop.
struct Watch {
    process: Guarded,
    output: PathBuf,
    stderr: PathBuf,
    _dir: TempDir,
}

impl Watch {
    fn start(name: &str, master: u32, extra: &[&str]) -> Watch {
        let dir = TempDir::new(&format!("watch-{name}"));
        let output = dir.join("incidents.jsonl");
        let stderr = dir.join("stderr");
        let mut cmd = wtdiag_cmd();
        cmd.args(["watch", "--pid", &master.to_string(), "--format", "json"])
            .arg("-o")
            .arg(&output)
            .arg("--py-spy")
            .arg(venv().join("bin/py-spy"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        let process = Guarded::spawn(&mut cmd, "wtdiag watch");
        let w = Watch {
            process,
            output,
            stderr,
            _dir: dir,
        };
        wait_until("watch to start", Duration::from_secs(30), || {
            w.stderr_text().contains("following the workers")
        });
        w
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Every complete JSON line written so far.
    fn lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        text.lines()
            .filter(|l| l.ends_with('}'))
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("not a JSON line ({e}): {l}\n{}", self.stderr_text())
                })
            })
            .collect()
    }

    fn incidents(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["kind"] == "watch_incident")
            .collect()
    }

    /// The incident of worker `pid` serving `request` (a worker that recovered serves again).
    fn incident_of(&self, pid: u32, request: &str) -> Option<Value> {
        let request = format!("GET {request}");
        self.incidents()
            .into_iter()
            .find(|i| i["pid"] == pid && i["request"] == request.as_str())
    }

    /// Sends `sig` and waits for watch to end; returns its exit code and every line.
    fn stop(self, sig: Signal) -> (Option<i32>, Vec<Value>, String) {
        let (code, lines, stderr, _) = self.stop_keeping(sig);
        (code, lines, stderr)
    }

    /// Like [`Watch::stop`], keeping its output file (and its directory) for another run.
    fn stop_keeping(
        mut self,
        sig: Signal,
    ) -> (Option<i32>, Vec<Value>, String, (TempDir, PathBuf)) {
        assert!(signal(self.process.pid(), sig));
        let started = Instant::now();
        let status = self.process.wait();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "watch took {:?} to stop",
            started.elapsed()
        );
        let (lines, stderr) = (self.lines(), self.stderr_text());
        (status.code(), lines, stderr, (self._dir, self.output))
    }
}

/// `GET path`, the answer read, the connection closed.
fn get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to gunicorn");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send request");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
}

/// The worker whose `request start GET path` line comes after the first `seen` lines of the app
/// log.
fn serving_after(g: &Gunicorn, path: &str, seen: usize) -> u32 {
    let suffix = format!(" INFO request start GET {path}");
    let mut found = None;
    wait_until(
        &format!("the app log to show GET {path} started"),
        Duration::from_secs(30),
        || {
            found = g.app_log().lines().skip(seen).find_map(|l| {
                let head = l.strip_suffix(&suffix)?;
                head.rsplit_once(' ')?.1.parse::<u32>().ok()
            });
            found.is_some()
        },
    );
    found.expect("found")
}

fn frames_text(incident: &Value) -> String {
    incident["stack_samples"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["frames"].as_array().into_iter().flatten())
        .filter_map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The acceptance test of issue 14 on one Gunicorn release: each cause killed, one recovery,
/// idle workers never reported.
fn every_cause_is_caught_before_the_kill(version: &str, gunicorn_venv: &Path) {
    let venv = venv();
    // /db/nplus1 builds its books, then loads each author lazily: 40,000 lazy loads outlast the
    // 8 s timeout many times over.
    let pg = PgCluster::start_seeded(&format!("watch-{version}"), &venv, 40_000);
    let (_blackhole, bh_port) = blackhole(&venv);
    let mut holder = pg.client();
    holder
        .batch_execute("BEGIN; SELECT id FROM wtapp_account WHERE id = 1 FOR UPDATE")
        .expect("lock the row");
    let mut g = Gunicorn::start_timed(
        &format!("watch-{version}"),
        gunicorn_venv,
        8,
        ("wtapp.wsgi:application", &["-k", "sync"]),
        Some(&pg),
        Some(bh_port),
        false,
        TIMEOUT,
    );
    assert!(
        g.error_log()
            .contains(&format!("Starting gunicorn {version}")),
        "{}",
        g.error_log()
    );
    // Each worker imports the app's views on its first request (a second on a loaded machine):
    // one short request per worker first, all at once so that each worker takes one.
    for _ in 0..8 {
        g.fire("/cpu/brief?seconds=0.5");
    }
    wait_until(
        "the warm-up requests to end",
        Duration::from_secs(60),
        || g.app_log().matches("request end GET /cpu/brief").count() >= 8,
    );
    let watch = Watch::start(version, g.master(), &["--pg", &pg.dsn()]);

    // (request, path in the app log, cause, view, killed)
    let cases = [
        (
            "/cpu/brief?seconds=7.5",
            "/cpu/brief",
            "cpu_bound",
            "cpu_brief_view",
            false,
        ),
        (
            "/api/upstream?user=42",
            "/api/upstream",
            "missing_api_timeout",
            "upstream_api_view",
            true,
        ),
        ("/db/lock", "/db/lock", "lock_wait", "db_lock_view", true),
        (
            "/db/slow",
            "/db/slow",
            "slow_query",
            "db_slow_query_view",
            true,
        ),
        ("/cpu", "/cpu", "cpu_bound", "cpu_view", true),
        (
            "/db/nplus1",
            "/db/nplus1",
            "n_plus_one",
            "db_nplus1_view",
            true,
        ),
    ];
    let mut busy = Vec::new();
    for (request, path, ..) in cases {
        let seen = g.app_log().lines().count();
        if request.starts_with("/cpu/brief") {
            // A client that reads its answer and closes: Gunicorn 27 lingers up to 2 s in
            // close_graceful for a client that keeps the connection open.
            let port = g.port();
            std::thread::spawn(move || get(port, request));
        } else {
            g.fire(request);
        }
        busy.push(serving_after(&g, path, seen));
        std::thread::sleep(Duration::from_millis(1500));
    }
    let workers_before = g.workers();

    for ((request, _, cause, view, killed), pid) in cases.iter().zip(&busy) {
        wait_until(
            &format!("an incident for {request} (worker {pid})"),
            Duration::from_secs(90),
            || watch.incident_of(*pid, request).is_some(),
        );
        let i = watch.incident_of(*pid, request).expect("incident");
        let expected_outcome = if *killed { "killed" } else { "recovered" };
        assert_eq!(i["outcome"], expected_outcome, "{request}: {i:#}");
        assert_eq!(i["cause"], *cause, "{request}: {i:#}");
        assert!(
            i["frame"].as_str().unwrap_or_default().contains("views.py")
                && (i["view"].as_str().unwrap_or_default().contains(view)
                    || i["frame"].as_str().unwrap_or_default().contains(view)),
            "{request}: {i:#}"
        );
        assert!(frames_text(&i).contains(view), "{request}: {i:#}");
        assert!(i["samples"].as_u64().unwrap() >= 2, "{request}: {i:#}");
        let caught_age = i["max_heartbeat_age"].as_f64().unwrap();
        assert!(caught_age >= 6.0, "{request}: {i:#}");
        if *killed {
            assert!(!alive(*pid), "{request}: worker {pid} still runs");
            // Reported when its end was seen, right after the kill.
            let first_kill_after =
                i["ended_at"].as_str().unwrap() > i["caught_at"].as_str().unwrap();
            assert!(first_kill_after, "{i:#}");
            assert!(i["seconds_left"].is_null(), "{i:#}");
        } else {
            assert!(alive(*pid), "{request}: worker {pid} should have recovered");
            assert!(caught_age < TIMEOUT, "{i:#}");
            assert!(i["seconds_left"].as_f64().unwrap() > 0.0, "{i:#}");
        }
        if cause.starts_with("lock") || cause.starts_with("slow") {
            assert_eq!(i["confidence"], "high", "{request}: {i:#}");
            let pg_view = &i["pg"];
            assert!(pg_view["backend_pid"].is_number(), "{request}: {i:#}");
        }
    }
    let lock = watch.incident_of(busy[2], cases[2].0).unwrap();
    assert_eq!(lock["pg"]["wait_event_type"], "Lock", "{lock:#}");
    assert!(!lock["pg"]["blocked_by"].as_array().unwrap().is_empty());
    let slow = watch.incident_of(busy[3], cases[3].0).unwrap();
    assert!(
        slow["pg"]["query"]
            .as_str()
            .unwrap()
            .contains("pg_sleep(120)"),
        "{slow:#}"
    );
    // Every killed worker was reported by the time the master had replaced it; the idle ones
    // never were.
    let incidents = watch.incidents();
    for i in &incidents {
        let pid = i["pid"].as_u64().unwrap() as u32;
        assert!(
            busy.contains(&pid),
            "an incident for idle worker {pid}: {i:#}"
        );
    }
    assert_eq!(incidents.len(), busy.len(), "{incidents:#?}");
    let idle: Vec<u32> = workers_before
        .iter()
        .copied()
        .filter(|p| !busy.contains(p))
        .collect();
    assert!(!idle.is_empty());

    let (code, lines, stderr, (dir, incidents_file)) = watch.stop_keeping(Signal::SIGINT);
    assert_eq!(code, Some(0), "{stderr}");
    let summary = lines.last().expect("the summary line");
    assert_eq!(summary["command"], "watch", "{summary:#}");
    assert_eq!(summary["summary"]["killed"], 5, "{summary:#}");
    assert_eq!(summary["summary"]["recovered"], 1, "{summary:#}");
    let causes: Vec<&str> = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["cause"].as_str())
        .collect();
    for cause in [
        "missing_api_timeout",
        "lock_wait",
        "slow_query",
        "cpu_bound",
        "n_plus_one",
    ] {
        assert!(causes.contains(&cause), "{cause} not in {causes:?}");
    }

    // `logs` reads watch's JSON Lines beside the error log (told by content): each timeout of a
    // killed worker gets the cause and request watch saw, which 20.1's log alone cannot give.
    let error_log = dir.join("error.log");
    std::fs::write(&error_log, g.error_log()).expect("copy the error log");
    let run = wtdiag(&[
        "logs",
        error_log.to_str().unwrap(),
        incidents_file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert!(
        report["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["format"] == "watch"),
        "{:#}",
        report["inputs"]
    );
    for ((request, _, cause, _, killed), pid) in cases.iter().zip(&busy) {
        if !killed {
            continue;
        }
        let timeout = crate::common::events_of(&report, "worker_timeout")
            .into_iter()
            .find(|e| e["pid"] == *pid)
            .unwrap_or_else(|| panic!("{request}: no WORKER TIMEOUT of {pid} in the log"))
            .clone();
        assert_eq!(timeout["cause"], *cause, "{request}: {timeout:#}");
        assert_eq!(timeout["request"], format!("GET {request}"), "{timeout:#}");
        // Caught, and sampled, seconds before the master's WORKER TIMEOUT (whole seconds).
        let incident = lines
            .iter()
            .find(|l| l["pid"] == *pid && l["kind"] == "watch_incident")
            .unwrap();
        let at = |v: &Value| {
            chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).expect("an RFC 3339 time")
        };
        let lead = at(&timeout["time"]) - at(&incident["caught_at"]);
        assert!(
            lead >= chrono::Duration::seconds(2),
            "{request}: caught {lead} before the timeout: {incident:#}"
        );
    }
    holder.batch_execute("ROLLBACK").ok();
}

#[test]
fn watch_catches_each_cause_before_the_kill_on_gunicorn_27() {
    every_cause_is_caught_before_the_kill("27.0.1", &venv());
}

#[test]
fn watch_catches_each_cause_before_the_kill_on_gunicorn_20_1() {
    every_cause_is_caught_before_the_kill("20.1.0", &venv_gunicorn20());
}

/// Ctrl-C and SIGTERM while a worker is being sampled: py-spy is stopped, the worker runs on,
/// the episode is written as `interrupted`, and the summary follows.
#[test]
fn watch_stopped_mid_sampling_leaves_no_worker_stopped() {
    let venv = venv();
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        let mut g = Gunicorn::start_timed(
            &format!("watch-stop-{sig}"),
            &venv,
            2,
            ("wtapp.wsgi:application", &["-k", "sync"]),
            None,
            None,
            false,
            TIMEOUT,
        );
        let watch = Watch::start(&format!("stop-{sig}"), g.master(), &["--interval", "20ms"]);
        g.fire("/cpu");
        let (busy, started) = g.serving("/cpu");
        let workers = g.workers();
        // Caught at 6 s; the master kills at 10 s: stop in between, while py-spy runs.
        wait_until(
            "py-spy to sample the busy worker",
            Duration::from_secs(30),
            || !py_spy_dumping(&[busy]).is_empty(),
        );
        std::thread::sleep(Duration::from_millis(300));
        let (code, lines, stderr) = watch.stop(sig);
        let ran = started.elapsed().unwrap_or_default();
        assert!(
            ran < Duration::from_secs(8),
            "the master may have killed it: {ran:?}"
        );
        assert_eq!(code, Some(0), "{stderr}");
        for pid in &workers {
            let state = proc_state(*pid);
            assert!(
                !matches!(state, Some('T' | 't')),
                "{sig}: worker {pid} left stopped ({state:?})"
            );
        }
        assert!(alive(busy), "{sig}: the busy worker should still run");
        assert_eq!(py_spy_dumping(&workers), Vec::<String>::new(), "{sig}");
        let incident = lines
            .iter()
            .find(|l| l["kind"] == "watch_incident")
            .unwrap_or_else(|| panic!("{sig}: no incident: {lines:#?}"));
        assert_eq!(incident["pid"], busy);
        assert_eq!(incident["outcome"], "interrupted", "{incident:#}");
        assert_eq!(incident["cause"], "cpu_bound", "{incident:#}");
        assert_eq!(lines.last().unwrap()["command"], "watch");
    }
}

#[test]
fn watch_errors_say_what_to_do_and_exit_2() {
    let venv = venv();
    let py_spy = venv.join("bin/py-spy");
    let py_spy = py_spy.to_str().unwrap();
    let one_line = |args: &[&str], parts: &[&str]| {
        let run = wtdiag(&[&["watch"], args].concat());
        assert_eq!(run.code, 2, "{args:?}: {}\n{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        for p in parts {
            assert!(run.stderr.contains(p), "{:?} lacks {p:?}", run.stderr);
        }
    };
    one_line(
        &["--pid", "4194303", "--py-spy", py_spy],
        &["pid 4194303: no such process", "pgrep"],
    );
    let sleeper = Guarded::spawn(Command::new("sleep").arg("60"), "sleep");
    one_line(
        &["--pid", &sleeper.pid().to_string(), "--py-spy", py_spy],
        &["is not a Python process"],
    );
    let g = Gunicorn::start_timed(
        "watch-errors",
        &venv,
        1,
        ("wtapp.wsgi:application", &["-k", "sync"]),
        None,
        None,
        false,
        TIMEOUT,
    );
    let master = g.master().to_string();
    let worker = g.workers()[0].to_string();
    one_line(
        &["--pid", &worker, "--py-spy", py_spy],
        &[
            "is a worker of the Gunicorn master",
            &format!("--pid {master}"),
        ],
    );
    one_line(
        &["--pid", &master, "--py-spy", "/nonexistent/py-spy"],
        &["--py-spy /nonexistent/py-spy", "no such executable"],
    );
    one_line(
        &["--pid", &master, "--py-spy", py_spy, "--threshold", "10s"],
        &["--threshold 10s", "before the master's timeout of 10 s"],
    );
    one_line(
        &["--pid", &master, "--py-spy", py_spy, "--threshold", "soon"],
        &["--threshold \"soon\"", "0.5"],
    );
    // ptrace refused: another user's master (as root: watch run as nobody, from a copy of the
    // binary nobody can reach).
    let root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    };
    let shared = TempDir::new("watch-as-nobody");
    let copy = shared.join("wtdiag");
    std::fs::copy(env!("CARGO_BIN_EXE_wtdiag"), &copy).expect("copy wtdiag");
    {
        use std::os::unix::fs::PermissionsExt;
        for path in [shared.path(), copy.as_path()] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
    let (mut cmd, target) = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(&copy);
        (c, master.clone())
    } else {
        (Command::new(env!("CARGO_BIN_EXE_wtdiag")), "1".to_string())
    };
    let out = cmd
        .args(["watch", "--pid", &target, "--py-spy", py_spy])
        .output()
        .expect("wtdiag as another user");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for part in ["permission denied", "CAP_SYS_PTRACE"] {
        assert!(stderr.contains(part), "{stderr:?} lacks {part:?}");
    }

    // A lone Python process: no workers to follow.
    let python = Guarded::spawn(
        Command::new(venv.join("bin/python")).args(["-c", "import time; time.sleep(60)"]),
        "python",
    );
    let pid = python.pid().to_string();
    wait_until("python to start", Duration::from_secs(60), || {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|e| e.to_string_lossy().contains("python"))
    });
    one_line(
        &["--pid", &pid, "--py-spy", py_spy],
        &["not a Gunicorn master", "master's pid"],
    );
}

/// A request that grows its worker's memory fast is caught before any timeout, and recorded with
/// its RSS curve and request when the OOM killer (here the test, as make.sh does) takes it.
#[test]
fn watch_catches_fast_memory_growth_before_the_oom_kill() {
    let venv = venv();
    let mut g = Gunicorn::start_timed(
        "watch-memory",
        &venv,
        2,
        ("wtapp.wsgi:application", &["-k", "sync"]),
        None,
        None,
        false,
        TIMEOUT,
    );
    let watch = Watch::start("memory", g.master(), &[]);
    g.fire("/memory");
    let (pid, _) = g.serving("/memory");
    let rss = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    wait_until(
        "the worker to hold 400 MiB",
        Duration::from_secs(30),
        || rss(pid) >= 400 << 20,
    );
    assert!(signal(pid, Signal::SIGKILL), "the OOM killer's stand-in");
    wait_until("the memory incident", Duration::from_secs(30), || {
        watch.incident_of(pid, "/memory").is_some()
    });
    let i = watch.incident_of(pid, "/memory").unwrap();
    assert_eq!(i["caught_by"], "memory", "{i:#}");
    assert_eq!(i["outcome"], "killed", "{i:#}");
    assert_eq!(i["cause"], "memory", "{i:#}");
    assert!(
        i["max_heartbeat_age"].as_f64().unwrap() < TIMEOUT / 2.0,
        "caught long before any timeout: {i:#}"
    );
    let curve: Vec<u64> = i["rss_curve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rss_bytes"].as_u64().unwrap())
        .collect();
    assert!(curve.len() >= 3, "{i:#}");
    assert!(curve.windows(2).all(|w| w[1] >= w[0]), "{curve:?}");
    assert!(curve.last().unwrap() - curve[0] >= 100 << 20, "{curve:?}");
    let (code, lines, stderr) = watch.stop(Signal::SIGTERM);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(lines.last().unwrap()["summary"]["killed"], 1);
}

/// Idle workers whose heartbeats age to exactly half the timeout, again and again: watch ends
/// after --duration with no incident, no py-spy run, and the summary table.
#[test]
fn watch_over_idle_workers_reports_nothing_and_ends_after_its_duration() {
    let venv = venv();
    let g = Gunicorn::start_timed(
        "watch-idle",
        &venv,
        2,
        ("wtapp.wsgi:application", &["-k", "sync"]),
        None,
        None,
        false,
        4.0,
    );
    let started = Instant::now();
    let run = wtdiag(&[
        "watch",
        "--pid",
        &g.master().to_string(),
        "--duration",
        "7s",
        "--py-spy",
        venv.join("bin/py-spy").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(started.elapsed() >= Duration::from_secs(7));
    assert!(
        run.stderr.contains("3.0 s without heartbeat is sampled"),
        "caught at half the timeout plus 1 s: {}",
        run.stderr
    );
    assert!(
        run.stdout.starts_with(
            "\nwtdiag watch: workers followed by heartbeat, caught ones sampled with py-spy; seen: 2 workers"
        ),
        "{}",
        run.stdout
    );
    for absent in ["killed", "recovered", "samples", "idle_catches"] {
        assert!(!run.stdout.contains(absent), "{absent}: {}", run.stdout);
    }
}

/// py-spy failing on one worker (a wrapper that fails every dump of that pid): its incident says
/// so, and the other caught worker is sampled and diagnosed as usual.
#[test]
fn a_py_spy_failing_on_one_worker_leaves_the_others_diagnosed() {
    let venv = venv();
    let (_blackhole, bh_port) = blackhole(&venv);
    let mut g = Gunicorn::start_timed(
        "watch-pyspy-fails",
        &venv,
        3,
        ("wtapp.wsgi:application", &["-k", "sync"]),
        None,
        Some(bh_port),
        false,
        TIMEOUT,
    );
    g.fire("/api/upstream");
    let (failing, _) = g.serving("/api/upstream");
    g.fire("/cpu");
    let (sampled, _) = g.serving("/cpu");
    // Programs run as root must sit where no one else can write: under Cargo's target dir.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("wtdiag-watch-{}-pyspy", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let wrapper = dir.join("py-spy");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = {failing} ]; then\n    \
             echo 'Error: planted failure' >&2; exit 1\n  fi\ndone\nexec {} \"$@\"\n",
            venv.join("bin/py-spy").display()
        ),
    )
    .expect("write the wrapper");
    {
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [(&dir, 0o755), (&wrapper, 0o755)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
    }
    let dir_text = TempDir::new("watch-pyspy-out");
    let output = dir_text.join("incidents.jsonl");
    let mut watch = Guarded::spawn(
        wtdiag_cmd()
            .args([
                "watch",
                "--pid",
                &g.master().to_string(),
                "--format",
                "json",
            ])
            .arg("-o")
            .arg(&output)
            .arg("--py-spy")
            .arg(&wrapper)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "wtdiag watch",
    );
    let incidents = || -> Vec<Value> {
        std::fs::read_to_string(&output)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    };
    let of = |pid: u32| incidents().into_iter().find(|i| i["pid"] == pid);
    wait_until("both incidents", Duration::from_secs(60), || {
        of(failing).is_some() && of(sampled).is_some()
    });
    let f = of(failing).unwrap();
    assert_eq!(f["outcome"], "killed", "{f:#}");
    assert_eq!(f["cause"], "unknown", "{f:#}");
    assert_eq!(f["samples"], 0, "{f:#}");
    assert!(
        f["sampling_error"]
            .as_str()
            .unwrap_or_default()
            .contains("planted failure"),
        "{f:#}"
    );
    let s = of(sampled).unwrap();
    assert_eq!(s["cause"], "cpu_bound", "{s:#}");
    assert!(s["samples"].as_u64().unwrap() >= 2, "{s:#}");
    assert!(signal(watch.pid(), Signal::SIGTERM));
    assert_eq!(watch.wait().code(), Some(0));
    let summary = incidents().pop().unwrap();
    assert!(
        summary["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "samples_failed"
                && w["message"]
                    .as_str()
                    .unwrap()
                    .contains(&failing.to_string())),
        "{summary:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kill -HUP` the master: Gunicorn replaces every worker; watch follows the new ones and catches
/// a request on one of them.
#[test]
fn watch_follows_the_new_workers_after_a_reload() {
    let venv = venv();
    let g = Gunicorn::start_timed(
        "watch-hup",
        &venv,
        2,
        ("wtapp.wsgi:application", &["-k", "sync"]),
        None,
        None,
        false,
        TIMEOUT,
    );
    let watch = Watch::start("hup", g.master(), &[]);
    let before = g.workers();
    assert!(signal(g.master(), Signal::SIGHUP));
    wait_until(
        "the workers to be replaced",
        Duration::from_secs(60),
        || {
            let now = g.workers();
            now.len() == 2 && now.iter().all(|p| !before.contains(p))
        },
    );
    let seen = g.app_log().lines().count();
    let port = g.port();
    let client = std::thread::spawn(move || get(port, "/cpu/brief?seconds=7.5"));
    let pid = serving_after(&g, "/cpu/brief", seen);
    assert!(!before.contains(&pid));
    wait_until("the new worker's incident", Duration::from_secs(60), || {
        watch.incident_of(pid, "/cpu/brief?seconds=7.5").is_some()
    });
    let i = watch.incident_of(pid, "/cpu/brief?seconds=7.5").unwrap();
    assert_eq!(i["outcome"], "recovered", "{i:#}");
    assert_eq!(i["cause"], "cpu_bound", "{i:#}");
    assert!(client.join().unwrap().contains("primes"));
    let (code, lines, stderr) = watch.stop(Signal::SIGTERM);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        lines.last().unwrap()["summary"]["workers"],
        4,
        "{:#}",
        lines.last().unwrap()
    );
}

/// gevent: a CPU loop never yields to the hub, so the hub's heartbeat (every second) stops; watch
/// catches the worker at the threshold (an idle gevent worker's heartbeat is never older than a
/// second or so) and names the loop, with the worker class.
#[test]
fn watch_catches_a_gevent_worker_whose_hub_is_blocked() {
    let venv = venv();
    let mut g = Gunicorn::start_timed(
        "watch-gevent",
        &venv,
        2,
        ("wtapp.wsgi:application", &["-k", "gevent"]),
        None,
        None,
        false,
        TIMEOUT,
    );
    let watch = Watch::start("gevent", g.master(), &[]);
    assert!(
        watch.stderr_text().contains("5.0 s without heartbeat"),
        "{}",
        watch.stderr_text()
    );
    g.fire("/cpu");
    let (pid, _) = g.serving("/cpu");
    wait_until(
        "the gevent worker's incident",
        Duration::from_secs(60),
        || watch.incident_of(pid, "/cpu").is_some(),
    );
    let i = watch.incident_of(pid, "/cpu").unwrap();
    assert_eq!(i["worker_class"], "gevent", "{i:#}");
    assert_eq!(i["cause"], "cpu_bound", "{i:#}");
    assert_eq!(i["outcome"], "killed", "{i:#}");
    assert_eq!(i["loop_blocked"], true, "{i:#}");
    let (code, lines, stderr) = watch.stop(Signal::SIGTERM);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(lines.last().unwrap()["summary"]["incidents"], 1);
}

/// gthread: only the main thread's loop notifies the master, so a request thread stuck in I/O
/// never stales the heartbeat; one holding the GIL in C code (the regex engine backtracking)
/// starves the main thread, and then the master does kill the worker. watch catches that one.
#[test]
fn watch_catches_a_gthread_worker_whose_main_thread_is_starved() {
    let venv = venv();
    let mut g = Gunicorn::start_timed(
        "watch-gthread",
        &venv,
        2,
        (
            "wtapp.wsgi:application",
            &["-k", "gthread", "--threads", "2"],
        ),
        None,
        None,
        false,
        TIMEOUT,
    );
    let watch = Watch::start("gthread", g.master(), &[]);
    g.fire("/regex");
    let (pid, _) = g.serving("/regex");
    wait_until(
        "the gthread worker's incident",
        Duration::from_secs(60),
        || watch.incident_of(pid, "/regex").is_some(),
    );
    let i = watch.incident_of(pid, "/regex").unwrap();
    assert_eq!(i["worker_class"], "gthread", "{i:#}");
    assert_eq!(i["outcome"], "killed", "{i:#}");
    assert_eq!(i["cause"], "cpu_bound", "{i:#}");
    assert!(
        i["frame"]
            .as_str()
            .unwrap_or_default()
            .contains("regex_view"),
        "{i:#}"
    );
    let (code, lines, stderr) = watch.stop(Signal::SIGTERM);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(lines.last().unwrap()["summary"]["incidents"], 1);
}

/// uvicorn's worker: a sync call inside `async def` holds the event loop, whose tick is the
/// heartbeat (every timeout / 2, as a sync worker's): caught at half the timeout plus 1 s.
/// An ASGI request has no WSGI environ, so the request line is unknown (null).
#[test]
fn watch_catches_a_uvicorn_worker_whose_loop_is_blocked() {
    let venv = venv();
    let (_blackhole, bh_port) = blackhole(&venv);
    let mut g = Gunicorn::start_timed(
        "watch-uvicorn",
        &venv,
        2,
        ("asgiapp:app", &["-k", "uvicorn.workers.UvicornWorker"]),
        None,
        Some(bh_port),
        false,
        TIMEOUT,
    );
    let watch = Watch::start("uvicorn", g.master(), &[]);
    assert!(
        watch.stderr_text().contains("6.0 s without heartbeat"),
        "{}",
        watch.stderr_text()
    );
    g.fire("/blocking");
    let (pid, _) = g.serving("/blocking");
    let of = || watch.incidents().into_iter().find(|i| i["pid"] == pid);
    wait_until(
        "the uvicorn worker's incident",
        Duration::from_secs(60),
        || of().is_some(),
    );
    let i = of().unwrap();
    assert_eq!(i["worker_class"], "asyncio", "{i:#}");
    assert_eq!(i["outcome"], "killed", "{i:#}");
    assert_eq!(i["cause"], "missing_api_timeout", "{i:#}");
    assert_eq!(i["loop_blocked"], true, "{i:#}");
    assert!(i["request"].is_null(), "{i:#}");
    let (code, _, stderr) = watch.stop(Signal::SIGTERM);
    assert_eq!(code, Some(0), "{stderr}");
}

/// A long episode sampled fast: the incident reads the latest 150 dumps (and counts them all),
/// 5 stack samples and at most 120 memory points, whatever the episode's length.
#[test]
fn a_long_episode_keeps_bounded_samples() {
    let venv = venv();
    let mut g = Gunicorn::start_timed(
        "watch-bounded",
        &venv,
        1,
        ("wtapp.wsgi:application", &["-k", "gevent"]),
        None,
        None,
        false,
        20.0,
    );
    // gevent notifies every second: a 2 s threshold catches the loop 18 s before the kill.
    let watch = Watch::start(
        "bounded",
        g.master(),
        &["--threshold", "2s", "--interval", "10ms"],
    );
    g.fire("/cpu");
    let (pid, _) = g.serving("/cpu");
    wait_until(
        "the long episode's incident",
        Duration::from_secs(90),
        || watch.incident_of(pid, "/cpu").is_some(),
    );
    let i = watch.incident_of(pid, "/cpu").unwrap();
    assert_eq!(i["outcome"], "killed", "{i:#}");
    // The latest 150 are kept (those after the abort are not read as the request).
    let (read, taken) = (
        i["samples"].as_u64().unwrap(),
        i["samples_taken"].as_u64().unwrap(),
    );
    assert!(
        taken > 150 && (100..=150).contains(&read),
        "{read} of {taken}: {i:#}"
    );
    assert!(i["stack_samples"].as_array().unwrap().len() <= 5);
    assert!(i["rss_curve"].as_array().unwrap().len() <= 120);
    assert_eq!(i["cause"], "cpu_bound", "{i:#}");
    let (code, _, stderr) = watch.stop(Signal::SIGTERM);
    assert_eq!(code, Some(0), "{stderr}");
}
