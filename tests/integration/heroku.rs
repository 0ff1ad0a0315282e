//! Heroku's router lines from the wild (fixtures/heroku/SOURCES.md), alone or mixed into
//! `heroku logs` output: each request's status and time count as what clients saw, and H12 (the
//! router's fixed 30 s ran out while the dyno kept working) is the timeout ladder in the wrong
//! order.

use serde_json::Value;

use crate::common::{fixture, wtdiag};

fn logs(file: &str) -> Value {
    let path = fixture(&format!("heroku/{file}"));
    let out = wtdiag(&["logs", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

fn proxy_timeouts(json: &Value) -> Vec<&Value> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["cause"] == "proxy_timeout")
        .collect()
}

#[test]
fn router_lines_alone_are_read_as_the_proxy_access_log() {
    for (file, h12, path) in [
        ("offenewahlen-173-h12.log", 1, "GET /de/api/result/nrw13/"),
        (
            "blockatlas-809-h12-burst.log",
            4,
            "GET /v1/binance/**********",
        ),
    ] {
        let json = logs(file);
        assert_eq!(json["inputs"][0]["format"], "access", "{file}");
        assert_eq!(json["inputs"][0]["skipped_lines"], 0, "{file}");
        assert_eq!(json["client_impact"]["by_status"]["503"], h12, "{file}");
        let f = proxy_timeouts(&json);
        assert_eq!(f.len(), 1, "{file}");
        assert_eq!(f[0]["count"], h12);
        assert_eq!(f[0]["request"], path, "the query string is left out");
        // No `Using worker:` line: the ladder reading holds only for sync workers.
        assert_eq!(f[0]["confidence"], "medium");
        assert!(f[0]["advice"].as_str().unwrap().contains("Heroku"));
        let codes: Vec<&str> = json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&"not_gunicorn_log"), "{codes:?}");
    }
}

#[test]
fn router_lines_mixed_into_heroku_logs_are_read_too() {
    // `heroku logs` of a Unicorn app: the router's lines are read, the app's are not Gunicorn's.
    let json = logs("rgsoc-teams-49-h12-unicorn.log");
    assert_eq!(json["inputs"][0]["format"], "gunicorn");
    assert_eq!(json["client_impact"]["errors_5xx"], 2);
    let f = proxy_timeouts(&json);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["request"], "GET /users");
    let endpoint = &json["endpoints"][0];
    assert_eq!(endpoint["request"], "GET /users");
    assert!((endpoint["max_s"].as_f64().unwrap() - 30.008).abs() < 1e-9);
}

#[test]
fn the_documentation_example_keeps_h13_apart_from_h12() {
    let json = logs("heroku-devcenter-h12-h13.log");
    // H12 is a timeout of the router; H13 (the dyno closed the connection) names the request of
    // a worker that died, and with no worker death in the log it names nothing.
    let f = proxy_timeouts(&json);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["count"], 1);
    assert_eq!(json["client_impact"]["by_status"]["503"], 2);
}
