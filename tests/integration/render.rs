//! What the report looks like to people: the Markdown for CI job summaries (insta snapshots of
//! the fixture runs), the table's colors and when they are used, and the table's timeline.

use std::collections::BTreeMap;
use std::process::Command;

use crate::common::{Run, TempDir, root, wtdiag_cmd};

/// The Gunicorn fixtures that have a PostgreSQL log of the same run.
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

/// The PostgreSQL fixtures in stderr format.
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

/// `wtdiag ARGS` run from the repository with relative paths (so reports name
/// `fixtures/...`), in a UTF-8 locale, with `env` set.
fn run_with(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = wtdiag_cmd();
    cmd.current_dir(root())
        .args(args)
        .env_remove("LC_ALL")
        .env_remove("LC_CTYPE")
        .env("LANG", "C.UTF-8")
        .env("TERM", "xterm-256color");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("cannot run wtdiag");
    Run {
        code: out.status.code().expect("wtdiag was killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Run {
    run_with(args, &[])
}

/// Paths and the version that change from machine to machine or release to release: any
/// absolute path into a checkout's `fixtures/` (the inputs, and the paths in the fixtures'
/// tracebacks, recorded in the checkout that made them) becomes `[REPO]/fixtures/`.
fn redact(text: &str) -> String {
    let checkout = regex::Regex::new(r#"(^|[\s"'(=`])/[^\s"'`:]*?/fixtures/"#).unwrap();
    checkout.replace_all(text, "${1}[REPO]/fixtures/").replace(
        concat!("wtdiag ", env!("CARGO_PKG_VERSION"), " "),
        "wtdiag [VERSION] ",
    )
}

fn logs_args(version: &str, format: &str) -> Vec<String> {
    vec![
        "logs".into(),
        format!("fixtures/gunicorn/gunicorn-{version}.log"),
        "--pg-log".into(),
        format!("fixtures/gunicorn/postgres-{version}.log"),
        "--format".into(),
        format.into(),
    ]
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn markdown_of_every_logs_fixture() {
    for version in GUNICORN_RUNS {
        let run = run(&as_strs(&logs_args(version, "markdown")));
        assert_eq!(run.code, 0, "{}", run.stderr);
        insta::assert_snapshot!(format!("markdown_logs_{version}"), redact(&run.stdout));
    }
}

#[test]
fn markdown_of_every_pg_fixture() {
    for name in PG_LOGS {
        let path = format!("fixtures/pg/{name}.log");
        let run = run(&["pg", &path, "--format", "markdown"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        insta::assert_snapshot!(format!("markdown_pg_{name}"), redact(&run.stdout));
    }
}

#[test]
fn markdown_of_a_whole_stack_has_the_endpoints_and_what_clients_got() {
    let mut args = vec!["logs".to_string()];
    for kind in [
        "gunicorn-error",
        "nginx-access",
        "nginx-error",
        "postgres",
        "app",
    ] {
        args.push(format!("fixtures/stack/sync-27.{kind}.log"));
    }
    args.extend(["--timeout", "3", "--format", "markdown"].map(String::from));
    let run = run(&as_strs(&args));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let md = &run.stdout;
    assert!(
        md.contains("### Endpoints, slowest first (from the proxy access log)"),
        "{md}"
    );
    assert!(
        md.contains("Clients: 3 of 11 request(s) answered 5xx"),
        "{md}"
    );
    assert!(
        md.contains("| `GET /slowish` | 3 | 2.20 s | 2.20 s | 2.20 s | 3 | 0 |"),
        "{md}"
    );
    insta::assert_snapshot!("markdown_logs_stack_sync-27", redact(md));
}

#[test]
fn markdown_folds_evidence_and_ruled_out_causes() {
    let run = run(&as_strs(&logs_args("27.0.1", "markdown")));
    let md = &run.stdout;
    assert!(
        md.starts_with("## wtdiag logs: 8 findings, worst critical"),
        "{md}"
    );
    // One table row per finding, in rank order.
    let ranks: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("| **"))
        .map(|l| l.split('|').nth(1).unwrap().trim())
        .collect();
    assert_eq!(ranks, ["1", "2", "3", "4", "5", "6", "7", "8"]);
    assert_eq!(
        md.matches("<details><summary>Evidence").count(),
        8,
        "every finding's evidence is folded"
    );
    assert!(md.contains("<details><summary>Ruled out (n_plus_one)</summary>"));
    // The timeline, folded: the buckets with events, the top finding's marked.
    assert!(md.contains(
        "<details><summary>Timeline: 12 buckets of 1s with events, 2026-11-26 23:06:41 to"
    ));
    assert!(
        md.contains("| 2026-11-26 23:06:41 | 0 | 1 | 0 | finding #1 |"),
        "{md}"
    );
    assert!(
        md.contains("| 2026-11-26 23:06:54 | 0 | 1 | 1 |  |"),
        "{md}"
    );
    // Every <details> is closed, and every code fence too.
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count()
    );
    assert_eq!(md.matches("```").count() % 2, 0);
}

#[test]
fn markdown_is_the_same_on_every_run() {
    let args = logs_args("27.0.1-burst", "markdown");
    let first = run(&as_strs(&args)).stdout;
    assert_eq!(first, run(&as_strs(&args)).stdout);
}

const PG_A: &str = "fixtures/pg/pg15-a-default.log";

#[test]
fn color_always_colors_the_table() {
    let run = run(&["pg", PG_A, "--color", "always"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The severity cells and the headings carry SGR escapes.
    assert!(run.stdout.contains("\x1b["), "{}", run.stdout);
    assert!(run.stdout.contains("\x1b[1mRoot causes"), "{}", run.stdout);
}

#[test]
fn no_color_through_a_pipe_by_default() {
    let run = run(&["pg", PG_A]);
    assert!(!run.stdout.contains('\x1b'), "{}", run.stdout);
    let never = run_with(
        &["pg", PG_A, "--color", "never"],
        &[("CLICOLOR_FORCE", "1")],
    );
    assert!(!never.stdout.contains('\x1b'));
}

#[test]
fn clicolor_force_colors_a_pipe_and_no_color_wins_over_it() {
    let forced = run_with(&["pg", PG_A], &[("CLICOLOR_FORCE", "1")]);
    assert!(forced.stdout.contains("\x1b["));
    let both = run_with(&["pg", PG_A], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!both.stdout.contains('\x1b'), "{}", both.stdout);
    // --color always is the user's explicit word: it beats NO_COLOR.
    let always = run_with(&["pg", PG_A, "--color", "always"], &[("NO_COLOR", "1")]);
    assert!(always.stdout.contains("\x1b["));
}

/// Runs `wtdiag ARGS` with its stdout on a pseudo-terminal (util-linux `script`), returning
/// what the terminal showed.
fn on_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    let bin = env!("CARGO_BIN_EXE_wtdiag");
    let command = std::iter::once(bin)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.current_dir(root())
        .args(["-qec", &command, "/dev/null"])
        .env("LANG", "C.UTF-8")
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .expect("util-linux `script` is needed (apt-get install util-linux)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn auto_colors_a_terminal_unless_no_color() {
    let shown = on_terminal(&["pg", PG_A], &[]);
    assert!(shown.contains("\x1b[1mRoot causes"), "{shown}");
    let shown = on_terminal(&["pg", PG_A], &[("NO_COLOR", "1")]);
    assert!(
        shown.contains("Root causes") && !shown.contains('\x1b'),
        "{shown}"
    );
}

#[test]
fn a_report_file_is_not_colored_even_from_a_terminal() {
    let dir = TempDir::new("render-color-file");
    let file = dir.join("report.txt");
    let file = file.to_str().unwrap();
    on_terminal(&["pg", PG_A, "-o", file], &[]);
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        text.contains("Root causes") && !text.contains('\x1b'),
        "{text}"
    );
}

#[test]
fn colors_do_not_let_log_text_drive_the_terminal() {
    // A request path with an escape sequence in it, in a real Gunicorn 27 log.
    let log = std::fs::read_to_string(root().join("fixtures/gunicorn/gunicorn-27.0.1.log"))
        .unwrap()
        .replace(
            "Error handling request GET /cpu",
            "Error handling request GET /cpu\x1b]0;pwned\x07",
        );
    let dir = TempDir::new("render-escape");
    let path = dir.join("error.log");
    std::fs::write(&path, log).unwrap();
    let run = run(&["logs", path.to_str().unwrap(), "--color", "always"]);
    assert!(run.stdout.contains("\\x{1b}]0;pwned"), "{}", run.stdout);
    assert!(!run.stdout.contains("\x1b]0;"));
}

/// The timeline block of a table: its heading and, per drawn row, the time, the count of each
/// column and whether the row is marked.
struct Timeline {
    heading: String,
    rows: Vec<(String, BTreeMap<String, u64>, bool)>,
    text: String,
}

impl Timeline {
    fn of(stdout: &str) -> Timeline {
        let block: Vec<&str> = stdout
            .lines()
            .skip_while(|l| !l.starts_with("Timeline: "))
            .take_while(|l| !l.is_empty())
            .collect();
        assert!(!block.is_empty(), "no timeline in:\n{stdout}");
        // Under the heading, notes in parentheses (what is not drawn), then the column names.
        let notes = block[1..].iter().take_while(|l| l.starts_with('(')).count();
        let header = block[1 + notes];
        let labels = [
            "timeouts",
            "kills",
            "lock waits",
            "slow stmts",
            "deadlocks",
            "5xx",
        ];
        let mut columns: Vec<(usize, &str)> = labels
            .iter()
            .filter_map(|l| header.find(l).map(|at| (header[..at].chars().count(), *l)))
            .collect();
        columns.sort();
        let mut rows = Vec::new();
        for line in &block[2 + notes..] {
            let chars: Vec<char> = line.chars().collect();
            let time: String = chars[..columns[0].0].iter().collect::<String>();
            if line.contains("quiet rows") {
                continue;
            }
            let mut counts = BTreeMap::new();
            for (i, (start, label)) in columns.iter().enumerate() {
                let end = columns
                    .get(i + 1)
                    .map_or(chars.len(), |c| c.0.min(chars.len()));
                let cell: String = chars[(*start).min(chars.len())..end].iter().collect();
                let n = cell
                    .split_whitespace()
                    .find_map(|w| w.parse::<u64>().ok())
                    .unwrap_or(0);
                counts.insert(label.to_string(), n);
            }
            let marked = line.trim_end().ends_with('◆') || line.trim_end().ends_with('*');
            rows.push((time.trim().to_string(), counts, marked));
        }
        Timeline {
            heading: block[0].to_string(),
            rows,
            text: block.join("\n"),
        }
    }

    fn total(&self, label: &str) -> u64 {
        self.rows
            .iter()
            .map(|(_, c, _)| c.get(label).copied().unwrap_or(0))
            .sum()
    }

    fn row(&self, time: &str) -> &(String, BTreeMap<String, u64>, bool) {
        self.rows
            .iter()
            .find(|r| r.0 == time)
            .unwrap_or_else(|| panic!("no row {time} in\n{}", self.text))
    }
}

#[test]
fn timeline_counts_worker_and_database_events_per_second() {
    let run = run(&as_strs(&logs_args("27.0.1", "table")));
    let t = Timeline::of(&run.stdout);
    assert!(
        t.heading
            .starts_with("Timeline: 1s per row, 2026-11-26 23:06:41 to 23:06:59 +00:00"),
        "{}",
        t.heading
    );
    assert!(
        t.heading.ends_with("◆ = events of finding #1 (memory)"),
        "{}",
        t.heading
    );
    // Every timeout and kill of the JSON report, and the PostgreSQL log's lock waits.
    assert_eq!(t.total("timeouts"), 7, "{}", t.text);
    assert_eq!(t.total("kills"), 4, "{}", t.text);
    assert_eq!(t.total("lock waits"), 4, "{}", t.text);
    // The OOM kill at 23:06:41 is the top finding's; the burst of lock waits at 23:06:52-55.
    let first = t.row("23:06:41");
    assert_eq!((first.1["kills"], first.2), (1, true));
    assert_eq!(t.rows.iter().filter(|r| r.2).count(), 1);
    assert_eq!(t.row("23:06:53").1["lock waits"], 1);
    assert_eq!(t.row("23:06:53").1["timeouts"], 1);
}

#[test]
fn timeline_keeps_to_the_since_until_window() {
    // The window applies to the PostgreSQL log's lock waits too, not only to Gunicorn's events.
    let mut args = logs_args("27.0.1", "table");
    args.extend([
        "--since".to_string(),
        "2026-11-26 23:06:53 +0000".to_string(),
    ]);
    let run = run(&as_strs(&args));
    let t = Timeline::of(&run.stdout);
    assert!(
        t.heading
            .starts_with("Timeline: 1s per row, 2026-11-26 23:06:53 to"),
        "{}",
        t.heading
    );
    assert_eq!(t.total("lock waits"), 3, "{}", t.text);
    assert_eq!(t.total("timeouts"), 3, "{}", t.text);
}

#[test]
fn timeline_of_a_burst_counts_five_timeouts_in_one_second() {
    let run = run(&as_strs(&logs_args("27.0.1-burst", "table")));
    let t = Timeline::of(&run.stdout);
    assert_eq!(t.row("23:07:08").1["timeouts"], 5, "{}", t.text);
    assert_eq!(t.row("23:07:09").1["kills"], 5, "{}", t.text);
    // The largest count has the full bar, a smaller one a shorter bar.
    assert!(t.text.contains("████████ 5"), "{}", t.text);
    assert!(t.text.contains("███▎     2"), "{}", t.text);
}

#[test]
fn timeline_of_pg_counts_what_json_lists() {
    let table = run(&["pg", PG_A]);
    let json: serde_json::Value =
        serde_json::from_str(&run(&["pg", PG_A, "--format", "json"]).stdout).unwrap();
    let count = |kind: &str, state: Option<&str>| {
        json["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == kind && state.is_none_or(|s| e["state"] == s))
            .count() as u64
    };
    let t = Timeline::of(&table.stdout);
    assert_eq!(t.total("lock waits"), count("lock_wait", Some("waiting")));
    assert_eq!(t.total("slow stmts"), count("statement", None));
    assert_eq!(t.total("deadlocks"), count("deadlock", None));
    assert_eq!(t.total("deadlocks"), 1);
    assert_eq!(t.row("22:56:57").1["deadlocks"], 1, "{}", t.text);
}

#[test]
fn timeline_shows_the_proxy_giving_up_before_gunicorn() {
    let run = run(&[
        "logs",
        "fixtures/nginx/ladder-inverted.gunicorn.log",
        "fixtures/nginx/ladder-inverted.nginx-error.log",
    ]);
    let t = Timeline::of(&run.stdout);
    // nginx answered 504 at :28, seven seconds before Gunicorn's own timeout at :35.
    let proxy = t.row("12:08:28");
    assert_eq!((proxy.1["5xx"], proxy.2), (1, true), "{}", t.text);
    assert_eq!(t.row("12:08:35").1["timeouts"], 1);
    assert!(t.text.contains("┊ 6 quiet rows"), "{}", t.text);
}

#[test]
fn timeline_counts_the_5xx_of_an_access_log_once() {
    // The whole stack of one run: Gunicorn's error log, nginx's access and error logs,
    // PostgreSQL's log. nginx's access log has three 5xx (a 500 at :53; a 500 and the 502 of the
    // killed worker at :57); its error log's 502 is the same answer, not counted again.
    let stack = |kind: &str| format!("fixtures/stack/sync-27.{kind}.log");
    let (error, access, nginx_error, pg) = (
        stack("gunicorn-error"),
        stack("nginx-access"),
        stack("nginx-error"),
        stack("postgres"),
    );
    let run = run(&["logs", &error, &access, &nginx_error, &pg]);
    let t = Timeline::of(&run.stdout);
    let access_5xx = std::fs::read_to_string(root().join(&access))
        .unwrap()
        .lines()
        .filter(|l| {
            l.split('"')
                .nth(2)
                .is_some_and(|s| s.trim_start().starts_with('5'))
        })
        .count() as u64;
    assert_eq!(access_5xx, 3);
    assert_eq!(t.total("5xx"), access_5xx, "{}", t.text);
    assert_eq!(t.row("14:30:57").1["5xx"], 2, "{}", t.text);
    assert_eq!(t.row("14:30:57").1["timeouts"], 2, "{}", t.text);
    assert_eq!(t.total("lock waits"), 3, "{}", t.text);
    // Without the access log, the error log's 502 is what the timeline has.
    let run = run_with(&["logs", &error, &nginx_error], &[]);
    let t = Timeline::of(&run.stdout);
    assert_eq!(t.total("5xx"), 1, "{}", t.text);
}

#[test]
fn timeline_says_what_it_does_not_draw_beyond_the_listing_cap() {
    // 20,005 timeouts, one a second: the report lists 20,000 events and counts the rest.
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00+00:00").unwrap();
    let mut log = String::new();
    for i in 0..20_005i64 {
        let t = start + chrono::Duration::seconds(i);
        log.push_str(&format!(
            "[{}] [1] [CRITICAL] WORKER TIMEOUT (pid:{})\n",
            t.format("%Y-%m-%d %H:%M:%S %z"),
            100 + i
        ));
    }
    let dir = TempDir::new("render-cap");
    let path = dir.join("error.log");
    std::fs::write(&path, log).unwrap();
    let run = run(&["logs", path.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t = Timeline::of(&run.stdout);
    assert_eq!(t.total("timeouts"), 20_000, "{}", t.text);
    assert!(
        t.text
            .contains("(5 worker timeout(s) and kill(s) beyond the listed events are not drawn"),
        "{}",
        t.text
    );
}

#[test]
fn timeline_buckets_grow_with_the_span() {
    // Two copies of a run 3 hours apart: 10-minute buckets, at most 30 rows.
    let log =
        std::fs::read_to_string(root().join("fixtures/gunicorn/gunicorn-27.0.1.log")).unwrap();
    let later = log.replace("[2026-11-26 23:", "[2026-11-27 02:");
    let dir = TempDir::new("render-span");
    let (a, b) = (dir.join("a.log"), dir.join("b.log"));
    std::fs::write(&a, log).unwrap();
    std::fs::write(&b, later).unwrap();
    let run = run(&["logs", a.to_str().unwrap(), b.to_str().unwrap()]);
    let t = Timeline::of(&run.stdout);
    assert!(
        t.heading
            .starts_with("Timeline: 10m per row, 2026-11-26 23:00:00 to 2026-11-27 02:10:00"),
        "{}",
        t.heading
    );
    assert_eq!(t.row("11-26 23:00").1["timeouts"], 7, "{}", t.text);
    assert_eq!(t.row("11-27 02:00").1["timeouts"], 7, "{}", t.text);
    assert_eq!(t.total("kills"), 8);
}

#[test]
fn timeline_is_ascii_when_asked_or_when_the_terminal_cannot() {
    let owned = logs_args("27.0.1-burst", "table");
    let args = as_strs(&owned);
    let mut ascii_args = args.clone();
    ascii_args.push("--ascii");
    for (name, run) in [
        ("--ascii", run(&ascii_args)),
        ("TERM=dumb", run_with(&args, &[("TERM", "dumb")])),
        ("LANG=C", run_with(&args, &[("LANG", "C")])),
        ("LC_ALL=POSIX", run_with(&args, &[("LC_ALL", "POSIX")])),
    ] {
        let t = Timeline::of(&run.stdout);
        assert!(t.text.is_ascii(), "{name}:\n{}", t.text);
        assert!(t.text.contains("######## 5"), "{name}:\n{}", t.text);
        assert_eq!(t.row("23:07:08").1["timeouts"], 5, "{name}");
        assert!(
            t.row("23:07:08").2,
            "{name}: the top finding's row is marked with *"
        );
    }
}
