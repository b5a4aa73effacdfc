"""Cluster administration from any node (README, "Cluster administration"):
requests forwarded to the controller over libpq, ElectLeaders,
DescribeQuorum, AddRaftVoter/RemoveRaftVoter and their SQL doors, producer
ids from controller blocks, and one coordinator per consumer group.

The standalone tests use the session's single server; the cluster tests
share one 3-node cluster per module (and a 4-node one for membership),
each test leaving it as it found it."""

import threading
import time

import psycopg
import pytest

import cluster_api_requests as car
import kafka_helpers as kh
import test_kafka_groups as kg
from cluster import Cluster
from test_consumer_offsets_topic import partition_for

DEADLINE = 90
NOT_COORDINATOR = 16


# -- standalone: one node is a cluster of one ----------------------------------------


def test_api_versions_lists_cluster_apis(server):
    with kh.RawClient(server.kafka_bootstrap) as c:
        error, apis = kh.parse_api_versions(c.call(kh.api_versions_request, 2), 2)
    assert error == 0
    assert apis[car.ELECT_LEADERS] == (0, 2)
    assert apis[car.DESCRIBE_QUORUM] == (0, 2)
    assert apis[car.ADD_RAFT_VOTER] == (0, 0)
    assert apis[car.REMOVE_RAFT_VOTER] == (0, 0)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_standalone_describe_quorum_shows_this_node(server, version):
    node_id = int(server.sql("SHOW streamlog.node_id")[0][0])
    with kh.RawClient(server.kafka_bootstrap) as c:
        q = car.parse_describe_quorum(c.call(car.describe_quorum_request, version), version)
    assert q["error"] == 0
    [p] = q["partitions"]
    assert p["error"] == 0
    assert p["leader"] == node_id
    assert list(p["voters"]) == [node_id]
    assert p["observers"] == {}


def test_standalone_describe_quorum_unknown_partition(server):
    with kh.RawClient(server.kafka_bootstrap) as c:
        q = car.parse_describe_quorum(c.call(car.describe_quorum_request, 1, "orders", 0), 1)
    assert q["partitions"][0]["error"] == car.UNKNOWN_TOPIC_OR_PARTITION


def test_standalone_voter_changes_refused(server):
    for fn in ("add_voter", "remove_voter"):
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                           match="no metadata quorum is configured"):
            server.sql(f"SELECT streamlog.{fn}(2)")
    with kh.RawClient(server.kafka_bootstrap) as c:
        add = car.parse_raft_voter_response(c.call(car.add_raft_voter_request, 2))
        remove = car.parse_raft_voter_response(c.call(car.remove_raft_voter_request, 2))
    for code, message in (add, remove):
        assert code == car.INVALID_REQUEST
        assert "no metadata quorum is configured" in message


def test_standalone_elect_leaders_not_needed(server, unique_name):
    topic = unique_name("elect")
    server.sql("SELECT streamlog.create_topic(%s, 3)", (topic,))
    rows = server.sql("SELECT partition, error_code FROM streamlog.elect_leaders(%s) "
                      "ORDER BY partition", (topic,))
    assert rows == [(0, car.ELECTION_NOT_NEEDED), (1, car.ELECTION_NOT_NEEDED),
                    (2, car.ELECTION_NOT_NEEDED)]
    for version in (0, 1, 2):
        with kh.RawClient(server.kafka_bootstrap) as c:
            error, results = car.parse_elect_leaders(
                c.call(car.elect_leaders_request, {topic: [0, 2], "no-such-topic": [0]},
                       version=version), version)
        assert error in (None, 0)
        assert results[(topic, 0)][0] == car.ELECTION_NOT_NEEDED
        assert results[(topic, 2)][0] == car.ELECTION_NOT_NEEDED
        assert results[("no-such-topic", 0)][0] == car.UNKNOWN_TOPIC_OR_PARTITION
    # every partition: those that need nothing are left out, as Kafka does
    with kh.RawClient(server.kafka_bootstrap) as c:
        error, results = car.parse_elect_leaders(c.call(car.elect_leaders_request, None), 1)
    assert error == 0 and not any(t == topic for t, _ in results)


