"""The controller's side of replicated partitions on three nodes: topics
with a replication factor from both doors (replicas on three nodes, an
ISR of three), the cluster default, a factor larger than the cluster
refused; AlterPartition (KIP-497) fenced by stale epochs; a leader killed
with kill -9 replaced by an ISR member with the next leader epoch;
reassignments (KIP-455) pending while a new replica is out of the ISR
(its node paused) and completed once it is in; DescribeTopicPartitions.
Unclean elections are in test_cluster_unclean.py.

The tests share one cluster with a short session timeout and change only
their own topics; each leaves every node running.  Where the leader's ISR
manager runs, it may change an ISR between two steps of a test: the
steps that set an ISR retry with the epochs of the moment (ensure_isr)."""

import psycopg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient, NewTopic as KpNewTopic

from cluster import kafka_create_topic, shared_cluster
import cluster_api_requests as car
import kafka_helpers as kh

SESSION_TIMEOUT_MS = 3000

FENCED_LEADER_EPOCH = 74
INVALID_REQUEST = 42
INVALID_UPDATE_VERSION = 95
INELIGIBLE_REPLICA = 107
INVALID_REPLICATION_FACTOR = 38


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 3, name="replicas",
                              conf={"streamlog.broker_session_timeout_ms": SESSION_TIMEOUT_MS})


@pytest.fixture
def whole(cluster):
    """The cluster with every node up and registered, before and after."""
    def heal():
        stopped = [n.node_id for n in cluster if not n.is_running()]
        if stopped:
            cluster.start(stopped)
        cluster.wait_ready()
    heal()
    yield cluster
    heal()


def partition_rows(cluster, name, via):
    """{partition: (leader, leader_epoch, partition_epoch, replicas, isr)}"""
    state = cluster.topic_state(name, via)
    return None if state is None else state[4]


def assert_fully_replicated(state, partitions, rf=3):
    _tid, _uuid, count, _config, parts = state
    assert count == partitions
    for leader, leader_epoch, _pepoch, replicas, isr in parts.values():
        assert len(replicas) == rf and len(set(replicas)) == rf, parts
        assert sorted(isr) == sorted(replicas), parts
        assert leader == replicas[0] and leader_epoch == 0, parts


def test_replication_factor_from_sql(whole, unique_name):
    cluster = whole
    name = unique_name("rfsql")
    cluster.node(2).sql("SELECT streamlog.create_topic(%s, 3, '{}', 3)", (name,))
    state = cluster.wait_topic_everywhere(name)
    assert_fully_replicated(state, 3)
    # leaders spread: each node leads one partition (Kafka's assignment)
    assert sorted(p[0] for p in state[4].values()) == [1, 2, 3]
    rows = cluster.node(1).sql(
        "SELECT partition, replicas, isr, under_replicated, offline FROM streamlog.partitions "
        "WHERE topic = %s ORDER BY partition", (name,))
    assert [(r[3], r[4]) for r in rows] == [(False, False)] * 3

    # the cluster default (1) when none is given
    name1 = unique_name("rfdefault")
    cluster.node(3).sql("SELECT streamlog.create_topic(%s, 2)", (name1,))
    state1 = cluster.wait_topic_everywhere(name1)
    assert all(len(p[3]) == 1 for p in state1[4].values())


def test_replication_factor_from_kafka_clients(whole, unique_name):
    cluster = whole
    name = unique_name("rfconfluent")
    admin = AdminClient({"bootstrap.servers": cluster.node(1).kafka_bootstrap})
    assert kh.admin_results(admin.create_topics([NewTopic(name, 4, 3)]), 60) == {name: None}
    assert_fully_replicated(cluster.wait_topic_everywhere(name), 4)

    name2 = unique_name("rfkafkapython")
    kp = KafkaAdminClient(bootstrap_servers=cluster.node(3).kafka_bootstrap)
    try:
        kp.create_topics([KpNewTopic(name2, 2, 3)], timeout_ms=30000)
    finally:
        kp.close()
    assert_fully_replicated(cluster.wait_topic_everywhere(name2), 2)

    # -1 is the cluster default
    name3 = unique_name("rfminusone")
    assert kafka_create_topic(cluster.node(2), name3, 2, replication_factor=-1) == (0, None)
    state = cluster.wait_topic_everywhere(name3)
    assert all(len(p[3]) == 1 for p in state[4].values())


