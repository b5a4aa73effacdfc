"""Kafka admin APIs against a real server: CreateTopics, DeleteTopics,
CreatePartitions, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs,
DeleteRecords and DescribeCluster, through confluent-kafka (librdkafka
2.0.2), kafka-python 2.0.2 and raw requests for the versions and APIs those
clients do not send; what they change is checked through SQL."""

import socket
import struct
import time
import uuid

import pytest
from psycopg import errors

from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions,
                                   NewTopic)
import kafka
import kafka.errors
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType as KpConfigResourceType
from kafka.admin import NewPartitions as KpNewPartitions
from kafka.admin import NewTopic as KpNewTopic
from pgserver import wait_until
import kafka_helpers as kh

# Kafka error codes
NONE = 0
OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REPLICA_ASSIGNMENT = 39
INVALID_CONFIG = 40
INVALID_REQUEST = 42
UNKNOWN_TOPIC_ID = 100
MISMATCHED_ENDPOINT_TYPE = 114

# API keys
API_VERSIONS = 18
CREATE_TOPICS = 19
DELETE_TOPICS = 20
DELETE_RECORDS = 21
DESCRIBE_CONFIGS = 32
ALTER_CONFIGS = 33
CREATE_PARTITIONS = 37
INCREMENTAL_ALTER_CONFIGS = 44
DESCRIBE_CLUSTER = 60

# config sources and types
SOURCE_TOPIC = 1
SOURCE_DEFAULT = 5
TYPE_BOOLEAN = 1
TYPE_INT = 3
TYPE_LONG = 5
TYPE_LIST = 7

TIMEOUT = 30


# --- a minimal Kafka wire client, for what the client libraries lack ------

class Enc:
    """Request body builder; compact (flexible) or classic encodings."""

    def __init__(self, flexible):
        self.flexible = flexible
        self.buf = bytearray()

    def _uvarint(self, n):
        while True:
            b = n & 0x7F
            n >>= 7
            if n:
                self.buf.append(b | 0x80)
            else:
                self.buf.append(b)
                return self

    def i8(self, v):
        self.buf += struct.pack(">b", v)
        return self

    def boolean(self, v):
        return self.i8(1 if v else 0)

    def i16(self, v):
        self.buf += struct.pack(">h", v)
        return self

    def i32(self, v):
        self.buf += struct.pack(">i", v)
        return self

    def i64(self, v):
        self.buf += struct.pack(">q", v)
        return self

    def uuid(self, v):
        self.buf += v
        return self

    def string(self, s):
        if s is None:
            return self._uvarint(0) if self.flexible else self.i16(-1)
        data = s.encode()
        if self.flexible:
            self._uvarint(len(data) + 1)
        else:
            self.i16(len(data))
        self.buf += data
        return self

    def array(self, items, fn):
        if items is None:
            return self._uvarint(0) if self.flexible else self.i32(-1)
        if self.flexible:
            self._uvarint(len(items) + 1)
        else:
            self.i32(len(items))
        for item in items:
            fn(self, item)
        return self

    def tags(self):
        if self.flexible:
            self._uvarint(0)
        return self


