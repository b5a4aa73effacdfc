"""The transactional outbox: records produced by SQL are part of the caller's
transaction (P1), become visible without skipping anything (P2) and in
commit order (P3), and an idle transaction holds nobody up (P4)."""

import hashlib
import random
import threading
import time

import pytest
from psycopg import errors, sql
from psycopg.types.json import Jsonb
from pgserver import NO_WAIT_GUARD, wait_until


# -- helpers -------------------------------------------------------------------


def create_topic(conn, name, partitions=1, config=None):
    conn.execute("SELECT streamlog.create_topic(%s, %s, %s::jsonb)",
                 (name, partitions, Jsonb(config or {})))


def produce(conn, topic, value, partition=0, key=None):
    [(p,)] = conn.execute(
        "SELECT streamlog.produce(%s, %s::text, %s::text, partition => %s)",
        (topic, key, value, partition)).fetchall()
    return p


def read(conn, topic, partition, from_offset=0, max_records=1_000_000):
    """[(offset, value as text)] of one partition from from_offset on."""
    rows = conn.execute(
        'SELECT "offset", value FROM streamlog.read(%s, %s, %s, %s)',
        (topic, partition, from_offset, max_records)).fetchall()
    return [(off, None if v is None else bytes(v).decode()) for off, v in rows]


def values(rows):
    return [v for _, v in rows]


def high_watermark(conn, topic, partition):
    [(hwm,)] = conn.execute(
        "SELECT high_watermark FROM streamlog.partitions "
        "WHERE topic = %s AND partition = %s", (topic, partition)).fetchall()
    return hwm


def segment_tables(conn, topic, partition=None):
    rows = conn.execute(
        "SELECT s.partition, s.relid::regclass::text FROM streamlog.segment s "
        "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s ORDER BY s.partition, s.seq",
        (topic,)).fetchall()
    return [rel for p, rel in rows if partition is None or p == partition]


@pytest.fixture
def topic(conn, unique_name):
    name = unique_name("outbox")
    create_topic(conn, name, 2)
    yield name
    conn.execute("SELECT streamlog.drop_topic(%s, true)", (name,))


# -- P1: atomic with the caller's transaction ----------------------------------

def test_records_are_visible_only_after_commit(conn, topic, open_conns):
    writer = open_conns(autocommit=False)
    for i in range(3):
        assert produce(writer, topic, f"v{i}") == 0
    produce(writer, topic, "other partition", partition=1)

    assert read(conn, topic, 0) == []
    assert read(conn, topic, 1) == []
    assert high_watermark(conn, topic, 0) == 0
    # the writer does not see its own records before commit either
    assert read(writer, topic, 0) == []

    writer.commit()
    assert read(conn, topic, 0) == [(0, "v0"), (1, "v1"), (2, "v2")]
    assert read(conn, topic, 1) == [(0, "other partition")]
    assert high_watermark(conn, topic, 0) == 3
    assert high_watermark(conn, topic, 1) == 1


def test_rollback_leaves_nothing(conn, topic, open_conns):
    produce(conn, topic, "before")
    assert high_watermark(conn, topic, 0) == 1

    writer = open_conns(autocommit=False)
    writer.execute("SELECT streamlog.produce(%s, NULL, 'rolled back ' || g, partition => 0) "
                   "FROM generate_series(1, 500) g", (topic,))
    produce(writer, topic, "rolled back too", partition=1)
    writer.rollback()

    assert high_watermark(conn, topic, 0) == 1
    assert high_watermark(conn, topic, 1) == 0
    assert read(conn, topic, 0) == [(0, "before")]
    assert read(conn, topic, 0, 1) == []
    assert read(conn, topic, 1) == []

    # the rolled-back records used no offsets
    produce(conn, topic, "after")
    assert read(conn, topic, 0) == [(0, "before"), (1, "after")]


