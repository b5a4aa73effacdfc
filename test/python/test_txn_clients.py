"""Kafka transactions with a real client (issue 14): confluent-kafka
(librdkafka) init_transactions / begin / produce /
send_offsets_to_transaction / commit and abort against one node with
streamlog.transaction_coordinator on; read_committed consumers see the
committed records only, read_uncommitted ones all, and the group's offsets
move only with a committed transaction."""

import time

import pytest

import kafka_helpers as kh
from pgserver import PgServer, wait_until

CONF = {"streamlog.transaction_coordinator": "on"}


@pytest.fixture(scope="module")
def txn_server(tmp_path_factory):
    srv = PgServer(tmp_path_factory.getbasetemp(), conf=CONF, name="txclients")
    try:
        srv.start()
    except BaseException:
        srv.cleanup()
        raise
    yield srv
    srv.cleanup()


def producer(server, tid, **conf):
    from confluent_kafka import Producer
    settings = {"bootstrap.servers": server.kafka_bootstrap, "transactional.id": tid,
                "transaction.timeout.ms": 60000, "linger.ms": 5}
    settings.update(conf)
    return Producer(settings)


def consume_all(server, topic, isolation, expect, timeout=30.0):
    return kh.read_values(server.kafka_bootstrap, topic, 0, isolation, expect, timeout)


