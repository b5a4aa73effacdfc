"""SQL consume() and read() on a node that holds no copy of a partition
(README, "SQL consume() on any node"): such a partition is read through
its leader, below the leader's high watermark, so that one node can
consume a whole topic of replication factor 1 whose partitions are spread
over the cluster, exactly once with the caller's transaction.

Three real nodes; the topic has replication factor 1 and six partitions,
so every node leads some and holds no copy of the others."""

import psycopg
import pytest

from test_cluster_groups import coordinator_of, ensure_offsets_topic
from test_cluster_sql_consume import CONF, consume, produce_all

PARTITIONS = 6
PER_PARTITION = 8


@pytest.fixture
def cluster(make_cluster):
    return make_cluster(3, conf=CONF)


def spread_topic(cluster, unique_name):
    """An RF=1 topic led by every node, with its records produced"""
    topic = unique_name("rr")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, %s, "
                        "'{\"min.insync.replicas\": \"1\"}', 1)", (topic, PARTITIONS))
    cluster.wait_topic_everywhere(topic)
    leaders = cluster.leaders(topic)
    assert set(leaders.values()) == set(cluster.node_ids), leaders
    values = produce_all(cluster, topic, PARTITIONS, PER_PARTITION)
    return topic, leaders, values


def topic_with_an_open_transaction(cluster, unique_name):
    """A one-partition topic on one node: offsets 0..2 committed, 3..4 an
    open transaction of producer 9001, 5..6 above its LSO; (topic, its
    leader's id, a node without a copy)"""
    from test_txn_log import append
    topic = unique_name("rrt")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 1, "
                        "'{\"min.insync.replicas\": \"1\"}', 1)", (topic,))
    cluster.wait_topic_everywhere(topic)
    leader = cluster.leaders(topic)[0]
    reader = cluster.node(next(i for i in cluster.node_ids if i != leader))
    produce_all(cluster, topic, 1, 3)
    with cluster.node(leader).connect(autocommit=True) as c:
        append(c, topic, 0, 9001, 0, 0, ["t1", "t2"])
    produce_all(cluster, topic, 1, 2)
    return topic, leader, reader


def test_consume_reads_every_partition_exactly_once_across_rollbacks(cluster, unique_name):
    group = unique_name("rrg")
    ensure_offsets_topic(cluster, group)
    topic, leaders, values = spread_topic(cluster, unique_name)
    node = cluster.node(1)
    got = []
    with node.connect(autocommit=False) as c:
        for round_ in range(100):
            rows = consume(c, group, topic, 5)
            if not rows:
                c.commit()
                break
            if round_ % 3 == 1:
                # the same records come back after a rollback
                c.rollback()
                again = consume(c, group, topic, 5)
                assert sorted(again) == sorted(rows)
                rows = again
            c.commit()
            got.extend(rows)
    assert sorted(bytes(v) for _, _, v in got) == sorted(values)
    assert len({(p, o) for p, o, _ in got}) == len(values)
    # nothing is left for anyone, on any node
    for n in cluster.node_ids:
        with cluster.node(n).connect() as c:
            with c.transaction():
                assert consume(c, group, topic, 100) == []


def test_read_on_a_node_without_a_copy_is_the_leaders_read(cluster, unique_name):
    topic, leaders, values = spread_topic(cluster, unique_name)
    q = ("SELECT partition, \"offset\", ts, key, value, headers "
         "FROM streamlog.read(%s, %s, %s, %s, %s)")
    for p, leader in leaders.items():
        elsewhere = next(i for i in cluster.node_ids if i != leader)
        for isolation in ("read_committed", "read_uncommitted"):
            for frm, n in ((0, 1000), (3, 2), (PER_PARTITION, 10)):
                there = cluster.node(leader).sql(q, (topic, p, frm, n, isolation))
                here = cluster.node(elsewhere).sql(q, (topic, p, frm, n, isolation))
                assert here == there
                assert len(here) == min(n, PER_PARTITION - frm)
    # an offset beyond the leader's log end is refused as on the leader
    p, leader = next(iter(leaders.items()))
    elsewhere = next(i for i in cluster.node_ids if i != leader)
    with pytest.raises(psycopg.Error) as e:
        cluster.node(elsewhere).sql(q, (topic, p, PER_PARTITION + 5, 10, "read_committed"))
    assert f"node {leader}" in str(e.value)