@pytest.mark.parametrize("constraint", ["unique", "foreign_key"])
def test_transaction_failing_at_commit_leaves_nothing(conn, topic, open_conns, constraint):
    table = f"outbox_deferred_{constraint}"
    conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_parent")
    if constraint == "unique":
        conn.execute(f"CREATE TABLE {table} (id int, "
                     "UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)")
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        violation = f"INSERT INTO {table} VALUES (1)"
        expected = errors.UniqueViolation
    else:
        conn.execute(f"CREATE TABLE {table}_parent (id int PRIMARY KEY)")
        conn.execute(f"CREATE TABLE {table} (parent int REFERENCES {table}_parent "
                     "DEFERRABLE INITIALLY DEFERRED)")
        violation = f"INSERT INTO {table} VALUES (42)"
        expected = errors.ForeignKeyViolation
    produce(conn, topic, "committed")

    writer = open_conns(autocommit=False)
    produce(writer, topic, "doomed 1")
    produce(writer, topic, "doomed 2", partition=1)
    writer.execute(violation)   # accepted now, checked at COMMIT
    produce(writer, topic, "doomed 3")
    with pytest.raises(expected):
        writer.commit()

    assert high_watermark(conn, topic, 0) == 1
    assert high_watermark(conn, topic, 1) == 0
    assert read(conn, topic, 0) == [(0, "committed")]
    assert read(conn, topic, 1) == []
    produce(conn, topic, "next")
    assert read(conn, topic, 0) == [(0, "committed"), (1, "next")]
    conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_parent")


def test_savepoints_discard_only_what_followed_them(conn, topic, open_conns):
    w = open_conns(autocommit=False)
    produce(w, topic, "a1")
    produce(w, topic, "a2")
    w.execute("SAVEPOINT s1")
    produce(w, topic, "b1")
    produce(w, topic, "b1 p1", partition=1)
    w.execute("ROLLBACK TO SAVEPOINT s1")
    produce(w, topic, "c1")
    w.execute("SAVEPOINT s2")
    produce(w, topic, "d1")
    w.execute("RELEASE SAVEPOINT s2")
    # a released savepoint's records belong to its parent: rolling back an
    # enclosing savepoint discards them, nested ones included
    w.execute("SAVEPOINT outer_sp")
    w.execute("SAVEPOINT inner_sp")
    produce(w, topic, "e1")
    w.execute("RELEASE SAVEPOINT inner_sp")
    produce(w, topic, "e2")
    w.execute("ROLLBACK TO SAVEPOINT outer_sp")
    produce(w, topic, "f1 p1", partition=1)
    # an error inside a savepoint, as a client library's nested transaction
    with pytest.raises(errors.DivisionByZero):
        with w.transaction():
            produce(w, topic, "g1")
            w.execute("SELECT 1 / 0")
    produce(w, topic, "h1")
    assert read(conn, topic, 0) == []
    w.commit()

    assert read(conn, topic, 0) == [(0, "a1"), (1, "a2"), (2, "c1"), (3, "d1"), (4, "h1")]
    assert read(conn, topic, 1) == [(0, "f1 p1")]


def test_savepoint_rollback_spanning_several_batches(conn, topic, open_conns):
    """Records before and after a savepoint fill several batches each."""
    w = open_conns(autocommit=False)
    w.execute("SET streamlog.batch_bytes = 1024")
    w.execute("SELECT streamlog.produce(%s, NULL, 'keep-' || g || repeat('x', 100), "
              "partition => 0) FROM generate_series(1, 40) g", (topic,))
    w.execute("SAVEPOINT s")
    w.execute("SELECT streamlog.produce(%s, NULL, 'drop-' || g || repeat('x', 100), "
              "partition => 0) FROM generate_series(1, 40) g", (topic,))
    w.execute("ROLLBACK TO SAVEPOINT s")
    w.execute("SELECT streamlog.produce(%s, NULL, 'tail-' || g || repeat('x', 100), "
              "partition => 0) FROM generate_series(1, 40) g", (topic,))
    w.commit()

    expected = ([f"keep-{g}" + "x" * 100 for g in range(1, 41)] +
                [f"tail-{g}" + "x" * 100 for g in range(1, 41)])
    rows = read(conn, topic, 0)
    assert values(rows) == expected
    assert [off for off, _ in rows] == list(range(80))
    # and they were stored as several batches
    [table] = segment_tables(conn, topic, 0)
    [(batches,)] = conn.execute(f"SELECT count(*) FROM {table}").fetchall()
    assert batches > 2


