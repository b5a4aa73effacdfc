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
    duplicate            one value at two offsets of a partition, or one
                         producer's sequence stored twice in a replica
                         (a broker fault)
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
    epoch-regress        a replica's batches whose partition leader epochs
                         go down along the offsets (a batch of a deposed
                         leader kept after its successor's)
    wrong-partition      a value read in another partition than it was
                         sent to
  Classified apart, counted and shown but not a broker fault:
    resent-after-epoch-bump  one value at two offsets, the later copy
                         stored by the same producer id under a higher
                         producer epoch while the earlier copy was never
                         acknowledged: librdkafka's idempotent producer,
                         after a local message timeout, bumps its epoch and
                         sends what it still holds again from sequence 0,
                         records possibly stored included (a broker cannot
                         tell them apart: Kafka stores them too)
  The stored batches' headers (producer id, producer epoch, base sequence,
  partition leader epoch) say who wrote each copy.
- Workload and Nemesis: the run on a cluster.Cluster: idempotent acks=all
  producers of unique values on every partition, one consumer per
  partition, a sampler of the catalogs' leaders, and a seeded schedule of
  faults (kill -9 of a partition leader, of the controller, of two nodes
  one after another, a paused node, kill -9 of every node; with the
  nodes in network namespaces, a leader or the controller cut from the
  other nodes: jepsen_network.py); then heal,
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
import logging
import random
import re
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
        self.replica_batches = {}  # node -> {partition: [(base_offset, digest, leader epoch)]}
        self.replica_headers = {}  # node -> {partition: [(base_offset, BatchHeader)]}
        self.client_events = []   # (time, client, text): what a client's library said
        self.faults = []          # (time, description), for the report
        self.info = collections.Counter()  # errors seen by clients, by kind

    # -- producers -------------------------------------------------------------

    def send(self, value, partition):
        with self._lock:
            if value in self.sends:
                raise ValueError(f"value {value!r} sent twice: values must be unique")
            self.sends[value] = partition

    def ack(self, value, offset):
        """offset None: acknowledged at an offset the client was not told
        (librdkafka acknowledges a request whose answer it lost once a
        later request of the producer succeeds); negative means the same."""
        if offset is not None and offset < 0:
            offset = None
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
        """batches: [(base_offset, batch bytes or their digest[, leader
        epoch[, BatchHeader]])] of one replica, in offset order.  Without
        them, a RecordBatch v2's own header is read."""
        entries = []
        headers = []
        for item in batches:
            base, b = item[0], item[1]
            header = item[3] if len(item) > 3 else batch_header(b)
            epoch = item[2] if len(item) > 2 else (header.leader_epoch if header else None)
            digest = b if isinstance(b, str) else hashlib.sha256(b).hexdigest()
            entries.append((base, digest, epoch))
            headers.append((base, header))
        with self._lock:
            self.replica_batches.setdefault(node, {})[partition] = entries
            self.replica_headers.setdefault(node, {})[partition] = headers

    def fault(self, description):
        with self._lock:
            self.faults.append((time.time(), description))

    def note(self, kind):
        with self._lock:
            self.info[kind] += 1

    def client_event(self, client, text, kind=None):
        """A line a client library logged that the analysis may need as
        evidence (an error a broker answered, an epoch bump); the first
        CLIENT_EVENTS are kept, every one is counted by kind."""
        with self._lock:
            if kind:
                self.info[kind] += 1
            if len(self.client_events) < CLIENT_EVENTS:
                self.client_events.append((time.time(), client, text))


# How many client log lines a history keeps (all are counted)
CLIENT_EVENTS = 5000


class BatchHeader(collections.namedtuple(
        "BatchHeader", "producer_id producer_epoch base_sequence last_offset_delta leader_epoch")):
    """Who wrote a stored batch: the fields of a RecordBatch v2 header
    that say which producer, in which of its epochs, from which sequence,
    under which partition leader epoch.  base_sequence -1: not idempotent."""

    def writer_of(self, base_offset, offset):
        """(producer id, producer epoch, sequence, leader epoch) of the
        record at offset of this batch."""
        seq = self.base_sequence + (offset - base_offset) if self.base_sequence >= 0 else -1
        return (self.producer_id, self.producer_epoch, seq, self.leader_epoch)


