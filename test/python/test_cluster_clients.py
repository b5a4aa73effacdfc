"""Real Kafka clients on a three-node cluster: librdkafka (confluent-kafka)
and kafka-python producers and consumers bootstrapped from one node, with
partitions led by every node; consumer groups across nodes; a producer
that rides through the restart of a partition leader.

The tests share one cluster and use topics of their own."""

import collections
import threading

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


class GroupMember(threading.Thread):
    """One consumer of a group polled in a thread of its own until told to
    stop, then committed and closed there.  Two members cannot share a
    thread: kafka-python's poll() blocks until a rebalance it takes part
    in completes (ensure_active_group ignores the timeout), and the
    rebalance waits for the librdkafka member, which rejoins only from its
    own poll(); one thread polling both stalls the group for
    max.poll.interval.ms (5 minutes), then the librdkafka member is
    dropped and kafka-python has every partition."""

    def __init__(self, who, make, poll, assignment, commit):
        super().__init__(name=who, daemon=True)
        self.who, self._make, self._poll = who, make, poll
        self._assignment, self._commit = assignment, commit
        self.lock = threading.Lock()
        self.assigned = set()
        self.seen = []
        self.errors = []
        self.retried = []
        self.error = None
        self.stop = threading.Event()
        self.commit_on_stop = False
        self.done = threading.Event()

    def run(self):
        consumer = None
        try:
            consumer = self._make()
            while not self.stop.is_set():
                got = self._poll(consumer, self)
                assigned = self._assignment(consumer)
                with self.lock:
                    self.seen.extend(got)
                    self.assigned = assigned
            if self.commit_on_stop:
                self._commit(consumer)
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            if consumer is not None:
                consumer.close()
            self.done.set()

    def snapshot(self):
        with self.lock:
            return set(self.assigned), list(self.seen)


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

    def make_ck():
        ck = Consumer({"bootstrap.servers": cluster.node(2).kafka_bootstrap,
                       "group.id": group, "auto.offset.reset": "earliest",
                       "enable.auto.commit": False, "session.timeout.ms": 30000})
        ck.subscribe([name])
        return ck

    def poll_ck(ck, member):
        msg = ck.poll(0.1)
        if msg is None:
            return []
        # retriable errors (NOT_COORDINATOR while the group's coordinator
        # is being settled) are retried by librdkafka itself, as they would
        # be against Kafka
        if msg.error() and not msg.error().retriable():
            member.errors.append(msg.error())
        elif msg.error():
            member.retried.append(str(msg.error()))
        else:
            return [("ck", msg.partition(), msg.value())]
        return []

    def make_kp():
        return KafkaConsumer(name, bootstrap_servers=cluster.node(3).kafka_bootstrap,
                             group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=30000,
                             fetch_max_wait_ms=100)

    def poll_kp(kp, member):
        return [("kp", r.partition, r.value)
                for records in kp.poll(timeout_ms=100).values() for r in records]

    ck = GroupMember("ck", make_ck, poll_ck,
                     lambda c: {tp.partition for tp in c.assignment()},
                     lambda c: c.commit(asynchronous=False))
    kp = GroupMember("kp", make_kp, poll_kp,
                     lambda c: {tp.partition for tp in c.assignment()},
                     lambda c: c.commit())
    members = (ck, kp)
    for m in members:
        m.start()
    try:
        def stable():
            assert not any(m.error for m in members), [m.error for m in members]
            mine, theirs = ck.snapshot()[0], kp.snapshot()[0]
            return mine and theirs and not mine & theirs and \
                mine | theirs == set(range(PARTITIONS))
        try:
            cluster.wait_for(stable, 120, "both members assigned, every partition once",
                             interval=0.1)
        except pytest.fail.Exception as e:
            pytest.fail(f"{e}; librdkafka member has {ck.snapshot()[0]}, kafka-python "
                        f"member {kp.snapshot()[0]}; librdkafka's retried errors: "
                        f"{ck.retried[:5]} ({len(ck.retried)} in all)")
        assert ck.errors == []
        assert ck.snapshot()[1] == [] and kp.snapshot()[1] == []
        values = [f"g-{i}".encode() for i in range(COUNT)]
        ck_produce(cluster.bootstrap_servers(), name, values)

        cluster.wait_for(lambda: sum(len(m.snapshot()[1]) for m in members) >= COUNT, 180,
                         "the group consuming every record", interval=0.1)
        owners = {m.who: m.snapshot()[0] for m in members}
    finally:
        for m in members:
            m.commit_on_stop = True
            m.stop.set()
        for m in members:
            m.join(120)
    for m in members:
        assert m.error is None, f"{m.who}: {m.error!r}"
        assert not m.is_alive(), f"{m.who} did not stop"
    assert ck.errors == []
    seen = ck.snapshot()[1] + kp.snapshot()[1]
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
