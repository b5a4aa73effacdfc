"""Limits that keep one client, or a few, from taking the broker down
(issue 10, section 4): memory held for answers nobody reads, connections
per client address, client quotas, resource caps per role.  Others keep
being served and no broker worker restarts."""

import socket
import struct
import time

import psycopg
import pytest

import kafka_helpers as kh
from pgserver import free_port, wait_until

MIB = 1024 * 1024
INT32_MAX = 2**31 - 1


def stalled_connection(bootstrap):
    """A socket with a tiny receive buffer that will never be read."""
    host, port = bootstrap.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    return s


def assert_serves(srv, topic):
    """A round trip through the Kafka door: produce one record, read it back."""
    value = f"still serving {time.monotonic()}".encode()
    kh.kcat(["-b", srv.kafka_bootstrap, "-P", "-t", topic, "-p", "0"],
            input_data=value + b"\n")
    out = kh.kcat(["-b", srv.kafka_bootstrap, "-C", "-t", topic, "-p", "0",
                   "-o", "-1", "-e", "-q", "-f", "%s", "-X", "fetch.wait.max.ms=10"]).stdout
    assert out == value


def broker_stats(srv):
    return srv.sql("SELECT unsent_bytes, muted_connections FROM streamlog.broker_stats")[0]


# -- memory: answers nobody reads ---------------------------------------------------

def test_unread_huge_fetches_are_bounded_per_worker(make_server, unique_name):
    """Eight clients ask for 2 GB fetches of a 64 MB partition and never
    read.  Each would get a 55 MB answer (fetch_max_bytes), 440 MB in all;
    the worker holds about streamlog.max_unsent_bytes_per_worker instead,
    and still serves another client."""
    bound = 32 * MIB
    srv = make_server(conf={"streamlog.broker_workers": 1,
                            "streamlog.max_unsent_bytes_per_worker": f"{bound // MIB}MB"})
    [pid] = kh.broker_pids(srv)
    big = unique_name("unread")
    other = unique_name("served")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (big,))
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (other,))
    srv.sql("SELECT streamlog.produce(%s, NULL, repeat('x', %s)::bytea, partition => 0) "
            "  FROM generate_series(1, 64)", (big, 1000 * 1000))
    rss_before = kh.rss_kb(pid)

    stalled = []
    try:
        for _ in range(8):
            s = stalled_connection(srv.kafka_bootstrap)
            s.sendall(b"".join(kh.fetch_request(i, big, 0, 0, max_bytes=INT32_MAX,
                                                partition_max_bytes=INT32_MAX)
                               for i in range(16)))
            stalled.append(s)
        # every one of them has been answered something and is now muted
        wait_until(lambda: broker_stats(srv)[1] == 8, 60,
                   "the eight connections that do not read to be muted")
        unsent, muted = broker_stats(srv)
        # the bound, plus at most one batch (1 MB) and its framing for each
        # connection answered once the bound was reached
        assert unsent <= bound + 8 * (MIB + 64 * 1024), \
            f"{unsent // MIB} MB unsent, the bound is {bound // MIB} MB"
        grown = kh.rss_kb(pid) - rss_before
        assert grown < 200 * 1024, f"the worker grew by {grown // 1024} MB"

        # another client is served meanwhile, and nothing restarted
        assert_serves(srv, other)
        assert kh.broker_pids(srv) == [pid]
    finally:
        for s in stalled:
            s.close()
    wait_until(lambda: broker_stats(srv) == (0, 0), 30,
               "the closed connections' answers to be let go")
    assert_serves(srv, other)
    assert kh.broker_pids(srv) == [pid]


# -- connections per client address ------------------------------------------------

def connect_from(bootstrap, source):
    """A Kafka connection from the loopback address source."""
    host, port = bootstrap.rsplit(":", 1)
    c = kh.RawClient.__new__(kh.RawClient)
    c.sock = socket.create_connection((host, int(port)), timeout=30,
                                      source_address=(source, 0))
    c.timeout = 30
    c._correlation = 0
    return c