def test_commit_and_abort_with_confluent_kafka(txn_server, unique_name):
    from confluent_kafka import TopicPartition
    src, out, group, tid = (unique_name("in"), unique_name("out"), unique_name("g"),
                            unique_name("tx"))
    txn_server.sql("SELECT streamlog.create_topic(%s, 1)", (src,))
    txn_server.sql("SELECT streamlog.create_topic(%s, 1)", (out,))

    from confluent_kafka import Consumer
    consumer = Consumer({"bootstrap.servers": txn_server.kafka_bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    p = producer(txn_server, tid)
    p.init_transactions(30)

    p.begin_transaction()
    for v in ("a", "b", "c"):
        p.produce(out, v.encode(), partition=0)
    p.send_offsets_to_transaction([TopicPartition(src, 0, 3)],
                                  consumer.consumer_group_metadata(), 30)
    p.commit_transaction(30)

    p.begin_transaction()
    for v in ("x", "y"):
        p.produce(out, v.encode(), partition=0)
    p.send_offsets_to_transaction([TopicPartition(src, 0, 5)],
                                  consumer.consumer_group_metadata(), 30)
    # on the broker before the abort: librdkafka purges what it has not sent yet
    p.flush(30)
    p.abort_transaction(30)

    p.begin_transaction()
    p.produce(out, b"d", partition=0)
    p.commit_transaction(30)

    assert consume_all(txn_server, out, "read_committed", 4) == ["a", "b", "c", "d"]
    assert consume_all(txn_server, out, "read_uncommitted", 6) == ["a", "b", "c", "x", "y", "d"]
    committed = consumer.committed([TopicPartition(src, 0)], 30)
    assert committed[0].offset == 3
    consumer.close()
    rows = txn_server.sql("SELECT state FROM streamlog.transactions WHERE transactional_id = %s",
                          (tid,))
    assert rows == [("CompleteCommit",)]


def test_second_producer_fences_the_first(txn_server, unique_name):
    from confluent_kafka import KafkaException
    out, tid = unique_name("out"), unique_name("tx")
    txn_server.sql("SELECT streamlog.create_topic(%s, 1)", (out,))
    zombie = producer(txn_server, tid)
    zombie.init_transactions(30)
    zombie.begin_transaction()
    zombie.produce(out, b"zombie", partition=0)
    zombie.flush(30)

    fresh = producer(txn_server, tid)
    fresh.init_transactions(30)   # aborts the zombie's open transaction
    fresh.begin_transaction()
    fresh.produce(out, b"fresh", partition=0)
    fresh.commit_transaction(30)

    with pytest.raises(KafkaException) as e:
        zombie.produce(out, b"late", partition=0)
        zombie.commit_transaction(30)
    assert e.value.args[0].fatal() or e.value.args[0].txn_requires_abort()
    assert consume_all(txn_server, out, "read_committed", 1) == ["fresh"]


def test_commit_and_abort_with_kafkajs(txn_server, unique_name):
    import json
    import subprocess
    from kafkajs import JS_DIR, ensure_kafkajs
    src, out, group, tid = (unique_name("in"), unique_name("out"), unique_name("g"),
                            unique_name("tx"))
    txn_server.sql("SELECT streamlog.create_topic(%s, 1)", (src,))
    txn_server.sql("SELECT streamlog.create_topic(%s, 1)", (out,))
    node = ensure_kafkajs()
    res = subprocess.run([node, "txn_commit.js", txn_server.kafka_bootstrap, tid, out, group, src],
                         cwd=JS_DIR, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == {"ok": True}
    assert consume_all(txn_server, out, "read_committed", 2) == ["k1", "k2"]
    assert consume_all(txn_server, out, "read_uncommitted", 3) == ["k1", "k2", "k-aborted"]
    assert txn_server.sql(
        "SELECT committed_offset FROM streamlog.group_offset WHERE group_id = %s", (group,)) == [(2,)]


def test_consume_transform_produce_with_a_group_member(txn_server, unique_name):
    """The exactly-once loop: a subscribed consumer's records, transformed
    and produced in a transaction with its offsets (its member id and
    generation, KIP-447); the group's offset moves with the commit."""
    from confluent_kafka import Consumer, TopicPartition
    src, out, group, tid = (unique_name("in"), unique_name("out"), unique_name("g"),
                            unique_name("tx"))
    txn_server.sql("SELECT streamlog.create_topic(%s, 1)", (src,))
    txn_server.sql("SELECT streamlog.create_topic(%s, 1)", (out,))
    for v in ("1", "2", "3"):
        txn_server.sql("SELECT streamlog.produce(%s, NULL, %s::text)", (src, v))
    consumer = Consumer({"bootstrap.servers": txn_server.kafka_bootstrap, "group.id": group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed"})
    consumer.subscribe([src])
    p = producer(txn_server, tid)
    p.init_transactions(30)
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 3:
        assert time.monotonic() < deadline, f"consumed {seen}"
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        seen.append(msg.value().decode())
        p.begin_transaction()
        p.produce(out, (msg.value().decode() * 2).encode(), partition=0)
        p.send_offsets_to_transaction([TopicPartition(src, 0, msg.offset() + 1)],
                                      consumer.consumer_group_metadata(), 30)
        p.commit_transaction(30)
    consumer.close()
    assert consume_all(txn_server, out, "read_committed", 3) == ["11", "22", "33"]
    assert txn_server.sql(
        "SELECT committed_offset FROM streamlog.group_offset WHERE group_id = %s", (group,)) == [(3,)]


def test_kill9_mid_transactions_leaves_each_whole(make_server, unique_name):
    """kill -9 of the server while a producer commits transactions of 10
    records: after the restart every transaction is in the log whole or not
    at all for read_committed readers, and the one open at the crash is
    aborted by its timeout, so they read to the end."""
    import threading
    srv = make_server(conf=dict(CONF, **{"streamlog.retention_check_interval": "100ms"}))
    out, tid = unique_name("out"), unique_name("tx")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (out,))
    committed = []
    stop = threading.Event()
    started = threading.Event()

    def run():
        p = producer(srv, tid, **{"transaction.timeout.ms": 3000, "message.timeout.ms": 3000})
        try:
            p.init_transactions(30)
            n = 0
            while not stop.is_set():
                p.begin_transaction()
                for i in range(10):
                    p.produce(out, f"{n}-{i}".encode(), partition=0)
                p.commit_transaction(30)
                committed.append(n)
                started.set()
                n += 1
        except Exception:
            pass  # the server went away under it

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert started.wait(60), "no transaction committed before the crash"
    wait_until(lambda: len(committed) >= 5, timeout=60, what="a few transactions commit")
    srv.kill9()
    stop.set()
    t.join(60)
    srv.start()
    # (the abort's marker moves the high watermark too)
    wait_until(lambda: srv.sql("SELECT streamlog.last_stable_offset(%s, 0)", (out,))[0][0]
               == kh.high_watermark(srv, out),
               timeout=60, what="the transaction open at the crash is aborted by its timeout")
    values = consume_all(srv, out, "read_committed", 10 * len(committed))
    by_txn = {}
    for v in values:
        n, i = v.split("-")
        by_txn.setdefault(int(n), []).append(int(i))
    assert all(parts == list(range(10)) for parts in by_txn.values()), by_txn
    # every acknowledged commit is there
    assert set(committed) <= set(by_txn)