def test_plpgsql_exception_block_discards_its_records(conn, topic):
    conn.execute("""
        CREATE FUNCTION pg_temp.outbox_exc(topic text) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM streamlog.produce(topic, NULL, 'before'::text, partition => 0);
            BEGIN
                PERFORM streamlog.produce(topic, NULL, 'inside'::text, partition => 0);
                PERFORM streamlog.produce(topic, NULL, 'inside p1'::text, partition => 1);
                RAISE EXCEPTION 'boom';
            EXCEPTION WHEN raise_exception THEN
                PERFORM streamlog.produce(topic, NULL, 'handler'::text, partition => 0);
            END;
            PERFORM streamlog.produce(topic, NULL, 'after'::text, partition => 0);
        END $$""")
    conn.execute("SELECT pg_temp.outbox_exc(%s)", (topic,))
    assert read(conn, topic, 0) == [(0, "before"), (1, "handler"), (2, "after")]
    assert read(conn, topic, 1) == []

    # an exception that escapes the function discards everything
    conn.execute("""
        CREATE FUNCTION pg_temp.outbox_fail(topic text) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM streamlog.produce(topic, NULL, 'lost'::text, partition => 0);
            RAISE EXCEPTION 'escapes';
        END $$""")
    with pytest.raises(errors.RaiseException):
        conn.execute("SELECT pg_temp.outbox_fail(%s)", (topic,))
    assert read(conn, topic, 0) == [(0, "before"), (1, "handler"), (2, "after")]
    assert high_watermark(conn, topic, 0) == 3


# -- P2: the high watermark waits for every offset below it ----------------------

def block_appends(blocker, topic, partition):
    """Lock partition's active segment in blocker's open transaction, so that
    commits appending to it wait (until blocker rolls back)."""
    table = segment_tables(blocker, topic, partition)[-1]
    blocker.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
    return blocker


def wait_for_lock_wait(conn, pid):
    wait_until(lambda: conn.execute(
        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
        (pid,)).fetchone()[0], 10, f"backend {pid} to wait for a lock")


def test_high_watermark_waits_for_an_earlier_commit_in_flight(conn, topic, open_conns):
    """A commits first and gets the lower offsets, but its commit is held up
    after they were assigned; B commits a later offset meanwhile.  Readers
    must not see B's record until A is done, or they would skip A's."""
    produce(conn, topic, "base")
    blocker = block_appends(open_conns(autocommit=False), topic, 1)

    a = open_conns(autocommit=False)
    [(a_pid,)] = a.execute("SELECT pg_backend_pid()").fetchall()
    produce(a, topic, "a1")
    produce(a, topic, "a2")
    produce(a, topic, "a on p1", partition=1)
    a_done = threading.Event()
    a_error = []

    def commit_a():
        try:
            a.commit()
        except Exception as e:  # reported below
            a_error.append(e)
        a_done.set()

    t = threading.Thread(target=commit_a)
    t.start()
    try:
        # A has its offsets on partition 0 and waits to append to partition 1
        wait_for_lock_wait(conn, a_pid)
        b = open_conns()
        b.execute(NO_WAIT_GUARD)
        produce(b, topic, "b1")   # commits: autocommit

        assert not a_done.is_set()
        assert high_watermark(conn, topic, 0) == 1
        assert read(conn, topic, 0) == [(0, "base")]
        assert read(conn, topic, 0, 1) == []
    finally:
        blocker.rollback()
        t.join(10)
    assert not t.is_alive() and not a_error, a_error

    assert read(conn, topic, 0) == [(0, "base"), (1, "a1"), (2, "a2"), (3, "b1")]
    assert read(conn, topic, 1) == [(0, "a on p1")]
    assert high_watermark(conn, topic, 0) == 4


