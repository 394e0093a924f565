#!/usr/bin/env python3
"""jobd and pgqueuer side by side: the driver behind scripts/bench-peers.

Runs under the venv scripts/bench-peers makes (it needs asyncpg and pgqueuer), against the
servers in JOBD_DATABASE_URL / JOBD_REDIS_URL (scripts/bench-peers starts private ones).

The counting rule, the same for every queue and setting: N no-op jobs are inserted (and the
table VACUUM ANALYZEd, then a CHECKPOINT) before the consumer starts; a run is timed from its
first handler start to its last handler finish, so neither start-up nor shutdown counts.
  - pgqueuer: the no-op handler itself records time.time() at its start and end in each worker
    process (the earliest start and the latest finish of all processes).
  - jobd: the daemon (`jobd run`) is a separate binary, so its window is read from PostgreSQL:
    the earliest claim (queue.jobs.started_at, set by the claim statement, which returns before
    the handler starts) to the latest completion (finished_at, the completing transaction, which
    begins after the handler finished). This window contains the handler window and is a few
    milliseconds wider, i.e. it errs against jobd.

CPU per job, the same method as `jobd bench` (Sources/jobd/BenchCommand.swift, drain): user +
system time from /proc. PostgreSQL: the postmaster, its live children and its reaped children's
times; client: the consumer's processes (jobd, or every pgqueuer worker); Redis: redis-server
(jobd only uses it). A sampler thread reads them every 50 ms and each counter is interpolated
at the ends of the CPU window: from the first dequeue transaction (jobd: the first claim's
started_at; pgqueuer: its log's first 'picked' row) to the last completion transaction (jobd:
the last finished_at; pgqueuer: its log's last 'successful' row) plus TAIL seconds for that
statement to finish. Both ends come from PostgreSQL the same way for both queues, so the CPU
includes the first batch's dequeue and the last batch's completion, which the handler window
leaves out, and excludes start-up, idle waits and shutdown. Over the same window: the cores the
host left idle (and in iowait), from /proc/stat; and for jobd the jobs per claim and per
completion statement (the ledger's end rows of one transaction share its now()).

  bench-peers.py [--quick] [--jobs N] [--rounds R] [--jobd-workers 256,512,1024]
                 [--pgqueuer 500x2,200x4,1000x2] --jobd BIN [--json FILE]
  bench-peers.py pgqueuer-worker --batch B --out FILE   (one pgqueuer process; internal)
"""
import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta

TICKS = os.sysconf("SC_CLK_TCK")
REDIS_PREFIX = "jobd-peers"
TAIL = 0.1  # seconds after the last completion transaction began that its CPU still counts


# --- /proc -------------------------------------------------------------------------------

