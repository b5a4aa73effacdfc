"""Connections are shared out over the broker workers.  The workers share
the Kafka port with SO_REUSEPORT, where the kernel picks a worker by a hash
of the connection's addresses: a few busy clients could all land on one
worker while the other core idles.  A worker that accepts a connection
while it serves more than another hands it over (conn_handoff.h), so the
workers' counts never differ by more than one as connections arrive one
after the other; a handed connection is served as any other."""

import os
import stat

import confluent_kafka as ck

import kafka_helpers as kh
from pgserver import wait_until

CONNECTIONS = 12


def worker_connections(srv):
    return [n for (n,) in srv.sql(
        "SELECT connections FROM streamlog.broker_stats ORDER BY worker")]


def test_connections_are_balanced_over_workers(make_server):
    srv = make_server(conf={"streamlog.broker_workers": 2})
    clients = []
    try:
        for i in range(CONNECTIONS):
            c = kh.RawClient(srv.kafka_bootstrap, timeout=30)
            clients.append(c)
            # served: wherever it landed, it answers
            assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE
            counts = wait_until(
                lambda: (lambda n: n if sum(n) == i + 1 else None)(worker_connections(srv)),
                60, f"{i + 1} connections counted")
            # Without the hand-off, each new connection lands by the hash:
            # after 12 of them, the odds that every prefix stayed balanced
            # are 1 in 64
            assert max(counts) - min(counts) <= 1, (i + 1, counts)
        # every connection, handed over or not, still serves
        for c in clients:
            assert kh.Reader(c.call(kh.api_versions_request, 0)).i16() == kh.NONE
    finally:
        for c in clients:
            c.close()


def test_producers_on_handed_connections(make_server, unique_name):
    """Several producers at once: their records all arrive, whichever
    worker serves their connections"""
    srv = make_server(conf={"streamlog.broker_workers": 2})
    topic = unique_name("balance")
    srv.sql("SELECT streamlog.create_topic(%s, 4)", (topic,))
    producers = [ck.Producer({"bootstrap.servers": srv.kafka_bootstrap, "acks": "all",
                              "enable.idempotence": True}) for _ in range(4)]
    for n, p in enumerate(producers):
        for i in range(250):
            p.produce(topic, value=f"{n}-{i}".encode())
    for p in producers:
        assert p.flush(60) == 0
    counts = worker_connections(srv)
    assert min(counts) > 0, counts
    rows = srv.sql("SELECT count(*) FROM generate_series(0, 3) AS p, "
                   "LATERAL streamlog.read(%s, p, 0, 100000) AS r", (topic,))
    assert rows[0][0] == 1000


def test_handoff_sockets_are_the_servers_alone(make_server):
    """The workers' hand-off sockets are in the data directory, which only
    the server's user reaches, not in Linux's abstract namespace, where any
    local user could bind a worker's name first and be handed the clients'
    connections"""
    srv = make_server(conf={"streamlog.broker_workers": 2})
    paths = [os.path.join(srv.datadir, "pg_stat_tmp", f"streamlog_broker_{i}") for i in (0, 1)]
    wait_until(lambda: all(os.path.exists(p) for p in paths), 60, "both hand-off sockets")
    assert all(stat.S_ISSOCK(os.stat(p).st_mode) for p in paths)
    with open("/proc/net/unix") as f:
        abstract = [line for line in f if "@streamlog" in line]
    assert abstract == []
