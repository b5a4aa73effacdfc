"""A Jepsen-style checker for streamlog clusters (CLUSTER.md section 5).

Three parts, usable on their own:

- History: what the clients did and saw, recorded from many threads:
  sends of unique values and their outcome (acknowledged at an offset,
  failed for sure, or maybe written), the records each consumer polled in
  order, the leaders and epochs the nodes' catalogs named, and at the end
  every partition read in full from every replica through SQL and through
  Kafka, with the digests of each replica's stored batches.
- check(history): the analysis, a pure function of the history (unit-tested
  on hand-made histories in test_jepsen_checker.py).  Anomalies, named as in
  Jepsen's Kafka workload:
    lost-write           an acknowledged value missing from a final read
    duplicate            one value at two offsets of a partition
    inconsistent-offset  one offset of a partition holding two values
                         (across acknowledgements, polls and replicas)
    gap                  a final read skips offsets between its first and
                         last one
    poll-skip            a consumer's next record jumps over records that
                         the final log holds between the two
    nonmonotonic-poll    a consumer's next offset is not after its last
    aborted-read         a value whose send failed for sure is read
    unexpected-read      a value nobody sent is read
    leader-conflict      two leaders named for one partition and epoch
    replica-divergence   two replicas of a partition holding different
                         batches (bytes or offsets)
    wrong-partition      a value read in another partition than it was
                         sent to
- Workload and Nemesis: the run on a cluster.Cluster: idempotent acks=all
  producers of unique values on every partition, one consumer per
  partition, a sampler of the catalogs' leaders, and a seeded schedule of
  faults (kill -9 of a partition leader, of the controller, of two nodes
  one after another, a paused node, kill -9 of every node); then heal,
  wait for every partition to have its leader (and its full ISR when
  replicas exist), and read everything back.

    history = History()
    wl = Workload(cluster, history, topic, partitions=6, seed=seed)
    wl.run(Nemesis(cluster, wl, seed).schedule(steps=4))
    result = check(history)
    assert result.valid, result.report()

A seed replays a schedule: the same faults in the same order with the same
pauses between them (which node a "leader of partition p" is depends on the
run).
"""

import collections
import hashlib
import random
import threading
import time

# ---------------------------------------------------------------------------
# The history
# ---------------------------------------------------------------------------

# Outcomes of a send
ACKED = "acked"
FAILED = "failed"            # definitely not written
INDEFINITE = "indefinite"    # may or may not have been written (timeouts)


class History:
    """What happened, recorded thread-safely.  Values are strings, unique
    per send; partitions and offsets are ints."""

    def __init__(self):
        self._lock = threading.Lock()
        self.sends = {}           # value -> partition
        self.outcomes = {}        # value -> (ACKED, offset) | (FAILED, why) | (INDEFINITE, why)
        self.polls = []           # (consumer, partition, offset, value) | (consumer, partition, "seek", offset)
        self.leaders = []         # (observer, partition, epoch, leader)
        self.final_reads = {}     # source -> {partition: [(offset, value)]}
        self.replica_batches = {}  # node -> {partition: [(base_offset, digest)]}
        self.faults = []          # (time, description), for the report
        self.info = collections.Counter()  # errors seen by clients, by kind

    # -- producers -------------------------------------------------------------

    def send(self, value, partition):
        with self._lock:
            if value in self.sends:
                raise ValueError(f"value {value!r} sent twice: values must be unique")
            self.sends[value] = partition

    def ack(self, value, offset):
        with self._lock:
            self.outcomes[value] = (ACKED, offset)

    def fail(self, value, why, definite=False):
        with self._lock:
            self.outcomes[value] = (FAILED if definite else INDEFINITE, why)

    # -- consumers -------------------------------------------------------------

    def poll(self, consumer, partition, offset, value):
        with self._lock:
            self.polls.append((consumer, partition, offset, value))

    def seek(self, consumer, partition, offset):
        """The consumer moved on purpose: its next record need not follow
        the last one."""
        with self._lock:
            self.polls.append((consumer, partition, "seek", offset))

    # -- the cluster -------------------------------------------------------------

    def leader(self, observer, partition, epoch, leader):
        with self._lock:
            self.leaders.append((observer, partition, epoch, leader))

    def final_read(self, source, partition, records):
        """records: [(offset, value)] of one partition read from one source
        (e.g. "sql@1", "kafka"), in the order read."""
        with self._lock:
            self.final_reads.setdefault(source, {})[partition] = list(records)

    def replica(self, node, partition, batches):
        """batches: [(base_offset, batch bytes or their digest)] of one
        replica, in offset order."""
        digests = [(base, b if isinstance(b, str) else hashlib.sha256(b).hexdigest())
                   for base, b in batches]
        with self._lock:
            self.replica_batches.setdefault(node, {})[partition] = digests

    def fault(self, description):
        with self._lock:
            self.faults.append((time.time(), description))

    def note(self, kind):
        with self._lock:
            self.info[kind] += 1


