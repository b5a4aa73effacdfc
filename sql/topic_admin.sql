--
-- Topic administration: create, describe, alter, resize and drop topics.
--
CREATE EXTENSION streamlog;
SET timezone = 'UTC';
\set VERBOSITY default
\set SHOW_CONTEXT never

-- A topic with one partition and the default configuration
SELECT streamlog.create_topic('admin.single');

-- Several partitions, with configs given as strings and as JSON numbers;
-- enum values are matched case-insensitively and stored in Kafka's spelling
SELECT streamlog.create_topic('admin-multi', 4,
	'{"retention.ms": "86400000", "compression.type": "LZ4"}');
SELECT streamlog.create_topic('admin_numbers', 2,
	'{"retention.ms": 3600000, "max.message.bytes": 2048, "message.timestamp.type": "logappendtime"}');

-- A NULL config is the same as none
SELECT streamlog.create_topic('admin.nullconfig', 1, NULL);

SELECT topic, partitions, config->>'retention.ms' AS "retention.ms",
	   config->>'compression.type' AS "compression.type",
	   config->>'max.message.bytes' AS "max.message.bytes",
	   config->>'message.timestamp.type' AS "message.timestamp.type"
  FROM streamlog.topics ORDER BY topic COLLATE "C";

-- The view shows every config, explicit or default
SELECT config FROM streamlog.topics WHERE topic = 'admin-multi';

-- created_at is the creating transaction's time
SELECT count(*) FROM streamlog.topics WHERE created_at > now() - interval '1 hour' AND created_at <= now();

-- The catalog stores only what was set explicitly, normalized to strings
SELECT name, partition_count, config FROM streamlog.topic ORDER BY name COLLATE "C";

-- Every partition starts empty, with one segment
SELECT topic, partition, log_start_offset, high_watermark, records, segments
  FROM streamlog.partitions ORDER BY topic COLLATE "C", partition;

-- Producing moves the high watermark of the partition written to
SELECT streamlog.produce('admin.single', NULL, 'v' || i) FROM generate_series(1, 3) i;
SELECT streamlog.produce('admin-multi', NULL, 'x', partition => 2);
SELECT topic, partition, log_start_offset, high_watermark, records, segments
  FROM streamlog.partitions WHERE topic IN ('admin.single', 'admin-multi')
 ORDER BY topic COLLATE "C", partition;

--
-- topic_config(): every config in name order, and whether it is a default
--
SELECT name, value, is_default FROM streamlog.topic_config('admin.single') ORDER BY name COLLATE "C";
SELECT name, value, is_default FROM streamlog.topic_config('admin-multi') ORDER BY name COLLATE "C";
SELECT name, value FROM streamlog.topic_config('admin_numbers') WHERE NOT is_default ORDER BY name COLLATE "C";

--
-- alter_topic(): set, change, and reset (null) configs
--
SELECT streamlog.alter_topic('admin.single', '{"retention.ms": "86400000", "segment.bytes": 1048576}');
SELECT name, value, is_default FROM streamlog.topic_config('admin.single')
 WHERE name IN ('retention.ms', 'segment.bytes', 'cleanup.policy') ORDER BY name COLLATE "C";
-- changing one config leaves the others as they were
SELECT streamlog.alter_topic('admin.single', '{"retention.ms": 172800000}');
SELECT name, value, is_default FROM streamlog.topic_config('admin.single')
 WHERE name IN ('retention.ms', 'segment.bytes') ORDER BY name COLLATE "C";
-- null puts a config back to its default
SELECT streamlog.alter_topic('admin.single', '{"retention.ms": null}');
SELECT name, value, is_default FROM streamlog.topic_config('admin.single')
 WHERE name IN ('retention.ms', 'segment.bytes') ORDER BY name COLLATE "C";
