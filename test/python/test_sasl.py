"""SASL: Kafka clients log in as PostgreSQL roles.

SCRAM-SHA-256 and PLAIN check the role's own verifier in pg_authid (one
password, set with CREATE/ALTER ROLE ... PASSWORD, for both doors);
SCRAM-SHA-512 checks streamlog's own verifier, set with
streamlog.set_scram_sha512_password().  Real clients over real sockets:
librdkafka (confluent-kafka; SaslHandshake v1 + SaslAuthenticate) and
kafka-python (SaslHandshake v0 + raw tokens); the refusals with raw frames
(sasl_client.py), each answered with Kafka's error and a log line worded
as PostgreSQL's."""

import pytest

import kafka_helpers as kh
import sasl_client as sc
from pgserver import PgServer, free_port, wait_until

PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def sasl_server(tmp_path_factory):
    """A server with a PLAINTEXT listener (the harness waits on it) and a
    SASL_PLAINTEXT one; srv.sasl_bootstrap is the latter."""
    srv = PgServer(tmp_path_factory.getbasetemp(), name="sasl")
    srv.sasl_port = free_port()
    srv.update_conf({
        "streamlog.listeners": f"PLAINTEXT://127.0.0.1:{srv.kafka_port},"
                               f"SASL_PLAINTEXT://127.0.0.1:{srv.sasl_port}",
    })
    srv.sasl_bootstrap = f"127.0.0.1:{srv.sasl_port}"
    try:
        srv.start()
        # superuser: storage reads its catalogue with the caller's privileges
        srv.sql(f"CREATE ROLE alice LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
        srv.sql(f"CREATE ROLE bob LOGIN PASSWORD '{PASSWORD}'")
        srv.sql(f"CREATE ROLE expired LOGIN PASSWORD '{PASSWORD}' VALID UNTIL '2001-01-01'")
        srv.sql(f"CREATE ROLE nologin NOLOGIN PASSWORD '{PASSWORD}'")
        srv.sql(f"SELECT streamlog.set_scram_sha512_password('alice', '{PASSWORD}-512')")
    except BaseException:
        srv.cleanup()
        raise
    yield srv
    srv.cleanup()


def sasl_server_with(make_server, **conf):
    srv = make_server(start=False)
    srv.sasl_port = free_port()
    conf["streamlog.listeners"] = (f"PLAINTEXT://127.0.0.1:{srv.kafka_port},"
                                   f"SASL_PLAINTEXT://127.0.0.1:{srv.sasl_port}")
    srv.update_conf(conf)
    srv.sasl_bootstrap = f"127.0.0.1:{srv.sasl_port}"
    srv.start()
    srv.sql(f"CREATE ROLE alice LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    return srv


def ck_conf(mechanism, user="alice", password=PASSWORD):
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": mechanism,
            "sasl.username": user, "sasl.password": password}


def kp_conf(mechanism, user="alice", password=PASSWORD):
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
            "sasl_plain_username": user, "sasl_plain_password": password}


def topic_owner(srv, topic):
    """The role that created the topic (its segment tables are the
    extension owner's, whoever creates them)"""
    return srv.sql("SELECT owner::regrole::text FROM streamlog.topic WHERE name = %s",
                   (topic,))[0][0]


def ck_round_trip(srv, topic, conf):
    """Produce three records with confluent-kafka and read them back"""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": srv.sasl_bootstrap, **conf})
    errors = []
    for i in range(3):
        p.produce(topic, value=f"v{i}".encode(), partition=0,
                  on_delivery=lambda err, _msg: errors.append(err) if err else None)
    assert p.flush(30) == 0 and errors == []
    got = kh.ck_consume(srv.sasl_bootstrap, topic, 0, 3, conf=conf)
    assert [r[2] for r in got] == [b"v0", b"v1", b"v2"]


def kp_round_trip(srv, topic, conf):
    """The same with kafka-python (SaslHandshake v0, raw tokens)"""
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=srv.sasl_bootstrap, request_timeout_ms=15000, **conf)
    try:
        for i in range(3):
            p.send(topic, value=f"v{i}".encode(), partition=0).get(timeout=30)
    finally:
        p.close()
    got = kh.kp_consume(srv.sasl_bootstrap, topic, 0, 3, **conf)
    assert [r[2] for r in got] == [b"v0", b"v1", b"v2"]