def test_standalone_elect_leaders_unclean_not_needed(server, unique_name):
    # a node of its own leads every partition: an unclean election (type
    # 1) has nothing to do, as Kafka answers; a type Kafka lacks is refused
    topic = unique_name("unclean")
    server.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    with kh.RawClient(server.kafka_bootstrap) as c:
        _, results = car.parse_elect_leaders(
            c.call(car.elect_leaders_request, {topic: [0]}, election_type=1), 1)
        assert results[(topic, 0)][0] == car.ELECTION_NOT_NEEDED
        _, results = car.parse_elect_leaders(
            c.call(car.elect_leaders_request, {topic: [0]}, election_type=2), 1)
        assert results[(topic, 0)][0] == car.INVALID_REQUEST


def test_standalone_cluster_submit_refused(server):
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="not part of a cluster"):
        server.sql("SELECT * FROM streamlog._cluster_submit('\\x00'::bytea)")


def test_cluster_submit_needs_admin(server, unique_name):
    role = unique_name("plain_role")
    server.sql(f'CREATE ROLE "{role}" LOGIN')
    try:
        with psycopg.connect(host=server.host, port=server.port, user=role,
                             dbname="postgres", autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM streamlog._cluster_submit('\\x00'::bytea)")
    finally:
        server.sql(f'DROP ROLE "{role}"')


def test_standalone_producer_ids_unchanged(server):
    """Standalone nodes keep the local sequence: ids grow one by one."""
    ids = []
    with kh.RawClient(server.kafka_bootstrap) as c:
        for _ in range(3):
            error, pid, epoch = kh.parse_init_producer_id(c.call(kh.init_producer_id_request))
            assert error == 0 and epoch == 0
            ids.append(pid)
    assert ids == list(range(ids[0], ids[0] + 3))


def test_standalone_find_coordinator_is_this_node(server):
    node_id = int(server.sql("SHOW streamlog.node_id")[0][0])
    with kh.RawClient(server.kafka_bootstrap) as c:
        error, coordinator, _, port = car.parse_find_coordinator(
            c.call(car.find_coordinator_request, "any-group"))
    assert (error, coordinator, port) == (0, node_id, server.kafka_port)


# -- on a cluster of three ----------------------------------------------------------------


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    c = Cluster(3, tmp_path_factory.mktemp("api3"), name="api3")
    try:
        c.start()
        c.wait_ready(deadline=DEADLINE)
        yield c
    finally:
        c.cleanup()


def non_controller(c):
    controller = c.wait_for_controller(deadline=DEADLINE)
    return next(n for n in c.reachable() if n != controller)


def topic_row(node, topic):
    rows = node.sql("SELECT topic_id, topic_uuid::text, partition_count FROM streamlog.topic "
                    "WHERE name = %s", (topic,))
    return rows[0] if rows else None


def assignment(node, topic):
    return [(p, leader, tuple(replicas)) for p, leader, replicas in node.sql(
        "SELECT partition, leader, replicas FROM streamlog.partitions "
        "WHERE topic = %s ORDER BY partition", (topic,))]


def wait_same_everywhere(c, topic, partitions):
    def same():
        rows = [topic_row(c.node(i), topic) for i in c.reachable()]
        if any(r is None or r[2] != partitions for r in rows) or len(set(rows)) != 1:
            return None
        parts = {tuple(assignment(c.node(i), topic)) for i in c.reachable()}
        return rows[0] if len(parts) == 1 else None
    return c.wait_for(same, DEADLINE, f"topic {topic} alike on every node")


def test_create_topic_through_non_controller_sql(trio, unique_name):
    topic = unique_name("fwd_sql")
    via = non_controller(trio)
    trio.node(via).sql("SELECT streamlog.create_topic(%s, 6)", (topic,))
    # answered once committed and applied on the node asked
    assert topic_row(trio.node(via), topic) is not None
    wait_same_everywhere(trio, topic, 6)
    leaders = {r[1] for r in assignment(trio.node(via), topic)}
    assert leaders <= set(trio.node_ids)


def test_create_topic_through_non_controller_kafka(trio, unique_name):
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = unique_name("fwd_kafka")
    via = non_controller(trio)
    admin = AdminClient({"bootstrap.servers": trio.node(via).kafka_bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)],
                                  operation_timeout=30)
    futures[topic].result(timeout=60)
    wait_same_everywhere(trio, topic, 4)


