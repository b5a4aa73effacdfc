"""Raw requests of the cluster administration APIs that the Kafka clients
installed here do not send (ElectLeaders, DescribeQuorum, AddRaftVoter,
RemoveRaftVoter) and of FindCoordinator, with parsers of their responses.
Built on kafka_helpers' frame and primitive encoders."""

from kafka_helpers import Reader, array, i8, i32, request_frame, string, uvarint

FIND_COORDINATOR = 10
ELECT_LEADERS = 43
DESCRIBE_QUORUM = 55
ADD_RAFT_VOTER = 80
REMOVE_RAFT_VOTER = 81

METADATA_TOPIC = "__cluster_metadata"

# Kafka error codes these tests look for
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
CLUSTER_AUTHORIZATION_FAILED = 31
INVALID_REQUEST = 42
PREFERRED_LEADER_NOT_AVAILABLE = 80
ELECTION_NOT_NEEDED = 84
DUPLICATE_VOTER = 126
VOTER_NOT_FOUND = 127


def compact_string(s):
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def compact_array(items, encode):
    if items is None:
        return uvarint(0)
    return uvarint(len(items) + 1) + b"".join(encode(x) for x in items)


def read_compact_string(r):
    n = r.uvarint()
    return None if n == 0 else r.take(n - 1).decode()


def read_compact_array(r, decode):
    n = r.uvarint()
    return None if n == 0 else [decode(r) for _ in range(n - 1)]


def skip_tags(r):
    for _ in range(r.uvarint()):
        r.uvarint()
        r.take(r.uvarint())


# -- ElectLeaders (v0-1 classic, v2 flexible) -------------------------------------

def elect_leaders_request(correlation_id, topic_partitions, version=1, election_type=0,
                          timeout_ms=30000):
    """topic_partitions: {topic: [partitions]}, or None for every partition."""
    items = None if topic_partitions is None else sorted(topic_partitions.items())
    if version >= 2:
        body = i8(election_type) + compact_array(
            items, lambda tp: compact_string(tp[0]) + compact_array(tp[1], i32) + uvarint(0))
        body += i32(timeout_ms) + uvarint(0)
        return request_frame(ELECT_LEADERS, version, correlation_id, body, header_version=2)
    body = i8(election_type) if version >= 1 else b""
    body += array(items, lambda tp: string(tp[0]) + array(tp[1], i32)) + i32(timeout_ms)
    return request_frame(ELECT_LEADERS, version, correlation_id, body)


def parse_elect_leaders(body, version=1):
    """(top-level error code or None for v0, {(topic, partition): (error, message)})"""
    r = Reader(body)
    flexible = version >= 2
    if flexible:
        skip_tags(r)
    r.i32()  # throttle
    error = r.i16() if version >= 1 else None
    results = {}

    def partition(r, topic):
        pid, code = r.i32(), r.i16()
        msg = read_compact_string(r) if flexible else r.string()
        if flexible:
            skip_tags(r)
        results[(topic, pid)] = (code, msg)

    def topic(r):
        name = read_compact_string(r) if flexible else r.string()
        if flexible:
            read_compact_array(r, lambda r: partition(r, name))
            skip_tags(r)
        else:
            r.array(lambda r: partition(r, name))

    if flexible:
        read_compact_array(r, topic)
    else:
        r.array(topic)
    return error, results


# -- DescribeQuorum (flexible from v0) ------------------------------------------------

def describe_quorum_request(correlation_id, version=1, topic=METADATA_TOPIC, partition=0):
    body = compact_array([topic], lambda t: compact_string(t) + compact_array(
        [partition], lambda p: i32(p) + uvarint(0)) + uvarint(0)) + uvarint(0)
    return request_frame(DESCRIBE_QUORUM, version, correlation_id, body, header_version=2)


def parse_describe_quorum(body, version=1):
    """{"error", "partitions": [{"partition", "error", "leader", "epoch",
    "high_watermark", "voters": {id: log_end_offset}, "observers": {...}}],
    "nodes": {id: [(host, port)]}}"""
    r = Reader(body)
    skip_tags(r)
    out = {"error": r.i16(), "partitions": [], "nodes": {}}
    if version >= 2:
        out["message"] = read_compact_string(r)

    def replica(r):
        rid = r.i32()
        if version >= 2:
            r.take(16)
        leo = r.i64()
        if version >= 1:
            r.i64()
            r.i64()
        skip_tags(r)
        return rid, leo

    def partition(r):
        p = {"partition": r.i32(), "error": r.i16()}
        if version >= 2:
            p["message"] = read_compact_string(r)
        p["leader"] = r.i32()
        p["epoch"] = r.i32()
        p["high_watermark"] = r.i64()
        p["voters"] = dict(read_compact_array(r, replica))
        p["observers"] = dict(read_compact_array(r, replica))
        skip_tags(r)
        out["partitions"].append(p)

    def topic(r):
        read_compact_string(r)
        read_compact_array(r, partition)
        skip_tags(r)

    read_compact_array(r, topic)
    if version >= 2:
        def listener(r):
            read_compact_string(r)
            host = read_compact_string(r)
            port = int.from_bytes(r.take(2), "big")
            skip_tags(r)
            return host, port

        def node(r):
            nid = r.i32()
            out["nodes"][nid] = read_compact_array(r, listener)
            skip_tags(r)

        read_compact_array(r, node)
    skip_tags(r)
    return out


# -- AddRaftVoter / RemoveRaftVoter (v0, flexible) ----------------------------------------

def add_raft_voter_request(correlation_id, voter_id, cluster_id=None, timeout_ms=30000):
    body = compact_string(cluster_id) + i32(timeout_ms) + i32(voter_id) + bytes(16)
    body += compact_array([], lambda x: b"") + uvarint(0)
    return request_frame(ADD_RAFT_VOTER, 0, correlation_id, body, header_version=2)


def remove_raft_voter_request(correlation_id, voter_id, cluster_id=None):
    body = compact_string(cluster_id) + i32(voter_id) + bytes(16) + uvarint(0)
    return request_frame(REMOVE_RAFT_VOTER, 0, correlation_id, body, header_version=2)


def parse_raft_voter_response(body):
    """(error_code, error_message)"""
    r = Reader(body)
    skip_tags(r)
    r.i32()
    return r.i16(), read_compact_string(r)


# -- FindCoordinator v1 ---------------------------------------------------------------------

def find_coordinator_request(correlation_id, group):
    return request_frame(FIND_COORDINATOR, 1, correlation_id, string(group) + i8(0))


def parse_find_coordinator(body):
    """(error_code, node_id, host, port)"""
    r = Reader(body)
    r.i32()
    error = r.i16()
    r.string()
    return error, r.i32(), r.string(), r.i32()
