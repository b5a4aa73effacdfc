"""Logins over TLS: SASL on a SASL_SSL listener (PLAIN is offered there
without streamlog.sasl_plain_without_tls, the password being encrypted),
and a verified client certificate on an SSL listener naming its role by
its CN, as PostgreSQL's cert authentication does."""

import pytest

import kafka_helpers as kh
import sasl_client as sc
from pgserver import free_port
from test_kafka_tls import Pki, client_context, tls_client

PASSWORD = "tls-pw"


def sasl_ssl_server(make_server, conf=None):
    """SASL_SSL on kafka_port, PLAINTEXT beside it"""
    srv = make_server(start=False)
    srv.pki = Pki(srv.base_dir)
    srv.plain_port = free_port()
    settings = {
        "ssl_cert_file": srv.pki.server_cert, "ssl_key_file": srv.pki.server_key,
        "ssl_ca_file": srv.pki.ca.cert,
        "streamlog.listeners": f"SASL_SSL://127.0.0.1:{srv.kafka_port},"
                               f"PLAINTEXT://127.0.0.1:{srv.plain_port}",
    }
    settings.update(conf or {})
    srv.update_conf(settings)
    srv.start()
    srv.sql(f"CREATE ROLE alice LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    srv.sql(f"SELECT streamlog.set_scram_sha512_password('alice', '{PASSWORD}')")
    return srv


def ck_conf(srv, mechanism):
    return {"security.protocol": "SASL_SSL", "ssl.ca.location": srv.pki.ca.cert,
            "sasl.mechanisms": mechanism, "sasl.username": "alice", "sasl.password": PASSWORD}


def kp_conf(srv, mechanism):
    return {"security_protocol": "SASL_SSL", "ssl_cafile": srv.pki.ca.cert,
            "sasl_mechanism": mechanism, "sasl_plain_username": "alice",
            "sasl_plain_password": PASSWORD}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_sasl_ssl_with_every_mechanism(make_server, unique_name):
    from confluent_kafka import Producer
    from kafka import KafkaProducer
    srv = sasl_ssl_server(make_server)
    topic = unique_name("saslssl")
    srv.sql("SELECT streamlog.create_topic(%s)", (topic,))
    expected = []
    for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        p = Producer({"bootstrap.servers": srv.kafka_bootstrap, **ck_conf(srv, mechanism)})
        p.produce(topic, value=f"ck-{mechanism}".encode(), partition=0)
        assert p.flush(60) == 0
        expected.append(f"ck-{mechanism}".encode())
        kp = KafkaProducer(bootstrap_servers=srv.kafka_bootstrap, request_timeout_ms=15000,
                           **kp_conf(srv, mechanism))
        kp.send(topic, value=f"kp-{mechanism}".encode(), partition=0).get(timeout=30)
        kp.close()
        expected.append(f"kp-{mechanism}".encode())
    got = kh.ck_consume(srv.kafka_bootstrap, topic, 0, 6, conf=ck_conf(srv, "SCRAM-SHA-512"))
    assert [m[2] for m in got] == expected
    got = kh.kp_consume(srv.kafka_bootstrap, topic, 0, 6, **kp_conf(srv, "SCRAM-SHA-256"))
    assert [m[2] for m in got] == expected


def test_plain_is_offered_over_tls(make_server):
    srv = sasl_ssl_server(make_server)
    with tls_client(srv) as c:
        c.__class__ = sc.SaslClient
        assert c.handshake("PLAIN") == (kh.NONE, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
        assert c.authenticate(sc.plain_token("alice", PASSWORD))[0] == kh.NONE


def mtls_server(make_server, conf=None):
    srv = make_server(start=False)
    srv.pki = Pki(srv.base_dir)
    srv.update_conf({
        "ssl_cert_file": srv.pki.server_cert, "ssl_key_file": srv.pki.server_key,
        "ssl_ca_file": srv.pki.ca.cert, "streamlog.ssl_client_auth": "requested",
        "streamlog.listeners": f"SSL://127.0.0.1:{srv.kafka_port}",
        **(conf or {}),
    })
    return srv.start()


def auto_create(c, topic):
    body = c.call(kh.metadata_request, 1, [topic])
    return kh.parse_metadata_v1(body)["topics"][topic]["error"]


def test_client_certificate_names_the_role(make_server, unique_name):
    srv = mtls_server(make_server)
    srv.sql("CREATE ROLE alice LOGIN SUPERUSER")
    topic = unique_name("cert")
    with tls_client(srv, client_context(srv, srv.pki.alice_cert, srv.pki.alice_key)) as c:
        assert auto_create(c, topic) == kh.NONE
    assert srv.sql("SELECT owner::regrole::text FROM streamlog.topic WHERE name = %s",
                   (topic,)) == [("alice",)]


def test_client_certificate_of_no_role_is_refused(make_server, unique_name):
    srv = mtls_server(make_server)
    srv.sql("CREATE ROLE alice NOLOGIN")
    offset = len(srv.log_text())
    with tls_client(srv, client_context(srv, srv.pki.alice_cert, srv.pki.alice_key)) as c:
        c.send(kh.metadata_request(c.next_correlation_id(), 1, []))
        assert c.wait_closed(timeout=60)
    kh.wait_log(srv, offset, r'closing connection from .*client certificate of role "alice": '
                             r'role "alice" is not permitted to log in')
    # a TLS client without a certificate, on this machine: the bootstrap superuser
    with tls_client(srv) as c:
        assert auto_create(c, unique_name("nocert")) == kh.NONE


def test_principal_mapping_rules(make_server, unique_name):
    """streamlog.ssl_principal_mapping_rules, Kafka's syntax: the first rule
    whose pattern matches the whole subject names the role"""
    srv = mtls_server(make_server, {"streamlog.ssl_principal_mapping_rules":
                                    r"RULE:^CN=([a-z]+),OU=Nowhere$/$1/, "
                                    r"RULE:^CN=(.*?),O=Example$/$1_svc/U, DEFAULT"})
    srv.sql("CREATE ROLE \"ALICE_SVC\" LOGIN SUPERUSER")
    topic = unique_name("rules")
    with tls_client(srv, client_context(srv, srv.pki.alice_cert, srv.pki.alice_key)) as c:
        assert auto_create(c, topic) == kh.NONE
    assert srv.sql("SELECT owner::regrole::text FROM streamlog.topic WHERE name = %s",
                   (topic,)) == [('"ALICE_SVC"',)]


def test_principal_mapping_rules_without_a_match(make_server):
    srv = mtls_server(make_server, {"streamlog.ssl_principal_mapping_rules":
                                    r"RULE:^CN=bob,.*$/bob/"})
    offset = len(srv.log_text())
    with tls_client(srv, client_context(srv, srv.pki.alice_cert, srv.pki.alice_key)) as c:
        c.send(kh.metadata_request(c.next_correlation_id(), 1, []))
        assert c.wait_closed(timeout=60)
    kh.wait_log(srv, offset, r"no rule of streamlog.ssl_principal_mapping_rules matches the "
                             r'client certificate\'s subject "CN=alice,O=Example"')
