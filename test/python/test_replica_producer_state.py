"""Idempotent producer state across leadership changes (CLUSTER.md section
4: a new leader serves the sequences its log holds).  An idempotent
producer whose partition changes leader must carry on with the sequence it
expects next, and a retry of a batch the log holds must be answered with
the batch's offset, on whichever replica leads; an old leader that returns
and truncates what it accepted while cut off must forget those sequences.
Kafka's ProducerStateManager: a follower's appends update the producer
state as the leader's do, and truncation reloads it from the log.

Batches are built by hand (producer id, epoch, sequences chosen here) and
sent with Produce v3 over raw sockets, so that a retry is the same bytes."""

import os
import signal
import threading
import time

import kafka_helpers as kh
from replstream import create_topic_with_assignment, stored_batches, wait_replicas_identical

NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7


def batch(pid, epoch, seq, n, tag):
    now = kh.now_ms()
    return kh.record_batch([(b"k", f"{tag}-{i}".encode(), [], now) for i in range(n)],
                           producer=(pid, epoch, seq))


def produce(node, topic, data, timeout_ms=30000, acks=-1):
    """(error_code, base_offset) of a Produce v3 (acks=all) to partition 0"""
    with kh.RawClient(node.kafka_bootstrap, timeout=timeout_ms / 1000 + 30) as c:
        body = c.call(kh.produce_request, topic, [(0, data)], acks, timeout_ms)
    return kh.parse_produce_v3(body)[(topic, 0)]


def init_producer(node):
    with kh.RawClient(node.kafka_bootstrap, timeout=60) as c:
        err, pid, epoch = kh.parse_init_producer_id(c.call(kh.init_producer_id_request, 0), 0)
    assert err == kh.NONE
    return pid, epoch


def leader_among(cluster, topic, candidates, via):
    return cluster.wait_for(
        lambda: (lambda l: l if l in candidates else None)(
            cluster.leaders(topic, via=via).get(0)),
        120, f"a leader of {topic} among {candidates}")


def make_topic(cluster, name, replicas):
    error, message = create_topic_with_assignment(cluster.node(replicas[0]), name,
                                                  {0: list(replicas)})
    assert error == 0, message
    cluster.wait_topic_everywhere(name)
    return leader_among(cluster, name, [replicas[0]], replicas[0])


def test_new_leader_takes_the_next_sequence_and_answers_retries(make_cluster, unique_name):
    """kill -9 of the leader: its successor, which received the batches by
    replication, answers a retry of the last one with its offset and takes
    the next sequence."""
    cluster = make_cluster(3)
    topic = unique_name("pstate")
    old = make_topic(cluster, topic, [1, 2, 3])
    pid, epoch = init_producer(cluster.node(old))
    sent = []
    for i in range(4):
        sent.append(batch(pid, epoch, 2 * i, 2, f"a{i}"))
        assert produce(cluster.node(old), topic, sent[-1]) == (kh.NONE, 2 * i)
    wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=4)

    cluster.kill9(old)
    new = leader_among(cluster, topic, [2, 3], via=2)
    node = cluster.node(new)
    # the retry of the last batch, whose response the client lost
    assert produce(node, topic, sent[-1]) == (kh.NONE, 6)
    # one of the last five, too
    assert produce(node, topic, sent[1]) == (kh.NONE, 2)
    # and the next sequence
    assert produce(node, topic, batch(pid, epoch, 8, 2, "b0")) == (kh.NONE, 8)
    err, _ = produce(node, topic, batch(pid, epoch, 11, 1, "gap"))
    assert err == kh.OUT_OF_ORDER_SEQUENCE_NUMBER


def stop_walsenders(node):
    pids = [r[0] for r in node.sql("SELECT pid FROM pg_stat_replication")]
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    return pids


def test_returning_leader_forgets_what_it_truncated_and_leads_again(make_cluster,
                                                                    unique_name):
    """The leader takes a batch no follower receives (acks=all, timed out),
    then is cut off (paused, not restarted: its shared memory stays).  Its
    successor takes the retry and more.  Back, the old leader truncates the
    batch only it had, follows, and led again by a preferred election it
    takes the sequence that comes next and answers retries with its
    successor's offsets."""
    cluster = make_cluster(3)
    controller = cluster.wait_for(lambda: cluster.controller(), 60, "a controller")
    first = [i for i in (1, 2, 3) if i != controller][0]
    others = [i for i in (1, 2, 3) if i != first]
    topic = unique_name("pstate")
    make_topic(cluster, topic, [first] + others)
    old = cluster.node(first)
    pid, epoch = init_producer(old)
    for i in range(3):
        assert produce(old, topic, batch(pid, epoch, 2 * i, 2, f"a{i}")) == (kh.NONE, 2 * i)
    wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=3)

    # sequences 6-7 reach the old leader's log only
    senders = stop_walsenders(old)
    assert len(senders) == 2, senders
    cut = batch(pid, epoch, 6, 2, "cut")
    err, _ = produce(old, topic, cut, timeout_ms=1500)
    assert err == REQUEST_TIMED_OUT
    assert len(stored_batches(old, topic)) == 4
    cluster.pause(first)

    new = leader_among(cluster, topic, others, via=others[0])
    node = cluster.node(new)
    # the client retries what timed out, then goes on
    assert produce(node, topic, cut) == (kh.NONE, 6)
    assert produce(node, topic, batch(pid, epoch, 8, 3, "b")) == (kh.NONE, 8)
    expected = stored_batches(node, topic)

    cluster.resume(first)
    for p in senders:
        os.kill(p, signal.SIGCONT)
    logs = wait_replicas_identical(cluster, topic, 0, [1, 2, 3], min_batches=len(expected),
                                   deadline=120)
    assert logs == expected
    assert not any(b"cut-" in b and base != 6 for base, b in logs.items())

    # the old leader leads again, at a newer epoch, without a restart
    def preferred_leads():
        isr = cluster.partitions(topic, via=others[0])[0]["isr"]
        if first not in isr:
            return None
        cluster.node(others[0]).sql("SELECT * FROM streamlog.elect_leaders(%s, 0)", (topic,))
        return cluster.leaders(topic, via=first).get(0) == first
    cluster.wait_for(preferred_leads, 120, f"node {first} leading {topic} again", interval=0.5)

    # retries of its successor's batches: their offsets, not new copies
    assert produce(old, topic, cut) == (kh.NONE, 6)
    assert produce(old, topic, batch(pid, epoch, 8, 3, "b")) == (kh.NONE, 8)
    # the sequence the client expects next
    assert produce(old, topic, batch(pid, epoch, 11, 1, "c")) == (kh.NONE, 11)
    err, _ = produce(old, topic, batch(pid, epoch, 6, 1, "old"))
    assert err == kh.OUT_OF_ORDER_SEQUENCE_NUMBER