def batch_header(batch):
    """The BatchHeader of a RecordBatch v2's bytes (magic 2 at byte 16),
    or None: baseOffset 0-7, length 8-11, partitionLeaderEpoch 12-15,
    magic 16, crc 17-20, attributes 21-22, lastOffsetDelta 23-26,
    timestamps 27-42, producerId 43-50, producerEpoch 51-52, baseSequence
    53-56.  A header cut short gives what it holds (-1 for the rest)."""
    if not isinstance(batch, (bytes, bytearray)) or len(batch) < 17 or batch[16] != 2:
        return None

    def field(start, size):
        if len(batch) < start + size:
            return -1
        return int.from_bytes(batch[start:start + size], "big", signed=True)
    return BatchHeader(field(43, 8), field(51, 2), field(53, 4), max(field(23, 4), 0),
                       field(12, 4))


# ---------------------------------------------------------------------------
# The analysis
# ---------------------------------------------------------------------------

ANOMALIES = ("lost-write", "duplicate", "inconsistent-offset", "gap", "poll-skip",
             "nonmonotonic-poll", "aborted-read", "unexpected-read", "leader-conflict",
             "replica-divergence", "epoch-regress", "wrong-partition")

# What the analysis counts and shows without calling the history invalid
CLASSIFIED = ("resent-after-epoch-bump",)

# How many examples of each anomaly a report shows
EXAMPLES = 10


class Result:
    """The anomalies found: {name: [example, ...]}; valid if none.
    classified: {name in CLASSIFIED: [example, ...]}, not broker faults."""

    def __init__(self, anomalies, stats, classified=None):
        self.anomalies = {k: v for k, v in anomalies.items() if v}
        self.classified = {k: v for k, v in (classified or {}).items() if v}
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
        for name in CLASSIFIED:
            found = self.classified.get(name)
            if found:
                lines.append(f"  {name} (a client's doing, not a broker fault): "
                             f"{len(found)}, e.g. {found[:EXAMPLES]}")
        return "\n".join(lines)


def record_writers(history):
    """(partition, offset) -> (producer id, producer epoch, sequence,
    leader epoch) of the stored record, from the replicas' batch headers
    (the first replica that names one)."""
    writers = {}
    for node in sorted(history.replica_headers, key=str):
        for partition, batches in history.replica_headers[node].items():
            for base, header in batches:
                if header is None:
                    continue
                for offset in range(base, base + header.last_offset_delta + 1):
                    writers.setdefault((partition, offset), header.writer_of(base, offset))
    return writers


def classify_duplicate(partition, value, offsets, writers, acked_offset):
    """A value stored at several offsets: "resent-after-epoch-bump" if
    each later copy was written by the same producer id under a higher
    producer epoch than the copy before it, which the client was never
    told had been written (it was not the acknowledged one); "duplicate"
    (the broker's fault) otherwise, or when a copy's writer is unknown.
    Returns (class, example)."""
    copies = [(o, writers.get((partition, o))) for o in sorted(offsets)]
    example = {"partition": partition, "value": value,
               "copies": {o: _writer_dict(w) for o, w in copies}}
    if acked_offset is not None:
        example["acked_offset"] = acked_offset
    for (o1, w1), (o2, w2) in zip(copies, copies[1:]):
        if w1 is None or w2 is None or w1[0] < 0:
            return "duplicate", example
        if not (w1[0] == w2[0] and w2[1] > w1[1] and o1 != acked_offset):
            return "duplicate", example
    return "resent-after-epoch-bump", example


_ANSWER = re.compile(r"\[(\d+)\]: MessageSet with (\d+) message\(s\) \(MsgId \d+, "
                     r"BaseSeq (-?\d+)\) encountered error: (.*?) \(actions")


