#!/usr/bin/env python3
"""A/B of gin_pending_list_limit set on the payload GIN indexes themselves
(queue.jobs_payload_idle_idx, queue.attempts_completed_payload_idx): docs/performance.md,
"The payload GIN indexes' pending-list limit".

Runs against the servers in JOBD_DATABASE_URL / JOBD_REDIS_URL, which must be on this host and
have pg_stat_statements preloaded and log_min_duration_statement set (its log is --pglog):
  bash scripts/servers start DIR; source DIR/env
  psql -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" \
       -c "ALTER SYSTEM SET log_min_duration_statement = '200ms'"
  bash scripts/servers stop DIR; bash scripts/servers start DIR; jobd migrate
  .local/peers-venv/bin/python scripts/gin-pending-limit.py --jobd BIN --pglog DIR/logs/postgres.log --json OUT
(the venv is scripts/bench-peers'). Alternates the mode run by run on those servers, one binary:
A = the default limit (RESET), B = SET (gin_pending_list_limit = LIMIT) on both indexes (--only
NAME: on the index whose name contains NAME). Each run: N due jobs with a 4-field payload (4
entries per row version; `{}`, the benches' payload, adds one empty-item entry and hardly fills
the list), VACUUM ANALYZE and VACUUM of the ledger (the pending lists start empty), CHECKPOINT,
then `jobd run` (W workers) drains them. Counted per run: per statement run often (claim,
completion), the longest execution, stddev, and per job its time, buffer hits, dirtied buffers
and WAL (pg_stat_statements); statements over the log threshold (postgres log); WAL bytes and
records per job (pg_stat_wal, the whole server); PostgreSQL / daemon / Redis CPU per job over the
drain (bench-peers' Sampler). Leaves both indexes RESET.
"""
import argparse, asyncio, importlib.util, json, os, signal, subprocess, time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_peers", os.path.join(HERE, "bench-peers.py"))
peers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peers)

INDEXES = ["queue.jobs_payload_idle_idx", "queue.attempts_completed_payload_idx"]


def log_lines(path):
    with open(path, errors="replace") as f:
        return f.readlines()