SELECT config FROM streamlog.topic WHERE name = 'admin.single';
-- resetting a config that was never set is harmless
SELECT streamlog.alter_topic('admin.single', '{"partitioner": null}');
SELECT config FROM streamlog.topic WHERE name = 'admin.single';
-- an empty change changes nothing
SELECT streamlog.alter_topic('admin.single', '{}');
SELECT config FROM streamlog.topic WHERE name = 'admin.single';
-- a failed alter changes nothing either
SELECT streamlog.alter_topic('admin.single', '{"segment.bytes": 2048, "retention.ms": "soon"}');
SELECT config FROM streamlog.topic WHERE name = 'admin.single';
-- the records already produced are still there
SELECT topic, partition, high_watermark, records FROM streamlog.partitions
 WHERE topic = 'admin.single';

--
-- Every topic config of Kafka is accepted, checked as Kafka checks it, and
-- stored the way Kafka stores it, even the ones streamlog does not act on
--
SELECT streamlog.create_topic('admin.kafka-configs', 1,
	'{"min.insync.replicas": 2, "delete.retention.ms": "3600000", "flush.ms": " 1000",
	  "message.format.version": "2.8", "min.cleanable.dirty.ratio": ".25",
	  "preallocate": "TRUE", "unclean.leader.election.enable": false,
	  "follower.replication.throttled.replicas": "0:1 , 1:1", "local.retention.ms": -2,
	  "compression.zstd.level": -7, "segment.jitter.ms": 10}');
SELECT name, value FROM streamlog.topic_config('admin.kafka-configs')
 WHERE NOT is_default ORDER BY name COLLATE "C";
-- what Kafka says of each config: its type, source, flags, synonym, and
-- whether streamlog acts on it
SELECT name, value, type, source, is_read_only, is_sensitive, synonym, enforced
  FROM streamlog.topic_config('admin.kafka-configs') ORDER BY name COLLATE "C";
SELECT count(*) AS configs, count(*) FILTER (WHERE doc <> '') AS documented
  FROM streamlog.topic_config('admin.kafka-configs');
SELECT streamlog.alter_topic('admin.kafka-configs',
	'{"min.insync.replicas": null, "max.compaction.lag.ms": 5000, "min.compaction.lag.ms": 5000,
	  "leader.replication.throttled.replicas": "*", "message.downconversion.enable": "false"}');
SELECT name, value FROM streamlog.topic_config('admin.kafka-configs')
 WHERE NOT is_default ORDER BY name COLLATE "C";
-- invalid values: type, range, enum; nothing changes
SELECT streamlog.alter_topic('admin.kafka-configs', '{"min.insync.replicas": 0}');
SELECT streamlog.alter_topic('admin.kafka-configs', '{"min.cleanable.dirty.ratio": 1.01}');
SELECT streamlog.alter_topic('admin.kafka-configs', '{"min.cleanable.dirty.ratio": "half"}');
SELECT streamlog.alter_topic('admin.kafka-configs', '{"message.format.version": "3.10"}');
SELECT streamlog.alter_topic('admin.kafka-configs', '{"preallocate": "yes"}');
SELECT streamlog.alter_topic('admin.kafka-configs', '{"local.retention.bytes": -3}');
SELECT streamlog.alter_topic('admin.kafka-configs', '{"segment.index.bytes": 3}');
SELECT streamlog.alter_topic('admin.kafka-configs', '{"compression.gzip.level": 10}');
SELECT streamlog.alter_topic('admin.kafka-configs', '{"leader.replication.throttled.replicas": "*,0:1"}');
SELECT streamlog.alter_topic('admin.kafka-configs', '{"min.compaction.lag.ms": 5001}');
SELECT streamlog.alter_topic('admin.kafka-configs', '{"remote.storage.enable": true}');
SELECT streamlog.alter_topic('admin.kafka-configs', '{"log.retention.hours": 1}');
SELECT config FROM streamlog.topic WHERE name = 'admin.kafka-configs';
SELECT streamlog.drop_topic('admin.kafka-configs');

--
-- add_partitions(): returns the new partition count
--
SELECT streamlog.add_partitions('admin.single', 2);
SELECT streamlog.add_partitions('admin.single', 1);
SELECT topic, partitions FROM streamlog.topics WHERE topic = 'admin.single';
SELECT topic, partition, log_start_offset, high_watermark, records, segments
  FROM streamlog.partitions WHERE topic = 'admin.single' ORDER BY partition;
