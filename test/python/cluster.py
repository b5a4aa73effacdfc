"""Several streamlog nodes on 127.0.0.1 as one cluster, for the multi-node
tests and the cluster benchmark.

Each node is a PgServer (pgserver.py) with its own data directory and its
own SQL, Kafka and Raft ports (the Raft port is used for TCP by libraft and
for UDP by the heartbeats).  The nodes get the settings of a cluster
(README, "Running a cluster"): streamlog.node_id, the same
streamlog.controller_quorum_voters and streamlog.cluster_id on every node,
their own streamlog.raft_listen_address, and a
streamlog.advertised_sql_conninfo through which the others reach them as
the superuser (trust on loopback).

    c = Cluster(3).start()          # nodes 1..3, all voters
    c.wait_ready()                  # a controller, every node registered
    c.node(2).sql("select 1")
    old = c.controller(); c.kill9(old); c.start(old)
    c.pause(3); ...; c.resume(3)    # freezer cgroup, else SIGSTOP
    c.cleanup()

Node ids are 1-based: node(1) is the first node.  voters=k makes the first k
nodes voters (default min(n, 3)); voters=0 starts standalone nodes without
any cluster setting (used to test the harness itself).

Views read here (streamlog.nodes, streamlog.raft_status,
streamlog.partitions) are looked up by column name in one place each
(_node_row, raft_status, partitions) so that a renamed column is fixed
here only.
"""

import base64
import os
import signal
import socket
import threading
import time
import uuid

import psycopg

import pgserver
from pgserver import HOST, IS_ROOT, PgServer, _alive, _proc_state, _processes_in

FREEZER_ROOT = "/sys/fs/cgroup/freezer"

# The two ways pause() can stop a node (pause_method() says which one works
# here; a test may ask for either)
PAUSE_FREEZER = "freezer"
PAUSE_SIGSTOP = "sigstop"


def new_cluster_id():
    """A cluster id shaped like Kafka's: a random UUID in URL-safe base64,
    22 characters (kafka-storage random-uuid)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def udp_port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def free_raft_port():
    """A port free for both TCP (Raft) and UDP (heartbeats)."""
    for _ in range(100):
        port = pgserver.free_port()
        if udp_port_is_free(port):
            return port
    raise RuntimeError("no port free for both TCP and UDP")


def pause_method():
    """How pause() stops a node here: the cgroup-v1 freezer when this
    process may create a freezer cgroup, else SIGSTOP of every process of
    the node (both stop the backends a postmaster forked with setsid,
    which a process-group signal would miss)."""
    if IS_ROOT and os.path.isdir(FREEZER_ROOT) and os.access(FREEZER_ROOT, os.W_OK):
        return PAUSE_FREEZER
    return PAUSE_SIGSTOP


_known_settings = None


def server_knows_setting(name):
    """Whether the PostgreSQL under test has a setting of that name (read
    once from postgres --describe-config)."""
    global _known_settings
    if _known_settings is None:
        import subprocess

        out = subprocess.run([os.path.join(pgserver.bindir(), "postgres"), "--describe-config"],
                             capture_output=True, text=True, check=True).stdout
        _known_settings = {line.split("\t", 1)[0] for line in out.splitlines()}
    return name in _known_settings


def replication_settings():
    """What a node needs to replicate partitions by logical decoding
    (CLUSTER.md section 3): wal_level logical, a walsender and a slot per
    follower on a leader, an apply worker per leader on a follower; and,
    where this PostgreSQL restricts output plugins to a list
    (output_plugin_libraries), streamlog's plugin in it."""
    settings = {
        "wal_level": "logical",
        "max_replication_slots": 16,
        "max_wal_senders": 16,
        "max_worker_processes": 24,
        # SQL consume() on a node that does not coordinate the group ties
        # its claim on the coordinator to the caller's commit by two-phase
        # commit (README, "SQL consume() on any node")
        "max_prepared_transactions": 64,
    }
    if server_knows_setting("output_plugin_libraries"):
        settings["output_plugin_libraries"] = "pgoutput, test_decoding, streamlog"
    return settings


