"""The Raft worker on real nodes (CLUSTER.md section 2): three nodes on
loopback elect a controller that every node names; kill -9 of the
controller's postmaster gives another; a node whose Raft directory names
another cluster, or was copied from another data directory, refuses to join
and says how to rejoin, while its server stays up; hostile datagrams and
bytes on the Raft port are dropped; a standalone node shows itself alone.
"""

import os
import random
import socket
import subprocess
import time

import pytest

import pgserver
from cluster import Cluster
from pgserver import HOST


def wait_until(pred, what, timeout=60):
    return pgserver.wait_until(pred, timeout, what)


def raft_worker_pid(node):
    rows = node.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'streamlog raft'")
    return rows[0][0] if rows else None


def raft_status(node):
    rows = node.sql("SELECT role, term, leader_id, controller_id, refused, applied_index, "
                    "catalog_synced_index FROM streamlog.raft_status")
    return dict(zip(["role", "term", "leader_id", "controller_id", "refused",
                     "applied_index", "catalog_synced_index"], rows[0]))


def test_controller_elected_and_named_by_every_node(make_cluster):
    c = make_cluster(3)
    cid = c.wait_for_controller()
    for node in c:
        view = c.nodes_view(node.node_id)
        assert sorted(view) == [1, 2, 3]
        assert [i for i, n in view.items() if n["controller"]] == [cid]
        assert all(n["voter"] for n in view.values())
        assert all(n["state"] == "running" for n in view.values())
    # The controller is the Raft leader, in the term of its CONTROLLER record
    st = raft_status(c.node(cid))
    assert st["role"] == "leader" and st["controller_id"] == cid
    for node in c:
        other = raft_status(node)
        assert other["leader_id"] == cid
        assert other["controller_id"] == cid
    # Its view of the quorum: three voters, their progress known there
    members = c.node(cid).sql("SELECT node_id, role, match_index FROM streamlog.raft_members")
    assert [(m[0], m[1]) for m in members] == [(1, "voter"), (2, "voter"), (3, "voter")]
    wait_until(lambda: all(m[0] > 0 for m in c.node(cid).sql(
        "SELECT match_index FROM streamlog.raft_members")), "every voter's progress")


def test_kill9_of_the_controller_gives_another(make_cluster):
    c = make_cluster(3)
    old = c.wait_for_controller()
    others = [i for i in c.node_ids if i != old]
    epoch = raft_status(c.node(others[0]))["term"]
    t0 = time.monotonic()
    c.kill9(old)
    new = c.wait_for_controller(exclude=[old], node_ids=others)
    elapsed = time.monotonic() - t0
    print(f"controller {old} killed; node {new} took office after {elapsed:.2f} s")
    assert new in others
    assert raft_status(c.node(new))["term"] > epoch
    # The old controller comes back as a follower of the new one
    c.start([old])
    wait_until(lambda: c.agreed_controller() == new and
               raft_status(c.node(old))["role"] == "follower", "the old controller to follow")
    # and its log catches up
    wait_until(lambda: len({raft_status(n)["applied_index"] for n in c}) == 1,
               "every node to apply the same entries")


def test_other_cluster_id_refuses(make_cluster):
    c = make_cluster(1)
    node = c.node(1)
    c.wait_for_controller()
    first_id = c.cluster_id
    node.stop()
    node.update_conf({"streamlog.cluster_id": "another-cluster"})
    node.start()
    st = wait_until(lambda: (s := raft_status(node))["refused"] and s, "the refusal")
    assert st["role"] == "refused"
    assert f'belongs to cluster "{first_id}", not to "another-cluster"' in st["refused"]
    wait_until(lambda: raft_worker_pid(node) is None, "the Raft worker to exit")
    log = node.log_text()
    assert "refuses to join the cluster" in log
    assert f"Set streamlog.cluster_id to '{first_id}'" in log
    # The server itself stays up, without a controller
    assert node.sql("SELECT 1") == [(1,)]
    assert node.sql("SELECT count(*) FROM streamlog.nodes WHERE is_controller") == [(0,)]


def test_raft_directory_copied_into_another_data_directory_refuses(make_cluster):
    a = make_cluster(1)
    a.wait_for_controller()
    a.node(1).stop()
    b = make_cluster(1, start=False, cluster_id=a.cluster_id)
    bn = b.node(1)
    bn.initdb()
    # A clone (pg_basebackup, a copied data folder) carries the Raft directory
    subprocess.run(pgserver._as_server_user(
        ["cp", "-a", os.path.join(a.node(1).datadir, "streamlog_raft"), bn.datadir]), check=True)
    bn.start()
    st = wait_until(lambda: (s := raft_status(bn))["refused"] and s, "the refusal")
    assert "was copied from another data directory" in st["refused"]
    wait_until(lambda: raft_worker_pid(bn) is None, "the Raft worker to exit")
    assert "join the cluster as a new member" in bn.log_text()
    assert bn.sql("SELECT 1") == [(1,)]
    # Wiped, it starts afresh
    bn.stop()
    subprocess.run(pgserver._as_server_user(
        ["rm", "-rf", os.path.join(bn.datadir, "streamlog_raft")]), check=True)
    bn.start()
    b.wait_for_controller()
    assert raft_status(bn)["refused"] is None


