"""One cluster, any door: three nodes on loopback, topic administration on
any of them, the same topics (ids, assignment, epochs) on all, and every
broker and the controller in Kafka's Metadata and DescribeCluster from
every node.

The tests of this module share one cluster and change only their own
topics."""

import collections
import uuid

import psycopg
import pytest
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from cluster import (shared_cluster, kafka_create_topic, kafka_describe_cluster,
                     kafka_metadata)
import kafka_helpers as kh


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from shared_cluster(tmp_path_factory, 3, name="topics")


def non_controller(cluster):
    controller = cluster.wait_for_controller()
    return next(i for i in cluster.node_ids if i != controller)


def test_every_node_shows_every_broker_and_one_controller(cluster):
    controller = cluster.wait_for_controller()
    expected = {n.node_id: ("127.0.0.1", n.kafka_port) for n in cluster}
    for n in cluster:
        md = cluster.wait_for(
            lambda: (lambda m: m if set(m["brokers"]) == set(expected) else None)(
                kafka_metadata(n)),
            60, f"every broker in node {n.node_id}'s Metadata")
        assert {b: hp[:2] for b, hp in md["brokers"].items()} == expected
        assert md["controller"] == controller
        assert md["cluster_id"] == cluster.cluster_id
        dc = kafka_describe_cluster(n)
        assert dc["error"] == 0
        assert dc["cluster_id"] == cluster.cluster_id
        assert dc["controller"] == controller
        assert {b: hp[:2] for b, hp in dc["brokers"].items()} == expected
        view = cluster.nodes_view(n.node_id)
        assert sorted(view) == [1, 2, 3]
        assert [i for i, v in view.items() if v["controller"]] == [controller]
        assert sorted(i for i, v in view.items() if v["voter"]) == [1, 2, 3]


def test_topic_created_by_sql_on_a_follower_is_the_same_on_every_node(cluster, unique_name):
    name = unique_name("sqltopic")
    via = non_controller(cluster)
    cluster.node(via).sql("SELECT streamlog.create_topic(%s, 6)", (name,))
    # answered once applied on the node that asked
    assert cluster.topic_state(name, via) is not None
    state = cluster.wait_topic_everywhere(name)
    topic_id, topic_uuid, count, _config, parts = state
    assert isinstance(topic_uuid, uuid.UUID) and topic_uuid.int != 0
    assert count == 6 and sorted(parts) == list(range(6))
    leaders = collections.Counter(p[0] for p in parts.values())
    # spread over the live nodes, one replica each, as Kafka's assignment
    assert leaders == {1: 2, 2: 2, 3: 2}, parts
    for leader, leader_epoch, _pepoch, replicas, isr in parts.values():
        assert replicas == [leader] and isr == [leader]
        assert leader_epoch >= 0

    # Kafka's view from every node: the same leaders, replicas, epochs, and
    # the same topic id in the catalog of each node
    for n in cluster:
        md = kafka_metadata(n, [name])["topics"][name]
        assert md["error"] == 0
        assert {p: (m["leader"], m["leader_epoch"], m["replicas"], m["isr"])
                for p, m in md["partitions"].items()} == \
            {p: (v[0], v[1], v[3], v[4]) for p, v in parts.items()}
        assert n.sql("SELECT topic_uuid FROM streamlog.topic WHERE name = %s", (name,)) \
            == [(topic_uuid,)]
        # every node holds the segment tables of every partition
        assert n.sql("SELECT count(DISTINCT partition) FROM streamlog.segment "
                     "WHERE topic_id = %s", (topic_id,)) == [(6,)]


def test_topic_created_through_kafka_on_a_follower_is_the_same_on_every_node(
        cluster, unique_name):
    name = unique_name("kafkatopic")
    via = cluster.node(non_controller(cluster))
    assert kafka_create_topic(via, name, 3) == (0, None)
    state = cluster.wait_topic_everywhere(name)
    assert state[2] == 3
    # and through librdkafka's admin client, bootstrapped from one node
    name2 = unique_name("adminclient")
    admin = AdminClient({"bootstrap.servers": via.kafka_bootstrap})
    assert kh.admin_results(admin.create_topics([NewTopic(name2, 4, 1)]), 60) == \
        {name2: None}
    state2 = cluster.wait_topic_everywhere(name2)
    assert state2[2] == 4
    assert state2[1] != state[1]
    # a second creation of the same name is refused on every door
    assert kafka_create_topic(cluster.node(1), name, 3)[0] == 36  # TOPIC_ALREADY_EXISTS
    with pytest.raises(psycopg.errors.DuplicateObject):
        cluster.node(3).sql("SELECT streamlog.create_topic(%s, 1)", (name,))


