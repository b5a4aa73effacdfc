--
-- Partition leadership on a node of its own: it leads every partition it
-- has, their only replica and in-sync replica, in epoch 0; and its catalog
-- was never synced from a cluster.  (The suite before may have left the
-- extension installed.)
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamlog;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never

SHOW streamlog.node_id;

SELECT streamlog.create_topic('lead.three', 3);
SELECT topic, partition, leader, leader_epoch, partition_epoch, replicas, isr, offline
  FROM streamlog.partitions WHERE topic = 'lead.three' ORDER BY partition;

-- Added partitions are led the same way
SELECT streamlog.add_partitions('lead.three', 2);
SELECT partition, leader, leader_epoch, partition_epoch, replicas, isr, offline
  FROM streamlog.partitions WHERE topic = 'lead.three' ORDER BY partition;

-- The catalog, where the columns live
SELECT p.partition, p.leader_id = current_setting('streamlog.node_id')::integer AS led_here,
	   p.replicas = ARRAY[p.leader_id] AS only_replica, p.isr = p.replicas AS all_in_sync
  FROM streamlog.partition p JOIN streamlog.topic t USING (topic_id)
 WHERE t.name = 'lead.three' ORDER BY p.partition;

-- Producing and reading are as ever
SELECT streamlog.produce('lead.three', NULL, 'v', partition => 4);
SELECT partition, "offset", streamlog.as_text(value) FROM streamlog.read('lead.three', 4);

-- Never synced from a cluster
SELECT applied_index FROM streamlog.cluster_sync;

-- Internal topics too
CREATE FUNCTION pg_temp.create_internal_topic(name text, partitions integer) RETURNS void
	AS 'streamlog', 'streamlog_create_internal_topic' LANGUAGE C;
SELECT pg_temp.create_internal_topic('__lead_internal', 2);
SELECT partition, leader, replicas, isr, offline
  FROM streamlog.partitions WHERE topic = '__lead_internal' ORDER BY partition;

SELECT streamlog.drop_topic('lead.three');
SELECT count(*) FROM streamlog.partition p JOIN streamlog.topic t USING (topic_id)
 WHERE t.name = 'lead.three';

-- Replication factor: a node of its own holds one replica of each
-- partition; 1 (or the default, 1) is fine, more is refused with a hint
SELECT streamlog.create_topic('lead.rf1', 1, '{}', 1);
SELECT streamlog.create_topic('lead.rfnull', 1, '{}', NULL);
SELECT partition, replicas, isr, offline, under_replicated
  FROM streamlog.partitions WHERE topic IN ('lead.rf1', 'lead.rfnull') ORDER BY topic, partition;
\set VERBOSITY default
SELECT streamlog.create_topic('lead.rf2', 1, '{}', 2);
SELECT streamlog.create_topic('lead.rf0', 1, '{}', 0);
\set VERBOSITY terse
SELECT count(*) FROM streamlog.topic WHERE name LIKE 'lead.rf_';
-- no ISR to change on a node of its own
SELECT * FROM streamlog._alter_partition_isr('lead.rf1', 0, 0, 0, '{0}');
-- every partition has its leader: an unclean election is not needed
SELECT * FROM streamlog.elect_leaders('lead.rf1', 0, true);
SELECT streamlog.drop_topic('lead.rf1');
SELECT streamlog.drop_topic('lead.rfnull');
