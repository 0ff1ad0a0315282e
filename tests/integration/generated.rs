//! The committed completions and man pages must match what the binary generates now; when this
//! fails, run `scripts/gen-artifacts.sh` and commit the result.

use crate::common::{root, wtdiag};

fn assert_current(args: &[&str], rel: &str) {
    let run = wtdiag(args);
    assert_eq!(run.code, 0, "wtdiag {args:?} failed: {}", run.stderr);
    let committed = std::fs::read_to_string(root().join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}; run scripts/gen-artifacts.sh"));
    assert!(
        committed == run.stdout,
        "{rel} is stale: run scripts/gen-artifacts.sh and commit the result"
    );
}

#[test]
fn completions_are_current() {
    assert_current(&["completions", "bash"], "completions/wtdiag.bash");
    assert_current(&["completions", "zsh"], "completions/_wtdiag");
    assert_current(&["completions", "fish"], "completions/wtdiag.fish");
    assert_current(&["completions", "elvish"], "completions/wtdiag.elv");
    assert_current(&["completions", "powershell"], "completions/_wtdiag.ps1");
}

#[test]
fn man_pages_are_current() {
    assert_current(&["man"], "man/wtdiag.1");
    for sub in ["logs", "pg", "live", "watch"] {
        assert_current(&["man", sub], &format!("man/wtdiag-{sub}.1"));
    }
}

#[test]
fn man_page_documents_exit_codes() {
    let page = std::fs::read_to_string(root().join("man/wtdiag.1")).expect("man page");
    assert!(
        page.contains("Exit codes"),
        "wtdiag.1 lacks the exit-code section"
    );
    let logs = std::fs::read_to_string(root().join("man/wtdiag-logs.1")).expect("man page");
    assert!(logs.contains("fail\\-on"), "wtdiag-logs.1 lacks --fail-on");
}