def stat_fields(pid):
    """Fields of /proc/PID/stat after "(comm)": index 0 is field 3 (state); None if gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        text = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    return text[text.rindex(b")") + 2:].split()


def own_cpu(pid, reaped_children=False):
    """utime + stime of PID in seconds (+ cutime + cstime with reaped_children); None if gone."""
    f = stat_fields(pid)
    if f is None:
        return None
    ticks = int(f[11]) + int(f[12])  # utime, stime: fields 14, 15
    if reaped_children:
        ticks += int(f[13]) + int(f[14])  # cutime, cstime: fields 16, 17
    return ticks / TICKS


def children(pid):
    """Live children of PID (every thread's list; Linux CONFIG_PROC_CHILDREN)."""
    pids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += f.read().split()
    except OSError:
        pass
    return pids


def host_idle_iowait():
    """The host's idle and iowait seconds, summed over its CPUs (/proc/stat's cpu line)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[4]) / TICKS, int(fields[5]) / TICKS


def postgres_tree_cpu(postmaster):
    """As jobd bench's processTreeCPUSeconds: the postmaster with its reaped children, plus
    its live children (backends, autovacuum, checkpointer, walwriter...)."""
    total = own_cpu(postmaster, reaped_children=True)
    if total is None:
        return None
    for child in children(postmaster):
        total += own_cpu(child) or 0
    return total


class Sampler:
    """Samples (wall time, PostgreSQL CPU, client CPU, Redis CPU) every `interval` seconds.

    A client process that exits keeps its last reading (its CPU cannot grow any more); the
    PostgreSQL total never goes down (a backend that has exited but is not yet reaped
    vanishes from the sum for a moment)."""

    def __init__(self, postmaster, redis_pid, client_pids, interval=0.05, extra=None):
        self.postmaster, self.redis_pid, self.interval = postmaster, redis_pid, interval
        # extra: more counters sampled alongside (columns 4...): an object with `names` and a
        # call returning one value (or None) per name (scripts/console-overhead.py's console).
        self.extra = extra
        self.client_pids = list(client_pids)
        self.last_client = {}
        self.samples = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def read(self):
        now = time.time()
        pg = postgres_tree_cpu(self.postmaster)
        if self.samples and pg is not None:
            pg = max(pg, self.samples[-1][1])
        for pid in self.client_pids:
            value = own_cpu(pid)
            if value is not None:
                self.last_client[pid] = value
        client = sum(self.last_client.values())
        redis = own_cpu(self.redis_pid) if self.redis_pid else None
        idle, iowait = host_idle_iowait()
        self.samples.append((now, pg, client, redis, *(self.extra() if self.extra else ()), idle, iowait))

    def loop(self):
        while not self.stop_event.is_set():
            self.read()
            self.stop_event.wait(self.interval)

    def __enter__(self):
        self.read()
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop_event.set()
        self.thread.join()
        self.read()

    def at(self, t, column):
        """The counter `column` (1 pg, 2 client, 3 redis, 4... extra) interpolated at wall time t."""
        rows = [(s[0], s[column]) for s in self.samples if s[column] is not None]
        if not rows:
            return None
        if t <= rows[0][0]:
            return rows[0][1]
        for (t0, v0), (t1, v1) in zip(rows, rows[1:]):
            if t0 <= t <= t1:
                return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
        return rows[-1][1]

    def host_column(self, which):
        """The column of the host's idle (0) or iowait (1) seconds: after the extra counters."""
        return 4 + (len(self.extra.names) if self.extra else 0) + which

    def window_cpu(self, start, end, column):
        a, b = self.at(start, column), self.at(end, column)
        return None if a is None or b is None else max(0.0, b - a)


# --- servers -----------------------------------------------------------------------------

async def connect():
    import asyncpg
    return await asyncpg.connect(os.environ["JOBD_DATABASE_URL"])


def redis_cli(*args):
    url = os.environ["JOBD_REDIS_URL"]
    return subprocess.run(["redis-cli", "-u", url, *args], check=True, capture_output=True, text=True).stdout


def redis_pid():
    info = redis_cli("INFO", "server")
    for line in info.splitlines():
        if line.startswith("process_id:"):
            pid = int(line.split(":")[1])
            return pid if os.path.exists(f"/proc/{pid}") else None
    return None


async def postmaster_pid(db):
    directory = await db.fetchval("SHOW data_directory")
    try:
        with open(os.path.join(directory, "postmaster.pid")) as f:
            return int(f.readline())
    except OSError:
        return None


async def table_exists(db, name):
    return await db.fetchval("SELECT to_regclass($1) IS NOT NULL", name)


async def truncate_existing(db, tables):
    present = [t for t in tables if await table_exists(db, t)]
    if present:
        await db.execute(f"TRUNCATE {', '.join(present)}")


def clear_redis_prefix():
    keys = redis_cli("--scan", "--pattern", f"{REDIS_PREFIX}:*").split()
    for i in range(0, len(keys), 500):
        redis_cli("DEL", *keys[i:i + 500])


def per_job_micros(seconds, jobs):
    return None if seconds is None else seconds / jobs * 1e6


# --- jobd --------------------------------------------------------------------------------

async def run_jobd(ctx, workers):
    db, n = ctx["db"], ctx["jobs"]
    await truncate_existing(db, ["queue.jobs", "queue.dead_letters", "queue.attempts"])
    clear_redis_prefix()
    lo, hi = await db.fetchrow(
        "WITH ins AS (INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{}'::jsonb "
        "FROM generate_series(1, $1::int) RETURNING id) SELECT min(id), max(id) FROM ins", n)
    await db.execute("VACUUM ANALYZE queue.jobs")
    await db.execute("CHECKPOINT")
    env = dict(os.environ, JOBD_WORKERS=str(workers), JOBD_LOG_LEVEL="warning", JOBD_REDIS_PREFIX=REDIS_PREFIX)
    log = open(ctx["log"], "a")
    proc = subprocess.Popen([ctx["jobd"], "run"], env=env, stdout=log, stderr=log)
    try:
        with Sampler(ctx["postmaster"], ctx["redis_pid"], [proc.pid], extra=ctx.get("extra")) as sampler:
            deadline = time.monotonic() + ctx["timeout"]
            # Done once no job of this run is unfinished. Every 200 ms, the lowest unfinished id
            # from the previous one on, through the primary key: a finished job never becomes
            # unfinished, so that id only grows and the probes together read each row about
            # once (an EXISTS over the whole range every 200 ms cost PostgreSQL a few µs per job).
            unfinished = lo
            while True:
                await asyncio.sleep(0.2)
                if proc.poll() is not None:
                    raise SystemExit(f"bench-peers: jobd run exited early ({proc.returncode}); see {ctx['log']}")
                unfinished = await db.fetchval(
                    "SELECT id FROM queue.jobs WHERE id >= $1 AND id <= $2 "
                    "AND state NOT IN ('completed', 'dead', 'cancelled') ORDER BY id LIMIT 1", unfinished, hi)
                if unfinished is None:
                    await asyncio.sleep(2 * TAIL)
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench-peers: jobd did not finish {n} jobs in {ctx['timeout']} s")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    # From the ledger's end rows (the attempt's start and its end, both on PostgreSQL's
    # clock): a completion deletes the job row, and a daemon from before that writes the
    # same end rows, so old and new binaries are timed alike.
    row = await db.fetchrow(
        "SELECT count(DISTINCT job_id), "
        "extract(epoch FROM min(started_at))::float8, extract(epoch FROM max(at))::float8 "
        "FROM queue.attempts WHERE job_id BETWEEN $1 AND $2 AND event = 'end' AND outcome = 'completed'", lo, hi)
    completed, start, end = row[0], row[1], row[2]
    if completed != n or start is None or end is None:
        raise SystemExit(f"bench-peers: jobd completed {completed} of {n} jobs (or the rows lack "
                         "started_at/at: update the window query in run_jobd)")
    # Transactions: the ledger's end rows of one completing transaction share its `at`, and those
    # of one claim share its `started_at` (both now()), so the distinct values count the batches.
    claims, completions = await db.fetchrow(
        "SELECT count(DISTINCT started_at), count(DISTINCT at) FROM queue.attempts "
        "WHERE job_id BETWEEN $1 AND $2 AND event = 'end' AND outcome = 'completed'", lo, hi)
    out = result(ctx, "jobd", f"{workers} workers", {"workers": workers}, (start, end), (start, end), sampler,
                 windowSource="PostgreSQL: first claim (ledger started_at) → last completion (ledger at)")
    out["jobsPerClaim"], out["jobsPerCompletion"] = n / claims, n / completions
    out["postgresWindowJobsPerSecond"] = out["jobsPerSecond"]
    return out


# --- pgqueuer ----------------------------------------------------------------------------

# pgqueuer's tables live in a schema of their own: unqualified, they would land in the first
# schema of the search path, which is jobd's own bookkeeping schema when the user is `jobd`.
PGQ_SCHEMA = "pgqueuer"
os.environ["PGQUEUER_SCHEMA"] = PGQ_SCHEMA  # read by pgqueuer's settings, here and in the workers
PGQ_QUEUE, PGQ_LOG = f"{PGQ_SCHEMA}.pgqueuer", f"{PGQ_SCHEMA}.pgqueuer_log"
PGQ_TABLES = [PGQ_QUEUE, PGQ_LOG, f"{PGQ_SCHEMA}.pgqueuer_statistics"]


async def install_pgqueuer(db):
    from pgqueuer import Queries
    if not await table_exists(db, PGQ_QUEUE):
        await Queries.from_asyncpg_connection(db).install()


async def run_workers(ctx, queue, command, processes):
    """Starts `processes` worker processes (`bench-peers.py COMMAND…`), lets them all go at once,
    samples CPU until they have exited (each exits once the queue is empty) and returns their
    reports (jobs handled, first handler start, last handler finish) and the sampler."""
    outs = [f"{ctx['scratch']}/{queue}-{os.getpid()}-{i}.json" for i in range(processes)]
    for out in outs:
        if os.path.exists(out):
            os.remove(out)
    log = open(ctx["log"], "a")
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), *command, "--out", out],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
             for out in outs]
    try:
        # Every process connected and checked the schema before any takes a job, so the
        # processes start together (otherwise the first one up takes the whole queue).
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise SystemExit(f"bench-peers: a {queue} worker failed to start; see {ctx['log']}")
        with Sampler(ctx["postmaster"], ctx["redis_pid"], [p.pid for p in procs]) as sampler:
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()
            deadline = time.monotonic() + ctx["timeout"]
            while any(p.poll() is None for p in procs):
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench-peers: {queue} did not finish {ctx['jobs']} jobs in {ctx['timeout']} s")
                await asyncio.sleep(0.05)
            # The window ends TAIL after the last completion began, which may be the exit's flush.
            await asyncio.sleep(2 * TAIL)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        log.close()
    if any(p.returncode != 0 for p in procs):
        raise SystemExit(f"bench-peers: a {queue} worker failed; see {ctx['log']}")
    reports = []
    for out in outs:
        with open(out) as f:
            reports.append(json.load(f))
        os.remove(out)
    return reports, sampler