def test_an_unreachable_leader_is_a_retryable_error_naming_it(cluster, unique_name):
    group = unique_name("rrg")
    ensure_offsets_topic(cluster, group)
    topic, leaders, values = spread_topic(cluster, unique_name)
    gone = 3
    reader = next(i for i in cluster.node_ids if i != gone)
    p = next(q for q, leader in leaders.items() if leader == gone)
    cluster.stop(gone, mode="immediate")
    with cluster.node(reader).connect() as c:
        with pytest.raises(psycopg.Error) as e:
            c.execute("SELECT * FROM streamlog.read(%s, %s, 0, 10)", (topic, p)).fetchall()
    # connection failure (08xxx) before the node is declared gone, offline after
    assert e.value.sqlstate[:2] in ("08", "55"), e.value.sqlstate
    assert f"node {gone}" in str(e.value) or "offline" in str(e.value)
    # and the reader's server is still up
    assert cluster.node(reader).sql("SELECT 1") == [(1,)]


def test_read_committed_through_the_leader_stops_at_its_lso_and_skips_aborts(cluster,
                                                                            unique_name):
    """An open Kafka transaction on the leader holds read_committed readers
    on another node at the leader's last stable offset; once aborted, its
    records are skipped there and consume() moves past them."""
    from test_txn_log import marker
    group = unique_name("rrg")
    ensure_offsets_topic(cluster, group)
    topic, leader, reader = topic_with_an_open_transaction(cluster, unique_name)
    q = "SELECT \"offset\" FROM streamlog.read(%s, 0, 0, 100, %s)"
    assert [o for o, in reader.sql(q, (topic, "read_committed"))] == [0, 1, 2]
    assert [o for o, in reader.sql(q, (topic, "read_uncommitted"))] == [0, 1, 2, 3, 4, 5, 6]
    with reader.connect() as c:
        with c.transaction():
            assert [o for _, o, _ in consume(c, group, topic, 100)] == [0, 1, 2]
        with c.transaction():
            assert consume(c, group, topic, 100) == []
    with cluster.node(leader).connect(autocommit=True) as c:
        marker(c, topic, 0, 9001, 0, False)                 # abort: marker at 7
    assert [o for o, in reader.sql(q, (topic, "read_committed"))] == [0, 1, 2, 5, 6]
    with reader.connect() as c:
        with c.transaction():
            assert [o for _, o, _ in consume(c, group, topic, 100)] == [5, 6]
        with c.transaction():
            assert consume(c, group, topic, 100) == []


def test_never_above_the_leaders_high_watermark(make_cluster, unique_name):
    """A batch on the leader that its follower has not taken yet (the
    follower is paused; the ISR cannot shrink within the test) is above
    the leader's high watermark: a node without a copy does not return it,
    neither read() nor consume(), until the follower caught up."""
    conf = dict(CONF)
    conf["streamlog.broker_session_timeout_ms"] = 120000
    conf["streamlog.replica_lag_time_max_ms"] = 120000
    cluster = make_cluster(3, conf=conf)
    group = unique_name("rrg")
    ensure_offsets_topic(cluster, group)
    topic = unique_name("rrh")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 1, "
                        "'{\"min.insync.replicas\": \"1\"}', 2)", (topic,))
    state = cluster.wait_topic_everywhere(topic, check=lambda s: len(s[4][0][4]) == 2)
    leader, _, _, replicas, _ = state[4][0]
    follower = next(i for i in replicas if i != leader)
    reader = cluster.node(next(i for i in cluster.node_ids if i not in replicas))
    # a group the paused follower does not coordinate
    group = next(g for g in (f"{group}-{k}" for k in range(100))
                 if coordinator_of(cluster, g) != follower)
    produce_all(cluster, topic, 1, 3)                       # 0..2, replicated
    q = "SELECT \"offset\" FROM streamlog.read(%s, 0, 0, 100, 'read_uncommitted')"
    assert [o for o, in reader.sql(q, (topic,))] == [0, 1, 2]
    cluster.pause(follower)
    try:
        with cluster.node(leader).connect(autocommit=True) as c:
            c.execute("SET statement_timeout = '60s'")
            for i in range(2):
                c.execute("SELECT streamlog.produce(%s, NULL::text, %s, partition => 0)",
                          (topic, f"above-{i}"))
            hw, = c.execute("SELECT high_watermark FROM streamlog.partitions "
                            "WHERE topic = %s AND partition = 0", (topic,)).fetchone()
        assert hw == 3
        assert [o for o, in reader.sql(q, (topic,))] == [0, 1, 2]
        with reader.connect() as c:
            with c.transaction():
                assert [o for _, o, _ in consume(c, group, topic, 100)] == [0, 1, 2]
            with c.transaction():
                assert consume(c, group, topic, 100) == []
    finally:
        cluster.resume(follower)
    cluster.wait_for(lambda: len(reader.sql(q, (topic,))) == 5, 60,
                     "the batch above the high watermark readable once replicated")
    with reader.connect() as c:
        with c.transaction():
            assert [o for _, o, _ in consume(c, group, topic, 100)] == [3, 4]


