"""Retention: the cleaner rolls segments and drops whole old ones, moving
log_start_offset; reads below it fail clearly; nothing newer is lost."""

import threading
import time

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.types.json import Jsonb
from pgserver import wait_until

CONF = {"streamlog.retention_check_interval": "200ms"}



def partition_row(conn, topic, partition=0):
    row = conn.execute(
        "SELECT log_start_offset, high_watermark, bytes, segments FROM streamlog.partitions "
        "WHERE topic = %s AND partition = %s", (topic, partition)).fetchone()
    return dict(zip(("log_start", "hwm", "bytes", "segments"), row))


def segments(conn, topic, partition=0):
    """[(seq, relid, table name)] of a partition's segments."""
    return conn.execute(
        "SELECT s.seq, s.relid::oid, s.relid::regclass::text FROM streamlog.segment s "
        "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s AND s.partition = %s "
        "ORDER BY s.seq", (topic, partition)).fetchall()


def read(conn, topic, partition, from_offset):
    return [(off, bytes(v).decode()) for off, v in conn.execute(
        'SELECT "offset", value FROM streamlog.read(%s, %s, %s, 10000000)',
        (topic, partition, from_offset)).fetchall()]


def create_topic(conn, topic, partitions, config):
    conn.execute("SELECT streamlog.create_topic(%s, %s, %s)",
                 (topic, partitions, Jsonb(config)))


