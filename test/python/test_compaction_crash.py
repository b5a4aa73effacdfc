"""kill -9 in the middle of a cleaning pass (issue 11: "kill -9 mid-pass
loses nothing and leaves no duplicate").  The pass is made long by a large
partition and a low streamlog.log_cleaner_io_max_bytes_per_second; once the
cleaner is writing (its transaction has an xid, and every record is already
in rolled segments, so the write is the pass), the cleaner process or the
postmaster is killed.  After the restart the log must hold every record it
held before, each at its offset and unchanged, no offset twice, and the
cleaner must finish the job."""

import os
import signal

import pytest
from psycopg.types.json import Jsonb
from compaction_model import (
    CONF, KafkaProducer, LogModel, Rec, assert_one_record_per_key_below, compaction_view,
    create_topic, high_watermarks, history, now_ms, sql_produce, wait_all_rolled,
    wait_cleaned_to)
from pgserver import wait_until

KEYS = 2000
RECORDS = 6000
# bytes/s: the pass reads ~0.8 MB and writes ~0.3 MB, for about ten seconds
IO_LIMIT = 100_000


def cleaner_writing(conn):
    """pid of the cleaner if it is inside a transaction that writes"""
    row = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'streamlog cleaner' "
        "   AND backend_xid IS NOT NULL").fetchone()
    return row[0] if row else None


def cleaner_pids(conn):
    return {r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity "
                                       " WHERE backend_type = 'streamlog cleaner'").fetchall()}


def orphan_tables(conn, topic):
    """Tables of the topic in streamlog_data that no segment row names:
    what a pass that died may leave behind"""
    return [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "  JOIN streamlog.topic t ON c.relname LIKE 't' || t.topic_id || '\\_p%%' "
        " WHERE n.nspname = 'streamlog_data' AND c.relkind = 'r' AND t.name = %s "
        "   AND c.oid NOT IN (SELECT relid FROM streamlog.segment)", (topic,)).fetchall()]


def reconnect(srv):
    def attempt():
        try:
            c = srv.connect()
            c.execute("SELECT 1")
            return c
        except Exception:
            return None
    return wait_until(attempt, 120, "the server to accept connections again", interval=0.2)


@pytest.mark.parametrize("victim", ["cleaner", "postmaster"])
def test_kill_9_mid_pass_loses_nothing(make_server, unique_name, victim):
    srv = make_server(conf=dict(CONF, **{
        "streamlog.log_cleaner_io_max_bytes_per_second": IO_LIMIT}))
    conn = srv.connect()
    topic = unique_name(f"crash-{victim}")
    # one large segment first (segment.bytes at its default), read as the model
    create_topic(conn, topic, 1, {"cleanup.policy": "compact",
                                  "min.cleanable.dirty.ratio": 0.01,
                                  "delete.retention.ms": 0})
    conn.execute("SELECT count(streamlog.produce(%s, 'k' || (g %% %s), "
                 "       CASE WHEN g %% 97 = 0 AND g < %s - %s THEN NULL "
                 "            ELSE g || ':' || repeat('x', 100) END, "
                 "       jsonb_build_object('g', g::text))) "
                 "  FROM generate_series(1, %s) g", (topic, KEYS, RECORDS, KEYS, RECORDS))
    model = LogModel()
    before = history(conn, topic)
    assert len(before) == RECORDS
    model.produce([r.rec for r in before])
    model.check(before, "the log before cleaning")

    # now let it roll, and the cleaner start its pass
    conn.execute("SELECT streamlog.alter_topic(%s, %s)", (topic, Jsonb({"segment.bytes": 14})))
    wait_all_rolled(conn, topic)
    pid = wait_until(lambda: cleaner_writing(conn), 60, "the cleaner to start writing a pass",
                     interval=0.02)
    view = compaction_view(conn, topic)
    assert all(v["passes"] == 0 for v in view.values()), \
        f"a pass finished before the kill could land in one: {view}"

    # the processes started after the crash work without the I/O budget, so
    # that the pass they redo is quick (the running cleaner, about to die,
    # may or may not take the new setting)
    srv.update_conf({"streamlog.log_cleaner_io_max_bytes_per_second": None})
    if victim == "cleaner":
        srv.reload()
        os.kill(pid, signal.SIGKILL)
        conn.close()
        conn = None
        # the postmaster restarts every process after a crash of one
        wait_until(lambda: "terminated by signal 9" in srv.log_text(), 60,
                   "the postmaster to notice the cleaner's death")
        conn = reconnect(srv)
        wait_until(lambda: cleaner_pids(conn) and pid not in cleaner_pids(conn), 60,
                   "a new cleaner")
    else:
        conn.close()
        srv.kill9()
        srv.start()
        conn = reconnect(srv)

    after = history(conn, topic)
    model.check(after, "the log right after the crash")
    assert orphan_tables(conn, topic) == [], "the dead pass left tables behind"

    hwm = high_watermarks(conn, topic)
    assert hwm == {0: RECORDS}
    wait_cleaned_to(conn, topic, hwm, timeout=120)
    rows = history(conn, topic)
    model.check(rows, "the log after the cleaner finished")
    assert_one_record_per_key_below(rows, hwm)
    assert len(rows) == KEYS, f"{len(rows)} records left for {KEYS} keys"
    assert orphan_tables(conn, topic) == [], "tables left behind after the pass"
    view = compaction_view(conn, topic)
    assert view[0]["last_error"] is None, view
    conn.close()


