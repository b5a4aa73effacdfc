"""Idempotent producers (P6): InitProducerId, a retried batch stored once,
a gap or an old epoch refused, and the sequence state rebuilt after a crash.
Batches are built by hand so that a retry can be sent byte for byte."""

import confluent_kafka

import kafka_helpers as kh


def produce(client, topic, batch):
    """(error_code, base_offset) of a Produce v3 of batch to partition 0"""
    return kh.parse_produce_v3(client.call(kh.produce_request, topic, [(0, batch)]))[(topic, 0)]


def batch(pid, epoch, seq, n, tag):
    now = kh.now_ms()
    return kh.record_batch([(b"k", f"{tag}-{i}".encode(), [], now) for i in range(n)],
                           producer=(pid, epoch, seq))


def new_topic(srv, name):
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (name,))


def init_producer(client, version=0, **kwargs):
    err, pid, epoch = kh.parse_init_producer_id(
        client.call(kh.init_producer_id_request, version, **kwargs), version)
    assert err == kh.NONE
    return pid, epoch


def stored_values(srv, topic):
    return [value.decode() for _off, _ts, _key, value, _h in kh.sql_records(srv, topic, 0)]


def test_retry_is_stored_once_and_gaps_are_refused(make_server, unique_name):
    srv = make_server()
    topic = unique_name("idem")
    new_topic(srv, topic)
    with kh.RawClient(srv.kafka_bootstrap) as c:
        pid, epoch = init_producer(c)
        assert pid >= 0 and epoch == 0
        other_pid, _ = init_producer(c)
        assert other_pid != pid, "producer ids are never handed out twice"

        first = batch(pid, epoch, 0, 3, "a")
        assert produce(c, topic, first) == (kh.NONE, 0)
        # the same batch again, as a producer retries after a lost response
        assert produce(c, topic, first) == (kh.NONE, 0)
        assert kh.high_watermark(srv, topic) == 3

        # sequence 5 after 0..2 leaves a gap
        err, _ = produce(c, topic, batch(pid, epoch, 5, 1, "gap"))
        assert err == kh.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert kh.high_watermark(srv, topic) == 3

        assert produce(c, topic, batch(pid, epoch, 3, 2, "b")) == (kh.NONE, 3)
    assert stored_values(srv, topic) == ["a-0", "a-1", "a-2", "b-0", "b-1"]


def test_sequence_state_survives_a_crash(make_server, unique_name):
    srv = make_server()
    topic = unique_name("idem-crash")
    new_topic(srv, topic)
    with kh.RawClient(srv.kafka_bootstrap) as c:
        pid, epoch = init_producer(c)
        assert produce(c, topic, batch(pid, epoch, 0, 2, "x")) == (kh.NONE, 0)
        last = batch(pid, epoch, 2, 2, "y")
        assert produce(c, topic, last) == (kh.NONE, 2)
    srv.kill9()
    srv.start()
    with kh.RawClient(srv.kafka_bootstrap) as c:
        # the retry of the last acknowledged batch is recognised after the restart
        assert produce(c, topic, last) == (kh.NONE, 2)
        err, _ = produce(c, topic, batch(pid, epoch, 9, 1, "gap"))
        assert err == kh.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert produce(c, topic, batch(pid, epoch, 4, 1, "z")) == (kh.NONE, 4)
        # a new producer id after the restart is not one handed out before
        new_pid, _ = init_producer(c)
        assert new_pid > pid
    assert stored_values(srv, topic) == ["x-0", "x-1", "y-0", "y-1", "z-0"]


def test_producer_the_partition_forgot_goes_on(make_server, unique_name):
    """After a restart a partition rebuilds its producers' sequence state
    from its newest stored batches only; a producer idle for longer than
    that (or whose records retention removed) is unknown again, and its
    next batch does not start at sequence 0.  Kafka (KIP-360) takes any
    sequence from a producer it has no state for: refusing it is fatal to
    the client's idempotent producer."""
    srv = make_server()
    topic = unique_name("idem-forgot")
    new_topic(srv, topic)
    with kh.RawClient(srv.kafka_bootstrap) as c:
        pid, epoch = init_producer(c)
        assert produce(c, topic, batch(pid, epoch, 0, 3, "old")) == (kh.NONE, 0)
    # more batches by other writers than a rebuild looks at: a SQL
    # transaction stores its records of a partition as one batch
    with srv.connect(autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(f"""DO $$ BEGIN FOR i IN 1..10050 LOOP
                           PERFORM streamlog.produce('{topic}', NULL, 'x' || i, partition => 0);
                           COMMIT;
                         END LOOP; END $$""")
        # their WAL durable before the crash
        conn.execute("CHECKPOINT")
    srv.kill9()
    srv.start()
    with kh.RawClient(srv.kafka_bootstrap) as c:
        err, base = produce(c, topic, batch(pid, epoch, 3, 2, "new"))
        assert (err, base) == (kh.NONE, 10053)
        # from there on its sequence is known again: a gap is refused
        err, _ = produce(c, topic, batch(pid, epoch, 9, 1, "gap"))
        assert err == kh.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert kh.high_watermark(srv, topic) == 10055


def test_old_epoch_is_fenced(make_server, unique_name):
    srv = make_server()
    topic = unique_name("idem-epoch")
    new_topic(srv, topic)
    with kh.RawClient(srv.kafka_bootstrap) as c:
        pid, epoch = init_producer(c)
        assert produce(c, topic, batch(pid, epoch, 0, 1, "e0")) == (kh.NONE, 0)
        # InitProducerId v3 with the producer's id bumps its epoch (KIP-360)
        same_pid, bumped = init_producer(c, 3, producer_id=pid, epoch=epoch)
        assert same_pid == pid and bumped == epoch + 1
        assert produce(c, topic, batch(pid, bumped, 0, 1, "e1")) == (kh.NONE, 1)
        err, _ = produce(c, topic, batch(pid, epoch, 1, 1, "stale"))
        assert err == kh.INVALID_PRODUCER_EPOCH
    assert stored_values(srv, topic) == ["e0-0", "e1-0"]


def test_librdkafka_idempotent_producer(server, unique_name):
    topic = unique_name("idem-ck")
    new_topic(server, topic)
    errors = []
    p = confluent_kafka.Producer({"bootstrap.servers": server.kafka_bootstrap,
                                  "enable.idempotence": True, "linger.ms": 2})
    for i in range(3000):
        p.produce(topic, key=b"k", value=str(i).encode(), partition=0,
                  on_delivery=lambda e, m: errors.append(e) if e else None)
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    assert errors == []
    assert stored_values(server, topic) == [str(i) for i in range(3000)]
