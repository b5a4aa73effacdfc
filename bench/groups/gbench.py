#!/usr/bin/python3
"""streamlog consumer-group benchmark: SQL group consumption next to PgQ and
a SKIP LOCKED queue table, and Kafka consumer groups (librdkafka), same
server, same run.

Started by bench/groups/run.sh, which provides the server through PGHOST,
PGPORT, PGUSER and PGDATABASE, its Kafka listener (--brokers) and a built
slgroup (--slgroup).  Sections, for 100-byte values:

  1. SQL group consumption: streamlog.consume in batches of 100 and 1000 by
     1 and 4 concurrent consumers; PgQ next_batch / get_batch_events /
     finish_batch with batches of ~100 and ~1000 events; DELETE ... FOR
     UPDATE SKIP LOCKED in batches of 100 and 1000 by 1 and 4 consumers
  2. a Kafka consumer group of 3 librdkafka consumers draining a
     6-partition topic
  3. rebalance time: a member joins a stable group of 2; a member is killed
  4. the cost of __consumer_offsets: offset commits with
     streamlog.offsets_topic on and off, alternating, same server: SQL
     streamlog.consume (batches of 100, 1 consumer), SQL streamlog.seek()
     commits by 4 clients, and Kafka OffsetCommit by 4 librdkafka clients;
     commits/s, and the server's CPU and WAL bytes per commit
     (--offsets-topic-only runs this section alone)
"""

import os
import statistics
import subprocess
import sys
import threading
import time

import psycopg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import (Driver, driver_arguments, log, parse_kv, parse_result, sh,  # noqa: E402
                      fmt_int, fmt_ratio, verdict, table)

MB = 1_000_000

TARGET_SQL_VS_PGQ = 1.5     # streamlog.consume records/s / PgQ batch records/s
TARGET_JOIN = 2.0           # join rebalance / the clients' own minimum
TARGET_OFFSETS_TOPIC = 0.90  # commit rate with __consumer_offsets / without

SIZE = 100                  # value bytes
SQL_PARTITIONS = 4          # topic of section 1 (4 concurrent consumers)
KAFKA_PARTITIONS = 6        # topics of sections 2 and 3
KAFKA_CONSUMERS = 3
HEARTBEAT_MS = 500
SESSION_MS = 6000
ROUND_TRIPS = 3             # Heartbeat (REBALANCE_IN_PROGRESS), JoinGroup, SyncGroup


def fmt_ms(x):
    """Rebalance times to 0.1 ms; the broker's part may be negative."""
    return f"{x:,.1f}" if x is not None else "-"


