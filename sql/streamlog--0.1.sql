-- streamlog 0.1: topics, partitions and their logs, and the SQL API.
\echo Use "CREATE EXTENSION streamlog" to load this file. \quit

-- Refuse to install where the library was not preloaded: produce(), the
-- high watermark and retention all live in shared memory set up at startup.
CREATE FUNCTION streamlog._assert_preloaded() RETURNS void
	AS 'MODULE_PATHNAME', 'streamlog_assert_preloaded' LANGUAGE C STRICT;
SELECT streamlog._assert_preloaded();
DROP FUNCTION streamlog._assert_preloaded();

-- The catalog.  The C code (src/storage/catalog.h) reads these by column
-- position: keep the two in step.

CREATE TABLE streamlog.topic (
	topic_id integer PRIMARY KEY,
	name text NOT NULL UNIQUE,
	partition_count integer NOT NULL CHECK (partition_count > 0),
	config jsonb NOT NULL DEFAULT '{}',		-- only what was set explicitly
	created_at timestamptz NOT NULL DEFAULT now(),
	topic_uuid uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),	-- Kafka's topic id
	owner regrole NOT NULL		-- its creator, who may do anything on it (see Privileges)
);
CREATE SEQUENCE streamlog.topic_id_seq OWNED BY streamlog.topic.topic_id;

-- Leadership, as the cluster's metadata quorum last decided it (KRaft's
-- PartitionRecord): the replicas (the first is the preferred leader), the
-- in-sync replicas, the leader (-1: offline) and its epoch (+1 on every
-- leader change), and the partition epoch (+1 on any change).  A node on
-- its own leads every partition it has: leader and only replica, epochs 0.
CREATE TABLE streamlog.partition (
	topic_id integer NOT NULL REFERENCES streamlog.topic ON DELETE CASCADE,
	partition integer NOT NULL,
	log_start_offset bigint NOT NULL DEFAULT 0,
	leader_id integer NOT NULL,
	leader_epoch integer NOT NULL DEFAULT 0,
	partition_epoch integer NOT NULL DEFAULT 0,
	replicas integer[] NOT NULL,
	isr integer[] NOT NULL,
	PRIMARY KEY (topic_id, partition)
);

-- A partition's log is a chain of segments, each its own table in schema
-- streamlog_data, so that retention drops whole tables instead of deleting
-- rows.  base_offset is the first offset a segment may hold; it is NULL for
-- a segment created but not yet switched to.  max_timestamp is filled in
-- once a segment is closed and fully committed: the newest of its batches'
-- max_timestamp, a batch without timestamps counting at its append_time.
CREATE TABLE streamlog.segment (
	topic_id integer NOT NULL,
	partition integer NOT NULL,
	seq integer NOT NULL,
	relid regclass NOT NULL,
	base_offset bigint,
	max_timestamp bigint,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (topic_id, partition, seq),
	FOREIGN KEY (topic_id, partition) REFERENCES streamlog.partition ON DELETE CASCADE
);

