"""Tests of the multi-node harness itself (cluster.py): ports, the
settings each node gets, and the faults it causes (kill -9, stop, pause
and resume), on standalone nodes so that they hold whatever the Raft
worker does."""

import os
import re

import psycopg
import pytest

from cluster import PAUSE_FREEZER, PAUSE_SIGSTOP, Cluster, pause_method
from pgserver import _processes_in, _proc_state


def test_settings_of_a_three_node_cluster(tmp_path):
    c = Cluster(4, tmp_path, voters=3, conf={"work_mem": "2MB"},
                node_conf={4: {"streamlog.broker_rack": "r2"}})
    try:
        ports = [p for n in c for p in (n.port, n.kafka_port, n.raft_port)]
        assert len(set(ports)) == len(ports)
        voters = c.voters_setting()
        assert voters == ",".join(f"{i}@127.0.0.1:{c.node(i).raft_port}" for i in (1, 2, 3))
        for n in c:
            s = n.settings()
            assert s["streamlog.node_id"] == n.node_id
            assert s["streamlog.controller_quorum_voters"] == voters
            assert s["streamlog.cluster_id"] == c.cluster_id
            assert s["streamlog.raft_listen_address"] == f"127.0.0.1:{n.raft_port}"
            assert s["streamlog.advertised_sql_conninfo"] == \
                f"host=127.0.0.1 port={n.port} user=postgres dbname=postgres"
            assert s["work_mem"] == "2MB"
        assert c.node(4).settings()["streamlog.broker_rack"] == "r2"
        assert "streamlog.broker_rack" not in c.node(1).settings()
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", c.cluster_id)
        assert c.bootstrap_servers([1, 3]) == \
            f"127.0.0.1:{c.node(1).kafka_port},127.0.0.1:{c.node(3).kafka_port}"
        with pytest.raises(KeyError):
            c.node(5)
    finally:
        c.cleanup()


def test_standalone_nodes_start_crash_and_restart(make_cluster):
    c = make_cluster(3, voters=0)
    assert c.running() == [1, 2, 3]
    for n in c:
        assert n.sql("show streamlog.node_id") == [(str(n.node_id),)]
        assert n.sql("select extname from pg_extension where extname = 'streamlog'") \
            == [("streamlog",)]
        assert n.sql("show streamlog.port") == [(str(n.kafka_port),)]
    # the nodes are separate servers: a table made on one is on no other
    c.node(1).sql("create table only_on_one (x int)")
    assert c.node(2).sql("select to_regclass('only_on_one') is null") == [(True,)]

    c.kill9(2)
    assert c.running() == [1, 3]
    with pytest.raises(psycopg.OperationalError):
        c.node(2).connect()
    c.stop(3, "fast")
    assert c.running() == [1]
    c.start([2, 3])
    assert c.running() == [1, 2, 3]
    assert "automatic recovery in progress" in c.node(2).log_text()
    assert c.node(1).sql("select count(*) from only_on_one") == [(0,)]


@pytest.mark.parametrize("method", [PAUSE_FREEZER, PAUSE_SIGSTOP])
def test_pause_stops_every_process_and_resume_continues(make_cluster, method):
    if method != pause_method() and method == PAUSE_FREEZER:
        pytest.skip("no writable cgroup-v1 freezer here")
    c = make_cluster(2, voters=0)
    node = c.node(1)
    conn = node.connect()
    backend = conn.execute("select pg_backend_pid()").fetchone()[0]
    pids = _processes_in(node.datadir)
    assert backend in pids

    c.pause(1, method)
    assert node.paused == method
    assert c.reachable() == [2]
    if node.paused == PAUSE_FREEZER:
        with open(os.path.join(node._cgroup, "freezer.state")) as f:
            assert f.read().strip() == "FROZEN"
        with open(os.path.join(node._cgroup, "cgroup.procs")) as f:
            frozen = {int(x) for x in f.read().split()}
        assert set(_processes_in(node.datadir)) <= frozen
    else:
        for pid in _processes_in(node.datadir):
            assert _proc_state(pid) == "T", pid
    # the other node is not affected
    assert c.node(2).sql("select 1") == [(1,)]

    c.resume(1)
    assert conn.execute("select pg_backend_pid()").fetchone()[0] == backend
    assert node.sql("select 2") == [(2,)]
    conn.close()

    # a paused node can be killed and restarted
    c.pause(1, method)
    c.kill9(1)
    assert not node.is_running()
    c.start(1)
    assert node.sql("select 3") == [(3,)]


def test_pause_method_is_known():
    assert pause_method() in ("freezer", "sigstop")
