"""streamlog's logical decoding output plugin (src/replication/
output_plugin.c): one message per appended batch, whole and byte-identical
to what the leader stored, a commit message per transaction that held
batches, and nothing else.  Driven through a slot on a real server with
pg_logical_slot_get_binary_changes."""

import pytest
from confluent_kafka import Producer
from replstream import REPLICATION_CONF, decode, stored_batches, topic_id


@pytest.fixture
def srv(make_server):
    return make_server(conf=REPLICATION_CONF)


def changes(srv, slot):
    rows = srv.sql("SELECT data FROM pg_logical_slot_get_binary_changes(%s, NULL, NULL)",
                   (slot,))
    return [decode(r[0]) for r in rows]


def batches_of(msgs):
    return [m for m in msgs if m[0] == "B"]


def test_plugin_sends_each_batch_once_as_stored(srv, unique_name):
    topic = unique_name("plug")
    srv.sql("SELECT streamlog.create_topic(%s, 2)", (topic,))
    srv.sql("SELECT pg_create_logical_replication_slot('s_plain', 'streamlog')")
    tid = topic_id(srv, topic)
    with srv.connect() as c:
        # one transaction, two partitions: one batch each, one commit
        with c.transaction():
            for i in range(5):
                c.execute("SELECT streamlog.produce(%s, %s, %s, partition => 0)",
                          (topic, f"k{i}", f"v{i}"))
            c.execute("SELECT streamlog.produce(%s, 'x', 'y', partition => 1)", (topic,))
        # a second transaction
        c.execute("SELECT streamlog.produce(%s, 'k', 'later', partition => 0)", (topic,))
    msgs = changes(srv, "s_plain")
    kinds = [m[0] for m in msgs]
    assert kinds == ["B", "B", "C", "B", "C"], kinds
    for p in (0, 1):
        stored = stored_batches(srv, topic, p)
        sent = {m[3]: m for m in batches_of(msgs) if m[2] == p}
        assert sorted(sent) == sorted(stored)
        for base, m in sent.items():
            assert m[1] == tid
            assert m[7] == stored[base], "batch bytes differ from the stored ones"
            assert m[4] == base + (5 if p == 0 and base == 0 else 1) - 1
    commits = [m for m in msgs if m[0] == "C"]
    assert commits[0][2] <= commits[1][1]
    # consumed: a second read returns nothing
    assert changes(srv, "s_plain") == []


def test_plugin_skips_rollbacks_and_other_tables(srv, unique_name):
    topic = unique_name("plug")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    srv.sql("CREATE TABLE plain_table (a int)")
    srv.sql("SELECT pg_create_logical_replication_slot('s_skip', 'streamlog')")
    with srv.connect() as c:
        c.execute("BEGIN")
        c.execute("SELECT streamlog.produce(%s, 'k', 'rolled back')", (topic,))
        c.execute("INSERT INTO plain_table VALUES (1)")
        c.execute("ROLLBACK")
        c.execute("INSERT INTO plain_table VALUES (2)")
        c.execute("UPDATE plain_table SET a = 3")
        # a savepoint rolled back inside a committed transaction
        c.execute("BEGIN")
        c.execute("SELECT streamlog.produce(%s, 'k', 'kept')", (topic,))
        c.execute("SAVEPOINT s")
        c.execute("SELECT streamlog.produce(%s, 'k', 'undone')", (topic,))
        c.execute("ROLLBACK TO SAVEPOINT s")
        c.execute("COMMIT")
    # a retention-like change that is no append: deleting the log start
    srv.sql("SELECT streamlog.delete_records(%s, 0, 1)", (topic,))
    msgs = changes(srv, "s_skip")
    assert [m[0] for m in msgs] == ["B", "C"]
    stored = stored_batches(srv, topic)
    assert msgs[0][3] == 0 and msgs[0][4] == 0
    assert b"kept" in msgs[0][7] and b"undone" not in msgs[0][7]
    assert b"rolled back" not in msgs[0][7]
    assert set(stored) <= {0}


def test_plugin_reassembles_batches_larger_than_a_row(srv, unique_name):
    topic = unique_name("plug")
    srv.sql("SELECT streamlog.create_topic(%s, 1, '{\"max.message.bytes\": \"4000000\"}')",
            (topic,))
    srv.sql("SELECT pg_create_logical_replication_slot('s_big', 'streamlog')")
    big = bytes(range(256)) * 1200  # 300 KiB, incompressible enough
    with srv.connect() as c:
        c.execute("SELECT streamlog.produce_record(%s, 'big'::bytea, %s)", (topic, big))
    rel = srv.sql("SELECT relid::regclass::text FROM streamlog.segment s "
                  "JOIN streamlog.topic t USING (topic_id) WHERE t.name = %s", (topic,))[0][0]
    chunks = srv.sql(f"SELECT count(*) FROM {rel}")[0][0]
    assert chunks > 1, "the batch should be stored as several chunk rows"
    msgs = changes(srv, "s_big")
    assert [m[0] for m in msgs] == ["B", "C"]
    assert msgs[0][7] == stored_batches(srv, topic)[0]
    assert big in msgs[0][7]


def test_plugin_sends_kafka_batches_unchanged(srv, unique_name):
    topic = unique_name("plug")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    srv.sql("SELECT pg_create_logical_replication_slot('s_kafka', 'streamlog')")
    producer = Producer({"bootstrap.servers": srv.kafka_bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 50})
    errors = []
    for i in range(20):
        producer.produce(topic, key=f"k{i}", value=f"v{i}", headers=[("h", b"1")],
                         partition=0, on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(30) == 0
    assert errors == [None] * 20
    msgs = changes(srv, "s_kafka")
    stored = stored_batches(srv, topic)
    sent = {m[3]: m[7] for m in batches_of(msgs)}
    assert sent == stored
    assert sum(1 for m in msgs if m[0] == "C") >= 1


def test_plugin_refuses_options(srv):
    srv.sql("SELECT pg_create_logical_replication_slot('s_opt', 'streamlog')")
    with pytest.raises(Exception, match="has no option"):
        srv.sql("SELECT * FROM pg_logical_slot_get_binary_changes('s_opt', NULL, NULL, "
                "'proto_version', '1')")