-- pg_dump keeps the topics; segment tables are plain tables it dumps
-- itself, and relid is a regclass so that it survives the restore.
SELECT pg_catalog.pg_extension_config_dump('streamlog.topic', '');
SELECT pg_catalog.pg_extension_config_dump('streamlog.topic_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('streamlog.partition', '');
SELECT pg_catalog.pg_extension_config_dump('streamlog.segment', '');

-- Ids handed to idempotent Kafka producers (InitProducerId)
CREATE SEQUENCE streamlog.producer_id_seq MINVALUE 0 START 0;
SELECT pg_catalog.pg_extension_config_dump('streamlog.producer_id_seq', '');

CREATE SCHEMA streamlog_data;
COMMENT ON SCHEMA streamlog_data IS 'segment tables of streamlog partitions; managed by streamlog, do not modify';

-- The template of every segment table: Kafka RecordBatch v2 batches, stored
-- exactly as a fetch will return them.  A batch that does not fit in one heap
-- page is cut into pieces of about a page, one row each (chunk 0, 1, ...,
-- every row with the batch's columns): a megabyte is 130 rows written and
-- read in order, where TOAST would make it 500 chunks of 2 kB and as many
-- entries in a TOAST index.  Segments are created with
-- CREATE TABLE ... (LIKE streamlog.segment_template INCLUDING ALL).
CREATE TABLE streamlog.segment_template (
	base_offset bigint NOT NULL,
	last_offset bigint NOT NULL,
	min_timestamp bigint NOT NULL,		-- ms since epoch, over the batch's records
	max_timestamp bigint NOT NULL,		-- (both -1 if no record has a timestamp)
	append_time bigint NOT NULL,		-- ms since epoch, when it was committed
	record_count integer NOT NULL,
	producer_id bigint NOT NULL,
	producer_epoch smallint NOT NULL,
	base_sequence integer NOT NULL,
	chunk integer NOT NULL,				-- piece of the batch, 0 first
	batch bytea NOT NULL				-- the batch's bytes, or this piece of them
);
-- The batch is compressed by its producer if at all, and its pieces fit in a
-- page: never compressed or moved out of line by TOAST.
ALTER TABLE streamlog.segment_template ALTER COLUMN batch SET STORAGE PLAIN;
CREATE UNIQUE INDEX ON streamlog.segment_template (last_offset, chunk);

-- A record header, as Kafka has them: a text key and a binary value.
CREATE TYPE streamlog.header AS (key text, value bytea);

-- Topic administration.
--
-- NULL arguments, in every function below: an argument that must have a
-- value is an error when NULL (null_value_not_allowed, naming it), never a
-- silent no-op; where NULL has a meaning of its own (a null key or value,
-- no headers, any partition, now, no bound) it is taken as that.  Only
-- functions that convert values (as_text(), as_jsonb(),
-- consumer_assignment(), and partition_state() behind the views) are
-- STRICT.  Names
-- beginning with "__" are reserved for internal topics, which clients can
-- read but not create, drop or produce to.

-- replication_factor: replicas of each partition on a cluster (NULL:
-- streamlog.default_replication_factor); a node of its own has one.
CREATE FUNCTION streamlog.create_topic(name text, partitions integer DEFAULT 1,
									   config jsonb DEFAULT '{}',
									   replication_factor integer DEFAULT NULL)
	RETURNS void AS 'MODULE_PATHNAME', 'streamlog_create_topic' LANGUAGE C;

CREATE FUNCTION streamlog.drop_topic(name text, if_exists boolean DEFAULT false)
	RETURNS void AS 'MODULE_PATHNAME', 'streamlog_drop_topic' LANGUAGE C;

-- Drop every topic, one per transaction, so that each takes only the locks
-- of its own segment tables: the way to drop an installation whose
-- segments are more than DROP EXTENSION can lock at once.
CREATE PROCEDURE streamlog.drop_all_topics()
LANGUAGE plpgsql AS $$
DECLARE
	topic_name text;
BEGIN
	-- internal topics (names beginning with "__") go with the extension
	FOR topic_name IN SELECT topic FROM streamlog.topics
			WHERE topic NOT LIKE '\_\_%' ORDER BY topic LOOP
		PERFORM streamlog.drop_topic(topic_name, true);
		COMMIT;
	END LOOP;
END
$$;

CREATE FUNCTION streamlog.alter_topic(name text, config jsonb)
	RETURNS void AS 'MODULE_PATHNAME', 'streamlog_alter_topic' LANGUAGE C;

CREATE FUNCTION streamlog.add_partitions(name text, count integer)
	RETURNS integer AS 'MODULE_PATHNAME', 'streamlog_add_partitions' LANGUAGE C;

-- Kafka's DeleteRecords: records of the partition before before_offset
-- (-1 = the high watermark) become unreadable, and whole segments below it
-- are dropped.  Returns the new log start offset; it never moves backwards.
CREATE FUNCTION streamlog.delete_records(topic text, partition integer, before_offset bigint)
	RETURNS bigint AS 'MODULE_PATHNAME', 'streamlog_delete_records' LANGUAGE C;

-- Every config of a topic, explicit or default, with what Kafka's
-- DescribeConfigs says of it: its type, source (DYNAMIC_TOPIC_CONFIG or
-- DEFAULT_CONFIG), flags, the broker config it takes its default from, and
-- its documentation; enforced is false for the configs streamlog stores
-- but does not act on
CREATE FUNCTION streamlog.topic_config(topic text,
		OUT name text, OUT value text, OUT is_default boolean,
		OUT type text, OUT source text, OUT is_read_only boolean,
		OUT is_sensitive boolean, OUT synonym text, OUT enforced boolean,
		OUT doc text)
	RETURNS SETOF record AS 'MODULE_PATHNAME', 'streamlog_topic_config' LANGUAGE C;

-- Live state of one partition (from shared memory)
CREATE FUNCTION streamlog.partition_state(topic_id integer, partition integer,
		OUT log_start_offset bigint, OUT high_watermark bigint,
		OUT last_stable_offset bigint)
	RETURNS record AS 'MODULE_PATHNAME', 'streamlog_partition_state' LANGUAGE C STRICT;

-- May the role (NULL: the current one) do the operation on the
-- resource?  The check both doors make.
CREATE FUNCTION streamlog.has_privilege(privilege text, on_type text, name text,
										role regrole DEFAULT NULL)
	RETURNS boolean AS 'MODULE_PATHNAME', 'streamlog_has_privilege' LANGUAGE C STABLE;

-- The views show only what the querying role may DESCRIBE (its
-- privileges, see the privilege store below): security barriers, so that
-- a condition of the caller's cannot see the rows they leave out.  A
-- topic's config needs DESCRIBE_CONFIGS too: NULL without it.
CREATE VIEW streamlog.topics WITH (security_barrier) AS
SELECT t.name AS topic, t.partition_count AS partitions,
	   CASE WHEN streamlog.has_privilege('describe_configs', 'topic', t.name) THEN
	   (SELECT jsonb_object_agg(c.name, c.value) FROM streamlog.topic_config(t.name) c)
	   END AS config,
	   t.created_at, t.owner
  FROM streamlog.topic t
 WHERE streamlog.has_privilege('describe', 'topic', t.name);

CREATE VIEW streamlog.partitions WITH (security_barrier) AS
SELECT t.name AS topic, p.partition, s.log_start_offset, s.high_watermark,
	   s.high_watermark - s.log_start_offset AS records,
	   (SELECT coalesce(sum(pg_total_relation_size(g.relid)), 0)::bigint
		  FROM streamlog.segment g
		 WHERE g.topic_id = p.topic_id AND g.partition = p.partition) AS bytes,
	   (SELECT count(*) FROM streamlog.segment g
		 WHERE g.topic_id = p.topic_id AND g.partition = p.partition) AS segments,
	   p.leader_id AS leader, p.leader_epoch, p.partition_epoch, p.replicas, p.isr,
	   p.leader_id < 0 AS offline,
	   cardinality(p.isr) < cardinality(p.replicas) AS under_replicated
  FROM streamlog.topic t
  JOIN streamlog.partition p USING (topic_id)
 CROSS JOIN LATERAL streamlog.partition_state(p.topic_id, p.partition) s
 WHERE streamlog.has_privilege('describe', 'topic', t.name);

-- Producing.  The record is appended when the transaction commits and is
-- visible to readers from then on; a rollback leaves no trace.  Returns the
-- partition the record goes to.  Keys and values: text (the overload that
-- unknown literals and untyped driver parameters resolve to), or any other
-- type through the "any" overload: bytea as is, jsonb and json as their
-- text, other types as their text form.  Headers: a jsonb object
-- {"k": "v", ...} or an array of [key, value] pairs.
CREATE FUNCTION streamlog.produce(topic text, key text, value text,
								  headers jsonb DEFAULT NULL,
								  partition integer DEFAULT NULL,
								  ts timestamptz DEFAULT NULL)
	RETURNS integer AS 'MODULE_PATHNAME', 'streamlog_produce' LANGUAGE C;

CREATE FUNCTION streamlog.produce(topic text, key "any", value "any",
								  headers jsonb DEFAULT NULL,
								  partition integer DEFAULT NULL,
								  ts timestamptz DEFAULT NULL)
	RETURNS integer AS 'MODULE_PATHNAME', 'streamlog_produce' LANGUAGE C;

-- Produce a record exactly as streamlog.read() returns one, binary header
-- values included.
CREATE FUNCTION streamlog.produce_record(topic text, key bytea, value bytea,
										 headers streamlog.header[] DEFAULT NULL,
										 partition integer DEFAULT NULL,
										 ts timestamptz DEFAULT NULL)
	RETURNS integer AS 'MODULE_PATHNAME', 'streamlog_produce' LANGUAGE C;

-- The partition produce() sends a key to; NULL for a null key, which has
-- no partition of its own (such records spread over the partitions)
CREATE FUNCTION streamlog.partition_for(topic text, key "any")
	RETURNS integer AS 'MODULE_PATHNAME', 'streamlog_partition_for' LANGUAGE C;

-- Reading.  Readers skip transaction markers; by default (isolation
-- 'read_committed') they stop at the last stable offset and skip the
-- records of aborted Kafka transactions, with 'read_uncommitted' they read
-- to the high watermark, aborted records included.

CREATE FUNCTION streamlog.read(topic text, partition integer,
							   from_offset bigint DEFAULT 0,
							   max_records integer DEFAULT 1000,
							   isolation text DEFAULT 'read_committed')
	RETURNS TABLE (partition integer, "offset" bigint, ts timestamptz,
				   key bytea, value bytea, headers streamlog.header[])
	AS 'MODULE_PATHNAME', 'streamlog_read' LANGUAGE C ROWS 1000;

-- A topic's history as a relation.  Each bound is optional; the bounds are
-- applied to stored batch boundaries first, so only batches that may match
-- are decoded.
CREATE FUNCTION streamlog.history(topic text,
								  partitions integer[] DEFAULT NULL,
								  from_offset bigint DEFAULT NULL,
								  to_offset bigint DEFAULT NULL,
								  from_ts timestamptz DEFAULT NULL,
								  to_ts timestamptz DEFAULT NULL,
								  isolation text DEFAULT 'read_committed')
	RETURNS TABLE (partition integer, "offset" bigint, ts timestamptz,
				   key bytea, value bytea, headers streamlog.header[])
	AS 'MODULE_PATHNAME', 'streamlog_history' LANGUAGE C ROWS 10000;

-- Earliest offset whose timestamp is at or after ts (Kafka's
-- offsetsForTimes), NULL if there is none.
CREATE FUNCTION streamlog.offset_for_time(topic text, partition integer, ts timestamptz)
	RETURNS bigint AS 'MODULE_PATHNAME', 'streamlog_offset_for_time' LANGUAGE C;

-- Keys and values are bytes; these read them as UTF-8 text or JSON.
CREATE FUNCTION streamlog.as_text(bytea) RETURNS text
	AS 'MODULE_PATHNAME', 'streamlog_as_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION streamlog.as_jsonb(bytea) RETURNS jsonb
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	AS $$ SELECT streamlog.as_text($1)::jsonb $$;

-- Consumer groups.  The committed offsets of every group, Kafka's and
-- SQL's alike: committed_offset is the next offset the group consumes.
-- An SQL consumer owns a partition of its group while its transaction
-- holds the partition's row lock (streamlog.consume() takes it with SKIP
-- LOCKED).
CREATE TABLE streamlog.group_offset (
	group_id text NOT NULL CHECK (group_id <> ''),
	topic_id integer NOT NULL,
	partition integer NOT NULL,
	committed_offset bigint NOT NULL CHECK (committed_offset >= 0),
	leader_epoch integer NOT NULL DEFAULT -1,
	metadata text,
	committed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (group_id, topic_id, partition),
	FOREIGN KEY (topic_id, partition) REFERENCES streamlog.partition ON DELETE CASCADE
);
CREATE INDEX ON streamlog.group_offset (topic_id, partition);
SELECT pg_catalog.pg_extension_config_dump('streamlog.group_offset', '');

-- The next records of a topic for a group, from its committed offsets,
-- which advance past them in the caller's transaction: on commit they are
-- consumed, on rollback they will be returned again.  Concurrent
-- consumers of a group get different partitions and never wait on each
-- other.  With a timeout, waits that long for records if there are none.
CREATE FUNCTION streamlog.consume("group" text, topic text,
								  max_records integer DEFAULT 100,
								  timeout interval DEFAULT '0',
								  isolation text DEFAULT 'read_committed')
	RETURNS TABLE (partition integer, "offset" bigint, ts timestamptz,
				   key bytea, value bytea, headers streamlog.header[])
	AS 'MODULE_PATHNAME', 'streamlog_consume' LANGUAGE C ROWS 100;

-- Set a group's committed offset of one partition, from the log start
-- offset to the high watermark
CREATE FUNCTION streamlog.seek("group" text, topic text, partition integer, "offset" bigint)
	RETURNS void AS 'MODULE_PATHNAME', 'streamlog_seek' LANGUAGE C;

-- Set a group's committed offsets of every partition of a topic to the
-- log start ('earliest'), the high watermark ('latest'), or the first
-- record at or after a time (the high watermark if none)
CREATE FUNCTION streamlog.reset_offsets("group" text, topic text, reset_to text)
	RETURNS TABLE (partition integer, committed_offset bigint)
	AS 'MODULE_PATHNAME', 'streamlog_reset_offsets' LANGUAGE C;
CREATE FUNCTION streamlog.reset_offsets("group" text, topic text, reset_to timestamptz)
	RETURNS TABLE (partition integer, committed_offset bigint)
	AS 'MODULE_PATHNAME', 'streamlog_reset_offsets_to_time' LANGUAGE C;

-- Forget every committed offset of a group
CREATE FUNCTION streamlog.delete_group("group" text, if_exists boolean DEFAULT false)
	RETURNS void AS 'MODULE_PATHNAME', 'streamlog_delete_group' LANGUAGE C;

-- Lag per partition: how far each group is behind the last stable offset
-- (the high watermark unless a Kafka transaction is open there).
-- What Kafka's OffsetFetch shows: DESCRIBE on the group and on the topic
-- (consumer_groups is made of these rows)
CREATE VIEW streamlog.consumer_lag WITH (security_barrier) AS
SELECT o.group_id, t.name AS topic, o.partition, o.committed_offset,
	   s.high_watermark, s.last_stable_offset - o.committed_offset AS lag,
	   o.committed_at, s.last_stable_offset
  FROM streamlog.group_offset o
  JOIN streamlog.topic t USING (topic_id)
 CROSS JOIN LATERAL streamlog.partition_state(o.topic_id, o.partition) s
 WHERE streamlog.has_privilege('describe', 'group', o.group_id)
   AND streamlog.has_privilege('describe', 'topic', t.name);

CREATE VIEW streamlog.consumer_groups AS
SELECT l.group_id, array_agg(DISTINCT l.topic ORDER BY l.topic) AS topics,
	   count(*) AS partitions, sum(l.lag)::bigint AS total_lag,
	   max(l.committed_at) AS last_commit
  FROM streamlog.consumer_lag l
 GROUP BY l.group_id;

REVOKE ALL ON SCHEMA streamlog_data FROM PUBLIC;

-- Kafka consumer groups as the broker's group coordinator sees them now
-- (membership lives in shared memory; committed offsets are in
-- streamlog.group_offset)
CREATE FUNCTION streamlog.kafka_groups()
	RETURNS TABLE (group_id text, state text, protocol_type text, protocol text,
				   generation integer, leader text, members integer)
	AS 'MODULE_PATHNAME', 'streamlog_kafka_groups' LANGUAGE C STRICT VOLATILE;

-- Members of the Kafka consumer groups, with the metadata of the group's
-- protocol and the assignment the leader gave them
CREATE FUNCTION streamlog.kafka_group_members()
	RETURNS TABLE (group_id text, member_id text, group_instance_id text,
				   client_id text, client_host text, session_timeout_ms integer,
				   rebalance_timeout_ms integer, last_heartbeat timestamptz,
				   metadata bytea, assignment bytea)
	AS 'MODULE_PATHNAME', 'streamlog_kafka_group_members' LANGUAGE C STRICT VOLATILE;

-- The broker workers as they are now: connections, the bytes their input
-- buffers hold, parked requests (Fetch waiting for data, JoinGroup and
-- SyncGroup waiting for the group) with the memory they hold, and how many
-- times parked requests were looked at again since the worker started;
-- the bytes of answers written but not yet sent, and the connections muted
-- for holding too many of them (streamlog.max_unsent_bytes_per_worker)
CREATE FUNCTION streamlog.broker_stats()
	RETURNS TABLE (worker integer, pid integer, connections integer,
				   input_buffer_bytes bigint, parked_requests integer,
				   parked_request_bytes bigint, parked_attempts bigint,
				   unsent_bytes bigint, muted_connections integer)
	AS 'MODULE_PATHNAME', 'streamlog_broker_stats' LANGUAGE C STRICT VOLATILE;

CREATE VIEW streamlog.broker_stats AS
SELECT * FROM streamlog.broker_stats();

-- The partitions in a Kafka "consumer" protocol assignment
-- (ConsumerProtocolAssignment v0-3: topics with their partitions, then
-- user data); nothing for other protocols' bytes.
CREATE FUNCTION streamlog.consumer_assignment(assignment bytea)
	RETURNS TABLE (topic text, partition integer)
	LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	pos integer := 3;			-- past the int16 version
	ntopics integer;
	nparts integer;
	len integer;
	name text;
	function_len integer := length(assignment);
BEGIN
	IF function_len < 6 THEN
		RETURN;
	END IF;
	ntopics := (get_byte(assignment, pos - 1) << 24) | (get_byte(assignment, pos) << 16)
			 | (get_byte(assignment, pos + 1) << 8) | get_byte(assignment, pos + 2);
	pos := pos + 4;
	FOR t IN 1 .. greatest(ntopics, 0) LOOP
		len := (get_byte(assignment, pos - 1) << 8) | get_byte(assignment, pos);
		name := convert_from(substring(assignment FROM pos + 2 FOR len), 'UTF8');
		pos := pos + 2 + len;
		nparts := (get_byte(assignment, pos - 1) << 24) | (get_byte(assignment, pos) << 16)
				| (get_byte(assignment, pos + 1) << 8) | get_byte(assignment, pos + 2);
		pos := pos + 4;
		FOR p IN 1 .. greatest(nparts, 0) LOOP
			topic := name;
			partition := (get_byte(assignment, pos - 1) << 24) | (get_byte(assignment, pos) << 16)
					   | (get_byte(assignment, pos + 1) << 8) | get_byte(assignment, pos + 2);
			pos := pos + 4;
			RETURN NEXT;
		END LOOP;
	END LOOP;
EXCEPTION WHEN OTHERS THEN
	RETURN;						-- not a consumer protocol assignment
END;
$$;

-- Members of Kafka groups, and the partitions each was assigned
CREATE VIEW streamlog.group_members AS
SELECT group_id, member_id, group_instance_id, client_id, client_host,
	   session_timeout_ms, last_heartbeat
  FROM streamlog.kafka_group_members();

CREATE VIEW streamlog.group_assignments AS
SELECT m.group_id, m.member_id, a.topic, a.partition
  FROM streamlog.kafka_group_members() m
 CROSS JOIN LATERAL streamlog.consumer_assignment(m.assignment) a;

-- SASL logins of Kafka clients as PostgreSQL roles.  SCRAM-SHA-256 and
-- PLAIN use the role's own verifier in pg_authid (ALTER ROLE ... PASSWORD);
-- PostgreSQL has no SCRAM-SHA-512 verifier, so streamlog keeps one per role
-- here: never a password, readable by superusers only.  A row counts only
-- while role and role_name still name the same role (roles are shared by
-- all databases, so a DROP ROLE elsewhere cannot remove it here).
CREATE TABLE streamlog.scram_credential (
	role oid NOT NULL,
	role_name name NOT NULL,
	mechanism text NOT NULL CHECK (mechanism = 'SCRAM-SHA-512'),
	iterations integer NOT NULL CHECK (iterations > 0),
	salt text NOT NULL,			-- base64, as SCRAM's server-first sends it
	stored_key bytea NOT NULL,
	server_key bytea NOT NULL,
	PRIMARY KEY (role, mechanism)
);
-- Not in pg_dump: a row is tied to its role's oid, which a restore changes
REVOKE ALL ON streamlog.scram_credential FROM PUBLIC;

CREATE FUNCTION streamlog.set_scram_sha512_password(role regrole, password text,
													iterations integer DEFAULT 4096)
	RETURNS void AS 'MODULE_PATHNAME', 'streamlog_set_scram_sha512_password' LANGUAGE C;
CREATE FUNCTION streamlog.drop_scram_sha512_password(role regrole)
	RETURNS boolean AS 'MODULE_PATHNAME', 'streamlog_drop_scram_sha512_password' LANGUAGE C;
-- Privileges: one store for both doors (src/storage/acl.c).  Kafka's ACL
-- bindings, one row per resource pattern, each Kafka operation a bit of an
-- aclitem (READ r, WRITE a, ALTER w, DELETE d, CREATE C, DESCRIBE U,
-- DESCRIBE_CONFIGS x, ALTER_CONFIGS t, CLUSTER_ACTION D, IDEMPOTENT_WRITE X,
-- ALL A), so that role membership and PUBLIC work as for PostgreSQL's own
-- objects.  resource_type and pattern_type are Kafka's codes (topic 2,
-- group 3, cluster 4, transactional_id 5; literal 3, prefixed 4).  The C
-- code reads the columns by position: keep them in step with acl.c.

