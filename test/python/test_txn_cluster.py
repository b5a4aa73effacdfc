"""Kafka transactions on a cluster (README, "Transactions on a cluster"):
the coordinator of a transactional id is the leader of its partition of
__transaction_state (replicated, min.insync.replicas 2); the markers go to
every partition's leader, on other nodes too; offsets of
send_offsets_to_transaction become visible on the group's coordinator,
another node; and a coordinator or a partition leader killed with kill -9
between the prepare and the markers leaves each transaction whole: the next
coordinator, or the next pass, finishes it.

Three real nodes, replication factor 3, min.insync.replicas 2, with
confluent-kafka producers and read_committed consumers bootstrapped on
nodes other than the partitions' leaders."""

import struct
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import kafka_helpers as kh
from replstream import create_topic_with_assignment

TXN_TOPIC = "__transaction_state"
OFFSETS_TOPIC = "__consumer_offsets"
PARTITIONS = 3
SESSION_TIMEOUT_MS = 3000

CONF = {
    "streamlog.default_replication_factor": 3,
    "streamlog.min_insync_replicas": 2,
    "streamlog.offsets_topic_num_partitions": PARTITIONS,
    "streamlog.transaction_state_topic_num_partitions": PARTITIONS,
    "streamlog.broker_session_timeout_ms": SESSION_TIMEOUT_MS,
    "streamlog.transaction_coordinator": "on",
}


def java_hash_partition(key, partitions):
    """Kafka's Utils.abs(key.hashCode()) % partitions"""
    h = 0
    data = key.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def agreed_leader(cluster, topic, partition, exclude=(), deadline=90):
    """The leader of topic's partition once every reachable node agrees on
    one, not among exclude"""
    def agreed():
        leaders = set()
        for i in cluster.reachable():
            if i in exclude:
                continue
            leaders.add(cluster.leaders(topic, via=i).get(partition))
        if len(leaders) != 1:
            return None
        (leader,) = leaders
        return leader if leader is not None and leader >= 1 and leader not in exclude else None
    return cluster.wait_for(agreed, deadline, f"a leader of {topic}-{partition} not in {exclude}")


def create_spread_topic(cluster, name):
    """A topic of three partitions led by nodes 1, 2 and 3"""
    error, message = create_topic_with_assignment(
        cluster.node(1), name, {0: [1, 2, 3], 1: [2, 3, 1], 2: [3, 1, 2]})
    assert error == 0, message
    cluster.wait_topic_everywhere(name)
    for p in range(3):
        cluster.wait_for(lambda p=p: agreed_leader(cluster, name, p) == p + 1, 60,
                         f"partition {p} led by node {p + 1}")


def producer(cluster, tid, **conf):
    settings = {"bootstrap.servers": cluster.bootstrap_servers(), "transactional.id": tid,
                "transaction.timeout.ms": 60000, "linger.ms": 5, "acks": "all"}
    settings.update(conf)
    return Producer(settings)


def txn_coordinator(cluster, tid, exclude=()):
    return agreed_leader(cluster, TXN_TOPIC, java_hash_partition(tid, PARTITIONS), exclude)


def txn_state(node, tid):
    rows = node.sql("SELECT state FROM streamlog.transactions WHERE transactional_id = %s",
                    (tid,))
    return rows[0][0] if rows else None


def set_markers_hold(node, on):
    node.sql("ALTER SYSTEM SET streamlog.transaction_markers_hold = %s" % ("on" if on else "off"))
    node.sql("SELECT pg_reload_conf()")
    cluster_wait = time.monotonic() + 30
    while node.sql("SHOW streamlog.transaction_markers_hold")[0][0] != ("on" if on else "off"):
        assert time.monotonic() < cluster_wait
        time.sleep(0.05)


def other_node(cluster, *not_these):
    return next(i for i in cluster.reachable() if i not in not_these)


@pytest.fixture
def cluster(make_cluster):
    return make_cluster(3, conf=CONF)


NOT_COORDINATOR = 16
FIND_COORDINATOR = 10
END_TXN = 26


