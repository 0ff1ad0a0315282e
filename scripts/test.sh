#!/usr/bin/env bash
# The whole test suite, from a fresh clone: prepares what the tests need (scripts/test-env.sh:
# a Python venv with gunicorn, Django, psycopg2-binary, requests, py-spy, gevent, uvicorn, and
# a Gunicorn 20.1 venv beside it for `wtdiag watch`'s tests; PostgreSQL server binaries), then
# runs every unit and integration test. No test is skipped for a missing tool: a missing tool
# fails the test that needs it, and this script fails if any test was ignored.
set -euo pipefail
cd "$(dirname "$0")/.."

WTDIAG_TEST_VENV=$(scripts/test-env.sh | tail -n 1)
export WTDIAG_TEST_VENV

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --all-targets "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
[ "$status" = 0 ] || exit "$status"
if grep -Eq '[1-9][0-9]* ignored' "$log"; then
  echo "test.sh: some tests were ignored; every test must run" >&2
  exit 1
fi
