#!/usr/bin/env python3
"""The jobd fault-injection suite (driver). Run it through scripts/faults.

Drives real `jobd run` child processes against the private PostgreSQL and Redis of
scripts/servers, injects one kind of fault per scenario while jobs flow, then lets
things settle and applies the same check to every scenario:

  every job is completed or dead-lettered; none is leased, promoted or waiting;
  every dead job has its dead letter; every completed job has the ledger row of
  its completion (written by the same statement); and, counted with records the
  daemon does not keep itself: no job lost — every id the producers' statements
  returned is completed with a receipt — and duplicates — receipts beyond one per
  job — never above the jobs in flight at the faults.

The producers insert `probe` jobs (a `noop` that, once its work succeeded, commits
a receipt row to `fault_receipts` through connections of its own before it returns;
registered only with JOBD_TEST_FAULTS). A run whose completion never reached the
daemon's ledger still left its receipt; the ledger's own count of extra attempts is
kept beside it as a cross-check.

Python standard library only; PostgreSQL through psql, Redis through a tiny RESP
client; all traffic on 127.0.0.1. Every loop is bounded in count and in time.
"""

import argparse
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time

PG_BIN = "/usr/lib/postgresql/15/bin"
# The steady flow of ordinary jobs: 10 ms each, so that a fault always finds some
# attempts in flight (16 workers run ~1,500 of them a second at most).
FLOW_PAYLOAD = '{"sleep_ms": 10}'
T0 = time.time()


def say(message):
    print(f"[{time.time() - T0:7.1f}s] {message}", flush=True)


class SuiteError(Exception):
    pass


