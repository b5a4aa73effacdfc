"""The transaction coordinator (issue 14) through raw Kafka frames:
InitProducerId with a transactional id, AddPartitionsToTxn,
AddOffsetsToTxn, EndTxn and FindCoordinator for transaction keys, with
streamlog.transaction_coordinator on.  The partition side comes from
branch txlog: a transactional batch is appended through its SQL test door
(streamlog._txn_test_append) with the producer id and epoch the
coordinator gave, and the markers EndTxn writes are seen through the last
stable offset and the aborted-transaction index.  Real clients wait for
the door to open (README, "Kafka transactions")."""

import struct

import pytest

import kafka_helpers as kh
from kafka_helpers import array, i8, i16, i32, i64, string
from pgserver import PgServer, wait_until

FIND_COORDINATOR = 10
INIT_PRODUCER_ID = 22
ADD_PARTITIONS_TO_TXN = 24
ADD_OFFSETS_TO_TXN = 25
END_TXN = 26

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_REQUEST = 42
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
CONCURRENT_TRANSACTIONS = 51
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
OPERATION_NOT_ATTEMPTED = 55
PRODUCER_FENCED = 90

CONF = {
    "streamlog.transaction_coordinator": "on",
    # the cleaner runs the coordinator's periodic pass after each of its own
    "streamlog.retention_check_interval": "100ms",
}


@pytest.fixture(scope="module")
def txn_server(tmp_path_factory):
    srv = PgServer(tmp_path_factory.getbasetemp(), conf=CONF, name="txcoord")
    try:
        srv.start()
    except BaseException:
        srv.cleanup()
        raise
    yield srv
    srv.cleanup()


# -- frames (non-flexible versions: classic strings and arrays) -----------------------

def init_request(cid, tid, timeout_ms=60000, version=1):
    return kh.request_frame(INIT_PRODUCER_ID, version, cid, string(tid) + i32(timeout_ms))


def add_partitions_request(cid, tid, pid, epoch, topics, version=1):
    body = string(tid) + i64(pid) + i16(epoch) + array(
        list(topics.items()), lambda t: string(t[0]) + array(t[1], i32))
    return kh.request_frame(ADD_PARTITIONS_TO_TXN, version, cid, body)


def add_offsets_request(cid, tid, pid, epoch, group, version=1):
    body = string(tid) + i64(pid) + i16(epoch) + string(group)
    return kh.request_frame(ADD_OFFSETS_TO_TXN, version, cid, body)


def end_request(cid, tid, pid, epoch, commit, version=1):
    body = string(tid) + i64(pid) + i16(epoch) + i8(1 if commit else 0)
    return kh.request_frame(END_TXN, version, cid, body)


def find_coordinator_request(cid, key, key_type):
    return kh.request_frame(FIND_COORDINATOR, 1, cid, string(key) + i8(key_type))


class Txn:
    """One transactional producer's calls, answers parsed."""

    def __init__(self, server, tid):
        self.client = kh.RawClient(server.kafka_bootstrap)
        self.tid = tid
        self.pid = -1
        self.epoch = -1

    def init(self, timeout_ms=60000):
        r = kh.Reader(self.client.call(init_request, self.tid, timeout_ms))
        r.i32()
        error, pid, epoch = r.i16(), r.i64(), r.i16()
        if error == NONE:
            self.pid, self.epoch = pid, epoch
        return error

    def add(self, topics, epoch=None, version=1):
        r = kh.Reader(self.client.call(add_partitions_request, self.tid, self.pid,
                                       self.epoch if epoch is None else epoch, topics,
                                       version))
        r.i32()
        return {(name, p): e for name, parts in
                r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16()))))
                for p, e in parts}

    def add_offsets(self, group):
        r = kh.Reader(self.client.call(add_offsets_request, self.tid, self.pid, self.epoch,
                                       group))
        r.i32()
        return r.i16()

    def end(self, commit, epoch=None):
        r = kh.Reader(self.client.call(end_request, self.tid, self.pid,
                                       self.epoch if epoch is None else epoch, commit))
        r.i32()
        return r.i16()

    def close(self):
        self.client.close()


def txn_append(server, topic, pid, epoch, seq, values, partition=0):
    server.sql("SELECT streamlog._txn_test_append(%s, %s, %s, %s::smallint, %s, %s)",
               (topic, partition, pid, epoch, seq, values))


def lso(server, topic, partition=0):
    return server.sql("SELECT streamlog.last_stable_offset(%s, %s)", (topic, partition))[0][0]


def hwm(server, topic, partition=0):
    return kh.high_watermark(server, topic, partition)