def find_txn_coordinator_raw(node, tid):
    """FindCoordinator v1 for a transaction key, sent to node: (error, node id)"""
    body = kh.string(tid) + struct.pack(">b", 1)
    with kh.RawClient(node.kafka_bootstrap) as client:
        r = kh.Reader(client.call(lambda cid: kh.request_frame(FIND_COORDINATOR, 1, cid, body)))
    r.i32()
    error = r.i16()
    r.string()
    return error, r.i32()


def end_txn_raw(node, tid, producer_id, epoch):
    """EndTxn v1 (commit) sent to node: its error code"""
    body = kh.string(tid) + struct.pack(">qhb", producer_id, epoch, 1)
    with kh.RawClient(node.kafka_bootstrap) as client:
        r = kh.Reader(client.call(lambda cid: kh.request_frame(END_TXN, 1, cid, body)))
    r.i32()
    return r.i16()


def test_commit_and_abort_over_leaders_on_three_nodes(cluster, unique_name):
    topic, tid = unique_name("out"), unique_name("tx")
    create_spread_topic(cluster, topic)
    p = producer(cluster, tid)
    p.init_transactions(60)
    for values, commit in ((["a0", "a1", "a2"], True), (["x0", "x1", "x2"], False),
                           (["b0", "b1", "b2"], True)):
        p.begin_transaction()
        for i, v in enumerate(values):
            p.produce(topic, v.encode(), partition=i)
        if commit:
            p.commit_transaction(60)
        else:
            p.flush(60)     # on the log before the abort (else librdkafka drops them)
            p.abort_transaction(60)

    coordinator = txn_coordinator(cluster, tid)
    cluster.wait_for(lambda: txn_state(cluster.node(coordinator), tid) == "CompleteCommit", 60,
                     "the last transaction complete")
    for i in range(3):
        # read through a node that does not lead the partition
        via = cluster.node(other_node(cluster, i + 1)).kafka_bootstrap
        assert kh.read_values(via, topic, i, "read_committed", 2) == [f"a{i}", f"b{i}"]
        assert kh.read_values(via, topic, i, "read_uncommitted", 3) == [f"a{i}", f"x{i}",
                                                                         f"b{i}"]
    # every node names the coordinator; the others answer NOT_COORDINATOR
    (pid, epoch), = cluster.node(coordinator).sql(
        "SELECT producer_id, producer_epoch FROM streamlog.txn_state "
        "WHERE transactional_id = %s", (tid,))
    for n in cluster:
        assert find_txn_coordinator_raw(n, tid) == (0, coordinator)
        if n.node_id != coordinator:
            assert end_txn_raw(n, tid, pid, epoch) == NOT_COORDINATOR


def group_coordinated_elsewhere(cluster, unique_name, tid):
    """A group whose coordinator (leader of its __consumer_offsets
    partition) is not the transaction's coordinator"""
    txn_node = txn_coordinator(cluster, tid)
    for attempt in range(50):
        group = unique_name(f"g{attempt}")
        node = agreed_leader(cluster, OFFSETS_TOPIC, java_hash_partition(group, PARTITIONS))
        if node != txn_node:
            return group, node
    pytest.fail("every group lands on the transaction's coordinator")


def test_send_offsets_to_a_group_coordinated_by_another_node(cluster, unique_name):
    src, out, tid = unique_name("in"), unique_name("out"), unique_name("tx")
    create_spread_topic(cluster, src)
    create_spread_topic(cluster, out)
    p = producer(cluster, tid)
    p.init_transactions(60)     # creates __transaction_state
    # __consumer_offsets, created by the consumer's first FindCoordinator
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers(),
                         "group.id": unique_name("probe"), "enable.auto.commit": False})
    consumer.committed([TopicPartition(src, 0)], 60)
    consumer.close()
    group, group_node = group_coordinated_elsewhere(cluster, unique_name, tid)
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers(), "group.id": group,
                         "enable.auto.commit": False})

    p.begin_transaction()
    p.produce(out, b"c", partition=1)
    p.send_offsets_to_transaction([TopicPartition(src, 0, 7), TopicPartition(src, 2, 3)],
                                  consumer.consumer_group_metadata(), 60)
    p.commit_transaction(60)

    p.begin_transaction()
    p.produce(out, b"x", partition=1)
    p.send_offsets_to_transaction([TopicPartition(src, 0, 9)],
                                  consumer.consumer_group_metadata(), 60)
    p.flush(60)
    p.abort_transaction(60)

    def committed():
        got = consumer.committed([TopicPartition(src, 0), TopicPartition(src, 2)], 60)
        return [tp.offset for tp in got]
    cluster.wait_for(lambda: committed() == [7, 3], 60, "the committed transaction's offsets")
    consumer.close()
    rows = cluster.node(group_node).sql(
        "SELECT partition, committed_offset FROM streamlog.group_offset "
        "WHERE group_id = %s ORDER BY 1", (group,))
    assert rows == [(0, 7), (2, 3)]
    assert cluster.node(group_node).sql(
        "SELECT count(*) FROM streamlog.txn_pending_offset WHERE group_id = %s", (group,)) == [(0,)]
    via = cluster.node(other_node(cluster, 2)).kafka_bootstrap
    assert kh.read_values(via, out, 1, "read_committed", 1) == ["c"]


