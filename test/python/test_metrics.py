"""The shared-memory counters and their pg_stat-style views (issue 15):
streamlog.stat_api, stat_api_errors, stat_topics, stat_connections,
stat_listeners, stat_broker, stat_reset(), and the slow request log
(streamlog.log_min_request_duration), checked against what real clients
(confluent-kafka, kafka-python, raw frames) and SQL did."""

import psycopg
import pytest
from confluent_kafka import Producer

import kafka_helpers as kh
from pgserver import wait_until


def topic_rows(srv, topic):
    """{(partition, door): (bytes_in, records_in, bytes_out, records_out,
    produce_requests, produce_failed, fetch_requests, fetch_failed)}"""
    rows = srv.sql("SELECT partition, door, bytes_in, records_in, bytes_out, records_out, "
                   "produce_requests, produce_failed, fetch_requests, fetch_failed "
                   "FROM streamlog.stat_topics WHERE topic = %s", (topic,))
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def api_requests(srv, api):
    rows = srv.sql("SELECT coalesce(sum(requests), 0), coalesce(sum(errors), 0) "
                   "FROM streamlog.stat_api WHERE api = %s", (api,))
    return rows[0][0], rows[0][1]


def wait_requests(srv, api, predicate, what):
    """Wait for stat_api's (requests, errors) of api to satisfy predicate: a
    request is counted once its answer is sent, a moment after the client
    read it"""
    wait_until(lambda: predicate(api_requests(srv, api)), 30, what)
    return api_requests(srv, api)


def watcher(srv):
    return psycopg.connect(host=srv.host, port=srv.port, user="metrics_watcher",
                           dbname="postgres", autocommit=True)


def raw_fetch_all(srv, topic, partition):
    """The partition's stored batches from offset 0, as one Fetch v4 returns
    them (the bytes a consumer reading it whole is sent)"""
    with kh.RawClient(srv.kafka_bootstrap) as c:
        error, _hw, records = kh.parse_fetch_v4(
            c.call(kh.fetch_request, topic, partition, 0))[(topic, partition)]
    assert error == kh.NONE
    return records


def test_kafka_produce_and_consume_are_counted(make_server, unique_name):
    srv = make_server()
    topic = unique_name("metrics")
    srv.sql("SELECT streamlog.create_topic(%s, 2)", (topic,))
    srv.sql("SELECT streamlog.stat_reset()")

    n = 500
    producer = Producer({"bootstrap.servers": srv.kafka_bootstrap, "linger.ms": 5,
                         "client.id": "metrics-producer"})
    for i in range(n):
        producer.produce(topic, key=f"k{i}".encode(), value=b"v" * (i % 50), partition=0)
    assert producer.flush(30) == 0

    # what a whole read of the partition is sent, byte for byte: the batches
    # stored, which are what the producer sent
    stored = raw_fetch_all(srv, topic, 0)
    assert kh.high_watermark(srv, topic, 0) == n
    rows = topic_rows(srv, topic)
    assert set(rows) == {(0, "kafka")}
    bytes_in, records_in, bytes_out, records_out, produces, produce_failed, fetches, \
        fetch_failed = rows[(0, "kafka")]
    assert (bytes_in, records_in) == (len(stored), n)
    assert (bytes_out, records_out) == (len(stored), n)
    assert produces >= 1 and produce_failed == 0
    assert fetches == 1 and fetch_failed == 0

    # a confluent-kafka consumer reading it whole is sent every batch once
    got = kh.ck_consume(srv.kafka_bootstrap, topic, 0, n)
    assert len(got) == n
    rows = topic_rows(srv, topic)
    assert rows[(0, "kafka")][2:4] == (2 * len(stored), 2 * n)

    produce_requests, produce_errors = wait_requests(srv, "Produce", lambda r: r[0] >= 1,
                                                     "Produce requests to be counted")
    assert produce_errors == 0
    wait_requests(srv, "Fetch", lambda r: r[0] >= 2, "Fetch requests to be counted")
    wait_requests(srv, "Metadata", lambda r: r[0] >= 1, "Metadata requests to be counted")
    wait_requests(srv, "ApiVersions", lambda r: r[0] >= 2, "ApiVersions requests to be counted")
    # latencies come from the histograms: present, ordered, split
    p50, p90, p99, mean, queue, local, remote, send = srv.sql(
        "SELECT max(p50_ms), max(p90_ms), max(p99_ms), max(mean_ms), max(queue_mean_ms), "
        "max(local_mean_ms), max(remote_mean_ms), max(send_mean_ms) "
        "FROM streamlog.stat_api WHERE api = 'Produce'")[0]
    assert 0 <= p50 <= p90 <= p99
    assert mean > 0 and local > 0
    assert queue >= 0 and remote >= 0 and send >= 0