def handler_window(reports):
    starts = [r["firstStart"] for r in reports if r["firstStart"] is not None]
    ends = [r["lastFinish"] for r in reports if r["lastFinish"] is not None]
    return min(starts), max(ends)


class HandlerRecord:
    """What a worker process's no-op handler records: jobs, first start, last finish."""

    def __init__(self):
        self.seen = {"jobs": 0, "firstStart": None, "lastFinish": None}

    def start(self):
        if self.seen["firstStart"] is None:
            self.seen["firstStart"] = time.time()
        self.seen["jobs"] += 1

    def finish(self):
        self.seen["lastFinish"] = time.time()

    def write(self, path):
        with open(path, "w") as f:
            json.dump(self.seen, f)


async def wait_for_go():
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def run_pgqueuer(ctx, batch, processes):
    db, n = ctx["db"], ctx["jobs"]
    from pgqueuer import Queries
    await truncate_existing(db, PGQ_TABLES)
    queries = Queries.from_asyncpg_connection(db)
    for i in range(0, n, 50_000):
        size = min(50_000, n - i)
        await queries.enqueue(["noop"] * size, [None] * size, [0] * size)
    await db.execute(f"VACUUM ANALYZE {PGQ_QUEUE}")
    await db.execute("CHECKPOINT")
    # Drain mode: each process exits once the queue is empty and its jobs are logged.
    reports, sampler = await run_workers(ctx, "pgqueuer", ["pgqueuer-worker", "--batch", str(batch)], processes)
    handled = sum(r["jobs"] for r in reports)
    left = await db.fetchval(f"SELECT count(*) FROM {PGQ_QUEUE}")
    logged = await db.fetchval(f"SELECT count(*) FROM {PGQ_LOG} WHERE status = 'successful'")
    if handled != n or left != 0 or logged != n:
        raise SystemExit(f"bench-peers: pgqueuer ran {handled} handlers, logged {logged} successes, "
                         f"left {left} in the queue, of {n} jobs")
    # Its window as PostgreSQL saw it (first pick → last success logged), the measure jobd's
    # rate is held to: the CPU window, and shown beside the handler window's rate.
    db_start, db_end = await db.fetchrow(
        "SELECT extract(epoch FROM min(created) FILTER (WHERE status = 'picked'))::float8, "
        f"extract(epoch FROM max(created) FILTER (WHERE status = 'successful'))::float8 FROM {PGQ_LOG}")
    if db_start is None or db_end is None or db_end <= db_start:
        raise SystemExit("bench-peers: pgqueuer_log lacks the picked/successful rows of this run")
    out = result(ctx, "pgqueuer", f"batch {batch} × {processes} procs", {"batch": batch, "processes": processes},
                 handler_window(reports), (db_start, db_end), sampler,
                 windowSource="handler: first start → last finish (time.time() in the handler)")
    out["jobsPerProcess"] = [r["jobs"] for r in reports]
    out["postgresWindowJobsPerSecond"] = n / (db_end - db_start)
    return out