def test_coordinator_killed_between_prepare_and_markers(cluster, unique_name):
    """streamlog.transaction_markers_hold keeps the coordinator from writing
    any marker after PrepareCommit; kill -9 of it then: the next leader of
    its __transaction_state partition loads PrepareCommit and commits the
    transaction on every partition, never half"""
    topic, tid = unique_name("out"), unique_name("tx")
    create_spread_topic(cluster, topic)
    p = producer(cluster, tid)
    p.init_transactions(60)
    coordinator = txn_coordinator(cluster, tid)
    set_markers_hold(cluster.node(coordinator), True)

    p.begin_transaction()
    for i in range(3):
        p.produce(topic, f"v{i}".encode(), partition=i)
    p.commit_transaction(60)    # answered once PrepareCommit is on the ISR
    assert txn_state(cluster.node(coordinator), tid) == "PrepareCommit"
    live = [i for i in cluster.reachable() if i != coordinator]
    via = cluster.node(live[0]).kafka_bootstrap
    # no marker yet: read_committed readers stop at the open transaction
    for i in range(3):
        assert kh.read_values(via, topic, i, "read_committed", 0, timeout=30) == []

    cluster.kill9(coordinator)
    successor = txn_coordinator(cluster, tid, exclude=(coordinator,))
    cluster.wait_for(lambda: txn_state(cluster.node(successor), tid) == "CompleteCommit", 90,
                     "the new coordinator completes the transaction")
    for i in range(3):
        assert kh.read_values(via, topic, i, "read_committed", 1) == [f"v{i}"]


def test_partition_leader_killed_during_markers(cluster, unique_name):
    """The markers of a transaction wait (the hold); the leader of one of
    its partitions, not the coordinator, is killed; once the hold is lifted
    the coordinator writes that partition's marker on its new leader and
    only then completes"""
    topic, tid = unique_name("out"), unique_name("tx")
    create_spread_topic(cluster, topic)
    p = producer(cluster, tid)
    p.init_transactions(60)
    coordinator = txn_coordinator(cluster, tid)
    victim_partition = next(i for i in range(3) if i + 1 != coordinator)
    victim = victim_partition + 1
    set_markers_hold(cluster.node(coordinator), True)

    p.begin_transaction()
    for i in range(3):
        p.produce(topic, f"w{i}".encode(), partition=i)
    p.commit_transaction(60)
    cluster.kill9(victim)
    set_markers_hold(cluster.node(coordinator), False)
    cluster.wait_for(lambda: txn_state(cluster.node(coordinator), tid) == "CompleteCommit", 120,
                     "the transaction complete on the partition's new leader")
    assert agreed_leader(cluster, topic, victim_partition, exclude=(victim,)) != victim
    via = cluster.node(coordinator).kafka_bootstrap
    for i in range(3):
        assert kh.read_values(via, topic, i, "read_committed", 1) == [f"w{i}"]


