"""Kafka consumer groups against streamlog's group coordinator: real
confluent-kafka (librdkafka 2.0.2), kafka-python 2.0.2 and kafkajs 2.2.4 consumers, run as
subprocesses so that one can be killed with SIGKILL, and raw requests for
the error paths.

Every wait polls with a deadline (the session timeout plus a generous
margin where a session has to expire); no elapsed time is asserted.
"""

import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

import kafka_helpers as kh
from kafkajs import JS_DIR, ensure_kafkajs
from kafka_helpers import (array, i8, i16, i32, i64, kbytes, request_frame, string,
                           wait_until)

PYTHON = "/usr/bin/python3"
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 1000
# Servers of these tests: a short initial rebalance delay keeps them quick
GROUP_CONF = {"streamlog.group_initial_rebalance_delay": 300}

# API keys and error codes of the group APIs
OFFSET_COMMIT = 8
OFFSET_FETCH = 9
FIND_COORDINATOR = 10
JOIN_GROUP = 11
HEARTBEAT = 12
LEAVE_GROUP = 13
SYNC_GROUP = 14
DESCRIBE_GROUPS = 15
LIST_GROUPS = 16
DELETE_GROUPS = 42
OFFSET_DELETE = 47

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
GROUP_SUBSCRIBED_TO_TOPIC = 86
MEMBER_ID_REQUIRED = 79
FENCED_INSTANCE_ID = 82


# -- consumers in subprocesses -------------------------------------------------------

# Prints one JSON line per event: its assignment whenever it changes, each
# record consumed, each commit that succeeded (offset = next to consume).
CONSUMER_SCRIPT = r'''
import json, sys
kind, bootstrap, topic, group, instance, name = sys.argv[1:7]

def emit(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()

if kind == "ck":
    from confluent_kafka import Consumer, KafkaException
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
            "session.timeout.ms": %(session)d, "heartbeat.interval.ms": %(heartbeat)d,
            "max.poll.interval.ms": 30000, "auto.offset.reset": "earliest",
            "enable.auto.commit": False}
    if instance != "-":
        conf["group.instance.id"] = instance
    c = Consumer(conf)
    c.subscribe([topic])
    last = None
    while True:
        m = c.poll(0.1)
        parts = sorted(tp.partition for tp in c.assignment())
        if parts != last:
            emit(ev="assign", parts=parts)
            last = parts
        if m is None or m.error():
            continue
        emit(ev="rec", p=m.partition(), o=m.offset())
        try:
            c.commit(message=m, asynchronous=False)
            emit(ev="commit", p=m.partition(), o=m.offset() + 1)
        except KafkaException as e:
            emit(ev="commit_failed", p=m.partition(), err=str(e))
else:
    from kafka import KafkaConsumer, OffsetAndMetadata
    from kafka.errors import KafkaError
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id=name,
                      session_timeout_ms=%(session)d, heartbeat_interval_ms=%(heartbeat)d,
                      max_poll_interval_ms=30000, auto_offset_reset="earliest",
                      enable_auto_commit=False)
    last = None
    while True:
        batches = c.poll(timeout_ms=100)
        parts = sorted(tp.partition for tp in c.assignment())
        if parts != last:
            emit(ev="assign", parts=parts)
            last = parts
        for tp, msgs in batches.items():
            for m in msgs:
                emit(ev="rec", p=tp.partition, o=m.offset)
            try:
                c.commit({tp: OffsetAndMetadata(msgs[-1].offset + 1, None)})
                emit(ev="commit", p=tp.partition, o=msgs[-1].offset + 1)
            except KafkaError as e:
                emit(ev="commit_failed", p=tp.partition, err=repr(e))
''' % {"session": SESSION_TIMEOUT_MS, "heartbeat": HEARTBEAT_MS}


