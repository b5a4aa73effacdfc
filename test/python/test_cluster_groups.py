"""Consumer groups on a cluster (README, "Consumer groups on a cluster"):
__consumer_offsets replicated with the cluster's default replication
factor, committed offsets that survive kill -9 of the group's coordinator
(a Kafka group and a SQL group resume at their last commit, nothing read
again, nothing skipped), and the answers of a node that does not
coordinate a group, or that still loads it (raw requests).

Three real nodes, replication factor 3, min.insync.replicas 2."""

import struct
import time

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import kafka_helpers as kh
from replstream import create_topic_with_assignment

OFFSETS_TOPIC = "__consumer_offsets"
OFFSETS_PARTITIONS = 5
SESSION_TIMEOUT_MS = 3000

NONE = 0
COORDINATOR_LOAD_IN_PROGRESS = 14
NOT_COORDINATOR = 16

CONF = {
    "streamlog.default_replication_factor": 3,
    "streamlog.min_insync_replicas": 2,
    "streamlog.offsets_topic_num_partitions": OFFSETS_PARTITIONS,
    "streamlog.broker_session_timeout_ms": SESSION_TIMEOUT_MS,
}


@pytest.fixture
def cluster(make_cluster):
    return make_cluster(3, conf=CONF)


def java_hash(s):
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    return h


def offsets_partition(group):
    """Kafka's Utils.abs(groupId.hashCode()) % partitions"""
    h = java_hash(group)
    if h >= 1 << 31:
        h -= 1 << 32
    return (0 if h == -(1 << 31) else abs(h)) % OFFSETS_PARTITIONS


def coordinator_of(cluster, group, exclude=(), via=None):
    """The leader of the group's offsets partition, once there is one
    (other than the excluded nodes) that every live node agrees on."""
    p = offsets_partition(group)

    def agreed():
        leaders = {cluster.leaders(OFFSETS_TOPIC, via=i).get(p) for i in cluster.reachable()}
        if len(leaders) != 1:
            return None
        (leader,) = leaders
        return leader if leader is not None and leader >= 1 and leader not in exclude else None
    return cluster.wait_for(agreed, 90, f"a coordinator of {group} (not {exclude})")


def create_topic(cluster, name, partitions=1):
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, %s, "
                        "'{\"min.insync.replicas\": \"2\"}', 3)", (name, partitions))
    return cluster.wait_topic_everywhere(name)


def produce(cluster, topic, values):
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers(), "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    errors = []
    for v in values:
        producer.produce(topic, value=v, partition=0,
                         on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(60) == 0
    assert errors == [None] * len(values), errors


def ensure_offsets_topic(cluster, group):
    """__consumer_offsets exists (created by the first commit), fully
    replicated; returns its partition state."""
    probe_topic = "probe-" + group
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 1)", (probe_topic,))
    cluster.wait_topic_everywhere(probe_topic)
    probe = Consumer({"bootstrap.servers": cluster.bootstrap_servers(),
                      "group.id": "probe-" + group, "enable.auto.commit": False})
    try:
        probe.commit(offsets=[TopicPartition(probe_topic, 0, 0)], asynchronous=False)
    finally:
        probe.close()
    return cluster.wait_topic_everywhere(
        OFFSETS_TOPIC, check=lambda s: all(len(p[3]) == 3 for p in s[4].values()))


def test_offsets_topic_takes_the_cluster_replication_factor(cluster, unique_name):
    state = ensure_offsets_topic(cluster, unique_name("g"))
    _tid, _uuid, count, config, parts = state
    assert count == OFFSETS_PARTITIONS
    for leader, _epoch, _pepoch, replicas, isr in parts.values():
        assert sorted(replicas) == [1, 2, 3]
        assert leader in replicas and leader in isr
    assert config.get("min.insync.replicas") == "2"
    assert config.get("cleanup.policy") == "compact"


def commit(consumer, tp, deadline=60):
    """A synchronous commit, retried while it fails (a retriable error of
    the partition: the coordinator still waits for a dead in-sync
    replica to leave the ISR); returns the errors seen before it took."""
    errors = []
    end = time.monotonic() + deadline
    while True:
        try:
            [done] = consumer.commit(offsets=[tp], asynchronous=False)
            if done.error is None:
                return errors
            errors.append(done.error.code())
        except KafkaException as e:
            errors.append(e.args[0].code())
        assert time.monotonic() < end, f"commit of {tp} failed: {errors}"
        time.sleep(0.2)