class Dec:
    """Response body reader, the counterpart of Enc."""

    def __init__(self, data, flexible):
        self.data = data
        self.pos = 0
        self.flexible = flexible

    def _take(self, n):
        chunk = self.data[self.pos:self.pos + n]
        assert len(chunk) == n, "response too short"
        self.pos += n
        return chunk

    def uvarint(self):
        shift = n = 0
        while True:
            b = self._take(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    def i8(self):
        return struct.unpack(">b", self._take(1))[0]

    def boolean(self):
        return self.i8() != 0

    def i16(self):
        return struct.unpack(">h", self._take(2))[0]

    def i32(self):
        return struct.unpack(">i", self._take(4))[0]

    def i64(self):
        return struct.unpack(">q", self._take(8))[0]

    def uuid(self):
        return bytes(self._take(16))

    def string(self):
        n = self.uvarint() - 1 if self.flexible else self.i16()
        return None if n < 0 else self._take(n).decode()

    def array(self, fn):
        n = self.uvarint() - 1 if self.flexible else self.i32()
        return None if n < 0 else [fn(self) for _ in range(n)]

    def tags(self):
        if self.flexible:
            for _ in range(self.uvarint()):
                self.uvarint()
                self._take(self.uvarint())

    def done(self):
        assert self.pos == len(self.data), \
            f"{len(self.data) - self.pos} bytes left after the response"


class Wire:
    """One connection; call() sends a request and returns a Dec of the body."""

    def __init__(self, bootstrap):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        self.correlation = 0

    def _recv(self, n):
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return bytes(data)

    def call(self, api_key, version, body, flexible):
        self.correlation += 1
        header = Enc(False).i16(api_key).i16(version).i32(self.correlation).string("admin-test")
        if flexible:
            header.buf.append(0)    # header v2: no tagged fields
        frame = bytes(header.buf) + bytes(body.buf)
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", self._recv(4))[0]
        dec = Dec(self._recv(size), flexible)
        assert dec.i32() == self.correlation
        if flexible and api_key != API_VERSIONS:
            dec.tags()
        return dec

    def close(self):
        self.sock.close()


def api_versions(wire):
    d = wire.call(API_VERSIONS, 0, Enc(False), False)
    assert d.i16() == NONE
    return {k: (lo, hi) for k, lo, hi in d.array(lambda d: (d.i16(), d.i16(), d.i16()))}


def raw_create_topics(wire, version, topics, validate_only=False):
    """topics: [(name, partitions, replication, assignments, {config})]"""
    flex = version >= 5
    e = Enc(flex)

    def topic(e, t):
        name, partitions, replication, assignments, configs = t
        e.string(name).i32(partitions).i16(replication)
        e.array(assignments, lambda e, a: e.i32(a[0]).array(a[1], lambda e, b: e.i32(b)).tags())
        e.array(list(configs.items()), lambda e, c: e.string(c[0]).string(c[1]).tags())
        e.tags()

    e.array(topics, topic).i32(10000)
    if version >= 1:
        e.boolean(validate_only)
    e.tags()
    d = wire.call(CREATE_TOPICS, version, e, flex)
    if version >= 2:
        d.i32()

    def result(d):
        r = {"name": d.string()}
        if version >= 7:
            r["topic_id"] = d.uuid()
        r["error_code"] = d.i16()
        if version >= 1:
            r["error_message"] = d.string()
        if version >= 5:
            r["num_partitions"] = d.i32()
            r["replication_factor"] = d.i16()
            r["configs"] = d.array(lambda d: (d.string(), d.string(), d.boolean(), d.i8(),
                                              d.boolean(), d.tags())[:5])
        d.tags()
        return r

    results = d.array(result)
    d.tags()
    d.done()
    return {r["name"]: r for r in results}


def raw_delete_topics_v6(wire, topics):
    """topics: [(name or None, topic id bytes)]"""
    e = Enc(True)
    e.array(topics, lambda e, t: e.string(t[0]).uuid(t[1]).tags()).i32(10000).tags()
    d = wire.call(DELETE_TOPICS, 6, e, True)
    d.i32()
    results = d.array(lambda d: (d.string(), d.uuid(), d.i16(), d.string(), d.tags())[:4])
    d.tags()
    d.done()
    return results


def raw_delete_records(wire, version, topic, offsets):
    """offsets: {partition: offset}; returns {partition: (low watermark, error)}"""
    flex = version >= 2
    e = Enc(flex)
    e.array([topic], lambda e, t: e.string(t).array(
        list(offsets.items()), lambda e, p: e.i32(p[0]).i64(p[1]).tags()).tags())
    e.i32(10000).tags()
    d = wire.call(DELETE_RECORDS, version, e, flex)
    d.i32()
    topics = d.array(lambda d: (d.string(), d.array(
        lambda d: (d.i32(), d.i64(), d.i16(), d.tags())[:3]), d.tags())[:2])
    d.tags()
    d.done()
    assert [t[0] for t in topics] == [topic]
    return {p: (low, err) for p, low, err in topics[0][1]}


def raw_incremental_alter(wire, version, resources, validate_only=False):
    """resources: [(type, name, [(config, op, value)])]; returns [(error, message)]"""
    flex = version >= 1
    e = Enc(flex)
    e.array(resources, lambda e, r: e.i8(r[0]).string(r[1]).array(
        r[2], lambda e, c: e.string(c[0]).i8(c[1]).string(c[2]).tags()).tags())
    e.boolean(validate_only).tags()
    d = wire.call(INCREMENTAL_ALTER_CONFIGS, version, e, flex)
    d.i32()
    out = d.array(lambda d: (d.i16(), d.string(), d.i8(), d.string(), d.tags())[:4])
    d.tags()
    d.done()
    assert [(t, n) for _, _, t, n in out] == [(r[0], r[1]) for r in resources]
    return [(err, msg) for err, msg, _, _ in out]


def raw_describe_configs(wire, version, resource_type, name, keys=None, synonyms=False,
                         documentation=False):
    """Returns (error, message, {config: entry dict})"""
    flex = version >= 4
    e = Enc(flex)
    e.array([(resource_type, name)], lambda e, r: e.i8(r[0]).string(r[1]).array(
        keys, lambda e, k: e.string(k)).tags())
    if version >= 1:
        e.boolean(synonyms)
    if version >= 3:
        e.boolean(documentation)
    e.tags()
    d = wire.call(DESCRIBE_CONFIGS, version, e, flex)
    d.i32()

    def entry(d):
        c = {"name": d.string(), "value": d.string(), "read_only": d.boolean()}
        if version == 0:
            c["is_default"] = d.boolean()
        else:
            c["source"] = d.i8()
        c["sensitive"] = d.boolean()
        if version >= 1:
            c["synonyms"] = d.array(lambda d: (d.string(), d.string(), d.i8(), d.tags())[:3])
        if version >= 3:
            c["type"] = d.i8()
            c["doc"] = d.string()
        d.tags()
        return c

    def result(d):
        r = (d.i16(), d.string(), d.i8(), d.string(), d.array(entry))
        d.tags()
        return r

    results = d.array(result)
    d.tags()
    d.done()
    assert len(results) == 1
    err, msg, rtype, rname, configs = results[0]
    assert (rtype, rname) == (resource_type, name)
    return err, msg, {c["name"]: c for c in configs}


def raw_describe_cluster(wire, version, endpoint_type=1):
    e = Enc(True).boolean(False)
    if version >= 1:
        e.i8(endpoint_type)
    e.tags()
    d = wire.call(DESCRIBE_CLUSTER, version, e, True)
    r = {"throttle": d.i32(), "error_code": d.i16(), "error_message": d.string()}
    if version >= 1:
        r["endpoint_type"] = d.i8()
    r["cluster_id"] = d.string()
    r["controller_id"] = d.i32()
    r["brokers"] = d.array(lambda d: (d.i32(), d.string(), d.i32(), d.string(), d.tags())[:4])
    r["authorized_operations"] = d.i32()
    d.tags()
    d.done()
    return r


# --- helpers --------------------------------------------------------------

@pytest.fixture
def wire_factory():
    opened = []

    def factory(srv):
        w = Wire(srv.kafka_bootstrap)
        opened.append(w)
        return w

    yield factory
    for w in opened:
        w.close()


def admin(srv):
    return AdminClient({"bootstrap.servers": srv.kafka_bootstrap,
                        "socket.timeout.ms": TIMEOUT * 1000})


def kp_admin(srv):
    return kafka.KafkaAdminClient(bootstrap_servers=srv.kafka_bootstrap,
                                  request_timeout_ms=TIMEOUT * 1000)


def results(futures):
    return kh.admin_results(futures, TIMEOUT)


def topic_partitions(srv, topic):
    rows = srv.sql("SELECT partitions FROM streamlog.topics WHERE topic = %s", (topic,))
    return rows[0][0] if rows else None


def explicit_config(srv, topic):
    return dict(srv.sql("SELECT name, value FROM streamlog.topic_config(%s) WHERE NOT is_default",
                        (topic,)))


def effective_config(srv, topic):
    return dict(srv.sql("SELECT name, value FROM streamlog.topic_config(%s)", (topic,)))


def partition_state(srv, topic, partition=0):
    row = srv.sql("SELECT log_start_offset, high_watermark, segments FROM streamlog.partitions "
                  "WHERE topic = %s AND partition = %s", (topic, partition))[0]
    return dict(zip(("log_start", "hwm", "segments"), row))


def produce(srv, topic, count, partition=0, prefix="v"):
    srv.sql("SELECT count(streamlog.produce(%s, NULL, %s || g, partition => %s)) "
            "FROM generate_series(1, %s) g", (topic, prefix, partition, count))



# --- tests ----------------------------------------------------------------

def test_api_versions_advertise_admin_apis(make_server, wire_factory):
    srv = make_server()
    versions = api_versions(wire_factory(srv))
    assert versions[CREATE_TOPICS] == (0, 7)
    assert versions[DELETE_TOPICS] == (0, 6)
    assert versions[DELETE_RECORDS] == (0, 2)
    assert versions[DESCRIBE_CONFIGS] == (0, 4)
    assert versions[ALTER_CONFIGS] == (0, 2)
    assert versions[CREATE_PARTITIONS] == (0, 3)
    assert versions[INCREMENTAL_ALTER_CONFIGS] == (0, 1)
    assert versions[DESCRIBE_CLUSTER] == (0, 1)


def test_create_topics_confluent(make_server, unique_name):
    srv = make_server(conf={"streamlog.default_partitions": 4})
    a = admin(srv)
    good, dflt, dry = unique_name("ct"), unique_name("ct-default"), unique_name("ct-dry")

    res = results(a.create_topics([
        NewTopic(good, 3, 1, config={"retention.ms": "3600000", "compression.type": "lz4"}),
        NewTopic(dflt, -1, -1),
    ], request_timeout=TIMEOUT))
    assert res == {good: None, dflt: None}
    assert topic_partitions(srv, good) == 3
    assert topic_partitions(srv, dflt) == 4          # streamlog.default_partitions
    assert explicit_config(srv, good) == {"retention.ms": "3600000", "compression.type": "lz4"}
    assert explicit_config(srv, dflt) == {}
    md = a.list_topics(timeout=TIMEOUT)
    assert len(md.topics[good].partitions) == 3

    # validate_only: checked, answered, not created
    res = results(a.create_topics([NewTopic(dry, 2, 1, config={"retention.ms": "1000"})],
                                  validate_only=True, request_timeout=TIMEOUT))
    assert res == {dry: None}
    assert topic_partitions(srv, dry) is None
    res = results(a.create_topics([NewTopic(good, 2, 1)], validate_only=True,
                                  request_timeout=TIMEOUT))
    assert res[good].code() == TOPIC_ALREADY_EXISTS

    # errors, each for its own topic only
    bad_name, bad_value, rf3, ok = (unique_name("ct-bad"), unique_name("ct-val"),
                                    unique_name("ct-rf"), unique_name("ct-ok"))
    res = results(a.create_topics([
        NewTopic(good, 1, 1),
        NewTopic(bad_name, 1, 1, config={"no.such.config": "1"}),
        NewTopic(bad_value, 1, 1, config={"retention.ms": "soon"}),
        NewTopic(rf3, 1, 3),
        NewTopic(ok, 1, 1),
    ], request_timeout=TIMEOUT))
    assert res[good].code() == TOPIC_ALREADY_EXISTS
    assert res[bad_name].code() == INVALID_CONFIG
    assert "no.such.config" in res[bad_name].str()
    assert res[bad_value].code() == INVALID_CONFIG
    assert "retention.ms" in res[bad_value].str()
    assert res[rf3].code() == INVALID_REPLICATION_FACTOR
    assert res[ok] is None
    names = {r[0] for r in srv.sql("SELECT name FROM streamlog.topic")}
    assert names == {good, dflt, ok}
    assert topic_partitions(srv, good) == 3           # untouched by the duplicate


def test_create_topics_kafka_python(make_server, unique_name):
    srv = make_server()
    a = kp_admin(srv)
    try:
        name, dry = unique_name("kp"), unique_name("kp-dry")
        a.create_topics([KpNewTopic(name, 2, 1, topic_configs={"segment.ms": "60000"})])
        assert topic_partitions(srv, name) == 2
        assert explicit_config(srv, name) == {"segment.ms": "60000"}

        a.create_topics([KpNewTopic(dry, 5, 1)], validate_only=True)
        assert topic_partitions(srv, dry) is None

        with pytest.raises(kafka.errors.TopicAlreadyExistsError):
            a.create_topics([KpNewTopic(name, 1, 1)])
        with pytest.raises(kafka.errors.InvalidReplicationFactorError):
            a.create_topics([KpNewTopic(unique_name("kp-rf"), 1, 3)])
        with pytest.raises(kafka.errors.InvalidConfigurationError):
            a.create_topics([KpNewTopic(unique_name("kp-cfg"), 1, 1,
                                        topic_configs={"cleanup.policy": "shred"})])
        with pytest.raises(kafka.errors.InvalidPartitionsError):
            a.create_topics([KpNewTopic(unique_name("kp-zero"), 0, 1)])
        assert [r[0] for r in srv.sql("SELECT name FROM streamlog.topic")] == [name]
    finally:
        a.close()


def test_create_topics_raw_versions(make_server, unique_name, wire_factory):
    srv = make_server(conf={"streamlog.default_partitions": 2})
    w = wire_factory(srv)
    t7, dry, assigned, dup = (unique_name("raw7"), unique_name("raw-dry"),
                              unique_name("raw-asg"), unique_name("raw-dup"))

    res = raw_create_topics(w, 7, [(t7, 3, 1, [], {"retention.ms": "5000"})])[t7]
    assert res["error_code"] == NONE and res["error_message"] is None
    assert res["num_partitions"] == 3 and res["replication_factor"] == 1
    configs = {c[0]: c for c in res["configs"]}
    assert configs["retention.ms"] == ("retention.ms", "5000", False, SOURCE_TOPIC, False)
    assert configs["segment.ms"][3] == SOURCE_DEFAULT
    stored_uuid = srv.sql("SELECT topic_uuid FROM streamlog.topic WHERE name = %s", (t7,))[0][0]
    assert uuid.UUID(bytes=res["topic_id"]) == stored_uuid

    # validate_only: the would-be configs, no topic id, nothing created
    res = raw_create_topics(w, 7, [(dry, -1, -1, [], {"max.message.bytes": "2048"})],
                            validate_only=True)[dry]
    assert res["error_code"] == NONE
    assert res["num_partitions"] == 2                 # streamlog.default_partitions
    assert ("max.message.bytes", "2048", False, SOURCE_TOPIC, False) in res["configs"]
    assert res["topic_id"] == bytes(16)
    assert topic_partitions(srv, dry) is None

    # assignments: only [node 1] for each partition, given with -1/-1
    res = raw_create_topics(w, 4, [(assigned, -1, -1, [(0, [1]), (1, [1])], {})])[assigned]
    assert res["error_code"] == NONE
    assert topic_partitions(srv, assigned) == 2
    res = raw_create_topics(w, 4, [(unique_name("raw-b2"), -1, -1, [(0, [2])], {})])
    assert list(res.values())[0]["error_code"] == INVALID_REQUEST
    res = raw_create_topics(w, 4, [(unique_name("raw-both"), 2, 1, [(0, [1])], {})])
    assert list(res.values())[0]["error_code"] == INVALID_REQUEST

    # v0: no error message, same codes; a name given twice is refused once
    res = raw_create_topics(w, 0, [(t7, 1, 1, [], {}), (dup, 1, 1, [], {}),
                                   (dup, 1, 1, [], {}), ("bad name!", 1, 1, [], {})])
    assert res[t7]["error_code"] == TOPIC_ALREADY_EXISTS
    assert "error_message" not in res[t7]
    assert res[dup]["error_code"] == INVALID_REQUEST
    assert res["bad name!"]["error_code"] == INVALID_TOPIC_EXCEPTION
    assert topic_partitions(srv, dup) is None


def test_describe_configs(make_server, unique_name, wire_factory):
    srv = make_server(conf={"streamlog.default_partitions": 3,
                            "streamlog.auto_create_topics": "off"})
    name = unique_name("dc")
    srv.sql("SELECT streamlog.create_topic(%s, 1, '{\"retention.ms\": \"7200000\"}')", (name,))

    # confluent-kafka (DescribeConfigs v1)
    a = admin(srv)
    missing = unique_name("dc-missing")
    futures = a.describe_configs([ConfigResource("topic", name), ConfigResource("topic", missing),
                                  ConfigResource("broker", "1")], request_timeout=TIMEOUT)
    by_name = {r.name: f for r, f in futures.items()}
    topic_cfg = by_name[name].result(timeout=TIMEOUT)
    assert set(topic_cfg) == set(effective_config(srv, name))
    assert topic_cfg["retention.ms"].value == "7200000"
    assert not topic_cfg["retention.ms"].is_default
    assert topic_cfg["retention.ms"].source == SOURCE_TOPIC
    assert topic_cfg["segment.ms"].value == "604800000"
    assert topic_cfg["segment.ms"].is_default
    assert not topic_cfg["retention.ms"].is_read_only
    with pytest.raises(KafkaException) as exc:
        by_name[missing].result(timeout=TIMEOUT)
    assert exc.value.args[0].code() == UNKNOWN_TOPIC_OR_PARTITION
    broker_cfg = by_name["1"].result(timeout=TIMEOUT)
    assert broker_cfg["num.partitions"].value == "3"
    assert not broker_cfg["num.partitions"].is_read_only
    assert broker_cfg["broker.id"].is_read_only
    assert broker_cfg["auto.create.topics.enable"].value == "false"
    assert broker_cfg["socket.request.max.bytes"].value == str(100 * 1024 * 1024)
    assert broker_cfg["log.retention.check.interval.ms"].value == "30000"

    # kafka-python (v2), with a key filter
    kp = kp_admin(srv)
    try:
        resp = kp.describe_configs([KpConfigResource(KpConfigResourceType.TOPIC, name,
                                                     configs={"retention.ms": None,
                                                              "cleanup.policy": None})])
        (err, _msg, _type, rname, entries), = resp[0].resources
        assert err == NONE and rname == name
        assert {e[0]: e[1] for e in entries} == {"retention.ms": "7200000",
                                                 "cleanup.policy": "delete"}
    finally:
        kp.close()

    # raw v0 (is_default) and v4 (config types, synonyms)
    w = wire_factory(srv)
    err, _, cfg = raw_describe_configs(w, 0, 2, name)
    assert err == NONE
    assert cfg["retention.ms"]["is_default"] is False
    assert cfg["retention.bytes"]["is_default"] is True
    err, _, cfg = raw_describe_configs(w, 2, 2, name, keys=[])
    assert err == NONE and set(cfg) == set(effective_config(srv, name))
    err, _, cfg = raw_describe_configs(w, 4, 2, name, keys=["retention.ms", "cleanup.policy",
                                                            "max.message.bytes"], synonyms=True)
    assert err == NONE and set(cfg) == {"retention.ms", "cleanup.policy", "max.message.bytes"}
    assert cfg["retention.ms"]["type"] == TYPE_LONG
    assert cfg["cleanup.policy"]["type"] == TYPE_LIST
    assert cfg["max.message.bytes"]["type"] == TYPE_INT
    assert cfg["retention.ms"]["doc"] is None
    assert cfg["retention.ms"]["synonyms"] == [("retention.ms", "7200000", SOURCE_TOPIC),
                                               ("log.retention.hours", "168", SOURCE_DEFAULT)]
    err, _, cfg = raw_describe_configs(w, 4, 4, "", keys=["auto.create.topics.enable"],
                                       synonyms=True)
    assert err == NONE
    entry = cfg["auto.create.topics.enable"]
    assert (entry["value"], entry["read_only"], entry["type"]) == ("false", False, TYPE_BOOLEAN)
    assert entry["synonyms"][0][:2] == ("streamlog.auto_create_topics", "false")
    err, msg, cfg = raw_describe_configs(w, 4, 4, "42")
    assert err == INVALID_REQUEST and cfg == {}


def test_alter_configs_replaces_explicit_set(make_server, unique_name):
    srv = make_server()
    name = unique_name("ac")
    srv.sql("SELECT streamlog.create_topic(%s, 1, "
            "'{\"retention.ms\": \"1000000\", \"segment.ms\": \"500000\"}')", (name,))
    a = admin(srv)

    # validate_only: checked, not applied
    res = results(a.alter_configs([ConfigResource("topic", name,
                                                  set_config={"retention.bytes": "1000"})],
                                  validate_only=True, request_timeout=TIMEOUT))
    assert list(res.values()) == [None]
    assert explicit_config(srv, name) == {"retention.ms": "1000000", "segment.ms": "500000"}

    # AlterConfigs sets the whole explicit config: segment.ms goes back to default
    res = results(a.alter_configs([ConfigResource("topic", name,
                                                  set_config={"retention.ms": "2000000",
                                                              "retention.bytes": "1000"})],
                                  request_timeout=TIMEOUT))
    assert list(res.values()) == [None]
    assert explicit_config(srv, name) == {"retention.ms": "2000000", "retention.bytes": "1000"}
    assert effective_config(srv, name)["segment.ms"] == "604800000"

    # an invalid value changes nothing
    res = results(a.alter_configs([ConfigResource("topic", name,
                                                  set_config={"retention.ms": "-5"})],
                                  request_timeout=TIMEOUT))
    assert list(res.values())[0].code() == INVALID_CONFIG
    assert explicit_config(srv, name)["retention.ms"] == "2000000"

    res = results(a.alter_configs([ConfigResource("topic", unique_name("ac-missing"),
                                                  set_config={"retention.ms": "1"})],
                                  request_timeout=TIMEOUT))
    assert list(res.values())[0].code() == UNKNOWN_TOPIC_OR_PARTITION

    # kafka-python AlterConfigs v1
    kp = kp_admin(srv)
    try:
        resp = kp.alter_configs([KpConfigResource(KpConfigResourceType.TOPIC, name,
                                                  configs={"max.message.bytes": "4096"})])
        assert [r[0] for r in resp.resources] == [NONE]
        assert explicit_config(srv, name) == {"max.message.bytes": "4096"}
        resp = kp.alter_configs([KpConfigResource(KpConfigResourceType.BROKER, "1",
                                                  configs={"broker.id": "9"})])
        assert [r[0] for r in resp.resources] == [INVALID_CONFIG]
    finally:
        kp.close()
    # the topic's new settings are in force for its producers too
    assert srv.sql("SELECT config->>'max.message.bytes' FROM streamlog.topics "
                   "WHERE topic = %s", (name,)) == [("4096",)]


def test_incremental_alter_configs(make_server, unique_name, wire_factory):
    srv = make_server()
    name = unique_name("iac")
    srv.sql("SELECT streamlog.create_topic(%s, 1, '{\"segment.ms\": \"500000\"}')", (name,))
    w = wire_factory(srv)
    SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3

    # SET leaves the other explicit settings alone
    assert raw_incremental_alter(w, 0, [(2, name, [("retention.ms", SET, "123456")])]) \
        == [(NONE, None)]
    assert explicit_config(srv, name) == {"segment.ms": "500000", "retention.ms": "123456"}

    # validate_only (flexible v1)
    assert raw_incremental_alter(w, 1, [(2, name, [("retention.ms", DELETE, None)])],
                                 validate_only=True) == [(NONE, None)]
    assert explicit_config(srv, name) == {"segment.ms": "500000", "retention.ms": "123456"}

    # DELETE goes back to the default; APPEND of what is there already is a no-op
    assert raw_incremental_alter(w, 1, [(2, name, [("segment.ms", DELETE, None),
                                                   ("cleanup.policy", APPEND, "delete")])]) \
        == [(NONE, None)]
    assert explicit_config(srv, name) == {"retention.ms": "123456", "cleanup.policy": "delete"}

    # errors, per resource; nothing of a failed resource is applied
    missing = unique_name("iac-missing")
    out = raw_incremental_alter(w, 1, [
        (2, name, [("retention.ms", APPEND, "1")]),
        (2, missing, [("retention.ms", SET, "1")]),
        (2, name + "x", [("retention.ms", 7, "1")]),
    ])
    assert out[0][0] == INVALID_REQUEST and "retention.ms" in out[0][1]
    assert out[1][0] == UNKNOWN_TOPIC_OR_PARTITION
    assert out[2][0] == INVALID_REQUEST
    out = raw_incremental_alter(w, 1, [(2, name, [("retention.ms", SET, "1"),
                                                  ("cleanup.policy", SUBTRACT, "delete")])])
    assert out[0][0] == INVALID_CONFIG
    out = raw_incremental_alter(w, 0, [(2, name, [("retention.ms", SET, "1"),
                                                  ("segment.bytes", SET, "many")])])
    assert out[0][0] == INVALID_CONFIG and "segment.bytes" in out[0][1]
    assert explicit_config(srv, name) == {"retention.ms": "123456", "cleanup.policy": "delete"}
    out = raw_incremental_alter(w, 0, [(4, "1", [("broker.id", SET, "5")])])
    assert out[0][0] == INVALID_CONFIG


def test_create_partitions(make_server, unique_name):
    srv = make_server()
    name = unique_name("cp")
    srv.sql("SELECT streamlog.create_topic(%s, 2)", (name,))
    a = admin(srv)

    res = results(a.create_partitions([NewPartitions(name, 5)], validate_only=True,
                                      request_timeout=TIMEOUT))
    assert res == {name: None}
    assert topic_partitions(srv, name) == 2

    res = results(a.create_partitions([NewPartitions(name, 5)], request_timeout=TIMEOUT))
    assert res == {name: None}
    assert topic_partitions(srv, name) == 5
    srv.sql("SELECT streamlog.produce(%s, NULL, 'new'::text, partition => 4)", (name,))
    assert partition_state(srv, name, 4)["hwm"] == 1

    for count in (3, 5):
        res = results(a.create_partitions([NewPartitions(name, count)], request_timeout=TIMEOUT))
        assert res[name].code() == INVALID_PARTITIONS
    missing = unique_name("cp-missing")
    res = results(a.create_partitions([NewPartitions(missing, 2)], request_timeout=TIMEOUT))
    assert res[missing].code() == UNKNOWN_TOPIC_OR_PARTITION
    res = results(a.create_partitions([NewPartitions(name, 7, [[1], [2]])],
                                      request_timeout=TIMEOUT))
    assert res[name].code() == INVALID_REPLICA_ASSIGNMENT
    assert topic_partitions(srv, name) == 5

    kp = kp_admin(srv)
    try:
        kp.create_partitions({name: KpNewPartitions(8)})
        assert topic_partitions(srv, name) == 8
        with pytest.raises(kafka.errors.InvalidPartitionsError):
            kp.create_partitions({name: KpNewPartitions(6)})
        kp.create_partitions({name: KpNewPartitions(9)}, validate_only=True)
    finally:
        kp.close()
    assert topic_partitions(srv, name) == 8
    assert a.list_topics(timeout=TIMEOUT).topics[name].partitions.keys() == set(range(8))


def test_delete_topics(make_server, unique_name, wire_factory):
    srv = make_server(conf={"streamlog.auto_create_topics": "off"})
    t1, t2, t3, t4 = (unique_name("dt") for _ in range(4))
    for t in (t1, t2, t3, t4):
        srv.sql("SELECT streamlog.create_topic(%s, 2)", (t,))
    produce(srv, t1, 3)
    missing = unique_name("dt-missing")

    a = admin(srv)
    res = results(a.delete_topics([t1, missing], request_timeout=TIMEOUT))
    assert res[t1] is None
    assert res[missing].code() == UNKNOWN_TOPIC_OR_PARTITION
    assert topic_partitions(srv, t1) is None
    assert srv.sql("SELECT count(*) FROM streamlog.segment s JOIN streamlog.topic t "
                   "USING (topic_id) WHERE t.name = %s", (t1,)) == [(0,)]

    kp = kp_admin(srv)
    try:
        kp.delete_topics([t2])
        assert topic_partitions(srv, t2) is None
        with pytest.raises(kafka.errors.UnknownTopicOrPartitionError):
            kp.delete_topics([t2])
    finally:
        kp.close()

    # v6: by topic id
    w = wire_factory(srv)
    t3_id = srv.sql("SELECT topic_uuid FROM streamlog.topic WHERE name = %s", (t3,))[0][0].bytes
    unknown_id = uuid.uuid4().bytes
    out = raw_delete_topics_v6(w, [(None, t3_id), (None, unknown_id), (t4, t3_id)])
    assert out[0] == (t3, t3_id, NONE, None)
    assert out[1][1:3] == (unknown_id, UNKNOWN_TOPIC_ID)
    assert out[2][2] == INVALID_REQUEST               # both name and id
    assert topic_partitions(srv, t3) is None
    assert topic_partitions(srv, t4) == 2
    # the name can be used again
    res = results(a.create_topics([NewTopic(t1, 1, 1)], request_timeout=TIMEOUT))
    assert res == {t1: None}


def test_delete_records_kafka(make_server, unique_name, wire_factory):
    srv = make_server()
    name = unique_name("dr")
    srv.sql("SELECT streamlog.create_topic(%s, 2)", (name,))
    produce(srv, name, 10, partition=0)
    produce(srv, name, 3, partition=1)
    w = wire_factory(srv)

    out = raw_delete_records(w, 0, name, {0: 4, 1: 100, 7: 0})
    assert out[0] == (4, NONE)
    assert out[1] == (-1, OFFSET_OUT_OF_RANGE)
    assert out[7] == (-1, UNKNOWN_TOPIC_OR_PARTITION)
    assert partition_state(srv, name, 0)["log_start"] == 4
    assert partition_state(srv, name, 1)["log_start"] == 0
    with pytest.raises(errors.InvalidParameterValue):
        srv.sql("SELECT * FROM streamlog.read(%s, 0, 0)", (name,))
    rows = srv.sql('SELECT "offset" FROM streamlog.read(%s, 0, 4)', (name,))
    assert [r[0] for r in rows] == list(range(4, 10))

    # Kafka clients see the new low watermark
    consumer = kafka.KafkaConsumer(bootstrap_servers=srv.kafka_bootstrap, group_id=None,
                                   enable_auto_commit=False, consumer_timeout_ms=5000)
    try:
        tp = kafka.TopicPartition(name, 0)
        assert consumer.beginning_offsets([tp]) == {tp: 4}
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got = []
        deadline = time.monotonic() + TIMEOUT
        while len(got) < 6 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(r.offset for r in records)
        assert got == list(range(4, 10))
    finally:
        consumer.close()

    # lower than the current start: no change; -1: up to the high watermark (v1, v2)
    out = raw_delete_records(w, 1, name, {0: 2})
    assert out[0] == (4, NONE)
    out = raw_delete_records(w, 2, name, {0: -1, 1: 3})
    assert out == {0: (10, NONE), 1: (3, NONE)}
    assert partition_state(srv, name, 0) == {"log_start": 10, "hwm": 10, "segments": 1}
    assert srv.sql("SELECT count(*) FROM streamlog.read(%s, 0, 10)", (name,)) == [(0,)]
    out = raw_delete_records(w, 2, unique_name("dr-missing"), {0: 1})
    assert out == {0: (-1, UNKNOWN_TOPIC_OR_PARTITION)}

    # appends go on from the high watermark
    produce(srv, name, 2, partition=0)
    rows = srv.sql('SELECT "offset" FROM streamlog.read(%s, 0, 10)', (name,))
    assert [r[0] for r in rows] == [10, 11]


def test_delete_records_sql(make_server, unique_name):
    srv = make_server(conf={"streamlog.retention_check_interval": "100ms"})
    name = unique_name("drs")
    # every cleaner pass rolls a non-empty active segment; nothing expires
    srv.sql("SELECT streamlog.create_topic(%s, 1, '{\"segment.ms\": \"1\"}')", (name,))
    produce(srv, name, 5, prefix="a")
    wait_until(lambda: partition_state(srv, name)["segments"] >= 2, TIMEOUT, "a first roll")
    produce(srv, name, 5, prefix="b")
    wait_until(lambda: partition_state(srv, name)["segments"] >= 3, TIMEOUT, "a second roll")
    before = partition_state(srv, name)
    assert before["hwm"] == 10 and before["log_start"] == 0

    # a rolled-back deletion leaves no trace, in the catalog or in shared memory
    with srv.connect(autocommit=False) as c:
        assert c.execute("SELECT streamlog.delete_records(%s, 0, 7)", (name,)).fetchone() == (7,)
        c.rollback()
    assert partition_state(srv, name) == before
    assert len(srv.sql("SELECT * FROM streamlog.read(%s, 0, 0)", (name,))) == 10

    # offset 7: the first segment (offsets 0-4) goes whole, the second stays
    assert srv.sql("SELECT streamlog.delete_records(%s, 0, 7)", (name,)) == [(7,)]
    after = partition_state(srv, name)
    assert after["log_start"] == 7 and after["hwm"] == 10
    assert after["segments"] == before["segments"] - 1
    assert srv.sql("SELECT log_start_offset FROM streamlog.partition p JOIN streamlog.topic t "
                   "USING (topic_id) WHERE t.name = %s", (name,)) == [(7,)]
    rows = srv.sql('SELECT "offset", streamlog.as_text(value) FROM streamlog.read(%s, 0, 7)',
                   (name,))
    assert rows == [(7, "b3"), (8, "b4"), (9, "b5")]
    with pytest.raises(errors.InvalidParameterValue):
        srv.sql("SELECT * FROM streamlog.read(%s, 0, 6)", (name,))

    # never backwards
    assert srv.sql("SELECT streamlog.delete_records(%s, 0, 3)", (name,)) == [(7,)]

    with pytest.raises(errors.InvalidParameterValue):
        srv.sql("SELECT streamlog.delete_records(%s, 0, 11)", (name,))
    with pytest.raises(errors.InvalidParameterValue):
        srv.sql("SELECT streamlog.delete_records(%s, 0, -2)", (name,))
    with pytest.raises(errors.InvalidParameterValue):
        srv.sql("SELECT streamlog.delete_records(%s, 1, 0)", (name,))
    with pytest.raises(errors.UndefinedObject):
        srv.sql("SELECT streamlog.delete_records(%s, 0, 0)", (unique_name("drs-missing"),))
    assert srv.sql("SELECT streamlog.delete_records(%s, 0, -1)", (name,)) == [(10,)]

    # the new start survives a restart
    srv.restart()
    assert partition_state(srv, name)["log_start"] == 10
    produce(srv, name, 1, prefix="c")
    assert srv.sql('SELECT "offset", streamlog.as_text(value) FROM streamlog.read(%s, 0, 10)',
                   (name,)) == [(10, "c1")]


def test_describe_cluster(make_server, wire_factory):
    srv = make_server(conf={"streamlog.node_id": 7})
    w = wire_factory(srv)
    host, port = srv.kafka_bootstrap.rsplit(":", 1)
    cluster_id = admin(srv).list_topics(timeout=TIMEOUT).cluster_id
    assert cluster_id

    for version in (0, 1):
        r = raw_describe_cluster(w, version)
        assert r["error_code"] == NONE and r["error_message"] is None
        assert r["cluster_id"] == cluster_id
        assert r["controller_id"] == 7
        assert r["brokers"] == [(7, host, int(port), None)]
        assert r["authorized_operations"] == -2**31
    r = raw_describe_cluster(w, 1, endpoint_type=2)
    assert r["error_code"] == MISMATCHED_ENDPOINT_TYPE
    assert r["brokers"] == []
