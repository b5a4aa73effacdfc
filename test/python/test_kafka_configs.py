"""Every topic config of Apache Kafka 3.9 through the Kafka admin APIs
(CreateTopics, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs) with
confluent-kafka, kafka-python and raw requests, and the broker configs that
map to streamlog.* settings: described from the settings, altered through
ALTER SYSTEM and a reload."""

from confluent_kafka.admin import ConfigResource, NewTopic
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType as KpConfigResourceType
from kafka.admin import NewTopic as KpNewTopic

from pgserver import wait_until
from test_kafka_admin import (INVALID_CONFIG, INVALID_REQUEST, NONE, SOURCE_DEFAULT,
                              SOURCE_TOPIC, TIMEOUT, TYPE_BOOLEAN, TYPE_INT, TYPE_LIST,
                              TYPE_LONG, admin, effective_config, explicit_config,
                              kp_admin, raw_describe_configs, raw_incremental_alter,
                              results, wire_factory)  # noqa: F401 (fixture)

TYPE_STRING = 2
TYPE_DOUBLE = 6
SOURCE_DYNAMIC_DEFAULT_BROKER = 3
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
RESOURCE_TOPIC, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER = 2, 4, 8

# Topic configs streamlog stores without acting on them, as a client sets
# them, and as Kafka stores them
NOT_ENFORCED = {
    "delete.retention.ms": ("3600000", "3600000"),
    "file.delete.delay.ms": ("1000", "1000"),
    "flush.messages": ("10", "10"),
    "flush.ms": (" 500", "500"),
    "follower.replication.throttled.replicas": ("0:1, 1:1", "0:1,1:1"),
    "index.interval.bytes": ("8192", "8192"),
    "leader.replication.throttled.replicas": ("*", "*"),
    "local.retention.bytes": ("-2", "-2"),
    "local.retention.ms": ("-1", "-1"),
    "max.compaction.lag.ms": ("86400000", "86400000"),
    "message.downconversion.enable": ("FALSE", "false"),
    "message.format.version": ("2.8", "2.8"),
    "min.cleanable.dirty.ratio": ("0.25", "0.25"),
    "min.compaction.lag.ms": ("1000", "1000"),
    "min.insync.replicas": ("2", "2"),
    "preallocate": ("true", "true"),
    "remote.storage.enable": ("false", "false"),
    "segment.index.bytes": ("4096", "4096"),
    "segment.jitter.ms": ("100", "100"),
    "unclean.leader.election.enable": ("true", "true"),
    "compression.gzip.level": ("-1", "-1"),
    "compression.lz4.level": ("17", "17"),
    "compression.zstd.level": ("-5", "-5"),
}

# Values Kafka refuses, each for its type, range or enum
INVALID = {
    "min.insync.replicas": "0",
    "min.cleanable.dirty.ratio": "1.5",
    "message.format.version": "9.9",
    "preallocate": "maybe",
    "segment.index.bytes": "3",
    "local.retention.ms": "-3",
    "flush.messages": "0",
    "compression.gzip.level": "0",
    "compression.lz4.level": "18",
    "delete.retention.ms": "2h",
    "follower.replication.throttled.replicas": "0-1",
    "max.compaction.lag.ms": "0",
}


