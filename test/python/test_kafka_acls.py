"""Kafka's CreateAcls, DescribeAcls and DeleteAcls on the privilege store the
SQL door shares (streamlog.acl): bindings made by a Kafka admin client are
seen by SQL and the other way round.  Clients: kafka-python 2.0.2
(KafkaAdminClient, v0-1), kafkajs (admin.createAcls/describeAcls/deleteAcls,
v0-1), and raw requests for the flexible versions 2-3.  (confluent-kafka
1.7.0, the Debian package, has no ACL admin calls.)"""

import json
import os
import subprocess

import pytest

import kafka
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                         ACLResourcePatternType, ResourcePattern,
                         ResourcePatternFilter, ResourceType)
import kafka_helpers as kh
from kafka_helpers import compact_string, i8, i32, string, uvarint
from kafkajs import JS_DIR, ensure_kafkajs

TIMEOUT = 30

DESCRIBE_ACLS = 29
CREATE_ACLS = 30
DELETE_ACLS = 31

NONE = 0
INVALID_REQUEST = 42

# Kafka's codes
RT_ANY, RT_TOPIC, RT_GROUP, RT_CLUSTER, RT_TXN = 1, 2, 3, 4, 5
PT_ANY, PT_MATCH, PT_LITERAL, PT_PREFIXED = 1, 2, 3, 4
OP_ANY, OP_ALL, OP_READ, OP_WRITE, OP_DESCRIBE, OP_ALTER = 1, 2, 3, 4, 8, 7
PERM_ANY, PERM_DENY, PERM_ALLOW = 1, 2, 3


@pytest.fixture
def roles(conn, unique_name):
    """Two fresh roles (names usable as Kafka principals); their bindings
    and the roles go after the test."""
    names = [unique_name("acl_r").replace(".", "_").replace("-", "_").lower() for _ in range(2)]
    for n in names:
        conn.execute(f'CREATE ROLE "{n}"')
    yield names
    for n in names:
        conn.execute("SELECT streamlog.revoke('all', lower(resource_type), name, %s, lower(pattern_type)) "
                     "FROM (SELECT DISTINCT resource_type, pattern_type, name FROM streamlog.acls "
                     "      WHERE principal = 'User:' || %s) s", (n, n))
        conn.execute(f'DROP ROLE "{n}"')


def sql_acls(conn, name_like):
    return sorted(conn.execute(
        "SELECT resource_type, pattern_type, name, principal, operation, permission "
        "FROM streamlog.acls WHERE name LIKE %s", (name_like,)).fetchall())


def kp_admin(server):
    return kafka.KafkaAdminClient(bootstrap_servers=server.kafka_bootstrap,
                                  request_timeout_ms=TIMEOUT * 1000)


def kp_binding(acl):
    return (acl.resource_pattern.resource_type.name, acl.resource_pattern.pattern_type.name,
            acl.resource_pattern.resource_name, acl.principal, acl.operation.name,
            acl.permission_type.name)


