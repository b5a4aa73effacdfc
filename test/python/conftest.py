"""Fixtures for tests against real PostgreSQL servers with streamlog.

    server       session-wide PgServer with the extension created
    conn         autocommit psycopg connection to `server` (database postgres)
    make_server  factory: make_server(conf={...}, create_extension=True,
                 start=True) -> PgServer; every server made is stopped and
                 removed at the end of the test
    make_cluster factory: make_cluster(n=3, conf={...}, voters=None,
                 start=True, ready=True) -> cluster.Cluster of n nodes on
                 loopback (see cluster.py); stopped and removed at the end
                 of the test
    unique_name  unique_name(prefix) -> fresh valid Kafka topic name

When a test fails, the tail of the log of each server it used is added to
the failure report.  STREAMLOG_KEEP_SERVERS=1 keeps the server directories.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pgserver  # noqa: E402
from cluster import Cluster, require_cluster_mode  # noqa: E402
from pgserver import PgServer  # noqa: E402


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = PgServer(tmp_path_factory.getbasetemp(), name="session")
    try:
        srv.start()
    except BaseException:
        srv.cleanup()
        raise
    yield srv
    srv.cleanup()


@pytest.fixture
def conn(server):
    c = server.connect()
    yield c
    c.close()


@pytest.fixture
def make_server(tmp_path_factory):
    made = []

    def factory(conf=None, create_extension=True, start=True):
        srv = PgServer(tmp_path_factory.getbasetemp(), conf=conf,
                       create_extension=create_extension)
        made.append(srv)
        if start:
            srv.start()
        return srv

    factory.servers = made
    yield factory
    errors = []
    for srv in made:
        try:
            srv.cleanup()
        except Exception as e:  # keep cleaning up the others
            errors.append(e)
    if errors:
        raise errors[0]


@pytest.fixture
def make_cluster(tmp_path_factory):
    made = []

    def factory(n=3, conf=None, node_conf=None, voters=None, start=True, ready=True,
                **kwargs):
        c = Cluster(n, tmp_path_factory.getbasetemp(), conf=conf, node_conf=node_conf,
                    voters=voters, **kwargs)
        made.append(c)
        if start:
            c.start()
            if c.voter_ids:
                require_cluster_mode(c.node(1))
                if ready:
                    c.wait_ready()
        return c

    factory.clusters = made
    yield factory
    errors = []
    for c in made:
        try:
            c.cleanup()
        except Exception as e:  # keep cleaning up the others
            errors.append(e)
    if errors:
        raise errors[0]


@pytest.fixture
def open_conns(server):
    """Factory of extra connections, closed at the end of the test."""
    made = []

    def factory(autocommit=True):
        c = server.connect(autocommit=autocommit)
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()


@pytest.fixture
def unique_name():
    return pgserver.unique_name


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed or rep.when not in ("setup", "call", "teardown"):
        return
    funcargs = getattr(item, "funcargs", {})
    servers = []
    if isinstance(funcargs.get("server"), PgServer):
        servers.append(funcargs["server"])
    servers.extend(getattr(funcargs.get("make_server"), "servers", []))
    # clusters: from make_cluster or any fixture (a module's shared one)
    for value in funcargs.values():
        for c in getattr(value, "clusters", [value]):
            if isinstance(c, Cluster):
                servers.extend(c.nodes)
    for srv in servers:
        where = f"port {srv.port}"
        if hasattr(srv, "node_id"):
            where = f"node {srv.node_id}, {where}"
        rep.sections.append(
            (f"server log {srv.logfile} ({where}, last 60 lines)",
             srv.log_tail(60)))