def served(client):
    """Does the broker answer an ApiVersions on this connection?"""
    try:
        return kh.Reader(client.call(kh.api_versions_request, 0)).i16() == kh.NONE
    except (ConnectionError, OSError):
        return False


def test_connections_per_ip_are_capped_across_workers(make_server):
    """streamlog.max_connections_per_ip (Kafka's max.connections.per.ip)
    counts one address's connections over all broker workers; past it a
    connection is refused with a log line, while another address, and one
    with an override, still get in."""
    srv = make_server(conf={"streamlog.broker_workers": 2,
                            "streamlog.max_connections_per_ip": 5,
                            "streamlog.max_connections_per_ip_overrides": "127.0.0.3:8"})
    offset = len(srv.log_text())
    clients = []
    try:
        # a flood from one address: five are served, whichever worker took them
        flood = [connect_from(srv.kafka_bootstrap, "127.0.0.1") for _ in range(12)]
        clients += flood
        assert sum(served(c) for c in flood) == 5
        kh.wait_log(srv, offset, r"refused a connection from 127\.0\.0\.1:\d+: "
                    r"5 connections from this address \(streamlog\.max_connections_per_ip\)")
        # another address still gets in
        other = connect_from(srv.kafka_bootstrap, "127.0.0.2")
        clients.append(other)
        assert served(other)
        # an address with an override gets its own number
        overridden = [connect_from(srv.kafka_bootstrap, "127.0.0.3") for _ in range(10)]
        clients += overridden
        assert sum(served(c) for c in overridden) == 8
    finally:
        for c in clients:
            c.close()
    # closed connections give their places back
    def one_more_served():
        with connect_from(srv.kafka_bootstrap, "127.0.0.1") as c:
            return served(c)
    wait_until(lambda: all(one_more_served() for _ in range(3)), 30,
               "the closed connections to be uncounted")
    # a reload changes the limit for new connections
    srv.update_conf({"streamlog.max_connections_per_ip": 1})
    srv.reload()
    held = connect_from(srv.kafka_bootstrap, "127.0.0.1")
    try:
        assert served(held)
        def second_refused():
            with connect_from(srv.kafka_bootstrap, "127.0.0.1") as c:
                return not served(c)
        wait_until(second_refused, 30, "the workers to apply the new limit")
    finally:
        held.close()


def test_bad_override_is_refused(make_server):
    srv = make_server(conf={"streamlog.broker_workers": 1})
    conn = srv.connect()
    for bad in ["127.0.0.1", "127.0.0.1:x", "not-an-address:3", "127.0.0.1:-1"]:
        with pytest.raises(Exception, match="max_connections_per_ip_overrides"):
            conn.execute("ALTER SYSTEM SET streamlog.max_connections_per_ip_overrides = "
                         f"'{bad}'")
    conn.execute("ALTER SYSTEM SET streamlog.max_connections_per_ip_overrides = "
                 "'127.0.0.1:3, [::1]:4,::1:5'")



