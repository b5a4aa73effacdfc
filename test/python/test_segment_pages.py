"""Pieces of batches that fill a page are written as whole pages
(streamlog.page_writes, storage/segment_pages.c): WAL-logged as page images
instead of one heap insert each, read back byte for byte, beside heap
inserts of the same partition, after kill -9 and restart, and through
VACUUM and amcheck's heap check."""

import psycopg

ROWS = 3000  # of 1 KiB: about 12 batches of 256 KiB, 32 full pages each


def wal_fpi(srv):
    """Full page images written so far, server-wide (pg_stat_wal)."""
    with srv.connect() as c:
        return c.execute("SELECT wal_fpi FROM pg_stat_wal").fetchone()[0]


def produce_big(srv, topic, page_writes, first=0):
    """ROWS records of 1 KiB, distinct, in one transaction; returns the
    full page images the server wrote meanwhile."""
    before = wal_fpi(srv)
    with srv.connect() as c:
        c.execute(f"SET streamlog.page_writes = {'on' if page_writes else 'off'}")
        c.execute("SELECT count(streamlog.produce(%s, NULL, "
                  "convert_to(lpad(g::text, 1024, md5(g::text)), 'UTF8'), partition => 0)) "
                  "FROM generate_series(%s::int, %s::int) g", (topic, first, first + ROWS - 1))
        # the backend's WAL counters reach pg_stat_wal when it reports them
        c.execute("SELECT pg_stat_force_next_flush()")
        c.execute("SELECT 1")
    return wal_fpi(srv) - before


