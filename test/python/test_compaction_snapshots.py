"""SQL readers whose transaction began before a cleaning pass (issue 11, P2
for readers that hold a snapshot): a REPEATABLE READ transaction that took
its snapshot before the pass, and a cursor over history() opened before
it, read after the pass swapped the segments (and, for the first, after
the replaced tables were dropped).  They must get every record that
existed when their snapshot was taken and survives, each at its offset and
unchanged, and no error; the replaced tables go once the readers are gone."""

from compaction_model import (
    CONF, LogModel, clean, compacted_config, create_topic, high_watermarks, history,
    make_rng, now_ms, random_records, sql_produce, to_row, HISTORY_QUERY, READ_QUERY,
    wait_all_rolled, wait_cleaned_to)
from pgserver import NO_WAIT_GUARD, wait_until


def segment_relids(conn, topic):
    return [r[0] for r in conn.execute(
        "SELECT g.relid::oid FROM streamlog.segment g JOIN streamlog.topic t USING (topic_id) "
        " WHERE t.name = %s", (topic,)).fetchall()]


def tables_left(conn, relids):
    return [r[0] for r in conn.execute(
        "SELECT oid FROM pg_class WHERE oid = ANY(%s::oid[])", (relids,)).fetchall()]


def setup_topic(srv, unique_name, name):
    conn = srv.connect()
    rng = make_rng()
    topic = unique_name(name)
    create_topic(conn, topic, 1, compacted_config(delete_retention_ms=0))
    model = LogModel()
    keys = [f"k{i}" for i in range(20)]
    recs = random_records(rng, keys, 300, 0.1, "first", now_ms())
    sql_produce(conn, topic, recs)
    model.produce(recs)
    wait_all_rolled(conn, topic)
    wait_cleaned_to(conn, topic, high_watermarks(conn, topic))
    rows = history(conn, topic)
    model.check(rows, "the log before the readers")
    return conn, rng, keys, topic, model, rows


def next_round(conn, rng, keys, topic, model):
    """More updates of the same keys, rolled and cleaned by a forced pass"""
    recs = random_records(rng, keys, 300, 0.1, "second", now_ms())
    sql_produce(conn, topic, recs)
    model.produce(recs)
    wait_all_rolled(conn, topic)
    clean(conn, topic)
    rows = history(conn, topic)
    model.check(rows, "the log after the pass")
    return rows


def check_reader(got, before, after, what):
    """got: what the reader read; before: the log when its snapshot was
    taken; after: the log now.  Every record of `before` that is still in
    `after` must be in `got`, and everything in `got` is what the log held
    at that offset."""
    offs = [r.offset for r in got]
    assert offs == sorted(set(offs)), f"{what}: offsets not strictly increasing"
    known = {r.offset: r.rec for r in before + after}
    for r in got:
        assert r.offset in known and known[r.offset] == r.rec, \
            f"{what}: offset {r.offset} holds {r.rec}, the log held {known.get(r.offset)}"
    surviving = {r.offset for r in before} & {r.offset for r in after}
    missing = sorted(surviving - set(offs))
    assert not missing, (f"{what} skipped {len(missing)} records that existed before its "
                         f"snapshot and survive: offsets {missing[:10]}")


