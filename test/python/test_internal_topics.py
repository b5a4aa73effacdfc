"""Internal topics through the Kafka door: names beginning with "__" are
reserved for streamlog's own topics (Kafka's __consumer_offsets and
__transaction_state among them).  Clients cannot create, delete or produce
to them, Metadata never auto-creates them and marks them is_internal.

An internal topic exists only when streamlog makes one; until it does so by
itself, the tests bind the C entry point of that internal path
(streamlog_create_internal_topic, which the extension does not declare) to
a temporary SQL function.

Also here: a compressed batch that inflates past streamlog.max_request_size
is refused with MESSAGE_TOO_LARGE and a message naming the setting."""

import psycopg
import pytest
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

import kafka_helpers as kh
from kafka_helpers import RawClient, Reader, array, i8, i16, i32, kbytes, string

TIMEOUT = 30

# Kafka error codes
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
INVALID_REQUEST = 42


def create_internal_topic(srv, name, partitions=1):
    """Create an internal topic the way streamlog itself will."""
    with srv.connect() as c:
        c.execute("CREATE FUNCTION pg_temp.create_internal_topic(text, integer) "
                  "RETURNS void AS 'streamlog', 'streamlog_create_internal_topic' "
                  "LANGUAGE C STRICT")
        c.execute("SELECT pg_temp.create_internal_topic(%s, %s)", (name, partitions))


def topic_names(srv):
    return {r[0] for r in srv.sql("SELECT name FROM streamlog.topic")}


def admin(srv):
    return AdminClient({"bootstrap.servers": srv.kafka_bootstrap,
                        "socket.timeout.ms": TIMEOUT * 1000})


def results(futures):
    return kh.admin_results(futures, TIMEOUT)


def metadata_v4_request(correlation_id, topics, allow_auto_topic_creation):
    body = array(topics, string) + i8(1 if allow_auto_topic_creation else 0)
    return kh.request_frame(kh.METADATA, 4, correlation_id, body)


def parse_metadata_v4(body):
    """{topic: (error_code, is_internal, partition count)}"""
    r = Reader(body)
    r.i32()  # throttle_time_ms
    r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
    r.string()  # cluster_id
    r.i32()  # controller_id
    topics = r.array(lambda r: (
        r.i16(), r.string(), r.i8(),
        r.array(lambda r: (r.i16(), r.i32(), r.i32(),
                           r.array(lambda r: r.i32()), r.array(lambda r: r.i32())))))
    assert r.at_end()
    return {name: (err, bool(internal), len(parts)) for err, name, internal, parts in topics}


def one_record_batch(value, compression=kh.COMPRESSION_NONE):
    return kh.record_batch([(None, value, (), kh.now_ms())], compression=compression)


def test_create_topics_refuses_reserved_names(make_server, unique_name):
    srv = make_server()
    ok = unique_name("ct-ok")
    a = admin(srv)
    res = results(a.create_topics([
        NewTopic("__consumer_offsets", 1, 1),
        NewTopic("__transaction_state", 1, 1),
        NewTopic("__foo", 1, 1),
        NewTopic(ok, 1, 1),
    ], request_timeout=TIMEOUT))
    for name in ("__consumer_offsets", "__transaction_state", "__foo"):
        assert res[name].code() == INVALID_REQUEST, (name, res[name])
        assert "reserved" in res[name].str(), res[name].str()
    assert res[ok] is None
    assert topic_names(srv) == {ok}

    # nor does validate_only pass them
    res = results(a.create_topics([NewTopic("__foo", 1, 1)], validate_only=True,
                                  request_timeout=TIMEOUT))
    assert res["__foo"].code() == INVALID_REQUEST


def test_internal_topic_cannot_be_deleted_or_produced_to(make_server, unique_name):
    srv = make_server()
    ordinary = unique_name("plain")
    srv.sql("SELECT streamlog.create_topic(%s)", (ordinary,))
    create_internal_topic(srv, "__consumer_offsets", 3)
    assert topic_names(srv) == {ordinary, "__consumer_offsets"}

    a = admin(srv)
    res = results(a.delete_topics(["__consumer_offsets"], request_timeout=TIMEOUT))
    assert res["__consumer_offsets"].code() == INVALID_REQUEST
    assert topic_names(srv) == {ordinary, "__consumer_offsets"}

    with RawClient(srv.kafka_bootstrap) as c:
        out = kh.parse_produce_v8(c.call(kh.produce_v8_request, "__consumer_offsets", 0,
                                      one_record_batch(b"forged commit")))
        err, base, message = out[("__consumer_offsets", 0)]
        assert (err, base) == (INVALID_TOPIC_EXCEPTION, -1)
        assert message == "Cannot append to internal topic __consumer_offsets."
        # the same connection goes on with an ordinary topic
        out = kh.parse_produce_v8(c.call(kh.produce_v8_request, ordinary, 0,
                                      one_record_batch(b"fine")))
        assert out[(ordinary, 0)][:2] == (NONE, 0)
    assert kh.high_watermark(srv, "__consumer_offsets", 0) == 0
    assert kh.high_watermark(srv, ordinary, 0) == 1

    # Metadata shows it, marked internal; the ordinary topic is not
    with RawClient(srv.kafka_bootstrap) as c:
        md = parse_metadata_v4(c.call(metadata_v4_request, ["__consumer_offsets", ordinary],
                                      allow_auto_topic_creation=False))
        assert md == {"__consumer_offsets": (NONE, True, 3), ordinary: (NONE, False, 1)}
        md = parse_metadata_v4(c.call(metadata_v4_request, None,
                                      allow_auto_topic_creation=False))
        assert md["__consumer_offsets"][1] is True
        assert md[ordinary][1] is False