async def run(db, args, mode, r):
    await peers.truncate_existing(db, ["queue.jobs", "queue.dead_letters", "queue.attempts"])
    peers.clear_redis_prefix()
    for index in INDEXES:
        if mode == "B" and (args.only is None or args.only in index):
            await db.execute(f"ALTER INDEX {index} SET (gin_pending_list_limit = {args.limit})")
        else:
            await db.execute(f"ALTER INDEX {index} RESET (gin_pending_list_limit)")
    lo, hi = await db.fetchrow(
        "WITH ins AS (INSERT INTO queue.jobs (kind, payload) SELECT 'noop', "
        "jsonb_build_object('tenant', 't' || (g % 100), 'order', g, 'email', 'u' || g || '@example.com', 'n', g % 7) "
        "FROM generate_series(1, $1::int) g RETURNING id) SELECT min(id), max(id) FROM ins", args.jobs)
    await db.execute("VACUUM ANALYZE queue.jobs")
    await db.execute("VACUUM queue.attempts")
    await db.execute("CHECKPOINT")
    await db.execute("SELECT pg_stat_statements_reset()")
    wal0 = await db.fetchrow("SELECT wal_records, wal_bytes FROM pg_stat_wal")
    log_mark = len(log_lines(args.pglog))
    env = dict(os.environ, JOBD_WORKERS=str(args.workers), JOBD_LOG_LEVEL="warning", JOBD_REDIS_PREFIX=peers.REDIS_PREFIX)
    log = open(args.log, "a")
    proc = subprocess.Popen([args.jobd, "run"], env=env, stdout=log, stderr=log)
    t0 = time.time()
    try:
        with peers.Sampler(args.postmaster, args.redis_pid, [proc.pid]) as sampler:
            unfinished = lo
            while True:
                await asyncio.sleep(0.2)
                if proc.poll() is not None:
                    raise SystemExit("jobd run exited early")
                unfinished = await db.fetchval(
                    "SELECT id FROM queue.jobs WHERE id >= $1 AND id <= $2 "
                    "AND state NOT IN ('completed', 'dead', 'cancelled') ORDER BY id LIMIT 1", unfinished, hi)
                if unfinished is None:
                    break
            t1 = time.time()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
    wal1 = await db.fetchrow("SELECT wal_records, wal_bytes FROM pg_stat_wal")
    stmts = await db.fetch(
        "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 70) q, calls, mean_exec_time, max_exec_time, stddev_exec_time, "
        "total_exec_time, shared_blks_hit, shared_blks_dirtied, wal_bytes::float8 wal_bytes, wal_records "
        "FROM pg_stat_statements WHERE calls >= $1 ORDER BY total_exec_time DESC LIMIT 6", max(100, args.jobs // 1000))
    slow = [l for l in log_lines(args.pglog)[log_mark:] if "duration:" in l]
    n = args.jobs
    out = {"mode": mode, "round": r, "seconds": t1 - t0, "load": peers.load_average(),
           "pgCPUus": sampler.window_cpu(t0, t1, 1) / n * 1e6, "daemonCPUus": sampler.window_cpu(t0, t1, 2) / n * 1e6,
           "redisCPUus": (sampler.window_cpu(t0, t1, 3) or 0) / n * 1e6,
           "walBytesPerJob": (wal1["wal_bytes"] - wal0["wal_bytes"]) / n,
           "walRecordsPerJob": (wal1["wal_records"] - wal0["wal_records"]) / n,
           "statements": [dict(s) for s in stmts],
           "slowCount": len(slow), "slow": [l.strip()[:200] for l in slow][:20]}
    for s in out["statements"]:
        s["mean_exec_time"] = float(s["mean_exec_time"]); s["max_exec_time"] = float(s["max_exec_time"])
        s["stddev_exec_time"] = float(s["stddev_exec_time"]); s["total_exec_time"] = float(s["total_exec_time"])
    print(f"{mode} r{r}: {out['seconds']:.1f} s load {out['load']}; CPU µs/job pg {out['pgCPUus']:.0f} daemon "
          f"{out['daemonCPUus']:.0f} redis {out['redisCPUus']:.0f}; WAL {out['walBytesPerJob']:.0f} B "
          f"{out['walRecordsPerJob']:.2f} rec/job; slow(>= threshold) {out['slowCount']}", flush=True)
    for s in out["statements"]:
        print(f"    {s['calls']:>7} mean {s['mean_exec_time']:.2f} max {s['max_exec_time']:.1f} sd {s['stddev_exec_time']:.2f} ms"
              f" per job: {float(s['total_exec_time']) / n * 1e3:.1f} µs, hits {s['shared_blks_hit'] / n:.2f} dirtied {s['shared_blks_dirtied'] / n:.3f}"
              f" WAL {s['wal_bytes'] / n:.0f} B {s['wal_records'] / n:.2f} rec  {s['q'][:40]}", flush=True)
    return out


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--jobd", required=True)
    p.add_argument("--jobs", type=int, default=300_000)
    p.add_argument("--workers", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--limit", type=int, default=256)
    p.add_argument("--only", help="B sets the limit only on the index whose name contains this")
    p.add_argument("--pglog", required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--log", default="/dev/null")
    args = p.parse_args()
    db = await peers.connect()
    await db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    args.postmaster = await peers.postmaster_pid(db)
    args.redis_pid = peers.redis_pid()
    runs = []
    for r in range(1, args.rounds + 1):
        for mode in (["A", "B"] if r % 2 else ["B", "A"]):
            runs.append(await run(db, args, mode, r))
            with open(args.json, "w") as f:
                json.dump(runs, f, indent=1, default=str)
    for index in INDEXES:
        await db.execute(f"ALTER INDEX {index} RESET (gin_pending_list_limit)")
    await db.close()

asyncio.run(main())