def pgqueuer_worker(args):
    """One pgqueuer process, as `pgq run --batch-size B --mode drain` runs one: a QueueManager
    on one asyncpg connection, pgqueuer's defaults otherwise. The no-op handler records the
    first start and last finish in this process."""
    import asyncpg
    from pgqueuer import Queries, QueueManager
    from pgqueuer.types import QueueExecutionMode

    record = HandlerRecord()

    async def main():
        connection = await asyncpg.connect(os.environ["JOBD_DATABASE_URL"])
        qm = QueueManager(Queries.from_asyncpg_connection(connection))

        @qm.entrypoint("noop")
        async def noop(job):
            record.start()
            record.finish()

        await qm.verify_structure()
        await wait_for_go()
        # dequeue_timeout only bounds the wait once nothing is queued (the tail), so that
        # drain mode notices the empty queue within a second instead of pgqueuer's 30 s.
        await qm.run(batch_size=args.batch, mode=QueueExecutionMode.drain, dequeue_timeout=timedelta(seconds=1))
        await connection.close()

    asyncio.run(main())
    record.write(args.out)


# --- procrastinate ---------------------------------------------------------------------

# Its own schema too, through the connections' search_path (its SQL is unqualified).
PROC_SCHEMA = "procrastinate"


def procrastinate_app():
    import procrastinate
    connector = procrastinate.PsycopgConnector(
        conninfo=os.environ["JOBD_DATABASE_URL"], kwargs={"options": f"-c search_path={PROC_SCHEMA}"})
    return procrastinate.App(connector=connector)


