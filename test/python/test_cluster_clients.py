"""Real Kafka clients on a three-node cluster: librdkafka (confluent-kafka)
and kafka-python producers and consumers bootstrapped from one node, with
partitions led by every node; consumer groups across nodes; a producer
that rides through the restart of a partition leader.

The tests share one cluster and use topics of their own."""

import collections

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import shared_cluster
import kafka_helpers as kh

PARTITIONS = 6
COUNT = 600


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 3, name="clients",
                              conf={"streamlog.group_initial_rebalance_delay": 0})


def spread_topic(c, name, bootstrap_node):
    """A topic of PARTITIONS partitions made through librdkafka's admin
    client on one node; returns {partition: leader}, every node leading
    some."""
    admin = AdminClient({"bootstrap.servers": c.node(bootstrap_node).kafka_bootstrap})
    assert kh.admin_results(admin.create_topics([NewTopic(name, PARTITIONS, 1)]), 60) == \
        {name: None}
    parts = c.wait_topic_everywhere(name)[4]
    leaders = {p: v[0] for p, v in parts.items()}
    assert set(leaders.values()) == set(c.node_ids), leaders
    return leaders


def ck_produce(bootstrap, topic, values, conf=None):
    """Produce keyed values with librdkafka; {partition: [(offset, value)]}
    from the delivery reports."""
    settings = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                "message.timeout.ms": 120000}
    settings.update(conf or {})
    p = Producer(settings)
    delivered = collections.defaultdict(list)
    errors = []

    def report(err, msg):
        if err:
            errors.append(err)
        else:
            delivered[msg.partition()].append((msg.offset(), msg.value()))
    for i, v in enumerate(values):
        p.produce(topic, key=f"key-{i}".encode(), value=v, on_delivery=report)
        p.poll(0)
    assert p.flush(180) == 0
    assert errors == []
    return delivered


def kp_produce(bootstrap, topic, values):
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                             retries=10, request_timeout_ms=30000)
    try:
        futures = [producer.send(topic, key=f"key-{i}".encode(), value=v)
                   for i, v in enumerate(values)]
        producer.flush(180)
        delivered = collections.defaultdict(list)
        for f in futures:
            md = f.get(timeout=60)
            delivered[md.partition].append((md.offset, None))
        return delivered
    finally:
        producer.close(30)


def test_librdkafka_produces_and_kafka_python_consumes_across_nodes(cluster, unique_name):
    name = unique_name("ck2kp")
    leaders = spread_topic(cluster, name, 1)
    values = [f"ck-{i}".encode() for i in range(COUNT)]
    # bootstrapped from node 1 only: librdkafka finds the other leaders
    delivered = ck_produce(cluster.node(1).kafka_bootstrap, name, values)
    assert sum(len(v) for v in delivered.values()) == COUNT
    assert {leaders[p] for p in delivered} == set(cluster.node_ids)
    # kafka-python bootstrapped from node 2 reads every partition
    for p, recs in delivered.items():
        got = kh.kp_consume(cluster.node(2).kafka_bootstrap, name, p, len(recs), timeout=60)
        assert [(r[0], r[2]) for r in got] == sorted(recs)


def test_kafka_python_produces_and_librdkafka_consumes_across_nodes(cluster, unique_name):
    name = unique_name("kp2ck")
    leaders = spread_topic(cluster, name, 3)
    values = [f"kp-{i}".encode() for i in range(COUNT)]
    delivered = kp_produce(cluster.node(3).kafka_bootstrap, name, values)
    assert sum(len(v) for v in delivered.values()) == COUNT
    assert {leaders[p] for p in delivered} == set(cluster.node_ids)
    got_values = []
    for p, recs in delivered.items():
        got = kh.ck_consume(cluster.node(1).kafka_bootstrap, name, p, len(recs), timeout=60)
        assert [r[0] for r in got] == sorted(o for o, _ in recs)
        got_values += [r[2] for r in got]
    assert sorted(got_values) == sorted(values)


