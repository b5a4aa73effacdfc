"""Cluster benchmark driver (bench/cluster/run.sh): a three-node streamlog
cluster on loopback, started with the multi-node test harness
(test/python/cluster.py), and a standalone streamlog beside it.

  a. controller failover: kill -9 of the controller, then the time until
     its successor has committed its first entry (the CONTROLLER record
     it proposes on becoming Raft leader, applied: raft_status shows the
     new controller with a commit index past the old one) and until a
     topic creation asked on a survivor succeeds; 20 repetitions, p50/p99
  b. metadata propagation: a topic created through SQL on one node (a
     follower, then the controller), then the time until every node's
     Kafka Metadata lists it with a leader for every partition; from the
     create's start and from its return
  c. creating 1,000 topics of 6 partitions through one node (not the
     controller), one streamlog.create_topic() per statement, next to the
     same on a standalone streamlog
"""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.join(REPO, "test", "python"))

import psycopg  # noqa: E402

import benchlib  # noqa: E402
from benchlib import fmt_int, log, table, verdict  # noqa: E402
import cluster as cl  # noqa: E402
import kafka_helpers as kh  # noqa: E402
from pgserver import PgServer  # noqa: E402

FAILOVER_TARGET_P99_S = 2.0
PROPAGATION_TARGET_P99_MS = 100.0