def expected_value(g):
    import hashlib
    s = str(g)
    pad = hashlib.md5(s.encode()).hexdigest()
    fill = (pad * (1024 // len(pad) + 1))[:1024 - len(s)]
    return (fill + s).encode()


def read_values(srv, topic):
    with srv.connect() as c:
        return [(off, bytes(v)) for off, v in c.execute(
            'SELECT "offset", value FROM streamlog.read(%s, 0, 0, 10000000)', (topic,))]


def segment_tables(srv, topic):
    with srv.connect() as c:
        return [r[0] for r in c.execute(
            "SELECT s.relid::regclass::text FROM streamlog.segment s "
            "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s", (topic,))]


def test_full_pieces_go_as_page_images(make_server, unique_name):
    srv = make_server()
    assert srv.sql("SHOW wal_level") == [("replica",)]
    topic = unique_name("pages")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    srv.sql("CHECKPOINT")

    # Heap inserts first: new pages need no image, whatever the size
    heap_fpi = produce_big(srv, topic, page_writes=False)
    # then whole pages: an image for every full piece (32 per batch)
    paged_fpi = produce_big(srv, topic, page_writes=True, first=ROWS)
    assert paged_fpi >= 300, (heap_fpi, paged_fpi)
    assert heap_fpi < paged_fpi / 4, (heap_fpi, paged_fpi)

    # single-row commits among them go through heap inserts still
    for i in range(5):
        srv.sql("SELECT streamlog.produce(%s, NULL, %s::bytea, partition => 0)",
                (topic, f"small {i}".encode()))
    produce_big(srv, topic, page_writes=True, first=2 * ROWS)

    got = read_values(srv, topic)
    want = ([expected_value(g) for g in range(2 * ROWS)] +
            [f"small {i}".encode() for i in range(5)] +
            [expected_value(g) for g in range(2 * ROWS, 3 * ROWS)])
    assert [off for off, _ in got] == list(range(len(want)))
    assert [v for _, v in got] == want

    # VACUUM and amcheck find the pages as heap inserts would leave them
    srv.sql("CREATE EXTENSION IF NOT EXISTS amcheck")
    for table in segment_tables(srv, topic):
        srv.sql(f"VACUUM (FREEZE) {table}")
        assert srv.sql(f"SELECT * FROM verify_heapam('{table}')") == []
    assert read_values(srv, topic) == got


def test_page_images_survive_kill9(make_server, unique_name):
    srv = make_server()
    topic = unique_name("pages_crash")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce_big(srv, topic, page_writes=True)
    # a checkpoint between two commits, then a crash: redo restores the
    # pages after it, the checkpoint holds those before
    srv.sql("CHECKPOINT")
    produce_big(srv, topic, page_writes=True, first=ROWS)
    # a transaction that does not commit leaves nothing
    conn = srv.connect(autocommit=False)
    conn.execute("SELECT count(streamlog.produce(%s, NULL, repeat('z', 1024)::bytea, "
                 "partition => 0)) FROM generate_series(1, %s::int)", (topic, ROWS))
    srv.kill9()
    try:
        conn.close()
    except psycopg.Error:
        pass
    srv.start()

    got = read_values(srv, topic)
    assert [off for off, _ in got] == list(range(2 * ROWS))
    assert [v for _, v in got] == [expected_value(g) for g in range(2 * ROWS)]
    # offsets go on where the committed ones ended, pages after the crash too
    produce_big(srv, topic, page_writes=True, first=2 * ROWS)
    got = read_values(srv, topic)
    assert [v for _, v in got] == [expected_value(g) for g in range(3 * ROWS)]
    srv.sql("CREATE EXTENSION IF NOT EXISTS amcheck")
    for table in segment_tables(srv, topic):
        assert srv.sql(f"SELECT * FROM verify_heapam('{table}')") == []


def full_piece_pages(srv, table):
    """The pages of table (as on disk after a CHECKPOINT) that hold one
    piece filling the page: (block, page bytes, tuple offset, tuple length)."""
    import struct
    data = bytes(srv.sql("SELECT pg_read_binary_file(pg_relation_filepath(%s))", (table,))[0][0])
    pages = []
    for blk in range(len(data) // 8192):
        page = data[blk * 8192:(blk + 1) * 8192]
        lower, upper = struct.unpack_from("<HH", page, 12)
        if lower != 24 + 4:
            continue
        lp, = struct.unpack_from("<I", page, 24)
        off, flags, length = lp & 0x7FFF, (lp >> 15) & 3, lp >> 17
        if flags == 1 and length > 8192 - 8192 // 8:
            pages.append((blk, page, off, length))
    return pages


def tuple_padding(srv, table, page, off, length):
    """The bytes of the tuple at off that no column fills: alignment
    padding between the columns, as the table's attributes lay them out."""
    import struct
    hoff = page[off + 22]
    attrs = srv.sql("SELECT attlen, attalign FROM pg_attribute WHERE attrelid = %s::regclass "
                    "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (table,))
    align = {"c": 1, "s": 2, "i": 4, "d": 8}
    pos, pad = 0, b""
    for attlen, attalign in attrs:
        if attlen == -1 and page[off + hoff + pos] & 1 == 0:
            a = align[attalign]      # a 4-byte varlena header is aligned
        elif attlen == -1:
            a = 1                    # a 1-byte header is not
        else:
            a = align[attalign]
        start = (pos + a - 1) // a * a
        pad += page[off + hoff + pos:off + hoff + start]
        size = struct.unpack_from("<I", page, off + hoff + start)[0] >> 2 if attlen == -1 else attlen
        pos = start + size
    assert hoff + pos == length, (hoff, pos, length)
    return pad


def test_page_written_tuples_are_laid_out_as_heap_inserts(make_server, unique_name):
    """A piece written on a page of its own is laid out byte for byte as a
    heap insert leaves it, but for what differs by nature (xmin, ctid):
    the same page header and line pointer, the same tuple header flags,
    the hole and the padding between columns zero."""
    import struct
    srv = make_server()
    topic = unique_name("pages_layout")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    produce_big(srv, topic, page_writes=False)
    produce_big(srv, topic, page_writes=True, first=ROWS)
    # the heap-inserted pages reach the file, and hint bits are set alike
    read_values(srv, topic)
    srv.sql("CHECKPOINT")

    def shape(page, off, length):
        lower, upper, special, size_version, prune = struct.unpack_from("<HHHHI", page, 12)
        flags = struct.unpack_from("<H", page, 10)[0]
        infomask2, infomask, hoff = struct.unpack_from("<HHB", page, off + 18)
        return (lower, upper, special, size_version, prune, flags, off, length,
                infomask2, infomask & ~0x0F00, hoff)   # less the xmin/xmax hint bits

    by_xmin = {}
    for table in segment_tables(srv, topic):
        for blk, page, off, length in full_piece_pages(srv, table):
            xmin = struct.unpack_from("<I", page, off)[0]
            by_xmin.setdefault(xmin, set()).add(shape(page, off, length))
            assert page[24 + 4:off] == bytes(off - 28), (xmin, blk, "hole")
            assert set(tuple_padding(srv, table, page, off, length)) <= {0}, (xmin, blk, "padding")
    # the first transaction's heap inserts, the second one's page images
    assert len(by_xmin) == 2, by_xmin.keys()
    heap, paged = (by_xmin[x] for x in sorted(by_xmin))
    assert paged == heap, (heap, paged)
