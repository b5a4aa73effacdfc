"""Replication housekeeping (README, "Replication housekeeping"): a
leader drops the slot of a follower that no longer follows any partition
it leads, and keeps the others'; a follower whose log ends below its
leader's log start starts over there; FindCoordinator has
__consumer_offsets created in the background.  Three real nodes; slots
are read from pg_replication_slots on the leader, logs from the segment
tables of each node."""

import psycopg
import pytest

import cluster_api_requests as car
import kafka_helpers as kh
from test_consumer_offsets_topic import partition_for

from replstream import create_topic_with_assignment, stored_batches, wait_replicas_identical

SLOT_OF = "streamlog_follower_{}"


@pytest.fixture
def cluster(make_cluster):
    return make_cluster(3)


def make_topic(cluster, name, assignment):
    error, message = create_topic_with_assignment(cluster.node(1), name, assignment)
    assert error == 0, message
    return cluster.wait_topic_everywhere(name)


def leader_of(cluster, topic, partition=0):
    return cluster.wait_for(lambda: cluster.leaders(topic).get(partition), 60,
                            f"a leader of {topic}")


def sql_produce(node, topic, values):
    """One batch per value (each produce its own transaction)."""
    with node.connect() as c:
        for v in values:
            c.execute("SELECT streamlog.produce(%s, NULL, %s)", (topic, v))


def slots(node):
    return {name: active for name, active in node.sql(
        "SELECT slot_name, active FROM pg_replication_slots "
        "WHERE slot_name LIKE 'streamlog\\_follower\\_%'")}


def test_slot_of_a_follower_that_stopped_following_is_dropped(cluster, unique_name):
    """Node 1 leads two topics: one followed by node 2, one by node 3.
    The second moves away from node 3 (reassignment): node 3's slot on
    node 1 goes, node 2's stays.  Then the first topic is deleted: node 2's
    slot goes too."""
    kept = unique_name("kept")
    moved = unique_name("moved")
    make_topic(cluster, kept, {0: [1, 2]})
    make_topic(cluster, moved, {0: [1, 3]})
    assert leader_of(cluster, kept) == 1 and leader_of(cluster, moved) == 1
    leader = cluster.node(1)
    sql_produce(leader, kept, ["k-1", "k-2"])
    sql_produce(leader, moved, ["m-1", "m-2"])
    wait_replicas_identical(cluster, kept, 0, [1, 2], min_batches=2)
    wait_replicas_identical(cluster, moved, 0, [1, 3], min_batches=2)
    # each follower syncs through the side channel first, then makes its slot
    cluster.wait_for(lambda: set(slots(leader)) == {SLOT_OF.format(2), SLOT_OF.format(3)},
                     60, "both followers' slots on node 1")

    # node 3 no longer replicates anything node 1 leads
    leader.sql("SELECT streamlog.reassign_partition(%s, 0, '{1,2}')", (moved,))
    cluster.wait_topic_everywhere(moved, check=lambda s: s[4][0][3] == [1, 2], deadline=90)
    cluster.wait_for(lambda: SLOT_OF.format(3) not in slots(leader), 60,
                     "node 3's slot dropped on node 1")
    assert SLOT_OF.format(2) in slots(leader)
    # node 2 follows both topics through its slot, which still streams
    sql_produce(leader, moved, ["m-3"])
    sql_produce(leader, kept, ["k-3"])
    wait_replicas_identical(cluster, moved, 0, [1, 2], min_batches=3)
    wait_replicas_identical(cluster, kept, 0, [1, 2], min_batches=3)
    assert set(slots(leader)) == {SLOT_OF.format(2)}

    # nothing left in common with node 2 either
    leader.sql("SELECT streamlog.drop_topic(%s)", (kept,))
    leader.sql("SELECT streamlog.drop_topic(%s)", (moved,))
    cluster.wait_topic_gone_everywhere(kept)
    cluster.wait_topic_gone_everywhere(moved)
    cluster.wait_for(lambda: slots(leader) == {}, 60, "node 2's slot dropped on node 1")

    # a follower that comes back creates its slot again and catches up
    again = unique_name("again")
    make_topic(cluster, again, {0: [1, 3]})
    assert leader_of(cluster, again) == 1
    sql_produce(leader, again, ["a-1", "a-2"])
    expected = stored_batches(leader, again)
    assert wait_replicas_identical(cluster, again, 0, [1, 3], min_batches=2) == expected
    cluster.wait_for(lambda: SLOT_OF.format(3) in slots(leader), 60, "node 3's new slot")


def partition_row(node, topic):
    [row] = node.sql("SELECT log_start_offset, high_watermark, isr FROM streamlog.partitions "
                     "WHERE topic = %s AND partition = 0", (topic,))
    return row