def client_answers(history, partition, sequence):
    """What the brokers answered, per the clients' logs, to the requests
    that carried a sequence of a partition (any producer epoch): [(time,
    client, error)]."""
    out = []
    for when, client, text in history.client_events:
        m = _ANSWER.search(text)
        if m and int(m.group(1)) == partition and \
                int(m.group(3)) <= sequence < int(m.group(3)) + int(m.group(2)):
            out.append((round(when, 3), client, m.group(4)))
    return out


def _writer_dict(writer):
    if writer is None:
        return None
    pid, pepoch, seq, lepoch = writer
    return {"producer": pid, "producer_epoch": pepoch, "sequence": seq, "leader_epoch": lepoch}


def sequences_stored_twice(history):
    """Broker duplicates seen in the batch headers alone: two batches of
    one replica from one producer id and epoch whose sequence ranges
    overlap (Kafka's idempotence refuses or deduplicates the second)."""
    found = []
    seen = set()
    for node in sorted(history.replica_headers, key=str):
        for partition, batches in sorted(history.replica_headers[node].items()):
            by_producer = collections.defaultdict(list)
            for base, header in batches:
                if header is None or header.producer_id < 0 or header.base_sequence < 0:
                    continue
                by_producer[(header.producer_id, header.producer_epoch)].append(
                    (header.base_sequence, header.base_sequence + header.last_offset_delta,
                     base))
            for producer, ranges in sorted(by_producer.items()):
                ranges.sort()
                for (first1, last1, base1), (first2, last2, base2) in zip(ranges, ranges[1:]):
                    key = (partition, producer, first2)
                    if first2 <= last1 and key not in seen:
                        seen.add(key)
                        found.append({"partition": partition, "node": node,
                                      "producer": producer[0], "producer_epoch": producer[1],
                                      "sequences": ((first1, last1), (first2, last2)),
                                      "offsets": (base1, base2)})
    return found


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
        if offset is not None:
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
    # A value at two offsets: the stored copies' writers say whose doing
    # it is (see classify_duplicate)
    writers = record_writers(h)
    stored_at = collections.defaultdict(set)    # (partition, value) -> offsets in final reads
    for parts in h.final_reads.values():
        for partition, records in parts.items():
            for offset, value in records:
                stored_at[(partition, value)].add(offset)
    classified = {name: [] for name in CLASSIFIED}
    for (partition, value), offsets in sorted(by_value.items(), key=lambda kv: (
            str(kv[0][0]), str(kv[0][1]))):
        if len(offsets) > 1:
            stored = stored_at.get((partition, value), set())
            if len(stored) > 1 and set(offsets) == stored:
                kind, example = classify_duplicate(partition, value, stored, writers,
                                                   acked.get(value))
                example["offsets"] = dict(offsets)
                first = writers.get((partition, min(stored)))
                if first is not None and h.client_events:
                    example["first_copy_answers"] = client_answers(h, partition, first[2])
                (found if kind in found else classified)[kind].append(example)
            else:
                found["duplicate"].append(
                    {"partition": partition, "value": value, "offsets": dict(offsets)})
    found["duplicate"].extend(sequences_stored_twice(h))
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

    # Leader epochs never go down along a replica's log (KIP-101: a new
    # leader's batches follow its predecessors'); -1 is a batch of a node
    # that stamps none
    for node, parts in sorted(h.replica_batches.items()):
        for partition, batches in sorted(parts.items()):
            highest = None
            for base, _, epoch in batches:
                if epoch is None or epoch < 0:
                    continue
                if highest is not None and epoch < highest[1]:
                    found["epoch-regress"].append(
                        {"node": node, "partition": partition, "offset": base,
                         "epoch": epoch, "after": highest})
                    break
                highest = (base, epoch)

    stats = {
        "sent": len(sends),
        "acked": len(acked),
        "failed": len(definitely_failed),
        "indefinite": sum(1 for kind, _ in outcomes.values() if kind == INDEFINITE),
        "polled": sum(1 for e in h.polls if e[2] != "seek"),
        "final_sources": len(h.final_reads),
        "faults": len(h.faults),
        "resent_after_epoch_bump": len(classified["resent-after-epoch-bump"]),
        # librdkafka's fatal idempotence errors (a producer recreated): not
        # an anomaly of the data, but a sign to read the client events for
        "producer_fatal": h.info.get("producer-fatal", 0),
    }
    return Result(found, stats, classified)


