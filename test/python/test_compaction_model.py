"""Log compaction against a model (issue 11, "Tests"): random keys, values
and tombstones produced through SQL and through a Kafka producer, segments
rolling under them, cleaned by streamlog.clean() and by the background
cleaner; after every round the log must agree with the model
(compaction_model.LogModel says what that means)."""

import psycopg
import pytest
from psycopg.types.json import Jsonb
from compaction_model import (
    CONF, KafkaProducer, LogModel, Rec, assert_one_record_per_key_below, clean,
    compacted_config, compaction_view, create_topic, high_watermarks, history, make_rng,
    now_ms, random_records, sql_produce, wait_all_rolled, wait_cleaned_to)
from pgserver import wait_until

DAY_MS = 86_400_000


def tombstones(rows, below=None):
    return [r for r in rows if r.rec.value is None
            and (below is None or r.offset < below.get(r.partition, 0))]


@pytest.mark.parametrize("threads", [1, 2])
def test_compaction_matches_model(make_server, unique_name, threads):
    """Six rounds of produce (SQL and Kafka, tombstones included) and
    cleaning (forced, then background, in turn), on two topics that differ
    only in delete.retention.ms: 0 (tombstones go at the pass after the one
    that cleaned them) and a day (tombstones stay); with one cleaner, and
    with two sharing the partitions."""
    srv = make_server(conf=dict(CONF, **{"streamlog.log_cleaner_threads": threads}))
    conn = srv.connect()
    rng = make_rng()
    topics = {unique_name("model-tomb0"): 0, unique_name("model-tombday"): DAY_MS}
    for topic, retention in topics.items():
        create_topic(conn, topic, 2, compacted_config(delete_retention_ms=retention))
    models = {topic: LogModel() for topic in topics}
    producer = KafkaProducer(srv.kafka_bootstrap)
    keys = [f"k{i:03d}" for i in range(200)]

    for rnd in range(6):
        recs = random_records(rng, keys, 150, 0.15, f"r{rnd}", now_ms())
        halves = [("sql", recs[:75]), ("kafka", recs[75:])]
        if rnd % 2:
            halves.reverse()
        for topic, model in models.items():
            for door, part in halves:
                if door == "sql":
                    sql_produce(conn, topic, part)
                else:
                    producer.produce(topic, part)
                model.produce(part)
            model.check(history(conn, topic), f"round {rnd}, after produce")

        for topic, model in models.items():
            wait_all_rolled(conn, topic)
            hwm = high_watermarks(conn, topic)
            if rnd % 2 == 0:
                result = clean(conn, topic)
                assert set(result) == {0, 1}, result
                cleaned = {p: c for p, (c, _, _) in result.items()}
                # every record is in a rolled segment and min.compaction.lag.ms is 0
                assert cleaned == hwm, f"clean() stopped short of the high watermark: {result}"
            else:
                wait_cleaned_to(conn, topic, hwm)
                cleaned = {p: v["cleaned_offset"] for p, v in compaction_view(conn, topic).items()}
            rows = history(conn, topic)
            model.check(rows, f"round {rnd}, after cleaning {topic}")
            assert_one_record_per_key_below(rows, cleaned)
            assert len(rows) < model.produced, "nothing was compacted"
            if topics[topic] == DAY_MS:
                assert_tombstones_kept(rows, model)

    # More passes: with delete.retention.ms = 0 the tombstones go, with a
    # day they stay.  Each pass gets a fresh dirty record to clean.
    tomb0, tombday = list(topics)
    filler = 0

    def pass_on(topic):
        nonlocal filler
        rec = Rec(f"filler{filler}", f"f{filler}", (), now_ms())
        filler += 1
        sql_produce(conn, topic, [rec])
        models[topic].produce([rec])
        wait_all_rolled(conn, topic)
        cleaned = {p: c for p, (c, _, _) in clean(conn, topic).items()}
        rows = history(conn, topic)
        models[topic].check(rows, f"extra pass on {topic}")
        assert_one_record_per_key_below(rows, cleaned)
        return rows, cleaned

    # a key deleted for sure, whatever the random rounds left
    for topic in (tomb0, tombday):
        gone = [Rec("deleted", "soon", (), now_ms()), Rec("deleted", None, (), now_ms() + 1)]
        sql_produce(conn, topic, gone)
        models[topic].produce(gone)
    wait_until(lambda: not tombstones(*pass_on(tomb0)), 60,
               "the tombstones of a topic with delete.retention.ms = 0 to go")
    for _ in range(2):
        rows, _ = pass_on(tombday)
    assert_tombstones_kept(rows, models[tombday])

    for topic, model in models.items():
        rows = history(conn, topic)
        hwm = high_watermarks(conn, topic)
        view = compaction_view(conn, topic)
        assert set(view) == {0, 1}, view
        for p, v in view.items():
            assert v["cleaned_offset"] == hwm[p], v
            assert v["passes"] >= 1 and v["last_run"] is not None, v
            assert v["last_error"] is None, v
            assert v["dirty_bytes"] == 0 and v["dirty_ratio"] == 0, v
        removed = sum(v["records_removed"] for v in view.values())
        assert removed == sum(hwm.values()) - len(rows), (
            f"streamlog.compaction counts {removed} records removed, the log lost "
            f"{sum(hwm.values()) - len(rows)}")
        # disk bytes: small topics can rewrite into as many pages as they
        # had (test_compaction.py checks the figure on a large one)
        assert all(v["bytes_reclaimed"] >= 0 for v in view.values()), view
    conn.close()