def test_unauthenticated_connections_are_capped(make_server):
    """streamlog.max_unauthenticated_connections: connections on a SASL
    listener that have not logged in yet are capped per worker; past it a
    new one is refused with a log line, and the PLAINTEXT listener still
    serves."""
    srv = make_server(start=False)
    sasl_port = free_port()
    srv.update_conf({"streamlog.broker_workers": 1,
                     "streamlog.max_unauthenticated_connections": 2,
                     "streamlog.listeners": f"PLAINTEXT://127.0.0.1:{srv.kafka_port},"
                                            f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}"})
    srv.start()
    offset = len(srv.log_text())
    waiting = [kh.RawClient(f"127.0.0.1:{sasl_port}") for _ in range(3)]
    try:
        # ApiVersions is served before authentication: the two first are
        assert served(waiting[0]) and served(waiting[1])
        assert not served(waiting[2])
        kh.wait_log(srv, offset, r"connections are not authenticated yet "
                    r"\(streamlog\.max_unauthenticated_connections\)")
        with kh.RawClient(srv.kafka_bootstrap) as c:
            assert served(c)
    finally:
        for c in waiting:
            c.close()


def test_connections_per_listener_are_capped(make_server):
    """streamlog.listener_max_connections (Kafka's
    listener.name.NAME.max.connections): one listener's connections over
    all workers; past it a new one is refused with a log line, and the
    other listeners still serve."""
    srv = make_server(start=False)
    client_port = free_port()
    srv.update_conf({"streamlog.broker_workers": 2,
                     "streamlog.listener_max_connections": "client:2",
                     "streamlog.listeners": f"PLAINTEXT://127.0.0.1:{srv.kafka_port},"
                                            f"CLIENT://127.0.0.1:{client_port}",
                     "streamlog.listener_security_protocol_map":
                         "PLAINTEXT:PLAINTEXT,CLIENT:PLAINTEXT"})
    srv.start()
    offset = len(srv.log_text())
    clients = [kh.RawClient(f"127.0.0.1:{client_port}") for _ in range(4)]
    try:
        assert sum(served(c) for c in clients) == 2
        kh.wait_log(srv, offset, r"2 connections on listener CLIENT "
                    r"\(streamlog\.listener_max_connections\)")
        with kh.RawClient(srv.kafka_bootstrap) as c:
            assert served(c)
    finally:
        for c in clients:
            c.close()
    # closed connections give their places back
    def one_more_served():
        with kh.RawClient(f"127.0.0.1:{client_port}") as c:
            return served(c)
    wait_until(lambda: all(one_more_served() for _ in range(3)), 30,
               "the closed connections to be uncounted")

# -- client quotas -----------------------------------------------------------------

DESCRIBE_CLIENT_QUOTAS = 48
ALTER_CLIENT_QUOTAS = 49
CREATE_TOPICS = 19
INVALID_REQUEST = 42
CLUSTER_AUTHORIZATION_FAILED = 31
THROTTLING_QUOTA_EXCEEDED = 89
MATCH_EXACT, MATCH_DEFAULT, MATCH_ANY = 0, 1, 2


def nullable_string(s):
    return kh.i16(-1) if s is None else kh.string(s)


def describe_quotas_request(correlation_id, components, strict=False):
    """DescribeClientQuotas v0: components [(entity_type, match_type, match)]"""
    body = kh.array(components, lambda c: kh.string(c[0]) + kh.i8(c[1]) + nullable_string(c[2]))
    body += kh.i8(1 if strict else 0)
    return kh.request_frame(DESCRIBE_CLIENT_QUOTAS, 0, correlation_id, body)


def parse_describe_quotas(body):
    """(error_code, error_message, {((type, name), ...): {key: value}})"""
    r = kh.Reader(body)
    r.i32()  # throttle_time_ms
    error, message = r.i16(), r.string()
    entries = r.array(lambda r: (
        tuple(r.array(lambda r: (r.string(), r.string()))),
        r.array(lambda r: (r.string(), struct.unpack(">d", r.take(8))[0]))))
    return error, message, {e: dict(v) for e, v in entries or []}


def alter_quotas_request(correlation_id, entries, validate_only=False):
    """AlterClientQuotas v0: entries [([(type, name)], [(key, value or None)])]"""
    def entry(e):
        entity, ops = e
        return (kh.array(entity, lambda p: kh.string(p[0]) + nullable_string(p[1])) +
                kh.array(ops, lambda o: kh.string(o[0]) + struct.pack(">d", o[1] or 0.0) +
                         kh.i8(1 if o[1] is None else 0)))
    body = kh.array(entries, entry) + kh.i8(1 if validate_only else 0)
    return kh.request_frame(ALTER_CLIENT_QUOTAS, 0, correlation_id, body)


def parse_alter_quotas(body):
    """[(error_code, error_message)] per entry"""
    r = kh.Reader(body)
    r.i32()  # throttle_time_ms
    return r.array(lambda r: (r.i16(), r.string(),
                              r.array(lambda r: (r.string(), r.string())))[:2])


def test_quotas_are_one_store_for_sql_and_kafka(make_server):
    srv = make_server(conf={"streamlog.broker_workers": 1})
    conn = srv.connect()
    conn.execute("SELECT streamlog.alter_client_quota('{\"user\": \"alice\"}', "
                 "'producer_byte_rate', 1048576)")
    conn.execute("SELECT streamlog.alter_client_quota('{\"user\": null, \"client-id\": \"app\"}', "
                 "'consumer_byte_rate', 2097152)")
    with kh.RawClient(srv.kafka_bootstrap) as c:
        # everything: what SQL set is what Kafka describes
        error, _, entries = parse_describe_quotas(c.call(describe_quotas_request, []))
        assert error == kh.NONE
        assert entries == {
            (("user", "alice"),): {"producer_byte_rate": 1048576.0},
            (("user", None), ("client-id", "app")): {"consumer_byte_rate": 2097152.0},
        }
        # filters: an exact user; a default user, strict or not
        _, _, got = parse_describe_quotas(c.call(
            describe_quotas_request, [("user", MATCH_EXACT, "alice")]))
        assert list(got) == [(("user", "alice"),)]
        _, _, got = parse_describe_quotas(c.call(
            describe_quotas_request, [("user", MATCH_DEFAULT, None)]))
        assert list(got) == [(("user", None), ("client-id", "app"))]
        _, _, got = parse_describe_quotas(c.call(
            describe_quotas_request, [("user", MATCH_DEFAULT, None)], strict=True))
        assert got == {}
        _, _, got = parse_describe_quotas(c.call(
            describe_quotas_request, [("client-id", MATCH_ANY, None)]))
        assert list(got) == [(("user", None), ("client-id", "app"))]
        # a bad filter is answered with INVALID_REQUEST
        error, message, _ = parse_describe_quotas(c.call(
            describe_quotas_request, [("user", MATCH_ANY, None), ("user", MATCH_ANY, None)]))
        assert error == INVALID_REQUEST and "Duplicate" in message

        # Kafka sets and removes; SQL sees it
        results = parse_alter_quotas(c.call(alter_quotas_request, [
            ([("client-id", "etl")], [("request_percentage", 50.0)]),
            ([("user", "alice")], [("producer_byte_rate", None)]),
            ([("user", "bob")], [("producer_byte_rate", 1.5)]),     # not whole bytes
            ([("user", "bob")], [("no_such_quota", 1.0)]),
            ([("ip", "127.0.0.1")], [("connection_creation_rate", 1.0)]),
        ]))
        assert [r[0] for r in results] == [kh.NONE, kh.NONE, INVALID_REQUEST,
                                           INVALID_REQUEST, INVALID_REQUEST]
        assert "whole number" in results[2][1]
        assert "invalid quota key" in results[3][1]
        assert "not supported" in results[4][1]
        # validate_only checks and writes nothing
        results = parse_alter_quotas(c.call(alter_quotas_request, [
            ([("client-id", "dry")], [("consumer_byte_rate", 1000.0)])], validate_only=True))
        assert results == [(kh.NONE, None)]

    rows = srv.sql("SELECT user_name, client_id, quota_key, value "
                   "FROM streamlog.client_quotas ORDER BY quota_key")
    assert rows == [("<default>", "app", "consumer_byte_rate", 2097152.0),
                    (None, "etl", "request_percentage", 50.0)]
    # the same checks from SQL, with SQLSTATE 22023
    for entity, key, value, message in [
            ('{"user": "bob"}', "producer_byte_rate", 1.5, "whole number"),
            ('{"user": "bob"}', "no_such_quota", 1, "invalid quota key"),
            ('{"ip": "127.0.0.1"}', "producer_byte_rate", 1, "not supported"),
            ('{}', "producer_byte_rate", 1, "must name a user"),
            ('{"user": "bob"}', "producer_byte_rate", -1, "positive")]:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
            conn.execute("SELECT streamlog.alter_client_quota(%s, %s, %s)",
                         (entity, key, value))


def test_quotas_need_configs_privileges_on_the_cluster(make_server, unique_name):
    """As in Kafka: setting quotas needs ALTER_CONFIGS on the cluster and
    seeing them DESCRIBE_CONFIGS, through both doors (the Kafka clients act
    as streamlog.anonymous_role)."""
    role = unique_name("quota_role").replace(".", "_").replace("-", "_").lower()
    srv = make_server(conf={"streamlog.broker_workers": 1, "streamlog.anonymous_role": role})
    admin = srv.connect()
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    admin.execute("SELECT streamlog.alter_client_quota('{\"user\": \"x\"}', "
                  "'producer_byte_rate', 1000)")
    sql = psycopg.connect(host=srv.host, port=srv.port, user=role, dbname="postgres",
                          autocommit=True)
    set_quota = ("SELECT streamlog.alter_client_quota('{\"user\": \"y\"}', "
                 "'producer_byte_rate', 2000)")
    alter = [([("user", "z")], [("producer_byte_rate", 3000.0)])]

    # without the privileges
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="alter_configs"):
        sql.execute(set_quota)
    assert sql.execute("SELECT count(*) FROM streamlog.client_quotas").fetchone()[0] == 0
    with kh.RawClient(srv.kafka_bootstrap) as c:
        error, _, _ = parse_describe_quotas(c.call(describe_quotas_request, []))
        assert error == CLUSTER_AUTHORIZATION_FAILED
        assert parse_alter_quotas(c.call(alter_quotas_request, alter))[0][0] == \
            CLUSTER_AUTHORIZATION_FAILED

    # with them
    admin.execute("SELECT streamlog.grant('alter_configs', 'cluster', NULL, %s)", (role,))
    sql.execute(set_quota)
    with kh.RawClient(srv.kafka_bootstrap) as c:
        assert parse_alter_quotas(c.call(alter_quotas_request, alter)) == [(kh.NONE, None)]
        # ALTER_CONFIGS implies DESCRIBE_CONFIGS
        error, _, entries = parse_describe_quotas(c.call(describe_quotas_request, []))
        assert error == kh.NONE and len(entries) == 3
    assert sql.execute("SELECT count(*) FROM streamlog.client_quotas").fetchone()[0] == 3


