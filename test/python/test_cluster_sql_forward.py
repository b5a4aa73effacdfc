"""SQL produce on a node that does not lead the partition (P1 on a cluster,
README "SQL produce on any node"): the records are queued in the caller's
transaction and the forwarder delivers them to the leader after the
commit, exactly once and in commit order per producing node and
partition, also across kill -9 of either node; a rolled-back record never
arrives.

One three-node cluster for the module; topics of one replica per
partition."""

import threading

import psycopg
import pytest

from cluster import shared_cluster

DEADLINE = 120


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 3, name="sqlforward")


def spread_topic(cluster, name, partitions=3):
    """A topic made on node 1, once every node has it: {partition: leader}"""
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, %s)", (name, partitions))
    _id, _uuid, _n, _config, parts = cluster.wait_topic_everywhere(name, deadline=DEADLINE)
    return {p: v[0] for p, v in parts.items()}


def led_elsewhere(cluster, leaders, producer):
    """A partition that node producer does not lead, and its leader"""
    for p, leader in sorted(leaders.items()):
        if leader != producer and leader >= 0:
            return p, leader
    pytest.fail(f"every partition is led by node {producer}: {leaders}")


def values_on(node, topic, p):
    return [r[0] for r in node.sql(
        "SELECT convert_from(value, 'UTF8') FROM streamlog.read(%s, %s) ORDER BY \"offset\"",
        (topic, p))]


def queue_depth(node):
    return node.sql("SELECT count(*) FROM streamlog.forward_queue")[0][0]


def wait_delivered(cluster, producers, leader, topic, p, count):
    """Until the producing nodes' queues are empty and the leader holds
    count records of the partition; returns the leader's values"""
    def done():
        if any(queue_depth(cluster.node(n)) for n in producers):
            return None
        values = values_on(cluster.node(leader), topic, p)
        return values if len(values) >= count else None
    return cluster.wait_for(done, DEADLINE, f"{count} records of {topic}-{p} on node {leader}")


def test_produce_on_a_non_leader_reaches_the_leader_once_in_order(cluster, unique_name):
    name = unique_name("fwd")
    leaders = spread_topic(cluster, name)
    p, leader = led_elsewhere(cluster, leaders, 1)
    producer = cluster.node(1)
    with producer.connect(autocommit=False) as conn:
        for i in range(20):
            (chosen,), = conn.execute(
                "SELECT streamlog.produce(%s, 'k', %s, partition => %s)",
                (name, f"v{i}", p)).fetchall()
            assert chosen == p
        # not before the commit
        assert queue_depth(producer) == 0
        conn.commit()
    values = wait_delivered(cluster, [1], leader, name, p, 20)
    assert values == [f"v{i}" for i in range(20)]
    # the producing node holds nothing of that partition itself
    assert producer.sql("SELECT count(*) FROM streamlog.forward_queue") == [(0,)]


def test_rollback_and_savepoint_rollback_deliver_nothing(cluster, unique_name):
    name = unique_name("fwdrb")
    leaders = spread_topic(cluster, name)
    p, leader = led_elsewhere(cluster, leaders, 2)
    producer = cluster.node(2)
    produce = "SELECT streamlog.produce(%s, NULL, %s, partition => %s)"
    with producer.connect(autocommit=False) as conn:
        conn.execute(produce, (name, "rolled back", p))
        conn.rollback()
        conn.execute(produce, (name, "b", p))
        conn.execute("SAVEPOINT s")
        conn.execute(produce, (name, "in the savepoint", p))
        conn.execute("ROLLBACK TO SAVEPOINT s")
        conn.execute(produce, (name, "d", p))
        conn.commit()
        conn.execute(produce, (name, "e", p))
        conn.commit()
    # a transaction that fails at its commit queues nothing either
    with producer.connect(autocommit=False) as conn:
        conn.execute("CREATE TEMP TABLE t (x int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED)")
        conn.execute("INSERT INTO t VALUES (1), (1)")
        conn.execute(produce, (name, "failed commit", p))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.commit()
    assert wait_delivered(cluster, [2], leader, name, p, 2) == ["b", "d", "e"]