async def install_procrastinate(db):
    if await table_exists(db, f"{PROC_SCHEMA}.procrastinate_jobs"):
        return
    await db.execute(f"CREATE SCHEMA IF NOT EXISTS {PROC_SCHEMA}")
    app = procrastinate_app()
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def run_procrastinate(ctx, concurrency, processes):
    db, n = ctx["db"], ctx["jobs"]
    await db.execute(f"TRUNCATE {PROC_SCHEMA}.procrastinate_jobs CASCADE")
    app = procrastinate_app()
    noop = app.task(name="noop")(lambda: None)
    async with app.open_async():
        for i in range(0, n, 10_000):
            await noop.batch_defer_async(*([{}] * min(10_000, n - i)))
    await db.execute(f"VACUUM ANALYZE {PROC_SCHEMA}.procrastinate_jobs")
    await db.execute("CHECKPOINT")
    # wait=False: each process exits once it finds no job to fetch.
    reports, sampler = await run_workers(
        ctx, "procrastinate", ["procrastinate-worker", "--concurrency", str(concurrency)], processes)
    handled = sum(r["jobs"] for r in reports)
    done = await db.fetchval(f"SELECT count(*) FROM {PROC_SCHEMA}.procrastinate_jobs WHERE status = 'succeeded'")
    if handled != n or done != n:
        raise SystemExit(f"bench-peers: procrastinate ran {handled} handlers, {done} succeeded, of {n} jobs")
    db_start, db_end = await db.fetchrow(
        "SELECT extract(epoch FROM min(at) FILTER (WHERE type = 'started'))::float8, "
        "extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded'))::float8 "
        f"FROM {PROC_SCHEMA}.procrastinate_events")
    if db_start is None or db_end is None or db_end <= db_start:
        raise SystemExit("bench-peers: procrastinate_events lacks the started/succeeded rows of this run")
    out = result(ctx, "procrastinate", f"concurrency {concurrency} × {processes} procs",
                 {"concurrency": concurrency, "processes": processes},
                 handler_window(reports), (db_start, db_end), sampler,
                 windowSource="handler: first start → last finish (time.time() in the handler)")
    out["jobsPerProcess"] = [r["jobs"] for r in reports]
    out["postgresWindowJobsPerSecond"] = n / (db_end - db_start)
    return out


def procrastinate_worker(args):
    """One procrastinate process: `run_worker_async(concurrency=C, wait=False)`, its defaults
    otherwise (LISTEN/NOTIFY on, jobs kept as succeeded). The no-op task records the first
    start and last finish in this process."""
    record = HandlerRecord()

    async def main():
        app = procrastinate_app()

        @app.task(name="noop")
        async def noop():
            record.start()
            record.finish()

        async with app.open_async():
            await app.check_connection_async()
            await wait_for_go()
            await app.run_worker_async(concurrency=args.concurrency, wait=False, install_signal_handlers=False)

    asyncio.run(main())
    record.write(args.out)


# --- results -----------------------------------------------------------------------------

def result(ctx, queue, label, setting, window, database_window, sampler, windowSource):
    """One run: the rate over `window` (the counting rule), the CPU over `database_window`
    (first dequeue → last completion transaction, from PostgreSQL) plus TAIL."""
    n = ctx["jobs"]
    seconds = window[1] - window[0]
    cpu_start, cpu_end = database_window[0], database_window[1] + TAIL
    if sampler.samples[-1][0] < cpu_end:
        raise SystemExit("bench-peers: the CPU sampler stopped before the end of the window")
    return {
        "queue": queue, "label": label, "setting": setting, "jobs": n,
        "seconds": seconds, "jobsPerSecond": n / seconds, "windowSource": windowSource,
        "cpuWindowSeconds": cpu_end - cpu_start,
        "postgresCPUMicrosPerJob": per_job_micros(sampler.window_cpu(cpu_start, cpu_end, 1), n),
        "clientCPUMicrosPerJob": per_job_micros(sampler.window_cpu(cpu_start, cpu_end, 2), n),
        "redisCPUMicrosPerJob": per_job_micros(sampler.window_cpu(cpu_start, cpu_end, 3), n) if queue == "jobd" else None,
        "loadAverage": load_average(),
        # Cores the host left unused over the CPU window (idle, and iowait: idle with a disk
        # write outstanding), out of os.cpu_count().
        "hostIdleCores": sampler.window_cpu(cpu_start, cpu_end, sampler.host_column(0)) / (cpu_end - cpu_start),
        "hostIowaitCores": sampler.window_cpu(cpu_start, cpu_end, sampler.host_column(1)) / (cpu_end - cpu_start),
        **({"extraCPUSeconds": {name: sampler.window_cpu(cpu_start, cpu_end, 4 + i)
                                for i, name in enumerate(sampler.extra.names)}} if sampler.extra else {}),
    }


def load_average():
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return None


def fmt(value, digits=0):
    return "-" if value is None else f"{value:,.{digits}f}"


PEERS = ("pgqueuer", "procrastinate")