def test_producer_over_its_byte_rate_is_throttled(make_server, unique_name):
    """A producer over producer_byte_rate gets throttle_time_ms (librdkafka's
    throttle_cb) of the size its excess calls for: sending at many times its
    quota, it is told to wait seconds, not milliseconds."""
    from confluent_kafka import Producer
    quota = 5_000
    srv = make_server(conf={"streamlog.broker_workers": 2})
    topic = unique_name("quota-produce")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    srv.sql("SELECT streamlog.alter_client_quota('{\"client-id\": \"slow\"}', "
            "'producer_byte_rate', %s)", (quota,))
    throttles = []
    producer = Producer({"bootstrap.servers": srv.kafka_bootstrap, "client.id": "slow",
                         "linger.ms": 5, "batch.size": 16384, "acks": 1,
                         "throttle_cb": lambda e: throttles.append(e.throttle_time)})
    value = b"x" * 1000
    # The broker's rate is over an 11 s window from the first byte, so a
    # throttle of a second needs 12 s' worth of quota in (60 kB): a producer
    # held back by a loaded machine gets there later, not never.  The workers
    # see a stored quota within a second, so the first batches may go free.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not throttles or max(throttles) < 1.0):
        try:
            producer.produce(topic, value=value, partition=0)
        except BufferError:
            producer.poll(0.05)
        producer.poll(0)
    accepted = kh.high_watermark(srv, topic) * len(value)
    producer.purge()
    producer.flush(30)
    assert accepted > 0
    assert throttles and max(throttles) > 0, "no throttle_time_ms reported"
    # what the broker measured: (rate - quota) / quota x window, and one
    # 16 kB batch alone is three seconds of this quota (ThrottleEvent gives
    # seconds)
    assert max(throttles) >= 1.0, f"throttle times {sorted(set(throttles))} s for " \
        f"{accepted} bytes accepted against a quota of {quota} bytes/s"