def test_create_topics_accepts_every_kafka_topic_config(make_server, unique_name):
    srv = make_server()
    a = admin(srv)
    name = unique_name("cfg-all")
    res = results(a.create_topics([NewTopic(name, 1, 1, config={
        k: given for k, (given, _) in NOT_ENFORCED.items()})], request_timeout=TIMEOUT))
    assert res == {name: None}
    assert explicit_config(srv, name) == {k: stored for k, (_, stored) in NOT_ENFORCED.items()}

    # each invalid value is refused with INVALID_CONFIG naming the config
    bad = {k: unique_name("cfg-bad") for k in INVALID}
    res = results(a.create_topics([NewTopic(t, 1, 1, config={k: INVALID[k]})
                                   for k, t in bad.items()], request_timeout=TIMEOUT))
    for k, t in bad.items():
        assert res[t] is not None and res[t].code() == INVALID_CONFIG, k
        assert k in res[t].str(), (k, res[t].str())
    # as are names Kafka does not know, and what streamlog cannot do yet
    unknown = unique_name("cfg-unknown")
    remote = unique_name("cfg-remote")
    res = results(a.create_topics([NewTopic(unknown, 1, 1, config={"retention.hours": "1"}),
                                   NewTopic(remote, 1, 1,
                                            config={"remote.storage.enable": "true"})],
                                  request_timeout=TIMEOUT))
    assert res[unknown].code() == INVALID_CONFIG and "retention.hours" in res[unknown].str()
    assert res[remote].code() == INVALID_CONFIG
    assert srv.sql("SELECT count(*) FROM streamlog.topics WHERE topic <> %s", (name,)) == [(0,)]

    # kafka-python sends CreateTopics v3 with configs too
    kp = kp_admin(srv)
    try:
        other = unique_name("cfg-kp")
        kp.create_topics([KpNewTopic(other, 1, 1, topic_configs={"min.insync.replicas": "1",
                                                                  "flush.ms": "1000"})])
        assert explicit_config(srv, other) == {"min.insync.replicas": "1", "flush.ms": "1000"}
    finally:
        kp.close()


def test_describe_configs_every_topic_config(make_server, unique_name, wire_factory):
    srv = make_server()
    name = unique_name("cfg-desc")
    srv.sql("SELECT streamlog.create_topic(%s, 1, "
            "'{\"min.insync.replicas\": 2, \"retention.ms\": 7200000}')", (name,))
    a = admin(srv)
    (f,) = a.describe_configs([ConfigResource("topic", name)],
                              request_timeout=TIMEOUT).values()
    cfg = f.result(timeout=TIMEOUT)
    assert set(NOT_ENFORCED) <= set(cfg)
    assert set(cfg) == set(effective_config(srv, name))
    assert cfg["min.insync.replicas"].value == "2"
    assert cfg["min.insync.replicas"].source == SOURCE_TOPIC
    assert cfg["delete.retention.ms"].value == "86400000"
    assert cfg["delete.retention.ms"].source == SOURCE_DEFAULT
    assert cfg["message.format.version"].value == "3.0-IV1"
    assert cfg["min.cleanable.dirty.ratio"].value == "0.5"
    assert cfg["max.compaction.lag.ms"].value == str(2**63 - 1)
    assert cfg["leader.replication.throttled.replicas"].value == ""
    assert not any(c.is_read_only or c.is_sensitive for c in cfg.values())

    # v4 with synonyms and documentation: types, Kafka's broker synonyms
    w = wire_factory(srv)
    err, _, cfg = raw_describe_configs(w, 4, RESOURCE_TOPIC, name, synonyms=True,
                                       documentation=True)
    assert err == NONE
    types = {k: c["type"] for k, c in cfg.items()}
    assert types["min.cleanable.dirty.ratio"] == TYPE_DOUBLE
    assert types["preallocate"] == TYPE_BOOLEAN
    assert types["message.format.version"] == TYPE_STRING
    assert types["follower.replication.throttled.replicas"] == TYPE_LIST
    assert types["min.insync.replicas"] == TYPE_INT
    assert types["flush.ms"] == TYPE_LONG
    assert all(c["doc"] for c in cfg.values()), [k for k, c in cfg.items() if not c["doc"]]
    assert cfg["retention.ms"]["synonyms"] == [("retention.ms", "7200000", SOURCE_TOPIC),
                                               ("log.retention.hours", "168", SOURCE_DEFAULT)]
    assert cfg["max.message.bytes"]["synonyms"] == [("message.max.bytes", "1048588",
                                                     SOURCE_DEFAULT)]
    assert cfg["min.insync.replicas"]["synonyms"] == [("min.insync.replicas", "2", SOURCE_TOPIC),
                                                      ("min.insync.replicas", "1", SOURCE_DEFAULT)]
    # configs without a broker-wide counterpart have no synonym at all
    assert cfg["remote.storage.enable"]["synonyms"] == []
    assert cfg["remote.storage.enable"]["source"] == SOURCE_DEFAULT
    # without asking: no documentation, no synonyms
    err, _, cfg = raw_describe_configs(w, 4, RESOURCE_TOPIC, name, keys=["flush.ms"])
    assert cfg["flush.ms"]["doc"] is None and cfg["flush.ms"]["synonyms"] == []