def test_cluster_submit_refuses_hostile_bytes(trio):
    """Bytes that are not a controller request are refused with an error,
    on the controller and elsewhere, and nothing is queued."""
    for node_id in trio.node_ids:
        for junk in ("\\x", "\\xdeadbeef", "\\x" + "ff" * 300):
            with pytest.raises(psycopg.errors.InvalidBinaryRepresentation,
                               match="malformed controller request"):
                trio.node(node_id).sql("SELECT * FROM streamlog._cluster_submit(%s::bytea)",
                                       (junk,))
        with pytest.raises(psycopg.errors.InvalidParameterValue,
                           match="unknown membership action"):
            trio.node(node_id).sql("SELECT * FROM streamlog._cluster_membership('grow', 2)")
    # the cluster still takes requests
    trio.wait_for_controller(deadline=DEADLINE)


def test_cluster_submit_elsewhere_answers_not_controller(trio):
    controller = trio.wait_for_controller(deadline=DEADLINE)
    other = next(n for n in trio.node_ids if n != controller)
    [(code, message, index)] = trio.node(other).sql(
        "SELECT * FROM streamlog._cluster_membership('transfer_leadership', 0)")
    assert code == 41 and index is None
    assert f"the controller is node {controller}" in message


def test_topic_change_in_a_transaction_that_holds_the_topic(trio, unique_name):
    """A transaction that produced to a topic cannot have the cluster change
    it (this node could apply the change only once the transaction ends):
    refused at once, nothing committed; alone, the same change works."""
    topic = unique_name("held")
    node = trio.node(1)
    node.sql("SELECT streamlog.create_topic(%s, 6)", (topic,))
    wait_same_everywhere(trio, topic, 6)
    local = [p for p, leader, _ in assignment(node, topic) if leader == 1]
    assert local, "the placement gave node 1 no partition of six"
    with node.connect(autocommit=False) as conn:
        conn.execute("SELECT streamlog.produce(%s, 'k', 'v', partition => %s)", (topic, local[0]))
        with pytest.raises(psycopg.errors.InvalidParameterValue) as e:
            conn.execute("SELECT streamlog.add_partitions(%s, 2)", (topic,))
        # refused before the request reached the controller: a refusal
        # after it would be the wait for this node's catalog timing out
        assert "holds topic" in e.value.diag.message_detail
        conn.rollback()
    assert {topic_row(trio.node(n), topic)[2] for n in trio.node_ids} == {6}
    node.sql("SELECT streamlog.add_partitions(%s, 2)", (topic,))
    wait_same_everywhere(trio, topic, 8)


def test_producer_ids_unique_across_nodes(trio):
    seen = {}
    for node_id in trio.node_ids:
        with kh.RawClient(trio.node(node_id).kafka_bootstrap) as c:
            for _ in range(5):
                error, pid, _ = kh.parse_init_producer_id(c.call(kh.init_producer_id_request))
                assert error == 0, f"InitProducerId on node {node_id}: error {error}"
                assert pid not in seen, f"producer id {pid} from nodes {seen[pid]} and {node_id}"
                seen[pid] = node_id
    # a restarted node forgets its block and takes a new one, never an id
    # it gave before
    restarted = trio.node_ids[-1]
    trio.restart(restarted)
    trio.wait_ready(deadline=DEADLINE)
    with kh.RawClient(trio.node(restarted).kafka_bootstrap) as c:
        for _ in range(5):
            error, pid, _ = trio.wait_for(
                lambda: (lambda r: r if r[0] == 0 else None)(
                    kh.parse_init_producer_id(c.call(kh.init_producer_id_request))),
                DEADLINE, "a producer id after the restart")
            assert pid not in seen, f"producer id {pid} again after node {restarted} restarted"
            seen[pid] = restarted


