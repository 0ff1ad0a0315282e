#!/usr/bin/env python3
"""Worst-shape inputs for wtdiag, one generator per shape (issue 13's bad day).

    gen.py SHAPE N OUTDIR    writes the input files of SHAPE at size N into OUTDIR and prints
                             the wtdiag arguments (one per line) that read them.

Every line is in the wording real software writes: PostgreSQL 15's stderr log with
log_line_prefix '%m [%p] ' (the lines are copied from fixtures/pg/pg15-a-default.log and
fixtures/gunicorn/postgres-27.0.1.log, only pids, times and numbers change) and Gunicorn
27's error log (fixtures/gunicorn/gunicorn-27.0.1.log). The shapes are the ones that were
super-linear or unbounded before; bench/adversarial/run.sh runs each at three sizes.
"""
import datetime as dt
import gzip
import os
import sys

T0 = dt.datetime(2026, 11, 26, 10, 0, 0, tzinfo=dt.timezone.utc)


def pg_time(ms):
    t = T0 + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d} UTC"


def gu_time(s):
    return (T0 + dt.timedelta(seconds=s)).strftime("[%Y-%m-%d %H:%M:%S +0000]")


def pg(out, ms, pid, text):
    out.write(f"{pg_time(ms)} [{pid}] {text}\n")


def wait_lines(out, ms, pid, holders, queue, wait_ms=200.1, xid=743):
    pg(out, ms, pid, f"LOG:  process {pid} still waiting for ShareLock on transaction {xid} after {wait_ms:.3f} ms")
    word = "Process" if len(holders) == 1 else "Processes"
    pg(out, ms, pid, f"DETAIL:  {word} holding the lock: {', '.join(map(str, holders))}. Wait queue: {', '.join(map(str, queue))}.")
    pg(out, ms, pid, 'CONTEXT:  while updating tuple (0,1) in relation "app_order"')
    pg(out, ms, pid, 'STATEMENT:  UPDATE "app_order" SET "status" = $1 WHERE "app_order"."id" = $2')


def lock_storm(n, d):
    """n lock waits among 50 backends reused as persistent connections, within seconds:
    every waiter names several holders and a long queue."""
    path = os.path.join(d, "pg.log")
    with open(path, "w") as out:
        backends = list(range(20000, 20050))
        for i in range(n):
            pid = backends[i % 50]
            holders = [backends[(i + k) % 50] for k in (1, 2, 3)]
            queue = [backends[(i + k) % 50] for k in range(4, 14)]
            ms = i * (5000 / max(n, 1))
            wait_lines(out, ms, pid, holders, queue, xid=700 + i % 7)
            if i % 3 == 0:
                pg(out, ms + 1, pid, f"LOG:  process {pid} acquired ShareLock on transaction {700 + i % 7} after 900.000 ms")
    return ["pg", path]


def lock_timeouts(n, d):
    """n waits, each ended by lock_timeout, by distinct short-lived backends."""
    path = os.path.join(d, "pg.log")
    with open(path, "w") as out:
        for i in range(n):
            pid = 30000 + i
            ms = i * 10
            wait_lines(out, ms, pid, [pid - 1], [pid])
            pg(out, ms + 300, pid, "ERROR:  canceling statement due to lock timeout")
            pg(out, ms + 300, pid, 'STATEMENT:  UPDATE "app_order" SET "status" = $1 WHERE "app_order"."id" = $2')
    return ["pg", path]


def long_holder(n, d):
    """One long-lived holder (a Celery or cron connection) behind n waits."""
    path = os.path.join(d, "pg.log")
    with open(path, "w") as out:
        for i in range(n):
            pid = 40000 + i
            ms = i * 10
            wait_lines(out, ms, pid, [4242], [pid])
            pg(out, ms + 5, pid, f"LOG:  process {pid} acquired ShareLock on transaction 743 after 205.000 ms")
    return ["pg", path]


