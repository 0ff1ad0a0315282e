//! nginx in front of Gunicorn (fixtures/nginx/make.sh: real nginx 1.22 and Gunicorn 27, both
//! timeouts in either order): the proxy's error log, detected from its content, names the
//! request of a worker that died without a traceback, and the timeout ladder in the wrong order
//! is a `proxy_timeout` finding exactly where the proxy gave up first.

use serde_json::Value;

use crate::common::{fixture, wtdiag};

fn logs(run: &str) -> Value {
    let g = fixture(&format!("nginx/{run}.gunicorn.log"));
    let n = fixture(&format!("nginx/{run}.nginx-error.log"));
    let out = wtdiag(&[
        "logs",
        g.to_str().unwrap(),
        n.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

fn findings<'a>(json: &'a Value, cause: &str) -> Vec<&'a Value> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["cause"] == cause)
        .collect()
}

#[test]
fn the_proxy_names_the_request_of_a_worker_killed_without_a_traceback() {
    let json = logs("ladder-ok");
    let formats: Vec<&str> = json["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["format"].as_str().unwrap())
        .collect();
    assert!(formats.contains(&"nginx_error"), "{formats:?}");
    // /native held the GIL in C: SIGKILL, no traceback; nginx saw the connection close.
    let killed: Vec<&Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["title"].as_str().unwrap().contains("SIGKILL"))
        .collect();
    assert_eq!(killed.len(), 1, "{}", json["findings"]);
    assert_eq!(killed[0]["request"], "GET /native");
    assert!(
        killed[0]["evidence"]
            .to_string()
            .contains("upstream prematurely closed connection")
    );
    // Gunicorn's timeout is the shorter one here: no ladder finding.
    assert!(
        findings(&json, "proxy_timeout").is_empty(),
        "{}",
        json["findings"]
    );
}

#[test]
fn a_proxy_that_gives_up_first_is_a_proxy_timeout_finding() {
    let json = logs("ladder-inverted");
    let ladder = findings(&json, "proxy_timeout");
    assert_eq!(ladder.len(), 1, "{}", json["findings"]);
    assert_eq!(ladder[0]["request"], "GET /sleep");
    assert_eq!(ladder[0]["confidence"], "high");
    assert!(
        ladder[0]["advice"]
            .as_str()
            .unwrap()
            .contains("proxy_read_timeout")
    );
}

#[test]
fn on_gunicorn_20_only_the_proxy_names_the_requests_and_no_pattern_is_guessed() {
    // Gunicorn 20.1 logs no traceback: nginx's `upstream prematurely closed connection` is the
    // only record of which request each worker was serving (/sleep exited through Python,
    // /native was SIGKILLed).
    let json = logs("ladder-ok-20.1");
    let mut requests: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["request"].as_str())
        .collect();
    requests.sort();
    assert_eq!(
        requests,
        ["GET /native", "GET /sleep"],
        "{}",
        json["findings"]
    );
    // Both workers timed out about 4 s after their boot: with only the error log that is not
    // enough to call it a boot timeout, and with nginx's lines it is known they were serving.
    let alone = wtdiag(&[
        "logs",
        fixture("nginx/ladder-ok-20.1.gunicorn.log")
            .to_str()
            .unwrap(),
        "--format",
        "json",
    ])
    .json();
    for json in [&json, &alone] {
        for f in json["findings"].as_array().unwrap() {
            assert_ne!(f["cause"], "boot_timeout", "{f}");
            assert_ne!(f["cause"], "proxy_timeout", "{f}");
        }
    }
}
