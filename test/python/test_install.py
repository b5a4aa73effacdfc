"""Installing the extension: it refuses to be created where the library was
not preloaded, and leaves nothing behind when it refuses."""

import pytest
from psycopg import errors


def leftovers(conn):
    return conn.execute(
        "SELECT 'schema ' || nspname FROM pg_namespace "
        "WHERE nspname IN ('streamlog', 'streamlog_data') "
        "UNION ALL SELECT 'extension ' || extname FROM pg_extension WHERE extname = 'streamlog' "
        "UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typname = 'header' "
        "AND typnamespace::regnamespace::text = 'streamlog'").fetchall()


def test_create_extension_needs_shared_preload_libraries(make_server):
    srv = make_server(conf={"shared_preload_libraries": ""}, create_extension=False)
    with srv.connect() as conn:
        assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("",)

        with pytest.raises(errors.ObjectNotInPrerequisiteState) as exc:
            conn.execute("CREATE EXTENSION streamlog")
        assert exc.value.sqlstate == "55000"
        assert "shared_preload_libraries" in exc.value.diag.message_primary
        assert leftovers(conn) == []

        # loading the library into the session is not preloading it
        conn.execute("LOAD 'streamlog'")
        with pytest.raises(errors.ObjectNotInPrerequisiteState) as exc:
            conn.execute("CREATE EXTENSION streamlog")
        assert "shared_preload_libraries" in exc.value.diag.message_primary
        assert leftovers(conn) == []

    # once preloaded, the same cluster accepts it
    srv.update_conf({"shared_preload_libraries": "streamlog"})
    srv.restart()
    with srv.connect() as conn:
        conn.execute("CREATE EXTENSION streamlog")
        assert {r for (r,) in leftovers(conn)} == {
            "schema streamlog", "schema streamlog_data", "extension streamlog", "type header"}
        conn.execute("SELECT streamlog.create_topic('install-check', 1)")
        conn.execute("SELECT streamlog.produce('install-check', NULL, 'ok')")
        assert conn.execute("SELECT convert_from(value, 'UTF8') "
                            "FROM streamlog.read('install-check', 0)").fetchall() == [("ok",)]