def test_replication_factor_larger_than_the_cluster(whole, unique_name):
    cluster = whole
    name = unique_name("rftoolarge")
    error, message = kafka_create_topic(cluster.node(2), name, 2, replication_factor=4)
    assert error == INVALID_REPLICATION_FACTOR
    assert "3 available nodes" in message
    with pytest.raises(psycopg.errors.InvalidParameterValue) as e:
        cluster.node(1).sql("SELECT streamlog.create_topic(%s, 1, '{}', 4)", (name,))
    assert "3 available nodes" in e.value.diag.message_detail
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        cluster.node(1).sql("SELECT streamlog.create_topic(%s, 1, '{}', 0)", (name,))
    assert cluster.topic_state(name, 1) is None


def alter_isr(node, name, partition, leader_epoch, partition_epoch, isr):
    [(code, message)] = node.sql(
        "SELECT * FROM streamlog._alter_partition_isr(%s, %s, %s, %s, %s)",
        (name, partition, leader_epoch, partition_epoch, isr))
    return code, message


def ensure_isr(cluster, name, isr, deadline=60):
    """Bring partition 0's ISR to isr as its leader would, with the epochs
    current each time: the leader's own ISR manager may change it in
    between (a refusal for stale epochs is then asked again)."""
    def done():
        leader, le, pe, _replicas, cur = partition_rows(cluster, name, 1)[0]
        if sorted(cur) == sorted(isr):
            return True
        alter_isr(cluster.node(leader), name, 0, le, pe, isr)
        return None
    cluster.wait_for(done, deadline, f"the ISR of {name}-0 to become {isr}")


def test_alter_partition_is_fenced_by_stale_epochs(whole, unique_name):
    cluster = whole
    name = unique_name("alterisr")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 1, '{}', 3)", (name,))
    state = cluster.wait_topic_everywhere(name)
    leader, le, pe, replicas, isr = state[4][0]
    follower = next(r for r in replicas if r != leader)
    shrunk = [r for r in replicas if r != follower]

    # a node that does not lead the partition
    code, message = alter_isr(cluster.node(follower), name, 0, le, pe, shrunk)
    assert code == INVALID_REQUEST and "does not lead" in message
    # the leader, with an ISR leaving itself out
    code, _ = alter_isr(cluster.node(leader), name, 0, le, pe, [follower])
    assert code == INVALID_REQUEST
    # the leader, with the current epochs: done, and applied where it asked
    assert alter_isr(cluster.node(leader), name, 0, le, pe, shrunk) == (0, None)
    after = partition_rows(cluster, name, leader)[0]
    assert sorted(after[4]) == sorted(shrunk) and after[2] == pe + 1 and after[1] == le
    cluster.wait_topic_everywhere(name, check=lambda s: s[4][0] == after)
    row = cluster.node(follower).sql(
        "SELECT under_replicated FROM streamlog.partitions WHERE topic = %s", (name,))
    assert row == [(True,)]
    # the same request again: its partition epoch is stale now
    code, message = alter_isr(cluster.node(leader), name, 0, le, pe, replicas)
    assert code == INVALID_UPDATE_VERSION and "stale" in message
    # back to three (with the partition epoch of the moment: the leader's
    # ISR manager may have taken the follower back already)
    ensure_isr(cluster, name, replicas)
    # only superusers
    node = cluster.node(1)
    node.sql("DROP ROLE IF EXISTS isr_plain")
    node.sql("CREATE ROLE isr_plain")
    with node.connect() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SET ROLE isr_plain")
        conn.execute("SELECT * FROM streamlog._alter_partition_isr(%s, 0, 0, 0, '{1}')", (name,))


