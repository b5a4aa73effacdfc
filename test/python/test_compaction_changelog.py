"""A changelog round trip (issue 11, "Tests"): a producer keeps a table's
changes in a compacted topic (keys updated many times, some deleted and
some of those recreated); after compaction, a consumer that rebuilds the
table by reading every partition from offset 0 gets exactly the state the
producer knows, through Kafka (librdkafka) and through SQL (history() and
consume() in a group)."""

import time

from compaction_model import (
    CONF, KafkaProducer, Rec, clean, compacted_config, create_topic, high_watermarks,
    history, latest_state, make_rng, now_ms, sql_produce, to_row, wait_all_rolled,
    wait_cleaned_to, HISTORY_QUERY)

PARTITIONS = 3


def kafka_rebuild(bootstrap, topic):
    """The table rebuilt by a librdkafka consumer reading every partition
    from offset 0 up to its end"""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "fetch.wait.max.ms": 100})
    state, at_end, last = {}, set(), {}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        deadline = time.monotonic() + 60
        while len(at_end) < PARTITIONS:
            assert time.monotonic() < deadline, (
                f"partitions {sorted(set(range(PARTITIONS)) - at_end)} never reached partition "
                f"EOF in 60 s (last offsets read {last}, high watermarks "
                f"{high_watermarks_of(bootstrap, topic, consumer)})")
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                at_end.add(msg.partition())
                continue
            assert msg.offset() > last.get(msg.partition(), -1), "offsets went backwards"
            last[msg.partition()] = msg.offset()
            if msg.value() is None:
                state.pop(msg.key().decode(), None)
            else:
                state[msg.key().decode()] = msg.value().decode()
    finally:
        consumer.close()
    return state


def high_watermarks_of(bootstrap, topic, consumer):
    from confluent_kafka import TopicPartition
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)}


def sql_group_rebuild(conn, topic, group):
    query = HISTORY_QUERY.replace("streamlog.history(%s)", "streamlog.consume(%s, %s, 500)")
    rows = []
    while True:
        page = [to_row(*r) for r in conn.execute(query, (group, topic)).fetchall()]
        if not page:
            break
        rows += page
    return latest_state(sorted(rows, key=lambda r: (r.partition, r.offset)))


def test_changelog_round_trip(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn = srv.connect()
    rng = make_rng()
    topic = unique_name("changelog")
    create_topic(conn, topic, PARTITIONS, compacted_config(delete_retention_ms=0))
    producer = KafkaProducer(srv.kafka_bootstrap)
    table = {}
    produced = 0
    keys = [f"row{i:03d}" for i in range(300)]

    for rnd in range(5):
        changes = []
        for i in range(600):
            key = rng.choice(keys)
            if key in table and rng.random() < 0.2:
                table.pop(key)
                changes.append(Rec(key, None, (("op", b"delete"),), now_ms()))
            else:
                table[key] = f"{key}@{rnd}.{i}"
                changes.append(Rec(key, table[key], (("op", b"upsert"),), now_ms()))
        # the last change of a round never deletes, so each round's log ends
        # with a record that stays
        if changes[-1].value is None:
            table[changes[-1].key] = "recreated"
            changes.append(Rec(changes[-1].key, "recreated", (), now_ms()))
        produced += len(changes)
        if rnd % 2:
            sql_produce(conn, topic, changes)
        else:
            producer.produce(topic, changes)
        wait_all_rolled(conn, topic)
        if rnd % 2:
            wait_cleaned_to(conn, topic, high_watermarks(conn, topic))
        else:
            clean(conn, topic)

        assert kafka_rebuild(srv.kafka_bootstrap, topic) == table, f"round {rnd}: Kafka"
        rows = history(conn, topic)
        assert latest_state(rows) == table, f"round {rnd}: history()"
        assert len(rows) < produced, "nothing was compacted"

    assert sql_group_rebuild(conn, topic, unique_name("rebuild")) == table
    # compacted down to about one record per key (tombstones of recent
    # deletes may still wait for the next pass)
    rows = history(conn, topic)
    assert len(rows) <= len(keys), f"{len(rows)} records left of {produced} for {len(keys)} keys"
    conn.close()