def state(server, tid):
    rows = server.sql("SELECT producer_id, producer_epoch, state, partitions, groups "
                      "FROM streamlog.transactions WHERE transactional_id = %s", (tid,))
    return rows[0] if rows else None


def aborted(server, topic, partition=0):
    return server.sql(
        "SELECT producer_id, first_offset FROM streamlog.txn_aborted a "
        "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s AND partition = %s "
        "ORDER BY first_offset", (topic, partition))


def java_partition(s, n=50):
    """Utils.abs(s.hashCode()) % n for an ASCII string."""
    h = 0
    for c in s.encode():
        h = (h * 31 + c) & 0xFFFFFFFF
    if h >= 0x80000000:
        h -= 0x100000000
    return (0 if h == -0x80000000 else abs(h)) % n


def txn_log(server, tid):
    """The statuses of tid's records in __transaction_state, in order."""
    out = []
    for _, _, key, value, _ in kh.sql_records(server, "__transaction_state",
                                              java_partition(tid)):
        r = kh.Reader(key)
        assert r.i16() == 0
        if r.string() != tid:
            continue
        if value is None:
            out.append(None)
            continue
        version, pid, epoch, timeout, status = struct.unpack(">hqhib", value[:17])
        assert version == 0
        out.append(status)
    return out


def create_topic(server, name, partitions=1):
    server.sql("SELECT streamlog.create_topic(%s, %s)", (name, partitions))


# -- tests -----------------------------------------------------------------------------

def test_door_stays_closed_without_the_setting(make_server, unique_name):
    """Off: transactional producers fail fast."""
    server = make_server(conf={"streamlog.transaction_coordinator": "off"})
    with kh.RawClient(server.kafka_bootstrap) as c:
        r = kh.Reader(c.call(init_request, unique_name("tx")))
        r.i32()
        assert r.i16() == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        r = kh.Reader(c.call(end_request, unique_name("tx"), 1, 0, True))
        r.i32()
        assert r.i16() == TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def test_find_coordinator_names_this_node(txn_server, unique_name):
    with kh.RawClient(txn_server.kafka_bootstrap) as c:
        r = kh.Reader(c.call(find_coordinator_request, unique_name("tx"), 1))
        r.i32()
        error, _, node, host, port = r.i16(), r.string(), r.i32(), r.string(), r.i32()
        assert error == NONE
        assert port == txn_server.kafka_port
        r = kh.Reader(c.call(find_coordinator_request, "", 1))
        r.i32()
        assert r.i16() == INVALID_REQUEST


def test_commit_writes_markers_then_complete(txn_server, unique_name):
    topic, tid = unique_name("t"), unique_name("tx")
    create_topic(txn_server, topic, 2)
    t = Txn(txn_server, tid)
    assert t.init() == NONE
    assert t.epoch == 0
    assert t.add({topic: [0, 1]}) == {(topic, 0): NONE, (topic, 1): NONE}
    assert state(txn_server, tid)[2:4] == ("Ongoing", [f"{topic}-0", f"{topic}-1"])
    # adding the same partitions again changes nothing
    assert t.add({topic: [1]}) == {(topic, 1): NONE}
    txn_append(txn_server, topic, t.pid, t.epoch, 0, ["a", "b"])
    txn_append(txn_server, topic, t.pid, t.epoch, 0, ["c"], partition=1)
    assert lso(txn_server, topic) == 0 < hwm(txn_server, topic)

    assert t.end(True) == NONE
    assert state(txn_server, tid)[2:4] == ("CompleteCommit", [])
    # the marker follows the records: the LSO passes them all
    assert lso(txn_server, topic, 0) == hwm(txn_server, topic, 0) == 3
    assert lso(txn_server, topic, 1) == hwm(txn_server, topic, 1) == 2
    assert aborted(txn_server, topic) == []
    # Kafka's records: Empty, Ongoing (once), PrepareCommit, CompleteCommit
    assert txn_log(txn_server, tid) == [0, 1, 2, 4]

    # a retried commit is answered again; an abort of it is refused
    assert t.end(True) == NONE
    assert t.end(False) == INVALID_TXN_STATE
    # the next transaction starts from CompleteCommit
    assert t.add({topic: [0]}) == {(topic, 0): NONE}
    assert t.end(False) == NONE
    assert state(txn_server, tid)[2] == "CompleteAbort"
    t.close()


