"""The authorization matrix: every SQL function and every Kafka API, for a
role with and without the privilege Kafka's authorizer would ask for,
through both doors, with DENY over ALLOW, prefixed patterns and role
inheritance (GRANT parent TO child).

The privileges live in one store (streamlog.grant()/deny()/revoke(),
storage/acl.h); the SQL functions raise 42501 insufficient_privilege, the
Kafka handlers answer TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED
or CLUSTER_AUTHORIZATION_FAILED, per item where Kafka does.  Kafka requests
run as streamlog.anonymous_role, here a plain role whose privileges each
test grants and revokes over SQL.

The catalogue tables grant nothing: a role with SELECT on them can neither
produce nor read (it could, before the storage layer read them as the
extension's owner), and one with the streamlog privilege needs no table
privilege at all."""

import uuid

import psycopg
import pytest

import kafka_helpers as kh
from kafka_primitives import i8, i16, i32, i64

# Kafka error codes
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
UNKNOWN_MEMBER_ID = 25
TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30
CLUSTER_AUTHORIZATION_FAILED = 31


def fresh(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def connect_as(server, role):
    return psycopg.connect(host=server.host, port=server.port, user=role,
                           dbname="postgres", autocommit=True, connect_timeout=10)


def sqlstate_of(conn, query, params=None):
    """None if query succeeds, else its SQLSTATE"""
    try:
        conn.execute(query, params)
        return None
    except psycopg.Error as e:
        return e.sqlstate


def make_role(server, name=None, login=True):
    name = name or fresh("r").replace("-", "_")
    server.sql(f"CREATE ROLE {name} {'LOGIN' if login else 'NOLOGIN'}")
    return name


def grant(server, privileges, on_type, name, role, pattern="literal"):
    server.sql("SELECT streamlog.grant(%s, %s, %s, %s, %s)",
               (privileges, on_type, name, role, pattern))


def deny(server, privileges, on_type, name, role, pattern="literal"):
    server.sql("SELECT streamlog.deny(%s, %s, %s, %s, %s)",
               (privileges, on_type, name, role, pattern))


def revoke(server, privileges, on_type, name, role, pattern="literal"):
    server.sql("SELECT streamlog.revoke(%s, %s, %s, %s, %s)",
               (privileges, on_type, name, role, pattern))


# -- the inversion: table privileges grant nothing beyond the table --------------

def test_select_on_the_catalogue_does_not_let_a_role_produce_or_read(server):
    topic = fresh("inv")
    server.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    server.sql("SELECT streamlog.produce(%s, 'k', 'v')", (topic,))
    role = make_role(server)
    server.sql(f"GRANT SELECT ON streamlog.topic, streamlog.partition, "
               f"streamlog.segment, streamlog.group_offset TO {role}")
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, "SELECT streamlog.produce(%s, 'k', 'v')", (topic,)) == "42501"
        assert sqlstate_of(conn, "SELECT * FROM streamlog.read(%s, 0)", (topic,)) == "42501"
        assert sqlstate_of(conn, "SELECT * FROM streamlog.history(%s)", (topic,)) == "42501"
        # the table itself is readable, and that is all
        assert conn.execute("SELECT count(*) FROM streamlog.topic WHERE name = %s",
                            (topic,)).fetchone() == (1,)


def test_the_streamlog_privilege_works_without_any_table_privilege(server):
    topic = fresh("priv")
    server.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    role = make_role(server)
    grant(server, "write, read", "topic", topic, role)
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, "SELECT count(*) FROM streamlog.topic") == "42501"
        assert sqlstate_of(conn, "SELECT count(*) FROM streamlog.segment") == "42501"
        conn.execute("SELECT streamlog.produce(%s, 'k', 'v')", (topic,))
        rows = conn.execute("SELECT value FROM streamlog.read(%s, 0)", (topic,)).fetchall()
        assert rows == [(b"v",)]


def test_segment_tables_are_not_reachable_directly(server):
    topic = fresh("seg")
    server.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    relid = server.sql("SELECT s.relid::text FROM streamlog.segment s JOIN streamlog.topic t "
                       "USING (topic_id) WHERE t.name = %s", (topic,))[0][0]
    role = make_role(server)
    grant(server, "all", "topic", topic, role)
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, f"SELECT * FROM {relid}") == "42501"


def test_key_index_tables_are_not_reachable_directly(server):
    topic = fresh("keys")
    server.sql("SELECT streamlog.create_topic(%s, 1, '{\"key.index\": true}')", (topic,))
    server.sql("SELECT streamlog.produce(%s, 'k', 'v')", (topic,))
    keys = server.sql("SELECT format('streamlog_data.t%%s_keys', topic_id) FROM streamlog.topic "
                      "WHERE name = %s", (topic,))[0][0]
    role = make_role(server)
    grant(server, "read", "topic", topic, role)
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, f"SELECT * FROM {keys}") == "42501"
        # the lookup reaches it, as the extension's owner
        assert conn.execute("SELECT value FROM streamlog.latest(%s, 'k')",
                            (topic,)).fetchall() == [(b"v",)]


def test_a_callers_search_path_does_not_reach_the_catalogue_queries(server):
    """Storage runs its queries as the extension's owner: an operator of
    the caller's, first on its search_path, must not run there."""
    topic = fresh("path")
    server.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    role = make_role(server)
    grant(server, "write, read", "topic", topic, role)
    server.sql(f"CREATE SCHEMA {role} AUTHORIZATION {role}")
    with connect_as(server, role) as conn:
        conn.execute(f"""
            CREATE FUNCTION {role}.eq(integer, integer) RETURNS boolean
            LANGUAGE sql AS 'SELECT pg_catalog.int4eq($1, $2)
                             AND (SELECT rolsuper FROM pg_catalog.pg_roles
                                  WHERE rolname = current_user) IS NOT TRUE';
            CREATE OPERATOR {role}.= (FUNCTION = {role}.eq, LEFTARG = integer,
                                      RIGHTARG = integer)""")
        conn.execute(f"SET search_path = {role}, pg_catalog")
        conn.execute("SELECT streamlog.produce(%s, 'k', 'v')", (topic,))
        rows = conn.execute("SELECT value FROM streamlog.read(%s, 0)", (topic,)).fetchall()
        assert rows == [(b"v",)]


