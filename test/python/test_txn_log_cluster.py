"""The partition side of transactions on a cluster: the open transactions
and the aborted-transaction index follow the replicated log on every
replica (followers note the transactional batches and markers they
apply), so a follower's readers and a follower become leader see the
leader's transactions."""

import psycopg
import pytest
from replstream import create_topic_with_assignment, stored_batches, wait_replicas_identical

from test_txn_log import append, marker


def txn_state(node, topic):
    with node.connect() as c:
        tid = c.execute("SELECT topic_id FROM streamlog.topic WHERE name = %s",
                        (topic,)).fetchone()[0]
        opened = c.execute("SELECT producer_id, producer_epoch, first_offset "
                           "FROM streamlog.txn_open WHERE topic_id = %s ORDER BY 1",
                           (tid,)).fetchall()
        aborted = c.execute("SELECT producer_id, first_offset, last_offset "
                            "FROM streamlog.txn_aborted WHERE topic_id = %s ORDER BY 2",
                            (tid,)).fetchall()
    return opened, aborted


def test_followers_follow_the_transaction_state(make_cluster, unique_name):
    cluster = make_cluster(3)
    topic = unique_name("txn")
    error, message = create_topic_with_assignment(cluster.node(1), topic, {0: [1, 2, 3]})
    assert error == 0, message
    cluster.wait_topic_everywhere(topic)
    leader = cluster.wait_for(lambda: cluster.leaders(topic).get(0), 60, "a leader")
    node = cluster.node(leader)
    with node.connect() as c:
        c.execute("SELECT streamlog.produce(%s, NULL, 'p0'::text, partition => 0)", (topic,))
        append(c, topic, 0, 100, 0, 0, ["a1", "a2"])        # 1-2, aborted at 5
        append(c, topic, 0, 200, 0, 0, ["b1"])              # 3, committed at 4
        assert marker(c, topic, 0, 200, 0, True) == 4
        assert marker(c, topic, 0, 100, 0, False) == 5
        append(c, topic, 0, 300, 1, 0, ["c1"])              # 6, open
    expected = stored_batches(node, topic)
    wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=len(expected))
    want = ([(300, 1, 6)], [(100, 1, 5)])
    assert txn_state(node, topic) == want
    for follower in {1, 2, 3} - {leader}:
        assert txn_state(cluster.node(follower), topic) == want
    # The test door is the leader's only, as markers are
    other = cluster.node(({1, 2, 3} - {leader}).pop())
    with other.connect() as c:
        with pytest.raises(psycopg.Error, match="leader"):
            marker(c, topic, 0, 300, 1, True)
