"""Controlled shutdown (pg_ctl stop -m fast) of a node of a three-node
cluster: the node gives up its leaderships before it goes, moves nothing
that has no other replica (with one replica per partition its partitions
go offline, keep their replica, and come back with it), and leaves no
client hanging (a long-poll Fetch, a waiting SQL consumer).

The session timeout is long (5 minutes): a partition that goes offline
within the tests' deadlines did so because the node said it was stopping,
not because the controller stopped hearing from it."""

import threading

import psycopg
import pytest

from cluster import LEADER_NOT_AVAILABLE, kafka_metadata, shared_cluster
import kafka_helpers as kh

SESSION_TIMEOUT_MS = 300000
DEADLINE = 120   # < the session timeout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 3, name="shutdown",
                conf={"streamlog.broker_session_timeout_ms": SESSION_TIMEOUT_MS})


@pytest.fixture
def whole(cluster):
    def heal():
        stopped = [n.node_id for n in cluster if not n.is_running()]
        if stopped:
            cluster.start(stopped)
        cluster.wait_ready()
    heal()
    yield cluster
    heal()


def topic_and_group_of(c, node_id, unique_name):
    """An empty one-partition topic led by node_id and a consumer group
    node_id coordinates, for a SQL consumer there that waits on this node
    alone."""
    node = c.node(node_id)
    for _ in range(50):
        name = unique_name("waitfor")
        node.sql("SELECT streamlog.create_topic(%s, 1)", (name,))
        if c.wait_topic_everywhere(name)[4][0][0] == node_id:
            break
    else:
        pytest.fail(f"no one-partition topic placed on node {node_id} in 50 tries")
    for i in range(200):
        group = f"{name}-g{i}"
        try:
            # seek() runs only on the coordinator (consume() runs anywhere)
            node.sql("SELECT streamlog.seek(%s, %s, 0, 0)", (group, name))
            return name, group
        except psycopg.errors.ObjectNotInPrerequisiteState:
            continue    # coordinated by another node
    pytest.fail(f"no group coordinated by node {node_id} among 200")


def waiting_clients(c, node_id, topic, partition, end_offset, unique_name):
    """A raw long-poll Fetch (5 minutes) at the log end of a partition the
    node leads, and a SQL session waiting in streamlog.consume (5
    minutes), both on node_id.  Returns (raw client, thread, outcome)."""
    node = c.node(node_id)
    wait_topic, group = topic_and_group_of(c, node_id, unique_name)
    raw = kh.RawClient(node.kafka_bootstrap, timeout=DEADLINE)
    raw.send(kh.fetch_request(raw.next_correlation_id(), topic, partition, end_offset,
                              max_wait_ms=300000))
    outcome = {}
    started = threading.Event()

    def consume():
        try:
            with node.connect() as conn:
                conn.execute("SET statement_timeout = '10min'")
                started.set()
                conn.execute("SELECT * FROM streamlog.consume(%s, %s, 10, '5 min')",
                             (group, wait_topic)).fetchall()
            outcome["sql"] = "returned"
        except psycopg.Error as e:
            outcome["sql"] = e
        except Exception as e:  # noqa: BLE001 -- reported by the test
            outcome["sql"] = e
            started.set()
    t = threading.Thread(target=consume, daemon=True)
    t.start()
    started.wait(DEADLINE)
    # both are waiting (not answered at once, with an error or otherwise)
    c.wait_for(lambda: node.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        "AND query LIKE '%streamlog.consume(%' AND pid <> pg_backend_pid()")[0][0] == 1
        or "sql" in outcome, DEADLINE, "the SQL consumer waiting")
    assert "sql" not in outcome, outcome
    return raw, t, outcome


def fetch_answered_or_closed(raw):
    """True if the broker answered the Fetch or closed the connection."""
    try:
        raw.recv_frame()
        return True
    except (ConnectionError, OSError) as e:
        return not isinstance(e, TimeoutError)


def check_controlled_shutdown(c, victim, unique_name):
    survivors = [i for i in c.node_ids if i != victim]
    name = unique_name("ctrlshut")
    c.node(survivors[0]).sql("SELECT streamlog.create_topic(%s, 6)", (name,))
    before = c.wait_topic_everywhere(name)[4]
    led_by_victim = sorted(p for p, v in before.items() if v[0] == victim)
    assert led_by_victim, before
    for p in range(6):
        c.node(before[p][0]).sql(
            "SELECT streamlog.produce(%s, NULL, 'r' || g, partition => %s) "
            "FROM generate_series(1, 10) g", (name, p))
    raw, consumer, outcome = waiting_clients(c, victim, name, led_by_victim[0], 10,
                                            unique_name)

    c.stop(victim, "fast")     # fails the test if it does not finish

    # no client left waiting
    assert fetch_answered_or_closed(raw)
    raw.close()
    consumer.join(DEADLINE)
    assert not consumer.is_alive(), "SQL consumer still waiting after the shutdown"
    assert isinstance(outcome.get("sql"), psycopg.Error), outcome

    # moved nothing that has no other replica: offline, same replica
    c.wait_for(lambda: all(c.topic_state(name, s)[4][p][0] == -1
                           for s in survivors for p in led_by_victim),
               DEADLINE, f"partitions {led_by_victim} of the stopped node offline")
    for s in survivors:
        parts = c.topic_state(name, s)[4]
        for p, v in parts.items():
            if p in led_by_victim:
                assert v[3] == [victim] and v[4] == [victim], v
            else:
                assert v[0] == before[p][0] and v[1] == before[p][1], (p, v, before[p])
        md = kafka_metadata(c.node(s), [name])["topics"][name]["partitions"]
        for p in led_by_victim:
            assert md[p]["leader"] == -1 and md[p]["error"] == LEADER_NOT_AVAILABLE

    c.start(victim)
    after = c.wait_topic_everywhere(
        name, check=lambda st: all(st[4][p][0] == victim for p in led_by_victim))[4]
    for p in range(6):
        rows = c.node(after[p][0]).sql(
            "SELECT convert_from(value, 'UTF8') FROM streamlog.read(%s, %s) "
            "ORDER BY \"offset\"", (name, p))
        assert [r[0] for r in rows] == [f"r{g}" for g in range(1, 11)]


def test_controlled_shutdown_of_a_broker(whole, unique_name):
    controller = whole.wait_for_controller()
    victim = next(i for i in whole.node_ids if i != controller)
    check_controlled_shutdown(whole, victim, unique_name)
    assert whole.agreed_controller() == controller


def test_controlled_shutdown_of_the_controller(whole, unique_name):
    controller = whole.wait_for_controller()
    survivors = [i for i in whole.node_ids if i != controller]
    check_controlled_shutdown(whole, controller, unique_name)
    # it handed over before going: the others agree on one of them
    assert whole.agreed_controller(survivors) in survivors