def test_leader_killed_moves_to_an_isr_member_with_the_next_epoch(whole, unique_name):
    cluster = whole
    name = unique_name("failover")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 1, '{}', 3)", (name,))
    state = cluster.wait_topic_everywhere(name)
    leader, le, pe, replicas, isr = state[4][0]
    # the stale leader epoch once the leader changed: FENCED_LEADER_EPOCH
    cluster.kill9(leader)
    survivors = [i for i in cluster.node_ids if i != leader]
    moved = cluster.wait_topic_everywhere(
        name, node_ids=survivors,
        check=lambda s: s[4][0][0] not in (leader, -1))[4][0]
    new_leader, new_le, new_pe, new_replicas, new_isr = moved
    assert new_leader in isr and new_le == le + 1 and new_replicas == replicas
    assert leader not in new_isr
    code, _ = alter_isr(cluster.node(new_leader), name, 0, le, new_pe, new_isr)
    assert code == FENCED_LEADER_EPOCH
    cluster.start([leader])
    cluster.wait_ready()
    # it returns as a follower outside the ISR: the leader's to add back
    cluster.wait_for(lambda: partition_rows(cluster, name, leader) is not None and
                     partition_rows(cluster, name, leader)[0][0] == new_leader, 60,
                     "the old leader follows the new one")
    ensure_isr(cluster, name, new_isr + [leader])
    assert partition_rows(cluster, name, 1)[0][:2] == (new_leader, new_le)


# -- partition reassignment (KIP-455) --------------------------------------

ALTER_PARTITION_REASSIGNMENTS = 45
LIST_PARTITION_REASSIGNMENTS = 46
NO_REASSIGNMENT_IN_PROGRESS = 85
INVALID_REPLICA_ASSIGNMENT = 39


def alter_reassignments_request(correlation_id, targets, timeout_ms=30000):
    """AlterPartitionReassignments v0 (flexible): targets {(topic,
    partition): [replicas] or None to cancel}."""
    by_topic = {}
    for (topic, partition), replicas in sorted(targets.items()):
        by_topic.setdefault(topic, []).append((partition, replicas))
    body = kh.i32(timeout_ms) + car.compact_array(
        sorted(by_topic.items()),
        lambda t: car.compact_string(t[0]) + car.compact_array(
            t[1], lambda p: kh.i32(p[0]) + car.compact_array(p[1], kh.i32) + kh.uvarint(0))
        + kh.uvarint(0))
    body += kh.uvarint(0)
    return kh.request_frame(ALTER_PARTITION_REASSIGNMENTS, 0, correlation_id, body,
                            header_version=2)


def parse_alter_reassignments(body):
    """(top-level error, {(topic, partition): (error, message)})"""
    r = kh.Reader(body)
    car.skip_tags(r)
    r.i32()
    error = r.i16()
    car.read_compact_string(r)
    results = {}

    def partition(r, topic):
        pid, code, msg = r.i32(), r.i16(), car.read_compact_string(r)
        car.skip_tags(r)
        results[(topic, pid)] = (code, msg)

    def topic(r):
        name = car.read_compact_string(r)
        car.read_compact_array(r, lambda r: partition(r, name))
        car.skip_tags(r)
    car.read_compact_array(r, topic)
    return error, results


def list_reassignments_request(correlation_id, topics=None):
    """ListPartitionReassignments v0 (flexible): topics {topic:
    [partitions]} or None for every reassignment."""
    body = kh.i32(30000) + car.compact_array(
        None if topics is None else sorted(topics.items()),
        lambda t: car.compact_string(t[0]) + car.compact_array(t[1], kh.i32) + kh.uvarint(0))
    body += kh.uvarint(0)
    return kh.request_frame(LIST_PARTITION_REASSIGNMENTS, 0, correlation_id, body,
                            header_version=2)