def test_commit_failing_after_offsets_were_assigned_leaves_nothing(conn, topic, open_conns):
    """A's records for partition 0 are written and A then fails to append to
    partition 1: nothing of A is visible, and the offsets it held do not
    stop the high watermark for good."""
    produce(conn, topic, "base")
    blocker = block_appends(open_conns(autocommit=False), topic, 1)
    try:
        a = open_conns(autocommit=False)
        a.execute("SET lock_timeout = '300ms'")
        produce(a, topic, "a1")
        produce(a, topic, "a2")
        produce(a, topic, "a on p1", partition=1)
        with pytest.raises(errors.LockNotAvailable):
            a.commit()
    finally:
        blocker.rollback()

    assert read(conn, topic, 0) == [(0, "base")]
    assert read(conn, topic, 1) == []
    produce(conn, topic, "b1")
    produce(conn, topic, "b on p1", partition=1)
    rows = read(conn, topic, 0)
    assert values(rows) == ["base", "b1"]
    assert rows[1][0] >= 1
    assert high_watermark(conn, topic, 0) == rows[1][0] + 1
    rows = read(conn, topic, 1)
    assert values(rows) == ["b on p1"]
    assert high_watermark(conn, topic, 1) == rows[0][0] + 1


def test_many_commits_in_flight_on_one_partition(server, conn, topic, open_conns):
    """More transactions commit to one partition at once than it may have
    offset ranges in flight: the extra ones queue, and all of them finish."""
    committers = 72
    blocker = block_appends(open_conns(autocommit=False), topic, 1)
    txns = []
    for i in range(committers):
        c = open_conns(autocommit=False)
        # a generous bound on the queueing, only to end a hang
        c.execute("SET statement_timeout = '120s'")
        [(pid,)] = c.execute("SELECT pg_backend_pid()").fetchall()
        c.execute("SELECT streamlog.produce(%s, NULL, %s || ':' || g, partition => 0) "
                  "FROM generate_series(1, 3) g", (topic, str(i)))
        produce(c, topic, f"{i}:p1", partition=1)
        txns.append((c, pid))
    errors_seen = []

    def commit(c):
        try:
            c.commit()
        except Exception as e:
            errors_seen.append(e)

    threads = [threading.Thread(target=commit, args=(c,)) for c, _ in txns]
    try:
        for t in threads:
            t.start()
        pids = [pid for _, pid in txns]
        wait_until(lambda: conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) AND state = 'active' "
            "AND wait_event_type IN ('Lock', 'Extension')", (pids,)).fetchone()[0] == committers,
            60, "every commit to be waiting")
        assert high_watermark(conn, topic, 0) == 0
        assert read(conn, topic, 0) == []
    finally:
        blocker.rollback()
        for t in threads:
            t.join(120)
    assert not any(t.is_alive() for t in threads), "commits did not finish"
    assert not errors_seen, errors_seen[:3]

    rows = read(conn, topic, 0)
    assert [off for off, _ in rows] == list(range(3 * committers))
    by_txn = {}
    for off, v in rows:
        i, g = v.split(":")
        by_txn.setdefault(int(i), []).append((off, int(g)))
    assert sorted(by_txn) == list(range(committers))
    for recs in by_txn.values():
        assert [g for _, g in recs] == [1, 2, 3]
    assert sorted(values(read(conn, topic, 1))) == sorted(f"{i}:p1" for i in range(committers))
    assert high_watermark(conn, topic, 0) == 3 * committers


# -- P2 and P3 under concurrency ---------------------------------------------------

WRITERS = 8
TXNS_PER_WRITER = 200
PARTITIONS = 2


