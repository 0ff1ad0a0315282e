//! `wtdiag` run as root against what another user controls (issue 12): `live` never runs a
//! py-spy the target's directories provide and runs no program others can change; it shows no
//! secret of the target's environment or config file, no line of a file the target could not
//! read, no `--pg` password, and no control character the target chose; `logs`/`pg` quote no
//! line of a linked file that is not a log. These tests need root, as CI runs them: the target
//! is dropped to `nobody` with setpriv, as bad_input.rs does. Planted programs leave a marker
//! file when run, so "never run" is checked, not assumed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::{Run, TempDir, fixture, wtdiag_cmd};
use crate::live::{Guarded, Gunicorn, PgCluster, venv, wait_until};

const NOBODY: u32 = 65534;

/// These tests start Pythons, Gunicorns and a PostgreSQL cluster on a small shared machine: one
/// at a time, so that they do not starve the timing-sensitive tests of live.rs running beside
/// them.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn require_root() {
    let uid = Command::new("id").arg("-u").output().expect("id -u").stdout;
    assert_eq!(
        String::from_utf8_lossy(&uid).trim(),
        "0",
        "these tests check what wtdiag does as root (CI runs them as root): run scripts/test.sh as root"
    );
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown_nobody(path: &Path) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{NOBODY}:{NOBODY}"))
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success());
}

