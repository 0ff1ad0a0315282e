//! `wtdiag live` against a real Gunicorn (from the test venv that scripts/test-env.sh builds)
//! serving the fixture app (fixtures/app), with a throw-away PostgreSQL cluster for the tests
//! that need one (fixtures/lib/pgcluster.sh). Requests that hang are fired at the workers, then
//! the real binary samples them through the real py-spy. Every process a test starts is stopped
//! by pid when the test ends, pass or fail (Drop guards).

use std::cell::Cell;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use chrono::{NaiveDateTime, TimeZone, Utc};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::common::{Run, TempDir, fixture, wtdiag, wtdiag_cmd};

/// The master's --timeout in these tests: long enough that no worker is killed while sampled.
pub(crate) const TIMEOUT: f64 = 20.0;

pub(crate) fn venv() -> PathBuf {
    let dir = std::env::var_os("WTDIAG_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| fixture(".cache/venv-test"));
    for tool in ["gunicorn", "py-spy", "python"] {
        let path = dir.join("bin").join(tool);
        assert!(
            path.exists(),
            "{}: missing; run scripts/test-env.sh first (it builds the test venv with Gunicorn, \
             Django, psycopg2 and py-spy, and installs PostgreSQL)",
            path.display()
        );
    }
    dir
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

pub(crate) fn signal(pid: u32, sig: Signal) -> bool {
    kill(Pid::from_raw(pid as i32), sig).is_ok()
}

/// The state letter of /proc/PID/stat, None when the process is gone.
pub(crate) fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.chars().next().filter(|s| *s != 'Z' && *s != 'X')
}

pub(crate) fn alive(pid: u32) -> bool {
    proc_state(pid).is_some()
}

/// Sends `sig`, waits up to `grace` for the process to go, then SIGKILLs it.
pub(crate) fn stop_pid(pid: u32, sig: Signal, grace: Duration) {
    if !alive(pid) {
        return;
    }
    signal(pid, sig);
    let until = Instant::now() + grace;
    while alive(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        signal(pid, Signal::SIGKILL);
    }
}

pub(crate) fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < until,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Direct children of `pid`, from /proc.
pub(crate) fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let ppid = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) && alive(child) {
            out.push(child);
        }
    }
    out.sort_unstable();
    out
}

/// A child process stopped (SIGTERM, then SIGKILL) by pid when dropped.
pub(crate) struct Guarded {
    child: Child,
}

impl Guarded {
    pub(crate) fn spawn(cmd: &mut Command, what: &str) -> Guarded {
        Guarded {
            child: cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {what}: {e}")),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to end by itself.
    pub(crate) fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for the child")
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        stop_pid(self.pid(), Signal::SIGTERM, Duration::from_secs(5));
        let _ = self.child.wait();
    }
}

/// A throw-away PostgreSQL 15 cluster on 127.0.0.1 (fixtures/lib/pgcluster.sh), seeded with the
/// fixture app's tables; its postmaster is stopped by pid on drop.
pub(crate) struct PgCluster {
    port: u16,
    postmaster: u32,
    _dir: TempDir,
    _slot: Slot,
}

impl PgCluster {
    pub(crate) fn start(name: &str, venv: &Path) -> PgCluster {
        // /db/nplus1 must outlast both samplings (~8 s) on a fast machine: ~0.2-0.3 ms a
        // lazy load makes 80 000 books 16-24 s; seeding them takes ~2 s.
        PgCluster::start_seeded(name, venv, 80_000)
    }