def test_internal_topic_cannot_be_grown_or_truncated(make_server):
    """Its partitions belong to streamlog (groups hash onto them) and so do
    its records: neither door adds partitions or deletes records.  Its
    configs can be altered, as in Kafka."""
    srv = make_server()
    create_internal_topic(srv, "__consumer_offsets", 3)

    a = admin(srv)
    res = results(a.create_partitions([NewPartitions("__consumer_offsets", 5)],
                                      request_timeout=TIMEOUT))
    assert res["__consumer_offsets"].code() == INVALID_REQUEST

    with srv.connect() as c:
        for call in ("SELECT streamlog.add_partitions('__consumer_offsets', 1)",
                     "SELECT streamlog.delete_records('__consumer_offsets', 0, -1)"):
            with pytest.raises(psycopg.errors.ReservedName, match="reserved for internal topics"):
                c.execute(call)
        c.execute("""SELECT streamlog.alter_topic('__consumer_offsets', '{"retention.ms": "60000"}')""")
    assert srv.sql("SELECT partitions FROM streamlog.topics WHERE topic = '__consumer_offsets'") == [(3,)]
    assert srv.sql("SELECT value FROM streamlog.topic_config('__consumer_offsets') "
                   "WHERE name = 'retention.ms'") == [("60000",)]


def test_metadata_never_auto_creates_internal_topics(make_server, unique_name):
    srv = make_server(conf={"streamlog.auto_create_topics": "on"})
    wanted = unique_name("auto")
    with RawClient(srv.kafka_bootstrap) as c:
        md = parse_metadata_v4(c.call(metadata_v4_request,
                                      ["__consumer_offsets", "__foo", wanted],
                                      allow_auto_topic_creation=True))
        assert md["__consumer_offsets"] == (UNKNOWN_TOPIC_OR_PARTITION, False, 0)
        assert md["__foo"] == (UNKNOWN_TOPIC_OR_PARTITION, False, 0)
        assert md[wanted][0] == NONE
        # v0-3 auto-create whenever the setting allows: still not these
        md = kh.parse_metadata_v1(c.call(kh.metadata_request, 1, ["__transaction_state"]))
        assert md["topics"]["__transaction_state"]["error"] == UNKNOWN_TOPIC_OR_PARTITION
        # nor does a produce that would auto-create one
        out = kh.parse_produce_v8(c.call(kh.produce_v8_request, "__bar", 0, one_record_batch(b"x")))
        assert out[("__bar", 0)][0] == INVALID_TOPIC_EXCEPTION
    assert topic_names(srv) == {wanted}


def test_gzip_batch_inflating_past_the_limit_names_the_setting(make_server, unique_name):
    limit = 64 * 1024
    srv = make_server(conf={"streamlog.max_request_size": limit})
    name = unique_name("inflate")
    srv.sql("SELECT streamlog.create_topic(%s)", (name,))
    bomb = one_record_batch(bytes(16 * limit), compression=kh.COMPRESSION_GZIP)
    assert len(bomb) < limit // 8          # small on the wire, 16 times the limit inflated
    with RawClient(srv.kafka_bootstrap) as c:
        out = kh.parse_produce_v8(c.call(kh.produce_v8_request, name, 0, bomb))
        err, base, message = out[(name, 0)]
        assert (err, base) == (MESSAGE_TOO_LARGE, -1)
        assert "streamlog.max_request_size" in message, message
        assert str(limit) in message, message
        # a batch that inflates to less than the limit is stored
        fits = one_record_batch(bytes(limit // 2), compression=kh.COMPRESSION_GZIP)
        out = kh.parse_produce_v8(c.call(kh.produce_v8_request, name, 0, fits))
        assert out[(name, 0)][:2] == (NONE, 0)
    assert kh.high_watermark(srv, name, 0) == 1
    kh.assert_server_healthy(srv, name)