def test_topic_ddl_is_not_part_of_the_callers_transaction(cluster, unique_name):
    # in cluster mode the controller commits the topic, as in Kafka: a
    # rollback of the SQL transaction that asked for it does not undo it
    name = unique_name("notx")
    with cluster.node(non_controller(cluster)).connect(autocommit=False) as conn:
        conn.execute("SELECT streamlog.create_topic(%s, 2)", (name,))
        conn.rollback()
    cluster.wait_topic_everywhere(name)


def test_add_partitions_alter_and_drop_on_any_node(cluster, unique_name):
    name = unique_name("grow")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 2)", (name,))
    before = cluster.wait_topic_everywhere(name)

    cluster.node(2).sql("SELECT streamlog.add_partitions(%s, 3)", (name,))
    after = cluster.wait_topic_everywhere(name, check=lambda s: s[2] == 5)
    assert after[0] == before[0] and after[1] == before[1]
    # the partitions that existed keep their leader and epochs
    for p in (0, 1):
        assert after[4][p] == before[4][p]
    assert set(after[4]) == set(range(5))

    admin = AdminClient({"bootstrap.servers": cluster.node(3).kafka_bootstrap})
    assert kh.admin_results(admin.create_partitions([NewPartitions(name, 6)]), 60) == \
        {name: None}
    cluster.wait_topic_everywhere(name, check=lambda s: s[2] == 6)

    cluster.node(3).sql("""SELECT streamlog.alter_topic(%s, '{"retention.ms": "3600000"}')""",
                        (name,))
    state = cluster.wait_topic_everywhere(
        name, check=lambda s: s[3].get("retention.ms") == "3600000")
    assert state[3]["retention.ms"] == "3600000"

    cluster.node(2).sql("SELECT streamlog.drop_topic(%s)", (name,))
    cluster.wait_topic_gone_everywhere(name)
    for n in cluster:
        assert kafka_metadata(n, [name])["topics"][name]["error"] == \
            kh.UNKNOWN_TOPIC_OR_PARTITION


def test_topic_deleted_through_kafka_on_a_follower(cluster, unique_name):
    name = unique_name("kdel")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 3)", (name,))
    old = cluster.wait_topic_everywhere(name)
    admin = AdminClient({"bootstrap.servers": cluster.node(non_controller(cluster))
                         .kafka_bootstrap})
    assert kh.admin_results(admin.delete_topics([name]), 60) == {name: None}
    cluster.wait_topic_gone_everywhere(name)
    # a topic of the same name made again is a new topic (new id)
    cluster.node(2).sql("SELECT streamlog.create_topic(%s, 1)", (name,))
    assert cluster.wait_topic_everywhere(name)[1] != old[1]


def test_sql_on_a_partition_led_elsewhere_goes_through_its_leader(cluster, unique_name):
    name = unique_name("elsewhere")
    cluster.node(1).sql("SELECT streamlog.create_topic(%s, 3)", (name,))
    _id, _uuid, _n, _c, parts = cluster.wait_topic_everywhere(name)
    for p, (leader, *_rest) in parts.items():
        other = cluster.node(next(i for i in cluster.node_ids if i != leader))
        # produce is taken on both: forwarded from the other node
        other.sql("SELECT streamlog.produce(%s, 'k', %s, partition => %s)",
                  (name, f"f{p}", p))
        cluster.node(leader).sql("SELECT streamlog.produce(%s, 'k', %s, partition => %s)",
                                 (name, f"v{p}", p))
        cluster.wait_for(lambda: sorted(cluster.node(leader).sql(
            "SELECT convert_from(value, 'UTF8') FROM streamlog.read(%s, %s)", (name, p)))
            == [(f"f{p}",), (f"v{p}",)], 60, f"both records of partition {p}")
        # and read on both: the other node, which holds no copy, through the leader
        assert sorted(other.sql("SELECT convert_from(value, 'UTF8') FROM streamlog.read(%s, %s)",
                                (name, p))) == [(f"f{p}",), (f"v{p}",)]

