"""Who a Kafka session is on a listener without SASL, and that its requests
run as that role.  A client on this machine acts as the bootstrap superuser
(as initdb's trust for local connections: the quick start and the other
tests rely on it); streamlog.anonymous_role, when set, is the role clients
without credentials act as; a client from another machine with neither is
refused, with a log line naming the setting.

Requests run as the role: a topic a Kafka request creates (here by
auto-creating it from Metadata) is owned by it, as one created by a SQL
session's create_topic() is.  (Its segment tables belong to the extension's
owner, whoever creates them: storage reaches its tables as that role.)"""

import socket

import pytest

import kafka_helpers as kh

# An address of this machine that is not loopback, for clients that must
# count as remote; None if the machine has none.
def _non_loopback_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


REMOTE = _non_loopback_address()
needs_remote = pytest.mark.skipif(REMOTE is None, reason="no non-loopback address")


def remote_server(make_server, **conf):
    conf.setdefault("streamlog.listen_addresses", f"127.0.0.1,{REMOTE}")
    return make_server(conf=conf)


def topic_owner(srv, topic):
    return srv.sql("SELECT owner::regrole::text FROM streamlog.topic WHERE name = %s",
                   (topic,))[0][0]


def auto_create(bootstrap, topic):
    """Metadata v1 for topic, which creates it; the topic's error code"""
    with kh.RawClient(bootstrap) as c:
        body = c.call(kh.metadata_request, 1, [topic])
    return kh.parse_metadata_v1(body)["topics"][topic]["error"]


def test_local_client_acts_as_the_bootstrap_superuser(make_server, unique_name):
    srv = make_server()
    topic = unique_name("local")
    assert auto_create(srv.kafka_bootstrap, topic) == kh.NONE
    assert topic_owner(srv, topic) == "postgres"


@needs_remote
def test_remote_client_without_anonymous_role_is_refused(make_server):
    """Refused when it connects, as pg_hba.conf would: nobody could act for it"""
    srv = remote_server(make_server)
    offset = len(srv.log_text())
    with kh.RawClient(f"{REMOTE}:{srv.kafka_port}") as c:
        assert c.wait_closed(timeout=60)
    kh.wait_log(srv, offset, rf"refused a connection from {REMOTE}:\d+ on listener PLAINTEXT: "
                             r".*streamlog\.anonymous_role is not set")


@needs_remote
def test_requests_run_as_the_anonymous_role(make_server, unique_name):
    srv = remote_server(make_server, **{"streamlog.anonymous_role": "kafka_anon"})
    srv.sql("CREATE ROLE kafka_anon LOGIN")
    # what Kafka asks before auto-creating: DESCRIBE on the name, CREATE
    srv.sql("SELECT streamlog.grant('create', 'cluster', NULL, 'kafka_anon')")
    srv.sql("SELECT streamlog.grant('describe', 'topic', '*', 'kafka_anon')")
    topic = unique_name("anon")
    assert auto_create(f"{REMOTE}:{srv.kafka_port}", topic) == kh.NONE
    assert topic_owner(srv, topic) == "kafka_anon"
    # a local client acts as the anonymous role too, once it is set
    local_topic = unique_name("anonlocal")
    assert auto_create(srv.kafka_bootstrap, local_topic) == kh.NONE
    assert topic_owner(srv, local_topic) == "kafka_anon"


@pytest.mark.parametrize("role_sql, why", [
    ("CREATE ROLE kafka_anon NOLOGIN", 'role "kafka_anon" is not permitted to log in'),
    ("CREATE ROLE kafka_anon LOGIN VALID UNTIL '2001-01-01'", "past its VALID UNTIL time"),
    ("SELECT 1", 'names role "kafka_anon", which does not exist'),
])
def test_anonymous_role_that_may_not_log_in_is_refused(make_server, role_sql, why):
    srv = make_server(conf={"streamlog.anonymous_role": "kafka_anon"})
    srv.sql(role_sql)
    offset = len(srv.log_text())
    with kh.RawClient(srv.kafka_bootstrap) as c:
        c.send(kh.metadata_request(c.next_correlation_id(), 1, []))
        assert c.wait_closed(timeout=60)
    kh.wait_log(srv, offset, f"closing connection from .*streamlog.anonymous_role.*({why})")


def test_dropped_role_closes_its_sessions(make_server, unique_name):
    srv = make_server(conf={"streamlog.anonymous_role": "kafka_anon"})
    srv.sql("CREATE ROLE kafka_anon LOGIN SUPERUSER")
    with kh.RawClient(srv.kafka_bootstrap) as c:
        body = c.call(kh.metadata_request, 1, [])
        assert kh.parse_metadata_v1(body)["brokers"]
        offset = len(srv.log_text())
        srv.sql("DROP ROLE kafka_anon")
        c.send(kh.metadata_request(c.next_correlation_id(), 1, []))
        assert c.wait_closed(timeout=60)
    kh.wait_log(srv, offset, r"closing connection from .*its role \(oid \d+\) was dropped")


def test_anonymous_role_connection_limit(make_server):
    """The anonymous role's CONNECTION LIMIT counts its Kafka connections"""
    srv = make_server(conf={"streamlog.anonymous_role": "kafka_anon"})
    srv.sql("CREATE ROLE kafka_anon LOGIN CONNECTION LIMIT 1")
    with kh.RawClient(srv.kafka_bootstrap) as first:
        body = first.call(kh.metadata_request, 1, [])
        assert kh.parse_metadata_v1(body)["brokers"]
        offset = len(srv.log_text())
        with kh.RawClient(srv.kafka_bootstrap) as second:
            second.send(kh.metadata_request(second.next_correlation_id(), 1, []))
            assert second.wait_closed(timeout=60)
        kh.wait_log(srv, offset, r'closing connection from .*too many connections for role "kafka_anon"')
    # once the first closed, its slot is free again

    def another_is_served():
        with kh.RawClient(srv.kafka_bootstrap) as c:
            try:
                return bool(kh.parse_metadata_v1(c.call(kh.metadata_request, 1, []))["brokers"])
            except ConnectionError:
                return False
    from pgserver import wait_until
    wait_until(another_is_served, 60, "a connection once the first one closed")
