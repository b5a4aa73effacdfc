"""Kafka connections and their limits.  streamlog.max_connections is the
number each broker worker serves, or the worker says at start why it
cannot.  Idle connections are closed after streamlog.connections_max_idle
(Kafka's connections.max.idle.ms, 10 minutes by default), so a client that
went away without closing, or one that hoards connections, does not keep
a slot forever.  A connection whose request is waiting for its answer (a
long-polling Fetch) is never idle."""

import pytest

import kafka_helpers as kh
from pgserver import wait_until

IDLE_MS = 1000


def hard_open_files_limit(srv):
    """The server's hard RLIMIT_NOFILE, from /proc"""
    with open(f"/proc/{srv.pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                hard = line.split()[4]
                return 1 << 62 if hard == "unlimited" else int(hard)
    raise AssertionError("no open files limit in /proc")


def open_connections(srv):
    return srv.sql("SELECT sum(connections) FROM streamlog.broker_stats")[0][0]


def test_idle_connection_is_closed(make_server):
    srv = make_server(conf={"streamlog.connections_max_idle": f"{IDLE_MS}ms"})
    offset = len(srv.log_text())
    with kh.RawClient(srv.kafka_bootstrap) as c:
        local = c.local_address
        assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE
        # nothing more is sent: the broker closes it (long before this deadline)
        assert c.wait_closed(timeout=60)
    kh.wait_log(srv, offset, f"closed the idle connection from {local}: "
                "nothing sent or received for 1000 ms", timeout=30)


def test_connection_with_a_parked_request_is_not_idle(make_server, unique_name):
    srv = make_server(conf={"streamlog.connections_max_idle": f"{IDLE_MS}ms"})
    topic = unique_name("idle")
    srv.sql("SELECT streamlog.create_topic(%s)", (topic,))
    with kh.RawClient(srv.kafka_bootstrap, timeout=60) as c:
        # parked for up to 5 s, five times the idle limit, with nothing new
        # to read: it is answered empty at its deadline, on an open connection
        body = c.call(kh.fetch_request, topic, 0, 0, max_wait_ms=5000, min_bytes=1)
        error, hw, records = kh.parse_fetch_v4(body)[(topic, 0)]
        assert (error, hw, records) == (kh.NONE, 0, b"")
        # and the connection still serves
        assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE


def test_idle_limit_zero_keeps_connections(make_server):
    srv = make_server(conf={"streamlog.connections_max_idle": "0"})
    with kh.RawClient(srv.kafka_bootstrap) as c:
        assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE
        wait_until(lambda: open_connections(srv) == 1, 30, "the connection to be counted")
        # a reload that turns the limit on closes it
        srv.update_conf({"streamlog.connections_max_idle": f"{IDLE_MS}ms"})
        srv.reload()
        assert c.wait_closed(timeout=60)


def test_max_connections_is_the_number_served(make_server):
    """streamlog.max_connections is what each worker serves: PostgreSQL's
    own descriptor budget (a third of max_files_per_process for sockets)
    no longer caps it near 330."""
    limit = 600
    srv = make_server(conf={"streamlog.broker_workers": 1,
                            "streamlog.max_connections": limit})
    if hard_open_files_limit(srv) < 2 * limit + 1024:
        pytest.skip("the server's hard limit of open files is too low for this test")
    clients = []
    try:
        for _ in range(limit):
            c = kh.RawClient(srv.kafka_bootstrap, timeout=60)
            clients.append(c)
            assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE
        # one more is refused, with a log line; the others keep being served
        offset = len(srv.log_text())
        with kh.RawClient(srv.kafka_bootstrap) as extra:
            assert extra.wait_closed(timeout=60)
        kh.wait_log(srv, offset, "refused a connection from .*: too many connections")
        for c in (clients[0], clients[-1]):
            assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE
    finally:
        for c in clients:
            c.close()


def test_an_impossible_max_connections_is_reported_at_start(make_server):
    # far above any hard limit of open files this machine gives the server
    srv = make_server(conf={"streamlog.broker_workers": 1,
                            "streamlog.max_connections": 100000})
    line = kh.wait_log(srv, 0, "can serve [0-9]+ connections, not "
                       "streamlog.max_connections = 100000")
    served = int(line.split("can serve ")[1].split()[0])
    assert 0 < served < 100000