def test_alter_configs_every_topic_config(make_server, unique_name, wire_factory):
    srv = make_server()
    name = unique_name("cfg-alter")
    srv.sql("SELECT streamlog.create_topic(%s)", (name,))
    a = admin(srv)

    # AlterConfigs through librdkafka
    res = results(a.alter_configs([ConfigResource("topic", name, set_config={
        "delete.retention.ms": "1000", "leader.replication.throttled.replicas": "0:1",
        "min.cleanable.dirty.ratio": "1"})], request_timeout=TIMEOUT))
    assert list(res.values()) == [None]
    assert explicit_config(srv, name) == {"delete.retention.ms": "1000",
                                          "leader.replication.throttled.replicas": "0:1",
                                          "min.cleanable.dirty.ratio": "1.0"}

    # IncrementalAlterConfigs: APPEND and SUBTRACT on a list config; a value
    # out of range changes nothing
    w = wire_factory(srv)
    assert raw_incremental_alter(w, 1, [(RESOURCE_TOPIC, name, [
        ("leader.replication.throttled.replicas", APPEND, "1:1")])]) == [(NONE, None)]
    assert explicit_config(srv, name)["leader.replication.throttled.replicas"] == "0:1,1:1"
    assert raw_incremental_alter(w, 1, [(RESOURCE_TOPIC, name, [
        ("leader.replication.throttled.replicas", SUBTRACT, "0:1")])]) == [(NONE, None)]
    assert explicit_config(srv, name)["leader.replication.throttled.replicas"] == "1:1"
    out = raw_incremental_alter(w, 1, [(RESOURCE_TOPIC, name, [
        ("min.insync.replicas", SET, "2"), ("min.cleanable.dirty.ratio", SET, "-0.1")])])
    assert out[0][0] == INVALID_CONFIG and "min.cleanable.dirty.ratio" in out[0][1]
    # min.compaction.lag.ms may not exceed max.compaction.lag.ms, as in Kafka
    out = raw_incremental_alter(w, 1, [(RESOURCE_TOPIC, name, [
        ("max.compaction.lag.ms", SET, "5000"), ("min.compaction.lag.ms", SET, "6000")])])
    assert out[0][0] == INVALID_CONFIG and "min.compaction.lag.ms" in out[0][1]
    assert "min.insync.replicas" not in explicit_config(srv, name)

    # AlterConfigs through kafka-python replaces the explicit set
    kp = kp_admin(srv)
    try:
        resp = kp.alter_configs([KpConfigResource(KpConfigResourceType.TOPIC, name,
                                                  configs={"flush.messages": "100",
                                                           "message.format.version": "3.9-IV0"})])
        assert [r[0] for r in resp.resources] == [NONE]
    finally:
        kp.close()
    assert explicit_config(srv, name) == {"flush.messages": "100",
                                          "message.format.version": "3.9-IV0"}


def show(srv, guc):
    return srv.sql(f"SHOW {guc}")[0][0]