def parse_list_reassignments(body):
    """(error, {(topic, partition): (replicas, adding, removing)})"""
    r = kh.Reader(body)
    car.skip_tags(r)
    r.i32()
    error = r.i16()
    car.read_compact_string(r)
    out = {}

    def partition(r, topic):
        pid = r.i32()
        replicas = car.read_compact_array(r, lambda r: r.i32())
        adding = car.read_compact_array(r, lambda r: r.i32())
        removing = car.read_compact_array(r, lambda r: r.i32())
        car.skip_tags(r)
        out[(topic, pid)] = (replicas, adding, removing)

    def topic(r):
        name = car.read_compact_string(r)
        car.read_compact_array(r, lambda r: partition(r, name))
        car.skip_tags(r)
    car.read_compact_array(r, topic)
    return error, out


def kafka_reassign(node, targets):
    with kh.RawClient(node.kafka_bootstrap, timeout=60) as c:
        return parse_alter_reassignments(c.call(alter_reassignments_request, targets))


def kafka_list_reassignments(node, topics=None):
    with kh.RawClient(node.kafka_bootstrap, timeout=60) as c:
        return parse_list_reassignments(c.call(list_reassignments_request, topics))


def test_reassignment_through_kafka_waits_for_the_isr_then_completes(whole, unique_name):
    cluster = whole
    name = unique_name("move")
    # the new replica goes to a node that is not the controller, paused
    # while the reassignment waits (a paused controller would hold up the
    # requests forwarded to it); x is the replica that leaves, y stays
    new = next(n for n in cluster.node_ids if n != cluster.wait_for_controller())
    x, y = [n for n in cluster.node_ids if n != new]
    admin = AdminClient({"bootstrap.servers": cluster.node(y).kafka_bootstrap})
    assert kh.admin_results(admin.create_topics(
        [NewTopic(name, 1, replica_assignment=[[x, y]])]), 60) == {name: None}
    leader, le, pe, replicas, isr = cluster.wait_topic_everywhere(name)[4][0]
    assert (leader, replicas) == (x, [x, y])
    ensure_isr(cluster, name, [x, y])
    pe = partition_rows(cluster, name, 1)[0][2]
    moving = [y, new, x]

    # move it from nodes x, y to nodes y, new: the new one is paused, so
    # it cannot catch up and the reassignment waits for it
    cluster.node(new).pause()
    try:
        assert kafka_reassign(cluster.node(y), {(name, 0): [y, new]}) == \
            (0, {(name, 0): (0, None)})
        pending = cluster.wait_topic_everywhere(
            name, node_ids=[x, y], check=lambda s: s[4][0][3] == moving)[4][0]
        assert pending[0] == x and new not in pending[4] and pending[2] > pe
        for n in (cluster.node(x), cluster.node(y)):
            error, listed = kafka_list_reassignments(n)
            assert error == 0 and listed[(name, 0)] == (moving, [new], [x])
            assert kafka_list_reassignments(n, {name: [0, 5]}) == \
                (0, {(name, 0): (moving, [new], [x])})
            assert n.sql("SELECT replicas, adding_replicas, removing_replicas FROM "
                         "streamlog.reassignments WHERE topic = %s", (name,)) == \
                [(moving, [new], [x])]
        # the same target again changes nothing; an unknown partition is named
        assert kafka_reassign(cluster.node(x), {(name, 0): [y, new], (name, 7): [1]})[1] == \
            {(name, 0): (0, None),
             (name, 7): (3, "This server does not host this topic-partition.")}
        assert partition_rows(cluster, name, x)[0][3] == moving
    finally:
        cluster.node(new).resume()

    # the new node back: once it is in the ISR the reassignment completes.
    # The leader's ISR manager asks for it when the node caught up through
    # the replication stream; where that does not run, the test asks as
    # the leader would
    cluster.wait_ready()

    def completed():
        leader, le_now, pe_now, replicas_now, _isr = partition_rows(cluster, name, 1)[0]
        if replicas_now == [y, new]:
            return True
        alter_isr(cluster.node(leader), name, 0, le_now, pe_now, [x, y, new])
        return None
    cluster.wait_for(completed, 60, f"the reassignment of {name}-0 to complete")
    done = cluster.wait_topic_everywhere(name, check=lambda s: s[4][0][3] == [y, new])[4][0]
    # x left the replicas and the ISR, and handed the leadership over
    assert done[0] == y and sorted(done[4]) == sorted([y, new]) and done[1] == le + 1
    for n in cluster:
        assert (name, 0) not in kafka_list_reassignments(n)[1]
    rows = cluster.node(y).sql("SELECT replicas, under_replicated FROM streamlog.partitions "
                               "WHERE topic = %s", (name,))
    assert rows == [([y, new], False)]

    # cancelling when nothing is under way
    assert kafka_reassign(cluster.node(y), {(name, 0): None})[1][(name, 0)][0] == \
        NO_REASSIGNMENT_IN_PROGRESS
    # a target naming a node twice, or one not registered
    assert kafka_reassign(cluster.node(2), {(name, 0): [2, 2]})[1][(name, 0)][0] == \
        INVALID_REPLICA_ASSIGNMENT
    assert kafka_reassign(cluster.node(2), {(name, 0): [2, 9]})[1][(name, 0)][0] == \
        INVALID_REPLICA_ASSIGNMENT
    assert kafka_reassign(cluster.node(2), {(name, 0): list(range(1, 10000))})[1][(name, 0)] \
        == (INVALID_REPLICA_ASSIGNMENT,
            f"the target of {name}-0 has 9999 replicas, more than the 8 a partition may have")