def test_consumer_over_its_byte_rate_is_throttled(make_server, unique_name):
    from confluent_kafka import Consumer
    srv = make_server(conf={"streamlog.broker_workers": 1})
    topic = unique_name("quota-fetch")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    srv.sql("SELECT streamlog.produce(%s, NULL, repeat('y', 10000)::bytea, partition => 0) "
            "  FROM generate_series(1, 300)", (topic,))
    srv.sql("SELECT streamlog.alter_client_quota('{\"user\": null, \"client-id\": null}', "
            "'consumer_byte_rate', 100000)")
    time.sleep(1.1)
    throttles = []
    consumer = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": "quota-reader",
                         "client.id": "reader", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False,
                         "throttle_cb": lambda e: throttles.append(e.throttle_time)})
    try:
        consumer.subscribe([topic])
        got = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (throttles and max(throttles) > 0):
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                got += 1
        assert throttles and max(throttles) > 0, f"no throttle after {got} records"
        # 3 MB at 100 kB/s: throttled well before the end
        assert got < 300
        # and still served, more slowly
        more = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and more == 0:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                more += 1
        assert more > 0, "a throttled consumer was never served again"
    finally:
        consumer.close()


def test_request_percentage_throttles_and_mutes(make_server):
    """request_percentage: a client whose requests took more of a worker's
    time than its share is answered with throttle_time_ms, and its
    connection is not served again before that time is up (KIP-219);
    another client's is."""
    srv = make_server(conf={"streamlog.broker_workers": 1})
    srv.sql("SELECT streamlog.alter_client_quota('{\"client-id\": \"raw-test\"}', "
            "'request_percentage', 0.0001)")
    time.sleep(1.1)
    with kh.RawClient(srv.kafka_bootstrap, timeout=60) as c:
        # Metadata v3: throttle_time_ms is the first field of its answer
        first = kh.Reader(c.call(kh.metadata_request, 3, None)).i32()
        second = kh.Reader(c.call(kh.metadata_request, 3, None)).i32()
        assert first == 0
        assert second > 0
        # the rest of the answer is intact
        body = c.call(kh.metadata_request, 3, None)
        r = kh.Reader(body)
        r.i32()
        brokers = r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
        assert len(brokers) == 1
    # another client id is not throttled
    with kh.RawClient(srv.kafka_bootstrap) as c:
        frame = kh.metadata_request(1, 3, None).replace(b"raw-test", b"raw-else")
        assert kh.Reader(c.call(lambda cid: frame)).i32() == 0


