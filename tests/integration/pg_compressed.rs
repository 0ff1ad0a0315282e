//! Rotated logs compressed with bzip2, xz or zstd (as logrotate's `compresscmd` makes them),
//! told by magic bytes like gzip: compressed by the system's own tools here, and pgBadger's
//! bzip2 samples (fixtures/pg/pgbadger) with the counts pgBadger's tests expect.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::{TempDir, events_of, fixture, wtdiag};

/// `data` compressed by the system's `tool -c` (gzip, bzip2, xz, zstd).
fn compress(tool: &str, data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .args(["-c", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} must be installed (.ci/run installs it): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{tool} failed");
    out.stdout
}

fn json(args: &[&str]) -> Value {
    let run = wtdiag(args);
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    run.json()
}

fn pg(path: &Path) -> Value {
    json(&[
        "pg",
        path.to_str().unwrap(),
        "--format",
        "json",
        "--top",
        "1000",
    ])
}

/// Each statement shape's fingerprint, runs and total time (the paths differ).
fn shapes(r: &Value) -> Vec<(String, u64, String)> {
    r["pg"]["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["fingerprint"].as_str().unwrap().to_string(),
                s["count"].as_u64().unwrap(),
                s["total_ms"].to_string(),
            )
        })
        .collect()
}

const TOOLS: [&str; 4] = ["gzip", "bzip2", "xz", "zstd"];

#[test]
fn every_compression_the_system_tools_make_is_read_like_the_plain_log() {
    let plain_path = fixture("pg/pg15-a-default.log");
    let plain = std::fs::read(&plain_path).unwrap();
    let want = pg(&plain_path);
    let tmp = TempDir::new("pg-compressed");
    // halves compressed apart and concatenated: `cat a.bz2 b.bz2`, pbzip2, zstd frames
    let cut = plain.len() / 2
        + plain[plain.len() / 2..]
            .iter()
            .position(|b| *b == b'\n')
            .unwrap()
        + 1;
    for tool in TOOLS {
        for (label, bytes) in [
            ("whole", compress(tool, &plain)),
            ("two streams", {
                let mut b = compress(tool, &plain[..cut]);
                b.extend(compress(tool, &plain[cut..]));
                b
            }),
        ] {
            // a rotated name without the suffix: the content tells
            let path = tmp.join(&format!("postgresql.log.1-{tool}-{}", label.len()));
            std::fs::write(&path, &bytes).unwrap();
            let got = pg(&path);
            let input = &got["inputs"][0];
            assert_eq!(input["compressed"], true, "{tool} {label}");
            assert_eq!(input["lines"], want["inputs"][0]["lines"], "{tool} {label}");
            assert_eq!(input["bytes"], want["inputs"][0]["bytes"], "{tool} {label}");
            assert_eq!(got["summary"], want["summary"], "{tool} {label}");
            assert_eq!(shapes(&got), shapes(&want), "{tool} {label}");
        }
    }
}

#[test]
fn a_truncated_compressed_log_exits_2_naming_the_check_to_run() {
    let plain = std::fs::read(fixture("pg/pg15-a-default.log")).unwrap();
    let tmp = TempDir::new("pg-truncated");
    for tool in TOOLS {
        let bytes = compress(tool, &plain);
        let path = tmp.join(&format!("cut.{tool}"));
        std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let run = wtdiag(&["pg", path.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{tool}: {}", run.stdout);
        let err = run.stderr.trim();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("corrupt or truncated {tool} data")),
            "{err}"
        );
        assert!(err.contains(&format!("`{tool} -t`")), "{err}");
    }
}

#[test]
fn logs_reads_an_xz_gunicorn_log_and_a_zstd_pg_log() {
    let gunicorn = fixture("gunicorn/gunicorn-27.0.1.log");
    let postgres = fixture("gunicorn/postgres-27.0.1.log");
    let tmp = TempDir::new("logs-compressed");
    let g = tmp.join("error.log.2.xz");
    std::fs::write(&g, compress("xz", &std::fs::read(&gunicorn).unwrap())).unwrap();
    let p = tmp.join("postgresql.log.1.zst");
    std::fs::write(&p, compress("zstd", &std::fs::read(&postgres).unwrap())).unwrap();
    let args = |a: &PathBuf, b: &PathBuf| {
        json(&[
            "logs",
            a.to_str().unwrap(),
            "--pg-log",
            b.to_str().unwrap(),
            "--format",
            "json",
        ])
    };
    let want = args(&gunicorn, &postgres);
    let got = args(&g, &p);
    assert_eq!(got["inputs"][0]["compressed"], true);
    assert_eq!(got["summary"], want["summary"]);
    assert_eq!(
        got["findings"].as_array().unwrap().len(),
        want["findings"].as_array().unwrap().len()
    );
    for (a, b) in got["findings"]
        .as_array()
        .unwrap()
        .iter()
        .zip(want["findings"].as_array().unwrap())
    {
        assert_eq!(a["cause"], b["cause"]);
        assert_eq!(a["count"], b["count"]);
    }
}

#[test]
fn pgbadgers_bzip2_samples_are_read_with_pgbadgers_counts() {
    let dir = fixture("pg/pgbadger");
    // t/03_consistency.t: 629 queries in database postgres ("Consistent count", query_total)
    let light = pg(&dir.join("light.postgres.log.bz2"));
    assert_eq!(light["inputs"][0]["compressed"], true);
    assert_eq!(light["inputs"][0]["skipped_lines"], 0);
    let runs: u64 = light["pg"]["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_u64().unwrap())
        .sum();
    assert_eq!(runs, 629);
    assert_eq!(light["summary"]["statement"], 629);
    // t/03_consistency.t: "select datname from pg_database where not datistemplate and
    // datallowconn;" takes 2.667 ms in all (pgBadger's run excludes client 192.168.1.201,
    // which never runs it)
    let rds = pg(&dir.join("rds.log.bz2"));
    assert_eq!(
        rds["pg"]["inputs"][0]["log_line_prefix"],
        "%t:%r:%u@%d:[%p]:"
    );
    assert_eq!(rds["inputs"][0]["skipped_lines"], 0);
    let datname = rds["pg"]["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["normalized"]
                == "select datname from pg_database where not datistemplate and datallowconn;"
        })
        .expect("the datname statement");
    assert_eq!(datname["total_ms"], 2.667);
    // t/02_basics.t reads pg-syslog.1.bz2 (a syslog file where systemd writes too)
    let syslog = pg(&dir.join("pg-syslog.1.bz2"));
    assert_eq!(syslog["inputs"][0]["format"], "syslog");
    let skipped = syslog["inputs"][0]["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(
        skipped[0]["reason"],
        "syslog line of another program than PostgreSQL"
    );
    assert_eq!(skipped[0]["count"], 3);
    assert!(
        events_of(&syslog, "statement").len() > 1000
            || syslog["events_omitted"].as_u64().unwrap() > 0
    );
}