def test_describe_quorum_from_every_node(trio):
    controller = trio.wait_for_controller(deadline=DEADLINE)
    for node_id in trio.node_ids:
        with kh.RawClient(trio.node(node_id).kafka_bootstrap) as c:
            q = car.parse_describe_quorum(c.call(car.describe_quorum_request, 2), 2)
        [p] = q["partitions"]
        assert p["error"] == 0
        assert p["leader"] == controller
        assert sorted(p["voters"]) == [1, 2, 3]
        assert p["high_watermark"] > 0
        assert sorted(q["nodes"]) == [1, 2, 3]
        # the leader knows every voter's progress, and the others ask it
        assert all(leo >= 0 for leo in p["voters"].values()), (node_id, p)
        assert p["voters"][controller] >= p["high_watermark"]


def test_elect_leaders_on_cluster(trio, unique_name):
    topic = unique_name("elect3")
    via = non_controller(trio)
    trio.node(via).sql("SELECT streamlog.create_topic(%s, 6)", (topic,))
    wait_same_everywhere(trio, topic, 6)
    rows = trio.node(via).sql("SELECT partition, error_code FROM streamlog.elect_leaders(%s)",
                              (topic,))
    assert sorted(rows) == [(p, car.ELECTION_NOT_NEEDED) for p in range(6)]
    with kh.RawClient(trio.node(via).kafka_bootstrap) as c:
        error, results = car.parse_elect_leaders(
            c.call(car.elect_leaders_request, {topic: list(range(6))}), 1)
    assert error == 0
    assert {v[0] for v in results.values()} == {car.ELECTION_NOT_NEEDED}


def test_elect_leaders_preferred_not_available(make_cluster):
    """A preferred replica that left the ISR (its node stopped: controlled
    shutdown moved the leadership to the other replica) cannot be elected:
    PREFERRED_LEADER_NOT_AVAILABLE for its partition, ELECTION_NOT_NEEDED
    for the partition its node does not prefer, from both doors."""
    from confluent_kafka.admin import AdminClient, NewTopic

    c = make_cluster(3)
    admin = AdminClient({"bootstrap.servers": c.node(1).kafka_bootstrap})
    futures = admin.create_topics([NewTopic("preferred", 2, replica_assignment=[[2, 1], [1, 2]])],
                                  operation_timeout=30)
    futures["preferred"].result(timeout=60)
    c.wait_for(lambda: [r[1] for r in assignment(c.node(3), "preferred")] == [2, 1],
               DEADLINE, "partition 0 led by node 2, partition 1 by node 1")
    c.stop(2, "fast")
    c.wait_for(lambda: [r[1] for r in assignment(c.node(3), "preferred")] == [1, 1],
               DEADLINE, "node 1 leading both partitions")
    rows = c.node(3).sql("SELECT partition, error_code, message FROM streamlog.elect_leaders("
                         "'preferred') ORDER BY partition")
    assert [r[:2] for r in rows] == [(0, car.PREFERRED_LEADER_NOT_AVAILABLE),
                                     (1, car.ELECTION_NOT_NEEDED)]
    assert "preferred-0" in rows[0][2]
    with kh.RawClient(c.node(1).kafka_bootstrap) as k:
        error, results = car.parse_elect_leaders(
            k.call(car.elect_leaders_request, {"preferred": [0, 1]}, version=2), 2)
    assert error == 0
    assert results[("preferred", 0)][0] == car.PREFERRED_LEADER_NOT_AVAILABLE
    assert results[("preferred", 1)][0] == car.ELECTION_NOT_NEEDED


def test_find_coordinator_same_from_every_node(trio):
    for group in ("g-alpha", "g-beta", "g-gamma", "g-delta"):
        answers = set()
        for node_id in trio.node_ids:
            def found(node_id=node_id):
                with kh.RawClient(trio.node(node_id).kafka_bootstrap) as c:
                    error, coordinator, host, port = car.parse_find_coordinator(
                        c.call(car.find_coordinator_request, group))
                return (coordinator, port) if error == 0 else None
            answers.add(trio.wait_for(found, DEADLINE, f"a coordinator of {group}"))
        assert len(answers) == 1, f"{group}: {answers}"
        coordinator, port = answers.pop()
        assert trio.node(coordinator).kafka_port == port