def test_hostile_datagrams_and_bytes_are_dropped(make_cluster):
    c = make_cluster(3)
    cid = c.wait_for_controller()
    pids = {n.node_id: raft_worker_pid(n) for n in c}
    rng = random.Random(12)
    valid_start = b"SLHB\x01\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for node in c:
            for i in range(300):
                n = rng.randrange(0, 1500)
                junk = bytes(rng.randrange(256) for _ in range(n))
                if i % 3 == 0:
                    junk = valid_start + junk
                elif i % 3 == 1:
                    junk = b"SLHB\x01\x02" + junk
                s.sendto(junk, (HOST, node.raft_port))
            # a heartbeat-shaped datagram of another cluster
            s.sendto(valid_start + b"\x00\x05other" + b"\x00" * 40, (HOST, node.raft_port))
    for node in c:
        for _ in range(5):
            with socket.create_connection((HOST, node.raft_port), timeout=5) as t:
                try:
                    t.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096))))
                except OSError:
                    pass
    # Still the same workers, the same controller, and still in charge
    c.wait_ready()
    assert {n.node_id: raft_worker_pid(n) for n in c} == pids
    assert c.agreed_controller() == cid


def test_standalone_node_shows_itself(make_server):
    srv = make_server()
    rows = srv.sql("SELECT node_id, state, is_controller, is_voter, is_observer, kafka_port "
                   "FROM streamlog.nodes")
    assert rows == [(1, "running", True, True, False, srv.kafka_port)]
    st = raft_status(srv)
    assert st["role"] == "standalone" and st["controller_id"] == 1 and st["refused"] is None
    assert srv.sql("SELECT node_id, role FROM streamlog.raft_members") == [(1, "voter")]
    assert raft_worker_pid(srv) is None


def test_a_node_that_is_not_a_voter_joins_as_an_observer(make_cluster):
    c = make_cluster(4, voters=3)
    cid = c.wait_for_controller()
    # the controller adds it to the quorum as a non-voting member
    wait_until(lambda: (4, "observer") in c.node(cid).sql(
        "SELECT node_id, role FROM streamlog.raft_members"), "node 4 as an observer")
    view = c.nodes_view(4)
    assert view[4]["row"]["is_observer"] and not view[4]["voter"]
    assert sorted(i for i, n in view.items() if n["voter"]) == [1, 2, 3]
    # and it follows the log: the same entries applied as the controller
    wait_until(lambda: raft_status(c.node(4))["role"] == "observer"
               and raft_status(c.node(4))["applied_index"] >= raft_status(c.node(cid))["applied_index"] > 0,
               "node 4 to follow the log")


def test_a_second_node_with_the_id_of_a_live_one_is_refused(make_cluster):
    # node 4 of the harness, started as node id 2 (not a voter, its own
    # Raft address): node 2 is alive, so the controller refuses it
    c = make_cluster(4, voters=3, start=False, node_conf={4: {"streamlog.node_id": 2}})
    c.start([1, 2, 3])
    c.wait_ready([1, 2, 3])
    incarnation = c.nodes_view(1)[2]["row"]["incarnation"]
    c.start([4])
    wait_until(lambda: "node id 2 is alive with another incarnation" in c.node(4).log_text(),
               "the controller's refusal in the log of the second node 2")
    # the first node 2 keeps its registration
    view = c.nodes_view(1)
    assert view[2]["row"]["incarnation"] == incarnation
    assert view[2]["state"] == "running"


def test_controlled_shutdown_of_the_controller_hands_over(make_cluster):
    c = make_cluster(3)
    old = c.wait_for_controller()
    others = [i for i in c.node_ids if i != old]
    c.stop(old, "fast")
    log = c.node(old).log_text()
    assert "asks the controller for a controlled shutdown" in log
    assert "leaves the cluster: the controller moved its leaderships" in log
    new = c.wait_for_controller(exclude=[old], node_ids=others)
    # back, it registers again at once (not a session timeout later)
    c.start([old])
    c.wait_ready()
    assert c.agreed_controller() == new


def test_cancel_leaves_the_worker_and_terminate_restarts_it(make_cluster):
    c = make_cluster(3)
    cid = c.wait_for_controller()
    node = c.node(next(i for i in c.node_ids if i != cid))
    pid = raft_worker_pid(node)
    node.sql("SELECT pg_cancel_backend(%s)", (pid,))
    c.wait_ready()
    assert raft_worker_pid(node) == pid
    # a terminated worker goes the way of a controlled shutdown, and the
    # postmaster starts it again: the node is back in the cluster
    node.sql("SELECT pg_terminate_backend(%s)", (pid,))
    wait_until(lambda: raft_worker_pid(node) not in (None, pid), "a new Raft worker", timeout=90)
    c.wait_ready()
    assert "leaves the cluster" in node.log_text()