def retry_until_led(node, topic, data, answers, deadline=60):
    end = time.monotonic() + deadline
    while True:
        answers.append(produce(node, topic, data, acks=1))
        if answers[-1][0] != NOT_LEADER_OR_FOLLOWER or time.monotonic() > end:
            return
        time.sleep(0.1)


def segment_table(node, topic):
    return node.sql("SELECT g.relid::regclass::text FROM streamlog.segment g "
                    "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s "
                    "ORDER BY g.seq DESC LIMIT 1", (topic,))[0][0]


def lock_waiters(node, table):
    return node.sql("SELECT count(*) FROM pg_locks WHERE relation = %s::regclass "
                    "AND NOT granted", (table,))[0][0]


def test_batch_applied_after_this_node_leads_is_not_taken_twice(make_cluster, unique_name):
    """A follower's apply of its old leader's batch still runs when the
    follower becomes leader (here it waits on a lock of the segment table
    the test holds; anywhere between its leadership check and its commit
    would do).  The producer's retry of that batch reaches the new leader
    meanwhile: it must be answered with the offset of the one copy, never
    stored a second time, or the producer state of the new leader ends at
    whichever copy commits last and refuses the sequence the client sends
    next (librdkafka: "sequence desynchronization")."""
    cluster = make_cluster(3)
    controller = cluster.wait_for(lambda: cluster.controller(), 60, "a controller")
    first, second = [i for i in (1, 2, 3) if i != controller]
    topic = unique_name("pstate")
    make_topic(cluster, topic, [first, second])
    old, new = cluster.node(first), cluster.node(second)
    pid, epoch = init_producer(old)
    for i in range(2):
        assert produce(old, topic, batch(pid, epoch, 2 * i, 2, f"a{i}")) == (kh.NONE, 2 * i)
    wait_replicas_identical(cluster, topic, 0, [first, second], min_batches=2)

    table = segment_table(new, topic)
    blocker = new.connect(autocommit=False)
    applier = None
    try:
        blocker.execute(f"LOCK TABLE {table} IN SHARE MODE")
        last = batch(pid, epoch, 4, 2, "last")
        assert produce(old, topic, last, acks=1) == (kh.NONE, 4)
        cluster.wait_for(lambda: lock_waiters(new, table) >= 1, 60,
                         "the follower's apply waiting on the segment table")
        # The launcher stops the apply worker of a leader no longer followed,
        # and a lock wait gives way to that stop: held stopped, the apply
        # stays in flight past the change of leader, as one caught between
        # its last interrupt check and its commit would.
        applier = new.sql("SELECT pid FROM pg_locks WHERE relation = %s::regclass "
                          "AND NOT granted", (table,))[0][0]
        os.kill(applier, signal.SIGSTOP)
        cluster.kill9(first)
        leader_among(cluster, topic, [second], via=second)

        # the client retries on NOT_LEADER_OR_FOLLOWER, as Kafka's clients do
        answers = []
        retry = threading.Thread(target=retry_until_led, args=(new, topic, last, answers))
        retry.start()
        # answered now, or told to retry while the apply is in flight
        cluster.wait_for(lambda: answers, 60, "an answer from the new leader")
    finally:
        blocker.rollback()
        blocker.close()
        if applier is not None:
            os.kill(applier, signal.SIGCONT)
    retry.join(90)
    assert answers[-1] == (kh.NONE, 4), answers
    assert all(a[0] == NOT_LEADER_OR_FOLLOWER for a in answers[:-1]), answers
    values = [v for _o, _t, _k, v, _h in kh.sql_records(new, topic, 0)]
    assert values == [b"a0-0", b"a0-1", b"a1-0", b"a1-1", b"last-0", b"last-1"]
    assert produce(new, topic, batch(pid, epoch, 6, 1, "next"), acks=1) == (kh.NONE, 6)