def test_follower_behind_the_leaders_log_start_starts_over_there(make_cluster, unique_name):
    """A follower down while its leader deletes the records it lacks
    (DeleteRecords, inside a batch): back, it empties its log and goes on
    at the leader's first batch, with the leader's log start offset, as
    Kafka's truncateFullyAndStartAt; the replicas are byte-identical from
    there and it rejoins the ISR."""
    cluster = make_cluster(3, conf={"streamlog.replica_lag_time_max_ms": 2000})
    topic = unique_name("behind")
    make_topic(cluster, topic, {0: [1, 2, 3]})
    assert leader_of(cluster, topic) == 1
    leader = cluster.node(1)
    sql_produce(leader, topic, [f"before-{i}" for i in range(20)])
    wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=20)

    cluster.stop(3)
    sql_produce(leader, topic, [f"down-{i}" for i in range(10)])
    with leader.connect() as c:
        with c.transaction():     # offsets 30-34, one batch
            for i in range(5):
                c.execute("SELECT streamlog.produce(%s, NULL, %s)", (topic, f"tx-{i}"))
    sql_produce(leader, topic, [f"late-{i}" for i in range(5)])
    # node 3 leaves the ISR, so that the high watermark reaches the end
    cluster.wait_for(lambda: partition_row(leader, topic)[1:] == (40, [1, 2]), 60,
                     "node 3 out of the ISR, the high watermark at 40")
    assert leader.sql("SELECT streamlog.delete_records(%s, 0, 32)", (topic,)) == [(32,)]
    first_kept = max(b for b in stored_batches(leader, topic) if b <= 32)
    assert first_kept == 30

    cluster.start(3)
    follower = cluster.node(3)
    cluster.wait_for(lambda: partition_row(leader, topic)[2] == [1, 2, 3], 90,
                     "node 3 back in the ISR")
    expected = {b: v for b, v in stored_batches(leader, topic).items() if b >= first_kept}
    cluster.wait_for(lambda: stored_batches(follower, topic) == expected, 60,
                     "node 3 holding the leader's batches from its log start")
    assert partition_row(follower, topic)[0] == 32 == partition_row(leader, topic)[0]
    assert "emptied partition 0" in follower.log_tail(400)

    # and it goes on following
    sql_produce(leader, topic, [f"after-{i}" for i in range(5)])
    expected = {b: v for b, v in stored_batches(leader, topic).items() if b >= first_kept}
    cluster.wait_for(lambda: stored_batches(follower, topic) == expected, 60,
                     "node 3 following after the restart")
    cluster.wait_for(lambda: partition_row(follower, topic)[1] == 45, 60,
                     "node 3's high watermark")


COORDINATOR_NOT_AVAILABLE = 15


def test_find_coordinator_has_the_offsets_topic_created_in_the_background(make_cluster,
                                                                          unique_name):
    """As Kafka: the first FindCoordinator of a cluster without
    __consumer_offsets answers COORDINATOR_NOT_AVAILABLE at once, the
    topic being created by a worker of its own (not by the broker worker,
    whose every connection would wait); once it exists, the answer names
    the leader of the group's partition, the same from every node."""
    c = make_cluster(3, conf={"streamlog.offsets_topic_num_partitions": 5})
    group = unique_name("bg")

    def find_coordinator(via):
        with kh.RawClient(c.node(via).kafka_bootstrap, timeout=60) as k:
            return car.parse_find_coordinator(k.call(car.find_coordinator_request, group))
    c.wait_for_controller()
    error, node_id, _, _ = find_coordinator(2)
    assert (error, node_id) == (COORDINATOR_NOT_AVAILABLE, -1)
    state = c.wait_topic_everywhere("__consumer_offsets", deadline=90,
                                    check=lambda s: all(p[0] >= 1 for p in s[4].values()))
    assert state[2] == 5
    answers = {n: c.wait_for(lambda: (lambda a: a[1] if a[0] == 0 else None)(
        find_coordinator(n)), 60, f"a coordinator from node {n}") for n in c.node_ids}
    assert len(set(answers.values())) == 1, answers
    assert set(answers.values()) == {state[4][partition_for(group, 5)][0]}