def test_kafka_python_acls_are_the_sql_privileges(server, conn, roles, unique_name):
    alice, bob = roles
    prefix = unique_name("aclkp")
    topic = prefix + ".orders"
    admin = kp_admin(server)
    try:
        created = admin.create_acls([
            ACL(f"User:{alice}", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                ResourcePattern(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL)),
            ACL(f"User:{bob}", "*", ACLOperation.WRITE, ACLPermissionType.DENY,
                ResourcePattern(ResourceType.TOPIC, prefix + ".", ACLResourcePatternType.PREFIXED)),
            ACL("User:*", "*", ACLOperation.DESCRIBE, ACLPermissionType.ALLOW,
                ResourcePattern(ResourceType.GROUP, prefix + "-group", ACLResourcePatternType.LITERAL)),
        ])
        assert created["failed"] == []
        assert len(created["succeeded"]) == 3

        # SQL sees them, and checks with them
        assert sql_acls(conn, prefix + "%") == sorted([
            ("TOPIC", "LITERAL", topic, f"User:{alice}", "READ", "ALLOW"),
            ("TOPIC", "PREFIXED", prefix + ".", f"User:{bob}", "WRITE", "DENY"),
            ("GROUP", "LITERAL", prefix + "-group", "User:*", "DESCRIBE", "ALLOW"),
        ])
        assert conn.execute("SELECT streamlog.has_privilege('describe', 'topic', %s, %s::regrole)",
                            (topic, alice)).fetchone() == (True,)

        # what SQL grants, Kafka describes
        conn.execute("SELECT streamlog.grant('alter, delete', 'topic', %s, %s)", (topic, bob))
        acls, error = admin.describe_acls(ACLFilter(
            principal=f"User:{bob}", host=None, operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, topic,
                                                   ACLResourcePatternType.MATCH)))
        assert error is kafka.errors.NoError
        assert sorted(kp_binding(a) for a in acls) == sorted([
            ("TOPIC", "LITERAL", topic, f"User:{bob}", "ALTER", "ALLOW"),
            ("TOPIC", "LITERAL", topic, f"User:{bob}", "DELETE", "ALLOW"),
            ("TOPIC", "PREFIXED", prefix + ".", f"User:{bob}", "WRITE", "DENY"),
        ])
        assert all(a.host == "*" for a in acls)

        # Kafka deletes what SQL granted; the filter's result lists them
        deleted = admin.delete_acls([ACLFilter(
            principal=None, host="*", operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, topic,
                                                   ACLResourcePatternType.LITERAL))])
        (_, matches, error), = deleted
        assert error is kafka.errors.NoError
        assert sorted(kp_binding(a) for a, _ in matches) == sorted([
            ("TOPIC", "LITERAL", topic, f"User:{alice}", "READ", "ALLOW"),
            ("TOPIC", "LITERAL", topic, f"User:{bob}", "ALTER", "ALLOW"),
            ("TOPIC", "LITERAL", topic, f"User:{bob}", "DELETE", "ALLOW"),
        ])
        assert sql_acls(conn, prefix + "%") == sorted([
            ("TOPIC", "PREFIXED", prefix + ".", f"User:{bob}", "WRITE", "DENY"),
            ("GROUP", "LITERAL", prefix + "-group", "User:*", "DESCRIBE", "ALLOW"),
        ])
        assert conn.execute("SELECT streamlog.has_privilege('read', 'topic', %s, %s::regrole)",
                            (topic, alice)).fetchone() == (False,)
    finally:
        admin.close()
        conn.execute("SELECT streamlog.revoke('all', 'topic', %s, %s, 'prefixed')", (prefix + ".", bob))
        conn.execute("SELECT streamlog.revoke('all', 'group', %s, 'public')", (prefix + "-group",))


def test_create_acls_refusals_say_why(server, conn, roles, unique_name):
    alice, _ = roles
    topic = unique_name("aclbad")
    pattern = ResourcePattern(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL)
    admin = kp_admin(server)
    try:
        result = admin.create_acls([
            ACL(f"User:{alice}", "10.0.0.1", ACLOperation.READ, ACLPermissionType.ALLOW, pattern),
            ACL("User:no_such_role_here", "*", ACLOperation.READ, ACLPermissionType.ALLOW, pattern),
            ACL(f"Group:{alice}", "*", ACLOperation.READ, ACLPermissionType.ALLOW, pattern),
            ACL(f"User:{alice}", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                ResourcePattern(ResourceType.CLUSTER, "other-cluster", ACLResourcePatternType.LITERAL)),
            ACL(f"User:{alice}", "*", ACLOperation.WRITE, ACLPermissionType.ALLOW, pattern),
        ])
        assert [kp_binding(a) for a in result["succeeded"]] == [
            ("TOPIC", "LITERAL", topic, f"User:{alice}", "WRITE", "ALLOW")]
        assert [err for _, err in result["failed"]] == [kafka.errors.InvalidRequestError] * 4
        # only the valid one is stored
        assert sql_acls(conn, topic) == [("TOPIC", "LITERAL", topic, f"User:{alice}", "WRITE", "ALLOW")]
    finally:
        admin.close()
        conn.execute("SELECT streamlog.revoke('all', 'topic', %s, %s)", (topic, alice))