fn run_of(out: std::process::Output) -> Run {
    Run {
        code: out.status.code().expect("wtdiag was killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `wtdiag live ARGS` as root with an empty PATH (no py-spy on it) unless `--py-spy` is given.
fn live_as_root(args: &[&str], path_dir: &Path) -> Run {
    run_of(
        wtdiag_cmd()
            .arg("live")
            .args(args)
            .env("PATH", path_dir)
            .env_remove("SUDO_UID")
            .output()
            .expect("wtdiag"),
    )
}

fn assert_refused(run: &Run, parts: &[&str]) {
    assert_eq!(
        run.code, 2,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    for p in parts {
        assert!(run.stderr.contains(p), "{:?} lacks {p:?}", run.stderr);
    }
}

/// A program named py-spy that, if anyone ran it, would leave `marker` and pass wtdiag's
/// version and `--json` checks, as an attacker's would.
fn plant(dir: &Path, marker: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join("py-spy");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"ran as $(id -u): $*\" >>'{}'\necho 'py-spy 0.4.3'\necho '--json'\n",
            marker.display()
        ),
    )
    .expect("write the planted py-spy");
    chmod(&path, 0o755);
    path
}

/// A Python process running as `nobody`, started by `argv` (through setpriv) with `env` only.
fn python_as_nobody(argv: &[&str], env: &[(&str, &str)]) -> Guarded {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(argv)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let guard = Guarded::spawn(&mut cmd, "python as nobody");
    let pid = guard.pid();
    wait_until(
        "the target to run Python as nobody",
        Duration::from_secs(10),
        || {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            status.contains(&format!("Uid:\t{NOBODY}\t"))
                && exe.to_string_lossy().contains("python")
        },
    );
    // Let the interpreter finish starting before py-spy reads it.
    std::thread::sleep(Duration::from_millis(300));
    guard
}

/// /usr/bin/python3: a Python `nobody` can run (the test venv's may live under /root).
fn system_python() -> PathBuf {
    let p = std::fs::canonicalize("/usr/bin/python3")
        .expect("/usr/bin/python3 is needed for these tests (apt-get install python3)");
    assert!(p.is_file());
    p
}

/// The issue's exploit, three ways: a py-spy in the target's `$VIRTUAL_ENV/bin`, in the
/// directory of its command line's script, and beside its executable. wtdiag, run as root with
/// no py-spy on its PATH, names each and runs none; given `--py-spy` to one (owned by
/// `nobody`), it refuses it; given a trusted py-spy, it samples the same target.
#[test]
fn live_as_root_never_runs_a_py_spy_the_target_provides() {
    require_root();
    let _serial = one_at_a_time();
    let venv = venv();
    let python = system_python();
    let dir = TempDir::new("live-planted");
    chmod(dir.path(), 0o755);
    let empty = dir.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let markers = dir.join("markers");
    std::fs::create_dir_all(&markers).unwrap();
    chmod(&markers, 0o777);

    // 1. $VIRTUAL_ENV/bin of the target's environment.
    let venv_dir = dir.join("evil-venv");
    let venv_marker = markers.join("venv");
    let venv_planted = plant(&venv_dir.join("bin"), &venv_marker);
    // 2. The directory of its script (argv[1]).
    let app_dir = dir.join("app");
    let cmdline_marker = markers.join("cmdline");
    let cmdline_planted = plant(&app_dir, &cmdline_marker);
    std::fs::write(app_dir.join("app.py"), "import time\ntime.sleep(120)\n").unwrap();
    // 3. Beside its executable: a copy of the interpreter, started with argv[0] "python3" so
    //    that only /proc/PID/exe leads there.
    let exe_dir = dir.join("exe");
    let exe_marker = markers.join("exe");
    let exe_planted = plant(&exe_dir, &exe_marker);
    std::fs::copy(&python, exe_dir.join("python3")).expect("copy python");
    chmod(&exe_dir.join("python3"), 0o755);
    for d in [&venv_dir, &app_dir, &exe_dir] {
        chown_nobody(d);
    }

    let sleep = "import time; time.sleep(120)";
    let python_s = python.to_str().unwrap();
    let venv_s = venv_dir.to_str().unwrap();
    let app_py = app_dir.join("app.py");
    let exe_copy = exe_dir.join("python3");
    let exe_copy_s = exe_copy.to_str().unwrap();
    let cases: Vec<(&str, Guarded, &PathBuf, &PathBuf)> = vec![
        (
            "$VIRTUAL_ENV/bin",
            python_as_nobody(&[python_s, "-c", sleep], &[("VIRTUAL_ENV", venv_s)]),
            &venv_planted,
            &venv_marker,
        ),
        (
            "the script's directory",
            python_as_nobody(&[python_s, app_py.to_str().unwrap()], &[]),
            &cmdline_planted,
            &cmdline_marker,
        ),
        (
            "the executable's directory",
            python_as_nobody(
                &[
                    "/bin/bash",
                    "-c",
                    &format!("exec -a python3 '{exe_copy_s}' -c '{sleep}'"),
                ],
                &[],
            ),
            &exe_planted,
            &exe_marker,
        ),
    ];

    let trusted = venv.join("bin/py-spy");
    for (case, target, planted, marker) in &cases {
        let pid = target.pid().to_string();
        let planted_s = planted.to_str().unwrap();
        let run = live_as_root(&["--pid", &pid, "--duration", "300ms"], &empty);
        assert_refused(
            &run,
            &[
                "py-spy not found on PATH",
                &format!("py-spy found at {planted_s}, owned by uid {NOBODY}"),
                "sudo pip install py-spy",
            ],
        );
        assert!(!marker.exists(), "{case}: the planted py-spy was run");

        // Named explicitly, it is still refused: nobody owns it.
        let run = live_as_root(
            &["--pid", &pid, "--duration", "300ms", "--py-spy", planted_s],
            &empty,
        );
        assert_refused(
            &run,
            &[
                planted_s,
                &format!("is owned by uid {NOBODY}, not by root"),
                "sudo pip install py-spy",
            ],
        );
        assert!(!marker.exists(), "{case}: the planted py-spy was run");

        // The target itself is fine to sample with a py-spy root trusts.
        let run = live_as_root(
            &[
                "--pid",
                &pid,
                "--duration",
                "300ms",
                "--format",
                "json",
                "--py-spy",
                trusted.to_str().unwrap(),
            ],
            &empty,
        );
        assert_eq!(run.code, 0, "{case}: {}", run.stderr);
        assert!(
            run.json()["summary"]["samples"].as_u64().unwrap() > 0,
            "{case}"
        );
        assert!(!marker.exists(), "{case}: the planted py-spy was run");
    }
}

/// A directory for programs whose every parent is root's and not writable by others (the
/// system temp dir, world-writable, would refuse them all): under Cargo's target directory.
fn trusted_scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("wtdiag-sec-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    chmod(&dir, 0o755);
    dir
}

#[test]
fn live_as_root_refuses_a_py_spy_others_can_change() {
    require_root();
    let _serial = one_at_a_time();
    let venv = venv();
    let scratch = trusted_scratch("writable");
    let empty = scratch.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let target = Guarded::spawn(
        Command::new(system_python())
            .args(["-c", "import time; time.sleep(120)"])
            .stdout(Stdio::null()),
        "python",
    );
    let pid = target.pid().to_string();
    wait_until("python to start", Duration::from_secs(60), || {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|e| e.to_string_lossy().contains("python"))
    });
    let marker = scratch.join("ran");
    let live = |py_spy: &Path| {
        live_as_root(
            &[
                "--pid",
                &pid,
                "--duration",
                "300ms",
                "--format",
                "json",
                "--py-spy",
                py_spy.to_str().unwrap(),
            ],
            &empty,
        )
    };

    // The control: a root-owned 0755 copy of the real py-spy in the same directory runs.
    let good = scratch.join("good");
    std::fs::create_dir_all(&good).unwrap();
    chmod(&good, 0o755);
    std::fs::copy(venv.join("bin/py-spy"), good.join("py-spy")).expect("copy py-spy");
    chmod(&good.join("py-spy"), 0o755);
    let run = live(&good.join("py-spy"));
    assert_eq!(
        run.code,
        0,
        "a root-owned py-spy under {} should run: {}",
        scratch.display(),
        run.stderr
    );

    // The user who ran sudo (SUDO_UID) is trusted like root; anyone else is not.
    let users = scratch.join("sudo-user");
    std::fs::create_dir_all(&users).unwrap();
    std::fs::copy(venv.join("bin/py-spy"), users.join("py-spy")).expect("copy py-spy");
    chmod(&users.join("py-spy"), 0o755);
    chmod(&users, 0o755);
    chown_nobody(&users);
    let as_sudo_user = |sudo_uid: &str| {
        run_of(
            wtdiag_cmd()
                .args(["live", "--pid", &pid, "--duration", "300ms", "--py-spy"])
                .arg(users.join("py-spy"))
                .env("PATH", &empty)
                .env("SUDO_UID", sudo_uid)
                .output()
                .expect("wtdiag"),
        )
    };
    let run = as_sudo_user(&NOBODY.to_string());
    assert_eq!(run.code, 0, "SUDO_UID={NOBODY} owns it: {}", run.stderr);
    assert_refused(
        &as_sudo_user("1000"),
        &[&format!(
            "is owned by uid {NOBODY}, not by root or uid 1000"
        )],
    );

    // Group-writable file.
    let file = plant(&scratch.join("group-file"), &marker);
    chmod(&file, 0o775);
    let run = live(&file);
    assert_refused(
        &run,
        &[
            &format!("{} is writable by group (mode 775)", file.display()),
            "--py-spy",
        ],
    );
    // World-writable file.
    chmod(&file, 0o757);
    assert_refused(&live(&file), &["writable by others (mode 757)"]);
    // A safe file in a group-writable directory.
    let gdir = scratch.join("group-dir");
    let file = plant(&gdir, &marker);
    chmod(&gdir, 0o775);
    assert_refused(
        &live(&file),
        &[&format!(
            "{} is writable by group (mode 775)",
            gdir.display()
        )],
    );
    // A safe script whose `#!` interpreter is not: the interpreter counts.
    let interpreter = plant(&scratch.join("group-interp"), &marker);
    chmod(&interpreter, 0o775);
    let wrapper = good.join("wrapper");
    std::fs::write(&wrapper, format!("#!{}\n", interpreter.display())).unwrap();
    chmod(&wrapper, 0o755);
    assert_refused(
        &live(&wrapper),
        &[&format!("{} is writable by group", interpreter.display())],
    );
    // A symlink in a safe place to a program in an unsafe one: the target of the link counts.
    let link = scratch.join("good/link-to-unsafe");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    assert_refused(
        &live(&link),
        &[&format!("{} is writable by group", gdir.display())],
    );
    // On PATH: the same checks; a relative PATH entry (".") is never searched.
    let run = run_of(
        wtdiag_cmd()
            .args(["live", "--pid", &pid, "--duration", "300ms"])
            .env("PATH", format!(".:{}", gdir.display()))
            .current_dir(&gdir)
            .env_remove("SUDO_UID")
            .output()
            .expect("wtdiag"),
    );
    assert_refused(
        &run,
        &[
            &format!("{}/py-spy (on PATH)", gdir.display()),
            "writable by group",
        ],
    );
    assert!(
        !marker.exists(),
        "a refused py-spy was run: {}",
        std::fs::read_to_string(&marker).unwrap_or_default()
    );
    drop(target);
    let _ = std::fs::remove_dir_all(&scratch);
}

/// What the target holds stays out of the report: values of its environment (DATABASE_URL, a
/// token, GUNICORN_CMD_ARGS beyond -t/-c) and its config file beyond `timeout`.
#[test]
fn live_shows_no_secret_of_the_target_environment_or_config() {
    require_root();
    let _serial = one_at_a_time();
    let venv = venv();
    let dir = TempDir::new("live-target-secrets");
    let config = dir.join("gunicorn.conf.py");
    std::fs::write(
        &config,
        "import os\nAPI_KEY = 'ConfSecret-81b2'\ntimeout = int(os.environ.get('T', 20)) + len('ConfSecret-81b2')\n",
    )
    .unwrap();
    let port = crate::live::free_port();
    let error_log = dir.join("error.log");
    let master = Guarded::spawn(
        Command::new(venv.join("bin/gunicorn"))
            .current_dir(fixture("app"))
            .args(["wtapp.wsgi:application", "-b"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-w", "1", "-k", "sync", "--graceful-timeout", "2", "-c"])
            .arg(&config)
            .arg("--error-logfile")
            .arg(&error_log)
            .env(
                "DATABASE_URL",
                "postgresql://app:EnvSecret-5f1c@db.internal/app",
            )
            .env("API_TOKEN", "EnvSecret-token-77d0")
            .env("GUNICORN_CMD_ARGS", "--name EnvSecret-name-3a9e")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "gunicorn",
    );
    wait_until(
        "the Gunicorn worker to boot",
        Duration::from_secs(60),
        || std::fs::read_to_string(&error_log).is_ok_and(|t| t.contains("Booting worker with pid")),
    );
    let workers = children_of(master.pid());
    let py_spy = venv.join("bin/py-spy");
    for format in ["json", "table"] {
        let run = run_of(
            wtdiag_cmd()
                .args(["live", "--pid", &master.pid().to_string()])
                .args(["--duration", "500ms", "--format", format, "--py-spy"])
                .arg(&py_spy)
                .output()
                .expect("wtdiag"),
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(all.contains("timeout_assumed"), "{all}");
        assert!(
            all.contains("sets the timeout with an expression wtdiag cannot evaluate"),
            "{all}"
        );
        for secret in ["EnvSecret", "ConfSecret", "API_KEY", "os.environ"] {
            assert!(
                !all.contains(secret),
                "{format} output shows {secret}:\n{all}"
            );
        }
    }
    drop(master);
    for w in workers {
        let _ = kill(Pid::from_raw(w as i32), Signal::SIGKILL);
    }
}

fn children_of(pid: u32) -> Vec<u32> {
    let out = Command::new("pgrep")
        .arg("-P")
        .arg(pid.to_string())
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Every way a `--pg` password reaches wtdiag (in a key=value DSN, in a URL, from PGPASSWORD,
/// from a password file), on success and on failure: the password is never in stdout, stderr or
/// JSON. The cluster asks this role for its password (scram-sha-256), so success proves the
/// password was used.
#[test]
fn live_never_shows_the_pg_password() {
    require_root();
    let _serial = one_at_a_time();
    let venv = venv();
    let pg = PgCluster::start("secret", &venv);
    let password = format!("PgSecret-{}-x7", std::process::id());
    let port = pg
        .dsn()
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .expect("port in the test DSN")
        .to_string();
    {
        let mut admin = pg.client();
        admin
            .batch_execute(&format!(
                "CREATE ROLE wt_secret LOGIN PASSWORD '{password}'; \
                 GRANT pg_read_all_stats TO wt_secret;"
            ))
            .expect("create the role");
        let hba: String = admin
            .query_one("SHOW hba_file", &[])
            .expect("hba_file")
            .get(0);
        let rules = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
        std::fs::write(
            &hba,
            format!("host all wt_secret 127.0.0.1/32 scram-sha-256\n{rules}"),
        )
        .expect("write pg_hba.conf");
        admin
            .batch_execute("SELECT pg_reload_conf()")
            .expect("reload");
    }
    let mut g = Gunicorn::start("pg-secret", &venv, 2, Some(&pg), None);
    g.fire("/db/slow");
    g.serving("/db/slow");
    let py_spy = venv.join("bin/py-spy");
    let dir = TempDir::new("live-pgpass");
    let passfile = dir.join("pgpass");
    std::fs::write(
        &passfile,
        format!("127.0.0.1:{port}:wtapp:wt_secret:{password}\n"),
    )
    .unwrap();
    chmod(&passfile, 0o600);

    let live = |dsn: &str, format: &str, env: &[(&str, &str)]| {
        let mut cmd = wtdiag_cmd();
        cmd.args(["live", "--pid", &g.master().to_string(), "--duration", "1s"])
            .args(["--format", format, "--pg", dsn, "--py-spy"])
            .arg(&py_spy)
            .env_remove("PGPASSWORD")
            .env_remove("PGPASSFILE")
            // No ~/.pgpass of the machine's own.
            .env("HOME", dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let run = run_of(cmd.output().expect("wtdiag"));
        let all = format!("{}\n{}", run.stdout, run.stderr);
        assert!(
            !all.contains(&password) && !all.contains("PgSecret"),
            "the password shows with --pg {dsn:?}:\n{all}"
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        run
    };
    let refined = |run: &Run| {
        let report = run.json();
        let lookup_failed = report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["code"] == "pg_lookup_failed")
            .map(|w| w["message"].to_string());
        assert_eq!(lookup_failed, None, "{report:#}");
        assert!(
            report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["cause"] == "slow_query"
                    && f["reason"].as_str().unwrap_or("").contains("pg_sleep(120)")),
            "{report:#}"
        );
    };
    let failed = |run: &Run, why: &str| {
        let report = run.json();
        let warning = report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["code"] == "pg_lookup_failed")
            .unwrap_or_else(|| panic!("no pg_lookup_failed: {report:#}"));
        assert!(
            warning["message"].as_str().unwrap().contains(why),
            "{warning:#}"
        );
    };
    let kv = format!("host=127.0.0.1 port={port} user=wt_secret dbname=wtapp");

    // Success: key=value, URL (percent-encoding does not matter here), PGPASSWORD, PGPASSFILE.
    refined(&live(&format!("{kv} password={password}"), "json", &[]));
    let url = format!("postgresql://wt_secret:{password}@127.0.0.1:{port}/wtapp");
    live(&url, "table", &[]);
    refined(&live(&url, "json", &[]));
    refined(&live(&kv, "json", &[("PGPASSWORD", &password)]));
    refined(&live(
        &kv,
        "json",
        &[("PGPASSFILE", passfile.to_str().unwrap())],
    ));
    let home_pgpass = dir.join(".pgpass");
    std::fs::copy(&passfile, &home_pgpass).unwrap();
    chmod(&home_pgpass, 0o600);
    refined(&live(&kv, "json", &[]));

    // Failures: a wrong password, a password file others can read, a DSN that does not parse
    // (an unquoted password with a space, which the parser calls an unknown option by the name
    // of its second word), a server that is not there.
    failed(
        &live(&format!("{kv} password=PgSecret-wrong"), "json", &[]),
        "password authentication failed",
    );
    chmod(&passfile, 0o644);
    failed(
        &live(&kv, "json", &[("PGPASSFILE", passfile.to_str().unwrap())]),
        "chmod 600",
    );
    failed(
        &live(
            &format!("host=127.0.0.1 port={port} password=PgSecret-a PgSecret-b=1 user=wt_secret"),
            "json",
            &[],
        ),
        "not a connection string",
    );
    let closed = crate::live::free_port();
    failed(
        &live(
            &format!("postgresql://wt_secret:{password}@127.0.0.1:{closed}/wtapp"),
            "json",
            &[],
        ),
        "cannot connect",
    );
    let run = live(
        &format!("postgresql://wt_secret:{password}@127.0.0.1:{closed}/wtapp"),
        "table",
        &[("PGPASSWORD", &password)],
    );
    assert!(run.stdout.contains("pg_lookup_failed"), "{}", run.stdout);
}

/// The files of the target's frames are named by the target: a frame compiled with the name of
/// a file only root may read shows no line of it; the same file made readable shows the line
/// (the control: wtdiag does read source lines).
#[test]
fn live_as_root_shows_no_source_line_the_target_could_not_read() {
    require_root();
    let _serial = one_at_a_time();
    let venv = venv();
    let dir = TempDir::new("live-source-lines");
    chmod(dir.path(), 0o755);
    let secret_dir = dir.join("secret");
    std::fs::create_dir_all(&secret_dir).unwrap();
    chmod(&secret_dir, 0o755);
    let secret = secret_dir.join("conf.py");
    std::fs::write(
        &secret,
        "KEY = 'RootOnly-line1'\nTOKEN = 'RootOnly-line2'\n",
    )
    .unwrap();
    let app = dir.join("app.py");
    std::fs::write(
        &app,
        format!(
            "import time\nsrc = 'def stuck():\\n    time.sleep(120)\\nstuck()\\n'\n\
             exec(compile(src, '{}', 'exec'), {{'time': time}})\n",
            secret.display()
        ),
    )
    .unwrap();
    chmod(&app, 0o644);
    let python = system_python();
    let target = python_as_nobody(&[python.to_str().unwrap(), app.to_str().unwrap()], &[]);
    let py_spy = venv.join("bin/py-spy");
    let live = || {
        let run = run_of(
            wtdiag_cmd()
                .args(["live", "--pid", &target.pid().to_string()])
                .args(["--duration", "600ms", "--py-spy"])
                .arg(&py_spy)
                .output()
                .expect("wtdiag"),
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("conf.py:2 in stuck"), "{}", run.stdout);
        run
    };
    chmod(&secret, 0o600);
    let run = live();
    assert!(!run.stdout.contains("RootOnly"), "{}", run.stdout);
    chmod(&secret, 0o644);
    let run = live();
    assert!(
        run.stdout.contains("TOKEN = 'RootOnly-line2'"),
        "{}",
        run.stdout
    );
}

/// A DSN typed without quotes splits into several arguments; clap's usage error quotes the one
/// it did not expect, without its password.
#[test]
fn a_dsn_typed_without_quotes_is_not_echoed() {
    for args in [
        &[
            "live",
            "--pid",
            "1",
            "--pg",
            "host=db",
            "password=PgSecret-typo",
        ][..],
        &[
            "live",
            "--pid",
            "1",
            "--pg",
            "host=db",
            "PASSWORD = PgSecret-typo",
        ][..],
        &[
            "live",
            "--pid",
            "1",
            "--pg",
            "x",
            "postgresql://app:PgSecret-typo@db/x",
        ][..],
    ] {
        let run = crate::common::wtdiag(args);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains("unexpected argument"), "{}", run.stderr);
        assert!(!run.stderr.contains("PgSecret"), "{}", run.stderr);
        assert!(!run.stdout.contains("PgSecret"), "{}", run.stdout);
    }
}

/// `logs` and `pg` as root on a path that is a symlink to a file that is not a log (as an
/// application user could plant in a log directory): not a line of it is quoted.
#[test]
fn logs_and_pg_quote_no_line_of_a_linked_file_that_is_not_a_log() {
    let dir = TempDir::new("linked-secret");
    let secret = dir.join("shadow");
    std::fs::write(
        &secret,
        "root:LinkedSecret-$6$x:19000:0:99999:7:::\nDATABASE_URL=postgresql://a:LinkedSecret-2@db/x\n",
    )
    .unwrap();
    chmod(&secret, 0o600);
    let link = dir.join("error.log");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let link_s = link.to_str().unwrap();
    for args in [
        &["logs", link_s][..],
        &["logs", link_s, "--format", "json"][..],
        &["pg", link_s][..],
        &["pg", link_s, "--format", "json"][..],
    ] {
        let run = crate::common::wtdiag(args);
        // `pg` on a file that yields no server message exits 2 with one line (issue 8)
        let want = if args[0] == "pg" { 2 } else { 0 };
        assert_eq!(run.code, want, "{args:?}: {}", run.stderr);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(
            all.contains("not_gunicorn_log") || all.contains("not a PostgreSQL server log"),
            "{args:?}: {all}"
        );
        assert!(!all.contains("LinkedSecret"), "{args:?}: {all}");
    }
}

/// Names the target chooses (its executable's directory, its code's file names) reach the
/// error line and the table as text: no escape sequence reaches the terminal, no newline splits
/// the one-line error.
#[test]
fn target_chosen_names_cannot_drive_the_terminal() {
    require_root();
    let _serial = one_at_a_time();
    let venv = venv();
    let dir = TempDir::new("live-escapes");
    chmod(dir.path(), 0o755);
    let exe_dir = dir.join("exe\x1b[2J\nFAKE wtdiag: ok");
    let marker = dir.join("ran");
    plant(&exe_dir, &marker);
    let python = exe_dir.join("python3");
    std::fs::copy(system_python(), &python).expect("copy python");
    chmod(&python, 0o755);
    let code = "import time\n\
                src = 'def stuck():\\n    time.sleep(120)\\nstuck()\\n'\n\
                exec(compile(src, '/srv/app\\x1b]0;pwned\\x07\\r.py', 'exec'), {'time': time})\n";
    let target = Guarded::spawn(
        Command::new("/bin/bash")
            .arg("-c")
            .arg(r#"exec -a python3 "$0" -c "$1""#)
            .arg(&python)
            .arg(code)
            .stdout(Stdio::null()),
        "python",
    );
    let pid = target.pid().to_string();
    wait_until("python to start", Duration::from_secs(60), || {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|e| e.to_string_lossy().contains("python3"))
    });
    std::thread::sleep(Duration::from_millis(300));
    let empty = dir.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();

    let run = live_as_root(&["--pid", &pid, "--duration", "300ms"], &empty);
    assert_refused(&run, &["py-spy found at", "exe\\x{1b}[2J\\x{a}FAKE"]);
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
    assert!(!marker.exists(), "the planted py-spy was run");

    let run = live_as_root(
        &[
            "--pid",
            &pid,
            "--duration",
            "600ms",
            "--py-spy",
            venv.join("bin/py-spy").to_str().unwrap(),
        ],
        &empty,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("in stuck"), "{}", run.stdout);
    for c in ['\x1b', '\x07', '\r'] {
        assert!(!run.stdout.contains(c), "{c:?} in {:?}", run.stdout);
    }
    assert!(run.stdout.contains("\\x{1b}]0;pwned"), "{}", run.stdout);
}

/// `--output` as root does not write through a symlink (another user's link in a directory
/// they can write would make root overwrite any file); a plain file is written.
#[test]
fn report_output_as_root_is_not_written_through_a_symlink() {
    require_root();
    let dir = TempDir::new("output-link");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let link = dir.join("report.json");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let log = fixture("gunicorn/gunicorn-27.0.1.log");
    let run = crate::common::wtdiag(&[
        "logs",
        log.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        link.to_str().unwrap(),
    ]);
    assert_refused(&run, &["cannot write the report to", "symbolic link"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let plain = dir.join("plain.json");
    let run = crate::common::wtdiag(&[
        "logs",
        log.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        plain.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        std::fs::read_to_string(&plain)
            .unwrap()
            .contains("\"command\"")
    );
}
