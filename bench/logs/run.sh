#!/usr/bin/env bash
# Times `wtdiag logs` on generated Gunicorn error logs of two sizes (default 256 MiB and
# 1024 MiB), reporting throughput and peak RSS (flat memory: RSS must not grow with size), and
# times ripgrep counting WORKER TIMEOUT lines on the same file as a floor for "read it once".
# usage: bench/logs/run.sh [SMALL_MB] [LARGE_MB]
set -euo pipefail
cd "$(dirname "$0")/../.."
small=${1:-256}
large=${2:-1024}
mkdir -p bench/out
cargo build --release -q
for mb in "$small" "$large"; do
  f=bench/out/gunicorn-$mb.log
  [ -f "$f" ] || python3 bench/logs/gen.py "$mb" "$f"
done
for mb in "$small" "$large"; do
  f=bench/out/gunicorn-$mb.log
  bytes=$(stat -c %s "$f")
  cat "$f" >/dev/null # warm the page cache
  best=
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o bench/out/time.txt target/release/wtdiag logs --format json -o /dev/null "$f"
    read -r secs rss_kb <bench/out/time.txt
    if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; best_rss=$rss_kb; fi
  done
  gbps=$(awk "BEGIN{printf \"%.2f\", $bytes / $best / 1e9}")
  echo "wtdiag logs: $mb MiB in ${best}s = ${gbps} GB/s, peak RSS $((best_rss / 1024)) MiB"
  if command -v rg >/dev/null; then
    /usr/bin/time -f '%e' -o bench/out/time.txt rg -c 'WORKER TIMEOUT' "$f" >/dev/null
    echo "  ripgrep -c 'WORKER TIMEOUT' on the same file: $(cat bench/out/time.txt)s"
  fi
done