def test_idempotent_producer_state_survives_compaction_and_a_crash(make_server, unique_name):
    """Compaction removes every record of an idempotent producer's batches
    (another producer wrote their key since); its sequence state must stay,
    as Kafka keeps it: a retry of its last batch is still recognised, before
    and after kill -9, and a gap still refused."""
    import kafka_helpers as kh
    from test_kafka_idempotence import batch, init_producer, produce
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("idem-compact")
    create_topic(conn, topic, 1, {"cleanup.policy": "compact", "segment.bytes": 14,
                                  "min.cleanable.dirty.ratio": 0.01})
    with kh.RawClient(srv.kafka_bootstrap) as c:
        pid, epoch = init_producer(c)
        assert produce(c, topic, batch(pid, epoch, 0, 3, "a")) == (kh.NONE, 0)
        last = batch(pid, epoch, 3, 2, "b")
        assert produce(c, topic, last) == (kh.NONE, 3)
        other, other_epoch = init_producer(c)
        assert produce(c, topic, batch(other, other_epoch, 0, 1, "other")) == (kh.NONE, 5)
    wait_all_rolled(conn, topic)
    wait_cleaned_to(conn, topic, {0: 6})
    rows = history(conn, topic)
    assert [(r.offset, r.rec.value) for r in rows] == [(5, "other-0")], \
        "the cleaner kept records of a key written again since"

    with kh.RawClient(srv.kafka_bootstrap) as c:
        assert produce(c, topic, last) == (kh.NONE, 3), "a retry after compaction was stored again"
        err, _ = produce(c, topic, batch(pid, epoch, 9, 1, "gap"))
        assert err == kh.OUT_OF_ORDER_SEQUENCE_NUMBER
        after = batch(pid, epoch, 5, 1, "c")
        assert produce(c, topic, after) == (kh.NONE, 6)
        assert produce(c, topic, batch(other, other_epoch, 1, 1, "other")) == (kh.NONE, 7)
    wait_all_rolled(conn, topic)
    wait_cleaned_to(conn, topic, {0: 8})
    conn.close()

    srv.kill9()
    srv.start()
    conn = reconnect(srv)
    with kh.RawClient(srv.kafka_bootstrap) as c:
        # Kafka's cleaner keeps each producer's last batch, emptied, so
        # that the producer's state outlives its records
        assert produce(c, topic, after) == (kh.NONE, 6), \
            "after compaction and a crash, the retry of the producer's last batch is not " \
            "recognised: its sequence state went with its records"
        err, _ = produce(c, topic, batch(pid, epoch, 9, 1, "gap"))
        assert err == kh.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert produce(c, topic, batch(pid, epoch, 6, 1, "d")) == (kh.NONE, 8)
    assert high_watermarks(conn, topic) == {0: 9}
    conn.close()