# -- the SQL door ---------------------------------------------------------------

@pytest.fixture
def sql_world(server):
    """A topic with a record, a group that committed on it, and a plain role"""
    topic = fresh("sqlt")
    group = fresh("sqlg")
    server.sql("SELECT streamlog.create_topic(%s, 2)", (topic,))
    server.sql("SELECT streamlog.produce(%s, 'k', 'v', partition => 0)", (topic,))
    server.sql("SELECT streamlog.seek(%s, %s, 0, 0)", (group, topic))
    role = make_role(server)
    return server, role, topic, group


# (call, [(privileges, on_type, which)]): which is "topic", "group", or a name
SQL_MATRIX = [
    ("SELECT streamlog.produce({t}, 'k', 'v')", [("write", "topic", "topic")]),
    ("SELECT streamlog.produce_record({t}, 'k'::bytea, 'v'::bytea)", [("write", "topic", "topic")]),
    ("SELECT * FROM streamlog.read({t}, 0)", [("read", "topic", "topic")]),
    ("SELECT * FROM streamlog.history({t})", [("read", "topic", "topic")]),
    ("SELECT * FROM streamlog.latest({t})", [("read", "topic", "topic")]),
    ("SELECT * FROM streamlog.latest({t}, 'k'::bytea)", [("read", "topic", "topic")]),
    ("SELECT * FROM streamlog.latest({t}, 'k'::text, 0)", [("read", "topic", "topic")]),
    ("SELECT streamlog.offset_for_time({t}, 0, now())", [("describe", "topic", "topic")]),
    ("SELECT streamlog.partition_for({t}, 'k'::text)", [("describe", "topic", "topic")]),
    ("SELECT * FROM streamlog.topic_config({t})", [("describe_configs", "topic", "topic")]),
    ("SELECT streamlog.alter_topic({t}, '{{\"retention.ms\": \"1000000\"}}')",
     [("alter_configs", "topic", "topic")]),
    ("SELECT streamlog.add_partitions({t}, 1)", [("alter", "topic", "topic")]),
    ("SELECT streamlog.delete_records({t}, 0, 0)", [("delete", "topic", "topic")]),
    ("SELECT streamlog.drop_topic({t})", [("delete", "topic", "topic")]),
    ("SELECT * FROM streamlog.consume({g}, {t})",
     [("read", "group", "group"), ("read", "topic", "topic")]),
    ("SELECT streamlog.seek({g}, {t}, 0, 0)",
     [("read", "group", "group"), ("describe", "topic", "topic")]),
    ("SELECT * FROM streamlog.reset_offsets({g}, {t}, 'earliest')",
     [("read", "group", "group"), ("describe", "topic", "topic")]),
    ("SELECT * FROM streamlog.reset_offsets({g}, {t}, now())",
     [("read", "group", "group"), ("describe", "topic", "topic")]),
    ("SELECT streamlog.delete_group({g})", [("delete", "group", "group")]),
]


def _call(sql, topic, group):
    return sql.format(t="%(t)s", g="%(g)s"), {"t": topic, "g": group}


@pytest.mark.parametrize("call, needs", SQL_MATRIX, ids=[c for c, _ in SQL_MATRIX])
def test_sql_function_needs_its_privilege(sql_world, call, needs):
    server, role, topic, group = sql_world
    query, params = _call(call, topic, group)
    names = {"topic": topic, "group": group}
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, query, params) == "42501"
        # each privilege alone is not enough when two are needed
        for i, (privs, on_type, which) in enumerate(needs):
            grant(server, privs, on_type, names[which], role)
            if i < len(needs) - 1:
                assert sqlstate_of(conn, query, params) == "42501"
        assert sqlstate_of(conn, query, params) is None
        # and the other one alone neither
        if len(needs) == 2:
            privs, on_type, which = needs[0]
            revoke(server, privs, on_type, names[which], role)
            assert sqlstate_of(conn, query, params) == "42501"


def test_sql_error_names_the_privilege_and_how_to_get_it(sql_world):
    server, role, topic, _ = sql_world
    with connect_as(server, role) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
            conn.execute("SELECT streamlog.produce(%s, 'k', 'v')", (topic,))
    diag = e.value.diag
    assert topic in diag.message_primary
    assert "WRITE" in diag.message_detail
    assert "streamlog.grant(" in diag.message_hint


def test_create_topic_needs_create_on_the_cluster_or_the_name(server):
    role = make_role(server)
    first, second, third = fresh("ct"), fresh("ct"), fresh("ct")
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, "SELECT streamlog.create_topic(%s)", (first,)) == "42501"
        grant(server, "create", "topic", first, role)
        assert sqlstate_of(conn, "SELECT streamlog.create_topic(%s)", (first,)) is None
        assert sqlstate_of(conn, "SELECT streamlog.create_topic(%s)", (second,)) == "42501"
        grant(server, "create", "cluster", None, role)
        assert sqlstate_of(conn, "SELECT streamlog.create_topic(%s)", (second,)) is None
        # the creator owns the topic: everything on it, without a grant
        revoke(server, "create", "cluster", None, role)
        assert sqlstate_of(conn, "SELECT streamlog.produce(%s, 'k', 'v')", (second,)) is None
        assert sqlstate_of(conn, "SELECT * FROM streamlog.read(%s, 0)", (second,)) is None
        assert sqlstate_of(conn, "SELECT streamlog.drop_topic(%s)", (second,)) is None
        assert sqlstate_of(conn, "SELECT streamlog.create_topic(%s)", (third,)) == "42501"