def n1_backends(n, d):
    """n backends per hour (CONN_MAX_AGE=0), each running a short run of one query shape,
    read with a long --n1-max-gap-ms."""
    path = os.path.join(d, "pg.log")
    with open(path, "w") as out:
        for i in range(n):
            pid = 100000 + i
            ms = i * (3_600_000 / n)
            for k in range(3):
                pg(out, ms + k, pid, f'LOG:  duration: 0.050 ms  statement: SELECT "app_book"."id" FROM "app_book" WHERE "app_book"."author_id" = {k}')
    return ["pg", path, "--n1-max-gap-ms", "600000"]


def autoexplain(n, d):
    """auto_explain plans, one per short-lived backend, no statement line after them."""
    path = os.path.join(d, "pg.log")
    with open(path, "w") as out:
        for i in range(n):
            pid = 200000 + i
            ms = i * 10
            pg(out, ms, pid, "LOG:  duration: 601.671 ms  plan:")
            out.write("\tQuery Text: SELECT pg_sleep(0.6)\n")
            out.write("\tResult  (cost=0.00..0.01 rows=1 width=4) (actual time=601.651..601.652 rows=1 loops=1)\n" * 20)
    return ["pg", path]


def kills_with_client_lost(n, d):
    """logs --pg-log: n workers timing out and SIGKILLed, each backend logging
    `connection to client lost` right after its worker's kill."""
    glog = os.path.join(d, "error.log")
    plog = os.path.join(d, "pg.log")
    with open(glog, "w") as g, open(plog, "w") as p:
        g.write(f"{gu_time(0)} [1] [INFO] Starting gunicorn 27.0.1\n")
        g.write(f"{gu_time(0)} [1] [INFO] Using worker: sync\n")
        for i in range(n):
            pid, s = 10000 + i, 40 + i * 2
            g.write(f"{gu_time(s)} [1] [CRITICAL] WORKER TIMEOUT (pid:{pid})\n")
            g.write(f"{gu_time(s + 1)} [1] [ERROR] Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?\n")
            pg(p, (s + 1) * 1000 + 20, 50000 + i, "FATAL:  connection to client lost")
            pg(p, (s + 1) * 1000 + 20, 50000 + i, "STATEMENT:  SELECT pg_sleep(120)")
    return ["logs", glog, "--pg-log", plog]


def incidents_vs_lock_waits(n, d):
    """logs --pg-log: 10,000 kills against n lock waits spread over the same hours."""
    glog = os.path.join(d, "error.log")
    plog = os.path.join(d, "pg.log")
    kills = 10000
    span = 40 + kills * 2
    with open(glog, "w") as g:
        g.write(f"{gu_time(0)} [1] [INFO] Using worker: sync\n")
        for i in range(kills):
            pid, s = 10000 + i, 40 + i * 2
            g.write(f"{gu_time(s)} [1] [CRITICAL] WORKER TIMEOUT (pid:{pid})\n")
            g.write(f"{gu_time(s + 1)} [1] [ERROR] Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?\n")
    with open(plog, "w") as p:
        for i in range(n):
            ms = i * (span * 1000 / n)
            wait_lines(p, ms, 60000 + i % 5000, [70000 + i % 97], [60000 + i % 5000])
    return ["logs", glog, "--pg-log", plog]


def incident_memory(n, d):
    """logs: n timeouts and kills of distinct workers, gzip'd (memory must stay flat)."""
    path = os.path.join(d, "error.log.gz")
    with gzip.open(path, "wt", compresslevel=1) as g:
        g.write(f"{gu_time(0)} [1] [INFO] Using worker: sync\n")
        for i in range(n):
            pid, s = 10000 + i, 40 + i
            g.write(f"{gu_time(s)} [1] [CRITICAL] WORKER TIMEOUT (pid:{pid})\n")
            g.write(f"{gu_time(s)} [{pid}] [INFO] Worker exiting (pid: {pid})\n")
            g.write(f"{gu_time(s)} [1] [INFO] Booting worker with pid: {pid + 1}\n")
    return ["logs", path]


