#!/usr/bin/env python3
"""Replication benchmark: three streamlog nodes on loopback and one
standalone node, started in the same run (test/python/cluster.py,
pgserver.py), the same load on each:

  a. produce throughput, librdkafka idempotent acks=all, 100 B and 1 KiB
     values, on a replication factor 3 topic (min.insync.replicas 2) and a
     replication factor 1 topic of the cluster, and on the standalone node;
     target: RF=3 >= 0.5 x RF=1
  b. end-to-end latency at a steady rate (send time in the value, read by a
     consumer on another connection): p50 / p99, same three topics
  c. unavailability after kill -9 of a partition leader, 20 repetitions:
     the time from the last acknowledgement before the node is gone (every
     process of it) to the first acknowledgement of a record sent after,
     one producer sending every 5 ms; targets p50 <= 2 s, p99 <= 3 s with
     the defaults.  Measured twice on replication factor 3: a partition
     whose leader is not the controller, and one whose leader is (its
     death also waits for a Raft election); between repetitions the node
     is started again and every replica is back in the ISR.  On a
     replication factor 1 topic the partition is offline until its node
     is back: the killed node is started again at once, so that figure is
     the restart's.

    PG_CONFIG=... /usr/bin/python3 bench/cluster/replication.py [--quick]
        [--parts abc] [--reps N]

--parts picks the measurements (a, b, c: all three by default); --reps
sets the repetitions of c (20, 3 with --quick).  BENCH_DEBUG=1 logs each
repetition's timeline (wall clock, to read next to the servers' logs).

A topic the build cannot replicate (CreateTopics refuses replication
factor 3, or nothing is acknowledged within the deadline) is reported as
such, not measured.  Results go to stdout and bench/results/replication-
latest.txt.  Servers live under BENCH_TMPDIR (default /var/tmp).
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.join(REPO, "test", "python"))

from confluent_kafka import Producer, Consumer, TopicPartition  # noqa: E402

from benchlib import log, table, verdict  # noqa: E402
import cluster as cl  # noqa: E402
from pgserver import PgServer  # noqa: E402

THROUGHPUT_TARGET = 0.5
FAILOVER_P50_S, FAILOVER_P99_S = 2.0, 3.0


def percentile(values, q):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


class Target:
    """A topic to measure: where it lives and how it is made."""

    def __init__(self, label, bootstrap, create):
        self.label = label
        self.bootstrap = bootstrap
        self.create = create      # create(name, partitions) -> error text or None


def create_topic(node, name, partitions, replication_factor, configs):
    """CreateTopics v2 with topic configs; (error code, message)."""
    import kafka_helpers as kh

    def topic(t):
        return (kh.string(t) + kh.i32(partitions) + kh.i16(replication_factor)
                + kh.i32(0)  # no manual assignment
                + kh.array(sorted(configs.items()),
                           lambda kv: kh.string(kv[0]) + kh.string(kv[1])))
    body = kh.array([name], topic) + kh.i32(30000) + kh.i8(0)
    with kh.RawClient(node.kafka_bootstrap, timeout=60) as client:
        r = kh.Reader(client.call(lambda cid: kh.request_frame(19, 2, cid, body)))
    r.i32()  # throttle_time_ms
    [(_, error, message)] = r.array(lambda r: (r.string(), r.i16(), r.string()))
    return error, message


def producer(bootstrap, **extra):
    conf = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "message.timeout.ms": 30000}
    conf.update(extra)
    return Producer(conf)


def throughput(target, size, count, partitions=6):
    name = f"tp-{target.label}-{size}-{time.monotonic_ns()}".replace("=", "").replace(" ", "")
    err = target.create(name, partitions)
    if err:
        return None, err
    p = producer(target.bootstrap, **{"linger.ms": 10, "batch.size": 262144})
    value = b"x" * size
    errors = []
    cb = (lambda e, m: errors.append(e) if e else None)
    t0 = time.monotonic()
    for i in range(count):
        while True:
            try:
                p.produce(name, value=value, partition=i % partitions, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(120)
    t = time.monotonic() - t0
    if left or errors:
        return None, f"{left} unacknowledged, {len(errors)} failed ({errors[:1]})"
    return count / t, None


def latency(target, seconds, rate=500):
    name = f"lat-{target.label}-{time.monotonic_ns()}".replace("=", "").replace(" ", "")
    err = target.create(name, 1)
    if err:
        return None, err
    c = Consumer({"bootstrap.servers": target.bootstrap, "group.id": "bench-unused",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    c.assign([TopicPartition(name, 0, 0)])
    got = []
    stop = threading.Event()

    def consume():
        while not stop.is_set():
            m = c.poll(0.1)
            if m is not None and not m.error():
                got.append(time.time() - float(m.value().decode()))
    t = threading.Thread(target=consume, daemon=True)
    t.start()
    p = producer(target.bootstrap, **{"linger.ms": 0})
    n = int(seconds * rate)
    next_at = time.monotonic()
    for _ in range(n):
        p.produce(name, value=repr(time.time()).encode(), partition=0)
        next_at += 1.0 / rate
        p.poll(max(0.0, next_at - time.monotonic()))
    p.flush(60)
    deadline = time.monotonic() + 60
    while len(got) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join()
    c.close()
    if len(got) < n:
        return None, f"{len(got)} of {n} records read back"
    return (percentile(got, 50) * 1000, percentile(got, 99) * 1000), None


def probe_replication(c, create):
    """None if a replication factor 3 topic acknowledges an acks=all record
    within 30 s, else why not (refused, or nothing acknowledged: the
    build does not replicate)."""
    name = f"probe-rf3-{time.monotonic_ns()}"
    err = create(name, 1)
    if err:
        return err
    p = producer(c.bootstrap_servers(), **{"message.timeout.ms": 30000})
    # twice, the second time after replica.lag.time.max.ms (10 s): followers
    # that do not follow have left the ISR by then
    for attempt in range(2):
        result = []
        for i in range(200):
            p.produce(name, value=b"probe", on_delivery=lambda e, m: result.append(e))
        p.flush(40)
        failed = [e for e in result if e is not None]
        if len(result) != 200 or failed:
            return (f"acks=all records to a replication factor 3 topic: {len(result)} "
                    f"answered, {len(failed)} failed ({failed[:1]})")
        if attempt == 0:
            time.sleep(12)
    return None


def debug_timeline(c, start, end):
    """The servers' log lines between two wall clock times (BENCH_DEBUG)"""
    import datetime
    for n in c:
        for line in n.log_text().splitlines():
            try:
                at = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
            except ValueError:
                continue
            t = at.replace(tzinfo=datetime.timezone.utc).timestamp()
            if start - 0.2 <= t <= end:
                log(f"  node {n.node_id}: {line[11:300]}")