def test_unauthorized_role_cannot_tell_whether_a_topic_exists(server):
    role = make_role(server)
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, "SELECT * FROM streamlog.read(%s, 0)",
                           (fresh("nosuch"),)) == "42501"


def test_deny_wins_over_allow(sql_world):
    server, role, topic, _ = sql_world
    # (not on "*": the session's server is shared with other tests)
    grant(server, "read", "topic", topic[:-3], role, pattern="prefixed")
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, "SELECT * FROM streamlog.read(%s, 0)", (topic,)) is None
        deny(server, "read", "topic", topic, role)
        assert sqlstate_of(conn, "SELECT * FROM streamlog.read(%s, 0)", (topic,)) == "42501"


def test_prefixed_patterns(server):
    prefix = fresh("pfx") + "."
    inside, outside = prefix + "a", fresh("other")
    for t in (inside, outside):
        server.sql("SELECT streamlog.create_topic(%s)", (t,))
    role = make_role(server)
    grant(server, "write", "topic", prefix, role, pattern="prefixed")
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, "SELECT streamlog.produce(%s, 'k', 'v')", (inside,)) is None
        assert sqlstate_of(conn, "SELECT streamlog.produce(%s, 'k', 'v')", (outside,)) == "42501"
        deny(server, "write", "topic", prefix, role, pattern="prefixed")
        assert sqlstate_of(conn, "SELECT streamlog.produce(%s, 'k', 'v')", (inside,)) == "42501"


def test_role_inheritance(sql_world):
    server, child, topic, _ = sql_world
    parent = make_role(server, login=False)
    grant(server, "read", "topic", topic, parent)
    with connect_as(server, child) as conn:
        assert sqlstate_of(conn, "SELECT * FROM streamlog.read(%s, 0)", (topic,)) == "42501"
        server.sql(f"GRANT {parent} TO {child}")
        assert sqlstate_of(conn, "SELECT * FROM streamlog.read(%s, 0)", (topic,)) is None
        # a DENY on the parent reaches the child too
        deny(server, "read", "topic", topic, parent)
        assert sqlstate_of(conn, "SELECT * FROM streamlog.read(%s, 0)", (topic,)) == "42501"


def test_public_grant_reaches_every_role(sql_world):
    server, role, topic, _ = sql_world
    grant(server, "describe", "topic", topic, "public")
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, "SELECT streamlog.offset_for_time(%s, 0, now())", (topic,)) is None


def test_streamlog_admin_may_do_everything(sql_world):
    server, role, topic, group = sql_world
    server.sql(f"GRANT streamlog_admin TO {role}")
    with connect_as(server, role) as conn:
        for call, _ in SQL_MATRIX:
            if "drop_topic" in call or "delete_group" in call:
                continue
            query, params = _call(call, topic, group)
            assert sqlstate_of(conn, query, params) is None, call


def test_views_show_what_the_role_may_describe(sql_world):
    server, role, topic, group = sql_world
    other = fresh("hidden")
    server.sql("SELECT streamlog.create_topic(%s)", (other,))
    with connect_as(server, role) as conn:
        def names(view, col="topic"):
            return {r[0] for r in conn.execute(f"SELECT {col} FROM streamlog.{view}").fetchall()}

        for view in ("topics", "partitions", "consumer_lag"):
            assert topic not in names(view) and other not in names(view)
        assert group not in names("consumer_groups", "group_id")
        grant(server, "describe", "topic", topic, role)
        assert topic in names("topics") and other not in names("topics")
        assert topic in names("partitions") and other not in names("partitions")
        # config needs DESCRIBE_CONFIGS
        assert conn.execute("SELECT config FROM streamlog.topics WHERE topic = %s",
                            (topic,)).fetchone() == (None,)
        grant(server, "describe_configs", "topic", topic, role)
        assert conn.execute("SELECT config IS NOT NULL FROM streamlog.topics WHERE topic = %s",
                            (topic,)).fetchone() == (True,)
        # lag: the group and the topic
        assert group not in names("consumer_lag", "group_id")
        grant(server, "describe", "group", group, role)
        assert group in names("consumer_lag", "group_id")
        assert group in names("consumer_groups", "group_id")
        # a leaky condition of the caller's sees nothing past the barrier
        conn.execute("CREATE TEMP TABLE seen (name text)")
        conn.execute("""CREATE FUNCTION pg_temp.leak(text) RETURNS boolean
                        LANGUAGE plpgsql COST 0.0000001 AS
                        $$BEGIN INSERT INTO seen VALUES ($1); RETURN true; END$$""")
        conn.execute("SELECT * FROM streamlog.topics WHERE pg_temp.leak(topic)")
        assert other not in {r[0] for r in conn.execute("SELECT name FROM seen").fetchall()}


# -- the Kafka door ---------------------------------------------------------------

KAFKA_ROLE = "kafka_authz_user"

string, kbytes, array = kh.string, kh.kbytes, kh.array


@pytest.fixture(scope="module")
def kafka_server(tmp_path_factory):
    """A server whose Kafka clients act as KAFKA_ROLE, a plain role"""
    from pgserver import PgServer

    srv = PgServer(tmp_path_factory.getbasetemp(), name="authz", conf={
        "streamlog.anonymous_role": KAFKA_ROLE,
        "streamlog.group_initial_rebalance_delay": 0,
    })
    try:
        srv.start()
        srv.sql(f"CREATE ROLE {KAFKA_ROLE} LOGIN")
    except BaseException:
        srv.cleanup()
        raise
    yield srv
    srv.cleanup()