@pytest.mark.parametrize("mechanism, password", [
    ("SCRAM-SHA-256", PASSWORD),
    ("SCRAM-SHA-512", PASSWORD + "-512"),
])
def test_confluent_kafka_scram(sasl_server, unique_name, mechanism, password):
    topic = unique_name("ck")
    ck_round_trip(sasl_server, topic, ck_conf(mechanism, password=password))
    # the topic was auto-created by a request that ran as alice
    assert topic_owner(sasl_server, topic) == "alice"


@pytest.mark.parametrize("mechanism, password", [
    ("SCRAM-SHA-256", PASSWORD),
    ("SCRAM-SHA-512", PASSWORD + "-512"),
])
def test_kafka_python_scram(sasl_server, unique_name, mechanism, password):
    topic = unique_name("kp")
    sasl_server.sql("SELECT streamlog.create_topic(%s)", (topic,))
    kp_round_trip(sasl_server, topic, kp_conf(mechanism, password=password))


def test_one_password_for_both_doors(sasl_server):
    """ALTER ROLE ... PASSWORD changes the Kafka login too"""
    sasl_server.sql("CREATE ROLE dora LOGIN PASSWORD 'first-pw'")
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("dora", "first-pw")[0] == kh.NONE
    sasl_server.sql("ALTER ROLE dora PASSWORD 'second-pw'")
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("dora", "first-pw")[0] == sc.SASL_AUTHENTICATION_FAILED
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("dora", "second-pw")[0] == kh.NONE
    # and the same password logs in over SQL
    import psycopg
    psycopg.connect(host=sasl_server.host, port=sasl_server.port, user="dora",
                    password="second-pw", dbname="postgres").close()


def test_non_superuser_logs_in(sasl_server):
    """A role created WITH LOGIN PASSWORD, without any privilege, logs in
    and is served what needs no privilege"""
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE
        error, lifetime = c.scram_login("bob", PASSWORD)
        assert (error, lifetime) == (kh.NONE, 0)
        assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE


def refused(srv, login, log_pattern, expected_error=sc.SASL_AUTHENTICATION_FAILED):
    """login(client) returns the error code; it must be expected_error,
    the connection closed after it, and a log line match log_pattern"""
    offset = len(srv.log_text())
    with sc.SaslClient(srv.sasl_bootstrap) as c:
        assert login(c) == expected_error
        assert c.wait_closed(timeout=60)
    return kh.wait_log(srv, offset, log_pattern)


def test_wrong_password(sasl_server):
    refused(sasl_server, lambda c: c.scram_login("bob", "not-it")[0],
            r'password authentication failed for user "bob" \(Kafka login with SASL '
            r'SCRAM-SHA-256 from 127\.0\.0\.1:\d+\)')
    kh.wait_log(sasl_server, 0, r'DETAIL:  Password does not match for user "bob"')


def test_wrong_password_sha512(sasl_server):
    refused(sasl_server, lambda c: c.scram_login("alice", PASSWORD, "SCRAM-SHA-512")[0],
            r'password authentication failed for user "alice" \(Kafka login with SASL SCRAM-SHA-512')


def test_unknown_user(sasl_server):
    # the exchange runs to its end (a mock one): the answer tells nothing
    line = refused(sasl_server, lambda c: c.scram_login("nobody", PASSWORD)[0],
                   r'password authentication failed for user "nobody"')
    assert "SCRAM-SHA-256" in line


def test_expired_role(sasl_server):
    refused(sasl_server, lambda c: c.scram_login("expired", PASSWORD)[0],
            r'password authentication failed for user "expired"')
    kh.wait_log(sasl_server, 0, r'DETAIL:  User "expired" has an expired password')


def test_nologin_role(sasl_server):
    refused(sasl_server, lambda c: c.scram_login("nologin", PASSWORD)[0],
            r'role "nologin" is not permitted to log in \(Kafka login with SASL SCRAM-SHA-256')


