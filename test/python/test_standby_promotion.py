"""The simple HA path: one streamlog node with a physical streaming standby
(pg_basebackup -R, synchronous_standby_names), promoted after kill -9 of
the primary.  Every acknowledged record (Kafka acks=all, SQL committed) is
on the promoted node, Kafka clients produce and consume against it,
consumer group offsets survive, and offsets go on where the log ended.

A standby replays the primary's WAL: its readers must see what was
replayed, not what shared memory held when they first looked, and a
promoted standby must hand out offsets after the last replayed batch.
"""

import os
import re
import threading

import psycopg
import pytest
from pgserver import wait_until
from standby import StandbyServer, make_synchronous, wait_replayed

confluent_kafka = pytest.importorskip("confluent_kafka")
kafka = pytest.importorskip("kafka")

# What the postmaster logs when a background worker dies on its own
WORKER_DIED = re.compile(r"background worker \".*\" \(PID \d+\) (exited with exit code [1-9]|"
                         r"was terminated by signal)")


def sql_values(server, topic, partition):
    """[(offset, value)] of a partition, read through SQL."""
    return [(off, bytes(v).decode()) for off, v in server.sql(
        'SELECT "offset", value FROM streamlog.read(%s, %s, 0, 10000000)',
        (topic, partition))]


def high_watermark(server, topic, partition):
    return server.sql("SELECT high_watermark FROM streamlog.partitions "
                      "WHERE topic = %s AND partition = %s", (topic, partition))[0][0]


@pytest.fixture
def primary_and_standby(make_server, tmp_path_factory):
    primary = make_server()
    standby = StandbyServer(primary, tmp_path_factory.getbasetemp())
    make_server.servers.append(standby)  # logs on failure, cleanup
    return primary, standby


def test_standby_readers_follow_replay(primary_and_standby, unique_name):
    """SQL reads on a hot standby see what was replayed since the first
    read, and the standby's broker workers wait for the end of recovery
    instead of failing on a read-only server."""
    primary, standby = primary_and_standby
    topic = unique_name("standby-read")
    primary.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    for i in range(3):
        primary.sql("SELECT streamlog.produce(%s, NULL, %s::text)", (topic, f"a{i}"))
    standby.start()
    assert standby.in_recovery()
    wait_replayed(primary, standby)
    assert [v for _, v in sql_values(standby, topic, 0)] == ["a0", "a1", "a2"]
    assert high_watermark(standby, topic, 0) == 3

    for i in range(3):
        primary.sql("SELECT streamlog.produce(%s, NULL, %s::text)", (topic, f"b{i}"))
    wait_replayed(primary, standby)
    assert [v for _, v in sql_values(standby, topic, 0)] == \
        ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert high_watermark(standby, topic, 0) == 6

    # A session that stays open sees topics change under it: partitions
    # added, a topic dropped and made again (a new topic id)
    with standby.connect() as session:
        read = 'SELECT value FROM streamlog.read(%s, %s, 0, 1000)'
        assert len(session.execute(read, (topic, 0)).fetchall()) == 6
        primary.sql("SELECT streamlog.add_partitions(%s, 1)", (topic,))
        primary.sql("SELECT streamlog.produce(%s, NULL, 'c0'::text, partition => 1)",
                    (topic,))
        wait_replayed(primary, standby)
        assert [bytes(v).decode() for v, in session.execute(read, (topic, 1))] == ["c0"]
        primary.sql("SELECT streamlog.drop_topic(%s)", (topic,))
        primary.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
        primary.sql("SELECT streamlog.produce(%s, NULL, 'd0'::text)", (topic,))
        wait_replayed(primary, standby)
        assert [bytes(v).decode() for v, in session.execute(read, (topic, 0))] == ["d0"]

    # A read-only server refuses what writes with PostgreSQL's own error
    for statement in ("SELECT streamlog.produce(%s, NULL, 'x'::text)",
                      "SELECT * FROM streamlog.consume('g', %s)",
                      "SELECT streamlog.seek('g', %s, 0, 0)",
                      "SELECT streamlog.create_topic(%s || '-new', 1)",
                      "SELECT streamlog.add_partitions(%s, 1)",
                      "SELECT streamlog.delete_records(%s, 0, 1)",
                      "SELECT streamlog.drop_topic(%s)"):
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            standby.sql(statement, (topic,))
    assert not WORKER_DIED.search(standby.log_text())


