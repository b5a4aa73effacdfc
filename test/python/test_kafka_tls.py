"""TLS on the Kafka listeners of protocol SSL (and SASL_SSL): real clients
over real TLS, client certificates (streamlog.ssl_client_auth), TLS 1.2 at
least, a handshake that stalls holding up no one, garbage refused, and the
certificate reloaded on SIGHUP.  Certificates are made by the test with the
openssl command line tool."""

import json
import os
import socket
import ssl
import subprocess

import pytest

import kafka_helpers as kh
from kafkajs import JS_DIR, ensure_kafkajs
from pgserver import free_port, wait_until
from tls_certs import CertificateAuthority


class Pki:
    """A CA, a server certificate for localhost and 127.0.0.1, a client
    certificate, and a client certificate from another CA"""

    def __init__(self, directory):
        self.directory = directory
        self.ca = CertificateAuthority(directory, "ca")
        self.server_cert, self.server_key = self.ca.issue(
            "server", "/O=Streamlog/CN=localhost", san="DNS:localhost,IP:127.0.0.1")
        self.alice_cert, self.alice_key = self.ca.issue(
            "alice", "/O=Example/CN=alice", client=True)
        self.other_ca = CertificateAuthority(directory, "other-ca")
        self.mallory_cert, self.mallory_key = self.other_ca.issue(
            "mallory", "/O=Example/CN=mallory", client=True)


def tls_server(make_server, conf=None, server_settings=True):
    """A server with an SSL listener on its kafka_port and a PLAINTEXT one
    beside it; the certificate comes from PostgreSQL's ssl_cert_file and
    ssl_key_file (server_settings) or from streamlog.ssl_*"""
    srv = make_server(start=False)
    srv.pki = Pki(srv.base_dir)
    srv.plain_port = free_port()
    files = {"cert_file": srv.pki.server_cert, "key_file": srv.pki.server_key,
             "ca_file": srv.pki.ca.cert}
    prefix = "" if server_settings else "streamlog."
    settings = {f"{prefix}ssl_{k}": v for k, v in files.items()}
    settings.update({
        "streamlog.listeners":
            f"SSL://127.0.0.1:{srv.kafka_port},PLAINTEXT://127.0.0.1:{srv.plain_port}",
        "log_connections": True,
    })
    settings.update(conf or {})
    srv.update_conf(settings)
    return srv.start()


def client_context(srv, cert=None, key=None, minimum=None, maximum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(srv.pki.ca.cert)
    if cert:
        ctx.load_cert_chain(cert, key)
    if minimum or maximum:
        # let this side offer old versions, so that the server is what refuses
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = minimum or ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = maximum or ssl.TLSVersion.MAXIMUM_SUPPORTED
    return ctx


def tls_client(srv, ctx=None, timeout=30):
    """A raw Kafka client over TLS to the server's SSL listener"""
    c = kh.RawClient(srv.kafka_bootstrap, timeout=timeout)
    c.sock = (ctx or client_context(srv)).wrap_socket(c.sock, server_hostname="localhost")
    return c


def api_versions_ok(c):
    return kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE


def ck_ssl(srv, cert=None, key=None):
    conf = {"security.protocol": "SSL", "ssl.ca.location": srv.pki.ca.cert}
    if cert:
        conf.update({"ssl.certificate.location": cert, "ssl.key.location": key})
    return conf


def ck_produce(srv, topic, values, conf):
    from confluent_kafka import Producer
    p = Producer(dict(conf, **{"bootstrap.servers": srv.kafka_bootstrap}))
    for v in values:
        p.produce(topic, value=v, partition=0)
    assert p.flush(60) == 0


def refused(srv, ctx):
    """True if the server ends the TLS session instead of answering"""
    try:
        with tls_client(srv, ctx) as c:
            return not api_versions_ok(c)
    except (ssl.SSLError, ConnectionError, OSError):
        return True


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_confluent_kafka_and_kafka_python_over_ssl(make_server, unique_name):
    srv = tls_server(make_server)
    topic = unique_name("tls")
    srv.sql("SELECT streamlog.create_topic(%s)", (topic,))

    ck_produce(srv, topic, [b"ck-%d" % i for i in range(100)], ck_ssl(srv))
    got = kh.ck_consume(srv.kafka_bootstrap, topic, 0, 100, conf=ck_ssl(srv))
    assert [m[2] for m in got] == [b"ck-%d" % i for i in range(100)]

    from kafka import KafkaProducer
    kp_ssl = {"security_protocol": "SSL", "ssl_cafile": srv.pki.ca.cert}
    p = KafkaProducer(bootstrap_servers=srv.kafka_bootstrap, **kp_ssl)
    for i in range(100):
        p.send(topic, value=b"kp-%d" % i, partition=0)
    p.flush(60)
    p.close()
    got = kh.kp_consume(srv.kafka_bootstrap, topic, 0, 200, **kp_ssl)
    assert [m[2] for m in got][100:] == [b"kp-%d" % i for i in range(100)]

    # the PLAINTEXT listener beside it still serves
    plain = kh.ck_consume(f"127.0.0.1:{srv.plain_port}", topic, 0, 200)
    assert len(plain) == 200


def test_kafkajs_over_ssl(make_server, unique_name):
    node = ensure_kafkajs()
    srv = tls_server(make_server)
    topic = unique_name("tls-js")
    srv.sql("SELECT streamlog.create_topic(%s)", (topic,))
    res = subprocess.run([node, os.path.join(JS_DIR, "produce.js"), srv.kafka_bootstrap, topic, "10"],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, KAFKAJS_SSL_CA=srv.pki.ca.cert))
    assert res.returncode == 0, res.stderr
    for send in json.loads(res.stdout)["sent"]:
        assert all(r["errorCode"] == 0 for r in send), send
    assert kh.high_watermark(srv, topic) == 10


