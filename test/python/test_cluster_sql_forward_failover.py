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
