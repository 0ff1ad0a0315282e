#!/usr/bin/env bash
# bench/watch/measure.sh: what `wtdiag watch` costs while all is well (see bench/watch/README.md).
# Builds the release binary, then runs bench/watch/measure.py against the fixture app from the
# test venv: a minute of healthy traffic without watch, a minute with it, and watch's own CPU.
# Needs: scripts/test-env.sh run first. Takes about 2.5 minutes (--seconds 60, the default).
# Results: stdout and bench/out/watch-overhead.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${WTDIAG_TEST_VENV:-$PWD/fixtures/.cache/venv-test}
[ -x "$VENV/bin/py-spy" ] || { echo "measure.sh: $VENV/bin/py-spy missing; run scripts/test-env.sh" >&2; exit 1; }
cargo build --release --quiet
exec "$VENV/bin/python" bench/watch/measure.py --wtdiag "${CARGO_TARGET_DIR:-$PWD/target}/release/wtdiag" --venv "$VENV" "$@"
