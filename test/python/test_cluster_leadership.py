"""Partition leadership in both doors on three nodes (README, "Topics on a
cluster"): a partition is served by its leader only.  Another node answers
Kafka's Produce, Fetch, ListOffsets and DeleteRecords with
NOT_LEADER_OR_FOLLOWER, and SQL calls with SQLSTATE 55000 naming the leader
and how to reach it; a partition whose only replica's node is down is
offline (leader -1, LEADER_NOT_AVAILABLE, "is offline" in SQL) and comes
back with the node, and a client naming an old leader epoch is fenced
(KIP-320).  The catalog sync never waits behind a transaction that
holds a topic: the change is applied once the transaction ends.

One cluster for the module; the test that stops a node comes last."""

import psycopg
import pytest
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

import kafka_helpers as kh
from cluster import kafka_metadata, shared_cluster

DEADLINE = 90
NOT_LEADER_OR_FOLLOWER = 6
LEADER_NOT_AVAILABLE = 5
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 3, name="leadership")


def spread_topic(cluster, name, partitions=3, via=1):
    """A topic made on node via, once every node has it: {partition: leader}"""
    cluster.node(via).sql("SELECT streamlog.create_topic(%s, %s)", (name, partitions))
    _id, _uuid, _n, _config, parts = cluster.wait_topic_everywhere(name, deadline=DEADLINE)
    return {p: v[0] for p, v in parts.items()}


def fetch_v9(cid, topic, partition, current_leader_epoch):
    """Fetch v9 (the first with the client's current leader epoch), one
    partition from offset 0."""
    body = kh.i32(-1) + kh.i32(0) + kh.i32(1) + kh.i32(1 << 20) + kh.i8(0)
    body += kh.i32(0) + kh.i32(-1)  # no fetch session
    body += kh.array([topic], lambda t: kh.string(t) + kh.array(
        [partition], lambda p: kh.i32(p) + kh.i32(current_leader_epoch) + kh.i64(0)
        + kh.i64(-1) + kh.i32(1 << 20)))
    body += kh.array([], None)  # forgotten topics
    return kh.request_frame(kh.FETCH, 9, cid, body)


def fetch_v9_error(body):
    r = kh.Reader(body)
    r.i32(), r.i16(), r.i32()
    [(_topic, [(_p, error, *_rest)])] = r.array(lambda r: (r.string(), r.array(lambda r: (
        r.i32(), r.i16(), r.i64(), r.i64(), r.i64(),
        r.array(lambda r: (r.i64(), r.i64())), r.bytes()))))
    return error


def list_offsets_v4(cid, topic, partition, current_leader_epoch):
    body = kh.i32(-1) + kh.i8(0) + kh.array([topic], lambda t: kh.string(t) + kh.array(
        [partition], lambda p: kh.i32(p) + kh.i32(current_leader_epoch) + kh.i64(-1)))
    return kh.request_frame(kh.LIST_OFFSETS, 4, cid, body)


def list_offsets_v4_result(body):
    """(error_code, offset, leader_epoch)"""
    r = kh.Reader(body)
    r.i32()
    [(_topic, [(_p, error, _ts, offset, epoch)])] = r.array(lambda r: (r.string(), r.array(
        lambda r: (r.i32(), r.i16(), r.i64(), r.i64(), r.i32()))))
    return error, offset, epoch


def one_record():
    return kh.record_batch([(b"k", b"v", (), kh.now_ms())])


def test_kafka_requests_on_a_partition_led_elsewhere(cluster, unique_name):
    name = unique_name("notleader")
    leaders = spread_topic(cluster, name)
    for p, leader in leaders.items():
        for n in cluster:
            with kh.RawClient(n.kafka_bootstrap) as c:
                produced = kh.parse_produce_v3(
                    c.call(kh.produce_request, name, [(p, one_record())]))[(name, p)]
                fetched = kh.parse_fetch_v4(c.call(kh.fetch_request, name, p, 0))[(name, p)]
                listed = kh.parse_list_offsets_v1(
                    c.call(kh.list_offsets_request, name, p, -1))[(name, p)]
            if n.node_id == leader:
                assert produced[0] == 0, (n.node_id, p)
                assert fetched[0] == 0
                assert listed[0] == 0
            else:
                assert produced[0] == NOT_LEADER_OR_FOLLOWER, (n.node_id, p, leader)
                assert fetched[0] == NOT_LEADER_OR_FOLLOWER
                assert listed[0] == NOT_LEADER_OR_FOLLOWER
    # what the refused produces did not write: one record per partition,
    # on its leader
    for p, leader in leaders.items():
        assert kh.high_watermark(cluster.node(leader), name, p) == 1


