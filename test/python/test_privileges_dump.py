"""pg_dump keeps streamlog's privileges and topic owners: streamlog.acl and
streamlog.topic are extension configuration tables, and aclitem and
regrole are dumped by role name, so a restore into another database (or
cluster with the same roles) gives the same answers."""

import os
import subprocess

from pgserver import PG_CONFIG


def bindir():
    return subprocess.check_output([PG_CONFIG, "--bindir"], text=True).strip()


def test_dump_and_restore_keep_privileges_and_owners(make_server, tmp_path):
    srv = make_server()
    with srv.connect() as conn:
        conn.execute("CREATE ROLE dump_app")
        conn.execute("SELECT streamlog.grant('create', 'topic', 'dump.t', 'dump_app')")
        conn.execute("SET ROLE dump_app")
        conn.execute("SELECT streamlog.create_topic('dump.t')")
        conn.execute("RESET ROLE")
        conn.execute("SELECT streamlog.revoke('create', 'topic', 'dump.t', 'dump_app')")
        conn.execute("SELECT streamlog.grant('read, write', 'topic', 'dump.', 'dump_app', 'prefixed')")
        conn.execute("SELECT streamlog.deny('write', 'topic', 'dump.t', 'public')")
        before = conn.execute("SELECT * FROM streamlog.privileges ORDER BY 1, 2, 3").fetchall()
        bindings = conn.execute("SELECT * FROM streamlog.acls ORDER BY 1, 2, 3, 4, 6, 7").fetchall()
        conn.execute("CREATE DATABASE restored")

    dump = str(tmp_path / "streamlog.dump")
    subprocess.run([os.path.join(bindir(), "pg_dump"), "-Fc", "-f", dump, srv.dsn], check=True)
    restored_dsn = srv.dsn.replace("dbname=postgres", "dbname=restored")
    subprocess.run([os.path.join(bindir(), "pg_restore"), "--exit-on-error", "-d", restored_dsn, dump],
                   check=True)

    with srv.connect(dbname="restored") as conn:
        assert conn.execute("SELECT * FROM streamlog.privileges ORDER BY 1, 2, 3").fetchall() == before
        assert before == [
            # the grantor is always the bootstrap superuser
            ("TOPIC", "LITERAL", "dump.t", [], [f"=a/{srv.user}"]),
            ("TOPIC", "PREFIXED", "dump.", [f"dump_app=ar/{srv.user}"], []),
        ]
        assert conn.execute("SELECT * FROM streamlog.acls ORDER BY 1, 2, 3, 4, 6, 7"
                            ).fetchall() == bindings
        assert len(bindings) == 3
        assert conn.execute("SELECT name, owner::text FROM streamlog.topic").fetchall() == [
            ("dump.t", "dump_app")]
        checks = conn.execute(
            "SELECT streamlog.has_privilege('read', 'topic', 'dump.t', 'dump_app'),"
            "       streamlog.has_privilege('write', 'topic', 'dump.x', 'dump_app')").fetchone()
        assert checks == (True, True)
        # the owner may still do anything on its topic, the DENY to PUBLIC notwithstanding
        assert conn.execute("SELECT streamlog.has_privilege('write', 'topic', 'dump.t', 'dump_app')"
                            ).fetchone() == (True,)
