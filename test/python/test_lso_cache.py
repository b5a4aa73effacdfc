"""The last stable offset without a query (storage/transactions.h): the
partition's shared state counts its open transactions, and with none the
LSO is the high watermark.  streamlog.partition_lso_cache() exposes the
count and how many LSOs needed the query on streamlog.txn_open: a
server-side counter, never a timing."""

import kafka_helpers as kh
from test_txn_log import (append, fetch_v4, hwm, lso, marker, parse_fetch_v4,
                          produce)


def cache(conn, topic, partition=0):
    return conn.execute(
        "SELECT known, open_transactions, may_have_aborted, lso_queries, lso_skipped "
        "FROM streamlog.partition_lso_cache(%s, %s)", (topic, partition)).fetchone()


def test_topic_without_transactions_never_queries(server, conn, unique_name):
    topic = unique_name("lsoc")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    for i in range(5):
        produce(conn, topic, f"v{i}")
    with kh.RawClient(server.kafka_bootstrap) as c:
        for isolation in (1, 1, 0):
            err, hw, lso_, aborted_, batches = parse_fetch_v4(
                c.call(fetch_v4, topic, 0, 0, isolation))
            assert (err, hw, lso_, aborted_) == (0, 5, 5, [])
            assert len(batches) == 5
    # SQL readers and the views too
    assert len(conn.execute("SELECT * FROM streamlog.read(%s, 0)", (topic,)).fetchall()) == 5
    conn.execute("SELECT * FROM streamlog.partitions WHERE topic = %s", (topic,)).fetchall()
    known, open_txns, may_have_aborted, queries, skipped = cache(conn, topic)
    assert (known, open_txns, may_have_aborted, queries) == (True, 0, False, 0)
    assert skipped >= 5


def test_count_follows_transactions(conn, unique_name):
    topic = unique_name("lsoc")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce(conn, topic, "plain")                               # 0
    append(conn, topic, 0, 500, 0, 0, ["a"])                     # 1: opens 500
    append(conn, topic, 0, 500, 0, 1, ["b"])                     # 2: still one
    assert cache(conn, topic)[:3] == (True, 1, False)
    before = cache(conn, topic)[3]
    assert lso(conn, topic) == 1
    assert cache(conn, topic)[3] == before + 1                   # queried
    # An opening append rolled back takes its count back
    with conn.transaction():
        append(conn, topic, 0, 501, 0, 0, ["x"])
        conn.execute("SAVEPOINT s")
        append(conn, topic, 0, 502, 0, 0, ["y"])
        conn.execute("ROLLBACK TO SAVEPOINT s")
    assert cache(conn, topic)[1] == 2
    marker(conn, topic, 0, 501, 0, True)
    assert cache(conn, topic)[1] == 1
    # A marker rolled back in a subtransaction closes nothing
    with conn.transaction():
        conn.execute("SAVEPOINT s")
        marker(conn, topic, 0, 500, 0, True)
        conn.execute("ROLLBACK TO SAVEPOINT s")
    assert cache(conn, topic)[1] == 1
    assert lso(conn, topic) == 1
    marker(conn, topic, 0, 500, 0, False)
    known, open_txns, may_have_aborted, queries, skipped = cache(conn, topic)
    assert (known, open_txns, may_have_aborted) == (True, 0, True)
    assert lso(conn, topic) == hwm(conn, topic)
    # Without the query (the partitions view computes the LSO too)
    after = cache(conn, topic)
    assert after[3] == queries and after[4] > skipped


def test_count_rebuilt_after_kill9(make_server, unique_name):
    srv = make_server()
    topic = unique_name("lsoc")
    quiet = unique_name("lsoc")
    with srv.connect() as conn:
        conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
        conn.execute("SELECT streamlog.create_topic(%s, 1)", (quiet,))
        produce(conn, quiet, "q")
        produce(conn, topic, "before")
        append(conn, topic, 0, 42, 0, 0, ["open"])
        produce(conn, topic, "after")
    srv.kill9()
    srv.start()
    with srv.connect() as conn:
        assert lso(conn, topic) == 1
        assert cache(conn, topic)[:3] == (True, 1, False)
        assert lso(conn, quiet) == 1
        assert cache(conn, quiet)[:4] == (True, 0, False, 0)
        marker(conn, topic, 0, 42, 0, True)
        assert lso(conn, topic) == hwm(conn, topic) == 4
        assert cache(conn, topic)[1] == 0
