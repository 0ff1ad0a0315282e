#!/usr/bin/env bash
# Times `wtdiag logs` on a generated fleet (bench/fleet/gen.py: 50 origins as 20 plain error
# logs, a kubectl --prefix stream of 20 pods, a journalctl -o json stream of 10 hosts, and a
# kernel log) with one thread and with the default (one per core), and checks that both give
# the same JSON. Prints wall seconds (best of 3), GB/s, the CPU seconds of that run (user + sys:
# what the run costs when other work shares the machine) and peak RSS.
# usage: [REPS=3] bench/fleet/run.sh [SIZE_MB]   (default 1024; best of REPS runs)
set -euo pipefail
cd "$(dirname "$0")/../.."
mb=${1:-1024}
dir=bench/out/fleet-$mb
cargo build --release -q
[ -f "$dir/kernel.dmesg-T" ] || python3 bench/fleet/gen.py "$mb" "$dir"
mapfile -t inputs < <(find "$dir" -type f | sort)
bytes=$(cat "${inputs[@]}" | wc -c) # also warms the page cache
echo "fleet: ${#inputs[@]} inputs, 50 origins, $((bytes >> 20)) MiB, $(nproc) cores"
for jobs in 1 default; do
  args=()
  [ "$jobs" = default ] || args=(--jobs "$jobs")
  best=
  for _ in $(seq "${REPS:-3}"); do
    /usr/bin/time -f '%e %M %U %S' -o bench/out/time.txt \
      "${CARGO_TARGET_DIR:-target}/release/wtdiag" logs --format json -o "bench/out/fleet-$jobs.json" "${args[@]}" "${inputs[@]}"
    read -r secs rss_kb user sys <bench/out/time.txt
    if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then
      best=$secs; best_rss=$rss_kb; best_cpu=$(awk "BEGIN{print $user + $sys}")
    fi
  done
  gbps=$(awk "BEGIN{printf \"%.2f\", $bytes / $best / 1e9}")
  echo "jobs=$jobs: ${best}s = ${gbps} GB/s (CPU ${best_cpu}s), peak RSS $((best_rss / 1024)) MiB"
done
cmp -s bench/out/fleet-1.json bench/out/fleet-default.json && echo "same JSON with one thread and the default" ||
  { echo "run.sh: the JSON differs between --jobs 1 and the default" >&2; exit 1; }
