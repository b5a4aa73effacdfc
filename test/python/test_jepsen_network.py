"""The nemesis's network cuts (jepsen_network.py): nodes in namespaces of
their own still form a cluster that clients reach; a node cut from the
others loses them (the two others elect a controller without it) while
clients still reach it; healed, it rejoins.  Skipped, saying what is
missing, where network namespaces cannot be made."""

import subprocess

from cluster import require_cluster_mode
from jepsen_network import network_fixture

network = network_fixture()


def reaches(net, from_node, to_node, port):
    """Whether a TCP connection from inside from_node's namespace to
    to_node's address gets through within two seconds."""
    script = ("import socket,sys\n"
              "try:\n"
              f"    socket.create_connection(('{net.address(to_node)}', {port}), 2).close()\n"
              "except OSError:\n"
              "    sys.exit(1)\n")
    return subprocess.run(["ip", "netns", "exec", net.namespaces[from_node],
                           "/usr/bin/python3", "-c", script]).returncode == 0


def test_a_node_cut_from_the_others_loses_them_but_not_its_clients(network, make_cluster):
    cluster = make_cluster(3, start=False)
    network.place(cluster)
    cluster.start()
    require_cluster_mode(cluster.node(1))
    cluster.wait_ready()
    assert reaches(network, 1, 2, cluster.node(2).port)
    controller = cluster.wait_for_controller()
    others = [n for n in cluster.node_ids if n != controller]

    network.cut(controller)
    assert not reaches(network, controller, others[0], cluster.node(others[0]).port)
    assert not reaches(network, others[1], controller, cluster.node(controller).port)
    assert reaches(network, others[0], others[1], cluster.node(others[1]).port)
    # the two others elect a controller of their own; the cut node still
    # answers its clients
    cluster.wait_for_controller(exclude=[controller], node_ids=others, deadline=60)
    assert cluster.node(controller).sql("SELECT 1") == [(1,)]

    network.heal()
    assert reaches(network, controller, others[0], cluster.node(others[0]).port)
    cluster.wait_for_controller(deadline=60)