@pytest.mark.parametrize("mechanism", ["OAUTHBEARER", "GSSAPI", "SCRAM-SHA-1"])
def test_unknown_mechanism(sasl_server, mechanism):
    refused(sasl_server, lambda c: c.handshake(mechanism)[0],
            rf'unsupported SASL mechanism "{mechanism}" requested by 127\.0\.0\.1',
            expected_error=sc.UNSUPPORTED_SASL_MECHANISM)


def test_handshake_lists_mechanisms(sasl_server):
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        error, mechanisms = c.handshake("SCRAM-SHA-256")
    # PLAIN is not offered without TLS (streamlog.sasl_plain_without_tls off)
    assert (error, mechanisms) == (kh.NONE, ["SCRAM-SHA-256", "SCRAM-SHA-512"])


def test_truncated_scram_exchange(sasl_server):
    def login(c):
        c.handshake("SCRAM-SHA-256")
        scram = sc.Scram("bob", PASSWORD)
        _, _, server_first, _ = c.authenticate(scram.first())
        final = scram.final(server_first)
        return c.authenticate(final[:final.index(b",p=") + 5])[0]
    refused(sasl_server, login, r"password authentication failed for user \"bob\"|"
                                r"malformed SASL SCRAM-SHA-256 message")


def test_truncated_client_first(sasl_server):
    def login(c):
        c.handshake("SCRAM-SHA-256")
        return c.authenticate(b"n,,n=bo")[0]
    refused(sasl_server, login, r"malformed SASL SCRAM-SHA-256 message from 127\.0\.0\.1:\d+: "
                                r"malformed nonce")


def test_replayed_client_final(sasl_server):
    """A client-final message seen on the wire does not log in again: the
    server's nonce differs in every exchange"""
    scram = sc.Scram("bob", PASSWORD, nonce="fixed-client-nonce")
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        c.handshake("SCRAM-SHA-256")
        _, _, server_first, _ = c.authenticate(scram.first())
        captured = scram.final(server_first)
        error, _, server_final, _ = c.authenticate(captured)
        assert error == kh.NONE
        scram.check_server_final(server_final)

    def replay(c):
        c.handshake("SCRAM-SHA-256")
        error, _, _, _ = c.authenticate(scram.first())
        assert error == kh.NONE
        return c.authenticate(captured)[0]
    refused(sasl_server, replay, r'password authentication failed for user "bob"')
    kh.wait_log(sasl_server, 0, r"DETAIL:  nonce differs from the one of this exchange")


def test_requests_before_authentication_close_the_connection(sasl_server):
    offset = len(sasl_server.log_text())
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        c.send(kh.metadata_request(c.next_correlation_id(), 1, []))
        assert c.wait_closed(timeout=60)
    kh.wait_log(sasl_server, offset, r"closing connection from 127\.0\.0\.1:\d+ .*Metadata request "
                                     r"v1: not authenticated")


def test_authenticate_without_handshake(sasl_server):
    refused(sasl_server, lambda c: c.authenticate(b"n,,n=bob,r=abc")[0],
            r"SaslAuthenticate from 127\.0\.0\.1:\d+ without a SaslHandshake",
            expected_error=sc.ILLEGAL_SASL_STATE)


def test_handshake_on_a_listener_without_sasl(sasl_server):
    with sc.SaslClient(sasl_server.kafka_bootstrap) as c:
        assert c.handshake("SCRAM-SHA-256")[0] == sc.ILLEGAL_SASL_STATE
        # the connection goes on, as the client's own role
        assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE


def test_connection_limit(sasl_server):
    sasl_server.sql(f"CREATE ROLE carol LOGIN CONNECTION LIMIT 2 PASSWORD '{PASSWORD}'")
    import psycopg
    sql_session = psycopg.connect(host=sasl_server.host, port=sasl_server.port, user="carol",
                                  password=PASSWORD, dbname="postgres")
    first = sc.SaslClient(sasl_server.sasl_bootstrap)
    try:
        assert first.scram_login("carol", PASSWORD)[0] == kh.NONE
        # one SQL session and one Kafka session: the limit is reached
        refused(sasl_server, lambda c: c.scram_login("carol", PASSWORD)[0],
                r'too many connections for role "carol" \(Kafka login with SASL SCRAM-SHA-256')
        sql_session.close()

        def third_logs_in():
            with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
                return c.scram_login("carol", PASSWORD)[0] == kh.NONE
        # the SQL backend exits after the client closed
        wait_until(third_logs_in, 60, "a login once the SQL session ended")
    finally:
        first.close()
        sql_session.close()