def test_metadata_names_each_partitions_leader_from_every_node(cluster, unique_name):
    name = unique_name("mdleaders")
    leaders = spread_topic(cluster, name, 6, via=2)
    assert sorted(set(leaders.values())) == [1, 2, 3]
    for n in cluster:
        md = kafka_metadata(n, [name])
        parts = md["topics"][name]["partitions"]
        assert {p: m["leader"] for p, m in parts.items()} == leaders
        for p, m in parts.items():
            assert m["error"] == 0
            assert m["replicas"] == [leaders[p]] and m["isr"] == [leaders[p]]
            assert m["offline"] == []
        assert sorted(md["brokers"]) == [1, 2, 3]


def test_replica_assignments_naming_other_nodes_are_taken(cluster, unique_name):
    # a node of its own takes only itself; on a cluster the client's
    # assignment goes to the controller, from any node
    name = unique_name("assigned")
    admin = AdminClient({"bootstrap.servers": cluster.node(1).kafka_bootstrap})
    assert kh.admin_results(admin.create_topics(
        [NewTopic(name, 3, replica_assignment=[[2], [3], [2]])]), 60) == {name: None}
    parts = cluster.wait_topic_everywhere(name, deadline=DEADLINE)[4]
    assert {p: v[0] for p, v in parts.items()} == {0: 2, 1: 3, 2: 2}
    assert kh.admin_results(admin.create_partitions(
        [NewPartitions(name, 4, replica_assignment=[[3]])]), 60) == {name: None}
    parts = cluster.wait_topic_everywhere(name, deadline=DEADLINE,
                                          check=lambda s: s[2] == 4)[4]
    assert parts[3][0] == 3 and parts[3][3] == [3]
    # an assignment naming a node the cluster does not have is refused
    bad = unique_name("badassign")
    result = kh.admin_results(admin.create_topics(
        [NewTopic(bad, 1, replica_assignment=[[7]])]), 60)
    assert result[bad] is not None
    assert cluster.topic_state(bad, 1) is None


def test_sql_errors_name_the_leader_and_its_addresses(cluster, unique_name):
    # (produce is not among them: it is forwarded to the leader, see
    # test_cluster_sql_forward.py; nor read() and history(): they read
    # through the leader, see test_cluster_sql_remote_read.py)
    name = unique_name("sqlleader")
    leaders = spread_topic(cluster, name)
    p, leader = next(iter(leaders.items()))
    other = cluster.node(next(i for i in cluster.node_ids if i != leader))
    lnode = cluster.node(leader)
    calls = [
        ("SELECT * FROM streamlog.latest(%s, 'k'::text, %s)", (name, p)),
        ("SELECT streamlog.delete_records(%s, %s, 0)", (name, p)),
    ]
    for query, args in calls:
        with other.connect() as conn:
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as err:
                conn.execute(query, args)
        diag = err.value.diag
        assert f"is led by node {leader}" in diag.message_primary, query
        assert f"partition {p} of topic \"{name}\"" in diag.message_primary
        # the hint says where to go: its Kafka address and SQL conninfo
        assert f":{lnode.kafka_port}" in diag.message_hint, diag.message_hint
        assert f"port={lnode.port}" in diag.message_hint, diag.message_hint
    # on the leader the same calls work
    lnode.sql("SELECT streamlog.produce(%s, 'k', 'v', partition => %s)", (name, p))
    assert lnode.sql("SELECT count(*) FROM streamlog.read(%s, %s)", (name, p)) == [(1,)]


def test_sql_produce_without_a_partition_chooses_among_all(cluster, unique_name):
    # a keyed record goes where the key hashes, as everywhere: to this
    # node's partition directly, to another node's through the forwarder
    name = unique_name("keyed")
    leaders = spread_topic(cluster, name)
    node = cluster.node(1)
    expected = {p: 0 for p in leaders}
    for i in range(40):
        key = f"key-{i}"
        (p,), = node.sql("SELECT streamlog.partition_for(%s, %s::text)", (name, key))
        assert node.sql("SELECT streamlog.produce(%s, %s, 'v')", (name, key)) == [(p,)]
        expected[p] += 1
    assert {leaders[p] for p, n in expected.items() if n} - {1}, "no key went elsewhere"
    cluster.wait_for(lambda: {p: kh.high_watermark(cluster.node(leaders[p]), name, p)
                              for p in leaders} == expected,
                     DEADLINE, "every record on its partition's leader")