def produce_timed(cluster, topic, partitions, per_partition, base_ms):
    """per_partition records on each partition, record i stamped
    base_ms + i seconds (so that time bounds fall between records)"""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers(), "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    errors = []
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, value=f"{topic}-{p}-{i}".encode(), partition=p,
                             timestamp=base_ms + i * 1000,
                             on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(60) == 0
    assert errors == [None] * (partitions * per_partition), errors


def test_history_and_offset_for_time_on_a_node_without_a_copy_are_the_leaders(
        cluster, unique_name):
    topic = unique_name("rrt")
    # records stamped in 2023: kept whatever their age (the default
    # retention.ms would let the cleaner delete them midway)
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, %s, "
                        "'{\"min.insync.replicas\": \"1\", \"retention.ms\": \"-1\"}', 1)",
                        (topic, PARTITIONS))
    cluster.wait_topic_everywhere(topic)
    leaders = cluster.leaders(topic)
    base_ms = 1700000000000
    produce_timed(cluster, topic, PARTITIONS, PER_PARTITION, base_ms)
    h = ("SELECT partition, \"offset\", ts, key, value, headers FROM streamlog.history("
         "%s, partitions => %s, from_offset => %s, to_offset => %s, "
         "from_ts => to_timestamp(%s / 1000.0), to_ts => to_timestamp(%s / 1000.0), "
         "isolation => %s)")
    t = "SELECT streamlog.offset_for_time(%s, %s, to_timestamp(%s / 1000.0))"
    # (from_offset, to_offset, from_ts, to_ts), None for no bound
    cases = [(None, None, None, None),
             (2, 5, None, None),
             (None, None, base_ms + 2500, None),
             (None, None, None, base_ms + 4000),
             (None, None, base_ms + 1000, base_ms + 5999),
             (3, None, base_ms + 1500, base_ms + 6000),
             (None, None, base_ms + 99000, None)]
    for p, leader in leaders.items():
        elsewhere = next(i for i in cluster.node_ids if i != leader)
        for isolation in ("read_committed", "read_uncommitted"):
            for case in cases:
                args = (topic, [p]) + case + (isolation,)
                there = cluster.node(leader).sql(h, args)
                here = cluster.node(elsewhere).sql(h, args)
                assert here == there, (p, case)
        for ms in (base_ms - 5000, base_ms, base_ms + 2500, base_ms + 7000, base_ms + 99000):
            there = cluster.node(leader).sql(t, (topic, p, ms))
            here = cluster.node(elsewhere).sql(t, (topic, p, ms))
            assert here == there, (p, ms)
    # the answers themselves: offset i was stamped base + i s
    p, leader = next(iter(leaders.items()))
    elsewhere = cluster.node(next(i for i in cluster.node_ids if i != leader))
    assert elsewhere.sql(t, (topic, p, base_ms + 2500)) == [(3,)]
    assert elsewhere.sql(t, (topic, p, base_ms + 99000)) == [(None,)]
    rows = elsewhere.sql(h, (topic, [p], None, None, base_ms + 1000, base_ms + 5999,
                             "read_committed"))
    assert [r[1] for r in rows] == [1, 2, 3, 4, 5]
    # the whole topic on one node: every partition, each through its leader
    every = elsewhere.sql("SELECT partition, \"offset\" FROM streamlog.history(%s) "
                          "ORDER BY 1, 2", (topic,))
    assert every == [(q, o) for q in range(PARTITIONS) for o in range(PER_PARTITION)]


def test_history_through_the_leader_stops_at_its_lso(cluster, unique_name):
    """An open Kafka transaction on the leader: history() under
    read_committed on a node without a copy stops at the leader's LSO, and
    skips the aborted records once aborted."""
    from test_txn_log import marker
    topic, leader, reader = topic_with_an_open_transaction(cluster, unique_name)
    q = "SELECT \"offset\" FROM streamlog.history(%s, isolation => %s)"
    assert [o for o, in reader.sql(q, (topic, "read_committed"))] == [0, 1, 2]
    assert [o for o, in reader.sql(q, (topic, "read_uncommitted"))] == [0, 1, 2, 3, 4, 5, 6]
    with cluster.node(leader).connect(autocommit=True) as c:
        marker(c, topic, 0, 9001, 0, False)                 # abort: marker at 7
    assert [o for o, in reader.sql(q, (topic, "read_committed"))] == [0, 1, 2, 5, 6]


