"""What the compaction configs do (issue 11 §1, Kafka's meaning):
max.compaction.lag.ms rolls and cleans a partition whose dirty ratio is
below min.cleanable.dirty.ratio; cleanup.policy=compact alone never deletes
by time, compact,delete does both; a dedupe buffer too small for the dirty
keys cleans in several passes, each one correct."""

import pytest
from psycopg.types.json import Jsonb
from compaction_model import (
    CONF, LogModel, Rec, assert_one_record_per_key_below, clean, compacted_config,
    compaction_view, create_topic, high_watermarks, history, make_rng, now_ms,
    random_records, sql_produce, wait_all_rolled, wait_cleaned_to)
from pgserver import wait_until

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def partition_row(conn, topic):
    return conn.execute("SELECT log_start_offset, high_watermark FROM streamlog.partitions "
                        "WHERE topic = %s AND partition = 0", (topic,)).fetchone()


def test_max_compaction_lag_cleans_below_the_dirty_ratio(make_server, unique_name):
    """Both topics keep their active segment (segment.bytes and segment.ms
    at their defaults) and clean only at a dirty ratio of 0.9; the one with
    max.compaction.lag.ms = 1.5 s has its segment rolled and cleaned anyway,
    first when all of it is dirty, then when a few updates are; the other
    is never cleaned meanwhile."""
    srv = make_server(conf=CONF)
    conn = srv.connect()
    lagged = unique_name("maxlag")
    control = unique_name("nolag")
    base = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": 0.9}
    create_topic(conn, lagged, 1, dict(base, **{"max.compaction.lag.ms": 1500}))
    create_topic(conn, control, 1, base)
    model = LogModel()
    first = [Rec(f"k{i:03d}", f"v{i}", (), now_ms()) for i in range(200)]
    for topic in (lagged, control):
        sql_produce(conn, topic, first)
    model.produce(first)
    wait_cleaned_to(conn, lagged, {0: 200})

    updates = [Rec(f"k{i:03d}", f"w{i}", (), now_ms()) for i in range(10)]
    for topic in (lagged, control):
        sql_produce(conn, topic, updates)
    model.produce(updates)
    wait_cleaned_to(conn, lagged, {0: 210})
    rows = history(conn, lagged)
    model.check(rows)
    assert len(rows) == 200, "the updated keys' old records are still there"

    view = compaction_view(conn, control)
    assert view[0]["cleaned_offset"] == 0 and view[0]["passes"] == 0, view
    assert len(history(conn, control)) == 210
    conn.close()


def test_compact_alone_never_deletes_by_time_compact_delete_does(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    compact = unique_name("compact-only")
    both = unique_name("compact-delete")
    create_topic(conn, compact, 1, compacted_config(retention_ms=1000))
    create_topic(conn, both, 1, compacted_config(retention_ms=1000,
                                                 cleanup_policy="compact,delete"))
    # records an hour old, over 50 keys
    old = [Rec(f"k{i % 50}", f"v{i}", (), now_ms() - HOUR_MS + i) for i in range(200)]
    model = LogModel()
    model.produce(old)
    for topic in (compact, both):
        sql_produce(conn, topic, old)
        wait_all_rolled(conn, topic)

    wait_until(lambda: partition_row(conn, both)[0] == 200, 60,
               "retention to delete the old segments of the compact,delete topic")
    assert history(conn, both) == []

    wait_cleaned_to(conn, compact, {0: 200})
    rows = history(conn, compact)
    model.check(rows)
    assert len(rows) == 50
    assert partition_row(conn, compact)[0] == 0, "compact alone deleted by retention.ms"

    # switched to delete on the live topic, retention.ms applies again
    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (compact, Jsonb({"cleanup.policy": "delete"})))
    wait_until(lambda: partition_row(conn, compact)[0] == 200, 60,
               "retention to delete the old segments once the topic is delete again")
    assert history(conn, compact) == []
    conn.close()


