#!/usr/bin/python3
"""streamlog log-compaction benchmark: the background cleaner's throughput
next to plain SQL deduplicating the same records, and the cleaner's effect
on a concurrent producer, same server, same run.

Started by bench/compaction/run.sh, which provides the server through
PGHOST, PGPORT, PGUSER and PGDATABASE.  Sections, for 100-byte values and
keys k0 .. k<KEYS-1> (record g has key k<g mod KEYS>, so the last KEYS
records are the survivors):

  1. cleaning RECORDS records down to KEYS: a one-partition topic loaded
     under cleanup.policy=delete (segments of one load transaction each),
     then switched to compact; timed from the switch until
     streamlog.compaction shows the partition cleaned to its high
     watermark.  Once on an idle server, once while section 2's producer
     runs.  Peer: the same records in a plain table (offset, key, value),
     deduplicated with CREATE TABLE AS SELECT DISTINCT ON (k) ... ORDER BY
     k, off DESC.
  2. produce rate of one SQL producer (transactions of 1000 records into
     another topic) with the cleaner idle, then while it cleans.
"""

import os
import sys
import threading
import time

import psycopg
from psycopg.types.json import Jsonb

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import (Driver, driver_arguments, log, fmt_int, fmt_mb, fmt_ratio,  # noqa: E402
                      table)

MB = 1_000_000
VALUE = 100                 # value bytes
CHUNK = 250_000             # records per load transaction (one segment each)
PRODUCE_TXN = 1000          # records per transaction of the concurrent producer
CLEAN_TIMEOUT = 4 * 3600    # seconds a cleaning may take before the run gives up


