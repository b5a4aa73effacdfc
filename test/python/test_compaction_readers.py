"""Readers during compaction (issue 11, P2): SQL read() paging, history(),
consume() in a group and a Kafka consumer (librdkafka) read a compacted
partition from offset 0 in a loop while records are produced and cleaning
passes (forced and background) rewrite its segments.  Every pass of every
reader must hold every record that survives to the end at an offset it
covered (no skipped surviving record), with offsets strictly increasing,
and every record any reader saw at an offset must be the one produced there
(no offset ever changes its record)."""

import threading
import time

import pytest

from compaction_model import (
    CONF, HISTORY_QUERY, KafkaProducer, LogModel, Rec, clean, compacted_config,
    create_topic, high_watermarks, history, make_rng, now_ms, random_records, read_page,
    sql_produce, to_row, wait_all_rolled, wait_cleaned_to)
from kafka_helpers import ck_headers
from pgserver import wait_until

CONSUME_QUERY = HISTORY_QUERY.replace("streamlog.history(%s)", "streamlog.consume(%s, %s, %s)")
MIN_PASSES = 3


class Reader(threading.Thread):
    """Reads the partition from offset 0 again and again until stopped;
    each pass is kept as (records [(offset, Rec)], bound, start, end): the
    pass covered every offset below bound, between the two monotonic
    times."""

    def __init__(self, name, stop):
        super().__init__(name=name, daemon=True)
        self.stop = stop
        self.passes = []
        self.error = None

    def run(self):
        try:
            self.setup()
            while not self.stop.is_set():
                start = time.monotonic()
                records, bound = self.one_pass()
                self.passes.append((records, bound, start, time.monotonic()))
                time.sleep(0.02)
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.teardown()

    def setup(self):
        pass

    def teardown(self):
        pass


class SqlReader(Reader):
    def __init__(self, name, stop, server, topic):
        super().__init__(name, stop)
        self.server = server
        self.topic = topic

    def setup(self):
        self.conn = self.server.connect()

    def teardown(self):
        if getattr(self, "conn", None) is not None:
            self.conn.close()


class ReadPager(SqlReader):
    """streamlog.read() in pages of 37 records"""

    def one_pass(self):
        out, frm = [], 0
        while True:
            page = read_page(self.conn, self.topic, 0, frm, 37)
            if not page:
                return out, frm
            out += [(r.offset, r.rec) for r in page]
            frm = page[-1].offset + 1


class HistoryReader(SqlReader):
    """streamlog.history(), the whole topic in one statement"""

    def one_pass(self):
        rows = [(r.offset, r.rec) for r in history(self.conn, self.topic)]
        return rows, rows[-1][0] + 1 if rows else 0


class GroupConsumer(SqlReader):
    """streamlog.consume() in a group, 41 records a transaction, the group
    sought back to 0 at the start of each pass"""

    def one_pass(self):
        group = f"readers-{self.topic}"
        self.conn.execute("SELECT streamlog.seek(%s, %s, 0, 0)", (group, self.topic))
        out, bound = [], 0
        while True:
            rows = [to_row(*r) for r in self.conn.execute(
                CONSUME_QUERY, (group, self.topic, 41)).fetchall()]
            if not rows:
                return out, bound
            out += [(r.offset, r.rec) for r in rows]
            bound = rows[-1].offset + 1


class KafkaReader(Reader):
    """a confluent-kafka consumer assigned the partition at offset 0, a pass
    ending at partition EOF"""

    def __init__(self, name, stop, bootstrap, topic):
        super().__init__(name, stop)
        self.bootstrap = bootstrap
        self.topic = topic

    def setup(self):
        from confluent_kafka import Consumer
        self.consumer = Consumer({"bootstrap.servers": self.bootstrap,
                                  "group.id": "unused", "enable.auto.commit": False,
                                  "enable.partition.eof": True, "fetch.wait.max.ms": 50,
                                  "fetch.message.max.bytes": 4096})

    def teardown(self):
        if getattr(self, "consumer", None) is not None:
            self.consumer.close()

    def one_pass(self):
        from confluent_kafka import KafkaError, TopicPartition
        self.consumer.assign([TopicPartition(self.topic, 0, 0)])
        out = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return out, msg.offset()
                raise AssertionError(f"Kafka consumer error: {msg.error()}")
            value = msg.value()
            out.append((msg.offset(), Rec(msg.key().decode(),
                                          None if value is None else value.decode(),
                                          tuple(ck_headers(msg)), msg.timestamp()[1])))
        raise AssertionError("a Kafka pass did not reach the end of the partition in 60 s")


