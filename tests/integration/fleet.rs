//! Fleet logs: many pods or hosts in one stream, from the tools and aggregators that merge them.
//! The fixtures are three real Gunicorn 27 pods whose pids collide (fixtures/fleet/make.sh: each
//! master is pid 1 in its own pid namespace, workers 2, 3, 5): pod A's worker 2 times out and
//! runs its abort handler, pod B's worker 2 is SIGKILLed from outside two seconds later, pod C's
//! worker 3 times out in C code and is SIGKILLed. Every envelope holds the same lines
//! (fixtures/fleet/derive.py, SOURCES.md).

use serde_json::Value;

use crate::common::{fixture, wtdiag};

fn logs_json(args: &[&str]) -> Value {
    let mut all = vec!["logs", "--format", "json"];
    all.extend_from_slice(args);
    let run = wtdiag(&all);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()
}

fn path(name: &str) -> String {
    fixture(&format!("fleet/{name}"))
        .to_str()
        .unwrap()
        .to_string()
}

/// The findings as (cause, origins, pids, title).
fn findings(report: &Value) -> Vec<(String, Vec<String>, Vec<u64>, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["cause"].as_str().unwrap().to_string(),
                f["origins"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o.as_str().unwrap().to_string())
                    .collect(),
                f["pids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_u64().unwrap())
                    .collect(),
                f["title"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Each pod's incidents are its own: B's outside kill of worker 2 is B's out-of-memory kill, not
/// the end of A's worker 2 that timed out two seconds before; C's escalation is C's.
fn assert_each_pod_its_own(report: &Value, [a, b, c]: [&str; 3]) {
    let found = findings(report);
    assert_eq!(found.len(), 3, "{found:#?}");
    let of = |origin: &str| {
        found
            .iter()
            .find(|f| f.1 == [origin.to_string()])
            .unwrap_or_else(|| panic!("no finding of {origin}: {found:#?}"))
    };
    let (cause, _, pids, title) = of(b);
    assert_eq!(
        (cause.as_str(), pids.as_slice()),
        ("memory", &[2][..]),
        "{title}"
    );
    let (cause, _, pids, title) = of(c);
    assert_eq!((cause.as_str(), pids.as_slice()), ("unknown", &[3][..]));
    assert!(title.contains("escalated to SIGKILL"), "{title}");
    let (cause, _, pids, title) = of(a);
    assert_eq!((cause.as_str(), pids.as_slice()), ("unknown", &[2][..]));
    assert!(title.contains("GET /hang"), "{title}");
    // A's timeout took no kill: the kill in the log is B's.
    let kills_after_timeout: Vec<&Value> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "worker_killed" && e["after_timeout"] == true)
        .collect();
    assert_eq!(kills_after_timeout.len(), 1, "{kills_after_timeout:#?}");
    assert_eq!(kills_after_timeout[0]["origin"], c);
    for e in report["events"].as_array().unwrap() {
        let o = e["origin"].as_str().unwrap();
        assert!([a, b, c].contains(&o), "event origin {o}");
    }
}

const PODS: [&str; 3] = [
    "pod/web-7f9c8d5b4-x2kqp/web",
    "pod/web-7f9c8d5b4-m9tzr/web",
    "pod/web-7f9c8d5b4-h4wnc/web",
];

/// The report: `kubectl logs --prefix -l app=web` read nothing (`not_gunicorn_log`).
#[test]
fn same_pids_in_three_pods_stay_each_pods_own() {
    let report = logs_json(&[&path("fleet.derived-kubectl-prefix.log")]);
    let input = &report["inputs"][0];
    assert_eq!(input["envelope"], "kubectl_prefix");
    assert_eq!(input["origins"], serde_json::json!(PODS));
    assert!(
        !report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "not_gunicorn_log")
    );
    assert_each_pod_its_own(&report, PODS);
}

/// Each pod's own file is its origin too: three files, three origins, whatever their pids.
#[test]
fn one_file_per_pod_keeps_pods_apart() {
    let files = ["pod-web-a.log", "pod-web-b.log", "pod-web-c.log"].map(path);
    let report = logs_json(&files.iter().map(String::as_str).collect::<Vec<_>>());
    assert_each_pod_its_own(&report, [&files[0], &files[1], &files[2]]);
}

/// The table puts each origin's findings under its name.
#[test]
fn table_groups_findings_by_origin() {
    let run = wtdiag(&["logs", &path("fleet.derived-kubectl-prefix.log")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("Root causes by origin (3 origins), most important first"),
        "{}",
        run.stdout
    );
    let b = run.stdout.find("== pod/web-7f9c8d5b4-m9tzr/web").unwrap();
    let memory = run.stdout.find("#1 memory (critical)").unwrap();
    let c = run.stdout.find("== pod/web-7f9c8d5b4-h4wnc/web").unwrap();
    assert!(b < memory && memory < c, "{}", run.stdout);
}

fn aggregator(file: &str, envelope: &str, origins: [&str; 3]) {
    let report = logs_json(&[&path(file)]);
    let input = &report["inputs"][0];
    assert_eq!(input["envelope"], envelope, "{input}");
    assert_eq!(input["origins"], serde_json::json!(origins));
    assert_eq!(input["skipped_lines"], 0, "{input}");
    assert_each_pod_its_own(&report, origins);
}

#[test]
fn docker_compose_replicas() {
    aggregator(
        "fleet.derived-compose.log",
        "docker_compose",
        ["web-1", "web-2", "web-3"],
    );
}

#[test]
fn journalctl_short_of_several_hosts() {
    aggregator(
        "fleet.derived-journal-short.log",
        "journal_short",
        ["web-a", "web-b", "web-c"],
    );
}

#[test]
fn journalctl_json() {
    aggregator(
        "fleet.derived-journal.json",
        "journal_json",
        ["web-a", "web-b", "web-c"],
    );
}

#[test]
fn loki_logcli_default_output() {
    // logcli trims each line: the traceback's indentation is put back, so A's stack still reads
    // as `time.sleep` in the view, not as CPU-bound code.
    aggregator("fleet.derived-logcli.log", "loki_logcli", PODS);
}

#[test]
fn loki_logcli_jsonl() {
    aggregator("fleet.derived-logcli.jsonl", "loki_logcli_jsonl", PODS);
}

#[test]
fn elasticsearch_export_of_filebeat_documents() {
    aggregator("fleet.derived-filebeat-es.ndjson", "ndjson", PODS);
}

#[test]
fn fluent_bit_ndjson() {
    aggregator("fleet.derived-fluentbit.ndjson", "ndjson", PODS);
}

#[test]
fn vector_ndjson() {
    aggregator("fleet.derived-vector.ndjson", "ndjson", PODS);
}

#[test]
fn cloud_logging_ndjson() {
    aggregator("fleet.derived-cloud-logging.ndjson", "ndjson", PODS);
}

#[test]
fn cloudwatch_logs_tail() {
    aggregator(
        "fleet.derived-cloudwatch-tail.log",
        "cloudwatch_tail",
        CLOUDWATCH_STREAMS,
    );
}

#[test]
fn cloudwatch_filter_log_events_json() {
    // Printed by awscli's own JSON formatter: one document over many lines.
    aggregator(
        "fleet.derived-cloudwatch-filter.json",
        "json_document",
        CLOUDWATCH_STREAMS,
    );
}

#[test]
fn cloudwatch_filter_log_events_text() {
    aggregator(
        "fleet.derived-cloudwatch-filter.txt",
        "cloudwatch_text",
        CLOUDWATCH_STREAMS,
    );
}

#[test]
fn gcloud_logging_read_json() {
    // Printed by the Cloud SDK's resource printer: a JSON array of LogEntry.
    aggregator("fleet.derived-gcloud-read.json", "json_document", PODS);
}

const CLOUDWATCH_STREAMS: [&str; 3] = [
    "web/web/3f1c2a9e5d7b4e0f9a8b7c6d5e4f3a2b",
    "web/web/8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
    "web/web/0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a",
];

/// logcli and gcloud list newest first unless told otherwise: the report says so.
#[test]
fn an_export_listed_newest_first_is_named() {
    let dir = crate::common::TempDir::new("fleet-reversed");
    let text = std::fs::read_to_string(path("fleet.derived-kubectl-prefix.log")).unwrap();
    let reversed: Vec<&str> = text.lines().rev().collect();
    let file = dir.join("newest-first.log");
    std::fs::write(&file, reversed.join("\n") + "\n").unwrap();
    let report = logs_json(&[file.to_str().unwrap()]);
    let codes: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"stream_reversed"), "{codes:?}");
    let report = logs_json(&[&path("fleet.derived-kubectl-prefix.log")]);
    assert!(!report["warnings"].to_string().contains("stream_reversed"));
}