def test_coordinator_killed_while_transactions_commit(cluster, unique_name):
    """kill -9 of the coordinator while a producer commits transactions over
    the three leaders: every commit_transaction() that returned is on every
    partition after the failover (the coordinator answered only once its
    state was replicated), and no transaction is there in part"""
    import threading
    from confluent_kafka import KafkaException
    topic, tid = unique_name("out"), unique_name("tx")
    create_spread_topic(cluster, topic)
    coordinator_box = []
    committed = []
    stop = threading.Event()

    def run():
        p = producer(cluster, tid, **{"transaction.timeout.ms": 10000})
        p.init_transactions(60)
        coordinator_box.append(txn_coordinator(cluster, tid))
        n = 0
        while not stop.is_set():
            try:
                p.begin_transaction()
                for i in range(3):
                    p.produce(topic, f"{n}-{i}".encode(), partition=i)
                p.commit_transaction(60)
                committed.append(n)
            except KafkaException as e:
                if e.args[0].txn_requires_abort():
                    try:
                        p.abort_transaction(60)
                    except KafkaException:
                        return
                elif not e.args[0].retriable():
                    return
            n += 1

    t = threading.Thread(target=run, daemon=True)
    t.start()
    cluster.wait_for(lambda: len(committed) >= 5, 90, "a few transactions commit")
    coordinator = coordinator_box[0]
    cluster.kill9(coordinator)
    before = len(committed)
    cluster.wait_for(lambda: len(committed) >= before + 5 or not t.is_alive(), 120,
                     "transactions commit on the next coordinator")
    stop.set()
    t.join(120)
    assert len(committed) >= before + 5, "the producer gave up after the failover"
    via = cluster.node(other_node(cluster, coordinator)).kafka_bootstrap
    seen = []
    for i in range(3):
        values = kh.read_values(via, topic, i, "read_committed", len(committed), timeout=120)
        seen.append({int(v.split("-")[0]) for v in values})
        assert all(v.endswith(f"-{i}") for v in values)
    assert seen[0] == seen[1] == seen[2], "a transaction is on some partitions only"
    assert set(committed) <= seen[0], "an acknowledged commit is missing"


def test_kafkajs_transaction_on_a_cluster(cluster, unique_name):
    """kafkajs' transaction(), sendOffsets, commit and abort, bootstrapped on
    one node, with the topic led by another"""
    import json
    import subprocess
    from kafkajs import JS_DIR, ensure_kafkajs
    src, out, group, tid = (unique_name("in"), unique_name("out"), unique_name("g"),
                            unique_name("tx"))
    for name in (src, out):
        error, message = create_topic_with_assignment(cluster.node(1), name, {0: [2, 3, 1]})
        assert error == 0, message
        cluster.wait_topic_everywhere(name)
    node = ensure_kafkajs()
    res = subprocess.run([node, "txn_commit.js", cluster.node(1).kafka_bootstrap, tid, out,
                          group, src],
                         cwd=JS_DIR, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == {"ok": True}
    via = cluster.node(3).kafka_bootstrap
    assert kh.read_values(via, out, 0, "read_committed", 2) == ["k1", "k2"]
    assert kh.read_values(via, out, 0, "read_uncommitted", 3) == ["k1", "k2", "k-aborted"]
    group_node = agreed_leader(cluster, OFFSETS_TOPIC, java_hash_partition(group, PARTITIONS))
    cluster.wait_for(lambda: cluster.node(group_node).sql(
        "SELECT committed_offset FROM streamlog.group_offset WHERE group_id = %s",
        (group,)) == [(2,)], 60, "the group's offset committed by the transaction")


def test_ongoing_transaction_times_out_on_the_next_coordinator(cluster, unique_name):
    """kill -9 of the coordinator while a transaction is open (records on
    three leaders, no EndTxn): the next coordinator loads it Ongoing and
    aborts it at its timeout, which moves every partition's last stable
    offset to its high watermark"""
    topic, tid = unique_name("out"), unique_name("tx")
    create_spread_topic(cluster, topic)
    p = producer(cluster, tid, **{"transaction.timeout.ms": 5000})
    p.init_transactions(60)
    coordinator = txn_coordinator(cluster, tid)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, f"o{i}".encode(), partition=i)
    p.flush(60)
    cluster.kill9(coordinator)
    successor = txn_coordinator(cluster, tid, exclude=(coordinator,))
    cluster.wait_for(lambda: txn_state(cluster.node(successor), tid) == "CompleteAbort", 90,
                     "the next coordinator aborts the transaction at its timeout")
    for i in range(3):
        leader = cluster.node(agreed_leader(cluster, topic, i, exclude=(coordinator,)))
        cluster.wait_for(lambda: leader.sql("SELECT streamlog.last_stable_offset(%s, %s)",
                                            (topic, i))[0][0]
                         == kh.high_watermark(leader, topic, i), 60,
                         f"partition {i}'s last stable offset past the aborted transaction")
        via = cluster.node(other_node(cluster, coordinator, leader.node_id)).kafka_bootstrap
        assert kh.read_values(via, topic, i, "read_committed", 0) == []
        assert kh.read_values(via, topic, i, "read_uncommitted", 1) == [f"o{i}"]