def test_large_fetch_over_tls(make_server, unique_name):
    """Answers of many TLS records, written in pieces as the socket takes them"""
    srv = tls_server(make_server)
    topic = unique_name("tls-big")
    srv.sql("SELECT streamlog.create_topic(%s)", (topic,))
    values = [os.urandom(200_000) for _ in range(20)]
    ck_produce(srv, topic, values, ck_ssl(srv))
    got = kh.ck_consume(srv.kafka_bootstrap, topic, 0, 20, conf=ck_ssl(srv))
    assert [m[2] for m in got] == values


def test_mutual_tls_required(make_server, unique_name):
    srv = tls_server(make_server, {"streamlog.ssl_client_auth": "required"})
    pki = srv.pki
    offset = len(srv.log_text())

    # no certificate
    assert refused(srv, client_context(srv))
    kh.wait_log(srv, offset, r"TLS handshake failed: peer did not return a certificate")
    # a certificate from another CA
    offset = len(srv.log_text())
    assert refused(srv, client_context(srv, pki.mallory_cert, pki.mallory_key))
    kh.wait_log(srv, offset, r"TLS handshake failed: certificate verify failed")

    # a good one: served, and its subject is the session's
    offset = len(srv.log_text())
    with tls_client(srv, client_context(srv, pki.alice_cert, pki.alice_key)) as c:
        assert api_versions_ok(c)
    kh.wait_log(srv, offset, r'TLS connection from 127\.0\.0\.1:\d+ on listener SSL '
                r'\(TLSv1\.[23], [^)]+\), client certificate "CN=alice,O=Example"')

    # the certificate's CN names the role its requests run as
    srv.sql("CREATE ROLE alice LOGIN SUPERUSER")
    topic = unique_name("mtls")
    srv.sql("SELECT streamlog.create_topic(%s)", (topic,))
    ck_produce(srv, topic, [b"m"], ck_ssl(srv, pki.alice_cert, pki.alice_key))
    assert kh.high_watermark(srv, topic) == 1


def test_client_certificate_requested(make_server):
    srv = tls_server(make_server, {"streamlog.ssl_client_auth": "requested"})
    offset = len(srv.log_text())
    with tls_client(srv) as c:
        assert api_versions_ok(c)
    line = kh.wait_log(srv, offset, r"TLS connection from .* on listener SSL")
    assert "client certificate" not in line
    # a certificate that is offered must be good
    assert refused(srv, client_context(srv, srv.pki.mallory_cert, srv.pki.mallory_key))


def test_stalled_handshake_stalls_no_one_else(make_server, unique_name):
    srv = tls_server(make_server, {"streamlog.broker_workers": 1})
    topic = unique_name("stall")
    srv.sql("SELECT streamlog.create_topic(%s)", (topic,))
    stalled = []
    try:
        # one says nothing, one stops in the middle of its ClientHello
        stalled.append(socket.create_connection(("127.0.0.1", srv.kafka_port)))
        s = socket.create_connection(("127.0.0.1", srv.kafka_port))
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        stalled.append(s)
        # a third finishes its handshake and stops before sending a request
        idle = tls_client(srv)
        stalled.append(idle.sock)

        ck_produce(srv, topic, [b"a", b"b", b"c"], ck_ssl(srv))
        assert kh.high_watermark(srv, topic) == 3
        assert api_versions_ok(idle)
    finally:
        for s in stalled:
            s.close()


