"""The WAL segments a Kafka producer's appends are about to fill are made
ahead by another broker worker (wal_prealloc.h), not by the broker serving
the producer when its commit first needs them; PostgreSQL alone makes a
segment ahead only at a checkpoint, one."""

import confluent_kafka as ck

from pgserver import wait_until


def segments_ahead(srv):
    """How many WAL segments exist past the one being written"""
    (current, size), = srv.sql(
        "SELECT pg_walfile_name(pg_current_wal_insert_lsn()), "
        "(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')")
    per_log = 0x100000000 // size

    def number(name):
        return int(name[8:16], 16) * per_log + int(name[16:24], 16)

    names = [n for (n,) in srv.sql("SELECT name FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'")]
    return sum(1 for n in names if n[:8] == current[:8] and number(n) > number(current))


def test_next_segments_are_made_ahead(make_server, unique_name):
    srv = make_server(conf={"streamlog.broker_workers": 2})
    topic = unique_name("prealloc")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    p = ck.Producer({"bootstrap.servers": srv.kafka_bootstrap, "acks": "all"})
    # a few MB, so that the appends cross into a new segment now and then
    for i in range(3000):
        p.produce(topic, value=bytes(1000))
    assert p.flush(60) == 0
    wait_until(lambda: segments_ahead(srv) >= 4, 60, "four WAL segments made ahead")
