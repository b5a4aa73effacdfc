"""Log compaction (cleanup.policy=compact): streamlog.clean() and the
background cleaner keep the last record of each key at its offset, with its
timestamp and headers; tombstones go after delete.retention.ms; readers
during a pass miss nothing; a crash mid-pass loses nothing."""

import psycopg
import pytest
from psycopg.types.json import Jsonb
from pgserver import wait_until

# The cleaner rolls segments every 200 ms; compaction only when a test
# turns it on, so that clean()'s figures are its own.
CONF = {"streamlog.retention_check_interval": "200ms",
        "streamlog.log_cleaner_enable": "off"}


def create_topic(conn, topic, config, partitions=1):
    conn.execute("SELECT streamlog.create_topic(%s, %s, %s)",
                 (topic, partitions, Jsonb(config)))


def segment_count(conn, topic, partition=0):
    """Segments that appends have reached (base offset set)."""
    return conn.execute(
        "SELECT count(s.base_offset) FROM streamlog.segment s "
        "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s AND s.partition = %s",
        (topic, partition)).fetchone()[0]


def produce_segment(conn, topic, records, partition=0):
    """Produce records [(key, value)] in one transaction, then wait for the
    cleaner to roll the segment they went to (segment.ms is tiny)."""
    before = segment_count(conn, topic, partition)
    with conn.transaction():
        for key, value in records:
            conn.execute("SELECT streamlog.produce(%s, %s::text, %s::text, partition => %s)",
                         (topic, key, value, partition))
    wait_until(lambda: segment_count(conn, topic, partition) > before, 30,
               "the segment to roll")


def history(conn, topic, partition=0):
    return [(off, None if k is None else bytes(k).decode(),
             None if v is None else bytes(v).decode())
            for off, k, v in conn.execute(
                'SELECT "offset", key, value FROM streamlog.history(%s, ARRAY[%s])',
                (topic, partition)).fetchall()]


def latest_model(records):
    """{key: (offset, value)} of the last record of each key."""
    model = {}
    for off, key, value in records:
        if key is not None:
            model[key] = (off, value)
    return model


def test_clean_keeps_last_record_of_each_key(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("cmp")
    create_topic(conn, topic, {"cleanup.policy": "compact", "segment.ms": 1})

    for round_ in range(3):
        produce_segment(conn, topic, [("k%d" % (i % 5), "v%d-%d" % (round_, i))
                                      for i in range(10)])
    before = history(conn, topic)
    assert len(before) == 30
    model = latest_model(before)

    rows = conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,)).fetchall()
    assert len(rows) == 1
    partition, cleaned_offset, removed, reclaimed = rows[0]
    assert partition == 0
    assert cleaned_offset == 30
    assert removed == 25

    after = history(conn, topic)
    assert [(off, k, v) for off, k, v in after] == sorted(
        (off, k, v) for k, (off, v) in model.items())
    # offsets never change: each survivor is where it was
    assert set(after) <= set(before)

    # a second clean finds nothing dirty
    rows = conn.execute("SELECT * FROM streamlog.clean(%s, 0)", (topic,)).fetchall()
    assert rows == [(0, 30, 0, 0)]
    assert history(conn, topic) == after


def test_clean_errors(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("plain")
    create_topic(conn, topic, {})
    with pytest.raises(psycopg.Error) as exc:
        conn.execute("SELECT * FROM streamlog.clean(%s)", (topic,))
    assert exc.value.sqlstate == "22023"
    assert "not compacted" in exc.value.diag.message_primary
    assert "cleanup.policy" in exc.value.diag.message_hint