# ---------------------------------------------------------------------------
# The analysis
# ---------------------------------------------------------------------------

ANOMALIES = ("lost-write", "duplicate", "inconsistent-offset", "gap", "poll-skip",
             "nonmonotonic-poll", "aborted-read", "unexpected-read", "leader-conflict",
             "replica-divergence", "wrong-partition")

# How many examples of each anomaly a report shows
EXAMPLES = 10


class Result:
    """The anomalies found: {name: [example, ...]}; valid if none."""

    def __init__(self, anomalies, stats):
        self.anomalies = {k: v for k, v in anomalies.items() if v}
        self.stats = stats

    @property
    def valid(self):
        return not self.anomalies

    def report(self):
        lines = [f"{'valid' if self.valid else 'INVALID'}: "
                 + ", ".join(f"{k}={v}" for k, v in sorted(self.stats.items()))]
        for name in ANOMALIES:
            found = self.anomalies.get(name)
            if found:
                lines.append(f"  {name}: {len(found)}, e.g. {found[:EXAMPLES]}")
        return "\n".join(lines)


def check(history):
    """Analyse a History (see the module docstring); returns a Result."""
    h = history
    found = {name: [] for name in ANOMALIES}
    sends = dict(h.sends)
    outcomes = dict(h.outcomes)
    acked = {v: o for v, (kind, o) in outcomes.items() if kind == ACKED}
    definitely_failed = {v for v, (kind, _) in outcomes.items() if kind == FAILED}

    # Every observation of (partition, offset, value), and where it came from
    observations = []
    for value, offset in acked.items():
        observations.append((sends.get(value), offset, value, "ack"))
    for entry in h.polls:
        consumer, partition, offset, value = entry
        if offset != "seek":
            observations.append((partition, offset, value, f"poll:{consumer}"))
    for source, parts in h.final_reads.items():
        for partition, records in parts.items():
            for offset, value in records:
                observations.append((partition, offset, value, source))

    # One offset, one value; one value, one offset
    by_offset = collections.defaultdict(dict)   # (partition, offset) -> {value: source}
    by_value = collections.defaultdict(dict)    # (partition, value) -> {offset: source}
    for partition, offset, value, source in observations:
        by_offset[(partition, offset)].setdefault(value, source)
        by_value[(partition, value)].setdefault(offset, source)
    for (partition, offset), values in sorted(by_offset.items(), key=lambda kv: (
            str(kv[0][0]), kv[0][1])):
        if len(values) > 1:
            found["inconsistent-offset"].append(
                {"partition": partition, "offset": offset, "values": dict(values)})
    for (partition, value), offsets in sorted(by_value.items(), key=lambda kv: (
            str(kv[0][0]), str(kv[0][1]))):
        if len(offsets) > 1:
            found["duplicate"].append(
                {"partition": partition, "value": value, "offsets": dict(offsets)})
    # Twice in one read is a duplicate even at one offset's worth of sources
    for source, parts in h.final_reads.items():
        for partition, records in parts.items():
            counts = collections.Counter(v for _, v in records)
            for value, n in counts.items():
                if n > 1 and len(by_value[(partition, value)]) == 1:
                    found["duplicate"].append(
                        {"partition": partition, "value": value, "source": source, "times": n})

    # Read values: sent, to that partition, and not failed for sure
    read_values = [(p, o, v, s) for p, o, v, s in observations if s != "ack"]
    seen_wrong = set()
    for partition, offset, value, source in read_values:
        if value not in sends:
            found["unexpected-read"].append(
                {"partition": partition, "offset": offset, "value": value, "source": source})
            continue
        if sends[value] != partition and (value, partition) not in seen_wrong:
            seen_wrong.add((value, partition))
            found["wrong-partition"].append(
                {"value": value, "sent_to": sends[value], "read_in": partition,
                 "source": source})
        if value in definitely_failed:
            found["aborted-read"].append(
                {"partition": partition, "offset": offset, "value": value, "source": source,
                 "failure": outcomes[value][1]})

    # Lost writes: every final read of a partition holds its acknowledged values
    for source, parts in h.final_reads.items():
        for partition, records in parts.items():
            present = {v for _, v in records}
            for value, offset in acked.items():
                if sends.get(value) == partition and value not in present:
                    found["lost-write"].append(
                        {"partition": partition, "value": value, "acked_offset": offset,
                         "source": source})

    # Final reads are contiguous: a log without compaction or transactions
    # has a record at every offset between its first and last one
    final_logs = collections.defaultdict(set)   # partition -> offsets held
    for source, parts in h.final_reads.items():
        for partition, records in parts.items():
            offsets = [o for o, _ in records]
            final_logs[partition].update(offsets)
            if offsets != sorted(offsets):
                found["gap"].append({"partition": partition, "source": source,
                                     "unordered": True})
            if offsets:
                missing = sorted(set(range(min(offsets), max(offsets) + 1)) - set(offsets))
                if missing:
                    found["gap"].append({"partition": partition, "source": source,
                                         "missing": missing[:EXAMPLES],
                                         "count": len(missing)})

    # Polls: each consumer's records of a partition follow one another
    last = {}   # (consumer, partition) -> offset
    for consumer, partition, offset, value in h.polls:
        key = (consumer, partition)
        if offset == "seek":
            last.pop(key, None)
            continue
        if key in last:
            prev = last[key]
            if offset <= prev:
                found["nonmonotonic-poll"].append(
                    {"consumer": consumer, "partition": partition, "after": prev,
                     "offset": offset, "value": value})
            elif offset > prev + 1:
                skipped = [o for o in range(prev + 1, offset) if o in final_logs[partition]]
                if skipped:
                    found["poll-skip"].append(
                        {"consumer": consumer, "partition": partition, "after": prev,
                         "offset": offset, "skipped": skipped[:EXAMPLES]})
        last[key] = offset

    # One leader per partition and epoch
    leaders = collections.defaultdict(set)
    for observer, partition, epoch, leader in h.leaders:
        if leader is not None and leader >= 0:
            leaders[(partition, epoch)].add(leader)
    for (partition, epoch), names in sorted(leaders.items()):
        if len(names) > 1:
            found["leader-conflict"].append(
                {"partition": partition, "epoch": epoch, "leaders": sorted(names)})

    # Replicas hold the same batches at the same offsets, byte for byte
    by_partition = collections.defaultdict(dict)
    for node, parts in h.replica_batches.items():
        for partition, batches in parts.items():
            by_partition[partition][node] = batches
    for partition, replicas in sorted(by_partition.items()):
        nodes = sorted(replicas)
        first = replicas[nodes[0]]
        for node in nodes[1:]:
            other = replicas[node]
            if other != first:
                where = next((i for i, (a, b) in enumerate(zip(first, other)) if a != b),
                             min(len(first), len(other)))
                found["replica-divergence"].append(
                    {"partition": partition, "nodes": (nodes[0], node),
                     "batches": (len(first), len(other)), "first_difference": where})

    stats = {
        "sent": len(sends),
        "acked": len(acked),
        "failed": len(definitely_failed),
        "indefinite": sum(1 for kind, _ in outcomes.values() if kind == INDEFINITE),
        "polled": sum(1 for e in h.polls if e[2] != "seek"),
        "final_sources": len(h.final_reads),
        "faults": len(h.faults),
    }
    return Result(found, stats)