# ---------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------

# librdkafka errors after which the record was certainly not written: it
# never left the client, or the broker refused it as it stands
_DEFINITE_FAILURES = {"_PURGE_QUEUE", "MSG_SIZE_TOO_LARGE", "INVALID_RECORD",
                      "CORRUPT_MESSAGE", "RECORD_LIST_TOO_LARGE", "_MSG_SIZE_TOO_LARGE",
                      "TOPIC_AUTHORIZATION_FAILED", "_INVALID_ARG"}


class ClientLog(logging.Handler):
    """librdkafka's debug lines (debug=eos,msg) that a history keeps as
    evidence: each error a broker answered to a ProduceRequest ("MessageSet
    with N message(s) (MsgId M, BaseSeq S) encountered error: E"), and each
    idempotent-producer epoch bump or producer id change with its reason.
    The rest (one line per request) is dropped here."""

    def __init__(self, history, client):
        super().__init__(logging.DEBUG)
        self.history = history
        self.client = client
        self.logger = logging.getLogger(f"jepsen.client.{client}.{id(self)}")
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        self.logger.addHandler(self)

    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:
            return
        if "encountered error: " in text:
            error = text.split("encountered error: ", 1)[1].split(" (actions", 1)[0]
            self.history.client_event(self.client, text, f"produce-answer:{error}")
        elif "epoch bump" in text and "Beginning partition drain" in text:
            self.history.client_event(self.client, text, "producer-epoch-bump")
        elif "NEWPID" in text or "Beginning partition drain" in text:
            self.history.client_event(self.client, text)


def _error_name(err):
    try:
        return err.name()
    except Exception:
        return str(err)


