"""Kafka-style listeners: streamlog.listeners, listener_security_protocol_map
and advertised_listeners.  Each listener has a name, a security protocol and
the address it advertises; a client sees the address of the listener it
came in on, as with Kafka.  A bad setting stops the server from starting,
saying what is wrong."""

import pytest

import kafka_helpers as kh
from pgserver import free_port


def metadata_broker(bootstrap):
    """(host, port) of the one broker in a Metadata v1 answer"""
    with kh.RawClient(bootstrap) as c:
        brokers = kh.parse_metadata_v1(c.call(kh.metadata_request, 1, []))["brokers"]
    assert len(brokers) == 1
    _node, host, port, _rack = brokers[0]
    return host, port


def find_coordinator(bootstrap, group):
    """(error, host, port) of FindCoordinator v0"""
    with kh.RawClient(bootstrap) as c:
        body = c.call(lambda cid: kh.request_frame(kh.FIND_COORDINATOR, 0, cid,
                                                   kh.string(group)))
    r = kh.Reader(body)
    error, _node, host, port = r.i16(), r.i32(), r.string(), r.i32()
    return error, host, port


def server_with_listeners(make_server, conf):
    """A server whose first listener is on its kafka_port (which the test
    harness waits for); conf is a function of that port"""
    srv = make_server(start=False)
    srv.update_conf(conf(srv.kafka_port))
    return srv.start()


def test_each_listener_advertises_its_own_address(make_server, unique_name):
    other = free_port()
    srv = server_with_listeners(make_server, lambda port: {
        "streamlog.listeners": f"INTERNAL://127.0.0.1:{port},EXTERNAL://127.0.0.1:{other}",
        "streamlog.listener_security_protocol_map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
        "streamlog.advertised_listeners": f"EXTERNAL://localhost:{other}",
    })
    internal = f"127.0.0.1:{srv.kafka_port}"
    external = f"127.0.0.1:{other}"

    assert metadata_broker(internal) == ("127.0.0.1", srv.kafka_port)
    assert metadata_broker(external) == ("localhost", other)
    assert find_coordinator(internal, "g") == (kh.NONE, "127.0.0.1", srv.kafka_port)
    assert find_coordinator(external, "g") == (kh.NONE, "localhost", other)

    # real clients work through either door
    from confluent_kafka import Producer
    topic = unique_name("listeners")
    srv.sql("SELECT streamlog.create_topic(%s)", (topic,))
    for i, bootstrap in enumerate((internal, external)):
        p = Producer({"bootstrap.servers": bootstrap})
        p.produce(topic, value=f"v{i}".encode(), partition=0)
        assert p.flush(30) == 0
    got = kh.ck_consume(external, topic, 0, 2)
    assert [m[2] for m in got] == [b"v0", b"v1"]

    # DescribeConfigs shows the listeners as Kafka writes them
    from confluent_kafka.admin import AdminClient, ConfigResource
    admin = AdminClient({"bootstrap.servers": internal})
    res = ConfigResource(ConfigResource.Type.BROKER, "1")
    cfg = admin.describe_configs([res])[res].result(timeout=30)
    assert cfg["listeners"].value == \
        f"INTERNAL://127.0.0.1:{srv.kafka_port},EXTERNAL://127.0.0.1:{other}"
    assert cfg["advertised.listeners"].value == \
        f"INTERNAL://127.0.0.1:{srv.kafka_port},EXTERNAL://localhost:{other}"


def test_advertised_listeners_change_on_reload(make_server):
    # one worker: which one answers must not decide what the test sees
    srv = server_with_listeners(make_server, lambda port: {
        "streamlog.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "streamlog.broker_workers": 1,
    })
    offset = len(srv.log_text())
    srv.update_conf({"streamlog.advertised_listeners": "PLAINTEXT://kafka.example:19092"})
    srv.reload()
    kh.wait_until(lambda: metadata_broker(srv.kafka_bootstrap) == ("kafka.example", 19092),
                  30, "the new advertised address")
    # a bad one is refused with a log line; the last good one stays
    srv.update_conf({"streamlog.advertised_listeners": "NOSUCH://h:1"})
    srv.reload()
    kh.wait_log(srv, offset, r"NOSUCH is not the name of a listener")
    assert metadata_broker(srv.kafka_bootstrap) == ("kafka.example", 19092)


def test_old_settings_are_one_plaintext_listener(make_server):
    srv = make_server(conf={"streamlog.advertised_host": "old.example",
                            "streamlog.advertised_port": 29092})
    assert metadata_broker(srv.kafka_bootstrap) == ("old.example", 29092)


def test_sasl_listener_accepts_connections(make_server):
    """Until SASL is served, a SASL_* listener accepts connections (its
    sessions say which protocol they came in on)"""
    srv = server_with_listeners(make_server, lambda port: {
        "streamlog.listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}",
    })
    with kh.RawClient(srv.kafka_bootstrap) as c:
        assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE


@pytest.mark.parametrize("conf, message", [
    ({"streamlog.listeners": "A://127.0.0.1:{port},A://127.0.0.1:{other}",
      "streamlog.listener_security_protocol_map": "A:PLAINTEXT"},
     r"listener name A is used twice"),
    ({"streamlog.listeners": "PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{port}"},
     r"listeners PLAINTEXT and SSL both use port"),
    ({"streamlog.listeners": "CLIENT://127.0.0.1:{port}"},
     r"listener CLIENT has no security protocol"),
    ({"streamlog.listeners": "CLIENT://127.0.0.1:{port}",
      "streamlog.listener_security_protocol_map": "CLIENT:TLS"},
     r'"TLS" is not a security protocol'),
    ({"streamlog.listeners": "PLAINTEXT://127.0.0.1:70000"},
     r"has no valid port \(1 to 65535\)"),
    ({"streamlog.listeners": "127.0.0.1:{port}"},
     r"is not of the form NAME://host:port"),
    ({"streamlog.listeners": "PLAINTEXT://127.0.0.1:{port}",
      "streamlog.advertised_listeners": "OTHER://h:1"},
     r"OTHER is not the name of a listener"),
])
def test_bad_listener_settings_refuse_to_start(make_server, conf, message):
    srv = make_server(start=False)
    other = free_port()
    srv.update_conf({k: v.format(port=srv.kafka_port, other=other) for k, v in conf.items()})
    with pytest.raises(RuntimeError, match="did not start"):
        srv.start()
    kh.wait_log(srv, 0, r"FATAL:  invalid value for parameter \"streamlog\.")
    kh.wait_log(srv, 0, message)
