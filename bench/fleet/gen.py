#!/usr/bin/env python3
"""Deterministic fleet of Gunicorn logs for benchmarking `wtdiag logs` on many origins.

50 origins, each the replay of the real Gunicorn 27.0.1 fixture log with a busy server's chatter
(bench/logs/gen.py's scheme: every round moves the times 5 minutes on and the pids to a fresh
range; every origin uses the same pids, as pods do), in three shapes of input:
  * origins 1-20: one plain error log each (hosts/web-NN/error.log)
  * origins 21-40: one `kubectl logs --prefix` stream (pods.kubectl.log), rounds interleaved
  * origins 41-50: one `journalctl -o json` stream of ten hosts (hosts.journal.json)
plus one `dmesg -T` kernel log. Sizes are split evenly over the origins.

usage: gen.py SIZE_MB OUTPUT_DIR
"""
import datetime as dt
import json
import os
import re
import sys

ROOT = __file__.rsplit("/bench/", 1)[0]
SOURCE = f"{ROOT}/fixtures/gunicorn/gunicorn-27.0.1.log"
HEADER = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ([+-]\d{4})\] \[(\d+)\] (.*)$")
PID = re.compile(r"(pid:? ?)(\d+)")
CHATTER_LINES = 1500
CHATTER = [
    "[{t} +0000] [{p}] [INFO] Handling signal: winch",
    "[{t} +0000] [{p}] [WARNING] Worker graceful timeout (pid:{p})",
    "[{t} +0000] [{p}] [DEBUG] GET /api/items",
    "{t},123 django.request WARNING Not Found: /favicon.ico",
    "[{t} +0000] [{p}] [INFO] Autorestarting worker after current request.",
    '127.0.0.1 - - [26/Nov/2026:22:40:01 +0000] "GET /ok HTTP/1.1" 200 2 "-" "curl/7.88.1"',
]
ORIGINS = 50


def rounds(lines, origin):
    """One origin's log, round by round (a list of lines each)."""
    start = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=origin)
    n = 0
    while True:
        shift = dt.timedelta(minutes=5 * n)
        base = 100000 + (n % 40000) * 50
        chunk = []
        for line in lines:
            m = HEADER.match(line)
            if m:
                t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
                t = start + (t - dt.datetime(2026, 11, 26, 22, 39)) + shift
                pid = base + int(m.group(3)) % 50
                msg = PID.sub(lambda p: f"{p.group(1)}{base + int(p.group(2)) % 50}", m.group(4))
                line = f"[{t:%Y-%m-%d %H:%M:%S} {m.group(2)}] [{pid}] {msg}"
            chunk.append(line)
        t = (start + shift).strftime("%Y-%m-%d %H:%M:%S")
        for i in range(CHATTER_LINES):
            chunk.append(CHATTER[i % len(CHATTER)].format(t=t, p=base + i % 50))
        yield chunk
        n += 1


def main():
    size = int(sys.argv[1]) << 20
    out_dir = sys.argv[2]
    per_origin = size // ORIGINS
    lines = open(SOURCE).read().splitlines()
    os.makedirs(out_dir, exist_ok=True)
    # Plain files.
    for o in range(20):
        d = f"{out_dir}/hosts/web-{o + 1:02d}"
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/error.log", "w", buffering=1 << 20) as out:
            written = 0
            for chunk in rounds(lines, o):
                text = "\n".join(chunk) + "\n"
                out.write(text)
                written += len(text)
                if written >= per_origin:
                    break
    # Streams: rounds of their origins interleaved, as a merged export is.
    def stream(path, origins, wrap):
        with open(path, "w", buffering=1 << 20) as out:
            gens = [rounds(lines, o) for o in origins]
            written = [0] * len(origins)
            while min(written) < per_origin:
                for k, g in enumerate(gens):
                    if written[k] >= per_origin:
                        continue
                    text = "".join(wrap(k, l) + "\n" for l in next(g))
                    out.write(text)
                    written[k] += len(text)
    stream(f"{out_dir}/pods.kubectl.log", range(20, 40),
           lambda k, l: f"[pod/web-7f9c8d5b4-p{k:04d}/web] {l}")
    stream(f"{out_dir}/hosts.journal.json", range(40, 50),
           lambda k, l: json.dumps({"_HOSTNAME": f"web-{41 + k}", "SYSLOG_IDENTIFIER": "gunicorn",
                                    "_PID": "1", "MESSAGE": l}, separators=(",", ":")))
    with open(f"{out_dir}/kernel.dmesg-T", "w") as out:
        out.write("[Thu Jan  1 00:10:00 2026] Memory cgroup out of memory: Killed process 100007 "
                  "(gunicorn) total-vm:300000kB, anon-rss:150000kB, file-rss:0kB, shmem-rss:0kB, "
                  "UID:0 pgtables:600kB oom_score_adj:0\n")


if __name__ == "__main__":
    main()
