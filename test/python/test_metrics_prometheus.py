"""A real Prometheus (Debian's prometheus package) scrapes streamlog's
endpoint every second while real Kafka clients produce and consume; the
test asks Prometheus' HTTP API what it stored and checks it against what
the clients did.  Meanwhile other clients send garbage and hold
connections open, which must not make a scrape fail.  The alert rules
shipped in contrib/ pass promtool check rules."""

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from metrics_http import start_with_endpoint
from pgserver import free_port, wait_until

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
RULES = os.path.join(ROOT, "contrib", "prometheus", "streamlog-alerts.yml")
DASHBOARD = os.path.join(ROOT, "contrib", "grafana", "streamlog.json")

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="prometheus is not installed (apt-get install -y prometheus; scripts/deps.sh)")


class Prometheus:
    """prometheus on a free loopback port, scraping one target every second"""

    def __init__(self, workdir, target):
        self.port = free_port()
        os.makedirs(workdir, exist_ok=True)
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: ["{os.path.abspath(RULES)}"]
scrape_configs:
  - job_name: streamlog
    static_configs:
      - targets: ["{target}"]
""")
        self.log = open(os.path.join(workdir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(workdir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._ready, 60, "prometheus ready")

    def _ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr):
        """The value of a query that gives one sample, or None"""
        result = self.api("query", query=expr)["result"]
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])

    def wait_value(self, expr, want, timeout=90):
        seen = []

        def check():
            v = self.query(expr)
            seen.append(v)
            return v == want
        try:
            wait_until(check, timeout, f"{expr} == {want}", interval=0.5)
        except Exception:
            raise AssertionError(f"{expr}: last values {seen[-5:]}, want {want}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def prometheus_for(tmp_path):
    started = []

    def start(port):
        p = Prometheus(str(tmp_path / f"prom{len(started)}"), f"127.0.0.1:{port}")
        started.append(p)
        return p
    yield start
    for p in started:
        p.stop()


def test_alert_rules_pass_promtool():
    check = subprocess.run([PROMTOOL, "check", "rules", RULES], capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_dashboard_queries_name_exported_metrics():
    """Every metric the dashboard's queries name is in the metric table"""
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    with open(os.path.join(ROOT, "src", "protocol", "metric_table.c")) as f:
        table = f.read()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    import re
    for expr in exprs:
        for name in re.findall(r"\b(kafka_[a-z_]+|streamlog_[a-z_]+)", expr):
            base = re.sub(r"_(total|bucket|sum|count)$", "", name)
            assert f'"{base}"' in table, f"{name} in {expr!r} is not exported"


def garbage_and_hoarders(port, stop):
    """Until stop is set: garbage, half requests and idle connections"""
    held = []
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(os.urandom(200) + b"\r\n\r\n")
        except OSError:
            pass
        try:
            h = socket.create_connection(("127.0.0.1", port), timeout=2)
            h.sendall(b"GET /metr")
            held.append(h)
        except OSError:
            pass
        if len(held) > 50:
            held.pop(0).close()
        stop.wait(0.1)
    for h in held:
        h.close()