def test_retention_ms_drops_old_segments(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("ret-ms")
    create_topic(conn, topic, 2, {"retention.ms": 1500, "segment.ms": 500})

    for t in range(3):
        conn.execute("SELECT streamlog.produce(%s, NULL, 'old ' || %s || '/' || g, "
                     "partition => 0) FROM generate_series(1, 50) g", (topic, t))
    old_count = 150
    old_relids = [relid for _, relid, _ in segments(conn, topic)]
    assert read(conn, topic, 0, 0)[-1] == (old_count - 1, "old 2/50")

    state = wait_until(lambda: (lambda s: s if s["log_start"] >= old_count else None)(
        partition_row(conn, topic)), 15, "log_start_offset to pass the old records")
    assert state["hwm"] == old_count

    with pytest.raises(psycopg.Error) as exc:
        read(conn, topic, 0, 0)
    assert exc.value.sqlstate == "22023"
    assert "log start offset" in exc.value.diag.message_primary
    assert str(state["log_start"]) in exc.value.diag.message_primary
    with pytest.raises(psycopg.Error) as exc:
        read(conn, topic, 0, state["log_start"] - 1)
    assert exc.value.sqlstate == "22023"
    assert read(conn, topic, 0, state["log_start"]) == []

    # the dropped segments are gone as tables, not emptied by DELETE
    [(left,)] = conn.execute("SELECT count(*) FROM pg_class WHERE oid = ANY(%s::oid[])",
                             (old_relids,)).fetchall()
    assert left == 0
    live = segments(conn, topic)
    assert live and not set(old_relids) & {relid for _, relid, _ in live}

    # newer records (timestamped an hour ahead, so not due for deletion)
    conn.execute("SELECT streamlog.produce(%s, NULL, 'new ' || g, partition => 0, "
                 "ts => now() + interval '1 hour') FROM generate_series(1, 20) g", (topic,))
    new_start = state["log_start"]
    expected_new = [(new_start + g - 1, f"new {g}") for g in range(1, 21)]
    assert read(conn, topic, 0, new_start) == expected_new

    # meanwhile partition 1 keeps getting records; its segments roll and
    # expire while those of partition 0 must stay
    max_segments = 0
    p1_starts = set()
    deadline = time.monotonic() + 4
    n = 0
    while time.monotonic() < deadline or len(p1_starts) < 3:
        conn.execute("SELECT streamlog.produce(%s, NULL, 'churn ' || %s, partition => 1)",
                     (topic, n))
        n += 1
        s = partition_row(conn, topic, 1)
        p1_starts.add(s["log_start"])
        max_segments = max(max_segments, s["segments"])
        assert time.monotonic() < deadline + 60, "partition 1 was not trimmed"
        time.sleep(0.05)
    assert max_segments <= 8, f"segments kept piling up: {max_segments}"
    assert partition_row(conn, topic, 1)["log_start"] > 0

    assert partition_row(conn, topic, 0)["log_start"] == new_start
    assert read(conn, topic, 0, new_start) == expected_new
    assert partition_row(conn, topic, 0)["segments"] <= 3

    relids = [relid for p in (0, 1) for _, relid, _ in segments(conn, topic, p)]
    rows = conn.execute(
        "SELECT relname, n_tup_del FROM pg_stat_user_tables "
        "WHERE schemaname = 'streamlog_data' AND relid = ANY(%s::oid[])",
        (relids,)).fetchall()
    assert rows and all(deleted == 0 for _, deleted in rows), rows
    conn.close()


def test_retention_bytes_bounds_the_partition(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("ret-bytes")
    retention = 300_000
    create_topic(conn, topic, 1, {"retention.bytes": str(retention), "segment.bytes": "100000",
                                  "retention.ms": -1})

    produced = 0
    max_segment_bytes = 0
    for t in range(10):
        seq_before = segments(conn, topic)[-1][0]
        conn.execute("SELECT streamlog.produce(%s, NULL, %s || ':' || g || ':' "
                     "|| repeat('x', 1000), partition => 0) FROM generate_series(1, 100) g",
                     (topic, t))
        produced += 100
        # let the cleaner roll the segment before the next ~100 kB
        wait_until(lambda: segments(conn, topic)[-1][0] > seq_before, 15,
                   f"a segment roll after transaction {t}")
        for _, relid, _ in segments(conn, topic):
            # NULL if the cleaner dropped it meanwhile
            [(size,)] = conn.execute("SELECT pg_total_relation_size(%s::oid)",
                                     (relid,)).fetchall()
            max_segment_bytes = max(max_segment_bytes, size or 0)

    bound = retention + 2 * max_segment_bytes
    state = wait_until(
        lambda: (lambda s: s if s["bytes"] <= bound and s["log_start"] > 0 else None)(
            partition_row(conn, topic)), 15, f"the partition to shrink to {bound} bytes")
    assert state["hwm"] == produced
    assert state["bytes"] >= retention // 2, "retention removed more than it had to"

    rows = read(conn, topic, 0, state["log_start"])
    assert [off for off, _ in rows] == list(range(state["log_start"], produced))
    # the newest records, the last transactions, are intact
    assert [v for _, v in rows[-200:]] == \
        [f"{t}:{g}:" + "x" * 1000 for t in (8, 9) for g in range(1, 101)]
    with pytest.raises(errors.InvalidParameterValue):
        read(conn, topic, 0, state["log_start"] - 1)
    conn.close()


def test_records_produced_while_segments_roll_are_all_kept(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("ret-roll")
    create_topic(conn, topic, 1, {"retention.ms": -1, "segment.ms": 1})

    produced = []
    failures = []
    stop = threading.Event()

    def writer():
        try:
            with srv.connect(autocommit=False) as c:
                n = 0
                while not stop.is_set():
                    vals = [f"v{n + i}" for i in range(5)]
                    c.execute("SELECT streamlog.produce(%s, NULL, v, partition => 0) "
                              "FROM unnest(%s::text[]) WITH ORDINALITY AS u(v, o) ORDER BY o",
                              (topic, vals))
                    c.commit()
                    produced.extend(vals)
                    n += 5
        except Exception as e:
            failures.append(e)

    t = threading.Thread(target=writer)
    t.start()
    try:
        # many commits, and several rolls during them
        wait_until(lambda: len(produced) >= 500 and
                   partition_row(conn, topic)["segments"] >= 5,
                   60, "segments to roll while writing")
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive() and not failures, failures

    state = partition_row(conn, topic)
    assert state["log_start"] == 0
    assert state["hwm"] == len(produced)
    rows = read(conn, topic, 0, 0)
    assert [off for off, _ in rows] == list(range(len(produced)))
    assert [v for _, v in rows] == produced

    # every stored batch lies inside its segment's offset range
    segs = conn.execute(
        "SELECT s.base_offset, s.relid::regclass::text FROM streamlog.segment s "
        "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s ORDER BY s.seq",
        (topic,)).fetchall()
    assert len(segs) >= 5
    for i, (base, name) in enumerate(segs):
        next_base = segs[i + 1][0] if i + 1 < len(segs) else None
        batches = conn.execute(sql.SQL("SELECT base_offset, last_offset FROM {}").format(
            sql.SQL(name))).fetchall()
        if base is None:
            assert batches == [], f"{name} has no base offset but holds batches"
            continue
        for first, last in batches:
            assert first >= base and (next_base is None or last < next_base), \
                (name, base, next_base, first, last)
    conn.close()


def test_the_cleaner_keeps_its_schedule_whatever_wakes_it(make_server):
    """The cleaner makes a pass every streamlog.retention_check_interval
    (and after a reload), not whenever its latch is set: a backend that
    falls behind on invalidations signals every idle process, and a pass
    at such a moment deleted records a test (or an operator who set a long
    interval) expected to find.  Here the signal is a request to log the
    cleaner's memory contexts, which sets its latch the same way; each
    request is served before the next one, so two of them logged mean that
    a pass the first one started has ended."""
    srv = make_server(conf={"streamlog.retention_check_interval": "1h"})

    def runs():
        return srv.sql("SELECT value FROM streamlog.stat_broker WHERE name = 'cleaner_runs'")[0][0]
    wait_until(lambda: runs() >= 1, timeout=60, what="the cleaner's pass as it starts")
    before = runs()
    pid = srv.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'streamlog cleaner'")[0][0]
    marker = f"logging memory contexts of PID {pid}"
    for n in (1, 2):
        assert srv.sql("SELECT pg_log_backend_memory_contexts(%s)", (pid,)) == [(True,)]
        wait_until(lambda: srv.log_text().count(marker) >= n, timeout=60,
                   what=f"the cleaner served signal {n}")
    assert runs() == before
    # a reload still starts a pass at once, as tests that shorten the interval expect
    srv.reload()
    wait_until(lambda: runs() > before, timeout=60, what="a pass after the reload")