class EventLog:
    """Events of every consumer subprocess, in the order they were read."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = []

    def add(self, name, event):
        with self.lock:
            self.events.append((name, event))

    def snapshot(self):
        with self.lock:
            return list(self.events)


class ConsumerProc:
    """A group consumer in a subprocess ("ck": confluent-kafka, "kp":
    kafka-python, "js": kafkajs, test/js/group_consumer.js) whose events go
    to log."""

    def __init__(self, tmp_path, log, kind, bootstrap, topic, group, name, instance=None):
        if kind == "js":
            assert instance is None, "the kafkajs consumer has no static membership"
            command = [ensure_kafkajs(), os.path.join(JS_DIR, "group_consumer.js"), bootstrap,
                       topic, group, name, str(SESSION_TIMEOUT_MS), str(HEARTBEAT_MS)]
        else:
            script = tmp_path / "group_consumer.py"
            if not script.exists():
                script.write_text(CONSUMER_SCRIPT)
            command = [PYTHON, str(script), kind, bootstrap, topic, group, instance or "-", name]
        self.name = name
        self.log = log
        self.assignment = None
        self.assign_events = 0
        self.stderr = open(tmp_path / f"{name}.stderr", "w+")
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event["ev"] == "assign":
                self.assignment = event["parts"]
                self.assign_events += 1
            self.log.add(self.name, event)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.stderr.seek(0)
        return self.stderr.read()


@pytest.fixture
def consumers():
    """Factory of ConsumerProc; every one is stopped at the end."""
    started = []

    def start(*args, **kwargs):
        c = ConsumerProc(*args, **kwargs)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def covering(procs, partitions):
    """True if the procs' assignments are non-empty, disjoint and cover
    range(partitions)."""
    seen = []
    for p in procs:
        if not p.assignment:
            return False
        seen.extend(p.assignment)
    return sorted(seen) == list(range(partitions))


def consumed(log):
    """{(partition, offset)} of every record the consumers in log received."""
    return {(e["p"], e["o"]) for _, e in log.snapshot() if e["ev"] == "rec"}


def committed_offsets(server, group, topic):
    """{partition: committed offset} of group for topic, as SQL sees them."""
    return dict(server.sql(
        "SELECT o.partition, o.committed_offset FROM streamlog.group_offset o "
        "JOIN streamlog.topic t USING (topic_id) WHERE o.group_id = %s AND t.name = %s",
        (group, topic)))


def create_topic(server, name, partitions):
    server.sql("SELECT streamlog.create_topic(%s, %s)", (name, partitions))


def sql_produce(server, topic, partitions, count, start=0):
    """count records spread round-robin over the partitions."""
    server.sql("SELECT count(streamlog.produce(%s, NULL::text, 'v' || g, partition => g %% %s::int)) "
               "FROM generate_series(%s::int, %s::int) g",
               (topic, partitions, start, start + count - 1))


def group_row(server, group):
    rows = server.sql("SELECT state, generation, members, protocol FROM streamlog.kafka_groups() "
                      "WHERE group_id = %s", (group,))
    return rows[0] if rows else None


def stable_with(server, group, members):
    row = group_row(server, group)
    return row is not None and row[0] == "Stable" and row[2] == members


# -- raw requests (non-flexible versions) ------------------------------------------------

def consumer_subscription(topics):
    """ConsumerProtocolSubscription v0: version, topics, null user data."""
    return i16(0) + array(topics, string) + kbytes(None)


def consumer_assignment(topic, partitions):
    """ConsumerProtocolAssignment v0: version, [topic, partitions], null user data."""
    return i16(0) + array([topic], lambda t: string(t) + array(partitions, i32)) + kbytes(None)


def join_group_v5(cid, group, member_id, topics, instance_id=None, session_ms=SESSION_TIMEOUT_MS,
                  rebalance_ms=10000, protocols=("range",), protocol_type="consumer"):
    body = (string(group) + i32(session_ms) + i32(rebalance_ms) + string(member_id)
            + string(instance_id) + string(protocol_type)
            + array(list(protocols),
                    lambda p: string(p) + kbytes(consumer_subscription(topics))))
    return request_frame(JOIN_GROUP, 5, cid, body)


def parse_join_group_v5(body):
    r = kh.Reader(body)
    out = {"throttle": r.i32(), "error": r.i16(), "generation": r.i32(),
           "protocol": r.string(), "leader": r.string(), "member_id": r.string()}
    out["members"] = r.array(lambda r: (r.string(), r.string(), r.bytes()))
    return out


def sync_group_v3(cid, group, generation, member_id, assignments=(), instance_id=None):
    body = (string(group) + i32(generation) + string(member_id) + string(instance_id)
            + array(list(assignments), lambda a: string(a[0]) + kbytes(a[1])))
    return request_frame(SYNC_GROUP, 3, cid, body)


def parse_sync_group_v3(body):
    r = kh.Reader(body)
    return {"throttle": r.i32(), "error": r.i16(), "assignment": r.bytes()}


def heartbeat_v3(cid, group, generation, member_id, instance_id=None):
    body = string(group) + i32(generation) + string(member_id) + string(instance_id)
    return request_frame(HEARTBEAT, 3, cid, body)


def parse_error_after_throttle(body):
    r = kh.Reader(body)
    r.i32()
    return r.i16()


def leave_group_v3(cid, group, members):
    body = string(group) + array(members, lambda m: string(m[0]) + string(m[1]))
    return request_frame(LEAVE_GROUP, 3, cid, body)


def parse_leave_group_v3(body):
    r = kh.Reader(body)
    r.i32()
    error = r.i16()
    return error, r.array(lambda r: (r.string(), r.string(), r.i16()))


def offset_commit_v7(cid, group, generation, member_id, topic, offsets, instance_id=None):
    body = (string(group) + i32(generation) + string(member_id) + string(instance_id)
            + array([topic], lambda t: string(t) + array(
                sorted(offsets.items()),
                lambda po: i32(po[0]) + i64(po[1]) + i32(-1) + string("m"))))
    return request_frame(OFFSET_COMMIT, 7, cid, body)


def parse_offset_commit_v7(body):
    """{(topic, partition): error}"""
    r = kh.Reader(body)
    r.i32()
    out = {}
    for name, parts in r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16())))):
        for p, e in parts:
            out[(name, p)] = e
    return out


def offset_fetch_v5(cid, group, topic, partitions):
    body = string(group) + array([topic], lambda t: string(t) + array(partitions, i32))
    return request_frame(OFFSET_FETCH, 5, cid, body)


def parse_offset_fetch_v5(body):
    """({(topic, partition): (offset, metadata, error)}, group error)"""
    r = kh.Reader(body)
    r.i32()
    out = {}
    for name, parts in r.array(lambda r: (r.string(), r.array(
            lambda r: (r.i32(), r.i64(), r.i32(), r.string(), r.i16())))):
        for p, o, _epoch, meta, e in parts:
            out[(name, p)] = (o, meta, e)
    return out, r.i16()


def find_coordinator_v1(cid, key, key_type):
    return request_frame(FIND_COORDINATOR, 1, cid, string(key) + i8(key_type))


def parse_find_coordinator_v1(body):
    r = kh.Reader(body)
    r.i32()
    return {"error": r.i16(), "message": r.string(), "node_id": r.i32(), "host": r.string(),
            "port": r.i32()}


def delete_groups_v1(cid, groups):
    return request_frame(DELETE_GROUPS, 1, cid, array(groups, string))


def parse_delete_groups_v1(body):
    r = kh.Reader(body)
    r.i32()
    return dict(r.array(lambda r: (r.string(), r.i16())))


def describe_groups_v4(cid, groups):
    return request_frame(DESCRIBE_GROUPS, 4, cid, array(groups, string) + i8(1))


def parse_describe_groups_v4(body):
    r = kh.Reader(body)
    r.i32()
    groups = r.array(lambda r: {
        "error": r.i16(), "group_id": r.string(), "state": r.string(),
        "protocol_type": r.string(), "protocol": r.string(),
        "members": r.array(lambda r: {"member_id": r.string(), "instance_id": r.string(),
                                      "client_id": r.string(), "client_host": r.string(),
                                      "metadata": r.bytes(), "assignment": r.bytes()}),
        "authorized_operations": r.i32()})
    return {g["group_id"]: g for g in groups}


def list_groups_v4(cid, states):
    """ListGroups v4 (flexible) with a states filter."""
    body = kh.uvarint(len(states) + 1) + b"".join(kh.compact_string(x) for x in states)
    body += kh.uvarint(0)
    return request_frame(LIST_GROUPS, 4, cid, body, header_version=2)


def parse_list_groups_v4(body):
    """{group_id: (protocol_type, state)}"""
    r = kh.Reader(body)
    assert r.uvarint() == 0     # response header tagged fields

    def cstring(r):
        n = r.uvarint()
        return None if n == 0 else r.take(n - 1).decode()

    r.i32()
    assert r.i16() == NONE
    out = {}
    for _ in range(r.uvarint() - 1):
        group_id, protocol_type, state = cstring(r), cstring(r), cstring(r)
        assert r.uvarint() == 0
        out[group_id] = (protocol_type, state)
    return out


def offset_delete_v0(cid, group, topic, partitions):
    body = string(group) + array([topic], lambda t: string(t) + array(partitions, i32))
    return request_frame(OFFSET_DELETE, 0, cid, body)


def parse_offset_delete_v0(body):
    """(group error, {partition: error})"""
    r = kh.Reader(body)
    error = r.i16()
    r.i32()
    parts = {}
    for _name, ps in r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16())))):
        parts.update(dict(ps))
    return error, parts


def raw_join(bootstrap, group, topics, **kwargs):
    """Join as a new member through MEMBER_ID_REQUIRED; returns (client,
    response of the second join)."""
    c = kh.RawClient(bootstrap, timeout=30)
    first = parse_join_group_v5(c.call(join_group_v5, group, "", topics, **kwargs))
    assert first["error"] == MEMBER_ID_REQUIRED, first
    assert first["member_id"]
    return c, first["member_id"]


# -- tests -------------------------------------------------------------------------------------

def test_group_apis_advertised_from_version_0(server):
    versions = kh.advertised_versions(server.kafka_bootstrap)
    expected = {OFFSET_COMMIT: 9, OFFSET_FETCH: 9, FIND_COORDINATOR: 6, JOIN_GROUP: 9,
                HEARTBEAT: 4, LEAVE_GROUP: 5, SYNC_GROUP: 5, DESCRIBE_GROUPS: 5,
                LIST_GROUPS: 5, DELETE_GROUPS: 2, OFFSET_DELETE: 0}
    for key, max_version in expected.items():
        assert versions.get(key) == (0, max_version), (key, versions.get(key))


def test_four_consumers_share_partitions_and_take_over_a_killed_one(
        make_server, unique_name, consumers, tmp_path):
    """Three confluent-kafka consumers and one kafka-python consumer in one
    group over 6 partitions; one is killed with SIGKILL; nothing is lost
    and a record is consumed twice only if it was not committed."""
    srv = make_server(conf=GROUP_CONF)
    topic, group = unique_name("groups6"), unique_name("g")
    create_topic(srv, topic, 6)
    sql_produce(srv, topic, 6, 300)
    log = EventLog()
    procs = [consumers(tmp_path, log, "ck", srv.kafka_bootstrap, topic, group, f"ck{i}")
             for i in range(3)]
    procs.append(consumers(tmp_path, log, "kp", srv.kafka_bootstrap, topic, group, "kp0"))

    wait_until(lambda: stable_with(srv, group, 4) and covering(procs, 6), 60,
               "four members with disjoint assignments covering 6 partitions")
    assert all(1 <= len(p.assignment) <= 2 for p in procs), [p.assignment for p in procs]

    wait_until(lambda: len(consumed(log)) == 300, 60, "the first 300 records consumed")

    victim = procs[1]
    survivors = [p for p in procs if p is not victim]
    victim_parts = list(victim.assignment)
    victim.kill()
    sql_produce(srv, topic, 6, 300, start=300)
    wait_until(lambda: covering(survivors, 6) and stable_with(srv, group, 3),
               SESSION_TIMEOUT_MS / 1000 + 60,
               f"partitions {victim_parts} of the killed consumer moving to the others")

    wait_until(lambda: len(consumed(log)) == 600, 60, "all 600 records consumed")
    hwm = {p: 100 for p in range(6)}
    assert consumed(log) == {(p, o) for p in range(6) for o in range(hwm[p])}
    wait_until(lambda: committed_offsets(srv, group, topic) == hwm, 30,
               "every partition committed up to its high watermark")

    # A record consumed again must not have been committed past before
    committed = {}
    seen = set()
    for name, e in log.snapshot():
        if e["ev"] == "commit":
            committed[e["p"]] = max(committed.get(e["p"], 0), e["o"])
        elif e["ev"] == "rec":
            key = (e["p"], e["o"])
            if key in seen:
                assert e["o"] >= committed.get(e["p"], 0), \
                    f"{name} consumed {key} again after offset {committed[e['p']]} was committed"
            seen.add(key)


def test_kafkajs_consumers_share_a_group_and_take_over_a_killed_one(
        make_server, unique_name, consumers, tmp_path):
    """Two kafkajs consumers split 6 partitions; one is killed with SIGKILL
    and the other takes them all; every record is consumed and committed.
    kafkajs names its assignor "RoundRobinAssigner", so, as against Apache
    Kafka, a consumer offering only range/roundrobin cannot join its group."""
    srv = make_server(conf=GROUP_CONF)
    topic, group = unique_name("groupsjs"), unique_name("g")
    create_topic(srv, topic, 6)
    sql_produce(srv, topic, 6, 120)
    log = EventLog()
    procs = [consumers(tmp_path, log, "js", srv.kafka_bootstrap, topic, group, f"js{i}")
             for i in range(2)]
    wait_until(lambda: stable_with(srv, group, 2) and covering(procs, 6), 60,
               "two kafkajs members with disjoint assignments covering 6 partitions")
    assert sorted(len(p.assignment) for p in procs) == [3, 3]

    wait_until(lambda: len(consumed(log)) == 120, 60, "the first 120 records consumed")

    with kh.RawClient(srv.kafka_bootstrap) as x:
        assert parse_join_group_v5(x.call(join_group_v5, group, "", [topic],
                                          protocols=("range", "roundrobin")))["error"] == \
            INCONSISTENT_GROUP_PROTOCOL

    victim, survivor = procs
    victim.kill()
    sql_produce(srv, topic, 6, 120, start=120)
    wait_until(lambda: covering([survivor], 6) and stable_with(srv, group, 1),
               SESSION_TIMEOUT_MS / 1000 + 20, "the survivor taking every partition")
    wait_until(lambda: len(consumed(log)) == 240, 60, "all 240 records consumed")
    assert consumed(log) == {(p, o) for p in range(6) for o in range(40)}
    wait_until(lambda: committed_offsets(srv, group, topic) == {p: 40 for p in range(6)}, 30,
               "every partition committed up to its high watermark")


def test_static_member_restart_keeps_its_partitions_without_rebalance(
        make_server, unique_name, consumers, tmp_path):
    srv = make_server(conf=GROUP_CONF)
    topic, group = unique_name("static"), unique_name("g")
    create_topic(srv, topic, 4)
    sql_produce(srv, topic, 4, 40)
    log = EventLog()
    dynamic = consumers(tmp_path, log, "ck", srv.kafka_bootstrap, topic, group, "dyn")
    static = consumers(tmp_path, log, "ck", srv.kafka_bootstrap, topic, group, "stat1",
                       instance="instance-1")
    wait_until(lambda: stable_with(srv, group, 2) and covering([dynamic, static], 4), 60,
               "two members covering 4 partitions")
    generation = group_row(srv, group)[1]
    old_member = srv.sql("SELECT member_id FROM streamlog.kafka_group_members() "
                         "WHERE group_id = %s AND group_instance_id = 'instance-1'", (group,))
    static_parts = list(static.assignment)
    dynamic_parts = list(dynamic.assignment)
    dynamic_assigns = dynamic.assign_events

    static.kill()
    restarted = consumers(tmp_path, log, "ck", srv.kafka_bootstrap, topic, group, "stat2",
                          instance="instance-1")
    wait_until(lambda: restarted.assignment == static_parts, 30,
               f"the restarted static member getting {static_parts} back")
    new_member = srv.sql("SELECT member_id FROM streamlog.kafka_group_members() "
                         "WHERE group_id = %s AND group_instance_id = 'instance-1'", (group,))
    assert new_member and new_member != old_member
    row = group_row(srv, group)
    assert row[0] == "Stable" and row[1] == generation and row[2] == 2
    assert dynamic.assignment == dynamic_parts
    assert dynamic.assign_events == dynamic_assigns

    # The old member id is fenced
    with kh.RawClient(srv.kafka_bootstrap) as c:
        error = parse_error_after_throttle(
            c.call(heartbeat_v3, group, generation, old_member[0][0], "instance-1"))
    assert error == FENCED_INSTANCE_ID


def test_committed_offsets_survive_restart_and_show_in_sql(make_server, unique_name):
    srv = make_server(conf=GROUP_CONF)
    topic, group = unique_name("restart"), unique_name("g")
    create_topic(srv, topic, 2)
    sql_produce(srv, topic, 2, 40)
    conf = {"bootstrap.servers": srv.kafka_bootstrap, "group.id": group,
            "session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": HEARTBEAT_MS,
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    c = Consumer(conf)
    c.subscribe([topic])
    taken = {0: 0, 1: 0}
    deadline = time.monotonic() + 60
    while sum(taken.values()) < 15 and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        assert m.offset() == taken[m.partition()]
        taken[m.partition()] += 1
        c.commit(message=m, asynchronous=False)
    assert sum(taken.values()) == 15
    committed = {tp.partition: tp.offset
                 for tp in c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)])}
    c.close()
    expected = {p: n for p, n in taken.items() if n > 0}
    assert {p: committed[p] for p in expected} == expected

    lag_sql = ("SELECT partition, committed_offset, lag FROM streamlog.consumer_lag "
               "WHERE group_id = %s AND topic = %s ORDER BY partition")
    before = srv.sql(lag_sql, (group, topic))
    assert [(p, o) for p, o, _ in before] == sorted(expected.items())
    assert all(lag == 20 - o for _, o, lag in before)

    srv.kill9()
    srv.start()
    assert srv.sql(lag_sql, (group, topic)) == before
    rows = srv.sql("SELECT partition, committed_offset, metadata FROM streamlog.group_offset "
                   "WHERE group_id = %s ORDER BY partition", (group,))
    assert [(p, o) for p, o, _ in rows] == sorted(expected.items())

    # A new consumer of the group resumes at the committed offsets
    c = Consumer(conf)
    c.subscribe([topic])
    first = {}
    deadline = time.monotonic() + 60
    while len(first) < 2 and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            first.setdefault(m.partition(), m.offset())
    c.close()
    assert first == {0: taken[0], 1: taken[1]}


def test_list_and_describe_groups(make_server, unique_name):
    srv = make_server(conf=GROUP_CONF)
    topic, group, simple = unique_name("listed"), unique_name("g"), unique_name("simple")
    create_topic(srv, topic, 3)
    c = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": group,
                  "client.id": "lister", "session.timeout.ms": SESSION_TIMEOUT_MS,
                  "heartbeat.interval.ms": HEARTBEAT_MS})
    c.subscribe([topic])
    try:
        wait_until(lambda: c.poll(0.1) is None and len(c.assignment()) == 3, 30,
                   "the consumer owning all 3 partitions")
        # A commit from outside any membership makes a group with offsets only
        simple_consumer = Consumer({"bootstrap.servers": srv.kafka_bootstrap,
                                    "group.id": simple})
        simple_consumer.commit(offsets=[TopicPartition(topic, 1, 5)], asynchronous=False)
        simple_consumer.close()

        admin = AdminClient({"bootstrap.servers": srv.kafka_bootstrap})
        listed = {g.id: g for g in admin.list_groups(timeout=10)}
        assert group in listed and simple in listed
        g = listed[group]
        assert (g.state, g.protocol_type, g.protocol) == ("Stable", "consumer", "range")
        assert len(g.members) == 1
        member = g.members[0]
        assert member.client_id == "lister"
        assert member.client_host.startswith("/127.0.0.1")
        assert member.metadata and member.assignment
        assert listed[simple].state == "Empty" and not listed[simple].members

        only = admin.list_groups(group=simple, timeout=10)
        assert [x.id for x in only] == [simple]

        from kafka import KafkaAdminClient
        kadmin = KafkaAdminClient(bootstrap_servers=srv.kafka_bootstrap)
        try:
            assert (group, "consumer") in kadmin.list_consumer_groups()
            described = kadmin.describe_consumer_groups([group])[0]
            assert described.state == "Stable" and described.protocol == "range"
            assignment = described.members[0].member_assignment.assignment
            assert [(t, sorted(ps)) for t, ps in assignment] == [(topic, [0, 1, 2])]
            offsets = kadmin.list_consumer_group_offsets(simple)
            assert [(tp.partition, om.offset) for tp, om in offsets.items()] == [(1, 5)]
        finally:
            kadmin.close()

        with kh.RawClient(srv.kafka_bootstrap) as raw:
            stable = parse_list_groups_v4(raw.call(list_groups_v4, ["stable"]))
            assert stable == {group: ("consumer", "Stable")}
            empty = parse_list_groups_v4(raw.call(list_groups_v4, ["Empty"]))
            assert empty == {simple: ("", "Empty")}
            # Offsets of a topic a member subscribes to stay
            error, parts = parse_offset_delete_v0(raw.call(offset_delete_v0, group, topic, [0]))
            assert error == NONE and parts == {0: GROUP_SUBSCRIBED_TO_TOPIC}
            error, parts = parse_offset_delete_v0(raw.call(offset_delete_v0, simple, topic, [1, 9]))
            assert error == NONE and parts == {1: NONE, 9: UNKNOWN_TOPIC_OR_PARTITION}
            error, _ = parse_offset_delete_v0(raw.call(offset_delete_v0, "nobody", topic, [1]))
            assert error == GROUP_ID_NOT_FOUND
        assert srv.sql("SELECT count(*) FROM streamlog.group_offset WHERE group_id = %s",
                       (simple,)) == [(0,)]
    finally:
        c.close()

    with kh.RawClient(srv.kafka_bootstrap) as raw:
        described = parse_describe_groups_v4(
            raw.call(describe_groups_v4, [group, simple, "never-seen"]))
    assert described[group]["state"] == "Empty"
    assert described[group]["protocol_type"] == "consumer"
    assert described[simple]["state"] == "Dead"     # its offsets were deleted
    assert described["never-seen"]["state"] == "Dead"
    assert all(d["error"] == NONE for d in described.values())


def test_raw_membership_and_commit_errors(make_server, unique_name):
    """The error paths: MEMBER_ID_REQUIRED, rebalance on join, stale
    generations (nothing committed), unknown and fenced members, leaving,
    deleting."""
    srv = make_server(conf={"streamlog.group_initial_rebalance_delay": 0})
    topic, group = unique_name("raw"), unique_name("g")
    create_topic(srv, topic, 2)
    boot = srv.kafka_bootstrap

    with kh.RawClient(boot) as c:
        fc = parse_find_coordinator_v1(c.call(find_coordinator_v1, group, 0))
        assert fc["error"] == NONE and fc["port"] == srv.kafka_port
        fc = parse_find_coordinator_v1(c.call(find_coordinator_v1, "txn", 1))
        # a node of its own coordinates transactional ids too
        assert fc["error"] == NONE and fc["port"] == srv.kafka_port
        assert parse_join_group_v5(c.call(join_group_v5, "", "", [topic]))["error"] == \
            INVALID_GROUP_ID
        assert parse_join_group_v5(c.call(join_group_v5, group, "", [topic],
                                          session_ms=10))["error"] == INVALID_SESSION_TIMEOUT
        assert parse_join_group_v5(c.call(join_group_v5, group, "nobody", [topic]))["error"] == \
            UNKNOWN_MEMBER_ID

    a, a_id = raw_join(boot, group, [topic])
    ja = parse_join_group_v5(a.call(join_group_v5, group, a_id, [topic]))
    assert ja["error"] == NONE and ja["leader"] == a_id and ja["member_id"] == a_id
    gen1 = ja["generation"]
    assert [m[0] for m in ja["members"]] == [a_id]
    sa = parse_sync_group_v3(a.call(sync_group_v3, group, gen1, a_id,
                                    [(a_id, consumer_assignment(topic, [0, 1]))]))
    assert sa["error"] == NONE and sa["assignment"] == consumer_assignment(topic, [0, 1])
    assert parse_error_after_throttle(a.call(heartbeat_v3, group, gen1, a_id)) == NONE
    assert parse_error_after_throttle(a.call(heartbeat_v3, group, gen1 + 7, a_id)) == \
        ILLEGAL_GENERATION
    assert parse_error_after_throttle(a.call(heartbeat_v3, group, gen1, "stranger")) == \
        UNKNOWN_MEMBER_ID

    # A second protocol type cannot join
    with kh.RawClient(boot) as x:
        assert parse_join_group_v5(x.call(join_group_v5, group, "", [topic],
                                          protocol_type="connect"))["error"] == \
            INCONSISTENT_GROUP_PROTOCOL

    ok = parse_offset_commit_v7(a.call(offset_commit_v7, group, gen1, a_id, topic, {0: 3, 1: 4}))
    assert ok == {(topic, 0): NONE, (topic, 1): NONE}

    # B joins: A's heartbeat says rebalance, B's join waits for A's
    b, b_id = raw_join(boot, group, [topic])
    cid = b.next_correlation_id()
    b.send(join_group_v5(cid, group, b_id, [topic]))
    wait_until(lambda: group_row(srv, group)[0] == "PreparingRebalance", 10, "a rebalance")
    assert parse_error_after_throttle(a.call(heartbeat_v3, group, gen1, a_id)) == \
        REBALANCE_IN_PROGRESS
    # Commits of the current generation are still accepted while preparing
    ok = parse_offset_commit_v7(a.call(offset_commit_v7, group, gen1, a_id, topic, {0: 5}))
    assert ok == {(topic, 0): NONE}
    ja = parse_join_group_v5(a.call(join_group_v5, group, a_id, [topic]))
    got, body = b.recv_frame()
    assert got == cid
    jb = parse_join_group_v5(body)
    gen2 = ja["generation"]
    assert gen2 == gen1 + 1 and jb["generation"] == gen2
    assert ja["leader"] == a_id and jb["leader"] == a_id
    assert sorted(m[0] for m in ja["members"]) == sorted([a_id, b_id]) and jb["members"] == []
    assert ja["protocol"] == jb["protocol"] == "range"

    # B's sync waits for the leader's
    cid = b.next_correlation_id()
    b.send(sync_group_v3(cid, group, gen2, b_id))
    # The old generation is fenced, and nothing of its commit is stored
    stale = parse_offset_commit_v7(a.call(offset_commit_v7, group, gen1, a_id, topic, {0: 9, 1: 9}))
    assert stale == {(topic, 0): ILLEGAL_GENERATION, (topic, 1): ILLEGAL_GENERATION}
    # Until the leader syncs, commits of the new generation wait for it
    pending = parse_offset_commit_v7(a.call(offset_commit_v7, group, gen2, a_id, topic, {0: 9}))
    assert pending == {(topic, 0): REBALANCE_IN_PROGRESS}
    sa = parse_sync_group_v3(a.call(sync_group_v3, group, gen2, a_id,
                                    [(a_id, consumer_assignment(topic, [0])),
                                     (b_id, consumer_assignment(topic, [1]))]))
    assert sa["error"] == NONE and sa["assignment"] == consumer_assignment(topic, [0])
    got, body = b.recv_frame()
    assert got == cid
    sb = parse_sync_group_v3(body)
    assert sb["error"] == NONE and sb["assignment"] == consumer_assignment(topic, [1])

    fetched, error = parse_offset_fetch_v5(b.call(offset_fetch_v5, group, topic, [0, 1]))
    assert error == NONE
    assert fetched == {(topic, 0): (5, "m", NONE), (topic, 1): (4, "m", NONE)}
    assert srv.sql("SELECT partition, committed_offset FROM streamlog.group_offset "
                   "WHERE group_id = %s ORDER BY partition", (group,)) == [(0, 5), (1, 4)]
    unknown = parse_offset_commit_v7(b.call(offset_commit_v7, group, gen2, b_id, "no-such-topic",
                                            {0: 1}))
    assert unknown == {("no-such-topic", 0): UNKNOWN_TOPIC_OR_PARTITION}
    assert parse_offset_commit_v7(b.call(offset_commit_v7, group, gen2, b_id, topic, {7: 1})) == \
        {(topic, 7): UNKNOWN_TOPIC_OR_PARTITION}
    # A commit from outside the membership is refused while the group has members
    assert parse_offset_commit_v7(b.call(offset_commit_v7, group, -1, "", topic, {1: 1})) == \
        {(topic, 1): UNKNOWN_MEMBER_ID}

    with kh.RawClient(boot) as c:
        assert parse_delete_groups_v1(c.call(delete_groups_v1, [group])) == \
            {group: NON_EMPTY_GROUP}

    # B leaves; A learns of the rebalance, rejoins alone and is leader
    error, members = parse_leave_group_v3(b.call(leave_group_v3, group, [(b_id, None),
                                                                        ("ghost", None)]))
    assert error == NONE and members == [(b_id, None, NONE), ("ghost", None, UNKNOWN_MEMBER_ID)]
    assert parse_error_after_throttle(a.call(heartbeat_v3, group, gen2, a_id)) == \
        REBALANCE_IN_PROGRESS
    ja = parse_join_group_v5(a.call(join_group_v5, group, a_id, [topic]))
    assert ja["error"] == NONE and ja["generation"] == gen2 + 1
    error, members = parse_leave_group_v3(a.call(leave_group_v3, group, [(a_id, None)]))
    assert members == [(a_id, None, NONE)]
    assert group_row(srv, group)[0] == "Empty"
    a.close()
    b.close()

    with kh.RawClient(boot) as c:
        assert parse_delete_groups_v1(c.call(delete_groups_v1, [group, "missing-group"])) == \
            {group: NONE, "missing-group": GROUP_ID_NOT_FOUND}
        fetched, _ = parse_offset_fetch_v5(c.call(offset_fetch_v5, group, topic, [0, 1]))
        assert fetched == {(topic, 0): (-1, "", NONE), (topic, 1): (-1, "", NONE)}
    assert srv.sql("SELECT count(*) FROM streamlog.group_offset WHERE group_id = %s",
                   (group,)) == [(0,)]


def test_raw_static_member_fencing_and_session_expiry(make_server, unique_name):
    """A static member rejoining replaces its old id; a member that stops
    heartbeating is removed after its session timeout."""
    srv = make_server(conf={"streamlog.group_initial_rebalance_delay": 0})
    topic, group = unique_name("fence"), unique_name("g")
    create_topic(srv, topic, 1)
    boot = srv.kafka_bootstrap

    with kh.RawClient(boot, timeout=30) as a:
        ja = parse_join_group_v5(a.call(join_group_v5, group, "", [topic], instance_id="i-1"))
        assert ja["error"] == NONE and ja["member_id"].startswith("i-1-")
        old_id, gen = ja["member_id"], ja["generation"]
        assert ja["members"] == [(old_id, "i-1", consumer_subscription([topic]))]
        sa = parse_sync_group_v3(a.call(sync_group_v3, group, gen, old_id,
                                        [(old_id, consumer_assignment(topic, [0]))], "i-1"))
        assert sa["error"] == NONE

        # The same instance again: a new id, same generation, same assignment
        ja2 = parse_join_group_v5(a.call(join_group_v5, group, "", [topic], instance_id="i-1"))
        new_id = ja2["member_id"]
        assert ja2["error"] == NONE and new_id != old_id and ja2["generation"] == gen
        assert ja2["leader"] == new_id
        sa = parse_sync_group_v3(a.call(sync_group_v3, group, gen, new_id, [], "i-1"))
        assert sa["error"] == NONE and sa["assignment"] == consumer_assignment(topic, [0])
        assert parse_error_after_throttle(a.call(heartbeat_v3, group, gen, old_id, "i-1")) == \
            FENCED_INSTANCE_ID
        assert parse_error_after_throttle(a.call(heartbeat_v3, group, gen, new_id, "i-1")) == NONE
        assert parse_offset_commit_v7(a.call(offset_commit_v7, group, gen, old_id, topic,
                                             {0: 1}, instance_id="i-1")) == \
            {(topic, 0): FENCED_INSTANCE_ID}
        assert group_row(srv, group)[:3] == ("Stable", gen, 1)

    # A member outlives its connection, as in Kafka: it is still there and
    # answers a heartbeat sent on another connection
    with kh.RawClient(boot, timeout=30) as b:
        assert parse_error_after_throttle(b.call(heartbeat_v3, group, gen, new_id, "i-1")) == \
            NONE
    assert group_row(srv, group)[:3] == ("Stable", gen, 1)

    # No more heartbeats: the member goes, and the server says it was for
    # want of a heartbeat within its session timeout
    log_offset = len(srv.log_text())
    wait_until(lambda: group_row(srv, group)[0] == "Empty", SESSION_TIMEOUT_MS / 1000 + 60,
               "the silent member's session expiring")
    assert group_row(srv, group)[1] == gen + 1
    kh.wait_log(srv, log_offset, rf'member "{re.escape(new_id)}" removed, '
                rf"no heartbeat for {SESSION_TIMEOUT_MS} ms")


def test_raw_large_member_metadata_is_shared_by_all_workers(make_server, unique_name):
    """Member metadata larger than the coordinator's first megabyte of
    shared memory: it grows, and every worker and backend reads it back."""
    srv = make_server(conf={"streamlog.group_initial_rebalance_delay": 0})
    topic, group = unique_name("big"), unique_name("g")
    create_topic(srv, topic, 1)
    boot = srv.kafka_bootstrap

    def subscription(fill):
        return i16(0) + array([topic], string) + kbytes(fill * 700000)

    def join(cid, member_id, fill):
        body = (string(group) + i32(SESSION_TIMEOUT_MS) + i32(10000) + string(member_id)
                + string(None) + string("consumer")
                + array(["range"], lambda p: string(p) + kbytes(subscription(fill))))
        return request_frame(JOIN_GROUP, 5, cid, body)

    a, a_id = raw_join(boot, group, [topic])
    ja = parse_join_group_v5(a.call(join, a_id, b"a"))
    assert ja["error"] == NONE
    b, b_id = raw_join(boot, group, [topic])
    with a, b:
        cid = b.next_correlation_id()
        b.send(join(cid, b_id, b"b"))
        wait_until(lambda: group_row(srv, group)[0] == "PreparingRebalance", 10, "a rebalance")
        ja = parse_join_group_v5(a.call(join, a_id, b"a"))
        got, body = b.recv_frame()
        assert got == cid and parse_join_group_v5(body)["error"] == NONE
        assert ja["error"] == NONE and ja["leader"] == a_id
        assert sorted((m[0], m[2]) for m in ja["members"]) == \
            sorted([(a_id, subscription(b"a")), (b_id, subscription(b"b"))])
        rows = srv.sql("SELECT member_id, metadata FROM streamlog.kafka_group_members() "
                       "WHERE group_id = %s ORDER BY member_id", (group,))
        assert sorted((m, bytes(meta)) for m, meta in rows) == \
            sorted([(a_id, subscription(b"a")), (b_id, subscription(b"b"))])
