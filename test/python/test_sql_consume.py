"""SQL consumer groups with real concurrent sessions: streamlog.consume()
hands each record to exactly one committed transaction of a group, sessions
of one group never wait on each other, a rollback hands the records out
again, a waiting consumer wakes when records are committed, and committed
offsets survive a crash."""

import random
import threading
import time

import psycopg
import pytest
from psycopg import errors

from pgserver import NO_WAIT_GUARD, wait_until


def consume(conn, group, topic, max_records=100, timeout="0"):
    """[(partition, offset, value as text)] that consume() returned."""
    rows = conn.execute(
        'SELECT partition, "offset", convert_from(value, \'UTF8\') '
        "FROM streamlog.consume(%s, %s, %s, %s::interval)",
        (group, topic, max_records, timeout)).fetchall()
    return [tuple(r) for r in rows]


def committed_offsets(conn, group, topic):
    return dict(conn.execute(
        "SELECT partition, committed_offset FROM streamlog.consumer_lag "
        "WHERE group_id = %s AND topic = %s ORDER BY partition", (group, topic)).fetchall())


def backend_pid(conn):
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


@pytest.fixture
def topic_factory(conn, unique_name):
    made = []

    def factory(partitions, prefix="consume"):
        name = unique_name(prefix)
        conn.execute("SELECT streamlog.create_topic(%s, %s)", (name, partitions))
        made.append(name)
        return name

    yield factory
    for name in made:
        conn.execute("SELECT streamlog.drop_topic(%s, true)", (name,))


# -- (a) concurrent consumers of one group: exactly once, never waiting --------