def test_prometheus_sees_what_clients_did(make_server, prometheus_for, unique_name):
    srv, port = start_with_endpoint(make_server, timeout_ms=3000)
    topic = unique_name("prom")
    group = unique_name("g")
    srv.sql("SELECT streamlog.create_topic(%s, 3)", (topic,))
    prom = prometheus_for(port)

    stop = threading.Event()
    disturber = threading.Thread(target=garbage_and_hoarders, args=(port, stop))
    disturber.start()
    try:
        # real clients: a producer, then a group that reads and commits all
        first = 300
        p = Producer({"bootstrap.servers": srv.kafka_bootstrap})
        for i in range(first):
            p.produce(topic, key=str(i).encode(), value=b"x" * 100)
        assert p.flush(60) == 0
        c = Consumer({"bootstrap.servers": srv.kafka_bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([topic])
        got = 0
        deadline = time.monotonic() + 60
        while got < first and time.monotonic() < deadline:
            m = c.poll(1)
            if m is not None and m.error() is None:
                got += 1
        assert got == first
        c.commit(asynchronous=False)
        # the consumer stays: its long-poll Fetch requests go on meanwhile

        prom.wait_value(f'sum(kafka_log_log_logendoffset{{topic="{topic}"}})', first)
        prom.wait_value(f'sum(kafka_consumergroup_lag{{consumergroup="{group}",topic="{topic}"}})',
                        0)
        prom.wait_value(f'sum(kafka_consumergroup_current_offset{{consumergroup="{group}"}})',
                        first)

        # more records the group has not read: its lag is exactly them
        more = 120
        for i in range(more):
            p.produce(topic, value=b"y", partition=i % 3)
        assert p.flush(60) == 0
        prom.wait_value(f'sum(kafka_log_log_logendoffset{{topic="{topic}"}})', first + more)
        prom.wait_value(f'sum(kafka_consumergroup_lag{{consumergroup="{group}",topic="{topic}"}})',
                        more)
        prom.wait_value(f'kafka_consumergroup_lag{{consumergroup="{group}",topic="{topic}",'
                        f'partition="1"}}', more // 3)
        lag_view = srv.sql("SELECT sum(lag) FROM streamlog.consumer_lag WHERE group_id = %s",
                           (group,))[0][0]
        assert lag_view == more
        # the traffic counters: every record the producer sent, once, by the Kafka door;
        # the consumer's records out; and the same numbers as streamlog.stat_topics
        total = first + more
        prom.wait_value(f'sum(kafka_server_brokertopicmetrics_messagesin_total'
                        f'{{topic="{topic}",door="kafka"}})', total)
        prom.wait_value(f'sum(kafka_server_brokertopicmetrics_messagesin_total'
                        f'{{topic="{topic}",door="sql"}})', 0)
        bytes_in = srv.sql("SELECT sum(bytes_in) FROM streamlog.stat_topics"
                           " WHERE topic = %s AND door = 'kafka'", (topic,))[0][0]
        assert bytes_in >= first * 100 + more
        prom.wait_value(f'sum(kafka_server_brokertopicmetrics_bytesin_total{{topic="{topic}"}})',
                        bytes_in)
        assert prom.query(f'sum(kafka_server_brokertopicmetrics_messagesout_total'
                          f'{{topic="{topic}",door="kafka"}})') >= first
        # requests per API, and their time as histograms
        produces = prom.query('sum(kafka_network_requestmetrics_requests_total'
                              '{request="Produce"})')
        assert produces >= 1
        assert prom.query('sum(kafka_network_requestmetrics_totaltimems_count'
                          '{request="Produce"})') >= 1
        assert prom.query('histogram_quantile(0.5, sum by (le) (kafka_network_requestmetrics_'
                          'totaltimems_bucket{request="Fetch"}))') > 0
        # the consumer's long polls: a rate of Fetch requests over the last seconds
        wait_until(lambda: (prom.query('sum(rate(kafka_network_requestmetrics_requests_total'
                                       '{request="Fetch"}[5s]))') or 0) > 0,
                   60, "a rate of Fetch requests")
        # and they wait parked in a broker worker, at the high watermark
        wait_until(lambda: (prom.query('sum(streamlog_broker_parked_requests)') or 0) > 0,
                   60, "a parked Fetch")
        c.close()
        # the log's size grew with what was written
        assert prom.query(f'sum(kafka_log_log_size{{topic="{topic}"}})') > 0
        # every scrape of the last 20 s succeeded while the disturbers ran
        wait_until(lambda: (prom.query('count_over_time(up{job="streamlog"}[20s])') or 0) >= 15,
                   60, "20 s of scrapes")
    finally:
        stop.set()
        disturber.join()
    assert prom.query('min_over_time(up{job="streamlog"}[20s])') == 1
    targets = prom.api("targets")["activeTargets"]
    assert [t["health"] for t in targets] == ["up"], targets
    # the endpoint counted Prometheus' scrapes and refused the garbage
    assert prom.query('rate(streamlog_metrics_http_requests_total{code="200"}[10s])') > 0.3
    assert prom.query('streamlog_metrics_http_closed_total{reason="malformed"}') > 0
    # a standalone node: one active controller, nothing offline; no alert fires on them
    assert prom.query('sum(kafka_controller_kafkacontroller_activecontrollercount)') == 1
    alerts = prom.api("alerts")["alerts"]
    assert not [a for a in alerts if a["labels"]["alertname"] in
                ("StreamlogEndpointDown", "StreamlogNoActiveController",
                 "StreamlogOfflinePartitions")], alerts