def wait_until(what, timeout, predicate, interval=0.2):
    """Polls `predicate` until true; raises SuiteError after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return True
        except SuiteError:
            pass
        time.sleep(interval)
    raise SuiteError(f"timed out after {timeout:.0f} s waiting for {what}")


# --------------------------------------------------------------------------------
# Servers: PostgreSQL via psql and pg_ctl, Redis via RESP and its pidfile.
# --------------------------------------------------------------------------------


class Servers:
    def __init__(self, directory):
        self.dir = directory
        env = {}
        with open(os.path.join(directory, "env")) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("export "):
                    continue
                for part in line[len("export "):].split():
                    key, _, value = part.partition("=")
                    env[key] = value
        self.pg_port = int(env["JOBD_PG_PORT"])
        self.redis_port = int(env["JOBD_REDIS_PORT"])
        self.pgdata = os.path.join(directory, "pg")
        self.is_root = os.geteuid() == 0

    # PostgreSQL --------------------------------------------------------------------

    def psql(self, sql, db="jobd", user="jobd", port=None, timeout=60):
        """Runs `sql`; returns rows as lists of strings. Raises SuiteError on failure."""
        command = [
            f"{PG_BIN}/psql", "-X", "-A", "-t", "-q", "-F", "\t", "-v", "ON_ERROR_STOP=1",
            "-h", "127.0.0.1", "-p", str(port or self.pg_port), "-U", user, "-d", db, "-c", sql,
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "PGCONNECT_TIMEOUT": "5"})
        except subprocess.TimeoutExpired:
            raise SuiteError(f"psql timed out: {sql[:80]}")
        if done.returncode != 0:
            raise SuiteError(f"psql failed ({done.stderr.strip()[:300]}): {sql[:80]}")
        return [line.split("\t") for line in done.stdout.splitlines() if line != ""]

    def scalar(self, sql, **kw):
        rows = self.psql(sql, **kw)
        return rows[0][0] if rows and rows[0] else None

    def retrying(self, sql, seconds=60, **kw):
        """psql that rides out a PostgreSQL restart."""
        deadline = time.time() + seconds
        while True:
            try:
                return self.psql(sql, **kw)
            except SuiteError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)

    def as_postgres(self, args, **kw):
        if self.is_root:
            args = ["runuser", "-u", "postgres", "--"] + args
        return subprocess.run(args, cwd="/", **kw)

    def pg_restart_immediate(self):
        """pg_ctl restart -m immediate: a crash and a crash recovery. The port and
        other options come back from postmaster.opts."""
        log = os.path.join(self.dir, "logs", "postgres.log")
        done = self.as_postgres(
            [f"{PG_BIN}/pg_ctl", "restart", "-m", "immediate", "-w", "-t", "60", "-s",
             "-D", self.pgdata, "-l", log],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=90)
        if done.returncode != 0:
            raise SuiteError(f"pg_ctl restart failed: {done.stderr.strip()}")

    # Redis -------------------------------------------------------------------------

    def redis(self, *args, timeout=10, port=None):
        return resp_command(port or self.redis_port, list(args), timeout)

    def redis_pid(self):
        with open(os.path.join(self.dir, "redis.pid")) as f:
            return int(f.read().strip())

    def redis_kill(self):
        pid = self.redis_pid()
        os.kill(pid, signal.SIGKILL)
        wait_until("redis to die", 10, lambda: not os.path.exists(f"/proc/{pid}"), 0.05)

    def redis_start(self):
        """Starts Redis on its old port, as scripts/servers does, plus DEBUG allowed
        from loopback (scenario 3 needs DEBUG SLEEP)."""
        pidfile = os.path.join(self.dir, "redis.pid")
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        subprocess.run(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", os.path.join(self.dir, "redis"), "--daemonize", "yes",
             "--pidfile", pidfile, "--logfile", os.path.join(self.dir, "logs", "redis.log"),
             "--enable-debug-command", "local"],
            check=True, stdout=subprocess.DEVNULL)

        def answers():
            try:
                return self.redis("PING", timeout=1) == "PONG"
            except OSError:
                return False
        wait_until("redis to answer", 30, answers, 0.1)


def resp_encode(args):
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
    return b"".join(out)


def resp_read(stream):
    line = stream.readline()
    if not line:
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise OSError(f"redis error: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = stream.read(n + 2)
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [resp_read(stream) for _ in range(n)]
    raise OSError(f"bad redis reply {line!r}")


def resp_command(port, args, timeout):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(resp_encode(args))
        with s.makefile("rb") as stream:
            return resp_read(stream)


# --------------------------------------------------------------------------------
# A TCP proxy the tests control: `cut()` makes the network silent (no byte moves in
# either direction, connections stay open, new ones are accepted and held), as a
# partition does; `restore()` lets everything flow again.
# --------------------------------------------------------------------------------


class Proxy:
    def __init__(self, target_port):
        self.target = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.silent = threading.Event()
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self):
        self.silent.set()

    def restore(self):
        self.silent.clear()

    def close(self):
        self.closed.set()
        self.listener.close()

    def _accept(self):
        while not self.closed.is_set():
            try:
                ready, _, _ = select.select([self.listener], [], [], 0.2)
                if ready:
                    client, _ = self.listener.accept()
                    threading.Thread(target=self._serve, args=(client,), daemon=True).start()
            except OSError:
                return

    def _serve(self, client):
        upstream = None
        try:
            while self.silent.is_set() and not self.closed.is_set():
                time.sleep(0.05)
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            upstream.settimeout(None)
            peers = {client: upstream, upstream: client}
            while not self.closed.is_set():
                if self.silent.is_set():
                    time.sleep(0.05)
                    continue
                ready, _, _ = select.select(list(peers), [], [], 0.2)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            if upstream:
                upstream.close()


# --------------------------------------------------------------------------------
# A `jobd run` under a systemd-like supervisor (Restart=always, RestartSec).
# --------------------------------------------------------------------------------


class Daemon:
    def __init__(self, name, binary, env, log_path, restart=True, restart_sec=0.25, max_restarts=400):
        self.name, self.binary, self.env, self.log_path = name, binary, env, log_path
        self.restart, self.restart_sec, self.max_restarts = restart, restart_sec, max_restarts
        self.lock = threading.Lock()
        self.proc = None
        self.starts = []        # (time, pid)
        self.exits = []         # (time, pid, returncode)
        self.events = []        # (time, pid, message, metadata)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._supervise, daemon=True)

    def start(self):
        self.thread.start()
        wait_until(f"{self.name} to start", 30, lambda: self.pid is not None, 0.05)
        return self

    @property
    def pid(self):
        with self.lock:
            return self.proc.pid if self.proc and self.proc.poll() is None else None

    @property
    def restarts(self):
        return max(0, len(self.starts) - 1)

    def _supervise(self):
        log = open(self.log_path, "a", buffering=1)
        while not self.stopping.is_set():
            proc = subprocess.Popen([self.binary, "run"], env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            with self.lock:
                self.proc = proc
                self.starts.append((time.time(), proc.pid))
            for raw in proc.stderr:
                now = time.time()
                line = raw.decode(errors="replace").rstrip("\n")
                log.write(f"{now:.3f} {proc.pid} {line}\n")
                try:
                    entry = json.loads(line)
                    with self.lock:
                        self.events.append((now, proc.pid, entry.get("message", ""), entry.get("metadata", {})))
                except ValueError:
                    pass
            code = proc.wait()
            with self.lock:
                self.exits.append((time.time(), proc.pid, code))
            if self.stopping.is_set() or not self.restart or self.restarts >= self.max_restarts:
                break
            self.stopping.wait(self.restart_sec)
        log.close()

    def signal(self, sig):
        pid = self.pid
        if pid:
            os.kill(pid, sig)
        return pid

    def kill_and_wait(self):
        """SIGKILL; returns once the process is gone (its leases are orphaned)."""
        with self.lock:
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return None
        proc.kill()
        proc.wait()
        return proc.pid

    def stop(self, timeout=60):
        self.stopping.set()
        with self.lock:
            proc = self.proc
        if proc and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.thread.join(timeout=10)

    def count(self, message, since=0.0, pid=None):
        with self.lock:
            return sum(1 for t, p, m, _ in self.events if m == message and t >= since and (pid is None or p == pid))

    def total(self, message, key, since=0.0):
        """The sum of a numeric metadata field over the log lines with `message`."""
        with self.lock:
            return sum(int(m.get(key, 0)) for t, _, msg, m in self.events if msg == message and t >= since)

    def first(self, messages, since=0.0, pid=None):
        with self.lock:
            times = [t for t, p, m, _ in self.events if m in messages and t >= since and (pid is None or p == pid)]
        return min(times) if times else None

    def rss(self):
        """(VmRSS, VmHWM) in MiB of the running process."""
        pid = self.pid
        values = {}
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in ("VmRSS", "VmHWM"):
                        values[key] = int(rest.split()[0]) / 1024
        except (OSError, TypeError):
            return None
        return values.get("VmRSS"), values.get("VmHWM")


# --------------------------------------------------------------------------------
# One scenario's world: a fresh database, a Redis prefix, daemons, a producer.
# --------------------------------------------------------------------------------


class Result:
    def __init__(self, number, title):
        self.number, self.title = number, title
        self.jobs = 0
        self.lost = None
        self.duplicates = None
        self.in_flight = None
        self.recovery = None
        self.checks = []       # (ok, text)
        self.notes = []
        self.skipped = None
        self.error = None
        self.seconds = 0.0

    def check(self, ok, text):
        self.checks.append((bool(ok), text))
        say(f"  {'ok  ' if ok else 'FAIL'} {text}")
        return ok

    @property
    def passed(self):
        return self.skipped is None and self.error is None and all(ok for ok, _ in self.checks)

    @property
    def status(self):
        if self.skipped:
            return "skipped"
        return "pass" if self.passed else "FAIL"


class World:
    DAEMON_ROLE = "jobd_fault_daemon"
    ENQUEUER_ROLE = "jobd_fault_enqueuer"

    def __init__(self, suite, name):
        self.suite, self.servers, self.name = suite, suite.servers, name
        self.db = f"faults_{name}"
        self.prefix = f"faults-{name}-{random.randrange(1 << 30)}"
        self.daemons = []
        self.producers = []
        self.proxies = []
        servers = self.servers
        servers.psql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        servers.psql(f"CREATE DATABASE {self.db}")
        migrate = subprocess.run([suite.binary, "migrate"], env=self.env(user="jobd"), capture_output=True, text=True,
                                 timeout=120)
        if migrate.returncode != 0:
            raise SuiteError(f"jobd migrate failed: {migrate.stderr.strip()}")
        # The probe's receipts: one row per successful run, no key, so that a second
        # run of a job is a second row. Written by the daemon role, read by the suite.
        self.sql("""
            CREATE TABLE public.fault_receipts (
                job_id  bigint      NOT NULL,
                attempt integer     NOT NULL,
                daemon  text        NOT NULL,
                at      timestamptz NOT NULL DEFAULT clock_timestamp())""")
        # Login roles for the daemon and a producer: members of the migration's
        # least-privilege groups, nothing more. The fault suite runs as they would.
        servers.psql(f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{self.DAEMON_ROLE}') THEN
                    CREATE ROLE {self.DAEMON_ROLE} LOGIN IN ROLE jobd_daemon;
                END IF;
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{self.ENQUEUER_ROLE}') THEN
                    CREATE ROLE {self.ENQUEUER_ROLE} LOGIN IN ROLE jobd_enqueuer;
                END IF;
            END $$""")
        self.sql(f"GRANT INSERT ON public.fault_receipts TO {self.DAEMON_ROLE}")

    def env(self, user=None, pg_port=None, redis_port=None, **settings):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "JOBD_DATABASE_URL":
                f"postgresql://{user or self.DAEMON_ROLE}@127.0.0.1:{pg_port or self.servers.pg_port}/{self.db}",
            "JOBD_REDIS_URL": f"redis://127.0.0.1:{redis_port or self.servers.redis_port}/0",
            "JOBD_REDIS_PREFIX": self.prefix,
            "JOBD_WORKERS": "16",
            "JOBD_LEASE": "5",
            "JOBD_MAINTENANCE_INTERVAL": "1",
            "JOBD_POLL_INTERVAL": "0.5",
            "JOBD_COMMAND_TIMEOUT": "3",
            "JOBD_SHUTDOWN_TIMEOUT": "5",
            "JOBD_RETRY_BASE_DELAY": "0.1",
            "JOBD_RETRY_MAX_DELAY": "1",
            "JOBD_MAX_RESCUES": "3",
            "JOBD_LOG_FORMAT": "json",
            "JOBD_LOG_LEVEL": "info",
            # The probe kind (receipts) without noop's abort switch; scenario 8 sets 1.
            "JOBD_TEST_FAULTS": "probe",
        }
        env.update({k: str(v) for k, v in settings.items()})
        return env

    def daemon(self, label, restart=True, **settings):
        path = os.path.join(self.suite.logdir, f"{self.name}-{label}.log")
        daemon = Daemon(f"{self.name}/{label}", self.suite.binary, self.env(**settings), path, restart=restart)
        self.daemons.append(daemon)
        return daemon.start()

    def sql(self, query, **kw):
        return self.servers.psql(query, db=self.db, **kw)

    def scalar(self, query, **kw):
        return self.servers.scalar(query, db=self.db, **kw)

    def int(self, query, **kw):
        value = self.servers.retrying(query, db=self.db, **kw)
        return int(value[0][0]) if value and value[0] and value[0][0] not in ("", None) else 0

    def produce(self, total, seconds, payload=None, batch=None):
        producer = Producer(self, total, seconds, payload, batch)
        self.producers.append(producer)
        return producer.start()

    def running(self, pid=None):
        """Attempts leased right now (by the daemon process `pid`, when given: its
        daemon id is hostname:pid:random)."""
        owner = f" AND leased_by LIKE '%:{int(pid)}:%'" if pid else ""
        return self.int(f"SELECT count(*) FROM queue.jobs WHERE state = 'running'{owner}")

    def close(self):
        for daemon in self.daemons:
            daemon.stop()
        for producer in self.producers:
            producer.stop()
        for proxy in self.proxies:
            proxy.close()

    # The one check every scenario ends with --------------------------------------

    def orphaned(self, pids):
        """Attempts the daemon processes `pids` held when they died or went silent, as
        the ledger finally records them: the rescuer's lease_expired end rows name
        the daemon that lost them. Exact, unlike a count taken at the fault: a claim
        statement already running on the server commits after its client is killed."""
        if not pids:
            return 0
        listed = ",".join(f"'{int(p)}'" for p in pids)
        return self.int(f"SELECT count(*) FROM queue.attempts WHERE event = 'end' AND outcome = 'lease_expired' "
                        f"AND split_part(daemon, ':', 2) IN ({listed})")

    def settle_and_check(self, result, in_flight, timeout):
        for producer in self.producers:
            producer.join(timeout)
        say("  settling: waiting until every job is completed or dead")
        try:
            wait_until("every job to finish", timeout,
                       lambda: self.int("SELECT count(*) FROM queue.jobs WHERE state NOT IN ('completed', 'dead')") == 0,
                       0.5)
        except SuiteError as error:
            result.notes.append(str(error))
        if callable(in_flight):
            in_flight = in_flight()
        row = self.servers.retrying("""
            SELECT count(*) + (SELECT count(*) FROM queue.attempts  -- completed jobs: their ledger rows
                                WHERE enqueued_at IS NOT NULL AND event = 'end' AND outcome = 'completed'),
                   count(*) FILTER (WHERE state NOT IN ('completed', 'dead')),
                   count(*) FILTER (WHERE state = 'running'),
                   count(*) FILTER (WHERE state = 'promoted'),
                   count(*) FILTER (WHERE state = 'dead'),
                   count(*) FILTER (WHERE state = 'dead' AND NOT EXISTS (
                       SELECT 1 FROM queue.dead_letters d WHERE d.job_id = j.id)),
                   count(*) FILTER (WHERE state = 'completed' AND NOT EXISTS (
                       SELECT 1 FROM queue.attempts a WHERE a.job_id = j.id AND a.attempt = j.attempt
                          AND a.event = 'end' AND a.outcome = 'completed'))
              FROM queue.jobs j""", db=self.db)[0]
        jobs, unfinished, leased, promoted, dead, dead_without_letter, completed_without_ledger = map(int, row)
        # Extra attempts: attempts beyond the first that no planned retry or snooze explains.
        # Each attempt is its one 'end' row (every attempt has ended once the jobs settled).
        extra, rerun_jobs = map(int, self.servers.retrying("""
            WITH per_job AS (
                SELECT job_id,
                       count(*) FILTER (WHERE event = 'end') AS starts,
                       count(*) FILTER (WHERE event = 'end' AND outcome IN ('retry', 'snooze')) AS planned
                  FROM queue.attempts GROUP BY job_id)
            SELECT coalesce(sum(greatest(starts - 1 - planned, 0)), 0),
                   count(*) FILTER (WHERE starts - 1 - planned > 0)
              FROM per_job""", db=self.db)[0])
        result.jobs, result.lost, result.duplicates, result.in_flight = jobs, unfinished, extra, in_flight
        result.check(unfinished == 0, f"{jobs} jobs: every one completed or dead-lettered ({unfinished} not)")
        self.check_receipts(result, in_flight, extra)
        result.check(leased == 0 and promoted == 0, f"none leased or stuck in promoted ({leased} running, {promoted} promoted)")
        result.check(dead_without_letter == 0, f"every dead job has its dead letter ({dead} dead)")
        result.check(completed_without_ledger == 0,
                     "every completed job has the ledger row its completion wrote in the same statement")
        result.check(extra <= in_flight,
                     f"cross-check, the daemon's ledger: {extra} extra attempts ({rerun_jobs} jobs) <= {in_flight} "
                     f"in flight at the faults")
        return dead

    def check_receipts(self, result, in_flight, ledger_extra):
        """Counts with what the daemon does not write itself: the ids the producers'
        statements returned, and the probe's receipts. lost = inserted ids not completed
        with a receipt; duplicates = receipts beyond one per job."""
        inserted = set()
        for producer in self.producers:
            inserted.update(producer.ids)
        if not inserted:
            result.notes.append("no producer: lost and duplicates are the final states and the ledger's count")
            return
        receipts = {int(job): int(n) for job, n in self.servers.retrying(
            "SELECT job_id, count(*) FROM public.fault_receipts GROUP BY job_id", db=self.db)}
        completed = {int(r[0]) for r in self.servers.retrying(
            "SELECT id FROM queue.completed_jobs WHERE kind = 'probe'", db=self.db)}
        lost = sorted(i for i in inserted if i not in completed or receipts.get(i, 0) == 0)
        duplicates = sum(max(0, n - 1) for n in receipts.values())
        doubled = sum(1 for n in receipts.values() if n > 1)
        completed_without_receipt = sum(1 for i in completed if receipts.get(i, 0) == 0)
        unknown = sum(1 for i in receipts if i not in inserted)
        result.lost, result.duplicates = len(lost), duplicates
        result.check(not lost, f"{len(inserted)} ids returned to the producers: every one completed with a probe "
                               f"receipt ({len(lost)} lost{': ' + ', '.join(map(str, lost[:10])) if lost else ''})")
        result.check(completed_without_receipt == 0,
                     f"every completed probe job has a receipt ({completed_without_receipt} without)")
        result.check(duplicates <= in_flight,
                     f"duplicates from the receipts: {duplicates} runs beyond one per job ({doubled} jobs) <= "
                     f"{in_flight} in flight at the faults (the ledger counted {ledger_extra})")
        if unknown:
            # An INSERT whose reply was lost (a restart) committed ids its producer never learnt.
            result.notes.append(f"{unknown} receipted jobs were inserted by a statement whose reply was lost")


