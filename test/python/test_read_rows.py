"""read(), history() and consume() form each row straight from the record's
bytes (sqlapi/record_rows.c): keys, values and headers of every length
around the 1-byte varlena header limit (126 bytes of data), NULL keys and
values, and headers small and large come back byte for byte, through the
operators and functions that take the columns apart again."""

LENGTHS = [0, 1, 2, 125, 126, 127, 128, 129, 1000, 5000]


def expected_rows():
    rows = []
    for i, n in enumerate(LENGTHS):
        key = None if i % 4 == 3 else bytes([65 + i]) * LENGTHS[-1 - i]
        value = None if i % 5 == 4 else bytes((i + j) % 251 for j in range(n))
        headers = []
        if i % 3 == 1:
            headers = [("h", b"x" * n)]
        elif i % 3 == 2:
            headers = [("a", None), ("b" * (n % 200), b"\x00\x01")]
        rows.append((key, value, headers))
    return rows


def produce_row(conn, topic, key, value, headers):
    """One record into partition 0 through produce_record(), headers as
    [(name, bytes or None), ...]"""
    conn.execute("SELECT streamlog.produce_record(%s, %s::bytea, %s::bytea, partition => 0, "
                 "headers => (SELECT array_agg(ROW(k, v)::streamlog.header) "
                 "FROM unnest(%s::text[], %s::bytea[]) AS h(k, v)))",
                 (topic, key, value, [h[0] for h in headers], [h[1] for h in headers]))


def test_rows_byte_for_byte(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("rows")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    rows = expected_rows()
    for key, value, headers in rows:
        produce_row(conn, topic, key, value, headers)
    # all the rows in one batch too, after the single-row batches
    with conn.transaction():
        for key, value, headers in rows:
            produce_row(conn, topic, key, value, headers)
    want = [(o, k, v, h) for o, (k, v, h) in enumerate(rows + rows)]

    def fetch(sql, *args):
        got = []
        for o, p, ts, k, v, hk, hv, klen, vlen in conn.execute(
                "SELECT r.\"offset\", r.partition, r.ts, r.key, r.value, "
                "(SELECT array_agg(u.k ORDER BY n) FROM unnest(r.headers) WITH ORDINALITY AS u(k, v, n)), "
                "(SELECT array_agg(u.v ORDER BY n) FROM unnest(r.headers) WITH ORDINALITY AS u(k, v, n)), "
                "length(r.key), length(r.value) FROM " + sql + " r ORDER BY r.\"offset\"", args):
            assert p == 0 and ts is not None
            assert klen == (None if k is None else len(k))
            assert vlen == (None if v is None else len(v))
            headers = list(zip(hk, [None if x is None else bytes(x) for x in hv])) if hk else []
            got.append((o, None if k is None else bytes(k), None if v is None else bytes(v), headers))
        return got

    assert fetch("streamlog.read(%s, 0, 0, 100)", topic) == want
    for page in (1, 3, 7):
        got, offset = [], 0
        while offset < len(want):
            part = fetch("streamlog.read(%s, 0, %s, %s)", topic, offset, page)
            got += part
            offset += page
        assert got == want, page
    assert fetch("streamlog.history(%s)", topic) == want
    with conn.transaction():
        assert fetch("streamlog.consume('rows_group', %s, 100)", topic) == want


def test_rows_spilled_to_disk(make_server, unique_name):
    """Rows are formed straight into the result's memory; a result larger
    than work_mem goes to a temporary file and comes back from it the same,
    read forwards and backwards through a scrollable cursor."""
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("spill")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    rows = expected_rows() * 20
    with conn.transaction():
        for key, value, headers in rows:
            produce_row(conn, topic, key, value, headers)
    want = [(o, k, v, h) for o, (k, v, h) in enumerate(rows)]
    conn.execute("SET work_mem = 64")
    before = conn.execute("SELECT temp_files FROM pg_stat_database "
                          "WHERE datname = current_database()").fetchone()[0]
    with conn.transaction():
        conn.execute("DECLARE c SCROLL CURSOR FOR SELECT \"offset\", key, value, "
                     "(SELECT array_agg(u.k ORDER BY n) FROM unnest(headers) WITH ORDINALITY AS u(k, v, n)), "
                     "(SELECT array_agg(u.v ORDER BY n) FROM unnest(headers) WITH ORDINALITY AS u(k, v, n)) "
                     "FROM streamlog.read(%s, 0, 0, 10000)", (topic,))

        def as_rows(fetched):
            return [(o, None if k is None else bytes(k), None if v is None else bytes(v),
                     list(zip(hk, [None if x is None else bytes(x) for x in hv])) if hk else [])
                    for o, k, v, hk, hv in fetched]

        assert as_rows(conn.execute("FETCH ALL FROM c").fetchall()) == want
        assert as_rows(conn.execute("FETCH BACKWARD ALL FROM c").fetchall()) == want[::-1]
    conn.execute("SELECT pg_stat_force_next_flush()")
    after = conn.execute("SELECT temp_files FROM pg_stat_database "
                         "WHERE datname = current_database()").fetchone()[0]
    assert after > before


def test_rows_in_every_call_form(make_server, unique_name):
    """The rows take the result's shape from what the executor expects of
    the call: the same rows in FROM, in the select list, expanded with .*,
    beside another function in ROWS FROM and WITH ORDINALITY."""
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("forms")
    conn.execute("SELECT streamlog.create_topic(%s, 1)", (topic,))
    for key, value, headers in expected_rows():
        produce_row(conn, topic, key, value, headers)
    n = len(LENGTHS)
    cols = "partition, \"offset\", ts, key, value, headers::text"
    want = conn.execute(f"SELECT {cols} FROM streamlog.read(%s, 0, 0, 100)", (topic,)).fetchall()
    assert len(want) == n
    assert conn.execute(f"SELECT {cols} FROM (SELECT (streamlog.read(%s, 0, 0, 100)).*) r",
                        (topic,)).fetchall() == want
    assert conn.execute(f"SELECT {cols} FROM (SELECT streamlog.read(%s, 0, 0, 100) AS r) s, "
                        "LATERAL (SELECT (s.r).*) x", (topic,)).fetchall() == want
    got = conn.execute(f"SELECT {cols}, n FROM ROWS FROM (streamlog.read(%s, 0, 0, 100), "
                       "generate_series(1, %s)) WITH ORDINALITY AS r(partition, \"offset\", ts, "
                       "key, value, headers, g, n)", (topic, n + 2)).fetchall()
    assert [row[:6] for row in got[:n]] == want
    assert [row[6] for row in got] == list(range(1, n + 3))
    assert all(v is None for row in got[n:] for v in row[:6])
