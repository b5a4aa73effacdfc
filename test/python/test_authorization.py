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

import struct
import uuid

import psycopg
import pytest

import kafka_helpers as kh
from kafka_primitives import i8, i16, i32, i64

# Kafka error codes
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
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
    grant(server, "read", "topic", "*", role)
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