    /// A cluster whose fixture app has `books` books (few when no test reads them).
    pub(crate) fn start_seeded(name: &str, venv: &Path, books: u32) -> PgCluster {
        let slot = Slot::take();
        let dir = TempDir::new(&format!("live-pg-{name}"));
        let lib = fixture("lib/pgcluster.sh");
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#". "$1" && pg_cluster_start "$2" >&2 && echo "$PGPORT $PG_CLUSTER_PID""#)
            .arg("bash")
            .arg(&lib)
            .arg(dir.path())
            .output()
            .expect("bash");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.split_whitespace();
        let (Some(port), Some(pid)) = (
            parts.next().and_then(|p| p.parse().ok()),
            parts.next().and_then(|p| p.parse().ok()),
        ) else {
            panic!(
                "PostgreSQL did not start ({}); run scripts/test-env.sh (it installs \
                 postgresql-15):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let pg = PgCluster {
            port,
            postmaster: pid,
            _dir: dir,
            _slot: slot,
        };
        let mut setup = Command::new(venv.join("bin/python"));
        setup
            .arg(fixture("app/setup_db.py"))
            .env("WTAPP_BOOKS", books.to_string());
        pg.env(&mut setup);
        let out = setup.output().expect("setup_db.py");
        assert!(
            out.status.success(),
            "fixtures/app/setup_db.py failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    pub(crate) fn env(&self, cmd: &mut Command) {
        cmd.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres")
            .env("PGDATABASE", "wtapp")
            .env_remove("PGPASSWORD");
    }

    pub(crate) fn dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=wtapp",
            self.port
        )
    }

    pub(crate) fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.dsn(), postgres::NoTls)
            .expect("connect to the test cluster")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown.
        stop_pid(self.postmaster, Signal::SIGINT, Duration::from_secs(15));
    }
}