class GBench(Driver):
    def __init__(self, args):
        super().__init__(args)
        self.sql_records = 50_000 if self.quick else 200_000
        self.kafka_records = 200_000 if self.quick else 1_000_000
        self.reps = 2 if self.quick else 5

    # -- helpers ---------------------------------------------------------

    def slgroup(self, what, *args, timeout=900):
        cmd = [self.args.slgroup, *map(str, args)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        self.note_log(what)
        reps = [parse_kv(ln) for ln in p.stdout.splitlines() if ln.startswith("rep ")]
        res = parse_result(p.stdout)
        msgs = [ln for ln in p.stderr.splitlines() if ln.strip()]
        if res is None:
            raise RuntimeError(f"{what}: no result (exit {p.returncode})\n{p.stdout}\n{p.stderr}")
        if p.returncode != 0 or msgs:
            self.notes.append(f"{what}: the client reported errors (exit {p.returncode}): "
                              + "; ".join(msgs[:3]))
        return res, reps

    # -- setup -----------------------------------------------------------

    def setup(self):
        log("setting up the extensions, topics and tables")
        self.q("CREATE EXTENSION IF NOT EXISTS streamlog")
        self.q("CREATE EXTENSION IF NOT EXISTS pgq")
        self.q("SELECT streamlog.create_topic('gb_sql', %s)", (SQL_PARTITIONS,))
        self.q("SELECT streamlog.create_topic('gb_kafka', %s)", (KAFKA_PARTITIONS,))
        self.q("SELECT streamlog.create_topic('gb_rebalance', %s)", (KAFKA_PARTITIONS,))
        self.q("SELECT streamlog.create_topic('gb_commit', %s)", (SQL_PARTITIONS,))
        self.q("CREATE TABLE skq (id bigserial PRIMARY KEY, v text)")
        self.brokers = self.broker_pids()

    def facts(self):
        settings = self.pg_settings(
            "synchronous_commit", "fsync", "wal_sync_method", "streamlog.broker_workers",
            "streamlog.group_initial_rebalance_delay", "streamlog.group_min_session_timeout")
        ext = self.q1("SELECT extversion FROM pg_extension WHERE extname = 'streamlog'")
        pgq = self.q1("SELECT extversion FROM pg_extension WHERE extname = 'pgq'")

        facts = self.emit_head("streamlog consumer-group benchmark")
        self.emit(f"  extension   streamlog {ext} (git {facts['rev']}"
                  f"{', uncommitted changes' if facts['dirty'] else ''}), "
                  f"{settings['streamlog.broker_workers']} broker workers; pgq {pgq}")
        self.emit(f"  client      librdkafka {sh(['pkg-config', '--modversion', 'rdkafka'])} (slgroup), "
                  f"psycopg {psycopg.__version__}")
        self.emit(f"  settings    shared_buffers={self.shared_buffers_mb()}MB "
                  f"synchronous_commit={settings['synchronous_commit']} "
                  f"fsync={settings['fsync']} wal_sync_method={settings['wal_sync_method']} "
                  f"streamlog.group_initial_rebalance_delay={settings['streamlog.group_initial_rebalance_delay']} "
                  f"(default 3000ms) streamlog.group_min_session_timeout="
                  f"{settings['streamlog.group_min_session_timeout']}")
        self.emit(f"  sizes       SQL {fmt_int(self.sql_records)} x {SIZE} B ({SQL_PARTITIONS}-partition topic); "
                  f"Kafka group {fmt_int(self.kafka_records)} x {SIZE} B, {KAFKA_PARTITIONS} partitions, "
                  f"{KAFKA_CONSUMERS} consumers; rebalance: {self.reps} repetitions")
        self.emit("  noise       2 cores shared with other work: differences under ~15-20% between runs are noise;"
                  " compare figures of the same run")
        self.emit()

    # -- 1. SQL group consumption ------------------------------------------

    def drain(self, consumers, step, total):
        """Run `consumers` threads, each on its own connection, calling
        step(cur) -> records until `total` records were taken; returns
        (seconds, records, transactions)."""
        conns = [psycopg.connect() for _ in range(consumers)]
        lock = threading.Lock()
        state = {"taken": 0, "txns": 0, "end": 0.0, "error": None}
        barrier = threading.Barrier(consumers + 1)

        def worker(conn):
            try:
                barrier.wait()
                last_progress = time.perf_counter()
                with conn.cursor() as cur:
                    while True:
                        with lock:
                            if state["taken"] >= total:
                                return
                        n = step(cur)
                        conn.commit()
                        now = time.perf_counter()
                        with lock:
                            state["txns"] += 1
                            state["taken"] += n
                            if n:
                                state["end"] = max(state["end"], now)
                        if n:
                            last_progress = now
                        else:
                            if now - last_progress > 30:
                                raise RuntimeError("no progress for 30 s")
                            time.sleep(0.001)
            except Exception as e:  # reported by the caller
                state["error"] = e
                try:
                    conn.rollback()
                except Exception:
                    pass

        threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        for c in conns:
            c.close()
        if state["error"]:
            raise RuntimeError(f"consumer failed: {state['error']}")
        return state["end"] - t0, state["taken"], state["txns"]

    def load_sql_topic(self):
        n = self.sql_records
        log(f"1. loading {fmt_int(n)} records into gb_sql")
        self.q("SELECT count(streamlog.produce('gb_sql', NULL, repeat('x', %s), partition => i %% %s)) "
               "FROM generate_series(0, %s - 1) i", (SIZE, SQL_PARTITIONS, n))

    def load_pgq(self, queue, batch):
        n = self.sql_records
        log(f"1. loading {fmt_int(n)} events into PgQ queue {queue}, a tick every {batch}")
        self.q("SELECT pgq.create_queue(%s)", (queue,))
        self.q("SELECT pgq.set_queue_config(%s, 'ticker_max_count', %s)", (queue, str(batch)))
        self.q("SELECT pgq.set_queue_config(%s, 'ticker_max_lag', '1 hour')", (queue,))
        self.q("SELECT pgq.set_queue_config(%s, 'ticker_idle_period', '1 hour')", (queue,))
        self.q("SELECT pgq.register_consumer(%s, 'c')", (queue,))
        self.q("SELECT pgq.ticker(%s)", (queue,))
        done = 0
        while done < n:
            k = min(batch, n - done)
            self.q("SELECT count(pgq.insert_event(%s, 'ev', repeat('x', %s))) FROM generate_series(1, %s)",
                   (queue, SIZE, k))
            self.q("SELECT pgq.ticker(%s)", (queue,))
            done += k
        self.q("SELECT pgq.force_tick(%s)", (queue,))
        self.q("SELECT pgq.ticker(%s)", (queue,))

    def load_skq(self):
        self.q("TRUNCATE skq RESTART IDENTITY")
        self.q("INSERT INTO skq (v) SELECT repeat('x', %s) FROM generate_series(1, %s)",
               (SIZE, self.sql_records))

    def bench_sql(self):
        n = self.sql_records
        rows = []
        results = {}
        self.load_sql_topic()
        for batch in (100, 1000):
            self.load_pgq(f"gb_q{batch}", batch)

        for batch in (100, 1000):
            for consumers in (1, 4):
                group = f"sql_b{batch}_c{consumers}"
                self.settle()
                log(f"1. streamlog.consume, batch {batch}, {consumers} consumer(s)")
                secs, taken, txns = self.drain(
                    consumers, lambda cur, g=group, b=batch: cur.execute(
                        "SELECT count(*) FROM streamlog.consume(%s, 'gb_sql', %s)", (g, b)).fetchone()[0], n)
                self.note_log(f"streamlog.consume {batch}/{consumers}")
                lag = self.q1("SELECT coalesce(sum(lag), -1) FROM streamlog.consumer_lag WHERE group_id = %s",
                              (group,))
                if taken != n or lag != 0:
                    self.notes.append(f"streamlog.consume batch {batch}, {consumers} consumer(s): "
                                      f"{taken} records, remaining lag {lag} (expected {n}, 0)")
                results[("sl", batch, consumers)] = n / secs
                rows.append(("streamlog.consume", batch, consumers, taken, txns, secs))

            self.settle()
            log(f"1. PgQ batches of ~{batch}, 1 consumer")
            queue = f"gb_q{batch}"

            def pgq_step(cur, q=queue):
                bid = cur.execute("SELECT pgq.next_batch(%s, 'c')", (q,)).fetchone()[0]
                if bid is None:
                    return 0
                k = cur.execute("SELECT count(*) FROM pgq.get_batch_events(%s)", (bid,)).fetchone()[0]
                cur.execute("SELECT pgq.finish_batch(%s)", (bid,))
                return k

            secs, taken, txns = self.drain(1, pgq_step, n)
            self.note_log(f"PgQ {batch}")
            if taken != n:
                self.notes.append(f"PgQ batch {batch}: {taken} events, expected {n}")
            results[("pgq", batch, 1)] = n / secs
            rows.append(("PgQ next_batch/get_batch_events/finish_batch", f"~{batch}", 1, taken, txns, secs))

            for consumers in (1, 4):
                self.load_skq()
                self.settle()
                log(f"1. SKIP LOCKED, batch {batch}, {consumers} consumer(s)")
                secs, taken, txns = self.drain(
                    consumers, lambda cur, b=batch: cur.execute(
                        "WITH d AS (DELETE FROM skq WHERE id IN (SELECT id FROM skq ORDER BY id LIMIT %s "
                        "FOR UPDATE SKIP LOCKED) RETURNING *) SELECT count(*) FROM d", (b,)).fetchone()[0], n)
                self.note_log(f"SKIP LOCKED {batch}/{consumers}")
                if taken != n:
                    self.notes.append(f"SKIP LOCKED batch {batch}, {consumers}: {taken} rows, expected {n}")
                results[("sk", batch, consumers)] = n / secs
                rows.append(("SKIP LOCKED DELETE ... RETURNING", batch, consumers, taken, txns, secs))

        out = []
        for method, batch, consumers, taken, txns, secs in rows:
            rate = n / secs
            b = int(str(batch).lstrip("~"))
            pgq = results[("pgq", b, 1)]
            target = ""
            if method == "streamlog.consume":
                target = f">= {TARGET_SQL_VS_PGQ}x {verdict(rate / pgq >= TARGET_SQL_VS_PGQ)}"
            out.append((method, batch, consumers, fmt_int(rate), f"{rate * SIZE / MB:.1f}", f"{secs:.2f}",
                        fmt_int(txns), f"{taken / max(txns, 1):,.0f}", fmt_ratio(rate / pgq, TARGET_SQL_VS_PGQ),
                        target))
        self.emit(f"1. SQL group consumption of {fmt_int(n)} x {SIZE} B records: one transaction per batch "
                  f"(BEGIN; consume; COMMIT), synchronous_commit=on")
        self.emit(table(["method", "batch", "consumers", "records/s", "MB/s", "s", "transactions",
                         "records/txn", "vs PgQ", "target"], out, "lrrrrrrrrl"))
        self.emit("  (vs PgQ: records/s / PgQ's records/s at the same batch size; transactions include the"
                  " empty polls of consumers that found nothing to take)")
        ratios = [results[("sl", b, c)] / results[("pgq", b, 1)] for b in (100, 1000) for c in (1, 4)]
        self.emit("  streamlog.consume / PgQ, records/s: " + "; ".join(
            f"batch {b}, {c} consumer(s): {fmt_ratio(results[('sl', b, c)] / results[('pgq', b, 1)])}"
            for b in (100, 1000) for c in (1, 4))
            + f" (target >= {TARGET_SQL_VS_PGQ}x: {verdict(min(ratios) >= TARGET_SQL_VS_PGQ)} for "
            f"{sum(r >= TARGET_SQL_VS_PGQ for r in ratios)} of 4)")
        self.emit()

    # -- 2. Kafka group drain ----------------------------------------------

    def bench_kafka_drain(self):
        n = self.kafka_records
        log(f"2. loading {fmt_int(n)} records into gb_kafka ({KAFKA_PARTITIONS} partitions)")
        self.q("SELECT count(streamlog.produce('gb_kafka', NULL, repeat('x', %s), partition => i %% %s)) "
               "FROM generate_series(0, %s - 1) i", (SIZE, KAFKA_PARTITIONS, n))
        self.settle()
        log(f"2. {KAFKA_CONSUMERS} librdkafka consumers in one group draining gb_kafka")
        res, _ = self.slgroup("Kafka group drain", "drain", "--brokers", self.args.brokers,
                              "--topic", "gb_kafka", "--partitions", KAFKA_PARTITIONS, "--records", n,
                              "--group", "kafka_drain", "--consumers", KAFKA_CONSUMERS, "--timeout", 60)
        time.sleep(0.5)
        lag = self.q1("SELECT coalesce(sum(lag), -1) FROM streamlog.consumer_lag WHERE group_id = 'kafka_drain'")
        per = " / ".join(fmt_int(res.get(f"m{i}_records", 0)) for i in range(KAFKA_CONSUMERS))
        assigns = " / ".join(str(int(res.get(f"m{i}_assignments", 0))) for i in range(KAFKA_CONSUMERS))
        self.emit(f"2. Kafka consumer group: {KAFKA_CONSUMERS} librdkafka consumers (threads, one rd_kafka_t "
                  f"each, enable.auto.commit, auto.offset.reset=earliest, default fetch settings), "
                  f"{KAFKA_PARTITIONS} partitions")
        self.emit(table(["records", "records/s", "MB/s", "s", "group ready ms", "first record ms", "delivered",
                         "duplicates", "per consumer", "assignments", "lag after"],
                        [(fmt_int(res["records"]), fmt_int(res["records_per_s"]),
                          f"{res['records_per_s'] * SIZE / MB:.1f}", f"{res['seconds']:.2f}",
                          fmt_ms(res["group_ready_ms"]), fmt_ms(res["first_record_ms"]),
                          fmt_int(res["delivered"]),
                          fmt_int(res["duplicates"]), per, assigns, fmt_int(lag))]))
        self.emit("  (the consumers hold (pause) their partitions until all 3 have their share, group ready ms after"
                  " the start, then resume;\n   s: first record received after that -> last distinct record; "
                  "assignments: rebalance callbacks per consumer while the group formed;\n   lag after: "
                  "committed lag left in streamlog.consumer_lag once the consumers closed)")
        if res.get("before_start"):
            self.notes.append(f"Kafka group drain: {fmt_int(res['before_start'])} records arrived before the "
                              "pause took effect (counted as consumed)")
        self.emit()
        if lag != 0:
            self.notes.append(f"Kafka group drain: lag {lag} left after the consumers closed")

    # -- 3. rebalance ------------------------------------------------------

    def bench_rebalance(self):
        self.settle()
        log(f"3. rebalance: {self.reps} repetitions of join (2 -> 3 members) and kill (3 -> 2)")
        res, reps = self.slgroup("rebalance", "rebalance", "--brokers", self.args.brokers,
                                 "--topic", "gb_rebalance", "--group", "rebalance", "--reps", self.reps,
                                 "--heartbeat", HEARTBEAT_MS, "--session", SESSION_MS, "--timeout", 60)
        if not reps:
            raise RuntimeError("rebalance: no repetition completed")
        rtt = statistics.median(r["rtt_ms"] for r in reps)
        client_min = HEARTBEAT_MS + ROUND_TRIPS * rtt
        join = [r["join_ms"] for r in reps]
        kill = [r["kill_ms"] for r in reps]
        jm, km = statistics.median(join), statistics.median(kill)
        rows = [
            ("a. join: 3rd member's subscribe -> all 3 assigned", fmt_ms(jm), fmt_ms(min(join)),
             fmt_ms(max(join)), fmt_ms(client_min), fmt_ms(jm - client_min),
             fmt_ratio(jm / client_min, TARGET_JOIN),
             f"<= {TARGET_JOIN:.0f}x {verdict(jm / client_min <= TARGET_JOIN)}"),
            ("b. kill: SIGKILL -> both survivors assigned", fmt_ms(km), fmt_ms(min(kill)), fmt_ms(max(kill)),
             fmt_ms(SESSION_MS), fmt_ms(km - SESSION_MS), "", ""),
        ]
        self.emit(f"3. Rebalance, {KAFKA_PARTITIONS}-partition topic, heartbeat.interval.ms={HEARTBEAT_MS}, "
                  f"session.timeout.ms={SESSION_MS}, eager protocol (librdkafka default range,roundrobin), "
                  f"streamlog.group_initial_rebalance_delay=0; member processes; median of {len(reps)}")
        self.emit(table(["rebalance", "median ms", "min ms", "max ms", "clients' part ms", "broker's part ms",
                         "vs clients", "target"], rows, "lrrrrrrl"))
        self.emit(f"  clients' part, join: heartbeat.interval.ms + {ROUND_TRIPS} round trips (Heartbeat answered "
                  f"REBALANCE_IN_PROGRESS, JoinGroup, SyncGroup) = {HEARTBEAT_MS} + {ROUND_TRIPS} x "
                  f"{rtt:.2f} ms (median Metadata round trip); kill: session.timeout.ms")
        self.emit("  per repetition (join ms / kill ms): " + ", ".join(
            f"{r['join_ms']:.0f}/{r['kill_ms']:.0f}" for r in reps)
            + "; partitions after join: " + ", ".join(str(r["partitions_after_join"]) for r in reps))
        self.emit()

    # -- 4. the cost of __consumer_offsets ---------------------------------

    def set_offsets_topic(self, on):
        self.q("ALTER SYSTEM SET streamlog.offsets_topic = %s" % ("on" if on else "off"))
        self.q("SELECT pg_reload_conf()")
        # The broker workers read it when their latch wakes them: give them a moment
        time.sleep(0.3)
        with psycopg.connect() as c:
            got = c.execute("SHOW streamlog.offsets_topic").fetchone()[0]
        if got != ("on" if on else "off"):
            raise RuntimeError(f"streamlog.offsets_topic is {got}")

    def offsets_topic_records(self):
        return self.q1("SELECT coalesce(sum(s.high_watermark), 0) FROM streamlog.topic t "
                       "JOIN streamlog.partition p USING (topic_id) "
                       "CROSS JOIN LATERAL streamlog.partition_state(t.topic_id, p.partition) s "
                       "WHERE t.name = '__consumer_offsets'")

    @staticmethod
    def cpu_seconds(pids):
        """user + system CPU seconds the processes used so far"""
        tck = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / tck

    def wal_lsn(self):
        return self.q1("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")

    def timed_loop(self, clients, step, secs, pids):
        """clients threads call step(i, k) (the k-th call of client i) for
        secs seconds; returns (calls/s, server CPU us per call, WAL bytes per
        call), the CPU being that of the server processes pids."""
        count = [0] * clients
        errors = []
        barrier = threading.Barrier(clients + 1)

        def worker(i):
            try:
                barrier.wait()
                while time.perf_counter() < stop:
                    step(i, count[i])
                    count[i] += 1
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        cpu0, wal0 = self.cpu_seconds(pids), self.wal_lsn()
        t0 = time.perf_counter()
        stop = t0 + secs
        barrier.wait()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        cpu, wal = self.cpu_seconds(pids) - cpu0, self.wal_lsn() - wal0
        if errors:
            raise RuntimeError(f"commit loop failed: {errors[0]}")
        n = max(sum(count), 1)
        return n / elapsed, cpu / n * 1e6, float(wal) / n

    def backend_pids(self, conns):
        return [c.execute("SELECT pg_backend_pid()").fetchone()[0] for c in conns]

    def sql_seek_rate(self, secs, tag):
        conns = [psycopg.connect(autocommit=True) for _ in range(4)]
        try:
            return self.timed_loop(4, lambda i, k: conns[i].execute(
                "SELECT streamlog.seek(%s, 'gb_commit', %s, %s)",
                (f"seek_{tag}_{i}", i % SQL_PARTITIONS, k % 1000)), secs, self.backend_pids(conns))
        finally:
            for c in conns:
                c.close()

    def sql_consume_rate(self, secs, tag):
        """One consumer taking batches of 100, a transaction each; the topic
        holds more than it can take in secs (the figure is transactions/s)"""
        conns = [psycopg.connect(autocommit=True)]
        try:
            return self.timed_loop(1, lambda i, k: conns[0].execute(
                "SELECT count(*) FROM streamlog.consume(%s, 'gb_commit', 100)",
                (f"consume_{tag}",)), secs, self.backend_pids(conns))
        finally:
            conns[0].close()

    def kafka_commit_rate(self, secs, tag):
        from confluent_kafka import Consumer, TopicPartition

        consumers = [Consumer({"bootstrap.servers": self.args.brokers, "group.id": f"commit_{tag}_{i}",
                               "enable.auto.commit": False}) for i in range(4)]
        try:
            for c in consumers:    # the first commit finds the coordinator
                c.commit(offsets=[TopicPartition("gb_commit", 0, 0)], asynchronous=False)
            return self.timed_loop(4, lambda i, k: consumers[i].commit(
                offsets=[TopicPartition("gb_commit", p, k) for p in range(SQL_PARTITIONS)],
                asynchronous=False), secs, self.brokers)
        finally:
            for c in consumers:
                c.close()

    def bench_offsets_topic(self):
        """Short runs of each setting, alternating (on, off, off, on, ...),
        so that the load of a shared machine falls on both alike; a setting's
        figure is its commits over its time, summed over its runs."""
        secs = 2 if self.quick else 3
        pairs = 4 if self.quick else 10
        # More than the consumer of one setting takes in all its runs (about
        # 1,600 commits of 100 records a second on a quiet machine), so that
        # no run finds the topic drained
        n = 2_000_000 if self.quick else 6_000_000
        log(f"4. loading {fmt_int(n)} records into gb_commit")
        self.q("SELECT count(streamlog.produce('gb_commit', NULL, repeat('x', %s), partition => i %% %s)) "
               "FROM generate_series(0, %s - 1) i", (SIZE, SQL_PARTITIONS, n))
        self.settle()
        runs = {}
        for what, run in (("consume", self.sql_consume_rate), ("seek", self.sql_seek_rate),
                          ("kafka", self.kafka_commit_rate)):
            log(f"4. {what}: {pairs} pairs of {secs} s runs, offsets topic on and off")
            for pair in range(pairs):
                for on in ((True, False) if pair % 2 == 0 else (False, True)):
                    self.set_offsets_topic(on)
                    # one group per setting, so that consume keeps finding records
                    tag = "on" if on else "off"
                    before = self.offsets_topic_records()
                    runs.setdefault((what, on), []).append(run(secs, tag))
                    written = self.offsets_topic_records() - before
                    if on and written == 0:
                        self.notes.append(f"offsets topic {what} {tag}: no record written while on")
                    if not on and written != 0:
                        self.notes.append(f"offsets topic {what} {tag}: {written} records written while off")
            self.note_log(f"offsets topic {what}")
        self.set_offsets_topic(True)

        def total(what, on):
            """(commits/s, CPU us per commit, WAL B per commit) over all runs"""
            rs = runs[(what, on)]
            commits = sum(r[0] * secs for r in rs)
            return (commits / (secs * len(rs)),
                    sum(r[1] * r[0] * secs for r in rs) / commits,
                    sum(r[2] * r[0] * secs for r in rs) / commits)

        rows = []
        for what, label in (
                ("consume", "SQL consume(group, topic, 100), 1 consumer, a transaction each"),
                ("seek", "SQL seek(), 4 clients, autocommit (one offset per commit)"),
                ("kafka", f"Kafka OffsetCommit of {SQL_PARTITIONS} partitions, 4 librdkafka clients")):
            off, on = total(what, False), total(what, True)
            rows.append((label, fmt_int(off[0]), fmt_int(on[0]),
                         fmt_ratio(on[0] / off[0], TARGET_OFFSETS_TOPIC),
                         f">= {TARGET_OFFSETS_TOPIC:.2f}x {verdict(on[0] / off[0] >= TARGET_OFFSETS_TOPIC)}",
                         f"{off[1]:,.0f}", f"{on[1]:,.0f}", f"{off[2]:,.0f}", f"{on[2]:,.0f}"))
        self.emit(f"4. Offset commits with and without __consumer_offsets (streamlog.offsets_topic off/on: "
                  f"{pairs} runs of {secs} s each, alternating)")
        self.emit(table(["commits (transactions)", "off /s", "on /s", "on / off", "target",
                         "CPU us off", "CPU us on", "WAL B off", "WAL B on"], rows, "lrrrlrrrr"))
        self.emit("  CPU us: CPU of the server processes that commit (the SQL backends, or the broker workers)"
                  " per commit; WAL B: WAL bytes per commit")
        self.emit("  per run, commits/s (off / on): " + "; ".join(
            f"{what}: " + ", ".join(fmt_int(r[0]) for r in runs[(what, False)]) + " / "
            + ", ".join(fmt_int(r[0]) for r in runs[(what, True)]) for what in ("consume", "seek", "kafka")))
        self.emit()

    def run(self):
        self.setup()
        self.facts()
        if self.args.offsets_topic_only:
            self.bench_offsets_topic()
            for n in self.notes:
                self.emit(f"note: {n}")
            self.publish("\n".join(self.out).rstrip() + "\n", say_where=False)
            return
        self.bench_sql()
        self.bench_kafka_drain()
        self.bench_rebalance()
        self.bench_offsets_topic()
        for n in self.notes:
            self.emit(f"note: {n}")
        self.publish("\n".join(self.out).rstrip() + "\n", say_where=False)


def main():
    ap = driver_arguments(__doc__, "server data directory", "server log file (errors are reported)")
    ap.add_argument("--brokers", required=True, help="host:port of the streamlog Kafka listener")
    ap.add_argument("--slgroup", required=True, help="the built slgroup program")
    ap.add_argument("--work-dir", required=True, help="scratch directory")
    ap.add_argument("--offsets-topic-only", action="store_true",
                    help="run only section 4, the cost of __consumer_offsets")
    GBench(ap.parse_args()).run()


if __name__ == "__main__":
    main()