@pytest.mark.parametrize("outcome", ["commit", "abort"])
def test_pending_offsets_survive_a_failover_of_the_group_coordinator(cluster, unique_name,
                                                                      outcome):
    """send_offsets_to_transaction stages offsets on the group's
    coordinator, which writes them as a transactional batch to the group's
    partition of __consumer_offsets; the markers are held, the group's
    coordinator (not the transaction's) is killed with kill -9: the node
    that takes over the group rebuilds the pending offsets from its replica
    of the partition, and the marker then makes them the group's committed
    offsets (commit) or drops them, the earlier ones staying (abort)"""
    src, out, tid = unique_name("in"), unique_name("out"), unique_name("tx")
    create_spread_topic(cluster, src)
    create_spread_topic(cluster, out)
    p = producer(cluster, tid)
    p.init_transactions(60)
    probe = Consumer({"bootstrap.servers": cluster.bootstrap_servers(),
                      "group.id": unique_name("probe"), "enable.auto.commit": False})
    probe.committed([TopicPartition(src, 0)], 60)   # creates __consumer_offsets
    probe.close()
    group, group_node = group_coordinated_elsewhere(cluster, unique_name, tid)
    offsets_partition = java_hash_partition(group, PARTITIONS)
    txn_node = txn_coordinator(cluster, tid)
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers(), "group.id": group,
                         "enable.auto.commit": False})
    metadata = consumer.consumer_group_metadata()

    # committed offsets before: those of an earlier transaction
    p.begin_transaction()
    p.produce(out, b"first", partition=0)
    p.send_offsets_to_transaction([TopicPartition(src, 0, 5)], metadata, 60)
    p.commit_transaction(60)
    cluster.wait_for(lambda: txn_state(cluster.node(txn_node), tid) == "CompleteCommit", 60,
                     "the first transaction complete")

    set_markers_hold(cluster.node(txn_node), True)
    p.begin_transaction()
    p.produce(out, b"second", partition=0)
    p.send_offsets_to_transaction([TopicPartition(src, 0, 9), TopicPartition(src, 2, 4)],
                                  metadata, 60)
    if outcome == "commit":
        p.commit_transaction(60)
    else:
        p.flush(60)
        p.abort_transaction(60)
    prepared = "PrepareCommit" if outcome == "commit" else "PrepareAbort"
    assert txn_state(cluster.node(txn_node), tid) == prepared
    assert cluster.node(group_node).sql(
        "SELECT partition, committed_offset FROM streamlog.txn_pending_offset "
        "WHERE group_id = %s ORDER BY 1", (group,)) == [(0, 9), (2, 4)]
    consumer.close()

    cluster.kill9(group_node)
    successor = agreed_leader(cluster, OFFSETS_TOPIC, offsets_partition, exclude=(group_node,))
    # read_uncommitted: no require_stable, which would wait for the marker
    reader = Consumer({"bootstrap.servers": cluster.bootstrap_servers(), "group.id": group,
                       "enable.auto.commit": False, "isolation.level": "read_uncommitted"})

    def committed(c):
        got = c.committed([TopicPartition(src, 0), TopicPartition(src, 2)], 60)
        return [tp.offset for tp in got]
    # the successor loaded the partition: the offsets are pending there, not committed
    assert committed(reader) == [5, -1001]
    reader.close()
    assert cluster.node(successor).sql(
        "SELECT partition, committed_offset FROM streamlog.txn_pending_offset "
        "WHERE group_id = %s ORDER BY 1", (group,)) == [(0, 9), (2, 4)]

    set_markers_hold(cluster.node(txn_node), False)
    completed = "CompleteCommit" if outcome == "commit" else "CompleteAbort"
    cluster.wait_for(lambda: txn_state(cluster.node(txn_node), tid) == completed, 90,
                     "the marker written on the group's new coordinator")
    reader = Consumer({"bootstrap.servers": cluster.bootstrap_servers(), "group.id": group,
                       "enable.auto.commit": False})
    expected = [9, 4] if outcome == "commit" else [5, -1001]
    cluster.wait_for(lambda: committed(reader) == expected, 60, "the group's committed offsets")
    reader.close()
    assert cluster.node(successor).sql(
        "SELECT partition, committed_offset FROM streamlog.group_offset "
        "WHERE group_id = %s ORDER BY 1", (group,)) == \
        ([(0, 9), (2, 4)] if outcome == "commit" else [(0, 5)])
    assert cluster.node(successor).sql(
        "SELECT count(*) FROM streamlog.txn_pending_offset WHERE group_id = %s",
        (group,)) == [(0,)]