def test_sql_seek_on_another_node_names_the_coordinator(trio, unique_name):
    """seek() (like reset_offsets() and delete_group()) runs on the group's
    coordinator; consume() runs anywhere (test_cluster_sql_consume.py)."""
    topic = unique_name("grp_sql")
    trio.node(1).sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    wait_same_everywhere(trio, topic, 1)
    group = unique_name("sqlgroup")
    with kh.RawClient(trio.node(1).kafka_bootstrap) as c:
        _, coordinator, _, _ = trio.wait_for(
            lambda: (lambda r: r if r[0] == 0 else None)(car.parse_find_coordinator(
                c.call(car.find_coordinator_request, group))), DEADLINE, "a coordinator")
    other = next(n for n in trio.node_ids if n != coordinator)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                       match=f"coordinated by node {coordinator}") as e:
        trio.node(other).sql("SELECT streamlog.seek(%s, %s, 0, 0)", (group, topic))
    assert f"port={trio.node(coordinator).port}" in e.value.diag.message_hint


def test_group_members_from_different_nodes_form_one_group(trio, unique_name):
    from confluent_kafka import Consumer

    topic = unique_name("grp")
    trio.node(1).sql("SELECT streamlog.create_topic(%s, 6)", (topic,))
    wait_same_everywhere(trio, topic, 6)
    group = unique_name("cgroup")
    consumers = [Consumer({"bootstrap.servers": trio.node(i).kafka_bootstrap,
                           "group.id": group, "session.timeout.ms": 10000,
                           "auto.offset.reset": "earliest",
                           "topic.metadata.refresh.interval.ms": 1000})
                 for i in trio.node_ids]
    try:
        for con in consumers:
            con.subscribe([topic])

        def balanced():
            for con in consumers:
                con.poll(0.2)
            parts = [sorted(tp.partition for tp in con.assignment()) for con in consumers]
            flat = sorted(p for ps in parts for p in ps)
            return parts if flat == list(range(6)) and all(len(ps) == 2 for ps in parts) else None
        trio.wait_for(balanced, DEADLINE * 2, "one group of three members over six partitions",
                      interval=0)
    finally:
        for con in consumers:
            con.close()


def test_find_coordinator_creates_the_offsets_topic(make_cluster, unique_name):
    """As in Kafka, the first FindCoordinator of a group on a cluster
    creates __consumer_offsets and names the leader of the group's
    partition, from every node: the coordinator no longer moves from the
    node at the group's hash over the live nodes once the group's first
    generation is stored (its members, mid-rebalance, saw NOT_COORDINATOR).
    The cleaner, which also opens the topic, waits an hour here."""
    c = make_cluster(3, conf={"streamlog.retention_check_interval": 3_600_000})
    offsets_partitions = "SELECT partition, leader FROM streamlog.partitions " \
                         "WHERE topic = '__consumer_offsets'"
    assert all(c.node(n).sql(offsets_partitions) == [] for n in c.node_ids)
    group = unique_name("first")

    def find_coordinator(via):
        with kh.RawClient(c.node(via).kafka_bootstrap, timeout=DEADLINE) as k:
            error, node_id, _, _ = car.parse_find_coordinator(
                k.call(car.find_coordinator_request, group))
        return node_id if error == 0 else None
    coordinator = c.wait_for(lambda: find_coordinator(2), DEADLINE, "a coordinator")
    leaders = dict(c.node(2).sql(offsets_partitions))
    assert len(leaders) == 50, "FindCoordinator did not create __consumer_offsets"
    assert coordinator == leaders[partition_for(group)], (coordinator, leaders)
    for n in c.node_ids:
        assert c.wait_for(lambda: find_coordinator(n), DEADLINE, "a coordinator") == \
            coordinator