def test_catalog_sync_waits_for_a_transaction_that_holds_the_topic(cluster, unique_name):
    name = unique_name("held")
    leaders = spread_topic(cluster, name)
    holder_id = leaders[0]
    holder = cluster.node(holder_id)
    asker = cluster.node(next(i for i in cluster.node_ids if i != holder_id))
    with holder.connect(autocommit=False) as held:
        # a transaction that read the topic holds it until it ends
        held.execute("SELECT count(*) FROM streamlog.read(%s, 0)", (name,))
        asker.sql("SELECT streamlog.drop_topic(%s)", (name,))
        # the node that asked has applied the drop; the holder has not,
        # and its Raft worker goes on (it is not stuck behind the lock)
        assert cluster.topic_state(name, asker.node_id) is None
        synced_before = cluster.raft_status(holder_id)["catalog_synced_index"]
        # asked of a node other than the holder: the holder's own call would
        # wait for its catalog, which waits for the transaction held here
        asker.sql("SELECT streamlog.create_topic(%s, 1)", (name + ".other",))
        assert holder.sql("SELECT count(*) FROM streamlog.topic WHERE name = %s",
                          (name,)) == [(1,)]
        assert cluster.raft_status(holder_id)["catalog_synced_index"] == synced_before
        held.rollback()
    cluster.wait_topic_gone_everywhere(name, deadline=DEADLINE)
    cluster.wait_topic_everywhere(name + ".other", deadline=DEADLINE)


def test_partitions_of_a_dead_node_are_offline_until_it_returns(cluster, unique_name):
    name = unique_name("offline")
    leaders = spread_topic(cluster, name)
    victim = cluster.controller()
    victim = next(i for i in cluster.node_ids if i != victim)
    p = next(p for p, leader in leaders.items() if leader == victim)
    survivor = cluster.node(next(i for i in cluster.node_ids if i != victim))
    cluster.node(victim).sql("SELECT streamlog.produce(%s, 'k', 'before', partition => %s)",
                             (name, p))

    cluster.kill9(victim)
    try:
        # The partition's leadership (the catalog) and the nodes' state (the
        # published view) are written one after the other by the Raft
        # worker: wait for both to show the victim gone
        def offline():
            parts = kafka_metadata(survivor, [name])["topics"][name]["partitions"]
            return parts[p] if parts[p]["leader"] == -1 and parts[p]["offline"] else None
        part = cluster.wait_for(offline, DEADLINE, f"partition {p} offline")
        assert part["error"] == LEADER_NOT_AVAILABLE
        assert part["offline"] == [victim]
        assert victim not in kafka_metadata(survivor)["brokers"]
        with kh.RawClient(survivor.kafka_bootstrap) as c:
            produced = kh.parse_produce_v3(
                c.call(kh.produce_request, name, [(p, one_record())]))[(name, p)]
        assert produced[0] == LEADER_NOT_AVAILABLE
        # SQL produce is taken and waits in the survivor's forward queue
        survivor.sql("SELECT streamlog.produce(%s, 'k', 'queued', partition => %s)", (name, p))
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                           match=f"partition {p} of topic \"{name}\" is offline"):
            survivor.sql("SELECT count(*) FROM streamlog.read(%s, %s)", (name, p))
        assert survivor.sql("SELECT offline FROM streamlog.partitions "
                            "WHERE topic = %s AND partition = %s", (name, p)) == [(True,)]
    finally:
        cluster.start([victim])
    cluster.wait_for(
        lambda: kafka_metadata(survivor, [name])["topics"][name]["partitions"][p]["leader"]
        == victim, DEADLINE, f"partition {p} led by node {victim} again")
    # the node that was away has every topic again, as every other node
    cluster.wait_topic_everywhere(name, deadline=DEADLINE)
    back = cluster.node(victim)
    cluster.wait_for(lambda: survivor.sql("SELECT count(*) FROM streamlog.forward_queue")
                     == [(0,)], DEADLINE, "the queued record delivered")
    back.sql("SELECT streamlog.produce(%s, 'k', 'after', partition => %s)", (name, p))
    assert [r[0] for r in back.sql(
        "SELECT convert_from(value, 'UTF8') FROM streamlog.read(%s, %s)", (name, p))] == \
        ["before", "queued", "after"]

    # its leader changed twice (away, back): a client that names the old
    # leader epoch is fenced, one ahead of the node is told it is unknown
    epoch = kafka_metadata(back, [name])["topics"][name]["partitions"][p]["leader_epoch"]
    assert epoch >= 2
    with kh.RawClient(back.kafka_bootstrap) as c:
        assert fetch_v9_error(c.call(fetch_v9, name, p, 0)) == FENCED_LEADER_EPOCH
        assert fetch_v9_error(c.call(fetch_v9, name, p, epoch + 1)) == UNKNOWN_LEADER_EPOCH
        assert fetch_v9_error(c.call(fetch_v9, name, p, epoch)) == 0
        assert fetch_v9_error(c.call(fetch_v9, name, p, -1)) == 0
        assert list_offsets_v4_result(c.call(list_offsets_v4, name, p, 0))[0] == \
            FENCED_LEADER_EPOCH
        assert list_offsets_v4_result(c.call(list_offsets_v4, name, p, epoch)) == (0, 3, epoch)