class Producer:
    """Inserts `total` jobs in batches spread over `seconds`, as the enqueuer role,
    retrying a batch whose INSERT failed (PostgreSQL restarting)."""

    def __init__(self, world, total, seconds, payload, batch):
        self.world, self.total, self.seconds, self.payload = world, total, seconds, payload or FLOW_PAYLOAD
        self.batch = batch or max(1, min(2000, total // max(1, int(seconds * 10))))
        self.inserted = 0
        # The ids its statements returned: the jobs this producer knows it enqueued.
        self.ids = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        started = time.time()
        deadline = started + self.seconds + 300
        payload = self.payload.replace("'", "''")
        while self.inserted < self.total and not self.stopped.is_set() and time.time() < deadline:
            n = min(self.batch, self.total - self.inserted)
            try:
                # queue.enqueue() returns the ids; the enqueuer role may not SELECT
                # from queue.jobs, which INSERT ... RETURNING needs. One statement per batch.
                rows = self.world.sql(
                    f"SELECT queue.enqueue('probe', '{payload}'::jsonb) FROM generate_series(1, {n})",
                    user=World.ENQUEUER_ROLE, timeout=20)
                self.ids += [int(r[0]) for r in rows]
                self.inserted += n
            except SuiteError:
                time.sleep(0.3)
                continue
            due = started + self.seconds * self.inserted / self.total
            self.stopped.wait(max(0.0, due - time.time()))

    def join(self, timeout):
        self.thread.join(timeout)

    def stop(self):
        self.stopped.set()
        self.thread.join(5)

    @property
    def done(self):
        return not self.thread.is_alive()


# Finished jobs with their finish time: completed ones from the ledger (a completion deletes
# the job row), dead and cancelled ones from queue.jobs.
FINISHED = ("(SELECT finished_at, payload FROM queue.completed_jobs "
            "UNION ALL SELECT finished_at, payload FROM queue.jobs WHERE state <> 'completed') finished")


def first_completion_after(world, moment, timeout=60):
    """Seconds from `moment` (epoch) to the first job finished after it."""
    def found():
        return world.scalar(f"SELECT 1 FROM {FINISHED} WHERE finished_at > to_timestamp({moment}) LIMIT 1") == "1"
    try:
        wait_until("progress after a fault", timeout, found, 0.1)
    except SuiteError:
        return None
    value = world.servers.retrying(
        f"SELECT extract(epoch FROM min(finished_at)) FROM {FINISHED} WHERE finished_at > to_timestamp({moment})",
        db=world.db)[0][0]
    return float(value) - moment


# --------------------------------------------------------------------------------
# The scenarios.
# --------------------------------------------------------------------------------


def scenario_sigkill(suite, world, result):
    """SIGKILL the daemon every 0.5-3 s while jobs flow; the supervisor restarts it."""
    total = 50_000 if suite.full else 6_000
    flow = 60 if suite.full else 12
    daemon = world.daemon("a")
    producer = world.produce(total, flow)
    rng = random.Random(suite.seed)
    kills, killed, in_flight = [], [], 0
    deadline = time.time() + flow + 120
    while (not producer.done or world.int("SELECT count(*) FROM queue.jobs WHERE state NOT IN ('completed', 'dead')") > 0) \
            and time.time() < deadline and len(kills) < 400:
        time.sleep(rng.uniform(0.5, 3.0))
        if producer.done and len(kills) >= 3 and world.int(
                "SELECT count(*) FROM queue.jobs WHERE state NOT IN ('completed', 'dead')") < 500:
            break
        pid = daemon.kill_and_wait()
        if pid is None:
            continue
        moment = time.time()
        orphaned = world.running(pid)  # leases held by the process that no longer exists
        kills.append(moment)
        killed.append(pid)
        in_flight += orphaned
    say(f"  {len(kills)} SIGKILLs, {daemon.restarts} restarts by the supervisor, {in_flight} leases orphaned "
        f"(counted right after each kill)")
    world.settle_and_check(result, lambda: max(in_flight, world.orphaned(killed)), 180)
    result.notes.append(f"attempts the killed processes held: {world.orphaned(killed)} per the ledger (rescued), "
                        f"{in_flight} counted right after the kills; the larger is the bound (a statement already "
                        f"running on the server commits after its client died: a claim adds one, a completion removes one)")
    recoveries = [r for r in (first_completion_after(world, k, 30) for k in kills) if r is not None]
    result.recovery = max(recoveries) if recoveries else None
    result.check(len(recoveries) == len(kills), f"progress resumed after every kill (worst {result.recovery or 0:.1f} s)")
    poisoned = world.int("SELECT count(*) FROM queue.dead_letters WHERE reason = 'poison'")
    result.check(world.int("SELECT count(*) FROM queue.dead_letters WHERE reason <> 'poison'") == 0,
                 "no dead letters, except poison: a job killed while running alone after two earlier kills")
    solo = world.int("SELECT count(*) FROM queue.attempts WHERE event = 'solo'")
    result.notes.append(f"{len(kills)} kills; {solo} attempts of jobs in flight at two kills ran alone; "
                        f"{poisoned} dead-lettered as poison")


def scenario_flushall(suite, world, result):
    """Redis FLUSHALL every 10 s (3 s short) during a run."""
    total = 50_000 if suite.full else 6_000
    flow = 45 if suite.full else 12
    every = 10 if suite.full else 3
    world.daemon("a")
    producer = world.produce(total, flow)
    flushes, in_flight, recoveries = [], 0, []
    bound = 1 + 5  # poll interval and the promoter's grace, plus the lease: the promise
    due = "SELECT count(*) FROM queue.jobs WHERE state IN ('available', 'retryable') AND run_at <= now()"
    while not producer.done and len(flushes) < 100:
        time.sleep(every)
        waiting = world.int(due)  # at most this many ids were in the lists
        world.servers.redis("FLUSHALL")
        moment = time.time()
        flushes.append(moment)
        in_flight += waiting
        # Ids in Redis were lost with it: the promoter, seeing its lists emptied, must
        # push every job still waiting again, so each job due before the flush is
        # claimed within the bound.
        check = (f"SELECT count(*) FROM queue.jobs WHERE state IN ('available', 'retryable') "
                 f"AND run_at <= to_timestamp({moment})")
        try:
            wait_until("jobs due before the flush to be claimed", 30, lambda: world.int(check) == 0, 0.1)
            recoveries.append(time.time() - moment)
        except SuiteError:
            recoveries.append(float("inf"))
    say(f"  {len(flushes)} FLUSHALLs; at most {in_flight} dispatched ids lost with them")
    world.settle_and_check(result, in_flight, 180)
    result.recovery = max(recoveries) if recoveries else None
    result.check(flushes and result.recovery <= bound + 0.5,
                 f"every job due before a flush claimed within {result.recovery:.1f} s (bound: 1 s + lease 5 s)")
    result.check(result.duplicates == 0, "a flush caused no duplicate run (claims take only waiting jobs)")


def scenario_redis(suite, world, result):
    """Redis killed and restarted; DEBUG SLEEP 5; CLIENT PAUSE 5000."""
    total = 30_000 if suite.full else 8_000
    flow = 50 if suite.full else 35  # longer than the three faults take
    daemon = world.daemon("a")
    pid = daemon.pid
    producer = world.produce(total, flow)
    recoveries, in_flight = [], 0
    time.sleep(3)
    # What Redis may lose: running jobs, and the due waiting ones whose ids it may hold.
    dispatched = ("SELECT count(*) FROM queue.jobs WHERE state = 'running' "
                  "OR (state IN ('available', 'retryable') AND run_at <= now())")
    # 1. Killed, down for 3 s, restarted empty.
    in_flight += world.int(dispatched)
    world.servers.redis_kill()
    say("  redis killed")
    time.sleep(3)
    world.servers.redis_start()
    moment = time.time()
    say("  redis restarted (empty)")
    recoveries.append(("restart", first_completion_after(world, moment)))
    time.sleep(2)
    # 2. DEBUG SLEEP 5: the server stops answering anyone for 5 s.
    in_flight += world.int(dispatched)
    world.servers.redis("DEBUG", "SLEEP", "5", timeout=15)
    moment = time.time()
    say("  redis slept 5 s")
    recoveries.append(("debug sleep", first_completion_after(world, moment)))
    time.sleep(2)
    # 3. CLIENT PAUSE 5000: every client's commands wait 5 s.
    in_flight += world.int(dispatched)
    world.servers.redis("CLIENT", "PAUSE", "5000", "ALL")
    time.sleep(5)
    moment = time.time()
    say("  redis clients paused for 5 s")
    recoveries.append(("client pause", first_completion_after(world, moment)))
    world.settle_and_check(result, in_flight, 180)
    result.check(daemon.pid == pid and daemon.restarts == 0, f"the daemon survived all three (pid {pid} unchanged)")
    result.check(all(r is not None for _, r in recoveries), "it caught up after each: " +
                 ", ".join(f"{name} {r:.1f} s" if r is not None else f"{name} never" for name, r in recoveries))
    result.recovery = max((r for _, r in recoveries if r is not None), default=None)
    result.check(daemon.count("redis lost its data; dispatch rebuilt from postgres") >= 1,
                 "the restart was detected by the epoch and dispatch rebuilt from Postgres")


def scenario_postgres(suite, world, result):
    """pg_ctl restart -m immediate and pg_terminate_backend on the daemon's sessions."""
    total = 30_000 if suite.full else 5_000
    # Longer than the faults take (a crash recovery under load can take 10 s), so
    # that every fault meets jobs flowing and its recovery can be measured.
    flow = 80 if suite.full else 40
    faults = 8 if suite.full else 4
    daemon = world.daemon("a", JOBD_POLL_INTERVAL=5)
    pid = daemon.pid
    producer = world.produce(total, flow)
    samples = Sampler(world)
    in_flight, recoveries = 0, []
    for n in range(faults):
        time.sleep(random.Random(suite.seed + n).uniform(2.5, 4.5))
        if producer.done:
            break
        before = world.running()
        if n % 2 == 0:
            world.servers.pg_restart_immediate()
            kind = "pg_ctl restart -m immediate"
        else:
            world.servers.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               f"WHERE usename = '{World.DAEMON_ROLE}' AND datname = '{world.db}'")
            kind = "pg_terminate_backend x5"
        moment = time.time()
        # Claims committed just before the fault show up after it.
        in_flight += max(before, world.int("SELECT count(*) FROM queue.jobs WHERE state = 'running' "
                                           f"AND started_at <= to_timestamp({moment})"))
        say(f"  {kind}")
        recoveries.append(first_completion_after(world, moment))
    producer.join(flow + 120)
    world.settle_and_check(result, in_flight, 180)
    samples.stop()
    result.recovery = max((r for r in recoveries if r is not None), default=None)
    result.check(len(recoveries) == faults and all(r is not None for r in recoveries),
                 f"progress resumed after each of the {len(recoveries)} faults (worst {result.recovery or 0:.1f} s)")
    result.check(daemon.pid == pid and daemon.restarts == 0, f"the daemon survived every fault (pid {pid} unchanged)")
    # The daemon's whole connection budget, one session per named connection: the queue
    # loops (listener, promoter, maintenance) + claim and complete per worker pool (one pool
    # here) + the tier services (scheduler, prune, trim, rollup) + the three tier pools
    # of JOBD_TIER_CONNECTIONS (default 4) each + the probe kind's 4 receipt connections
    # (JOBD_TEST_FAULTS only).
    pool = 3 + 2 * 1 + 4 + 3 * 4 + 4
    # A budget check is only as good as its samples: one that saw nothing (every sample
    # failed, or none found the daemon's sessions) proves nothing and fails.
    result.check(samples.count >= max(20, samples.attempts // 2) and samples.pg_max > 0 and samples.redis_max > 0,
                 f"the session samples saw the daemon: {samples.count} of {samples.attempts} samples succeeded "
                 f"(at least half and 20 needed), up to {samples.pg_max} sessions and {samples.redis_max} redis "
                 f"connections seen")
    result.check(samples.pg_max <= pool and samples.pg_per_name_max <= 1,
                 f"postgres sessions never above the pool: max {samples.pg_max} (budget {pool}: 3 loops + 2 per "
                 f"worker pool + 4 tier services + 3 tier pools of 4 + 4 probe), max {samples.pg_per_name_max} per connection name, "
                 f"over {samples.count} samples")
    result.check(samples.redis_max <= 3, f"redis connections never above 2 + 1 per pool = 3: max {samples.redis_max}")
    # LISTEN is issued again after every reconnect: with a 5 s poll, only NOTIFY
    # explains a job that starts within a second of its INSERT.
    time.sleep(2)
    world.sql("INSERT INTO queue.jobs (kind) VALUES ('noop')", user=World.ENQUEUER_ROLE)
    wait_until("the probe job", 15, lambda: world.int("SELECT count(*) FROM queue.jobs WHERE state <> 'completed'") == 0)
    latency = float(world.scalar(
        "SELECT extract(epoch FROM started_at - created_at) FROM queue.completed_jobs ORDER BY id DESC LIMIT 1"))
    result.check(latency < 1.0, f"LISTEN survived the restarts: a new job started {latency * 1000:.0f} ms after its INSERT "
                                f"(poll interval 5 s)")
    result.jobs += 1


class Sampler:
    """Samples the daemon's Postgres sessions and Redis connections every 0.25 s."""

    def __init__(self, world):
        self.world = world
        self.pg_max = self.pg_per_name_max = self.redis_max = self.count = self.attempts = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.wait(0.25):
            self.attempts += 1
            try:
                rows = self.world.servers.psql(
                    f"SELECT application_name, count(*) FROM pg_stat_activity "
                    f"WHERE usename = '{World.DAEMON_ROLE}' AND datname = '{self.world.db}' GROUP BY 1", timeout=5)
                self.pg_max = max(self.pg_max, sum(int(r[1]) for r in rows))
                self.pg_per_name_max = max([self.pg_per_name_max] + [int(r[1]) for r in rows])
                clients = self.world.servers.redis("CLIENT", "LIST", timeout=5)
                names = [part[5:] for line in clients.splitlines() for part in line.split() if part.startswith("name=")]
                self.redis_max = max(self.redis_max, sum(1 for n in names if n in ("promoter", "maintenance", "fetch-shared")))
                self.count += 1
            except (SuiteError, OSError):
                continue

    def stop(self):
        self.stopped.set()
        self.thread.join(10)


def scenario_network(suite, world, result):
    """Network cut to Postgres and Redis for 30 s (8 s short) through a TCP proxy."""
    cut_for = 30 if suite.full else 10
    pg_proxy, redis_proxy = Proxy(world.servers.pg_port), Proxy(world.servers.redis_port)
    world.proxies += [pg_proxy, redis_proxy]
    a = world.daemon("a", pg_port=pg_proxy.port, redis_port=redis_proxy.port)
    a_pid = a.pid
    producer = world.produce(20_000 if suite.full else 4_000, cut_for + 20)
    time.sleep(3)
    # Slow jobs so that the daemon is in the middle of some when the network goes.
    world.sql("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{\"sleep_ms\": 1500}' FROM generate_series(1, 12)",
              user=World.ENQUEUER_ROLE)
    wait_until("slow jobs running on A", 20, lambda: world.int(
        "SELECT count(*) FROM queue.jobs WHERE state = 'running' AND payload ? 'sleep_ms'") >= 8, 0.05)
    pg_proxy.cut()
    redis_proxy.cut()
    cut_at = time.time()
    taken = world.sql("SELECT id, attempt FROM queue.jobs WHERE state = 'running'")
    in_flight = len(taken)
    say(f"  network to A cut with {in_flight} attempts in flight; daemon B (direct) takes over")
    b = world.daemon("b")
    time.sleep(cut_for)
    pg_proxy.restore()
    redis_proxy.restore()
    restored_at = time.time()
    say("  network restored")
    world.settle_and_check(result, lambda: max(in_flight, world.orphaned([a_pid])), 180)
    errors = ("loop pass failed; retrying", "fetch failed; retrying", "writing completions failed; retrying",
              "lease heartbeat failed", "postgres statement timed out", "redis connection dropped")
    found = a.first(errors, since=cut_at, pid=a_pid)
    bound = 5 + 3 + 1  # listener probe + command timeout + slack
    detected = (found - cut_at) if found else None
    result.check(detected is not None and detected <= bound,
                 f"A noticed the dead connections {detected or -1:.1f} s into the cut (bound: probe 5 s + command timeout 3 s)")
    refused = a.count("stale completion refused", since=cut_at)
    result.check(refused >= 1, f"A's completions for attempts B took over were refused and logged: {refused}")
    result.check(a.pid == a_pid and a.restarts == 0, f"A survived the cut (pid {a_pid} unchanged)")
    a_id = world.scalar(f"SELECT id FROM queue.daemons WHERE pid = {a_pid} LIMIT 1")
    resumed = world.scalar(
        f"SELECT extract(epoch FROM min(s)) FROM (SELECT started_at AS s FROM queue.attempts "
        f"WHERE event = 'end' AND daemon = '{a_id}' UNION ALL SELECT started_at FROM queue.jobs "
        f"WHERE state = 'running' AND leased_by = '{a_id}') started "
        f"WHERE s > to_timestamp({restored_at})") if a_id else None
    result.recovery = (float(resumed) - restored_at) if resumed else None
    result.check(result.recovery is not None, f"A claimed work again {result.recovery or -1:.1f} s after the network came back")
    result.notes.append(f"cut {cut_for} s; detection {detected or -1:.1f} s; {refused} stale completions refused")
    producer.join(1)


def scenario_sigstop(suite, world, result):
    """SIGSTOP a daemon for longer than its lease; a second daemon runs its jobs;
    SIGCONT: the old attempts' completions are refused."""
    a = world.daemon("a")
    a_pid = a.pid
    world.daemon("b")
    world.produce(10_000 if suite.full else 2_000, 10)
    world.sql("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{\"sleep_ms\": 2000}' FROM generate_series(1, 24)",
              user=World.ENQUEUER_ROLE)
    a_id = None

    def a_running_slow():
        nonlocal a_id
        a_id = world.scalar(f"SELECT id FROM queue.daemons WHERE pid = {a_pid} LIMIT 1")
        return a_id and world.int(f"SELECT count(*) FROM queue.jobs WHERE state = 'running' AND leased_by = '{a_id}' "
                                  f"AND payload ? 'sleep_ms'") >= 4
    wait_until("A running slow jobs", 20, a_running_slow, 0.05)
    a.signal(signal.SIGSTOP)
    stopped_at = time.time()
    frozen = world.sql(f"SELECT id, attempt FROM queue.jobs WHERE state = 'running' AND leased_by = '{a_id}'")
    in_flight = len(frozen)
    ids = ",".join(r[0] for r in frozen) or "0"
    say(f"  A stopped (SIGSTOP) holding {in_flight} attempts")
    values = ",".join(f"({r[0]}, {r[1]})" for r in frozen) or "(0, 0)"
    # Until every job A held is finished without A: re-run by B once A's lease expired
    # (5 s), or completed by the statement A had in flight when it stopped (the server
    # finishes a statement whatever its client does).
    finished = f"SELECT count(*) FROM queue.completed_jobs WHERE id IN ({ids})"
    wait_until("A's jobs to be finished without A", 90, lambda: world.int(finished) == in_flight, 0.2)
    result.recovery = time.time() - stopped_at
    rerun = world.int(f"SELECT count(*) FROM queue.completed_jobs j JOIN (VALUES {values}) AS f(id, attempt) ON j.id = f.id "
                      f"WHERE j.attempt > f.attempt")
    # Taken before the signal: A's overdue heartbeat can log within a millisecond of it.
    continued_at = time.time()
    a.signal(signal.SIGCONT)
    say(f"  all {in_flight} finished after {result.recovery:.1f} s ({rerun} re-run by B); A continued (SIGCONT)")
    # A claim in flight at the SIGSTOP may have committed on the server while A's
    # client timed out waiting: A never ran those jobs, and says how many it may have
    # taken ("fetch failed; retrying", unconfirmed_jobs).
    def a_answered():
        return (a.count("stale completion refused", since=continued_at)
                + a.total("fetch failed; retrying", "unconfirmed_jobs", since=continued_at)) >= rerun
    wait_until("A's stale completions", 30, a_answered, 0.2)
    world.settle_and_check(result, lambda: max(in_flight, world.orphaned([a_pid])), 120)
    refused = a.count("stale completion refused", since=continued_at)
    unconfirmed = a.total("fetch failed; retrying", "unconfirmed_jobs", since=continued_at)
    result.check(rerun >= 1 and refused >= 1 and refused + unconfirmed >= rerun,
                 f"every completion of an attempt B re-ran was refused and logged: {refused} refused, {rerun} re-run by B, "
                 f"{in_flight - rerun} completed by the write A had in flight, "
                 f"{unconfirmed} taken by a claim A timed out on (never run by A)")
    result.check(a.count("lease lost; the attempt's completion will be refused", since=continued_at) >= 1,
                 "A's first heartbeat after SIGCONT reported its leases lost")
    result.check(a.pid == a_pid, "A lives on (pid unchanged)")


HOSTILE = [
    # (label, kind, payload SQL expression, expected reason; None: PostgreSQL refuses it at enqueue)
    ("over JOBD_MAX_PAYLOAD_BYTES (64 KiB), under the table's 1 MiB", "noop",
     "jsonb_build_object('blob', repeat('x', 200000))", "payload_too_large"),
    ("60 KB, under the limit, unknown field", "noop", "jsonb_build_object('pad', repeat('y', 60000))", "payload_invalid"),
    ("nested 5,000 deep", "noop", "('{\"a\": ' || repeat('[', 5000) || repeat(']', 5000) || '}')::jsonb",
     "payload_too_deep"),
    ("nested 65 deep (one over the limit)", "noop", "('{\"a\": ' || repeat('[', 64) || repeat(']', 64) || '}')::jsonb",
     "payload_too_deep"),
    ("wrong type for its kind", "noop", "'{\"sleep_ms\": \"soon\"}'::jsonb", "payload_invalid"),
    ("unknown field", "noop", "'{\"sleep\": 5}'::jsonb", "payload_invalid"),
    ("SQL-shaped value", "noop", "'{\"sleep_ms\": \"1; DROP TABLE queue.jobs; --\"}'::jsonb", "payload_invalid"),
    ("SQL-shaped key", "noop", "jsonb_build_object('''); DELETE FROM queue.jobs; --', 1)", "payload_invalid"),
    ("SQL-shaped kind", "noop'); DROP TABLE queue.jobs; --", "'{}'::jsonb", "unknown_kind"),
    ("number out of range", "noop", "'{\"sleep_ms\": 1e308}'::jsonb", "payload_invalid"),
    ("3,000 keys", "noop", "(SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 3000) g)",
     "payload_invalid"),
    ("{\"abort\": true} without JOBD_TEST_FAULTS=1", "noop", "'{\"abort\": true}'::jsonb", "payload_invalid"),
    ("not an object", "noop", "'[1, 2]'::jsonb", None),
    ("a \\u0000 escape", "noop", "'{\"a\": \"\\u0000\"}'::jsonb", None),
    ("a lone surrogate", "noop", "'{\"a\": \"\\ud800\"}'::jsonb", None),
    ("invalid UTF-8", "noop", "convert_from('\\x7b2261223a22ff227d'::bytea, 'UTF8')::jsonb", None),
    ("over the table's 1 MiB", "noop", "jsonb_build_object('blob', repeat('x', 1100000))", None),
]


def sql_text(text):
    return text.replace("'", "''")


def scenario_hostile(suite, world, result):
    """Hostile payloads: dead-lettered with reason codes; pid unchanged; RSS bounded."""
    copies = 20 if suite.full else 5
    daemon = world.daemon("a", JOBD_MAX_PAYLOAD_BYTES=65536)
    pid = daemon.pid
    time.sleep(1)
    baseline = (daemon.rss() or (0, 0))[0]
    producer = world.produce(20_000 if suite.full else 3_000, 10)
    time.sleep(1)
    accepted, refused = [], []
    for label, kind, expression, reason in HOSTILE:
        before = world.int("SELECT coalesce(max(id), 0) FROM queue.jobs")
        statement = (f"INSERT INTO queue.jobs (kind, payload) SELECT '{sql_text(kind)}', {expression} "
                     f"FROM generate_series(1, {copies})")
        try:
            world.sql(statement, user=World.ENQUEUER_ROLE)
        except SuiteError as error:
            refused.append((label, reason, str(error)))
            continue
        # The producer inserts probe jobs meanwhile; these are the others.
        ids = world.sql(f"SELECT id FROM queue.jobs WHERE id > {before} "
                        f"AND NOT (kind = 'probe' AND payload = '{FLOW_PAYLOAD}'::jsonb)")
        accepted.append((label, reason, [int(r[0]) for r in ids]))
    deadline = time.time() + 120
    while (not producer.done or world.int("SELECT count(*) FROM queue.jobs WHERE state NOT IN ('completed', 'dead')") > 0) \
            and time.time() < deadline:
        time.sleep(0.2)
    hwm = (daemon.rss() or (0, 0))[1]
    world.settle_and_check(result, 0, 60)
    for label, reason, error in refused:
        detail = (error.split("ERROR:")[-1] if "ERROR:" in error else error).strip().splitlines()[0][:70]
        result.check(reason is None, f"refused at enqueue: {label} ({detail})")
    expected = 0
    for label, reason, ids in accepted:
        listed = ",".join(map(str, ids)) or "0"
        rows = world.sql(f"SELECT d.reason, count(*), max(d.attempts) FROM queue.dead_letters d "
                         f"WHERE d.job_id IN ({listed}) GROUP BY 1")
        expected += len(ids)
        ok = reason is not None and len(ids) == copies and len(rows) == 1 and rows[0][0] == reason \
            and int(rows[0][1]) == copies and rows[0][2] == "1"
        result.check(ok, f"{label}: {len(ids)} dead-lettered on the first attempt as {rows[0][0] if rows else '-'}")
    result.check(world.int("SELECT count(*) FROM queue.dead_letters") == expected,
                 f"only the {expected} hostile jobs are dead; every other job completed")
    result.check(daemon.pid == pid and daemon.restarts == 0, f"no crash, no restart (pid {pid} unchanged)")
    result.check(world.scalar("SELECT to_regclass('queue.jobs')::text") == "queue.jobs", "queue.jobs is still there")
    result.check(hwm < 512, f"memory bounded: RSS {baseline:.0f} MiB at start, peak {hwm:.0f} MiB (bound 512 MiB)")
    result.notes.append(f"{len(accepted)} hostile shapes x {copies} dead-lettered on their first attempt, "
                        f"{len(refused)} refused by PostgreSQL at enqueue; RSS {baseline:.0f} -> peak {hwm:.0f} MiB")


def scenario_abort(suite, world, result):
    """A handler that aborts the process: dead-lettered after K rescues; others flow."""
    k = 3
    daemon = world.daemon("a", JOBD_TEST_FAULTS=1, JOBD_MAX_RESCUES=k)
    producer = world.produce(10_000 if suite.full else 3_000, 20 if suite.full else 12)
    time.sleep(2)
    world.sql("INSERT INTO queue.jobs (kind, payload) VALUES ('noop', '{\"abort\": true}')", user=World.ENQUEUER_ROLE)
    crash_times, crashed, in_flight, seen = [], [], 0, 0
    deadline = time.time() + 120
    while time.time() < deadline:
        exits = list(daemon.exits)
        for when, pid, _ in exits[seen:]:
            crash_times.append(when)
            crashed.append(pid)
            in_flight += world.running(pid)  # leases the dead process held
        seen = len(exits)
        if world.int("SELECT count(*) FROM queue.jobs WHERE payload ? 'abort' AND state = 'dead'") == 1:
            break
        time.sleep(0.05)
    dead_at = time.time()
    world.settle_and_check(result, lambda: max(in_flight, world.orphaned(crashed)), 120)
    row = world.sql("SELECT d.reason, j.rescues, (SELECT count(*) FROM queue.attempts a WHERE a.job_id = j.id "
                    "AND a.event = 'solo') FROM queue.jobs j JOIN queue.dead_letters d ON d.job_id = j.id "
                    "WHERE j.payload ? 'abort'")
    result.check(row and row[0][0] == "poison" and int(row[0][1]) == k,
                 f"the aborting job was dead-lettered as poison after K={k} rescues "
                 f"({row[0][1] if row else '-'} rescues, {row[0][2] if row else '-'} of its attempts ran alone)")
    result.check(daemon.restarts == k, f"the process died exactly K times: {daemon.restarts} restarts")
    codes = sorted({code for _, _, code in daemon.exits if code != 0})
    result.check(codes == [-signal.SIGABRT], f"every crash was SIGABRT ({codes})")
    others_dead = world.int("SELECT count(*) FROM queue.jobs WHERE state = 'dead' AND NOT payload ? 'abort'")
    result.check(others_dead == 0, f"no bystander was dead-lettered ({others_dead})")
    if len(crash_times) >= 2:
        during = world.int(f"SELECT count(*) FROM {FINISHED} WHERE finished_at BETWEEN to_timestamp({crash_times[0]}) "
                           f"AND to_timestamp({crash_times[-1]}) AND NOT payload ? 'abort'")
        result.check(during > 0, f"other jobs kept flowing between the first and the last crash ({during} completed)")
    if crash_times:
        result.recovery = dead_at - crash_times[0]
        result.notes.append(f"first crash to dead letter: {result.recovery:.1f} s (K={k}, lease 5 s)")
    producer.join(1)


class NotifySink:
    """scripts/notify-sink as a child process: loopback HTTP and SMTP receivers that
    record every request and mail (one JSON line each) and fail on request."""

    def __init__(self, directory, secret):
        self.ready = os.path.join(directory, "sink-ready.json")
        self.record = os.path.join(directory, "sink-record.jsonl")
        for path in (self.ready, self.record):
            if os.path.exists(path):
                os.remove(path)
        sink = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notify-sink")
        self.proc = subprocess.Popen([sys.executable, sink, "--ready", self.ready, "--record", self.record,
                                      "--webhook-secret", secret], stdin=subprocess.DEVNULL)
        wait_until("the notify sink", 15, lambda: os.path.exists(self.ready), 0.05)
        with open(self.ready) as f:
            ports = json.load(f)
        self.http_port, self.smtp_port = ports["http_port"], ports["smtp_port"]

    def receipts(self):
        """Idempotency key -> receipt times (Unix seconds) of every request and mail."""
        seen = {}
        with open(self.record) as f:
            for line in f:
                entry = json.loads(line)
                key = entry.get("headers", {}).get("idempotency-key")
                if key:
                    seen.setdefault(key, []).append(entry["received_at"])
        return seen

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def scenario_sinks(suite, world, result):
    """Webhook and SMTP receivers that answer 500, hang or reset: retried with backoff,
    dead-lettered at max attempts; nothing marked sent is ever sent again, across a
    SIGKILL of the daemon in the middle of it."""
    secret = "fault-suite-webhook-secret"
    sink = NotifySink(suite.logdir, secret)
    world.proxies.append(sink)  # closed with the world
    n = 50 if suite.full else 10
    max_attempts, timeout = 4, 2
    hook = f"http://127.0.0.1:{sink.http_port}"
    # category: (count, channel, destination for key k, end state, notification status, tries, sink receipts)
    # Tries and receipts (a number, or an inclusive range) hold for every job the kill
    # did not interrupt.
    plan = {
        "ok":          (10 * n, "webhook", lambda k: f"{hook}/ok/{k}", "completed", "sent", 1, 1),
        "500x2":       (2 * n, "webhook", lambda k: f"{hook}/f500/{k}?status=500&times=2", "completed", "sent", 3, 3),
        # libcurl sends a request again, once, on a fresh connection when a reused
        # one dies before any answer (it cannot tell a reset after reading from a
        # stale keep-alive connection); the request carries its Idempotency-Key. So a
        # reset try reaches the receiver once or twice, and may end in that resend.
        "reset-once":  (n, "webhook", lambda k: f"{hook}/freset/{k}?reset=1&times=1", "completed", "sent", (1, 2), 2),
        "hang-once":   (n, "webhook", lambda k: f"{hook}/fhang/{k}?delay={timeout + 3}&times=1", "completed", "sent", 2, 2),
        "retry-after": (n, "webhook", lambda k: f"{hook}/snooze/{k}?status=503&retry_after=1&times=1",
                        "completed", "sent", 2, 2),
        "500":         (n, "webhook", lambda k: f"{hook}/d500/{k}?status=500", "dead", "failed", max_attempts, max_attempts),
        "hang":        (n, "webhook", lambda k: f"{hook}/dhang/{k}?delay={timeout + 6}", "dead", "failed",
                        max_attempts, max_attempts),
        "reset":       (n, "webhook", lambda k: f"{hook}/dreset/{k}?reset=1", "dead", "failed", max_attempts,
                        (max_attempts, 2 * max_attempts)),
        "400":         (n, "webhook", lambda k: f"{hook}/r400/{k}?status=400", "dead", "failed", 1, 1),
        "mail-ok":     (3 * n, "email", lambda k: f"{k}@example.com", "completed", "sent", 1, 1),
        "mail-451":    (n, "email", lambda k: f"tempfail-{k}@example.com", "dead", "failed", max_attempts, 0),
        "mail-hang":   (max(1, n // 2), "email", lambda k: f"hang-{k}@example.com", "dead", "failed", max_attempts, 0),
        "mail-reset":  (max(1, n // 2), "email", lambda k: f"reset-{k}@example.com", "dead", "failed", max_attempts, 0),
        "mail-550":    (n, "email", lambda k: f"reject-{k}@example.com", "dead", "failed", 1, 0),
    }
    rows, category_of = [], {}
    for category, (count, channel, to, *_rest) in plan.items():
        for i in range(count):
            key = f"{category}-{i}"
            category_of[key] = category
            payload = {"channel": channel, "to": to(key), "idempotency_key": key,
                       "body": {"n": i} if channel == "webhook" else f"fault suite mail {i}"}
            if channel == "email":
                payload["subject"] = "fault suite"
            rows.append(f"('notification.send', '{sql_text(json.dumps(payload))}'::jsonb, {max_attempts})")
    random.Random(suite.seed).shuffle(rows)
    daemon = world.daemon(
        "a", JOBD_WEBHOOK_SECRET=secret, JOBD_SMTP_URL=f"smtp://127.0.0.1:{sink.smtp_port}",
        JOBD_SMTP_FROM="jobd@example.com", JOBD_SMTP_STARTTLS="off", JOBD_NOTIFY_TIMEOUT=timeout,
        JOBD_NOTIFY_CONNECT_TIMEOUT=1, JOBD_NOTIFY_RATE="off",
        JOBD_NOTIFY_ALLOWED_NETWORKS="127.0.0.0/8",
        # Every try reaches the sink: the breaker would turn most tries at a dead
        # receiver into snoozes (its own tests cover it), and this scenario counts tries.
        JOBD_NOTIFY_BREAKER_FAILURES=10000)
    started = time.time()
    for first in range(0, len(rows), 200):  # one psql argument may hold at most 128 KiB
        world.sql("INSERT INTO queue.jobs (kind, payload, max_attempts) VALUES " + ", ".join(rows[first:first + 200]),
                  user=World.ENQUEUER_ROLE)
    total = len(rows)
    # One SIGKILL while sends are on the wire (hung receivers guarantee some).
    wait_until("sends in flight", 60, lambda: world.int(
        "SELECT count(*) FROM notifications.notifications WHERE status = 'sending'") >= 3, 0.05)
    time.sleep(0.5)
    sending = world.int("SELECT count(*) FROM notifications.notifications WHERE status = 'sending'")
    killed = daemon.kill_and_wait()
    killed_at = time.time()
    running = world.running(killed)
    say(f"  SIGKILL with {running} jobs leased and {sending} notifications being sent; the supervisor restarts it")
    world.settle_and_check(result, lambda: max(running, world.orphaned([killed])), 300)
    settled = time.time()
    result.recovery = first_completion_after(world, killed_at, 60)
    receipts = sink.receipts()
    state = {}
    for key, job_state, status, tries, trail, sent_at, orphaned in world.sql("""
            SELECT n.idempotency_key, j.state, n.status, n.tries,
                   (SELECT count(*) FROM notifications.attempts a WHERE a.notification_id = n.id),
                   coalesce(extract(epoch FROM n.sent_at)::text, ''),
                   EXISTS (SELECT 1 FROM queue.attempts q WHERE q.job_id = j.id AND q.event = 'end'
                             AND q.outcome = 'lease_expired')
              FROM notifications.notifications n
              JOIN (SELECT id, state, payload FROM queue.jobs WHERE state <> 'completed'
                    UNION ALL SELECT id, 'completed', payload FROM queue.completed_jobs) j
                ON j.payload ->> 'idempotency_key' = n.idempotency_key"""):
        state[key] = (job_state, status, int(tries), int(trail), float(sent_at) if sent_at else None, orphaned == "t")
    result.check(len(state) == total, f"{total} notification jobs, {len(state)} notification rows")
    interrupted = sorted(k for k, v in state.items() if v[5])
    wrong, extra_receipts, after_sent = [], 0, 0
    for key, category in category_of.items():
        _, _, _, job_end, status_end, tries_end, receipts_end = plan[category]
        job_state, status, tries, trail, sent_at, orphaned = state.get(key, (None, None, 0, 0, None, False))
        tries_lo, tries_hi = tries_end if isinstance(tries_end, tuple) else (tries_end, tries_end)
        got_lo, got_hi = receipts_end if isinstance(receipts_end, tuple) else (receipts_end, receipts_end)
        got = receipts.get(key, [])
        if sent_at is not None:
            after_sent += sum(1 for t in got if t > sent_at)
        if orphaned:
            # The killed run may have sent without recording it: one extra try and receipt at most.
            extra_receipts += max(0, len(got) - got_hi)
            if job_state != job_end or len(got) > got_hi + 1 or tries > tries_hi + 1:
                wrong.append(f"{key} (interrupted): {job_state}/{status}, {tries} tries, {len(got)} receipts")
        elif (job_state, status, trail) != (job_end, status_end, tries) or not tries_lo <= tries <= tries_hi \
                or not got_lo <= len(got) <= got_hi:
            wrong.append(f"{key}: {job_state}/{status}, {tries} tries, {trail} audit rows, {len(got)} receipts "
                         f"(expected {job_end}/{status_end}, tries {tries_end} each with its audit row, "
                         f"receipts {receipts_end})")
    for line in wrong[:10]:
        say(f"    {line}")
    result.check(not wrong, f"every notification ended as its receiver made it: sent after its transient failures, "
                            f"failed at max_attempts={max_attempts} or at once when refused; tries, audit rows and "
                            f"receipts exact ({len(wrong)} not; {len(interrupted)} interrupted by the kill)")
    result.check(after_sent == 0, f"nothing marked sent reached a receiver again ({after_sent} receipts after sent_at)")
    in_flight = max(running, world.orphaned([killed]))
    result.check(extra_receipts <= in_flight,
                 f"receipts beyond the plan: {extra_receipts} <= {in_flight} jobs in flight at the kill")
    stuck = world.int("SELECT count(*) FROM notifications.notifications WHERE status IN ('pending', 'sending')")
    result.check(stuck == 0, f"no notification left pending or sending ({stuck})")
    reasons = dict((r[0], int(r[1])) for r in world.sql(
        "SELECT reason || '/' || (payload ->> 'channel'), count(*) FROM queue.dead_letters GROUP BY 1 ORDER BY 1"))
    # Backoff: the gap between tries at a receiver that fails at once is at least
    # the jittered floor of the delay, (1 - 0.5) * 0.1 s * 2^(n-1), growing with n.
    gaps = world.sql("""
        SELECT a.try, min(extract(epoch FROM a.started_at - p.started_at)),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.started_at - p.started_at))
          FROM notifications.attempts a
          JOIN notifications.attempts p ON p.notification_id = a.notification_id AND p.try = a.try - 1
          JOIN notifications.notifications n ON n.id = a.notification_id
         WHERE n.idempotency_key LIKE '500-%' GROUP BY 1 ORDER BY 1""")
    floors_ok = all(float(low) >= 0.5 * min(1.0, 0.1 * 2 ** (int(t) - 2)) - 0.005 for t, low, _ in gaps)
    result.check(gaps and floors_ok, "backoff between tries at a failing receiver: " + ", ".join(
        f"try {t} after {float(med) * 1000:.0f} ms (min {float(low) * 1000:.0f})" for t, low, med in gaps))
    result.check(daemon.restarts == 1, f"one restart, after the kill ({daemon.restarts})")
    result.notes.append(f"{total} notifications ("
                        f"{', '.join(f'{k} {v[0]}' for k, v in plan.items())}); dead letters by reason/channel: "
                        f"{', '.join(f'{k} {v}' for k, v in reasons.items())}")
    result.notes.append(f"SIGKILL with {running} leased, {sending} mid-send; {len(interrupted)} interrupted jobs, "
                        f"{extra_receipts} extra receipts; settled {settled - started:.0f} s after the insert")


class SMTPSink:
    """scripts/smtp-sink as a child process: a loopback SMTP server that accepts every
    message and records `time, recipient, Message-ID` per message (read after close)."""

    def __init__(self, directory):
        self.ready = os.path.join(directory, "smtp-sink-ready.json")
        self.record = os.path.join(directory, "smtp-sink-record.tsv")
        for path in (self.ready, self.record):
            if os.path.exists(path):
                os.remove(path)
        sink = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp-sink")
        self.proc = subprocess.Popen([sys.executable, sink, "--ready", self.ready, "--record", self.record],
                                     stdin=subprocess.DEVNULL)
        wait_until("the SMTP sink", 15, lambda: os.path.exists(self.ready), 0.05)
        with open(self.ready) as f:
            self.smtp_port = json.load(f)["smtp_port"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def messages(self):
        """(recipient, message-id) per message received; the sink must be closed first
        (it flushes its record at exit)."""
        self.close()
        found = []
        if os.path.exists(self.record):
            with open(self.record) as f:
                for line in f:
                    fields = line.rstrip("\n").split("\t")
                    if len(fields) >= 3:
                        found.append((fields[1].lower(), fields[2]))
        return found


def scenario_campaign(suite, world, result):
    """A campaign through pause, SIGKILL, resume, SIGKILL, ... one every 2 s (a kill every
    4 s, alternately while paused and while sending), to a loopback SMTP sink.

    Every subscribed contact is delivered (the sink received it and its delivery is
    `sent`); nothing reaches a contact not subscribed (2% unsubscribed or bounced
    before scheduling); duplicates (copies the sink received beyond one per
    recipient) <= the sends in flight at the kills, counted exactly: the deliveries
    still `sending` under a claim taken before a kill (claim start <= the kill's
    moment: the only daemon was dead then, so they are the killed process's claims),
    distinct over all kills. Each such claim may have been sent before the kill and
    is sent again once its claim window passes; every duplicated recipient must be
    one of them. The scenario ends that window (120 s in the daemon) right after each
    kill by setting those claims' sending_until to now(): what the window's passing
    does, sooner; the daemon is not changed."""
    if not suite.full and not ({"campaign", "11"} & suite.selected):
        result.skipped = "full run, or by name (scripts/faults --short campaign): minutes, not seconds"
        return
    total = 50_000 if suite.full else 1_000
    # The faults come every 2 s, so the campaign must outlast a whole cycle (pause, kill,
    # resume, kill: 8 s) whatever the daemon's speed: the short run's 1,000 contacts are
    # paced by the account's own limit to 100 messages/s (about 10 s of sending); the full
    # run's 50,000 go at full speed (tens of seconds).
    rate = "NULL" if suite.full else "100"
    sink = SMTPSink(suite.logdir)
    world.proxies.append(sink)  # closed with the world
    workspace = world.scalar("INSERT INTO oltp.workspaces (name) VALUES ('faults') RETURNING id")
    account = world.scalar(f"""
        INSERT INTO oltp.email_accounts (workspace_id, name, from_address, relay_url, starttls, unsubscribe_url,
                                         messages_per_second)
        VALUES ({workspace}, 'faults', 'news@faults.test', 'smtp://127.0.0.1:{sink.smtp_port}', 'off',
                'https://faults.test/unsubscribe', {rate}) RETURNING id""")
    list_id = world.scalar(f"INSERT INTO oltp.lists (workspace_id, name) VALUES ({workspace}, 'all') RETURNING id")
    world.sql(f"""
        INSERT INTO oltp.contacts (workspace_id, address, name, status)
        SELECT {workspace}, 'c' || i || '@faults.test', 'Contact ' || i,
               CASE i % 100 WHEN 50 THEN 'unsubscribed' WHEN 99 THEN 'bounced' ELSE 'subscribed' END
          FROM generate_series(1, {total}) i""", timeout=300)
    world.sql(f"""
        INSERT INTO oltp.list_members (list_id, contact_id, workspace_id)
        SELECT {list_id}, id, {workspace} FROM oltp.contacts WHERE workspace_id = {workspace}""", timeout=300)
    campaign = world.scalar(f"""
        INSERT INTO oltp.campaigns (workspace_id, name, account_id, list_id, subject, text_template, batch_size)
        VALUES ({workspace}, 'faults', {account}, {list_id}, 'Hello {{{{name}}}}', 'Hi {{{{name}}}}', 50) RETURNING id""")
    subscribed = {r[0].lower() for r in world.sql(
        f"SELECT address FROM oltp.contacts WHERE workspace_id = {workspace} AND status = 'subscribed'")}
    suppressed = {r[0].lower() for r in world.sql(
        f"SELECT address FROM oltp.contacts WHERE workspace_id = {workspace} AND status <> 'subscribed'")}
    daemon = world.daemon("a")
    world.sql(f"UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = {campaign}")
    started = time.time()

    def status():
        return world.servers.retrying(f"SELECT status FROM oltp.campaigns WHERE id = {campaign}", db=world.db)[0][0]

    orphans = {}  # (contact_id, claim token) -> address, claims the killed processes held
    events = {"pause": 0, "resume": 0, "kill": 0}
    cycle = ["pause", "kill", "resume", "kill"]
    tick = 0
    deadline = started + (900 if suite.full else 240)
    while time.time() < deadline:
        time.sleep(2)
        current = status()
        if current == "sent" and tick >= len(cycle):
            break
        event = cycle[tick % len(cycle)]
        tick += 1
        if event == "pause" and current in ("scheduled", "sending"):
            world.sql(f"UPDATE oltp.campaigns SET status = 'paused' WHERE id = {campaign} "
                      f"AND status IN ('scheduled', 'sending')")
            events["pause"] += 1
        elif event == "resume" and current == "paused":
            world.sql(f"UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = {campaign} AND status = 'paused'")
            events["resume"] += 1
        elif event == "kill":
            if daemon.kill_and_wait() is None:
                continue
            moment = time.time()
            events["kill"] += 1
            rows = world.servers.retrying(f"""
                UPDATE oltp.deliveries d SET sending_until = now()
                  FROM oltp.contacts k
                 WHERE d.campaign_id = {campaign} AND d.state = 'sending' AND k.id = d.contact_id
                   AND d.updated_at <= to_timestamp({moment})
                RETURNING d.contact_id, d.claim_token, k.address""", db=world.db)
            for contact, token, address in rows:
                orphans[(contact, token)] = address.lower()
    if status() == "paused":
        world.sql(f"UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = {campaign} AND status = 'paused'")
        events["resume"] += 1
    say(f"  {events['pause']} pauses, {events['resume']} resumes, {events['kill']} SIGKILLs "
        f"({daemon.restarts} restarts); {len(orphans)} sends in flight at the kills")
    try:
        wait_until("the campaign to be sent", 300 if suite.full else 120, lambda: status() == "sent", 0.5)
    except SuiteError as error:
        result.notes.append(str(error))
    states = dict(world.servers.retrying(
        f"SELECT state, count(*) FROM oltp.deliveries WHERE campaign_id = {campaign} GROUP BY state", db=world.db))
    states = {k: int(v) for k, v in states.items()}
    messages = sink.messages()
    copies = {}
    for address, _ in messages:
        copies[address] = copies.get(address, 0) + 1
    missing = sorted(subscribed - set(copies))
    to_suppressed = sum(n for a, n in copies.items() if a in suppressed)
    unknown = sum(n for a, n in copies.items() if a not in subscribed and a not in suppressed)
    duplicates = sum(n - 1 for n in copies.values())
    doubled = {a for a, n in copies.items() if n > 1}
    in_flight = set(orphans.values())
    result.jobs = total
    result.lost, result.duplicates, result.in_flight = len(missing), duplicates, len(orphans)
    result.check(status() == "sent", f"the campaign is sent ({states})")
    result.check(not missing and states.get("sent", 0) == len(subscribed),
                 f"{len(subscribed)} subscribed contacts: every one received it and is recorded sent "
                 f"({len(missing)} missing{': ' + ', '.join(missing[:5]) if missing else ''}; "
                 f"{states.get('sent', 0)} sent)")
    result.check(to_suppressed == 0 and states.get("suppressed", 0) == len(suppressed),
                 f"none of the {len(suppressed)} unsubscribed or bounced contacts received anything "
                 f"({to_suppressed} messages; {states.get('suppressed', 0)} deliveries suppressed)")
    result.check(unknown == 0, f"no message to an address not on the list ({unknown})")
    result.check(duplicates <= len(orphans),
                 f"duplicates: {duplicates} copies beyond one per recipient ({len(doubled)} recipients) <= "
                 f"{len(orphans)} sends in flight at the kills")
    result.check(doubled <= in_flight, f"every duplicated recipient was in flight at a kill "
                                       f"({len(doubled - in_flight)} not)")
    result.check(events["kill"] >= 2 and events["pause"] >= 1 and events["resume"] >= 1,
                 f"the faults happened: {events}")
    result.notes.append(f"{total} contacts, {len(messages)} messages received in {time.time() - started:.0f} s; "
                        f"events {events}; {len(orphans)} claims orphaned by the kills, {duplicates} duplicates")


def scenario_soak(suite, world, result):
    """1M jobs with a long REPEATABLE READ transaction held open for part of it."""
    if not suite.full:
        result.skipped = "full run only (1M jobs)"
        return
    total = 1_000_000
    for _ in range(10):
        world.sql("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 100000)", user=World.ENQUEUER_ROLE,
                  timeout=300)
    world.sql("ANALYZE queue.jobs")
    daemon = world.daemon("a", JOBD_WORKERS=32)
    started = time.time()
    windows = []  # (t, completed, dead tuples)
    fetches = []  # (t, ms of the promoter's fetch shape)
    holder = None
    held = released = None
    horizon_held = False
    # Opened at 20 % and held for 60 s or until 70 % is done, whichever comes first:
    # released with work left, so that the rate after the release (and after the
    # first autovacuum pass that follows it: the naptime is a minute) is measured over
    # a stretch of the run however fast the queue drains while the snapshot lives.
    hold_for = 60
    release_at = total * 0.70
    deadline = started + 3600

    def stats():
        done = world.int("SELECT count(*) FROM queue.completed_jobs")
        dead = world.int("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'queue.jobs'::regclass")
        return done, dead
    while time.time() < deadline:
        time.sleep(5)
        done, dead = stats()
        windows.append((time.time(), done, dead))
        # What the promoter's fetch costs now: its shape, without the row locks.
        plan = world.sql("EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM queue.jobs "
                         "WHERE state IN ('available', 'retryable') AND priority = 'normal' AND run_at <= now() "
                         "ORDER BY run_at, id LIMIT 1000")
        fetch_ms = next((float(r[0].split(":")[1].split()[0]) for r in plan if r[0].startswith("Execution Time")), 0.0)
        fetches.append((time.time(), fetch_ms))
        say(f"  {done} completed, {dead} dead tuples in queue.jobs, promoter fetch {fetch_ms:.1f} ms")
        if holder is None and done >= total * 0.20:
            # A reporting client's long REPEATABLE READ snapshot: the xmin horizon stops.
            holder = subprocess.Popen(
                [f"{PG_BIN}/psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(world.servers.pg_port), "-U", "jobd",
                 "-d", world.db, "-c", "BEGIN ISOLATION LEVEL REPEATABLE READ",
                 "-c", "SELECT count(*) FROM queue.jobs", "-c", f"SELECT pg_sleep({hold_for})", "-c", "COMMIT"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            held = time.time()
            say(f"  REPEATABLE READ transaction opened for {hold_for} s")
            # Evidence that it really holds the xmin horizon back.
            try:
                wait_until("the snapshot to hold the xmin horizon", 10, lambda: world.int(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_xmin IS NOT NULL "
                    "AND query LIKE 'SELECT pg_sleep%'") == 1, 0.2)
                horizon_held = True
            except SuiteError:
                horizon_held = False
        if holder is not None and released is None and holder.poll() is None and done >= release_at:
            world.sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'")
            holder.wait(30)
        if holder is not None and released is None and holder.poll() is not None:
            released = time.time()
            say("  REPEATABLE READ transaction committed")
        if done >= total and released is not None:
            break
    if holder and holder.poll() is None:
        holder.kill()
    finished = time.time()
    peak_dead = max(w[2] for w in windows)
    # Dead tuples drain once the snapshot is gone (autovacuum naptime is 1 min).
    drained_at = None
    try:
        wait_until("dead tuples to drain", 600, lambda: stats()[1] <= max(50_000, peak_dead // 10), 5)
        drained_at = time.time()
    except SuiteError:
        pass
    final_dead = stats()[1]
    world.settle_and_check(result, 0, 60)

    def rate(t0, t1, from_last_sample=False):
        points = [w for w in windows if t0 <= w[0] <= t1]
        # After the release the count is taken from the last sample before it: a backlog
        # that drains within one sampling interval of the release still gives a rate.
        earlier = [w for w in windows if w[0] < t0]
        if from_last_sample and earlier:
            points = [earlier[-1]] + points
        if len(points) < 2:
            return 0.0
        return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])
    def worst_fetch(t0, t1):
        return max((ms for t, ms in fetches if t0 <= t <= t1), default=0.0)
    result.notes.append(f"promoter fetch (1,000 due jobs) took at most {worst_fetch(started, held):.0f} ms before the "
                        f"snapshot, {worst_fetch(held, released):.0f} ms while it was held, "
                        f"{worst_fetch(released + 60, finished):.0f} ms from a minute after it ended")
    # Recovery is judged once autovacuum has removed what the snapshot kept: from the
    # first sample after the release with the dead tuples down to a tenth of the
    # peak (or 50,000), to the end. "Before" is the 20 s before the snapshot opened.
    threshold = max(50_000, peak_dead // 10)
    vacuumed = next((t for t, _, dead in windows if released and t > released and dead <= threshold), None)
    before = rate(held - 20, held)
    during = rate(held, released)
    until_vacuum = rate(released, vacuumed or finished, from_last_sample=True)
    # When the run ends before that stretch is 10 s long, the whole time after the
    # release counts (the dead tuples are still there: a harder test, not an easier one).
    after_from = vacuumed if vacuumed and finished - vacuumed >= 10 else released
    after = rate(after_from, finished, from_last_sample=after_from == released) if released else None
    result.notes.append(f"throughput in the 20 s before the snapshot {before:.0f}/s, during it {during:.0f}/s, "
                        f"after its release until autovacuum had run {until_vacuum:.0f}/s, "
                        + (f"after that {after:.0f}/s; " if after_from == vacuumed else
                           "the run ended before autovacuum ran or within 10 s of it; ") +
                        f"dead tuples peak {peak_dead}, {final_dead} after draining")
    result.check(horizon_held, "the REPEATABLE READ snapshot held the xmin horizon (pg_stat_activity.backend_xmin)")
    at_release = max((w[2] for w in windows if released and w[0] <= released + 1), default=0)
    result.notes.append(f"dead tuples in queue.jobs: {at_release} when the snapshot ended (vacuum could not remove "
                        f"them while it lived), peak {peak_dead}, {final_dead} once autovacuum ran")
    result.check(drained_at is not None, f"dead tuples drained after the snapshot ended ({peak_dead} -> {final_dead})")
    result.check(after is not None and after >= 0.5 * before,
                 f"throughput recovered: {f'{after:.0f}' if after is not None else '-'}/s "
                 f"{'once autovacuum had run' if after_from == vacuumed else 'after the release'} vs "
                 f"{before:.0f}/s before the snapshot ({during:.0f}/s during, {until_vacuum:.0f}/s until the vacuum)")
    result.recovery = (drained_at - released) if drained_at else None


SCENARIOS = [
    (1, "sigkill", "SIGKILL every 0.5-3 s, supervisor restarts", scenario_sigkill),
    (2, "flushall", "Redis FLUSHALL every 10 s (3 s short)", scenario_flushall),
    (3, "redis", "Redis kill+restart, DEBUG SLEEP 5, CLIENT PAUSE 5 s", scenario_redis),
    (4, "postgres", "pg_ctl restart -m immediate / pg_terminate_backend", scenario_postgres),
    (5, "network", "network cut to Postgres and Redis (30 s; 10 s short)", scenario_network),
    (6, "sigstop", "SIGSTOP past the lease, second daemon, SIGCONT", scenario_sigstop),
    (7, "hostile", "hostile payloads", scenario_hostile),
    (8, "abort", "handler aborts the process (poison pill)", scenario_abort),
    (9, "sinks", "webhook/SMTP sinks fail", scenario_sinks),
    (10, "soak", "soak: 1M jobs, long REPEATABLE READ", scenario_soak),
    (11, "campaign", "campaign: pause, SIGKILL, resume, SIGKILL every 2 s", scenario_campaign),
]


class Suite:
    def __init__(self, args):
        self.servers = Servers(args.servers)
        self.binary = args.jobd
        self.full = args.mode == "full"
        self.seed = args.seed
        self.logdir = args.logdir
        self.selected = set()
        os.makedirs(self.logdir, exist_ok=True)

    def run(self, selected):
        self.selected = selected
        results = []
        for number, name, title, body in SCENARIOS:
            if selected and name not in selected and str(number) not in selected:
                continue
            result = Result(number, title)
            say(f"scenario {number} ({name}): {title}")
            started = time.time()
            world = None
            try:
                world = World(self, name)
                body(self, world, result)
            except SuiteError as error:
                result.error = str(error)
                say(f"  ERROR {error}")
            except Exception as error:  # a bug in the driver must not hide the other scenarios
                result.error = f"{type(error).__name__}: {error}"
                say(f"  ERROR {result.error}")
            finally:
                if world:
                    world.close()
            result.seconds = time.time() - started
            say(f"  -> {result.status} in {result.seconds:.0f} s"
                + (f" ({result.skipped})" if result.skipped else ""))
            results.append(result)
        return results


def fmt(value, unit=""):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}{unit}"
    return f"{value}{unit}"


def table(results, mode):
    lines = [
        f"| # | scenario ({mode}) | result | jobs | lost | duplicates | in flight at fault | recovery |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        status = r.status if not r.skipped else f"skipped: {r.skipped}"
        if r.error:
            status = f"ERROR: {r.error}"
        lines.append(f"| {r.number} | {r.title} | {status} | {fmt(r.jobs) if not r.skipped else '–'} | "
                     f"{fmt(r.lost)} | {fmt(r.duplicates)} | {fmt(r.in_flight)} | {fmt(r.recovery, ' s')} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", required=True, help="DIR of scripts/servers start DIR")
    parser.add_argument("--jobd", required=True, help="the jobd binary")
    parser.add_argument("--mode", choices=["short", "full"], default="short")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--logdir", required=True)
    parser.add_argument("--report", help="write the summary (markdown) here too")
    parser.add_argument("scenarios", nargs="*", help="names or numbers; default all")
    args = parser.parse_args()

    # SIGTERM (CI timeouts, kill) unwinds like Ctrl-C: each scenario's `finally`
    # stops its daemons and proxies, so no `jobd run` outlives the suite.
    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)
    suite = Suite(args)
    say(f"fault suite ({args.mode}), jobd {args.jobd}, seed {args.seed}, logs in {args.logdir}")
    results = suite.run(set(args.scenarios))
    summary = table(results, args.mode)
    notes = "\n".join(f"- {r.number}: {note}" for r in results for note in r.notes)
    failed = [f"- {r.number}: {text}" for r in results for ok, text in r.checks if not ok]
    print("\n" + summary + ("\n\nNotes:\n" + notes if notes else "") + ("\n\nFailed checks:\n" + "\n".join(failed) if failed else ""))
    if args.report:
        with open(args.report, "w") as f:
            f.write(summary + "\n\n" + notes + "\n")
            if failed:
                f.write("\nFailed checks:\n" + "\n".join(failed) + "\n")
            f.write("\nChecks:\n" + "\n".join(
                f"- {r.number}: {'ok' if ok else 'FAIL'} {text}" for r in results for ok, text in r.checks) + "\n")
    bad = [r for r in results if not r.passed and not r.skipped]
    print(f"\nfaults: {sum(r.passed for r in results)} passed, {len(bad)} failed, "
          f"{sum(1 for r in results if r.skipped)} skipped")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
