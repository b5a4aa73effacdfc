#!/usr/bin/env python3
"""
Generate streamlog's Kafka wire-protocol codecs from Apache Kafka's JSON
message schemas.

    scripts/kafkagen.py --schemas ../shared/kafka-protocol --out src/protocol/generated \
        --include-out src/include/streamlog/protocol/generated

The schema folder is read, never copied.  Output (all of it deterministic):

    kmsg.h       one C struct per message and nested struct, Init / Decode /
                 Encode prototypes
    kmsg.c       Sl<Message>Init, Sl<Message>Decode, Sl<Message>Encode
    kapi.h/.c    API key enum, sl_kafka_apis[] version table, request and
                 response header versions, Kafka error codes
    kmsg_fill.h  test-only: fills every message with pseudo-random values
                 valid for a version (included by test/unit/test_kmsg.c)
    .clang-format  keeps formatters away from the generated files (in both
                 folders)

The .c files go to --out, the headers to --include-out (the same folder if
not given).

Python 3 standard library only.  Anything in a schema the generator does
not understand is an error, so a schema bump cannot silently produce a
wrong codec.
"""

import argparse
import json
import os
import re
import sys

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

# APIs to generate: (api key, name).  Each has <Name>Request.json and
# <Name>Response.json in the schema folder.
APIS = [
    (0, "Produce"),
    (1, "Fetch"),
    (2, "ListOffsets"),
    (3, "Metadata"),
    (8, "OffsetCommit"),
    (9, "OffsetFetch"),
    (10, "FindCoordinator"),
    (11, "JoinGroup"),
    (12, "Heartbeat"),
    (13, "LeaveGroup"),
    (14, "SyncGroup"),
    (15, "DescribeGroups"),
    (16, "ListGroups"),
    (17, "SaslHandshake"),
    (18, "ApiVersions"),
    (19, "CreateTopics"),
    (20, "DeleteTopics"),
    (21, "DeleteRecords"),
    (22, "InitProducerId"),
    (23, "OffsetForLeaderEpoch"),
    (24, "AddPartitionsToTxn"),
    (25, "AddOffsetsToTxn"),
    (26, "EndTxn"),
    (27, "WriteTxnMarkers"),
    (28, "TxnOffsetCommit"),
    (29, "DescribeAcls"),
    (30, "CreateAcls"),
    (31, "DeleteAcls"),
    (32, "DescribeConfigs"),
    (33, "AlterConfigs"),
    (35, "DescribeLogDirs"),
    (36, "SaslAuthenticate"),
    (37, "CreatePartitions"),
    (42, "DeleteGroups"),
    (43, "ElectLeaders"),
    (44, "IncrementalAlterConfigs"),
    (45, "AlterPartitionReassignments"),
    (46, "ListPartitionReassignments"),
    (47, "OffsetDelete"),
    (48, "DescribeClientQuotas"),
    (49, "AlterClientQuotas"),
    (50, "DescribeUserScramCredentials"),
    (51, "AlterUserScramCredentials"),
    (55, "DescribeQuorum"),
    (60, "DescribeCluster"),
    (61, "DescribeProducers"),
    (65, "DescribeTransactions"),
    (66, "ListTransactions"),
    (75, "DescribeTopicPartitions"),
    (80, "AddRaftVoter"),
    (81, "RemoveRaftVoter"),
]

HEADERS = ["RequestHeader", "ResponseHeader"]


class Mirror:
    """
    A response array that mirrors a request array, one element for each:
    copies lists (response field, request field) to copy into each element,
    a request field "" meaning the request element itself (an array of
    strings or ints); children mirror arrays inside the elements.
    """

    def __init__(self, resp_array, req_array, copies, children=()):
        self.resp_array = resp_array
        self.req_array = req_array
        self.copies = copies
        self.children = list(children)


def _topic_partitions(resp_topics, req_topics, resp_parts, req_parts,
                      resp_index="PartitionIndex", req_index="PartitionIndex"):
    copy = [(resp_index, req_index)]
    return Mirror(resp_topics, req_topics, [("Name", "Name")],
                  [Mirror(resp_parts, req_parts, copy)])


# How the error response of each API mirrors its request (Kafka's
# AbstractRequest.getErrorResponse): every ErrorCode and ErrorMessage field
# of the response, top level and inside the mirrored arrays, carries the
# error.  APIs not listed answer with their top-level fields only.
ERROR_MIRRORS = {
    "Produce": [_topic_partitions("Responses", "TopicData", "PartitionResponses",
                                  "PartitionData", "Index", "Index")],
    "Fetch": [Mirror("Responses", "Topics", [("Topic", "Topic"), ("TopicId", "TopicId")],
                     [Mirror("Partitions", "Partitions",
                             [("PartitionIndex", "Partition")])])],
    "ListOffsets": [_topic_partitions("Topics", "Topics", "Partitions", "Partitions")],
    "Metadata": [Mirror("Topics", "Topics", [("Name", "Name"), ("TopicId", "TopicId")])],
    "OffsetCommit": [_topic_partitions("Topics", "Topics", "Partitions", "Partitions")],
    "OffsetFetch": [
        _topic_partitions("Topics", "Topics", "Partitions", "PartitionIndexes",
                          req_index=""),
        Mirror("Groups", "Groups", [("GroupId", "GroupId")],
               [_topic_partitions("Topics", "Topics", "Partitions", "PartitionIndexes",
                                  req_index="")]),
    ],
    "FindCoordinator": [Mirror("Coordinators", "CoordinatorKeys", [("Key", "")])],
    "LeaveGroup": [Mirror("Members", "Members", [("MemberId", "MemberId"),
                                                 ("GroupInstanceId", "GroupInstanceId")])],
    "DescribeGroups": [Mirror("Groups", "Groups", [("GroupId", "")])],
    "CreateTopics": [Mirror("Topics", "Topics", [("Name", "Name")])],
    "DeleteTopics": [Mirror("Responses", "TopicNames", [("Name", "")]),
                     Mirror("Responses", "Topics", [("Name", "Name"), ("TopicId", "TopicId")])],
    "DeleteRecords": [_topic_partitions("Topics", "Topics", "Partitions", "Partitions")],
    "DescribeConfigs": [Mirror("Results", "Resources", [("ResourceType", "ResourceType"),
                                                        ("ResourceName", "ResourceName")])],
    "AlterConfigs": [Mirror("Responses", "Resources", [("ResourceType", "ResourceType"),
                                                       ("ResourceName", "ResourceName")])],
    "CreatePartitions": [Mirror("Results", "Topics", [("Name", "Name")])],
    "DeleteGroups": [Mirror("Results", "GroupsNames", [("GroupId", "")])],
    "ElectLeaders": [Mirror("ReplicaElectionResults", "TopicPartitions", [("Topic", "Topic")],
                            [Mirror("PartitionResult", "Partitions", [("PartitionId", "")])])],
    "DescribeQuorum": [Mirror("Topics", "Topics", [("TopicName", "TopicName")],
                              [Mirror("Partitions", "Partitions",
                                      [("PartitionIndex", "PartitionIndex")])])],
    "IncrementalAlterConfigs": [Mirror("Responses", "Resources",
                                       [("ResourceType", "ResourceType"),
                                        ("ResourceName", "ResourceName")])],
    "OffsetDelete": [_topic_partitions("Topics", "Topics", "Partitions", "Partitions")],
    "AddPartitionsToTxn": [
        _topic_partitions("ResultsByTopicV3AndBelow", "V3AndBelowTopics",
                          "ResultsByPartition", "Partitions", req_index=""),
        Mirror("ResultsByTransaction", "Transactions",
               [("TransactionalId", "TransactionalId")],
               [_topic_partitions("TopicResults", "Topics", "ResultsByPartition",
                                  "Partitions", req_index="")]),
    ],
    "WriteTxnMarkers": [Mirror("Markers", "Markers", [("ProducerId", "ProducerId")],
                               [_topic_partitions("Topics", "Topics", "Partitions",
                                                  "PartitionIndexes", req_index="")])],
    "TxnOffsetCommit": [_topic_partitions("Topics", "Topics", "Partitions", "Partitions")],
    "DescribeProducers": [_topic_partitions("Topics", "Topics", "Partitions", "PartitionIndexes",
                                            req_index="")],
    "DescribeTransactions": [Mirror("TransactionStates", "TransactionalIds",
                                    [("TransactionalId", "")])],
    "CreateAcls": [Mirror("Results", "Creations", [])],
    "DeleteAcls": [Mirror("FilterResults", "Filters", [])],
    "DescribeUserScramCredentials": [Mirror("Results", "Users", [("User", "Name")])],
    "AlterUserScramCredentials": [Mirror("Results", "Deletions", [("User", "Name")]),
                                  Mirror("Results", "Upsertions", [("User", "Name")])],
    "AlterClientQuotas": [Mirror("Entries", "Entries", [],
                                 [Mirror("Entity", "Entity", [("EntityType", "EntityType"),
                                                              ("EntityName", "EntityName")])])],
}

# Fields of a response that carry the error of an error response
ERROR_CODE_FIELDS = ("ErrorCode", "PartitionErrorCode")
ERROR_MESSAGE_FIELDS = ("ErrorMessage",)

# The API whose responses always use response header v0 (so that a client
# can read the error of a version it sent and the server does not know).
API_VERSIONS_KEY = 18

# The only request that uses request header v0.
CONTROLLED_SHUTDOWN_KEY = 7