def produce_until_killed(bootstrap, topic, partitions, acked, failed, stop, client_id):
    """Idempotent acks=all producer of unique values, round robin over the
    partitions, until stop is set; acked/failed get (partition, value)."""
    producer = confluent_kafka.Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "message.timeout.ms": 5000,
        "client.id": client_id,
    })

    def report(err, msg):
        item = (msg.partition(), msg.value().decode())
        (failed if err else acked).append(item)

    i = 0
    while not stop.is_set():
        value = f"{client_id}-{i}"
        try:
            producer.produce(topic, value=value.encode(), partition=i % partitions,
                             on_delivery=report)
        except BufferError:
            producer.poll(0.05)
            continue
        i += 1
        producer.poll(0.001 if i % 20 else 0.01)
    producer.flush(30)


def test_promoted_standby_keeps_every_acknowledged_record(primary_and_standby, unique_name):
    primary, standby = primary_and_standby
    topic = unique_name("ha")
    partitions = 3
    group = unique_name("ha-group")
    primary.sql("SELECT streamlog.create_topic(%s, %s)", (topic, partitions))
    standby.start()
    make_synchronous(primary, standby.application_name)

    # A monitoring query on the standby: loads the partitions' state in
    # shared memory while the standby is still replaying
    wait_replayed(primary, standby)
    assert [r[0] for r in standby.sql(
        "SELECT high_watermark FROM streamlog.partitions WHERE topic = %s",
        (topic,))] == [0] * partitions

    # SQL produce, committed (synchronous_commit waits for the standby)
    sql_committed = []
    for i in range(30):
        value = f"sql-{i}"
        primary.sql("SELECT streamlog.produce(%s, NULL, %s::text, partition => %s)",
                    (topic, value, i % partitions))
        sql_committed.append((i % partitions, value))

    # A Kafka group commits offsets, read with kafka-python
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    consumer = KafkaConsumer(bootstrap_servers=primary.kafka_bootstrap, group_id=group,
                             enable_auto_commit=False, request_timeout_ms=15000)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    committed_before = {tp: 4 + tp.partition for tp in tps}
    consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in committed_before.items()})
    consumer.close()

    # Kafka acks=all producers running while the primary is killed
    acked, failed, stop = [], [], threading.Event()
    producers = [threading.Thread(target=produce_until_killed, args=(
        primary.kafka_bootstrap, topic, partitions, acked, failed, stop, f"p{n}"))
        for n in range(2)]
    for t in producers:
        t.start()
    try:
        wait_until(lambda: len(acked) >= 500, 120, "500 acknowledged Kafka records")
        primary.kill9()
    finally:
        stop.set()
        for t in producers:
            t.join(120)
    acked_at_kill = list(acked)
    assert len(acked_at_kill) >= 500
    assert not WORKER_DIED.search(standby.log_text()), standby.log_tail(40)

    # The Raft directory rule for a standalone node: it never had one, so
    # the clone has none to wipe and the promoted node makes none
    for srv in (primary, standby):
        assert not os.path.exists(os.path.join(srv.datadir, "streamlog_raft"))

    standby.promote()
    promoted = standby
    assert not os.path.exists(os.path.join(promoted.datadir, "streamlog_raft"))

    stored = {p: sql_values(promoted, topic, p) for p in range(partitions)}
    for p, rows in stored.items():
        assert [off for off, _ in rows] == list(range(len(rows))), f"gap in partition {p}"
    stored_set = {(p, v) for p, rows in stored.items() for _, v in rows}
    lost = [item for item in sql_committed + acked_at_kill if item not in stored_set]
    assert lost == [], f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}"
    values = [v for rows in stored.values() for _, v in rows]
    assert len(values) == len(set(values)), "a value stored twice"

    # Offsets go on after the last replayed batch, through both doors
    ends = {p: len(rows) for p, rows in stored.items()}
    promoted.sql("SELECT streamlog.produce(%s, NULL, 'after-sql'::text, partition => 0)",
                 (topic,))
    producer = confluent_kafka.Producer({"bootstrap.servers": promoted.kafka_bootstrap,
                                         "enable.idempotence": True, "acks": "all"})
    delivered = []
    producer.produce(topic, value=b"after-ck", partition=1,
                     on_delivery=lambda err, msg: delivered.append((err, msg.offset())))
    producer.flush(60)
    assert delivered == [(None, ends[1])]

    from kafka import KafkaProducer
    kp = KafkaProducer(bootstrap_servers=promoted.kafka_bootstrap, acks="all")
    meta = kp.send(topic, value=b"after-kp", partition=2).get(timeout=60)
    kp.close()
    assert meta.offset == ends[2]
    assert sql_values(promoted, topic, 0)[-1] == (ends[0], "after-sql")

    # Consumers read the whole log from the promoted node
    ck = confluent_kafka.Consumer({"bootstrap.servers": promoted.kafka_bootstrap,
                                   "group.id": unique_name("ha-read"),
                                   "enable.auto.commit": False})
    ck.assign([confluent_kafka.TopicPartition(topic, p, 0) for p in range(partitions)])
    seen = {p: [] for p in range(partitions)}
    want = {p: ends[p] + 1 for p in range(partitions)}

    def consumed_all():
        msg = ck.poll(0.2)
        if msg is not None and not msg.error():
            seen[msg.partition()].append((msg.offset(), msg.value().decode()))
        return all(len(seen[p]) >= want[p] for p in range(partitions))
    wait_until(consumed_all, 120, "the promoted node's log through confluent-kafka",
               interval=0)
    ck.close()
    for p in range(partitions):
        assert seen[p][:ends[p]] == stored[p]

    # The group's committed offsets survived; the group resumes there
    consumer = KafkaConsumer(bootstrap_servers=promoted.kafka_bootstrap, group_id=group,
                             enable_auto_commit=False, request_timeout_ms=15000)
    consumer.assign(tps)
    assert {tp: consumer.committed(tp) for tp in tps} == committed_before
    first = {}

    def resumed():
        for records in consumer.poll(timeout_ms=200).values():
            for r in records:
                first.setdefault(r.partition, r.offset)
        return len(first) == partitions
    wait_until(resumed, 120, "the group's consumer to resume on every partition",
               interval=0)
    consumer.close()
    assert first == {tp.partition: o for tp, o in committed_before.items()}