def test_scram_sha512_password_functions(sasl_server):
    sasl_server.sql(f"CREATE ROLE erin LOGIN PASSWORD '{PASSWORD}'")
    sasl_server.sql("GRANT USAGE ON SCHEMA streamlog TO erin")
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("erin", "erin-512", "SCRAM-SHA-512")[0] == \
            sc.SASL_AUTHENTICATION_FAILED
    kh.wait_log(sasl_server, 0, r'User "erin" has no SCRAM-SHA-512 credential')
    # a role may set its own, not another's
    import psycopg
    with psycopg.connect(host=sasl_server.host, port=sasl_server.port, user="erin",
                         password=PASSWORD, dbname="postgres", autocommit=True) as erin:
        erin.execute("SELECT streamlog.set_scram_sha512_password('erin', 'erin-512')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            erin.execute("SELECT streamlog.set_scram_sha512_password('bob', 'x-512-pw')")
        # nor read the verifiers
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            erin.execute("SELECT * FROM streamlog.scram_credential")
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("erin", "erin-512", "SCRAM-SHA-512")[0] == kh.NONE
    with pytest.raises(Exception, match="iterations must be between 4096 and 16384"):
        sasl_server.sql("SELECT streamlog.set_scram_sha512_password('erin', 'p', 100)")
    assert sasl_server.sql("SELECT streamlog.drop_scram_sha512_password('erin')") == [(True,)]
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("erin", "erin-512", "SCRAM-SHA-512")[0] == \
            sc.SASL_AUTHENTICATION_FAILED


def test_dropped_role_loses_its_sha512_credential(sasl_server):
    sasl_server.sql(f"CREATE ROLE frank LOGIN")
    sasl_server.sql("SELECT streamlog.set_scram_sha512_password('frank', 'frank-512')")
    sasl_server.sql("DROP ROLE frank")
    # a new role of the same name does not inherit it
    sasl_server.sql(f"CREATE ROLE frank LOGIN")
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("frank", "frank-512", "SCRAM-SHA-512")[0] == \
            sc.SASL_AUTHENTICATION_FAILED
    assert sasl_server.sql(
        "SELECT count(*) FROM streamlog.scram_credential c "
        "WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = c.role)") == [(0,)]


def test_plain_refused_without_tls(make_server, unique_name):
    srv = sasl_server_with(make_server)
    offset = len(srv.log_text())
    refused(srv, lambda c: c.handshake("PLAIN")[0],
            r"SASL mechanism PLAIN refused to 127\.0\.0\.1:\d+ on listener SASL_PLAINTEXT without TLS",
            expected_error=sc.UNSUPPORTED_SASL_MECHANISM)
    kh.wait_log(srv, offset, r"HINT:  .*streamlog.sasl_plain_without_tls = on")


def test_plain(make_server, unique_name):
    srv = sasl_server_with(make_server, **{"streamlog.sasl_plain_without_tls": True})
    topic = unique_name("plain")
    srv.sql("SELECT streamlog.create_topic(%s)", (topic,))
    ck_round_trip(srv, topic, ck_conf("PLAIN"))
    kp_round_trip(srv, unique_name("plainkp"), kp_conf("PLAIN"))
    # a wrong password: raw (kafka-python) and framed
    refused(srv, lambda c: c.handshake("PLAIN")[0] or
            c.authenticate(sc.plain_token("alice", "wrong"))[0],
            r'password authentication failed for user "alice" \(Kafka login with SASL PLAIN')
    offset = len(srv.log_text())
    with sc.SaslClient(srv.sasl_bootstrap) as c:
        assert c.handshake("PLAIN", version=0)[0] == kh.NONE
        c.send(b"\0\0\0\x0c" + sc.plain_token("alice", "wrong"))
        assert c.wait_closed(timeout=60)
    kh.wait_log(srv, offset, r'password authentication failed for user "alice" '
                             r'\(Kafka login with SASL PLAIN')
    # an MD5 verifier serves PLAIN too
    srv.sql("SET password_encryption = 'md5'; CREATE ROLE mdfive LOGIN PASSWORD 'md5-pw'")
    with sc.SaslClient(srv.sasl_bootstrap) as c:
        assert c.handshake("PLAIN")[0] == kh.NONE
        assert c.authenticate(sc.plain_token("mdfive", "md5-pw"))[0] == kh.NONE


def test_reauthentication(make_server):
    srv = sasl_server_with(make_server, **{"streamlog.connections_max_reauth": "1500ms"})
    with sc.SaslClient(srv.sasl_bootstrap) as c:
        assert c.scram_login("alice", PASSWORD) == (kh.NONE, 1500)
        # re-authentication on the open connection: same role, same mechanism
        assert c.scram_login("alice", PASSWORD) == (kh.NONE, 1500)
        body = c.call(kh.metadata_request, 1, [])
        assert kh.parse_metadata_v1(body)["brokers"]
    # another role on a re-authentication is refused
    srv.sql(f"CREATE ROLE other LOGIN PASSWORD '{PASSWORD}'")

    def switch(c):
        assert c.scram_login("alice", PASSWORD)[0] == kh.NONE
        return c.scram_login("other", PASSWORD)[0]
    refused(srv, switch, r're-authentication as role "other" on a session of role "alice" refused')
    # past the lifetime, anything but a re-authentication closes the connection
    offset = len(srv.log_text())
    with sc.SaslClient(srv.sasl_bootstrap) as c:
        assert c.scram_login("alice", PASSWORD)[0] == kh.NONE
        import time
        time.sleep(2.0)  # waits for the session's end, not for a result
        c.send(kh.metadata_request(c.next_correlation_id(), 1, []))
        assert c.wait_closed(timeout=60)
    kh.wait_log(srv, offset, r"authentication expired \(streamlog.connections_max_reauth\)")


RESOURCE_NOT_FOUND = 91
DUPLICATE_RESOURCE = 92
UNACCEPTABLE_CREDENTIAL = 93
CLUSTER_AUTHORIZATION_FAILED = 31


def test_alter_and_describe_user_scram_credentials(sasl_server):
    """Kafka's admin APIs manage the same credentials: SCRAM-SHA-256 is the
    role's pg_authid password (the SQL login changes too)"""
    sasl_server.sql("CREATE ROLE gina LOGIN")
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("alice", PASSWORD)[0] == kh.NONE
        assert sc.alter_scram(c, upsertions=[
            ("gina", "SCRAM-SHA-256", "gina-256", 4096),
            ("gina", "SCRAM-SHA-512", "gina-512", 8192),
        ]) == {"gina": (kh.NONE, None)}
        assert sc.describe_scram(c, ["gina"]) == (kh.NONE, None, {
            "gina": (kh.NONE, None, {"SCRAM-SHA-256": 4096, "SCRAM-SHA-512": 8192})})
        _, _, everyone = sc.describe_scram(c, None)
        assert everyone["gina"][2] == {"SCRAM-SHA-256": 4096, "SCRAM-SHA-512": 8192}
        assert everyone["alice"][2] == {"SCRAM-SHA-256": 4096, "SCRAM-SHA-512": 4096}
        # Kafka's refusals, per user
        assert sc.alter_scram(c, upsertions=[
            ("gina", "SCRAM-SHA-256", "x", 100),
            ("nosuchrole", "SCRAM-SHA-256", "x", 4096),
            ("hank", "SCRAM-SHA-1", "x", 4096),
        ], deletions=[("alice", "SCRAM-SHA-512"), ("alice", "SCRAM-SHA-512")]) == {
            "gina": (UNACCEPTABLE_CREDENTIAL, "Too few iterations"),
            "nosuchrole": (RESOURCE_NOT_FOUND,
                           'No role "nosuchrole": SCRAM credentials are for existing '
                           'PostgreSQL roles'),
            "hank": (sc.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"),
            "alice": (DUPLICATE_RESOURCE,
                      "A user credential cannot be altered twice in the same request"),
        }
        assert sc.describe_scram(c, ["nosuchrole", "gina", "gina"])[2] == {
            "nosuchrole": (RESOURCE_NOT_FOUND,
                           "Attempt to describe a user credential that does not exist", {}),
            "gina": (DUPLICATE_RESOURCE, "Cannot describe SCRAM credentials for the same "
                                         "user twice in a single request", {}),
        }
    # both work, over Kafka and over SQL
    for mechanism, password in [("SCRAM-SHA-256", "gina-256"), ("SCRAM-SHA-512", "gina-512")]:
        with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
            assert c.scram_login("gina", password, mechanism)[0] == kh.NONE
    import psycopg
    psycopg.connect(host=sasl_server.host, port=sasl_server.port, user="gina",
                    password="gina-256", dbname="postgres").close()
    # deletions
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("alice", PASSWORD)[0] == kh.NONE
        assert sc.alter_scram(c, deletions=[("gina", "SCRAM-SHA-256"),
                                            ("gina", "SCRAM-SHA-512")]) == {"gina": (kh.NONE, None)}
        assert sc.alter_scram(c, deletions=[("gina", "SCRAM-SHA-512")]) == {
            "gina": (RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist")}
    assert sasl_server.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'gina'") == [(None,)]


def test_scram_credential_apis_need_the_cluster_privilege(sasl_server):
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("bob", PASSWORD)[0] == kh.NONE
        error, message, results = sc.describe_scram(c, None)
        assert (error, results) == (CLUSTER_AUTHORIZATION_FAILED, {})
        assert sc.alter_scram(c, upsertions=[("alice", "SCRAM-SHA-256", "taken-over", 4096)]) == {
            "alice": (CLUSTER_AUTHORIZATION_FAILED,
                      "Altering SCRAM credentials needs ALTER on the cluster")}
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("alice", PASSWORD)[0] == kh.NONE


def kafkajs_sasl(srv, topic, mechanism, user, password, rounds=1, pause_ms=0):
    import json
    import os
    import subprocess
    from kafkajs import JS_DIR, ensure_kafkajs
    node = ensure_kafkajs()
    res = subprocess.run([node, os.path.join(JS_DIR, "sasl.js"), srv.sasl_bootstrap, topic,
                          mechanism, user, password, str(rounds), str(pause_ms)],
                         capture_output=True, text=True, timeout=120)
    return res.returncode, res.stdout, res.stderr


@pytest.mark.parametrize("mechanism, password", [
    ("scram-sha-256", PASSWORD),
    ("scram-sha-512", PASSWORD + "-512"),
])
def test_kafkajs_scram(sasl_server, unique_name, mechanism, password):
    topic = unique_name("js")
    sasl_server.sql("SELECT streamlog.create_topic(%s)", (topic,))
    rc, out, err = kafkajs_sasl(sasl_server, topic, mechanism, "alice", password, rounds=2)
    assert rc == 0, err
    assert kh.high_watermark(sasl_server, topic) == 2
    rc, out, err = kafkajs_sasl(sasl_server, topic, mechanism, "alice", "wrong")
    assert rc != 0 and "SASL" in err


def test_kafkajs_reauthenticates(make_server, unique_name):
    """kafkajs learns the session lifetime from SaslAuthenticate v1 and
    logs in again on the open connection before it ends"""
    srv = sasl_server_with(make_server, **{"streamlog.connections_max_reauth": "2000ms",
                                           "log_min_messages": "debug1"})
    topic = unique_name("jsreauth")
    srv.sql("SELECT streamlog.create_topic(%s)", (topic,))
    rc, out, err = kafkajs_sasl(srv, topic, "scram-sha-256", "alice", PASSWORD,
                                rounds=3, pause_ms=2500)
    assert rc == 0, err
    assert kh.high_watermark(srv, topic) == 3
    kh.wait_log(srv, 0, r"re-authenticated from 127\.0\.0\.1:\d+ as role \"alice\" "
                        r"with SASL SCRAM-SHA-256")


def test_non_ascii_password(make_server):
    """PostgreSQL stores the verifier of the SASLprep'd password (a no-break
    space becomes a space); Kafka clients compute SCRAM from the raw UTF-8:
    such a password works over SQL and PLAIN, not over SCRAM-SHA-256"""
    srv = sasl_server_with(make_server, **{"streamlog.sasl_plain_without_tls": True})
    password = "pass\u00a0word"
    srv.sql(f"CREATE ROLE nbsp LOGIN PASSWORD '{password}'")
    import psycopg
    psycopg.connect(host=srv.host, port=srv.port, user="nbsp", password=password,
                    dbname="postgres").close()
    with sc.SaslClient(srv.sasl_bootstrap) as c:
        assert c.handshake("PLAIN")[0] == kh.NONE
        assert c.authenticate(sc.plain_token("nbsp", password))[0] == kh.NONE
    with sc.SaslClient(srv.sasl_bootstrap) as c:
        assert c.scram_login("nbsp", password)[0] == sc.SASL_AUTHENTICATION_FAILED
    with sc.SaslClient(srv.sasl_bootstrap) as c:
        assert c.scram_login("nbsp", "pass word")[0] == kh.NONE


def test_cluster_privileges_allow_the_scram_credential_apis(sasl_server):
    """ALTER and DESCRIBE on the cluster (streamlog.grant) are Kafka's
    rules; still, only a superuser alters a superuser's credentials"""
    sasl_server.sql(f"CREATE ROLE ops LOGIN PASSWORD '{PASSWORD}'")
    sasl_server.sql(f"CREATE ROLE ivan LOGIN PASSWORD '{PASSWORD}'")
    sasl_server.sql("SELECT streamlog.grant('alter, describe', 'cluster', 'kafka-cluster', 'ops')")
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("ops", PASSWORD)[0] == kh.NONE
        assert sc.alter_scram(c, upsertions=[("ivan", "SCRAM-SHA-512", "ivan-512", 4096)]) == {
            "ivan": (kh.NONE, None)}
        assert sc.describe_scram(c, ["ivan"])[2] == {
            "ivan": (kh.NONE, None, {"SCRAM-SHA-256": 4096, "SCRAM-SHA-512": 4096})}
        assert sc.alter_scram(c, upsertions=[("alice", "SCRAM-SHA-256", "x-pw", 4096)]) == {
            "alice": (CLUSTER_AUTHORIZATION_FAILED,
                      "Altering SCRAM credentials needs ALTER on the cluster")}
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("ivan", "ivan-512", "SCRAM-SHA-512")[0] == kh.NONE


def test_large_frame_before_authentication(sasl_server):
    """Before logging in, a client may not make the worker read a large
    frame (Kafka's sasl.server.max.receive.size, 512 KiB)"""
    import struct
    offset = len(sasl_server.log_text())
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        c.send(struct.pack(">i", 1024 * 1024) + b"\0" * 1024)
        assert c.wait_closed(timeout=60)
    kh.wait_log(sasl_server, offset, r"frame size 1048576 is more than a client may send before "
                                     r"it authenticates \(524288\)")
    # once logged in, it may
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("bob", PASSWORD)[0] == kh.NONE
        body = c.call(lambda cid: kh.request_frame(kh.API_VERSIONS, 0, cid, b"\0" * (1024 * 1024)))
        assert kh.Reader(body).i16() == kh.NONE


def test_failed_reauthentication_ends_the_login_for_pipelined_requests(sasl_server, unique_name):
    """A Produce read together with a failing re-authentication behind it
    runs after it (Produces of a loop are committed together): it must
    not run then, neither as the role nor as anyone else"""
    topic = unique_name("pipelined")
    sasl_server.sql("SELECT streamlog.create_topic(%s)", (topic,))
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("alice", PASSWORD)[0] == kh.NONE
        batch = kh.record_batch([(b"k", b"v", [], kh.now_ms())])
        frames = (kh.produce_request(c.next_correlation_id(), topic, [(0, batch)]) +
                  kh.request_frame(sc.SASL_HANDSHAKE, 1, c.next_correlation_id(),
                                   kh.string("SCRAM-SHA-256")) +
                  kh.request_frame(sc.SASL_AUTHENTICATE, 1, c.next_correlation_id(),
                                   kh.kbytes(b"not a client-first message")))
        c.send(frames)  # one write: read by the worker in one loop
        assert c.wait_closed(timeout=60)
    kh.wait_log(sasl_server, 0, r"malformed SASL SCRAM-SHA-256 message")
    assert kh.high_watermark(sasl_server, topic) == 0


def test_authenticate_out_of_step_after_login_or_without_sasl(sasl_server):
    """As Kafka: SaslAuthenticate where there is nothing to authenticate is
    answered ILLEGAL_SASL_STATE and the connection goes on"""
    with sc.SaslClient(sasl_server.kafka_bootstrap) as c:
        assert c.authenticate(b"n,,n=bob,r=abc")[0] == sc.ILLEGAL_SASL_STATE
        assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("bob", PASSWORD)[0] == kh.NONE
        assert c.authenticate(b"n,,n=bob,r=abc")[0] == sc.ILLEGAL_SASL_STATE
        assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE


def test_nothing_after_a_failed_login(sasl_server):
    """A handshake pipelined behind a failed login starts nothing"""
    offset = len(sasl_server.log_text())
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        handshake = lambda cid: kh.request_frame(sc.SASL_HANDSHAKE, 1, cid,  # noqa: E731
                                                 kh.string("SCRAM-SHA-256"))
        c.send(handshake(c.next_correlation_id()) +
               kh.request_frame(sc.SASL_AUTHENTICATE, 1, c.next_correlation_id(),
                                kh.kbytes(b"garbage")) +
               handshake(c.next_correlation_id()))
        assert c.wait_closed(timeout=60)
    kh.wait_log(sasl_server, offset, r"unexpected SaslHandshake from 127\.0\.0\.1:\d+, "
                                     r"closing the connection")


def test_sasl_authenticate_v2(sasl_server):
    """SaslAuthenticate v2, the flexible version (compact bytes, tagged fields)"""
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.handshake("SCRAM-SHA-256")[0] == kh.NONE
        scram = sc.Scram("bob", PASSWORD)

        def authenticate_v2(token):
            cid = c.next_correlation_id()
            c.send(kh.request_frame(sc.SASL_AUTHENTICATE, 2, cid,
                                    kh.uvarint(len(token) + 1) + token + kh.uvarint(0),
                                    header_version=2))
            got, payload = c.recv_frame()
            assert got == cid
            r = kh.Reader(payload)
            r.uvarint()  # response header tagged fields
            error = r.i16()
            n = r.uvarint()
            message = None if n == 0 else r.take(n - 1).decode()
            auth = r.take(r.uvarint() - 1)
            lifetime = r.i64()
            r.uvarint()
            assert r.at_end()
            return error, message, auth, lifetime
        error, _, server_first, _ = authenticate_v2(scram.first())
        assert error == kh.NONE
        error, message, server_final, lifetime = authenticate_v2(scram.final(server_first))
        assert (error, message, lifetime) == (kh.NONE, None, 0)
        scram.check_server_final(server_final)


def test_connection_limit_counts_kafka_sessions_at_the_sql_door(sasl_server):
    """One CONNECTION LIMIT for both doors: a Kafka session counts against
    a SQL login too"""
    import psycopg
    sasl_server.sql(f"CREATE ROLE judy LOGIN CONNECTION LIMIT 1 PASSWORD '{PASSWORD}'")
    with sc.SaslClient(sasl_server.sasl_bootstrap) as c:
        assert c.scram_login("judy", PASSWORD)[0] == kh.NONE
        with pytest.raises(psycopg.OperationalError, match='too many connections for role "judy"'):
            psycopg.connect(host=sasl_server.host, port=sasl_server.port, user="judy",
                            password=PASSWORD, dbname="postgres", connect_timeout=10)

    def sql_login_works():
        try:
            psycopg.connect(host=sasl_server.host, port=sasl_server.port, user="judy",
                            password=PASSWORD, dbname="postgres", connect_timeout=10).close()
            return True
        except psycopg.OperationalError:
            return False
    # once the Kafka session closed
    wait_until(sql_login_works, 60, "a SQL login once the Kafka session closed")