def test_kafka_python_counts_records_exactly(make_server, unique_name):
    from kafka import KafkaProducer
    srv = make_server()
    topic = unique_name("metrics_kp")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    n = 200
    producer = KafkaProducer(bootstrap_servers=srv.kafka_bootstrap, acks=1)
    for i in range(n):
        producer.send(topic, key=b"key", value=f"value {i}".encode(), partition=0)
    producer.flush(30)
    producer.close()
    got = kh.kp_consume(srv.kafka_bootstrap, topic, 0, n)
    assert len(got) == n
    stored = raw_fetch_all(srv, topic, 0)
    rows = topic_rows(srv, topic)
    bytes_in, records_in, bytes_out, records_out = rows[(0, "kafka")][:4]
    assert (bytes_in, records_in) == (len(stored), n)
    # kafka-python read it once, the raw fetch once more
    assert (bytes_out, records_out) == (2 * len(stored), 2 * n)


def test_sql_door_is_counted_apart(make_server, unique_name):
    srv = make_server()
    topic = unique_name("metrics_sql")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    n = 30
    with srv.connect() as conn:
        with conn.transaction():
            for i in range(n):
                conn.execute("SELECT streamlog.produce(%s, %s, %s, partition => 0)",
                             (topic, f"k{i}", f"value {i}"))
        # a rolled back produce counts nothing
        with pytest.raises(Exception):
            with conn.transaction():
                conn.execute("SELECT streamlog.produce(%s, 'x', 'rolled back', partition => 0)",
                             (topic,))
                raise RuntimeError("roll back")
    records = srv.sql("SELECT key, value, headers FROM streamlog.read(%s, 0)", (topic,))
    assert len(records) == n
    payload = sum(len(k) + len(v) for k, v, _h in records)

    rows = topic_rows(srv, topic)
    assert set(rows) == {(0, "sql")}
    bytes_in, records_in, bytes_out, records_out, produces, _pf, fetches, _ff = rows[(0, "sql")]
    assert records_in == n and bytes_in > payload
    assert (bytes_out, records_out) == (payload, n)
    assert produces == 1 and fetches == 1
    # and nothing of it went through the Kafka door
    assert api_requests(srv, "Produce") == (0, 0)

    # the Kafka door's reads of the same partition count in their own row
    stored = raw_fetch_all(srv, topic, 0)
    rows = topic_rows(srv, topic)
    assert rows[(0, "kafka")][:4] == (0, 0, len(stored), n)
    assert rows[(0, "sql")][:2] == (bytes_in, n)


def test_errors_are_counted_by_code(make_server, unique_name):
    srv = make_server()
    topic = unique_name("metrics_err")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    batch = kh.record_batch([(b"k", b"v", [], kh.now_ms())])
    with kh.RawClient(srv.kafka_bootstrap) as c:
        for _ in range(3):
            c.call(kh.produce_request, topic, [(7, batch)])
    wait_requests(srv, "Produce", lambda r: r[0] >= 3, "the requests to be counted")
    assert api_requests(srv, "Produce") == (3, 3)
    count = srv.sql("SELECT count FROM streamlog.stat_api_errors "
                    "WHERE api = 'Produce' AND error = 'UNKNOWN_TOPIC_OR_PARTITION'")
    assert count == [(3,)]


