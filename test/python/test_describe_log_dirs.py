"""DescribeLogDirs (API 35) with raw frames (neither kafka-python nor
confluent-kafka has it): the data directory as the one log directory,
each partition's size as streamlog.partitions shows it, the volume's
bytes (v4), the topics asked for, and DESCRIBE on the cluster, checked
over SASL with a role without it and one granted it."""

import os

import pytest

import kafka_helpers as kh
import sasl_client as sc
from kafka_primitives import i16, i32, uvarint
from pgserver import free_port

DESCRIBE_LOG_DIRS = 35
CLUSTER_AUTHORIZATION_FAILED = 31
PASSWORD = "s3cret-pw"


def cstring(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


def request_body(version, topics):
    """topics: None (all) or {name: [partitions]}"""
    flexible = version >= 2
    if topics is None:
        return (uvarint(0) if flexible else i32(-1)) + (uvarint(0) if flexible else b"")
    out = uvarint(len(topics) + 1) if flexible else i32(len(topics))
    for name, parts in topics.items():
        if flexible:
            out += cstring(name) + uvarint(len(parts) + 1) + b"".join(i32(p) for p in parts)
            out += uvarint(0)
        else:
            out += kh.string(name) + i32(len(parts)) + b"".join(i32(p) for p in parts)
    return out + (uvarint(0) if flexible else b"")


def describe(client, version, topics=None):
    flexible = version >= 2
    body = client.call(lambda cid: kh.request_frame(
        DESCRIBE_LOG_DIRS, version, cid, request_body(version, topics),
        header_version=2 if flexible else 1))
    r = kh.Reader(body)
    if flexible:
        r.uvarint()                     # response header's tagged fields

    def array(decode):
        if flexible:
            n = r.uvarint() - 1
            return None if n < 0 else [decode() for _ in range(n)]
        return r.array(lambda _r: decode())

    def string():
        if flexible:
            n = r.uvarint() - 1
            return None if n < 0 else r.take(n).decode()
        return r.string()

    def partition():
        p = {"partition": r.i32(), "size": r.i64(), "lag": r.i64(), "future": r.i8() != 0}
        if flexible:
            r.uvarint()
        return p

    def topic():
        t = {"name": string(), "partitions": array(partition)}
        if flexible:
            r.uvarint()
        return t

    def result():
        d = {"error": r.i16(), "log_dir": string(), "topics": array(topic)}
        if version >= 4:
            d["total"], d["usable"] = r.i64(), r.i64()
        if flexible:
            r.uvarint()
        return d

    resp = {"throttle": r.i32()}
    resp["error"] = r.i16() if version >= 3 else 0
    resp["results"] = array(result)
    if flexible:
        r.uvarint()
    assert r.at_end()
    return resp


def sizes(srv, topic):
    return {p: b for p, b in srv.sql(
        "SELECT partition, bytes FROM streamlog.partitions WHERE topic = %s", (topic,))}


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_partition_sizes_of_the_data_directory(make_server, unique_name, version):
    srv = make_server()
    a, b = unique_name("dirs"), unique_name("dirs")
    srv.sql("SELECT streamlog.create_topic(%s, 3)", (a,))
    srv.sql("SELECT streamlog.create_topic(%s, 1)", (b,))
    for i in range(50):
        srv.sql("SELECT streamlog.produce(%s, NULL, %s, partition => 1)", (a, "x" * 500))
    datadir = srv.sql("SHOW data_directory")[0][0]
    with kh.RawClient(srv.kafka_bootstrap) as c:
        resp = describe(c, version)
        assert resp["error"] == 0
        [d] = resp["results"]
        assert d["error"] == 0
        assert d["log_dir"] == datadir
        got = {t["name"]: {p["partition"]: p for p in t["partitions"]} for t in d["topics"]}
        assert set(got[a]) == {0, 1, 2} and set(got[b]) == {0}
        want = sizes(srv, a)
        for p, part in got[a].items():
            assert part["size"] == want[p]
            assert part["lag"] == 0 and not part["future"]
        assert got[a][1]["size"] > got[a][0]["size"]
        if version >= 4:
            st = os.statvfs(datadir)
            assert d["total"] == st.f_blocks * st.f_frsize
            assert 0 < d["usable"] <= d["total"]

        # only what was asked for; unknown topics and partitions are left out
        resp = describe(c, version, {a: [1, 7], "no-such-topic": [0]})
        [d] = resp["results"]
        assert [(t["name"], [p["partition"] for p in t["partitions"]]) for t in d["topics"]] \
            == [(a, [1])]
        resp = describe(c, version, {})
        assert resp["results"][0]["topics"] == []


def test_describe_on_the_cluster_is_needed(make_server, unique_name):
    srv = make_server(start=False)
    sasl_port = free_port()
    srv.update_conf({"streamlog.listeners": f"PLAINTEXT://127.0.0.1:{srv.kafka_port},"
                                            f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}"})
    srv.start()
    topic = unique_name("dirs")
    srv.sql("SELECT streamlog.create_topic(%s, 2)", (topic,))
    srv.sql(f"CREATE ROLE carol LOGIN PASSWORD '{PASSWORD}'")
    srv.sql(f"CREATE ROLE dave LOGIN PASSWORD '{PASSWORD}'")
    srv.sql("SELECT streamlog.grant('describe', 'cluster', NULL, 'dave')")

    def login(user):
        c = sc.SaslClient(f"127.0.0.1:{sasl_port}")
        error, _ = c.scram_login(user, PASSWORD)
        assert error == 0
        return c

    with login("carol") as c:
        for version in (1, 3, 4):
            resp = describe(c, version)
            assert resp["results"] == []
            if version >= 3:
                assert resp["error"] == CLUSTER_AUTHORIZATION_FAILED
    with login("dave") as c:
        resp = describe(c, 4, {topic: [0, 1]})
        assert resp["error"] == 0
        [d] = resp["results"]
        assert [t["name"] for t in d["topics"]] == [topic]
        assert {p["partition"] for p in d["topics"][0]["partitions"]} == {0, 1}
