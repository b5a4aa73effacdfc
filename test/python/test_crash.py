"""Durability (P5): what a commit acknowledged survives kill -9 and restart,
what was not committed leaves nothing, and offsets go on where they were."""

import os
import random
import signal
import threading

import psycopg
import pytest
from pgserver import NO_WAIT_GUARD, wait_until



def read_full(conn, topic, partition, from_offset=0):
    """Every column of the records of a partition, values as bytes."""
    return [
        (off, ts, None if k is None else bytes(k), None if v is None else bytes(v), h)
        for off, ts, k, v, h in conn.execute(
            'SELECT "offset", ts, key, value, headers::text '
            "FROM streamlog.read(%s, %s, %s, 10000000)",
            (topic, partition, from_offset)).fetchall()
    ]


def read_values(conn, topic, partition, from_offset=0):
    return [(off, bytes(v).decode()) for off, _, _, v, _ in
            read_full(conn, topic, partition, from_offset)]


def high_watermarks(conn, topic):
    return dict(conn.execute(
        "SELECT partition, high_watermark FROM streamlog.partitions WHERE topic = %s "
        "ORDER BY partition", (topic,)).fetchall())


def produce_one(conn, topic, partition, value):
    conn.execute("SELECT streamlog.produce(%s, NULL, %s::text, partition => %s)",
                 (topic, value, partition))


def try_connect(srv):
    try:
        with srv.connect(connect_timeout=2) as c:
            return c.execute("SELECT NOT pg_is_in_recovery()").fetchone()[0]
    except psycopg.OperationalError:
        return False


def test_committed_records_survive_kill9(make_server, unique_name):
    srv = make_server()
    topic = unique_name("crash")
    conn = srv.connect()
    assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    conn.execute("SELECT streamlog.create_topic(%s, 3)", (topic,))

    rng = random.Random(5)
    for t in range(30):
        with conn.transaction():
            for i in range(rng.randint(1, 4)):
                conn.execute(
                    "SELECT streamlog.produce(%s, %s::text, %s::text, "
                    "jsonb_build_object('txn', %s::text, 'i', %s::text), partition => %s)",
                    (topic, f"k{t}", f"small {t}/{i}", t, i, rng.randrange(3)))
    # a transaction large enough to be written as many batches
    conn.execute("SELECT count(streamlog.produce(%s, 'big'::text, "
                 "lpad(g::text, 200, 'x'), partition => 1)) "
                 "FROM generate_series(1, 30000) g", (topic,))
    conn.execute("SELECT streamlog.produce(%s, NULL, NULL::bytea, partition => 2)", (topic,))

    before = {p: read_full(conn, topic, p) for p in range(3)}
    hwm_before = high_watermarks(conn, topic)
    assert sum(len(r) for r in before.values()) > 30000
    assert hwm_before == {p: len(before[p]) for p in range(3)}
    [(table,)] = conn.execute(
        "SELECT s.relid::regclass::text FROM streamlog.segment s "
        "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s AND s.partition = 1 "
        "ORDER BY seq DESC LIMIT 1", (topic,)).fetchall()
    [(batches,)] = conn.execute(
        f"SELECT count(*) FROM {table} WHERE record_count > 1000").fetchall()
    assert batches >= 3, "the big transaction was not split into batches"
    conn.close()

    srv.kill9()
    srv.start()

    conn = srv.connect()
    after = {p: read_full(conn, topic, p) for p in range(3)}
    for p in range(3):
        assert after[p] == before[p], f"partition {p} differs after the crash"
    assert high_watermarks(conn, topic) == hwm_before

    # new records continue right at the old high watermark
    for p in range(3):
        produce_one(conn, topic, p, f"after restart {p}")
    for p in range(3):
        assert read_values(conn, topic, p, hwm_before[p]) == \
            [(hwm_before[p], f"after restart {p}")]
    assert high_watermarks(conn, topic) == {p: hwm_before[p] + 1 for p in range(3)}
    conn.close()


