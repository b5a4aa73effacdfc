#!/usr/bin/python3
"""streamlog topics-as-tables benchmark: point lookups and latest(topic)
next to a plain table with a btree on the key, and what the key index
costs produce, same server, same run.

Started by bench/tables/run.sh, which provides the server through PGHOST,
PGPORT, PGUSER and PGDATABASE and its Kafka listener (--brokers).  N
records of 100-byte values over K keys (10M / 1M; --quick 1M / 100k):

  1. SQL set-based produce of the N records, in transactions of CHUNK,
     into a 4-partition topic with key.index and one without; the peer is
     INSERT ... SELECT of the same rows into a history table
     (id bigserial, key, value) with a btree on (key, id)
  2. Kafka produce (librdkafka through confluent-kafka, keyed, acks=all)
     into a topic with key.index and one without
  3. point lookups of LOOKUPS random keys, one statement each, latency
     seen by the client: streamlog.latest(topic, key) with the key index,
     the same without it (a few: it reads the log), and the peer's
     SELECT ... WHERE key = $1 ORDER BY id DESC LIMIT 1
  4. latest(topic), every key's current value, next to the peer's
     SELECT DISTINCT ON (key) ... ORDER BY key, id DESC
"""

import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import Driver, driver_arguments, log, fmt_int, fmt_ratio, verdict, table  # noqa: E402

TARGET_LOOKUP_MS = 1.0      # p50 of a point lookup with the key index
PARTITIONS = 4
SIZE = 100
LOOKUPS = 10_000

# The key of record g: spread over K keys in no order (a multiplicative hash)
KEY_SQL = "'k' || ((g::int8 * 2654435761) %% {k})"