def test_reassignment_from_sql_pending_and_cancelled(whole, unique_name):
    cluster = whole
    name = unique_name("sqlmove")
    # two replicas, the node left out not the controller (it is paused
    # below, and a paused controller would hold up the requests forwarded
    # to it)
    controller = cluster.wait_for_controller()
    spare = next(i for i in cluster.node_ids if i != controller)
    others = [i for i in cluster.node_ids if i != spare]
    admin = AdminClient({"bootstrap.servers": cluster.node(others[0]).kafka_bootstrap})
    assert kh.admin_results(admin.create_topics(
        [NewTopic(name, 1, replica_assignment=[others])]), 60) == {name: None}
    leader, le, pe, replicas, isr = cluster.wait_topic_everywhere(name)[4][0]
    assert replicas == others

    # a third replica, on a node that is paused: pending until it is in
    # sync, shown on every node
    cluster.node(spare).pause()
    try:
        cluster.node(leader).sql("SELECT streamlog.reassign_partition(%s, 0, %s)",
                                 (name, replicas + [spare]))
        state = cluster.wait_topic_everywhere(
            name, node_ids=others, check=lambda s: spare in s[4][0][3])[4][0]
        assert state[3] == replicas + [spare] and spare not in state[4]
        for i in others:
            assert cluster.node(i).sql(
                "SELECT partition, adding_replicas, removing_replicas FROM "
                "streamlog.reassignments WHERE topic = %s", (name,)) == [(0, [spare], [])]
        # cancelled: back to the two replicas
        cluster.node(others[0]).sql("SELECT streamlog.reassign_partition(%s, 0, NULL)", (name,))
        back = cluster.wait_topic_everywhere(
            name, node_ids=others, check=lambda s: s[4][0][3] == replicas)[4][0]
        assert back[0] == leader and spare not in back[4]
    finally:
        cluster.node(spare).resume()
    cluster.wait_ready()
    assert cluster.node(spare).sql("SELECT count(*) FROM streamlog.reassignments "
                                   "WHERE topic = %s", (name,)) == [(0,)]

    node = cluster.node(spare)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="no reassignment"):
        node.sql("SELECT streamlog.reassign_partition(%s, 0, NULL)", (name,))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="twice"):
        node.sql("SELECT streamlog.reassign_partition(%s, 0, '{1,1}')", (name,))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not registered"):
        node.sql("SELECT streamlog.reassign_partition(%s, 0, '{1,42}')", (name,))
    with pytest.raises(psycopg.errors.UndefinedObject):
        node.sql("SELECT streamlog.reassign_partition(%s, 3, '{1}')", (name,))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="at least one"):
        node.sql("SELECT streamlog.reassign_partition(%s, 0, '{}')", (name,))

    # shrinking to one of its replicas needs nobody to catch up: at once
    keep = replicas[1]
    ensure_isr(cluster, name, replicas)
    cluster.node(1).sql("SELECT streamlog.reassign_partition(%s, 0, %s)", (name, [keep]))
    one = cluster.topic_state(name, 1)[4][0]
    assert one[3] == [keep] and one[4] == [keep] and one[0] == keep


