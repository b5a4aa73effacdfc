"""The transaction state of a partition follows its log when a replica
truncates it (issue 14, Kafka's ProducerStateManager.truncateAndReload):
a transactional batch that goes no longer opens a transaction, a marker
that goes re-opens the transaction it closed, an ABORT that goes leaves
the aborted-transaction index.  First through the replica door
(streamlog._truncate_partition) on one node, then on a 3-node cluster
whose cut-off leader took batches and markers its successor never got."""

import os
import signal

import pytest

from replstream import create_topic_with_assignment, stored_batches, wait_replicas_identical
from test_replication_failover import kill_with_senders, new_leader, stop_senders
from test_txn_log import append, hwm, lso, marker, produce
from test_txn_log_cluster import txn_state


def topic_id(conn, topic):
    return conn.execute("SELECT topic_id FROM streamlog.topic WHERE name = %s",
                        (topic,)).fetchone()[0]


def values(conn, topic, isolation):
    return [r[0] for r in conn.execute(
        "SELECT convert_from(value, 'UTF8') FROM streamlog.read(%s, 0, 0, 1000, "
        "isolation => %s)", (topic, isolation))]


def state(conn, topic):
    tid = topic_id(conn, topic)
    opened = conn.execute("SELECT producer_id, producer_epoch, first_offset "
                          "FROM streamlog.txn_open WHERE topic_id = %s ORDER BY 1",
                          (tid,)).fetchall()
    aborted = conn.execute("SELECT producer_id, first_offset, last_offset "
                           "FROM streamlog.txn_aborted WHERE topic_id = %s ORDER BY 2",
                           (tid,)).fetchall()
    return opened, aborted


def test_truncation_rewinds_open_and_aborted_transactions(conn, unique_name):
    topic = unique_name("txtrunc")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce(conn, topic, "p0")                            # 0
    append(conn, topic, 0, 100, 2, 0, ["a1"])             # 1: opens 100
    append(conn, topic, 0, 200, 3, 0, ["b1"])             # 2: opens 200
    marker(conn, topic, 0, 100, 2, True)                  # 3: commits 100 (from 1)
    append(conn, topic, 0, 100, 2, 1, ["a2"])             # 4: opens 100 again
    assert marker(conn, topic, 0, 200, 3, False) == 5     # aborts 200 (2..5)
    append(conn, topic, 0, 300, 0, 0, ["c1"])             # 6: opens 300
    assert marker(conn, topic, 0, 100, 2, False) == 7     # aborts 100 (4..7)
    assert state(conn, topic) == ([(300, 0, 6)], [(200, 2, 5), (100, 4, 7)])
    tid = topic_id(conn, topic)

    # The ABORT at 7 goes: 100's transaction from 4 is open again
    conn.execute("SELECT streamlog._truncate_partition(%s, 0, 7)", (tid,))
    assert state(conn, topic) == ([(100, 2, 4), (300, 0, 6)], [(200, 2, 5)])
    assert lso(conn, topic) == 4
    # 300's only batch goes with 6: it no longer opens anything
    conn.execute("SELECT streamlog._truncate_partition(%s, 0, 6)", (tid,))
    assert state(conn, topic) == ([(100, 2, 4)], [(200, 2, 5)])
    # 200's ABORT goes: open again from 2, and out of the index
    conn.execute("SELECT streamlog._truncate_partition(%s, 0, 5)", (tid,))
    assert state(conn, topic) == ([(100, 2, 4), (200, 3, 2)], [])
    assert lso(conn, topic) == 2
    # 100's second transaction goes, and the COMMIT of its first: that one
    # is open again from 1, its first batch
    conn.execute("SELECT streamlog._truncate_partition(%s, 0, 3)", (tid,))
    assert state(conn, topic) == ([(100, 2, 1), (200, 3, 2)], [])
    assert lso(conn, topic) == 1
    assert hwm(conn, topic) == 3
    assert values(conn, topic, "read_committed") == ["p0"]
    assert values(conn, topic, "read_uncommitted") == ["p0", "a1", "b1"]
    # A marker written after the truncation closes the reopened ones
    assert marker(conn, topic, 0, 100, 2, False) == 3
    assert marker(conn, topic, 0, 200, 3, True) == 4
    assert state(conn, topic) == ([], [(100, 1, 3)])
    assert lso(conn, topic) == hwm(conn, topic) == 5
    assert values(conn, topic, "read_committed") == ["p0", "b1"]


def test_truncation_rolled_back_leaves_the_state(conn, unique_name):
    topic = unique_name("txtrunc")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    append(conn, topic, 0, 100, 0, 0, ["a1"])             # 0
    assert marker(conn, topic, 0, 100, 0, False) == 1
    tid = topic_id(conn, topic)
    class Rollback(Exception):
        pass

    try:
        with conn.transaction():
            conn.execute("SELECT streamlog._truncate_partition(%s, 0, 1)", (tid,))
            assert state(conn, topic) == ([(100, 0, 0)], [])
            raise Rollback
    except Rollback:
        pass
    assert state(conn, topic) == ([], [(100, 0, 1)])
    assert lso(conn, topic) == hwm(conn, topic) == 2
    # No transaction open, so the LSO cache answers without a query: the
    # one the truncation re-opens must hold the LSO all the same
    cache = conn.execute("SELECT known, open_transactions FROM "
                         "streamlog.partition_lso_cache(%s, 0)", (topic,)).fetchone()
    assert cache == (True, 0)
    conn.execute("SELECT streamlog._truncate_partition(%s, 0, 1)", (tid,))
    assert state(conn, topic) == ([(100, 0, 0)], [])
    assert hwm(conn, topic) == 1 and lso(conn, topic) == 0
    assert values(conn, topic, "read_committed") == []