def test_a_commit_that_fails_after_queueing_leaves_a_gap_that_is_passed(cluster, unique_name):
    # a serialization failure is raised after the records were queued (and
    # their queue positions taken): nothing of it arrives, and what
    # commits after it is not held up by the position it left unused
    name = unique_name("fwdssi")
    leaders = spread_topic(cluster, name)
    p, leader = led_elsewhere(cluster, leaders, 1)
    producer = cluster.node(1)
    table = name.replace(".", "_").replace("-", "_")
    producer.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
    producer.sql(f"INSERT INTO {table} VALUES (1, 0), (2, 0)")
    produce = "SELECT streamlog.produce(%s, NULL, %s, partition => %s)"
    with producer.connect(autocommit=False) as a, producer.connect(autocommit=False) as b:
        a.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        b.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        a.execute(f"SELECT sum(v) FROM {table} WHERE id = 1")
        b.execute(f"SELECT sum(v) FROM {table} WHERE id = 2")
        a.execute(f"UPDATE {table} SET v = 1 WHERE id = 2")
        b.execute(f"UPDATE {table} SET v = 1 WHERE id = 1")
        a.execute(produce, (name, "a", p))
        b.execute(produce, (name, "b, which fails at commit", p))
        a.commit()
        with pytest.raises(psycopg.errors.SerializationFailure):
            b.commit()
    producer.sql(produce, (name, "after", p))
    assert wait_delivered(cluster, [1], leader, name, p, 2) == ["a", "after"]
    producer.sql(f"DROP TABLE {table}")


def test_keyed_produce_without_a_partition_goes_where_the_key_hashes(cluster, unique_name):
    name = unique_name("fwdkeys")
    spread_topic(cluster, name)
    producer = cluster.node(3)
    expected = {}
    with producer.connect(autocommit=False) as conn:
        for i in range(30):
            key = f"key-{i}"
            (p,), = conn.execute("SELECT streamlog.produce(%s, %s::text, %s)",
                                 (name, key, f"v{i}")).fetchall()
            expected.setdefault(p, []).append(f"v{i}")
        conn.commit()
    for p, values in expected.items():
        leader = cluster.leaders(name)[p]
        assert wait_delivered(cluster, [3], leader, name, p, len(values)) == values


def test_queue_waits_for_a_dead_leader_across_kill9_of_the_producing_node(cluster, unique_name):
    name = unique_name("fwdcrash")
    leaders = spread_topic(cluster, name)
    controller = cluster.controller()
    # neither the leader nor the producer is the controller: the cluster
    # keeps its quorum and its controller through both kills
    others = [n for n in cluster.node_ids if n != controller]
    p = next((p for p, leader in leaders.items() if leader == others[0]), None)
    if p is None:
        others.reverse()
        p = next(p for p, leader in leaders.items() if leader == others[0])
    leader, producer_id = others
    producer = cluster.node(producer_id)
    producer.sql("SELECT streamlog.produce(%s, NULL, 'before', partition => %s)", (name, p))
    wait_delivered(cluster, [producer_id], leader, name, p, 1)

    cluster.kill9(leader)
    try:
        with producer.connect(autocommit=False) as conn:
            for i in range(10):
                conn.execute("SELECT streamlog.produce(%s, NULL, %s, partition => %s)",
                             (name, f"queued-{i}", p))
            conn.commit()
        # the queue shows them, by partition
        rows = producer.sql("SELECT topic, partition, batches, records, oldest_age IS NOT NULL "
                            "FROM streamlog.forward_queue_status")
        assert rows == [(name, p, 1, 10, True)], rows
        # the producing node dies with them undelivered
        cluster.kill9(producer_id)
    finally:
        cluster.start([leader])
    cluster.start([producer_id])
    values = wait_delivered(cluster, [producer_id], leader, name, p, 11)
    assert values == ["before"] + [f"queued-{i}" for i in range(10)]


def test_a_queue_copied_to_another_node_id_is_left_to_its_node(cluster, unique_name):
    # the data directory of a node started as another node (a copy joining
    # as a new member) holds the first node's queue and producer id: it
    # must send neither (the records are the first node's to deliver, and
    # the producer id's sequences are its own), so it drops its queue and
    # takes a producer id of its own.  Simulated by renaming the node the
    # producer id was taken as.
    name = unique_name("fwdclone")
    leaders = spread_topic(cluster, name)
    controller = cluster.controller()
    p, leader = next(((p, leader) for p, leader in sorted(leaders.items())
                      if leader != controller), (None, None))
    assert p is not None, leaders
    producer_id = next(n for n in cluster.node_ids if n != leader)
    producer = cluster.node(producer_id)
    producer.sql("SELECT streamlog.produce(%s, NULL, 'delivered', partition => %s)", (name, p))
    wait_delivered(cluster, [producer_id], leader, name, p, 1)
    (old_id, node_id), = producer.sql(
        "SELECT producer_id, node_id FROM streamlog.forward_producer")
    assert node_id == producer_id
    cluster.kill9(leader)
    try:
        producer.sql("SELECT streamlog.produce(%s, NULL, 'left', partition => %s)", (name, p))
        assert queue_depth(producer) == 1
        producer.sql("UPDATE streamlog.forward_producer SET node_id = 99")
        cluster.wait_for(lambda: queue_depth(producer) == 0, DEADLINE, "the copied queue dropped")
    finally:
        cluster.start([leader])
    producer.sql("SELECT streamlog.produce(%s, NULL, 'new', partition => %s)", (name, p))
    assert wait_delivered(cluster, [producer_id], leader, name, p, 2) == ["delivered", "new"]
    (new_id, node_id), = producer.sql(
        "SELECT producer_id, node_id FROM streamlog.forward_producer")
    assert node_id == producer_id and new_id != old_id


