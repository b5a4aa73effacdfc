"""Unclean leader election on four nodes (three voters): a partition
whose in-sync replicas are all gone stays offline until one returns,
unless its topic sets unclean.leader.election.enable (a live replica
outside the ISR then leads, alone in the ISR, with the next epoch) or an
ElectLeaders of type UNCLEAN asks for it.

The ISR shrinks as it does in production, without a hand on it: the
follower's node is paused (cgroup freezer, else SIGSTOP) until the
controller fences it and takes it out of the ISR, then the leader's node
is killed with kill -9; the follower, resumed, is the only live replica,
outside the ISR.  Nothing can put it back in the ISR meanwhile: it is
fenced while paused, and its leader is dead once it is not."""

import psycopg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import shared_cluster
import cluster_api_requests as car
import kafka_helpers as kh

SESSION_TIMEOUT_MS = 3000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 4, voters=3, name="unclean",
                              conf={"streamlog.broker_session_timeout_ms": SESSION_TIMEOUT_MS})


def partition0(cluster, name, via):
    """(leader, leader_epoch, partition_epoch, replicas, isr) of partition 0"""
    state = cluster.topic_state(name, via)
    return None if state is None else state[4][0]


def test_unclean_leader_election_on_and_off(cluster, unique_name):
    clean, unclean, forced = unique_name("clean"), unique_name("unclean"), unique_name("forced")
    admin = AdminClient({"bootstrap.servers": cluster.node(1).kafka_bootstrap})
    topics = [NewTopic(clean, 1, replica_assignment=[[3, 4]]),
              NewTopic(unclean, 1, replica_assignment=[[3, 4]],
                       config={"unclean.leader.election.enable": "true"}),
              NewTopic(forced, 1, replica_assignment=[[3, 4]])]
    assert kh.admin_results(admin.create_topics(topics), 60) == \
        {clean: None, unclean: None, forced: None}
    for name in (clean, unclean, forced):
        assert cluster.wait_topic_everywhere(name)[4][0][:2] == (3, 0)

    # node 4 stops answering: fenced, out of every ISR
    cluster.node(4).pause()
    try:
        for name in (clean, unclean, forced):
            cluster.wait_topic_everywhere(name, node_ids=[1, 2, 3],
                                          check=lambda s: s[4][0][4] == [3])
        # then the leader dies: no ISR member is alive, node 4 is fenced
        cluster.kill9(3)
        for name in (clean, unclean, forced):
            state = cluster.wait_topic_everywhere(
                name, node_ids=[1, 2], check=lambda s: s[4][0][0] == -1)[4][0]
            assert state[4] == [3] and state[1] == 1   # it keeps its last member
    finally:
        cluster.node(4).resume()

    # node 4 is back, outside the ISR: the unclean topic takes it
    moved = cluster.wait_topic_everywhere(
        unclean, node_ids=[1, 2, 4], check=lambda s: s[4][0][0] == 4)[4][0]
    assert moved[4] == [4] and moved[1] == 2
    rows = cluster.node(1).sql(
        "SELECT topic, leader, offline, under_replicated FROM streamlog.partitions "
        "WHERE topic IN (%s, %s)", (clean, unclean))
    assert {r[0]: r[1:] for r in rows} == {clean: (-1, True, True),
                                           unclean: (4, False, True)}
    assert partition0(cluster, clean, 4)[0] == -1
    # (SQL produce is taken and queued for the partition's return, see
    # test_cluster_sql_forward.py; reading it is refused)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="offline"):
        cluster.node(4).sql("SELECT count(*) FROM streamlog.read(%s, 0)", (clean,))

    # Kafka's ElectLeaders of type UNCLEAN does it for a topic without the
    # config, on request; a partition that has a leader needs nothing
    with kh.RawClient(cluster.node(2).kafka_bootstrap, timeout=60) as c:
        _, results = car.parse_elect_leaders(
            c.call(car.elect_leaders_request, {forced: [0], unclean: [0]}, election_type=1), 1)
    assert results[(forced, 0)] == (0, None)
    assert results[(unclean, 0)][0] == car.ELECTION_NOT_NEEDED
    elected = partition0(cluster, forced, 2)
    assert elected[0] == 4 and elected[4] == [4] and elected[1] == 2
    assert cluster.node(1).sql("SELECT error_code FROM streamlog.elect_leaders(%s, 0, true)",
                               (forced,)) == [(car.ELECTION_NOT_NEEDED,)]
    # the clean topic is still offline: a preferred election cannot help
    assert cluster.node(1).sql("SELECT error_code FROM streamlog.elect_leaders(%s, 0)",
                               (clean,)) == [(car.PREFERRED_LEADER_NOT_AVAILABLE,)]

    # node 3 returns: the clean topic comes back with it, in the next
    # epoch; the others stay with node 4
    cluster.start([3])
    cluster.wait_ready()
    back = cluster.wait_topic_everywhere(clean, check=lambda s: s[4][0][0] == 3)[4][0]
    assert back[1] == 2
    assert partition0(cluster, unclean, 3)[0] == 4
    assert partition0(cluster, forced, 3)[0] == 4


def test_turning_the_config_on_elects_at_once(cluster, unique_name):
    """An offline partition whose topic gets the config is elected at the
    controller's next tick, without any node coming or going."""
    name = unique_name("later")
    admin = AdminClient({"bootstrap.servers": cluster.node(1).kafka_bootstrap})
    assert kh.admin_results(admin.create_topics(
        [NewTopic(name, 1, replica_assignment=[[2, 4]])]), 60) == {name: None}
    cluster.wait_topic_everywhere(name)
    cluster.node(4).pause()
    try:
        cluster.wait_topic_everywhere(name, node_ids=[1, 2, 3],
                                      check=lambda s: s[4][0][4] == [2])
        cluster.kill9(2)
        cluster.wait_topic_everywhere(name, node_ids=[1, 3], check=lambda s: s[4][0][0] == -1)
    finally:
        cluster.node(4).resume()
    cluster.wait_for(lambda: cluster.node_state(4, 1) == "running", 60, "node 4 back")
    assert partition0(cluster, name, 1)[0] == -1
    cluster.node(1).sql("""SELECT streamlog.alter_topic(%s, '{"unclean.leader.election.enable": "true"}')""",
                        (name,))
    state = cluster.wait_topic_everywhere(name, node_ids=[1, 3, 4],
                                          check=lambda s: s[4][0][0] == 4)[4][0]
    assert state[4] == [4]
    cluster.start([2])
    cluster.wait_ready()
