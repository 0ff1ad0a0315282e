#!/usr/bin/env bash
# The adversarial scale suite: every worst shape of bench/adversarial/gen.py at three sizes,
# with wall time, peak RSS and how far the largest size is from linear extrapolation of the
# smallest ("x linear": 1.0 is linear; the goal is under 2.0). A run over the time limit is
# reported as such and the suite goes on.
#
#   bench/adversarial/run.sh [SHAPE ...]     # default: every shape
#
# Needs: cargo, python3, /usr/bin/time (Debian: apt-get install -y time). Inputs go to
# bench/out/adversarial/ (gitignored); the table is printed and written to
# bench/out/adversarial.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=bench/out/adversarial
LIMIT=${LIMIT:-120}
mkdir -p "$OUT"
[ -x /usr/bin/time ] || { echo "run.sh: /usr/bin/time not found (apt-get install -y time)" >&2; exit 2; }
cargo build --release --quiet
WTDIAG=$PWD/target/release/wtdiag

declare -A SIZES=(
  [pg-lock-storm]="5000 20000 50000"
  [pg-lock-timeouts]="25000 50000 100000"
  [pg-long-holder]="25000 50000 100000"
  [pg-n1-backends]="50000 100000 200000"
  [pg-autoexplain]="25000 100000 400000"
  [logs-kills-client-lost]="10000 20000 40000"
  [logs-incidents-vs-lock-waits]="25000 100000 400000"
  [logs-incident-memory]="250000 1000000 4000000"
  [logs-big-statements]="50 200 400"
  [logs-many-files]="100 400 1100"
  [logs-aborted-paths]="10000 20000 40000"
  [logs-access-paths]="500000 1000000 2000000"
  [pg-raise-log]="50000 100000 200000"
  [pg-absurd-durations]="20000 40000 80000"
  [logs-huge-traceback-lines]="100 200 400"
  [pg-prefix-backtracking]="20000 40000 80000"
)
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(pg-lock-storm pg-lock-timeouts pg-long-holder pg-n1-backends
  pg-autoexplain logs-kills-client-lost logs-incidents-vs-lock-waits logs-incident-memory
  logs-big-statements logs-many-files logs-aborted-paths logs-access-paths pg-raise-log pg-absurd-durations
  logs-huge-traceback-lines pg-prefix-backtracking)

table=bench/out/adversarial.md
{
  echo "| shape | sizes | seconds | peak RSS MiB | x linear (time) | exit |"
  echo "|---|---|---|---|---|---|"
} >"$table"
for shape in "${shapes[@]}"; do
  read -r -a ns <<<"${SIZES[$shape]}"
  secs=() rss=() codes=()
  for n in "${ns[@]}"; do
    dir=$OUT/$shape-$n
    if [ ! -f "$dir/args" ]; then
      rm -rf "$dir"
      python3 bench/adversarial/gen.py "$shape" "$n" "$dir" >"$dir.args.tmp"
      mv "$dir.args.tmp" "$dir/args"
    fi
    mapfile -t args <"$dir/args"
    set +e
    ( ulimit -n 1024; timeout "$LIMIT" /usr/bin/time -f '%e %M' -o "$dir/time" \
        "$WTDIAG" "${args[@]}" --format json -o "$dir/report.json" 2>"$dir/stderr" )
    code=$?
    set -e
    if [ "$code" = 124 ]; then
      secs+=(">$LIMIT") rss+=("?")
    else
      read -r s kb <"$dir/time"
      secs+=("$s") rss+=("$((kb / 1024))")
    fi
    codes+=("$code")
  done
  first=${secs[0]} last=${secs[2]}
  ratio="-"
  if [[ $first != ">"* && $last != ">"* ]]; then
    ratio=$(awk -v a="$first" -v b="$last" -v n0="${ns[0]}" -v n2="${ns[2]}" \
      'BEGIN { a = (a < 0.01 ? 0.01 : a); printf "%.2f", b / (a * n2 / n0) }')
  fi
  row="| $shape | ${ns[*]} | ${secs[*]} | ${rss[*]} | $ratio | ${codes[*]} |"
  echo "$row"
  echo "$row" >>"$table"
done
