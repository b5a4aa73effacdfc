"""Parked requests and connection memory in the broker workers, read off
the streamlog.broker_workers view (server-side counters, no timings).

A Fetch parked on one partition is looked at again when that partition
grows, and not for commits elsewhere; a connection's input buffer goes
back to a small size once a large request has been read, while the
connection stays open.
"""

import json

import pytest

import kafka_helpers as kh
from pgserver import PgServer


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    """A server with one broker worker: every parked request is its own."""
    srv = PgServer(tmp_path_factory.getbasetemp(), conf={"streamlog.broker_workers": 1},
                   name="parked")
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


def create_topic(srv, name, partitions=1, config=None):
    srv.sql("SELECT streamlog.create_topic(%s, %s, %s::jsonb)",
            (name, partitions, json.dumps(config or {})))


def worker_stats(srv):
    rows = srv.sql("SELECT connections, input_buffer_bytes, parked_requests, parked_attempts "
                   "  FROM streamlog.broker_workers")
    assert len(rows) == 1, rows
    return dict(zip(("connections", "input_buffer_bytes", "parked_requests",
                     "parked_attempts"), rows[0]))


def produce_sql(srv, topic, value="v"):
    srv.sql("SELECT streamlog.produce(%s, NULL, %s)", (topic, value))


def test_broker_workers_lists_each_worker(server):
    rows = server.sql("SELECT worker, pid FROM streamlog.broker_workers ORDER BY worker")
    assert sorted(pid for _, pid in rows) == kh.broker_pids(server)
    assert [w for w, _ in rows] == list(range(len(rows)))
