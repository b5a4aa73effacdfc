#!/usr/bin/python3
"""read_committed readers of a topic that never had a transaction: what
computing the last stable offset costs them.  Before the LSO cache every
read_committed Fetch partition and every SQL read() paid a query on
streamlog.txn_open (and one on streamlog.txn_aborted); with it, a
partition without open transactions answers from shared memory.  Run it
on two builds to compare them; each run prints read_uncommitted as the
peer measured next to it (same log, same server, same run).

The log: 8 partitions of 25,000 records of 100 B (produced by SQL, one
batch per 100 records).  Readers:

- a Kafka consumer (confluent-kafka) reading all 8 partitions with
  max.partition.fetch.bytes 16 KiB, so that it makes many Fetch requests;
- SQL read() of 100 records per call, partition after partition.

Each figure is the median of 3 runs; ratio = read_committed /
read_uncommitted.  Then the server-side count of LSOs computed with and
without the query (streamlog.partition_lso_cache), where it exists.

    PG_CONFIG=/path/to/pg_config bench/transactions/lso_cache.py [--quick]
"""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "python"))
from pgserver import PgServer  # noqa: E402

RUNS = 3
PARTITIONS = 8
VALUE = "x" * 100


def kafka_consume(bootstrap, topic, isolation, expected):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{time.time()}",
                  "enable.auto.commit": False, "isolation.level": isolation,
                  "max.partition.fetch.bytes": 16 << 10, "fetch.max.bytes": 128 << 10,
                  "message.max.bytes": 64 << 10})
    t0 = time.perf_counter()
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    n = 0
    deadline = time.monotonic() + 300
    while n < expected and time.monotonic() < deadline:
        msgs = c.consume(500, timeout=1.0)
        n += sum(1 for m in msgs if m.error() is None)
    elapsed = time.perf_counter() - t0
    c.close()
    return n, elapsed


def sql_read(conn, topic, isolation, per_partition):
    n = 0
    t0 = time.perf_counter()
    for p in range(PARTITIONS):
        offset = 0
        while offset < per_partition:
            got = conn.execute("SELECT count(*) FROM streamlog.read(%s, %s, %s, 100, %s)",
                               (topic, p, offset, isolation)).fetchone()[0]
            if got == 0:
                break
            n += got
            offset += got
    return n, time.perf_counter() - t0


def main():
    per_partition = 5000 if "--quick" in sys.argv else 25000
    results = []
    with PgServer(name="lsobench") as srv:
        with srv.connect() as conn:
            topic = "lso_plain"
            conn.execute("SELECT streamlog.create_topic(%s, %s)", (topic, PARTITIONS))
            for p in range(PARTITIONS):
                for _ in range(per_partition // 100):
                    conn.execute("SELECT count(streamlog.produce(%s, NULL, %s::text, "
                                 "partition => %s)) FROM generate_series(1, 100)",
                                 (topic, VALUE, p))
            total = per_partition * PARTITIONS
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
            for what, run in (
                    ("Kafka consumer", lambda iso: kafka_consume(srv.kafka_bootstrap, topic,
                                                                 iso, total)),
                    ("SQL read() x100", lambda iso: sql_read(conn, topic, iso,
                                                             per_partition))):
                row = [what]
                rates = {}
                for iso in ("read_uncommitted", "read_committed"):
                    runs = [run(iso) for _ in range(RUNS)]
                    rates[iso] = statistics.median(n / s for n, s in runs)
                    row += [runs[0][0], rates[iso]]
                row.append(rates["read_committed"] / rates["read_uncommitted"])
                results.append(row)
            try:
                counts = conn.execute(
                    "SELECT sum(lso_queries), sum(lso_skipped) FROM generate_series(0, %s) p, "
                    "streamlog.partition_lso_cache(%s, p)", (PARTITIONS - 1, topic)).fetchone()
            except Exception:
                counts = None
    print(f"log: {PARTITIONS} partitions x {per_partition} records of 100 B, "
          "no transaction ever")
    print(f"{'reader':<16} {'uncommitted recs':>16} {'recs/s':>10} "
          f"{'committed recs':>15} {'recs/s':>10} {'ratio':>6}")
    for what, n_u, r_u, n_c, r_c, ratio in results:
        print(f"{what:<16} {n_u:>16} {r_u:>10.0f} {n_c:>15} {r_c:>10.0f} {ratio:>6.2f}")
    if counts is None:
        print("LSO cache: not in this build (every read_committed LSO queried txn_open)")
    else:
        print(f"LSOs computed: {counts[0]} with the query, {counts[1]} without")


if __name__ == "__main__":
    main()