def test_pipelined_requests_buffered_in_tls_are_all_answered(make_server):
    """More requests at once than a connection queues (256): those that
    OpenSSL has read ahead, which the socket will not signal again, are
    served once the queue has room"""
    srv = tls_server(make_server, {"streamlog.broker_workers": 1})
    n = 5000    # 125 kB: records that arrive together are read together
    with tls_client(srv, timeout=60) as c:
        c.send(b"".join(kh.api_versions_request(cid, 0) for cid in range(1, n + 1)))
        for cid in range(1, n + 1):
            got, body = c.recv_frame()
            assert got == cid and kh.Reader(body).i16() == kh.NONE


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_1_1_client_is_refused(make_server):
    srv = tls_server(make_server)
    offset = len(srv.log_text())
    old = client_context(srv, minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1)
    assert refused(srv, old)
    kh.wait_log(srv, offset, r"TLS handshake failed: unsupported protocol")
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with tls_client(srv, client_context(srv, minimum=version, maximum=version)) as c:
            assert api_versions_ok(c)
            assert c.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                        ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]


def test_tls_1_3_minimum(make_server):
    srv = tls_server(make_server, {"streamlog.ssl_min_protocol_version": "TLSv1.3"})
    tls12 = client_context(srv, minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.TLSv1_2)
    assert refused(srv, tls12)
    with tls_client(srv) as c:
        assert api_versions_ok(c) and c.sock.version() == "TLSv1.3"


def test_garbage_on_a_tls_port_closes_that_connection(make_server):
    srv = tls_server(make_server)
    pids = kh.broker_pids(srv)
    offset = len(srv.log_text())
    for garbage in (kh.api_versions_request(1, 0), b"GET / HTTP/1.0\r\n\r\n" * 100,
                    b"\x16\x03\x03\xff\xff" + os.urandom(4000)):
        with kh.RawClient(srv.kafka_bootstrap) as c:
            c.send(garbage)
            assert c.wait_closed(timeout=60)
    kh.wait_log(srv, offset, r"closing connection from 127\.0\.0\.1:\d+: TLS handshake failed")
    with tls_client(srv) as c:
        assert api_versions_ok(c)
    assert kh.broker_pids(srv) == pids


def subject_of_server(srv):
    with tls_client(srv) as c:
        assert api_versions_ok(c)
        return dict(x[0] for x in c.sock.getpeercert()["subject"])


def test_reload_takes_a_new_certificate(make_server):
    # one worker: which one answers must not decide what the test sees
    srv = tls_server(make_server, {"streamlog.broker_workers": 1}, server_settings=False)
    assert subject_of_server(srv)["organizationName"] == "Streamlog"
    before = tls_client(srv)
    try:
        assert api_versions_ok(before)
        cert, key = srv.pki.ca.issue("renewed", "/O=Renewed/CN=localhost",
                                     san="DNS:localhost,IP:127.0.0.1")
        srv.update_conf({"streamlog.ssl_cert_file": cert, "streamlog.ssl_key_file": key})
        srv.reload()
        wait_until(lambda: subject_of_server(srv)["organizationName"] == "Renewed", 60,
                   "new connections to get the new certificate")
        # a connection made before goes on as it was
        assert api_versions_ok(before)
    finally:
        before.close()

    # a reload that fails keeps the certificate in use
    offset = len(srv.log_text())
    srv.update_conf({"streamlog.ssl_cert_file": os.path.join(srv.base_dir, "missing.crt")})
    srv.reload()
    kh.wait_log(srv, offset, r"streamlog TLS settings not reloaded: could not load the "
                r"certificate file .*missing\.crt")
    assert subject_of_server(srv)["organizationName"] == "Renewed"


@pytest.mark.parametrize("conf, message", [
    ({"streamlog.ssl_cert_file": "/nonexistent/server.crt"},
     r"could not load the certificate file \"/nonexistent/server.crt\""),
    ({"streamlog.ssl_client_auth": "required", "ssl_ca_file": None},
     r"streamlog.ssl_client_auth needs CA certificates"),
])
def test_bad_tls_settings_refuse_to_start(make_server, conf, message):
    with pytest.raises(RuntimeError, match="did not start"):
        tls_server(make_server, conf)
    srv = make_server.servers[-1]
    kh.wait_log(srv, 0, r"FATAL:  streamlog TLS listeners cannot start: " + message)


def test_sasl_ssl_listener_speaks_tls(make_server):
    """A SASL_SSL listener is a TLS one too (SASL itself is another part)"""
    srv = make_server(start=False)
    srv.pki = Pki(srv.base_dir)
    srv.update_conf({"streamlog.listeners": f"CLIENT://127.0.0.1:{srv.kafka_port}",
                     "streamlog.listener_security_protocol_map": "CLIENT:SASL_SSL",
                     "ssl_cert_file": srv.pki.server_cert, "ssl_key_file": srv.pki.server_key})
    srv.start()
    with tls_client(srv) as c:
        assert api_versions_ok(c)
