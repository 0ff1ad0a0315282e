//! `--format html`: the page as a browser shows it. insta snapshots of the HTML of fixture runs
//! (paths redacted), headless Chromium (Debian's `chromium`, installed by .ci/run and checked by
//! scripts/test-env.sh; a missing browser fails these tests) rendering every fixture's report to
//! a PNG with no console message, the findings and the charts in the DOM it built, and no
//! request the page could make.

use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

use crate::common::{Run, TempDir, root, wtdiag_cmd};

const GUNICORN_RUNS: [&str; 8] = [
    "19.9.0",
    "20.1.0",
    "21.2.0",
    "22.0.0",
    "23.0.0",
    "27.0.1",
    "27.0.1-burst",
    "27.0.1-tz-new-york",
];

const PG_LOGS: [&str; 10] = [
    "pg15-a-default",
    "pg15-b-debian",
    "pg15-c-pgbadger",
    "pg15-d-rds",
    "pg15-e-nopid",
    "pg15-f-allescapes",
    "pg15-g-min500",
    "pg15-h-logduration",
    "pg15-i-autoexplain",
    "pg15-j-syslog",
];

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

fn run(args: &[&str]) -> Run {
    let out = wtdiag_cmd()
        .current_dir(root())
        .args(args)
        .output()
        .expect("cannot run wtdiag");
    Run {
        code: out.status.code().expect("wtdiag was killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The argument lists of every fixture run: `logs` of each Gunicorn log with its PostgreSQL
/// log, `logs` of a Gunicorn log behind nginx, and `pg` of each PostgreSQL log.
fn fixture_runs() -> Vec<(String, Vec<String>)> {
    let mut runs = Vec::new();
    for v in GUNICORN_RUNS {
        runs.push((
            format!("logs_{v}"),
            vec![
                "logs".to_string(),
                format!("fixtures/gunicorn/gunicorn-{v}.log"),
                "--pg-log".to_string(),
                format!("fixtures/gunicorn/postgres-{v}.log"),
            ],
        ));
    }
    for run in ["sync-27", "gthread-27"] {
        let mut args = vec!["logs".to_string()];
        for kind in [
            "gunicorn-error",
            "nginx-access",
            "nginx-error",
            "postgres",
            "app",
        ] {
            args.push(format!("fixtures/stack/{run}.{kind}.log"));
        }
        runs.push((format!("logs_stack_{run}"), args));
    }
    runs.push((
        "logs_nginx_inverted".to_string(),
        vec![
            "logs".to_string(),
            "fixtures/nginx/ladder-inverted.gunicorn.log".to_string(),
            "fixtures/nginx/ladder-inverted.nginx-error.log".to_string(),
        ],
    ));
    for name in PG_LOGS {
        runs.push((
            format!("pg_{name}"),
            vec!["pg".to_string(), format!("fixtures/pg/{name}.log")],
        ));
    }
    runs
}

/// Writes the HTML report of `args` into `dir`, returning its path and the JSON report.
fn html_report(dir: &Path, name: &str, args: &[String]) -> (PathBuf, serde_json::Value) {
    let path = dir.join(format!("{name}.html"));
    let mut html_args: Vec<&str> = args.iter().map(String::as_str).collect();
    html_args.extend(["--format", "html", "-o", path.to_str().unwrap()]);
    let html = run(&html_args);
    assert_eq!(html.code, 0, "{name}: {}", html.stderr);
    assert!(
        html.stdout.is_empty(),
        "{name}: -o writes nothing to stdout"
    );
    let mut json_args: Vec<&str> = args.iter().map(String::as_str).collect();
    json_args.extend(["--format", "json"]);
    (path, run(&json_args).json())
}

/// Absolute paths into a checkout's fixtures/ and the version; one tag per line so that a
/// snapshot diff shows what changed.
fn redact(html: &str) -> String {
    let checkout = Regex::new(r#"(^|[\s"'(=`>])/[^\s"'`:<]*?/fixtures/"#).unwrap();
    checkout
        .replace_all(html, "${1}[REPO]/fixtures/")
        .replace(
            concat!("wtdiag ", env!("CARGO_PKG_VERSION")),
            "wtdiag [VERSION]",
        )
        .replace("><", ">\n<")
}

#[test]
fn html_snapshots() {
    let dir = TempDir::new("html-snapshots");
    for (name, args) in fixture_runs().into_iter().filter(|(n, _)| {
        [
            "logs_27.0.1",
            "logs_nginx_inverted",
            "logs_stack_sync-27",
            "pg_pg15-a-default",
        ]
        .contains(&n.as_str())
    }) {
        let (path, _) = html_report(dir.path(), &name, &args);
        let html = std::fs::read_to_string(path).unwrap();
        insta::assert_snapshot!(format!("html_{name}"), redact(&html));
    }
}

#[test]
fn html_is_self_contained_and_forbids_every_request() {
    let dir = TempDir::new("html-offline");
    // Anything that names a resource: src/href/srcset/action attributes, CSS url() and
    // @import. Only in-page anchors (#finding-N) are allowed.
    let resource =
        Regex::new(r#"(?i)\b(src|href|srcset|action|poster|data)\s*=\s*"([^"]*)""#).unwrap();
    for (name, args) in fixture_runs() {
        let (path, report) = html_report(dir.path(), &name, &args);
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(
            html.contains(&format!(
                r#"<meta http-equiv="Content-Security-Policy" content="{CSP}">"#
            )),
            "{name}: no CSP meta tag"
        );
        for cap in resource.captures_iter(&html) {
            assert!(
                cap[2].starts_with('#'),
                "{name}: {} names a resource",
                &cap[0]
            );
        }
        assert!(!html.contains("<script"), "{name}");
        assert!(!html.contains("<link"), "{name}");
        assert!(
            !html.contains("url(") && !html.contains("@import"),
            "{name}"
        );
        // What the user reads is there: every finding, and the chart when events have times.
        let findings = report["findings"].as_array().unwrap();
        for f in findings {
            assert!(
                html.contains(&format!(r#"id="finding-{}""#, f["rank"])),
                "{name}: finding {} missing",
                f["rank"]
            );
        }
    }
}

/// Runs headless Chromium on `url` with `mode` (`--dump-dom` or `--screenshot=FILE`); returns
/// its stdout and stderr. Each run gets its own profile directory, so runs can go in parallel.
fn chromium(url: &str, mode: &str, profile: &Path) -> (String, String) {
    let out = Command::new("timeout")
        .args(["120", "chromium"])
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,1600",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(mode)
        .arg(url)
        .output()
        .expect("cannot run timeout(1)");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "chromium failed ({}); is Debian's chromium installed? (apt-get install -y chromium; \
         .ci/run installs it and scripts/test-env.sh checks it)\n{stderr}",
        out.status
    );
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// The page's console messages in Chromium's log (CSP violations, script errors, failed loads).
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

#[test]
fn html_draws_each_endpoint_against_the_timeout() {
    // The whole stack of a run with --timeout 3: nginx's access log times every endpoint.
    let dir = TempDir::new("html-endpoints");
    let mut args = vec!["logs".to_string()];
    for kind in ["gunicorn-error", "nginx-access", "nginx-error", "postgres"] {
        args.push(format!("fixtures/stack/sync-27.{kind}.log"));
    }
    args.extend(["--timeout".to_string(), "3".to_string()]);
    let (path, report) = html_report(dir.path(), "endpoints", &args);
    let html = std::fs::read_to_string(path).unwrap();
    let endpoints = report["endpoints"].as_array().expect("endpoints in JSON");
    assert!(html.contains(r#"<svg class="endpoints""#), "{html}");
    assert_eq!(
        html.matches(r#"<g class="endpoint">"#).count(),
        endpoints.len().min(12),
        "one row per endpoint"
    );
    assert!(html.contains(">timeout 3.00 s</text>"), "{html}");
    // The slowest endpoint's max is in its tooltip, as JSON gives it.
    let slowest = &endpoints[0];
    assert!(html.contains(&format!(
        ": max {:.2} s",
        slowest["max_s"].as_f64().unwrap()
    )));
    assert!(html.contains("Clients: "), "{html}");
}

#[test]
fn chromium_would_report_a_request_the_page_made() {
    // The check below is only worth something if a violation shows: a page with the same policy
    // and a remote image must produce a console message.
    let dir = TempDir::new("html-chromium-selfcheck");
    let page = dir.join("bad.html");
    std::fs::write(
        &page,
        format!(
            r#"<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="{CSP}"></head><body><img src="http://127.0.0.1:9/x.png"></body></html>"#
        ),
    )
    .unwrap();
    let (_, stderr) = chromium(
        &format!("file://{}", page.display()),
        "--dump-dom",
        &dir.join("profile"),
    );
    let console = console_lines(&stderr);
    assert!(
        console
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "{stderr}"
    );
}

#[test]
fn chromium_renders_every_fixture_report_without_console_messages() {
    let dir = TempDir::new("html-chromium");
    let bar =
        Regex::new(r#"<rect class="(s-[a-z]+)"[^>]*><title>[^<]*: (\d+) ([a-z 0-9]+)</title>"#)
            .unwrap();
    let runs = fixture_runs();
    // Two browsers at a time: the machine has few cores.
    let chunks: Vec<Vec<(String, Vec<String>)>> = runs
        .chunks(runs.len().div_ceil(2))
        .map(<[_]>::to_vec)
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let dir = dir.path();
                let bar = &bar;
                scope.spawn(move || {
                    for (name, args) in chunk {
                        let (path, report) = html_report(dir, &name, &args);
                        let url = format!("file://{}", path.display());
                        let png = dir.join(format!("{name}.png"));
                        let (_, stderr) = chromium(
                            &url,
                            &format!("--screenshot={}", png.display()),
                            &dir.join(format!("profile-{name}")),
                        );
                        assert!(console_lines(&stderr).is_empty(), "{name}:\n{stderr}");
                        let bytes =
                            std::fs::read(&png).unwrap_or_else(|e| panic!("{name}: no PNG: {e}"));
                        assert!(
                            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
                            "{name}"
                        );

                        let (dom, stderr) =
                            chromium(&url, "--dump-dom", &dir.join(format!("profile-{name}-dom")));
                        assert!(console_lines(&stderr).is_empty(), "{name}:\n{stderr}");
                        let findings = report["findings"].as_array().unwrap();
                        assert_eq!(
                            dom.matches(r#"<details class="finding""#).count(),
                            findings.len(),
                            "{name}"
                        );
                        // The chart in the DOM counts what JSON lists.
                        let timeouts = report["events"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter(|e| e["kind"] == "worker_timeout" && !e["time"].is_null())
                            .count() as u64;
                        let drawn: u64 = bar
                            .captures_iter(&dom)
                            .filter(|c| &c[1] == "s-timeout")
                            .map(|c| c[2].parse::<u64>().unwrap())
                            .sum();
                        assert_eq!(drawn, timeouts, "{name}: timeouts drawn");
                        if report["events"].as_array().unwrap().iter().any(|e| {
                            !e["time"].is_null()
                                && ["worker_timeout", "worker_killed", "statement", "deadlock"]
                                    .contains(&e["kind"].as_str().unwrap())
                        }) {
                            assert_eq!(
                                dom.matches(r#"<svg class="timeline""#).count(),
                                1,
                                "{name}"
                            );
                            assert_eq!(dom.matches(r#"<g class="panel""#).count(), 4, "{name}");
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a chromium run failed");
        }
    });
}

/// `live --format html`: a real Gunicorn with a worker stuck in CPU-bound code, sampled through
/// py-spy; the page shows the workers and the finding, and Chromium renders it cleanly.
#[test]
fn live_html_report_shows_the_workers_and_renders_in_chromium() {
    use crate::live::{Gunicorn, live, venv};
    let venv = venv();
    let mut g = Gunicorn::start("html", &venv, 2, None, None);
    g.fire("/cpu");
    let (busy, _) = g.serving("/cpu");
    let dir = TempDir::new("html-live");
    let page = dir.join("live.html");
    let master = g.master().to_string();
    let run = live(&[
        "--pid",
        &master,
        "--duration",
        "2s",
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    drop(g);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<h1>wtdiag live: "), "{html}");
    assert!(html.contains(r#"<section id="workers">"#), "{html}");
    assert!(
        html.contains(&format!("<td class=\"num\">{busy}</td>")),
        "{html}"
    );
    assert!(
        html.contains(r#"<td class="cause">cpu_bound</td>"#),
        "{html}"
    );
    assert!(html.contains(r#"id="finding-1""#), "{html}");
    assert!(html.contains(&format!(
        r#"<meta http-equiv="Content-Security-Policy" content="{CSP}">"#
    )));
    let (dom, stderr) = chromium(
        &format!("file://{}", page.display()),
        "--dump-dom",
        &dir.join("profile"),
    );
    assert!(console_lines(&stderr).is_empty(), "{stderr}");
    assert!(dom.contains(r#"<details class="finding""#), "{dom}");
}