def test_follower_behind_a_leader_that_deleted_every_record(make_cluster, unique_name):
    """The leader deleted every record (DeleteRecords to the high
    watermark) while a follower was down: it has no batch to send, and the
    follower's log starts over empty at the leader's log start, then takes
    what comes next."""
    cluster = make_cluster(3, conf={"streamlog.replica_lag_time_max_ms": 2000})
    topic = unique_name("emptied")
    make_topic(cluster, topic, {0: [1, 2, 3]})
    assert leader_of(cluster, topic) == 1
    leader = cluster.node(1)
    sql_produce(leader, topic, [f"before-{i}" for i in range(5)])
    wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=5)

    cluster.stop(3)
    sql_produce(leader, topic, [f"down-{i}" for i in range(5)])
    cluster.wait_for(lambda: partition_row(leader, topic)[1:] == (10, [1, 2]), 60,
                     "node 3 out of the ISR, the high watermark at 10")
    assert leader.sql("SELECT streamlog.delete_records(%s, 0, -1)", (topic,)) == [(10,)]

    cluster.start(3)
    follower = cluster.node(3)
    cluster.wait_for(lambda: partition_row(follower, topic)[:2] == (10, 10), 60,
                     "node 3's log starting at 10")
    assert stored_batches(follower, topic) == {}
    sql_produce(leader, topic, [f"after-{i}" for i in range(3)])
    expected = {b: v for b, v in stored_batches(leader, topic).items() if b >= 10}
    cluster.wait_for(lambda: stored_batches(follower, topic) == expected, 60,
                     "node 3 following from the leader's log start")
    cluster.wait_for(lambda: partition_row(leader, topic)[2] == [1, 2, 3], 60,
                     "node 3 back in the ISR")


def test_followers_take_the_leaders_log_start(cluster, unique_name):
    """Records deleted on the leader (DeleteRecords) go on its followers
    too, as a Kafka follower takes the log start offset of each fetch:
    they would come back if a follower led.  Then the leader is killed: its
    successor's log starts where the deletion left it."""
    topic = unique_name("start")
    make_topic(cluster, topic, {0: [1, 2, 3]})
    assert leader_of(cluster, topic) == 1
    leader = cluster.node(1)
    sql_produce(leader, topic, [f"v-{i}" for i in range(10)])
    wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=10)
    cluster.wait_for(lambda: all(partition_row(cluster.node(i), topic)[1] == 10
                                 for i in (1, 2, 3)), 60, "every high watermark at 10")
    assert leader.sql("SELECT streamlog.delete_records(%s, 0, 6)", (topic,)) == [(6,)]
    cluster.wait_for(lambda: all(partition_row(cluster.node(i), topic)[0] == 6
                                 for i in (2, 3)), 60, "the followers' log start at 6")

    cluster.kill9(1)
    successor = cluster.wait_for(lambda: (cluster.leaders(topic, via=2).get(0) or 0) > 1
                                 and cluster.leaders(topic, via=2)[0], 60, "a new leader")

    def read():
        rows = cluster.node(successor).sql(
            "SELECT \"offset\" FROM streamlog.read(%s, 0, 6, 100)", (topic,))
        return [o for (o,) in rows]
    cluster.wait_for(lambda: read() == list(range(6, 10)), 60,
                     f"offsets 6 to 9 read on node {successor}")
    assert partition_row(cluster.node(successor), topic)[0] == 6
    with pytest.raises(psycopg.Error, match="below the log start offset 6"):
        cluster.node(successor).sql("SELECT * FROM streamlog.read(%s, 0, 0, 100)", (topic,))


# -- a group coordinator that resigns ------------------------------------------

GROUPS_CONF = {
    "streamlog.default_replication_factor": 3,
    "streamlog.min_insync_replicas": 2,
    "streamlog.offsets_topic_num_partitions": 5,   # as test_cluster_groups
}


def move_offsets_leadership(cluster, partition, leader):
    """Make leader the preferred (first) replica of the partition of
    __consumer_offsets and elect it."""
    offsets = "__consumer_offsets"
    replicas = cluster.topic_state(offsets)[4][partition][3]
    order = [leader] + [r for r in replicas if r != leader]
    cluster.node(leader).sql("SELECT streamlog.reassign_partition(%s, %s, %s)",
                             (offsets, partition, order))
    cluster.wait_topic_everywhere(offsets, check=lambda s: s[4][partition][3] == order)

    def elected():
        cluster.node(leader).sql("SELECT * FROM streamlog.elect_leaders(%s, %s)",
                                 (offsets, partition))
        return all(cluster.leaders(offsets, via=i).get(partition) == leader
                   for i in cluster.node_ids)
    cluster.wait_for(elected, 60, f"node {leader} leading {offsets}-{partition}", interval=0.5)


def kafka_groups(node):
    return {g for (g,) in node.sql("SELECT group_id FROM streamlog.kafka_groups()")}


