"""The leader's side of replicated partitions (CLUSTER.md section 4, P7):
followers report what they hold with streamlog._replica_progress() on the
leader, the high watermark is the smallest log end over the ISR, acks=all
produces wait for it, consumers (Kafka and SQL) never read above it, and
too small an ISR refuses acks=all produces with NOT_ENOUGH_REPLICAS.

Three real nodes; the followers' reports are made by hand from SQL, as the
apply workers make them, so that each step is the test's own.  The ISR is
kept still (a long streamlog.replica_lag_time_max_ms): no follower here
keeps up on its own."""

import select

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

import kafka_helpers as kh
from cluster import shared_cluster

DEADLINE = 90
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
NOT_ENOUGH_REPLICAS = 19
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 3, name="acks",
                              conf={"streamlog.replica_lag_time_max_ms": "3600000",
                                    # the test reports for the followers
                                    "streamlog.replica_apply": "off"})


def replicated_topic(cluster, name, min_isr=2, replicas=(1, 2, 3)):
    """A one-partition topic on replicas (the first leads), once every node
    has it: (topic_id, leader_epoch)"""
    admin = AdminClient({"bootstrap.servers": cluster.node(1).kafka_bootstrap})
    futures = admin.create_topics([NewTopic(name, 1, replica_assignment=[list(replicas)],
                                            config={"min.insync.replicas": str(min_isr)})],
                                  operation_timeout=30)
    futures[name].result(timeout=60)
    topic_id, _uuid, _n, _config, parts = cluster.wait_topic_everywhere(
        name, deadline=DEADLINE, check=lambda s: s[4].get(0, (None,))[0] == replicas[0])
    return topic_id, parts[0][1]


def report(node, follower, topic_id, epoch, log_end, partition=0):
    """(error, high_watermark) of a follower's report to node"""
    return tuple(node.sql(
        "SELECT error, high_watermark FROM streamlog._replica_progress("
        "%s, ARRAY[%s], ARRAY[%s], ARRAY[%s], ARRAY[%s]::bigint[])",
        (follower, topic_id, partition, epoch, log_end))[0])


def replicas(node, name):
    """{node_id: (log_end_offset, in_isr, in_maximal_isr)} of streamlog.replicas"""
    return {r[0]: r[1:] for r in node.sql(
        "SELECT node_id, log_end_offset, in_isr, in_maximal_isr FROM streamlog.replicas "
        "WHERE topic = %s AND partition = 0", (name,))}


def leader_log_end(node, name):
    return replicas(node, name)[1][0]


def records(n, tag):
    now = kh.now_ms()
    return kh.record_batch([(b"k", f"{tag}-{i}".encode(), [], now) for i in range(n)])


def kafka_read(node, name, offset=0):
    """(error, high_watermark, number of records) of a Fetch v4 from offset"""
    with kh.RawClient(node.kafka_bootstrap) as c:
        err, hw, data = kh.parse_fetch_v4(c.call(kh.fetch_request, name, 0, offset))[(name, 0)]
    count = 0
    while len(data) >= 61:
        length = int.from_bytes(data[8:12], "big")
        count += int.from_bytes(data[57:61], "big")
        data = data[12 + length:]
    return err, hw, count


def latest_offset(node, name):
    with kh.RawClient(node.kafka_bootstrap) as c:
        return kh.parse_list_offsets_v1(c.call(kh.list_offsets_request, name, 0, -1))[(name, 0)][2]


def sql_count(node, name):
    return node.sql("SELECT count(*) FROM streamlog.read(%s, 0)", (name,))[0][0]


def answered(client):
    """Has the broker sent something on client's connection?"""
    return bool(select.select([client.sock], [], [], 0)[0])