class CBench(Driver):
    def __init__(self, args):
        super().__init__(args)
        self.records = args.records or (1_000_000 if self.quick else 10_000_000)
        self.keys = self.records // 10
        self.results = []

    # -- helpers ---------------------------------------------------------

    def create_topic(self, name, config):
        self.q("SELECT streamlog.drop_topic(%s, true)", (name,))
        self.q("SELECT streamlog.create_topic(%s, 1, %s)", (name, Jsonb(config)))

    def load(self, topic):
        """RECORDS records into topic, CHUNK a transaction, each transaction
        rolled into a segment of its own; returns seconds"""
        t0 = time.perf_counter()
        for lo in range(0, self.records, CHUNK):
            hi = min(lo + CHUNK, self.records) - 1
            self.q("SELECT count(streamlog.produce(%s, 'k' || (g %% %s), lpad(g::text, %s, 'x'), "
                   "       partition => 0)) FROM generate_series(%s::bigint, %s::bigint) g",
                   (topic, self.keys, VALUE, lo, hi))
            self.wait_rolled(topic)
        return time.perf_counter() - t0

    def wait_rolled(self, topic, timeout=600):
        """Until the active segment of the topic is empty (it starts at the
        high watermark): everything is cleanable"""
        deadline = time.monotonic() + timeout
        while True:
            base, hwm = self.q(
                "SELECT (SELECT g.base_offset FROM streamlog.segment g "
                "         WHERE g.topic_id = p.topic_id AND g.partition = 0 "
                "         ORDER BY g.seq DESC LIMIT 1), s.high_watermark "
                "  FROM streamlog.partition p JOIN streamlog.topic t USING (topic_id) "
                " CROSS JOIN LATERAL streamlog.partition_state(p.topic_id, 0) s "
                " WHERE t.name = %s AND p.partition = 0", (topic,))[0]
            if base == hwm:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the active segment of {topic} did not roll in {timeout} s")
            time.sleep(0.02)

    def clean(self, topic):
        """Switch topic to compact and wait until the background cleaner has
        cleaned it to its high watermark: (seconds, bytes before, bytes
        after, records left)"""
        hwm = self.q1("SELECT high_watermark FROM streamlog.partitions WHERE topic = %s", (topic,))
        before = self.topic_bytes(topic)
        self.q("SELECT streamlog.alter_topic(%s, %s)", (topic, Jsonb({"cleanup.policy": "compact"})))
        t0 = time.perf_counter()
        while True:
            row = self.q("SELECT cleaned_offset, last_error FROM streamlog.compaction "
                         " WHERE topic = %s AND partition = 0", (topic,))
            if row and row[0][0] is not None and row[0][0] >= hwm:
                break
            if row and row[0][1]:
                self.notes.append(f"cleaning {topic}: last_error {row[0][1]}")
            if time.perf_counter() - t0 > CLEAN_TIMEOUT:
                raise RuntimeError(f"{topic} not cleaned in {CLEAN_TIMEOUT} s")
            time.sleep(0.02)
        secs = time.perf_counter() - t0
        after = self.topic_bytes(topic)
        left = self.q1("SELECT count(*) FROM streamlog.history(%s)", (topic,))
        if left != self.keys:
            self.notes.append(f"{topic}: {fmt_int(left)} records left after cleaning, "
                              f"expected one per key ({fmt_int(self.keys)})")
        return secs, before, after, left

    def producer(self, stop, out):
        """Produce PRODUCE_TXN-record transactions until stop is set;
        out gets (records, seconds)"""
        with psycopg.connect(autocommit=True) as conn:
            n = 0
            t0 = time.perf_counter()
            while not stop.is_set():
                conn.execute("SELECT count(streamlog.produce('cbench_produce', NULL, "
                             "lpad(g::text, %s, 'x'), partition => 0)) "
                             "FROM generate_series(1, %s::integer) g", (VALUE, PRODUCE_TXN))
                n += PRODUCE_TXN
            out.append((n, time.perf_counter() - t0))

    def produce_for(self, seconds):
        stop, out = threading.Event(), []
        t = threading.Thread(target=self.producer, args=(stop, out))
        t.start()
        time.sleep(seconds)
        stop.set()
        t.join()
        return out[0]

    # -- the run -----------------------------------------------------------

    def facts(self):
        self.q("CREATE EXTENSION IF NOT EXISTS streamlog")
        ext = self.q1("SELECT extversion FROM pg_extension WHERE extname = 'streamlog'")
        settings = self.pg_settings("synchronous_commit", "fsync", "work_mem",
                                    "streamlog.retention_check_interval")
        cleaner = self.q("SELECT name, setting || coalesce(unit, '') FROM pg_settings "
                         "WHERE name LIKE 'streamlog.log\\_cleaner%%' ORDER BY name")
        facts = self.emit_head("streamlog log-compaction benchmark")
        self.emit(f"  extension   streamlog {ext} (git {facts['rev']}"
                  f"{', uncommitted changes' if facts['dirty'] else ''})")
        self.emit(f"  settings    shared_buffers={self.shared_buffers_mb()}MB "
                  + " ".join(f"{k}={v}" for k, v in settings.items()))
        self.emit("  cleaner     " + (" ".join(f"{k}={v}" for k, v in cleaner) or "(no log_cleaner settings)"))
        self.emit(f"  sizes       {fmt_int(self.records)} records of {VALUE} B values, "
                  f"{fmt_int(self.keys)} keys, one partition, segments of {fmt_int(CHUNK)} records")
        self.emit("  noise       2 cores shared with other work: compare figures of the same run")
        self.emit()

    def run(self):
        t_start = time.time()
        self.facts()
        config = {"cleanup.policy": "delete", "retention.ms": -1, "segment.bytes": 14}

        log(f"loading {fmt_int(self.records)} records into cbench_idle")
        self.create_topic("cbench_idle", config)
        load_secs = self.load("cbench_idle")
        log("loading the same records into a plain table")
        self.q("DROP TABLE IF EXISTS plain_kv, plain_dedup")
        self.q("CREATE TABLE plain_kv (off bigint, k text, v text)")
        for lo in range(0, self.records, CHUNK):
            self.q("INSERT INTO plain_kv SELECT g, 'k' || (g %% %s), lpad(g::text, %s, 'x') "
                   "  FROM generate_series(%s::bigint, %s::bigint) g",
                   (self.keys, VALUE, lo, min(lo + CHUNK, self.records) - 1))
        self.settle()

        log("peer: CREATE TABLE AS SELECT DISTINCT ON")
        plain_bytes = float(self.q1("SELECT pg_table_size('plain_kv')"))
        t0 = time.perf_counter()
        self.q("CREATE TABLE plain_dedup AS SELECT DISTINCT ON (k) off, k, v FROM plain_kv "
               " ORDER BY k, off DESC")
        peer_secs = time.perf_counter() - t0
        peer_left = self.q1("SELECT count(*) FROM plain_dedup")
        peer_after = float(self.q1("SELECT pg_table_size('plain_dedup')"))
        self.settle()

        log("cleaning cbench_idle (idle server)")
        idle = self.clean("cbench_idle")
        self.note_log("cleaning on an idle server")
        self.q("SELECT streamlog.drop_topic('cbench_idle')")

        log("loading cbench_busy")
        self.create_topic("cbench_busy", config)
        self.load("cbench_busy")
        self.create_topic("cbench_produce", {"retention.ms": -1})
        self.settle()
        # the producer alone, for as long as the idle cleaning took
        window = min(max(idle[0], 5.0), 120.0)
        log(f"producer alone for {window:.0f} s")
        alone = self.produce_for(window)
        self.settle()
        log("cleaning cbench_busy while the producer runs")
        stop, out = threading.Event(), []
        t = threading.Thread(target=self.producer, args=(stop, out))
        t.start()
        try:
            busy = self.clean("cbench_busy")
        finally:
            stop.set()
            t.join()
        during = out[0]
        self.note_log("cleaning while producing")

        rows = []
        for what, (secs, before, after, left) in (("streamlog cleaner, idle server", idle),
                                                 ("streamlog cleaner, producer running", busy)):
            rows.append((what, fmt_int(self.records), fmt_int(left), fmt_mb(before / MB),
                         fmt_mb(after / MB), f"{secs:.1f}", fmt_int(self.records / secs),
                         fmt_mb(before / MB / secs), fmt_ratio(peer_secs / secs)))
        rows.append(("peer: CREATE TABLE AS SELECT DISTINCT ON", fmt_int(self.records),
                     fmt_int(peer_left), fmt_mb(plain_bytes / MB), fmt_mb(peer_after / MB),
                     f"{peer_secs:.1f}", fmt_int(self.records / peer_secs),
                     fmt_mb(plain_bytes / MB / peer_secs), "1.00x"))
        self.emit(f"1. Cleaning {fmt_int(self.records)} records with {fmt_int(self.keys)} keys "
                  f"(loaded at {fmt_int(self.records / load_secs)} records/s by SQL produce)")
        self.emit(table(["", "records in", "records out", "MB in", "MB out", "seconds",
                         "records/s", "MB/s in", "vs peer"], rows))
        self.emit("  MB in: the dirty log (the topic's segments, or the plain table) before; "
                  "vs peer: peer seconds / seconds")
        self.emit()

        rate_alone = alone[0] / alone[1]
        rate_during = during[0] / during[1]
        self.emit(f"2. One SQL producer, {PRODUCE_TXN}-record transactions of {VALUE} B values, "
                  "into another topic")
        self.emit(table(["cleaner", "records", "seconds", "records/s", "vs idle"], [
            ("idle", fmt_int(alone[0]), f"{alone[1]:.1f}", fmt_int(rate_alone), "1.00x"),
            ("cleaning", fmt_int(during[0]), f"{during[1]:.1f}", fmt_int(rate_during),
             fmt_ratio(rate_during / rate_alone))]))
        self.emit()
        load = os.getloadavg()
        self.emit(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        for n in self.notes:
            self.emit(f"note: {n}")
        self.emit(f"total benchmark time {time.time() - t_start:.0f} s")
        self.publish("\n".join(self.out).rstrip() + "\n")


def main():
    ap = driver_arguments(__doc__, "server data directory", "server log file (errors are reported)")
    ap.add_argument("--records", type=int, help="records to clean (default 10M, 1M with --quick); "
                    "a tenth as many keys")
    CBench(ap.parse_args()).run()


if __name__ == "__main__":
    main()