OFFSET_FETCH = 9
COORDINATOR_LOAD_IN_PROGRESS = 14


def offset_fetch_error(node, group, topic):
    """The error of a raw OffsetFetch v1 of topic's partition 0 sent to
    node: it starts the load of the group's partition there"""
    body = (kh.string(group) + struct.pack(">i", 1) + kh.string(topic)
            + struct.pack(">ii", 1, 0))
    with kh.RawClient(node.kafka_bootstrap) as client:
        r = kh.Reader(client.call(lambda cid: kh.request_frame(OFFSET_FETCH, 1, cid, body)))
    assert r.i32() == 1
    r.string()
    assert r.i32() == 1
    r.i32(), r.i64(), r.string()
    return r.i16()


def set_load_hold(node, on):
    value = "on" if on else "off"
    node.sql("ALTER SYSTEM SET streamlog.group_load_hold = %s" % value)
    node.sql("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 30
    while node.sql("SHOW streamlog.group_load_hold")[0][0] != value:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_pending_offsets_staged_while_the_new_coordinator_loads(cluster, unique_name):
    """The race of a TxnOffsetCommit with the load of the group's partition
    on its new coordinator: the load is held (streamlog.group_load_hold)
    after it read the partition, which holds the offsets of a transaction
    whose group coordinator was killed; a second transaction stages offsets
    for the group meanwhile (taken while the load runs).  The load keeps
    what was staged after the point it read, and rebuilds what the log
    holds, and replaces a row left from an earlier time the node
    coordinated the group (a transaction settled elsewhere since, written
    here by hand as such a node keeps it); both commits then make their
    offsets the group's"""
    src, out, tid = unique_name("in"), unique_name("out"), unique_name("tx")
    create_spread_topic(cluster, src)
    create_spread_topic(cluster, out)
    p1 = producer(cluster, tid)
    p1.init_transactions(60)
    probe = Consumer({"bootstrap.servers": cluster.bootstrap_servers(),
                      "group.id": unique_name("probe"), "enable.auto.commit": False})
    probe.committed([TopicPartition(src, 0)], 60)   # creates __consumer_offsets
    probe.close()
    group, group_node = group_coordinated_elsewhere(cluster, unique_name, tid)
    offsets_partition = java_hash_partition(group, PARTITIONS)
    txn_node = txn_coordinator(cluster, tid)
    # a second producer, whose coordinator survives too
    tid2 = next(t for t in (unique_name(f"tx2-{i}") for i in range(50))
                if txn_coordinator(cluster, t) != group_node)
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers(), "group.id": group,
                         "enable.auto.commit": False})
    metadata = consumer.consumer_group_metadata()
    consumer.close()

    set_markers_hold(cluster.node(txn_node), True)
    p1.begin_transaction()
    p1.produce(out, b"one", partition=0)
    p1.send_offsets_to_transaction([TopicPartition(src, 0, 9)], metadata, 60)
    p1.commit_transaction(60)
    assert txn_state(cluster.node(txn_node), tid) == "PrepareCommit"

    for i in cluster.reachable():
        if i != group_node:
            set_load_hold(cluster.node(i), True)
            cluster.node(i).sql(
                "INSERT INTO streamlog.txn_pending_offset (producer_id, group_id, topic_id, "
                "  partition, committed_offset, staged_epoch) "
                "SELECT 424242, %s, topic_id, 1, 77, 0 FROM streamlog.topic WHERE name = %s",
                (group, src))
    cluster.kill9(group_node)
    successor = cluster.node(agreed_leader(cluster, OFFSETS_TOPIC, offsets_partition,
                                           exclude=(group_node,)))
    assert offset_fetch_error(successor, group, src) == COORDINATOR_LOAD_IN_PROGRESS
    holding = f"holding the load of {OFFSETS_TOPIC}-{offsets_partition}"
    cluster.wait_for(lambda: successor.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE query = %s", (holding,))[0][0] == 1,
        60, "the load held after reading the partition")

    p2 = producer(cluster, tid2)
    p2.init_transactions(60)
    p2.begin_transaction()
    p2.produce(out, b"two", partition=1)
    p2.send_offsets_to_transaction([TopicPartition(src, 2, 4)], metadata, 60)
    assert offset_fetch_error(successor, group, src) == COORDINATOR_LOAD_IN_PROGRESS

    for i in cluster.reachable():
        set_load_hold(cluster.node(i), False)
    cluster.wait_for(lambda: offset_fetch_error(successor, group, src) == 0, 60,
                     "the group's partition loaded")
    assert successor.sql(
        "SELECT partition, committed_offset FROM streamlog.txn_pending_offset "
        "WHERE group_id = %s ORDER BY 1", (group,)) == [(0, 9), (2, 4)]

    set_markers_hold(cluster.node(txn_node), False)
    p2.commit_transaction(60)
    reader = Consumer({"bootstrap.servers": cluster.bootstrap_servers(), "group.id": group,
                       "enable.auto.commit": False})

    def committed():
        got = reader.committed([TopicPartition(src, 0), TopicPartition(src, 2)], 60)
        return [tp.offset for tp in got]
    cluster.wait_for(lambda: committed() == [9, 4], 90, "both transactions' offsets committed")
    reader.close()
    assert successor.sql(
        "SELECT count(*) FROM streamlog.txn_pending_offset WHERE group_id = %s",
        (group,)) == [(0,)]