def assert_tombstones_kept(rows, model):
    """With a long delete.retention.ms, every key deleted last still shows
    its tombstone."""
    present = {r.rec.key for r in tombstones(rows)}
    deleted = {k for k, r in model.last.items() if r.value is None}
    assert deleted <= present, f"tombstones removed early: {sorted(deleted - present)[:10]}"


def test_active_segment_and_min_compaction_lag_are_left_alone(make_server, unique_name):
    """clean() never touches the active segment, nor records younger than
    min.compaction.lag.ms; lowering the lag on the live topic lets the next
    pass clean them."""
    srv = make_server(conf=CONF)
    conn = srv.connect()
    rng = make_rng()
    keys = [f"k{i}" for i in range(5)]
    active = unique_name("active")
    lagged = unique_name("lagged")
    # segment.bytes at its default: the active segment never rolls
    create_topic(conn, active, 1, {"cleanup.policy": "compact"})
    create_topic(conn, lagged, 1, compacted_config(min_compaction_lag_ms=3_600_000))
    recs = random_records(rng, keys, 100, 0.1, "lag", now_ms())
    for topic in (active, lagged):
        sql_produce(conn, topic, recs)
    wait_all_rolled(conn, lagged)

    for topic in (active, lagged):
        result = clean(conn, topic)
        assert result[0][0] == 0 and result[0][1] == 0, (topic, result)
        assert [r.offset for r in history(conn, topic)] == list(range(100)), topic

    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (lagged, Jsonb({"min.compaction.lag.ms": 0})))
    model = LogModel()
    model.produce(recs)
    result = clean(conn, lagged)
    assert result[0][0] == 100 and result[0][1] > 0, result
    rows = history(conn, lagged)
    model.check(rows)
    assert_one_record_per_key_below(rows, {0: 100})
    assert len(rows) == 100 - result[0][1], (len(rows), result)
    conn.close()


def test_clean_refuses_a_topic_that_is_not_compacted(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("not-compacted")
    create_topic(conn, topic, 1, {"cleanup.policy": "delete"})
    with pytest.raises(psycopg.Error) as exc:
        clean(conn, topic)
    assert exc.value.sqlstate == "22023", exc.value
    assert "compact" in (exc.value.diag.message_hint or ""), exc.value.diag.message_hint
    conn.close()


def test_delete_to_compact_and_back_on_a_live_topic(make_server, unique_name):
    """A topic switched from delete to compact is compacted from then on: its
    records without a key go (as Kafka's cleaner drops them), the last
    record of each key stays; switched back to delete, it takes records
    without a key again."""
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("switch")
    create_topic(conn, topic, 1, {"cleanup.policy": "delete", "segment.bytes": 14})
    conn.execute("SELECT streamlog.produce(%s, CASE WHEN g %% 3 = 0 THEN NULL "
                 "ELSE 'k' || (g %% 4) END, 'v' || g) FROM generate_series(1, 60) g", (topic,))
    keyed = {}
    for g in range(1, 61):
        if g % 3:
            keyed[f"k{g % 4}"] = f"v{g}"
    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (topic, Jsonb({"cleanup.policy": "compact"})))
    wait_all_rolled(conn, topic)
    clean(conn, topic)
    rows = history(conn, topic)
    assert all(r.rec.key is not None for r in rows), [r for r in rows if r.rec.key is None][:5]
    assert {r.rec.key: r.rec.value for r in rows} == keyed
    assert len(rows) == len(keyed)

    hwm = high_watermarks(conn, topic)[0]
    conn.execute("SELECT streamlog.alter_topic(%s, %s)",
                 (topic, Jsonb({"cleanup.policy": "delete"})))
    conn.execute("SELECT streamlog.produce(%s, NULL::text, 'no key again')", (topic,))
    assert high_watermarks(conn, topic)[0] == hwm + 1
    conn.close()


def test_compacted_topic_refuses_records_without_key_from_sql(make_server, unique_name):
    """Issue 11: records without a key are refused on compacted topics, with
    a clear SQL error"""
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("nokey-sql")
    create_topic(conn, topic, 1, {"cleanup.policy": "compact"})
    with pytest.raises(psycopg.Error) as exc:
        conn.execute("SELECT streamlog.produce(%s, NULL::text, 'no key')", (topic,))
    assert exc.value.diag.message_hint, "the error says how to fix it"
    assert high_watermarks(conn, topic)[0] == 0
    conn.close()


def test_compacted_topic_refuses_records_without_key_from_kafka(make_server, unique_name):
    """Issue 11 and Kafka: a produce of a record without a key to a
    compacted topic fails with INVALID_RECORD"""
    from confluent_kafka import Producer
    srv = make_server(conf=CONF)
    conn = srv.connect()
    topic = unique_name("nokey-kafka")
    create_topic(conn, topic, 1, {"cleanup.policy": "compact"})
    producer = Producer({"bootstrap.servers": srv.kafka_bootstrap, "retries": 0,
                         "message.timeout.ms": 20000})
    errors = []
    producer.produce(topic, value=b"no key", on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(30) == 0
    assert errors and errors[0] is not None, "a record without a key was accepted"
    assert errors[0].code() == 87, errors[0]    # INVALID_RECORD
    assert high_watermarks(conn, topic)[0] == 0
    conn.close()