def pick_partition(c, name, controller_leads):
    """A partition of name whose leader is (controller_leads) or is not
    the controller; a preferred leader election moves one there if none
    is.  A replication factor 1 topic: its partition 0."""
    parts = c.partitions(name)
    if len(parts[0].get("replicas") or []) < 2:
        return 0
    k = c.wait_for_controller()

    def leader(p):
        return c.partitions(name)[p].get("leader", c.partitions(name)[p].get("leader_id"))
    for p in sorted(parts):
        if (leader(p) == k) == controller_leads:
            return p
    for p in sorted(parts):
        if (parts[p]["replicas"][0] == k) == controller_leads:
            c.node(k).sql("SELECT * FROM streamlog.elect_leaders(%s, %s)", (name, p))
            c.wait_for(lambda: (leader(p) == k) == controller_leads, 60,
                       f"partition {p} of {name} led {'by' if controller_leads else 'off'} "
                       f"the controller")
            return p
    raise RuntimeError(f"no partition of {name} can be led as asked: {parts}")


def failover_once(c, name, rep, partition=0):
    """Seconds from the last ack before kill -9 of the partition's leader to
    the first ack after it."""
    leader = c.leaders(name)[partition]
    acks = []
    stop = threading.Event()
    extra = {"linger.ms": 0, "message.timeout.ms": 60000}
    if os.environ.get("BENCH_RDKAFKA_DEBUG"):
        extra["debug"] = os.environ["BENCH_RDKAFKA_DEBUG"]  # e.g. metadata,broker
    p = producer(c.bootstrap_servers(), **extra)

    # (send time, ack time) of each acknowledged record: a callback served
    # after the kill may be for an answer the leader sent before it
    def cb(err, msg, sent):
        if err is None:
            acks.append((sent, time.monotonic()))
    i = 0

    def send_loop():
        nonlocal i
        while not stop.is_set():
            sent = time.monotonic()
            p.produce(name, value=f"{rep}-{i}".encode(), partition=partition,
                      on_delivery=lambda err, msg, sent=sent: cb(err, msg, sent))
            i += 1
            p.poll(0.005)
        p.flush(60)
    t = threading.Thread(target=send_loop, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while len(acks) < 50:
        if time.monotonic() > deadline:
            stop.set()
            t.join()
            raise RuntimeError(f"{len(acks)} acknowledgements in 60 s before the kill")
        time.sleep(0.01)
    # The node is down once every process of it is gone: the postmaster's
    # children serve on for a moment after its SIGKILL (their answers then
    # are durable: they flush the WAL themselves)
    replicas = sorted(c.partitions(name)[partition].get("replicas") or [])
    replicated = len(replicas) > 1
    kill_wall = time.time()
    t_kill = time.monotonic()
    c.kill9(leader)
    killed_at = time.monotonic()
    if not replicated:
        c.start(leader)
    deadline = time.monotonic() + 120
    while not any(s > killed_at for s, _ in acks) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    t.join()
    # the last answer before the kill; the first answer to a record sent
    # after it, which only a live leader can give
    before = [a for s, a in acks if a <= killed_at]
    after = [a for s, a in acks if s > killed_at]
    if replicated:
        c.start(leader)
    c.wait_ready(deadline=120)
    if not after:
        raise RuntimeError("no acknowledgement within 120 s of the kill")
    if os.environ.get("BENCH_DEBUG"):
        log(f"kill -9 of node {leader} at {time.strftime('%H:%M:%S', time.gmtime(kill_wall))}"
            f".{int(kill_wall * 1000) % 1000:03d} UTC, gone {killed_at - t_kill:+.3f}: "
            f"last ack before {max(before) - t_kill:+.3f}, first after "
            f"{min(after) - t_kill:+.3f}, {len(before)} before, {len(after)} after")
        debug_timeline(c, kill_wall, kill_wall + (min(after) - t_kill) + 0.5)
    # the next repetition starts with every replica in the ISR again, of
    # every partition of the topic (the next one may use another)
    if replicated:
        c.wait_for(lambda: all(sorted(r.get("isr") or []) == sorted(r.get("replicas") or [])
                               for r in c.partitions(name).values()),
                   120, f"every replica of {name} back in its ISR")
    return min(after) - max(before)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default="abc",
                    help="which measurements: a throughput, b latency, c failover")
    ap.add_argument("--reps", type=int, default=None,
                    help="repetitions of the failover measurement")
    ap.add_argument("--output", default=os.path.join(BENCH, "results",
                                                     "replication-latest.txt"))
    args = ap.parse_args()
    count = 20000 if args.quick else 200000
    lat_seconds = 5 if args.quick else 20
    reps = args.reps or (3 if args.quick else 20)
    runs = 1 if args.quick else 3
    out = []

    def emit(line=""):
        print(line, flush=True)
        out.append(line)

    base = tempfile.mkdtemp(prefix="streamlog-repl-",
                            dir=os.environ.get("BENCH_TMPDIR", "/var/tmp"))
    os.chmod(base, 0o755)
    standalone = PgServer(base, name="bench-standalone")
    c = cl.Cluster(3, base, conf={}, name="bench-repl")
    try:
        log("starting a standalone streamlog and a 3-node cluster")
        standalone.start()
        c.start()
        c.wait_ready(deadline=120)
        def on_cluster(rf):
            def create(name, partitions):
                # Kafka's advice: min.insync.replicas 2 with 3 replicas
                configs = {"min.insync.replicas": "2"} if rf > 1 else {}
                err, msg = create_topic(c.node(1), name, partitions, rf, configs)
                if err:
                    return f"CreateTopics replication factor {rf}: error {err} {msg}"
                c.wait_topic_everywhere(name)
                return None
            return create

        def on_standalone(name, partitions):
            standalone.sql("SELECT streamlog.create_topic(%s, %s)", (name, partitions))
            return None

        rf3_problem = probe_replication(c, on_cluster(3))
        if rf3_problem:
            log(f"replication factor 3 not measured: {rf3_problem}")

            def on_cluster_rf3(name, partitions):
                return rf3_problem
        else:
            on_cluster_rf3 = on_cluster(3)
        targets = [Target("cluster RF=3", c.bootstrap_servers(), on_cluster_rf3),
                   Target("cluster RF=1", c.bootstrap_servers(), on_cluster(1)),
                   Target("standalone", standalone.kafka_bootstrap, on_standalone)]

        emit(f"Replication benchmark, {time.strftime('%Y-%m-%d %H:%M')}, "
             f"{'quick' if args.quick else 'full'} run; RF=3 topics have "
             "min.insync.replicas 2")
        emit()
        if "a" in args.parts:
            emit(f"a. Produce throughput, librdkafka idempotent acks=all, {count:,} records "
                 f"over 6 partitions, median of {runs} runs")
            # the median of several runs, the targets taken in turn within
            # each run, so that a burst of load elsewhere on the machine
            # does not fall on one target only
            rows, rates = [], {}
            for size in (100, 1024):
                got, errs = {}, {}
                for run in range(runs):
                    for t in targets:
                        log(f"a. {t.label}, {size} B, run {run + 1}/{runs}")
                        rate, err = throughput(t, size, count)
                        if rate:
                            got.setdefault(t.label, []).append(rate)
                        else:
                            errs[t.label] = err
                for t in targets:
                    rate = statistics.median(got[t.label]) \
                        if t.label in got and t.label not in errs else None
                    rates[(t.label, size)] = rate
                    rows.append([t.label, f"{size} B",
                                 f"{rate:,.0f}" if rate else f"n/a: {errs.get(t.label)}",
                                 f"{rate * size / 1e6:,.1f}" if rate else ""])
            emit(table(["topic", "value", "records/s", "MB/s"], rows))
            for size in (100, 1024):
                r3, r1 = rates[("cluster RF=3", size)], rates[("cluster RF=1", size)]
                if r3 and r1:
                    emit(f"  {size} B: RF=3 / RF=1 = {r3 / r1:.2f}x, target >= "
                         f"{THROUGHPUT_TARGET}x: {verdict(r3 / r1 >= THROUGHPUT_TARGET)}")
            emit()
        if "b" in args.parts:
            emit(f"b. End-to-end latency, 500 records/s for {lat_seconds} s, one partition")
            rows = []
            for t in targets:
                log(f"b. {t.label}")
                res, err = latency(t, lat_seconds)
                rows.append([t.label, f"{res[0]:,.1f}" if res else f"n/a: {err}",
                             f"{res[1]:,.1f}" if res else ""])
            emit(table(["topic", "p50 ms", "p99 ms"], rows))
            emit()
        if "c" in args.parts:
            emit(f"c. Unavailability after kill -9 of the partition leader, {reps} repetitions "
                 "(last ack before -> first ack after)")
            rows = []
            # the partition's leader is not the controller, then is: the
            # second case waits for a Raft election before the fence
            cases = [("cluster RF=3, leader not the controller", 3, False),
                     ("cluster RF=3, leader is the controller", 3, True),
                     ("cluster RF=1", 1, False)]
            for label, rf, controller_leads in cases:
                name = f"fo-rf{rf}-{time.monotonic_ns()}"
                err = (on_cluster_rf3 if rf == 3 else on_cluster(1))(name, 3 if rf == 3 else 1)
                if err:
                    rows.append([label, f"n/a: {err}", "", ""])
                    continue
                windows = []
                try:
                    for rep in range(reps):
                        part = pick_partition(c, name, controller_leads)
                        w = failover_once(c, name, rep, part)
                        windows.append(w)
                        log(f"c. {label} {rep + 1}/{reps}: {w * 1000:.0f} ms")
                except Exception as e:
                    rows.append([label, f"n/a: {e}", "", ""])
                    continue
                rows.append([label, f"{percentile(windows, 50) * 1000:,.0f}",
                             f"{percentile(windows, 99) * 1000:,.0f}",
                             f"{statistics.mean(windows) * 1000:,.0f}"])
                if rf == 3:
                    ok = percentile(windows, 50) <= FAILOVER_P50_S and \
                        percentile(windows, 99) <= FAILOVER_P99_S
                    emit(f"  {label}: targets p50 <= {FAILOVER_P50_S} s, "
                         f"p99 <= {FAILOVER_P99_S} s: {verdict(ok)}")
            emit(table(["topic", "p50 ms", "p99 ms", "mean ms"], rows))
            emit("  (RF=1: the partition is offline until its node is started again, at once)")
    finally:
        for thing in (c, standalone):
            try:
                thing.cleanup()
            except Exception as e:
                log(f"cleanup: {e}")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