def test_abort_indexes_the_aborted_range(txn_server, unique_name):
    topic, tid = unique_name("t"), unique_name("tx")
    create_topic(txn_server, topic)
    t = Txn(txn_server, tid)
    assert t.init() == NONE
    assert t.add({topic: [0]}) == {(topic, 0): NONE}
    txn_append(txn_server, topic, t.pid, t.epoch, 0, ["x", "y"])
    assert t.end(False) == NONE
    assert aborted(txn_server, topic) == [(t.pid, 0)]
    assert lso(txn_server, topic) == hwm(txn_server, topic) == 3
    assert txn_log(txn_server, tid)[-2:] == [3, 5]
    t.close()


def test_init_again_fences_the_zombie_and_aborts_its_transaction(txn_server, unique_name):
    topic, tid = unique_name("t"), unique_name("tx")
    create_topic(txn_server, topic)
    zombie = Txn(txn_server, tid)
    assert zombie.init() == NONE
    assert zombie.add({topic: [0]}) == {(topic, 0): NONE}
    txn_append(txn_server, topic, zombie.pid, zombie.epoch, 0, ["z"])

    fresh = Txn(txn_server, tid)
    # the open transaction is aborted first; meanwhile the client retries
    assert fresh.init() == CONCURRENT_TRANSACTIONS
    assert state(txn_server, tid)[1:3] == (1, "CompleteAbort")
    assert aborted(txn_server, topic) == [(zombie.pid, 0)]
    assert lso(txn_server, topic) == hwm(txn_server, topic)
    assert fresh.init() == NONE
    assert (fresh.pid, fresh.epoch) == (zombie.pid, 2)

    # the zombie is fenced, as each API's version knows it
    assert zombie.end(True) == INVALID_PRODUCER_EPOCH
    assert zombie.add({topic: [0]}) == {(topic, 0): INVALID_PRODUCER_EPOCH}
    assert zombie.add({topic: [0]}, version=2) == {(topic, 0): PRODUCER_FENCED}
    assert fresh.add({topic: [0]}) == {(topic, 0): NONE}
    assert fresh.end(True) == NONE
    zombie.close()
    fresh.close()


def test_calls_out_of_order_get_kafkas_errors(txn_server, unique_name):
    topic, tid = unique_name("t"), unique_name("tx")
    create_topic(txn_server, topic)
    t = Txn(txn_server, tid)
    # unknown id
    t.pid, t.epoch = 12345, 0
    assert t.add({topic: [0]}) == {(topic, 0): INVALID_PRODUCER_ID_MAPPING}
    assert t.end(True) == INVALID_PRODUCER_ID_MAPPING
    # a timeout above streamlog.transaction_max_timeout
    assert t.init(timeout_ms=900001) == INVALID_TRANSACTION_TIMEOUT
    assert t.init(timeout_ms=0) == INVALID_TRANSACTION_TIMEOUT
    assert t.init() == NONE
    # nothing to end
    assert t.end(True) == INVALID_TXN_STATE
    # an unknown partition fails alone; the others are not attempted
    assert t.add({topic: [0, 7], "no-such-topic-" + tid: [0]}) == {
        (topic, 0): OPERATION_NOT_ATTEMPTED, (topic, 7): UNKNOWN_TOPIC_OR_PARTITION,
        ("no-such-topic-" + tid, 0): UNKNOWN_TOPIC_OR_PARTITION}
    assert state(txn_server, tid)[2] == "Empty"
    t.close()


def test_add_offsets_marks_the_groups_offsets_partition(txn_server, unique_name):
    topic, tid, group = unique_name("t"), unique_name("tx"), unique_name("g")
    create_topic(txn_server, topic)
    t = Txn(txn_server, tid)
    assert t.init() == NONE
    assert t.add_offsets(group) == NONE
    assert state(txn_server, tid)[2:5] == ("Ongoing", [], [group])
    assert t.add({topic: [0]}) == {(topic, 0): NONE}
    assert t.end(True) == NONE
    assert state(txn_server, tid)[2:5] == ("CompleteCommit", [], [])
    t.close()


def test_timed_out_transaction_is_aborted_and_its_producer_fenced(txn_server, unique_name):
    topic, tid = unique_name("t"), unique_name("tx")
    create_topic(txn_server, topic)
    t = Txn(txn_server, tid)
    assert t.init(timeout_ms=500) == NONE
    assert t.add({topic: [0]}) == {(topic, 0): NONE}
    txn_append(txn_server, topic, t.pid, t.epoch, 0, ["late"])
    wait_until(lambda: state(txn_server, tid)[2] == "CompleteAbort", timeout=60,
               what="the coordinator's pass aborts the timed-out transaction")
    assert state(txn_server, tid)[1] == t.epoch + 1
    assert aborted(txn_server, topic) == [(t.pid, 0)]
    assert lso(txn_server, topic) == hwm(txn_server, topic)
    assert t.end(True) == INVALID_PRODUCER_EPOCH
    t.close()