# -- DescribeTopicPartitions (KIP-966) -------------------------------------

DESCRIBE_TOPIC_PARTITIONS = 75
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5


def describe_topic_partitions_request(correlation_id, topics, limit=2000, cursor=None):
    body = car.compact_array(topics, lambda t: car.compact_string(t) + kh.uvarint(0))
    body += kh.i32(limit)
    if cursor is None:
        body += kh.i8(-1)
    else:
        body += kh.i8(1) + car.compact_string(cursor[0]) + kh.i32(cursor[1]) + kh.uvarint(0)
    body += kh.uvarint(0)
    return kh.request_frame(DESCRIBE_TOPIC_PARTITIONS, 0, correlation_id, body,
                            header_version=2)


def parse_describe_topic_partitions(body):
    """([(error, name, [partition dicts])], next cursor or None)"""
    r = kh.Reader(body)
    car.skip_tags(r)
    r.i32()

    def ints(r):
        return car.read_compact_array(r, lambda r: r.i32())

    def partition(r):
        p = {"error": r.i16(), "partition": r.i32(), "leader": r.i32(),
             "leader_epoch": r.i32(), "replicas": ints(r), "isr": ints(r),
             "elr": ints(r), "last_known_elr": ints(r), "offline": ints(r)}
        car.skip_tags(r)
        return p

    def topic(r):
        error, name = r.i16(), car.read_compact_string(r)
        r.take(16)
        r.i8()
        parts = car.read_compact_array(r, partition)
        r.i32()
        car.skip_tags(r)
        return error, name, parts
    topics = car.read_compact_array(r, topic)
    cursor = None
    if r.i8() >= 0:
        cursor = (car.read_compact_string(r), r.i32())
        car.skip_tags(r)
    car.skip_tags(r)
    assert r.at_end()
    return topics, cursor


def kafka_describe_partitions(node, topics, limit=2000, cursor=None):
    with kh.RawClient(node.kafka_bootstrap, timeout=30) as c:
        return parse_describe_topic_partitions(
            c.call(describe_topic_partitions_request, topics, limit, cursor))