# -- raw requests, for the flexible versions -----------------------------------

def tagged_end():
    return uvarint(0)


def create_acls_body(version, creations):
    flex = version >= 2
    s = compact_string if flex else string
    out = (uvarint(len(creations) + 1) if flex else i32(len(creations)))
    for rt, name, pt, principal, host, op, perm in creations:
        out += i8(rt) + s(name) + (i8(pt) if version >= 1 else b"") + s(principal) + s(host)
        out += i8(op) + i8(perm) + (tagged_end() if flex else b"")
    return out + (tagged_end() if flex else b"")


def filter_body(version, rt, name, pt, principal, host, op, perm):
    s = compact_string if version >= 2 else string
    return (i8(rt) + s(name) + (i8(pt) if version >= 1 else b"") + s(principal) + s(host)
            + i8(op) + i8(perm))


def raw(client, api_key, version, body):
    flex = version >= 2
    resp = client.call(lambda cid: kh.request_frame(api_key, version, cid, body,
                                                    header_version=2 if flex else 1))
    r = kh.Reader(resp)
    if flex:
        assert r.uvarint() == 0        # response header tags
    return r


def read_str(r, flex):
    if not flex:
        return r.string()
    n = r.uvarint()
    return None if n == 0 else r.take(n - 1).decode()


def read_len(r, flex):
    return r.uvarint() - 1 if flex else r.i32()


def parse_create(r, flex):
    r.i32()
    results = []
    for _ in range(read_len(r, flex)):
        code = r.i16()
        msg = read_str(r, flex)
        if flex:
            r.uvarint()
        results.append((code, msg))
    return results


def parse_describe(r, version):
    flex = version >= 2
    r.i32()
    code = r.i16()
    msg = read_str(r, flex)
    out = []
    for _ in range(read_len(r, flex)):
        rt = r.i8()
        name = read_str(r, flex)
        pt = r.i8() if version >= 1 else PT_LITERAL
        for _ in range(read_len(r, flex)):
            principal = read_str(r, flex)
            host = read_str(r, flex)
            op = r.i8()
            perm = r.i8()
            if flex:
                r.uvarint()
            out.append((rt, name, pt, principal, host, op, perm))
        if flex:
            r.uvarint()
    return code, msg, sorted(out)