def test_concurrent_writers_reader_sees_every_committed_record_in_order(server, conn, unique_name):
    topic = unique_name("outbox-conc")
    create_topic(conn, topic, PARTITIONS)
    committed = [[] for _ in range(WRITERS)]     # per writer: values, commit order
    rolled_back = set()
    failures = []
    writers_done = threading.Event()
    stop = threading.Event()

    def writer(w):
        rng = random.Random(1000 + w)
        try:
            with server.connect(autocommit=False) as c:
                for t in range(TXNS_PER_WRITER):
                    n = rng.randint(1, 5)
                    vals = [f"w{w}:t{t}:r{i}" for i in range(n)]
                    parts = [rng.randrange(PARTITIONS) for _ in range(n)]
                    c.execute("SELECT streamlog.produce(%s, NULL, v, partition => p) "
                              "FROM unnest(%s::text[], %s::int[]) WITH ORDINALITY AS u(v, p, o) "
                              "ORDER BY o", (topic, vals, parts))
                    if rng.random() < 0.3:
                        c.rollback()
                        rolled_back.update(vals)
                    else:
                        c.commit()
                        committed[w].extend(vals)
                    if stop.is_set():
                        return
        except Exception as e:
            failures.append(("writer", w, e))
            stop.set()

    seen = {p: [] for p in range(PARTITIONS)}
    skipped_gaps = []
    hwm_history = {p: [] for p in range(PARTITIONS)}

    def reader():
        next_offset = {p: 0 for p in range(PARTITIONS)}
        try:
            with server.connect() as c:
                while not stop.is_set():
                    final = writers_done.is_set()
                    hwms = dict(c.execute(
                        "SELECT partition, high_watermark FROM streamlog.partitions "
                        "WHERE topic = %s", (topic,)).fetchall())
                    for p in range(PARTITIONS):
                        hwm_history[p].append(hwms[p])
                        rows = read(c, topic, p, next_offset[p], 500)
                        for off, v in rows:
                            if off < next_offset[p]:
                                raise AssertionError(
                                    f"offset {off} after {next_offset[p] - 1} on partition {p}")
                            seen[p].append((off, v))
                            next_offset[p] = off + 1
                        if not rows and hwms[p] > next_offset[p]:
                            # nothing visible below the HWM read before the
                            # read: every offset up to it was aborted
                            skipped_gaps.append((p, next_offset[p], hwms[p]))
                            next_offset[p] = hwms[p]
                    if final and all(next_offset[p] >= hwms[p] for p in range(PARTITIONS)):
                        return
        except Exception as e:
            failures.append(("reader", e))
            stop.set()

    def hwm_monitor():
        last = {p: 0 for p in range(PARTITIONS)}
        try:
            with server.connect() as c:
                while not stop.is_set() and not writers_done.is_set():
                    for p, hwm in c.execute(
                            "SELECT partition, high_watermark FROM streamlog.partitions "
                            "WHERE topic = %s", (topic,)).fetchall():
                        if hwm < last[p]:
                            raise AssertionError(
                                f"high watermark of partition {p} went from {last[p]} to {hwm}")
                        last[p] = hwm
        except Exception as e:
            failures.append(("monitor", e))
            stop.set()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    reader_thread = threading.Thread(target=reader)
    monitor_thread = threading.Thread(target=hwm_monitor)
    for t in threads + [reader_thread, monitor_thread]:
        t.start()
    deadline = time.monotonic() + 60
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    writers_done.set()
    reader_thread.join(max(0.1, deadline - time.monotonic()))
    monitor_thread.join(5)
    stop.set()
    assert not any(t.is_alive() for t in threads + [reader_thread]), "threads did not finish"
    assert not failures, failures

    all_committed = [v for vals in committed for v in vals]
    assert len(all_committed) > 500 and rolled_back
    seen_values = [v for p in range(PARTITIONS) for _, v in seen[p]]
    assert len(seen_values) == len(set(seen_values)), "a record was read twice"
    missing = set(all_committed) - set(seen_values)
    assert not missing, f"{len(missing)} committed records never read, e.g. {sorted(missing)[:5]}"
    from_rollbacks = set(seen_values) & rolled_back
    assert not from_rollbacks, f"records of rolled-back transactions: {sorted(from_rollbacks)[:5]}"
    assert len(seen_values) == len(all_committed)

    for p in range(PARTITIONS):
        offsets = [off for off, _ in seen[p]]
        assert offsets == sorted(set(offsets)), f"offsets not increasing on partition {p}"
        # a full read afterwards finds nothing the live reader had skipped
        assert read(conn, topic, p) == seen[p]
        assert hwm_history[p] == sorted(hwm_history[p]), f"HWM of partition {p} went down"
        # each writer's records appear in its commit order
        order = {}
        for _, v in seen[p]:
            w, t, r = (int(x[1:]) for x in v.split(":"))
            order.setdefault(w, []).append((t, r))
        for w, keys in order.items():
            assert keys == sorted(keys), f"writer {w} out of order on partition {p}"
    # the transactions never failed after their offsets were taken, so no
    # offset was left unused
    assert skipped_gaps == []
    conn.execute("SELECT streamlog.drop_topic(%s)", (topic,))