def test_throttle_time_is_where_each_answer_has_it(make_server, unique_name):
    """throttle_time_ms is the last field of a Produce answer and the first
    of most others: an answer that carries one still parses whole."""
    srv = make_server(conf={"streamlog.broker_workers": 1})
    topic = unique_name("throttle-field")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    srv.sql("SELECT streamlog.alter_client_quota('{\"client-id\": \"raw-test\"}', "
            "'producer_byte_rate', 1)")
    time.sleep(1.1)
    batch = kh.record_batch([(None, b"v" * 100, [], kh.now_ms())])
    with kh.RawClient(srv.kafka_bootstrap, timeout=60) as c:
        # the first is over the quota already: its own bytes count (Kafka's too)
        body = c.call(kh.produce_v8_request, topic, 0, batch)
        r = kh.Reader(body)
        responses = r.array(lambda r: (r.string(), r.array(lambda r: (
            r.i32(), r.i16(), r.i64(), r.i64(), r.i64(),
            r.array(lambda r: (r.i32(), r.string())), r.string()))))
        throttle = r.i32()
        assert r.at_end()
        assert responses[0][1][0][1] == kh.NONE
        assert throttle > 0
    with kh.RawClient(srv.kafka_bootstrap, timeout=60) as c:
        # v9, flexible: throttle_time_ms before the answer's tagged fields
        r = kh.Reader(c.call(produce_v9_request, topic, batch))
        r.uvarint()  # the response header's tagged fields
        assert r.uvarint() == 2  # one topic
        r.take(r.uvarint() - 1)
        assert r.uvarint() == 2  # one partition
        index, error = r.i32(), r.i16()
        r.i64(), r.i64(), r.i64()
        assert r.uvarint() == 1  # no record errors
        assert r.uvarint() == 0  # no error message
        assert r.uvarint() == 0  # tagged fields of the partition
        assert r.uvarint() == 0  # of the topic
        throttle = r.i32()
        assert r.uvarint() == 0 and r.at_end()
        assert (index, error) == (0, kh.NONE)
        assert throttle > 0
    assert kh.high_watermark(srv, topic) == 2


