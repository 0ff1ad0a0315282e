#!/usr/bin/env bash
# Prepares what the test suite needs on a fresh Debian machine, idempotently:
#   - a Python venv at fixtures/.cache/venv-test with gunicorn, Django, psycopg2-binary,
#     requests, py-spy, and for the worker-class tests of `wtdiag live` gevent (+ packaging,
#     which Gunicorn's gevent worker imports) and uvicorn, from PyPI (pinned below);
#   - PostgreSQL server binaries (Debian's postgresql-15) when `initdb` is missing;
#   - headless Chromium (Debian's chromium) for the HTML report tests, when missing;
#   - a second venv beside it, venv-gunicorn-20.1 (WTDIAG_TEST_VENV_GUNICORN20), with Gunicorn
#     20.1.0 and the same Django/psycopg2/requests, for `wtdiag watch`'s test on a Gunicorn that
#     logs no abort traceback (py-spy is run from the first venv);
# Prints nothing on success but the venv path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${WTDIAG_TEST_VENV:-$PWD/fixtures/.cache/venv-test}
REQUIREMENTS=(
  "gunicorn==27.0.1"
  "Django==5.2.19"
  "psycopg2-binary==2.9.13"
  "requests==2.34.2"
  "py-spy==0.4.3"
  "gevent==26.9.0"
  "packaging==26.4"
  "uvicorn==0.54.0"
)

if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "test-env: installing PostgreSQL server (Debian postgresql-15)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
  fi
fi

if ! command -v chromium >/dev/null; then
  echo "test-env: installing Chromium (Debian chromium), for the HTML report tests" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
command -v chromium >/dev/null || { echo "test-env: chromium missing after install" >&2; exit 1; }

stamp="$VENV/.wtdiag-requirements"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]; then
  echo "test-env: creating $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${REQUIREMENTS[@]}"
  echo "${REQUIREMENTS[*]}" >"$stamp"
fi
VENV20=${WTDIAG_TEST_VENV_GUNICORN20:-$(dirname "$VENV")/venv-gunicorn-20.1}
REQUIREMENTS20=(
  "gunicorn==20.1.0"
  "Django==5.2.19"
  "psycopg2-binary==2.9.13"
  "requests==2.34.2"
  # Gunicorn 20.1 imports pkg_resources.
  "setuptools==69.5.1"
)
stamp20="$VENV20/.wtdiag-requirements"
if [ ! -x "$VENV20/bin/python" ] || [ "$(cat "$stamp20" 2>/dev/null)" != "${REQUIREMENTS20[*]}" ]; then
  echo "test-env: creating $VENV20" >&2
  python3 -m venv "$VENV20"
  "$VENV20/bin/pip" install -q --disable-pip-version-check "${REQUIREMENTS20[@]}"
  echo "${REQUIREMENTS20[*]}" >"$stamp20"
fi
[ -x "$VENV20/bin/gunicorn" ] || { echo "test-env: $VENV20/bin/gunicorn missing after install" >&2; exit 1; }
for tool in gunicorn py-spy python; do
  [ -x "$VENV/bin/$tool" ] || { echo "test-env: $VENV/bin/$tool missing after install" >&2; exit 1; }
done
echo "$VENV"