# -- P4: an idle transaction holds nobody up ------------------------------------------

def test_idle_transaction_does_not_block_other_producers(conn, topic, open_conns):
    idle = open_conns(autocommit=False)
    idle.execute("SELECT streamlog.produce(%s, NULL, 'idle ' || g, partition => 0) "
                 "FROM generate_series(1, 3) g", (topic,))
    [(state_pid,)] = idle.execute("SELECT pg_backend_pid()").fetchall()

    other = open_conns()
    other.execute(NO_WAIT_GUARD)
    # two commits in a row while the first transaction stays open
    produce(other, topic, "b1")
    produce(other, topic, "b2")
    [(state,)] = conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s",
                              (state_pid,)).fetchall()
    assert state == "idle in transaction"

    reader = open_conns()
    reader.execute(NO_WAIT_GUARD)
    assert read(reader, topic, 0) == [(0, "b1"), (1, "b2")]
    assert high_watermark(reader, topic, 0) == 2

    idle.commit()
    assert read(reader, topic, 0) == [(0, "b1"), (1, "b2"), (2, "idle 1"),
                                      (3, "idle 2"), (4, "idle 3")]


# -- placement and batching ---------------------------------------------------------------

def kafka_murmur2(data):
    """org.apache.kafka.common.utils.Utils.murmur2, as a signed 32-bit int."""
    m = 0x5BD1E995
    mask = 0xFFFFFFFF
    h = (0x9747B28C ^ len(data)) & mask
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail = data[4 * n4:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def test_kafka_murmur2_reference():
    # the values of Kafka's own UtilsTest.testMurmur2
    assert kafka_murmur2(b"21") == -973932308
    assert kafka_murmur2(b"foobar") == -790332482
    assert kafka_murmur2(b"a-little-bit-long-string") == -985981536
    assert kafka_murmur2(b"a-little-bit-longer-string") == -1486304829
    assert kafka_murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert kafka_murmur2(b"abc") == 479470107


def test_keyed_records_go_to_partition_for(conn, unique_name):
    topic = unique_name("outbox-keys")
    create_topic(conn, topic, 6)
    keys = [f"customer-{i}" for i in range(100)]
    returned = {}
    with conn.transaction():
        for k in keys:
            [(p,)] = conn.execute("SELECT streamlog.produce(%s, %s::text, %s::text)",
                                  (topic, k, f"value of {k}")).fetchall()
            returned[k] = p
    expected = {}
    for k in keys:
        [(p,)] = conn.execute("SELECT streamlog.partition_for(%s, %s::text)",
                              (topic, k)).fetchall()
        expected[k] = p
        # the Java client's default partitioner: toPositive(murmur2(key)) % n
        assert p == (kafka_murmur2(k.encode()) & 0x7FFFFFFF) % 6, k
    assert returned == expected
    assert len(set(expected.values())) == 6

    stored = {}
    for p in range(6):
        for key, value in conn.execute(
                "SELECT convert_from(key, 'UTF8'), convert_from(value, 'UTF8') "
                "FROM streamlog.read(%s, %s)", (topic, p)).fetchall():
            assert value == f"value of {key}"
            assert key not in stored
            stored[key] = p
    assert stored == expected
    conn.execute("SELECT streamlog.drop_topic(%s)", (topic,))


def test_a_transaction_past_produce_memory_waits_in_a_temporary_file(server, unique_name):
    """Past streamlog.produce_memory a transaction's batches go to a
    temporary file until commit; savepoints still discard exactly their
    records, and everything committed reads back in order."""
    topic = unique_name("outbox-spill")
    conn = server.connect(autocommit=False)
    create_topic(conn, topic, 2)
    conn.commit()
    conn.execute("SET streamlog.produce_memory = '1MB'")
    conn.execute("SET log_temp_files = 0")
    log_offset = len(server.log_text())
    # about 6 MB per partition, in batches of 64 kB
    conn.execute("SET streamlog.batch_bytes = '64kB'")
    conn.execute("SELECT count(streamlog.produce(%s, NULL, g || ':' || repeat(md5(g::text), 16), "
                 "partition => g %% 2)) FROM generate_series(1, 20000) g", (topic,))
    conn.execute("SAVEPOINT doomed")
    conn.execute("SELECT count(streamlog.produce(%s, NULL, 'doomed ' || g, partition => g %% 2)) "
                 "FROM generate_series(1, 5000) g", (topic,))
    conn.execute("ROLLBACK TO SAVEPOINT doomed")
    conn.execute("SELECT count(streamlog.produce(%s, NULL, 'after ' || g, partition => g %% 2)) "
                 "FROM generate_series(1, 10) g", (topic,))
    assert high_watermark(conn, topic, 0) == 0
    conn.commit()

    temp_files = [line for line in server.log_text()[log_offset:].splitlines()
                  if "temporary file:" in line]
    assert temp_files, "no temporary file was written"
    assert sum(int(line.rsplit("size ", 1)[1]) for line in temp_files) > 8_000_000
    for p in (0, 1):
        rows = conn.execute('SELECT "offset", convert_from(value, \'UTF8\') '
                            "FROM streamlog.read(%s, %s, 0, 20000)", (topic, p)).fetchall()
        expected = [f"{g}:" + hashlib.md5(str(g).encode()).hexdigest() * 16
                    for g in range(1, 20001) if g % 2 == p]
        expected += [f"after {g}" for g in range(1, 11) if g % 2 == p]
        assert [off for off, _ in rows] == list(range(len(expected)))
        assert [v for _, v in rows] == expected
    conn.close()


def test_set_based_produce_is_stored_in_few_batches(conn, unique_name):
    topic = unique_name("outbox-bulk")
    create_topic(conn, topic, 1)
    n = 200_000
    conn.execute("SELECT count(streamlog.produce(%s, NULL, 'r' || g, partition => 0)) "
                 "FROM generate_series(1, %s) g", (topic, n))

    # A batch is one row, or page-sized pieces 0..k of it when it is larger
    stored_batches = 0
    stored_records = 0
    pieces = 0
    for table in segment_tables(conn, topic):
        [(batches, records, rows, whole)] = conn.execute(
            sql.SQL("SELECT count(*) FILTER (WHERE chunk = 0), "
                    "coalesce(sum(record_count) FILTER (WHERE chunk = 0), 0), count(*), "
                    "bool_and(n = max_chunk + 1) "
                    "FROM (SELECT *, count(*) OVER w AS n, max(chunk) OVER w AS max_chunk "
                    "      FROM {} WINDOW w AS (PARTITION BY last_offset)) s").format(
                sql.SQL(table))).fetchall()
        stored_batches += batches
        stored_records += records
        pieces += rows - batches
        assert whole, f"{table}: a batch's pieces are not numbered 0..k"
    assert stored_records == n
    assert 0 < stored_batches < n // 100
    assert pieces > 0, "batches of streamlog.batch_bytes are larger than a page"

    rows = conn.execute('SELECT "offset", convert_from(value, \'UTF8\') '
                        "FROM streamlog.read(%s, 0, 0, %s)", (topic, n + 10)).fetchall()
    assert len(rows) == n
    assert [off for off, _ in rows] == list(range(n))
    assert [v for _, v in rows] == [f"r{g}" for g in range(1, n + 1)]
    assert high_watermark(conn, topic, 0) == n
    conn.execute("SELECT streamlog.drop_topic(%s)", (topic,))
