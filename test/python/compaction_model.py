"""What the compaction tests share: producing keyed records through both
doors (SQL produce() and a Kafka producer), reading a compacted log back,
forcing a cleaning pass, and LogModel, which checks every read of the log
against what was produced and what earlier reads saw.

The properties LogModel checks (issue 11, "Tests"):

- the log's latest record per key is the model's: every key's last record
  is present, unchanged; a key whose last record is a tombstone is either
  absent or has that tombstone last;
- offsets only ever disappear: an offset below what an earlier read
  covered is one that read saw;
- an offset's record never changes (key, value, headers, timestamp);
- offsets increase strictly within a partition, and a key stays in one
  partition.
"""

import random
import time
from dataclasses import dataclass, field

from psycopg.types.json import Jsonb
from pgserver import wait_until

# Every compaction test wants the cleaner to look often
CONF = {"streamlog.retention_check_interval": 200}


@dataclass(frozen=True)
class Rec:
    """A record as produced or read: key and value as text (value None for
    a tombstone), headers as ((name, bytes), ...), timestamp in ms."""
    key: str
    value: object
    headers: tuple = ()
    ts: int = 0


@dataclass(frozen=True)
class Row:
    partition: int
    offset: int
    rec: Rec


def create_topic(conn, topic, partitions=1, config=None):
    conn.execute("SELECT streamlog.create_topic(%s, %s, %s)",
                 (topic, partitions, Jsonb(config or {})))


def compacted_config(**extra):
    """A compacted topic whose active segment rolls at every cleaner check
    once it holds a record (segment.bytes is below the size of an empty
    segment table), cleaned by the background cleaner as soon as anything
    is dirty."""
    config = {"cleanup.policy": "compact", "segment.bytes": 14,
              "min.cleanable.dirty.ratio": 0.01}
    config.update({k.replace("_", "."): v for k, v in extra.items()})
    return config


# -- producing ---------------------------------------------------------------

def sql_produce(conn, topic, recs):
    """Produce recs in one transaction through streamlog.produce(), in order."""
    if not recs:
        return
    keys = [r.key for r in recs]
    values = [r.value for r in recs]
    headers = [Jsonb([[k, v.decode()] for k, v in r.headers]) for r in recs]
    stamps = [r.ts for r in recs]
    conn.execute(
        "SELECT count(streamlog.produce(%s, u.k, u.v, u.h, NULL, "
        "                               'epoch'::timestamptz + u.t * interval '1 ms')) "
        "  FROM unnest(%s::text[], %s::text[], %s::jsonb[], %s::bigint[]) "
        "       WITH ORDINALITY AS u(k, v, h, t, ord)",
        (topic, keys, values, headers, stamps))


class KafkaProducer:
    """A confluent-kafka producer that partitions keys as SQL produce()
    does (murmur2, Java's default) and keeps their order (idempotent)."""

    def __init__(self, bootstrap):
        from confluent_kafka import Producer
        self.producer = Producer({"bootstrap.servers": bootstrap,
                                  "partitioner": "murmur2_random",
                                  "enable.idempotence": True,
                                  "linger.ms": 5})
        self.errors = []

    def _report(self, err, msg):
        if err is not None:
            self.errors.append(err)

    def produce(self, topic, recs):
        for r in recs:
            self.producer.produce(
                topic, key=r.key.encode(),
                value=None if r.value is None else r.value.encode(),
                headers=list(r.headers), timestamp=r.ts, on_delivery=self._report)
            self.producer.poll(0)
        left = self.producer.flush(60)
        assert left == 0, f"{left} Kafka records not delivered in 60 s"
        assert not self.errors, f"Kafka delivery errors: {self.errors}"


def random_records(rng, keys, count, tombstone_share, tag, ts):
    """count records over keys, tombstone_share of them tombstones (never
    the last one, so that a log's end is always a surviving record)."""
    out = []
    for i in range(count):
        key = rng.choice(keys)
        tomb = i < count - 1 and rng.random() < tombstone_share
        value = None if tomb else f"{key}={tag}.{i}.{rng.getrandbits(40):x}"
        out.append(Rec(key, value, (("tag", tag.encode()), ("i", str(i).encode())), ts + i))
    return out