def test_state_survives_kill9(make_server, unique_name):
    srv = make_server(conf=CONF)
    topic, tid, idle = unique_name("t"), unique_name("tx"), unique_name("idle")
    create_topic(srv, topic)
    t = Txn(srv, tid)
    # the longest timeout: it cannot expire during the test
    assert t.init(timeout_ms=900000) == NONE
    assert t.add({topic: [0]}) == {(topic, 0): NONE}
    txn_append(srv, topic, t.pid, t.epoch, 0, ["open"])
    i = Txn(srv, idle)
    assert i.init() == NONE
    t.close()
    i.close()
    srv.kill9()
    srv.start()

    # the open transaction is still open, and still holds the LSO
    assert state(srv, tid)[:4] == (t.pid, t.epoch, "Ongoing", [f"{topic}-0"])
    assert lso(srv, topic) == 0 < hwm(srv, topic)
    # the next instance of the idle id gets the next epoch of the same id
    i = Txn(srv, idle)
    assert i.init() == NONE
    assert (i.pid, i.epoch) == (i.pid, 1)
    # the next instance of the other one aborts the open transaction
    t2 = Txn(srv, tid)
    assert t2.init() == CONCURRENT_TRANSACTIONS
    assert t2.init() == NONE
    assert (t2.pid, t2.epoch) == (t.pid, t.epoch + 2)
    assert lso(srv, topic) == hwm(srv, topic)
    assert aborted(srv, topic) == [(t.pid, 0)]
    assert txn_log(srv, tid) == [0, 1, 3, 5, 0]
    i.close()
    t2.close()


TXN_OFFSET_COMMIT = 28
OFFSET_FETCH = 9


def txn_offset_commit_request(cid, tid, group, pid, epoch, topic, offsets, version=2):
    body = string(tid) + string(group) + i64(pid) + i16(epoch) + array(
        [topic], lambda t: string(t) + array(
            sorted(offsets.items()), lambda po: i32(po[0]) + i64(po[1]) + i32(-1) + string("")))
    return kh.request_frame(TXN_OFFSET_COMMIT, version, cid, body)


def txn_offset_commit(t, group, topic, offsets, epoch=None):
    r = kh.Reader(t.client.call(txn_offset_commit_request, t.tid, group, t.pid,
                                t.epoch if epoch is None else epoch, topic, offsets))
    r.i32()
    return {(name, p): e for name, parts in
            r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16()))))
            for p, e in parts}


def group_offsets(server, group):
    return server.sql("SELECT t.name, o.partition, o.committed_offset FROM streamlog.group_offset o "
                      "JOIN streamlog.topic t USING (topic_id) WHERE o.group_id = %s "
                      "ORDER BY 1, 2", (group,))


def test_txn_offsets_are_the_groups_only_once_committed(txn_server, unique_name):
    topic, tid, group = unique_name("t"), unique_name("tx"), unique_name("g")
    create_topic(txn_server, topic, 2)
    t = Txn(txn_server, tid)
    assert t.init() == NONE
    # before AddOffsetsToTxn the group is not in the transaction
    assert txn_offset_commit(t, group, topic, {0: 5}) == {(topic, 0): INVALID_TXN_STATE}
    assert t.add_offsets(group) == NONE
    assert txn_offset_commit(t, group, topic, {0: 5, 1: 7, 9: 1}) == {
        (topic, 0): NONE, (topic, 1): NONE, (topic, 9): UNKNOWN_TOPIC_OR_PARTITION}
    assert txn_offset_commit(t, group, topic, {0: 6}) == {(topic, 0): NONE}
    # a fenced epoch
    assert txn_offset_commit(t, group, topic, {0: 9}, epoch=t.epoch - 1) == {
        (topic, 0): INVALID_PRODUCER_EPOCH}
    assert group_offsets(txn_server, group) == []
    assert t.end(True) == NONE
    assert group_offsets(txn_server, group) == [(topic, 0, 6), (topic, 1, 7)]

    # an aborted transaction's offsets never show
    assert t.add_offsets(group) == NONE
    assert txn_offset_commit(t, group, topic, {0: 100}) == {(topic, 0): NONE}
    assert t.end(False) == NONE
    assert group_offsets(txn_server, group) == [(topic, 0, 6), (topic, 1, 7)]
    assert t.add_offsets(group) == NONE
    assert t.end(True) == NONE
    assert group_offsets(txn_server, group) == [(topic, 0, 6), (topic, 1, 7)]
    t.close()