def test_history_and_offset_for_time_with_a_paused_leader_fail_naming_it(cluster,
                                                                          unique_name):
    topic, leaders, values = spread_topic(cluster, unique_name)
    gone = 3
    reader = cluster.node(next(i for i in cluster.node_ids if i != gone))
    p = next(q for q, leader in leaders.items() if leader == gone)
    with reader.connect(autocommit=True) as c:
        # this session's link to the leader is kept: after the pause the
        # first call waits on a query, the second (the link dropped) on
        # connecting
        assert len(c.execute("SELECT * FROM streamlog.history(%s, %s)",
                             (topic, [p])).fetchall()) == PER_PARTITION
        cluster.pause(gone)
        try:
            for sql, args in (("SELECT * FROM streamlog.history(%s, %s)", (topic, [p])),
                              ("SELECT streamlog.offset_for_time(%s, %s, now())",
                               (topic, p))):
                with pytest.raises(psycopg.Error) as e:
                    c.execute(sql, args).fetchall()
                # connection failure (08006) naming the leader, or offline
                # once the controller fenced it
                assert e.value.sqlstate[:2] in ("08", "55"), (sql, e.value.sqlstate)
                assert f"node {gone}" in str(e.value) or "offline" in str(e.value)
        finally:
            cluster.resume(gone)
        # the reader's session and server are still up
        assert c.execute("SELECT 1").fetchall() == [(1,)]


def test_history_through_the_leader_across_its_ranges_of_offsets(cluster, unique_name):
    """More records than one call to the leader's history() spans (10,000
    offsets): the ranges join without a gap or a duplicate, with offset and
    time bounds that cut through them."""
    topic = unique_name("rrt")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 1, "
                        "'{\"min.insync.replicas\": \"1\"}', 1)", (topic,))
    cluster.wait_topic_everywhere(topic)
    leader = cluster.node(cluster.leaders(topic)[0])
    reader = cluster.node(next(i for i in cluster.node_ids if i != leader.node_id))
    total = 25000
    # record g stamped 2024-01-01 + g ms
    leader.sql("SELECT streamlog.produce(%s, NULL::text, 'v' || g, partition => 0, "
               "ts => timestamptz '2024-01-01 00:00:00+00' + g * interval '1 millisecond') "
               "FROM generate_series(0, %s) g", (topic, total - 1))
    h = ("SELECT \"offset\", ts, value FROM streamlog.history(%s, from_offset => %s, "
         "to_offset => %s, from_ts => timestamptz '2024-01-01 00:00:00+00' "
         "+ %s * interval '1 millisecond')")
    for args in ((topic, None, None, None), (topic, 9999, 20001, None),
                 (topic, 5, None, 10000), (topic, None, 19999, 12345)):
        here = reader.sql(h, args)
        assert here == leader.sql(h, args), args[1:]
    assert [r[0] for r in reader.sql(h, (topic, None, None, None))] == list(range(total))
    assert [r[0] for r in reader.sql(h, (topic, 9999, 20001, None))] == \
        list(range(9999, 20002))
    assert [r[0] for r in reader.sql(h, (topic, None, 19999, 12345))] == \
        list(range(12345, 20000))
    assert reader.sql("SELECT streamlog.offset_for_time(%s, 0, timestamptz "
                      "'2024-01-01 00:00:00+00' + interval '17.5 seconds')", (topic,)) \
        == [(17500,)]


def test_history_and_offset_for_time_through_the_leader_check_the_callers_privilege_here(
        cluster, unique_name):
    """The gate is the reading node's own privileges (ACLs are per node):
    without READ (history) or DESCRIBE (offset_for_time) there, 42501
    without asking the leader (it is paused meanwhile); granted there only,
    the leader answers."""
    from test_authorization import connect_as, grant, make_role, sqlstate_of
    topic, leaders, values = spread_topic(cluster, unique_name)
    p, leader = next(iter(leaders.items()))
    reader = cluster.node(next(i for i in cluster.node_ids if i != leader))
    role = make_role(reader)
    h = ("SELECT \"offset\" FROM streamlog.history(%s, %s)", (topic, [p]))
    t = ("SELECT streamlog.offset_for_time(%s, %s, now() - interval '1 hour')", (topic, p))
    # the leader paused: refused here, not 08006 from asking it
    cluster.pause(leader)
    try:
        with connect_as(reader, role) as c:
            assert sqlstate_of(c, *h) == "42501"
            assert sqlstate_of(c, *t) == "42501"
    finally:
        cluster.resume(leader)
    grant(reader, "read", "topic", topic, role)
    grant(reader, "describe", "topic", topic, role)
    with connect_as(reader, role) as c:
        assert [o for o, in c.execute(*h).fetchall()] == list(range(PER_PARTITION))
        assert c.execute(*t).fetchall() == [(0,)]
