"""The Prometheus endpoint (streamlog.metrics_listen) over real sockets:
the text format and OpenMetrics, what other paths and methods get, and
clients that send garbage, too much, too slowly or nothing at all, which
must disturb neither the worker nor a real scrape."""

import os
import shutil
import socket
import subprocess
import time

import pytest

from metrics_http import (Reader, closed_by_server, get, parse_samples, read_response,
                          request, scrape, start_with_endpoint, value)
from pgserver import wait_until

PROMTOOL = shutil.which("promtool")


def test_partitions_in_text_format_pass_promtool(make_server, unique_name):
    srv, port = start_with_endpoint(make_server)
    topic = unique_name("m")
    srv.sql("SELECT streamlog.create_topic(%s, 3)", (topic,))
    for i in range(7):
        srv.sql("SELECT streamlog.produce(%s, NULL, %s, partition => %s)",
                (topic, f"v{i}", i % 2))
    status, headers, body = get(port)
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    samples = parse_samples(text)
    rows = srv.sql("SELECT partition, high_watermark, log_start_offset, bytes, segments"
                   " FROM streamlog.partitions WHERE topic = %s", (topic,))
    assert len(rows) == 3
    for partition, hwm, start, size, segments in rows:
        assert value(samples, "kafka_log_log_logendoffset", topic=topic, partition=partition) == hwm
        assert value(samples, "kafka_log_log_logstartoffset", topic=topic,
                     partition=partition) == start
        assert value(samples, "kafka_log_log_numlogsegments", topic=topic,
                     partition=partition) == segments
        assert value(samples, "kafka_log_log_size", topic=topic, partition=partition) > 0
    assert value(samples, "kafka_log_log_logendoffset", topic=topic, partition=0) == 4
    assert value(samples, "kafka_log_log_logendoffset", topic=topic, partition=1) == 3
    assert value(samples, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert value(samples, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0
    assert value(samples, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert value(samples, "kafka_server_raftmetrics_current_state", state="standalone") == 1
    assert value(samples, "kafka_server_kafkaserver_brokerstate") == 3
    # counters: TYPE names the family with _total in this format
    assert "# TYPE streamlog_metrics_http_requests_total counter" in text
    if PROMTOOL is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=body,
                           capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_openmetrics_on_request(make_server, unique_name):
    srv, port = start_with_endpoint(make_server)
    topic = unique_name("om")
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (topic,))
    # what Prometheus 2.x sends
    accept = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
              "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    status, headers, body = get(port, accept=accept)
    assert status == 200
    assert headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    assert text.count("# EOF") == 1
    # a counter family is named without _total, its samples with it
    assert "# TYPE streamlog_metrics_http_requests counter\n" in text
    assert 'streamlog_metrics_http_requests_total{code="200"}' in text
    samples = parse_samples(text.replace("# EOF\n", ""))
    assert value(samples, "kafka_log_log_logendoffset", topic=topic, partition=0) == 0
    # text/plain preferred: the text format
    status, headers, _ = get(port, accept="application/openmetrics-text;q=0.2,text/plain")
    assert headers["content-type"].startswith("text/plain; version=0.0.4")


def test_other_paths_and_methods(make_server):
    srv, port = start_with_endpoint(make_server)
    assert get(port, "/")[0] == 404
    assert get(port, "/metricsx")[0] == 404
    status, headers, body = get(port, method="POST")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    assert get(port, method="DELETE")[0] == 405
    # HEAD: the headers of GET, no body
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nothing HTTP/1.1\r\n\r\n")
        r = Reader(s)
        status, headers, _ = r.response(head_only=True)
        assert status == 200 and int(headers["content-length"]) > 0
        # the next answer starts right after the head: no body was sent
        assert r.response()[0] == 404
    # the query string is not part of the path
    assert get(port, "/metrics?x=1")[0] == 200


def test_keep_alive_and_pipelining(make_server):
    srv, port = start_with_endpoint(make_server)
    with socket.create_connection(("127.0.0.1", port)) as s:
        req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        s.sendall(req * 3)
        r = Reader(s)
        for _ in range(3):
            status, headers, body = r.response()
            assert status == 200 and headers["connection"] == "keep-alive"
            assert b"kafka_server_kafkaserver_brokerstate 3" in body
        # still open for more
        s.sendall(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        status, headers, _ = r.response()
        assert status == 200 and headers["connection"] == "close"
        assert closed_by_server(s)
    # HTTP/1.0 closes unless asked otherwise
    status, headers, _ = request(port, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert headers["connection"] == "close"


@pytest.mark.parametrize("raw, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64), 400),  # TLS hello
    (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
    (b"GET metrics HTTP/1.1\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n", 400),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 413),
    (b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 413),
    (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET /metrics HTTP/1.1\r\n" + b"X-A: b\r\n" * 65 + b"\r\n", 431),
    (b"GET /metrics HTTP/1.1\r\nX-A: " + b"b" * 9000 + b"\r\n\r\n", 431),
], ids=["garbage", "tls", "http2", "relative", "header", "control", "folded", "body",
        "chunked", "long-path", "huge-line", "headers", "huge-header"])
def test_malformed_requests_are_refused_and_closed(make_server, raw, status):
    srv, port = start_with_endpoint(make_server)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            s.sendall(raw)
        except OSError:
            pass                # the server may close before taking it all
        got = read_response(s)
        assert got is not None and got[0] == status, got
        assert got[1]["connection"] == "close"
        assert closed_by_server(s)
    assert scrape(port)                 # the endpoint serves on
    assert "streamlog metrics refused a request from 127.0.0.1" in srv.log_text()


def test_slow_and_silent_clients_are_closed_without_blocking_others(make_server):
    srv, port = start_with_endpoint(make_server, timeout_ms=2000)
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"GET /metr")
    # a scrape goes through while they hang on
    samples = scrape(port)
    assert value(samples, "kafka_server_kafkaserver_brokerstate") == 3
    # a client that trickles its head in is closed at the deadline all the same
    deadline = time.monotonic() + 60
    closed = False
    while time.monotonic() < deadline:
        try:
            slow.sendall(b"i")
        except OSError:
            closed = True
            break
        slow.settimeout(0.3)
        try:
            if slow.recv(100) == b"":
                closed = True
                break
        except socket.timeout:
            pass
    assert closed, "the slow client was never closed"
    for s in silent:
        assert closed_by_server(s)
        s.close()
    slow.close()
    wait_until(lambda: srv.log_text().count("timed out sending a request") >= 6, 30,
               "log lines of the closed clients")
    samples = scrape(port)
    assert value(samples, "streamlog_metrics_http_closed_total", reason="timeout") >= 6


def test_connection_hoarders_do_not_lock_out_a_scraper(make_server):
    srv, port = start_with_endpoint(make_server)
    hoard = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    try:
        for _ in range(3):
            samples = scrape(port)
            assert value(samples, "kafka_server_kafkaserver_brokerstate") == 3
        samples = scrape(port)
        assert value(samples, "streamlog_metrics_http_closed_total", reason="too_many") >= 8
    finally:
        for s in hoard:
            s.close()


def test_a_client_that_does_not_read_its_answer(make_server, unique_name):
    """A client that asks and never reads: the answer waits in its socket,
    the worker serves the others and closes it at the deadline"""
    srv, port = start_with_endpoint(make_server, timeout_ms=2000)
    topic = unique_name("big")
    srv.sql("SELECT streamlog.create_topic(%s, 200)", (topic,))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    # answers of ~100 kB each, more than the kernel's buffers hold
    s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n" * 250)
    assert scrape(port)
    wait_until(lambda: "timed out taking the answer" in srv.log_text(), 60,
               "the client that does not read is closed")
    s.close()
    assert scrape(port)


def test_no_endpoint_by_default(make_server):
    srv = make_server()
    assert srv.sql("SHOW streamlog.metrics_listen") == [("",)]
    assert "streamlog metrics listening" not in srv.log_text()


@pytest.mark.parametrize("bad", ["9644", "localhost:", "localhost:99999", "[::1:9644",
                                 "host:port"])
def test_a_bad_listen_value_stops_the_server_with_its_reason(make_server, bad):
    srv = make_server(start=False)
    srv.update_conf({"streamlog.metrics_listen": bad})
    with pytest.raises(RuntimeError) as raised:
        srv.start()
    assert 'invalid value for parameter "streamlog.metrics_listen"' in str(raised.value)
    assert "host:port" in str(raised.value)


def test_cluster_metrics_on_every_node(tmp_path):
    """Three nodes, each with its endpoint: the controller, Raft and
    replica metrics agree with the cluster on every node; a paused follower
    makes its partitions under-replicated (the leaders shrink their ISRs)
    and its own partition offline (on the controller only), and once back
    it is taken in again (ISR expands) and every count returns to 0."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    import kafka_helpers as kh
    from cluster import Cluster, require_cluster_mode
    from metrics_http import wait_listening
    from pgserver import free_port

    ports = {i: free_port() for i in (1, 2, 3)}
    c = Cluster(3, str(tmp_path), name="metrics",
                # the leaders drop a silent follower from their ISRs (and
                # count it) before the controller fences its node (and
                # drops it from the ISRs it is left in, which Kafka's leaders
                # do not count as their shrinks either)
                conf={"streamlog.broker_session_timeout_ms": 8000,
                      "streamlog.replica_lag_time_max_ms": 1500},
                node_conf={i: {"streamlog.metrics_listen": f"127.0.0.1:{p}"}
                           for i, p in ports.items()})
    try:
        c.start()
        require_cluster_mode(c.node(1))
        c.wait_ready()
        for p in ports.values():
            wait_listening(p)
        controller = c.wait_for_controller()
        # pause neither the controller nor the Raft leader: the two others
        # must go on deciding without it
        raft_leader = c.raft_status(controller)["leader_id"]
        paused = max(i for i in (1, 2, 3) if i not in (controller, raft_leader))

        shared, solo = "metrics_shared", "metrics_solo"
        admin = AdminClient({"bootstrap.servers": c.node(controller).kafka_bootstrap})
        topics = [NewTopic(shared, 3, replication_factor=3),
                  NewTopic(solo, 1, replica_assignment=[[paused]])]
        assert kh.admin_results(admin.create_topics(topics), 60) == {shared: None, solo: None}
        for name in (shared, solo):
            c.wait_topic_everywhere(name)

        def scrape_all(ids):
            return {i: scrape(ports[i]) for i in ids}

        def count(samples, name):
            return value(samples, name)

        total = c.node(controller).sql("SELECT count(*) FROM streamlog.partitions")[0][0]

        def healthy(ids):
            s = scrape_all(ids)
            if any(count(x, "kafka_server_replicamanager_underreplicatedpartitions") != 0
                   or count(x, "kafka_controller_kafkacontroller_offlinepartitionscount") != 0
                   for x in s.values()):
                return None
            return s

        s = c.wait_for(lambda: healthy((1, 2, 3)), 60, "no under-replicated partition")
        # one active controller, the one the nodes agree on; it alone
        # counts the cluster's topics and partitions
        assert [i for i in s if count(s[i], "kafka_controller_kafkacontroller_"
                                      "activecontrollercount") == 1] == [controller]
        for i, x in s.items():
            mine = i == controller
            assert count(x, "kafka_controller_kafkacontroller_activecontrollercount") == \
                (1 if mine else 0)
            assert count(x, "kafka_controller_kafkacontroller_globalpartitioncount") == \
                (total if mine else 0)
            assert count(x, "kafka_server_kafkaserver_brokerstate") == 3
            assert value(x, "kafka_cluster_partition_insyncreplicascount",
                         topic=shared, partition=0) == 3
            assert value(x, "kafka_cluster_partition_replicascount",
                         topic=shared, partition=2) == 3
        # every partition is led by one node
        assert sum(count(x, "kafka_server_replicamanager_leadercount") for x in s.values()) \
            == total
        for i, x in s.items():
            assert count(x, "kafka_server_replicamanager_partitioncount") == \
                c.node(i).sql("SELECT count(*) FROM streamlog.partitions "
                              "WHERE %s = ANY (replicas)", (i,))[0][0]
        # Raft: every node knows the same leader and term, one leads, the
        # others follow, all applied some metadata
        leaders = {count(x, "kafka_server_raftmetrics_current_leader") for x in s.values()}
        epochs = {count(x, "kafka_server_raftmetrics_current_epoch") for x in s.values()}
        assert len(leaders) == 1 and leaders.pop() in (1, 2, 3)
        assert len(epochs) == 1 and epochs.pop() >= 1
        roles = sorted(next(dict(labels)["state"] for (n, labels), v in x.items()
                            if n == "kafka_server_raftmetrics_current_state" and v == 1)
                       for x in s.values())
        assert roles == ["follower", "follower", "leader"]
        for x in s.values():
            assert count(x, "kafka_server_raftmetrics_applied_offset") > 0
            assert count(x, "kafka_server_raftmetrics_high_watermark") >= \
                count(x, "kafka_server_raftmetrics_applied_offset")
        shrinks_before = sum(count(x, "kafka_server_replicamanager_isrshrinks_total") for x in s.values())
        expands_before = sum(count(x, "kafka_server_replicamanager_isrexpands_total") for x in s.values())

        live = [i for i in (1, 2, 3) if i != paused]
        c.node(paused).pause()
        try:
            # records it does not get: its leaders see it fall behind
            producer = Producer({"bootstrap.servers": c.bootstrap_servers(live), "acks": 1})
            for p in range(3):
                producer.produce(shared, b"behind", partition=p)
            assert producer.flush(60) == 0

            def degraded():
                s = scrape_all(live)
                under = sum(count(x, "kafka_server_replicamanager_underreplicatedpartitions")
                            for x in s.values())
                # the three partitions of the shared topic, led by the live nodes
                shrinks = sum(count(x, "kafka_server_replicamanager_isrshrinks_total")
                              for x in s.values())
                if under < 3 or shrinks <= shrinks_before or \
                        count(s[controller], "kafka_controller_kafkacontroller_"
                              "offlinepartitionscount") != 1:
                    return None
                return s
            s = c.wait_for(degraded, 90, f"node {paused}'s partitions under-replicated "
                           f"(ISRs shrunk by their leaders), its own offline")
            for i, x in s.items():
                assert count(x, "kafka_server_replicamanager_underreplicatedpartitions") == \
                    c.node(i).sql("SELECT count(*) FROM streamlog.partitions WHERE leader = %s "
                                  "AND under_replicated", (i,))[0][0]
                assert value(x, "kafka_cluster_partition_underreplicated",
                             topic=shared, partition=1) == 1
                assert value(x, "kafka_cluster_partition_insyncreplicascount",
                             topic=shared, partition=1) == 2
                if i != controller:
                    assert count(x, "kafka_controller_kafkacontroller_"
                                 "offlinepartitionscount") == 0
        finally:
            c.node(paused).resume()

        s = c.wait_for(lambda: healthy((1, 2, 3)), 120,
                       f"node {paused} back in every ISR")
        assert sum(count(x, "kafka_server_replicamanager_isrexpands_total")
                   for x in s.values()) > expands_before
        for x in s.values():
            assert value(x, "kafka_cluster_partition_insyncreplicascount",
                         topic=shared, partition=1) == 3
        assert len({count(x, "kafka_server_raftmetrics_current_leader")
                    for x in s.values()}) == 1
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.cleanup()


def test_fetch_session_cache_metrics(make_server, unique_name):
    """Kafka's FetchSessionCache metrics: the sessions and the partitions
    they hold follow what clients open, narrow and close, and a session
    evicted for another is counted (raw Fetch v11: the clients installed
    here do not use sessions)"""
    from test_kafka_fetch_sessions import call

    import kafka_helpers as kh

    srv, port = start_with_endpoint(make_server, conf={
        "streamlog.broker_workers": "1", "streamlog.fetch_session_cache_slots": "2"})
    topic = unique_name("fsm")
    srv.sql("SELECT streamlog.create_topic(%s, 4)", (topic,))

    def counts():
        s = scrape(port)
        return (value(s, "kafka_server_fetchsessioncache_numincrementalfetchsessions"),
                value(s, "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached"),
                value(s, "kafka_server_fetchsessioncache_incrementalfetchsessionevictions_total"))

    assert counts() == (0, 0, 0)
    a, b, e = (kh.RawClient(srv.kafka_bootstrap) for _ in range(3))
    try:
        _, sa, _ = call(a, 0, 0, [(topic, 0, 0)])
        _, sb, _ = call(b, 0, 0, [(topic, p, 0) for p in range(1, 4)])
        assert 0 not in (sa, sb)
        assert counts() == (2, 4, 0)
        # b forgets a partition
        assert call(b, sb, 1, [], forgotten=[(topic, 3)])[0] == kh.NONE
        assert counts() == (2, 3, 0)
        # a replica's session evicts the smallest, a's
        _, se, _ = call(e, 0, 0, [(topic, 0, 0)], replica_id=7)
        assert se != 0
        assert counts() == (2, 3, 1)
        # b closes its session (a full fetch with the final epoch)
        call(b, sb, -1, [(topic, 1, 0)])
        assert counts() == (1, 1, 1)
    finally:
        for c in (a, b, e):
            c.close()
