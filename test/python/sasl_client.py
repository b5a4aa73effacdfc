"""A raw SASL client for the tests: SaslHandshake and SaslAuthenticate in
Kafka's framing (v1) or as raw tokens after SaslHandshake v0, and the
client side of SCRAM (RFC 5802) computed with hashlib, so that a test can
send exactly what it wants: a truncated message, a replayed one."""

import base64
import hashlib
import hmac
import os
import struct

import kafka_helpers as kh

SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36

ILLEGAL_SASL_STATE = 34
UNSUPPORTED_SASL_MECHANISM = 33
SASL_AUTHENTICATION_FAILED = 58

HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


def saslname(name):
    return name.replace("=", "=3D").replace(",", "=2C")


class Scram:
    """The client side of one SCRAM exchange."""

    def __init__(self, user, password, mechanism="SCRAM-SHA-256", nonce=None):
        self.user = user
        self.password = password.encode() if isinstance(password, str) else password
        self.hash = HASHES[mechanism]
        self.client_nonce = nonce or base64.b64encode(os.urandom(18)).decode()
        self.bare = f"n={saslname(user)},r={self.client_nonce}"
        self.server_signature = None

    def first(self):
        return ("n,," + self.bare).encode()

    def final(self, server_first):
        server_first = server_first.decode()
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        assert nonce.startswith(self.client_nonce), server_first
        salted = hashlib.pbkdf2_hmac(self.hash, self.password, salt, iterations)
        client_key = hmac.new(salted, b"Client Key", self.hash).digest()
        server_key = hmac.new(salted, b"Server Key", self.hash).digest()
        stored_key = hashlib.new(self.hash, client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth = f"{self.bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth, self.hash).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.server_signature = hmac.new(server_key, auth, self.hash).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def check_server_final(self, server_final):
        assert server_final == b"v=" + base64.b64encode(self.server_signature), server_final


def plain_token(user, password, authzid=""):
    return f"{authzid}\0{user}\0{password}".encode()


class SaslClient(kh.RawClient):
    """A RawClient that speaks SaslHandshake and SaslAuthenticate."""

    def handshake(self, mechanism, version=1):
        """(error_code, [mechanisms])"""
        body = self.call(lambda cid: kh.request_frame(SASL_HANDSHAKE, version, cid,
                                                      kh.string(mechanism)))
        r = kh.Reader(body)
        return r.i16(), r.array(lambda r: r.string())

    def authenticate(self, token, version=1):
        """(error_code, error_message, auth_bytes, session_lifetime_ms)"""
        body = self.call(lambda cid: kh.request_frame(SASL_AUTHENTICATE, version, cid,
                                                      kh.kbytes(token)))
        r = kh.Reader(body)
        error, message, auth = r.i16(), r.string(), r.bytes()
        lifetime = r.i64() if version >= 1 else None
        return error, message, auth, lifetime

    def raw_token(self, token):
        """Send a raw token (after SaslHandshake v0); the raw answer"""
        self.send(struct.pack(">i", len(token)) + token)
        size = struct.unpack(">i", self._recv_exact(4))[0]
        return self._recv_exact(size)

    def scram_login(self, user, password, mechanism="SCRAM-SHA-256", version=1):
        """Handshake and a whole SCRAM exchange; the error code, and the
        session lifetime of a success"""
        error, _ = self.handshake(mechanism)
        assert error == kh.NONE
        scram = Scram(user, password, mechanism)
        error, _msg, server_first, _ = self.authenticate(scram.first(), version)
        if error != kh.NONE:
            return error, None
        error, _msg, server_final, lifetime = self.authenticate(scram.final(server_first), version)
        if error == kh.NONE:
            scram.check_server_final(server_final)
        return error, lifetime


# -- Describe/AlterUserScramCredentials (v0, flexible) --------------------------------

DESCRIBE_USER_SCRAM_CREDENTIALS = 50
ALTER_USER_SCRAM_CREDENTIALS = 51
MECHANISM_NUMBERS = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}


def _compact_array(items, encode):
    if items is None:
        return kh.uvarint(0)
    return kh.uvarint(len(items) + 1) + b"".join(encode(i) for i in items)


def _compact_bytes(b):
    return kh.uvarint(len(b) + 1) + b


def _read_compact_string(r):
    n = r.uvarint()
    return None if n == 0 else r.take(n - 1).decode()


def _read_compact_array(r, decode):
    n = r.uvarint()
    return None if n == 0 else [decode(r) for _ in range(n - 1)]


def _flexible_call(client, api_key, body):
    cid = client.next_correlation_id()
    client.send(kh.request_frame(api_key, 0, cid, body, header_version=2))
    got, payload = client.recv_frame()
    assert got == cid
    r = kh.Reader(payload)
    r.uvarint()  # response header v1 tagged fields
    return r


def describe_scram(client, users):
    """(error, message, {user: (error, message, {mechanism: iterations})});
    users None for all"""
    body = _compact_array(users, lambda u: kh.compact_string(u) + kh.uvarint(0)) + kh.uvarint(0)
    r = _flexible_call(client, DESCRIBE_USER_SCRAM_CREDENTIALS, body)
    r.i32()
    error, message = r.i16(), _read_compact_string(r)
    names = {v: k for k, v in MECHANISM_NUMBERS.items()}

    def info(r):
        m, it = r.i8(), r.i32()
        r.uvarint()
        return names.get(m, m), it

    def result(r):
        user, err, msg = _read_compact_string(r), r.i16(), _read_compact_string(r)
        infos = dict(_read_compact_array(r, info))
        r.uvarint()
        return user, (err, msg, infos)
    results = dict(_read_compact_array(r, result))
    return error, message, results


def salted_password(mechanism, password, salt, iterations):
    return hashlib.pbkdf2_hmac(HASHES[mechanism], password.encode(), salt, iterations)


def alter_scram(client, deletions=(), upsertions=()):
    """deletions [(user, mechanism)], upsertions [(user, mechanism, password,
    iterations)]; {user: (error, message)}"""
    def deletion(d):
        return kh.compact_string(d[0]) + kh.i8(MECHANISM_NUMBERS.get(d[1], 0)) + kh.uvarint(0)

    def upsertion(u):
        user, mechanism, password, iterations = u
        salt = os.urandom(16)
        return (kh.compact_string(user) + kh.i8(MECHANISM_NUMBERS.get(mechanism, 0)) +
                kh.i32(iterations) + _compact_bytes(salt) +
                _compact_bytes(salted_password(mechanism if mechanism in HASHES else
                                               "SCRAM-SHA-256", password, salt, iterations)) +
                kh.uvarint(0))
    body = (_compact_array(list(deletions), deletion) +
            _compact_array(list(upsertions), upsertion) + kh.uvarint(0))
    r = _flexible_call(client, ALTER_USER_SCRAM_CREDENTIALS, body)
    r.i32()

    def result(r):
        user, err, msg = _read_compact_string(r), r.i16(), _read_compact_string(r)
        r.uvarint()
        return user, (err, msg)
    return dict(_read_compact_array(r, result))