/// fixtures/app/blackhole.py: accepts connections and never answers.
pub(crate) fn blackhole(venv: &Path) -> (Guarded, u16) {
    let port = free_port();
    let guard = Guarded::spawn(
        Command::new(venv.join("bin/python"))
            .arg(fixture("app/blackhole.py"))
            .arg(port.to_string())
            .stdout(Stdio::null()),
        "blackhole.py",
    );
    wait_until("blackhole.py to listen", Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (guard, port)
}

/// `gunicorn wtapp.wsgi:application -w N -k sync --timeout 20` from the test venv. On drop the
/// master gets SIGTERM (2 s of graceful timeout), then it and every worker it had SIGKILL.
pub(crate) struct Gunicorn {
    master: Option<Guarded>,
    port: u16,
    dir: TempDir,
    /// Held open so the requests stay in flight.
    requests: Vec<TcpStream>,
    /// Released after the processes are stopped.
    _slot: Slot,
}

static SERVERS: Mutex<()> = Mutex::new(());

thread_local! {
    static HOLDS_SERVERS: Cell<bool> = const { Cell::new(false) };
}

/// One test at a time runs servers (PostgreSQL, Gunicorn): their set-up and CPU-bound requests
/// would otherwise slow the requests that a test beside them samples. Taken by the first server
/// a test starts and held until that server is dropped; the test's later servers share it.
pub(crate) struct Slot(Option<MutexGuard<'static, ()>>);

impl Slot {
    fn take() -> Slot {
        if HOLDS_SERVERS.get() {
            return Slot(None);
        }
        let guard = SERVERS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        HOLDS_SERVERS.set(true);
        Slot(Some(guard))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.0.take().is_some() {
            HOLDS_SERVERS.set(false);
        }
    }
}

impl Gunicorn {
    pub(crate) fn start(
        name: &str,
        venv: &Path,
        workers: usize,
        pg: Option<&PgCluster>,
        blackhole_port: Option<u16>,
    ) -> Gunicorn {
        Gunicorn::start_with(
            name,
            venv,
            workers,
            ("wtapp.wsgi:application", &["-k", "sync"]),
            pg,
            blackhole_port,
            false,
        )
    }

    /// Like [`Gunicorn::start`], with another app (`asgiapp:app`) and worker options
    /// (`-k gevent`, `--threads 4`). `niced` runs it under `nice -n 15` (`nice` execs, so the
    /// pid is Gunicorn's), so that its CPU-bound requests slow the tests running beside it as
    /// little as possible.
    pub(crate) fn start_with(
        name: &str,
        venv: &Path,
        workers: usize,
        app_args: (&str, &[&str]),
        pg: Option<&PgCluster>,
        blackhole_port: Option<u16>,
        niced: bool,
    ) -> Gunicorn {
        Gunicorn::start_timed(
            name,
            venv,
            workers,
            app_args,
            pg,
            blackhole_port,
            niced,
            TIMEOUT,
        )
    }

    /// Like [`Gunicorn::start_with`], with the master's `--timeout` (`wtdiag watch`'s tests let
    /// workers be killed).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_timed(
        name: &str,
        venv: &Path,
        workers: usize,
        (app, worker_args): (&str, &[&str]),
        pg: Option<&PgCluster>,
        blackhole_port: Option<u16>,
        niced: bool,
        timeout: f64,
    ) -> Gunicorn {
        let slot = Slot::take();
        let dir = TempDir::new(&format!("live-gunicorn-{name}"));
        let port = free_port();
        let gunicorn = venv.join("bin/gunicorn");
        let mut cmd = if niced {
            let mut nice = Command::new("nice");
            nice.args(["-n", "15"]).arg(&gunicorn);
            nice
        } else {
            Command::new(&gunicorn)
        };
        cmd.current_dir(fixture("app"))
            .args([app, "-b"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-w", &workers.to_string()])
            .args(worker_args)
            .args([
                "--timeout",
                &format!("{timeout:.0}"),
                "--graceful-timeout",
                "2",
            ])
            .arg("--error-logfile")
            .arg(dir.join("error.log"))
            .env("WTAPP_LOG", dir.join("app.log"))
            .env("TZ", "UTC")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("GUNICORN_CMD_ARGS")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = blackhole_port {
            cmd.env("WTAPP_BLACKHOLE_PORT", p.to_string());
        }
        if let Some(pg) = pg {
            pg.env(&mut cmd);
        }
        let g = Gunicorn {
            master: Some(Guarded::spawn(&mut cmd, "gunicorn")),
            port,
            dir,
            requests: Vec::new(),
            _slot: slot,
        };
        let log = g.dir.join("error.log");
        wait_until(
            &format!("{workers} Gunicorn workers to boot"),
            Duration::from_secs(60),
            || {
                std::fs::read_to_string(&log)
                    .map(|t| t.matches("Booting worker with pid").count() >= workers)
                    .unwrap_or(false)
            },
        );
        g
    }

    pub(crate) fn master(&self) -> u32 {
        self.master.as_ref().expect("master").pid()
    }

    pub(crate) fn workers(&self) -> Vec<u32> {
        children(self.master())
    }

    /// Sends `GET path` and reads the whole answer (e.g. `/ok`, to have a worker import the app's
    /// views before the requests a test samples).
    pub(crate) fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to gunicorn");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send request");
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut s, &mut answer).expect("read the answer");
        answer
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The app's request log.
    pub(crate) fn app_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("app.log")).unwrap_or_default()
    }

    /// The master's error log.
    pub(crate) fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Sends `GET path` and keeps the connection open.
    pub(crate) fn fire(&mut self, path: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to gunicorn");
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send request");
        self.requests.push(s);
    }

    /// The worker serving `path` and when its request started, from the app's request log.
    pub(crate) fn serving(&self, path: &str) -> (u32, SystemTime) {
        let log = self.dir.join("app.log");
        let suffix = format!(" INFO request start GET {path}");
        let mut found = None;
        wait_until(
            &format!("the app log to show GET {path} started"),
            Duration::from_secs(30),
            || {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                found = text.lines().find_map(|l| {
                    let head = l.strip_suffix(&suffix)?;
                    let (stamp, pid) = head.rsplit_once(' ')?;
                    let t = NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S,%3f").ok()?;
                    Some((
                        pid.parse().ok()?,
                        SystemTime::from(Utc.from_utc_datetime(&t)),
                    ))
                });
                found.is_some()
            },
        );
        found.expect("found")
    }
}

