"""Tests of the server harness itself (pgserver.py and the fixtures)."""

import re

import psycopg
import pytest

from pgserver import port_is_free


def test_server_answers_select_1(conn):
    assert conn.execute("select 1").fetchone() == (1,)


def test_streamlog_is_preloaded_and_created(server):
    [(libs,)] = server.sql("SHOW shared_preload_libraries")
    assert "streamlog" in [lib.strip() for lib in libs.split(",")]
    assert server.sql("select extname from pg_extension where extname = 'streamlog'") \
        == [("streamlog",)]
    assert server.sql("select nspname from pg_namespace where nspname = 'streamlog'") \
        == [("streamlog",)]


def test_sql_helper(server):
    assert server.sql("select %s::int + 1", (41,)) == [(42,)]
    assert server.sql("set application_name = 'harness'") == []
    [(port,)] = server.sql("show port")
    assert int(port) == server.port
    assert server.dsn == f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
    with psycopg.connect(server.dsn) as c:
        assert c.execute("select current_user").fetchone() == ("postgres",)


def test_committed_rows_survive_kill9(make_server):
    srv = make_server()
    srv.sql("create table harness_kill9 (id int primary key, v text)")
    srv.sql("insert into harness_kill9 select g, 'v' || g from generate_series(1, 1000) g")
    open_tx = srv.connect(autocommit=False)
    open_tx.execute("insert into harness_kill9 values (-1, 'uncommitted')")
    old_pid = srv.pid

    srv.kill9()
    assert not srv.is_running()
    assert port_is_free(srv.port)
    with pytest.raises(psycopg.OperationalError):
        srv.connect()

    srv.start()
    assert srv.pid != old_pid
    assert srv.sql("select count(*), min(id), max(id) from harness_kill9") == [(1000, 1, 1000)]
    assert "automatic recovery in progress" in srv.log_text()
    open_tx.close()


def test_conf_overrides_and_immediate_stop(make_server):
    srv = make_server(conf={"work_mem": "3MB", "application_name": "it's quoted"})
    assert srv.sql("show work_mem") == [("3MB",)]
    assert srv.sql("show application_name") == [("it's quoted",)]
    assert srv.sql("show streamlog.database") == [("postgres",)]
    srv.sql("create table harness_imm (x int)")
    srv.sql("insert into harness_imm values (7)")

    srv.stop("immediate")
    assert not srv.is_running()
    srv.update_conf({"work_mem": "5MB"})
    srv.start()
    assert srv.sql("table harness_imm") == [(7,)]
    assert srv.sql("show work_mem") == [("5MB",)]

    srv.restart()
    assert srv.sql("table harness_imm") == [(7,)]


def test_unique_name(unique_name):
    names = {unique_name("orders") for _ in range(100)}
    assert len(names) == 100
    for name in names | {unique_name("a b/c:ä" * 100)}:
        assert re.fullmatch(r"[a-zA-Z0-9._-]{1,249}", name), name
