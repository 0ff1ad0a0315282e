#!/usr/bin/env python3
"""What `wtdiag live` costs the workers it samples.

    bench/live/measure.py --wtdiag target/release/wtdiag [--venv DIR] [--rounds 3]

Starts the fixture app (fixtures/app) under Gunicorn with 4 sync workers from the test venv:
one burning CPU (/cpu), one blocked on a socket (/api/upstream, against blackhole.py), two idle.
The workers are pinned to the last CPU and wtdiag (with its py-spy children) to the others, so
that py-spy's own CPU use does not compete with the CPU-bound worker. Then, per round, measures
each worker's CPU time for 5 s without sampling and for the 5 s of
`wtdiag live --pid MASTER --duration 5s` (default 200 ms interval; every other round with
--nonblocking, as a control without ptrace pauses), from the kernel's per-thread run time
(/proc/PID/task/*/schedstat, nanoseconds):

  - idle and blocked workers: CPU time added by sampling, as a share of the 5 s;
  - the CPU-bound worker: CPU time lost (its run time without sampling minus with), as a share.

It also measures how long one dump keeps the CPU-bound worker stopped (strace: PTRACE_SEIZE to
PTRACE_DETACH), times single `py-spy dump --json` runs against the idle worker (wall time, and py-spy's
own CPU from getrusage(RUSAGE_CHILDREN)), and wtdiag's own CPU for the whole run including its
py-spy children. Results go to stdout (a Markdown table) and bench/out/live-overhead.json.
Everything listens on 127.0.0.1; every process started here is stopped by pid at the end.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "fixtures" / "app"
WINDOW = 5.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_ns(pid):
    """Run time of every thread of pid, in ns (schedstat's first field)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(d))
    return sorted(out)


def wait_until(what, secs, check):
    end = time.monotonic() + secs
    while not check():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def stop(proc, grace=5):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def worker_serving(app_log, path):
    suffix = f" INFO request start GET {path}"
    try:
        for line in Path(app_log).read_text().splitlines():
            if line.endswith(suffix):
                return int(line[: -len(suffix)].rsplit(" ", 1)[1])
    except FileNotFoundError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wtdiag", required=True)
    ap.add_argument("--venv", default=os.environ.get("WTDIAG_TEST_VENV", ROOT / "fixtures/.cache/venv-test"))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    venv = Path(args.venv)
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = out_dir / "live-run"
    run_dir.mkdir(exist_ok=True)
    app_log = run_dir / "app.log"
    err_log = run_dir / "error.log"
    for p in (app_log, err_log):
        p.unlink(missing_ok=True)

    procs = []
    sockets = []
    master = None
    workers = []
    try:
        bh_port = free_port()
        bh = subprocess.Popen([str(venv / "bin/python"), str(APP / "blackhole.py"), str(bh_port)])
        procs.append(bh)
        wait_until("blackhole", 10, lambda: _connectable(bh_port))
        port = free_port()
        env = dict(os.environ, WTAPP_LOG=str(app_log), WTAPP_BLACKHOLE_PORT=str(bh_port), TZ="UTC")
        env.pop("GUNICORN_CMD_ARGS", None)
        master = subprocess.Popen(
            [str(venv / "bin/gunicorn"), "wtapp.wsgi:application", "-b", f"127.0.0.1:{port}",
             "-w", "4", "-k", "sync", "--timeout", "300", "--graceful-timeout", "2",
             "--error-logfile", str(err_log)],
            cwd=APP, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until("4 workers", 60,
                   lambda: err_log.exists() and err_log.read_text().count("Booting worker") >= 4)
        for path in ("/cpu", "/api/upstream"):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            sockets.append(s)
            wait_until(path, 30, lambda p=path: worker_serving(app_log, p) is not None)
        workers = children(master.pid)
        roles = {worker_serving(app_log, "/cpu"): "cpu", worker_serving(app_log, "/api/upstream"): "socket"}
        role = {w: roles.get(w, "idle") for w in workers}
        idle = next(w for w in workers if role[w] == "idle")
        time.sleep(1)

        # One dump at a time: wall time and py-spy's own CPU.
        walls = []
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(50):
            t = time.perf_counter()
            subprocess.run([str(venv / "bin/py-spy"), "dump", "--json", "--pid", str(idle)],
                           stdout=subprocess.DEVNULL, check=True)
            walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        dump_cpu_ms = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) / 50 * 1000

        # How long one dump keeps the CPU-bound worker stopped: py-spy's first PTRACE_SEIZE (or
        # ATTACH) to its last PTRACE_DETACH, seen by strace tracing only ptrace (seccomp-bpf), so
        # strace adds little; still an upper bound.
        pauses_ms = []
        cpu_worker = next(w for w in workers if role[w] == "cpu")
        if shutil.which("strace"):
            trace = run_dir / "strace.txt"
            for _ in range(25):
                subprocess.run(["strace", "--seccomp-bpf", "-f", "-ttt", "-e", "trace=ptrace", "-o", str(trace),
                                str(venv / "bin/py-spy"), "dump", "--json", "--pid", str(cpu_worker)],
                               stdout=subprocess.DEVNULL, check=True)
                seize = detach = None
                for line in trace.read_text().splitlines():
                    f = line.split()
                    if "PTRACE_SEIZE" in line or "PTRACE_ATTACH" in line:
                        seize = seize or float(f[1])
                    elif "PTRACE_DETACH" in line:
                        detach = float(f[1])
                if seize and detach:
                    pauses_ms.append((detach - seize) * 1000)
                time.sleep(0.2)

        # Workers on the last CPU, wtdiag and py-spy on the others: what the CPU-bound worker
        # loses is then the ptrace pauses, not a share of its CPU taken by py-spy.
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            for w in workers:
                os.sched_setaffinity(w, {cpus[-1]})
        sampler_cpus = set(cpus[:-1]) or set(cpus)

        def sample(extra):
            return subprocess.run(
                [args.wtdiag, "live", "--pid", str(master.pid), "--duration", "5s", "--format", "json", *extra],
                capture_output=True, text=True, preexec_fn=lambda: os.sched_setaffinity(0, sampler_cpus))

        rounds = []
        for i in range(args.rounds * 2):
            nonblocking = i % 2 == 1
            a = {w: cpu_ns(w) for w in workers}
            time.sleep(WINDOW)
            b = {w: cpu_ns(w) for w in workers}
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            res = sample(["--nonblocking"] if nonblocking else [])
            wall = time.perf_counter() - t0
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            c = {w: cpu_ns(w) for w in workers}
            if res.returncode != 0:
                raise SystemExit(f"wtdiag failed: {res.stderr}")
            report = json.loads(res.stdout)
            samples = {w["pid"]: w["samples"] for w in report["workers"]}
            rounds.append({
                "nonblocking": nonblocking,
                "baseline_cpu_s": {w: (b[w] - a[w]) / 1e9 for w in workers},
                "sampled_cpu_s": {w: (c[w] - b[w]) / 1e9 for w in workers},
                "sampled_window_s": wall,
                "samples": samples,
                "wtdiag_cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
            })
    finally:
        for s in sockets:
            s.close()
        if master is not None:
            stop(master, 10)
            for w in workers:
                try:
                    os.kill(w, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in procs:
            stop(p)

    table = []
    for mode in (False, True):
        these = [r for r in rounds if r["nonblocking"] == mode]
        for w in workers:
            base = statistics.mean(r["baseline_cpu_s"][w] for r in these)
            samp = statistics.mean(r["sampled_cpu_s"][w] / r["sampled_window_s"] * WINDOW for r in these)
            if role[w] == "cpu":
                cost = (base - samp) / base * 100 if base else 0.0
                what = "CPU time lost"
            else:
                cost = (samp - base) / WINDOW * 100
                what = "CPU time added"
            table.append({"pid": w, "role": role[w], "mode": "nonblocking" if mode else "blocking",
                          "baseline_cpu_s": round(base, 4), "sampled_cpu_s": round(samp, 4),
                          "cost_percent": round(cost, 2), "measure": what,
                          "samples": round(statistics.mean(r["samples"].get(w, 0) for r in these), 1)})
    result = {
        "machine": f"{os.cpu_count()} CPUs",
        "py_spy_dump_wall_ms": {"median": round(statistics.median(walls) * 1000, 1),
                                "p90": round(sorted(walls)[int(len(walls) * 0.9)] * 1000, 1)},
        "py_spy_dump_cpu_ms": round(dump_cpu_ms, 1),
        "pause_per_dump_ms": {
            "median": round(statistics.median(pauses_ms), 2),
            "mean": round(statistics.mean(pauses_ms), 2),
            "max": round(max(pauses_ms), 2),
            "share_at_200ms_percent": round(statistics.mean(pauses_ms) / 200 * 100, 2),
        } if pauses_ms else None,
        "wtdiag_cpu_s_per_run": round(statistics.mean(r["wtdiag_cpu_s"] for r in rounds), 2),
        "load_average": os.getloadavg(),
        "rounds": args.rounds,
        "workers": table,
    }
    (out_dir / "live-overhead.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"py-spy dump: median {result['py_spy_dump_wall_ms']['median']} ms wall "
          f"(p90 {result['py_spy_dump_wall_ms']['p90']} ms), {result['py_spy_dump_cpu_ms']} ms CPU of py-spy itself")
    if result["pause_per_dump_ms"]:
        p = result["pause_per_dump_ms"]
        print(f"CPU-bound worker stopped per dump (strace, ptrace seize to detach): median {p['median']} ms, "
              f"mean {p['mean']} ms, max {p['max']} ms: {p['share_at_200ms_percent']} % of its time at one dump per 200 ms")
    print(f"wtdiag live, 4 workers x 5 s at 200 ms: {result['wtdiag_cpu_s_per_run']} s CPU "
          f"(wtdiag + its py-spy children) per run, mean of {args.rounds}")
    print()
    print(f"load average during the run: {', '.join(f'{l:.2f}' for l in result['load_average'])}")
    print()
    print("| worker | role | py-spy mode | CPU in 5 s, not sampled | CPU in 5 s, sampled | cost | samples |")
    print("|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['pid']} | {r['role']} | {r['mode']} | {r['baseline_cpu_s']:.3f} s | {r['sampled_cpu_s']:.3f} s "
              f"| {r['cost_percent']:+.2f} % ({r['measure']}) | {r['samples']} |")


def _connectable(port):
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