def test_describe_topic_partitions_pages_and_offline_replicas(whole, unique_name):
    cluster = whole
    a, b = unique_name("dtpa"), unique_name("dtpb")
    a, b = sorted([a, b])
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 3, '{}', 3)", (a,))
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 2, '{}', 2)", (b,))
    state_a = cluster.wait_topic_everywhere(a)[4]
    cluster.wait_topic_everywhere(b)

    topics, cursor = kafka_describe_partitions(cluster.node(2), [b, a, "no-such-topic"])
    assert cursor is None
    assert [(e, n) for e, n, _ in topics] == [(0, a), (0, b),
                                             (UNKNOWN_TOPIC_OR_PARTITION, "no-such-topic")]
    for p in topics[0][2]:
        leader, le, _pe, replicas, isr = state_a[p["partition"]]
        assert (p["error"], p["leader"], p["leader_epoch"], p["replicas"], p["isr"]) == \
            (0, leader, le, replicas, isr)
        assert p["elr"] == [] and p["last_known_elr"] == [] and p["offline"] == []
    assert [len(t[2]) for t in topics] == [3, 2, 0]

    # pages of two partitions, following the cursor
    seen = []
    cursor = None
    for _ in range(5):
        topics, cursor = kafka_describe_partitions(cluster.node(3), [a, b], limit=2,
                                                   cursor=cursor)
        seen += [(n, p["partition"]) for _e, n, parts in topics for p in parts]
        if cursor is None:
            break
    assert seen == [(a, 0), (a, 1), (a, 2), (b, 0), (b, 1)]
    # a cursor on a topic not asked for
    topics, _ = kafka_describe_partitions(cluster.node(3), [a], cursor=(b, 0))
    assert [e for e, _n, _p in topics] == [42]

    # a node down: its replicas are offline, the partitions under-replicated
    victim = 3
    cluster.kill9(victim)
    try:
        def fenced():
            topics, _ = kafka_describe_partitions(cluster.node(1), [a])
            parts = topics[0][2]
            if all(victim in p["offline"] and victim not in p["isr"] for p in parts):
                return parts
            return None
        parts = cluster.wait_for(fenced, 60, "node 3 offline in DescribeTopicPartitions")
        assert all(p["leader"] not in (victim, -1) for p in parts)
        assert cluster.node(1).sql(
            "SELECT bool_and(under_replicated) FROM streamlog.partitions WHERE topic = %s",
            (a,)) == [(True,)]
    finally:
        cluster.start([victim])


def test_describe_topic_partitions_on_a_node_of_its_own(server, unique_name):
    name = unique_name("dtpone")
    server.sql("SELECT streamlog.create_topic(%s, 2)", (name,))
    topics, cursor = kafka_describe_partitions(server, [name])
    assert cursor is None
    [(error, got, parts)] = topics
    assert (error, got) == (0, name)
    node = server.sql("SHOW streamlog.node_id")[0][0]
    assert [(p["partition"], p["leader"], p["leader_epoch"], p["replicas"], p["isr"])
            for p in parts] == [(0, int(node), 0, [int(node)], [int(node)]),
                                (1, int(node), 0, [int(node)], [int(node)])]
    # every topic when none is named: ours among them
    topics, _ = kafka_describe_partitions(server, [])
    assert name in [n for _e, n, _p in topics]


def test_reassignment_moves_the_log_and_completes_on_its_own(whole, unique_name):
    """With the replication stream: a partition moved to another node
    completes without any hand on the ISR (the new replica catches up,
    the leader's ISR manager takes it in, the controller completes the
    reassignment), and the new replica holds the old one's batches byte
    for byte."""
    from replstream import stored_batches, wait_replicas_identical

    cluster = whole
    name = unique_name("carry")
    x = next(n for n in cluster.node_ids if n != cluster.wait_for_controller())
    new = next(n for n in cluster.node_ids if n != x)
    admin = AdminClient({"bootstrap.servers": cluster.node(x).kafka_bootstrap})
    assert kh.admin_results(admin.create_topics(
        [NewTopic(name, 1, replica_assignment=[[x]])]), 60) == {name: None}
    cluster.wait_topic_everywhere(name)
    with cluster.node(x).connect() as conn:
        for i in range(20):
            conn.execute("SELECT streamlog.produce(%s, %s, %s)", (name, f"k{i}", f"v{i}"))
    before = stored_batches(cluster.node(x), name)
    assert len(before) == 20

    cluster.node(x).sql("SELECT streamlog.reassign_partition(%s, 0, %s)", (name, [new]))
    done = cluster.wait_topic_everywhere(
        name, deadline=120, check=lambda s: s[4][0][3] == [new])[4][0]
    assert done[0] == new and done[4] == [new]
    moved = wait_replicas_identical(cluster, name, 0, [new], min_batches=20)
    assert {base: moved[base] for base in before} == before
    # the new leader takes what comes next
    cluster.node(new).sql("SELECT streamlog.produce(%s, 'after', 'move')", (name,))
    rows = cluster.node(new).sql(
        "SELECT count(*) FROM streamlog.read(%s, 0)", (name,))
    assert rows == [(21,)]