class TBench(Driver):
    def __init__(self, args):
        super().__init__(args)
        self.n = 1_000_000 if self.quick else 10_000_000
        self.k = 100_000 if self.quick else 1_000_000
        self.chunk = 250_000 if self.quick else 1_000_000
        self.kafka_n = 200_000 if self.quick else 1_000_000
        self.scans = 3
        self.rows = {}

    # -- 1. SQL produce ---------------------------------------------------

    def timed(self, sql, params=None):
        """Seconds of one statement in its own transaction, COMMIT included"""
        with self.conn.cursor() as cur:
            t0 = time.perf_counter()
            cur.execute("BEGIN")
            cur.execute(sql, params)
            cur.execute("COMMIT")
            return time.perf_counter() - t0

    def produce_sql(self):
        self.q("SELECT streamlog.create_topic('tbl_indexed', %s, '{\"key.index\": true, "
               "\"retention.ms\": -1}')", (PARTITIONS,))
        self.q("SELECT streamlog.create_topic('tbl_plain', %s, '{\"retention.ms\": -1}')",
               (PARTITIONS,))
        self.q("CREATE TABLE kv_history (id bigserial PRIMARY KEY, key bytea, value bytea)")
        self.q("CREATE INDEX ON kv_history (key, id)")
        key = KEY_SQL.format(k=self.k)
        statements = {
            "tbl_indexed": "SELECT count(streamlog.produce('tbl_indexed', " + key +
                           ", repeat('x', %s))) FROM generate_series(%s, %s) g",
            "tbl_plain": "SELECT count(streamlog.produce('tbl_plain', " + key +
                         ", repeat('x', %s))) FROM generate_series(%s, %s) g",
            "kv_history": "INSERT INTO kv_history (key, value) SELECT convert_to(" + key +
                          ", 'UTF8'), convert_to(repeat('x', %s), 'UTF8') "
                          "FROM generate_series(%s, %s) g",
        }
        secs = {}
        for name, sql in statements.items():
            self.settle()
            log(f"1. produce {self.n:,} records into {name}")
            total = 0.0
            for start in range(0, self.n, self.chunk):
                total += self.timed(sql, (SIZE, start, min(start + self.chunk, self.n) - 1))
            secs[name] = total
            self.note_log(f"produce into {name}")
        peer = self.n / secs["kv_history"]
        rows = []
        for name, label in (("tbl_plain", "streamlog.produce, key.index off"),
                            ("tbl_indexed", "streamlog.produce, key.index on"),
                            ("kv_history", "peer: INSERT ... SELECT, btree (key, id)")):
            rate = self.n / secs[name]
            rows.append([label, fmt_int(rate), f"{secs[name]:.1f}", fmt_ratio(rate / peer)])
        cost = secs["tbl_indexed"] / secs["tbl_plain"]
        self.emit("")
        self.emit(f"1. SQL set-based produce: {self.n:,} records of {SIZE} B over {self.k:,} keys, "
                  f"{PARTITIONS} partitions, {self.chunk:,} per transaction")
        self.emit(table(["", "records/s", "s", "vs peer"], rows))
        self.emit(f"  key.index costs set-based produce {cost:.2f}x the time without it")
        self.rows["produce_cost"] = cost

    # -- 2. Kafka produce -------------------------------------------------

    def produce_kafka(self):
        import confluent_kafka
        rates = {}
        for name, config in (("kf_plain", "{}"), ("kf_indexed", '{"key.index": true}')):
            self.q("SELECT streamlog.create_topic(%s, %s, %s::jsonb || '{\"retention.ms\": -1}')",
                   (name, PARTITIONS, config))
        values = [b"x" * SIZE]
        keys = [f"k{(i * 2654435761) % self.k}".encode() for i in range(self.kafka_n)]
        for name in ("kf_plain", "kf_indexed", "kf_plain", "kf_indexed"):
            self.settle()
            log(f"2. Kafka produce {self.kafka_n:,} records into {name}")
            producer = confluent_kafka.Producer({"bootstrap.servers": self.args.brokers,
                                                 "linger.ms": 5, "acks": "all",
                                                 "queue.buffering.max.messages": 1_000_000})
            t0 = time.perf_counter()
            for key in keys:
                while True:
                    try:
                        producer.produce(name, values[0], key=key)
                        break
                    except BufferError:
                        producer.poll(0.01)
            left = producer.flush(300)
            secs = time.perf_counter() - t0
            if left:
                raise RuntimeError(f"{left} records not delivered to {name}")
            rates.setdefault(name, []).append(self.kafka_n / secs)
            self.note_log(f"Kafka produce into {name}")
        plain = max(rates["kf_plain"])
        indexed = max(rates["kf_indexed"])
        self.emit("")
        self.emit(f"2. Kafka produce (librdkafka via confluent-kafka, keyed, acks=all, linger.ms=5): "
                  f"{self.kafka_n:,} records of {SIZE} B, best of 2")
        self.emit(table(["", "records/s", "vs off"], [
            ["key.index off", fmt_int(plain), fmt_ratio(1.0)],
            ["key.index on", fmt_int(indexed), fmt_ratio(indexed / plain)]]))
        self.rows["kafka_cost"] = plain / indexed

    # -- 3. point lookups ---------------------------------------------------

    def latencies(self, sql, params_list):
        """Per statement latencies (ms) seen by the client, prepared"""
        out = []
        with self.conn.cursor() as cur:
            for params in params_list:
                t0 = time.perf_counter()
                cur.execute(sql, params, prepare=True)
                cur.fetchall()
                out.append((time.perf_counter() - t0) * 1000)
        return out

    def lookups(self):
        self.settle()
        rng = random.Random(1)
        keys = [f"k{rng.randrange(self.k)}".encode() for _ in range(LOOKUPS)]
        # warm the caches the way a running service has them
        self.q(self.q1("SELECT format('SELECT count(*) FROM streamlog_data.t%s_keys', topic_id) "
                       "FROM streamlog.topic WHERE name = 'tbl_indexed'"))
        self.q("SELECT count(*) FROM kv_history")
        log(f"3. {LOOKUPS:,} lookups with the key index")
        indexed = self.latencies("SELECT value FROM streamlog.latest('tbl_indexed', %s::bytea)",
                                 [(k,) for k in keys])
        log(f"3. {LOOKUPS:,} lookups in the peer table")
        peer = self.latencies("SELECT value FROM kv_history WHERE key = %s ORDER BY id DESC LIMIT 1",
                              [(k,) for k in keys])
        log(f"3. {self.scans} lookups without the key index")
        plain = self.latencies("SELECT value FROM streamlog.latest('tbl_plain', %s::bytea)",
                               [(k,) for k in keys[:self.scans]])
        # every lookup found its key: the same rows as the peer's
        found = self.q1("SELECT count(*) FROM unnest(%s::bytea[]) k, "
                        "LATERAL streamlog.latest('tbl_indexed', k)", (keys[:1000],))

        def pct(xs, p):
            xs = sorted(xs)
            return xs[min(len(xs) - 1, int(len(xs) * p))]

        rows = [["latest(topic, key), key.index on", len(indexed), f"{pct(indexed, 0.5):.3f}",
                 f"{pct(indexed, 0.99):.3f}", f"{statistics.mean(indexed):.3f}"],
                ["latest(topic, key), key.index off", len(plain), f"{pct(plain, 0.5):,.1f}",
                 f"{max(plain):,.1f}", f"{statistics.mean(plain):,.1f}"],
                ["peer: WHERE key = $1 ORDER BY id DESC LIMIT 1", len(peer), f"{pct(peer, 0.5):.3f}",
                 f"{pct(peer, 0.99):.3f}", f"{statistics.mean(peer):.3f}"]]
        self.emit("")
        self.emit(f"3. Point lookups of random keys ({self.n:,} records, {self.k:,} keys), "
                  "ms per statement seen by the client (prepared, loopback)")
        self.emit(table(["", "lookups", "p50 ms", "p99 ms", "mean ms"], rows))
        self.emit(f"  {found} of 1000 keys found (each key has records)")
        p50 = pct(indexed, 0.5)
        self.emit(f"  target p50 < {TARGET_LOOKUP_MS} ms with the key index: "
                  f"{p50:.3f} ms, {verdict(p50 < TARGET_LOOKUP_MS)}")
        self.note_log("lookups")

    # -- 4. latest(topic) ------------------------------------------------------

    def whole_table(self):
        self.settle()
        log("4. latest(topic)")
        t0 = time.perf_counter()
        n = self.q1("SELECT count(*) FROM streamlog.latest('tbl_indexed')")
        mine = time.perf_counter() - t0
        self.settle()
        log("4. peer DISTINCT ON")
        t0 = time.perf_counter()
        m = self.q1("SELECT count(*) FROM (SELECT DISTINCT ON (key) key, value FROM kv_history "
                    "ORDER BY key, id DESC) s")
        peer = time.perf_counter() - t0
        self.emit("")
        self.emit(f"4. Every key's current value ({self.n:,} records in, work_mem "
                  f"{self.pg_settings('work_mem')['work_mem']})")
        self.emit(table(["", "rows", "s", "records in/s"], [
            ["SELECT count(*) FROM streamlog.latest(topic)", fmt_int(n), f"{mine:.1f}",
             fmt_int(self.n / mine)],
            ["peer: DISTINCT ON (key) ... ORDER BY key, id DESC", fmt_int(m), f"{peer:.1f}",
             fmt_int(self.n / peer)]]))
        self.note_log("latest(topic)")

    def run(self):
        self.q("CREATE EXTENSION IF NOT EXISTS streamlog")
        self.emit_head("streamlog topics-as-tables benchmark")
        self.produce_sql()
        self.produce_kafka()
        self.lookups()
        self.whole_table()
        if self.notes:
            self.emit("")
            self.emit("Notes:")
            for note in self.notes:
                self.emit(f"  - {note}")
        self.publish("\n".join(self.out) + "\n")


def main():
    ap = driver_arguments(__doc__, "the server's data directory", "the server's log file")
    ap.add_argument("--brokers", required=True, help="the Kafka listener, host:port")
    TBench(ap.parse_args()).run()


if __name__ == "__main__":
    main()