def produce_each(node, name, p, values, errors):
    """One transaction per value, in order, on a connection of its own"""
    try:
        with node.connect() as conn:
            for v in values:
                conn.execute("SELECT streamlog.produce(%s, NULL, %s, partition => %s)",
                             (name, v, p))
    except Exception as e:  # reported by the test
        errors.append(e)


def test_kill9_of_the_leader_mid_delivery_loses_and_repeats_nothing(cluster, unique_name):
    name = unique_name("fwdleader")
    leaders = spread_topic(cluster, name)
    controller = cluster.controller()
    p, leader = next(((p, leader) for p, leader in sorted(leaders.items())
                      if leader != controller), (None, None))
    assert p is not None, leaders
    producer_id = next(n for n in cluster.node_ids if n not in (leader,))
    producer = cluster.node(producer_id)
    values = [f"r{i}" for i in range(300)]
    errors = []
    thread = threading.Thread(target=produce_each, args=(producer, name, p, values, errors))
    thread.start()
    # once some went through, the leader dies while more are on their way
    cluster.wait_for(lambda: len(values_on(cluster.node(leader), name, p)) >= 20, DEADLINE,
                     "the first records delivered")
    cluster.kill9(leader)
    thread.join()
    cluster.start([leader])
    assert errors == []
    assert wait_delivered(cluster, [producer_id], leader, name, p, len(values)) == values


def test_kill9_of_the_producing_node_mid_delivery_repeats_nothing(cluster, unique_name):
    name = unique_name("fwdprod")
    leaders = spread_topic(cluster, name)
    controller = cluster.controller()
    producer_id = next(n for n in cluster.node_ids if n != controller)
    p, leader = led_elsewhere(cluster, leaders, producer_id)
    producer = cluster.node(producer_id)
    with producer.connect(autocommit=False) as conn:
        for i in range(400):
            conn.execute("SELECT streamlog.produce(%s, NULL, %s, partition => %s)",
                         (name, f"x{i}", p))
            if i % 4 == 3:
                conn.commit()
    # the forwarder is at it: some delivered, some not yet
    cluster.wait_for(lambda: len(values_on(cluster.node(leader), name, p)) >= 4, DEADLINE,
                     "the first records delivered")
    cluster.kill9(producer_id)
    cluster.start([producer_id])
    assert wait_delivered(cluster, [producer_id], leader, name, p, 400) == \
        [f"x{i}" for i in range(400)]