def test_errors_of_every_api_are_counted_by_code(make_server, unique_name):
    """Not only Produce's and Fetch's: the error codes of any API's answers,
    one per error field (a topic's, a partition's), and the request once in
    stat_api's errors"""
    from confluent_kafka.admin import AdminClient, NewTopic

    srv = make_server()
    a, b, c = unique_name("err_a"), unique_name("err_b"), unique_name("err_c")
    for t in (a, b):
        srv.sql("SELECT streamlog.create_topic(%s, 1)", (t,))
    admin = AdminClient({"bootstrap.servers": srv.kafka_bootstrap})
    results = kh.admin_results(admin.create_topics([NewTopic(t, 1) for t in (a, b, c)]), 60)
    assert results[c] is None and results[a] is not None and results[b] is not None
    assert kh.admin_results(admin.delete_topics([unique_name("err_missing")]), 60) != {}
    with kh.RawClient(srv.kafka_bootstrap) as client:
        client.call(kh.list_offsets_request, a, 7, -1)   # no partition 7

    def errors(api):
        return dict(srv.sql("SELECT error, count FROM streamlog.stat_api_errors "
                            "WHERE api = %s", (api,)))
    assert errors("CreateTopics") == {"TOPIC_ALREADY_EXISTS": 2}
    assert errors("DeleteTopics") == {"UNKNOWN_TOPIC_OR_PARTITION": 1}
    assert errors("ListOffsets") == {"UNKNOWN_TOPIC_OR_PARTITION": 1}
    assert errors("Metadata") == {}
    # the one CreateTopics request with errors counts once among its requests
    wait_requests(srv, "CreateTopics", lambda r: r[1] >= 1, "CreateTopics to be counted")
    assert api_requests(srv, "CreateTopics")[1] == 1


def test_stat_reset(make_server, unique_name):
    srv = make_server()
    topic = unique_name("metrics_reset")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    srv.sql("SELECT streamlog.produce(%s, 'k', 'v')", (topic,))
    with kh.RawClient(srv.kafka_bootstrap) as c:
        c.call(kh.api_versions_request, 0)
    assert topic_rows(srv, topic)[(0, "sql")][1] == 1
    before = srv.sql("SELECT streamlog.stat_reset_time()")[0][0]

    # as pg_stat_reset(): not for everyone, but for whom it is granted to
    srv.sql("CREATE ROLE metrics_watcher LOGIN")
    srv.sql("GRANT streamlog_admin TO metrics_watcher")
    with watcher(srv) as conn:
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("SELECT streamlog.stat_reset()")
    srv.sql("GRANT EXECUTE ON FUNCTION streamlog.stat_reset() TO metrics_watcher")
    with watcher(srv) as conn:
        conn.execute("SELECT streamlog.stat_reset()")
        # an operator reads the views
        assert conn.execute("SELECT count(*) FROM streamlog.stat_api").fetchone()[0] == 0

    assert srv.sql("SELECT streamlog.stat_reset_time()")[0][0] > before
    assert topic_rows(srv, topic) == {}
    assert api_requests(srv, "ApiVersions") == (0, 0)
    # counting goes on after it
    srv.sql("SELECT streamlog.produce(%s, 'k', 'v')", (topic,))
    assert topic_rows(srv, topic)[(0, "sql")][1] == 1


def test_slow_request_is_logged(make_server, unique_name):
    srv = make_server(conf={"streamlog.log_min_request_duration": 0})
    topic = unique_name("metrics_slow")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    offset = len(srv.log_text())
    batch = kh.record_batch([(b"k", b"v", [], kh.now_ms())])
    with kh.RawClient(srv.kafka_bootstrap) as c:
        local = c.local_address
        c.call(kh.produce_request, topic, [(0, batch)])
    kh.wait_log(srv, offset,
                rf'Kafka request took [0-9.]+ ms: Produce v3 from {local} \(client "raw-test"\), '
                rf'topics "{topic}": queue [0-9.]+ ms, local [0-9.]+ ms, remote [0-9.]+ ms, '
                r'send [0-9.]+ ms')
    assert srv.sql("SELECT value FROM streamlog.stat_broker WHERE name = 'slow_requests'")[0][0] >= 1


