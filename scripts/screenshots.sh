#!/usr/bin/env bash
# Regenerates the README's pictures from fixture runs:
#   docs/report-html.png        the --format html report of fixtures/stack/sync-27 (Gunicorn 27
#                               behind nginx, with PostgreSQL), rendered by headless Chromium;
#   docs/timeline-terminal.png  the table's head with its timeline for the Gunicorn 27 fixture
#                               with its PostgreSQL and application logs, as a terminal shows
#                               it (run on a pseudo-terminal by util-linux `script`, its ANSI
#                               colors turned into HTML here, rendered by Chromium).
# Needs chromium (apt-get install -y chromium), script (util-linux) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "screenshots: chromium missing (apt-get install -y chromium)" >&2; exit 1; }
cargo build -q
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$PWD/$target_dir ;; esac
bin=$target_dir/debug/wtdiag
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(logs fixtures/gunicorn/gunicorn-27.0.1.log --app-log fixtures/gunicorn/app-27.0.1.log
      --pg-log fixtures/gunicorn/postgres-27.0.1.log)
# The HTML report of a whole stack (Gunicorn 27 behind nginx, with PostgreSQL; --timeout 3),
# whose access log gives the endpoints' latency and the 5xx clients got.
stack=(logs fixtures/stack/sync-27.gunicorn-error.log fixtures/stack/sync-27.nginx-access.log
       fixtures/stack/sync-27.nginx-error.log fixtures/stack/sync-27.postgres.log
       fixtures/stack/sync-27.app.log --timeout 3)

shot() { # URL WIDTH HEIGHT OUT
  chromium --headless --disable-gpu --no-sandbox --hide-scrollbars --no-first-run \
    --user-data-dir="$tmp/profile" --window-size="$2,$3" --screenshot="$4" "$1" 2>/dev/null
}

"$bin" "${stack[@]}" --format html -o "$tmp/report.html"
shot "file://$tmp/report.html" 1200 2000 "$PWD/docs/report-html.png"

# The terminal: 110 columns, UTF-8, colors as `auto` gives them on a terminal.
script -qec "env COLUMNS=112 LANG=C.UTF-8 TERM=xterm-256color $bin ${args[*]}" /dev/null |
  tr -d '\r' | sed -n '1,/^└/p' >"$tmp/term.txt"
python3 - "$tmp/term.txt" "$tmp/term.html" <<'PY'
import html, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
palette = {1: "#f14c4c", 3: "#e5e510", 9: "#f14c4c", 11: "#f5f543", 12: "#3b8eea",
           13: "#d670d6", 14: "#29b8db", 31: "#f14c4c", 32: "#23d18b", 33: "#e5e510",
           34: "#3b8eea", 35: "#d670d6", 36: "#29b8db"}
out, style = [], {}
def span(chunk):
    if not chunk:
        return
    css = ";".join(f"{k}:{v}" for k, v in style.items())
    out.append(f'<span style="{css}">{html.escape(chunk)}</span>' if css else html.escape(chunk))
pos = 0
for m in re.finditer(r"\x1b\[([0-9;]*)m", text):
    span(text[pos:m.start()])
    pos = m.end()
    codes = [int(c) for c in m.group(1).split(";") if c] or [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0: style = {}
        elif c == 1: style["font-weight"] = "bold"
        elif c == 2: style["opacity"] = "0.6"
        elif c == 39: style.pop("color", None)
        elif c == 38 and i + 2 < len(codes) + 1 and codes[i + 1] == 5:
            style["color"] = palette.get(codes[i + 2], "#cccccc"); i += 2
        elif 30 <= c <= 37: style["color"] = palette.get(c, "#cccccc")
        i += 1
span(text[pos:])
page = ('<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{margin:0;background:#1e1e1e}'
        'pre{margin:0;padding:16px;color:#cccccc;font:14px/1.3 "DejaVu Sans Mono",monospace}'
        '</style></head><body><pre>' + "".join(out) + "</pre></body></html>")
open(sys.argv[2], "w", encoding="utf-8").write(page)
PY
lines=$(grep -c '' "$tmp/term.txt")
shot "file://$tmp/term.html" 1000 $((lines * 19 + 40)) "$PWD/docs/timeline-terminal.png"
echo "screenshots: docs/report-html.png docs/timeline-terminal.png"