def produce_v9_request(correlation_id, topic, records):
    """Produce v9 (flexible, header v2), acks=all, partition 0"""
    def cstr(s):
        b = s.encode()
        return kh.uvarint(len(b) + 1) + b
    partition = kh.i32(0) + kh.uvarint(len(records) + 1) + records + kh.uvarint(0)
    body = (kh.uvarint(0) + kh.i16(-1) + kh.i32(10000) +
            kh.uvarint(2) + cstr(topic) + kh.uvarint(2) + partition + kh.uvarint(0) +
            kh.uvarint(0))
    return kh.request_frame(kh.PRODUCE, 9, correlation_id, body, header_version=2)


def create_topics_v6_request(correlation_id, name, partitions):
    """CreateTopics v6 (flexible, header v2): one topic, no configs"""
    def cstr(s):
        b = s.encode()
        return kh.uvarint(len(b) + 1) + b
    topic = cstr(name) + kh.i32(partitions) + kh.i16(-1) + kh.uvarint(1) + kh.uvarint(1) + kh.uvarint(0)
    body = kh.uvarint(2) + topic + kh.i32(10000) + kh.i8(0) + kh.uvarint(0)
    return kh.request_frame(CREATE_TOPICS, 6, correlation_id, body, header_version=2,
                            client_id="admin-flood")


def parse_create_topics_v6(body):
    """(throttle_time_ms, error_code) of its one topic"""
    r = kh.Reader(body)
    r.uvarint()  # the response header's tagged fields
    throttle = r.i32()
    r.uvarint()  # topics: one
    r.take(r.uvarint() - 1)  # name
    return throttle, r.i16()


def test_controller_mutation_rate_refuses_new_topics(make_server, unique_name):
    """KIP-599: past controller_mutation_rate (partitions per second),
    CreateTopics v6 is answered THROTTLING_QUOTA_EXCEEDED with the time to
    wait; another client still creates."""
    srv = make_server(conf={"streamlog.broker_workers": 1})
    srv.sql("SELECT streamlog.alter_client_quota('{\"client-id\": \"admin-flood\"}', "
            "'controller_mutation_rate', 2)")
    time.sleep(1.1)
    prefix = unique_name("mut")
    refused = None
    with kh.RawClient(srv.kafka_bootstrap, timeout=60) as c:
        for i in range(10):
            throttle, error = parse_create_topics_v6(
                c.call(create_topics_v6_request, f"{prefix}-{i}", 10))
            if error == THROTTLING_QUOTA_EXCEEDED:
                refused = (i, throttle)
                break
            assert error == kh.NONE
    assert refused is not None, "ten topics of ten partitions each at 2 partitions/s"
    i, throttle = refused
    assert throttle > 0
    assert srv.sql("SELECT count(*) FROM streamlog.topics WHERE topic = %s",
                   (f"{prefix}-{i}",))[0][0] == 0
    # others are not held up
    other = unique_name("other")
    with kh.RawClient(srv.kafka_bootstrap) as c:
        frame = create_topics_v6_request(1, other, 1).replace(b"admin-flood", b"admin-other")
        throttle, error = parse_create_topics_v6(c.call(lambda cid: frame))
        assert (throttle, error) == (0, kh.NONE)


