"""read() in pages returns what one read() returns: the batch a page ends
in is kept for the next call (storage/batch_cache.c), which goes on where
the last one stopped, whatever the page size, the order of the calls, the
topic read in between or the compression of the batches."""

import random

import pytest


def produce(conn, topic, first, n):
    conn.execute("SELECT count(streamlog.produce(%s, 'k' || g, "
                 "convert_to(g || ':' || repeat(md5(g::text), 1 + g %% 7), 'UTF8'), "
                 "partition => 0)) FROM generate_series(%s::int, %s::int) g",
                 (topic, first, first + n - 1))


def read(conn, topic, offset, n, isolation=None):
    if isolation:
        q = ('SELECT "offset", key, value FROM streamlog.read(%s, 0, %s, %s, isolation => %s)')
        args = (topic, offset, n, isolation)
    else:
        q = 'SELECT "offset", key, value FROM streamlog.read(%s, 0, %s, %s)'
        args = (topic, offset, n)
    return [(o, None if k is None else bytes(k), bytes(v)) for o, k, v in conn.execute(q, args)]


def test_pages_equal_one_read(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    plain, lz4 = unique_name("paging"), unique_name("paging_lz4")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (plain,))
    conn.execute("""SELECT streamlog.create_topic(%s, 1, '{"compression.type": "lz4"}')""", (lz4,))
    for topic in (plain, lz4):
        produce(conn, topic, 0, 20000)      # batches of many pieces
        for i in range(3):                  # and small ones after them
            produce(conn, topic, 20000 + i, 1)
        produce(conn, topic, 20003, 7000)
    whole = {t: read(conn, t, 0, 1000000) for t in (plain, lz4)}
    assert len(whole[plain]) == len(whole[lz4]) == 27003
    assert [o for o, _, _ in whole[plain]] == list(range(27003))

    for topic in (plain, lz4):
        for size in (1000, 777, 4096):
            got, offset = [], 0
            while True:
                page = read(conn, topic, offset, size)
                if not page:
                    break
                got += page
                offset = page[-1][0] + 1
            assert got == whole[topic], (topic, size)

    # two topics in turn, each page taking the other's place in the cache
    rng = random.Random(7)
    offsets = {plain: 0, lz4: 0}
    while any(o < 27003 for o in offsets.values()):
        for topic in (plain, lz4):
            if offsets[topic] >= 27003:
                continue
            n = rng.randint(1, 3000)
            page = read(conn, topic, offsets[topic], n,
                        isolation=rng.choice([None, "read_uncommitted"]))
            assert page == whole[topic][offsets[topic]:offsets[topic] + n]
            offsets[topic] += len(page)

    # backwards, overlapping, repeated: never where the last call stopped
    for offset in (26000, 19990, 19990, 5, 0, 12345, 12000, 12346):
        assert read(conn, plain, offset, 500) == whole[plain][offset:offset + 500]

    # a page past the end, then new records: the next page has them
    end = read(conn, plain, 26500, 10000)
    assert end == whole[plain][26500:]
    produce(conn, plain, 27003, 100)
    more = read(conn, plain, 27003, 10000)
    assert [o for o, _, _ in more] == list(range(27003, 27103))


def test_pages_in_a_transaction_that_produces(make_server, unique_name):
    """Pages read inside a transaction that produces (its records appear
    at commit) and around an error after a read."""
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("paging_tx")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce(conn, topic, 0, 10000)
    whole = read(conn, topic, 0, 100000)
    with conn.transaction():
        assert read(conn, topic, 0, 1500) == whole[:1500]
        produce(conn, topic, 10000, 5000)   # buffered until commit: unseen
        assert read(conn, topic, 1500, 1500) == whole[1500:3000]
        conn.execute("SAVEPOINT s")
        try:
            conn.execute("SELECT * FROM streamlog.read(%s, 0, 3000, 10) r "
                         "WHERE 1 / (r.\"offset\" - 3005) IS NULL", (topic,))
        except Exception:
            conn.execute("ROLLBACK TO SAVEPOINT s")
        assert read(conn, topic, 3000, 1500) == whole[3000:4500]
    after = read(conn, topic, 0, 100000)
    assert after[:10000] == whole
    assert len(after) == 15000
    assert read(conn, topic, 4500, 7000) == after[4500:11500]