def test_concurrent_producers_on_two_nodes_keep_each_ones_order(cluster, unique_name):
    name = unique_name("fwdmany")
    leaders = spread_topic(cluster, name)
    p = 0
    leader = leaders[p]
    producers = [n for n in cluster.node_ids if n != leader]
    threads = []
    errors = []
    per_thread = 40
    streams = {}
    for n in producers:
        for t in range(4):
            tag = f"n{n}t{t}"
            streams[tag] = [f"{tag}-{i}" for i in range(per_thread)]
            threads.append(threading.Thread(
                target=produce_each, args=(cluster.node(n), name, p, streams[tag], errors)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = sum(len(v) for v in streams.values())
    values = wait_delivered(cluster, producers, leader, name, p, total)
    assert len(values) == total
    assert len(set(values)) == total
    # each producer's records in the order it committed them
    for tag, sent in streams.items():
        assert [v for v in values if v.startswith(tag + "-")] == sent


def test_a_resent_batch_is_stored_once_and_a_gap_refused(cluster, unique_name):
    # the leader's side alone, called as the forwarder calls it: the same
    # stamped batch twice (an answer lost, a crash before the queue was
    # emptied) is stored once; a sequence that does not follow is refused
    # with SQLSTATE SL045 and stores nothing
    import kafka_helpers as kh

    name = unique_name("fwddup")
    leaders = spread_topic(cluster, name, 1)
    leader = cluster.node(leaders[0])
    (topic_id,), = leader.sql("SELECT topic_id FROM streamlog.topic WHERE name = %s", (name,))
    producer_id = 987654321
    first = kh.record_batch([(b"k", b"one", (), kh.now_ms()), (b"k", b"two", (), kh.now_ms())],
                            producer=(producer_id, 0, 0))
    second = kh.record_batch([(b"k", b"three", (), kh.now_ms())], producer=(producer_id, 0, 2))
    call = "SELECT streamlog._forward_append(9, %s, 0, VARIADIC %s::bytea[])"
    assert leader.sql(call, (topic_id, [first])) == [(1,)]
    assert leader.sql(call, (topic_id, [first])) == [(0,)]
    assert leader.sql(call, (topic_id, [first, second])) == [(1,)]
    gap = kh.record_batch([(b"k", b"gap", (), kh.now_ms())], producer=(producer_id, 0, 7))
    with pytest.raises(psycopg.Error) as err:
        leader.sql(call, (topic_id, [gap]))
    assert err.value.sqlstate == "SL045"
    assert values_on(leader, name, 0) == ["one", "two", "three"]
    # acks=all for forwarded batches: the offset after a stored batch once
    # the high watermark passed it (at once here: one replica); a batch
    # the leader does not remember is refused, and sent again
    acked = "SELECT streamlog._forward_acked(9, %s, 0, %s, 0::int2, %s, %s, 5000)"
    assert leader.sql(acked, (topic_id, producer_id, 2, 1)) == [(3,)]
    assert leader.sql(acked, (topic_id, producer_id, 0, 2)) == [(2,)]
    with pytest.raises(psycopg.Error) as err:
        leader.sql(acked, (topic_id, producer_id, 3, 1))
    assert err.value.sqlstate == "SL045"
    # a resend of a long run: batches older than the few the leader
    # remembers per producer are duplicates too, not a gap
    more = [kh.record_batch([(b"k", f"m{s}".encode(), (), kh.now_ms())],
                            producer=(producer_id, 0, s)) for s in range(3, 11)]
    assert leader.sql(call, (topic_id, more)) == [(8,)]
    assert leader.sql(call, (topic_id, [first, second] + more)) == [(0,)]
    assert len(values_on(leader, name, 0)) == 11
    # and waited for as the newest batch is
    assert leader.sql(acked, (topic_id, producer_id, 2, 1)) == [(11,)]


def test_hostile_or_misdirected_batches_are_refused_not_stored(cluster, unique_name):
    import kafka_helpers as kh

    name = unique_name("fwdbad")
    leaders = spread_topic(cluster, name, 1)
    leader = cluster.node(leaders[0])
    other = cluster.node(next(n for n in cluster.node_ids if n != leaders[0]))
    (topic_id,), = leader.sql("SELECT topic_id FROM streamlog.topic WHERE name = %s", (name,))
    good = kh.record_batch([(b"k", b"v", (), kh.now_ms())], producer=(4242, 0, 0))
    call = "SELECT streamlog._forward_append(9, %s, %s, VARIADIC %s::bytea[])"
    cases = [
        ((topic_id, 0, [b"\x00garbage"]), "SL002"),
        ((topic_id, 0, [kh.record_batch([(b"k", b"v", (), kh.now_ms())],
                                        producer=(4242, 0, 0), corrupt_crc=True)]), "SL002"),
        # not an idempotent producer's batch
        ((topic_id, 0, [kh.record_batch([(b"k", b"v", (), kh.now_ms())])]), "SL002"),
        ((topic_id, 0, [good + b"trailing"]), "SL002"),
        ((topic_id, 5, [good]), "SL003"),
        ((topic_id + 100000, 0, [good]), "SL003"),
    ]
    for args, sqlstate in cases:
        with pytest.raises(psycopg.Error) as err:
            leader.sql(call, args)
        assert err.value.sqlstate == sqlstate, (args[:2], err.value)
    # a node that does not lead the partition refuses it (the forwarder
    # then asks the metadata again)
    with pytest.raises(psycopg.Error) as err:
        other.sql(call, (topic_id, 0, [good]))
    assert err.value.sqlstate == "SL006"
    assert values_on(leader, name, 0) == []
    # only superusers and streamlog_admin may call it
    role = unique_name("fwdrole").replace(".", "_").replace("-", "_")
    leader.sql(f"CREATE ROLE {role} LOGIN")
    try:
        with leader.connect() as conn:
            conn.execute(f"SET ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(call, (topic_id, 0, [good]))
    finally:
        leader.sql(f"DROP ROLE {role}")
    assert values_on(leader, name, 0) == []