def test_group_unloaded_from_a_node_that_stops_coordinating(make_cluster, unique_name):
    """Kafka's onResignation: a node whose partition of __consumer_offsets
    is led elsewhere drops the state of that partition's groups; when it
    leads it again, after another node took a commit, it serves the newer
    offset, not the one it had."""
    import test_cluster_groups as cg

    cluster = make_cluster(3, conf=GROUPS_CONF)
    topic = unique_name("resign")
    group = unique_name("rg")
    cg.create_topic(cluster, topic)
    cg.ensure_offsets_topic(cluster, group)
    cg.produce(cluster, topic, [b"x"] * 10)
    cg.consume_kafka(cluster.bootstrap_servers(), topic, group, 3)   # commits 3
    first = cg.coordinator_of(cluster, group)
    assert group in kafka_groups(cluster.node(first))
    second = next(n for n in cluster.node_ids if n != first)
    p = cg.offsets_partition(group)

    move_offsets_leadership(cluster, p, second)
    assert cg.coordinator_of(cluster, group) == second
    cluster.wait_for(lambda: group not in kafka_groups(cluster.node(first)), 30,
                     f"{group} unloaded from node {first}")
    cluster.wait_for(lambda: cg.raw_commit(cluster.node(second), group, topic, 9) == cg.NONE,
                     60, "a commit on the new coordinator")

    move_offsets_leadership(cluster, p, first)
    assert cg.coordinator_of(cluster, group) == first

    def fetched():
        with kh.RawClient(cluster.node(first).kafka_bootstrap) as client:
            [(_, offset, error)] = cg.parse_offset_fetch_v1(
                client.call(cg.offset_fetch_v1, group, topic))
        return (offset, error) if error == cg.NONE else None
    assert cluster.wait_for(fetched, 60, "the offset from the first node again") == (9, cg.NONE)


# -- a follower's disk full ------------------------------------------------------

def test_disk_full_on_a_follower_drops_it_from_the_isr_not_the_leader(make_cluster,
                                                                       unique_name):
    """A follower whose segment tables live on a tablespace that fills up
    (a 1 MB tmpfs): its apply worker fails to append, logs it and retries,
    the server does not restart, the leader drops it from the ISR and goes
    on acknowledging acks=all; once there is room again it catches up and
    rejoins.  Needs root (mount)."""
    import os
    import subprocess
    import tempfile

    from confluent_kafka import Producer

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    # where the server's OS user can reach it
    tiny = tempfile.mkdtemp(prefix="streamlog-tiny-")
    os.chmod(tiny, 0o755)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tiny)]).returncode:
        os.rmdir(tiny)
        pytest.skip("cannot mount a tmpfs here")
    try:
        subprocess.run(["chown", "postgres:postgres", str(tiny)], check=True)
        cluster = make_cluster(3, conf={"streamlog.replica_lag_time_max_ms": 2000,
                                        "streamlog.min_insync_replicas": 2})
        follower = cluster.node(3)
        follower.sql(f"CREATE TABLESPACE tiny LOCATION '{tiny}'")
        follower.sql("ALTER SYSTEM SET default_tablespace = 'tiny'")
        follower.sql("SELECT pg_reload_conf()")
        topic = unique_name("full")
        make_topic(cluster, topic, {0: [1, 2, 3]})
        assert leader_of(cluster, topic) == 1
        assert follower.sql(
            "SELECT DISTINCT s.spcname FROM streamlog.segment g JOIN streamlog.topic t "
            "USING (topic_id) JOIN pg_class c ON c.oid = g.relid "
            "JOIN pg_tablespace s ON s.oid = c.reltablespace WHERE t.name = %s",
            (topic,)) == [("tiny",)]
        started = follower.sql("SELECT pg_postmaster_start_time()")

        def produce(n, tag):
            producer = Producer({"bootstrap.servers": cluster.node(1).kafka_bootstrap,
                                 "acks": "all", "enable.idempotence": True,
                                 "linger.ms": 5, "message.timeout.ms": 60000})
            errors = []
            for i in range(n):
                producer.produce(topic, value=f"{tag}-{i}".encode() * 100, partition=0,
                                 on_delivery=lambda err, msg: errors.append(err))
            assert producer.flush(90) == 0
            assert errors == [None] * n, set(map(str, errors))

        produce(2000, "fill")     # about 2 MB: more than the follower has
        cluster.wait_for(lambda: partition_row(cluster.node(1), topic)[2] == [1, 2], 60,
                         "the full follower out of the ISR")
        log = follower.log_tail(2000)
        assert "No space left on device" in log
        assert "the stream from leader 1 stopped on the error above; retrying" in log
        produce(200, "after")      # the leader goes on with the other follower
        assert follower.sql("SELECT pg_postmaster_start_time()") == started
        log = follower.log_tail(5000)
        assert "terminated by signal" not in log and "reinitializing" not in log

        subprocess.run(["mount", "-o", "remount,size=256m", str(tiny)], check=True)
        cluster.wait_for(lambda: partition_row(cluster.node(1), topic)[2] == [1, 2, 3], 120,
                         "the follower back in the ISR")
        expected = stored_batches(cluster.node(1), topic)
        assert wait_replicas_identical(cluster, topic, 0, [1, 2, 3],
                                       min_batches=len(expected)) == expected
        assert follower.sql("SELECT pg_postmaster_start_time()") == started
    finally:
        subprocess.run(["umount", "-l", str(tiny)])
        os.rmdir(tiny)