def test_kill9_while_writers_commit(make_server, unique_name):
    """Each transaction writes k records tagged with its id, spread over
    partitions; the postmaster is killed while they commit."""
    srv = make_server()
    topic = unique_name("crash-conc")
    partitions = 4
    srv.sql("SELECT streamlog.create_topic(%s, %s)", (topic, partitions))

    acked = {}          # txn id -> k, for every COMMIT that returned
    acked_lock = threading.Lock()
    unexpected = []
    stop = threading.Event()

    def writer(w):
        rng = random.Random(w)
        n = 0
        try:
            c = srv.connect(autocommit=False)
        except psycopg.OperationalError as e:
            unexpected.append(e)
            return
        try:
            while not stop.is_set():
                txn = f"{w}.{n}"
                n += 1
                # one writer makes big transactions, the others small ones
                k = rng.randint(500, 3000) if w == 0 else rng.randint(1, 8)
                vals = [f"{txn}:{i}:{k}" for i in range(k)]
                parts = [rng.randrange(partitions) for _ in range(k)]
                c.execute("SELECT count(streamlog.produce(%s, NULL, v, partition => p)) "
                          "FROM unnest(%s::text[], %s::int[]) AS u(v, p)",
                          (topic, vals, parts))
                c.commit()
                with acked_lock:
                    acked[txn] = k
        except psycopg.OperationalError:
            pass            # the server went away: this transaction is in doubt
        except Exception as e:
            unexpected.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    try:
        def enough():
            with acked_lock:
                return len(acked) >= 300 and any(k >= 500 for k in acked.values())
        wait_until(enough, 20, "writers to commit")
        srv.kill9()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert not unexpected, unexpected
    acked_at_kill = dict(acked)

    srv.start()
    conn = srv.connect()
    found = {}
    hwm = high_watermarks(conn, topic)
    for p in range(partitions):
        rows = read_values(conn, topic, p)
        offsets = [off for off, _ in rows]
        assert offsets == sorted(set(offsets)), f"offsets of partition {p} not increasing"
        assert not rows or hwm[p] == offsets[-1] + 1
        for _, v in rows:
            txn, i, k = v.split(":")
            found.setdefault(txn, {"k": int(k), "i": []})["i"].append(int(i))

    partial = {t: f for t, f in found.items() if sorted(f["i"]) != list(range(f["k"]))}
    assert not partial, f"transactions partly present: {list(partial)[:5]}"
    lost = [t for t in acked_at_kill if t not in found]
    assert not lost, f"{len(lost)} acknowledged transactions lost, e.g. {lost[:5]}"
    assert len(found) >= len(acked_at_kill)

    for p in range(partitions):
        produce_one(conn, topic, p, "after restart")
        assert read_values(conn, topic, p, hwm[p]) == [(hwm[p], "after restart")]
    conn.close()


def test_kill9_while_segments_roll(make_server, unique_name):
    """The cleaner rolls segments every pass while a writer commits; after
    kill -9 every acknowledged record is there, in one offset order that
    the segments' ranges agree with, and appends go on after it."""
    srv = make_server(conf={"streamlog.retention_check_interval": "100ms"})
    topic = unique_name("crash-roll")
    srv.sql("SELECT streamlog.create_topic(%s, 1, %s::jsonb)",
            (topic, '{"retention.ms": -1, "segment.ms": 1}'))
    acked = []
    stop = threading.Event()
    unexpected = []

    def writer(w):
        try:
            c = srv.connect(autocommit=False)
        except psycopg.OperationalError as e:
            unexpected.append(e)
            return
        n = 0
        try:
            while not stop.is_set():
                txn = f"{w}.{n}"
                vals = [f"{txn}:{i}" for i in range(4)]
                c.execute("SELECT streamlog.produce(%s, NULL, v, partition => 0) "
                          "FROM unnest(%s::text[]) WITH ORDINALITY AS u(v, o) ORDER BY o",
                          (topic, vals))
                c.commit()
                acked.append(txn)
                n += 1
        except psycopg.OperationalError:
            pass
        except Exception as e:
            unexpected.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    try:
        with srv.connect() as conn:
            wait_until(lambda: conn.execute(
                "SELECT segments FROM streamlog.partitions WHERE topic = %s",
                (topic,)).fetchone()[0] >= 6, 15, "segments to roll")
        srv.kill9()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not unexpected, unexpected
    srv.start()

    conn = srv.connect()
    rows = read_values(conn, topic, 0)
    offsets = [off for off, _ in rows]
    assert offsets == sorted(set(offsets))
    txns = {}
    for _, v in rows:
        txn, i = v.split(":")
        txns.setdefault(txn, []).append(int(i))
    assert all(recs == [0, 1, 2, 3] for recs in txns.values()), "a transaction is partial"
    lost = [txn for txn in acked if txn not in txns]
    assert not lost, f"acknowledged transactions lost: {lost[:5]}"
    hwm = high_watermarks(conn, topic)[0]
    assert hwm == offsets[-1] + 1

    segs = conn.execute(
        "SELECT s.base_offset, s.relid::regclass::text FROM streamlog.segment s "
        "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s ORDER BY s.seq",
        (topic,)).fetchall()
    for i, (base, name) in enumerate(segs):
        later = [b for b, _ in segs[i + 1:] if b is not None]
        for first, last in conn.execute(
                f"SELECT base_offset, last_offset FROM {name} "
                "WHERE last_offset < %s", (hwm,)).fetchall():
            if base is not None:
                assert first >= base, (name, base, first)
            if later:
                assert last < later[0], (name, later[0], last)

    # new records go after everything, and the cleaner goes on rolling
    segments_now = len(segs)
    for g in range(3):
        produce_one(conn, topic, 0, f"after {g}")
        wait_until(lambda: conn.execute(
            "SELECT count(*) FROM streamlog.segment s JOIN streamlog.topic t USING (topic_id) "
            "WHERE t.name = %s", (topic,)).fetchone()[0] > segments_now, 15,
            "the cleaner to roll after the restart")
        segments_now += 1
    assert read_values(conn, topic, 0, hwm) == [(hwm + g, f"after {g}") for g in range(3)]
    assert read_values(conn, topic, 0) == rows + [(hwm + g, f"after {g}") for g in range(3)]
    conn.close()