class Workload:
    """Producers, consumers and a leader sampler on one topic of a
    cluster.Cluster, recording into a History.  rate: records per second
    per producer (the machine is shared: keep it modest)."""

    def __init__(self, cluster, history, topic, partitions=6, replication_factor=1,
                 producers=2, rate=150, message_timeout_ms=300000, log=print):
        self.cluster = cluster
        self.history = history
        self.topic = topic
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.nproducers = producers
        self.rate = rate
        self.message_timeout_ms = message_timeout_ms
        self.log = log
        self._stop_producing = threading.Event()
        self._stop_consuming = threading.Event()
        self._stop_sampling = threading.Event()
        self._threads = []
        self._consumed = collections.Counter()   # partition -> next offset polled
        self.errors = []                          # exceptions of the workload's threads

    # -- set-up -------------------------------------------------------------------

    def create_topic(self, via=None):
        from cluster import kafka_create_topic
        node = self.cluster.node(via or self.cluster.reachable()[0])
        error, message = kafka_create_topic(node, self.topic, self.partitions,
                                            self.replication_factor)
        if error != 0:
            raise RuntimeError(f"CreateTopics {self.topic}: error {error} {message}")
        self.cluster.wait_topic_everywhere(self.topic)

    def bootstrap(self):
        return self.cluster.bootstrap_servers()

    # -- threads --------------------------------------------------------------------

    def _guard(self, fn, *args):
        try:
            fn(*args)
        except BaseException as e:  # reported by stop(): a thread must not die quietly
            self.errors.append(e)

    def start(self):
        for n in range(self.nproducers):
            self._spawn(self._produce, f"p{n}")
        for p in range(self.partitions):
            self._spawn(self._consume, p)
        self._spawn(self._sample_leaders)

    def _spawn(self, fn, *args):
        t = threading.Thread(target=self._guard, args=(fn,) + args, daemon=True)
        t.start()
        self._threads.append((fn.__name__, t))

    def _new_producer(self, name, fatal):
        from confluent_kafka import Producer

        def error(err):
            # librdkafka's own errors; a fatal one ends this producer
            self.history.note(f"producer-error:{_error_name(err)}")
            if err.fatal():
                self.history.client_event(name, f"FATAL {err.str()}", "producer-fatal")
                fatal.append(err)
        return Producer({
            "error_cb": error,
            "bootstrap.servers": self.bootstrap(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            # As a careful user sets it: longer than any outage of the
            # schedule.  A message that times out locally makes librdkafka
            # bump its idempotent producer's epoch (rdkafka_broker.c,
            # "Message timeouts will lead to gaps") and send what it still
            # holds again from sequence 0 of the new epoch, records whose
            # earlier request may have been stored included
            # (rd_kafka_toppar_pid_change): duplicates no broker can
            # refuse.  The checker classifies those apart
            # (resent-after-epoch-bump); this keeps them rare.
            "message.timeout.ms": self.message_timeout_ms,
            "client.id": f"jepsen-{name}",
            # what the brokers answered each request, and epoch bumps:
            # the evidence for classifying duplicates (ClientLog)
            "debug": "eos,msg",
            "logger": ClientLog(self.history, name).logger,
        })

    def _produce(self, name):
        from confluent_kafka import KafkaException
        h = self.history
        fatal = []
        producer = self._new_producer(name, fatal)

        def report(err, msg, value):
            if err is None:
                h.ack(value, msg.offset())
                return
            kind = _error_name(err)
            h.note(f"produce:{kind}")
            h.fail(value, kind, definite=kind in _DEFINITE_FAILURES)
            if err.fatal():
                fatal.append(err)

        i = 0
        interval = 1.0 / self.rate
        next_send = time.monotonic()
        while not self._stop_producing.is_set():
            if fatal:
                # an idempotent producer's fatal error: its queue is lost;
                # a new producer (a new producer id) carries on
                try:
                    producer.purge()
                    producer.flush(5)
                except KafkaException:
                    pass        # the same fatal error, raised again
                h.note("producer-recreated")
                fatal.clear()
                producer = self._new_producer(name, fatal)
            value = f"{name}-{i}"
            partition = i % self.partitions
            h.send(value, partition)
            try:
                producer.produce(self.topic, value=value.encode(), partition=partition,
                                 on_delivery=lambda err, msg, v=value: report(err, msg, v))
            except BufferError:
                h.fail(value, "queue full", definite=True)
            except Exception as e:  # a fatal producer refuses new records
                h.fail(value, type(e).__name__, definite=True)
                fatal.append(e)
            i += 1
            next_send += interval
            delay = next_send - time.monotonic()
            try:
                producer.poll(max(0.0, delay))
            except KafkaException as e:     # a fatal error raised from a callback
                fatal.append(e)
        try:
            left = producer.flush(60)
        except KafkaException:
            left = len(producer)
        if left:
            h.note("unflushed-at-end")

    def _consume(self, partition):
        from confluent_kafka import Consumer, KafkaError, TopicPartition
        h = self.history
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap(),
            "group.id": f"jepsen-unused-{self.topic}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # an out-of-range offset is an anomaly to see, never a silent jump
            "auto.offset.reset": "error",
            "fetch.wait.max.ms": 200,
        })
        name = f"c{partition}"
        try:
            consumer.assign([TopicPartition(self.topic, partition, 0)])
            h.seek(name, partition, 0)
            while not self._stop_consuming.is_set():
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        h.note(f"consume:{_error_name(msg.error())}")
                    continue
                h.poll(name, msg.partition(), msg.offset(), msg.value().decode())
                self._consumed[partition] = msg.offset() + 1
        finally:
            consumer.close()

    def _sample_leaders(self):
        while not self._stop_sampling.wait(0.5):
            self.sample_leaders()

    def sample_leaders(self):
        """Each reachable node's catalog: leader and epoch of every
        partition of the topic."""
        for node_id in self.cluster.reachable():
            try:
                rows = self.cluster.node(node_id).sql(
                    "SELECT p.partition, p.leader_epoch, p.leader_id "
                    "FROM streamlog.partition p JOIN streamlog.topic t USING (topic_id) "
                    "WHERE t.name = %s", (self.topic,))
            except Exception:
                continue        # starting, stopping or paused meanwhile
            for partition, epoch, leader in rows:
                self.history.leader(node_id, partition, epoch, leader)

    # -- the end ----------------------------------------------------------------------

    def stop_producing(self):
        self._stop_producing.set()
        for name, t in self._threads:
            if name == "_produce":
                t.join(120)

    def replicas(self):
        """{partition: [node ids holding a replica]} per the catalog."""
        rows = self.cluster.node(self.cluster.reachable()[0]).sql(
            "SELECT p.partition, p.replicas FROM streamlog.partition p "
            "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s", (self.topic,))
        return {p: list(r) for p, r in rows}

    def wait_healed(self, deadline=180):
        """Every partition has a leader on every node's catalog, and (with
        replicas) its whole replica set in the ISR."""
        def healed():
            for node_id in self.cluster.reachable():
                rows = self.cluster.node(node_id).sql(
                    "SELECT p.leader_id, p.replicas, p.isr FROM streamlog.partition p "
                    "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s",
                    (self.topic,))
                if len(rows) != self.partitions:
                    return False
                for leader, replicas, isr in rows:
                    if leader is None or leader < 0 or sorted(replicas) != sorted(isr or []):
                        return False
            return True
        self.cluster.wait_for(healed, deadline, f"every partition of {self.topic} led, full ISR")

    def high_watermarks(self):
        """{partition: high watermark} from the partitions' leaders."""
        out = {}
        leaders = self.cluster.leaders(self.topic)
        for p, leader in leaders.items():
            rows = self.cluster.node(leader).sql(
                "SELECT high_watermark FROM streamlog.partitions "
                "WHERE topic = %s AND partition = %s", (self.topic, p))
            out[p] = rows[0][0]
        return out

    def stop_consuming(self, stall=120):
        """Let the consumers reach the high watermarks, then stop them.
        A long run leaves them a backlog: they get as long as they move,
        and fail (saying where each one stands, and the errors consumers
        saw) once none has moved for stall seconds."""
        ends = self.high_watermarks()
        last = None
        moved = time.monotonic()
        while not all(self._consumed[p] >= ends[p] for p in ends):
            now = dict(self._consumed)
            if now != last:
                last, moved = now, time.monotonic()
            elif time.monotonic() - moved > stall:
                errors = {k: v for k, v in self.history.info.items() if k.startswith("consume:")}
                raise AssertionError(
                    f"the consumers stopped short of the high watermarks {ends}: "
                    f"at {dict(sorted(now.items()))} for {stall} s; consumer errors {errors}")
            time.sleep(0.2)
        self._stop_consuming.set()
        self._stop_sampling.set()
        for _, t in self._threads:
            t.join(120)
        self.sample_leaders()

    def final_reads(self):
        """Every partition in full: through SQL on every replica (its
        stored batches too), and through Kafka."""
        h = self.history
        replicas = self.replicas()
        self.wait_replica_high_watermarks(replicas)
        for partition, nodes in sorted(replicas.items()):
            for node_id in nodes:
                node = self.cluster.node(node_id)
                rows = node.sql('SELECT "offset", value FROM streamlog.read(%s, %s, 0, 100000000)',
                                (self.topic, partition))
                h.final_read(f"sql@{node_id}", partition,
                             [(o, bytes(v).decode()) for o, v in rows])
                h.replica(node_id, partition, self.stored_batches(node, partition))
        self._kafka_final_read()

    def wait_replica_high_watermarks(self, replicas, deadline=60):
        """Every replica's own high watermark up to its leader's: a
        follower learns it from the answer to its next progress report
        (as a Kafka follower from its next fetch), and SQL reads on a node
        stop at that node's high watermark."""
        ends = self.high_watermarks()

        def caught_up():
            for partition, nodes in replicas.items():
                for node_id in nodes:
                    rows = self.cluster.node(node_id).sql(
                        "SELECT high_watermark FROM streamlog.partitions "
                        "WHERE topic = %s AND partition = %s", (self.topic, partition))
                    if not rows or rows[0][0] < ends[partition]:
                        return False
            return True
        self.cluster.wait_for(caught_up, deadline,
                              f"every replica's high watermark at its leader's {ends}")

    def stored_batches(self, node, partition):
        """[(base_offset, batch bytes)] of one replica, chunks joined."""
        segments = node.sql(
            "SELECT g.relid::text FROM streamlog.segment g JOIN streamlog.topic t "
            "USING (topic_id) WHERE t.name = %s AND g.partition = %s ORDER BY g.seq",
            (self.topic, partition))
        batches = collections.OrderedDict()
        for (relid,) in segments:
            for base, chunk, data in node.sql(
                    f"SELECT base_offset, chunk, batch FROM {relid} "
                    "ORDER BY base_offset, chunk"):
                batches.setdefault(base, bytearray()).extend(bytes(data))
        return [(base, bytes(b)) for base, b in batches.items()]

    def _kafka_final_read(self, deadline=120):
        from confluent_kafka import Consumer, TopicPartition
        ends = self.high_watermarks()
        consumer = Consumer({"bootstrap.servers": self.bootstrap(),
                             "group.id": f"jepsen-final-{self.topic}",
                             "enable.auto.commit": False,
                             "auto.offset.reset": "error"})
        got = {p: [] for p in ends}
        try:
            consumer.assign([TopicPartition(self.topic, p, 0) for p in ends])

            def done():
                msg = consumer.poll(0.2)
                if msg is not None and not msg.error():
                    got[msg.partition()].append((msg.offset(), msg.value().decode()))
                return all(len(got[p]) >= ends[p] for p in ends)
            self.cluster.wait_for(done, deadline, "the final Kafka read", interval=0)
        finally:
            consumer.close()
        for p, records in got.items():
            self.history.final_read("kafka", p, records)

    def run(self, schedule, nemesis, until=None):
        """The whole run: start the clients, play the schedule (until a
        time.monotonic() value, if given), heal, read back.  Returns the
        history."""
        self.create_topic()
        self.start()
        try:
            nemesis.play(schedule, until)
        finally:
            nemesis.heal()
        self.wait_healed()
        self.stop_producing()
        self.stop_consuming()
        self.final_reads()
        if self.errors:
            raise RuntimeError(f"workload thread failed: {self.errors[0]!r}") from self.errors[0]
        return self.history