def test_consumer_group_across_nodes(cluster, unique_name):
    """One group, a librdkafka member bootstrapped from node 2 and a
    kafka-python member bootstrapped from node 3, share the partitions of a
    topic led by all three nodes; their commits are seen from every node.
    The records are produced once the group is stable, so that no
    rebalance hands a partition over (which re-reads it from the last
    commit, as Kafka does)."""
    from kafka import KafkaConsumer
    name = unique_name("group")
    group = unique_name("g")
    spread_topic(cluster, name, 2)

    ck = Consumer({"bootstrap.servers": cluster.node(2).kafka_bootstrap,
                   "group.id": group, "auto.offset.reset": "earliest",
                   "enable.auto.commit": False, "session.timeout.ms": 30000})
    kp = KafkaConsumer(name, bootstrap_servers=cluster.node(3).kafka_bootstrap,
                       group_id=group, auto_offset_reset="earliest",
                       enable_auto_commit=False, session_timeout_ms=30000,
                       fetch_max_wait_ms=100)
    seen = []
    errors = []
    retried = []
    try:
        ck.subscribe([name])

        def poll_both():
            msg = ck.poll(0.1)
            if msg is not None:
                # retriable errors (NOT_COORDINATOR while the group's
                # coordinator is being settled) are retried by librdkafka
                # itself, as they would be against Kafka
                if msg.error() and not msg.error().retriable():
                    errors.append(msg.error())
                elif msg.error():
                    retried.append(str(msg.error()))
                else:
                    seen.append(("ck", msg.partition(), msg.value()))
            for records in kp.poll(timeout_ms=100).values():
                seen.extend(("kp", r.partition, r.value) for r in records)

        def stable():
            poll_both()
            mine = {tp.partition for tp in ck.assignment()}
            theirs = {tp.partition for tp in kp.assignment()}
            return mine and theirs and not mine & theirs and \
                mine | theirs == set(range(PARTITIONS))
        try:
            cluster.wait_for(stable, 120, "both members assigned, every partition once",
                             interval=0)
        except pytest.fail.Exception as e:
            pytest.fail(f"{e}; librdkafka member has {ck.assignment()}, kafka-python "
                        f"member {kp.assignment()}; librdkafka's retried errors: "
                        f"{retried[:5]} ({len(retried)} in all)")
        assert errors == []
        assert seen == []
        values = [f"g-{i}".encode() for i in range(COUNT)]
        ck_produce(cluster.bootstrap_servers(), name, values)

        def all_seen():
            poll_both()
            return len(seen) >= COUNT
        cluster.wait_for(all_seen, 180, "the group consuming every record", interval=0)
        ck.commit(asynchronous=False)
        kp.commit()
        owners = {"ck": {tp.partition for tp in ck.assignment()},
                  "kp": {tp.partition for tp in kp.assignment()}}
    finally:
        ck.close()
        kp.close()
    assert errors == []
    assert sorted(v for _, _, v in seen) == sorted(values)
    # each member read the partitions assigned to it, and both read some
    for who, p, _ in seen:
        assert p in owners[who], (who, p, owners)
    assert {who for who, _, _ in seen} == {"ck", "kp"}
    # the committed offsets, read through any node
    for n in cluster:
        reader = Consumer({"bootstrap.servers": n.kafka_bootstrap, "group.id": group})
        try:
            committed = reader.committed(
                [TopicPartition(name, p) for p in range(PARTITIONS)], timeout=30)
        finally:
            reader.close()
        assert sum(tp.offset for tp in committed) == COUNT


def test_idempotent_producer_rides_through_a_leader_restart(cluster, unique_name):
    name = unique_name("ride")
    leaders = spread_topic(cluster, name, 1)
    controller = cluster.wait_for_controller()
    victim = next(i for i in cluster.node_ids if i != controller and i != 1)
    settings = {"bootstrap.servers": cluster.node(1).kafka_bootstrap,
                "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                "message.timeout.ms": 180000}
    p = Producer(settings)
    delivered = collections.defaultdict(list)
    errors = []

    def report(err, msg):
        if err:
            errors.append(err)
        else:
            delivered[msg.partition()].append((msg.offset(), msg.value()))

    def send(tag, n):
        for i in range(n):
            p.produce(name, value=f"{tag}-{i}".encode(), partition=i % PARTITIONS,
                      on_delivery=report)
            p.poll(0)
    send("first", 120)
    assert p.flush(120) == 0
    cluster.stop(victim, "fast")
    send("second", 120)      # the victim's partitions have no leader now
    p.poll(1)
    cluster.start(victim)
    assert p.flush(180) == 0
    assert errors == []
    assert sum(len(v) for v in delivered.values()) == 240
    assert any(leaders[q] == victim for q in delivered)
    # every record once, in the order sent per partition
    for q in range(PARTITIONS):
        leader = cluster.wait_topic_everywhere(
            name, check=lambda s: s[4][q][0] != -1)[4][q][0]
        rows = cluster.node(leader).sql(
            "SELECT \"offset\", value FROM streamlog.read(%s, %s, 0, 10000) "
            "ORDER BY \"offset\"", (name, q))
        assert [(o, bytes(v)) for o, v in rows] == sorted(delivered[q])