@pytest.fixture
def kworld(kafka_server):
    """A topic of 2 partitions with a record in partition 0, a group that
    committed offset 0 of it, and no privilege for KAFKA_ROLE on either
    (nor on the cluster)"""
    srv = kafka_server
    # what earlier tests gave the role: its entries, and the topics it owns
    for on_type, pattern, name in srv.sql(
            "SELECT DISTINCT lower(resource_type), lower(pattern_type), name "
            "FROM streamlog.acls WHERE role = %s::regrole", (KAFKA_ROLE,)):
        revoke(srv, "all", on_type, None if on_type == "cluster" else name, KAFKA_ROLE, pattern)
    srv.sql("SELECT streamlog.drop_topic(name) FROM streamlog.topic WHERE owner = %s::regrole",
            (KAFKA_ROLE,))
    topic, group = fresh("kt"), fresh("kg")
    srv.sql("SELECT streamlog.create_topic(%s, 2)", (topic,))
    srv.sql("SELECT streamlog.produce(%s, 'k', 'v', partition => 0)", (topic,))
    srv.sql("SELECT streamlog.seek(%s, %s, 0, 0)", (group, topic))
    return srv, topic, group


def kcall(srv, api, version, body):
    """The body of the response to one request, on a new connection"""
    with kh.RawClient(srv.kafka_bootstrap) as c:
        return c.call(lambda cid: kh.request_frame(api, version, cid, body))


# Each case: api key, version, body(topic, group), errors(Reader) -> the
# error codes of the answer; then the privileges it needs, each with the
# error code its absence gives.  Topic names are literal, except "*".

def _produce(t, g):
    batch = kh.record_batch([(b"k", b"v", (), kh.now_ms())])
    return (string(None) + i16(-1) + i32(10000)
            + array([t], lambda t: string(t) + array([0], lambda p: i32(p) + kbytes(batch))))


def _produce_errors(r):
    return [e for (_t, _p), (e, _b) in kh.parse_produce_v3(r.data).items()]


def _fetch(t, g):
    return (i32(-1) + i32(0) + i32(1) + i32(1 << 20) + i8(0)
            + array([t], lambda t: string(t) + array([0], lambda p: i32(p) + i64(0) + i32(1 << 20))))


def _fetch_errors(r):
    return [e for (e, _hw, _rec) in kh.parse_fetch_v4(r.data).values()]


def _list_offsets(t, g):
    return i32(-1) + array([t], lambda t: string(t) + array([0], lambda p: i32(p) + i64(-1)))


def _list_offsets_errors(r):
    return [e for (e, _ts, _off) in kh.parse_list_offsets_v1(r.data).values()]


def _metadata(t, g):
    return array([t], string)


def _metadata_errors(r):
    return [v["error"] for v in kh.parse_metadata_v1(r.data)["topics"].values()]


def _create_topics(t, g):
    name = t + ".new"
    return array([name], lambda n: string(n) + i32(1) + i16(1) + array([], None)
                 + array([], None)) + i32(10000)


def _name_error_pairs(r):
    return [e for _n, e in r.array(lambda r: (r.string(), r.i16()))]


def _delete_topics(t, g):
    return array([t], string) + i32(10000)


def _create_partitions(t, g):
    return array([t], lambda t: string(t) + i32(3) + i32(-1)) + i32(10000) + i8(0)


def _create_partitions_errors(r):
    r.i32()
    return [e for _n, e, _m in r.array(lambda r: (r.string(), r.i16(), r.string()))]


def _describe_configs(resource_type, name):
    """name None: the topic's"""
    return lambda t, g: array([(resource_type, t if name is None else name)],
                              lambda x: i8(x[0]) + string(x[1]) + i32(-1))


def _describe_configs_errors(r):
    r.i32()
    out = []
    for _ in range(r.i32()):
        out.append(r.i16())
        r.string(), r.i8(), r.string()
        r.array(lambda r: (r.string(), r.string(), r.i8(), r.i8(), r.i8()))
    return out


def _alter_configs(resource_type, name, config, value, validate_only=True):
    return lambda t, g: array([(resource_type, t if name is None else name)], lambda x: i8(x[0]) + string(x[1])
                              + array([(config, value)], lambda c: string(c[0]) + string(c[1]))) \
        + i8(validate_only)


def _incremental_alter_configs(resource_type, name, config, value, validate_only=True):
    return lambda t, g: array([(resource_type, t if name is None else name)], lambda x: i8(x[0]) + string(x[1])
                              + array([(config, value)], lambda c: string(c[0]) + i8(0)
                                      + string(c[1]))) + i8(validate_only)


def _alter_configs_errors(r):
    r.i32()
    return [e for e, _m, _ty, _n in r.array(lambda r: (r.i16(), r.string(), r.i8(), r.string()))]


def _delete_records(t, g):
    return array([t], lambda t: string(t) + array([0], lambda p: i32(p) + i64(0))) + i32(10000)


def _delete_records_errors(r):
    r.i32()
    return [e for _n, parts in r.array(lambda r: (r.string(), r.array(
        lambda r: (r.i32(), r.i64(), r.i16())))) for _p, _lw, e in parts]


def _find_coordinator(t, g):
    return string(g)


def _first_i16(r):
    return [r.i16()]


def _offset_commit(t, g):
    return (string(g) + i32(-1) + string("") + i64(-1)
            + array([t], lambda t: string(t) + array([0], lambda p: i32(p) + i64(0) + string(None))))