# -- resource caps per role --------------------------------------------------------

def test_partitions_per_role_are_capped(make_server, unique_name):
    """streamlog.max_partitions_per_role counts the partitions of the topics a
    role owns: past it, creating a topic or adding partitions fails with
    53400 and says which limit; other roles, and superusers, go on."""
    srv = make_server(conf={"streamlog.broker_workers": 1,
                            "streamlog.max_partitions_per_role": 10})
    admin = srv.connect()
    for role in ("cap_a", "cap_b"):
        admin.execute(f"CREATE ROLE {role} LOGIN")
        # may create topics (CREATE on the cluster), and is no superuser
        admin.execute(f"GRANT streamlog_admin TO {role}")

    def as_role(role):
        return psycopg.connect(host=srv.host, port=srv.port, user=role,
                               dbname="postgres", autocommit=True)
    a = as_role("cap_a")
    first = unique_name("cap")
    a.execute("SELECT streamlog.create_topic(%s, 6)", (first,))
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded,
                       match=r"max_partitions_per_role"):
        a.execute("SELECT streamlog.create_topic(%s, 5)", (unique_name("cap"),))
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded):
        a.execute("SELECT streamlog.add_partitions(%s, 5)", (first,))
    a.execute("SELECT streamlog.add_partitions(%s, 4)", (first,))
    # another role has its own count; a superuser has none
    as_role("cap_b").execute("SELECT streamlog.create_topic(%s, 10)", (unique_name("cap"),))
    admin.execute("SELECT streamlog.create_topic(%s, 20)", (unique_name("cap"),))



JOIN_GROUP = 11
POLICY_VIOLATION = 44


def join_group_v0_request(correlation_id, group):
    body = (kh.string(group) + kh.i32(30000) + kh.string("") + kh.string("consumer") +
            kh.array([("range", b"")], lambda p: kh.string(p[0]) + kh.kbytes(p[1])))
    return kh.request_frame(JOIN_GROUP, 0, correlation_id, body)


def test_groups_and_partitions_per_role_through_kafka(make_server, unique_name):
    """Through the Kafka door, a role past streamlog.max_groups_per_role gets
    POLICY_VIOLATION for a new group, and past max_partitions_per_role for
    a new topic.  The clients act as streamlog.anonymous_role, a role that
    may do everything (streamlog_admin) and is no superuser."""
    role = unique_name("cap_anon").replace(".", "_").replace("-", "_").lower()
    srv = make_server(conf={"streamlog.broker_workers": 1,
                            "streamlog.anonymous_role": role,
                            "streamlog.group_initial_rebalance_delay": 0,
                            "streamlog.max_groups_per_role": 2,
                            "streamlog.max_partitions_per_role": 3})
    with srv.connect() as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT streamlog_admin TO "{role}"')
    clients = []
    try:
        errors = []
        for i in range(3):
            c = kh.RawClient(srv.kafka_bootstrap, timeout=30)
            clients.append(c)
            errors.append(kh.Reader(c.call(join_group_v0_request, f"{role}-g{i}")).i16())
        assert errors == [kh.NONE, kh.NONE, POLICY_VIOLATION]
        with kh.RawClient(srv.kafka_bootstrap) as c:
            _, error = parse_create_topics_v6(c.call(create_topics_v6_request, f"{role}-a", 3))
            assert error == kh.NONE
            _, error = parse_create_topics_v6(c.call(create_topics_v6_request, f"{role}-b", 1))
            assert error == POLICY_VIOLATION
    finally:
        for c in clients:
            c.close()
