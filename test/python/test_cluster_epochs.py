"""Leader epochs on a cluster (KIP-101, KIP-320): the batches a leader
appends carry its epoch, and after its partition's leader changed
OffsetForLeaderEpoch tells where each epoch ended; only the leader
answers, and a client naming an old or a future leader epoch is fenced
(FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH).  The epoch changes for real:
the partition's node is killed (the partition goes offline, a new epoch)
and comes back (another one)."""

import pytest

import kafka_helpers as kh
import offset_for_leader_epoch as ofle
from cluster import kafka_metadata, shared_cluster

DEADLINE = 90
NOT_LEADER_OR_FOLLOWER = 6
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75


def fetch_request(cid, version, topic, partition, replica_id=-1, rack=""):
    """Fetch v10 or v11 (the first with client metadata: rack_id), one
    partition from offset 0, without a session"""
    body = kh.i32(replica_id) + kh.i32(0) + kh.i32(1) + kh.i32(1 << 20) + kh.i8(0)
    body += kh.i32(0) + kh.i32(-1)
    body += kh.array([topic], lambda t: kh.string(t) + kh.array(
        [partition], lambda p: kh.i32(p) + kh.i32(-1) + kh.i64(0) + kh.i64(-1)
        + kh.i32(1 << 20)))
    body += kh.array([], None)
    if version >= 11:
        body += kh.string(rack)
    return kh.request_frame(kh.FETCH, version, cid, body)


def fetch_result(body, version):
    """(error_code, high_watermark, preferred_read_replica, records)"""
    r = kh.Reader(body)
    r.i32(), r.i16(), r.i32()
    [(_t, [part])] = r.array(lambda r: (r.string(), r.array(lambda r: (
        r.i32(), r.i16(), r.i64(), r.i64(), r.i64(),
        r.array(lambda r: (r.i64(), r.i64())),
        r.i32() if version >= 11 else -1, r.bytes()))))
    _p, err, hw, _lso, _start, _aborted, preferred, records = part
    return err, hw, preferred, records or b""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 3, name="epochs")


def test_epochs_survive_a_leader_change_and_clients_are_fenced(cluster, unique_name):
    name = unique_name("epochs")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 3)", (name,))
    _id, _uuid, _n, _config, parts = cluster.wait_topic_everywhere(name, deadline=DEADLINE)
    controller = cluster.controller()
    victim = next(i for i in cluster.node_ids if i != controller)
    p = next(p for p, v in parts.items() if v[0] == victim)
    survivor = cluster.node(next(i for i in cluster.node_ids if i != victim))
    node = cluster.node(victim)
    topic_id = node.sql("SELECT topic_id FROM streamlog.topic WHERE name = %s", (name,))[0][0]
    node.sql("SELECT streamlog.produce(%s, 'k', 'before', partition => %s)", (name, p))

    cluster.kill9(victim)
    try:
        cluster.wait_for(
            lambda: kafka_metadata(survivor, [name])["topics"][name]["partitions"][p]["leader"]
            == -1, DEADLINE, f"partition {p} offline")
    finally:
        cluster.start([victim])
    cluster.wait_for(
        lambda: kafka_metadata(survivor, [name])["topics"][name]["partitions"][p]["leader"]
        == victim, DEADLINE, f"partition {p} led by node {victim} again")
    cluster.wait_topic_everywhere(name, deadline=DEADLINE)
    epoch = kafka_metadata(node, [name])["topics"][name]["partitions"][p]["leader_epoch"]
    assert epoch >= 2
    cluster.wait_for(lambda: node.sql(
        "SELECT leader_epoch FROM streamlog.partition WHERE topic_id = %s AND partition = %s",
        (topic_id, p))[0][0] == epoch, DEADLINE, "the node's catalog has the new epoch")
    node.sql("SELECT streamlog.produce(%s, 'k', 'after', partition => %s)", (name, p))

    # the stored batches carry the epoch each was appended in
    assert node.sql("SELECT base_offset, leader_epoch FROM streamlog._replica_read(%s, %s, 0, "
                    "1000000)", (topic_id, p)) == [(0, 0), (1, epoch)]

    with kh.RawClient(node.kafka_bootstrap) as c:
        asks = {name: [(p, epoch, 0), (p, epoch, 1), (p, epoch, epoch), (p, -1, epoch + 1)]}
        got = [ofle.ask(c, 3, {name: [a]})[(name, p)] for a in asks[name]]
        # epoch 0 ended where the new leader's began; the offline epoch
        # (no leader, no batch) answers as the one below it
        assert got == [(0, 0, 1), (0, 0, 1), (0, epoch, 2), (0, -1, -1)]
        fenced = ofle.ask(c, 3, {name: [(p, epoch - 1, 0)]})[(name, p)]
        assert fenced[0] == FENCED_LEADER_EPOCH
        unknown = ofle.ask(c, 4, {name: [(p, epoch + 1, 0)]})[(name, p)]
        assert unknown[0] == UNKNOWN_LEADER_EPOCH
    with kh.RawClient(survivor.kafka_bootstrap) as c:
        assert ofle.ask(c, 3, {name: [(p, -1, 0)]})[(name, p)][0] == NOT_LEADER_OR_FOLLOWER


