"""Idle Kafka connections are closed after streamlog.connections_max_idle
(Kafka's connections.max.idle.ms, 10 minutes by default), so a client that
went away without closing, or one that hoards connections, does not keep
a slot of streamlog.max_connections forever.  A connection whose request
is waiting for its answer (a long-polling Fetch) is never idle."""

import kafka_helpers as kh
from pgserver import wait_until

IDLE_MS = 1000


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
