"""streamlog.clean() as an SQL function in the caller's transaction (issue
11 contract): a rolled-back pass leaves no trace; a pass not yet committed
blocks neither producers nor readers, and a second clean() of the same
partition meanwhile leaves the log right; the privilege it needs; and the
offset lookups (offset_for_time, Kafka ListOffsets, delete_records) over
the gaps compaction leaves."""

import threading
import time

import psycopg
import pytest
from compaction_model import (
    CONF, KafkaProducer, LogModel, Rec, assert_one_record_per_key_below, clean, compacted_config,
    compaction_view, create_topic, high_watermarks, history, now_ms, sql_produce,
    wait_all_rolled)
from kafka_helpers import ck_consume
from pgserver import NO_WAIT_GUARD

# the background cleaner stays out of the way: every pass is ours
QUIET = dict(CONF, **{"streamlog.log_cleaner_enable": False})


def loaded_topic(srv, unique_name, name, updates=5, keys=20):
    """A compacted topic of keys x updates records, all rolled, not cleaned"""
    conn = srv.connect()
    topic = unique_name(name)
    create_topic(conn, topic, 1, compacted_config())
    model = LogModel()
    base = now_ms() - 100_000
    recs = [Rec(f"k{i % keys:02d}", f"v{i}", (), base + i * 10) for i in range(keys * updates)]
    sql_produce(conn, topic, recs)
    model.produce(recs)
    wait_all_rolled(conn, topic)
    model.check(history(conn, topic), "the log before cleaning")
    return conn, topic, model, recs


def test_a_rolled_back_pass_leaves_no_trace(make_server, unique_name):
    srv = make_server(conf=QUIET)
    conn, topic, model, recs = loaded_topic(srv, unique_name, "rollback")
    before = history(conn, topic)
    view_before = compaction_view(conn, topic)
    with conn.transaction(force_rollback=True):
        result = clean(conn, topic)
        assert result[0][:2] == (100, 80), result
        assert len(history(conn, topic)) == 20, "the pass is visible in its own transaction"
    assert history(conn, topic) == before
    assert compaction_view(conn, topic) == view_before
    # and the next pass does the whole job
    assert clean(conn, topic)[0][:2] == (100, 80)
    model.check(history(conn, topic))
    conn.close()


def test_an_uncommitted_pass_blocks_neither_producers_nor_readers(make_server, unique_name):
    srv = make_server(conf=QUIET)
    conn, topic, model, recs = loaded_topic(srv, unique_name, "open-pass")
    before = history(conn, topic)
    cleaner = srv.connect(autocommit=False)
    cleaner.execute(NO_WAIT_GUARD)
    assert clean(cleaner, topic)[0][:2] == (100, 80)     # not committed yet

    other = srv.connect()
    other.execute("SET statement_timeout = '20s'")
    more = [Rec(f"k{i:02d}", f"new{i}", (), now_ms()) for i in range(5)]
    sql_produce(other, topic, more)                      # a producer does not wait
    model.produce(more)
    seen = history(other, topic)                         # nor does a reader
    assert [r.offset for r in seen] == list(range(105)), "a reader saw the uncommitted pass"
    model.check(seen)
    # nor Kafka producers and consumers
    kafka = [Rec(f"k{i:02d}", f"kafka{i}", (), now_ms()) for i in range(5)]
    KafkaProducer(srv.kafka_bootstrap).produce(topic, kafka)
    model.produce(kafka)
    got = ck_consume(srv.kafka_bootstrap, topic, 0, 110)
    assert [g[0] for g in got] == list(range(110)), "a Kafka consumer saw the uncommitted pass"

    # a second pass of the same partition while the first is open: it may
    # wait for the first, fail, or clean, but the log ends up right
    second = {}

    def run_second():
        try:
            second["result"] = clean(srv.connect(), topic)
        except psycopg.Error as e:
            second["error"] = e
    t = threading.Thread(target=run_second)
    t.start()
    time.sleep(0.5)
    cleaner.commit()
    t.join(60)
    assert not t.is_alive(), "the second clean() still waits after the first committed"
    cleaner.close()
    rows = history(conn, topic)
    model.check(rows, f"after two concurrent passes ({second})")
    assert_one_record_per_key_below(rows, {0: 100})
    conn.close()