def consume_kafka(bootstrap, topic, group, count, deadline=120):
    """count records of a group member, in order, then a synchronous commit."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 10000})
    got = []
    try:
        consumer.subscribe([topic])
        end = time.monotonic() + deadline
        while len(got) < count:
            assert time.monotonic() < end, f"consumed {len(got)} of {count}"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                continue
            got.append((msg.offset(), msg.value()))
        # the records after the count are not committed
        commit(consumer, TopicPartition(topic, 0, got[count - 1][0] + 1))
    finally:
        consumer.close()
    return got[:count]


def test_kafka_group_resumes_after_its_coordinator_is_killed(cluster, unique_name):
    topic = unique_name("events")
    group = unique_name("g")
    create_topic(cluster, topic)
    ensure_offsets_topic(cluster, group)
    values = [f"v-{i}".encode() for i in range(60)]
    produce(cluster, topic, values)

    first = consume_kafka(cluster.bootstrap_servers(), topic, group, 25)
    assert [o for o, _ in first] == list(range(25))
    coordinator = coordinator_of(cluster, group)

    cluster.kill9(coordinator)
    successor = coordinator_of(cluster, group, exclude=(coordinator,))
    assert successor != coordinator

    live = [i for i in cluster.node_ids if i != coordinator]
    rest = consume_kafka(cluster.bootstrap_servers(live), topic, group, 35)
    # from the last commit on: nothing read again, nothing skipped
    assert [o for o, _ in rest] == list(range(25, 60))
    assert [v for _, v in first + rest] == values
    # the new coordinator holds the commit in its table, from its replica
    rows = cluster.node(successor).sql(
        "SELECT committed_offset FROM streamlog.group_offset o JOIN streamlog.topic t "
        "USING (topic_id) WHERE o.group_id = %s AND t.name = %s", (group, topic))
    assert rows == [(60,)]


def sql_consume(node, group, topic, count):
    """Consume and commit count records through SQL, in one transaction."""
    with node.connect() as c:
        with c.transaction():
            rows = c.execute("SELECT \"offset\", value FROM streamlog.consume(%s, %s, %s)",
                             (group, topic, count)).fetchall()
    return rows


def test_sql_group_resumes_after_its_coordinator_is_killed(cluster, unique_name):
    """SQL consume() runs where the group's coordinator and the topic's
    leader meet: the topic takes the replicas of the group's offsets
    partition in the same order, so that both elect the same successor."""
    topic = unique_name("sqlevents")
    group = unique_name("sqlg")
    state = ensure_offsets_topic(cluster, group)
    replicas = list(state[4][offsets_partition(group)][3])
    error, message = create_topic_with_assignment(cluster.node(1), topic, {0: replicas})
    assert error == 0, message
    cluster.wait_topic_everywhere(topic)
    cluster.wait_for(lambda: cluster.leaders(topic)[0] == coordinator_of(cluster, group),
                     60, "the topic led by the group's coordinator")
    values = [f"s-{i}".encode() for i in range(40)]
    produce(cluster, topic, values)

    coordinator = coordinator_of(cluster, group)
    node = cluster.node(coordinator)
    got = []
    while len(got) < 15:
        got += sql_consume(node, group, topic, 15 - len(got))
    assert [o for o, _ in got] == list(range(15))

    cluster.kill9(coordinator)
    successor = coordinator_of(cluster, group, exclude=(coordinator,))
    other = cluster.node(successor)

    rest = []
    deadline = time.monotonic() + 120
    while len(rest) < 25:
        assert time.monotonic() < deadline, rest
        try:
            rest += sql_consume(other, group, topic, 25 - len(rest))
        except psycopg.errors.ObjectNotInPrerequisiteState:
            time.sleep(0.2)
    assert [o for o, _ in rest] == list(range(15, 40))
    assert [bytes(v) for _, v in got + rest] == values


# -- raw answers --------------------------------------------------------------

OFFSET_FETCH = 9


def offset_fetch_v1(correlation_id, group, topic, partition=0):
    body = (kh.string(group) + struct.pack(">i", 1) + kh.string(topic)
            + struct.pack(">i", 1) + struct.pack(">i", partition))
    return kh.request_frame(OFFSET_FETCH, 1, correlation_id, body)


def parse_offset_fetch_v1(body):
    """[(partition, offset, error)] of the one topic asked"""
    r = kh.Reader(body)
    out = []
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            partition, offset, _meta, error = r.i32(), r.i64(), r.string(), r.i16()
            out.append((partition, offset, error))
    return out


def test_not_coordinator_and_load_in_progress_answers(cluster, unique_name):
    topic = unique_name("raw")
    group = unique_name("rawg")
    create_topic(cluster, topic)
    ensure_offsets_topic(cluster, group)
    produce(cluster, topic, [b"x"] * 5)
    consume_kafka(cluster.bootstrap_servers(), topic, group, 3)
    coordinator = coordinator_of(cluster, group)

    for n in cluster:
        with kh.RawClient(n.kafka_bootstrap) as client:
            [(partition, offset, error)] = parse_offset_fetch_v1(
                client.call(offset_fetch_v1, group, topic))
        if n.node_id == coordinator:
            assert (offset, error) == (3, NONE)
        else:
            assert error == NOT_COORDINATOR

    # a restarted coordinator loads the partition again before it answers:
    # the first answer after the restart is LOAD_IN_PROGRESS, then the
    # offset (kill -9 and back, so that the leadership stays or returns)
    cluster.restart(coordinator, mode="immediate")
    cluster.wait_ready()
    now = coordinator_of(cluster, group)
    answers = []

    def answered():
        with kh.RawClient(cluster.node(now).kafka_bootstrap) as client:
            [(_, offset, error)] = parse_offset_fetch_v1(
                client.call(offset_fetch_v1, group, topic))
        answers.append((offset, error))
        return error == NONE
    cluster.wait_for(answered, 60, "the new coordinator's answer")
    assert answers[-1] == (3, NONE)
    assert set(e for _, e in answers) <= {NONE, COORDINATOR_LOAD_IN_PROGRESS}
    assert answers[0][1] == COORDINATOR_LOAD_IN_PROGRESS, answers


OFFSET_COMMIT = 8
COORDINATOR_NOT_AVAILABLE = 15


def offset_commit_v2(correlation_id, group, topic, offset, partition=0):
    """A commit from outside the group's membership (generation -1)."""
    body = (kh.string(group) + struct.pack(">i", -1) + kh.string("")
            + struct.pack(">q", -1) + struct.pack(">i", 1) + kh.string(topic)
            + struct.pack(">i", 1) + struct.pack(">iq", partition, offset) + kh.string(""))
    return kh.request_frame(OFFSET_COMMIT, 2, correlation_id, body)