def test_acks_all_waits_for_every_isr_member(cluster, unique_name):
    name = unique_name("acksall")
    topic_id, epoch = replicated_topic(cluster, name)
    leader = cluster.node(1)
    with kh.RawClient(leader.kafka_bootstrap, timeout=DEADLINE) as c:
        cid = c.next_correlation_id()
        c.send(kh.produce_request(cid, name, [(0, records(3, "a"))], acks=-1,
                                  timeout_ms=DEADLINE * 1000))
        # committed on the leader, but no follower has it: nobody sees it
        cluster.wait_for(lambda: leader_log_end(leader, name) == 3, DEADLINE,
                         "the produce committed on the leader")
        assert kh.high_watermark(leader, name) == 0
        assert sql_count(leader, name) == 0
        assert kafka_read(leader, name) == (0, 0, 0)
        assert latest_offset(leader, name) == 0
        # one follower of two: the high watermark waits for the other
        assert report(leader, 2, topic_id, epoch, 3) == (0, 0)
        assert kh.high_watermark(leader, name) == 0
        assert not answered(c), "acks=all answered before every ISR member held the records"
        # the last one: the high watermark passes the batch, the answer comes
        assert report(leader, 3, topic_id, epoch, 3) == (0, 3)
        got, body = c.recv_frame()
        assert got == cid
        assert kh.parse_produce_v3(body)[(name, 0)] == (0, 0)
    assert kh.high_watermark(leader, name) == 3
    assert sql_count(leader, name) == 3
    assert kafka_read(leader, name) == (0, 3, 3)
    assert latest_offset(leader, name) == 3
    assert replicas(leader, name) == {1: (3, True, True), 2: (3, True, True),
                                      3: (3, True, True)}

    # acks=1 answers after the leader's commit, without the followers
    with kh.RawClient(leader.kafka_bootstrap) as c:
        assert kh.parse_produce_v3(c.call(kh.produce_request, name, [(0, records(2, "b"))],
                                          acks=1))[(name, 0)] == (0, 3)
    assert leader_log_end(leader, name) == 5
    # ... and consumers still see only what every ISR member holds
    assert kh.high_watermark(leader, name) == 3
    assert sql_count(leader, name) == 3
    assert kafka_read(leader, name) == (0, 3, 3)
    assert kafka_read(leader, name, 3) == (0, 3, 0)
    assert latest_offset(leader, name) == 3
    # a follower behind the leader's end holds the high watermark at its own
    assert report(leader, 2, topic_id, epoch, 5) == (0, 3)
    assert report(leader, 3, topic_id, epoch, 4) == (0, 4)
    assert sql_count(leader, name) == 4
    assert report(leader, 3, topic_id, epoch, 5) == (0, 5)
    assert kafka_read(leader, name) == (0, 5, 5)


def test_not_enough_replicas_writes_nothing(cluster, unique_name):
    name = unique_name("minisr")
    replicated_topic(cluster, name, min_isr=4)
    leader = cluster.node(1)
    with kh.RawClient(leader.kafka_bootstrap) as c:
        for _ in range(2):
            assert kh.parse_produce_v8(c.call(kh.produce_v8_request, name, 0, records(1, "x"))
                                       )[(name, 0)][:2] == (NOT_ENOUGH_REPLICAS, -1)
        assert leader_log_end(leader, name) == 0
        # acks=1 does not ask for replicas
        assert kh.parse_produce_v3(c.call(kh.produce_request, name, [(0, records(1, "y"))],
                                          acks=1))[(name, 0)] == (0, 0)
    assert leader_log_end(leader, name) == 1


