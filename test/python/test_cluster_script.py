"""scripts/cluster.sh: a cluster in one command, then status, kill N,
restart N, stop and destroy, against the installed streamlog."""

import os
import pathlib
import re
import shutil
import subprocess

import psycopg
import pytest

import pgserver
from cluster import udp_port_is_free
from pgserver import port_is_free

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "cluster.sh")


def consecutive_free_ports(n, udp=False):
    """A base port such that base..base+n-1 are free (TCP, and UDP too)."""
    for _ in range(200):
        base = pgserver.free_port()
        ports = range(base, base + n)
        if all(port_is_free(p) and (not udp or udp_port_is_free(p)) for p in ports):
            pgserver._ports_handed_out.update(ports)
            return base
    raise RuntimeError("no run of free ports")


@pytest.fixture
def script(tmp_path):
    """Run cluster.sh with a private directory and free ports; destroys
    the cluster at the end."""
    # a directory the servers can reach also when the tests run as root
    parent = pgserver.PgServer._make_private_dir(tmp_path, "cluster-sh-")
    directory = pathlib.Path(parent) / "cluster"
    env = dict(os.environ,
               PG_CONFIG=pgserver.PG_CONFIG,
               STREAMLOG_CLUSTER_DIR=str(directory),
               STREAMLOG_CLUSTER_PG_PORT=str(consecutive_free_ports(3)),
               STREAMLOG_CLUSTER_KAFKA_PORT=str(consecutive_free_ports(3)),
               STREAMLOG_CLUSTER_RAFT_PORT=str(consecutive_free_ports(3, udp=True)))

    def run(*args, check=True):
        res = subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True,
                             timeout=300, cwd=ROOT)
        if check and res.returncode != 0:
            pytest.fail(f"cluster.sh {' '.join(args)} failed ({res.returncode}):\n"
                        f"{res.stdout}{res.stderr}")
        return res

    run.env = env
    run.dir = directory
    yield run
    run("destroy", check=False)
    shutil.rmtree(parent, ignore_errors=True)


def sql_port(env, node):
    return int(env["STREAMLOG_CLUSTER_PG_PORT"]) + node - 1


def node_sql(env, node, query):
    with psycopg.connect(host="127.0.0.1", port=sql_port(env, node), user="postgres",
                         dbname="postgres", autocommit=True, connect_timeout=10) as c:
        return c.execute(query).fetchall()


def test_start_status_kill_restart_stop(script):
    out = script("start", "3").stdout
    env = script.env
    kafka = [int(env["STREAMLOG_CLUSTER_KAFKA_PORT"]) + i for i in range(3)]
    raft = [int(env["STREAMLOG_CLUSTER_RAFT_PORT"]) + i for i in range(3)]
    assert "bootstrap.servers=" + ",".join(f"127.0.0.1:{p}" for p in kafka) in out
    for node in (1, 2, 3):
        assert f"psql -h 127.0.0.1 -p {sql_port(env, node)} -U postgres postgres" in out
        assert node_sql(env, node, "show streamlog.node_id") == [(str(node),)]
        assert node_sql(env, node, "show streamlog.port") == [(str(kafka[node - 1]),)]
        assert node_sql(env, node, "select count(*) from pg_extension "
                                   "where extname = 'streamlog'") == [(1,)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(raft))
    assert f"voters: {voters}" in out
    settings = (script.dir / "node2" / "streamlog_cluster.conf").read_text()
    assert f"streamlog.controller_quorum_voters = '{voters}'" in settings
    assert f"streamlog.raft_listen_address = '127.0.0.1:{raft[1]}'" in settings
    cluster_id = re.search(r"streamlog cluster (\S+):", out).group(1)
    assert f"streamlog.cluster_id = '{cluster_id}'" in settings

    status = script("status").stdout
    assert re.search(r"node 1 +running", status)
    assert "streamlog.raft_status of every running node" in status

    script("kill", "2")
    status = script("status").stdout
    assert re.search(r"node 2 +stopped", status)
    with pytest.raises(psycopg.OperationalError):
        node_sql(env, 2, "select 1")
    script("restart", "2")
    assert node_sql(env, 2, "select 1") == [(1,)]

    script("stop", "3")
    assert re.search(r"node 3 +stopped", script("status").stdout)
    # start again: the same cluster (its id and ports are kept)
    out = script("start").stdout
    assert f"streamlog cluster {cluster_id}:" in out
    assert node_sql(env, 3, "select 1") == [(1,)]
    assert "destroy" in script("start", "4", check=False).stderr

    script("stop")
    assert "no node runs" in script("status").stdout
    script("destroy")
    assert not script.dir.exists()
