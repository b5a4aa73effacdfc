#!/usr/bin/python3
"""A compaction pass over a log of Kafka transactions next to one over the
same records without transactions (issue 14).  The cleaner decides on
each transactional batch and marker (txn_cleaner.c) and removes aborted
transactions whole: what does that cost a pass, and what does it remove?

Each log: one partition of 50,000 records of 100 B over 1,000 keys, in
batches of 100 records (one SQL transaction each).  The plain topic's
batches are produced by SQL; the transactional topic's are transactional
batches of 20 producers (one transaction of 5 batches each, in turn),
every other transaction aborted, each ended by its marker.  Every segment
is closed (rolled) before the pass.  streamlog.clean() is timed (median
of 3 runs, each on fresh topics); then the second and third passes that
remove the markers (delete.retention.ms 0).

    PG_CONFIG=/path/to/pg_config bench/transactions/compaction.py [--quick]
"""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "python"))
from pgserver import PgServer, wait_until  # noqa: E402

RUNS = 3
KEYS = 1000
BATCH = 100
PRODUCERS = 20
VALUE = "x" * 100
CONFIG = ('{"cleanup.policy": "compact", "segment.bytes": "1048576", '
          '"min.cleanable.dirty.ratio": "0.99", "delete.retention.ms": "0"}')


def keys_of(i):
    return [f"k{(i * BATCH + j) % KEYS:04d}" for j in range(BATCH)]


def roll(conn, topic):
    """Close the active segment: a tiny segment.bytes rolls it at the
    cleaner's next check, then back"""
    hwm = conn.execute("SELECT high_watermark FROM streamlog.partitions WHERE topic = %s",
                       (topic,)).fetchone()[0]
    conn.execute("SELECT streamlog.alter_topic(%s, '{\"segment.bytes\": \"14\"}')", (topic,))

    def rolled():
        return conn.execute(
            "SELECT max(g.base_offset) = %s FROM streamlog.segment g "
            "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s",
            (hwm, topic)).fetchone()[0]
    wait_until(rolled, 120, f"{topic} rolled", interval=0.1)
    conn.execute("SELECT streamlog.alter_topic(%s, '{\"segment.bytes\": \"1048576\"}')",
                 (topic,))


def load_plain(conn, topic, batches):
    for i in range(batches):
        conn.execute("SELECT count(streamlog.produce(%s, k, %s::text, partition => 0)) "
                     "FROM unnest(%s::text[]) k", (topic, VALUE, keys_of(i)))


def load_transactional(conn, topic, batches):
    seq = [0] * PRODUCERS
    i = 0
    txn = 0
    while i < batches:
        pid = 1000 + txn % PRODUCERS
        for _ in range(5):
            if i == batches:
                break
            conn.execute("SELECT streamlog._txn_test_append(%s, 0, %s, 0::smallint, %s, %s, %s)",
                         (topic, pid, seq[pid - 1000], [VALUE] * BATCH, keys_of(i)))
            seq[pid - 1000] += BATCH
            i += 1
        conn.execute("SELECT streamlog._txn_test_marker(%s, 0, %s, 0::smallint, %s)",
                     (topic, pid, txn % 2 == 0))
        txn += 1


def clean(conn, topic):
    t0 = time.perf_counter()
    removed = conn.execute("SELECT records_removed FROM streamlog.clean(%s::text, 0)",
                           (topic,)).fetchone()[0]
    return time.perf_counter() - t0, removed


def left(conn, topic):
    return conn.execute("SELECT count(*) FROM streamlog.read(%s, 0, 0, 1000000, "
                        "'read_uncommitted')", (topic,)).fetchone()[0]


def main():
    records = 10_000 if "--quick" in sys.argv else 50_000
    batches = records // BATCH
    rows = {"plain": [], "transactional": []}
    with PgServer(name="txcompact", conf={"streamlog.retention_check_interval": 200,
                                          "streamlog.log_cleaner_enable": False}) as srv:
        with srv.connect() as conn:
            for run in range(RUNS):
                for kind, load in (("plain", load_plain), ("transactional", load_transactional)):
                    topic = f"txc_{kind}_{run}"
                    conn.execute("SELECT streamlog.create_topic(%s, 1, %s::jsonb)",
                                 (topic, CONFIG))
                    load(conn, topic, batches)
                    roll(conn, topic)
                    conn.execute("VACUUM ANALYZE")
                    conn.execute("CHECKPOINT")
                    first = clean(conn, topic)
                    later = [clean(conn, topic), clean(conn, topic)]
                    rows[kind].append((first, later, left(conn, topic)))
    print(f"log: 1 partition, {records} records of 100 B over {KEYS} keys, "
          f"batches of {BATCH}; median of {RUNS}")
    print(f"{'log':<14} {'1st pass ms':>11} {'recs/s':>10} {'removed':>8} "
          f"{'2nd+3rd ms':>10} {'removed':>8} {'left':>6}")
    medians = {}
    for kind, runs in rows.items():
        ms = statistics.median(r[0][0] for r in runs) * 1000
        medians[kind] = ms
        later_ms = statistics.median(sum(p[0] for p in r[1]) for r in runs) * 1000
        print(f"{kind:<14} {ms:>11.0f} {records / ms * 1000:>10.0f} {runs[0][0][1]:>8} "
              f"{later_ms:>10.0f} {sum(p[1] for p in runs[0][1]):>8} {runs[0][2]:>6}")
    print(f"transactional / plain first pass time: "
          f"{medians['transactional'] / medians['plain']:.2f}x")


if __name__ == "__main__":
    main()