def test_concurrent_consumers_process_each_record_once(server, conn, open_conns,
                                                       topic_factory, unique_name):
    topic = topic_factory(6)
    group = unique_name("group")
    table = unique_name("processed").replace("-", "_").replace(".", "_")
    conn.execute(f'CREATE TABLE {table} (partition int, "offset" bigint, value text, '
                 "consumer int)")
    # records before the consumers start, and more while they run
    conn.execute("SELECT streamlog.produce(%s, NULL, 'pre-' || g, partition => g %% 6) "
                 "FROM generate_series(0, 2999) g", (topic,))
    produced = {f"pre-{g}" for g in range(3000)}
    consumers = 4
    stop = threading.Event()
    failures = []
    lock_waits = []
    batches = {c: 0 for c in range(consumers)}
    overlap_seen = []
    pids = []

    def producer():
        rng = random.Random(1)
        c = server.connect(autocommit=False)
        try:
            n = 0
            for t in range(200):
                for _ in range(rng.randint(1, 10)):
                    c.execute("SELECT streamlog.produce(%s, NULL, %s::text, partition => %s)",
                              (topic, f"live-{n}", rng.randrange(6)))
                    produced.add(f"live-{n}")
                    n += 1
                c.commit()
                time.sleep(rng.random() * 0.005)
        except Exception as e:  # reported by the main thread
            failures.append(("producer", e))
        finally:
            c.close()

    def consumer(i, c):
        rng = random.Random(100 + i)
        try:
            while not stop.is_set():
                cur = c.execute(
                    f'INSERT INTO {table} SELECT partition, "offset", '
                    "convert_from(value, 'UTF8'), %s FROM streamlog.consume(%s, %s, %s)",
                    (i, group, topic, rng.choice([1, 10, 50, 200])))
                if cur.rowcount > 0:
                    batches[i] += 1
                    # work inside the transaction, so that transactions overlap
                    time.sleep(rng.random() * 0.01)
                c.commit()
                if cur.rowcount == 0:
                    time.sleep(0.005)
        except Exception as e:
            failures.append((f"consumer {i}", e))

    def monitor(c):
        # Heavyweight lock waits of the consumers, but for extending the
        # test's own table (held for a page write, not by a transaction)
        while not stop.is_set():
            waits = c.execute(
                "SELECT pid, wait_event_type, wait_event, query FROM pg_stat_activity "
                "WHERE pid = ANY (%s) AND wait_event_type = 'Lock' "
                "AND wait_event <> 'extend'", (pids,)).fetchall()
            waits += c.execute(
                "SELECT pid, locktype, mode, NULL FROM pg_locks "
                "WHERE pid = ANY (%s) AND NOT granted AND locktype <> 'extend'",
                (pids,)).fetchall()
            lock_waits.extend(waits)
            [(in_xact,)] = c.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY (%s) "
                "AND xact_start IS NOT NULL AND backend_xid IS NOT NULL", (pids,)).fetchall()
            if in_xact >= 2:
                overlap_seen.append(in_xact)
            time.sleep(0.002)

    consumer_conns = []
    for i in range(consumers):
        c = open_conns(autocommit=False)
        # a consumer blocked behind another would hang: see NO_WAIT_GUARD
        c.execute(NO_WAIT_GUARD)
        c.commit()
        pids.append(backend_pid(c))
        c.commit()
        consumer_conns.append(c)
    monitor_conn = open_conns()

    threads = [threading.Thread(target=consumer, args=(i, consumer_conns[i]))
               for i in range(consumers)]
    threads.append(threading.Thread(target=monitor, args=(monitor_conn,)))
    producer_thread = threading.Thread(target=producer)
    for t in threads:
        t.start()
    producer_thread.start()
    try:
        producer_thread.join(120)
        assert not failures, failures
        expected = len(produced)

        def all_processed():
            if failures:
                pytest.fail(f"failures: {failures}")
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] >= expected

        wait_until(all_processed, 120, "every record to be processed")
    finally:
        stop.set()
        for t in threads:
            t.join(30)

    assert not failures, failures
    [(count, distinct_offsets, distinct_values)] = conn.execute(
        f'SELECT count(*), count(DISTINCT (partition, "offset")), count(DISTINCT value) '
        f"FROM {table}").fetchall()
    assert count == expected
    assert distinct_offsets == expected
    assert distinct_values == expected
    values = {v for (v,) in conn.execute(f"SELECT value FROM {table}").fetchall()}
    assert values == produced
    # offsets of each partition are dense: nothing skipped
    for p, n, lo, hi in conn.execute(
            f'SELECT partition, count(*), min("offset"), max("offset") FROM {table} '
            "GROUP BY partition").fetchall():
        assert (lo, hi) == (0, n - 1), f"partition {p}"
    assert not lock_waits, f"a consumer waited on another session: {lock_waits[:5]}"
    assert sum(1 for n in batches.values() if n > 0) >= 2, batches
    assert overlap_seen, "the consumers' transactions never overlapped"
    # everything is consumed, and the views say so
    rows = conn.execute(
        "SELECT partition, committed_offset, high_watermark, lag FROM streamlog.consumer_lag "
        "WHERE group_id = %s AND topic = %s ORDER BY partition", (group, topic)).fetchall()
    assert [r[0] for r in rows] == list(range(6))
    assert all(lag == 0 and committed == hwm for _, committed, hwm, lag in rows), rows
    [(topics, partitions, total_lag)] = conn.execute(
        "SELECT topics, partitions, total_lag FROM streamlog.consumer_groups "
        "WHERE group_id = %s", (group,)).fetchall()
    assert (topics, partitions, total_lag) == ([topic], 6, 0)
    conn.execute(f"DROP TABLE {table}")


def test_consumers_of_one_group_get_disjoint_partitions(conn, open_conns, topic_factory,
                                                        unique_name):
    topic = topic_factory(4)
    group = unique_name("group")
    conn.execute("SELECT streamlog.produce(%s, NULL, 'r' || g, partition => g %% 4) "
                 "FROM generate_series(0, 39) g", (topic,))
    sessions = [open_conns(autocommit=False) for _ in range(4)]
    for s in sessions:
        s.execute(NO_WAIT_GUARD)
    # each asks for one partition's worth, in its own open transaction
    got = [consume(s, group, topic, 10) for s in sessions]
    partitions = [{p for p, _, _ in rows} for rows in got]
    assert all(len(ps) == 1 for ps in partitions), partitions
    assert set().union(*partitions) == {0, 1, 2, 3}
    # a fifth session finds every partition taken, and does not wait
    late = open_conns(autocommit=False)
    late.execute(NO_WAIT_GUARD)
    assert consume(late, group, topic, 100) == []
    late.rollback()
    for s in sessions:
        s.commit()
    assert consume(late, group, topic, 100) == []
    late.commit()
    assert committed_offsets(conn, group, topic) == {p: 10 for p in range(4)}