def test_reports_of_other_epochs_change_nothing(cluster, unique_name):
    name = unique_name("epochs")
    topic_id, epoch = replicated_topic(cluster, name)
    leader = cluster.node(1)
    with kh.RawClient(leader.kafka_bootstrap) as c:
        assert kh.parse_produce_v3(c.call(kh.produce_request, name, [(0, records(2, "e"))],
                                          acks=1))[(name, 0)] == (0, 0)
    before = replicas(leader, name)
    assert before[2] == (None, True, True) and before[3] == (None, True, True)
    assert report(leader, 2, topic_id, epoch - 1, 2) == (FENCED_LEADER_EPOCH, 0)
    assert report(leader, 3, topic_id, epoch + 1, 2) == (UNKNOWN_LEADER_EPOCH, 0)
    # a node that is no replica, and a follower reporting to a follower
    assert report(leader, 7, topic_id, epoch, 2) == (NOT_LEADER_OR_FOLLOWER, -1)
    assert report(cluster.node(2), 3, topic_id, epoch, 2) == (NOT_LEADER_OR_FOLLOWER, -1)
    assert replicas(leader, name) == before
    assert kh.high_watermark(leader, name) == 0
    assert sql_count(leader, name) == 0
    # nonsense is answered, never applied
    assert report(leader, 2, topic_id + 100000, epoch, 2)[0] == 3
    assert report(leader, 2, topic_id, epoch, -5)[0] == 42
    assert replicas(leader, name) == before


def test_timed_out_acks_all_retry_is_stored_once(cluster, unique_name):
    name = unique_name("timeout")
    topic_id, epoch = replicated_topic(cluster, name)
    leader = cluster.node(1)
    with kh.RawClient(leader.kafka_bootstrap, timeout=DEADLINE) as c:
        err, pid, pepoch = kh.parse_init_producer_id(c.call(kh.init_producer_id_request))
        assert err == 0
        now = kh.now_ms()
        batch = kh.record_batch([(b"k", f"v{i}".encode(), [], now) for i in range(2)],
                                producer=(pid, pepoch, 0))
        # the followers are silent: at the request's timeout, REQUEST_TIMED_OUT
        assert kh.parse_produce_v3(c.call(kh.produce_request, name, [(0, batch)],
                                          timeout_ms=500))[(name, 0)] == (REQUEST_TIMED_OUT, -1)
        assert leader_log_end(leader, name) == 2
        # the producer retries while they are still silent: it waits too
        cid = c.next_correlation_id()
        c.send(kh.produce_request(cid, name, [(0, batch)], timeout_ms=DEADLINE * 1000))
        assert report(leader, 2, topic_id, epoch, 2) == (0, 0)
        assert report(leader, 3, topic_id, epoch, 2) == (0, 2)
        got, body = c.recv_frame()
        assert got == cid
        # answered with the first attempt's offset, stored once
        assert kh.parse_produce_v3(body)[(name, 0)] == (0, 0)
    assert leader_log_end(leader, name) == 2
    assert sql_count(leader, name) == 2


def test_partitions_without_other_replicas_answer_at_once(cluster, unique_name):
    name = unique_name("single")
    replicated_topic(cluster, name, min_isr=1, replicas=(1,))
    leader = cluster.node(1)
    with kh.RawClient(leader.kafka_bootstrap) as c:
        assert kh.parse_produce_v3(c.call(kh.produce_request, name, [(0, records(2, "s"))],
                                          acks=-1))[(name, 0)] == (0, 0)
    assert kh.high_watermark(leader, name) == 2
    assert sql_count(leader, name) == 2
    assert replicas(leader, name) == {1: (2, True, True)}


