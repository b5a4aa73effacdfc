--
-- Log compaction: streamlog.clean(), its errors, and the view
-- streamlog.compaction.  What a pass keeps is tested against real segments
-- in test/python/test_compaction.py and test/isolation/specs/compaction_readers.spec.
-- (The suite before may have left the extension installed.)
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamlog;
RESET client_min_messages;
SET timezone = 'UTC';
\set VERBOSITY default
\set SHOW_CONTEXT never

SELECT streamlog.create_topic('cmp.changelog', 2, '{"cleanup.policy": "compact"}');
SELECT streamlog.create_topic('cmp.both', 1, '{"cleanup.policy": "compact,delete"}');
SELECT streamlog.create_topic('cmp.plain');
SELECT streamlog.produce('cmp.changelog', 'k' || g % 3, 'v' || g, partition => 0)
  FROM generate_series(1, 6) g;

-- Nothing is cleanable yet: every record is in the active segment, which
-- is never compacted; the checkpoint stays at the log start
SELECT * FROM streamlog.clean('cmp.changelog');
SELECT * FROM streamlog.clean('cmp.changelog', 1);
SELECT * FROM streamlog.clean('cmp.both');
SELECT "offset", streamlog.as_text(key), streamlog.as_text(value)
  FROM streamlog.history('cmp.changelog') ORDER BY 1;

-- The progress view: one row per partition of each compacted topic
SELECT topic, partition, cleaned_offset, dirty_ratio, dirty_bytes,
	   last_run, passes, records_removed, bytes_reclaimed, last_error
  FROM streamlog.compaction WHERE topic LIKE 'cmp.%' ORDER BY 1, 2;

-- Errors: a topic that is not compacted (22023, with how to make it one),
-- a partition or topic that does not exist, a NULL topic
CALL regress.expect_error($$SELECT * FROM streamlog.clean('cmp.plain')$$);
SELECT * FROM streamlog.clean('cmp.plain');
CALL regress.expect_error($$SELECT * FROM streamlog.clean('cmp.changelog', 2)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.clean('cmp.missing')$$);
CALL regress.expect_error($$SELECT * FROM streamlog.clean(NULL)$$);

-- A topic switched from delete to compact is cleaned from its log start
SELECT streamlog.alter_topic('cmp.plain', '{"cleanup.policy": "compact"}');
SELECT * FROM streamlog.clean('cmp.plain');
SELECT topic, partition, cleaned_offset FROM streamlog.compaction WHERE topic = 'cmp.plain';

-- Needs ALTER on the topic (or superuser, or streamlog_admin); the view
-- shows only topics the role may describe
CREATE ROLE cmp_reader;
GRANT USAGE ON SCHEMA regress TO cmp_reader;
SELECT streamlog.grant('read', 'topic', 'cmp.changelog', 'cmp_reader');
SET ROLE cmp_reader;
CALL regress.expect_error($$SELECT * FROM streamlog.clean('cmp.changelog')$$);
SELECT topic, partition FROM streamlog.compaction ORDER BY 1, 2;
RESET ROLE;
SELECT streamlog.grant('alter', 'topic', 'cmp.changelog', 'cmp_reader');
SET ROLE cmp_reader;
SELECT * FROM streamlog.clean('cmp.changelog', 0);
RESET ROLE;

-- The settings of the cleaner
SHOW streamlog.log_cleaner_enable;
SHOW streamlog.log_cleaner_dedupe_buffer_size;
SHOW streamlog.log_cleaner_io_max_bytes_per_second;

-- Clean up
SELECT streamlog.revoke('read', 'topic', 'cmp.changelog', 'cmp_reader');
SELECT streamlog.revoke('alter', 'topic', 'cmp.changelog', 'cmp_reader');
REVOKE USAGE ON SCHEMA regress FROM cmp_reader;
DROP ROLE cmp_reader;
SELECT streamlog.drop_topic('cmp.changelog');
SELECT streamlog.drop_topic('cmp.both');
SELECT streamlog.drop_topic('cmp.plain');