def summarize(report):
    """Per round: each queue's best setting and jobd best / peer best, by the counting rule
    (`ratios`; `ratio` is the one against pgqueuer, the issue's) and with every window read from
    PostgreSQL, first dequeue → last completion transaction (`postgresWindowRatios`); then the
    medians over the rounds."""
    queues = [q for q, labels in report["settings"].items() if labels]
    rounds = []
    for r in range(1, report["rounds"] + 1):
        runs = [x for x in report["runs"] if x["round"] == r]
        entry = {"round": r}
        for key, rate in (("", "jobsPerSecond"), ("postgresWindow", "postgresWindowJobsPerSecond")):
            best = {}
            for queue in queues:
                mine = [x for x in runs if x["queue"] == queue]
                if mine:
                    top = max(mine, key=lambda x: x[rate])
                    best[queue] = {"label": top["label"], "jobsPerSecond": top[rate]}
            ratios = {peer: best["jobd"]["jobsPerSecond"] / best[peer]["jobsPerSecond"]
                      for peer in PEERS if "jobd" in best and peer in best}
            entry[key + ("Best" if key else "best")] = best
            entry[key + ("Ratios" if key else "ratios")] = ratios
            entry[key + ("Ratio" if key else "ratio")] = ratios.get("pgqueuer")
        rounds.append(entry)
    report["roundSummary"] = rounds
    for key in ("ratio", "postgresWindowRatio"):
        medians = {}
        for peer in PEERS:
            values = [x[key + "s"][peer] for x in rounds if peer in x[key + "s"]]
            if values:
                medians[peer] = statistics.median(values)
        report["median" + key[0].upper() + key[1:] + "s"] = medians
        report["median" + key[0].upper() + key[1:]] = medians.get("pgqueuer")
    # Per-job CPU per queue and setting: medians over the rounds.
    costs = []
    for queue in queues:
        for label in report["settings"][queue]:
            mine = [x for x in report["runs"] if x["queue"] == queue and x["label"] == label]
            if not mine:
                continue

            def med(key):
                values = [x[key] for x in mine if x[key] is not None]
                return statistics.median(values) if values else None
            costs.append({"queue": queue, "label": label, "runs": len(mine),
                          "jobsPerSecond": med("jobsPerSecond"),
                          "postgresWindowJobsPerSecond": med("postgresWindowJobsPerSecond"),
                          "postgresCPUMicrosPerJob": med("postgresCPUMicrosPerJob"),
                          "clientCPUMicrosPerJob": med("clientCPUMicrosPerJob"),
                          "redisCPUMicrosPerJob": med("redisCPUMicrosPerJob")})
    report["costs"] = costs


def table(report):
    m = report["machine"]
    queues = [q for q, labels in report["settings"].items() if labels]
    peers = [q for q in queues if q in PEERS and "jobd" in queues]
    versions = ", ".join(f"{q} {m[q]}" for q in queues if q in m)
    lines = [f"bench-peers — {m['cores']} cores, {m['postgres']}, Redis {m['redis']}, {versions}",
             f"load average {fmt(m['loadAverageBefore'], 2)} before, {fmt(m['loadAverageAfter'], 2)} after",
             f"{report['jobs']:,} no-op jobs inserted first; each run timed from its first handler start to "
             f"its last handler finish; jobs/s", ""]
    head = " | ".join(f"{q} {' / '.join(report['settings'][q])}" for q in queues)
    ratio_head = "".join(f" jobd / {p} best |" for p in peers)
    lines.append(f"| round | {head} |{ratio_head}")
    lines.append("|---" * (1 + len(queues) + len(peers)) + "|")
    for s in report["roundSummary"]:
        r = s["round"]

        def rates(queue):
            out = []
            for label in report["settings"][queue]:
                run = next((x for x in report["runs"] if x["round"] == r and x["queue"] == queue and x["label"] == label), None)
                out.append(fmt(run["jobsPerSecond"]) if run else "-")
            return " / ".join(out)
        ratios = "".join(f" {fmt(s['ratios'].get(p), 2)} |" for p in peers)
        lines.append(f"| {r} | {' | '.join(rates(q) for q in queues)} |{ratios}")
    lines.append("")
    for p in peers:
        lines.append(f"median best-vs-best ratio (jobd / {p}): {fmt(report['medianRatios'].get(p), 2)}")
    lines.append("")
    lines.append("the same runs, every window read from PostgreSQL (first dequeue → last completion transaction;")
    lines.append("a peer's handler window leaves out its pick before and its batched completion after):")
    lines.append("| round |" + "".join(f" {q} best |" for q in queues) + ratio_head)
    lines.append("|---" * (1 + len(queues) + len(peers)) + "|")
    for s in report["roundSummary"]:
        b = s["postgresWindowBest"]

        def best(queue):
            return f"{fmt(b[queue]['jobsPerSecond'])} ({b[queue]['label']})" if queue in b else "-"
        ratios = "".join(f" {fmt(s['postgresWindowRatios'].get(p), 2)} |" for p in peers)
        lines.append(f"| {s['round']} |" + "".join(f" {best(q)} |" for q in queues) + ratios)
    for p in peers:
        lines.append(f"median (jobd / {p}): {fmt(report['medianPostgresWindowRatios'].get(p), 2)}")
    lines.append("")
    lines.append("CPU per job, µs, from the first dequeue to the last completion transaction (+0.1 s), medians")
    lines.append("over the rounds; client = the jobd daemon or all of a peer's processes; Redis serves jobd only")
    lines.append("| queue | setting | jobs/s | PostgreSQL | client | Redis | total |")
    lines.append("|---|---|---|---|---|---|---|")
    for c in report["costs"]:
        parts = [c["postgresCPUMicrosPerJob"], c["clientCPUMicrosPerJob"], c["redisCPUMicrosPerJob"]]
        total = sum(p for p in parts if p is not None) if parts[0] is not None else None
        lines.append(f"| {c['queue']} | {c['label']} | {fmt(c['jobsPerSecond'])} | {fmt(parts[0], 1)} | "
                     f"{fmt(parts[1], 1)} | {fmt(parts[2], 1)} | {fmt(total, 1)} |")
    return "\n".join(lines)