def test_produce_takes_transactional_batches_of_added_partitions_only(txn_server, unique_name):
    """KIP-890's verification: a batch of a partition the coordinator did
    not add would hold the last stable offset with no marker to come."""
    topic, tid = unique_name("t"), unique_name("tx")
    create_topic(txn_server, topic, 2)
    t = Txn(txn_server, tid)
    assert t.init() == NONE

    def produce(partition, seq):
        batch = kh.record_batch([(None, b"v", (), kh.now_ms())], producer=(t.pid, t.epoch, seq),
                                attributes=kh.BATCH_TRANSACTIONAL)
        err, base, _ = kh.parse_produce_v8(
            t.client.call(kh.produce_v8_request, topic, partition, batch))[(topic, partition)]
        return err

    assert produce(0, 0) == INVALID_TXN_STATE
    assert t.add({topic: [0]}) == {(topic, 0): NONE}
    assert produce(0, 0) == NONE
    assert produce(1, 0) == INVALID_TXN_STATE
    assert lso(txn_server, topic, 0) == 0
    assert t.end(True) == NONE
    assert lso(txn_server, topic, 0) == hwm(txn_server, topic, 0) == 2
    # after the end, the same epoch needs the partition added again
    assert produce(0, 1) == INVALID_TXN_STATE
    assert lso(txn_server, topic, 1) == hwm(txn_server, topic, 1) == 0
    t.close()


ILLEGAL_GENERATION = 22


def txn_offset_commit_v3_request(cid, tid, group, pid, epoch, generation, member, topic, offsets):
    from kafka_helpers import compact_string, uvarint
    body = (compact_string(tid) + compact_string(group) + i64(pid) + i16(epoch) + i32(generation)
            + compact_string(member) + compact_string(None) + uvarint(2) + compact_string(topic)
            + uvarint(len(offsets) + 1))
    for p, o in sorted(offsets.items()):
        body += i32(p) + i64(o) + i32(-1) + compact_string(None) + uvarint(0)
    body += uvarint(0) + uvarint(0)
    return kh.request_frame(TXN_OFFSET_COMMIT, 3, cid, body, header_version=2)


def test_txn_offset_commit_v3_fences_a_member_of_another_generation(txn_server, unique_name):
    """KIP-447: a producer naming a consumer's member id and generation the
    group does not have may not commit; without them nothing is checked."""
    topic, tid, group = unique_name("t"), unique_name("tx"), unique_name("g")
    create_topic(txn_server, topic)
    t = Txn(txn_server, tid)
    assert t.init() == NONE
    assert t.add_offsets(group) == NONE

    def commit(generation, member):
        r = kh.Reader(t.client.call(txn_offset_commit_v3_request, tid, group, t.pid, t.epoch,
                                    generation, member, topic, {0: 4}))
        r.uvarint()
        r.i32()
        assert r.uvarint() == 2
        assert r.take(r.uvarint() - 1).decode() == topic
        assert r.uvarint() == 2
        assert r.i32() == 0
        return r.i16()

    assert commit(5, "ghost-member") == ILLEGAL_GENERATION
    assert commit(-1, "") == NONE
    assert t.end(True) == NONE
    assert group_offsets(txn_server, group) == [(topic, 0, 4)]
    t.close()


def test_idle_transactional_ids_expire(make_server, unique_name):
    """transactional.id.expiration.ms: an id without a transaction for
    longer is removed, its record tombstoned; one with an open transaction
    stays (its timeout handles it)."""
    srv = make_server(conf=dict(CONF, **{"streamlog.transactional_id_expiration": "1s"}))
    topic, idle, busy = unique_name("t"), unique_name("idle"), unique_name("busy")
    create_topic(srv, topic)
    i = Txn(srv, idle)
    assert i.init() == NONE
    b = Txn(srv, busy)
    assert b.init(timeout_ms=900000) == NONE
    assert b.add({topic: [0]}) == {(topic, 0): NONE}
    wait_until(lambda: state(srv, idle) is None, timeout=60,
               what="the idle transactional id expires")
    assert txn_log(srv, idle) == [0, None]
    assert state(srv, busy)[2] == "Ongoing"
    # a new instance starts over with a new producer id
    i2 = Txn(srv, idle)
    assert i2.init() == NONE
    assert i2.epoch == 0 and i2.pid != i.pid
    i.close()
    b.close()
    i2.close()
