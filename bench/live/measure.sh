#!/usr/bin/env bash
# bench/live/measure.sh: what `wtdiag live` costs the Gunicorn workers it samples (see
# bench/live/README.md for the method and the recorded results). Builds the release binary,
# then runs bench/live/measure.py against the fixture app from the test venv.
# Needs: scripts/test-env.sh run first. Takes about 1 minute. Results: bench/out/live-overhead.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${WTDIAG_TEST_VENV:-$PWD/fixtures/.cache/venv-test}
[ -x "$VENV/bin/py-spy" ] || { echo "measure.sh: $VENV/bin/py-spy missing; run scripts/test-env.sh" >&2; exit 1; }
cargo build --release --quiet
exec "$VENV/bin/python" bench/live/measure.py --wtdiag "${CARGO_TARGET_DIR:-$PWD/target}/release/wtdiag" --venv "$VENV" "$@"