def test_marker_of_an_older_coordinator_epoch_is_refused(cluster, unique_name):
    """Markers carry the coordinator's epoch (the leader epoch of its
    partition of __transaction_state).  After a failover of that partition
    the new coordinator's markers have a newer epoch; a marker the old
    coordinator delivers late, with its older epoch, is refused by the
    partition's leader (Kafka's TRANSACTION_COORDINATOR_FENCED), and
    writes nothing"""
    import psycopg
    topic, tid = unique_name("out"), unique_name("tx")
    create_spread_topic(cluster, topic)
    p = producer(cluster, tid)
    p.init_transactions(60)
    coordinator = txn_coordinator(cluster, tid)
    victim_partition = next(i for i in range(3) if i + 1 != coordinator)
    leader = cluster.node(victim_partition + 1)

    def coordinator_epoch():
        rows = leader.sql("SELECT coordinator_epoch FROM streamlog.producers "
                          "WHERE topic = %s AND partition = %s", (topic, victim_partition))
        return rows[0][0] if rows else None

    p.begin_transaction()
    p.produce(topic, b"a", partition=victim_partition)
    p.commit_transaction(60)
    cluster.wait_for(lambda: txn_state(cluster.node(coordinator), tid) == "CompleteCommit", 60,
                     "the first transaction complete")
    old_epoch = coordinator_epoch()
    assert old_epoch is not None and old_epoch >= 0

    set_markers_hold(cluster.node(coordinator), True)
    p.begin_transaction()
    p.produce(topic, b"b", partition=victim_partition)
    p.commit_transaction(60)
    cluster.kill9(coordinator)
    successor = txn_coordinator(cluster, tid, exclude=(coordinator,))
    cluster.wait_for(lambda: txn_state(cluster.node(successor), tid) == "CompleteCommit", 90,
                     "the new coordinator completes the transaction")
    cluster.wait_for(lambda: (coordinator_epoch() or -1) > old_epoch, 60,
                     "the new coordinator's epoch on the partition")

    (topic_id,), = leader.sql("SELECT topic_id FROM streamlog.topic WHERE name = %s", (topic,))
    (pid, epoch), = cluster.node(successor).sql(
        "SELECT producer_id, producer_epoch FROM streamlog.txn_state "
        "WHERE transactional_id = %s", (tid,))
    end = kh.high_watermark(leader, topic, victim_partition)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                       match="coordinator epoch"):
        leader.sql("SELECT * FROM streamlog._txn_write_marker(%s, %s, %s, %s::smallint, "
                   "false, %s)", (topic_id, victim_partition, pid, epoch, old_epoch))
    assert kh.high_watermark(leader, topic, victim_partition) == end
    assert kh.read_values(leader.kafka_bootstrap, topic, victim_partition,
                          "read_committed", 2) == ["a", "b"]