def test_parked_join_is_answered_when_its_group_moves(make_cluster, unique_name):
    """A JoinGroup parked on its group's coordinator, waiting for the other
    member to join again, is answered NOT_COORDINATOR as soon as the group
    moves to another node, as Kafka answers the waiting members of a group
    it unloads; it does not wait out the rebalance timeout (10 minutes
    here) while the others form the group on the new coordinator without
    it.  Without __consumer_offsets (streamlog.offsets_topic off) the
    coordinator is the group's hash over the live nodes, so stopping a node
    moves the group chosen here."""
    c = make_cluster(3, conf={"streamlog.offsets_topic": False,
                              "streamlog.group_initial_rebalance_delay": 0})
    controller = c.wait_for_controller(deadline=DEADLINE)
    stopped = max(n for n in c.node_ids if n != controller)
    everyone = sorted(c.node_ids)
    rest = [n for n in everyone if n != stopped]

    def coordinator(group, live):
        return live[partition_for(group, len(live))]
    group = next(g for g in (unique_name("moving") for _ in range(1000))
                 if coordinator(g, everyone) != stopped and
                 coordinator(g, rest) != coordinator(g, everyone))
    old, new = coordinator(group, everyone), coordinator(group, rest)

    def find_coordinator(via):
        with kh.RawClient(c.node(via).kafka_bootstrap) as k:
            error, node_id, _, _ = car.parse_find_coordinator(
                k.call(car.find_coordinator_request, group))
        return node_id if error == 0 else None
    assert c.wait_for(lambda: find_coordinator(old), DEADLINE, "a coordinator") == old

    def parked():
        return sum(r[0] for r in c.node(old).sql(
            "SELECT parked_requests FROM streamlog.broker_stats"))
    minutes = {"session_ms": 600_000, "rebalance_ms": 600_000}
    topic = "moving-topic"
    a, a_id = kg.raw_join(c.node(old).kafka_bootstrap, group, [topic], **minutes)
    with a:
        ja = kg.parse_join_group_v5(a.call(kg.join_group_v5, group, a_id, [topic], **minutes))
        assert ja["error"] == kh.NONE, ja
        sa = kg.parse_sync_group_v3(a.call(kg.sync_group_v3, group, ja["generation"], a_id,
                                           [(a_id, kg.consumer_assignment(topic, [0]))]))
        assert sa["error"] == kh.NONE, sa
        b, b_id = kg.raw_join(c.node(old).kafka_bootstrap, group, [topic], **minutes)
        # B's join waits for A, who never joins again
        cid = b.next_correlation_id()
        b.send(kg.join_group_v5(cid, group, b_id, [topic], **minutes))
        c.wait_for(lambda: parked() == 1, DEADLINE, "B's JoinGroup to be parked")

        c.stop(stopped, "fast")
        with b:
            b.sock.settimeout(DEADLINE)
            got, body = b.recv_frame()
        jb = kg.parse_join_group_v5(body)
        assert got == cid and jb["error"] == NOT_COORDINATOR, jb
    # B finds the new coordinator and forms the group there
    assert c.wait_for(lambda: find_coordinator(rest[0]) if find_coordinator(rest[0]) == new
                      else None, DEADLINE, f"node {new} to coordinate the group") == new
    b, b_id = kg.raw_join(c.node(new).kafka_bootstrap, group, [topic])
    with b:
        jb = kg.parse_join_group_v5(b.call(kg.join_group_v5, group, b_id, [topic]))
        assert jb["error"] == kh.NONE and jb["leader"] == b_id, jb