def test_reads_go_to_any_node_holding_a_replica(cluster, unique_name):
    """read() and history() on a follower read its own copy (a prefix of
    the leader's, below its high watermark), and so does a consumer's Fetch
    v11+; a node without a replica reads through the leader"""
    from confluent_kafka.admin import AdminClient, NewTopic

    name = unique_name("nearest")
    leader, follower, outsider = cluster.node_ids[1], cluster.node_ids[0], cluster.node_ids[2]
    admin = AdminClient({"bootstrap.servers": cluster.node(1).kafka_bootstrap})
    assert kh.admin_results(admin.create_topics(
        [NewTopic(name, 1, replica_assignment=[[leader, follower]])]), 60) == {name: None}
    cluster.wait_topic_everywhere(name, deadline=DEADLINE)
    cluster.node(leader).sql("SELECT streamlog.produce(%s, 'k', 'v0', partition => 0)", (name,))
    # below the high watermark: what every in-sync replica holds (the
    # record once its follower reported it).  Both high watermarks are
    # waited for, so that no read below races with one moving
    hwm = "SELECT high_watermark FROM streamlog.partitions WHERE topic = %s AND partition = 0"
    for n in (leader, follower):
        cluster.wait_for(lambda: cluster.node(n).sql(hwm, (name,)) == [(1,)], DEADLINE,
                         f"node {n}'s high watermark past the record")
    on_leader = cluster.node(leader).sql(
        "SELECT \"offset\", value FROM streamlog.read(%s, 0)", (name,))

    node = cluster.node(follower)
    copy = node.sql("SELECT \"offset\", value FROM streamlog.read(%s, 0)", (name,))
    assert copy == on_leader[:len(copy)]
    history = node.sql("SELECT \"offset\" FROM streamlog.history(%s)", (name,))
    assert [r[0] for r in history] == [r[0] for r in copy]

    # a consumer's Fetch v11+ is served by the follower from its copy
    # (KIP-392); older versions, and another follower's fetch, go to the leader
    with kh.RawClient(node.kafka_bootstrap) as c:
        err, hw, preferred, _records = fetch_result(c.call(fetch_request, 11, name, 0), 11)
        assert (err, preferred) == (0, -1)
        assert len(copy) <= hw <= 1, "its own high watermark, never above its copy"
        assert fetch_result(c.call(fetch_request, 10, name, 0), 10)[0] == NOT_LEADER_OR_FOLLOWER
        assert fetch_result(c.call(fetch_request, 11, name, 0, replica_id=outsider), 11)[0] \
            == NOT_LEADER_OR_FOLLOWER
    with kh.RawClient(cluster.node(outsider).kafka_bootstrap) as c:
        assert fetch_result(c.call(fetch_request, 11, name, 0), 11)[0] == NOT_LEADER_OR_FOLLOWER

    # a node without a replica reads through the leader (README, "SQL
    # consume() on any node"): what the leader's own calls return
    for query in ("SELECT \"offset\", value FROM streamlog.read(%s, 0)",
                  "SELECT \"offset\", value FROM streamlog.history(%s)",
                  "SELECT streamlog.offset_for_time(%s, 0, now() - interval '1 hour')"):
        assert cluster.node(outsider).sql(query, (name,)) == \
            cluster.node(leader).sql(query, (name,)), query