@pytest.mark.parametrize("tombstones_kept_ms", [DAY_MS, 0])
def test_small_dedupe_buffer_cleans_in_several_correct_passes(make_server, unique_name,
                                                              tombstones_kept_ms):
    """With a 1 kB offset map, a pass holds only some of 300 dirty keys: it
    ends where the map fills, with everything below its checkpoint
    compacted; repeated passes get to the high watermark.  Two rounds, the
    second produced when the first is half cleaned, tombstones kept a day
    or not at all: no deleted key may come back."""
    srv = make_server(conf=dict(CONF, **{"streamlog.log_cleaner_dedupe_buffer_size": "1kB",
                                         "streamlog.log_cleaner_enable": False}))
    conn = srv.connect()
    rng = make_rng()
    topic = unique_name("small-map")
    create_topic(conn, topic, 1, compacted_config(delete_retention_ms=tombstones_kept_ms))
    model = LogModel()
    keys = [f"key{i:03d}" for i in range(300)]

    def produce_round(tag):
        for part in range(3):
            recs = random_records(rng, keys, 400, 0.2, f"{tag}{part}", now_ms())
            sql_produce(conn, topic, recs)
            model.produce(recs)
        wait_all_rolled(conn, topic)
        return high_watermarks(conn, topic)[0]

    checkpoints = []

    def clean_to(target, passes_at_most=200):
        while not checkpoints or checkpoints[-1] < target:
            assert len(checkpoints) < passes_at_most, f"no end to the passes: {checkpoints[-10:]}"
            cleaned = clean(conn, topic)[0][0]
            assert not checkpoints or cleaned > checkpoints[-1], \
                f"a pass did not advance the checkpoint: {checkpoints[-5:]} then {cleaned}"
            checkpoints.append(cleaned)
            rows = history(conn, topic)
            model.check(rows, f"after pass {len(checkpoints)}")
            assert_one_record_per_key_below(rows, {0: cleaned})

    hwm = produce_round("m")
    clean_to(hwm // 2)
    hwm = produce_round("n")
    clean_to(hwm)
    assert len(checkpoints) > 2, f"few passes for 300 keys with a 1 kB map: {checkpoints}"
    # more passes over the clean log: tombstones go or stay, nothing comes back
    for _ in range(3):
        checkpoints.clear()
        clean_to(hwm)
    rows = history(conn, topic)
    if tombstones_kept_ms:
        assert any(r.rec.value is None for r in rows)
    assert compaction_view(conn, topic)[0]["cleaned_offset"] == hwm
    conn.close()


def test_cleaner_enable_off_leaves_cleaning_to_clean(make_server, unique_name):
    """streamlog.log_cleaner_enable = off: segments still roll, but only
    streamlog.clean() compacts; turned on (reload), the cleaner does."""
    srv = make_server(conf=dict(CONF, **{"streamlog.log_cleaner_enable": False}))
    conn = srv.connect()
    a, b = unique_name("manual"), unique_name("auto")
    recs = [Rec(f"k{i % 10}", f"v{i}", (), now_ms()) for i in range(100)]
    for topic in (a, b):
        create_topic(conn, topic, 1, compacted_config())
        sql_produce(conn, topic, recs)
        wait_all_rolled(conn, topic)
    assert clean(conn, a)[0][:2] == (100, 90)
    assert len(history(conn, a)) == 10
    view = compaction_view(conn, b)
    assert view[0]["passes"] == 0 and len(history(conn, b)) == 100, view

    srv.update_conf({"streamlog.log_cleaner_enable": True})
    srv.reload()
    wait_cleaned_to(conn, b, {0: 100})
    assert len(history(conn, b)) == 10
    conn.close()


def test_min_cleanable_dirty_ratio_decides_when_the_cleaner_runs(make_server, unique_name):
    """Below min.cleanable.dirty.ratio (0.5) the background cleaner leaves a
    partition alone, and the view shows its dirty part; above it, the
    partition is cleaned.  The cleaner's later rounds are seen through a
    marker topic it cleans meanwhile.  Values of 1 kB, so that the sizes
    are the records' rather than a table's first pages."""
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("ratio")
    create_topic(conn, topic, 1, {"cleanup.policy": "compact", "segment.bytes": 14,
                                  "min.cleanable.dirty.ratio": 0.5})
    model = LogModel()

    def produce(recs):
        sql_produce(conn, topic, recs)
        model.produce(recs)
        wait_all_rolled(conn, topic)

    def value(tag, i):
        return f"{tag}{i}:" + "x" * 1000

    produce([Rec(f"k{i:03d}", value("first", i), (), now_ms()) for i in range(100)])
    wait_cleaned_to(conn, topic, {0: 100})
    passes = compaction_view(conn, topic)[0]["passes"]

    produce([Rec(f"k{i:03d}", value("second", i), (), now_ms()) for i in range(20)])
    marker = unique_name("marker")
    create_topic(conn, marker, 1, compacted_config())
    sql_produce(conn, marker, [Rec("m", "1", (), now_ms()), Rec("m", "2", (), now_ms())])
    wait_all_rolled(conn, marker)
    wait_cleaned_to(conn, marker, {0: 2})
    view = compaction_view(conn, topic)[0]
    assert view["passes"] == passes and view["cleaned_offset"] == 100, \
        f"cleaned at a dirty ratio below 0.5: {view}"
    assert 0 < view["dirty_ratio"] < 0.5 and view["dirty_bytes"] > 0, view
    assert len(history(conn, topic)) == 120

    produce([Rec(f"k{i % 100:03d}", value("third", i), (), now_ms()) for i in range(20, 200)])
    wait_cleaned_to(conn, topic, {0: 300})
    rows = history(conn, topic)
    model.check(rows)
    assert len(rows) == 100
    view = compaction_view(conn, topic)[0]
    assert view["dirty_ratio"] == 0 and view["dirty_bytes"] == 0, view
    conn.close()


def test_the_rest_of_a_pass_stopped_by_a_full_map_is_due(make_server, unique_name):
    """A pass whose 1 kB offset map fills one record before the end of the
    last segment leaves that record dirty among many clean segments.  The
    segment it stopped in counts whole as dirty (as in Kafka), so the
    partition stays above min.cleanable.dirty.ratio (0.01) and the
    background cleaner finishes it without waiting for another append; a
    share of the segment by offsets (1 record of 38) made it look clean."""
    srv = make_server(conf=dict(CONF, **{"streamlog.log_cleaner_dedupe_buffer_size": "1kB",
                                         "streamlog.log_cleaner_enable": False}))
    conn = srv.connect()
    # how many keys a pass maps: a clean() of distinct keys stops there
    probe = unique_name("probe")
    create_topic(conn, probe, 1, compacted_config())
    sql_produce(conn, probe, [Rec(f"p{i:03d}", "v", (), now_ms()) for i in range(200)])
    wait_all_rolled(conn, probe)
    capacity = clean(conn, probe)[0][0]
    assert 0 < capacity < 200, capacity

    topic = unique_name("full-map")
    create_topic(conn, topic, 1, compacted_config())
    model = LogModel()
    for i in range(10):          # ten segments of one key, compacted below
        recs = [Rec("old", f"o{i}.{j}", (), now_ms()) for j in range(20)]
        sql_produce(conn, topic, recs)
        model.produce(recs)
        wait_all_rolled(conn, topic)
    assert clean(conn, topic)[0][0] == 200
    # one segment of one key more than a pass maps
    recs = [Rec(f"k{i:03d}", "v", (), now_ms()) for i in range(capacity + 1)]
    sql_produce(conn, topic, recs)
    model.produce(recs)
    wait_all_rolled(conn, topic)
    hwm = high_watermarks(conn, topic)[0]
    assert clean(conn, topic)[0][0] == hwm - 1, "the pass did not stop one record short"

    view = compaction_view(conn, topic)[0]
    assert view["dirty_ratio"] > 0.01, f"the record left by a full map looks clean: {view}"
    srv.update_conf({"streamlog.log_cleaner_enable": True})
    srv.reload()
    wait_cleaned_to(conn, topic, {0: hwm})
    model.check(history(conn, topic))
    conn.close()