def test_controller_killed_while_forwarding(trio, unique_name):
    """Creations forwarded from a non-controller while the controller is
    killed: each succeeds (then the topic is whole on every node) or fails
    with an error; never a topic half made."""
    controller = trio.wait_for_controller(deadline=DEADLINE)
    via = next(n for n in trio.node_ids if n != controller)
    names = [unique_name(f"kill{i}") for i in range(12)]
    outcome = {}

    def create_all():
        for name in names:
            try:
                trio.node(via).sql("SELECT streamlog.create_topic(%s, 3)", (name,))
                outcome[name] = "ok"
            except psycopg.Error as e:
                outcome[name] = e
    t = threading.Thread(target=create_all)
    t.start()
    trio.wait_for(lambda: len(outcome) >= 2, DEADLINE, "the first creations")
    trio.kill9(controller)
    t.join(timeout=300)
    assert not t.is_alive()
    trio.wait_for_controller(exclude=(controller,), node_ids=[n for n in trio.node_ids
                                                               if n != controller],
                             deadline=DEADLINE)
    assert any(v == "ok" for v in outcome.values())
    survivors = [n for n in trio.node_ids if n != controller]
    for name, result in outcome.items():
        if result == "ok":
            for n in survivors:
                trio.wait_for(lambda n=n: (topic_row(trio.node(n), name) or (0, 0, 0))[2] == 3,
                              DEADLINE, f"{name} on node {n}")
        else:
            # failed: absent, or (committed before the answer was lost) whole
            rows = {topic_row(trio.node(n), name) for n in survivors}
            assert all(r is None or r[2] == 3 for r in rows), (name, result, rows)
    trio.start(controller)
    trio.wait_ready(deadline=DEADLINE)


# -- membership: one change at a time ------------------------------------------------------


@pytest.fixture(scope="module")
def quad(tmp_path_factory):
    """Four nodes, the first three voters: node 4 follows as an observer."""
    c = Cluster(4, tmp_path_factory.mktemp("api4"), voters=3, name="api4")
    try:
        c.start()
        c.wait_ready(deadline=DEADLINE)
        yield c
    finally:
        c.cleanup()


def members(node):
    return {r[0]: r[1] for r in node.sql("SELECT node_id, role FROM streamlog.raft_members")}


def wait_role(c, node_id, role, via):
    c.wait_for(lambda: members(c.node(via)).get(node_id) == role, DEADLINE,
               f"node {node_id} {role} as node {via} sees it")


def test_add_and_remove_voters_one_at_a_time(quad):
    controller = quad.wait_for_controller(deadline=DEADLINE)
    wait_role(quad, 4, "observer", controller)

    # SQL, from a node that is not the controller
    via = next(n for n in (1, 2, 3) if n != controller)
    quad.node(via).sql("SELECT streamlog.add_voter(4)")
    wait_role(quad, 4, "voter", controller)
    with pytest.raises(psycopg.errors.DuplicateObject, match="already a voter"):
        quad.node(via).sql("SELECT streamlog.add_voter(4)")

    # Kafka RemoveRaftVoter, from the new voter
    victim = next(n for n in (1, 2, 3) if n not in (controller, via))
    with kh.RawClient(quad.node(4).kafka_bootstrap, timeout=60) as c:
        code, message = car.parse_raft_voter_response(
            c.call(car.remove_raft_voter_request, victim, quad.cluster_id))
        assert code == 0, message
        quad.wait_for(lambda: victim not in car.parse_describe_quorum(
            c.call(car.describe_quorum_request, 1), 1)["partitions"][0]["voters"],
            DEADLINE, f"node {victim} gone from the voters")
        code, _ = car.parse_raft_voter_response(
            c.call(car.remove_raft_voter_request, victim, quad.cluster_id))
        assert code == car.VOTER_NOT_FOUND
        # a request for another cluster is refused
        code, message = car.parse_raft_voter_response(
            c.call(car.add_raft_voter_request, victim, "not-this-cluster"))
        assert code == 104 and "not-this-cluster" in message

    # metadata still commits with the new voter set
    topic = "after_membership_%d" % int(time.time())
    quad.node(4).sql("SELECT streamlog.create_topic(%s, 2)", (topic,))

    # and back: the removed node returns as a voter through Kafka AddRaftVoter
    quad.wait_for(lambda: members(quad.node(controller)).get(victim) in ("observer", None),
                  DEADLINE, f"node {victim} an observer or gone")
    quad.wait_for(lambda: members(quad.node(controller)).get(victim) == "observer",
                  DEADLINE, f"node {victim} following again as an observer")
    with kh.RawClient(quad.node(via).kafka_bootstrap, timeout=60) as c:
        code, message = car.parse_raft_voter_response(
            c.call(car.add_raft_voter_request, victim, quad.cluster_id))
    assert code == 0, message
    wait_role(quad, victim, "voter", controller)
