//! The kernel log as an input of `wtdiag logs` (fixtures/kernel/make.sh: a real OOM kill of a
//! Gunicorn 27 worker in a 150 MiB memory cgroup): detected from its content, it turns the
//! worker's SIGKILL into a proven out-of-memory kill, and names OOM kills Gunicorn never logged.

use serde_json::Value;

use crate::common::{TempDir, fixture, wtdiag};

fn killed_pid() -> u64 {
    std::fs::read_to_string(fixture("kernel/kernel-oom.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn memory_findings(json: &Value) -> Vec<&Value> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["cause"] == "memory")
        .collect()
}

fn logs(args: &[&str]) -> Value {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let run = wtdiag(&all);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()
}

#[test]
fn the_kernel_log_proves_the_oom_kill_gunicorn_only_suspects() {
    let error_log = fixture("kernel/gunicorn-oom.log");
    let error_log = error_log.to_str().unwrap();
    let alone = logs(&[error_log]);
    let m = memory_findings(&alone);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["confidence"], "medium");

    for kernel in ["kernel/kernel-oom.dmesg-T", "kernel/kernel-oom.dmesg"] {
        let kernel = fixture(kernel);
        let json = logs(&[kernel.to_str().unwrap(), error_log]);
        let inputs: Vec<&str> = json["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["format"].as_str().unwrap())
            .collect();
        assert!(
            inputs.contains(&"kernel") && inputs.contains(&"gunicorn"),
            "{inputs:?}"
        );
        let m = memory_findings(&json);
        assert_eq!(m.len(), 1, "{}", json["findings"]);
        assert_eq!(m[0]["confidence"], "high");
        assert_eq!(m[0]["pids"][0], killed_pid());
        let evidence = m[0]["evidence"].to_string();
        assert!(
            evidence.contains("Memory cgroup out of memory: Killed process"),
            "{evidence}"
        );
    }
}

#[test]
fn an_oom_kill_gunicorn_did_not_log_is_a_finding_of_its_own() {
    // Gunicorn before 20.1 logs nothing when a worker is SIGKILLed: the run's log without its
    // SIGKILL line is what such a version leaves.
    let tmp = TempDir::new("kernel-silent");
    let text = std::fs::read_to_string(fixture("kernel/gunicorn-oom.log")).unwrap();
    let silent: String = text
        .lines()
        .filter(|l| !l.contains("SIGKILL"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = tmp.join("silent.log");
    std::fs::write(&path, silent).unwrap();
    let json = logs(&[
        path.to_str().unwrap(),
        fixture("kernel/kernel-oom.dmesg-T").to_str().unwrap(),
    ]);
    let m = memory_findings(&json);
    assert_eq!(m.len(), 1, "{}", json["findings"]);
    assert!(
        m[0]["title"]
            .as_str()
            .unwrap()
            .contains("no Gunicorn record"),
        "{}",
        m[0]["title"]
    );
    assert_eq!(m[0]["pids"][0], killed_pid());
}

#[test]
fn a_kernel_log_given_as_a_pipe_is_read_once_and_whole() {
    // `wtdiag logs error.log <(dmesg -T)`: the input is a pipe, which cannot be opened twice.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' logs '{}' <(cat '{}') --format json",
            env!("CARGO_BIN_EXE_wtdiag"),
            fixture("kernel/gunicorn-oom.log").display(),
            fixture("kernel/kernel-oom.dmesg-T").display()
        ))
        .output()
        .expect("bash");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = memory_findings(&json);
    assert_eq!(m[0]["confidence"], "high", "{}", json["findings"]);
}
