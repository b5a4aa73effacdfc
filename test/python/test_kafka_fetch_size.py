"""How much one Fetch returns.  A client may ask for up to 2 GB; the broker
answers with what fits its streamlog.fetch_max_bytes (Kafka's broker config
fetch.max.bytes, 55 MiB by default): never an error because the log holds
more than a response can carry.  The first batch of a response is returned
whole even when it is larger than every limit (KIP-74), so a consumer always
makes progress."""

import struct

import kafka_helpers as kh
from pgserver import wait_until

INT32_MAX = 2**31 - 1
MIB = 1024 * 1024


def batch_offsets(records):
    """[(base_offset, length)] of the record batches in a Fetch's records."""
    out = []
    pos = 0
    while pos + 12 <= len(records):
        base, length = struct.unpack(">qi", records[pos:pos + 12])
        if pos + 12 + length > len(records):
            break  # a partial batch at the end is allowed by the protocol
        out.append((base, 12 + length))
        pos += 12 + length
    return out


def fetch(client, topic, offset, max_bytes=INT32_MAX, partition_max_bytes=INT32_MAX):
    """(error, high_watermark, records) of a Fetch v4 of partition 0"""
    body = client.call(kh.fetch_request, topic, 0, offset, max_bytes=max_bytes,
                       partition_max_bytes=partition_max_bytes)
    return kh.parse_fetch_v4(body)[(topic, 0)]


def produce_values(conn, topic, count, size):
    """count batches of one record each, a value of size bytes (compressible,
    so the log is large in memory but small on disk)"""
    conn.execute(
        "SELECT streamlog.produce(%s, NULL, repeat('x', %s)::bytea, partition => 0) "
        "FROM generate_series(1, %s)", (topic, size, count))


def test_fetch_of_more_than_a_gigabyte_returns_what_fits(make_server, unique_name):
    srv = make_server()
    conn = srv.connect()
    topic = unique_name("huge")
    conn.execute("SELECT streamlog.create_topic(%s, 1, '{\"max.message.bytes\": \"17000000\"}')",
                 (topic,))
    # 72 batches of 16 MiB: 1.1 GiB in one partition
    produce_values(conn, topic, 72, 16 * MIB)

    with kh.RawClient(srv.kafka_bootstrap, timeout=120) as c:
        error, hw, records = fetch(c, topic, 0)
        assert error == kh.NONE
        assert hw == 72
        batches = batch_offsets(records)
        # 55 MiB by default: three whole batches of 16 MiB, in order
        assert [b for b, _ in batches] == [0, 1, 2]
        assert len(records) <= 55 * MIB

        # the consumer goes on from where the answer stopped
        error, _, records = fetch(c, topic, 3)
        assert error == kh.NONE
        assert [b for b, _ in batch_offsets(records)] == [3, 4, 5]
    kh.assert_server_healthy(srv, topic)


def test_fetch_max_bytes_bounds_a_response_and_the_first_batch_is_whole(make_server,
                                                                         unique_name):
    srv = make_server(conf={"streamlog.fetch_max_bytes": "1MB"})
    conn = srv.connect()
    topic = unique_name("capped")
    conn.execute("SELECT streamlog.create_topic(%s, 1, '{\"max.message.bytes\": \"4194304\"}')",
                 (topic,))
    produce_values(conn, topic, 3, 400 * 1024)   # offsets 0-2
    produce_values(conn, topic, 1, 3 * MIB)       # offset 3, larger than the limit
    produce_values(conn, topic, 1, 1000)          # offset 4

    with kh.RawClient(srv.kafka_bootstrap) as c:
        # the client asks for 2 GB and gets the broker's 1 MB: two batches
        error, _, records = fetch(c, topic, 0)
        assert error == kh.NONE
        assert [b for b, _ in batch_offsets(records)] == [0, 1]
        assert len(records) <= MIB

        # a smaller request limit wins over the broker's
        error, _, records = fetch(c, topic, 0, max_bytes=500 * 1024)
        assert [b for b, _ in batch_offsets(records)] == [0]

        # a batch larger than every limit comes whole, and alone
        error, _, records = fetch(c, topic, 3)
        assert error == kh.NONE
        batches = batch_offsets(records)
        assert [b for b, _ in batches] == [3]
        assert batches[0][1] > 3 * MIB

    # the setting is reloadable
    srv.update_conf({"streamlog.fetch_max_bytes": "8MB"})
    srv.reload()
    with kh.RawClient(srv.kafka_bootstrap) as c:
        wait_until(lambda: [b for b, _ in batch_offsets(fetch(c, topic, 0)[2])] == [0, 1, 2, 3, 4],
                   timeout=30, what="a Fetch under the reloaded limit of 8MB")