@pytest.mark.parametrize("how", ["kill", "pause"])
def test_truncated_old_leader_has_its_successors_transactions(make_cluster, unique_name, how):
    """The leader takes a COMMIT, an ABORT and a transactional batch its
    followers never get, and is cut off: killed (kill -9, then restarted)
    or paused (every process stopped, then resumed: its partition state in
    shared memory, the LSO cache's count included, lives on).  Its
    successor ends the transactions the other way round.  The old leader
    returns, truncates by epoch and ends with the new leader's open
    transactions and aborted index, and both read the same committed
    records."""
    cluster = make_cluster(3, conf={"streamlog.broker_session_timeout_ms": 3000,
                                    "streamlog.min_insync_replicas": 2})
    topic = unique_name("txtrunc")
    error, message = create_topic_with_assignment(cluster.node(1), topic, {0: [1, 2, 3]})
    assert error == 0, message
    cluster.wait_topic_everywhere(topic)
    first = cluster.wait_for(lambda: cluster.leaders(topic).get(0), 60, "a leader")
    with cluster.node(first).connect() as c:
        produce(c, topic, "p0")                           # 0
        append(c, topic, 0, 100, 0, 0, ["a1"])            # 1: opens 100
        append(c, topic, 0, 200, 0, 0, ["b1"])            # 2: opens 200
    wait_replicas_identical(cluster, topic, 0, [1, 2, 3],
                            min_batches=len(stored_batches(cluster.node(first), topic)))

    # Nobody else gets these
    senders = stop_senders(cluster.node(first))
    with cluster.node(first).connect() as c:
        assert marker(c, topic, 0, 200, 0, True) == 3     # commits 200
        assert marker(c, topic, 0, 100, 0, False) == 4    # aborts 100
        append(c, topic, 0, 300, 0, 0, ["c1"])            # 5: opens 300
        assert state(c, topic) == ([(300, 0, 5)], [(100, 1, 4)])
    if how == "kill":
        kill_with_senders(cluster, first, senders)
    else:
        cluster.pause(first)
    others = [i for i in (1, 2, 3) if i != first]
    second = new_leader(cluster, topic, others)
    with cluster.node(second).connect() as c:
        assert marker(c, topic, 0, 200, 0, False) == 3    # aborts 200
        append(c, topic, 0, 400, 0, 0, ["d1"])            # 4: opens 400
        produce(c, topic, "p5")                           # 5
    if how == "kill":
        cluster.start(first)
    else:
        cluster.resume(first)
        for pid in senders:         # a thawed freezer leaves them stopped
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    expected = stored_batches(cluster.node(second), topic)
    logs = wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=len(expected),
                                   deadline=180)
    assert logs == expected
    assert f"truncated partition 0 of topic \"{topic}\"" in cluster.node(first).log_text()
    want = ([(100, 0, 1), (400, 0, 4)], [(200, 2, 3)])
    for node_id in (1, 2, 3):
        assert txn_state(cluster.node(node_id), topic) == want, f"node {node_id}"
    # 100 and 400 stay open: read_committed stops at 1 on every replica
    for node_id in (first, second):
        with cluster.node(node_id).connect() as c:
            assert lso(c, topic) == 1
            assert values(c, topic, "read_committed") == ["p0"]
    # 100 commits on the new leader: the old one follows, b1 stays aborted
    with cluster.node(second).connect() as c:
        assert marker(c, topic, 0, 100, 0, True) == 6
        assert marker(c, topic, 0, 400, 0, True) == 7
    expected = stored_batches(cluster.node(second), topic)
    wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=len(expected))
    for node_id in (first, second):
        with cluster.node(node_id).connect() as c:
            cluster.wait_for(lambda: lso(c, topic) == 8, 60, "the LSO past the markers")
            assert values(c, topic, "read_committed") == ["p0", "a1", "d1", "p5"]
            assert txn_state(cluster.node(node_id), topic) == ([], [(200, 2, 3)])


def test_truncation_below_the_log_start_empties_the_state(conn, unique_name):
    """Below the log start the log is emptied (as when a follower starts
    over at its leader's log start): nothing stays open nor aborted."""
    topic = unique_name("txtrunc")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    append(conn, topic, 0, 100, 0, 0, ["a1"])             # 0
    assert marker(conn, topic, 0, 100, 0, False) == 1
    produce(conn, topic, "p2")                            # 2
    append(conn, topic, 0, 200, 0, 0, ["b1"])             # 3: opens 200
    conn.execute("SELECT streamlog.delete_records(%s, 0, 3)", (topic,))
    assert state(conn, topic) == ([(200, 0, 3)], [])      # retention pruned 100
    conn.execute("SELECT streamlog._truncate_partition(%s, 0, 2)", (topic_id(conn, topic),))
    assert state(conn, topic) == ([], [])
    assert lso(conn, topic) == hwm(conn, topic) == 2