def shared_cluster(tmp_path_factory, n=3, **kwargs):
    """A started, ready cluster for the tests of a module (a generator for
    a module-scoped fixture: `yield from shared_cluster(...)`); removed
    afterwards.  Skips the module where this streamlog has no cluster mode
    (no streamlog.controller_quorum_voters setting)."""
    import pytest

    c = Cluster(n, tmp_path_factory.getbasetemp(), **kwargs)
    try:
        c.start()
        require_cluster_mode(c.node(1))
        c.wait_ready()
        yield c
    finally:
        c.cleanup()


def require_cluster_mode(node):
    """Skip the test where the installed streamlog has no cluster mode."""
    import pytest

    rows = node.sql("SELECT count(*) FROM pg_settings "
                    "WHERE name = 'streamlog.controller_quorum_voters'")
    if rows != [(1,)]:
        pytest.skip("this streamlog has no cluster mode (streamlog.controller_quorum_voters)")


class ClusterNode(PgServer):
    """One node of a Cluster: a PgServer whose settings carry the
    cluster's (computed when the configuration is written, so that every
    node's voters list names the ports all nodes were given)."""

    def __init__(self, cluster, node_id, base_dir, conf, create_extension):
        super().__init__(base_dir, conf=conf, create_extension=create_extension,
                         name=f"{cluster.name}-n{node_id}")
        self.cluster = cluster
        self.node_id = node_id
        self.raft_port = free_raft_port()
        self.paused = None          # PAUSE_FREEZER / PAUSE_SIGSTOP while paused
        self._cgroup = None
        self._stopped_pids = []

    @property
    def raft_address(self):
        return f"{self.host}:{self.raft_port}"

    @property
    def sql_conninfo(self):
        return f"host={self.host} port={self.port} user={self.user} dbname=postgres"

    def cluster_settings(self):
        """The settings that make this server a node of the cluster."""
        c = self.cluster
        if not c.voter_ids:
            return {"streamlog.node_id": self.node_id}
        return {
            **replication_settings(),
            "streamlog.node_id": self.node_id,
            "streamlog.controller_quorum_voters": c.voters_setting(),
            "streamlog.cluster_id": c.cluster_id,
            "streamlog.raft_listen_address": self.raft_address,
            "streamlog.advertised_sql_conninfo": self.sql_conninfo,
        }

    def settings(self):
        merged = super().settings()
        extra = self.cluster_settings()
        # what the test passed wins, as with PgServer's own defaults
        for key, value in extra.items():
            if key not in self.conf:
                merged[key] = value
        return {k: v for k, v in merged.items() if v is not None}

    # -- pause / resume ---------------------------------------------------------

    def pause(self, method=None):
        """Stop every process of this node where it stands (no signal it
        can handle): the cgroup-v1 freezer if available, else SIGSTOP
        (method forces one of PAUSE_FREEZER, PAUSE_SIGSTOP)."""
        if self.paused:
            return
        if not self.is_running():
            raise RuntimeError(f"node {self.node_id} is not running")
        method = method or pause_method()
        if method == PAUSE_FREEZER:
            self._freeze()
        else:
            self._sigstop()
        self.paused = method

    def resume(self):
        if not self.paused:
            return
        if self.paused == PAUSE_FREEZER:
            self._write_freezer_state("THAWED")
        else:
            # children first: the postmaster must not find them stopped
            for pid in reversed(self._stopped_pids):
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            self._stopped_pids = []
        self.paused = None

    def _freeze(self):
        if self._cgroup is None:
            path = os.path.join(FREEZER_ROOT, f"streamlog-{uuid.uuid4().hex[:12]}")
            os.mkdir(path)
            self._cgroup = path
        postmaster = self._read_pid()
        procs = os.path.join(self._cgroup, "cgroup.procs")
        # The postmaster first: what it forks from then on is born inside
        # the cgroup; then its children until none is left outside.
        moved = set()
        for _ in range(100):
            pids = [postmaster] + [p for p in _processes_in(self.datadir)
                                   if p != postmaster]
            todo = [p for p in pids if p not in moved and _alive(p)]
            if not todo:
                break
            for pid in todo:
                try:
                    with open(procs, "w") as f:
                        f.write(str(pid))
                except (ProcessLookupError, OSError):
                    pass  # exited meanwhile
                moved.add(pid)
        self._write_freezer_state("FROZEN")

    def _write_freezer_state(self, state):
        path = os.path.join(self._cgroup, "freezer.state")
        with open(path, "w") as f:
            f.write(state)
        deadline = time.monotonic() + 30
        while True:
            with open(path) as f:
                now = f.read().strip()
            if now == state:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"freezer of node {self.node_id} stuck in {now}")
            time.sleep(0.01)

    def _sigstop(self):
        postmaster = self._read_pid()
        stopped = []
        # The postmaster first, so that it forks nothing new meanwhile
        for _ in range(10):
            pids = [postmaster] + [p for p in _processes_in(self.datadir)
                                   if p != postmaster]
            todo = [p for p in pids if p not in stopped]
            if not todo:
                break
            for pid in todo:
                try:
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
                except ProcessLookupError:
                    pass
        self._stopped_pids = stopped
        # a signal reaches a process running on another CPU a moment later
        deadline = time.monotonic() + 30
        for pid in stopped:
            while _proc_state(pid) not in (None, "T", "t", "Z", "X"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"process {pid} of node {self.node_id} did not stop")
                time.sleep(0.005)

    def _remove_cgroup(self):
        if self._cgroup is None:
            return
        try:
            os.rmdir(self._cgroup)
            self._cgroup = None
        except OSError:
            pass  # processes left in it: try again after the next stop

    # -- lifecycle: never leave a paused node to pg_ctl -------------------------

    def stop(self, mode="fast"):
        self.resume()
        super().stop(mode)
        self._remove_cgroup()

    def kill9(self, timeout=60):
        """SIGKILL the postmaster, paused or not, and wait for its children.
        A frozen process dies only once thawed, and the children exit
        only once they run and see the postmaster gone: resume them after
        the kill, never before (the node must not run a moment more)."""
        pid = self._read_pid()
        if pid is None or not _alive(pid):
            raise RuntimeError(f"no running postmaster in {self.datadir}")
        children = _processes_in(self.datadir)
        os.kill(pid, signal.SIGKILL)
        self.resume()
        self._wait_processes_gone(pid, timeout, children)
        self._wait_port_free(timeout)
        self.pid = None
        self._remove_cgroup()

    def cleanup(self):
        try:
            self.resume()
        finally:
            try:
                super().cleanup()
            finally:
                self._remove_cgroup()

    def __repr__(self):
        return (f"<ClusterNode {self.node_id} sql={self.port} kafka={self.kafka_port} "
                f"raft={self.raft_port} datadir={self.datadir}>")