def percentile(values, q):
    """The q-th percentile (0-100), nearest rank: with 20 samples p99 is the
    largest, as a reader of a p99 over 20 runs expects."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


class ClusterDriver(benchlib.Driver):
    """Driver without a connection of its own: each measurement talks to
    the nodes it starts."""

    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.pause = 0.5 if self.quick else 3.0
        self.out = []
        self.notes = []
        self.log_pos = 0
        self.base = args.work_dir
        self.conf = {"streamlog.max_partitions": 8192, "shared_buffers": "256MB",
                     "max_locks_per_transaction": 256}
        self.standalone = None
        self.cluster = None

    # the head's "server" line asks the standalone server
    def q1(self, sql, params=None):
        return self.standalone.sql(sql, params)[0][0]

    def start(self):
        log("starting a standalone streamlog and a 3-node cluster")
        self.standalone = PgServer(self.base, conf=self.conf, name="bench-standalone")
        self.standalone.start()
        self.cluster = cl.Cluster(3, self.base, conf=self.conf, name="bench")
        self.cluster.start()
        cl.require_cluster_mode(self.cluster.node(1))
        self.cluster.wait_ready(deadline=120)

    def stop(self):
        for thing in (self.cluster, self.standalone):
            if thing is not None:
                try:
                    thing.cleanup()
                except Exception as e:  # keep cleaning up
                    log(f"cleanup: {e}")

    # -- a. failover ------------------------------------------------------------

    def failover_once(self, rep):
        c = self.cluster
        old = c.wait_for_controller(deadline=120)
        survivors = [i for i in c.node_ids if i != old]
        conns = {i: c.node(i).connect() for i in survivors}
        base_commit = max(conns[i].execute(
            "SELECT commit_index FROM streamlog.raft_status").fetchone()[0] for i in survivors)
        asker = conns[survivors[0]]
        asker.execute("SET statement_timeout = '60s'")
        name = f"failover-{rep}-{time.monotonic_ns()}"
        committed_at = None
        created_at = None
        t0 = time.monotonic()
        c.kill9(old)
        # killing returns once the node's processes are gone; the clock
        # started before the SIGKILL
        while committed_at is None:
            for i in survivors:
                row = conns[i].execute(
                    "SELECT controller_id, commit_index, role FROM streamlog.raft_status"
                ).fetchone()
                if row[0] not in (old, -1, None) and row[0] == i and row[2] == "leader" \
                        and row[1] > base_commit:
                    committed_at = time.monotonic()
                    break
            if time.monotonic() - t0 > 120:
                raise RuntimeError("no new controller within 120 s")
            time.sleep(0.002)
        while created_at is None:
            try:
                asker.execute("SELECT streamlog.create_topic(%s, 1)", (name,))
                created_at = time.monotonic()
            except psycopg.Error as e:
                if time.monotonic() - t0 > 120:
                    raise RuntimeError(f"no topic creation within 120 s: {e}")
                time.sleep(0.01)
        for conn in conns.values():
            conn.close()
        c.start(old)
        c.wait_ready(deadline=120)
        return committed_at - t0, created_at - t0

    def measure_failover(self, reps):
        log(f"a. controller failover, {reps} repetitions")
        committed, created = [], []
        for rep in range(reps):
            a, b = self.failover_once(rep)
            committed.append(a)
            created.append(b)
            log(f"   {rep + 1}/{reps}: committed {a * 1000:.0f} ms, topic created {b * 1000:.0f} ms")
        election = self.cluster.node(1).sql("SHOW streamlog.raft_election_timeout_ms")[0][0]
        self.emit()
        self.emit(f"a. Controller failover: kill -9 of the controller, {reps} repetitions "
                  f"(streamlog.raft_election_timeout_ms = {election})")
        rows = []
        for what, xs in (("successor's first committed entry", committed),
                         ("first topic creation on a survivor", created)):
            rows.append([what, f"{percentile(xs, 50) * 1000:,.0f}",
                         f"{percentile(xs, 99) * 1000:,.0f}", f"{max(xs) * 1000:,.0f}"])
        self.emit(table(["after the kill", "p50 ms", "p99 ms", "max ms"], rows))
        p99 = percentile(committed, 99)
        self.emit(f"  target p99 <= {FAILOVER_TARGET_P99_S:.0f} s (first committed entry): "
                  f"{verdict(p99 <= FAILOVER_TARGET_P99_S)}")
        self.note_cluster_logs("failover")

    # -- b. propagation ------------------------------------------------------

    def propagate(self, via, reps, clients):
        """Create reps topics on node via; for each, the seconds from the
        create's start and from its return until every node's Metadata
        lists it with a leader for each partition."""
        c = self.cluster
        from_start, from_return = [], []
        with c.node(via).connect() as conn:
            for rep in range(reps):
                name = f"prop-{via}-{rep}-{time.monotonic_ns()}"
                t0 = time.monotonic()
                conn.execute("SELECT streamlog.create_topic(%s, 3)", (name,))
                t1 = time.monotonic()
                pending = set(clients)
                while pending:
                    for node_id in list(pending):
                        md = cl.parse_metadata_v7(
                            clients[node_id].call(cl.metadata_v7_request, [name]))
                        t = md["topics"].get(name)
                        if t and t["error"] == 0 and len(t["partitions"]) == 3 and \
                                all(p["leader"] >= 0 for p in t["partitions"].values()):
                            pending.discard(node_id)
                    if time.monotonic() - t0 > 60:
                        raise RuntimeError(f"{name} not in every node's Metadata within 60 s")
                t2 = time.monotonic()
                from_start.append(t2 - t0)
                from_return.append(t2 - t1)
        return from_start, from_return

    def measure_propagation(self, reps):
        log(f"b. metadata propagation, {reps} topics through a follower, {reps} through "
            "the controller")
        c = self.cluster
        controller = c.wait_for_controller()
        follower = next(i for i in c.node_ids if i != controller)
        clients = {n.node_id: kh.RawClient(n.kafka_bootstrap, timeout=30) for n in c}
        try:
            f_start, f_return = self.propagate(follower, reps, clients)
            c_start, c_return = self.propagate(controller, reps, clients)
        finally:
            for client in clients.values():
                client.close()
        self.emit()
        self.emit("b. Metadata propagation: streamlog.create_topic(name, 3) on one node, then "
                  "Metadata v7 polled on every node until it lists the topic with a leader "
                  f"for each partition; {reps} topics each way")
        rows = []
        for what, xs in ((f"on node {follower} (a follower), from the create's start", f_start),
                         ("  ... from the create's return", f_return),
                         (f"on node {controller} (the controller), from the start", c_start),
                         ("  ... from the create's return", c_return)):
            rows.append([what, f"{percentile(xs, 50) * 1000:,.1f}",
                         f"{percentile(xs, 99) * 1000:,.1f}", f"{max(xs) * 1000:,.1f}"])
        self.emit(table(["created ... visible everywhere", "p50 ms", "p99 ms", "max ms"], rows))
        p99 = percentile(f_start, 99) * 1000
        self.emit(f"  target p99 <= {PROPAGATION_TARGET_P99_MS:.0f} ms (through a follower, "
                  f"from the create's start): {verdict(p99 <= PROPAGATION_TARGET_P99_MS)}")
        self.note_cluster_logs("propagation")

    # -- c. many topics ----------------------------------------------------------

    @staticmethod
    def create_many(node, prefix, count, partitions):
        with node.connect() as conn:
            conn.execute("SET client_min_messages = warning")
            t0 = time.monotonic()
            for i in range(count):
                conn.execute("SELECT streamlog.create_topic(%s, %s)",
                             (f"{prefix}-{i:05d}", partitions))
            return time.monotonic() - t0

    def measure_many_topics(self, count, partitions):
        log(f"c. {count} topics x {partitions} partitions, standalone then cluster")
        c = self.cluster
        controller = c.wait_for_controller()
        via = next(i for i in c.node_ids if i != controller)
        t_alone = self.create_many(self.standalone, "many", count, partitions)
        log(f"   standalone: {t_alone:.1f} s")
        t_cluster = self.create_many(c.node(via), "many", count, partitions)
        log(f"   cluster through node {via}: {t_cluster:.1f} s")
        # and until every node holds them all
        t0 = time.monotonic()
        c.wait_for(lambda: all(
            c.node(i).sql("SELECT count(*) FROM streamlog.topic WHERE name LIKE 'many-%'")[0][0]
            == count for i in c.node_ids), 600, "every topic on every node")
        t_all = t_cluster + (time.monotonic() - t0)
        self.emit()
        self.emit(f"c. Creating {fmt_int(count)} topics x {partitions} partitions, one "
                  f"streamlog.create_topic() per statement (autocommit), one session")
        rows = [["standalone streamlog", f"{t_alone:,.1f}", f"{count / t_alone:,.1f}",
                 f"{t_alone / count * 1000:,.1f}", "1.00x"],
                [f"3-node cluster, through node {via} (not the controller)",
                 f"{t_cluster:,.1f}", f"{count / t_cluster:,.1f}",
                 f"{t_cluster / count * 1000:,.1f}", f"{t_cluster / t_alone:.2f}x"],
                ["  ... until every node holds every topic", f"{t_all:,.1f}", "", "",
                 f"{t_all / t_alone:.2f}x"]]
        self.emit(table(["", "seconds", "topics/s", "ms/topic", "time vs standalone"], rows))
        self.note_cluster_logs("many topics")

    def note_cluster_logs(self, what):
        keep = ("ERROR", "FATAL", "PANIC", "WARNING", "terminated by signal")
        # what a kill -9 makes the killed node say of itself
        skip = ("terminated by signal 9", "unexpected postmaster exit")
        lines = []
        for n in self.cluster:
            text = n.log_text()
            start = getattr(n, "_bench_log_pos", 0)
            n._bench_log_pos = len(text)
            lines += [f"node {n.node_id}: {ln.strip()}" for ln in text[start:].splitlines()
                      if any(k in ln for k in keep) and not any(s in ln for s in skip)]
        if lines:
            self.notes.append(f"{what}: the nodes logged {len(lines)} line(s), first: "
                              + " | ".join(lines[:3]))


def main():
    ap = benchlib.driver_arguments(__doc__, "not used (each server has its own)",
                                   "not used", data_dir_required=False)
    ap.add_argument("--work-dir", required=True, help="where the servers' directories go")
    ap.add_argument("--only", choices=["failover", "propagation", "topics"],
                    help="run one section")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a server setting for every node (and the standalone one)")
    args = ap.parse_args()
    args.data_dir = args.work_dir
    d = ClusterDriver(args)
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set wants NAME=VALUE, not {item!r}")
        d.conf[name.strip()] = value.strip()
    reps = 5 if args.quick else 20
    prop = 20 if args.quick else 200
    topics = 100 if args.quick else 1000
    try:
        d.start()
        d.emit_head("streamlog cluster benchmark: 3 nodes on 127.0.0.1, next to a standalone node")
        timings = "" if any(k.startswith(("streamlog.raft_", "streamlog.broker_"))
                            for k in d.conf) else \
            "; Raft, heartbeat and session timings at their defaults"
        d.emit(f"  settings    {', '.join(f'{k} = {v}' for k, v in d.conf.items())}{timings}")
        if args.only in (None, "propagation"):
            d.measure_propagation(prop)
        if args.only in (None, "topics"):
            d.measure_many_topics(topics, 6)
        if args.only in (None, "failover"):
            d.measure_failover(reps)
        if d.notes:
            d.emit()
            d.emit("Notes:")
            for note in d.notes:
                d.emit(f"  - {note}")
        d.publish("\n".join(d.out) + "\n")
    finally:
        d.stop()


if __name__ == "__main__":
    main()