def _offset_commit_errors(r):
    return [e for _n, parts in r.array(lambda r: (r.string(), r.array(
        lambda r: (r.i32(), r.i16())))) for _p, e in parts]


def _offset_fetch(t, g):
    return string(g) + array([t], lambda t: string(t) + array([0], i32))


def _offset_fetch_errors(r):
    r.i32()
    parts = [e for _n, ps in r.array(lambda r: (r.string(), r.array(
        lambda r: (r.i32(), r.i64(), r.string(), r.i16())))) for _p, _o, _m, e in ps]
    group_error = r.i16()
    return [group_error] + parts


def _join_group(t, g):
    return (string(g) + i32(10000) + string("") + string("consumer")
            + array(["range"], lambda p: string(p) + kbytes(b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")))


def _sync_group(t, g):
    return string(g) + i32(1) + string("someone") + array([], None)


def _heartbeat(t, g):
    return string(g) + i32(1) + string("someone")


def _leave_group(t, g):
    return string(g) + string("someone")


def _describe_groups(t, g):
    return array([g], string)


def _describe_groups_errors(r):
    return [r.array(lambda r: (r.i16(), r.string(), r.string(), r.string(), r.string(),
                              r.array(lambda r: (r.string(), r.string(), r.string(),
                                                 r.bytes(), r.bytes()))))[0][0]]


def _delete_groups(t, g):
    return array([g], string)


def _delete_groups_errors(r):
    r.i32()
    return [e for _g, e in r.array(lambda r: (r.string(), r.i16()))]


def _offset_delete(t, g):
    return string(g) + array([t], lambda t: string(t) + array([0], i32))


def _offset_delete_errors(r):
    group_error = r.i16()
    r.i32()
    parts = [e for _n, ps in r.array(lambda r: (r.string(), r.array(
        lambda r: (r.i32(), r.i16())))) for _p, e in ps]
    return [group_error] + parts


def _init_producer_id(t, g):
    return string(None) + i32(60000)


def _init_producer_id_errors(r):
    r.i32()
    return [r.i16()]


TOPIC, GROUP, CLUSTER = "topic", "group", "cluster"
T_FAIL, G_FAIL, C_FAIL = TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, \
    CLUSTER_AUTHORIZATION_FAILED

# Apache Kafka's config resource types (not the ACL ones)
CONFIG_TOPIC, CONFIG_BROKER = 2, 4

# (id, api key, version, body, errors, [(privilege, on, error without it)])
KAFKA_MATRIX = [
    ("Produce", 0, 3, _produce, _produce_errors, [("write", TOPIC, T_FAIL)]),
    ("Fetch", 1, 4, _fetch, _fetch_errors, [("read", TOPIC, T_FAIL)]),
    ("ListOffsets", 2, 1, _list_offsets, _list_offsets_errors, [("describe", TOPIC, T_FAIL)]),
    ("Metadata", 3, 1, _metadata, _metadata_errors, [("describe", TOPIC, T_FAIL)]),
    ("CreateTopics", 19, 0, _create_topics, _name_error_pairs, [("create", CLUSTER, T_FAIL)]),
    ("DeleteTopics", 20, 0, _delete_topics, _name_error_pairs, [("delete", TOPIC, T_FAIL)]),
    ("CreatePartitions", 37, 0, _create_partitions, _create_partitions_errors,
     [("alter", TOPIC, T_FAIL)]),
    ("DescribeConfigs-topic", 32, 0, _describe_configs(CONFIG_TOPIC, None),
     _describe_configs_errors, [("describe_configs", TOPIC, T_FAIL)]),
    ("DescribeConfigs-broker", 32, 0, _describe_configs(CONFIG_BROKER, ""),
     _describe_configs_errors, [("describe_configs", CLUSTER, C_FAIL)]),
    ("AlterConfigs-topic", 33, 0, _alter_configs(CONFIG_TOPIC, None, "retention.ms", "1000000"),
     _alter_configs_errors, [("alter_configs", TOPIC, T_FAIL)]),
    ("IncrementalAlterConfigs-topic", 44, 0,
     _incremental_alter_configs(CONFIG_TOPIC, None, "retention.ms", "1000000"),
     _alter_configs_errors, [("alter_configs", TOPIC, T_FAIL)]),
    ("DeleteRecords", 21, 0, _delete_records, _delete_records_errors, [("delete", TOPIC, T_FAIL)]),
    ("FindCoordinator", 10, 0, _find_coordinator, _first_i16, [("describe", GROUP, G_FAIL)]),
    ("OffsetCommit", 8, 2, _offset_commit, _offset_commit_errors,
     [("read", GROUP, G_FAIL), ("read", TOPIC, T_FAIL)]),
    ("OffsetFetch", 9, 3, _offset_fetch, _offset_fetch_errors,
     [("describe", GROUP, G_FAIL), ("describe", TOPIC, T_FAIL)]),
    ("DescribeGroups", 15, 0, _describe_groups, _describe_groups_errors,
     [("describe", GROUP, G_FAIL)]),
    ("DeleteGroups", 42, 0, _delete_groups, _delete_groups_errors, [("delete", GROUP, G_FAIL)]),
    ("OffsetDelete", 47, 0, _offset_delete, _offset_delete_errors,
     [("delete", GROUP, G_FAIL), ("read", TOPIC, T_FAIL)]),
    ("InitProducerId", 22, 0, _init_producer_id, _init_producer_id_errors,
     [("idempotent_write", CLUSTER, C_FAIL)]),
]


def _errors_of(srv, api, version, body, errors):
    return errors(kh.Reader(kcall(srv, api, version, body)))


@pytest.mark.parametrize("api, version, body, errors, needs",
                         [c[1:] for c in KAFKA_MATRIX], ids=[c[0] for c in KAFKA_MATRIX])
def test_kafka_api_needs_its_privilege(kworld, api, version, body, errors, needs):
    srv, topic, group = kworld
    names = {TOPIC: topic, GROUP: group, CLUSTER: None}
    request = body(topic, group)
    # without: the error of the first privilege missing, for every item
    for privilege, on, error in needs:
        got = _errors_of(srv, api, version, request, errors)
        assert got and all(e == error for e in got if e != NONE) and error in got, \
            f"without {privilege} on {on}: {got}"
        grant(srv, privilege, on, names[on], KAFKA_ROLE)
    got = _errors_of(srv, api, version, request, errors)
    assert all(e == NONE for e in got), f"with {needs}: {got}"
    # the last privilege alone is not enough when two are needed
    if len(needs) == 2:
        privilege, on, error = needs[0]
        revoke(srv, privilege, on, names[on], KAFKA_ROLE)
        assert error in _errors_of(srv, api, version, request, errors)


@pytest.mark.parametrize("name, body", [
    ("JoinGroup", _join_group), ("SyncGroup", _sync_group),
    ("Heartbeat", _heartbeat), ("LeaveGroup", _leave_group)])
def test_group_membership_needs_read_on_the_group(kworld, name, body):
    srv, topic, group = kworld
    api = {"JoinGroup": 11, "SyncGroup": 14, "Heartbeat": 12, "LeaveGroup": 13}[name]
    request = body(topic, group)
    assert _errors_of(srv, api, 0, request, _first_i16) == [GROUP_AUTHORIZATION_FAILED]
    grant(srv, "describe", "group", group, KAFKA_ROLE)
    assert _errors_of(srv, api, 0, request, _first_i16) == [GROUP_AUTHORIZATION_FAILED]
    grant(srv, "read", "group", group, KAFKA_ROLE)
    # past authorization: JoinGroup joins, the others meet an unknown member
    expected = [NONE] if name == "JoinGroup" else [UNKNOWN_MEMBER_ID]
    assert _errors_of(srv, api, 0, request, _first_i16) == expected


def test_create_topics_on_the_topic_name(kworld):
    srv, topic, _ = kworld
    request = _create_topics(topic, None)
    assert _errors_of(srv, 19, 0, request, _name_error_pairs) == [T_FAIL]
    grant(srv, "create", "topic", topic + ".new", KAFKA_ROLE)
    assert _errors_of(srv, 19, 0, request, _name_error_pairs) == [NONE]
    # its creator owns it
    assert srv.sql("SELECT owner::regrole::text FROM streamlog.topic WHERE name = %s",
                   (topic + ".new",)) == [(KAFKA_ROLE,)]
    assert _errors_of(srv, 20, 0, _delete_topics(topic + ".new", None), _name_error_pairs) == [NONE]


def test_broker_configs_need_alter_configs_on_the_cluster(kworld):
    """Anyone could ALTER SYSTEM through AlterConfigs before"""
    srv, _, _ = kworld
    # the value the server has already: nothing changes for the other tests
    requests = [(api, body(CONFIG_BROKER, "", "group.initial.rebalance.delay.ms", "0",
                           validate_only=False)(None, None))
                for api, body in ((33, _alter_configs), (44, _incremental_alter_configs))]
    for api, request in requests:
        assert _errors_of(srv, api, 0, request, _alter_configs_errors) == [C_FAIL]
    # ALTER_CONFIGS on the cluster is not PostgreSQL's ALTER SYSTEM privilege
    grant(srv, "alter_configs", "cluster", None, KAFKA_ROLE)
    for api, request in requests:
        assert _errors_of(srv, api, 0, request, _alter_configs_errors) == [C_FAIL]
    assert "group_initial_rebalance_delay" not in open(
        f"{srv.datadir}/postgresql.auto.conf").read()
    srv.sql(f"GRANT ALTER SYSTEM ON PARAMETER streamlog.group_initial_rebalance_delay "
            f"TO {KAFKA_ROLE}")
    try:
        assert _errors_of(srv, 44, 0, requests[1][1], _alter_configs_errors) == [NONE]
        assert "group_initial_rebalance_delay" in open(
            f"{srv.datadir}/postgresql.auto.conf").read()
    finally:
        srv.sql("ALTER SYSTEM RESET streamlog.group_initial_rebalance_delay")
        srv.sql(f"REVOKE ALTER SYSTEM ON PARAMETER streamlog.group_initial_rebalance_delay "
                f"FROM {KAFKA_ROLE}")


def test_metadata_hides_what_the_role_may_not_describe(kworld):
    srv, topic, _ = kworld
    other = fresh("hidden")
    srv.sql("SELECT streamlog.create_topic(%s)", (other,))

    def listed():
        with kh.RawClient(srv.kafka_bootstrap) as c:
            return set(kh.parse_metadata_v1(c.call(kh.metadata_request, 1, None))["topics"])

    assert topic not in listed() and other not in listed()
    grant(srv, "describe", "topic", topic, KAFKA_ROLE)
    assert topic in listed() and other not in listed()


def test_metadata_auto_creation_needs_create(kworld):
    srv, topic, _ = kworld
    name = topic + ".auto"
    request = _metadata(name, None)
    assert _errors_of(srv, 3, 1, request, _metadata_errors) == [T_FAIL]
    grant(srv, "describe", "topic", name, KAFKA_ROLE)
    assert _errors_of(srv, 3, 1, request, _metadata_errors) == [T_FAIL]
    assert srv.sql("SELECT count(*) FROM streamlog.topic WHERE name = %s", (name,)) == [(0,)]
    grant(srv, "create", "topic", name, KAFKA_ROLE)
    assert _errors_of(srv, 3, 1, request, _metadata_errors) == [NONE]
    assert srv.sql("SELECT count(*) FROM streamlog.topic WHERE name = %s", (name,)) == [(1,)]


def test_list_groups_shows_what_the_role_may_describe(kworld):
    srv, topic, group = kworld
    other = fresh("kg")
    srv.sql("SELECT streamlog.seek(%s, %s, 0, 0)", (other, topic))

    def listed():
        r = kh.Reader(kcall(srv, 16, 0, b""))
        assert r.i16() == NONE
        return {g for g, _ in r.array(lambda r: (r.string(), r.string()))}

    assert group not in listed() and other not in listed()
    grant(srv, "describe", "group", group, KAFKA_ROLE)
    assert group in listed() and other not in listed()
    grant(srv, "describe", "cluster", None, KAFKA_ROLE)
    assert {group, other} <= listed()


def test_offset_fetch_of_all_topics_leaves_out_undescribable_ones(kworld):
    srv, topic, group = kworld
    grant(srv, "describe", "group", group, KAFKA_ROLE)

    def fetched():
        r = kh.Reader(kcall(srv, 9, 3, string(group) + i32(-1)))
        r.i32()
        topics = {n for n, _ in r.array(lambda r: (r.string(), r.array(
            lambda r: (r.i32(), r.i64(), r.string(), r.i16()))))}
        assert r.i16() == NONE
        return topics

    assert fetched() == set()
    grant(srv, "describe", "topic", topic, KAFKA_ROLE)
    assert fetched() == {topic}


def test_kafka_deny_prefix_and_inheritance(kworld):
    """The rules of the SQL door, seen through Produce"""
    srv, topic, _ = kworld
    request = _produce(topic, None)

    def produce_error():
        return _errors_of(srv, 0, 3, request, _produce_errors)

    parent = make_role(srv, login=False)
    grant(srv, "write", "topic", topic[:4], parent, pattern="prefixed")
    assert produce_error() == [T_FAIL]
    srv.sql(f"GRANT {parent} TO {KAFKA_ROLE}")
    try:
        assert produce_error() == [NONE]
        deny(srv, "write", "topic", topic, KAFKA_ROLE)
        assert produce_error() == [T_FAIL]
    finally:
        srv.sql(f"REVOKE {parent} FROM {KAFKA_ROLE}")


def test_one_refusal_leaves_the_rest_of_the_request_and_the_connection(kworld):
    srv, topic, _ = kworld
    allowed = fresh("kt")
    srv.sql("SELECT streamlog.create_topic(%s)", (allowed,))
    grant(srv, "write", "topic", allowed, KAFKA_ROLE)
    batch = kh.record_batch([(b"k", b"v", (), kh.now_ms())])
    body = (string(None) + i16(-1) + i32(10000)
            + array([topic, allowed], lambda t: string(t) + array(
                [0], lambda p: i32(p) + kbytes(batch))))
    with kh.RawClient(srv.kafka_bootstrap) as c:
        got = kh.parse_produce_v3(c.call(lambda cid: kh.request_frame(0, 3, cid, body)))
        assert got[(topic, 0)][0] == T_FAIL
        assert got[(allowed, 0)][0] == NONE
        # the connection serves the next request
        assert kh.parse_metadata_v1(c.call(kh.metadata_request, 1, []))["brokers"]


def test_real_clients_act_under_the_same_rules(kworld):
    """confluent-kafka (librdkafka) producing and kafka-python consuming"""
    from confluent_kafka import KafkaError, Producer

    srv, topic, group = kworld
    outcomes = []

    def produce():
        p = Producer({"bootstrap.servers": srv.kafka_bootstrap, "message.timeout.ms": 20000})
        p.produce(topic, b"value", partition=0,
                  on_delivery=lambda err, msg: outcomes.append(err))
        p.flush(30)
        return outcomes.pop()

    err = produce()
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    grant(srv, "write", "topic", topic, KAFKA_ROLE)
    assert produce() is None

    grant(srv, "read", "topic", topic, KAFKA_ROLE)
    got = kh.kp_consume(srv.kafka_bootstrap, topic, 0, 2)
    assert [value for _o, _k, value, _h, _ts in got] == [b"v", b"value"]


# Kafka's operation codes, as authorized operations (KIP-430) set their bits
OP_READ, OP_WRITE, OP_DESCRIBE, OP_ALTER = 3, 4, 8, 7


def test_metadata_reports_authorized_operations(kworld):
    srv, topic, _ = kworld
    # Metadata v8: topics, allow auto-creation, include cluster / topic operations
    body = array([topic], string) + i8(0) + i8(1) + i8(1)

    def operations():
        r = kh.Reader(kcall(srv, 3, 8, body))
        r.i32()
        r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
        r.string(), r.i32()
        topics = r.array(lambda r: (r.i16(), r.string(), r.i8(), r.array(lambda r: (
            r.i16(), r.i32(), r.i32(), r.i32(), r.array(lambda r: r.i32()),
            r.array(lambda r: r.i32()), r.array(lambda r: r.i32()))), r.i32()))
        return topics[0][0], topics[0][4], r.i32()

    assert operations()[0] == T_FAIL
    grant(srv, "read", "topic", topic, KAFKA_ROLE)
    error, topic_ops, cluster_ops = operations()
    assert error == NONE
    assert topic_ops == (1 << OP_READ) | (1 << OP_DESCRIBE)
    assert cluster_ops == 0
    grant(srv, "alter", "cluster", None, KAFKA_ROLE)
    assert operations()[2] == (1 << OP_ALTER) | (1 << OP_DESCRIBE)


def test_describe_cluster_answers_anyone_and_reports_authorized_operations(kworld):
    """As Kafka 3.9: DESCRIBE on the cluster decides only the operations
    reported, not whether the cluster is described"""
    srv, _, _ = kworld

    def describe():
        # v0 is flexible: header v2, compact fields, tagged fields
        body = i8(1) + kh.uvarint(0)
        with kh.RawClient(srv.kafka_bootstrap) as c:
            data = c.call(lambda cid: kh.request_frame(60, 0, cid, body, header_version=2))
        r = kh.Reader(data)
        r.uvarint()                 # response header tags
        r.i32()                     # throttle
        error = r.i16()

        def compact_string(r):
            n = r.uvarint()
            return None if n == 0 else r.take(n - 1).decode()

        compact_string(r), compact_string(r), r.i32()
        for _ in range(r.uvarint() - 1):
            r.i32(), compact_string(r), r.i32(), compact_string(r), r.uvarint()
        return error, r.i32()

    assert describe() == (NONE, 0)
    grant(srv, "describe", "cluster", None, KAFKA_ROLE)
    assert describe() == (NONE, 1 << OP_DESCRIBE)


def test_produce_asks_for_each_topic_and_role_of_a_statement(sql_world):
    """produce() remembers a granted WRITE for the rest of its statement
    only, and only for that topic and that role"""
    server, role, topic, _ = sql_world
    other = fresh("sqlt")
    server.sql("SELECT streamlog.create_topic(%s)", (other,))
    grant(server, "write", "topic", topic, role)
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, "SELECT streamlog.produce(t, 'k', 'v') FROM "
                           "unnest(ARRAY[%s, %s, %s]) t", (topic, topic, other)) == "42501"
        assert sqlstate_of(conn, "SELECT streamlog.produce(%s, 'k', 'v') FROM "
                           "generate_series(1, 3)", (topic,)) is None
        revoke(server, "write", "topic", topic, role)
        assert sqlstate_of(conn, "SELECT streamlog.produce(%s, 'k', 'v') FROM "
                           "generate_series(1, 3)", (topic,)) == "42501"
    # a SECURITY DEFINER function produces as its owner, one row as each
    owner = make_role(server)
    grant(server, "write", "topic", topic, owner)
    server.sql(f"CREATE FUNCTION produce_as_{owner}(t text) RETURNS integer "
               f"LANGUAGE sql SECURITY DEFINER AS $$SELECT streamlog.produce(t, 'k', 'v')$$")
    server.sql(f"ALTER FUNCTION produce_as_{owner}(text) OWNER TO {owner}")
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, f"SELECT produce_as_{owner}(%s)", (topic,)) is None
        assert sqlstate_of(conn, f"SELECT produce_as_{owner}(%s), streamlog.produce(%s, 'k', 'v')",
                           (topic, topic)) == "42501"


def test_one_role_one_set_of_rules_over_sasl_and_sql(tmp_path_factory):
    """Two roles log in with their PostgreSQL passwords, over SCRAM on the
    Kafka port and over SQL: each may do through both doors exactly what
    it was granted, and nothing else"""
    from confluent_kafka import KafkaError, Producer
    from pgserver import PgServer, free_port

    srv = PgServer(tmp_path_factory.getbasetemp(), name="authz-sasl")
    sasl_port = free_port()
    srv.update_conf({"streamlog.listeners": f"PLAINTEXT://127.0.0.1:{srv.kafka_port},"
                                            f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
                     "password_encryption": "scram-sha-256"})
    try:
        srv.start()
        topic = fresh("sasl")
        srv.sql("SELECT streamlog.create_topic(%s)", (topic,))
        for role in ("writer", "reader"):
            srv.sql(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'")
        grant(srv, "write", "topic", topic, "writer")
        grant(srv, "read", "topic", topic, "reader")

        def kafka_produce(role):
            outcomes = []
            p = Producer({"bootstrap.servers": f"127.0.0.1:{sasl_port}",
                          "security.protocol": "SASL_PLAINTEXT",
                          "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": role,
                          "sasl.password": f"pw-{role}", "message.timeout.ms": 20000})
            p.produce(topic, b"from " + role.encode(), partition=0,
                      on_delivery=lambda err, msg: outcomes.append(err))
            p.flush(30)
            return outcomes[0]

        def sql_as(role, query):
            with psycopg.connect(host=srv.host, port=srv.port, user=role, dbname="postgres",
                                 autocommit=True, connect_timeout=10) as conn:
                return sqlstate_of(conn, query, (topic,))

        assert kafka_produce("writer") is None
        err = kafka_produce("reader")
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        assert sql_as("writer", "SELECT streamlog.produce(%s, 'k', 'from sql')") is None
        assert sql_as("reader", "SELECT streamlog.produce(%s, 'k', 'v')") == "42501"
        assert sql_as("reader", "SELECT * FROM streamlog.read(%s, 0)") is None
        assert sql_as("writer", "SELECT * FROM streamlog.read(%s, 0)") == "42501"
        assert [r[0] for r in srv.sql("SELECT value FROM streamlog.read(%s, 0)", (topic,))] == \
            [b"from writer", b"from sql"]
    finally:
        srv.cleanup()


def test_broker_stats_are_for_operators(server):
    role = make_role(server)
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, "SELECT * FROM streamlog.broker_stats") == "42501"
        assert sqlstate_of(conn, "SELECT * FROM streamlog.broker_stats()") == "42501"
    server.sql(f"GRANT pg_monitor TO {role}")
    with connect_as(server, role) as conn:
        assert sqlstate_of(conn, "SELECT * FROM streamlog.broker_stats") is None