class Cluster:
    """n streamlog nodes on loopback forming one cluster (see the module
    docstring).  conf: settings for every node; node_conf: {node_id:
    {settings}} for some; voters: how many of the first nodes are voters
    (default min(n, 3)) or a list of node ids, 0 = standalone nodes."""

    def __init__(self, n=3, base_dir=None, conf=None, node_conf=None, voters=None,
                 cluster_id=None, create_extension=True, name="cluster"):
        if n < 1:
            raise ValueError("a cluster has at least one node")
        self.name = name
        self.cluster_id = cluster_id or new_cluster_id()
        if voters is None:
            voters = min(n, 3)
        if isinstance(voters, int):
            self.voter_ids = list(range(1, voters + 1))
        else:
            self.voter_ids = sorted(voters)
        node_conf = node_conf or {}
        self.nodes = []
        try:
            for node_id in range(1, n + 1):
                merged = dict(conf or {})
                merged.update(node_conf.get(node_id, {}))
                self.nodes.append(ClusterNode(self, node_id, base_dir, merged,
                                              create_extension))
        except BaseException:
            self.cleanup()
            raise

    # -- addressing ---------------------------------------------------------------

    def node(self, node_id):
        """The node with this id (1-based)."""
        if not 1 <= node_id <= len(self.nodes):
            raise KeyError(f"no node {node_id} in a cluster of {len(self.nodes)}")
        return self.nodes[node_id - 1]

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self):
        return len(self.nodes)

    @property
    def node_ids(self):
        return [n.node_id for n in self.nodes]

    def voters_setting(self):
        """streamlog.controller_quorum_voters: id@host:port of each voter."""
        return ",".join(f"{i}@{self.node(i).raft_address}" for i in self.voter_ids)

    def bootstrap_servers(self, node_ids=None):
        """bootstrap.servers naming the given nodes (default all)."""
        ids = self.node_ids if node_ids is None else (
            [node_ids] if isinstance(node_ids, int) else node_ids)
        return ",".join(self.node(i).kafka_bootstrap for i in ids)

    def running(self):
        """Ids of the nodes whose postmaster runs (paused ones included)."""
        return [n.node_id for n in self.nodes if n.is_running()]

    def reachable(self):
        """Ids of the running nodes that are not paused."""
        return [n.node_id for n in self.nodes if n.is_running() and not n.paused]

    # -- lifecycle -------------------------------------------------------------

    def start(self, node_ids=None):
        """Start the given nodes (default all), in parallel: a quorum needs
        a majority of voters up before anything can be committed.
        Returns self."""
        ids = self.node_ids if node_ids is None else (
            [node_ids] if isinstance(node_ids, int) else list(node_ids))
        errors = {}

        def run(node_id):
            try:
                self.node(node_id).start()
            except BaseException as e:  # reported below, in the caller
                errors[node_id] = e

        threads = [threading.Thread(target=run, args=(i,)) for i in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            node_id, err = sorted(errors.items())[0]
            raise RuntimeError(f"node {node_id} did not start: {err}") from err
        return self

    def stop(self, node_id, mode="fast"):
        self.node(node_id).stop(mode)

    def kill9(self, node_id):
        self.node(node_id).kill9()

    def restart(self, node_id, mode="fast"):
        self.node(node_id).stop(mode)
        self.node(node_id).start()

    def pause(self, node_id, method=None):
        self.node(node_id).pause(method)

    def resume(self, node_id):
        self.node(node_id).resume()

    def cleanup(self):
        """Stop every node (immediate) and remove its files."""
        errors = []
        for n in getattr(self, "nodes", []):
            try:
                n.cleanup()
            except Exception as e:  # keep cleaning up the others
                errors.append(e)
        if errors:
            raise errors[0]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- waiting ----------------------------------------------------------------

    @staticmethod
    def wait_for(cond, deadline=60, what="condition", interval=0.05):
        """Poll cond() until it returns a true value, which is returned.  An
        error from a node that is starting, stopping or unreachable
        (psycopg.Error, OSError) counts as "not yet"; at the deadline the
        test fails naming what it waited for and the last such error."""
        import pytest

        end = time.monotonic() + deadline
        last_error = None
        while True:
            try:
                result = cond()
                if result:
                    return result
            except (psycopg.Error, OSError) as e:
                last_error = e
            if time.monotonic() > end:
                detail = f" (last error: {last_error})" if last_error else ""
                pytest.fail(f"timed out after {deadline}s waiting for {what}{detail}")
            time.sleep(interval)

    # -- views --------------------------------------------------------------------

    def _via(self, via):
        if via is not None:
            return self.node(via)
        for n in self.nodes:
            if n.is_running() and not n.paused:
                return n
        raise RuntimeError("no running node to ask")

    @staticmethod
    def _rows(node, query, params=None):
        with node.connect() as conn:
            cur = conn.execute(query, params)
            names = [d.name for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    @staticmethod
    def _node_row(row):
        """One row of streamlog.nodes in the harness's words: id, state,
        controller, voter (and the row itself as 'row')."""
        def pick(*names, default=None):
            for name in names:
                if name in row:
                    return row[name]
            return default
        return {
            "id": pick("node_id", "id"),
            "state": pick("state", "status"),
            "controller": bool(pick("is_controller", "controller", default=False)),
            "voter": bool(pick("is_voter", "voter", default=False)),
            "row": row,
        }

    def nodes_view(self, via=None):
        """streamlog.nodes as node `via` (default: the first reachable
        node) sees it: {node_id: {"id", "state", "controller", "voter",
        "row"}}."""
        rows = self._rows(self._via(via), "SELECT * FROM streamlog.nodes")
        out = {}
        for r in rows:
            n = self._node_row(r)
            out[n["id"]] = n
        return out

    def raft_status(self, via=None):
        """streamlog.raft_status of node `via`, as a dict (first row)."""
        rows = self._rows(self._via(via), "SELECT * FROM streamlog.raft_status")
        return rows[0] if rows else None

    def controller(self, via=None):
        """The controller's node id as node `via` sees it, or None."""
        for node_id, n in self.nodes_view(via).items():
            if n["controller"]:
                return node_id
        return None

    def agreed_controller(self, node_ids=None):
        """The controller if every given node (default: all reachable ones)
        names the same one, else None."""
        ids = self.reachable() if node_ids is None else node_ids
        seen = {self.controller(i) for i in ids}
        if len(seen) == 1:
            (cid,) = seen
            return cid
        return None

    def wait_for_controller(self, exclude=(), node_ids=None, deadline=60):
        """Wait until the given nodes (default: all reachable) agree on a
        controller that is not in exclude; return its id."""
        def agreed():
            cid = self.agreed_controller(node_ids)
            return cid if cid is not None and cid not in exclude else None
        return self.wait_for(agreed, deadline, f"a controller not in {list(exclude)}")

    def node_state(self, node_id, via=None):
        """State of node_id in streamlog.nodes as `via` sees it (None if
        not listed)."""
        n = self.nodes_view(via).get(node_id)
        return None if n is None else n["state"]

    def wait_ready(self, node_ids=None, deadline=90):
        """Wait until the given nodes (default all) agree on a controller and
        each sees every one of them in streamlog.nodes, not fenced."""
        ids = self.node_ids if node_ids is None else list(node_ids)
        if not self.voter_ids:
            return None

        def ready():
            cid = self.agreed_controller(ids)
            if cid is None:
                return None
            for via in ids:
                view = self.nodes_view(via)
                for node_id in ids:
                    n = view.get(node_id)
                    if n is None or n["state"] != "running":
                        return None
            return cid
        return self.wait_for(ready, deadline, f"nodes {ids} registered with one controller")

    def partitions(self, topic, via=None):
        """{partition: row of streamlog.partitions} for a topic, as node
        `via` sees it (leader_id, leader_epoch, replicas, isr, ...)."""
        rows = self._rows(self._via(via),
                          "SELECT * FROM streamlog.partitions WHERE topic = %s ORDER BY partition",
                          (topic,))
        return {r["partition"]: r for r in rows}

    def leaders(self, topic, via=None):
        """{partition: leader node id} for a topic as `via` sees it."""
        return {p: r.get("leader", r.get("leader_id")) for p, r in self.partitions(topic, via).items()}

    def topic_state(self, name, via=None):
        """A topic as node `via`'s catalog holds it, or None: (topic_id,
        topic_uuid, partition_count, config, {partition: (leader_id,
        leader_epoch, partition_epoch, replicas, isr)}).  Equal on every
        node once the topic's records are applied everywhere."""
        node = self._via(via)
        rows = node.sql("SELECT topic_id, topic_uuid, partition_count, config "
                        "FROM streamlog.topic WHERE name = %s", (name,))
        if not rows:
            return None
        (topic_id, topic_uuid, count, config), = rows
        parts = node.sql("SELECT partition, leader_id, leader_epoch, partition_epoch, "
                         "replicas, isr FROM streamlog.partition WHERE topic_id = %s "
                         "ORDER BY partition", (topic_id,))
        return (topic_id, topic_uuid, count, config,
                {p[0]: tuple(p[1:]) for p in parts})

    def wait_topic_everywhere(self, name, node_ids=None, deadline=60, check=None):
        """Wait until every given node (default: all reachable) holds the
        same state of the topic (topic_state), check(state) true if
        given; return that state."""
        ids = self.reachable() if node_ids is None else list(node_ids)

        def same():
            states = [self.topic_state(name, i) for i in ids]
            first = states[0]
            if first is None or any(s != first for s in states[1:]):
                return None
            if check is not None and not check(first):
                return None
            return first
        return self.wait_for(same, deadline, f"topic {name} alike on nodes {ids}")

    def wait_topic_gone_everywhere(self, name, node_ids=None, deadline=60):
        ids = self.reachable() if node_ids is None else list(node_ids)
        self.wait_for(lambda: all(self.topic_state(name, i) is None for i in ids),
                      deadline, f"topic {name} gone from nodes {ids}")

    def logs(self, lines=60):
        """The tail of every node's server log, for failure reports."""
        return "\n".join(f"--- node {n.node_id} ({n.logfile})\n{n.log_tail(lines)}"
                         for n in self.nodes)

    def __repr__(self):
        return f"<Cluster {self.name} nodes={self.node_ids} voters={self.voter_ids}>"



# -- Kafka's view of the cluster (raw requests, so that every field is seen) --

METADATA_V7 = 7
LEADER_NOT_AVAILABLE = 5
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
TOPIC_ALREADY_EXISTS = 36
NOT_CONTROLLER = 41


def metadata_v7_request(correlation_id, topics=None):
    """Metadata v7 for the given topics (None: every topic), no
    auto-creation."""
    import kafka_helpers as kh

    body = kh.array(topics, kh.string) + kh.i8(0)  # allow_auto_topic_creation
    return kh.request_frame(kh.METADATA, METADATA_V7, correlation_id, body)


def parse_metadata_v7(body):
    """{"brokers": {id: (host, port, rack)}, "cluster_id", "controller",
    "topics": {name: {"error", "partitions": {p: {"error", "leader",
    "leader_epoch", "replicas", "isr", "offline"}}}}}"""
    import kafka_helpers as kh

    r = kh.Reader(body)
    r.i32()  # throttle_time_ms
    brokers = {}
    for _ in range(r.i32()):
        node_id, host, port, rack = r.i32(), r.string(), r.i32(), r.string()
        brokers[node_id] = (host, port, rack)
    cluster_id = r.string()
    controller = r.i32()
    out_topics = {}
    for _ in range(r.i32()):
        error, name, _internal = r.i16(), r.string(), r.i8()
        parts = {}
        for _ in range(r.i32()):
            p = {"error": r.i16()}
            index = r.i32()
            p["leader"] = r.i32()
            p["leader_epoch"] = r.i32()
            p["replicas"] = r.array(lambda r: r.i32())
            p["isr"] = r.array(lambda r: r.i32())
            p["offline"] = r.array(lambda r: r.i32())
            parts[index] = p
        out_topics[name] = {"error": error, "partitions": parts}
    return {"brokers": brokers, "cluster_id": cluster_id, "controller": controller,
            "topics": out_topics}


def kafka_metadata(node, topics=None, timeout=10.0):
    """Metadata v7 from one node, on a connection of its own (see
    parse_metadata_v7)."""
    import kafka_helpers as kh

    with kh.RawClient(node.kafka_bootstrap, timeout=timeout) as client:
        return parse_metadata_v7(client.call(metadata_v7_request, topics))


def kafka_describe_cluster(node, timeout=10.0):
    """DescribeCluster v0 from one node: {"error", "cluster_id",
    "controller", "brokers": {id: (host, port, rack)}}."""
    import kafka_helpers as kh

    body = kh.i8(0) + kh.uvarint(0)
    with kh.RawClient(node.kafka_bootstrap, timeout=timeout) as client:
        r = kh.Reader(client.call(
            lambda cid: kh.request_frame(60, 0, cid, body, header_version=2)))

    def compact_string(r):
        n = r.uvarint() - 1
        return None if n < 0 else r.take(n).decode()

    r.uvarint()  # response header's tagged fields
    r.i32()  # throttle_time_ms
    error = r.i16()
    compact_string(r)  # error_message
    cluster_id = compact_string(r)
    controller = r.i32()
    brokers = {}
    for _ in range(r.uvarint() - 1):
        node_id, host, port, rack = r.i32(), compact_string(r), r.i32(), compact_string(r)
        r.uvarint()
        brokers[node_id] = (host, port, rack)
    return {"error": error, "cluster_id": cluster_id, "controller": controller,
            "brokers": brokers}


def kafka_create_topic(node, name, partitions, replication_factor=-1, timeout_ms=30000):
    """CreateTopics v2 sent to one node (whichever it is: a node that is
    not the controller forwards it); returns (error_code, error_message)."""
    import kafka_helpers as kh

    body = kh.array([name], lambda t: kh.string(t) + kh.i32(partitions)
                    + kh.i16(replication_factor) + kh.i32(0) + kh.i32(0))
    body += kh.i32(timeout_ms) + kh.i8(0)  # validate_only
    with kh.RawClient(node.kafka_bootstrap, timeout=timeout_ms / 1000 + 30) as client:
        r = kh.Reader(client.call(lambda cid: kh.request_frame(19, 2, cid, body)))
    r.i32()  # throttle_time_ms
    [(topic, error, message)] = r.array(lambda r: (r.string(), r.i16(), r.string()))
    assert topic == name
    return error, message