def test_pages_pass_aborted_batches_of_many_pieces(make_server, unique_name):
    """Aborted transactional batches of many pieces between committed ones:
    a read_committed page that ends in a kept batch and goes on past an
    aborted one finds the next batch through the index, not piece by
    piece, and returns what one read() does; read_uncommitted sees all."""
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("paging_aborted")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))

    def txn(pid, n, commit):
        conn.execute("SELECT streamlog._txn_test_append(%s, 0, %s, 0::smallint, 0, "
                     "array(SELECT g || ':' || repeat(md5(g::text), 30) "
                     "FROM generate_series(1, %s) g))", (topic, pid, n))
        conn.execute("SELECT streamlog._txn_test_marker(%s, 0, %s, 0::smallint, %s)",
                     (topic, pid, commit))

    produce(conn, topic, 0, 3000)       # offsets 0-2999
    txn(100, 300, False)                # 3000-3299 aborted, marker 3300
    produce(conn, topic, 3000, 3000)    # 3301-6300
    txn(200, 300, True)                 # 6301-6600 committed, marker 6601
    txn(300, 300, False)                # 6602-6901 aborted, marker 6902
    produce(conn, topic, 6000, 2000)    # 6903-8902
    # the aborted batches are of many pieces (rows of the segment table)
    for base in (3000, 6602):
        relid = conn.execute("SELECT s.relid::text FROM streamlog.segment s "
                             "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s "
                             "ORDER BY seq DESC LIMIT 1", (topic,)).fetchone()[0]
        pieces = conn.execute(f"SELECT count(*) FROM {relid} WHERE base_offset = %s",
                              (base,)).fetchone()[0]
        assert pieces >= 4, (base, pieces)

    committed = read(conn, topic, 0, 100000)
    want = [o for o in range(8903)
            if not (3000 <= o <= 3300 or o == 6601 or 6602 <= o <= 6902)]
    assert [o for o, _, _ in committed] == want
    everything = read(conn, topic, 0, 100000, isolation="read_uncommitted")
    assert [o for o, _, _ in everything] == [o for o in range(8903)
                                              if o not in (3300, 6601, 6902)]
    for isolation, whole in ((None, committed), ("read_uncommitted", everything)):
        for size in (1000, 777, 2999, 50):
            got, offset = [], 0
            while True:
                page = read(conn, topic, offset, size, isolation=isolation)
                if not page:
                    break
                got += page
                offset = page[-1][0] + 1
            assert got == whole, (isolation, size)


def test_each_call_checks_privileges_and_finds_the_topic(make_server, unique_name):
    """What one call of a session cached (the topic, the privileges, the
    batch it stopped in) never outlives a change: a REVOKE refuses the
    session's next call, a GRANT lets it read again, and a topic dropped
    and created again under the same name reads as the new one."""
    import psycopg

    srv = make_server()
    admin = srv.connect()
    topic = unique_name("paging_acl")
    role = unique_name("pager").replace("-", "_")
    admin.execute(f"CREATE ROLE {role} LOGIN")
    admin.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce(admin, topic, 0, 5000)
    admin.execute("SELECT streamlog.grant('read', 'topic', %s, %s)", (topic, role))
    reader = psycopg.connect(host=srv.host, port=srv.port, user=role, dbname="postgres",
                             autocommit=True)
    whole = read(admin, topic, 0, 100000)
    assert read(reader, topic, 0, 1000) == whole[:1000]

    admin.execute("SELECT streamlog.revoke('read', 'topic', %s, %s)", (topic, role))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        read(reader, topic, 1000, 1000)
    admin.execute("SELECT streamlog.grant('read', 'topic', %s, %s)", (topic, role))
    assert read(reader, topic, 1000, 1000) == whole[1000:2000]

    # the same name again, other records: none of the old ones come back
    admin.execute("SELECT streamlog.drop_topic(%s)", (topic,))
    admin.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce(admin, topic, 100000, 5000)
    admin.execute("SELECT streamlog.grant('read', 'topic', %s, %s)", (topic, role))
    renewed = read(admin, topic, 0, 100000)
    assert renewed != whole and len(renewed) == 5000
    assert read(reader, topic, 2000, 1000) == renewed[2000:3000]
    assert read(reader, topic, 0, 1000) == renewed[:1000]
    reader.close()