def parse_delete(r, version):
    flex = version >= 2
    r.i32()
    results = []
    for _ in range(read_len(r, flex)):
        code = r.i16()
        msg = read_str(r, flex)
        matches = []
        for _ in range(read_len(r, flex)):
            mcode = r.i16()
            read_str(r, flex)
            rt = r.i8()
            name = read_str(r, flex)
            pt = r.i8() if version >= 1 else PT_LITERAL
            principal = read_str(r, flex)
            host = read_str(r, flex)
            op = r.i8()
            perm = r.i8()
            if flex:
                r.uvarint()
            matches.append((mcode, rt, name, pt, principal, host, op, perm))
        if flex:
            r.uvarint()
        results.append((code, msg, sorted(matches)))
    return results


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_acl_apis_every_version(server, conn, roles, unique_name, version):
    alice, bob = roles
    flex = version >= 2
    topic = unique_name("aclraw")
    # v0 knows literal names only
    prefixed = PT_PREFIXED if version >= 1 else PT_LITERAL
    prefix_name = topic[:-2] if version >= 1 else topic + ".p"
    with kh.RawClient(server.kafka_bootstrap) as client:
        r = raw(client, CREATE_ACLS, version, create_acls_body(version, [
            (RT_TOPIC, topic, PT_LITERAL, f"User:{alice}", "*", OP_READ, PERM_ALLOW),
            (RT_TOPIC, prefix_name, prefixed, f"User:{bob}", "*", OP_ALL, PERM_DENY),
            (RT_TOPIC, topic, PT_LITERAL, "User:*", "*", OP_DESCRIBE, PERM_ALLOW),
            (RT_ANY, topic, PT_LITERAL, f"User:{alice}", "*", OP_READ, PERM_ALLOW),
            (RT_TOPIC, topic, PT_LITERAL, f"User:{alice}", "*", OP_ANY, PERM_ALLOW),
            (RT_TOPIC, topic, PT_LITERAL, f"User:{alice}", "*", OP_READ, PERM_ANY),
            (RT_TOPIC, "", PT_LITERAL, f"User:{alice}", "*", OP_READ, PERM_ALLOW),
            (RT_TOPIC, topic, PT_LITERAL, f"User:{alice}", "localhost", OP_READ, PERM_ALLOW),
            (RT_TOPIC, topic, PT_LITERAL, "User:no_such_role_here", "*", OP_READ, PERM_ALLOW),
            (RT_TOPIC, topic, PT_LITERAL, f"Group:{alice}", "*", OP_READ, PERM_ALLOW),
            (RT_CLUSTER, "other-cluster", PT_LITERAL, f"User:{alice}", "*", OP_ALTER, PERM_ALLOW),
        ] + ([(RT_TOPIC, topic, PT_MATCH, f"User:{alice}", "*", OP_READ, PERM_ALLOW)]
             if version >= 1 else [])))
        results = parse_create(r, flex)
        assert [c for c, _ in results] == [NONE] * 3 + [INVALID_REQUEST] * (
            9 if version >= 1 else 8)
        messages = [m for _, m in results]
        assert messages[:3] == [None] * 3
        assert messages[3] == "Invalid resourceType ANY"
        assert messages[4] == "Invalid operation ANY"
        assert messages[5] == "Invalid permissionType ANY"
        assert messages[6] == "Invalid empty resource name specified"
        assert messages[7].startswith("Host-based ACLs are not supported")
        assert messages[8].startswith("Principal User:no_such_role_here is not a PostgreSQL role")
        assert messages[9].startswith(f"Could not parse principal from `Group:{alice}`")
        assert messages[10] == "The only valid name for the CLUSTER resource is kafka-cluster"
        if version >= 1:
            assert messages[11] == "Invalid patternType MATCH"
        assert r.at_end() or flex

        # MATCH: the literal name, the wildcard and every prefix of the name
        if version >= 1:
            r = raw(client, DESCRIBE_ACLS, version, filter_body(
                version, RT_TOPIC, topic, PT_MATCH, None, None, OP_ANY, PERM_ANY)
                + (tagged_end() if flex else b""))
            code, msg, found = parse_describe(r, version)
            assert (code, msg) == (NONE, None)
            assert found == sorted([
                (RT_TOPIC, topic, PT_LITERAL, f"User:{alice}", "*", OP_READ, PERM_ALLOW),
                (RT_TOPIC, topic, PT_LITERAL, "User:*", "*", OP_DESCRIBE, PERM_ALLOW),
                (RT_TOPIC, prefix_name, PT_PREFIXED, f"User:{bob}", "*", OP_ALL, PERM_DENY),
            ])
        # a literal filter by principal; another host matches nothing
        r = raw(client, DESCRIBE_ACLS, version, filter_body(
            version, RT_ANY, topic, PT_LITERAL, f"User:{alice}", "*", OP_ANY, PERM_ALLOW)
            + (tagged_end() if flex else b""))
        assert parse_describe(r, version)[2] == [
            (RT_TOPIC, topic, PT_LITERAL, f"User:{alice}", "*", OP_READ, PERM_ALLOW)]
        r = raw(client, DESCRIBE_ACLS, version, filter_body(
            version, RT_ANY, topic, PT_LITERAL, None, "10.1.1.1", OP_ANY, PERM_ANY)
            + (tagged_end() if flex else b""))
        assert parse_describe(r, version)[2] == []
        # an invalid filter is INVALID_REQUEST
        r = raw(client, DESCRIBE_ACLS, version, filter_body(
            version, 0, topic, PT_LITERAL, None, None, OP_ANY, PERM_ANY)
            + (tagged_end() if flex else b""))
        assert parse_describe(r, version)[0] == INVALID_REQUEST

        # SQL sees the same
        assert sql_acls(conn, topic[:-2] + "%") == sorted([
            ("TOPIC", "LITERAL", topic, f"User:{alice}", "READ", "ALLOW"),
            ("TOPIC", "LITERAL", topic, "User:*", "DESCRIBE", "ALLOW"),
            ("TOPIC", "PREFIXED" if version >= 1 else "LITERAL", prefix_name,
             f"User:{bob}", "ALL", "DENY"),
        ])

        # DeleteAcls: one result per filter, in order, each matched against
        # the bindings before the request (as Kafka's controller does: a
        # binding two filters match is in both results)
        flt = [
            filter_body(version, RT_TOPIC, topic, PT_LITERAL, "User:*", None, OP_ANY, PERM_ANY),
            filter_body(version, RT_ANY, None, PT_ANY if version >= 1 else PT_LITERAL,
                        f"User:{bob}", None, OP_ALL, PERM_DENY),
            filter_body(version, RT_TOPIC, topic, PT_LITERAL, "User:*", None, OP_ANY, PERM_ANY),
            filter_body(version, RT_TOPIC, topic, PT_LITERAL, None, None, 0, PERM_ANY),
        ]
        if flex:
            body = uvarint(len(flt) + 1) + b"".join(f + tagged_end() for f in flt) + tagged_end()
        else:
            body = i32(len(flt)) + b"".join(flt)
        results = parse_delete(raw(client, DELETE_ACLS, version, body), version)
        assert results[0] == (NONE, None, [
            (NONE, RT_TOPIC, topic, PT_LITERAL, "User:*", "*", OP_DESCRIBE, PERM_ALLOW)])
        assert results[1] == (NONE, None, [
            (NONE, RT_TOPIC, prefix_name, prefixed, f"User:{bob}", "*", OP_ALL, PERM_DENY)])
        assert results[2] == results[0]
        assert results[3][0] == INVALID_REQUEST
        kh.assert_server_healthy(server)
    conn.execute("SELECT streamlog.revoke('all', 'topic', %s, %s)", (topic, alice))
    conn.execute("SELECT streamlog.revoke('all', 'topic', %s, %s, %s)",
                 (prefix_name, bob, "prefixed" if version >= 1 else "literal"))
    assert sql_acls(conn, topic[:-2] + "%") == []


