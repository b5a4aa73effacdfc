"""Kafka's error codes for transaction calls out of order (issue 14, "Bad
input and faults"), through raw frames, as Kafka 3.9's
TransactionCoordinator answers them:

- CONCURRENT_TRANSACTIONS while a transaction's markers are pending (its
  state is PrepareCommit or PrepareAbort), for every call but the EndTxn of
  the other outcome, which is INVALID_TXN_STATE;
- INVALID_TXN_STATE for an EndTxn with nothing to end or of the other
  outcome than the one completed; a retried EndTxn of the same outcome is
  answered NONE;
- INVALID_PRODUCER_ID_MAPPING for an id that does not exist or a producer
  id that is not the id's;
- PRODUCER_FENCED from the versions that know it (InitProducerId v4,
  AddPartitionsToTxn / AddOffsetsToTxn / EndTxn v2, TxnOffsetCommit v3),
  INVALID_PRODUCER_EPOCH before them."""

import pytest

import kafka_helpers as kh
from kafka_helpers import compact_string, i16, i32, i64, string, uvarint
from pgserver import wait_until
from test_txn_coordinator import (ADD_OFFSETS_TO_TXN, CONCURRENT_TRANSACTIONS, END_TXN,
                                  INIT_PRODUCER_ID, INVALID_PRODUCER_EPOCH,
                                  INVALID_PRODUCER_ID_MAPPING, INVALID_TXN_STATE, NONE,
                                  PRODUCER_FENCED, Txn, create_topic, hwm, lso, state,
                                  txn_append, txn_offset_commit, txn_offset_commit_request,
                                  txn_offset_commit_v3_request)

CONF = {"streamlog.transaction_coordinator": "on"}


@pytest.fixture
def paused_server(make_server):
    """A server whose transaction coordinator writes no markers
    (streamlog.transaction_markers_hold), so that a Prepare state stays
    until the test lets the periodic pass finish it: the pass itself may
    run at any time (an invalidation catch-up signal wakes the cleaner)."""
    return make_server(conf=dict(CONF, **{"streamlog.transaction_markers_hold": "on"}))


def cleaner_runs(srv):
    """Passes of the cleaner, each followed by the coordinator's"""
    return srv.sql("SELECT value FROM streamlog.stat_broker WHERE name = 'cleaner_runs'")[0][0]


def end_v(t, commit, version, epoch=None):
    frame = kh.request_frame(END_TXN, version, t.client.next_correlation_id(),
                             string(t.tid) + i64(t.pid) + i16(t.epoch if epoch is None else epoch)
                             + bytes([1 if commit else 0]))
    t.client.send(frame)
    r = kh.Reader(t.client.recv_frame()[1])
    r.i32()
    return r.i16()


def add_offsets_v(t, group, version, epoch=None):
    frame = kh.request_frame(ADD_OFFSETS_TO_TXN, version, t.client.next_correlation_id(),
                             string(t.tid) + i64(t.pid)
                             + i16(t.epoch if epoch is None else epoch) + string(group))
    t.client.send(frame)
    r = kh.Reader(t.client.recv_frame()[1])
    r.i32()
    return r.i16()


def init_expecting(t, pid, epoch, version):
    """InitProducerId v3/v4 (flexible) naming the producer id and epoch the
    client had (KIP-360): (error, producer id, epoch)"""
    body = compact_string(t.tid) + i32(60000) + i64(pid) + i16(epoch) + uvarint(0)
    t.client.send(kh.request_frame(INIT_PRODUCER_ID, version, t.client.next_correlation_id(),
                                   body, header_version=2))
    r = kh.Reader(t.client.recv_frame()[1])
    r.uvarint()
    r.i32()
    return r.i16(), r.i64(), r.i16()


def txn_offset_commit_v3(t, group, topic, offsets, epoch):
    r = kh.Reader(t.client.call(txn_offset_commit_v3_request, t.tid, group, t.pid, epoch,
                                -1, "", topic, offsets))
    r.uvarint()
    r.i32()
    assert r.uvarint() == 2
    r.take(r.uvarint() - 1)
    assert r.uvarint() == len(offsets) + 1
    errors = set()
    for _ in offsets:
        r.i32()
        errors.add(r.i16())
        r.uvarint()
    return errors


def test_calls_while_markers_are_pending(paused_server, unique_name):
    """A transaction in PrepareCommit, as a coordinator that stopped
    between its Prepare record and its markers leaves it: every call but
    an EndTxn abort is told to retry (CONCURRENT_TRANSACTIONS); the
    periodic pass then writes the markers, and the retried EndTxn commit
    is answered NONE."""
    srv = paused_server
    topic, tid, group = unique_name("t"), unique_name("tx"), unique_name("g")
    create_topic(srv, topic)
    t = Txn(srv, tid)
    assert t.init() == NONE
    assert t.add({topic: [0]}) == {(topic, 0): NONE}
    assert t.add_offsets(group) == NONE
    txn_append(srv, topic, t.pid, t.epoch, 0, ["a", "b"])
    srv.sql("UPDATE streamlog.txn_state SET state = 2 WHERE transactional_id = %s", (tid,))
    assert state(srv, tid)[2] == "PrepareCommit"

    assert t.add({topic: [0]}) == {(topic, 0): CONCURRENT_TRANSACTIONS}
    assert t.add_offsets(group) == CONCURRENT_TRANSACTIONS
    assert txn_offset_commit(t, group, topic, {0: 2}) == {(topic, 0): CONCURRENT_TRANSACTIONS}
    assert t.end(True) == CONCURRENT_TRANSACTIONS
    assert t.end(False) == INVALID_TXN_STATE
    other = Txn(srv, tid)
    assert other.init() == CONCURRENT_TRANSACTIONS
    # nothing of it is readable yet: the LSO stays at the transaction
    assert lso(srv, topic) == 0

    # periodic passes with the hold on leave the Prepare state as it is
    runs = cleaner_runs(srv)
    srv.update_conf({"streamlog.retention_check_interval": "100ms"})
    srv.reload()
    wait_until(lambda: cleaner_runs(srv) >= runs + 2, timeout=60,
               what="two periodic passes with the hold on")
    assert state(srv, tid)[2] == "PrepareCommit"
    assert lso(srv, topic) == 0

    srv.update_conf({"streamlog.transaction_markers_hold": "off"})
    srv.reload()
    wait_until(lambda: state(srv, tid)[2] == "CompleteCommit", timeout=60,
               what="the periodic pass writes the pending markers")
    assert lso(srv, topic) == hwm(srv, topic) == 3
    assert t.end(True) == NONE
    assert t.end(False) == INVALID_TXN_STATE
    t.close()
    other.close()


