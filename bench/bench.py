#!/usr/bin/python3
"""streamlog benchmarks: streamlog next to a plain table and PgQ, same server, same run.

Started by bench/run.sh, which provides the server through PGHOST, PGPORT,
PGUSER and PGDATABASE.  Sections:

  a. single-row transactions at 1, 4 and 16 clients (pgbench)
  b. set-based produce of M records in one transaction, per value size,
     and per compression type
  c. SQL read throughput (streamlog.read vs a plain-table seq scan)
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Driver, driver_arguments, log, fmt_int, fmt_mb, fmt_ratio, verdict, table  # noqa: E402

MB = 1_000_000
COMPRESSIONS = ("lz4", "zstd", "snappy", "gzip")

TARGET_SINGLE = 0.9     # single-row produce / plain INSERT, same client count
# set-based produce / INSERT ... SELECT, by value size: at 1 KiB both write
# about the value bytes to the WAL, so the WAL bounds both alike
TARGET_SET = {100: 2.5, 1024: 1.0}
TARGET_READ = 1_000_000  # records/s through streamlog.read
TARGET_READ_VS_SCAN = 0.5  # paged read() summing values / plain seq scan summing them
READ_PAGE = 1000         # records per streamlog.read() call when paging (its default)


class ServerGone(Exception):
    """The server stopped answering during a measurement."""


class Bench(Driver):
    # a crash is what the server log is read for here: its cause names the
    # incident under the results
    LOG_KEEP = ("terminated by signal", "was terminated", "exited with exit code",
                "PANIC", "server process", "received immediate shutdown")
    LOG_SKIP = ()

    def __init__(self, args):
        super().__init__(args)
        self.secs = 5 if self.quick else 15
        self.m = 200_000 if self.quick else 1_000_000
        self.m_small = 50_000 if self.quick else 200_000
        self.reps = 1 if self.quick else 3
        self.clients = (1, 4, 16)
        self.sizes = (100, 1024)
        self.tmp = tempfile.mkdtemp(prefix="streamlog-bench-scripts.")
        # first offset of each value size in bench_set partition 0 (set by b)
        self.set_base = {}
        # server crashes survived, reported under the results
        self.incidents = []

    # -- helpers ---------------------------------------------------------

    def timed_tx(self, sql, params=None):
        """Run one statement in its own transaction; returns (result,
        seconds including COMMIT, seconds spent in COMMIT)."""
        with self.conn.cursor() as cur:
            t0 = time.perf_counter()
            cur.execute("BEGIN")
            cur.execute(sql, params)
            res = cur.fetchone()[0] if cur.description else cur.rowcount
            t1 = time.perf_counter()
            cur.execute("COMMIT")
            t2 = time.perf_counter()
        return res, t2 - t0, t2 - t1

    # -- surviving a server crash ----------------------------------------

    def attempt(self, what, fn):
        """Run fn(); if the server crashed meanwhile (or was killed from
        outside), wait for it to come back and run fn() again, at most twice."""
        for _ in range(3):
            try:
                return fn()
            except (psycopg.OperationalError, ServerGone) as e:
                if not self.recover(what, e):
                    raise
        raise RuntimeError(f"{what}: the server crashed three times; giving up")

    def alive(self):
        try:
            self.q("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def postmaster_running(self):
        try:
            with open(os.path.join(self.args.data_dir, "postmaster.pid")) as f:
                os.kill(int(f.readline()), 0)
            return True
        except (OSError, ValueError, TypeError):
            return False

    def recover(self, what, err):
        if self.alive():
            return False
        if len(self.incidents) >= 5:
            return False
        log(f"the server went away during {what}: {str(err).strip().splitlines()[0] if str(err).strip() else err}")
        deadline = time.time() + 120
        restarted = False
        while time.time() < deadline:
            try:
                self.conn.close()
                self.conn = psycopg.connect(autocommit=True)
                break
            except psycopg.OperationalError:
                pass
            if not restarted and self.args.data_dir and not self.postmaster_running() \
                    and time.time() > deadline - 110:
                log("postmaster is gone; starting it again")
                pg_ctl = os.path.join(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"), "pg_ctl")
                cmd = [pg_ctl, "-D", self.args.data_dir, "-w", "-t", "60", "start"]
                if self.args.server_log:
                    cmd[1:1] = ["-l", self.args.server_log]
                if os.geteuid() == 0:
                    cmd = ["runuser", "-u", "postgres", "--"] + cmd
                subprocess.run(cmd, capture_output=True)
                restarted = True
            time.sleep(1)
        else:
            return False
        time.sleep(self.pause)
        cause = self.server_log_news()
        cause = next((c for c in cause if "terminated by signal" in c or "PANIC" in c),
                     cause[0] if cause else ("postmaster restarted" if restarted else "no log line"))
        cause = re.sub(r"^\S+ \S+ \S+ \[\d+\] ", "", cause)
        self.incidents.append(f"{what}: server crashed ({cause}); measurement repeated")
        log(f"server is back; repeating {what}")
        return True

    # -- setup -----------------------------------------------------------

    def setup(self):
        log("setting up extensions, topics, queue and tables")
        self.q("CREATE EXTENSION IF NOT EXISTS streamlog")
        self.q("CREATE EXTENSION IF NOT EXISTS pgq")
        self.q("SELECT streamlog.create_topic('bench_single', 4)")
        self.q("SELECT streamlog.create_topic('bench_set', 1)")
        self.q("""SELECT streamlog.create_topic('bench_c_uncompressed', 1, '{"compression.type": "uncompressed"}')""")
        for c in COMPRESSIONS:
            self.q("SELECT streamlog.create_topic(%s, 1, jsonb_build_object('compression.type', %s::text))",
                   (f"bench_c_{c}", c))
        self.q("SELECT pgq.create_queue('bench_q')")
        self.q("CREATE TABLE plain_events (id bigserial PRIMARY KEY, k text, v text)")
        self.q("CREATE TABLE plain (id bigserial PRIMARY KEY, k text, v text)")
        self.q("CREATE TABLE plain_heap (k text, v text)")

    def facts(self):
        settings = self.pg_settings(
            "max_wal_size", "checkpoint_timeout", "synchronous_commit", "fsync", "wal_level",
            "full_page_writes", "max_parallel_workers_per_gather", "streamlog.batch_bytes")
        exts = dict(self.q("SELECT extname, extversion FROM pg_extension WHERE extname IN ('streamlog', 'pgq')"))

        facts = self.emit_head("streamlog benchmark", load_at_start=False)
        self.emit(f"  extensions  streamlog {exts.get('streamlog', '?')} (git {facts['rev']}), "
                  f"pgq {exts.get('pgq', '?')}")
        self.emit(f"  settings    shared_buffers={self.shared_buffers_mb()}MB max_wal_size={settings['max_wal_size']} "
                  f"checkpoint_timeout={settings['checkpoint_timeout']} "
                  f"synchronous_commit={settings['synchronous_commit']} fsync={settings['fsync']} "
                  f"full_page_writes={settings['full_page_writes']} wal_level={settings['wal_level']} "
                  f"max_parallel_workers_per_gather={settings['max_parallel_workers_per_gather']} "
                  f"streamlog.batch_bytes={settings['streamlog.batch_bytes']}")
        self.emit(f"  sizes       single-row {self.secs} s per run; set-based M={fmt_int(self.m)}; "
                  f"compression M={fmt_int(self.m_small)}; MB = 10^6 bytes of value payload")
        self.emit()

    # -- a. single-row transactions -------------------------------------

    def pgbench(self, name, body, clients):
        script = os.path.join(self.tmp, f"{name}.sql")
        with open(script, "w") as f:
            f.write("\\set id random(1, 1000000)\n" + body + "\n")
        cmd = ["pgbench", "-n", "-c", str(clients), "-j", str(min(clients, 2)),
               "-T", str(self.secs), "-f", script]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            try:
                self.q("SELECT 1")
            except psycopg.Error:
                raise ServerGone(f"pgbench {name} -c {clients}: the server went away\n{p.stderr}")
            raise RuntimeError(f"pgbench {name} -c {clients} failed:\n{p.stdout}\n{p.stderr}")
        tps = re.search(r"^tps = ([0-9.]+)", p.stdout, re.M)
        lat = re.search(r"^latency average = ([0-9.]+) ms", p.stdout, re.M)
        failed = re.search(r"^number of failed transactions: (\d+)", p.stdout, re.M)
        if not tps:
            raise RuntimeError(f"cannot parse pgbench output:\n{p.stdout}\n{p.stderr}")
        if failed and int(failed.group(1)) > 0:
            raise RuntimeError(f"pgbench {name}: {failed.group(1)} failed transactions\n{p.stdout}")
        return float(tps.group(1)), float(lat.group(1)) if lat else float("nan")

    def bench_single(self):
        peers = [
            ("streamlog", "SELECT streamlog.produce('bench_single', 'k' || :id, repeat('x', 100));"),
            ("plain", "INSERT INTO plain_events (k, v) VALUES ('k' || :id, repeat('x', 100));"),
            ("pgq", "SELECT pgq.insert_event('bench_q', 'ev', repeat('x', 100));"),
        ]
        rows = []
        for c in self.clients:
            r = {}
            for name, body in peers:
                def run(name=name, body=body):
                    self.settle()
                    log(f"a. single-row {name}, {c} client(s), {self.secs} s")
                    return self.pgbench(name, body, c)
                r[name] = self.attempt(f"a. {name} at {c} client(s)", run)
            ratio = r["streamlog"][0] / r["plain"][0]
            rows.append([c, fmt_int(r["streamlog"][0]), fmt_int(r["plain"][0]), fmt_int(r["pgq"][0]),
                         f"{r['streamlog'][1]:.2f} / {r['plain'][1]:.2f}",
                         fmt_ratio(ratio), f">= {TARGET_SINGLE:.1f}x {verdict(ratio >= TARGET_SINGLE)}"])
        self.emit(f"a. Single-row transactions, 100-byte value, TPS (pgbench -T {self.secs}, "
                  "one statement per transaction, synchronous commit)")
        self.emit(table(["clients", "streamlog", "plain INSERT", "PgQ", "latency ms sl/plain",
                         "streamlog/INSERT", "target"], rows))
        self.emit()

    # -- b. set-based produce --------------------------------------------

    def copy_plain(self, m, size):
        chunk_rows = max(1, (1 << 20) // (size + 4))
        chunk = ("\\N\t" + "x" * size + "\n").encode() * chunk_rows
        tail = ("\\N\t" + "x" * size + "\n").encode() * (m % chunk_rows)
        return self.timed_copy("COPY plain (k, v) FROM STDIN", chunk, m // chunk_rows, tail)

    def measure(self, label, fn, m, size, stored=None, prep=None):
        """Run fn() -> (count, seconds, commit seconds) self.reps times, each
        after prep() and settling; returns the run with the median time."""
        runs = []
        for rep in range(self.reps):
            def run(rep=rep):
                if prep:
                    prep()
                self.settle()
                log(f"b. {label}" + (f" [{rep + 1}/{self.reps}]" if self.reps > 1 else ""))
                lsn = self.wal_lsn()
                size0 = stored() if stored else 0
                n, secs, commit = fn()
                wal = self.wal_since(lsn)
                if n != m:
                    raise RuntimeError(f"{label}: {n} records, expected {m}")
                return {"label": label, "secs": secs, "commit": commit, "rps": m / secs,
                        "mbps": m * size / secs / MB, "wal": wal / MB,
                        "stored": (stored() - size0) / MB if stored else None}
            runs.append(self.attempt(f"b. {label}", run))
        runs.sort(key=lambda r: r["secs"])
        return runs[len(runs) // 2]

    def set_rows(self, results, ref):
        rows = []
        for r in results:
            rows.append([r["label"], fmt_int(r["rps"]), fmt_mb(r["mbps"]), f"{r['secs']:.2f}",
                         f"{r['commit']:.2f}", fmt_mb(r["wal"]),
                         fmt_mb(r["stored"]) if r["stored"] is not None else "-",
                         fmt_ratio(r["rps"] / ref["rps"])])
        return rows

    def bench_set(self):
        m = self.m
        headers = ["method", "records/s", "MB/s", "s", "commit s", "WAL MB", "stored MB", "vs INS-SEL"]
        self.emit(f"b. Set-based produce, {fmt_int(m)} records in one transaction "
                  f"(time includes COMMIT; median of {self.reps}; "
                  "'vs INS-SEL' = records/s relative to INSERT...SELECT)")
        verdicts = []
        for size in self.sizes:
            gs = "generate_series(1, %s)"
            self.set_base[size] = self.q1(
                "SELECT high_watermark FROM streamlog.partitions WHERE topic = 'bench_set' AND partition = 0")
            sl = self.measure(
                f"streamlog produce ({size} B)",
                lambda: self.timed_tx(
                    "SELECT count(streamlog.produce('bench_set', NULL, repeat('x', %s), partition => 0)) "
                    f"FROM {gs}", (size, m)),
                m, size, stored=lambda: self.topic_bytes("bench_set"))
            ins = self.measure(
                f"INSERT...SELECT ({size} B)",
                lambda: self.timed_tx(
                    "INSERT INTO plain (k, v) SELECT NULL, repeat('x', %s) "
                    f"FROM {gs}", (size, m)),
                m, size, stored=lambda: self.q1("SELECT pg_total_relation_size('plain')"),
                prep=lambda: self.q("TRUNCATE plain RESTART IDENTITY"))
            heap = self.measure(
                f"INSERT...SELECT, no index ({size} B)",
                lambda: self.timed_tx(
                    "INSERT INTO plain_heap (k, v) SELECT NULL, repeat('x', %s) "
                    f"FROM {gs}", (size, m)),
                m, size, stored=lambda: self.q1("SELECT pg_total_relation_size('plain_heap')"),
                prep=lambda: self.q("TRUNCATE plain_heap"))
            cp = self.measure(f"COPY FROM STDIN ({size} B)", lambda: self.copy_plain(m, size), m, size,
                              stored=lambda: self.q1("SELECT pg_total_relation_size('plain')"),
                              prep=lambda: self.q("TRUNCATE plain RESTART IDENTITY"))
            pq = self.measure(
                f"PgQ insert_event ({size} B)",
                lambda: self.timed_tx(
                    "SELECT count(pgq.insert_event('bench_q', 'ev', repeat('x', %s))) "
                    f"FROM {gs}", (size, m)),
                m, size)
            ratio = sl["rps"] / ins["rps"]
            target = TARGET_SET.get(size, TARGET_SET[1024])
            verdicts.append(f"{size} B: {fmt_ratio(ratio)} (target >= {target:.1f}x {verdict(ratio >= target)})")
            self.emit()
            self.emit(f"  {size}-byte values")
            self.emit(table(headers, self.set_rows([sl, ins, heap, cp, pq], ins)))
        self.emit()
        self.emit("  streamlog / INSERT...SELECT: " + "; ".join(verdicts))
        self.emit("  (plain = bigserial primary key + k + v, like an outbox table; 'no index' = heap only;")
        self.emit("   stored MB = table + TOAST + indexes, or the topic's segments)")
        self.emit()

    def bench_compression(self):
        m = self.m_small
        val = "md5(i::text) || repeat('x', 68)"
        results = []
        for c in ("uncompressed",) + COMPRESSIONS:
            topic = f"bench_c_{c}"
            results.append(self.measure(
                f"streamlog {c}",
                lambda: self.timed_tx(
                    f"SELECT count(streamlog.produce(%s, NULL, {val}, partition => 0)) "
                    "FROM generate_series(1, %s) i", (topic, m)),
                m, 100, stored=lambda: self.topic_bytes(topic)))
        ins = self.measure(
            "INSERT...SELECT",
            lambda: self.timed_tx(
                f"INSERT INTO plain (k, v) SELECT NULL, {val} "
                "FROM generate_series(1, %s) i", (m,)),
            m, 100, stored=lambda: self.q1("SELECT pg_total_relation_size('plain')"),
            prep=lambda: self.q("TRUNCATE plain RESTART IDENTITY"))
        results.append(ins)
        self.emit(f"b2. Set-based produce by compression.type, {fmt_int(m)} records of 100 bytes "
                  f"(md5(i::text) || repeat('x', 68)), one transaction each, median of {self.reps}")
        self.emit(table(["method", "records/s", "MB/s", "s", "commit s", "WAL MB", "stored MB", "vs INS-SEL"],
                        self.set_rows(results, ins)))
        self.emit()

    # -- c. reads ----------------------------------------------------------

    def best_of(self, sql, params, expect=None, runs=3):
        """Warm up once, then return the median of `runs` timings."""
        times = []
        for i in range(runs + 1):
            t0 = time.perf_counter()
            v = self.q1(sql, params)
            t = time.perf_counter() - t0
            if expect is not None and v != expect:
                raise RuntimeError(f"{sql % params if params else sql}: got {v}, expected {expect}")
            if i:
                times.append(t)
        return statistics.median(times)

    def bench_read(self):
        m = self.m
        rows = []
        verdicts = []
        ratios = []
        for size in self.sizes:
            base = self.set_base[size]

            def run(size=size, base=base):
                self.q("TRUNCATE plain RESTART IDENTITY")
                self.q("INSERT INTO plain (k, v) SELECT NULL, repeat('x', %s) FROM generate_series(1, %s)",
                       (size, m))
                self.settle()
                log(f"c. reads, {size}-byte values")
                rd = "streamlog.read('bench_set', 0, %s, %s)"
                # read() as it pages through a partition: READ_PAGE records a call
                pages = ("FROM generate_series(0, %s) p, "
                         "LATERAL streamlog.read('bench_set', 0, %s + p * %s, %s) r")
                page_args = (m // READ_PAGE - 1, base, READ_PAGE, READ_PAGE)
                return (self.best_of(f"SELECT count(*) {pages}", page_args, expect=m),
                        self.best_of(f"SELECT sum(length(value)) {pages}", page_args,
                                     expect=m * size),
                        self.best_of(f"SELECT count(*) FROM {rd}", (base, m), expect=m),
                        self.best_of(f"SELECT sum(length(value)) FROM {rd}", (base, m), expect=m * size),
                        self.best_of("SELECT count(*) FROM plain", None, expect=m),
                        self.best_of("SELECT sum(octet_length(v)) FROM plain", None, expect=m * size))
            (t_pg_count, t_pg_sum, t_sl_count, t_sl_sum, t_pl_count,
             t_pl_sum) = self.attempt(f"c. reads ({size} B)", run)
            for label, t in ((f"streamlog.read, pages of {fmt_int(READ_PAGE)}, count(*)", t_pg_count),
                             (f"streamlog.read, pages of {fmt_int(READ_PAGE)}, sum(length(value))",
                              t_pg_sum),
                             ("streamlog.read, one call, count(*)", t_sl_count),
                             ("streamlog.read, one call, sum(length(value))", t_sl_sum),
                             ("plain seq scan count(*)", t_pl_count),
                             ("plain seq scan sum(octet_length(v))", t_pl_sum)):
                rows.append([f"{label} ({size} B)", fmt_int(m / t), fmt_mb(m * size / t / MB), f"{t:.3f}"])
            worst = m / max(t_pg_count, t_pg_sum)
            verdicts.append(f"{size} B: {fmt_int(worst)} records/s "
                            f"(target >= {fmt_int(TARGET_READ)} {verdict(worst >= TARGET_READ)})")
            ratio = t_pl_sum / t_pg_sum
            ratios.append(f"{size} B: {ratio:.2f}x "
                          f"(target >= {TARGET_READ_VS_SCAN}x {verdict(ratio >= TARGET_READ_VS_SCAN)})")
        par = self.q1("SELECT setting FROM pg_settings WHERE name = 'max_parallel_workers_per_gather'")
        self.emit(f"c. SQL read throughput, {fmt_int(m)} records, warm cache, median of 3 "
                  f"(plain scans may use parallel workers: max_parallel_workers_per_gather={par})")
        self.emit(table(["query", "records/s", "MB/s", "s"], rows))
        self.emit(f"  streamlog.read in pages of {fmt_int(READ_PAGE)} (its default max_records), "
                  "slower of the two queries: " + "; ".join(verdicts))
        self.emit("  pages of " + fmt_int(READ_PAGE) + ", sum(length(value)) / plain seq scan "
                  "sum(octet_length(v)), records/s: " + "; ".join(ratios))
        self.emit("  (one call for every record: a set-returning function in FROM is first "
                  "materialised into a tuplestore, which spills to temp files past work_mem)")
        self.emit()

    # -- driver ------------------------------------------------------------

    def run(self):
        t0 = time.time()
        self.setup()
        self.facts()
        # BENCH_ONLY=a,b,b2,c runs those sections only (c reads what b wrote)
        only = set(filter(None, os.environ.get("BENCH_ONLY", "a,b,b2,c").split(",")))
        if "a" in only:
            self.bench_single()
        if "b" in only or "c" in only:
            self.bench_set()
        if "b2" in only:
            self.bench_compression()
        if "c" in only:
            self.bench_read()
        self.emit(f"targets (reported, not asserted): single-row produce >= {TARGET_SINGLE}x plain INSERT at the "
                  f"same client count; set-based produce >= {TARGET_SET[100]:.1f}x INSERT...SELECT at 100 B, "
                  f">= {TARGET_SET[1024]:.1f}x at 1 KiB; "
                  f"streamlog.read >= {fmt_int(TARGET_READ)} records/s")
        for i in self.incidents:
            self.emit(f"note: {i}")
        self.emit(f"total benchmark time {time.time() - t0:.0f} s")
        self.publish("\n".join(self.out) + "\n")


def main():
    ap = driver_arguments(__doc__, "server data directory (for the machine facts)",
                          "server log file (to name the cause of a crash)", data_dir_required=False)
    args = ap.parse_args()
    Bench(args).run()


if __name__ == "__main__":
    main()