def big_statements(n, d):
    """logs --pg-log: n statements of 0.9 MB each, one per kill."""
    glog = os.path.join(d, "error.log")
    plog = os.path.join(d, "pg.log")
    body = "SELECT 1 WHERE id IN (" + ",".join(str(k) for k in range(150_000)) + ")"
    with open(glog, "w") as g, open(plog, "w") as p:
        g.write(f"{gu_time(0)} [1] [INFO] Using worker: sync\n")
        for i in range(n):
            pid, s = 10000 + i, 40 + i * 3
            g.write(f"{gu_time(s)} [1] [CRITICAL] WORKER TIMEOUT (pid:{pid})\n")
            g.write(f"{gu_time(s + 1)} [1] [ERROR] Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?\n")
            pg(p, (s - 5) * 1000, 50000 + i, f"LOG:  duration: 30000.000 ms  statement: {body}")
    return ["logs", glog, "--pg-log", plog]


def many_files(n, d):
    """logs: n rotated .gz files given at once (more than `ulimit -n`)."""
    args = ["logs"]
    for i in range(n):
        path = os.path.join(d, f"error.log.{i}.gz")
        with gzip.open(path, "wt") as g:
            s = i * 100
            g.write(f"{gu_time(s)} [1] [CRITICAL] WORKER TIMEOUT (pid:{1000 + i})\n")
        args.append(path)
    return args


def aborted_paths(n, d):
    """logs: n aborted requests to one view with a different `?id=` each (Gunicorn 22+)."""
    path = os.path.join(d, "error.log")
    with open(path, "w") as g:
        g.write(f"{gu_time(0)} [1] [INFO] Using worker: sync\n")
        for i in range(n):
            pid, s = 10000 + i, 40 + i
            g.write(f"{gu_time(s)} [1] [CRITICAL] WORKER TIMEOUT (pid:{pid})\n")
            g.write(f"{gu_time(s)} [{pid}] [ERROR] Error handling request GET /orders/export?id={i}\n")
            g.write("Traceback (most recent call last):\n")
            g.write('  File "/app/venv/lib/python3.11/site-packages/gunicorn/workers/sync.py", line 184, in handle_request\n')
            g.write("    respiter = self.wsgi(environ, resp.start_response)\n")
            g.write('  File "/app/shop/views.py", line 30, in export\n')
            g.write("    total += sum(x * x for x in range(10**7))\n")
            g.write('  File "/app/venv/lib/python3.11/site-packages/gunicorn/workers/base.py", line 204, in handle_abort\n')
            g.write("    sys.exit(1)\n")
            g.write("SystemExit: 1\n")
            g.write(f"{gu_time(s)} [{pid}] [INFO] Worker exiting (pid: {pid})\n")
    return ["logs", path]


def raise_log(n, d):
    """pg: n PL/pgSQL `RAISE LOG` messages that read like lock waits with the words in another
    order (once a panic: ' on ' before ' after ')."""
    path = os.path.join(d, "pg.log")
    with open(path, "w") as out:
        for i in range(n):
            pid = 30000 + i % 40
            pg(out, i * 10, pid, f"LOG:  process {i % 9} still waiting for reindex after {i % 50} ms on shop_order")
            pg(out, i * 10, pid, "CONTEXT:  PL/pgSQL function shop_reindex() line 4 at RAISE")
    return ["pg", path]


def absurd_durations(n, d):
    """pg: durations and lock waits of inf, 1e309, 1e30 and negative milliseconds, among
    ordinary ones (once a panic in the time arithmetic)."""
    path = os.path.join(d, "pg.log")
    odd = ["inf", "1e309", "1e30", "-5.000", "nan", "99999999999999999999.000"]
    with open(path, "w") as out:
        for i in range(n):
            pid = 40000 + i % 30
            v = odd[i % len(odd)]
            pg(out, i * 10, pid, f"LOG:  duration: {v} ms  statement: SELECT pg_sleep(1)")
            pg(out, i * 10 + 1, pid, f"LOG:  process {pid} still waiting for ShareLock on transaction 743 after {v} ms")
            pg(out, i * 10 + 2, pid, "LOG:  duration: 1200.000 ms  statement: SELECT 1")
    return ["pg", path]