def test_clean_needs_alter_on_the_topic(make_server, unique_name):
    srv = make_server(conf=QUIET)
    conn, topic, _, _ = loaded_topic(srv, unique_name, "privilege")
    role = "cleaner_" + unique_name("r").split("-")[1]
    conn.execute(f"CREATE ROLE {role} LOGIN")
    with psycopg.connect(host=srv.host, port=srv.port, user=role, dbname="postgres",
                         autocommit=True) as as_role:
        # the view shows only the topics the role may describe
        assert compaction_view(as_role, topic) == {}
        conn.execute("SELECT streamlog.grant('read, write, describe', 'topic', %s, %s)",
                     (topic, role))
        assert set(compaction_view(as_role, topic)) == {0}
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as exc:
            clean(as_role, topic)
        assert exc.value.diag.message_hint, "the error says how to get the privilege"
        conn.execute("SELECT streamlog.grant('alter', 'topic', %s, %s)", (topic, role))
        assert clean(as_role, topic)[0][:2] == (100, 80)
    conn.close()


def test_offset_lookups_over_gaps(make_server, unique_name):
    """offset_for_time and Kafka's offsetsForTimes land on the first
    surviving record at or after the time; earliest stays the log start,
    latest the high watermark; delete_records into a gap moves the log
    start there and the next pass still works."""
    from confluent_kafka import Consumer, TopicPartition
    srv = make_server(conf=QUIET)
    conn, topic, model, recs = loaded_topic(srv, unique_name, "lookups")
    clean(conn, topic)
    rows = history(conn, topic)
    survivors = [r.offset for r in rows]
    assert survivors == list(range(80, 100))
    ts_of = {i: r.ts for i, r in enumerate(recs)}

    consumer = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": "unused"})
    try:
        for probe in (0, 10, 79, 80, 95):
            want = next(o for o in survivors if o >= probe)
            [(got,)] = conn.execute("SELECT streamlog.offset_for_time(%s, 0, "
                                    "'epoch'::timestamptz + %s * interval '1 ms')",
                                    (topic, ts_of[probe])).fetchall()
            assert got == want, f"offset_for_time at the time of offset {probe}"
            [tp] = consumer.offsets_for_times([TopicPartition(topic, 0, ts_of[probe])], timeout=10)
            assert tp.error is None and tp.offset == want, f"offsetsForTimes of offset {probe}: {tp}"
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert (low, high) == (0, 100)
    finally:
        consumer.close()

    # history()'s bounds fall in gaps as well
    bounded = conn.execute('SELECT "offset" FROM streamlog.history(%s, NULL, 50, 85)',
                           (topic,)).fetchall()
    assert [r[0] for r in bounded] == list(range(80, 86))

    [(start,)] = conn.execute("SELECT streamlog.delete_records(%s, 0, 50)", (topic,)).fetchall()
    assert start == 50
    assert [r.offset for r in history(conn, topic)] == survivors
    more = [Rec(f"k{i:02d}", f"again{i}", (), now_ms()) for i in range(20)]
    sql_produce(conn, topic, more)
    model.produce(more)
    wait_all_rolled(conn, topic)
    assert clean(conn, topic)[0][:2] == (120, 20)
    rows = history(conn, topic)
    model.check(rows)
    assert [r.offset for r in rows] == list(range(100, 120))
    assert high_watermarks(conn, topic) == {0: 120}
    conn.close()


def test_clean_of_one_partition(make_server, unique_name):
    """clean(topic, p) cleans partition p only; a partition the topic does
    not have, or a topic that does not exist, is a clear error, not an
    internal one."""
    srv = make_server(conf=QUIET)
    conn = srv.connect()
    topic = unique_name("one-partition")
    create_topic(conn, topic, 2, compacted_config())
    recs = [Rec(f"k{i % 20:02d}", f"v{i}", (), now_ms()) for i in range(200)]
    sql_produce(conn, topic, recs)
    wait_all_rolled(conn, topic)
    hwm = high_watermarks(conn, topic)
    assert hwm[0] > 0 and hwm[1] > 0, hwm
    result = clean(conn, topic, 1)
    assert set(result) == {1} and result[1][0] == hwm[1], result
    rows = history(conn, topic)
    assert len([r for r in rows if r.partition == 0]) == hwm[0], "partition 0 was cleaned too"
    assert_one_record_per_key_below([r for r in rows if r.partition == 1], {1: hwm[1]})
    for args in ((topic, 2), (topic, -1), (unique_name("missing"), None)):
        with pytest.raises(psycopg.Error) as exc:
            clean(conn, *args)
        assert not exc.value.sqlstate.startswith("XX"), (args, exc.value)
    conn.close()