def parse_list(text, name):
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise SystemExit(f"{name}: \"{text}\" is not a comma-separated list of numbers")
    if not values or min(values) < 1:
        raise SystemExit(f"{name}: \"{text}\" must list positive numbers")
    return values


def parse_pairs(text, name, example):
    """"AxB,CxD" → [(A, B), (C, D)], all positive; "" → []."""
    settings = []
    for part in filter(None, text.split(",")):
        try:
            a, b = (int(x) for x in part.lower().split("x"))
        except ValueError:
            raise SystemExit(f"{name}: \"{part}\" is not of the form {example}")
        if a < 1 or b < 1:
            raise SystemExit(f"{name}: \"{part}\": both must be positive")
        settings.append((a, b))
    return settings


async def bench(args):
    import pgqueuer
    jobs = args.jobs or (2_000 if args.quick else 20_000)
    rounds = args.rounds or (1 if args.quick else 3)
    wanted = lambda queue: args.only in (None, queue)
    jobd_workers = parse_list(args.jobd_workers, "--jobd-workers") if wanted("jobd") else []
    pgq = parse_pairs(args.pgqueuer, "--pgqueuer", "BATCHxPROCESSES (e.g. 500x2)") if wanted("pgqueuer") else []
    proc = parse_pairs(args.procrastinate, "--procrastinate", "CONCURRENCYxPROCESSES (e.g. 10x2)") \
        if wanted("procrastinate") else []
    db = await connect()
    if pgq:
        await install_pgqueuer(db)
    if proc:
        await install_procrastinate(db)
    scratch = os.environ.get("BENCH_PEERS_SCRATCH") or os.path.dirname(os.path.abspath(args.json or ".")) or "."
    ctx = {"db": db, "jobs": jobs, "jobd": args.jobd, "timeout": args.timeout, "scratch": scratch,
           "log": args.log, "postmaster": await postmaster_pid(db), "redis_pid": redis_pid()}
    if ctx["postmaster"] is None:
        raise SystemExit("bench-peers: PostgreSQL's postmaster.pid is not readable: it must run on this host")
    if jobd_workers and not args.jobd:
        raise SystemExit("bench-peers: --jobd BIN is required to run jobd")
    jobd_version = subprocess.run([args.jobd, "--version"], capture_output=True, text=True).stdout.strip() if jobd_workers else "-"
    if jobd_workers and os.environ.get("BENCH_PEERS_JOBD_COMMIT"):
        jobd_version += f" ({os.environ['BENCH_PEERS_JOBD_COMMIT']})"
    redis_version = next((line.split(":")[1] for line in redis_cli("INFO", "server").splitlines()
                          if line.startswith("redis_version:")), "?").strip()
    report = {
        "kind": "bench-peers",
        "machine": {"cores": os.cpu_count(), "os": platform.platform(),
                    "postgres": (await db.fetchval("SELECT version()")).split(" on ")[0],
                    "redis": redis_version, "jobd": jobd_version, "pgqueuer": pgqueuer.__version__,
                    "python": platform.python_version(), "loadAverageBefore": load_average()},
        "quick": args.quick,
        "command": os.environ.get("BENCH_PEERS_COMMAND") or "bench-peers.py " + " ".join(args.argv),
        "jobs": jobs, "rounds": rounds,
        "countingRule": "N no-op jobs inserted (VACUUM ANALYZE, CHECKPOINT) before the consumer starts; "
                        "first handler start → last handler finish (jobd: first claim → last completion "
                        "in PostgreSQL, which contains its handler window)",
        "settings": {"jobd": [f"{w} workers" for w in jobd_workers],
                     "pgqueuer": [f"batch {b} × {p} procs" for b, p in pgq],
                     "procrastinate": [f"concurrency {c} × {p} procs" for c, p in proc]},
        "runs": [],
    }
    if proc:
        import procrastinate
        report["machine"]["procrastinate"] = procrastinate.__version__
    # Alternate the queues run by run, and which queue opens each round, so a slow minute on
    # a shared host falls on all alike.
    plans = [p for p in ([("jobd", w) for w in jobd_workers], [("pgqueuer", s) for s in pgq],
                         [("procrastinate", s) for s in proc]) if p]
    runners = {"jobd": lambda w: run_jobd(ctx, w), "pgqueuer": lambda s: run_pgqueuer(ctx, *s),
               "procrastinate": lambda s: run_procrastinate(ctx, *s)}
    for r in range(1, rounds + 1):
        shift = (r - 1) % len(plans)
        order = plans[shift:] + plans[:shift]
        plan = []
        for i in range(max(len(p) for p in order)):
            for p in order:
                plan += p[i:i + 1]
        for queue, setting in plan:
            run = await runners[queue](setting)
            run["round"] = r
            report["runs"].append(run)
            batches = (f"; jobs per claim {run['jobsPerClaim']:.1f}, per completion {run['jobsPerCompletion']:.1f}"
                       if "jobsPerClaim" in run else "")
            print(f"bench-peers: round {r}: {queue} {run['label']}: {run['jobsPerSecond']:,.0f} jobs/s "
                  f"({run['seconds']:.2f} s; µs/job PostgreSQL {fmt(run['postgresCPUMicrosPerJob'], 1)}, "
                  f"client {fmt(run['clientCPUMicrosPerJob'], 1)}, Redis {fmt(run['redisCPUMicrosPerJob'], 1)}; host idle "
                  f"{fmt(run['hostIdleCores'], 2)} + iowait {fmt(run['hostIowaitCores'], 2)} cores; load {fmt(run['loadAverage'], 2)}{batches})",
                  flush=True)
    await truncate_existing(db, ["queue.jobs", "queue.dead_letters", "queue.attempts"] + PGQ_TABLES)
    if await table_exists(db, f"{PROC_SCHEMA}.procrastinate_jobs"):
        await db.execute(f"TRUNCATE {PROC_SCHEMA}.procrastinate_jobs CASCADE")
    await db.close()
    report["machine"]["loadAverageAfter"] = load_average()
    summarize(report)
    print()
    print(table(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        print(f"bench-peers: results written to {args.json}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "procrastinate-worker":
        p = argparse.ArgumentParser(prog="bench-peers.py procrastinate-worker")
        p.add_argument("--concurrency", type=int, required=True)
        p.add_argument("--out", required=True)
        procrastinate_worker(p.parse_args(sys.argv[2:]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "pgqueuer-worker":
        p = argparse.ArgumentParser(prog="bench-peers.py pgqueuer-worker")
        p.add_argument("--batch", type=int, required=True)
        p.add_argument("--out", required=True)
        pgqueuer_worker(p.parse_args(sys.argv[2:]))
        return
    p = argparse.ArgumentParser(prog="bench-peers", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2,000 jobs, 1 round (a smoke test, not a figure)")
    p.add_argument("--jobs", type=int, help="no-op jobs per run (default 20,000; 2,000 with --quick)")
    p.add_argument("--rounds", type=int, help="rounds over all settings (default 3; 1 with --quick)")
    p.add_argument("--jobd-workers", default="256,512,1024", help="jobd worker counts (default 256,512,1024)")
    p.add_argument("--pgqueuer", default="500x2,200x4,1000x2",
                   help="pgqueuer settings BATCHxPROCESSES (default 500x2,200x4,1000x2)")
    p.add_argument("--procrastinate", default="",
                   help="procrastinate settings CONCURRENCYxPROCESSES (default none: it drains a few "
                        "hundred jobs/s, so 20,000 jobs take over a minute per setting)")
    p.add_argument("--jobd", help="the jobd binary (a release build)")
    p.add_argument("--only", choices=["jobd", "pgqueuer", "procrastinate"], help="run one queue only (no ratio)")
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--log", default="/dev/null", help="append the consumers' stderr to this file")
    p.add_argument("--timeout", type=float, default=600, help="seconds one run may take")
    args = p.parse_args()
    args.argv = sys.argv[1:]
    if args.jobs is not None and args.jobs < 1 or args.rounds is not None and args.rounds < 1:
        raise SystemExit("--jobs and --rounds must be positive")
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
