"""The controller's side of replicated partitions on three nodes: topics
with a replication factor from both doors (replicas on three nodes, an
ISR of three), the cluster default, a factor larger than the cluster
refused; AlterPartition (KIP-497) fenced by stale epochs; a leader killed
with kill -9 replaced by an ISR member with the next leader epoch.

The tests share one cluster with a short session timeout and change only
their own topics; each leaves every node running."""

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
                              conf={"streamlog.broker_session_timeout_ms": SESSION_TIMEOUT_MS,
                                    # the tests set the ISR by hand (AlterPartition):
                                    # no follower catches up and rejoins on its own
                                    "streamlog.replica_apply": "off"})


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
    # an older leader epoch is fenced
    if le > 0:
        code, _ = alter_isr(cluster.node(leader), name, 0, le - 1, pe + 1, replicas)
        assert code == FENCED_LEADER_EPOCH
    # back to three with the new partition epoch
    assert alter_isr(cluster.node(leader), name, 0, le, pe + 1, replicas) == (0, None)
    assert sorted(partition_rows(cluster, name, leader)[0][4]) == sorted(replicas)
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
    assert alter_isr(cluster.node(new_leader), name, 0, new_le, new_pe,
                     new_isr + [leader]) == (0, None)


def test_unclean_leader_election_on_and_off(whole, unique_name):
    """Both topics' ISR shrinks to the leader alone (as when its followers
    lag), then the leader dies: the clean topic stays offline until it
    returns, the unclean one is led by a live replica outside the ISR."""
    cluster = whole
    clean, unclean = unique_name("clean"), unique_name("unclean")
    # one partition each, both led by node 1 (manual assignment, Kafka's)
    admin = AdminClient({"bootstrap.servers": cluster.node(2).kafka_bootstrap})
    topics = [NewTopic(clean, 1, replica_assignment=[[1, 2, 3]]),
              NewTopic(unclean, 1, replica_assignment=[[1, 2, 3]],
                       config={"unclean.leader.election.enable": "true"})]
    assert kh.admin_results(admin.create_topics(topics), 60) == {clean: None, unclean: None}
    for name in (clean, unclean):
        leader, le, pe, replicas, _ = cluster.wait_topic_everywhere(name)[4][0]
        assert leader == 1
        assert alter_isr(cluster.node(1), name, 0, le, pe, [1]) == (0, None)
    survivors = [2, 3]
    cluster.wait_topic_everywhere(unclean, node_ids=survivors,
                                  check=lambda s: s[4][0][4] == [1])

    cluster.kill9(1)
    moved = cluster.wait_topic_everywhere(
        unclean, node_ids=survivors, check=lambda s: s[4][0][0] in survivors)[4][0]
    assert moved[4] == [moved[0]] and moved[1] == 1    # alone in the ISR, next epoch
    offline = cluster.wait_topic_everywhere(
        clean, node_ids=survivors, check=lambda s: s[4][0][0] == -1)[4][0]
    assert offline[4] == [1]                           # it keeps its last member
    rows = cluster.node(2).sql(
        "SELECT topic, leader, offline, under_replicated FROM streamlog.partitions "
        "WHERE topic IN (%s, %s)", (clean, unclean))
    assert {r[0]: r[1:] for r in rows} == {clean: (-1, True, True),
                                           unclean: (moved[0], False, True)}
    # (SQL produce is taken and queued for the partition's return, see
    # test_cluster_sql_forward.py; reading it is refused)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="offline"):
        cluster.node(2).sql("SELECT count(*) FROM streamlog.read(%s, 0)", (clean,))

    # node 1 returns: the clean topic comes back with it; the unclean one
    # stays with its new leader
    cluster.start([1])
    cluster.wait_ready()
    back = cluster.wait_topic_everywhere(clean, check=lambda s: s[4][0][0] == 1)[4][0]
    assert back[1] == 2
    assert cluster.wait_topic_everywhere(unclean)[4][0][0] == moved[0]


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
    admin = AdminClient({"bootstrap.servers": cluster.node(3).kafka_bootstrap})
    assert kh.admin_results(admin.create_topics(
        [NewTopic(name, 1, replica_assignment=[[1, 2]])]), 60) == {name: None}
    leader, le, pe, replicas, isr = cluster.wait_topic_everywhere(name)[4][0]
    assert (leader, replicas, sorted(isr)) == (1, [1, 2], [1, 2])

    # move it from nodes 1, 2 to nodes 2, 3, asked of node 3
    assert kafka_reassign(cluster.node(3), {(name, 0): [2, 3]}) == \
        (0, {(name, 0): (0, None)})
    pending = cluster.wait_topic_everywhere(name, check=lambda s: s[4][0][3] == [2, 3, 1])[4][0]
    assert pending[0] == 1 and sorted(pending[4]) == [1, 2] and pending[2] == pe + 1
    for n in cluster:
        error, listed = kafka_list_reassignments(n)
        assert error == 0 and listed[(name, 0)] == ([2, 3, 1], [3], [1])
        assert kafka_list_reassignments(n, {name: [0, 5]}) == (0, {(name, 0): ([2, 3, 1], [3], [1])})
        assert n.sql("SELECT replicas, adding_replicas, removing_replicas FROM "
                     "streamlog.reassignments WHERE topic = %s", (name,)) == \
            [([2, 3, 1], [3], [1])]
    # the same target again changes nothing; an unknown partition is named
    assert kafka_reassign(cluster.node(1), {(name, 0): [2, 3], (name, 7): [1]})[1] == \
        {(name, 0): (0, None),
         (name, 7): (3, "This server does not host this topic-partition.")}
    assert cluster.topic_state(name, 1)[4][0][2] == pe + 1

    # node 3 is not in the ISR: the reassignment waits for it (it has no
    # copy of the log until the replication stream brings it one).  The
    # leader's ISR manager then asks for it; here by hand, as node 1:
    assert alter_isr(cluster.node(1), name, 0, le, pe + 1, [1, 2, 3]) == (0, None)
    done = cluster.wait_topic_everywhere(name, check=lambda s: s[4][0][3] == [2, 3])[4][0]
    # node 1 left the replicas and the ISR, and handed the leadership over
    assert done[0] == 2 and sorted(done[4]) == [2, 3] and done[1] == le + 1
    for n in cluster:
        assert kafka_list_reassignments(n) == (0, {}) or \
            (name, 0) not in kafka_list_reassignments(n)[1]
    rows = cluster.node(2).sql("SELECT replicas, under_replicated FROM streamlog.partitions "
                               "WHERE topic = %s", (name,))
    assert rows == [([2, 3], False)]

    # cancelling when nothing is under way
    assert kafka_reassign(cluster.node(2), {(name, 0): None})[1][(name, 0)][0] == \
        NO_REASSIGNMENT_IN_PROGRESS
    # a target naming a node twice, or one not registered
    assert kafka_reassign(cluster.node(2), {(name, 0): [2, 2]})[1][(name, 0)][0] == \
        INVALID_REPLICA_ASSIGNMENT
    assert kafka_reassign(cluster.node(2), {(name, 0): [2, 9]})[1][(name, 0)][0] == \
        INVALID_REPLICA_ASSIGNMENT