def huge_traceback_lines(n, d):
    """logs: n aborted requests whose traceback holds one 300 KiB line (a huge exception repr,
    container noise), and an `Exception in worker process` with one too (once a panic)."""
    path = os.path.join(d, "error.log")
    big = "x" * (300 << 10)
    with open(path, "w") as g:
        g.write(f"{gu_time(0)} [1] [INFO] Using worker: sync\n")
        for i in range(n):
            pid, s = 10000 + i, 40 + i
            g.write(f"{gu_time(s)} [1] [CRITICAL] WORKER TIMEOUT (pid:{pid})\n")
            g.write(f"{gu_time(s)} [{pid}] [ERROR] Error handling request GET /orders/export\n")
            g.write("Traceback (most recent call last):\n")
            g.write('  File "/app/shop/views.py", line 30, in export\n')
            g.write(f"    payload = {big}\n")
            g.write('  File "/app/venv/lib/python3.11/site-packages/gunicorn/workers/base.py", line 204, in handle_abort\n')
            g.write("    sys.exit(1)\n")
            g.write("SystemExit: 1\n")
            g.write(f"{gu_time(s)} [{pid}] [ERROR] Exception in worker process\n")
            g.write("Traceback (most recent call last):\n")
            g.write(f"ValueError: {big}\n")
    return ["logs", path]


def prefix_backtracking(n, d):
    """pg: pgBadger's log_line_prefix, then n lines crafted to repeat its separators inside
    the free-text fields (once 23 ms per line of backtracking)."""
    path = os.path.join(d, "pg.log")
    prefix = "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h "
    with open(path, "w") as out:
        for i in range(20):
            out.write(f"2026-11-26 10:00:{i:02d} UTC [{100 + i}]: [1-1] user=app,db=shop,app=web,client=10.0.0.1 "
                      "LOG:  duration: 1200.000 ms  statement: SELECT 1\n")
        for i in range(n):
            out.write(f"2026-11-26 10:01:00 UTC [{200 + i % 50}]: [2-1] user="
                      + ",db=x,app=y,client=z user=" * 40 + " NOTALEVEL\n")
    return ["pg", path, "--prefix", prefix]


def access_paths(n, d):
    """logs: an nginx access log of n requests, each to its own path (an id in the path, not in
    the query string), slow and failing, beside a small error log: the endpoint table is capped,
    the client-impact totals count every request."""
    error = os.path.join(d, "error.log")
    with open(error, "w") as g:
        g.write(f"{gu_time(0)} [1] [INFO] Using worker: sync\n")
    access = os.path.join(d, "access.log")
    with open(access, "w") as a:
        for i in range(n):
            status = 502 if i % 10 == 0 else 200
            a.write(
                f'10.0.{i % 250}.{i % 7} - - [26/Nov/2026:22:{(i // 60) % 60:02d}:{i % 60:02d} +0000] '
                f'"GET /orders/{i}/export HTTP/1.1" {status} 12 "-" "curl/7.88.1" '
                f"{25 + (i % 40) / 10:.3f} {25 + (i % 40) / 10:.3f} {status}\n"
            )
    return ["logs", error, access]


SHAPES = {
    "pg-lock-storm": lock_storm,
    "pg-lock-timeouts": lock_timeouts,
    "pg-long-holder": long_holder,
    "pg-n1-backends": n1_backends,
    "pg-autoexplain": autoexplain,
    "logs-kills-client-lost": kills_with_client_lost,
    "logs-incidents-vs-lock-waits": incidents_vs_lock_waits,
    "logs-incident-memory": incident_memory,
    "logs-big-statements": big_statements,
    "logs-many-files": many_files,
    "logs-aborted-paths": aborted_paths,
    "pg-raise-log": raise_log,
    "pg-absurd-durations": absurd_durations,
    "logs-huge-traceback-lines": huge_traceback_lines,
    "pg-prefix-backtracking": prefix_backtracking,
    "logs-access-paths": access_paths,
}

if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in SHAPES:
        sys.exit(f"usage: gen.py {{{'|'.join(SHAPES)}}} N OUTDIR")
    shape, n, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(d, exist_ok=True)
    print("\n".join(SHAPES[shape](n, d)))