# -- reading -----------------------------------------------------------------

HISTORY_QUERY = (
    'SELECT h.partition, h."offset", (extract(epoch FROM h.ts) * 1000)::bigint, '
    "       streamlog.as_text(h.key), streamlog.as_text(h.value), "
    "       (SELECT coalesce(array_agg(x.key ORDER BY x.o), '{}') "
    "          FROM unnest(h.headers) WITH ORDINALITY x(key, value, o)), "
    "       (SELECT coalesce(array_agg(x.value ORDER BY x.o), '{}') "
    "          FROM unnest(h.headers) WITH ORDINALITY x(key, value, o)) "
    "  FROM streamlog.history(%s) h")

READ_QUERY = HISTORY_QUERY.replace("streamlog.history(%s)", "streamlog.read(%s, %s, %s, %s)")


def to_row(partition, offset, ts, key, value, hkeys, hvalues):
    headers = tuple((k, bytes(v) if v is not None else None) for k, v in zip(hkeys, hvalues))
    return Row(partition, offset, Rec(key, value, headers, ts))


def history(conn, topic):
    """Every record of a topic through streamlog.history(), in the order it
    returns them."""
    return [to_row(*r) for r in conn.execute(HISTORY_QUERY, (topic,)).fetchall()]


def read_page(conn, topic, partition, from_offset, max_records):
    return [to_row(*r) for r in conn.execute(
        READ_QUERY, (topic, partition, from_offset, max_records)).fetchall()]


def by_partition(rows):
    out = {}
    for r in rows:
        out.setdefault(r.partition, []).append(r)
    return out


def high_watermarks(conn, topic):
    return dict(conn.execute(
        "SELECT partition, high_watermark FROM streamlog.partitions WHERE topic = %s",
        (topic,)).fetchall())


def wait_all_rolled(conn, topic, timeout=30):
    """Wait until every record of the topic is out of the active segment
    (the newest segment of each partition starts at its high watermark),
    so that all of it can be cleaned."""
    def rolled():
        rows = conn.execute(
            "SELECT p.partition, s.high_watermark, "
            "       (SELECT g.base_offset FROM streamlog.segment g "
            "         WHERE g.topic_id = p.topic_id AND g.partition = p.partition "
            "         ORDER BY g.seq DESC LIMIT 1) "
            "  FROM streamlog.partition p JOIN streamlog.topic t USING (topic_id) "
            " CROSS JOIN LATERAL streamlog.partition_state(p.topic_id, p.partition) s "
            " WHERE t.name = %s", (topic,)).fetchall()
        return all(base == hwm for _, hwm, base in rows)
    wait_until(rolled, timeout, f"the active segments of {topic} to roll", interval=0.1)


def clean(conn, topic, partition=None):
    """streamlog.clean(): {partition: (cleaned_offset, records_removed, bytes_reclaimed)}"""
    return {p: (c, n, b) for p, c, n, b in conn.execute(
        "SELECT partition, cleaned_offset, records_removed, bytes_reclaimed "
        "  FROM streamlog.clean(%s::text, %s::integer)", (topic, partition)).fetchall()}


def compaction_view(conn, topic):
    """streamlog.compaction's rows of a topic, {partition: {column: value}}"""
    cur = conn.execute("SELECT * FROM streamlog.compaction WHERE topic = %s", (topic,))
    names = [d.name for d in cur.description]
    return {r[names.index("partition")]: dict(zip(names, r)) for r in cur.fetchall()}


def wait_cleaned_to(conn, topic, offsets, timeout=180):
    """Wait until the background cleaner's checkpoint of every partition
    (streamlog.compaction.cleaned_offset) reaches offsets[partition]."""
    def done():
        view = compaction_view(conn, topic)
        return all(p in view and view[p]["cleaned_offset"] >= off
                   for p, off in offsets.items())
    wait_until(done, timeout, f"the cleaner to clean {topic} up to {offsets}", interval=0.1)