def test_reassignment_from_sql_pending_and_cancelled(whole, unique_name):
    cluster = whole
    name = unique_name("sqlmove")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 1, '{}', 2)", (name,))
    leader, le, pe, replicas, isr = cluster.wait_topic_everywhere(name)[4][0]
    spare = next(i for i in cluster.node_ids if i not in replicas)

    # a third replica: pending until it is in sync, shown on every node
    cluster.node(spare).sql("SELECT streamlog.reassign_partition(%s, 0, %s)",
                            (name, replicas + [spare]))
    state = cluster.wait_topic_everywhere(name, check=lambda s: spare in s[4][0][3])[4][0]
    assert state[3] == replicas + [spare] and sorted(state[4]) == sorted(isr)
    for n in cluster:
        assert n.sql("SELECT partition, adding_replicas, removing_replicas FROM "
                     "streamlog.reassignments WHERE topic = %s", (name,)) == [(0, [spare], [])]
    # cancelled: back to the two replicas
    cluster.node(leader).sql("SELECT streamlog.reassign_partition(%s, 0, NULL)", (name,))
    back = cluster.wait_topic_everywhere(name, check=lambda s: s[4][0][3] == replicas)[4][0]
    assert back[0] == leader and sorted(back[4]) == sorted(isr)
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