/// Inputs read ahead on other threads give the report of one thread, byte for byte.
#[test]
fn jobs_one_and_default_give_identical_json() {
    let mut inputs: Vec<String> = [
        "fleet.derived-kubectl-prefix.log",
        "fleet.derived-journal.json",
        "fleet.derived-cloudwatch-filter.json",
        "pod-web-a.log",
        "pod-web-b.log",
        "pod-web-c.log",
    ]
    .map(path)
    .to_vec();
    for f in [
        "gunicorn/gunicorn-22.0.0.log",
        "gunicorn/gunicorn-27.0.1.log",
        "gunicorn/gunicorn-20.1.0.log",
        "kernel/kernel-oom.dmesg-T",
        "kernel/gunicorn-oom.log",
        "stack/sync-27.nginx-error.log",
    ] {
        inputs.push(fixture(f).to_str().unwrap().to_string());
    }
    let run = |jobs: &str| {
        let mut args = vec!["logs", "--format", "json", "--jobs", jobs];
        args.extend(inputs.iter().map(String::as_str));
        let r = wtdiag(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout
    };
    let one = run("1");
    assert!(one.contains("pod/web-7f9c8d5b4-m9tzr/web"));
    assert_eq!(one, run("4"));
    let default = wtdiag(
        &[
            &["logs", "--format", "json"][..],
            &inputs.iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
    );
    assert_eq!(one, default.stdout);
}

/// A broken input among those read ahead stops the run as it does on one thread.
#[test]
fn a_corrupt_input_read_ahead_fails_as_on_one_thread() {
    let dir = crate::common::TempDir::new("fleet-corrupt");
    let data = std::fs::read(fixture("gunicorn/gunicorn-27.0.1.log")).unwrap();
    let gz = crate::common::gzip(&data);
    let broken = dir.join("error.log.2.gz");
    std::fs::write(&broken, &gz[..gz.len() / 2]).unwrap();
    let args = |jobs: &'static str| {
        vec![
            "logs".to_string(),
            "--jobs".into(),
            jobs.into(),
            path("pod-web-a.log"),
            broken.to_str().unwrap().to_string(),
            path("pod-web-b.log"),
        ]
    };
    let one = wtdiag(&args("1"));
    let four = wtdiag(&args("4"));
    assert_eq!(one.code, 2, "{}", one.stderr);
    assert_eq!(four.code, 2);
    assert_eq!(one.stderr, four.stderr);
    assert_eq!(one.stderr.lines().count(), 1, "{}", one.stderr);
}

/// A host's kernel log joins only that host's workers: web-b's OOM kill of pid 2 explains
/// web-b's SIGKILL (high confidence, the kernel's line as evidence), and another host's OOM kill
/// of pid 3 does not touch web-c's worker 3. The kernel line is the real one of
/// fixtures/kernel (its pid changed), in journalctl's short form.
#[test]
fn a_hosts_kernel_oom_kill_joins_only_that_hosts_worker() {
    let dir = crate::common::TempDir::new("fleet-kernel");
    let text = std::fs::read_to_string(path("fleet.derived-journal-short.log")).unwrap();
    let oom = |host: &str, pid: u32| {
        format!(
            "Dec 02 15:05:15 {host} kernel: Memory cgroup out of memory: Killed process {pid} \
             (gunicorn) total-vm:173644kB, anon-rss:142112kB, file-rss:4844kB, shmem-rss:0kB, \
             UID:0 pgtables:352kB oom_score_adj:0\n"
        )
    };
    let file = dir.join("journal.log");
    std::fs::write(&file, text + &oom("web-b", 2) + &oom("web-x", 3)).unwrap();
    let report = logs_json(&[file.to_str().unwrap()]);
    let found = report["findings"].as_array().unwrap();
    let b = found
        .iter()
        .find(|f| f["origins"] == serde_json::json!(["web-b"]))
        .unwrap();
    assert_eq!(b["cause"], "memory");
    assert_eq!(b["confidence"], "high", "{b:#}");
    assert!(b["evidence"].to_string().contains("Killed process 2"));
    let c = found
        .iter()
        .find(|f| f["origins"] == serde_json::json!(["web-c"]))
        .unwrap();
    assert_eq!(c["cause"], "unknown", "{c:#}");
    assert!(!c["evidence"].to_string().contains("Killed process"));
    // web-x's kill is an OOM kill no Gunicorn log mentions: a finding of its own.
    assert!(
        found
            .iter()
            .any(|f| f["evidence"].to_string().contains("Killed process 3")),
        "{found:#?}"
    );
}