# -- (b) rollback: the records are handed out again ----------------------------

def test_rollback_redelivers_to_the_group(conn, open_conns, topic_factory, unique_name):
    topic = topic_factory(3)
    group = unique_name("group")
    conn.execute("SELECT streamlog.produce(%s, NULL, 'r' || g, partition => g %% 3) "
                 "FROM generate_series(0, 29) g", (topic,))
    a = open_conns(autocommit=False)
    b = open_conns(autocommit=False)
    for s in (a, b):
        s.execute(NO_WAIT_GUARD)

    got_a = consume(a, group, topic, 10)
    assert len(got_a) == 10 and len({p for p, _, _ in got_a}) == 1
    # while a holds its partition, b gets the others
    got_b = consume(b, group, topic, 100)
    assert len(got_b) == 20
    assert not {(p, o) for p, o, _ in got_a} & {(p, o) for p, o, _ in got_b}
    b.commit()
    a.rollback()

    # what a rolled back goes to the next consumer, the same records
    again = consume(b, group, topic, 100)
    assert sorted(again) == sorted(got_a)
    b.commit()
    assert consume(a, group, topic, 100) == []
    a.commit()

    # a rolled-back transaction's other work is gone too, and only it
    table = unique_name("work").replace("-", "_").replace(".", "_")
    conn.execute(f"CREATE TABLE {table} (value text)")
    conn.execute("SELECT streamlog.produce(%s, NULL, 'late' || g, partition => 0) "
                 "FROM generate_series(1, 3) g", (topic,))
    a.execute(f"INSERT INTO {table} SELECT convert_from(value, 'UTF8') "
              "FROM streamlog.consume(%s, %s)", (group, topic))
    a.rollback()
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    b.execute(f"INSERT INTO {table} SELECT convert_from(value, 'UTF8') "
              "FROM streamlog.consume(%s, %s)", (group, topic))
    b.commit()
    assert sorted(v for (v,) in conn.execute(f"SELECT value FROM {table}").fetchall()) == \
        ["late1", "late2", "late3"]
    conn.execute(f"DROP TABLE {table}")


# -- (c) waiting for records -----------------------------------------------------

def wait_for_wait_event(conn, pid):
    """Until backend pid waits in consume() (wait event type Extension)."""
    def waiting():
        row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                           (pid,)).fetchone()
        return row is not None and row[0] == "Extension"
    wait_until(waiting, 10, f"backend {pid} to wait")


def test_waiting_consumer_wakes_on_commit(conn, open_conns, topic_factory, unique_name):
    topic = topic_factory(3)
    group = unique_name("group")
    consumer = open_conns()
    pid = backend_pid(consumer)
    result = {}

    # The wait would end on its own only after 10 minutes, long after the
    # deadline below: returning in time, it was woken by the commit
    def run():
        result["rows"] = consume(consumer, group, topic, 10, "10 min")

    t = threading.Thread(target=run)
    t.start()
    wait_for_wait_event(conn, pid)

    producer = open_conns(autocommit=False)
    producer.execute("SELECT streamlog.produce(%s, NULL, 'wake up', partition => 2)", (topic,))
    time.sleep(0.3)
    assert "rows" not in result, "woken by an uncommitted record"
    producer.commit()
    t.join(60)
    assert not t.is_alive(), "the commit did not wake the waiting consumer"
    assert result["rows"] == [(2, 0, "wake up")]
    assert committed_offsets(conn, group, topic) == {2: 1}


def test_waiting_consumer_times_out_empty(conn, open_conns, topic_factory, unique_name):
    topic = topic_factory(2)
    other = topic_factory(1)
    group = unique_name("group")
    consumer = open_conns()
    pid = backend_pid(consumer)
    result = {}

    def run():
        result["rows"] = consume(consumer, group, topic, 10, "2 s")

    t = threading.Thread(target=run)
    t.start()
    wait_for_wait_event(conn, pid)
    # neither a rolled-back record nor another topic's records end the wait
    producer = open_conns(autocommit=False)
    producer.execute("SELECT streamlog.produce(%s, NULL, 'rolled back', partition => 0)",
                     (topic,))
    producer.rollback()
    conn.execute("SELECT streamlog.produce(%s, NULL, 'elsewhere')", (other,))
    # still waiting: neither ended the wait early
    row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                       (pid,)).fetchone()
    assert row is not None and row[0] == "Extension", "the wait ended early"
    # and its own timeout ends it, empty-handed
    t.join(60)
    assert not t.is_alive(), "the wait outlived its timeout"
    assert result["rows"] == []
    assert committed_offsets(conn, group, topic) == {}