-- the new partitions take records
SELECT streamlog.produce('admin.single', NULL, 'new', partition => 3);
SELECT partition, "offset", streamlog.as_text(value) AS value
  FROM streamlog.read('admin.single', 3);

--
-- drop_topic()
--
SELECT streamlog.drop_topic('admin.nullconfig');
SELECT topic FROM streamlog.topics ORDER BY topic COLLATE "C";
SELECT streamlog.drop_topic('admin.nullconfig', if_exists => true);
SELECT streamlog.drop_topic('admin.never-was', true);
-- dropping removes the partitions and their segment tables
SELECT streamlog.drop_topic('admin_numbers');
SELECT count(*) FROM streamlog.partition p JOIN streamlog.topic t USING (topic_id)
 WHERE t.name = 'admin_numbers';
SELECT (SELECT count(*) FROM streamlog.segment) AS segments,
	   (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'streamlog_data' AND c.relkind = 'r') AS segment_tables;
-- a topic of the same name starts afresh
SELECT streamlog.create_topic('admin_numbers', 1);
SELECT topic, partition, log_start_offset, high_watermark, records, segments
  FROM streamlog.partitions WHERE topic = 'admin_numbers';
SELECT name, value FROM streamlog.topic_config('admin_numbers') WHERE NOT is_default;

--
-- '.' and '_' collide in topic names, as in Kafka
--
SELECT streamlog.create_topic('admin.a.b');
SELECT streamlog.create_topic('admin.a_b');
SELECT streamlog.create_topic('admin_a_b');
SELECT topic FROM streamlog.topics WHERE topic LIKE 'admin%a%b' ORDER BY topic COLLATE "C";
-- once the first is gone, the other name is free
SELECT streamlog.drop_topic('admin.a.b');
SELECT streamlog.create_topic('admin_a_b');
SELECT topic FROM streamlog.topics WHERE topic LIKE 'admin%a%b' ORDER BY topic COLLATE "C";
-- names that differ only in case are different topics
SELECT streamlog.create_topic('Admin_A_B');
SELECT topic FROM streamlog.topics WHERE lower(topic) LIKE 'admin%a%b' ORDER BY topic COLLATE "C";

--
-- Topic changes are transactional
--
BEGIN;
SELECT streamlog.create_topic('admin.rolled-back', 3);
SELECT streamlog.produce('admin.rolled-back', 'k', 'v');
SELECT topic, partitions FROM streamlog.topics WHERE topic = 'admin.rolled-back';
ROLLBACK;
SELECT count(*) FROM streamlog.topics WHERE topic = 'admin.rolled-back';
SELECT count(*) FROM streamlog.topic WHERE name = 'admin.rolled-back';
SELECT (SELECT count(*) FROM streamlog.segment) AS segments,
	   (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'streamlog_data' AND c.relkind = 'r') AS segment_tables;
SELECT * FROM streamlog.topic_config('admin.rolled-back');
-- and the name can be used again
SELECT streamlog.create_topic('admin.rolled-back', 1);
SELECT topic, partition, high_watermark FROM streamlog.partitions
 WHERE topic = 'admin.rolled-back';

-- A rolled-back drop leaves the topic and its records
BEGIN;
SELECT streamlog.drop_topic('admin.single');
SELECT count(*) FROM streamlog.topics WHERE topic = 'admin.single';
ROLLBACK;
SELECT topic, partition, high_watermark, records FROM streamlog.partitions
 WHERE topic = 'admin.single' ORDER BY partition;
SELECT "offset", streamlog.as_text(value) AS value FROM streamlog.read('admin.single', 0)
 ORDER BY "offset";

-- The same, when the drop is rolled back to a savepoint
BEGIN;
SAVEPOINT s;
SELECT streamlog.drop_topic('admin.single');
ROLLBACK TO s;
SELECT streamlog.produce('admin.single', NULL, 'v4', partition => 0);
COMMIT;
SELECT "offset", streamlog.as_text(value) AS value FROM streamlog.read('admin.single', 0)
 ORDER BY "offset";