# ---------------------------------------------------------------------------
# The nemesis
# ---------------------------------------------------------------------------

# The faults a schedule draws from
KILL_LEADER = "kill-leader"          # kill -9 of the leader of a partition
KILL_CONTROLLER = "kill-controller"  # kill -9 of the controller
KILL_TWO = "kill-two"                # kill -9 of two nodes, one after another
PAUSE = "pause"                      # freeze a node (freezer cgroup or SIGSTOP)
RESTART_ALL = "restart-all"          # kill -9 of every node, then start them
FAULTS = (KILL_LEADER, KILL_CONTROLLER, KILL_TWO, PAUSE, RESTART_ALL)
# With the nodes in network namespaces (jepsen_network.NetworkCuts)
CUT_LEADER = "cut-leader"            # the leader of a partition cut from the other nodes
CUT_CONTROLLER = "cut-controller"    # the controller cut from the other nodes
NETWORK_FAULTS = (CUT_LEADER, CUT_CONTROLLER)


class Nemesis:
    """Plays a seeded schedule of faults on a cluster, each followed by its
    heal.  schedule(steps) is a pure function of the seed (and of whether
    there is a network to cut: network, a jepsen_network.NetworkCuts the
    cluster was placed with, adds NETWORK_FAULTS to the draw)."""

    def __init__(self, cluster, workload, seed, log=print, network=None, faults=None):
        self.cluster = cluster
        self.workload = workload
        self.seed = seed
        self.log = log
        self.network = network
        self._faults = tuple(faults) if faults else None
        if self.network is None and set(self.faults()) & set(NETWORK_FAULTS):
            raise ValueError("network faults need the cluster placed with a NetworkCuts")

    def faults(self):
        """The faults the schedule draws from (all it can play by default)."""
        if self._faults:
            return self._faults
        return FAULTS + (NETWORK_FAULTS if self.network is not None else ())

    def schedule(self, steps):
        """[(fault, argument, seconds faulty, seconds healthy after)]"""
        rng = random.Random(self.seed)
        out = []
        faults = self.faults()
        for _ in range(steps):
            fault = rng.choice(faults)
            arg = rng.randrange(self.workload.partitions) if fault in (KILL_LEADER, CUT_LEADER) \
                else rng.randrange(1, len(self.cluster) + 1)
            # a cut lasts longer: past the session timeout (the controller
            # fences the cut node) and, now and then, replica.lag.time.max.ms
            low, high = (3.0, 12.0) if fault in NETWORK_FAULTS else (1.0, 6.0)
            out.append((fault, arg, round(rng.uniform(low, high), 1),
                        round(rng.uniform(2.0, 5.0), 1)))
        return out

    def _note(self, text):
        self.workload.history.fault(text)
        self.log(f"nemesis: {text}")

    def play(self, schedule, until=None):
        """Play the schedule; until (a time.monotonic() value) ends it
        early, between two faults."""
        for fault, arg, faulty, healthy in schedule:
            if until is not None and time.monotonic() >= until:
                break
            victims = self._inject(fault, arg, faulty)
            time.sleep(faulty)
            self._heal(victims)
            time.sleep(healthy)

    def _leader_of(self, partition):
        try:
            leader = self.cluster.leaders(self.workload.topic).get(partition)
        except Exception:
            leader = None
        if leader is None or leader < 0 or leader not in self.cluster.reachable():
            return self.cluster.reachable()[0]
        return leader

    def _inject(self, fault, arg, faulty):
        c = self.cluster
        if fault == KILL_LEADER:
            node = self._leader_of(arg)
            self._note(f"kill -9 node {node} (leader of partition {arg})")
            c.kill9(node)
            return [("start", node)]
        if fault == KILL_CONTROLLER:
            try:
                node = c.controller() or arg
            except Exception:
                node = arg
            if node not in c.reachable():
                node = c.reachable()[0]
            self._note(f"kill -9 node {node} (controller)")
            c.kill9(node)
            return [("start", node)]
        if fault == KILL_TWO:
            first = arg if arg in c.reachable() else c.reachable()[0]
            second = next(n for n in c.reachable() if n != first)
            self._note(f"kill -9 node {first}, then node {second}")
            c.kill9(first)
            time.sleep(faulty / 2)
            c.kill9(second)
            return [("start", first), ("start", second)]
        if fault == PAUSE:
            node = arg if arg in c.reachable() else c.reachable()[0]
            self._note(f"pause node {node}")
            c.pause(node)
            return [("resume", node)]
        if fault == RESTART_ALL:
            self._note("kill -9 every node")
            for n in list(c.running()):
                c.kill9(n)
            return [("start-all", None)]
        if fault in NETWORK_FAULTS:
            if fault == CUT_LEADER:
                node, why = self._leader_of(arg), f"leader of partition {arg}"
            else:
                try:
                    node = c.controller() or arg
                except Exception:
                    node = arg
                why = "controller"
            self._note(f"cut node {node} ({why}) from the other nodes")
            self.network.cut(node)
            return [("reconnect", node)]
        raise ValueError(f"unknown fault {fault}")

    def _heal(self, victims):
        c = self.cluster
        for action, node in victims:
            if action == "resume":
                self._note(f"resume node {node}")
                c.resume(node)
            elif action == "reconnect":
                self._note(f"reconnect node {node}")
                self.network.heal()
            elif action == "start":
                self._note(f"start node {node}")
                c.start(node)
            else:
                self._note("start every node")
                c.start([n.node_id for n in c if not n.is_running()])

    def heal(self):
        """Everything up again, whatever happened."""
        c = self.cluster
        if self.network is not None:
            self.network.heal()
        for n in c:
            n.resume()
        stopped = [n.node_id for n in c if not n.is_running()]
        if stopped:
            self._note(f"start nodes {stopped}")
            c.start(stopped)
        c.wait_ready()
