#!/usr/bin/python3
"""Leader epochs from the stored batches: what "where did epoch E end?"
costs as the log grows, next to reading the partition's offsets (the
cheapest call on the same partition, same server, same run).

OffsetForLeaderEpoch has no epoch file to read: it binary-searches the
stored batches (epoch_search.c), so its cost should grow with log2 of the
batches, not with their number.  For logs of 1k, 10k and 100k batches (one
batch per commit, the epoch raised every tenth of the log) it prints the
mean time of streamlog._epoch_end_offset() for an epoch in the middle,
next to SELECT high_watermark FROM streamlog.partitions on the same
partition, and the time of a truncation of the last batch (rolled back).

    PG_CONFIG=/path/to/pg_config bench/replica_log/epochs.py [--quick]

It starts a throw-away server with test/python/pgserver.py.
"""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "python"))
from pgserver import PgServer  # noqa: E402

CALLS = 2000


def mean_ms(conn, sql, params, calls=CALLS):
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        conn.execute(sql, params).fetchall()
        times.append(time.perf_counter() - t0)
    return statistics.mean(times) * 1000


def main():
    quick = "--quick" in sys.argv
    sizes = (1000, 10000) if quick else (1000, 10000, 100000)
    rows = []
    with PgServer(name="epochbench") as srv:
        with srv.connect() as conn:
            for n in sizes:
                topic = f"epochs_{n}"
                conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
                tid = conn.execute("SELECT topic_id FROM streamlog.topic WHERE name = %s",
                                   (topic,)).fetchone()[0]
                t0 = time.perf_counter()
                for i in range(n):
                    if i % (n // 10) == 0:
                        # the epoch this node leads in, as a leader change sets it
                        conn.execute("UPDATE streamlog.partition SET leader_epoch = %s "
                                     "WHERE topic_id = %s", (i // (n // 10), tid))
                        conn.execute("SELECT streamlog.alter_topic(%s, %s::jsonb)",
                                     (topic, '{"retention.ms": "%d"}' % (86400000 + i)))
                    conn.execute("SELECT streamlog.produce(%s, NULL, 'v'::bytea, partition => 0)",
                                 (topic,))
                fill_s = time.perf_counter() - t0
                epoch_ms = mean_ms(conn, "SELECT * FROM streamlog._epoch_end_offset(%s, 0, 4)",
                                   (tid,))
                peer_ms = mean_ms(conn, "SELECT high_watermark FROM streamlog.partitions "
                                  "WHERE topic = %s AND partition = 0", (topic,))
                end = conn.execute("SELECT * FROM streamlog._epoch_end_offset(%s, 0, 4)",
                                   (tid,)).fetchone()
                assert end == (4, n // 10 * 5), end
                with srv.connect(autocommit=False) as t:
                    t0 = time.perf_counter()
                    t.execute("SELECT streamlog._truncate_partition(%s, 0, %s)", (tid, n - 1))
                    trunc_ms = (time.perf_counter() - t0) * 1000
                    t.rollback()
                rows.append((n, fill_s, epoch_ms, peer_ms, trunc_ms))
    print(f"{'batches':>8} {'fill s':>7} {'epoch end ms':>13} {'offsets ms (peer)':>18} "
          f"{'ratio':>6} {'truncate last ms':>17}")
    for n, fill_s, epoch_ms, peer_ms, trunc_ms in rows:
        print(f"{n:>8} {fill_s:>7.1f} {epoch_ms:>13.3f} {peer_ms:>18.3f} "
              f"{epoch_ms / peer_ms:>6.2f} {trunc_ms:>17.2f}")


if __name__ == "__main__":
    main()
