"""TRANSACTIONAL_ID privileges (issue 14), as Kafka's: WRITE on the
transactional id to use it (InitProducerId, AddPartitionsToTxn,
AddOffsetsToTxn, TxnOffsetCommit, EndTxn), DESCRIBE to see it
(DescribeTransactions refuses, ListTransactions leaves out), answered
TRANSACTIONAL_ID_AUTHORIZATION_FAILED.  Raw frames act as a plain role
(streamlog.anonymous_role); librdkafka logs in over SASL as a plain role;
privileges are granted and revoked through streamlog.grant / revoke."""

import uuid

import pytest

import kafka_helpers as kh
from pgserver import PgServer
from test_txn_admin import describe, list_transactions
from test_txn_coordinator import CONF, Txn, create_topic, txn_offset_commit

ROLE = "txn_authz_user"
NONE = 0
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
TRANSACTIONAL_ID_NOT_FOUND = 105


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = PgServer(tmp_path_factory.getbasetemp(), name="txauthz",
                   conf=dict(CONF, **{"streamlog.anonymous_role": ROLE}))
    try:
        srv.start()
        srv.sql(f"CREATE ROLE {ROLE} LOGIN")
    except BaseException:
        srv.cleanup()
        raise
    yield srv
    srv.cleanup()


def fresh(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def grant(srv, privileges, on_type, name):
    srv.sql("SELECT streamlog.grant(%s, %s, %s, %s, 'literal')",
            (privileges, on_type, name, ROLE))


def revoke(srv, privileges, on_type, name):
    srv.sql("SELECT streamlog.revoke(%s, %s, %s, %s, 'literal')",
            (privileges, on_type, name, ROLE))


def test_init_producer_id_needs_write_on_the_transactional_id(server):
    tid = fresh("tx")
    p = Txn(server, tid)
    try:
        assert p.init() == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        grant(server, "describe", "transactional_id", tid)
        assert p.init() == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        grant(server, "write", "transactional_id", tid)
        assert p.init() == NONE
    finally:
        p.close()


def test_transaction_calls_need_write_on_the_transactional_id(server):
    topic, group, tid = fresh("t"), fresh("g"), fresh("tx")
    create_topic(server, topic)
    grant(server, "write", "topic", topic)
    grant(server, "read", "group", group)
    grant(server, "write", "transactional_id", tid)
    p = Txn(server, tid)
    try:
        assert p.init() == NONE
        assert set(p.add({topic: [0]}).values()) == {NONE}
        assert p.add_offsets(group) == NONE
        # the privilege taken away in the middle of the transaction
        revoke(server, "write", "transactional_id", tid)
        assert set(p.add({topic: [0]}).values()) == {TRANSACTIONAL_ID_AUTHORIZATION_FAILED}
        assert p.add_offsets(group) == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        grant(server, "read", "topic", topic)
        assert txn_offset_commit(p, group, topic, {0: 1}) == {
            (topic, 0): TRANSACTIONAL_ID_AUTHORIZATION_FAILED}
        assert p.end(commit=True) == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        grant(server, "write", "transactional_id", tid)
        assert p.end(commit=False) == NONE
    finally:
        p.close()


def test_describe_and_list_need_describe(server):
    tid = fresh("tx")
    grant(server, "write", "transactional_id", tid)
    p = Txn(server, tid)
    try:
        assert p.init() == NONE
        revoke(server, "write", "transactional_id", tid)
        assert describe(server, [tid])[tid][0] == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert tid not in list_transactions(server)[2]

        grant(server, "describe", "transactional_id", tid)
        d = describe(server, [tid])[tid]
        assert d[0] == NONE and d[1] == "Empty" and d[4] == p.pid
        assert list_transactions(server)[2][tid] == (p.pid, "Empty")
        # an id that does not exist is not found, once the caller may see it
        other = fresh("tx")
        assert describe(server, [other])[other][0] == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        grant(server, "describe", "transactional_id", other)
        assert describe(server, [other])[other][0] == TRANSACTIONAL_ID_NOT_FOUND
    finally:
        p.close()


def test_sasl_user_needs_write_with_a_real_client(make_server):
    """librdkafka's init_transactions as a SASL user: refused for good
    without WRITE on its transactional id, served once granted."""
    from confluent_kafka import KafkaError, KafkaException, Producer
    from test_sasl import PASSWORD, ck_conf, sasl_server_with

    srv = sasl_server_with(make_server, **CONF)
    srv.sql(f"CREATE ROLE carol LOGIN PASSWORD '{PASSWORD}'")
    tid = fresh("tx")

    def producer():
        return Producer(dict(ck_conf("SCRAM-SHA-256", "carol"),
                             **{"bootstrap.servers": srv.sasl_bootstrap,
                                "transactional.id": tid}))
    p = producer()
    with pytest.raises(KafkaException) as refused:
        p.init_transactions(60)
    assert refused.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    del p

    srv.sql("SELECT streamlog.grant('write', 'transactional_id', %s, 'carol')", (tid,))
    p = producer()
    p.init_transactions(60)
    assert srv.sql("SELECT state FROM streamlog.transactions WHERE transactional_id = %s",
                   (tid,)) == [("Empty",)]