-- A rolled-back alter or add_partitions leaves the topic as it was
BEGIN;
SELECT streamlog.alter_topic('admin-multi', '{"retention.ms": "5"}');
SELECT streamlog.add_partitions('admin-multi', 4);
SELECT topic, partitions, config->>'retention.ms' AS "retention.ms"
  FROM streamlog.topics WHERE topic = 'admin-multi';
SELECT streamlog.produce('admin-multi', NULL, 'gone', partition => 5);
SELECT topic, partition, high_watermark FROM streamlog.partitions
 WHERE topic = 'admin-multi' AND partition >= 4 ORDER BY partition;
ROLLBACK;
SELECT topic, partitions, config->>'retention.ms' AS "retention.ms"
  FROM streamlog.topics WHERE topic = 'admin-multi';
SELECT count(*) FROM streamlog.partitions WHERE topic = 'admin-multi';
-- partitions added again later are new and empty, and take records
SELECT streamlog.add_partitions('admin-multi', 2);
SELECT topic, partition, log_start_offset, high_watermark, records, segments
  FROM streamlog.partitions WHERE topic = 'admin-multi' ORDER BY partition;
SELECT streamlog.produce('admin-multi', NULL, 'kept', partition => 5);
SELECT partition, "offset", streamlog.as_text(value) AS value
  FROM streamlog.read('admin-multi', 5);

--
-- End-of-transaction work and savepoints (src/storage/xact.c): a rolled-back
-- savepoint takes back the deletions and drops made in it, what commits is
-- published, and records deleted before their topic is dropped in the same
-- transaction leave nothing to a topic created under that name later
--
SELECT streamlog.create_topic('admin.xact');
SELECT count(streamlog.produce('admin.xact', NULL, 'r' || i)) FROM generate_series(0, 4) i;
BEGIN;
SAVEPOINT before_delete;
SELECT streamlog.delete_records('admin.xact', 0, 3);
SAVEPOINT before_drop;
SELECT streamlog.drop_topic('admin.xact');
ROLLBACK TO SAVEPOINT before_delete;
SELECT streamlog.delete_records('admin.xact', 0, 1);
COMMIT;
SELECT log_start_offset, high_watermark FROM streamlog.partitions WHERE topic = 'admin.xact';
SELECT "offset", streamlog.as_text(value) AS value FROM streamlog.read('admin.xact', 0, 1);
BEGIN;
SELECT streamlog.delete_records('admin.xact', 0, 4);
SELECT streamlog.drop_topic('admin.xact');
COMMIT;
SELECT streamlog.create_topic('admin.xact');
SELECT log_start_offset, high_watermark FROM streamlog.partitions WHERE topic = 'admin.xact';
SELECT streamlog.drop_topic('admin.xact');

--
-- Dropping the extension drops every topic with it, and a new install
-- starts from scratch: in the same session and in new ones
--
SELECT topic, streamlog.drop_topic(topic) FROM streamlog.topics
 WHERE topic <> 'admin.single' ORDER BY topic COLLATE "C";
SELECT name, value FROM streamlog.topic_config('admin.single') WHERE NOT is_default;
SET client_min_messages = warning;
DROP EXTENSION streamlog CASCADE;
RESET client_min_messages;
SELECT count(*) FROM pg_namespace WHERE nspname = 'streamlog_data';
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('streamlog', 'streamlog_data');
CREATE EXTENSION streamlog;
SELECT * FROM streamlog.topic_config('admin.single');
SELECT streamlog.produce('admin.single', NULL, 'lost');
\c
SELECT count(*) FROM streamlog.topics;
SELECT streamlog.create_topic('admin.reborn');
SELECT topic, partition, log_start_offset, high_watermark, records, segments
  FROM streamlog.partitions ORDER BY topic COLLATE "C", partition;
SELECT streamlog.produce('admin.reborn', NULL, 'first');
SELECT partition, "offset", streamlog.as_text(value) AS value
  FROM streamlog.read('admin.reborn', 0);
SELECT streamlog.drop_topic('admin.reborn');

DROP EXTENSION streamlog CASCADE;
