#!/usr/bin/env python3
"""What a broker worker holds for clients that ask for huge fetches and
never read (issue 10, section 4): eight such clients against one worker,
with streamlog.max_unsent_bytes_per_worker at each bound given.

    PG_CONFIG=... /usr/bin/python3 bench/limits/unread_fetches.py [BOUND ...]

BOUND as PostgreSQL writes bytes (32MB, 256MB, 2047MB for about none).
For each it prints the bytes of answers unsent and the connections muted
(streamlog.broker_stats), and how much the worker's RSS grew.  Uses the
installed extension and the test harness's throw-away servers."""

import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "python"))

import kafka_helpers as kh  # noqa: E402
from pgserver import PgServer, wait_until  # noqa: E402

CLIENTS = 8
REQUESTS_EACH = 16
RECORDS = 64
RECORD_BYTES = 1000 * 1000
INT32_MAX = 2**31 - 1


def stalled(bootstrap):
    host, port = bootstrap.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    return s


def measure(bound):
    srv = PgServer(tempfile.mkdtemp(), name="unread",
                   conf={"streamlog.broker_workers": 1,
                         "streamlog.max_unsent_bytes_per_worker": bound})
    srv.start()
    clients = []
    try:
        [pid] = kh.broker_pids(srv)
        srv.sql("SELECT streamlog.create_topic('big', 1)")
        srv.sql("SELECT streamlog.produce('big', NULL, repeat('x', %s)::bytea, partition => 0) "
                "  FROM generate_series(1, %s)", (RECORD_BYTES, RECORDS))
        rss_before = kh.rss_kb(pid)
        for _ in range(CLIENTS):
            s = stalled(srv.kafka_bootstrap)
            s.sendall(b"".join(kh.fetch_request(i, "big", 0, 0, max_bytes=INT32_MAX,
                                                partition_max_bytes=INT32_MAX)
                               for i in range(REQUESTS_EACH)))
            clients.append(s)

        def stats():
            return srv.sql("SELECT unsent_bytes, muted_connections FROM streamlog.broker_stats")[0]
        wait_until(lambda: stats()[1] == CLIENTS, 120, "every client to be muted")
        unsent, muted = stats()
        grown = kh.rss_kb(pid) - rss_before
        print(f"bound {bound:>7}: {unsent / 2**20:7.1f} MB unsent, {muted} muted, "
              f"RSS +{grown / 1024:.0f} MB")
    finally:
        for s in clients:
            s.close()
        srv.cleanup()


if __name__ == "__main__":
    for bound in sys.argv[1:] or ["32MB", "256MB", "2047MB"]:
        measure(bound)
