"""What streamlog does not serve gets a final "no" at once, never a hang.

Kafka transactions where the coordinator does not run (here:
streamlog.transaction_coordinator off): a
transactional producer must fail fast with an error its client treats as
final (not retry until its timeout), and with a message saying why
wherever the protocol carries one.  The transaction APIs, which ApiVersions
does not advertise then, are answered with that error too, and the
connection stays open.
"""

import json
import subprocess

import confluent_kafka
import pytest

import kafka_helpers as kh
from kafka_helpers import array, i8, i16, i32, i64, string, uvarint
from kafkajs import JS_DIR, ensure_kafkajs
from pgserver import PgServer

TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
INVALID_REQUEST = 42
INVALID_RECORD = 87

ADD_PARTITIONS_TO_TXN = 24
ADD_OFFSETS_TO_TXN = 25
END_TXN = 26
TXN_OFFSET_COMMIT = 28

NOT_SUPPORTED = "transactions are not supported"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A node whose transaction coordinator is off"""
    srv = PgServer(tmp_path_factory.getbasetemp(), name="notxn",
                   conf={"streamlog.transaction_coordinator": "off"})
    try:
        srv.start()
    except BaseException:
        srv.cleanup()
        raise
    yield srv
    srv.cleanup()


def find_coordinator_v1(cid, key, key_type):
    return kh.request_frame(kh.FIND_COORDINATOR, 1, cid, string(key) + i8(key_type))


def find_coordinator_v4(cid, keys, key_type):
    body = i8(key_type) + uvarint(len(keys) + 1)
    for k in keys:
        body += kh.compact_string(k)
    body += uvarint(0)
    return kh.request_frame(kh.FIND_COORDINATOR, 4, cid, body, header_version=2)


def test_find_coordinator_for_a_transaction_is_a_final_error(server):
    with kh.RawClient(server.kafka_bootstrap) as c:
        r = kh.Reader(c.call(find_coordinator_v1, "txn-a", 1))
        r.i32()  # throttle
        assert r.i16() == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert NOT_SUPPORTED in r.string()

        # Batched keys (v4+): every key carries the error and the message
        r = kh.Reader(c.call(find_coordinator_v4, ["txn-b", "txn-c"], 1))
        r.uvarint()  # response header tagged fields
        r.i32()
        n = r.uvarint() - 1
        assert n == 2
        for key in ("txn-b", "txn-c"):
            got_key = r.take(r.uvarint() - 1).decode()
            node, host_len = r.i32(), r.uvarint() - 1
            r.take(host_len)
            r.i32()  # port
            assert got_key == key
            assert node == -1
            assert r.i16() == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            assert NOT_SUPPORTED in r.take(r.uvarint() - 1).decode()
            r.uvarint()

        # An unknown key type is an invalid request, not a retriable error
        r = kh.Reader(c.call(find_coordinator_v1, "x", 7))
        r.i32()
        assert r.i16() == INVALID_REQUEST


def test_init_producer_id_with_transactional_id_is_a_final_error(server):
    def request(cid):
        return kh.request_frame(kh.INIT_PRODUCER_ID, 1, cid, string("txn-d") + i32(60000))

    with kh.RawClient(server.kafka_bootstrap) as c:
        error, pid, epoch = kh.parse_init_producer_id(c.call(request))
        assert (error, pid, epoch) == (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1)


def txn_frames():
    """(name, api key, frame builder, parser of the error codes)"""
    def add_partitions(cid):
        body = string("txn-e") + i64(1) + i16(0) + array(
            [("t", [0, 1])], lambda t: string(t[0]) + array(t[1], i32))
        return kh.request_frame(ADD_PARTITIONS_TO_TXN, 0, cid, body)

    def parse_add_partitions(r):
        r.i32()
        codes = []
        for _ in range(r.i32()):
            assert r.string() == "t"
            for _ in range(r.i32()):
                r.i32()
                codes.append(r.i16())
        return codes

    def add_offsets(cid):
        body = string("txn-e") + i64(1) + i16(0) + string("g")
        return kh.request_frame(ADD_OFFSETS_TO_TXN, 0, cid, body)

    def end_txn(cid):
        body = string("txn-e") + i64(1) + i16(0) + i8(1)
        return kh.request_frame(END_TXN, 0, cid, body)

    def parse_top_level(r):
        r.i32()
        return [r.i16()]

    def txn_offset_commit(cid):
        body = string("txn-e") + string("g") + i64(1) + i16(0) + array(
            [("t", [0])], lambda t: string(t[0]) + array(
                t[1], lambda p: i32(p) + i64(5) + string(None)))
        return kh.request_frame(TXN_OFFSET_COMMIT, 0, cid, body)

    def parse_txn_offset_commit(r):
        r.i32()
        codes = []
        for _ in range(r.i32()):
            r.string()
            for _ in range(r.i32()):
                r.i32()
                codes.append(r.i16())
        return codes

    return [("AddPartitionsToTxn", ADD_PARTITIONS_TO_TXN, add_partitions, parse_add_partitions, 2),
            ("AddOffsetsToTxn", ADD_OFFSETS_TO_TXN, add_offsets, parse_top_level, 1),
            ("EndTxn", END_TXN, end_txn, parse_top_level, 1),
            ("TxnOffsetCommit", TXN_OFFSET_COMMIT, txn_offset_commit, parse_txn_offset_commit, 1)]


def test_transaction_apis_answer_a_final_error_and_keep_the_connection(server):
    advertised = kh.advertised_versions(server.kafka_bootstrap)
    with kh.RawClient(server.kafka_bootstrap) as c:
        for name, key, frame, parse, count in txn_frames():
            assert key not in advertised, f"{name} is advertised but not implemented"
            codes = parse(kh.Reader(c.call(frame)))
            assert codes == [TRANSACTIONAL_ID_AUTHORIZATION_FAILED] * count, name
        # The same connection still serves
        assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == 0


def test_confluent_transactional_producer_fails_at_once(server, unique_name):
    producer = confluent_kafka.Producer({
        "bootstrap.servers": server.kafka_bootstrap,
        "transactional.id": unique_name("txn"),
    })
    with pytest.raises(confluent_kafka.KafkaException) as raised:
        producer.init_transactions(20)
    error = raised.value.args[0]
    assert error.fatal(), f"not a fatal error: {error}"
    assert not error.retriable()
    assert NOT_SUPPORTED in error.str()


def test_kafkajs_transactional_producer_fails_at_once(server, unique_name):
    node = ensure_kafkajs()
    res = subprocess.run([node, "transaction.js", server.kafka_bootstrap, unique_name("txn")],
                         cwd=JS_DIR, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["ok"] is False
    # kafkajs hides the broker's answer behind "Failed to find group
    # coordinator" (its messages are fixed per error code): what matters is
    # that it took the answer as final and did not ask again
    assert result["name"] == "KafkaJSGroupCoordinatorNotFound", result
    assert result["retriable"] is False
    assert result["brokerErrors"] == ["TRANSACTIONAL_ID_AUTHORIZATION_FAILED"], result
    assert result["retries"] == 0, result


def test_transactional_and_control_batches_are_refused_with_a_reason(server, unique_name):
    """A producer that sends a transactional batch anyway (it cannot have a
    transactional producer id) is told transactions are not supported;
    control batches are the broker's own, as Kafka answers."""
    topic = unique_name("txnbatch")
    server.sql("SELECT streamlog.create_topic(%s)", (topic,))
    with kh.RawClient(server.kafka_bootstrap) as c:
        txn = kh.record_batch([(None, b"in a transaction", (), kh.now_ms())],
                              producer=(1000, 0, 0), attributes=kh.BATCH_TRANSACTIONAL)
        err, base, message = kh.parse_produce_v8(
            c.call(kh.produce_v8_request, topic, 0, txn))[(topic, 0)]
        assert (err, base) == (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1)
        assert NOT_SUPPORTED in message

        control = kh.record_batch([(None, b"\x00\x00\x00\x00\x00\x00", (), kh.now_ms())],
                                  producer=(1000, 0, 0),
                                  attributes=kh.BATCH_TRANSACTIONAL | kh.BATCH_CONTROL)
        err, base, message = kh.parse_produce_v8(
            c.call(kh.produce_v8_request, topic, 0, control))[(topic, 0)]
        assert (err, base) == (INVALID_RECORD, -1)
        assert "control" in message

        # nothing was written, and the connection goes on
        plain = kh.record_batch([(None, b"plain", (), kh.now_ms())])
        assert kh.parse_produce_v8(
            c.call(kh.produce_v8_request, topic, 0, plain))[(topic, 0)][:2] == (0, 0)