# Kafka error codes (org.apache.kafka.common.protocol.Errors, 3.9).
ERRORS = [
    (-1, "UNKNOWN_SERVER_ERROR"),
    (0, "NONE"),
    (1, "OFFSET_OUT_OF_RANGE"),
    (2, "CORRUPT_MESSAGE"),
    (3, "UNKNOWN_TOPIC_OR_PARTITION"),
    (4, "INVALID_FETCH_SIZE"),
    (5, "LEADER_NOT_AVAILABLE"),
    (6, "NOT_LEADER_OR_FOLLOWER"),
    (7, "REQUEST_TIMED_OUT"),
    (8, "BROKER_NOT_AVAILABLE"),
    (9, "REPLICA_NOT_AVAILABLE"),
    (10, "MESSAGE_TOO_LARGE"),
    (11, "STALE_CONTROLLER_EPOCH"),
    (12, "OFFSET_METADATA_TOO_LARGE"),
    (13, "NETWORK_EXCEPTION"),
    (14, "COORDINATOR_LOAD_IN_PROGRESS"),
    (15, "COORDINATOR_NOT_AVAILABLE"),
    (16, "NOT_COORDINATOR"),
    (17, "INVALID_TOPIC_EXCEPTION"),
    (18, "RECORD_LIST_TOO_LARGE"),
    (19, "NOT_ENOUGH_REPLICAS"),
    (20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND"),
    (21, "INVALID_REQUIRED_ACKS"),
    (22, "ILLEGAL_GENERATION"),
    (23, "INCONSISTENT_GROUP_PROTOCOL"),
    (24, "INVALID_GROUP_ID"),
    (25, "UNKNOWN_MEMBER_ID"),
    (26, "INVALID_SESSION_TIMEOUT"),
    (27, "REBALANCE_IN_PROGRESS"),
    (28, "INVALID_COMMIT_OFFSET_SIZE"),
    (29, "TOPIC_AUTHORIZATION_FAILED"),
    (30, "GROUP_AUTHORIZATION_FAILED"),
    (31, "CLUSTER_AUTHORIZATION_FAILED"),
    (32, "INVALID_TIMESTAMP"),
    (33, "UNSUPPORTED_SASL_MECHANISM"),
    (34, "ILLEGAL_SASL_STATE"),
    (35, "UNSUPPORTED_VERSION"),
    (36, "TOPIC_ALREADY_EXISTS"),
    (37, "INVALID_PARTITIONS"),
    (38, "INVALID_REPLICATION_FACTOR"),
    (39, "INVALID_REPLICA_ASSIGNMENT"),
    (40, "INVALID_CONFIG"),
    (41, "NOT_CONTROLLER"),
    (42, "INVALID_REQUEST"),
    (43, "UNSUPPORTED_FOR_MESSAGE_FORMAT"),
    (44, "POLICY_VIOLATION"),
    (45, "OUT_OF_ORDER_SEQUENCE_NUMBER"),
    (46, "DUPLICATE_SEQUENCE_NUMBER"),
    (47, "INVALID_PRODUCER_EPOCH"),
    (48, "INVALID_TXN_STATE"),
    (49, "INVALID_PRODUCER_ID_MAPPING"),
    (50, "INVALID_TRANSACTION_TIMEOUT"),
    (51, "CONCURRENT_TRANSACTIONS"),
    (52, "TRANSACTION_COORDINATOR_FENCED"),
    (53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"),
    (54, "SECURITY_DISABLED"),
    (55, "OPERATION_NOT_ATTEMPTED"),
    (56, "KAFKA_STORAGE_ERROR"),
    (57, "LOG_DIR_NOT_FOUND"),
    (58, "SASL_AUTHENTICATION_FAILED"),
    (59, "UNKNOWN_PRODUCER_ID"),
    (60, "REASSIGNMENT_IN_PROGRESS"),
    (61, "DELEGATION_TOKEN_AUTH_DISABLED"),
    (62, "DELEGATION_TOKEN_NOT_FOUND"),
    (63, "DELEGATION_TOKEN_OWNER_MISMATCH"),
    (64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED"),
    (65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED"),
    (66, "DELEGATION_TOKEN_EXPIRED"),
    (67, "INVALID_PRINCIPAL_TYPE"),
    (68, "NON_EMPTY_GROUP"),
    (69, "GROUP_ID_NOT_FOUND"),
    (70, "FETCH_SESSION_ID_NOT_FOUND"),
    (71, "INVALID_FETCH_SESSION_EPOCH"),
    (72, "LISTENER_NOT_FOUND"),
    (73, "TOPIC_DELETION_DISABLED"),
    (74, "FENCED_LEADER_EPOCH"),
    (75, "UNKNOWN_LEADER_EPOCH"),
    (76, "UNSUPPORTED_COMPRESSION_TYPE"),
    (77, "STALE_BROKER_EPOCH"),
    (78, "OFFSET_NOT_AVAILABLE"),
    (79, "MEMBER_ID_REQUIRED"),
    (80, "PREFERRED_LEADER_NOT_AVAILABLE"),
    (81, "GROUP_MAX_SIZE_REACHED"),
    (82, "FENCED_INSTANCE_ID"),
    (83, "ELIGIBLE_LEADERS_NOT_AVAILABLE"),
    (84, "ELECTION_NOT_NEEDED"),
    (85, "NO_REASSIGNMENT_IN_PROGRESS"),
    (86, "GROUP_SUBSCRIBED_TO_TOPIC"),
    (87, "INVALID_RECORD"),
    (88, "UNSTABLE_OFFSET_COMMIT"),
    (89, "THROTTLING_QUOTA_EXCEEDED"),
    (90, "PRODUCER_FENCED"),
    (91, "RESOURCE_NOT_FOUND"),
    (92, "DUPLICATE_RESOURCE"),
    (93, "UNACCEPTABLE_CREDENTIAL"),
    (94, "INCONSISTENT_VOTER_SET"),
    (95, "INVALID_UPDATE_VERSION"),
    (96, "FEATURE_UPDATE_FAILED"),
    (97, "PRINCIPAL_DESERIALIZATION_FAILURE"),
    (98, "SNAPSHOT_NOT_FOUND"),
    (99, "POSITION_OUT_OF_RANGE"),
    (100, "UNKNOWN_TOPIC_ID"),
    (101, "DUPLICATE_BROKER_REGISTRATION"),
    (102, "BROKER_ID_NOT_REGISTERED"),
    (103, "INCONSISTENT_TOPIC_ID"),
    (104, "INCONSISTENT_CLUSTER_ID"),
    (105, "TRANSACTIONAL_ID_NOT_FOUND"),
    (106, "FETCH_SESSION_TOPIC_ID_ERROR"),
    (107, "INELIGIBLE_REPLICA"),
    (108, "NEW_LEADER_ELECTED"),
    (109, "OFFSET_MOVED_TO_TIERED_STORAGE"),
    (110, "FENCED_MEMBER_EPOCH"),
    (111, "UNRELEASED_INSTANCE_ID"),
    (112, "UNSUPPORTED_ASSIGNOR"),
    (113, "STALE_MEMBER_EPOCH"),
    (114, "MISMATCHED_ENDPOINT_TYPE"),
    (115, "UNSUPPORTED_ENDPOINT_TYPE"),
    (116, "UNKNOWN_CONTROLLER_ID"),
    (117, "UNKNOWN_SUBSCRIPTION_ID"),
    (118, "TELEMETRY_TOO_LARGE"),
    (119, "INVALID_REGISTRATION"),
    (120, "TRANSACTION_ABORTABLE"),
    (121, "INVALID_RECORD_STATE"),
    (122, "SHARE_SESSION_NOT_FOUND"),
    (123, "INVALID_SHARE_SESSION_EPOCH"),
    (124, "FENCED_STATE_EPOCH"),
    (125, "INVALID_VOTER_KEY"),
    (126, "DUPLICATE_VOTER"),
    (127, "VOTER_NOT_FOUND"),
]

# Schema keys that carry no wire meaning and are ignored on purpose.
IGNORED_TOP_KEYS = {"listeners", "deprecatedVersions", "latestVersionUnstable"}
IGNORED_FIELD_KEYS = {"about", "mapKey", "entityType", "zeroCopy"}

# Schema keys the generator interprets.
TOP_KEYS = {"apiKey", "type", "name", "validVersions", "flexibleVersions",
            "fields", "commonStructs"}
FIELD_KEYS = {"name", "type", "versions", "nullableVersions", "taggedVersions",
              "tag", "default", "ignorable", "fields", "flexibleVersions"}
STRUCT_KEYS = {"name", "versions", "fields"}

HEADER_LINE = ("Generated by scripts/kafkagen.py from Apache Kafka's message "
               "schemas. DO NOT EDIT.")

# ---------------------------------------------------------------------------
# Primitive types
# ---------------------------------------------------------------------------

INT_RANGES = {
    "int8": (-2**7, 2**7 - 1),
    "int16": (-2**15, 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-2**31, 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-2**63, 2**63 - 1),
}

PRIMS = {
    # name: (C type, reader, writer, fixed size or None)
    "bool": ("bool", "SlReadBool", "SlWriteBool", 1),
    "int8": ("int8", "SlReadInt8", "SlWriteInt8", 1),
    "int16": ("int16", "SlReadInt16", "SlWriteInt16", 2),
    "uint16": ("uint16", "SlReadUint16", "SlWriteUint16", 2),
    "int32": ("int32", "SlReadInt32", "SlWriteInt32", 4),
    "uint32": ("uint32", "SlReadUint32", "SlWriteUint32", 4),
    "int64": ("int64", "SlReadInt64", "SlWriteInt64", 8),
    "float64": ("double", "SlReadFloat64", "SlWriteFloat64", 8),
    "uuid": ("SlUuid", "SlReadUuid", "SlWriteUuid", 16),
    "string": ("SlStr", "SlReadString", "SlWriteString", None),
    "bytes": ("SlBytes", "SlReadBytes", "SlWriteBytes", None),
    "records": ("SlBytes", "SlReadBytes", "SlWriteRecords", None),
}

NULLABLE_KINDS = {"string", "bytes", "records"}

C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do",
    "double", "else", "enum", "extern", "float", "for", "goto", "if",
    "inline", "int", "long", "register", "restrict", "return", "short",
    "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
    "unsigned", "void", "volatile", "while", "bool", "true", "false",
}


class SchemaError(Exception):
    pass


# ---------------------------------------------------------------------------
# Version ranges
# ---------------------------------------------------------------------------

MAXV = 0x7fff


class VRange:
    """A closed range of versions; empty when lo > hi."""

    def __init__(self, lo, hi):
        self.lo = lo
        self.hi = hi

    @staticmethod
    def parse(text, what):
        if not isinstance(text, str):
            raise SchemaError("%s: version range must be a string" % what)
        if text == "none":
            return VRange(1, 0)
        m = re.fullmatch(r"(\d+)\+", text)
        if m:
            return VRange(int(m.group(1)), MAXV)
        m = re.fullmatch(r"(\d+)-(\d+)", text)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise SchemaError("%s: bad version range %r" % (what, text))
            return VRange(lo, hi)
        m = re.fullmatch(r"\d+", text)
        if m:
            return VRange(int(text), int(text))
        raise SchemaError("%s: bad version range %r" % (what, text))

    @property
    def empty(self):
        return self.lo > self.hi

    def __and__(self, other):
        return VRange(max(self.lo, other.lo), min(self.hi, other.hi))

    def hull(self, other):
        if self.empty:
            return VRange(other.lo, other.hi)
        if other.empty:
            return VRange(self.lo, self.hi)
        return VRange(min(self.lo, other.lo), max(self.hi, other.hi))

    def contains(self, v):
        return self.lo <= v <= self.hi

    def covers(self, other):
        return other.empty or (self.lo <= other.lo and other.hi <= self.hi)

    def __eq__(self, other):
        return (self.empty and other.empty) or \
            (self.lo == other.lo and self.hi == other.hi)

    def versions(self):
        return range(self.lo, self.hi + 1)

    def text(self):
        if self.empty:
            return "none"
        if self.hi == MAXV:
            return "v%d+" % self.lo
        if self.lo == self.hi:
            return "v%d" % self.lo
        return "v%d-%d" % (self.lo, self.hi)


def cond(r, ctx):
    """
    C expression for "version is in r", given that version is in ctx:
    "true", "false" or a comparison.
    """
    i = r & ctx
    if i.empty:
        return "false"
    lo = i.lo > ctx.lo
    hi = i.hi < ctx.hi
    if lo and hi and i.lo == i.hi:
        return "version == %d" % i.lo
    parts = []
    if lo:
        parts.append("version >= %d" % i.lo)
    if hi:
        parts.append("version <= %d" % i.hi)
    return " && ".join(parts) if parts else "true"


def absent_cond(r, ctx):
    """C expression for "version is not in r", given version in ctx."""
    i = r & ctx
    if i.empty:
        return "true"
    parts = []
    if i.lo > ctx.lo:
        parts.append("version < %d" % i.lo)
    if i.hi < ctx.hi:
        parts.append("version > %d" % i.hi)
    return " || ".join(parts) if parts else "false"


def and_cond(a, b):
    if a == "false" or b == "false":
        return "false"
    if a == "true":
        return b
    if b == "true":
        return a
    if "||" in a:
        a = "(%s)" % a
    if "||" in b:
        b = "(%s)" % b
    return "%s && %s" % (a, b)


# ---------------------------------------------------------------------------
# Schema model
# ---------------------------------------------------------------------------

def strip_comments(text):
    """Remove // comments outside JSON strings."""
    out = []
    i = 0
    n = len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def snake(name):
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    s = s.lower()
    if s in C_KEYWORDS:
        s += "_"
    return s


def upper_snake(name):
    return snake(name).rstrip("_").upper()


class Type:
    def __init__(self, kind, prim=None, struct=None, elem=None):
        self.kind = kind        # "prim", "struct" or "array"
        self.prim = prim
        self.struct = struct
        self.elem = elem


class Field:
    pass


class Struct:
    def __init__(self, msg, name, cname, is_root):
        self.msg = msg
        self.name = name
        self.cname = cname
        self.is_root = is_root
        self.fields = []
        self.reach = VRange(1, 0)

    @property
    def path(self):
        if self.is_root:
            return self.msg.name
        return "%s.%s" % (self.msg.name, self.name)

    @property
    def suffix(self):
        """Name of the static helpers: <Msg><Struct>."""
        return self.cname[2:]


class Message:
    pass


def load_schema(folder, name):
    path = os.path.join(folder, name + ".json")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise SchemaError("cannot read %s: %s" % (path, e))
    try:
        return json.loads(strip_comments(text))
    except ValueError as e:
        raise SchemaError("%s: invalid JSON: %s" % (path, e))


def check_keys(obj, allowed, ignored, what):
    for k in obj:
        if k not in allowed and k not in ignored:
            raise SchemaError("%s: unknown key %r" % (what, k))


def parse_message(folder, name, expect_type, expect_key):
    d = load_schema(folder, name)
    check_keys(d, TOP_KEYS, IGNORED_TOP_KEYS, name)
    if d.get("name") != name:
        raise SchemaError("%s: name is %r" % (name, d.get("name")))
    if d.get("type") != expect_type:
        raise SchemaError("%s: type is %r, expected %r"
                          % (name, d.get("type"), expect_type))
    if d.get("apiKey") != expect_key:
        raise SchemaError("%s: apiKey is %r, expected %r"
                          % (name, d.get("apiKey"), expect_key))

    msg = Message()
    msg.name = name
    msg.api_key = expect_key
    msg.kind = expect_type
    msg.valid = VRange.parse(d["validVersions"], name + ".validVersions")
    if msg.valid.empty or msg.valid.hi == MAXV:
        raise SchemaError("%s: validVersions must be a closed range" % name)
    msg.flex = VRange.parse(d["flexibleVersions"], name + ".flexibleVersions")
    if not msg.flex.empty and msg.flex.hi != MAXV:
        raise SchemaError("%s: flexibleVersions must be open-ended" % name)
    msg.structs = []            # in definition order, children first

    # Struct definitions: inline ones (a field with "fields") and the
    # message's commonStructs, by type name.
    defs = {}

    def collect(fields, where):
        for f in fields:
            if "fields" in f:
                tname = f["type"][2:] if f["type"].startswith("[]") else f["type"]
                if tname in defs and defs[tname] != f["fields"]:
                    raise SchemaError("%s: struct %s defined twice" % (where, tname))
                defs[tname] = f["fields"]
                collect(f["fields"], where)

    collect(d["fields"], name)
    for cs in d.get("commonStructs", []):
        check_keys(cs, STRUCT_KEYS, {"about"}, "%s.%s" % (name, cs.get("name")))
        if cs["name"] in defs:
            raise SchemaError("%s: struct %s defined twice" % (name, cs["name"]))
        defs[cs["name"]] = cs["fields"]
        collect(cs["fields"], name)

    built = {}

    def build_struct(sname, fields_json):
        if sname in built:
            return built[sname]
        s = Struct(msg, sname, "Sl" + name + sname, False)
        built[sname] = s
        s.fields = parse_fields(fields_json, s)
        msg.structs.append(s)
        return s

    def parse_type(tname, f, where):
        if tname.startswith("[]"):
            return Type("array", elem=parse_type(tname[2:], f, where))
        if tname in PRIMS:
            return Type("prim", prim=tname)
        if re.fullmatch(r"[A-Z][A-Za-z0-9]*", tname):
            if tname not in defs:
                raise SchemaError("%s: unknown struct type %s" % (where, tname))
            return Type("struct", struct=build_struct(tname, defs[tname]))
        raise SchemaError("%s: unknown type %r" % (where, tname))

    def parse_fields(fields_json, owner):
        out = []
        seen = set()
        tags = set()
        for fj in fields_json:
            where = "%s.%s" % (owner.path, fj.get("name"))
            check_keys(fj, FIELD_KEYS, IGNORED_FIELD_KEYS, where)
            f = Field()
            f.name = fj["name"]
            f.cname = snake(f.name)
            if f.cname in seen:
                raise SchemaError("%s: duplicate C name %s" % (where, f.cname))
            seen.add(f.cname)
            f.where = where
            f.type = parse_type(fj["type"], fj, where)
            if "fields" in fj and f.type.kind == "prim":
                raise SchemaError("%s: primitive type with fields" % where)
            if "versions" not in fj:
                raise SchemaError("%s: no versions" % where)
            f.versions = VRange.parse(fj["versions"], where)
            f.nullable = VRange.parse(fj.get("nullableVersions", "none"), where)
            if not f.nullable.empty:
                # a nullable struct is the struct and a flag, <name>_null
                if f.type.kind == "struct" and (f.cname + "_null") in seen:
                    raise SchemaError("%s: duplicate C name %s_null" % (where, f.cname))
                if f.type.kind == "prim" and f.type.prim not in NULLABLE_KINDS:
                    raise SchemaError("%s: type %s cannot be nullable"
                                      % (where, f.type.prim))
            f.ignorable = fj.get("ignorable", False)
            if not isinstance(f.ignorable, bool):
                raise SchemaError("%s: ignorable must be a boolean" % where)
            f.tagged = VRange.parse(fj.get("taggedVersions", "none"), where)
            f.tag = fj.get("tag")
            if isinstance(f.tag, str) and f.tag.isdigit():
                f.tag = int(f.tag)
            if f.tagged.empty != (f.tag is None):
                raise SchemaError("%s: tag and taggedVersions go together" % where)
            if f.tag is not None:
                if not isinstance(f.tag, int) or f.tag < 0:
                    raise SchemaError("%s: bad tag %r" % (where, f.tag))
                if f.tag in tags:
                    raise SchemaError("%s: duplicate tag %d" % (where, f.tag))
                tags.add(f.tag)
                if f.tagged.hi != MAXV:
                    raise SchemaError("%s: taggedVersions must be open-ended" % where)
                if not (f.tagged == f.versions):
                    raise SchemaError("%s: fields tagged in only some of their "
                                      "versions are not supported" % where)
                if not msg.flex.covers(f.tagged & msg.valid):
                    raise SchemaError("%s: tagged in a non-flexible version" % where)
            f.flex_override = None
            if "flexibleVersions" in fj:
                if f.type.kind != "prim" or f.type.prim not in ("string", "bytes"):
                    raise SchemaError("%s: flexibleVersions only on strings and bytes"
                                      % where)
                f.flex_override = VRange.parse(fj["flexibleVersions"], where)
            f.default = parse_default(f, fj.get("default"), where)
            out.append(f)
        return out

    root = Struct(msg, name, "Sl" + name, True)
    root.fields = parse_fields(d["fields"], root)
    msg.structs.append(root)
    msg.root = root
    for sname in defs:
        if sname not in built:
            raise SchemaError("%s: struct %s is never used" % (name, sname))

    # Versions in which each struct can appear: the message's for the root,
    # else the union over the fields using it, each bounded by its parent.
    root.reach = VRange(msg.valid.lo, msg.valid.hi)
    changed = True
    while changed:
        changed = False
        for s in msg.structs:
            for f in s.fields:
                t = f.type.elem if f.type.kind == "array" else f.type
                if t.kind != "struct":
                    continue
                r = t.struct.reach.hull(f.versions & s.reach)
                if not (r == t.struct.reach):
                    t.struct.reach = r
                    changed = True
    return msg


def parse_default(f, raw, where):
    """
    Normalised default: int, float or bool for scalars; a str, "" or None
    (null) for strings and bytes; "empty" or "null" for arrays.
    """
    t = f.type
    if t.kind == "array":
        if raw is None:
            return "empty"
        if raw == "null":
            if not f.nullable.covers(f.versions):
                raise SchemaError("%s: null default on a field not always nullable"
                                  % where)
            return "null"
        raise SchemaError("%s: arrays have no custom default" % where)
    if t.kind == "struct":
        if raw == "null":
            if not f.nullable.covers(f.versions):
                raise SchemaError("%s: null default on a field not always nullable"
                                  % where)
            return "null"
        if raw is not None:
            raise SchemaError("%s: structs have no custom default" % where)
        return None
    p = t.prim
    if p in INT_RANGES:
        if raw is None:
            return 0
        try:
            v = int(raw, 0) if isinstance(raw, str) else int(raw)
        except ValueError:
            raise SchemaError("%s: bad default %r" % (where, raw))
        lo, hi = INT_RANGES[p]
        if not lo <= v <= hi:
            raise SchemaError("%s: default %r out of range" % (where, raw))
        return v
    if p == "bool":
        if raw is None:
            return False
        if raw in (True, "true"):
            return True
        if raw in (False, "false"):
            return False
        raise SchemaError("%s: bad default %r" % (where, raw))
    if p == "float64":
        if raw is None:
            return 0.0
        try:
            return float(raw)
        except ValueError:
            raise SchemaError("%s: bad default %r" % (where, raw))
    if p == "string":
        if raw is None:
            return ""
        if raw == "null":
            if not f.nullable.covers(f.versions):
                raise SchemaError("%s: null default on a field not always nullable"
                                  % where)
            return None
        if not isinstance(raw, str):
            raise SchemaError("%s: bad default %r" % (where, raw))
        return raw
    if p == "records":
        if raw is not None:
            raise SchemaError("%s: records have no custom default" % where)
        return None
    if p == "bytes":
        if raw is None:
            return ""
        if raw == "null":
            if not f.nullable.covers(f.versions):
                raise SchemaError("%s: null default on a field not always nullable"
                                  % where)
            return None
        raise SchemaError("%s: bytes have no custom default" % where)
    if p == "uuid":
        if raw is not None:
            raise SchemaError("%s: uuid has no custom default" % where)
        return 0
    raise SchemaError("%s: no default rule for %s" % (where, p))


# ---------------------------------------------------------------------------
# C helpers
# ---------------------------------------------------------------------------

def c_string(s):
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            for b in ch.encode("utf-8"):
                out.append("\\%03o" % b)
    out.append('"')
    return "".join(out)


def decl(ctype, name, indent=1, comment=None):
    """
    A declaration aligned like pgindent's: the name at column 16, a
    pointer's star just before it.
    """
    star = ""
    if ctype.endswith(" *"):
        ctype = ctype[:-2]
        star = "*"
    col = 4 * indent + len(ctype)
    target = 4 * indent + 12 - len(star)
    if col + 1 > target:
        pad = " "
    else:
        pad = ""
        while (col // 4 + 1) * 4 <= target:
            pad += "\t"
            col = (col // 4 + 1) * 4
        pad += " " * (target - col)
    line = "\t" * indent + ctype + pad + star + name
    if comment:
        line += "\t/* %s */" % comment
    return line


def int_literal(v, prim):
    if prim == "int64":
        if v == -2**63:
            return "PG_INT64_MIN"
        if -2**31 <= v < 2**31:
            return str(v)
        return "INT64CONST(%d)" % v
    if prim == "int32" and v == -2**31:
        return "PG_INT32_MIN"
    if prim == "uint32" and v >= 2**31:
        return "%du" % v
    return str(v)


def default_literal(f):
    """C value of a scalar field's default, or None when it is zero."""
    p = f.type.prim
    d = f.default
    if p in INT_RANGES:
        return int_literal(d, p) if d != 0 else None
    if p == "bool":
        return "true" if d else None
    if p == "float64":
        return repr(d) if d != 0.0 else None
    if p == "string":
        if d is None:
            return "SL_STR_NULL"
        if d == "":
            return None
        return "(SlStr) {%s, %d}" % (c_string(d), len(d.encode("utf-8")))
    if p == "records" or (p == "bytes" and d is None):
        return "SL_BYTES_NULL"
    return None


class Gen:
    """Collects generated C and tracks which static helpers are used."""

    def __init__(self):
        self.used_isdefault = set()

    # -- expressions ------------------------------------------------------

    def flex_expr(self, msg, ctx):
        c = cond(msg.flex, ctx)
        return c if c in ("true", "false") else "flexible"

    def compact_expr(self, f, msg, ctx):
        if f.flex_override is not None:
            return cond(f.flex_override & msg.flex, ctx)
        return self.flex_expr(msg, ctx)

    def nondefault(self, f, ref):
        """C expression: the field ref holds a non-default value."""
        t = f.type
        if t.kind == "array":
            return "%s.n %s" % (ref, ">= 0" if f.default == "null" else "!= 0")
        if t.kind == "struct":
            if f.default == "null":
                return "!%s_null" % ref
            self.used_isdefault.add(t.struct)
            if not f.nullable.empty:
                return "(%s_null || !IsDefault%s(&%s))" % (ref, t.struct.suffix, ref)
            return "!IsDefault%s(&%s)" % (t.struct.suffix, ref)
        p = t.prim
        if p == "string":
            if f.default is None:
                return "%s.len >= 0" % ref
            if f.default == "":
                return "%s.len != 0" % ref
            return "!SlStrEqualCString(%s, %s)" % (ref, c_string(f.default))
        if p == "bytes":
            return "%s.len %s" % (ref, ">= 0" if f.default is None else "!= 0")
        if p == "records":
            return "%s.len >= 0" % ref
        if p == "uuid":
            return "!SlUuidIsZero(%s)" % ref
        if p == "bool":
            return ref if not f.default else "!%s" % ref
        if p == "float64":
            return "%s != %r" % (ref, f.default)
        return "%s != %s" % (ref, int_literal(f.default, p))

    # -- minimum sizes ----------------------------------------------------

    def min_size(self, t, v, msg, compact=None):
        flex = msg.flex.contains(v)
        if compact is None:
            compact = flex
        if t.kind == "array":
            return 1 if flex else 4
        if t.kind == "struct":
            total = 1 if flex else 0
            for f in t.struct.fields:
                if f.versions.contains(v) and not f.tagged.contains(v):
                    total += self.field_min_size(f, v, msg)
            return total
        p = t.prim
        if PRIMS[p][3] is not None:
            return PRIMS[p][3]
        if compact:
            return 1
        return 2 if p == "string" else 4

    def field_min_size(self, f, v, msg):
        if f.type.kind == "struct" and f.nullable.contains(v):
            return 1            # the presence byte alone
        compact = None
        if f.flex_override is not None:
            compact = f.flex_override.contains(v) and msg.flex.contains(v)
        return self.min_size(f.type, v, msg, compact)

    def elem_min_size(self, f, msg, ctx):
        sizes = [self.min_size(f.type.elem, v, msg)
                 for v in (f.versions & ctx).versions()]
        m = min(sizes)
        if m < 1:
            raise SchemaError("%s: array elements can be empty" % f.where)
        return m

    # -- decode -----------------------------------------------------------

    def decode_value(self, t, target, f, msg, ctx, compact, nullable, ind):
        """Lines that read one value of type t into target."""
        tab = "\t" * ind
        if t.kind == "struct":
            read = "Decode%s(r, version, &%s);" % (t.struct.suffix, target)
            if nullable == "false":
                return [tab + read]
            # a presence byte: negative for null, as Kafka writes -1 or 1
            flag = "%s_null" % target
            if nullable == "true":
                lines = [tab + "%s = SlReadInt8(r) < 0;" % flag]
            else:
                lines = [tab + "%s = (%s) && SlReadInt8(r) < 0;" % (flag, nullable)]
            return lines + [tab + "if (!%s)" % flag, tab + "\t" + read]
        if t.kind == "prim":
            p = t.prim
            fn = PRIMS[p][1]
            if p in NULLABLE_KINDS:
                return [tab + "%s = %s(r, %s, %s);" % (target, fn, compact, nullable)]
            return [tab + "%s = %s(r);" % (target, fn)]
        elem = t.elem
        if elem.kind == "array":
            raise SchemaError("%s: nested arrays are not supported" % f.where)
        lines = [
            tab + "%s.items = SlReadArray(r, %s, %s, %d, sizeof(*%s.items), &%s.n);"
            % (target, compact, nullable, self.elem_min_size(f, msg, ctx),
               target, target),
            tab + "for (int32 i = 0; i < %s.n && SlReaderOk(r); i++)" % target,
        ]
        lines += self.decode_value(elem, "%s.items[i]" % target, f, msg, ctx,
                                   self.flex_expr(msg, ctx), "false", ind + 1)
        return lines

    def decode_field(self, f, msg, ctx, ind):
        fctx = f.versions & ctx
        compact = self.compact_expr(f, msg, fctx)
        nullable = cond(f.nullable, fctx)
        return self.decode_value(f.type, "out->" + f.cname, f, msg, fctx,
                                 compact, nullable, ind)

    def guarded(self, c, body, ind):
        """Wrap body (lines at indent ind+1) in if (c), or not."""
        tab = "\t" * ind
        if c == "true":
            return [line[1:] for line in body]
        if c == "false":
            return []
        out = [tab + "if (%s)" % c]
        if len(body) == 1:
            return out + body
        return out + [tab + "{"] + body + [tab + "}"]

    def gen_decode(self, s):
        msg = s.msg
        ctx = s.reach
        body = []
        for f in s.fields:
            if not f.tagged.empty:
                continue
            c = cond(f.versions, ctx)
            if c == "false":
                continue
            body += self.guarded(c, self.decode_field(f, msg, ctx, 2), 1)
        body += self.decode_tags(s, msg, ctx)
        return body

    def decode_tags(self, s, msg, ctx):
        flex = self.flex_expr(msg, ctx)
        if flex == "false":
            return []
        fctx = msg.flex & ctx
        tagged = sorted((f for f in s.fields
                         if not f.tagged.empty and not (f.versions & fctx).empty),
                        key=lambda f: f.tag)
        if not tagged:
            return self.guarded(flex, ["\t\tSlReadTaggedFields(r);"], 1)
        inner = [
            "\t\tuint32\t\tntags = SlReadTagCount(r);",
            "",
            "\t\tfor (uint32 t = 0; t < ntags && SlReaderOk(r); t++)",
            "\t\t{",
            "\t\t\tuint32\t\ttag;",
            "\t\t\tsize_t\t\tend = SlReadTagHeader(r, &tag);",
            "",
            "\t\t\tswitch (tag)",
            "\t\t\t{",
        ]
        for f in tagged:
            inner.append("\t\t\t\tcase %d:" % f.tag)
            c = cond(f.versions, fctx)
            read = self.decode_field(f, msg, fctx, 6 if c != "true" else 5)
            if c == "true":
                inner += read
                inner.append("\t\t\t\t\tSlReadTagEnd(r, end);")
            else:
                inner.append("\t\t\t\t\tif (%s)" % c)
                inner.append("\t\t\t\t\t{")
                inner += read
                inner.append("\t\t\t\t\t\tSlReadTagEnd(r, end);")
                inner.append("\t\t\t\t\t}")
                inner.append("\t\t\t\t\telse")
                inner.append("\t\t\t\t\t\tSlReadSkipTo(r, end);")
            inner.append("\t\t\t\t\tbreak;")
        inner += [
            "\t\t\t\tdefault:",
            "\t\t\t\t\tSlReadSkipTo(r, end);",
            "\t\t\t\t\tbreak;",
            "\t\t\t}",
            "\t\t}",
        ]
        if flex == "true":
            return ["\t{"] + inner + ["\t}"]
        return ["\tif (%s)" % flex, "\t{"] + inner + ["\t}"]

    # -- encode -----------------------------------------------------------

    def encode_value(self, t, ref, f, msg, ctx, compact, nullable, ind):
        tab = "\t" * ind
        if t.kind == "struct":
            write = "Encode%s(w, version, &%s);" % (t.struct.suffix, ref)
            if f is None or f.nullable.empty or t is not f.type:
                return [tab + write]
            flag = "%s_null" % ref
            lines = []
            if nullable == "true":
                lines.append(tab + "SlWriteInt8(w, %s ? -1 : 1);" % flag)
            else:
                if nullable != "false":
                    lines.append(tab + "if (%s)" % nullable)
                    lines.append(tab + "\tSlWriteInt8(w, %s ? -1 : 1);" % flag)
                    lines.append(tab + "else if (%s)" % flag)
                else:
                    lines.append(tab + "if (%s)" % flag)
                lines.append(tab + "\tSlWriterFail(w, %s);"
                             % c_string("%s: null in a version that cannot carry it"
                                        % f.where))
            return lines + [tab + "if (!%s)" % flag, tab + "\t" + write]
        if t.kind == "prim":
            p = t.prim
            fn = PRIMS[p][2]
            if p in NULLABLE_KINDS:
                return [tab + "%s(w, %s, %s, %s);" % (fn, compact, nullable, ref)]
            return [tab + "%s(w, %s);" % (fn, ref)]
        lines = [
            tab + "SlWriteArrayLen(w, %s, %s, %s.n);" % (compact, nullable, ref),
            tab + "for (int32 i = 0; i < %s.n; i++)" % ref,
        ]
        lines += self.encode_value(t.elem, "%s.items[i]" % ref, f, msg, ctx,
                                   self.flex_expr(msg, ctx), "false", ind + 1)
        return lines

    def encode_field(self, f, msg, ctx, ind):
        fctx = f.versions & ctx
        compact = self.compact_expr(f, msg, fctx)
        nullable = cond(f.nullable, fctx)
        return self.encode_value(f.type, "in->" + f.cname, f, msg, fctx,
                                 compact, nullable, ind)

    def lost_check(self, f, s, ctx, absent):
        """Lines recording a non-ignorable value the version cannot carry."""
        if f.ignorable or absent == "false":
            return []
        c = and_cond(absent, self.nondefault(f, "in->" + f.cname))
        return ["\tif (%s)" % c,
                "\t\tSlWriterFail(w, %s);"
                % c_string("%s.%s: not in this version" % (s.path, f.name))]

    def gen_encode(self, s):
        msg = s.msg
        ctx = s.reach
        body = []
        for f in s.fields:
            if not f.tagged.empty:
                continue
            c = cond(f.versions, ctx)
            write = self.encode_field(f, msg, ctx, 2)
            if c == "true":
                body += [line[1:] for line in write]
                continue
            if c != "false":
                body += self.guarded(c, write, 1)
                if not f.ignorable:
                    body.append("\telse if (%s)"
                                % self.nondefault(f, "in->" + f.cname))
                    body.append("\t\tSlWriterFail(w, %s);"
                                % c_string("%s.%s: not in this version"
                                           % (s.path, f.name)))
            else:
                body += self.lost_check(f, s, ctx, "true")
        body += self.encode_tags(s, msg, ctx)
        return body

    def encode_tags(self, s, msg, ctx):
        out = []
        flex = self.flex_expr(msg, ctx)
        tagged = sorted((f for f in s.fields if not f.tagged.empty),
                        key=lambda f: f.tag)
        for f in tagged:
            out += self.lost_check(f, s, ctx, absent_cond(f.versions, ctx))
        if flex == "false":
            return out
        fctx = msg.flex & ctx
        present = [f for f in tagged if not (f.versions & fctx).empty]
        if not present:
            out += self.guarded(flex, ["\t\tSlWriteUvarint(w, 0);"], 1)
            return out
        inner = ["\t\tuint32\t\tntags = 0;", ""]
        conds = []
        for f in present:
            c = and_cond(cond(f.versions, fctx),
                         self.nondefault(f, "in->" + f.cname))
            conds.append(c)
            inner.append("\t\tif (%s)" % c)
            inner.append("\t\t\tntags++;")
        inner.append("\t\tSlWriteUvarint(w, ntags);")
        for f, c in zip(present, conds):
            inner.append("\t\tif (%s)" % c)
            inner.append("\t\t{")
            inner.append("\t\t\tsize_t\t\tstart = SlWriteTagBegin(w, %d);" % f.tag)
            inner.append("")
            inner += self.encode_field(f, msg, fctx, 3)
            inner.append("\t\t\tSlWriteTagEnd(w, start);")
            inner.append("\t\t}")
        if flex == "true":
            return out + ["\t{"] + inner + ["\t}"]
        return out + ["\tif (%s)" % flex, "\t{"] + inner + ["\t}"]

    # -- init / is-default ------------------------------------------------

    def gen_init(self, s):
        lines = ["\tmemset(v, 0, sizeof(*v));"]
        for f in s.fields:
            if f.type.kind == "struct":
                lines.append("\t%sInit(&v->%s);" % (f.type.struct.cname, f.cname))
                if f.default == "null":
                    lines.append("\tv->%s_null = true;" % f.cname)
            elif f.type.kind == "prim":
                lit = default_literal(f)
                if lit is not None:
                    lines.append("\tv->%s = %s;" % (f.cname, lit))
            elif f.default == "null":
                lines.append("\tv->%s.n = -1;" % f.cname)
        return lines

    def gen_isdefault(self, s):
        conds = []
        for f in s.fields:
            conds.append(self.nondefault(f, "v->" + f.cname))
        if not conds:
            return ["\treturn true;"]
        lines = []
        for i, c in enumerate(conds):
            lead = "\treturn !(" if i == 0 else "\t\t\t "
            tail = " ||" if i < len(conds) - 1 else ");"
            lines.append(lead + c + tail)
        return lines

    # -- struct declarations ----------------------------------------------

    def field_comment(self, f, s):
        bits = []
        if not f.versions.covers(s.reach) or f.versions.empty:
            bits.append(f.versions.text())
        if not (f.nullable & f.versions).empty:
            nr = f.nullable & f.versions
            bits.append("nullable" if nr == f.versions else
                        "nullable " + nr.text())
        if f.tag is not None:
            bits.append("tag %d" % f.tag)
        if f.type.kind == "prim":
            lit = default_literal(f)
            if f.type.prim in ("string", "bytes") and f.default is None:
                bits.append("default null")
            elif f.type.prim == "records":
                bits.append("default null")
            elif lit is not None:
                d = f.default
                bits.append("default %s" % (("true" if d else "false")
                                            if isinstance(d, bool) else
                                            c_string(d) if isinstance(d, str)
                                            else lit))
        if f.type.kind == "array" and f.default == "null":
            bits.append("default null")
        if f.ignorable and not f.versions.covers(s.reach):
            bits.append("ignorable")
        return ", ".join(bits) if bits else None

    def elem_ctype(self, t):
        if t.kind == "prim":
            return PRIMS[t.prim][0]
        if t.kind == "struct":
            return t.struct.cname
        raise SchemaError("nested arrays are not supported")

    def gen_struct_decl(self, s):
        msg = s.msg
        if s.is_root:
            head = "%s: " % msg.name
            if msg.api_key is not None:
                head += "api key %d, " % msg.api_key
            head += msg.valid.text()
            if not (msg.flex & msg.valid).empty:
                head += ", flexible %s" % msg.flex.text()
            lines = ["/* %s */" % head]
        else:
            lines = ["/* %s (%s) */" % (s.path, s.reach.text())]
        lines.append("typedef struct %s" % s.cname)
        lines.append("{")
        if not s.fields:
            lines.append(decl("char", "unused;"))
        for f in s.fields:
            comment = self.field_comment(f, s)
            if f.type.kind == "array":
                ct = "struct { int32 n; %s *items; }" % self.elem_ctype(f.type.elem)
                line = "\t%s %s;" % (ct, f.cname)
                if comment:
                    line += "\t/* %s */" % comment
                lines.append(line)
            else:
                lines.append(decl(self.elem_ctype(f.type), f.cname + ";",
                                  comment=comment))
            if f.type.kind == "struct" and not f.nullable.empty:
                lines.append(decl("bool", f.cname + "_null;",
                                  comment="%s is null" % f.cname))
        lines.append("} %s;" % s.cname)
        return lines

    # -- fill (tests) -----------------------------------------------------

    def fill_value(self, t, target, nullable, ind):
        tab = "\t" * ind
        if t.kind == "struct":
            fill = "Fill%s(&%s, version, rng);" % (t.struct.suffix, target)
            if nullable == "false":
                return [tab + fill]
            flag = "%s_null" % target
            return [tab + "%s = (%s) && (KgRand(rng) & 1) != 0;" % (flag, nullable),
                    tab + "if (!%s)" % flag, tab + "\t" + fill]
        if t.kind == "prim":
            p = t.prim
            if p == "string":
                return [tab + "%s = KgStr(rng, %s);" % (target, nullable)]
            if p in ("bytes", "records"):
                return [tab + "%s = KgBytes(rng, %s);" % (target, nullable)]
            if p == "uuid":
                return [tab + "%s = KgUuid(rng);" % target]
            if p == "bool":
                return [tab + "%s = (KgRand(rng) & 1) != 0;" % target]
            if p == "float64":
                return [tab + "%s = (double) (int32) KgRand(rng) / 8.0;" % target]
            return [tab + "%s = (%s) KgRand(rng);" % (target, PRIMS[p][0])]
        lines = [
            tab + "%s.n = KgCount(rng, %s);" % (target, nullable),
            tab + "%s.items = KgAlloc(%s.n, sizeof(*%s.items));"
            % (target, target, target),
            tab + "for (int32 i = 0; i < %s.n; i++)" % target,
        ]
        lines += self.fill_value(t.elem, "%s.items[i]" % target, "false", ind + 1)
        return lines

    def gen_fill(self, s):
        ctx = s.reach
        body = ["\t%sInit(v);" % s.cname]
        for f in s.fields:
            fctx = f.versions & ctx
            c = cond(f.versions, ctx)
            if c == "false":
                continue
            if f.tag is not None:
                c = and_cond(c, "(KgRand(rng) & 1) != 0")
            fill = self.fill_value(f.type, "v->" + f.cname,
                                   cond(f.nullable, fctx), 2)
            body += self.guarded(c, fill, 1)
        return body


    def release_value(self, t, ref, ind):
        """Lines freeing what decoding allocated under ref (arrays only)."""
        tab = "\t" * ind
        if t.kind == "struct":
            if not self.struct_allocates(t.struct):
                return []
            return [tab + "Release%s(&%s);" % (t.struct.suffix, ref)]
        if t.kind == "prim":
            return []
        lines = []
        inner = self.release_value(t.elem, "%s.items[i]" % ref, ind + 1)
        if inner:
            lines.append(tab + "for (int32 i = 0; i < %s.n; i++)" % ref)
            lines += inner
        lines.append(tab + "if (%s.items != NULL)" % ref)
        lines.append(tab + "\tpfree(%s.items);" % ref)
        return lines

    def struct_allocates(self, s):
        for f in s.fields:
            if f.type.kind == "array":
                return True
            if f.type.kind == "struct" and self.struct_allocates(f.type.struct):
                return True
        return False

    def gen_release(self, s):
        body = []
        for f in s.fields:
            body += self.release_value(f.type, "v->" + f.cname, 1)
        return body


# ---------------------------------------------------------------------------
# Output files
# ---------------------------------------------------------------------------

class ErrorResponseGen:
    """Error responses built from decoded requests, see ERROR_MIRRORS."""

    def __init__(self):
        self.has_errors = {}

    def carries_errors(self, s):
        if s in self.has_errors:
            return self.has_errors[s]
        self.has_errors[s] = False
        found = False
        for f in s.fields:
            t = f.type.elem if f.type.kind == "array" else f.type
            if t.kind == "struct":
                found = self.carries_errors(t.struct) or found
            elif f.name in ERROR_CODE_FIELDS or f.name in ERROR_MESSAGE_FIELDS:
                found = True
        self.has_errors[s] = found
        return found

    def set_errors(self, s):
        """Body of SetErrors<Struct>: the error into every error field that
        the version has (the encoder refuses values in absent fields)."""
        lines = []
        for f in s.fields:
            t = f.type
            c = cond(f.versions, s.reach)
            if c == "false":
                continue
            guard = [] if c == "true" else ["\tif (%s)" % c]
            tab = "\t" if c == "true" else "\t\t"
            if t.kind == "prim" and f.name in ERROR_CODE_FIELDS:
                if t.prim != "int16":
                    raise SchemaError("%s: error code is not an int16" % f.where)
                lines += guard + [tab + "v->%s = error_code;" % f.cname]
            elif t.kind == "prim" and f.name in ERROR_MESSAGE_FIELDS:
                if t.prim != "string":
                    raise SchemaError("%s: error message is not a string" % f.where)
                lines += guard + [tab + "v->%s = message;" % f.cname]
            elif t.kind == "struct" and self.carries_errors(t.struct):
                lines += guard + [tab + "SetErrors%s(&v->%s, version, error_code, message);"
                                  % (t.struct.suffix, f.cname)]
            elif (t.kind == "array" and t.elem.kind == "struct" and
                  self.carries_errors(t.elem.struct)):
                lines.append("\tfor (int32 i = 0; i < v->%s.n; i++)" % f.cname)
                lines.append("\t\tSetErrors%s(&v->%s.items[i], version, error_code, message);"
                             % (t.elem.struct.suffix, f.cname))
        return lines

    def count_errors(self, s):
        """Body of CountErrors<Struct>: every error code field that the
        version has and that is not 0, to sink (the metrics' errors per
        API and code)"""
        lines = []
        for f in s.fields:
            t = f.type
            c = cond(f.versions, s.reach)
            if c == "false":
                continue
            if t.kind == "prim" and f.name in ERROR_CODE_FIELDS:
                test = "v->%s != 0" % f.cname
                if c != "true":
                    test = "(%s) && %s" % (c, test)
                lines += ["\tif (%s)" % test, "\t\tsink(v->%s, arg);" % f.cname]
            elif t.kind == "struct" and self.carries_errors(t.struct):
                lines += ([] if c == "true" else ["\tif (%s)" % c]) + [
                    ("\t" if c == "true" else "\t\t")
                    + "CountErrors%s(&v->%s, version, sink, arg);" % (t.struct.suffix, f.cname)]
            elif (t.kind == "array" and t.elem.kind == "struct" and
                  self.carries_errors(t.elem.struct)):
                lines.append("\tfor (int32 i = 0; i < v->%s.n; i++)" % f.cname)
                lines.append("\t\tCountErrors%s(&v->%s.items[i], version, sink, arg);"
                             % (t.elem.struct.suffix, f.cname))
        if not any("version" in ln for ln in lines):
            lines.insert(0, "\t(void) version;")
        return lines

    @staticmethod
    def field(s, name, what):
        for f in s.fields:
            if f.name == name:
                return f
        raise SchemaError("%s: ERROR_MIRRORS names %s, which it does not have"
                          % (s.path, name))

    def mirror(self, m, resp_s, req_s, rref, qref, depth):
        rf = self.field(resp_s, m.resp_array, "response")
        qf = self.field(req_s, m.req_array, "request")
        if rf.type.kind != "array" or rf.type.elem.kind != "struct":
            raise SchemaError("%s: not an array of structs" % rf.where)
        if qf.type.kind != "array":
            raise SchemaError("%s: not an array" % qf.where)
        relem = rf.type.elem.struct
        qelem = qf.type.elem
        tab = "\t" * (depth + 1)
        r = "r%d" % depth
        q = "q%d" % depth
        i = "i%d" % depth
        src = "%s%s" % (qref, qf.cname)
        dst = "%s%s" % (rref, rf.cname)
        lines = [tab + "if (%s.n > 0)" % src,
                 tab + "{",
                 tab + "\t%s.n = %s.n;" % (dst, src),
                 tab + "\t%s.items = palloc(sizeof(*%s.items) * %s.n);" % (dst, dst, src),
                 tab + "\tfor (int32 %s = 0; %s < %s.n; %s++)" % (i, i, src, i),
                 tab + "\t{",
                 tab + "\t\t%s *%s = &%s.items[%s];" % (relem.cname, r, dst, i)]
        # the request element is named only where something reads it
        if qelem.kind == "struct" and (m.copies or m.children):
            lines.append(tab + "\t\tconst %s *%s = &%s.items[%s];"
                         % (qelem.struct.cname, q, src, i))
        lines += ["", tab + "\t\t%sInit(%s);" % (relem.cname, r)]
        for rname, qname in m.copies:
            rcf = self.field(relem, rname, "response")
            if qname == "":
                if qelem.kind != "prim":
                    raise SchemaError("%s: elements are not scalars" % qf.where)
                qtype, value = qelem, "%s.items[%s]" % (src, i)
            else:
                if qelem.kind != "struct":
                    raise SchemaError("%s: elements are not structs" % qf.where)
                qcf = self.field(qelem.struct, qname, "request")
                qtype, value = qcf.type, "%s->%s" % (q, qcf.cname)
            if rcf.type.kind != "prim" or qtype.kind != "prim" or rcf.type.prim != qtype.prim:
                raise SchemaError("%s: type differs from the request's %s"
                                  % (rcf.where, qname or qf.where))
            lines.append(tab + "\t\t%s->%s = %s;" % (r, rcf.cname, value))
        for child in m.children:
            if qelem.kind != "struct":
                raise SchemaError("%s: elements are not structs" % qf.where)
            lines += self.mirror(child, relem, qelem.struct, r + "->", q + "->", depth + 2)
        lines += [tab + "\t}", tab + "}"]
        return lines


def banner(what):
    return ["/*", " * " + HEADER_LINE, " *"] + \
        [(" * " + line).rstrip() for line in what] + [" */"]


def function(ret, name, args, body):
    return [ret, "%s(%s)" % (name, args), "{"] + body + ["}", ""]


def with_flexible(msg, ctx, body):
    """Declare 'flexible' at the top of body when body uses it."""
    if not any(re.search(r"\bflexible\b", line) for line in body):
        return body
    return ["\tbool\t\tflexible = %s;" % cond(msg.flex, ctx), ""] + body


def generate(messages, apis):
    g = Gen()
    files = {}

    # kmsg.h ------------------------------------------------------------
    h = banner([
        "Kafka messages: one struct per message and nested struct, with",
        "",
        "  void Sl<Struct>Init(Sl<Struct> *v)       schema defaults",
        "  bool Sl<Message>Decode(SlReader *r, int16 version, Sl<Message> *out)",
        "  void Sl<Message>Encode(SlWriter *w, int16 version, const Sl<Message> *in)",
        "",
        "Nested structs are named Sl<Message><StructType>.  Fields absent from a",
        "version keep their default on decode and are not written on encode.",
        "Strings and bytes point into the decoded buffer; arrays are palloc'd.",
    ])
    h += ["#ifndef SL_KMSG_H", "#define SL_KMSG_H", "",
          '#include "streamlog/protocol/wire.h"', ""]
    for msg in messages:
        for s in msg.structs:
            h += g.gen_struct_decl(s)
            h.append("")
        for s in msg.structs:
            h.append("extern void %sInit(%s *v);" % (s.cname, s.cname))
        h.append("extern bool %sDecode(SlReader *r, int16 version, %s *out);"
                 % (msg.root.cname, msg.root.cname))
        h.append("extern void %sEncode(SlWriter *w, int16 version, const %s *in);"
                 % (msg.root.cname, msg.root.cname))
        h.append("")
    h += ["/*",
          " * Error responses (as Kafka's AbstractRequest.getErrorResponse): the",
          " * response to a request that failed as a whole, mirroring its topics,",
          " * partitions, groups or resources, with error_code in every error code",
          " * field and message (not null) in every error message field.",
          " *",
          " *  void Sl<Api>ErrorResponse(const Sl<Api>Request *req, int16 version,",
          " *                            int16 error_code, SlStr message,",
          " *                            Sl<Api>Response *resp)",
          " *",
          " * SlErrorResponseEncode decodes a request body of any generated API and",
          " * encodes its error response; false if the body cannot be decoded.",
          " */"]
    for key, name in apis:
        h.append("extern void Sl%sErrorResponse(const Sl%sRequest *req, int16 version, "
                 "int16 error_code," % (name, name))
        h.append("\t\t\t\t\t\t\t\t SlStr message, Sl%sResponse *resp);" % name)
    h += ["extern bool SlErrorResponseEncode(SlReader *request_body, int16 api_key,",
          "\t\t\t\t\t\t\t\t  int16 version, int16 error_code, SlStr message,",
          "\t\t\t\t\t\t\t\t  SlWriter *out);", "",
          "/*",
          " * SlResponseErrorCodes decodes a response body (after its header) of",
          " * any generated API and gives sink every error code in it that is not",
          " * 0, one per error code field (a topic's, a partition's, the",
          " * response's own); false if the body cannot be decoded.",
          " */",
          "typedef void (*SlErrorCodeSink) (int16 error_code, void *arg);",
          "extern bool SlResponseErrorCodes(SlReader *response_body, int16 api_key,",
          "\t\t\t\t\t\t\t\t int16 version, SlErrorCodeSink sink, void *arg);", ""]
    h.append("#endif\t\t\t\t\t\t\t/* SL_KMSG_H */")
    files["kmsg.h"] = h

    # kmsg.c ------------------------------------------------------------
    defs = []
    protos = []
    for msg in messages:
        defs.append("/* %s */" % msg.name)
        defs.append("")
        for s in msg.structs:
            defs += function("void", s.cname + "Init", "%s *v" % s.cname,
                             g.gen_init(s))
        for s in msg.structs:
            if s.reach.empty:
                continue
            if s.is_root:
                continue
            name = "Decode" + s.suffix
            args = "SlReader *r, int16 version, %s *out" % s.cname
            protos.append("static void %s(%s);" % (name, args))
            body = ["\t%sInit(out);" % s.cname] + g.gen_decode(s) + \
                ["\tSlReaderNoteWhere(r, %s);" % c_string(s.path)]
            defs += function("static void", name, args,
                             with_flexible(msg, s.reach, body))
            name = "Encode" + s.suffix
            args = "SlWriter *w, int16 version, const %s *in" % s.cname
            protos.append("static void %s(%s);" % (name, args))
            defs += function("static void", name, args,
                             with_flexible(msg, s.reach, g.gen_encode(s)))
        root = msg.root
        vcheck = "version < %d || version > %d" % (msg.valid.lo, msg.valid.hi)
        body = ["\t%sInit(out);" % root.cname,
                "\tif (%s)" % vcheck,
                "\t{",
                "\t\tSlReaderFail(r, %s);" % c_string(msg.name + ": unsupported version"),
                "\t\treturn false;",
                "\t}"]
        body += g.gen_decode(root)
        body += ["\tSlReaderNoteWhere(r, %s);" % c_string(msg.name),
                 "\treturn SlReaderOk(r);"]
        defs += function("bool", root.cname + "Decode",
                         "SlReader *r, int16 version, %s *out" % root.cname,
                         with_flexible(msg, msg.valid, body))
        body = ["\tif (%s)" % vcheck,
                "\t{",
                "\t\tSlWriterFail(w, %s);" % c_string(msg.name + ": unsupported version"),
                "\t\treturn;",
                "\t}"]
        body += g.gen_encode(root)
        defs += function("void", root.cname + "Encode",
                         "SlWriter *w, int16 version, const %s *in" % root.cname,
                         with_flexible(msg, msg.valid, body))

    # Default checks for struct-valued fields, with their own dependencies.
    isdef = []
    done = set()
    while True:
        todo = [s for s in g.used_isdefault if s not in done]
        if not todo:
            break
        for s in sorted(todo, key=lambda s: s.cname):
            done.add(s)
            name = "IsDefault" + s.suffix
            args = "const %s *v" % s.cname
            protos.append("static bool %s(%s);" % (name, args))
            isdef += function("static bool", name, args, g.gen_isdefault(s))
    # Error responses
    eg = ErrorResponseGen()
    by_name = {m.name: m for m in messages}
    errdefs = ["/* Error responses */", ""]
    for msg in messages:
        if msg.kind != "response":
            continue
        for st in msg.structs:
            if st.reach.empty or not eg.carries_errors(st):
                continue
            name = "SetErrors" + st.suffix
            args = "%s *v, int16 version, int16 error_code, SlStr message" % st.cname
            protos.append("static void %s(%s);" % (name, args))
            errdefs += function("static void", name, args, eg.set_errors(st))
            name = "CountErrors" + st.suffix
            args = "const %s *v, int16 version, SlErrorCodeSink sink, void *arg" % st.cname
            protos.append("static void %s(%s);" % (name, args))
            errdefs += function("static void", name, args, eg.count_errors(st))
    for key, name in apis:
        req = by_name[name + "Request"]
        resp = by_name[name + "Response"]
        body = ["\t%sInit(resp);" % resp.root.cname]
        for m in ERROR_MIRRORS.get(name, []):
            body += eg.mirror(m, resp.root, req.root, "resp->", "req->", 0)
        if eg.carries_errors(resp.root):
            body.append("\tSetErrors%s(resp, version, error_code, message);"
                        % resp.root.suffix)
        else:
            body += ["\t(void) version;", "\t(void) error_code;", "\t(void) message;"]
        if not ERROR_MIRRORS.get(name):
            body.insert(0, "\t(void) req;")
        errdefs += function("void", "Sl%sErrorResponse" % name,
                            "const Sl%sRequest *req, int16 version, int16 error_code, "
                            "SlStr message, Sl%sResponse *resp" % (name, name), body)
    body = ["\tswitch (api_key)", "\t{"]
    for key, name in apis:
        body += ["\t\tcase %d:" % key,
                 "\t\t\t{",
                 "\t\t\t\tSl%sRequest req;" % name,
                 "\t\t\t\tSl%sResponse resp;" % name,
                 "",
                 "\t\t\t\tif (!Sl%sRequestDecode(request_body, version, &req))" % name,
                 "\t\t\t\t\treturn false;",
                 "\t\t\t\tSl%sErrorResponse(&req, version, error_code, message, &resp);"
                 % name,
                 "\t\t\t\tSl%sResponseEncode(out, version, &resp);" % name,
                 "\t\t\t\treturn true;",
                 "\t\t\t}"]
    body += ["\t}",
             "\tSlReaderFail(request_body, \"no such API\");",
             "\treturn false;"]
    errdefs += function("bool", "SlErrorResponseEncode",
                        "SlReader *request_body, int16 api_key, int16 version, "
                        "int16 error_code, SlStr message, SlWriter *out", body)
    body = ["\tswitch (api_key)", "\t{"]
    for key, name in apis:
        resp = by_name[name + "Response"]
        body += ["\t\tcase %d:" % key,
                 "\t\t\t{",
                 "\t\t\t\tSl%sResponse resp;" % name,
                 "",
                 "\t\t\t\tif (!Sl%sResponseDecode(response_body, version, &resp))" % name,
                 "\t\t\t\t\treturn false;"]
        if eg.carries_errors(resp.root) and not resp.root.reach.empty:
            body.append("\t\t\t\tCountErrors%s(&resp, version, sink, arg);"
                        % resp.root.suffix)
        body += ["\t\t\t\treturn true;", "\t\t\t}"]
    body += ["\t}",
             "\tSlReaderFail(response_body, \"no such API\");",
             "\treturn false;"]
    errdefs += function("bool", "SlResponseErrorCodes",
                        "SlReader *response_body, int16 api_key, int16 version, "
                        "SlErrorCodeSink sink, void *arg", body)
    defs += errdefs
    protos_sorted = sorted(set(protos))

    c = banner([
        "Init, decode and encode functions of the Kafka messages in kmsg.h.",
    ])
    c += ['#include "streamlog/protocol/codec_base.h"', "",
          '#include "streamlog/protocol/generated/kmsg.h"', ""]
    c += protos_sorted + [""]
    c += isdef
    c += defs
    while c and c[-1] == "":
        c.pop()
    files["kmsg.c"] = c

    # kapi.h / kapi.c ----------------------------------------------------
    max_key = max(k for k, _ in apis)
    h = banner([
        "Kafka API keys and versions of the generated messages, request and",
        "response header versions, and Kafka error codes.",
    ])
    h += ["#ifndef SL_KAPI_H", "#define SL_KAPI_H", "",
          '#include "streamlog/protocol/codec_base.h"', "",
          "typedef enum SlApiKey", "{"]
    for i, (key, name) in enumerate(apis):
        h.append("\tSL_API_%s = %d%s" % (upper_snake(name), key,
                                         "," if i < len(apis) - 1 else ""))
    h += ["} SlApiKey;", "",
          "#define SL_API_KEY_MAX %d" % max_key, "",
          "/* Versions the schemas define; first_flexible is -1 if none */",
          "typedef struct SlApiInfo", "{",
          decl("const char *", "name;"),
          decl("int16", "min_version;"),
          decl("int16", "max_version;"),
          decl("int16", "first_flexible;"),
          "} SlApiInfo;", "",
          "/* Indexed by api key; name is NULL for keys not generated */",
          "extern const SlApiInfo sl_kafka_apis[SL_API_KEY_MAX + 1];", "",
          "/* The entry of a generated api key, or NULL */",
          "extern const SlApiInfo *SlApiLookup(int16 api_key);", "",
          "/*",
          " * Header versions for a request of api_key at api_version: request",
          " * header 2 for flexible versions, else 1 (0 for ControlledShutdown v0);",
          " * response header 1 for flexible versions, else 0, and always 0 for",
          " * ApiVersions.  Flexible versions are open-ended: a version above",
          " * max_version counts as flexible if first_flexible is set (a client",
          " * trying a newer ApiVersions sends header v2).  Unknown keys get the",
          " * non-flexible header, whose fields are a prefix of the flexible one.",
          " */",
          "extern int16 SlRequestHeaderVersion(int16 api_key, int16 api_version);",
          "extern int16 SlResponseHeaderVersion(int16 api_key, int16 api_version);",
          "",
          "typedef enum SlKafkaError", "{"]
    for i, (code, name) in enumerate(ERRORS):
        h.append("\tSL_ERR_%s = %d%s" % (name, code,
                                        "," if i < len(ERRORS) - 1 else ""))
    h += ["} SlKafkaError;", "",
          "#define SL_ERR_MAX %d" % max(c for c, _ in ERRORS), "",
          "/* Kafka's name of an error code (\"UNKNOWN_TOPIC_OR_PARTITION\"), or NULL */",
          "extern const char *SlKafkaErrorName(int16 code);", "",
          "#endif\t\t\t\t\t\t\t/* SL_KAPI_H */"]
    files["kapi.h"] = h

    c = banner(["API version table, header versions and error names."])
    c += ['#include "streamlog/protocol/codec_base.h"', "",
          '#include "streamlog/protocol/generated/kapi.h"', "",
          "const SlApiInfo sl_kafka_apis[SL_API_KEY_MAX + 1] = {"]
    by_key = {m.api_key: m for m in messages
              if m.api_key is not None and m.kind == "request"}
    for key, name in apis:
        m = by_key[key]
        ff = m.flex & m.valid
        c.append("\t[SL_API_%s] = {%s, %d, %d, %d}," % (
            upper_snake(name), c_string(name), m.valid.lo, m.valid.hi,
            -1 if ff.empty else ff.lo))
    c += ["};", ""]
    c += function("const SlApiInfo *", "SlApiLookup", "int16 api_key", [
        "\tif (api_key < 0 || api_key > SL_API_KEY_MAX ||",
        "\t\tsl_kafka_apis[api_key].name == NULL)",
        "\t\treturn NULL;",
        "\treturn &sl_kafka_apis[api_key];",
    ])
    c += function("static bool", "IsFlexible", "int16 api_key, int16 api_version", [
        "\tconst SlApiInfo *api = SlApiLookup(api_key);",
        "",
        "\treturn api != NULL && api->first_flexible >= 0 &&",
        "\t\tapi_version >= api->first_flexible;",
    ])
    c += function("int16", "SlRequestHeaderVersion",
                  "int16 api_key, int16 api_version", [
                      "\tif (api_key == %d && api_version == 0)" % CONTROLLED_SHUTDOWN_KEY,
                      "\t\treturn 0;",
                      "\treturn IsFlexible(api_key, api_version) ? 2 : 1;",
                  ])
    c += function("int16", "SlResponseHeaderVersion",
                  "int16 api_key, int16 api_version", [
                      "\tif (api_key == SL_API_API_VERSIONS)",
                      "\t\treturn 0;",
                      "\treturn IsFlexible(api_key, api_version) ? 1 : 0;",
                  ])
    min_err = min(c_ for c_, _ in ERRORS)
    c += ["static const char *const error_names[SL_ERR_MAX - (%d) + 1] = {" % min_err]
    for code, name in ERRORS:
        c.append("\t[%d] = %s," % (code - min_err, c_string(name)))
    c += ["};", ""]
    c += function("const char *", "SlKafkaErrorName", "int16 code", [
        "\tif (code < %d || code > SL_ERR_MAX)" % min_err,
        "\t\treturn NULL;",
        "\treturn error_names[code - (%d)];" % min_err,
    ])
    while c and c[-1] == "":
        c.pop()
    files["kapi.c"] = c

    # kmsg_fill.h (tests) -----------------------------------------------
    f = banner([
        "Test support, not linked into the extension: fills every message with",
        "deterministic pseudo-random values that are valid for a version, and",
        "lists all messages with type-erased Init/Fill/Decode/Encode/Release",
        "(Release frees the arrays a decode allocated; strings are views).",
        "Include once, from a unit test.",
    ])
    f += ["#ifndef SL_KMSG_FILL_H", "#define SL_KMSG_FILL_H", "",
          '#include "streamlog/protocol/generated/kmsg.h"', "",
          "typedef struct KgMessage", "{",
          decl("const char *", "name;"),
          decl("int16", "api_key;\t\t/* -1 for the headers */"),
          decl("int16", "min_version;"),
          decl("int16", "max_version;"),
          decl("size_t", "size;"),
          "\tvoid\t\t(*init) (void *v);",
          "\tvoid\t\t(*fill) (void *v, int16 version, uint64 *rng);",
          "\tbool\t\t(*decode) (SlReader *r, int16 version, void *out);",
          "\tvoid\t\t(*encode) (SlWriter *w, int16 version, const void *in);",
          "\tvoid\t\t(*release) (void *v);\t/* frees the arrays decode allocated */",
          "} KgMessage;", ""]
    f += function("static uint64", "KgRand", "uint64 *state", [
        "\tuint64\t\tx = *state;",
        "",
        "\tx ^= x << 13;",
        "\tx ^= x >> 7;",
        "\tx ^= x << 17;",
        "\t*state = x;",
        "\treturn x;",
    ])
    f += function("static void *", "KgAlloc", "int32 n, size_t size", [
        "\treturn n > 0 ? palloc0((size_t) n * size) : NULL;",
    ])
    f += ["/* 0-3 elements, or null (-1) now and then when nullable */"]
    f += function("static int32", "KgCount", "uint64 *rng, bool nullable", [
        "\tif (nullable && KgRand(rng) % 5 == 0)",
        "\t\treturn -1;",
        "\treturn (int32) (KgRand(rng) % 4);",
    ])
    f += ["/* Mostly short, sometimes long enough for a 2-byte compact length */"]
    f += function("static int32", "KgLength", "uint64 *rng", [
        "\tif (KgRand(rng) % 8 == 0)",
        "\t\treturn 127 + (int32) (KgRand(rng) % 200);",
        "\treturn (int32) (KgRand(rng) % 10);",
    ])
    f += function("static SlStr", "KgStr", "uint64 *rng, bool nullable", [
        "\tSlStr\t\ts;",
        "\tchar\t   *p;",
        "",
        "\tif (nullable && KgRand(rng) % 4 == 0)",
        "\t\treturn SL_STR_NULL;",
        "\ts.len = KgLength(rng);",
        "\tp = palloc(s.len + 1);",
        "\tfor (int32 i = 0; i < s.len; i++)",
        "\t\tp[i] = 'a' + (char) (KgRand(rng) % 26);",
        "\tp[s.len] = '\\0';",
        "\ts.data = p;",
        "\treturn s;",
    ])
    f += function("static SlBytes", "KgBytes", "uint64 *rng, bool nullable", [
        "\tSlBytes\t\tb;",
        "\tuint8\t   *p;",
        "",
        "\tif (nullable && KgRand(rng) % 4 == 0)",
        "\t\treturn SL_BYTES_NULL;",
        "\tb.len = KgLength(rng);",
        "\tp = palloc(b.len + 1);",
        "\tfor (int32 i = 0; i < b.len; i++)",
        "\t\tp[i] = (uint8) KgRand(rng);",
        "\tb.data = p;",
        "\treturn b;",
    ])
    f += function("static SlUuid", "KgUuid", "uint64 *rng", [
        "\tSlUuid\t\tu;",
        "",
        "\tfor (int i = 0; i < 16; i++)",
        "\t\tu.data[i] = (uint8) KgRand(rng);",
        "\treturn u;",
    ])
    fill_protos = []
    fill_defs = []
    table = []
    for msg in messages:
        for s in msg.structs:
            if s.reach.empty:
                continue
            name = "Fill" + s.suffix
            args = "%s *v, int16 version, uint64 *rng" % s.cname
            fill_protos.append("static void %s(%s);" % (name, args))
            fill_defs += function("static void", name, args, g.gen_fill(s))
        for s in msg.structs:
            if s.is_root or not g.struct_allocates(s):
                continue
            name = "Release" + s.suffix
            args = "%s *v" % s.cname
            fill_protos.append("static void %s(%s);" % (name, args))
            fill_defs += function("static void", name, args, g.gen_release(s))
        r = msg.root
        n = r.suffix
        fill_defs += function("static void", "KgInit" + n, "void *v",
                              ["\t%sInit(v);" % r.cname])
        body = g.gen_release(r)
        if body:
            body = ["\t%s *v = p;" % r.cname, ""] + body
        fill_defs += function("static void", "KgRelease" + n, "void *p", body)
        fill_defs += function("static void", "KgFill" + n,
                              "void *v, int16 version, uint64 *rng",
                              ["\tFill%s(v, version, rng);" % n])
        fill_defs += function("static bool", "KgDecode" + n,
                              "SlReader *r, int16 version, void *out",
                              ["\treturn %sDecode(r, version, out);" % r.cname])
        fill_defs += function("static void", "KgEncode" + n,
                              "SlWriter *w, int16 version, const void *in",
                              ["\t%sEncode(w, version, in);" % r.cname])
        table.append("\t{%s, %d, %d, %d, sizeof(%s), KgInit%s, KgFill%s, "
                     "KgDecode%s, KgEncode%s, KgRelease%s}," % (
                         c_string(msg.name),
                         -1 if msg.api_key is None else msg.api_key,
                         msg.valid.lo, msg.valid.hi, r.cname, n, n, n, n, n))
    f += sorted(fill_protos) + [""] + fill_defs
    f += ["static const KgMessage kg_messages[] = {"] + table + ["};", "",
                                                               "#endif\t\t\t\t\t\t\t/* SL_KMSG_FILL_H */"]
    files["kmsg_fill.h"] = f

    files[".clang-format"] = ["# " + HEADER_LINE, "DisableFormat: true",
                              "SortIncludes: Never"]
    return {name: "\n".join(lines) + "\n" for name, lines in files.items()}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    ap.add_argument("--schemas", required=True,
                    help="folder holding Kafka's message schema JSON files")
    ap.add_argument("--out", required=True,
                    help="output folder of the .c files (src/protocol/generated)")
    ap.add_argument("--include-out",
                    help="output folder of the headers "
                         "(src/include/streamlog/protocol/generated); default: --out")
    args = ap.parse_args(argv)
    include_out = args.include_out or args.out

    try:
        keys = [k for k, _ in APIS]
        if len(set(keys)) != len(keys) or keys != sorted(keys):
            raise SchemaError("APIS must be sorted by key without duplicates")
        messages = []
        messages.append(parse_message(args.schemas, "RequestHeader", "header", None))
        messages.append(parse_message(args.schemas, "ResponseHeader", "header", None))
        for key, name in APIS:
            req = parse_message(args.schemas, name + "Request", "request", key)
            resp = parse_message(args.schemas, name + "Response", "response", key)
            if not (req.valid == resp.valid) or not (req.flex == resp.flex):
                raise SchemaError("%s: request and response versions differ" % name)
            messages += [req, resp]
        out = generate(messages, APIS)
    except SchemaError as e:
        print("kafkagen: %s" % e, file=sys.stderr)
        return 1

    targets = []
    for name in sorted(out):
        if name.endswith(".h"):
            targets.append((include_out, name))
        else:
            targets.append((args.out, name))
            if name == ".clang-format" and include_out != args.out:
                targets.append((include_out, name))
    for folder, name in targets:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as fh:
                if fh.read() == out[name]:
                    continue
        except OSError:
            pass
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(out[name])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