def test_kafkajs_acls_round_trip(server, conn, roles, unique_name):
    node = ensure_kafkajs()
    alice, _ = roles
    topic = unique_name("acljs")
    conn.execute("SELECT streamlog.grant('write', 'topic', %s, %s)", (topic, alice))
    res = subprocess.run([node, os.path.join(JS_DIR, "acls.js"), server.kafka_bootstrap,
                          topic, f"User:{alice}"],
                         capture_output=True, text=True, timeout=120, cwd=JS_DIR)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    # it saw the SQL grant and its own creation, then deleted both
    assert sorted(out["described"]) == sorted([
        [topic, f"User:{alice}", "*", "READ", "ALLOW"],
        [topic, f"User:{alice}", "*", "WRITE", "ALLOW"],
    ])
    assert sorted(out["deleted"]) == sorted(out["described"])
    assert sql_acls(conn, topic) == []


@pytest.mark.parametrize("api_key", [DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS])
def test_malformed_acl_request_closes_that_connection_only(server, api_key):
    with kh.RawClient(server.kafka_bootstrap) as client:
        # an array claiming far more elements than the bytes that follow
        client.send(kh.request_frame(api_key, 3, 1, uvarint(1000) + b"\x02",
                                     header_version=2))
        assert client.wait_closed()
    kh.assert_server_healthy(server)


