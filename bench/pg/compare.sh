#!/usr/bin/env bash
# wtdiag pg against pgBadger on the same generated stderr log: wall time (hyperfine), peak RSS
# (/usr/bin/time), and whether both put the same 10 normalised statements on top by total time.
#
#   bench/pg/compare.sh [SIZE_MB ...]        # default: 100 400
#
# Needs: cargo, python3, pgbadger and hyperfine (Debian: apt-get install -y pgbadger hyperfine
# time). Outputs go to bench/out/ (gitignored); the summary is printed and written to
# bench/out/pg-compare.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=bench/out
mkdir -p "$OUT"
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100 400)
PREFIX='%m [%p] '
WTDIAG=${WTDIAG:-target/release/wtdiag}

for tool in pgbadger hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool not found (apt-get install -y pgbadger hyperfine)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "compare.sh: /usr/bin/time not found (apt-get install -y time)" >&2; exit 2; }
if [ -z "${WTDIAG_PREBUILT:-}" ]; then cargo build --release --quiet; fi

summary=$OUT/pg-compare.md
{
  echo "| log | tool | wall time (mean of runs) | throughput | peak RSS |"
  echo "|---|---|---|---|---|"
} >"$summary"

for mb in "${SIZES[@]}"; do
  log=$OUT/pg-${mb}mb.log
  [ -s "$log" ] || python3 bench/pg/generate.py --mb "$mb" --out "$log"
  bytes=$(stat -c %s "$log")

  # peak RSS, one run each
  /usr/bin/time -f '%M' -o "$OUT/pg-$mb-wtdiag.rss" "$WTDIAG" pg "$log" --format json -o "$OUT/pg-$mb-wtdiag.json"
  runs_pgb=1
  if [ "$mb" -le 100 ]; then
    /usr/bin/time -f '%M' -o "$OUT/pg-$mb-pgbadger.rss" pgbadger -q -f stderr --prefix "$PREFIX" -j 1 -o "$OUT/pg-$mb-pgbadger.json" "$log"
  fi

  hyperfine --warmup 1 --runs 5 --export-json "$OUT/pg-$mb-wtdiag.hyperfine.json" \
    "$WTDIAG pg $log --format json -o /dev/null" >/dev/null
  if [ "$mb" -le 100 ]; then
    hyperfine --runs "$runs_pgb" --export-json "$OUT/pg-$mb-pgbadger.hyperfine.json" \
      "pgbadger -q -f stderr --prefix '$PREFIX' -j 1 -o $OUT/pg-$mb-pgbadger-timed.json $log" >/dev/null
  fi

  python3 - "$OUT" "$mb" "$bytes" >>"$summary" <<'PY'
import json, os, sys
out, mb, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
def row(tool):
    hf = f"{out}/pg-{mb}-{tool}.hyperfine.json"
    if not os.path.exists(hf):
        return
    mean = json.load(open(hf))["results"][0]["mean"]
    rss = int(open(f"{out}/pg-{mb}-{tool}.rss").read().split()[-1])
    print(f"| {mb} MB | {tool} | {mean:.2f} s | {size / mean / 1e6:.1f} MB/s | {rss / 1024:.0f} MiB |")
row("wtdiag")
row("pgbadger")
PY
done

# top-10 by total time: the same statements?
python3 - "$OUT" "${SIZES[0]}" <<'PY' | tee -a "$summary"
import json, re, sys
out, mb = sys.argv[1], sys.argv[2]
def canon(q):
    q = q.lower().rstrip(";").replace('"', "")
    q = re.sub(r"\?(\.\?)+", "?", q)          # pgBadger: 0.5 -> ?.?
    q = re.sub(r"\s+", " ", q)
    q = re.sub(r"\(\s+", "(", q)
    q = re.sub(r"\s+\)", ")", q)
    return q.strip()
w = json.load(open(f"{out}/pg-{mb}-wtdiag.json"))
ours = sorted(w["pg"]["statements"], key=lambda s: -s["total_ms"])[:10]
p = json.load(open(f"{out}/pg-{mb}-pgbadger.json"))["normalyzed_info"]
theirs = []
for db in p.values():
    for q, v in db.items():
        theirs.append((float(v["duration"]), int(v["count"]), q))
theirs = sorted(theirs, key=lambda t: -t[0])[:10]
a = [canon(s["normalized"]) for s in ours]
b = [canon(q) for _, _, q in theirs]
same = sum(1 for x in a if x in b)
print()
print(f"Top 10 statements by total time, {mb} MB log: {same}/10 the same in both"
      + (", in the same order" if a == b else ""))
print()
print("| # | wtdiag total ms | count | pgBadger total ms | count | statement (normalised) |")
print("|---|---|---|---|---|---|")
for i, s in enumerate(ours):
    j = b.index(a[i]) if a[i] in b else None
    pt = f"{theirs[j][0]:.0f}" if j is not None else "—"
    pc = str(theirs[j][1]) if j is not None else "—"
    print(f"| {i + 1} | {s['total_ms']:.0f} | {s['count']} | {pt} | {pc} | `{a[i][:90]}` |")
if same < 10:
    print()
    print("only in pgBadger's top 10:", [x for x in b if x not in a])
    sys.exit(1)
PY
echo "summary: $summary"
