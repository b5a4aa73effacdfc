"""Death detection with the default session timeout (6 s) on three nodes:
a node killed with kill -9 is not silent (its Raft port refuses), so the
controller fences it as soon as its heartbeat is late and a probe is
refused, and its partitions get new leaders from the ISR; a paused node
(its kernel still accepts connections) is fenced only after the session
timeout.  A request forwarded to a controller that stops answering is
sent again to the controller the quorum chose next, not left to wait for
its deadline.

The assertions read what the servers record (the controller's reason for
each fence, the forwarder's resend), never the wall clock."""

import pytest

from cluster import replication_settings, shared_cluster

DEADLINE = 90
GONE = "it is gone (its Raft address refused a connection"
SILENT = "no heartbeat for"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 3, name="death", conf=replication_settings())


@pytest.fixture
def whole(cluster):
    """Every node up and registered, before and after"""
    def heal():
        for n in cluster:
            n.resume()
        stopped = [n.node_id for n in cluster if not n.is_running()]
        if stopped:
            cluster.start(stopped)
        cluster.wait_ready(deadline=DEADLINE)
    heal()
    yield cluster
    heal()


def log_marks(cluster):
    """Where each node's log ends now"""
    return {n.node_id: len(n.log_text()) for n in cluster}


def fence_lines(cluster, marks, victim):
    """The controllers' fence lines about victim logged since marks"""
    lines = []
    for n in cluster:
        if n.node_id == victim:
            continue
        new = n.log_text()[marks[n.node_id]:]
        lines += [line for line in new.splitlines()
                  if f"streamlog controller fences node {victim}:" in line]
    return lines


def replicated_topic(cluster, name):
    """A topic of 3 partitions, 3 replicas each, alike everywhere"""
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 3, replication_factor => 3)",
                        (name,))
    return cluster.wait_topic_everywhere(name, deadline=DEADLINE)[4]


@pytest.mark.parametrize("who", ["broker", "controller"])
def test_killed_leader_is_fenced_as_gone_and_replaced(whole, unique_name, who):
    c = whole
    controller = c.wait_for_controller()
    name = unique_name(f"killed-{who}")
    parts = replicated_topic(c, name)
    leaders = {v[0] for v in parts.values()}
    candidates = [i for i in c.node_ids if i in leaders and (i == controller) == (who == "controller")]
    if not candidates:
        # move a leadership where the test needs it
        candidates = [controller] if who == "controller" else \
            [next(i for i in c.node_ids if i != controller)]
    victim = candidates[0]
    led = sorted(p for p, v in parts.items() if v[0] == victim)
    survivors = [i for i in c.node_ids if i != victim]
    marks = log_marks(c)

    c.kill9(victim)
    c.wait_for(lambda: fence_lines(c, marks, victim), DEADLINE, f"node {victim} fenced")
    lines = fence_lines(c, marks, victim)
    # the probe, not the session timeout, fenced it
    assert GONE in lines[0], lines
    # its partitions are led by survivors from the ISR, with a new epoch
    after = c.wait_topic_everywhere(
        name, node_ids=survivors, deadline=DEADLINE,
        check=lambda s: all(s[4][p][0] in survivors for p in parts))[4]
    for p in led:
        assert after[p][1] > parts[p][1], (p, parts[p], after[p])
        assert victim not in after[p][4]


def test_paused_node_is_fenced_only_after_the_session_timeout(whole, unique_name):
    c = whole
    controller = c.wait_for_controller()
    victim = next(i for i in c.node_ids if i != controller)
    marks = log_marks(c)

    c.pause(victim)
    c.wait_for(lambda: fence_lines(c, marks, victim), DEADLINE, f"paused node {victim} fenced")
    lines = fence_lines(c, marks, victim)
    # its kernel accepted the probes: silence alone fenced it, a session late
    assert SILENT in lines[0] and GONE not in lines[0], lines
    silent_ms = int(lines[0].split(SILENT)[1].split()[0])
    assert silent_ms > 6000, lines
    c.resume(victim)


def test_request_to_a_paused_controller_goes_to_the_next(whole, unique_name):
    """The survivor's create_topic goes to the controller, which is paused
    before it can answer; the view names a new controller about a second
    later, and the request is sent again there: it succeeds (before, it
    waited out its 30 s deadline and failed with REQUEST_TIMED_OUT)."""
    c = whole
    controller = c.wait_for_controller()
    survivors = [i for i in c.node_ids if i != controller]
    marks = log_marks(c)
    name = unique_name("afterpause")

    c.pause(controller)
    c.node(survivors[0]).sql("SELECT streamlog.create_topic(%s, 1)", (name,))
    new = c.wait_for_controller(exclude={controller}, node_ids=survivors, deadline=DEADLINE)
    assert new in survivors
    c.wait_topic_everywhere(name, node_ids=survivors, deadline=DEADLINE)
    log = c.node(survivors[0]).log_text()[marks[survivors[0]]:]
    assert f"did not answer, and node {new} is the controller now" in log, log[-3000:]
    c.resume(controller)


def test_metadata_never_shows_a_leaderless_partition_without_an_offline_replica(
        whole, unique_name):
    """Metadata asked of a survivor over and over while a node is killed
    (fenced: its partitions go offline) and started again (unfenced: it
    leads them again).  The leaderships come from the catalog and the
    fenced nodes from the view the Raft worker publishes, written one
    after the other; no answer may show a partition with leader -1 and no
    offline replica, in either direction."""
    import threading

    import kafka_helpers as kh
    from cluster import metadata_v7_request, parse_metadata_v7

    c = whole
    controller = c.wait_for_controller()
    victim = next(i for i in c.node_ids if i != controller)
    survivor = controller
    name = unique_name("invariant")
    # one replica each, on every node: the victim's go offline
    c.node(1).sql("SELECT streamlog.create_topic(%s, 6)", (name,))
    parts = c.wait_topic_everywhere(name, deadline=DEADLINE)[4]
    led = sorted(p for p, v in parts.items() if v[0] == victim)
    assert led, parts

    stop = threading.Event()
    bad, answers, seen = [], [0], set()

    def ask():
        with kh.RawClient(c.node(survivor).kafka_bootstrap, timeout=30) as client:
            while not stop.is_set():
                md = parse_metadata_v7(client.call(metadata_v7_request, [name]))
                answers[0] += 1
                for p, part in md["topics"][name]["partitions"].items():
                    seen.add((p, part["leader"]))
                    if part["leader"] == -1 and not part["offline"]:
                        bad.append((p, part))
                    if part["leader"] != -1 and part["leader"] not in md["brokers"] and \
                            part["leader"] not in part["offline"]:
                        bad.append((p, part, md["brokers"]))
    t = threading.Thread(target=ask, daemon=True)
    t.start()
    try:
        c.kill9(victim)
        c.wait_for(lambda: all((p, -1) in seen for p in led), DEADLINE,
                   f"partitions {led} offline in Metadata")
        c.start([victim])
        c.wait_for(lambda: all(c.topic_state(name, survivor)[4][p][0] == victim for p in led),
                   DEADLINE, f"partitions {led} led by node {victim} again")
        n = answers[0]
        c.wait_for(lambda: answers[0] > n + 10, DEADLINE, "more Metadata answers")
    finally:
        stop.set()
        t.join(30)
    assert not bad, bad[:5]