-- Superusers and the members of streamlog_admin may do everything
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'streamlog_admin') THEN
		CREATE ROLE streamlog_admin NOLOGIN;
	END IF;
END
$$;

CREATE TABLE streamlog.acl (
	resource_type smallint NOT NULL CHECK (resource_type BETWEEN 2 AND 5),
	pattern_type smallint NOT NULL CHECK (pattern_type IN (3, 4)),
	name text NOT NULL CHECK (name <> ''),
	allow aclitem[] NOT NULL DEFAULT '{}',
	deny aclitem[] NOT NULL DEFAULT '{}',
	PRIMARY KEY (resource_type, pattern_type, name)
);
SELECT pg_catalog.pg_extension_config_dump('streamlog.acl', '');

-- Kafka's operation of each aclitem privilege, and the reverse
CREATE VIEW streamlog.acl_operations (operation, privilege, letter) AS
VALUES ('ALL', 'ALTER SYSTEM', 'A'), ('READ', 'SELECT', 'r'),
	   ('WRITE', 'INSERT', 'a'), ('CREATE', 'CREATE', 'C'),
	   ('DELETE', 'DELETE', 'd'), ('ALTER', 'UPDATE', 'w'),
	   ('DESCRIBE', 'USAGE', 'U'), ('CLUSTER_ACTION', 'TRUNCATE', 'D'),
	   ('DESCRIBE_CONFIGS', 'REFERENCES', 'x'), ('ALTER_CONFIGS', 'TRIGGER', 't'),
	   ('IDEMPOTENT_WRITE', 'EXECUTE', 'X');

