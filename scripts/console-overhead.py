#!/usr/bin/env python3
"""What an open web console costs a drain: the driver behind scripts/console-overhead.

The budget: an open overview adds at most 2% to a drain's time. This drains the same
no-op jobs as scripts/bench-peers (its `run_jobd`, so the counting rule and the per-job CPU
are exactly that script's) in alternated pairs: once with no console, once with `jobd web`
serving the same database and VIEWERS simulated browser tabs on the overview. A tab does what
the page's script does: it loads `/` once, then fetches the shared snapshot
(`/api/v1/overview`) every 5 seconds. Which of the pair runs first alternates round by round,
so a slow minute on a shared host falls on both alike.

In the "none" half no console process runs at all, so the "open" half also pays for
`jobd web`'s own idle cost: what an operator who opens the console pays.

Timing alone cannot resolve 2% on a shared 2-core host (pairs spread over tens of points), so
every "open" drain also COUNTS what the console adds, over the same CPU window as the drain's
own CPU (bench-peers' Sampler, first claim → last completion + TAIL):
  - `jobd web`'s own CPU (utime + stime from /proc/PID/stat);
  - the CPU of the PostgreSQL backends serving its connections: every connection jobd opens
    sets application_name `jobd-NAME` and the console's are `jobd-web-...`, so a watcher on
    its own connection (opened in both halves alike) reads their pids from pg_stat_activity
    every 0.5 s and the sampler reads their /proc times (a backend keeps its last reading);
  - its Redis commands, estimated: Redis 7.0 counts no commands per client, so the console's
    snapshots are counted by INFO calls (the daemon sends none; the closed half checks it),
    6 commands each (PING, INFO, 3 LLEN, MGET), charged at the run's average Redis CPU
    per command processed.
The share is that sum over the drain's own CPU (daemon + PostgreSQL + Redis in the window,
less the console's backends and Redis commands). During a drain the CPUs are the bottleneck:
the daemon, PostgreSQL and Redis keep both cores busy (on a shared host, other work takes the
rest), so a CPU-second the console takes is one the drain waits for, and the added CPU share
is the honest estimate of the added time: counted, not timed. It leaves out what the console
costs the drain indirectly (caches, locks); /proc counts in ticks of 10 ms, so `jobd web`'s
own CPU (a few ticks a drain) is coarse.

  console-overhead.py --jobd BIN [--jobs N] [--rounds R] [--workers W] [--viewers V]
                      [--backlog N] [--json FILE]

--backlog N parks N jobs a day in the future in every run (after bench-peers truncates the
table), so the overview's per-state counts have a table to read, as in production; they are
not due, so the drain never touches them.
"""
import argparse
import asyncio
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_peers", os.path.join(HERE, "bench-peers.py"))
peers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peers)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Viewers:
    """VIEWERS threads polling the overview as the page's script does (every 5 s)."""

    def __init__(self, base, viewers, every=5.0):
        self.base, self.every = base, every
        self.stop = threading.Event()
        self.latencies, self.errors = [], 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.tab, args=(i,), daemon=True) for i in range(viewers)]

    def fetch(self, path):
        started = time.monotonic()
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as response:
                response.read()
            with self.lock:
                self.latencies.append(time.monotonic() - started)
        except Exception:
            with self.lock:
                self.errors += 1

    def tab(self, i):
        # Tabs opened at different moments, as people do.
        if self.stop.wait(i * self.every / max(1, len(self.threads))):
            return
        self.fetch("/")
        while not self.stop.wait(self.every):
            self.fetch("/api/v1/overview")

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        for t in self.threads:
            t.join()


class ConsoleCounters:
    """Extra sampler columns (bench-peers' Sampler `extra`): `jobd web`'s CPU and the CPU of
    the PostgreSQL backends serving it. Sampled from the sampler's thread; `backends` is
    replaced whole by the watcher (asyncio thread), never mutated."""

    names = ("console", "consoleBackends")

    def __init__(self):
        self.console_pid = None
        self.backends = frozenset()
        self.last_console = None
        self.last_backend = {}

    def __call__(self):
        if self.console_pid is not None:
            value = peers.own_cpu(self.console_pid)
            if value is not None:
                self.last_console = value
        for pid in self.backends:
            value = peers.own_cpu(pid)
            if value is not None:
                self.last_backend[pid] = value
        return (self.last_console, sum(self.last_backend.values()) if self.console_pid is not None else None)


