"""Network cuts between the nodes of a cluster.Cluster on one machine
(CLUSTER.md section 5), with nothing but iproute2 and root.

Each node runs in a network namespace of its own, its veth joined to a
bridge in the test's namespace, at 10.213.<k>.<node id>/24 (k drawn per
run, so that runs side by side never meet); the test's clients stay in its
own namespace and reach every node through the bridge.  Loopback, and
every other test on the machine, is left alone.

cut(node) separates a node from the other nodes, both ways, while clients
still reach all of them: each side's neighbour entry for the other becomes
a permanent one with an address no interface has, so that frames between
them go nowhere and are dropped in silence (as a pulled cable: no error
reaches the sender, TCP retransmits until its own timeout).  iptables and
tc netem are not installed here, and a blackhole route would answer the
sender with an error at once, which is not what a cut does.  heal() puts
the learnt entries back.

    reason = NetworkCuts.unavailable()      # None, or why not (for a skip)
    net = NetworkCuts(); net.place(cluster)  # before cluster.start()
    net.cut(2); ...; net.heal()
    net.cleanup()
"""

import os
import random
import shutil
import subprocess

# A locally administered unicast address that no interface here has
NOWHERE_MAC = "02:00:5e:00:de:ad"
SUBNET = "10.213"


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          stdin=subprocess.DEVNULL)


class NetworkCuts:
    """The namespaces, bridge and cuts of one cluster (see the module
    docstring)."""

    @staticmethod
    def unavailable():
        """None if namespaces and veth bridges can be made here, else why
        not: what is missing, for a pytest skip."""
        if os.geteuid() != 0:
            return "network cuts need root (ip netns, veth, bridge)"
        if shutil.which("ip") is None:
            return "network cuts need iproute2's ip command"
        probe = NetworkCuts()
        try:
            probe._setup_bridge()
            probe._add_namespace(1)
        except (subprocess.CalledProcessError, OSError) as e:
            err = getattr(e, "stderr", "") or str(e)
            return f"network namespaces or veth bridges unavailable here: {err.strip()}"
        finally:
            probe.cleanup()
        return None

    def __init__(self):
        tag = "%04x" % random.randrange(1 << 16)
        self.tag = tag
        self.bridge = f"slj{tag}b"
        self.k = self._free_subnet()
        self.namespaces = {}     # node id -> namespace name
        self.cuts = []           # (namespace, address) of each nowhere entry
        self._bridge_made = False

    @staticmethod
    def _free_subnet():
        used = _ip("-4", "-o", "addr").stdout
        for _ in range(100):
            k = random.randrange(1, 255)
            if f" {SUBNET}.{k}." not in used:
                return k
        raise RuntimeError(f"no free {SUBNET}.x.0/24 subnet")

    def address(self, node_id):
        return f"{SUBNET}.{self.k}.{node_id}"

    def _namespace(self, node_id):
        return f"slj{self.tag}n{node_id}"

    @staticmethod
    def _inner(node_id):
        return f"eth{node_id}"

    def _setup_bridge(self):
        _ip("link", "add", self.bridge, "type", "bridge")
        self._bridge_made = True
        _ip("addr", "add", f"{SUBNET}.{self.k}.254/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def _add_namespace(self, node_id):
        ns = self._namespace(node_id)
        outer = f"slj{self.tag}v{node_id}"
        _ip("netns", "add", ns)
        self.namespaces[node_id] = ns
        _ip("link", "add", outer, "type", "veth", "peer", "name", self._inner(node_id),
            "netns", ns)
        _ip("link", "set", outer, "master", self.bridge)
        _ip("link", "set", outer, "up")
        _ip("-n", ns, "addr", "add", f"{self.address(node_id)}/24", "dev",
            self._inner(node_id))
        _ip("-n", ns, "link", "set", self._inner(node_id), "up")
        _ip("-n", ns, "link", "set", "lo", "up")

    def place(self, cluster):
        """Give every node of a cluster that has not started yet a namespace
        and an address of its own, reachable from here, and let its
        superuser in from the other addresses of the subnet (SQL and
        Kafka)."""
        self._setup_bridge()
        for node in cluster:
            if node.is_running():
                raise RuntimeError(f"node {node.node_id} runs already: place() comes first")
            self._add_namespace(node.node_id)
            node.host = self.address(node.node_id)
            node.netns = self._namespace(node.node_id)
            # clients reach it from another address than loopback: they
            # act as the superuser, as they do on loopback
            node.update_conf({"streamlog.anonymous_role": node.user})
        # every address is known before any node's settings name its voters
        for node in cluster:
            node.initdb()
            with open(os.path.join(node.datadir, "pg_hba.conf"), "a") as f:
                f.write(f"host all all {SUBNET}.{self.k}.0/24 trust\n")
        return self

    def cut(self, node_id):
        """Separate node_id from every other node, both ways; clients
        still reach it.  Returns the pairs cut."""
        pairs = []
        for other in self.namespaces:
            if other == node_id:
                continue
            for a, b in ((node_id, other), (other, node_id)):
                ns = self.namespaces[a]
                _ip("-n", ns, "neigh", "replace", self.address(b), "lladdr", NOWHERE_MAC,
                    "nud", "permanent", "dev", self._inner(a))
                self.cuts.append((ns, self.address(b), self._inner(a)))
            pairs.append((node_id, other))
        return pairs

    def heal(self):
        """Every cut undone: the entries are removed and learnt again."""
        for ns, address, dev in self.cuts:
            _ip("-n", ns, "neigh", "del", address, "dev", dev, check=False)
        self.cuts = []

    def cleanup(self):
        """Namespaces (their veth ends go with them) and the bridge."""
        self.heal()
        for ns in self.namespaces.values():
            _ip("netns", "del", ns, check=False)
        self.namespaces = {}
        if self._bridge_made:
            _ip("link", "del", self.bridge, check=False)
            self._bridge_made = False


def network_fixture():
    """A pytest fixture (test modules import it as `network`): a
    NetworkCuts to place a cluster with, removed at the end; the test is
    skipped, saying what is missing, where namespaces cannot be made."""
    import pytest

    @pytest.fixture
    def network():
        reason = NetworkCuts.unavailable()
        if reason:
            pytest.skip(reason)
        net = NetworkCuts()
        try:
            yield net
        finally:
            net.cleanup()
    return network
