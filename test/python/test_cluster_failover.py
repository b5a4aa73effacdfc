"""Faults on a three-node cluster: kill -9 of the controller (another
takes over, administration keeps working), kill -9 of a broker (fenced,
its partitions offline until it returns, nothing lost), a paused node
(fenced, rejoins), a paused controller (replaced, steps down), a lost
quorum (administration times out, the data path goes on), and kill -9 of
every node at once.

The tests share one cluster with a short session timeout; each one leaves
every node running and registered again (the `whole` fixture checks it)."""

import collections

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import (LEADER_NOT_AVAILABLE, REQUEST_TIMED_OUT, TOPIC_ALREADY_EXISTS,
                     kafka_create_topic, kafka_metadata, shared_cluster)
import kafka_helpers as kh

SESSION_TIMEOUT_MS = 3000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 3, name="failover",
                conf={"streamlog.broker_session_timeout_ms": SESSION_TIMEOUT_MS})


@pytest.fixture
def whole(cluster):
    """The cluster with every node up and registered, before and after."""
    def heal():
        for n in cluster:
            n.resume()
        stopped = [n.node_id for n in cluster if not n.is_running()]
        if stopped:
            cluster.start(stopped)
        cluster.wait_ready()
    heal()
    yield cluster
    heal()


def produce_all(bootstrap, topic, partitions, per_partition, tag):
    """Produce per_partition records to every partition with librdkafka
    (acks=all), waiting for every acknowledgement; returns
    {partition: [values]}."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                  "message.timeout.ms": 60000, "linger.ms": 5})
    errors = []
    sent = collections.defaultdict(list)
    for part in partitions:
        for i in range(per_partition):
            value = f"{tag}-{part}-{i}".encode()
            p.produce(topic, value=value, partition=part,
                      on_delivery=lambda err, msg: errors.append(err) if err else None)
            sent[part].append(value)
    assert p.flush(90) == 0
    assert errors == []
    return sent


def read_values(cluster, node_id, topic, partition):
    rows = cluster.node(node_id).sql(
        "SELECT value FROM streamlog.read(%s, %s, 0, 100000) ORDER BY \"offset\"",
        (topic, partition))
    return [bytes(r[0]) for r in rows]


def fenced(state):
    return state is not None and "fence" in str(state).lower()


def test_kill9_of_the_controller_elects_another_and_admin_keeps_working(whole, unique_name):
    c = whole
    old = c.wait_for_controller()
    others = [i for i in c.node_ids if i != old]
    c.kill9(old)
    new = c.wait_for_controller(exclude={old}, node_ids=others)
    assert new in others

    # administration through either survivor, SQL and Kafka
    name = unique_name("afterfailover")
    c.node(others[0]).sql("SELECT streamlog.create_topic(%s, 4)", (name,))
    name2 = unique_name("afterfailover-kafka")
    admin = AdminClient({"bootstrap.servers": c.bootstrap_servers(others)})
    assert kh.admin_results(admin.create_topics([NewTopic(name2, 2, 1)]), 60) == \
        {name2: None}
    c.wait_topic_everywhere(name, node_ids=others)
    c.wait_topic_everywhere(name2, node_ids=others)
    c.node(others[1]).sql("SELECT streamlog.drop_topic(%s)", (name2,))
    c.wait_topic_gone_everywhere(name2, node_ids=others)

    # the old controller comes back as a follower of the same log
    c.start(old)
    c.wait_ready()
    assert c.agreed_controller() == new
    state = c.wait_topic_everywhere(name)
    assert state[2] == 4
    c.wait_topic_gone_everywhere(name2)


def test_kill9_of_a_broker_fences_it_and_its_partitions_come_back(whole, unique_name):
    c = whole
    controller = c.wait_for_controller()
    victim = next(i for i in reversed(c.node_ids) if i != controller)
    survivors = [i for i in c.node_ids if i != victim]
    name = unique_name("brokerdown")
    c.node(controller).sql("SELECT streamlog.create_topic(%s, 6)", (name,))
    before = c.wait_topic_everywhere(name)[4]
    led_by_victim = sorted(p for p, v in before.items() if v[0] == victim)
    assert led_by_victim, before
    sent = produce_all(c.bootstrap_servers(), name, range(6), 20, "before")

    c.kill9(victim)
    c.wait_for(lambda: fenced(c.node_state(victim, controller)), 60,
               f"node {victim} fenced by the controller")

    # its partitions are offline (no other replica), the others unchanged
    def offline_everywhere():
        for via in survivors:
            parts = c.topic_state(name, via)[4]
            for p, v in parts.items():
                if p in led_by_victim and v[0] != -1:
                    return False
        return True
    c.wait_for(offline_everywhere, 60, f"partitions {led_by_victim} offline")
    for via in survivors:
        parts = c.topic_state(name, via)[4]
        for p, v in parts.items():
            if p in led_by_victim:
                assert v[0] == -1 and v[3] == [victim], v
            else:
                assert v == before[p]
        md = c.wait_for(lambda: kafka_metadata(c.node(via), [name])["topics"][name], 30,
                        "Metadata")
        for p, m in md["partitions"].items():
            if p in led_by_victim:
                assert m["leader"] == -1
                assert m["error"] == LEADER_NOT_AVAILABLE
            else:
                assert m["error"] == 0 and m["leader"] == before[p][0]
    # the live partitions keep taking records
    live = [p for p in range(6) if p not in led_by_victim]
    more = produce_all(c.bootstrap_servers(survivors), name, live, 5, "during")

    c.start(victim)
    after = c.wait_topic_everywhere(
        name, check=lambda s: all(s[4][p][0] == victim for p in led_by_victim))[4]
    for p in led_by_victim:
        # leader epoch moved on: -1 then back are two leader changes
        assert after[p][1] > before[p][1]
        assert after[p][3] == [victim]
    c.wait_for(lambda: not fenced(c.node_state(victim, controller)), 60,
               f"node {victim} unfenced")
    # nothing lost, nothing doubled, on the leader of each partition
    for p in range(6):
        leader = after[p][0]
        assert read_values(c, leader, name, p) == sent[p] + more.get(p, [])


@pytest.mark.parametrize("who", ["broker", "controller"])
def test_paused_node_is_fenced_and_rejoins(whole, unique_name, who):
    c = whole
    controller = c.wait_for_controller()
    victim = controller if who == "controller" else \
        next(i for i in c.node_ids if i != controller)
    survivors = [i for i in c.node_ids if i != victim]
    name = unique_name(f"paused-{who}")
    c.node(survivors[0]).sql("SELECT streamlog.create_topic(%s, 6)", (name,))
    before = c.wait_topic_everywhere(name)[4]
    led_by_victim = sorted(p for p, v in before.items() if v[0] == victim)
    sent = produce_all(c.bootstrap_servers(), name, range(6), 10, "before")

    c.pause(victim)
    new_controller = c.wait_for_controller(
        exclude={victim}, node_ids=survivors) if who == "controller" else controller
    c.wait_for(lambda: fenced(c.node_state(victim, new_controller)), 60,
               f"paused node {victim} fenced")
    c.wait_for(lambda: all(c.topic_state(name, s)[4][p][0] == -1
                           for s in survivors for p in led_by_victim), 60,
               f"partitions {led_by_victim} of the paused node offline")
    # administration goes on without it
    name2 = unique_name("whilepaused")
    c.node(survivors[1]).sql("SELECT streamlog.create_topic(%s, 3)", (name2,))
    state2 = c.wait_topic_everywhere(name2, node_ids=survivors)
    # new partitions go to live nodes only
    assert all(v[0] in survivors for v in state2[4].values()), state2

    c.resume(victim)
    # back: unfenced, its partitions led by it again, the topics made
    # meanwhile applied, one controller (the paused one stepped down or
    # nobody else had taken over)
    c.wait_ready()
    c.wait_topic_everywhere(name2)
    after = c.wait_topic_everywhere(
        name, check=lambda s: all(s[4][p][0] == victim for p in led_by_victim))[4]
    assert c.agreed_controller() in c.node_ids
    for p in range(6):
        assert read_values(c, after[p][0], name, p) == sent[p]


def test_lost_quorum_times_admin_out_and_comes_back(whole, unique_name):
    """Two of three voters killed: no controller can be chosen, so topic
    administration is answered REQUEST_TIMED_OUT at its deadline (never
    left hanging), while the survivor goes on serving the partitions it
    leads; one voter back, administration works again."""
    c = whole
    name = unique_name("quorum")
    c.node(1).sql("SELECT streamlog.create_topic(%s, 6)", (name,))
    parts = c.wait_topic_everywhere(name)[4]
    survivor = c.wait_for_controller()
    killed = [i for i in c.node_ids if i != survivor]
    c.kill9(killed[0])
    c.kill9(killed[1])

    error, _message = kafka_create_topic(c.node(survivor), unique_name("noquorum"), 1,
                                         timeout_ms=3000)
    assert error == REQUEST_TIMED_OUT
    own = sorted(p for p, v in parts.items() if v[0] == survivor)
    assert own, parts
    for p in own:
        c.node(survivor).sql("SELECT streamlog.produce(%s, 'k', 'without a quorum', "
                             "partition => %s)", (name, p))
        assert read_values(c, survivor, name, p) == [b"without a quorum"]

    c.start(killed[0])
    again = unique_name("quorumback")
    c.wait_for(lambda: kafka_create_topic(c.node(survivor), again, 1, timeout_ms=5000)[0]
               in (0, TOPIC_ALREADY_EXISTS), 90, "a topic creation with the quorum back")
    c.wait_topic_everywhere(again, node_ids=[survivor, killed[0]])


def test_whole_cluster_killed_and_restarted_keeps_everything(whole, unique_name):
    c = whole
    name = unique_name("powerloss")
    c.node(2).sql("SELECT streamlog.create_topic(%s, 6)", (name,))
    before = c.wait_topic_everywhere(name)
    sent = produce_all(c.bootstrap_servers(), name, range(6), 10, "before")
    for node_id in c.node_ids:
        c.kill9(node_id)
    c.start()
    c.wait_ready()
    after = c.wait_topic_everywhere(
        name, check=lambda s: all(v[0] == before[4][p][0] for p, v in s[4].items()))
    # the same topic (ids), the same replicas; every record still there
    assert after[:4] == before[:4]
    for p, v in after[4].items():
        assert v[3] == before[4][p][3]
        assert read_values(c, v[0], name, p) == sent[p]