def test_waiting_consumer_can_be_cancelled(conn, open_conns, topic_factory, unique_name):
    topic = topic_factory(1)
    group = unique_name("group")
    consumer = open_conns()
    consumer.execute("SET statement_timeout = '300ms'")
    # Left alone the wait would end empty after 10 minutes; the error says
    # the statement timeout ended it
    with pytest.raises(errors.QueryCanceled):
        consume(consumer, group, topic, 10, "10 min")
    consumer.execute("RESET statement_timeout")

    pid = backend_pid(consumer)
    outcome = {}

    def run():
        try:
            consume(consumer, group, topic, 10, "30 s")
            outcome["result"] = "returned"
        except errors.QueryCanceled:
            outcome["result"] = "cancelled"

    t = threading.Thread(target=run)
    t.start()
    wait_for_wait_event(conn, pid)
    conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
    t.join(60)
    assert outcome == {"result": "cancelled"}
    # the session goes on normally
    conn.execute("SELECT streamlog.produce(%s, NULL, 'after')", (topic,))
    assert consume(consumer, group, topic) == [(0, 0, "after")]


def test_waiting_consumer_leaves_partitions_to_others(conn, open_conns, topic_factory,
                                                      unique_name):
    """A consumer waiting on an empty topic claims nothing: another session
    of the group can take records that arrive meanwhile."""
    topic = topic_factory(2)
    group = unique_name("group")
    waiter = open_conns(autocommit=False)
    waiter_pid = backend_pid(waiter)
    waiter.commit()
    result = {}

    def run():
        result["rows"] = consume(waiter, group, topic, 10, "3 s")
        waiter.commit()

    t = threading.Thread(target=run)
    t.start()
    wait_for_wait_event(conn, waiter_pid)
    other = open_conns(autocommit=False)
    other.execute(NO_WAIT_GUARD)
    other.execute("SELECT streamlog.produce(%s, NULL, 'x', partition => 1)", (topic,))
    other.commit()
    # the waiter and this session race for it; exactly one gets it
    mine = consume(other, group, topic, 10)
    other.commit()
    t.join(10)
    assert sorted(mine + result["rows"]) == [(1, 0, "x")]


# -- (d) committed offsets survive a crash ----------------------------------------

def test_committed_offsets_survive_kill9(make_server, unique_name):
    srv = make_server()
    topic = unique_name("consume-crash")
    group = unique_name("group")
    conn = srv.connect()
    conn.execute("SELECT streamlog.create_topic(%s, 4)", (topic,))
    conn.execute("SELECT streamlog.produce(%s, NULL, 'r' || g, partition => g %% 4) "
                 "FROM generate_series(0, 199) g", (topic,))

    consumed = []
    worker = srv.connect(autocommit=False)
    for _ in range(5):
        consumed += consume(worker, group, topic, 20)
        worker.commit()
    assert len(consumed) == 100
    before = committed_offsets(conn, group, topic)
    assert sum(before.values()) == 100

    # one more transaction is still open when the server dies
    uncommitted = consume(worker, group, topic, 30)
    assert len(uncommitted) == 30
    srv.kill9()
    for c in (worker, conn):
        try:
            c.close()
        except psycopg.Error:
            pass
    srv.start()

    conn = srv.connect()
    assert committed_offsets(conn, group, topic) == before
    rest = consume(conn, group, topic, 1000)
    assert len(rest) == 100
    assert set(uncommitted) <= set(rest)
    assert sorted(consumed + rest) == sorted(
        (g % 4, g // 4, f"r{g}") for g in range(200))
    assert committed_offsets(conn, group, topic) == {p: 50 for p in range(4)}
    conn.close()