def test_broker_configs_describe_and_alter(make_server, unique_name, wire_factory):
    # one broker worker: once it describes a new value, it creates with it
    srv = make_server(conf={"streamlog.default_partitions": 3, "streamlog.broker_workers": 1})
    w = wire_factory(srv)
    err, _, cfg = raw_describe_configs(w, 4, RESOURCE_BROKER, "1", synonyms=True)
    assert err == NONE
    assert cfg["num.partitions"]["value"] == "3" and not cfg["num.partitions"]["read_only"]
    assert cfg["broker.id"]["read_only"] and cfg["listeners"]["read_only"]
    assert cfg["advertised.listeners"]["read_only"] and cfg["log.retention.hours"]["read_only"]
    assert cfg["group.min.session.timeout.ms"]["value"] == "6000"
    assert cfg["message.max.bytes"]["value"] == "1048588"
    assert cfg["log.retention.hours"]["value"] == "168"

    # a reloadable setting: ALTER SYSTEM and reload; validate_only changes nothing
    assert raw_incremental_alter(w, 1, [(RESOURCE_BROKER, "1", [
        ("num.partitions", SET, "5")])], validate_only=True) == [(NONE, None)]
    assert raw_incremental_alter(w, 1, [(RESOURCE_BROKER, "1", [
        ("num.partitions", SET, "5"), ("group.initial.rebalance.delay.ms", SET, "100")])]) \
        == [(NONE, None)]
    wait_until(lambda: show(srv, "streamlog.default_partitions") == "5", TIMEOUT,
               "num.partitions to reach streamlog.default_partitions")
    wait_until(lambda: show(srv, "streamlog.group_initial_rebalance_delay") == "100ms",
               TIMEOUT, "the rebalance delay to be reloaded")
    assert srv.sql("SELECT setting FROM pg_file_settings "
                   "WHERE name = 'streamlog.default_partitions' AND applied") == [("5",)]

    def described():
        err, _, cfg = raw_describe_configs(w, 4, RESOURCE_BROKER, "1",
                                           keys=["num.partitions"])
        return cfg["num.partitions"] if cfg["num.partitions"]["value"] == "5" else None
    entry = wait_until(described, TIMEOUT, "the broker to describe num.partitions 5")
    assert entry["source"] == SOURCE_DYNAMIC_DEFAULT_BROKER

    # topics created without a partition count now get 5
    topic = unique_name("cfg-auto")
    assert results(admin(srv).create_topics([NewTopic(topic, -1)], request_timeout=TIMEOUT)) \
        == {topic: None}
    assert srv.sql("SELECT partitions FROM streamlog.topics WHERE topic = %s",
                   (topic,)) == [(5,)]

    # DELETE goes back to the server's own setting
    assert raw_incremental_alter(w, 0, [(RESOURCE_BROKER, "", [
        ("num.partitions", DELETE, None)])]) == [(NONE, None)]
    wait_until(lambda: show(srv, "streamlog.default_partitions") == "3", TIMEOUT,
               "num.partitions to be reset")

    # a bad value, a setting only a restart changes, an unknown name
    out = raw_incremental_alter(w, 1, [
        (RESOURCE_BROKER, "1", [("num.partitions", SET, "many")])])
    assert out[0][0] == INVALID_CONFIG and "num.partitions" in out[0][1]
    out = raw_incremental_alter(w, 1, [(RESOURCE_BROKER, "1", [("broker.id", SET, "7")])])
    assert out[0][0] == INVALID_CONFIG and "broker.id" in out[0][1]
    out = raw_incremental_alter(w, 1, [(RESOURCE_BROKER, "1", [("log.flush.x", SET, "7")])])
    assert out[0][0] == INVALID_CONFIG and "log.flush.x" in out[0][1]
    out = raw_incremental_alter(w, 1, [(RESOURCE_BROKER, "2", [("num.partitions", SET, "7")])])
    assert out[0][0] == INVALID_REQUEST
    assert show(srv, "streamlog.default_partitions") == "3"
    assert show(srv, "streamlog.node_id") == "1"

    # kafka-python's AlterConfigs on the broker works the same way
    kp = kp_admin(srv)
    try:
        resp = kp.alter_configs([KpConfigResource(KpConfigResourceType.BROKER, "1",
                                                  configs={"auto.create.topics.enable": "false"})])
        assert [r[0] for r in resp.resources] == [NONE]
    finally:
        kp.close()
    wait_until(lambda: show(srv, "streamlog.auto_create_topics") == "off", TIMEOUT,
               "auto.create.topics.enable to be reloaded")


def test_broker_logger_configs_are_empty(make_server, wire_factory):
    srv = make_server()
    w = wire_factory(srv)
    err, _, cfg = raw_describe_configs(w, 4, RESOURCE_BROKER_LOGGER, "1")
    assert (err, cfg) == (NONE, {})
    err, msg, _ = raw_describe_configs(w, 1, RESOURCE_BROKER_LOGGER, "")
    assert err == INVALID_REQUEST and msg