@pytest.mark.parametrize("change", ["produce", "drop_topic", "to_delete", "add_partitions"])
def test_cleaner_survives_changes_to_the_topic_mid_pass(make_server, unique_name, change):
    """The topic a pass is writing gets records (SQL and Kafka, without
    waiting for the pass), is dropped, switched to delete, or grows
    partitions: the cleaner process lives on (no crash, no restart of the
    server), the log is right, and it cleans another topic afterwards."""
    srv = make_server(conf=dict(CONF, **{
        "streamlog.log_cleaner_io_max_bytes_per_second": IO_LIMIT}))
    conn = srv.connect()
    topic = unique_name(f"mid-{change}")
    create_topic(conn, topic, 1, {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": 0.01})
    conn.execute("SELECT count(streamlog.produce(%s, 'k' || (g %% 1000), "
                 "       g || ':' || repeat('x', 100))) FROM generate_series(1, 3000) g", (topic,))
    model = LogModel()
    before = history(conn, topic)
    model.produce([r.rec for r in before])
    conn.execute("SELECT streamlog.alter_topic(%s, %s)", (topic, Jsonb({"segment.bytes": 14})))
    wait_all_rolled(conn, topic)
    pid = wait_until(lambda: cleaner_writing(conn), 60, "the cleaner to start writing a pass",
                     interval=0.02)
    log_start = len(srv.log_text())

    conn.execute("SET statement_timeout = '60s'")
    if change == "produce":
        conn.execute("SET statement_timeout = '20s'")
        more = [Rec(f"k{i}", f"during{i}", (), now_ms()) for i in range(0, 1000, 10)]
        sql_produce(conn, topic, more[:50])
        assert cleaner_writing(conn) == pid, "the pass ended before the records were in"
        KafkaProducer(srv.kafka_bootstrap).produce(topic, more[50:])
        model.produce(more)
    elif change == "drop_topic":
        conn.execute("SELECT streamlog.drop_topic(%s)", (topic,))
    elif change == "to_delete":
        conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                     (topic, Jsonb({"cleanup.policy": "delete", "retention.ms": -1})))
    else:
        conn.execute("SELECT streamlog.add_partitions(%s, 3)", (topic,))
    conn.execute("RESET statement_timeout")
    srv.update_conf({"streamlog.log_cleaner_io_max_bytes_per_second": None})
    srv.reload()

    if change != "drop_topic":
        model.check(history(conn, topic), f"the log after {change} mid-pass")
    other = unique_name("after")
    create_topic(conn, other, 1, {"cleanup.policy": "compact", "segment.bytes": 14,
                                  "min.cleanable.dirty.ratio": 0.01})
    conn.execute("SELECT streamlog.produce(%s, 'k', 'v' || g) FROM generate_series(1, 10) g",
                 (other,))
    wait_all_rolled(conn, other)
    wait_cleaned_to(conn, other, {0: 10})
    assert [r.rec.value for r in history(conn, other)] == ["v10"]
    if change in ("add_partitions", "produce"):
        wait_cleaned_to(conn, topic, {0: 3000})
        model.check(history(conn, topic), "the log after the pass")

    news = srv.log_text()[log_start:]
    assert "terminated by signal" not in news and "exited with exit code" not in news, news[-2000:]
    assert pid in cleaner_pids(conn), "the cleaner was restarted"
    conn.close()


@pytest.mark.parametrize("policy", ["delete", "compact"])
def test_idempotent_producer_state_survives_a_roll_and_a_crash(make_server, unique_name,
                                                               policy):
    """The root of the test above, without any cleaning: an idempotent
    producer's batches are in a segment the cleaner rolled (not compacted:
    min.compaction.lag.ms is a day), then the server is killed.  A retry of
    its last batch must be recognised (P6), not stored a second time, and
    its next sequence accepted after it."""
    import kafka_helpers as kh
    from test_kafka_idempotence import batch, init_producer, produce
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name(f"idem-roll-{policy}")
    create_topic(conn, topic, 1, {"cleanup.policy": policy, "segment.bytes": 14,
                                  "min.compaction.lag.ms": 86_400_000})
    with kh.RawClient(srv.kafka_bootstrap) as c:
        pid, epoch = init_producer(c)
        last = batch(pid, epoch, 0, 3, "a")
        assert produce(c, topic, last) == (kh.NONE, 0)
    wait_all_rolled(conn, topic)
    conn.close()

    srv.kill9()
    srv.start()
    conn = reconnect(srv)
    with kh.RawClient(srv.kafka_bootstrap) as c:
        retry = produce(c, topic, last)
        assert retry == (kh.NONE, 0), \
            f"the retry after a roll and a crash was answered {retry} (stored again at a new offset?)"
        assert produce(c, topic, batch(pid, epoch, 3, 1, "b")) == (kh.NONE, 3)
    assert high_watermarks(conn, topic) == {0: 4}
    conn.close()
