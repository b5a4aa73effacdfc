"""SQL produce forwarded across a change of leader (P1 on a cluster,
README "SQL produce on any node"): records a node queued for a partition
whose leader died reach the new leader, and when that new leader is the
queueing node itself, what it produces afterwards comes after them (commit
order per producing node), not before.

A cluster of its own with a short session timeout (the dead leader is
fenced and replaced sooner); a topic of three replicas.  Skipped where
create_topic() takes no replication factor."""

import pytest

from cluster import shared_cluster

DEADLINE = 120
SESSION_TIMEOUT_MS = 3000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 3, name="sqlfwdfail",
                              conf={"streamlog.broker_session_timeout_ms": SESSION_TIMEOUT_MS})


def values_on(node, topic, p):
    return [r[0] for r in node.sql(
        "SELECT convert_from(value, 'UTF8') FROM streamlog.read(%s, %s) ORDER BY \"offset\"",
        (topic, p))]


def test_records_queued_for_a_dead_leader_come_before_the_new_leaders_own(cluster,
                                                                           unique_name):
    has_rf = cluster.node(1).sql(
        "SELECT count(*) FROM pg_proc WHERE proname = 'create_topic' "
        "AND 'replication_factor' = ANY (proargnames)")
    if has_rf != [(1,)]:
        pytest.skip("create_topic() takes no replication factor here")
    name = unique_name("fwdfail")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 1, '{}', 3)", (name,))
    leader, _le, _pe, replicas, isr = cluster.wait_topic_everywhere(name)[4][0]
    assert sorted(isr) == sorted(replicas) == [1, 2, 3]
    # the replica the controller elects next (the first live one in the ISR
    # by replica order) queues records while the leader is dead
    heir = next(r for r in replicas if r != leader)
    producer = cluster.node(heir)
    cluster.kill9(leader)
    try:
        with producer.connect(autocommit=False) as conn:
            for i in range(10):
                conn.execute("SELECT streamlog.produce(%s, NULL, %s, partition => 0)",
                             (name, f"queued-{i}"))
            conn.commit()
        survivors = [i for i in cluster.node_ids if i != leader]
        moved = cluster.wait_topic_everywhere(
            name, node_ids=survivors, check=lambda s: s[4][0][0] not in (leader, -1))[4][0]
        if moved[0] != heir:
            pytest.fail(f"node {moved[0]} was elected, not node {heir}: {moved}")
        # at once: the forwarder may not have delivered the queue yet
        producer.sql("SELECT streamlog.produce(%s, NULL, 'after', partition => 0)", (name,))

        def delivered():
            if producer.sql("SELECT count(*) FROM streamlog.forward_queue") != [(0,)]:
                return None
            values = values_on(producer, name, 0)
            return values if len(values) >= 11 else None
        values = cluster.wait_for(delivered, DEADLINE, "the queue delivered to the new leader")
        assert values == [f"queued-{i}" for i in range(10)] + ["after"]
    finally:
        cluster.start([leader])
        cluster.wait_ready()


def test_too_few_in_sync_replicas_keep_the_records_queued(cluster, unique_name):
    # as an acks=all produce: the leader of a partition whose ISR is
    # smaller than its min.insync.replicas takes nothing; the records wait
    # in the producing node's queue
    has_rf = cluster.node(1).sql(
        "SELECT count(*) FROM pg_proc WHERE proname = '_alter_partition_isr'")
    if has_rf != [(1,)]:
        pytest.skip("no AlterPartition here")
    cluster.wait_ready()
    # Followers that replicate would be taken back into the ISR at once by
    # the leader's ISR manager: they stay still while this test shrinks it
    set_replica_apply(cluster, "off")
    try:
        too_few_in_sync_replicas(cluster, unique_name)
    finally:
        set_replica_apply(cluster, "on")


def set_replica_apply(cluster, value):
    for node in cluster:
        node.sql(f"ALTER SYSTEM SET streamlog.replica_apply = {value}")
        node.sql("SELECT pg_reload_conf()")


def too_few_in_sync_replicas(cluster, unique_name):
    name = unique_name("fwdminisr")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 1, '{\"min.insync.replicas\": \"2\"}', 3)",
                        (name,))
    leader, le, pe, replicas, isr = cluster.wait_topic_everywhere(name)[4][0]
    [(code, message)] = cluster.node(leader).sql(
        "SELECT * FROM streamlog._alter_partition_isr(%s, 0, %s, %s, %s)",
        (name, le, pe, [leader]))
    assert code == 0, message
    cluster.wait_topic_everywhere(name, check=lambda s: s[4][0][4] == [leader])
    producer = cluster.node(next(n for n in cluster.node_ids if n != leader))
    producer.sql("SELECT streamlog.produce(%s, NULL, 'waits', partition => 0)", (name,))
    cluster.wait_for(lambda: "too few in-sync replicas" in producer.log_tail(400), DEADLINE,
                     "the forwarder told NOT_ENOUGH_REPLICAS")
    assert producer.sql("SELECT count(*) FROM streamlog.forward_queue") == [(1,)]
    assert values_on(cluster.node(leader), name, 0) == []
    # a dropped topic's queued records go
    cluster.node(1).sql("SELECT streamlog.drop_topic(%s)", (name,))
    cluster.wait_for(lambda: producer.sql("SELECT count(*) FROM streamlog.forward_queue")
                     == [(0,)], DEADLINE, "the queue of a dropped topic discarded")