def test_slow_request_log_is_off_by_default(make_server, unique_name):
    srv = make_server()
    offset = len(srv.log_text())
    with kh.RawClient(srv.kafka_bootstrap) as c:
        c.call(kh.api_versions_request, 0)
    wait_requests(srv, "ApiVersions", lambda r: r[0] >= 1, "the request to be counted")
    assert srv.sql("SELECT value FROM streamlog.stat_broker WHERE name = 'slow_requests'")[0][0] == 0
    assert "Kafka request took" not in kh.log_since(srv, offset)


def test_connection_row_appears_and_disappears(make_server, unique_name):
    srv = make_server()
    topic = unique_name("metrics_conn")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    query = ("SELECT listener, client_id, client_software_name, client_software_version, "
             "principal, state, request, connected_since <= now() "
             "FROM streamlog.stat_connections WHERE client_addr = %s")
    with kh.RawClient(srv.kafka_bootstrap, timeout=120) as c:
        local = c.local_address
        assert kh.Reader(c.call(kh.api_versions_request, 3)).i16() == kh.NONE
        c.call(kh.metadata_request, 1, [topic])
        row = srv.sql(query, (local,))
        assert row == [("PLAINTEXT", "raw-test", "streamlog-raw-test", "1.0", row[0][4],
                        "idle", None, True)]
        assert row[0][4].startswith("User:")

        # a parked Fetch is its current request, and the broker's activity
        c.send(kh.fetch_request(c.next_correlation_id(), topic, 0, 0,
                                max_wait_ms=60000, min_bytes=1))
        wait_until(lambda: srv.sql(query, (local,))[0][5:7] == ("active", "Fetch v4"),
                   30, "the parked Fetch to show")
        wait_until(lambda: srv.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streamlog broker' "
            "AND query = %s", (f"Fetch v4 from raw-test@{local}",))[0][0] == 1,
            30, "the broker to report the Fetch in pg_stat_activity")
        srv.sql("SELECT streamlog.produce(%s, 'k', 'v')", (topic,))
        c.recv_frame()
        wait_until(lambda: srv.sql(query, (local,))[0][5] == "idle", 30,
                   "the answered Fetch to go")
    wait_until(lambda: srv.sql(query, (local,)) == [], 30, "the closed connection's row to go")
    opened, closed = srv.sql("SELECT connections_opened, connections_closed "
                             "FROM streamlog.stat_listeners WHERE listener = 'PLAINTEXT'")[0]
    assert opened >= 1 and closed >= 1


def test_partitions_beyond_the_table_go_to_the_overflow_row(make_server, unique_name):
    srv = make_server(conf={"streamlog.metrics_max_partitions": 16})
    topic = unique_name("metrics_many")
    srv.sql("SELECT streamlog.create_topic(%s, 20)", (topic,))
    with srv.connect() as conn:
        with conn.transaction():
            for p in range(20):
                conn.execute("SELECT streamlog.produce(%s, 'k', 'v', partition => %s)",
                             (topic, p))
    rows = topic_rows(srv, topic)
    assert len(rows) == 16 and all(r[1] == 1 for r in rows.values())
    overflow = srv.sql("SELECT door, records_in FROM streamlog.stat_topics WHERE topic IS NULL")
    assert overflow == [("sql", 4)]


def test_track_metrics_off_counts_nothing(make_server, unique_name):
    srv = make_server(conf={"streamlog.track_metrics": "off"})
    topic = unique_name("metrics_off")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    srv.sql("SELECT streamlog.produce(%s, 'k', 'v')", (topic,))
    with kh.RawClient(srv.kafka_bootstrap) as c:
        c.call(kh.api_versions_request, 0)
    assert topic_rows(srv, topic) == {}
    assert srv.sql("SELECT count(*) FROM streamlog.stat_api")[0][0] == 0
    # on again, with a reload: counted from then on
    srv.update_conf({"streamlog.track_metrics": "on"})
    srv.reload()
    wait_until(lambda: (srv.sql("SELECT streamlog.produce(%s, 'k', 'v')", (topic,)),
                        topic_rows(srv, topic))[1] != {}, 30, "counting to resume")