-- Grant, deny and revoke Kafka operations on a topic, group,
-- transactional_id or the cluster:
--   privileges: a list of operations ('read, write', 'describe_configs',
--     or 'all', Kafka's ALL, which implies every other one);
--   on_type: 'topic', 'group', 'transactional_id' or 'cluster';
--   name: the resource's name, or a prefix with pattern => 'prefixed';
--     '*' (literal) is every resource of the type; NULL for the cluster;
--   to_role / from_role: a role name, or 'public' (Kafka's User:*).
-- A DENY wins over every ALLOW; revoke() removes both, and revoke('all',
-- ...) every operation of the role on that pattern.  Superusers, members
-- of streamlog_admin, roles with ALTER on the cluster and, for its own
-- name, a topic's owner may call them.
CREATE FUNCTION streamlog.grant(privileges text, on_type text, name text,
								to_role text, pattern text DEFAULT 'literal')
	RETURNS void AS 'MODULE_PATHNAME', 'streamlog_grant' LANGUAGE C;

CREATE FUNCTION streamlog.deny(privileges text, on_type text, name text,
							   to_role text, pattern text DEFAULT 'literal')
	RETURNS void AS 'MODULE_PATHNAME', 'streamlog_deny' LANGUAGE C;

CREATE FUNCTION streamlog.revoke(privileges text, on_type text, name text,
								 from_role text, pattern text DEFAULT 'literal')
	RETURNS void AS 'MODULE_PATHNAME', 'streamlog_revoke' LANGUAGE C;

-- The stored arrays as \dp shows a table's: one row per resource pattern.
-- As Kafka's DescribeAcls, only for roles with DESCRIBE on the cluster
-- (the filter is evaluated once, for the role querying the view).
CREATE VIEW streamlog.privileges WITH (security_barrier) AS
SELECT CASE a.resource_type WHEN 2 THEN 'TOPIC' WHEN 3 THEN 'GROUP'
		   WHEN 4 THEN 'CLUSTER' WHEN 5 THEN 'TRANSACTIONAL_ID' END AS resource_type,
	   CASE a.pattern_type WHEN 3 THEN 'LITERAL' WHEN 4 THEN 'PREFIXED' END AS pattern_type,
	   a.name, a.allow, a.deny
  FROM streamlog.acl a
 WHERE streamlog.has_privilege('describe', 'cluster', NULL);

-- One row per binding, as Kafka's DescribeAcls lists them
CREATE VIEW streamlog.acls WITH (security_barrier) AS
SELECT DISTINCT p.resource_type, p.pattern_type, p.name,
	   CASE WHEN e.grantee = 0 THEN 'User:*'
			ELSE 'User:' || coalesce((SELECT r.rolname FROM pg_catalog.pg_roles r
									   WHERE r.oid = e.grantee), e.grantee::text)
	   END AS principal,	-- as DescribeAcls: a dropped role by its OID
	   CASE WHEN e.grantee <> 0 THEN e.grantee::regrole END AS role,
	   o.operation, x.permission
  FROM streamlog.privileges p
 CROSS JOIN LATERAL (VALUES ('ALLOW', CASE WHEN cardinality(p.allow) > 0 THEN p.allow END),
						   ('DENY', CASE WHEN cardinality(p.deny) > 0 THEN p.deny END))
	   x(permission, items)	-- aclexplode() refuses the empty array a restore makes
 CROSS JOIN LATERAL pg_catalog.aclexplode(x.items) e
  JOIN streamlog.acl_operations o ON o.privilege = e.privilege_type;

-- (Every role may read acls, privileges and acl_operations: granted with
-- the other views below, after the tables are taken from PUBLIC.)
GRANT USAGE ON SCHEMA streamlog TO streamlog_admin;
GRANT SELECT ON streamlog.acl TO streamlog_admin;

-- Authorization: one set of rules for both doors.
-- The tables grant nothing to anyone: SELECT on a catalogue table reads
-- that table and nothing more, and streamlog_data is reachable only
-- through the functions, which check the caller's privileges
-- (has_privilege(): produce WRITE, read READ, create_topic CREATE, ...;
-- README, "Privileges") and then reach the tables as the extension's
-- owner.  Every role may call the functions and read the views, which
-- show only what it may DESCRIBE.
REVOKE ALL ON streamlog.topic, streamlog.partition, streamlog.segment,
	streamlog.segment_template, streamlog.group_offset, streamlog.acl,
	streamlog.topic_id_seq, streamlog.producer_id_seq FROM PUBLIC;
GRANT USAGE ON SCHEMA streamlog TO PUBLIC;

-- group_members and group_assignments come from kafka_group_members(),
-- which leaves out the groups the role may not DESCRIBE
GRANT SELECT ON streamlog.topics, streamlog.partitions, streamlog.consumer_lag,
	streamlog.consumer_groups, streamlog.group_members, streamlog.group_assignments,
	streamlog.acls, streamlog.privileges, streamlog.acl_operations
	TO PUBLIC;

-- The broker workers' state is the operators': streamlog_admin and
-- pg_monitor, as PostgreSQL's own statistics of other sessions
REVOKE EXECUTE ON FUNCTION streamlog.broker_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION streamlog.broker_stats() TO streamlog_admin, pg_monitor;
GRANT SELECT ON streamlog.broker_stats TO streamlog_admin, pg_monitor;

-- Client quotas (Kafka's KIP-13, KIP-55, KIP-124, KIP-599): a rate per
-- entity, the entity being a user (a role name), a client id, or both, as
-- Kafka's AlterClientQuotas gives it: {"user": "alice", "client-id": "app"};
-- a null name is the <default> entity of its type.  Read by the broker
-- workers (each looks again at most a second later), written by
-- alter_client_quota() from SQL and by AlterClientQuotas from Kafka, both
-- through client_quota_apply().
CREATE TABLE streamlog.client_quota (
	entity jsonb NOT NULL,
	quota_key text NOT NULL,
	value double precision NOT NULL,
	PRIMARY KEY (entity, quota_key)
);
SELECT pg_catalog.pg_extension_config_dump('streamlog.client_quota', '');
REVOKE ALL ON streamlog.client_quota FROM PUBLIC;

-- What alter_client_quota() and Kafka's AlterClientQuotas do once they
-- checked the caller's ALTER_CONFIGS on the cluster: check the quota as
-- Kafka 3.9 checks AlterClientQuotas, and set (value not null) or remove
-- (value null) it; validate_only checks and writes nothing.  Run as the
-- catalogue's owner, so nobody else may call it.
CREATE FUNCTION streamlog.client_quota_apply(entity jsonb, quota_key text,
											 value double precision,
											 validate_only boolean)
	RETURNS void LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
	entity_type text;
BEGIN
	IF entity IS NULL OR jsonb_typeof(entity) <> 'object' OR entity = '{}' THEN
		RAISE EXCEPTION 'a quota entity must name a user, a client-id, or both'
			USING ERRCODE = '22023',
				  HINT = 'Write it as {"user": "alice"}, {"client-id": "app"} or both; a null name is the default entity.';
	END IF;
	FOR entity_type IN SELECT jsonb_object_keys(entity) LOOP
		IF entity_type NOT IN ('user', 'client-id') THEN
			RAISE EXCEPTION 'quota entity type "%" is not supported', entity_type
				USING ERRCODE = '22023',
					  HINT = 'Quotas are set per "user" and "client-id"; connection rates per "ip" are not supported.';
		END IF;
		IF jsonb_typeof(entity -> entity_type) NOT IN ('string', 'null') THEN
			RAISE EXCEPTION 'the % of a quota entity must be a string, or null for the default', entity_type
				USING ERRCODE = '22023';
		END IF;
	END LOOP;
	IF quota_key IS NULL OR quota_key NOT IN ('producer_byte_rate', 'consumer_byte_rate',
											 'request_percentage', 'controller_mutation_rate') THEN
		RAISE EXCEPTION 'invalid quota key "%"', quota_key
			USING ERRCODE = '22023',
				  HINT = 'The keys are producer_byte_rate, consumer_byte_rate, request_percentage and controller_mutation_rate.';
	END IF;
	IF value IS NOT NULL THEN
		IF value = 'NaN'::float8 OR value <= 0 OR value = 'Infinity'::float8 THEN
			RAISE EXCEPTION 'quota % must be a positive number, not %', quota_key, value
				USING ERRCODE = '22023';
		END IF;
		IF quota_key IN ('producer_byte_rate', 'consumer_byte_rate') AND value <> trunc(value) THEN
			RAISE EXCEPTION 'quota % must be a whole number of bytes per second, not %', quota_key, value
				USING ERRCODE = '22023';
		END IF;
	END IF;
	IF validate_only THEN
		RETURN;
	END IF;
	IF value IS NULL THEN
		DELETE FROM streamlog.client_quota q
		 WHERE q.entity = client_quota_apply.entity AND q.quota_key = client_quota_apply.quota_key;
	ELSE
		INSERT INTO streamlog.client_quota AS q VALUES (entity, quota_key, value)
			ON CONFLICT ON CONSTRAINT client_quota_pkey DO UPDATE SET value = excluded.value;
	END IF;
END;
$$;
REVOKE EXECUTE ON FUNCTION streamlog.client_quota_apply(jsonb, text, double precision, boolean) FROM PUBLIC;

-- Set (value not null) or remove (value null) one quota of one entity: for
-- roles with ALTER_CONFIGS on the cluster, as Kafka's AlterClientQuotas
CREATE FUNCTION streamlog.alter_client_quota(entity jsonb, quota_key text,
											 value double precision,
											 validate_only boolean DEFAULT false)
	RETURNS void AS 'MODULE_PATHNAME', 'streamlog_alter_client_quota' LANGUAGE C;

-- The quotas as Kafka's tools show them: <default> for a default entity,
-- NULL where the entity has no part of that type; for roles with
-- DESCRIBE_CONFIGS on the cluster, as Kafka's DescribeClientQuotas
CREATE VIEW streamlog.client_quotas WITH (security_barrier) AS
SELECT CASE WHEN q.entity ? 'user' THEN coalesce(q.entity ->> 'user', '<default>') END AS user_name,
	   CASE WHEN q.entity ? 'client-id' THEN coalesce(q.entity ->> 'client-id', '<default>') END AS client_id,
	   q.quota_key, q.value, q.entity
  FROM streamlog.client_quota q
 WHERE streamlog.has_privilege('describe_configs', 'cluster', NULL);
GRANT SELECT ON streamlog.client_quotas TO PUBLIC;

-- Topics as tables: the current value of every key of a topic, as a
-- relation with the columns of read().  Within a partition the newest
-- record of a key is current (what compaction keeps); where a key has
-- records in several partitions (producers choose partitions, and added
-- partitions move keys) the newest timestamp wins, then the higher
-- partition.  Keys whose current record is a tombstone (null value), and
-- records without a key, are absent.  Two passes over the log: keys,
-- offsets and timestamps are sorted (spilling to disk past work_mem, so
-- any topic fits), then the current records are read.
CREATE FUNCTION streamlog.latest(topic text)
	RETURNS TABLE (partition integer, "offset" bigint, ts timestamptz,
				   key bytea, value bytea, headers streamlog.header[])
	AS 'MODULE_PATHNAME', 'streamlog_latest' LANGUAGE C ROWS 10000;

-- The current record of one key (0 or 1 row), by the same rule: in one
-- partition, or in all of them (partition NULL).  With the topic's key
-- index (topic config key.index) a lookup costs O(log n); without it, the
-- log is read.  Text keys are looked up as their UTF-8 bytes, as produce()
-- stores them.
CREATE FUNCTION streamlog.latest(topic text, key bytea, partition integer DEFAULT NULL)
	RETURNS TABLE (partition integer, "offset" bigint, ts timestamptz,
				   key bytea, value bytea, headers streamlog.header[])
	AS 'MODULE_PATHNAME', 'streamlog_latest_key' LANGUAGE C ROWS 1;
CREATE FUNCTION streamlog.latest(topic text, key text, partition integer DEFAULT NULL)
	RETURNS TABLE (partition integer, "offset" bigint, ts timestamptz,
				   key bytea, value bytea, headers streamlog.header[])
	LANGUAGE sql ROWS 1 AS $$
SELECT * FROM streamlog.latest(latest.topic, convert_to(latest.key, 'UTF8'), latest.partition)
$$;
-- Log compaction (cleanup.policy=compact; README, "Compaction").
--
-- The cleaner's progress per partition: cleaned_offset is the checkpoint,
-- the first offset of the dirty part (records below it were compacted);
-- delete_horizon the earliest time a tombstone kept by a pass may go.
CREATE TABLE streamlog.compaction_state (
	topic_id integer NOT NULL,
	partition integer NOT NULL,
	cleaned_offset bigint NOT NULL DEFAULT 0,
	delete_horizon bigint,
	last_run timestamptz,
	passes bigint NOT NULL DEFAULT 0,
	records_removed bigint NOT NULL DEFAULT 0,
	bytes_reclaimed bigint NOT NULL DEFAULT 0,
	last_error text,
	PRIMARY KEY (topic_id, partition),
	FOREIGN KEY (topic_id, partition) REFERENCES streamlog.partition ON DELETE CASCADE
);
SELECT pg_catalog.pg_extension_config_dump('streamlog.compaction_state', '');

-- Segment tables that compaction replaced, which a reader may still have
-- open: the cleaner drops them once no one does.
CREATE TABLE streamlog.retired_segment (
	relid regclass PRIMARY KEY,
	topic_id integer NOT NULL REFERENCES streamlog.topic ON DELETE CASCADE,
	retired_at timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('streamlog.retired_segment', '');
REVOKE ALL ON streamlog.compaction_state, streamlog.retired_segment FROM PUBLIC;

-- One cleaning pass over a partition (NULL: every partition) of a
-- compacted topic, now, in the caller's transaction, however little of it
-- is dirty; the active segment, the high watermark and
-- min.compaction.lag.ms still bound it.  Needs ALTER on the topic.
CREATE FUNCTION streamlog.clean(topic text, partition integer DEFAULT NULL)
	RETURNS TABLE (partition integer, cleaned_offset bigint,
				   records_removed bigint, bytes_reclaimed bigint)
	AS 'MODULE_PATHNAME', 'streamlog_clean' LANGUAGE C;

CREATE FUNCTION streamlog.compaction_status(topic text)
	RETURNS TABLE (partition integer, cleaned_offset bigint,
				   dirty_ratio double precision, dirty_bytes bigint,
				   last_run timestamptz, passes bigint, records_removed bigint,
				   bytes_reclaimed bigint, last_error text)
	AS 'MODULE_PATHNAME', 'streamlog_compaction_status' LANGUAGE C STRICT STABLE;

-- The cleaner's progress on every partition of every compacted topic the
-- role may DESCRIBE
CREATE VIEW streamlog.compaction WITH (security_barrier) AS
SELECT t.name AS topic, c.partition, c.cleaned_offset, c.dirty_ratio, c.dirty_bytes,
	   c.last_run, c.passes, c.records_removed, c.bytes_reclaimed, c.last_error
  FROM streamlog.topic t
 CROSS JOIN LATERAL streamlog.compaction_status(t.name) c
 WHERE streamlog.has_privilege('describe', 'topic', t.name);
GRANT SELECT ON streamlog.compaction TO PUBLIC;

-- Topics on a cluster (README, "Topics on a cluster").  The catalog of a
-- node in a cluster is a copy of the cluster's metadata, which the Raft
-- worker writes after each change it applies; applied_index is the Raft
-- index of the metadata the catalog matches (0: never synced, as on a
-- node of its own).  Not dumped: a restored node syncs again from the
-- cluster.
CREATE TABLE streamlog.cluster_sync (
	applied_index bigint NOT NULL DEFAULT 0,
	single_row boolean PRIMARY KEY DEFAULT true CHECK (single_row)
);
INSERT INTO streamlog.cluster_sync DEFAULT VALUES;
REVOKE ALL ON streamlog.cluster_sync FROM PUBLIC;

-- Cluster: the nodes, the metadata quorum and its members as this node
-- sees them (what the Raft worker last published; a standalone node shows
-- itself, its own controller)
CREATE FUNCTION streamlog.cluster_nodes()
	RETURNS TABLE (node_id integer, kafka_host text, kafka_port integer,
				   sql_conninfo text, raft_address text, rack text, state text,
				   last_heartbeat timestamptz, is_controller boolean,
				   is_voter boolean, is_observer boolean, incarnation bigint)
	AS 'MODULE_PATHNAME', 'streamlog_cluster_nodes' LANGUAGE C STRICT VOLATILE;

CREATE VIEW streamlog.nodes AS
SELECT * FROM streamlog.cluster_nodes() ORDER BY node_id;

CREATE FUNCTION streamlog.raft_status()
	RETURNS TABLE (node_id integer, role text, term bigint, leader_id integer,
				   commit_index bigint, applied_index bigint, last_index bigint,
				   catalog_synced_index bigint, controller_id integer,
				   controller_epoch bigint, cluster_id text, refused text)
	AS 'MODULE_PATHNAME', 'streamlog_raft_status' LANGUAGE C STRICT VOLATILE;

CREATE VIEW streamlog.raft_status AS
SELECT * FROM streamlog.raft_status();

CREATE FUNCTION streamlog.raft_members()
	RETURNS TABLE (node_id integer, address text, role text, match_index bigint,
				   last_contact_ms bigint)
	AS 'MODULE_PATHNAME', 'streamlog_raft_members' LANGUAGE C STRICT VOLATILE;

CREATE VIEW streamlog.raft_members AS
SELECT * FROM streamlog.raft_members() ORDER BY node_id;

-- Like Kafka's DescribeCluster and DescribeQuorum, open to every client
GRANT SELECT ON streamlog.nodes, streamlog.raft_status, streamlog.raft_members TO PUBLIC;

-- Cluster administration (clusterapi): the controller's entry points that
-- other nodes call over libpq, and the quorum's membership.
--
-- _cluster_submit and _cluster_membership act for the whole cluster
-- without the Kafka authorization of the request (the forwarding node
-- checked it at its door): only superusers and streamlog_admin may call
-- them, and nodes connect as the role of their advertised SQL conninfo.
CREATE FUNCTION streamlog._cluster_submit(request bytea, timeout_ms integer DEFAULT 30000,
										  OUT error_code integer, OUT message text,
										  OUT raft_index bigint)
	AS 'MODULE_PATHNAME', 'streamlog__cluster_submit' LANGUAGE C VOLATILE;
CREATE FUNCTION streamlog._cluster_membership(action text, node_id integer,
											  timeout_ms integer DEFAULT 30000,
											  OUT error_code integer, OUT message text,
											  OUT raft_index bigint)
	AS 'MODULE_PATHNAME', 'streamlog__cluster_membership' LANGUAGE C VOLATILE;
REVOKE EXECUTE ON FUNCTION streamlog._cluster_submit(bytea, integer),
	streamlog._cluster_membership(text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION streamlog._cluster_submit(bytea, integer),
	streamlog._cluster_membership(text, integer, integer) TO streamlog_admin;

-- Add a registered node to the metadata quorum as a voter, or remove a
-- voter, one at a time (Kafka's AddRaftVoter / RemoveRaftVoter).  Needs
-- ALTER on the cluster.
CREATE FUNCTION streamlog.add_voter(node_id integer) RETURNS void
	AS 'MODULE_PATHNAME', 'streamlog_add_voter' LANGUAGE C;
CREATE FUNCTION streamlog.remove_voter(node_id integer) RETURNS void
	AS 'MODULE_PATHNAME', 'streamlog_remove_voter' LANGUAGE C;

-- Preferred leader election (Kafka's ElectLeaders): of one partition, of
-- every partition of a topic (partition NULL) or of every partition (topic
-- NULL); a row per partition with Kafka's error code (0 elected, 84
-- ELECTION_NOT_NEEDED, 80 PREFERRED_LEADER_NOT_AVAILABLE).  unclean: an
-- unclean election of the partitions without a leader instead (an ISR
-- member if one is alive, else any live replica; 83
-- ELIGIBLE_LEADERS_NOT_AVAILABLE when none is).  Needs ALTER on the cluster.
CREATE FUNCTION streamlog.elect_leaders(topic text DEFAULT NULL, partition integer DEFAULT NULL,
										unclean boolean DEFAULT false)
	RETURNS TABLE (topic text, partition integer, error_code integer, message text)
	AS 'MODULE_PATHNAME', 'streamlog_elect_leaders' LANGUAGE C;

-- SQL produce forwarded to the partition's leader (sqlforward; README, "SQL
-- produce on any node").  produce() to a partition another node leads
-- queues its batches here, in the caller's transaction; the forwarder
-- worker sends them to the leader in queue order and removes them once
-- the leader stored them.  position orders the queue as offsets order a
-- log (the order transactions reached their commit); producer_epoch and
-- base_sequence are NULL until the forwarder stamps the batch with them
-- and this node's producer id.
CREATE TABLE streamlog.forward_queue (
	position bigint PRIMARY KEY,
	topic_id integer NOT NULL,
	partition integer NOT NULL,
	record_count integer NOT NULL,
	enqueued_at timestamptz NOT NULL,
	producer_epoch smallint,
	base_sequence integer,
	batch bytea NOT NULL
);
ALTER TABLE streamlog.forward_queue ALTER COLUMN batch SET STORAGE EXTERNAL;
CREATE INDEX forward_queue_partition ON streamlog.forward_queue (topic_id, partition, position);
-- The next sequence of this node's producer per partition it forwards to
CREATE TABLE streamlog.forward_sequence (
	topic_id integer NOT NULL,
	partition integer NOT NULL,
	producer_epoch smallint NOT NULL,
	next_sequence integer NOT NULL,
	PRIMARY KEY (topic_id, partition)
);
-- This node's producer id for what it forwards (one row), and the node id
-- it was taken as: a copy of the node's data under another id (a clone
-- joining as a new node) takes its own and leaves the queue to the original
CREATE TABLE streamlog.forward_producer (
	one boolean PRIMARY KEY DEFAULT true CHECK (one),
	producer_id bigint NOT NULL,
	node_id integer NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('streamlog.forward_queue', '');
SELECT pg_catalog.pg_extension_config_dump('streamlog.forward_sequence', '');
SELECT pg_catalog.pg_extension_config_dump('streamlog.forward_producer', '');
REVOKE ALL ON streamlog.forward_queue, streamlog.forward_sequence,
	streamlog.forward_producer FROM PUBLIC;

-- On the leader: append batches a node forwarded (stamped by its
-- producer, checked as an idempotent producer's: a resend is stored
-- once).  Kafka's refusals come back as SQLSTATE SLnnn, nnn the Kafka
-- error code.  Acts without the producer's authorization (its node
-- checked it): superusers only.
CREATE FUNCTION streamlog._forward_append(source_node integer, topic_id integer,
										  partition integer, VARIADIC batches bytea[])
	RETURNS integer
	AS 'MODULE_PATHNAME', 'streamlog__forward_append' LANGUAGE C VOLATILE STRICT;
REVOKE EXECUTE ON FUNCTION streamlog._forward_append(integer, integer, integer, bytea[])
	FROM PUBLIC;

-- What waits to be forwarded, per partition: batches, records, the oldest
-- and how long it has waited, and the partition's leader now
CREATE VIEW streamlog.forward_queue_status AS
	SELECT t.name AS topic, q.partition, p.leader_id AS leader,
		   count(*) AS batches, sum(q.record_count) AS records,
		   min(q.enqueued_at) AS oldest, now() - min(q.enqueued_at) AS oldest_age
	  FROM streamlog.forward_queue q
	  LEFT JOIN streamlog.topic t ON t.topic_id = q.topic_id
	  LEFT JOIN streamlog.partition p ON p.topic_id = q.topic_id AND p.partition = q.partition
	 GROUP BY t.name, q.topic_id, q.partition, p.leader_id;
REVOKE ALL ON streamlog.forward_queue_status FROM PUBLIC;
GRANT SELECT ON streamlog.forward_queue_status TO streamlog_admin;
GRANT EXECUTE ON FUNCTION streamlog._forward_append(integer, integer, integer, bytea[])
	TO streamlog_admin;
-- On the leader: wait until the high watermark passes a batch that
-- _forward_append stored (acks=all for forwarded batches); returns the
-- offset after it.  SL007 at timeout_ms.
CREATE FUNCTION streamlog._forward_acked(source_node integer, topic_id integer,
										 partition integer, producer_id bigint,
										 producer_epoch smallint, base_sequence integer,
										 record_count integer, timeout_ms integer DEFAULT 30000)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'streamlog__forward_acked' LANGUAGE C VOLATILE STRICT;
REVOKE EXECUTE ON FUNCTION streamlog._forward_acked(integer, integer, integer, bigint,
	smallint, integer, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION streamlog._forward_acked(integer, integer, integer, bigint,
	smallint, integer, integer, integer) TO streamlog_admin;
-- Replicated partitions, the leader's side (leaderside): followers report
-- the log end they hold durably, one row per partition reported; the
-- leader's high watermark follows (the smallest log end over the maximal
-- ISR, Kafka's rules) and is answered.  Superusers only: a report
-- acknowledges records.
CREATE FUNCTION streamlog._replica_progress(follower_id integer, topic_ids integer[],
											partitions integer[], leader_epochs integer[],
											log_ends bigint[])
	RETURNS TABLE (topic_id integer, partition integer, error smallint,
				   high_watermark bigint)
	AS 'MODULE_PATHNAME', 'streamlog__replica_progress' LANGUAGE C VOLATILE;
REVOKE EXECUTE ON FUNCTION streamlog._replica_progress(integer, integer[], integer[],
														integer[], bigint[]) FROM PUBLIC;

-- The leader's view of each replica of the partitions this node leads
-- (every partition, on a node of its own): the log end each reported, how
-- far behind the leader's log end it is, when it was last caught up, and
-- whether it is in the ISR the metadata committed and in the maximal ISR
-- the high watermark waits for (which also counts followers the leader
-- asked to add).
CREATE FUNCTION streamlog.replica_states()
	RETURNS TABLE (topic text, partition integer, node_id integer, is_leader boolean,
				   log_end_offset bigint, lag bigint, last_caught_up timestamptz,
				   in_isr boolean, in_maximal_isr boolean)
	AS 'MODULE_PATHNAME', 'streamlog_replica_states' LANGUAGE C VOLATILE;

CREATE VIEW streamlog.replicas WITH (security_barrier) AS
SELECT r.* FROM streamlog.replica_states() r
 WHERE streamlog.has_privilege('describe', 'topic', r.topic)
 ORDER BY r.topic, r.partition, r.node_id;
GRANT SELECT ON streamlog.replicas TO PUBLIC;

-- Replicated partitions, the controller's side (README, "Replicas and the
-- controller").
--
-- Kafka's AlterPartition (KIP-497) from SQL: what a partition leader's ISR
-- manager asks the controller, as this node, with the epochs it knows.
-- One row with Kafka's error code (0: done and applied here; 74
-- FENCED_LEADER_EPOCH, 95 INVALID_UPDATE_VERSION, 107 INELIGIBLE_REPLICA,
-- 42 INVALID_REQUEST...).  Superuser only: it speaks for the leader.
CREATE FUNCTION streamlog._alter_partition_isr(topic text, partition integer,
		leader_epoch integer, partition_epoch integer, isr integer[],
		timeout_ms integer DEFAULT 30000,
		OUT error_code integer, OUT message text)
	AS 'MODULE_PATHNAME', 'streamlog__alter_partition_isr' LANGUAGE C VOLATILE;
REVOKE EXECUTE ON FUNCTION streamlog._alter_partition_isr(text, integer, integer, integer,
	integer[], integer) FROM PUBLIC;

-- A reassignment under way (KIP-455), as the cluster's metadata has it:
-- the replicas being added (they catch up, then join the ISR) and those
-- being removed once they have.  Empty on a node of its own and when none.
ALTER TABLE streamlog.partition
	ADD COLUMN adding_replicas integer[] NOT NULL DEFAULT '{}',
	ADD COLUMN removing_replicas integer[] NOT NULL DEFAULT '{}';

-- Move a partition's replicas (Kafka's AlterPartitionReassignments): the
-- new replicas are added, catch up and join the ISR, then the replicas
-- not in the target leave (and a leader among them hands over); replicas
-- NULL cancels the reassignment under way.  Returns once the controller
-- committed the start and this node applied it, not at completion: see
-- streamlog.reassignments.  Needs ALTER on the cluster.
CREATE FUNCTION streamlog.reassign_partition(topic text, partition integer, replicas integer[])
	RETURNS void AS 'MODULE_PATHNAME', 'streamlog_reassign_partition' LANGUAGE C;

-- Reassignments under way (Kafka's ListPartitionReassignments)
CREATE VIEW streamlog.reassignments WITH (security_barrier) AS
SELECT t.name AS topic, p.partition, p.replicas, p.adding_replicas, p.removing_replicas,
	   p.isr, p.leader_id AS leader
  FROM streamlog.topic t
  JOIN streamlog.partition p USING (topic_id)
 WHERE (cardinality(p.adding_replicas) > 0 OR cardinality(p.removing_replicas) > 0)
   AND streamlog.has_privilege('describe', 'topic', t.name);
GRANT SELECT ON streamlog.reassignments TO PUBLIC;

-- Replicated log storage (README, "The replicated log"): the side channel
-- a follower calls on its leader, and the truncation a replica does to
-- itself.  Superuser only (checked in C, and not granted): they read and
-- change a partition's log beneath every privilege and the high watermark.
--
-- Stored batches from from_offset on (the batch holding it first, or the
-- first kept if retention removed it), as stored, up to the committed log
-- end and max_bytes (at least one batch): a follower's catch-up of history
-- older than its replication slot.
CREATE FUNCTION streamlog._replica_read(topic_id integer, partition integer,
										from_offset bigint, max_bytes integer)
	RETURNS TABLE (base_offset bigint, last_offset bigint, leader_epoch integer,
				   append_time bigint, batch bytea)
	AS 'MODULE_PATHNAME', 'streamlog__replica_read' LANGUAGE C STRICT VOLATILE;
-- Where leader_epoch ended in this node's log (Kafka's OffsetForLeaderEpoch):
-- the largest epoch <= it that the log holds and the offset where the next
-- one began, or (-1, -1) if this node knows no such epoch.
CREATE FUNCTION streamlog._epoch_end_offset(topic_id integer, partition integer,
											leader_epoch integer)
	RETURNS TABLE (end_epoch integer, end_offset bigint)
	AS 'MODULE_PATHNAME', 'streamlog__epoch_end_offset' LANGUAGE C STRICT VOLATILE;
-- Remove every batch at or above offset from this node's copy of a
-- partition, in the caller's transaction; returns how many batches went.
-- For a replica following a new leader, and for repair: it is not
-- replicated, and the high watermark follows it down.
CREATE FUNCTION streamlog._truncate_partition(topic_id integer, partition integer,
											  "offset" bigint)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'streamlog__truncate_partition' LANGUAGE C STRICT VOLATILE;
REVOKE EXECUTE ON FUNCTION streamlog._replica_read(integer, integer, bigint, integer),
	streamlog._epoch_end_offset(integer, integer, integer),
	streamlog._truncate_partition(integer, integer, bigint) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Transactions, the partition side (issue 14): open transactions, the
-- aborted-transaction index, and the internal test door.
-- ---------------------------------------------------------------------------

-- The open transaction of each transactional producer on a partition: the
-- offset of its first batch there.  Written in the same transaction as the
-- append that opens it, deleted by the marker (COMMIT or ABORT) that closes
-- it.  The last stable offset is the smallest first_offset, or the high
-- watermark if there is none.
CREATE TABLE streamlog.txn_open (
	topic_id integer NOT NULL,
	partition integer NOT NULL,
	producer_id bigint NOT NULL,
	producer_epoch smallint NOT NULL,
	first_offset bigint NOT NULL,
	PRIMARY KEY (topic_id, partition, producer_id),
	FOREIGN KEY (topic_id, partition) REFERENCES streamlog.partition ON DELETE CASCADE
);
CREATE INDEX ON streamlog.txn_open (topic_id, partition, first_offset);

-- The aborted transactions of a partition (Kafka's transaction index):
-- from its producer's first batch to the ABORT marker (last_offset), for
-- read_committed Fetch and the SQL readers.  Rows below the log start
-- offset are removed with the segments that held them.
CREATE TABLE streamlog.txn_aborted (
	topic_id integer NOT NULL,
	partition integer NOT NULL,
	producer_id bigint NOT NULL,
	first_offset bigint NOT NULL,
	last_offset bigint NOT NULL,
	PRIMARY KEY (topic_id, partition, last_offset),
	FOREIGN KEY (topic_id, partition) REFERENCES streamlog.partition ON DELETE CASCADE
);
SELECT pg_catalog.pg_extension_config_dump('streamlog.txn_open', '');
SELECT pg_catalog.pg_extension_config_dump('streamlog.txn_aborted', '');

-- Internal, for tests until the transaction coordinator opens the Kafka
-- door: append a transactional batch of values (one record each, with the
-- keys if given) for a producer, and write a COMMIT or ABORT marker, in the
-- caller's transaction.
-- Superuser only (checked in C, and not granted).
CREATE FUNCTION streamlog._txn_test_append(topic text, partition integer,
										   producer_id bigint, producer_epoch smallint,
										   base_sequence integer, "values" text[],
										   keys text[] DEFAULT NULL)
	RETURNS void
	AS 'MODULE_PATHNAME', 'streamlog__txn_test_append' LANGUAGE C VOLATILE;
CREATE FUNCTION streamlog._txn_test_marker(topic text, partition integer,
										   producer_id bigint, producer_epoch smallint,
										   commit boolean, coordinator_epoch integer DEFAULT 0)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'streamlog__txn_test_marker' LANGUAGE C STRICT VOLATILE;
-- The last stable offset of a partition (the high watermark when no
-- transaction is open there)
CREATE FUNCTION streamlog.last_stable_offset(topic text, partition integer)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'streamlog_last_stable_offset' LANGUAGE C STRICT STABLE;
-- The open transactions of the partitions whose topic the role may
-- describe: where each starts holds the last stable offset back
CREATE VIEW streamlog.open_transactions WITH (security_barrier) AS
SELECT t.name AS topic, o.partition, o.producer_id, o.producer_epoch, o.first_offset
  FROM streamlog.txn_open o
  JOIN streamlog.topic t USING (topic_id)
 WHERE streamlog.has_privilege('describe', 'topic', t.name);
GRANT SELECT ON streamlog.open_transactions TO PUBLIC;
-- Abort a hanging transaction (Kafka's kafka-transactions.sh abort): the
-- open transaction of a partition starting at start_offset gets its
-- producer's ABORT marker; returns the marker's offset.  Needs
-- CLUSTER_ACTION on the cluster, run on the partition's leader.
CREATE FUNCTION streamlog.abort_transaction(topic text, partition integer,
											start_offset bigint)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'streamlog_abort_transaction' LANGUAGE C VOLATILE;
REVOKE EXECUTE ON FUNCTION streamlog._txn_test_append(text, integer, bigint, smallint, integer, text[], text[]),
	streamlog._txn_test_marker(text, integer, bigint, smallint, boolean, integer) FROM PUBLIC;
-- Kafka transactions: the transaction coordinator (issue 14).
-- One row per transactional id this node coordinates: its producer id and
-- epoch, the state of its transaction in Kafka's names (status numbers of
-- __transaction_state: 0 Empty, 1 Ongoing, 2 PrepareCommit, 3 PrepareAbort,
-- 4 CompleteCommit, 5 CompleteAbort) and the partitions in it.  Every
-- change also appends the id's record to __transaction_state in the same
-- transaction, as group_offset does to __consumer_offsets.
CREATE TABLE streamlog.txn_state (
	transactional_id text PRIMARY KEY CHECK (transactional_id <> ''),
	producer_id bigint NOT NULL,
	last_producer_id bigint NOT NULL DEFAULT -1,
	producer_epoch smallint NOT NULL,
	last_producer_epoch smallint NOT NULL DEFAULT -1,
	timeout_ms integer NOT NULL CHECK (timeout_ms > 0),
	state smallint NOT NULL CHECK (state BETWEEN 0 AND 7),
	topic_ids integer[] NOT NULL DEFAULT '{}',
	partitions integer[] NOT NULL DEFAULT '{}',
	groups text[] NOT NULL DEFAULT '{}',
	started_at timestamptz,
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (cardinality(topic_ids) = cardinality(partitions))
);
-- Produce checks a transactional batch's producer against it
CREATE INDEX ON streamlog.txn_state (producer_id);
SELECT pg_catalog.pg_extension_config_dump('streamlog.txn_state', '');
REVOKE ALL ON streamlog.txn_state FROM PUBLIC;

-- Offsets a transactional producer committed for a group (TxnOffsetCommit),
-- pending until its transaction ends: moved to group_offset by a commit,
-- dropped by an abort (Kafka's pending transactional offsets, KIP-98)
CREATE TABLE streamlog.txn_pending_offset (
	producer_id bigint NOT NULL,
	group_id text NOT NULL,
	topic_id integer NOT NULL,
	partition integer NOT NULL,
	committed_offset bigint NOT NULL CHECK (committed_offset >= 0),
	leader_epoch integer NOT NULL DEFAULT -1,
	metadata text,
	-- on a cluster, the leader epoch of the group's partition of
	-- __consumer_offsets in which this node staged the row (-1 standalone):
	-- a node that starts leading the partition rebuilds the rows of older
	-- epochs from its log and keeps those staged since
	staged_epoch integer NOT NULL DEFAULT -1,
	PRIMARY KEY (producer_id, group_id, topic_id, partition),
	FOREIGN KEY (topic_id, partition) REFERENCES streamlog.partition ON DELETE CASCADE
);
SELECT pg_catalog.pg_extension_config_dump('streamlog.txn_pending_offset', '');
REVOKE ALL ON streamlog.txn_pending_offset FROM PUBLIC;

-- The transactional ids and their transactions, with topic names
CREATE VIEW streamlog.transactions AS
SELECT s.transactional_id, s.producer_id, s.producer_epoch,
	   (ARRAY['Empty', 'Ongoing', 'PrepareCommit', 'PrepareAbort', 'CompleteCommit',
			  'CompleteAbort', 'Dead', 'PrepareEpochFence'])[s.state + 1] AS state,
	   s.timeout_ms, s.started_at, s.updated_at,
	   ARRAY(SELECT t.name || '-' || u.p
			   FROM unnest(s.topic_ids, s.partitions) WITH ORDINALITY AS u(t, p, i)
			   JOIN streamlog.topic t ON t.topic_id = u.t
			  ORDER BY u.i) AS partitions,
	   s.groups
  FROM streamlog.txn_state s;
REVOKE ALL ON streamlog.transactions FROM PUBLIC;

-- SQL consume() on any node of a cluster (README, "SQL consume() on any
-- node").  A node that does not coordinate the group claims and advances
-- the group's partitions in a transaction on the coordinator, prepared at
-- the caller's commit and committed after it.
--
-- On the consuming node: what each committed consume() advanced, under the
-- gid of the coordinator's prepared transaction, until the resolver (in
-- the forwarder worker) has settled it there.
CREATE TABLE streamlog.consume_intent (
	gid text NOT NULL,
	coordinator integer NOT NULL,
	group_id text NOT NULL,
	topic_id integer NOT NULL,
	partition integer NOT NULL,
	from_offset bigint NOT NULL,
	to_offset bigint NOT NULL,
	PRIMARY KEY (gid, topic_id, partition)
);
SELECT pg_catalog.pg_extension_config_dump('streamlog.consume_intent', '');
-- On the coordinator: the gids of remote consumers' transactions that
-- committed here and whose __consumer_offsets records are still to write.
CREATE TABLE streamlog.remote_claim (
	gid text NOT NULL,
	group_id text NOT NULL,
	topic_id integer NOT NULL,
	PRIMARY KEY (gid, group_id, topic_id)
);
SELECT pg_catalog.pg_extension_config_dump('streamlog.remote_claim', '');
-- The side channel a consuming node calls on the coordinator, inside its
-- remote transaction.  Superuser only (checked in C, and not granted): the
-- caller's node checked the caller's privileges.
--
-- Claim partitions for the group as a local consume() would (SKIP LOCKED,
-- least recently served first), judged by the high watermarks and log
-- starts of the reading node; partitions in tried are not tried again.
-- Returns every partition tried, committed_offset -1 for one not claimed.
CREATE FUNCTION streamlog._group_claim(group_id text, topic_id integer, hwms bigint[],
									   log_starts bigint[], wanted bigint, tried integer[])
	RETURNS TABLE (partition integer, committed_offset bigint)
	AS 'MODULE_PATHNAME', 'streamlog__group_claim' LANGUAGE C STRICT VOLATILE;
-- Advance claimed partitions in the transaction that will be prepared
-- (their __consumer_offsets records come with _group_settle), marking gid.
CREATE FUNCTION streamlog._group_advance(gid text, group_id text, topic_id integer,
										 partitions integer[], offsets bigint[])
	RETURNS void
	AS 'MODULE_PATHNAME', 'streamlog__group_advance' LANGUAGE C STRICT VOLATILE;
-- After the prepared transaction gid committed (gid NULL: after it was lost
-- with a coordinator that failed over), write the records of the advance
-- from from_offsets to to_offsets, advancing where the group is still at the
-- from offset.  Returns 'settled', 'done' (nothing left for gid here),
-- 'moved' (this node no longer coordinates the group) or 'conflict' (some
-- partition was at neither offset: the WARNING names it).
CREATE FUNCTION streamlog._group_settle(gid text, group_id text, topic_id integer,
										partitions integer[], from_offsets bigint[],
										to_offsets bigint[])
	RETURNS text
	AS 'MODULE_PATHNAME', 'streamlog__group_settle' LANGUAGE C VOLATILE;
REVOKE EXECUTE ON FUNCTION
	streamlog._group_claim(text, integer, bigint[], bigint[], bigint, integer[]),
	streamlog._group_advance(text, text, integer, integer[], bigint[]),
	streamlog._group_settle(text, text, integer, integer[], bigint[], bigint[]) FROM PUBLIC;

-- The last stable offset without a query (lsocache): what a partition's
-- shared state knows of its transactions (known false on a standby, which
-- always queries), open_transactions an upper bound, and how many LSOs
-- were computed with the query on streamlog.txn_open and without it since
-- the state was loaded.
CREATE FUNCTION streamlog.partition_lso_cache(topic text, partition integer,
											  OUT known boolean,
											  OUT open_transactions integer,
											  OUT may_have_aborted boolean,
											  OUT lso_queries bigint,
											  OUT lso_skipped bigint)
	AS 'MODULE_PATHNAME', 'streamlog_partition_lso_cache' LANGUAGE C STRICT VOLATILE;

-- Transaction admin (issue 14): the producers of every partition, as
-- DescribeProducers (KIP-664) answers them: the producers each
-- partition's sequence checks know, where each one's open transaction
-- starts (NULL without one), the time of its newest batch or marker and
-- the coordinator epoch of its newest marker (NULL if not known).  Topics the caller may READ, as the Kafka API.
CREATE FUNCTION streamlog._partition_producers(
	OUT topic_id integer, OUT partition integer, OUT producer_id bigint,
	OUT producer_epoch smallint, OUT last_sequence integer,
	OUT last_timestamp timestamptz, OUT coordinator_epoch integer)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'streamlog_partition_producers' LANGUAGE C VOLATILE;
REVOKE EXECUTE ON FUNCTION streamlog._partition_producers() FROM PUBLIC;
CREATE VIEW streamlog.producers WITH (security_barrier) AS
SELECT t.name AS topic, p.partition, p.producer_id, p.producer_epoch, p.last_sequence,
	   o.first_offset AS current_txn_start_offset, p.last_timestamp, p.coordinator_epoch
  FROM streamlog._partition_producers() p
  JOIN streamlog.topic t USING (topic_id)
  LEFT JOIN streamlog.txn_open o
	ON o.topic_id = p.topic_id AND o.partition = p.partition AND o.producer_id = p.producer_id
 WHERE streamlog.has_privilege('read', 'topic', t.name);
GRANT SELECT ON streamlog.producers TO PUBLIC;

-- Transactions on a cluster (issue 14): the transaction coordinator's side
-- channel to a partition's leader (README, "Transactions on a cluster").
-- _txn_write_marker writes a transaction's marker on a partition this node
-- leads (and, on a partition of __consumer_offsets, makes the producer's
-- offsets of TxnOffsetCommit visible); _txn_marker_replicated waits until
-- the partition's in-sync replicas hold it.  Internal: superusers only.
CREATE FUNCTION streamlog._txn_write_marker(topic_id integer, partition integer,
											producer_id bigint, producer_epoch smallint,
											commit boolean, coordinator_epoch integer,
											OUT marker_offset bigint, OUT leader_epoch integer)
	AS 'MODULE_PATHNAME', 'streamlog__txn_write_marker' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION streamlog._txn_marker_replicated(topic_id integer, partition integer,
												 leader_epoch integer, marker_offset bigint,
												 timeout_ms integer)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'streamlog__txn_marker_replicated' LANGUAGE C STRICT VOLATILE;
REVOKE EXECUTE ON FUNCTION
	streamlog._txn_write_marker(integer, integer, bigint, smallint, boolean, integer),
	streamlog._txn_marker_replicated(integer, integer, integer, bigint, integer) FROM PUBLIC;

-- Observability (issue 15): counters kept in shared memory by the Kafka
-- broker, the SQL functions and the workers (streamlog.track_metrics), in
-- PostgreSQL's pg_stat_* style.  Since the last streamlog.stat_reset();
-- nothing is stored in tables.  The operators' (streamlog_admin and
-- pg_monitor), as broker_stats.
CREATE FUNCTION streamlog._stat_api(
	OUT api_key smallint, OUT api text, OUT api_version smallint,
	OUT requests bigint, OUT errors bigint, OUT throttle_time_ms bigint,
	OUT p50_ms double precision, OUT p90_ms double precision,
	OUT p99_ms double precision, OUT mean_ms double precision,
	OUT queue_mean_ms double precision, OUT queue_p99_ms double precision,
	OUT local_mean_ms double precision, OUT local_p99_ms double precision,
	OUT remote_mean_ms double precision, OUT remote_p99_ms double precision,
	OUT send_mean_ms double precision, OUT send_p99_ms double precision,
	OUT total_time_ms bigint)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'streamlog_stat_api' LANGUAGE C VOLATILE;

-- Per Kafka API and version: requests answered, those with an error, and
-- their latency from the histograms (milliseconds, within a factor of
-- two: buckets double), split as Kafka's RequestMetrics: queue (read to
-- handled), local (in the handler), remote (parked: Fetch waiting for
-- data, JoinGroup for its group, acks=all Produce for replicas), send
CREATE VIEW streamlog.stat_api AS
SELECT api, api_version, requests, errors, p50_ms, p90_ms, p99_ms, mean_ms,
	   queue_mean_ms, queue_p99_ms, local_mean_ms, local_p99_ms,
	   remote_mean_ms, remote_p99_ms, send_mean_ms, send_p99_ms,
	   throttle_time_ms, total_time_ms, api_key
  FROM streamlog._stat_api();

CREATE FUNCTION streamlog._stat_api_errors(
	OUT api_key smallint, OUT api text, OUT error_code smallint,
	OUT error text, OUT count bigint)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'streamlog_stat_api_errors' LANGUAGE C VOLATILE;

-- Per Kafka API: the error codes answered, one per failed partition
-- (Kafka's ErrorsPerSec)
CREATE VIEW streamlog.stat_api_errors AS
SELECT api, error, count, api_key, error_code FROM streamlog._stat_api_errors();

CREATE FUNCTION streamlog._stat_partitions(
	OUT database oid, OUT catalog oid, OUT topic_id integer, OUT partition integer,
	OUT door text, OUT bytes_in bigint, OUT records_in bigint,
	OUT bytes_out bigint, OUT records_out bigint,
	OUT produce_requests bigint, OUT produce_failed bigint,
	OUT fetch_requests bigint, OUT fetch_failed bigint)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'streamlog_stat_partitions' LANGUAGE C VOLATILE;

-- Per partition and door (kafka, sql): bytes and records appended (in)
-- and handed out (out), produce and fetch requests and those that failed.
-- Kafka's bytes are record batches as sent; SQL's in are the batches
-- stored, out the keys, values and headers returned.  Partitions beyond
-- streamlog.metrics_max_partitions count in one row without topic.
CREATE VIEW streamlog.stat_topics AS
SELECT t.name AS topic, CASE WHEN s.topic_id >= 0 THEN s.partition END AS partition,
	   s.door, s.bytes_in, s.records_in, s.bytes_out, s.records_out,
	   s.produce_requests, s.produce_failed, s.fetch_requests, s.fetch_failed
  FROM streamlog._stat_partitions() s
  LEFT JOIN streamlog.topic t
	ON t.topic_id = s.topic_id
   AND s.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
   AND s.catalog = 'streamlog.topic'::regclass
 WHERE t.topic_id IS NOT NULL OR s.topic_id = -1;

CREATE FUNCTION streamlog._stat_connections(
	OUT pid integer, OUT listener text, OUT client_addr text, OUT client_id text,
	OUT client_software_name text, OUT client_software_version text,
	OUT principal text, OUT connected_since timestamptz, OUT request text,
	OUT request_api_key smallint, OUT request_api_version smallint,
	OUT request_since timestamptz, OUT state text)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'streamlog_stat_connections' LANGUAGE C VOLATILE;

-- The Kafka client connections open now, like pg_stat_activity: the
-- broker worker serving each, the client's address, id and software
-- (ApiVersions v3+), its principal once authenticated, and the oldest
-- request it waits an answer for
CREATE VIEW streamlog.stat_connections AS
SELECT * FROM streamlog._stat_connections();

CREATE FUNCTION streamlog._stat_listeners(
	OUT listener text, OUT connections_opened bigint, OUT connections_closed bigint,
	OUT connections_refused bigint, OUT authentications_succeeded bigint,
	OUT authentications_failed bigint)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'streamlog_stat_listeners' LANGUAGE C VOLATILE;

-- Per listener: connections accepted, closed and refused (limits), logins
-- that succeeded and failed (Kafka's failed-authentication-total)
CREATE VIEW streamlog.stat_listeners AS
SELECT l.*, (SELECT count(*) FROM streamlog._stat_connections() c
			  WHERE c.listener = l.listener) AS connections
  FROM streamlog._stat_listeners() l;

CREATE FUNCTION streamlog._stat_broker(OUT name text, OUT value bigint, OUT kind text)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'streamlog_stat_broker' LANGUAGE C VOLATILE;

-- Broker-wide counters: ISR shrinks and expands, throttle time, the
-- cleaner's passes and what they removed, slow requests logged
CREATE VIEW streamlog.stat_broker AS
SELECT * FROM streamlog._stat_broker();

-- When the counters were last reset (or the server started)
CREATE FUNCTION streamlog.stat_reset_time() RETURNS timestamptz
	AS 'MODULE_PATHNAME', 'streamlog_stat_reset_time' LANGUAGE C VOLATILE;

-- Every counter back to zero, as pg_stat_reset(): superusers, and roles
-- granted EXECUTE on it
CREATE FUNCTION streamlog.stat_reset() RETURNS void
	AS 'MODULE_PATHNAME', 'streamlog_stat_reset' LANGUAGE C VOLATILE;
REVOKE EXECUTE ON FUNCTION streamlog.stat_reset() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION streamlog._stat_api(), streamlog._stat_api_errors(),
	streamlog._stat_partitions(), streamlog._stat_connections(),
	streamlog._stat_listeners(), streamlog._stat_broker() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION streamlog._stat_api(), streamlog._stat_api_errors(),
	streamlog._stat_partitions(), streamlog._stat_connections(),
	streamlog._stat_listeners(), streamlog._stat_broker()
	TO streamlog_admin, pg_monitor;
GRANT SELECT ON streamlog.stat_api, streamlog.stat_api_errors, streamlog.stat_topics,
	streamlog.stat_connections, streamlog.stat_listeners, streamlog.stat_broker
	TO streamlog_admin, pg_monitor;