CLUSTER_AUTHORIZATION_FAILED = 31


def test_acl_apis_need_privileges_on_the_cluster(server, make_server, unique_name):
    """CreateAcls and DeleteAcls need ALTER on the cluster, DescribeAcls
    DESCRIBE, for the role the request runs as.  Kafka requests run as a
    role other than the bootstrap superuser once streamlog.anonymous_role
    exists (the SASL work); until then there is no such role to test."""
    with server.connect() as c:
        if c.execute("SELECT count(*) FROM pg_settings "
                     "WHERE name = 'streamlog.anonymous_role'").fetchone()[0] == 0:
            pytest.skip("Kafka requests run as the bootstrap superuser: "
                        "streamlog.anonymous_role is not there yet")
    role = unique_name("acl_anon").replace(".", "_").replace("-", "_").lower()
    srv = make_server(conf={"streamlog.anonymous_role": role})
    topic = unique_name("aclauth")
    with srv.connect() as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        create = create_acls_body(1, [
            (RT_TOPIC, topic, PT_LITERAL, "User:*", "*", OP_READ, PERM_ALLOW)])
        describe = filter_body(1, RT_ANY, None, PT_ANY, None, None, OP_ANY, PERM_ANY)
        delete = i32(1) + filter_body(1, RT_TOPIC, topic, PT_LITERAL, None, None, OP_ANY, PERM_ANY)
        with kh.RawClient(srv.kafka_bootstrap) as client:
            assert parse_create(raw(client, CREATE_ACLS, 1, create), False)[0][0] == \
                CLUSTER_AUTHORIZATION_FAILED
            assert parse_describe(raw(client, DESCRIBE_ACLS, 1, describe), 1)[0] == \
                CLUSTER_AUTHORIZATION_FAILED
            assert parse_delete(raw(client, DELETE_ACLS, 1, delete), 1)[0][0] == \
                CLUSTER_AUTHORIZATION_FAILED
            assert sql_acls(conn, topic) == []

            # DESCRIBE on the cluster is enough to describe, not to change
            conn.execute("SELECT streamlog.grant('describe', 'cluster', NULL, %s)", (role,))
            code, _, found = parse_describe(raw(client, DESCRIBE_ACLS, 1, describe), 1)
            assert code == NONE
            assert (RT_CLUSTER, "kafka-cluster", PT_LITERAL, f"User:{role}", "*",
                    OP_DESCRIBE, PERM_ALLOW) in found
            assert parse_create(raw(client, CREATE_ACLS, 1, create), False)[0][0] == \
                CLUSTER_AUTHORIZATION_FAILED

            # ALTER on the cluster: create and delete, on the same connection
            conn.execute("SELECT streamlog.grant('alter', 'cluster', NULL, %s)", (role,))
            assert parse_create(raw(client, CREATE_ACLS, 1, create), False) == [(NONE, None)]
            assert sql_acls(conn, topic) == [("TOPIC", "LITERAL", topic, "User:*", "READ", "ALLOW")]
            [(code, _, matches)] = parse_delete(raw(client, DELETE_ACLS, 1, delete), 1)
            assert code == NONE and len(matches) == 1
        conn.execute("DROP OWNED BY %s" % f'"{role}"')
        conn.execute(f'DROP ROLE "{role}"')