TXN_OFFSET_COMMIT = 28


def txn_offset_commit_raw(node, tid, group, producer_id, epoch, topic, partition, offset):
    """TxnOffsetCommit v2 of one partition sent to node: its error code"""
    body = (kh.string(tid) + kh.string(group) + struct.pack(">qh", producer_id, epoch)
            + struct.pack(">i", 1) + kh.string(topic) + struct.pack(">i", 1)
            + struct.pack(">iqi", partition, offset, -1) + kh.string(""))
    with kh.RawClient(node.kafka_bootstrap) as client:
        r = kh.Reader(client.call(lambda cid: kh.request_frame(TXN_OFFSET_COMMIT, 2, cid, body)))
    r.i32()
    assert r.i32() == 1
    r.string()
    assert r.i32() == 1
    r.i32()
    return r.i16()


def test_hanging_transaction_of_consumer_offsets_aborted_by_hand(cluster, unique_name):
    """A TxnOffsetCommit whose transaction never gets a marker there (a
    raw client that skipped AddOffsetsToTxn: on a cluster the group's
    coordinator does not ask the transaction's) leaves an open transaction
    in the group's partition of __consumer_offsets, holding its last
    stable offset back; abort_transaction() on its leader aborts it and
    drops the offsets it left pending"""
    src, group = unique_name("in"), unique_name("g")
    create_spread_topic(cluster, src)
    probe = Consumer({"bootstrap.servers": cluster.bootstrap_servers(),
                      "group.id": unique_name("probe"), "enable.auto.commit": False})
    probe.committed([TopicPartition(src, 0)], 60)   # creates __consumer_offsets
    probe.close()
    partition = java_hash_partition(group, PARTITIONS)
    leader = cluster.node(agreed_leader(cluster, OFFSETS_TOPIC, partition))
    producer_id = 987654321

    cluster.wait_for(lambda: txn_offset_commit_raw(leader, unique_name("tx"), group, producer_id,
                                                    0, src, 0, 12) == 0,
                     60, "the offsets staged (once the group's partition is loaded)")
    rows = leader.sql("SELECT producer_id, first_offset FROM streamlog.open_transactions "
                      "WHERE topic = %s AND partition = %s", (OFFSETS_TOPIC, partition))
    assert [r[0] for r in rows] == [producer_id]
    assert leader.sql("SELECT count(*) FROM streamlog.txn_pending_offset WHERE group_id = %s",
                      (group,)) == [(1,)]
    assert leader.sql("SELECT streamlog.last_stable_offset(%s, %s)",
                      (OFFSETS_TOPIC, partition))[0][0] == rows[0][1]

    leader.sql("SELECT streamlog.abort_transaction(%s, %s, start_offset => %s)",
               (OFFSETS_TOPIC, partition, rows[0][1]))
    assert leader.sql("SELECT count(*) FROM streamlog.txn_pending_offset WHERE group_id = %s",
                      (group,)) == [(0,)]
    assert leader.sql("SELECT streamlog.last_stable_offset(%s, %s)",
                      (OFFSETS_TOPIC, partition))[0][0] == \
        kh.high_watermark(leader, OFFSETS_TOPIC, partition)