def test_commit_the_standby_never_confirmed_is_not_acknowledged(make_server, unique_name):
    """A produce whose commit waits for a synchronous standby that never
    confirms it is not acknowledged when the primary is killed meanwhile:
    PostgreSQL gives the wait up on postmaster death and returns as if the
    commit had been replicated; neither door may answer it (the records
    would be missing on a promoted standby)."""
    srv = make_server()
    topic = unique_name("unconfirmed")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    producer = confluent_kafka.Producer({"bootstrap.servers": srv.kafka_bootstrap,
                                         "enable.idempotence": True, "acks": "all",
                                         "message.timeout.ms": 10000})
    results = []

    def report(err, msg):
        results.append((msg.value(), err))
    producer.produce(topic, value=b"before", on_delivery=report)
    producer.flush(30)
    assert results == [(b"before", None)]

    # A synchronous standby that is never there: every commit waits
    srv.update_conf({"synchronous_standby_names": "nobody"})
    srv.reload()
    sql_outcome = []

    def sql_produce():
        try:
            with srv.connect() as c:
                c.execute("SELECT streamlog.produce(%s, NULL, 'sql'::text)", (topic,))
            sql_outcome.append("acknowledged")
        except Exception as e:  # the server went away: not acknowledged
            sql_outcome.append(type(e).__name__)

    def commits_waiting(n):
        return srv.sql("SELECT count(*) FROM pg_stat_activity "
                       "WHERE wait_event = 'SyncRep'")[0][0] >= n

    # The SQL commit waiting shows that the setting is in force everywhere
    sql_thread = threading.Thread(target=sql_produce)
    sql_thread.start()
    wait_until(lambda: commits_waiting(1), 60, "the SQL commit to wait for the standby")
    producer.produce(topic, value=b"unconfirmed", on_delivery=report)
    wait_until(lambda: (producer.poll(0), commits_waiting(2))[1], 60,
               "the Kafka commit to wait for the standby too")
    srv.kill9()
    producer.flush(30)
    sql_thread.join(60)
    assert results[1][0] == b"unconfirmed"
    assert results[1][1] is not None, "acknowledged without the synchronous standby"
    assert sql_outcome and sql_outcome[0] != "acknowledged"