impl Drop for Gunicorn {
    fn drop(&mut self) {
        let workers = self
            .master
            .as_ref()
            .map(|m| children(m.pid()))
            .unwrap_or_default();
        self.requests.clear();
        drop(self.master.take());
        for w in workers {
            stop_pid(w, Signal::SIGKILL, Duration::from_secs(2));
        }
    }
}

/// `wtdiag live ARGS --py-spy <the test venv's py-spy>`: wtdiag never picks the py-spy beside
/// its target by itself.
pub(crate) fn live(args: &[&str]) -> Run {
    let py_spy = venv().join("bin/py-spy");
    let py_spy = py_spy.to_str().expect("a UTF-8 venv path");
    wtdiag(&[&["live"], args, &["--py-spy", py_spy]].concat())
}

pub(crate) fn worker(report: &Value, pid: u32) -> &Value {
    report["workers"]
        .as_array()
        .expect("workers array")
        .iter()
        .find(|w| w["pid"] == pid)
        .unwrap_or_else(|| panic!("no worker {pid} in {:#}", report["workers"]))
}

/// The issue's acceptance test: four kinds of stuck worker and idle ones, one `wtdiag live`.
#[test]
fn live_names_the_cause_of_each_busy_worker_and_none_for_idle_ones() {
    let venv = venv();
    let pg = PgCluster::start("causes", &venv);
    let (_blackhole, bh_port) = blackhole(&venv);
    // Hold the row lock /db/lock waits for.
    let mut holder = pg.client();
    holder
        .batch_execute("BEGIN; SELECT id FROM wtapp_account WHERE id = 1 FOR UPDATE")
        .expect("lock the row");
    let holder_pid: i32 = pg
        .client()
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE state = 'idle in transaction' AND datname = 'wtapp'",
            &[],
        )
        .expect("the lock holder's backend")
        .get(0);

    let mut g = Gunicorn::start("causes", &venv, 7, Some(&pg), Some(bh_port));
    let endpoints = [
        ("/api/upstream", "missing_api_timeout", "upstream_api_view"),
        ("/cpu", "cpu_bound", "count_primes_until"),
        ("/db/lock", "lock_wait", "db_lock_view"),
        ("/db/slow", "slow_query", "db_slow_query_view"),
        ("/db/nplus1", "n_plus_one", "db_nplus1_view"),
    ];
    for (path, _, _) in endpoints {
        g.fire(path);
    }
    let busy: Vec<(u32, SystemTime)> = endpoints.iter().map(|(p, _, _)| g.serving(p)).collect();
    let mut monitor = pg.client();
    wait_until(
        "/db/lock to wait on the row lock",
        Duration::from_secs(20),
        || {
            monitor
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                    &[],
                )
                .map(|r| r.get::<_, i64>(0) == 1)
                .unwrap_or(false)
        },
    );
    // /db/nplus1 first builds its 80,000 Book objects (CPU in Python), then loads each
    // author lazily: sample once the lazy loads have begun (a loaded machine builds slowly).
    wait_until(
        "/db/nplus1 to be in its N+1 loop",
        Duration::from_secs(60),
        || {
            monitor
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%wtapp_author%' \
                     AND query NOT LIKE '%pg_stat_activity%'",
                    &[],
                )
                .map(|r| r.get::<_, i64>(0) >= 1)
                .unwrap_or(false)
        },
    );
    let master = g.master();
    let workers = g.workers();
    assert_eq!(workers.len(), 7);

    let before = SystemTime::now();
    let run = live(&[
        "--pid",
        &master.to_string(),
        "--duration",
        "3s",
        "--pg",
        &pg.dsn(),
        "--format",
        "json",
    ]);
    let after = SystemTime::now();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let report = run.json();
    assert_eq!(report["command"], "live");
    assert_eq!(report["workers"].as_array().unwrap().len(), 7, "{report:#}");

    for ((path, cause, view), (pid, started)) in endpoints.iter().zip(&busy) {
        let w = worker(&report, *pid);
        assert_eq!(
            w["cause"], *cause,
            "{path}: {w:#}\nfindings: {:#}",
            report["findings"]
        );
        assert!(
            matches!(w["state"].as_str(), Some("busy" | "stuck")),
            "{path}: {w:#}"
        );
        let frame = w["frame"].as_str().unwrap_or_default();
        assert!(
            frame.contains("views.py:") && frame.contains(view),
            "{path}: frame {frame:?}"
        );
        // Seconds left: the master's --timeout minus how long the request has run. wtdiag reads
        // the heartbeat between `before` and `after`; the worker touched it just before it
        // accepted the request, which the app logged moments later (0.1 s: log rounding).
        let left = w["seconds_left"]
            .as_f64()
            .unwrap_or_else(|| panic!("{path}: {w:#}"));
        let ran = |at: SystemTime| {
            at.duration_since(*started)
                .unwrap_or_default()
                .as_secs_f64()
        };
        let (least, most) = (TIMEOUT - ran(after) - 1.0, TIMEOUT - ran(before) + 0.1);
        assert!(
            left >= least && left <= most && left > 0.0 && left < TIMEOUT,
            "{path}: seconds_left {left}, expected within [{least:.1}, {most:.1}]"
        );
        let busy_for = w["busy_seconds"].as_f64().unwrap();
        assert!((busy_for + left - TIMEOUT).abs() <= 0.2, "{path}: {w:#}");
        let finding = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["pids"].as_array().unwrap().contains(&Value::from(*pid)))
            .unwrap_or_else(|| panic!("{path}: no finding for worker {pid}"));
        assert_eq!(finding["cause"], *cause);
    }
    let stuck_on_socket = worker(&report, busy[0].0);
    assert_eq!(stuck_on_socket["state"], "stuck");
    assert!(stuck_on_socket["stuck_seconds"].as_f64().unwrap() >= 2.0);

    let lock = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cause"] == "lock_wait")
        .unwrap();
    assert!(
        lock["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("held by backend {holder_pid}")),
        "{lock:#}"
    );
    assert_eq!(lock["confidence"], "high");
    let slow = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cause"] == "slow_query")
        .unwrap();
    assert!(
        slow["reason"].as_str().unwrap().contains("pg_sleep(120)"),
        "{slow:#}"
    );
    // What the stacks and PostgreSQL exclude, said per finding.
    let ruled = |f: &Value| -> Vec<String> {
        f["ruled_out"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["cause"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(ruled(lock).contains(&"slow_query".into()), "{lock:#}");
    assert!(ruled(slow).contains(&"lock_wait".into()), "{slow:#}");
    let upstream = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cause"] == "missing_api_timeout")
        .unwrap();
    for c in ["slow_query", "lock_wait", "cpu_bound"] {
        assert!(ruled(upstream).contains(&c.into()), "{c}: {upstream:#}");
    }

    let busy_pids: Vec<u32> = busy.iter().map(|b| b.0).collect();
    for pid in workers.iter().filter(|p| !busy_pids.contains(p)) {
        let w = worker(&report, *pid);
        assert_eq!(w["state"], "idle", "{w:#}");
        assert!(w["cause"].is_null() && w["seconds_left"].is_null(), "{w:#}");
    }

    // Without --pg, the table says the database wait may be either, and how to tell. (The N+1
    // worker is not checked here: on a loaded machine its lazy loads can all look like one
    // blocked query, which only --pg tells apart.)
    let run = live(&["--pid", &master.to_string(), "--duration", "1s"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    for text in [
        "Workers",
        "missing_api_timeout",
        "cpu_bound",
        "slow_query",
        "upstream_api_view",
        "database_wait_unrefined",
        "pg_blocking_pids",
    ] {
        assert!(
            run.stdout.contains(text),
            "table lacks {text:?}:\n{}",
            run.stdout
        );
    }
    // No worker and no finding is called lock_wait without --pg (it may be named among the
    // causes a finding rules out).
    let claimed = run.stdout.lines().any(|l| {
        l.contains("┆ lock_wait ")
            || (l.starts_with('#') && l.split_whitespace().nth(1) == Some("lock_wait"))
    });
    assert!(!claimed, "{}", run.stdout);
    holder.batch_execute("ROLLBACK").ok();
}

#[test]
fn live_on_one_worker_pid_reads_the_timeout_from_its_master() {
    let venv = venv();
    let (_blackhole, bh_port) = blackhole(&venv);
    let mut g = Gunicorn::start("one", &venv, 2, None, Some(bh_port));
    g.fire("/api/upstream");
    let (pid, _) = g.serving("/api/upstream");
    let run = live(&[
        "--pid",
        &pid.to_string(),
        "--duration",
        "1s",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let report = run.json();
    let workers = report["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "only the given worker: {report:#}");
    assert_eq!(workers[0]["cause"], "missing_api_timeout");
    let left = workers[0]["seconds_left"].as_f64().unwrap();
    assert!(left > TIMEOUT - 10.0 && left < TIMEOUT, "{left}");
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["code"] != "timeout_assumed"),
        "the timeout comes from the master's --timeout: {report:#}"
    );
}

/// py-spy processes that are still dumping one of `pids`.
pub(crate) fn py_spy_dumping(pids: &[u32]) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("py-spy"))
            && pids.iter().any(|p| args.contains(&p.to_string()))
        {
            out.push(args.join(" "));
        }
    }
    out
}

#[test]
fn live_stops_cleanly_on_ctrl_c_and_never_leaves_a_worker_stopped() {
    let venv = venv();
    let mut g = Gunicorn::start("ctrl-c", &venv, 2, None, None);
    g.fire("/cpu");
    let (busy, _) = g.serving("/cpu");
    let workers = g.workers();
    let child = wtdiag_cmd()
        .args([
            "live",
            "--pid",
            &g.master().to_string(),
            "--duration",
            "60s",
        ])
        .args(["--interval", "50ms", "--format", "json", "--py-spy"])
        .arg(venv.join("bin/py-spy"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wtdiag");
    let wtdiag_pid = child.id();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(signal(wtdiag_pid, Signal::SIGINT));
    let out = child.wait_with_output().expect("wtdiag ends");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "wtdiag took {:?} to stop after Ctrl-C",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "interrupted"),
        "{report:#}"
    );
    assert_eq!(worker(&report, busy)["cause"], "cpu_bound");
    for pid in &workers {
        let state = proc_state(*pid);
        assert!(
            !matches!(state, Some('T' | 't')),
            "worker {pid} left stopped ({state:?})"
        );
    }
    assert_eq!(
        py_spy_dumping(&workers),
        Vec::<String>::new(),
        "py-spy left running"
    );
}

#[test]
fn live_keeps_the_other_workers_when_one_exits_mid_sample() {
    let venv = venv();
    let (_blackhole, bh_port) = blackhole(&venv);
    let mut g = Gunicorn::start("exit", &venv, 2, None, Some(bh_port));
    g.fire("/api/upstream");
    let (busy, _) = g.serving("/api/upstream");
    let victim = *g
        .workers()
        .iter()
        .find(|p| **p != busy)
        .expect("an idle worker");
    let child = wtdiag_cmd()
        .args(["live", "--pid", &g.master().to_string(), "--duration", "3s"])
        .args(["--format", "json", "--py-spy"])
        .arg(venv.join("bin/py-spy"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wtdiag");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(signal(victim, Signal::SIGKILL));
    let out = child.wait_with_output().expect("wtdiag ends");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let warning = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "worker_exited")
        .unwrap_or_else(|| panic!("no worker_exited warning: {report:#}"));
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains(&victim.to_string()),
        "{warning:#}"
    );
    assert_eq!(worker(&report, victim)["exited"], true);
    assert_eq!(worker(&report, busy)["cause"], "missing_api_timeout");
    assert!(worker(&report, busy)["samples"].as_u64().unwrap() >= 5);
}

#[test]
fn live_errors_say_what_to_do_and_exit_2() {
    let venv = venv();
    let assert_error = |run: Run, parts: &[&str]| {
        assert_eq!(
            run.code, 2,
            "stdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        for p in parts {
            assert!(run.stderr.contains(p), "{:?} lacks {p:?}", run.stderr);
        }
    };

    assert_error(
        live(&["--pid", "4194303"]),
        &["pid 4194303: no such process", "pgrep"],
    );

    let mut sleeper = Guarded::spawn(Command::new("sleep").arg("60"), "sleep");
    assert_error(
        live(&["--pid", &sleeper.pid().to_string()]),
        &["is not a Python process", "Gunicorn master"],
    );
    let _ = sleeper.child.kill();

    // A Python process outside any venv with py-spy, and no py-spy on PATH.
    let python = Guarded::spawn(
        Command::new(venv.join("bin/python")).args(["-c", "import time; time.sleep(60)"]),
        "python",
    );
    let pid = python.pid().to_string();
    wait_until("python to start", Duration::from_secs(60), || {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|e| e.to_string_lossy().contains("python"))
    });
    assert_error(
        wtdiag(&["live", "--pid", &pid, "--py-spy", "/nonexistent/py-spy"]),
        &["--py-spy /nonexistent/py-spy", "no such executable"],
    );
    let empty = TempDir::new("live-empty-path");
    let run = wtdiag_cmd()
        .args(["live", "--pid", &pid, "--duration", "300ms"])
        .env("PATH", empty.path())
        .env("VIRTUAL_ENV", empty.path())
        .output()
        .expect("wtdiag");
    let beside = venv.join("bin/py-spy");
    // argv[0] of the target is the venv's python: the py-spy beside it is named, not run.
    assert_error(
        Run {
            code: run.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&run.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&run.stderr).into_owned(),
        },
        &[
            "py-spy not found on PATH",
            &format!("py-spy found at {}", beside.display()),
            &format!("--py-spy {}", beside.display()),
        ],
    );
    // A target started as plain `python3` from PATH has no venv beside it.
    let bare = Guarded::spawn(
        Command::new("python3")
            .args(["-c", "import time; time.sleep(60)"])
            .env("PATH", "/usr/bin:/bin")
            .env_remove("VIRTUAL_ENV"),
        "python3",
    );
    let out = wtdiag_cmd()
        .args(["live", "--pid", &bare.pid().to_string()])
        .env("PATH", empty.path())
        .output()
        .expect("wtdiag");
    assert_error(
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        &["py-spy not found", "pip install py-spy", "--py-spy"],
    );

    assert_error(
        live(&["--pid", &pid, "--duration", "10x"]),
        &["--duration \"10x\": not a duration", "10s"],
    );

    // ptrace permission: another user's process.
    let root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    };
    // The checkout may sit where `nobody` cannot reach: run a world-readable copy.
    let shared = TempDir::new("live-as-nobody");
    let copy = shared.join("wtdiag");
    std::fs::copy(env!("CARGO_BIN_EXE_wtdiag"), &copy).expect("copy wtdiag");
    {
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [(shared.path(), 0o755), (copy.as_path(), 0o755)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
    }
    let (cmd, target) = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(&copy);
        (c, pid.clone())
    } else {
        (Command::new(env!("CARGO_BIN_EXE_wtdiag")), "1".to_string())
    };
    let mut cmd = cmd;
    let out = cmd
        .args(["live", "--pid", &target, "--py-spy"])
        .arg(venv.join("bin/py-spy"))
        .output()
        .expect("wtdiag as another user");
    assert_error(
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        &["permission denied", "CAP_SYS_PTRACE", "ptrace_scope"],
    );
}
