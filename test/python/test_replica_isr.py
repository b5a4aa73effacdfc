"""The ISR manager (Kafka's maybeShrinkIsr / maybeExpandIsr through
AlterPartition, KIP-497): a follower that has not caught up with the
leader for streamlog.replica_lag_time_max_ms leaves the ISR, one that
reached the high watermark in the current leader epoch joins it again,
both committed by the controller and seen on every node; the high
watermark and acks=all follow the ISR, and too small an ISR refuses
acks=all with NOT_ENOUGH_REPLICAS.

Three real nodes; the followers' reports are made by hand from SQL on the
leader, as the apply workers make them."""

import pytest

import kafka_helpers as kh
from cluster import shared_cluster
from test_replica_acks import (DEADLINE, NOT_ENOUGH_REPLICAS, leader_log_end, records,
                               replicas, replicated_topic, report, sql_count)

NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
LAG_MS = 4000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 3, name="isr",
                              conf={"streamlog.replica_lag_time_max_ms": str(LAG_MS),
                                    # the test reports for the followers
                                    "streamlog.replica_apply": "off"})


def isr_everywhere(cluster, name):
    """The committed ISR of partition 0, once every node has the same"""
    def same():
        seen = {tuple(sorted(cluster.topic_state(name, i)[4][0][4])) for i in cluster.node_ids}
        return seen.pop() if len(seen) == 1 else None
    return cluster.wait_for(same, DEADLINE, f"the ISR of {name} alike everywhere")


def wait_isr(cluster, name, isr):
    cluster.wait_for(lambda: isr_everywhere(cluster, name) == tuple(isr), DEADLINE,
                     f"ISR {isr} of {name} on every node")


def produce_v3(node, name, n, acks):
    with kh.RawClient(node.kafka_bootstrap) as c:
        return kh.parse_produce_v3(c.call(kh.produce_request, name, [(0, records(n, "r"))],
                                          acks=acks))[(name, 0)]


def test_lagging_followers_leave_and_caught_up_ones_rejoin(cluster, unique_name):
    name = unique_name("isr")
    topic_id, epoch = replicated_topic(cluster, name, min_isr=2)
    leader = cluster.node(1)
    assert isr_everywhere(cluster, name) == (1, 2, 3)

    # node 2 is at the (empty) log's end and so never lags; node 3 is
    # never heard from and leaves once the lag time passed
    assert report(leader, 2, topic_id, epoch, 0) == (0, 0)
    wait_isr(cluster, name, [1, 2])
    assert replicas(leader, name)[3] == (None, False, False)
    partition_epoch = cluster.partitions(name, via=1)[0]["partition_epoch"]

    # the high watermark no longer waits for node 3, nor does acks=all
    assert produce_v3(leader, name, 2, acks=1) == (0, 0)
    assert report(leader, 2, topic_id, epoch, 2) == (0, 2)
    assert sql_count(leader, name) == 2

    # node 2 falls behind too: the ISR is the leader alone, fewer than
    # min.insync.replicas, and acks=all is refused with nothing written
    assert produce_v3(leader, name, 1, acks=1) == (0, 2)
    wait_isr(cluster, name, [1])
    assert produce_v3(leader, name, 1, acks=-1) == (NOT_ENOUGH_REPLICAS, -1)
    assert leader_log_end(leader, name) == 3
    # alone in the ISR, the leader's log end is the high watermark
    assert kh.high_watermark(leader, name) == 3

    # node 2 catches up (at the high watermark, in this leader epoch): it
    # is asked back at once, then node 3
    assert report(leader, 2, topic_id, epoch, 3) == (0, 3)
    wait_isr(cluster, name, [1, 2])
    assert produce_v3(leader, name, 1, acks=1) == (0, 3)
    assert report(leader, 2, topic_id, epoch, 4) == (0, 4)
    assert report(leader, 3, topic_id, epoch, 4) == (0, 4)
    wait_isr(cluster, name, [1, 2, 3])
    assert {n: r[1:] for n, r in replicas(leader, name).items()} == {
        1: (True, True), 2: (True, True), 3: (True, True)}
    # the leader epoch stayed, the partition epoch moved with each change
    part = cluster.partitions(name, via=1)[0]
    assert part["leader_epoch"] == epoch
    assert part["partition_epoch"] >= partition_epoch + 3
    assert sql_count(leader, name) == 4


def test_waiting_produce_when_the_isr_shrinks_below_min_insync(cluster, unique_name):
    """An acks=all produce waits for node 2, which never gets there and
    leaves the ISR: the high watermark then passes the produce with the
    leader alone in the ISR, fewer than min.insync.replicas, and the answer
    is Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND (the records stay)."""
    name = unique_name("afterappend")
    topic_id, epoch = replicated_topic(cluster, name, min_isr=2)
    leader = cluster.node(1)
    assert report(leader, 2, topic_id, epoch, 0) == (0, 0)
    wait_isr(cluster, name, [1, 2])
    with kh.RawClient(leader.kafka_bootstrap, timeout=DEADLINE) as c:
        reply = kh.parse_produce_v3(c.call(kh.produce_request, name, [(0, records(1, "a"))],
                                           acks=-1, timeout_ms=DEADLINE * 1000))
    assert reply[(name, 0)] == (NOT_ENOUGH_REPLICAS_AFTER_APPEND, -1)
    assert isr_everywhere(cluster, name) == (1,)
    assert sql_count(leader, name) == 1
