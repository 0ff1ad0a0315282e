#!/usr/bin/env python3
"""What `wtdiag watch` costs while every worker is healthy.

    bench/watch/measure.py --wtdiag target/release/wtdiag [--venv DIR] [--seconds 60] [--rate 20]

Starts the fixture app (fixtures/app) under Gunicorn (4 sync workers, --timeout 30) from the test
venv and sends it healthy traffic from one client thread: RATE requests a second, alternating
/ok and /cpu/brief?seconds=0.02, for SECONDS. Twice: once alone, once with
`wtdiag watch --pid MASTER --format json -o /dev/null` running (release build). Per phase it
reads, from /proc/PID/stat (utime + stime, clock ticks), the CPU time of the workers and the
master, and in the second phase watch's own (with its children: any py-spy it ran). It also
counts watch's py-spy runs from its summary (`samples`; 0 when nothing was caught), i.e. whether
anything was ptraced. The two phases run one after the other on a shared machine: the worker
figures carry that noise; watch's own CPU does not.

Results: a Markdown table on stdout and bench/out/watch-overhead.json. Everything listens on
127.0.0.1; every process started here is stopped by pid at the end; the traffic loop is bounded
in count and time.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "fixtures" / "app"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid, with_children=False):
    """utime + stime (and cutime + cstime) of pid, in seconds; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def children(pid):
    try:
        out = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(p) for p in f.read().split()]
        return sorted(set(out))
    except OSError:
        return []


def wait_until(what, secs, check):
    end = time.monotonic() + secs
    while not check():
        if time.monotonic() > end:
            raise SystemExit(f"measure.py: timed out waiting for {what}")
        time.sleep(0.1)


def get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200")


def traffic(port, seconds, rate):
    """RATE requests a second for SECONDS (bounded: at most seconds * rate requests)."""
    paths = ["/ok", "/cpu/brief?seconds=0.02"]
    sent = ok = 0
    start = time.monotonic()
    limit = int(seconds * rate)
    while sent < limit and time.monotonic() - start < seconds + 5:
        due = start + sent / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ok += get(port, paths[sent % 2])
        sent += 1
    return sent, ok, time.monotonic() - start


def phase(port, master, seconds, rate):
    workers = children(master)
    before = {p: cpu_seconds(p) for p in workers + [master]}
    sent, ok, took = traffic(port, seconds, rate)
    after = {p: cpu_seconds(p) for p in workers + [master]}
    if children(master) != workers:
        raise SystemExit("measure.py: a worker was replaced during the phase; rerun")
    return {
        "requests": sent,
        "answered_200": ok,
        "seconds": round(took, 1),
        "workers_cpu_seconds": round(sum(after[p] - before[p] for p in workers), 2),
        "master_cpu_seconds": round(after[master] - before[master], 2),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wtdiag", required=True)
    ap.add_argument("--venv", default=str(ROOT / "fixtures" / ".cache" / "venv-test"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=20.0)
    args = ap.parse_args()
    venv = Path(args.venv)
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = out_dir / "watch-gunicorn.log"
    env = dict(os.environ, TZ="UTC", PYTHONDONTWRITEBYTECODE="1")
    env.pop("GUNICORN_CMD_ARGS", None)
    gunicorn = subprocess.Popen(
        [str(venv / "bin" / "gunicorn"), "wtapp.wsgi:application", "-b", f"127.0.0.1:{port}",
         "-w", "4", "-k", "sync", "--timeout", "30", "--error-logfile", str(log)],
        cwd=APP, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watch = None
    try:
        wait_until("4 workers", 60, lambda: log.exists()
                   and log.read_text().count("Booting worker with pid") >= 4)
        # Every worker imports the views once before measuring.
        for _ in range(20):
            get(port, "/cpu/brief?seconds=0.01")
        without = phase(port, gunicorn.pid, args.seconds, args.rate)
        summary_file = out_dir / "watch-overhead.jsonl"
        watch = subprocess.Popen(
            [args.wtdiag, "watch", "--pid", str(gunicorn.pid), "--format", "json",
             "-o", str(summary_file), "--py-spy", str(venv / "bin" / "py-spy")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        watch_before = cpu_seconds(watch.pid, with_children=True)
        with_watch = phase(port, gunicorn.pid, args.seconds, args.rate)
        watch_cpu = cpu_seconds(watch.pid, with_children=True) - watch_before
        watch.send_signal(signal.SIGTERM)
        watch.wait(timeout=30)
        lines = [json.loads(l) for l in summary_file.read_text().splitlines() if l.strip()]
        summary = lines[-1]["summary"] if lines else {}
        # After exit the children's CPU is in our own RUSAGE; watch's own figure above is the
        # one measured while it ran.
        result = {
            "seconds": args.seconds,
            "rate_per_second": args.rate,
            "without_watch": without,
            "with_watch": with_watch,
            "watch_cpu_seconds": round(watch_cpu, 3),
            "watch_cpu_share_of_one_core": round(watch_cpu / with_watch["seconds"], 5),
            "watch_incidents": summary.get("incidents"),
            "watch_py_spy_dumps": summary.get("samples", 0),
        }
    finally:
        if watch and watch.poll() is None:
            watch.kill()
            watch.wait()
        workers = children(gunicorn.pid)
        gunicorn.send_signal(signal.SIGTERM)
        try:
            gunicorn.wait(timeout=15)
        except subprocess.TimeoutExpired:
            gunicorn.kill()
            gunicorn.wait()
        for w in workers:
            try:
                os.kill(w, signal.SIGKILL)
            except ProcessLookupError:
                pass
    (out_dir / "watch-overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    w0, w1 = without["workers_cpu_seconds"], with_watch["workers_cpu_seconds"]
    print(f"| phase | requests | workers' CPU s | master CPU s | watch CPU s |")
    print(f"|---|---|---|---|---|")
    print(f"| without watch | {without['requests']} | {w0} | {without['master_cpu_seconds']} | - |")
    print(f"| with watch | {with_watch['requests']} | {w1} | {with_watch['master_cpu_seconds']} "
          f"| {result['watch_cpu_seconds']} ({100 * result['watch_cpu_share_of_one_core']:.2f} % of one core) |")
    print(f"py-spy dumps while healthy: {result['watch_py_spy_dumps']}; incidents: {result['watch_incidents']}")


if __name__ == "__main__":
    main()