def test_names_that_are_not_text_are_refused(server, conn, roles, unique_name):
    """A NUL inside a name would cut it short (naming another resource or
    role), and bytes that are not UTF-8 cannot be text: CreateAcls refuses
    both, and a filter with them matches nothing."""
    alice, _ = roles
    topic = unique_name("aclnul")
    with kh.RawClient(server.kafka_bootstrap) as client:
        r = raw(client, CREATE_ACLS, 1, create_acls_body(1, [
            (RT_TOPIC, topic.encode() + b"\x00junk", PT_LITERAL, f"User:{alice}", "*", OP_READ,
             PERM_ALLOW),
            (RT_TOPIC, topic.encode() + b"\xff\xfe", PT_LITERAL, f"User:{alice}", "*", OP_READ,
             PERM_ALLOW),
            (RT_TOPIC, topic, PT_LITERAL, f"User:{alice}".encode() + b"\x00x", "*", OP_READ,
             PERM_ALLOW),
            (RT_TOPIC, topic, PT_LITERAL, f"User:{alice}", "*", OP_READ, PERM_ALLOW),
        ]))
        results = parse_create(r, False)
        assert [c for c, _ in results] == [INVALID_REQUEST] * 3 + [NONE]
        assert results[0][1].startswith("Resource names, principals and hosts must be text")
        # cut at the NUL, the name would match the binding just made
        r = raw(client, DESCRIBE_ACLS, 1, filter_body(
            1, RT_TOPIC, topic.encode() + b"\x00junk", PT_MATCH, None, None, OP_ANY, PERM_ANY))
        assert parse_describe(r, 1) == (NONE, None, [])
    assert sql_acls(conn, topic + "%") == [("TOPIC", "LITERAL", topic, f"User:{alice}", "READ", "ALLOW")]


def test_role_dropped_elsewhere_shows_by_oid_and_can_be_deleted(server, conn, unique_name):
    """DROP ROLE is refused while the role has privileges, in the database
    streamlog is installed in; from another database it goes through, and
    its bindings stay, shown by OID at both doors until deleted."""
    role = unique_name("acl_gone").replace(".", "_").replace("-", "_").lower()
    topic = unique_name("aclgone")
    other = unique_name("db").replace(".", "_").replace("-", "_").lower()
    conn.execute(f'CREATE ROLE "{role}"')
    oid = conn.execute("SELECT %s::regrole::oid", (role,)).fetchone()[0]
    conn.execute("SELECT streamlog.grant('read, write', 'topic', %s, %s)", (topic, role))
    with pytest.raises(Exception) as exc:
        conn.execute(f'DROP ROLE "{role}"')
    assert exc.value.sqlstate == "2BP01"
    conn.execute(f'CREATE DATABASE "{other}"')
    try:
        with server.connect(dbname=other) as c:
            c.execute(f'DROP ROLE "{role}"')
    finally:
        conn.execute(f'DROP DATABASE "{other}"')

    assert sql_acls(conn, topic) == [("TOPIC", "LITERAL", topic, f"User:{oid}", "READ", "ALLOW"),
                                     ("TOPIC", "LITERAL", topic, f"User:{oid}", "WRITE", "ALLOW")]
    # SQL revokes by the OID the view shows; a number that is a live role's OID is refused
    conn.execute("SELECT streamlog.revoke('write', 'topic', %s, %s)", (topic, f"User:{oid}"))
    live = conn.execute("SELECT oid FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    with pytest.raises(Exception) as exc:
        conn.execute("SELECT streamlog.revoke('read', 'topic', %s, %s)", (topic, f"User:{live}"))
    assert exc.value.sqlstate == "42704"
    with kh.RawClient(server.kafka_bootstrap) as client:
        flt = filter_body(1, RT_TOPIC, topic, PT_LITERAL, None, None, OP_ANY, PERM_ANY)
        assert parse_describe(raw(client, DESCRIBE_ACLS, 1, flt), 1)[2] == [
            (RT_TOPIC, topic, PT_LITERAL, f"User:{oid}", "*", OP_READ, PERM_ALLOW)]
        [(code, _, matches)] = parse_delete(raw(client, DELETE_ACLS, 1, i32(1) + flt), 1)
        assert (code, len(matches)) == (NONE, 1)
    assert sql_acls(conn, topic) == []
