#!/usr/bin/python3
"""read_committed next to read_uncommitted: what the transaction filter
costs a reader, on the same log, same server, same run.

The log of one partition holds plain records (SQL produce(), 100 B values,
100 per transaction) interleaved with Kafka-style transactions of 100
records (streamlog._txn_test_append, the internal door until the
transaction coordinator lands), one in ten of them aborted, each closed by
its marker.  It then reads the whole partition at both isolation levels:

- SQL history(): records/s of the full scan;
- SQL consume(): records/s of a group consuming it all, 10,000 per call;
- a Kafka consumer (confluent-kafka, isolation.level): records/s of a
  consumer reading it all, which filters aborted records from the Fetch
  response's aborted_transactions list itself.

Each figure is the median of 3 runs; ratio = read_committed /
read_uncommitted (1.0 = the filter costs nothing; the read_committed
reader also returns 5% fewer records, the aborted ones).

    PG_CONFIG=/path/to/pg_config bench/transactions/isolation.py [--quick]

It starts a throw-away server with test/python/pgserver.py.
"""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "python"))
from pgserver import PgServer  # noqa: E402

RUNS = 3
VALUE = "x" * 100


def fill(conn, topic, transactions):
    for t in range(transactions):
        with conn.transaction():
            conn.execute("SELECT count(streamlog.produce(%s, NULL, %s::text, partition => 0)) "
                         "FROM generate_series(1, 100)", (topic, VALUE))
        pid = 1000 + t
        conn.execute("SELECT streamlog._txn_test_append(%s, 0, %s, 0::smallint, 0, %s)",
                     (topic, pid, [VALUE] * 100))
        conn.execute("SELECT streamlog._txn_test_marker(%s, 0, %s, 0::smallint, %s)",
                     (topic, pid, t % 10 != 9))


def sql_history(conn, topic, isolation):
    t0 = time.perf_counter()
    n = conn.execute("SELECT count(*) FROM streamlog.history(%s, isolation => %s)",
                     (topic, isolation)).fetchone()[0]
    return n, time.perf_counter() - t0


def sql_consume(conn, topic, isolation, group):
    n = 0
    t0 = time.perf_counter()
    while True:
        got = conn.execute("SELECT count(*) FROM streamlog.consume(%s, %s, 10000, "
                           "isolation => %s)", (group, topic, isolation)).fetchone()[0]
        if got == 0:
            break
        n += got
    return n, time.perf_counter() - t0


def kafka_consume(bootstrap, topic, isolation, expected):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{time.time()}",
                  "enable.auto.commit": False, "isolation.level": isolation,
                  "fetch.max.bytes": 50 << 20, "max.partition.fetch.bytes": 10 << 20})
    # From the assignment on: librdkafka fetches ahead of consume() calls,
    # so a clock started at the first record would miss the fetching
    t0 = time.perf_counter()
    c.assign([TopicPartition(topic, 0, 0)])
    n = 0
    deadline = time.monotonic() + 300
    while n < expected and time.monotonic() < deadline:
        # The counts are multiples of 500: no call waits out its timeout
        msgs = c.consume(500, timeout=1.0)
        n += sum(1 for m in msgs if m.error() is None)
    elapsed = time.perf_counter() - t0
    c.close()
    return n, elapsed


def median_rate(runs):
    rates = [n / s for n, s in runs]
    return runs[0][0], statistics.median(rates)


def main():
    quick = "--quick" in sys.argv
    transactions = 200 if quick else 1000
    results = []
    with PgServer(name="txnbench") as srv:
        with srv.connect() as conn:
            topic = "txn_isolation"
            conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
            t0 = time.perf_counter()
            fill(conn, topic, transactions)
            fill_s = time.perf_counter() - t0
            total = conn.execute("SELECT high_watermark FROM streamlog.partitions "
                                 "WHERE topic = %s", (topic,)).fetchone()[0]
            # Markers are no records; aborted ones are for read_uncommitted only
            expected = {"read_uncommitted": total - transactions,
                        "read_committed": total - transactions - transactions // 10 * 100}
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
            for what, run in (
                    ("SQL history()", lambda iso, i: sql_history(conn, topic, iso)),
                    ("SQL consume()", lambda iso, i: sql_consume(conn, topic, iso,
                                                                 f"g-{iso}-{i}")),
                    ("Kafka consumer", lambda iso, i: kafka_consume(
                        srv.kafka_bootstrap, topic, iso, expected[iso]))):
                row = [what]
                rates = {}
                for iso in ("read_uncommitted", "read_committed"):
                    n, rate = median_rate([run(iso, i) for i in range(RUNS)])
                    rates[iso] = rate
                    row += [n, rate]
                row.append(rates["read_committed"] / rates["read_uncommitted"])
                results.append(row)
    print(f"log: {total} offsets ({transactions} SQL transactions of 100 records, "
          f"{transactions} Kafka transactions of 100 records, 10% aborted, "
          f"{transactions} markers); filled in {fill_s:.1f} s")
    print(f"{'reader':<16} {'uncommitted recs':>16} {'recs/s':>10} "
          f"{'committed recs':>15} {'recs/s':>10} {'ratio':>6}")
    for what, n_u, r_u, n_c, r_c, ratio in results:
        print(f"{what:<16} {n_u:>16} {r_u:>10.0f} {n_c:>15} {r_c:>10.0f} {ratio:>6.2f}")


if __name__ == "__main__":
    main()