def _wait_recovered(srv, old_pid_alive):
    wait_until(lambda: not old_pid_alive(), 20, "the killed backend to be gone")
    wait_until(lambda: "all server processes terminated; reinitializing" in srv.log_text(),
               20, "the postmaster to reinitialize")
    wait_until(lambda: try_connect(srv), 30, "the server to accept connections again")


def _pid_alive(pid):
    def alive():
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except OSError:  # gone between open() and read(): ESRCH
            return False
    return alive


def test_sigkill_of_backend_with_buffered_records(make_server, unique_name):
    srv = make_server()
    topic = unique_name("crash-backend")
    conn = srv.connect()
    conn.execute("SELECT streamlog.create_topic(%s, 2)", (topic,))
    conn.execute("SELECT streamlog.produce(%s, NULL, 'committed ' || g, partition => 0) "
                 "FROM generate_series(1, 5) g", (topic,))
    conn.close()

    victim = srv.connect(autocommit=False)
    [(pid,)] = victim.execute("SELECT pg_backend_pid()").fetchall()
    victim.execute("SELECT streamlog.produce(%s, NULL, 'buffered ' || g, partition => p) "
                   "FROM generate_series(1, 1000) g, generate_series(0, 1) p", (topic,))
    os.kill(pid, signal.SIGKILL)
    _wait_recovered(srv, _pid_alive(pid))
    with pytest.raises(psycopg.OperationalError):
        victim.commit()
    victim.close()

    conn = srv.connect()
    assert high_watermarks(conn, topic) == {0: 5, 1: 0}
    assert [v for _, v in read_values(conn, topic, 0)] == [f"committed {g}" for g in range(1, 6)]
    assert read_values(conn, topic, 1) == []
    conn.execute(NO_WAIT_GUARD)
    produce_one(conn, topic, 0, "after")
    produce_one(conn, topic, 1, "after")
    assert read_values(conn, topic, 0, 5) == [(5, "after")]
    assert read_values(conn, topic, 1) == [(0, "after")]
    conn.close()


def test_sigkill_of_backend_in_the_middle_of_its_commit(make_server, unique_name):
    """The backend has its offsets and has written partition 0 when it is
    killed, waiting for a lock to append to partition 1."""
    srv = make_server()
    topic = unique_name("crash-commit")
    conn = srv.connect()
    conn.execute("SELECT streamlog.create_topic(%s, 2)", (topic,))
    produce_one(conn, topic, 0, "committed")
    [(table,)] = conn.execute(
        "SELECT s.relid::regclass::text FROM streamlog.segment s "
        "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s AND s.partition = 1",
        (topic,)).fetchall()

    blocker = srv.connect(autocommit=False)
    blocker.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
    victim = srv.connect(autocommit=False)
    [(pid,)] = victim.execute("SELECT pg_backend_pid()").fetchall()
    victim.execute("SELECT streamlog.produce(%s, NULL, 'doomed ' || p, partition => p) "
                   "FROM generate_series(0, 1) p", (topic,))
    commit_error = []

    def commit():
        try:
            victim.commit()
        except Exception as e:
            commit_error.append(e)

    t = threading.Thread(target=commit)
    t.start()
    wait_until(lambda: conn.execute(
        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
        (pid,)).fetchone()[0], 10, "the commit to wait for the lock")
    conn.close()
    os.kill(pid, signal.SIGKILL)
    t.join(30)
    assert not t.is_alive()
    assert commit_error and isinstance(commit_error[0], psycopg.OperationalError)
    _wait_recovered(srv, _pid_alive(pid))
    for c in (victim, blocker):
        c.close()

    conn = srv.connect()
    conn.execute(NO_WAIT_GUARD)
    assert high_watermarks(conn, topic) == {0: 1, 1: 0}
    assert read_values(conn, topic, 0) == [(0, "committed")]
    assert read_values(conn, topic, 1) == []
    produce_one(conn, topic, 0, "after")
    produce_one(conn, topic, 1, "after")
    assert read_values(conn, topic, 0) == [(0, "committed"), (1, "after")]
    assert read_values(conn, topic, 1) == [(0, "after")]
    conn.close()
