#!/usr/bin/env python3
"""Deterministic generator of a large Gunicorn error log for benchmarking `wtdiag logs`.

It replays the real Gunicorn 27.0.1 fixture log (fixtures/gunicorn/gunicorn-27.0.1.log: boots,
timeouts, abort tracebacks, escalations, an outside SIGKILL) over and over, moving every
timestamp forward and every pid to a fresh range each round, and pads each round with the
INFO/WARNING chatter of a busy server (other loggers' lines included) so that, as in
production, most lines are not interesting.

usage: gen.py SIZE_MB OUTPUT
"""
import datetime as dt
import re
import sys

ROOT = __file__.rsplit("/bench/", 1)[0]
SOURCE = f"{ROOT}/fixtures/gunicorn/gunicorn-27.0.1.log"
HEADER = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ([+-]\d{4})\] \[(\d+)\] (.*)$")
PID = re.compile(r"(pid:? ?)(\d+)")
# Lines of other chatter per replayed round: about 1 worker timeout per 200 lines overall.
CHATTER_LINES = 1500
CHATTER = [
    "[{t} +0000] [{p}] [INFO] Handling signal: winch",
    "[{t} +0000] [{p}] [WARNING] Worker graceful timeout (pid:{p})",
    "[{t} +0000] [{p}] [DEBUG] GET /api/items",
    "{t},123 django.request WARNING Not Found: /favicon.ico",
    "[{t} +0000] [{p}] [INFO] Autorestarting worker after current request.",
    '127.0.0.1 - - [26/Nov/2026:22:40:01 +0000] "GET /ok HTTP/1.1" 200 2 "-" "curl/7.88.1"',
]


def main():
    size = int(sys.argv[1]) << 20
    out = open(sys.argv[2], "w", buffering=1 << 20)
    lines = open(SOURCE).read().splitlines()
    start = dt.datetime(2026, 1, 1)
    written = 0
    round_no = 0
    while written < size:
        shift = dt.timedelta(minutes=5 * round_no)
        pid_base = 100000 + (round_no % 40000) * 50
        chunk = []
        for line in lines:
            m = HEADER.match(line)
            if m:
                t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
                t = start + (t - dt.datetime(2026, 11, 26, 22, 39)) + shift
                pid = pid_base + int(m.group(3)) % 50
                msg = PID.sub(lambda p: f"{p.group(1)}{pid_base + int(p.group(2)) % 50}", m.group(4))
                line = f"[{t:%Y-%m-%d %H:%M:%S} {m.group(2)}] [{pid}] {msg}"
            chunk.append(line)
        t = (start + shift).strftime("%Y-%m-%d %H:%M:%S")
        for i in range(CHATTER_LINES):
            chunk.append(CHATTER[i % len(CHATTER)].format(t=t, p=pid_base + i % 50))
        text = "\n".join(chunk) + "\n"
        out.write(text)
        written += len(text)
        round_no += 1
    out.close()


if __name__ == "__main__":
    main()