def test_repeatable_read_reader_after_the_pass_and_the_drop(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn, rng, keys, topic, model, before = setup_topic(srv, unique_name, "rr-reader")
    old = segment_relids(conn, topic)

    reader = srv.connect(autocommit=False)
    reader.execute(NO_WAIT_GUARD)
    reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    reader.execute("SELECT count(*) FROM streamlog.topics")    # the snapshot is taken
    after = next_round(conn, rng, keys, topic, model)
    wait_until(lambda: not tables_left(conn, old), 60,
               "the cleaner to drop the segment tables the pass replaced")

    got = [to_row(*r) for r in reader.execute(READ_QUERY, (topic, 0, 0, 100000)).fetchall()]
    check_reader(got, before, after, "read() in a REPEATABLE READ transaction")
    got = [to_row(*r) for r in reader.execute(HISTORY_QUERY, (topic,)).fetchall()]
    check_reader(got, before, after, "history() in a REPEATABLE READ transaction")
    reader.rollback()
    reader.close()
    conn.close()


def test_cursor_over_history_across_a_pass(make_server, unique_name):
    srv = make_server(conf=CONF)
    conn, rng, keys, topic, model, before = setup_topic(srv, unique_name, "cursor-reader")
    old = segment_relids(conn, topic)

    reader = srv.connect(autocommit=False)
    reader.execute(NO_WAIT_GUARD)
    cur = reader.cursor(name="history_cursor")
    cur.execute(HISTORY_QUERY, (topic,))
    got = [to_row(*r) for r in cur.fetchmany(5)]
    assert len(got) == 5
    after = next_round(conn, rng, keys, topic, model)
    got += [to_row(*r) for r in cur.fetchall()]
    cur.close()
    reader.commit()
    check_reader(got, before, after, "a cursor over history() opened before the pass")
    reader.close()

    # with the reader gone, the replaced tables go
    wait_until(lambda: not tables_left(conn, old), 60,
               "the cleaner to drop the segment tables the pass replaced")
    model.check(history(conn, topic), "the log at the end")
    conn.close()


def test_drop_topic_takes_the_replaced_tables_a_reader_holds(make_server, unique_name):
    """A topic dropped while a reader still holds segment tables a pass
    replaced leaves no table behind once the reader is gone.  (A finished
    history() scan lets go of its tables at once, even in an open
    transaction: the reader here holds locks on them, as a running scan
    does.)"""
    import threading
    srv = make_server(conf=CONF)
    conn, rng, keys, topic, model, before = setup_topic(srv, unique_name, "drop-retired")
    [(topic_id,)] = conn.execute("SELECT topic_id FROM streamlog.topic WHERE name = %s",
                                 (topic,)).fetchall()
    # the reader holds the segment tables as a scan does
    reader = srv.connect(autocommit=False)
    for relid in segment_relids(conn, topic):
        name = reader.execute("SELECT %s::oid::regclass::text", (relid,)).fetchone()[0]
        reader.execute(f"LOCK TABLE {name} IN ACCESS SHARE MODE")
    next_round(conn, rng, keys, topic, model)

    dropped = {}

    def drop():
        try:
            with srv.connect() as c:
                c.execute("SET statement_timeout = '60s'")
                c.execute("SELECT streamlog.drop_topic(%s)", (topic,))
            dropped["ok"] = True
        except Exception as e:  # reported below
            dropped["error"] = e
    t = threading.Thread(target=drop)
    t.start()
    t.join(1)
    reader.commit()
    reader.close()
    t.join(90)
    assert dropped.get("ok"), dropped

    def leftovers():
        return [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            " WHERE n.nspname = 'streamlog_data' AND c.relname LIKE %s",
            (f"t{topic_id}\\_p%",)).fetchall()]
    wait_until(lambda: not leftovers(), 30, "the dropped topic's tables to go")
    conn.close()


def test_replaced_tables_held_at_a_crash_go_after_the_restart(make_server, unique_name):
    """Tables a pass replaced while a reader held them (here: a transaction
    holding a lock on them, as a scan does), when the server stops before
    the reader lets go, are dropped after the restart."""
    srv = make_server(conf=CONF)
    conn, rng, keys, topic, model, before = setup_topic(srv, unique_name, "crash-retired")
    old = segment_relids(conn, topic)
    reader = srv.connect(autocommit=False)
    for relid in old:
        name = reader.execute("SELECT %s::oid::regclass::text", (relid,)).fetchone()[0]
        reader.execute(f"LOCK TABLE {name} IN ACCESS SHARE MODE")
    next_round(conn, rng, keys, topic, model)
    assert tables_left(conn, old), "the tables went while the reader held them"
    conn.close()
    srv.stop("immediate")
    srv.start()
    reader.close()
    conn = srv.connect()
    wait_until(lambda: not tables_left(conn, old), 60,
               "the cleaner to drop the tables replaced before the crash")
    model.check(history(conn, topic), "the log after the restart")
    conn.close()
