"""Limits that keep one client, or a few, from taking the broker down
(issue 10, section 4): memory held for answers nobody reads, connections
per client address, client quotas, resource caps per role.  Others keep
being served and no broker worker restarts."""

import socket
import time

import pytest

import kafka_helpers as kh
from pgserver import wait_until

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