@pytest.mark.parametrize("dedupe_buffer", ["128MB", "1kB"])
def test_readers_during_compaction_skip_no_survivor(make_server, unique_name, dedupe_buffer):
    """With the default dedupe buffer, and with one so small that every
    round takes many partial passes (many more swaps under the readers)."""
    srv = make_server(conf=dict(CONF, **{"streamlog.log_cleaner_dedupe_buffer_size": dedupe_buffer}))
    conn = srv.connect()
    rng = make_rng()
    topic = unique_name("readers")
    create_topic(conn, topic, 1, compacted_config(delete_retention_ms=0))
    keys = [f"k{i:02d}" for i in range(100)]
    produced = set()
    model = LogModel()
    producer = KafkaProducer(srv.kafka_bootstrap)

    def produce(recs, door):
        if door == "sql":
            sql_produce(conn, topic, recs)
        else:
            producer.produce(topic, recs)
        model.produce(recs)
        produced.update(recs)

    for part in range(5):
        produce(random_records(rng, keys, 200, 0.1, f"init{part}", now_ms()), "sql")
    observed = {r.offset: r.rec for r in history(conn, topic)}

    stop = threading.Event()
    readers = [ReadPager("read", stop, srv, topic), HistoryReader("history", stop, srv, topic),
               GroupConsumer("consume", stop, srv, topic),
               KafkaReader("kafka", stop, srv.kafka_bootstrap, topic)]
    for r in readers:
        r.start()
    try:
        # rounds go on until every reader has had a pass running while a
        # forced pass committed
        cleans = []

        def overlapped(reader):
            return any(s < c1 and e > c0 for *_, s, e in reader.passes for c0, c1 in cleans)

        rnd = 0
        deadline = time.monotonic() + 120
        while rnd < 6 or not all(overlapped(r) or r.error for r in readers):
            assert time.monotonic() < deadline, \
                f"readers without a pass during a clean(): {[r.name for r in readers if not overlapped(r)]}"
            produce(random_records(rng, keys, 200, 0.1, f"r{rnd}", now_ms()),
                    "sql" if rnd % 2 else "kafka")
            wait_all_rolled(conn, topic)
            if rnd % 2 == 0:
                c0 = time.monotonic()
                clean(conn, topic)
                cleans.append((c0, time.monotonic()))
            else:
                wait_cleaned_to(conn, topic, high_watermarks(conn, topic))
            for r in history(conn, topic):
                observed.setdefault(r.offset, r.rec)
            rnd += 1
        wait_until(lambda: all(len(r.passes) >= MIN_PASSES or r.error for r in readers), 120,
                   f"every reader to make {MIN_PASSES} passes")
    finally:
        stop.set()
        for r in readers:
            r.join(120)
    for r in readers:
        assert r.error is None, f"reader {r.name} failed: {r.error!r}"

    final = history(conn, topic)
    model.check(final, "the log at the end")
    survivors = {r.offset: r.rec for r in final}
    assert len(survivors) < model.produced, "nothing was compacted"
    for reader in readers:
        for n, (records, bound, _, _) in enumerate(reader.passes):
            what = f"{reader.name} pass {n}"
            offs = [o for o, _ in records]
            assert all(a < b for a, b in zip(offs, offs[1:])), f"{what}: offsets not increasing"
            for off, rec in records:
                assert rec in produced, f"{what}: offset {off} holds a record never produced: {rec}"
                first = observed.setdefault(off, rec)
                assert first == rec, f"{what}: offset {off} held {first}, now {rec}"
            got = dict(records)
            skipped = [o for o in survivors if o < bound and o not in got]
            assert not skipped, (f"{what} (up to offset {bound}) skipped surviving records at "
                                 f"offsets {skipped[:10]} ({len(skipped)} in all)")
    conn.close()