async def watch_backends(conn, counters, every=0.5):
    """Keeps counters.backends = the pids of the console's PostgreSQL backends."""
    while True:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'jobd-web%'")
        counters.backends = frozenset(counters.backends | {row["pid"] for row in rows})
        await asyncio.sleep(every)


def redis_counts(pid):
    """(INFO calls, commands processed, Redis CPU seconds) from one `INFO all` and Redis's
    process PID."""
    info = dict(line.split(":", 1) for line in peers.redis_cli("INFO", "all").splitlines() if ":" in line)
    calls = 0
    for field in info.get("cmdstat_info", "").split(","):
        if field.startswith("calls="):
            calls = int(field[len("calls="):])
    return calls, int(info["total_commands_processed"]), peers.own_cpu(pid) or 0.0


def start_console(jobd, port, log):
    proc = subprocess.Popen([jobd, "web", "serve", "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"console-overhead: jobd web exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                response.read()
            return proc
        except Exception:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("console-overhead: jobd web did not answer within 30 s")


def counted(run, redis_before, redis_after, backends):
    """run["counted"]: the drain's own CPU (daemon + PostgreSQL + Redis over the CPU window,
    less the console's part) and what the console adds to it (none in the closed half)."""
    n = run["jobs"]
    cpu = lambda key: (run[key] or 0) * n / 1e6
    extra = run.get("extraCPUSeconds", {})
    web, backend = extra.get("console") or 0.0, extra.get("consoleBackends") or 0.0
    info_calls = redis_after[0] - redis_before[0] - 1  # the INFO before is counted by the one after
    commands = max(1, redis_after[1] - redis_before[1])
    redis = max(0, info_calls) * 6 * max(0.0, redis_after[2] - redis_before[2]) / commands
    drain = cpu("postgresCPUMicrosPerJob") - backend + cpu("clientCPUMicrosPerJob") + cpu("redisCPUMicrosPerJob") - redis
    console = web + backend + redis
    run["counted"] = {"drainCPUSeconds": drain, "consoleCPUSeconds": console, "webCPUSeconds": web,
                      "backendCPUSeconds": backend, "backends": backends, "redisCPUSeconds": redis,
                      "snapshots": info_calls, "share": console / drain}


async def bench(args):
    db = await peers.connect()
    ctx = {"db": db, "jobs": args.jobs, "jobd": args.jobd, "timeout": 600, "scratch": ".",
           "log": args.log, "postmaster": await peers.postmaster_pid(db), "redis_pid": peers.redis_pid()}
    if ctx["postmaster"] is None:
        raise SystemExit("console-overhead: PostgreSQL's postmaster.pid is not readable: it must run on this host")

    truncate = peers.truncate_existing

    async def truncate_then_park(conn, tables):
        await truncate(conn, tables)
        if args.backlog and "queue.jobs" in tables:
            await conn.execute(
                "INSERT INTO queue.jobs (kind, payload, priority, run_at) "
                "SELECT 'noop', jsonb_build_object('n', g), (ARRAY['high','normal','low'])[1 + g % 3], "
                "now() + interval '1 day' FROM generate_series(1, $1::int) g", args.backlog)
    peers.truncate_existing = truncate_then_park

    watcher_db = await peers.connect()
    runs = []
    log = open(args.log, "a")
    for r in range(1, args.rounds + 1):
        order = ["closed", "open"] if r % 2 else ["open", "closed"]
        for mode in order:
            console = viewers = None
            counters = ConsoleCounters()
            ctx["extra"] = counters
            watcher = asyncio.create_task(watch_backends(watcher_db, counters))
            try:
                if mode == "open":
                    port = free_port()
                    console = start_console(args.jobd, port, log)
                    viewers = Viewers(f"http://127.0.0.1:{port}", args.viewers).__enter__()
                    console_cpu = peers.own_cpu(console.pid)
                    counters.console_pid = console.pid
                redis_before = redis_counts(ctx["redis_pid"])
                run = await peers.run_jobd(ctx, args.workers)
                redis_after = redis_counts(ctx["redis_pid"])
                if console:
                    run["consoleCPUSeconds"] = (peers.own_cpu(console.pid) or 0) - (console_cpu or 0)
            finally:
                watcher.cancel()
                try:
                    await watcher
                except asyncio.CancelledError:
                    pass
                if viewers:
                    viewers.__exit__()
                if console:
                    console.terminate()
                    try:
                        console.wait(20)
                    except subprocess.TimeoutExpired:
                        console.kill()
            run["mode"], run["round"] = mode, r
            counted(run, redis_before, redis_after, len(counters.backends))
            if viewers:
                run["viewerRequests"], run["viewerErrors"] = len(viewers.latencies), viewers.errors
                run["viewerP95Seconds"] = (statistics.quantiles(viewers.latencies, n=20)[18]
                                           if len(viewers.latencies) >= 2 else None)
            runs.append(run)
            c = run["counted"]
            extra = f"; drain CPU {c['drainCPUSeconds']:.2f} s"
            if mode == "open":
                extra += (f"; console adds {c['consoleCPUSeconds'] * 1e3:.1f} ms CPU = {c['share']:.3%} "
                          f"(jobd web {c['webCPUSeconds'] * 1e3:.1f} ms, {c['backends']} backends "
                          f"{c['backendCPUSeconds'] * 1e3:.1f} ms, Redis ~{c['redisCPUSeconds'] * 1e3:.2f} ms for "
                          f"{c['snapshots']} snapshots); whole run: console CPU {run['consoleCPUSeconds']:.2f} s, "
                          f"{run['viewerRequests']} viewer requests, {run['viewerErrors']} errors")
            elif c["snapshots"]:
                extra += f"; {c['snapshots']} INFO calls with no console: the Redis estimate is off"
            print(f"console-overhead: round {r}: {mode:6}: {run['jobsPerSecond']:,.0f} jobs/s ({run['seconds']:.2f} s; "
                  f"µs/job PostgreSQL {peers.fmt(run['postgresCPUMicrosPerJob'], 1)}){extra}", flush=True)
    log.close()
    await watcher_db.close()
    await peers.truncate_existing(db, ["queue.jobs", "queue.dead_letters", "queue.attempts"])
    await db.close()

    pairs = []
    for r in range(1, args.rounds + 1):
        by = {run["mode"]: run for run in runs if run["round"] == r}
        pairs.append(by["open"]["seconds"] / by["closed"]["seconds"] - 1)
    closed = [run["seconds"] for run in runs if run["mode"] == "closed"]
    opened = [run["seconds"] for run in runs if run["mode"] == "open"]
    shares = [run["counted"]["share"] for r in range(1, args.rounds + 1)
              for run in runs if run["round"] == r and run["mode"] == "open"]
    summary = {"pairOverheads": pairs, "medianPairOverhead": statistics.median(pairs),
               "medianSecondsClosed": statistics.median(closed), "medianSecondsOpen": statistics.median(opened),
               "countedShares": shares, "medianCountedShare": statistics.median(shares)}
    print()
    print(f"drain time, open overview vs none: per pair {', '.join(f'{p:+.1%}' for p in pairs)}; "
          f"median {summary['medianPairOverhead']:+.1%} (budget +2.0%)")
    print(f"counted: CPU the console adds / the drain's own CPU, per open drain "
          f"{', '.join(f'{x:.3%}' for x in shares)}; median {summary['medianCountedShare']:.3%} (budget 2.0%)")
    print(f"median drain seconds: none {summary['medianSecondsClosed']:.2f}, open {summary['medianSecondsOpen']:.2f}")
    if args.json:
        report = {"kind": "console-overhead", "command": " ".join(sys.argv), "jobs": args.jobs,
                  "workers": args.workers, "viewers": args.viewers, "backlog": args.backlog,
                  "loadAverageAfter": peers.load_average(), "runs": runs, "summary": summary}
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        print(f"console-overhead: results written to {args.json}")


def main():
    p = argparse.ArgumentParser(prog="console-overhead", description=__doc__.split("\n\n")[0])
    p.add_argument("--jobd", required=True, help="the jobd binary (a release build)")
    p.add_argument("--jobs", type=int, default=100_000, help="no-op jobs per drain (default 100,000: several snapshot intervals)")
    p.add_argument("--rounds", type=int, default=4, help="pairs of drains, alternated (default 4)")
    p.add_argument("--workers", type=int, default=64, help="jobd workers (default 64)")
    p.add_argument("--viewers", type=int, default=3, help="overview tabs open during the open drain (default 3)")
    p.add_argument("--backlog", type=int, default=100_000, help="jobs parked a day ahead in every run (default 100,000)")
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--log", default="/dev/null", help="append jobd's stderr to this file")
    args = p.parse_args()
    if args.jobs < 1 or args.rounds < 1 or args.viewers < 1 or args.backlog < 0:
        raise SystemExit("--jobs, --rounds and --viewers must be positive, --backlog not negative")
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