def assert_one_record_per_key_below(rows, cleaned):
    """Below a partition's cleaner checkpoint, each key appears once: the
    cleaned part holds only the last record of each key it saw."""
    seen = {}
    for r in rows:
        if r.offset < cleaned.get(r.partition, 0):
            k = (r.partition, r.rec.key)
            assert k not in seen, (
                f"key {r.rec.key!r} of partition {r.partition} at offsets {seen[k]} and "
                f"{r.offset}, both below the cleaned offset {cleaned[r.partition]}")
            seen[k] = r.offset


def latest_state(rows):
    """{key: value} rebuilt from a log read in offset order, as a changelog
    consumer does: a tombstone deletes the key."""
    state = {}
    for r in rows:
        if r.rec.value is None:
            state.pop(r.rec.key, None)
        else:
            state[r.rec.key] = r.rec.value
    return state


@dataclass
class LogModel:
    """The produced records, and what reads of the log have shown."""
    last: dict = field(default_factory=dict)       # key -> Rec last produced
    seen: dict = field(default_factory=dict)       # (partition, offset) -> Rec
    covered: dict = field(default_factory=dict)    # partition -> offsets below it were read
    offsets: dict = field(default_factory=dict)    # partition -> set of offsets last read
    key_partition: dict = field(default_factory=dict)
    produced: int = 0

    def produce(self, recs):
        for r in recs:
            self.last[r.key] = r
        self.produced += len(recs)

    def state(self):
        return {k: r.value for k, r in self.last.items() if r.value is not None}

    def check(self, rows, what="the log"):
        """Check a complete read of the log (every partition from its start)
        against the model and the earlier reads; remember what it saw."""
        parts = by_partition(rows)
        for p, prow in parts.items():
            offs = [r.offset for r in prow]
            bad = [(a, b) for a, b in zip(offs, offs[1:]) if b <= a]
            assert not bad, f"{what}: offsets of partition {p} not increasing: {bad[:5]}"
            old = self.offsets.get(p, set())
            covered = self.covered.get(p, 0)
            back = [o for o in offs if o < covered and o not in old]
            assert not back, (f"{what}: offsets {back[:10]} of partition {p} reappeared "
                              f"or were renumbered (absent from the previous read)")
        for r in rows:
            assert r.rec.key is not None, f"{what}: a record without a key at {r}"
            was = self.seen.get((r.partition, r.offset))
            assert was is None or was == r.rec, (
                f"{what}: the record at offset {r.offset} of partition {r.partition} "
                f"changed from {was} to {r.rec}")
            kp = self.key_partition.setdefault(r.rec.key, r.partition)
            assert kp == r.partition, f"{what}: key {r.rec.key!r} in partitions {kp} and {r.partition}"
        log_last = {}
        for r in rows:
            log_last[r.rec.key] = r
        unknown = set(log_last) - set(self.last)
        assert not unknown, f"{what}: keys never produced: {sorted(unknown)[:10]}"
        for key, want in self.last.items():
            got = log_last.get(key)
            if want.value is None:
                assert got is None or got.rec == want, (
                    f"{what}: key {key!r} was deleted last (tombstone {want}) but its "
                    f"last record in the log is {got}")
            else:
                assert got is not None, f"{what}: the last record of key {key!r} ({want}) is missing"
                assert got.rec == want, (f"{what}: key {key!r}: last record in the log is {got}, "
                                         f"last produced {want}")
        for r in rows:
            self.seen[(r.partition, r.offset)] = r.rec
        for p, prow in parts.items():
            self.offsets[p] = {r.offset for r in prow}
            self.covered[p] = max(self.covered.get(p, 0), prow[-1].offset + 1)
        for p in set(self.offsets) - set(parts):
            # every record of the partition is gone: nothing may come back
            self.offsets[p] = set()


def now_ms():
    return int(time.time() * 1000)


def make_rng(seed=None):
    seed = seed if seed is not None else random.randrange(2**32)
    print(f"random seed {seed}")
    return random.Random(seed)