def test_end_of_the_other_outcome_and_retries(make_server, unique_name):
    srv = make_server(conf=CONF)
    topic, tid = unique_name("t"), unique_name("tx")
    create_topic(srv, topic)
    t = Txn(srv, tid)
    assert t.init() == NONE
    assert t.end(False) == INVALID_TXN_STATE          # Empty: nothing to end
    assert t.add({topic: [0]}) == {(topic, 0): NONE}
    assert t.end(False) == NONE
    assert t.end(False) == NONE                       # the retry of a lost answer
    assert t.end(True) == INVALID_TXN_STATE           # CompleteAbort is not a commit
    assert t.add({topic: [0]}) == {(topic, 0): NONE}
    assert t.end(True) == NONE
    assert t.end(True) == NONE
    assert t.end(False) == INVALID_TXN_STATE
    t.close()


def test_producer_id_mapping(make_server, unique_name):
    srv = make_server(conf=CONF)
    topic, tid, group = unique_name("t"), unique_name("tx"), unique_name("g")
    create_topic(srv, topic)
    t = Txn(srv, tid)
    assert t.init() == NONE
    real = t.pid
    t.pid = real + 1000                                # not this id's producer
    assert t.add({topic: [0]}) == {(topic, 0): INVALID_PRODUCER_ID_MAPPING}
    assert t.add_offsets(group) == INVALID_PRODUCER_ID_MAPPING
    assert t.end(True) == INVALID_PRODUCER_ID_MAPPING
    assert txn_offset_commit(t, group, topic, {0: 1}) == {(topic, 0): INVALID_PRODUCER_ID_MAPPING}
    t.pid = real
    assert t.add({topic: [0]}) == {(topic, 0): NONE}
    # an id nobody initialised
    ghost = Txn(srv, unique_name("ghost"))
    ghost.pid, ghost.epoch = real, t.epoch
    assert ghost.add_offsets(group) == INVALID_PRODUCER_ID_MAPPING
    assert txn_offset_commit(ghost, group, topic, {0: 1}) == {
        (topic, 0): INVALID_PRODUCER_ID_MAPPING}
    assert t.end(False) == NONE
    t.close()
    ghost.close()


def test_fenced_producer_per_api_version(make_server, unique_name):
    srv = make_server(conf=CONF)
    topic, tid, group = unique_name("t"), unique_name("tx"), unique_name("g")
    create_topic(srv, topic)
    t = Txn(srv, tid)
    assert t.init() == NONE
    old = t.epoch
    fresh = Txn(srv, tid)
    assert fresh.init() == NONE
    assert fresh.epoch == old + 1
    assert fresh.add({topic: [0]}) == {(topic, 0): NONE}
    assert fresh.add_offsets(group) == NONE

    assert t.add({topic: [0]}, version=1) == {(topic, 0): INVALID_PRODUCER_EPOCH}
    assert t.add({topic: [0]}, version=2) == {(topic, 0): PRODUCER_FENCED}
    assert add_offsets_v(t, group, 1) == INVALID_PRODUCER_EPOCH
    assert add_offsets_v(t, group, 2) == PRODUCER_FENCED
    assert end_v(t, True, 1) == INVALID_PRODUCER_EPOCH
    assert end_v(t, True, 2) == PRODUCER_FENCED
    t.epoch = fresh.epoch
    r = kh.Reader(t.client.call(txn_offset_commit_request, tid, group, t.pid, old, topic, {0: 1}))
    r.i32()
    assert {e for _, parts in r.array(lambda r: (r.string(), r.array(
        lambda r: (r.i32(), r.i16())))) for _, e in parts} == {INVALID_PRODUCER_EPOCH}
    assert txn_offset_commit_v3(t, group, topic, {0: 1}, old) == {PRODUCER_FENCED}

    # the fresh producer's own transaction is untouched by all of it
    assert fresh.end(False) == NONE
    assert state(srv, tid)[2] == "CompleteAbort"
    # KIP-360: an init naming an epoch the id has left behind
    assert init_expecting(t, t.pid, old, 3)[0] == INVALID_PRODUCER_EPOCH
    assert init_expecting(t, t.pid, old, 4)[0] == PRODUCER_FENCED
    assert state(srv, tid)[1:3] == (fresh.epoch, "CompleteAbort")
    t.close()
    fresh.close()