def parse_offset_commit_v2(body):
    """[(partition, error)] of the one topic committed"""
    r = kh.Reader(body)
    out = []
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            out.append((r.i32(), r.i16()))
    return out


def raw_commit(node, group, topic, offset, timeout=30.0):
    with kh.RawClient(node.kafka_bootstrap, timeout=timeout) as client:
        [(_, error)] = parse_offset_commit_v2(
            client.call(offset_commit_v2, group, topic, offset))
    return error


def test_commit_is_answered_once_replicated(cluster, unique_name):
    """With both followers of the group's offsets partition gone (and with
    them the metadata quorum, so the ISR cannot shrink), a commit is
    written on the coordinator but never acknowledged: the answer is
    COORDINATOR_NOT_AVAILABLE at Kafka's 5 s offsets.commit.timeout.ms.
    Once they are back and caught up, a commit is answered."""
    topic = unique_name("acked")
    group = unique_name("ackg")
    create_topic(cluster, topic)
    ensure_offsets_topic(cluster, group)
    coordinator = coordinator_of(cluster, group)
    node = cluster.node(coordinator)
    cluster.wait_for(lambda: raw_commit(node, group, topic, 1) == NONE, 60,
                     "a first commit on every in-sync replica")

    followers = [i for i in cluster.node_ids if i != coordinator]
    for i in followers:
        cluster.kill9(i)
    assert raw_commit(node, group, topic, 2) == COORDINATOR_NOT_AVAILABLE
    # written all the same (as in Kafka, the record may still arrive)
    rows = node.sql("SELECT committed_offset FROM streamlog.group_offset WHERE group_id = %s",
                    (group,))
    assert rows == [(2,)]

    cluster.start(followers)
    cluster.wait_ready()
    cluster.wait_for(lambda: raw_commit(cluster.node(coordinator_of(cluster, group)),
                                        group, topic, 3) == NONE, 90,
                     "a commit acknowledged once the followers are back")