def test_a_node_of_its_own_takes_no_reports(server, unique_name):
    """Standalone: the node is the only replica of everything, its high
    watermark is its log end, reports are answered NOT_LEADER_OR_FOLLOWER
    and change nothing, acks=all answers at once whatever
    min.insync.replicas says; only superusers report, with arrays of one
    length and no NULLs."""
    import psycopg

    name = unique_name("alone")
    server.sql("SELECT streamlog.create_topic(%s, 1, '{\"min.insync.replicas\": 2}')", (name,))
    (topic_id,), = server.sql("SELECT topic_id FROM streamlog.topic WHERE name = %s", (name,))
    with kh.RawClient(server.kafka_bootstrap) as c:
        assert kh.parse_produce_v3(c.call(kh.produce_request, name, [(0, records(2, "s"))],
                                          acks=-1))[(name, 0)] == (0, 0)
    assert report(server, 2, topic_id, 0, 2) == (NOT_LEADER_OR_FOLLOWER, -1)
    assert kh.high_watermark(server, name) == 2
    assert server.sql("SELECT node_id, is_leader, log_end_offset, lag, in_isr, in_maximal_isr "
                      "FROM streamlog.replicas WHERE topic = %s", (name,)) == [
        (1, True, 2, 0, True, True)]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="same length"):
        server.sql("SELECT * FROM streamlog._replica_progress(2, ARRAY[1, 2], ARRAY[0], "
                   "ARRAY[0], ARRAY[0]::bigint[])")
    with pytest.raises(psycopg.errors.NullValueNotAllowed, match="log_ends"):
        server.sql("SELECT * FROM streamlog._replica_progress(2, ARRAY[1], ARRAY[0], "
                   "ARRAY[0], ARRAY[NULL]::bigint[])")
    role = unique_name("nosuper").replace("-", "_")
    server.sql(f"CREATE ROLE {role} LOGIN")
    try:
        server.sql(f"GRANT EXECUTE ON FUNCTION streamlog._replica_progress(integer, integer[], "
                   f"integer[], integer[], bigint[]) TO {role}")
        with psycopg.connect(host=server.host, port=server.port, user=role, dbname="postgres",
                             autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="replica progress"):
                conn.execute("SELECT * FROM streamlog._replica_progress(2, ARRAY[%s], ARRAY[0], "
                             "ARRAY[0], ARRAY[2]::bigint[])", (topic_id,))
            # nor does it see topics it may not describe
            assert conn.execute("SELECT count(*) FROM streamlog.replica_states() "
                                "WHERE topic = %s", (name,)).fetchone() == (0,)
    finally:
        server.sql(f"DROP OWNED BY {role}")
        server.sql(f"DROP ROLE {role}")


def test_a_deposed_leader_acknowledges_nothing(cluster, unique_name):
    """P8: node 1 leads (node 2, the preferred leader, stopped), an acks=all
    produce waits there; node 2 comes back, catches up and is elected
    again: node 1 answers the waiting produce NOT_LEADER_OR_FOLLOWER, never
    success, and takes no more reports.  Stops a node: the module's last
    test."""
    name = unique_name("deposed")
    topic_id, _ = replicated_topic(cluster, name, replicas=(2, 1, 3))
    cluster.stop(2, "fast")
    cluster.wait_for(lambda: cluster.partitions(name, via=1)[0]["leader"] == 1, DEADLINE,
                     "node 1 leading once node 2 stopped")
    epoch = cluster.partitions(name, via=1)[0]["leader_epoch"]
    old = cluster.node(1)
    with kh.RawClient(old.kafka_bootstrap, timeout=DEADLINE) as c:
        cid = c.next_correlation_id()
        c.send(kh.produce_request(cid, name, [(0, records(1, "d"))], acks=-1,
                                  timeout_ms=DEADLINE * 2000))
        cluster.wait_for(lambda: leader_log_end(old, name) == 1, DEADLINE,
                         "the produce committed on node 1")
        cluster.start(2)
        cluster.wait_ready(deadline=DEADLINE)
        # node 2 reports what it would hold; node 3 stays silent, so the
        # high watermark cannot pass the produce
        cluster.wait_for(lambda: report(old, 2, topic_id, epoch, 1) == (0, 0) and
                         2 in cluster.partitions(name, via=1)[0]["isr"], DEADLINE,
                         "node 2 back in the ISR")
        assert kh.high_watermark(old, name) == 0
        rows = old.sql("SELECT error_code FROM streamlog.elect_leaders(%s, 0)", (name,))
        assert rows == [(0,)]
        got, body = c.recv_frame()
        assert got == cid
        assert kh.parse_produce_v3(body)[(name, 0)] == (NOT_LEADER_OR_FOLLOWER, -1)
    assert report(old, 3, topic_id, epoch, 1) == (NOT_LEADER_OR_FOLLOWER, -1)
    assert cluster.partitions(name, via=1)[0]["leader"] == 2
