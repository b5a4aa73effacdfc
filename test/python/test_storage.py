"""How batches are stored: a batch larger than a heap page is cut into
page-sized rows (pieces 0..k, never TOASTed) and comes back whole, byte for
byte, to SQL readers and Kafka consumers; a stored batch that cannot be put
back together is a clear error that costs only its partition."""

import os

import pytest
from confluent_kafka import Producer
from psycopg import errors, sql

import kafka_helpers as kh


def segment_tables(conn, topic, partition):
    return [rel for (rel,) in conn.execute(
        "SELECT s.relid::regclass::text FROM streamlog.segment s "
        "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s AND s.partition = %s "
        "ORDER BY s.seq", (topic, partition)).fetchall()]


def pieces(conn, table):
    """[(last_offset, chunk, bytes of the piece)] of a segment table, in order."""
    return conn.execute(sql.SQL(
        "SELECT last_offset, chunk, length(batch) FROM {} ORDER BY last_offset, chunk").format(
            sql.SQL(table))).fetchall()


def sql_values(conn, topic, partition):
    return [(off, bytes(v)) for off, v in conn.execute(
        'SELECT "offset", value FROM streamlog.read(%s, %s, 0, 1000000)',
        (topic, partition)).fetchall()]


@pytest.mark.parametrize("codec", ["none", "lz4"])
def test_kafka_batches_larger_than_a_page_come_back_whole(server, unique_name, codec):
    topic = unique_name(f"pieces-{codec}")
    conn = server.connect()
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    # Values that do not compress away, so that lz4 batches span pages too
    values = [os.urandom(20_000) + str(i).encode() for i in range(60)]
    producer = Producer({"bootstrap.servers": server.kafka_bootstrap, "acks": "all",
                         "linger.ms": 200, "compression.type": codec})
    for i, v in enumerate(values):
        producer.produce(topic, key=str(i).encode(), value=v, partition=0)
    assert producer.flush(30) == 0

    [table] = segment_tables(conn, topic, 0)
    rows = pieces(conn, table)
    by_batch = {}
    for last, chunk, length in rows:
        by_batch.setdefault(last, []).append((chunk, length))
    assert any(len(p) > 1 for p in by_batch.values()), "no batch spans several rows"
    for last, p in by_batch.items():
        assert [c for c, _ in p] == list(range(len(p))), f"pieces of batch {last}: {p}"
        # every piece but the last one is full, and each fits a page
        assert all(length == p[0][1] for _, length in p[:-1]), p
        assert all(length <= 8192 for _, length in p), p

    assert sql_values(conn, topic, 0) == list(enumerate(values))
    fetched = kh.ck_consume(server.kafka_bootstrap, topic, 0, len(values))
    assert [(off, v) for off, _k, v, _h, _ts in fetched] == list(enumerate(values))
    conn.close()


def test_a_missing_piece_is_a_clear_error_and_fails_only_its_partition(
        make_server, unique_name):
    srv = make_server()
    topic = unique_name("pieces-missing")
    conn = srv.connect()
    conn.execute("SELECT streamlog.create_topic(%s, 2)", (topic,))
    # One transaction, one batch per partition of about 60 kB
    conn.execute("SELECT streamlog.produce(%s, NULL, repeat(md5(g::text), 64), partition => p) "
                 "FROM generate_series(0, 1) p, generate_series(1, 30) g", (topic,))
    [table] = segment_tables(conn, topic, 0)
    assert max(chunk for _, chunk, _ in pieces(conn, table)) >= 2
    good = sql_values(conn, topic, 1)
    assert len(good) == 30

    conn.execute(sql.SQL("DELETE FROM {} WHERE chunk = 1").format(sql.SQL(table)))
    with pytest.raises(errors.DataCorrupted) as exc:
        sql_values(conn, topic, 0)
    assert "piece 1 of the stored batch is missing" in str(exc.value)
    assert f'partition 0 of topic "{topic}"' in str(exc.value)

    log_offset = len(srv.log_text())
    with kh.RawClient(srv.kafka_bootstrap) as c:
        for partition in (0, 1):
            got = kh.parse_fetch_v4(c.call(kh.fetch_request, topic, partition, 0))
            err, hwm, records = got[(topic, partition)]
            assert hwm == 30
            if partition == 0:
                assert (err, records) == (kh.KAFKA_STORAGE_ERROR, b"")
            else:
                assert err == 0 and len(records) > 60_000
    kh.wait_log(srv, log_offset, r"fetch from partition 0 of topic .* failed: corrupt record "
                r"batch at offset 0 .*piece 1 of the stored batch is missing")
    # the connection stayed up: the second fetch above went over it
    kh.assert_server_healthy(srv, topic)
    conn.close()


def test_a_batch_length_out_of_range_is_a_clear_error(make_server, unique_name):
    srv = make_server()
    topic = unique_name("pieces-length")
    conn = srv.connect()
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    conn.execute("SELECT streamlog.produce(%s, 'k', 'v')", (topic,))
    [table] = segment_tables(conn, topic, 0)
    # batchLength (bytes 8..11 of the header) claims 2 GB
    conn.execute(sql.SQL("UPDATE {} SET batch = overlay(batch PLACING '\\x7fffffff'::bytea "
                         "FROM 9 FOR 4)").format(sql.SQL(table)))
    with pytest.raises(errors.DataCorrupted) as exc:
        sql_values(conn, topic, 0)
    assert "stored batch length is out of range" in str(exc.value)
    conn.close()
