--
-- Consumer groups from SQL: consume() and its commit/rollback semantics,
-- seek(), reset_offsets(), delete_group(), the lag views, and errors.
--
CREATE EXTENSION streamlog;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY default
\set SHOW_CONTEXT never

-- consume() with keys and values as text, in partition and offset order
CREATE FUNCTION pg_temp.consume(grp text, topic text, max_records integer DEFAULT 100,
								timeout interval DEFAULT '0')
RETURNS TABLE (partition integer, "offset" bigint, key text, value text)
LANGUAGE sql AS $$
	SELECT c.partition, c."offset", streamlog.as_text(c.key), streamlog.as_text(c.value)
	  FROM streamlog.consume(grp, topic, max_records, timeout) c
	 ORDER BY 1, 2
$$;

-- The lag view without its timestamps
CREATE VIEW pg_temp.lag AS
SELECT group_id, topic, partition, committed_offset, high_watermark, lag,
	   committed_at IS NOT NULL AS has_commit_time
  FROM streamlog.consumer_lag
 ORDER BY group_id, topic, partition;

SELECT streamlog.create_topic('grp.one');
SELECT streamlog.produce('grp.one', 'k' || g, 'v' || g) FROM generate_series(0, 4) g;

--
-- A new group starts at the beginning, and each call goes on where the
-- last committed one stopped
--
SELECT * FROM pg_temp.consume('g1', 'grp.one', 2);
SELECT * FROM pg_temp.lag;
SELECT * FROM pg_temp.consume('g1', 'grp.one', 2);
SELECT * FROM pg_temp.consume('g1', 'grp.one');
SELECT * FROM pg_temp.consume('g1', 'grp.one');
SELECT * FROM pg_temp.lag;
-- the result has read()'s columns
SELECT partition, "offset", ts IS NOT NULL AS has_ts, key, value, headers
  FROM streamlog.consume('g1', 'grp.one');

--
-- Rollback: the records are returned again; commit: they are consumed
--
SELECT streamlog.produce('grp.one', NULL, 'v' || g) FROM generate_series(5, 7) g;
BEGIN;
SELECT * FROM pg_temp.consume('g1', 'grp.one');
SELECT committed_offset FROM pg_temp.lag WHERE group_id = 'g1';
ROLLBACK;
SELECT committed_offset FROM pg_temp.lag WHERE group_id = 'g1';
BEGIN;
SELECT * FROM pg_temp.consume('g1', 'grp.one', 1);
-- a second call in the same transaction goes on from the first
SELECT * FROM pg_temp.consume('g1', 'grp.one', 1);
-- a rolled-back savepoint takes back what was consumed within it
SAVEPOINT s;
SELECT * FROM pg_temp.consume('g1', 'grp.one', 1);
ROLLBACK TO SAVEPOINT s;
SELECT * FROM pg_temp.consume('g1', 'grp.one', 1);
COMMIT;
SELECT * FROM pg_temp.consume('g1', 'grp.one');
-- the work done with the records and the offsets commit together
CREATE TABLE processed (value text);
SELECT streamlog.produce('grp.one', NULL, 'v' || g) FROM generate_series(8, 9) g;
BEGIN;
INSERT INTO processed SELECT value FROM pg_temp.consume('g1', 'grp.one');
ROLLBACK;
INSERT INTO processed SELECT value FROM pg_temp.consume('g1', 'grp.one');
SELECT * FROM processed;
SELECT * FROM pg_temp.consume('g1', 'grp.one');
-- a statement that fails commits nothing
SELECT streamlog.produce('grp.one', NULL, 'v10');
SELECT c.value, 1 / (c."offset" - 10) FROM streamlog.consume('g1', 'grp.one') c;
SELECT * FROM pg_temp.consume('g1', 'grp.one');
-- in a REPEATABLE READ transaction too
SELECT streamlog.produce('grp.one', NULL, 'v11');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM processed;
SELECT * FROM pg_temp.consume('g1', 'grp.one');
COMMIT;

--
-- Groups are independent of each other
--
SELECT * FROM pg_temp.consume('g2', 'grp.one', 3);
SELECT group_id, committed_offset, lag FROM pg_temp.lag;

--
-- Several partitions: everything there is, then least recently served
-- first, so a busy partition does not starve the others
--
SELECT streamlog.create_topic('grp.three', 3);
SELECT streamlog.produce('grp.three', NULL, format('p%s-%s', p, i), partition => p)
  FROM generate_series(0, 2) p, generate_series(0, 1) i;
SELECT * FROM pg_temp.consume('g3', 'grp.three');
SELECT streamlog.produce('grp.three', NULL, format('p%s-2', p), partition => p)
  FROM generate_series(0, 2) p;
CREATE TEMP TABLE got AS SELECT * FROM pg_temp.consume('g3', 'grp.three', 1);
INSERT INTO got SELECT * FROM pg_temp.consume('g3', 'grp.three', 1);
INSERT INTO got SELECT * FROM pg_temp.consume('g3', 'grp.three', 1);
SELECT * FROM got ORDER BY partition;
-- ten new records in partition 0, one in each of the others
SELECT streamlog.produce('grp.three', NULL, 'busy', partition => 0) FROM generate_series(1, 10);
SELECT streamlog.produce('grp.three', NULL, 'quiet', partition => p) FROM generate_series(1, 2) p;
TRUNCATE got;
INSERT INTO got SELECT * FROM pg_temp.consume('g3', 'grp.three', 2);
INSERT INTO got SELECT * FROM pg_temp.consume('g3', 'grp.three', 2);
INSERT INTO got SELECT * FROM pg_temp.consume('g3', 'grp.three', 2);
SELECT partition, count(*), min(value), max(value) FROM got GROUP BY 1 ORDER BY 1;
SELECT * FROM pg_temp.lag WHERE group_id = 'g3';

--
-- Waiting: with nothing to read, a consumer waits up to its timeout
--
SELECT count(*) FROM pg_temp.consume('g3', 'grp.three', 100, '10 ms');
SELECT * FROM pg_temp.consume('g3', 'grp.three', 100, '10 ms');

--
-- Retention: a new group starts at the log start offset, and committed
-- offsets below it move up to it
--
SELECT streamlog.create_topic('grp.trim');
SELECT streamlog.produce('grp.trim', NULL, 'v' || g) FROM generate_series(0, 5) g;
SELECT * FROM pg_temp.consume('g4', 'grp.trim', 2);
SELECT streamlog.delete_records('grp.trim', 0, 4);
SELECT * FROM pg_temp.consume('g4', 'grp.trim', 1);
SELECT * FROM pg_temp.consume('g5', 'grp.trim');
SELECT streamlog.delete_records('grp.trim', 0, -1);
SELECT * FROM pg_temp.lag WHERE topic = 'grp.trim';
SELECT * FROM pg_temp.consume('g4', 'grp.trim');
SELECT * FROM pg_temp.lag WHERE topic = 'grp.trim';

--
-- seek(): anywhere from the log start offset to the high watermark
--
SELECT streamlog.seek('g1', 'grp.one', 0, 3);
SELECT * FROM pg_temp.consume('g1', 'grp.one', 2);
SELECT streamlog.seek('g1', 'grp.one', 0, 12);
SELECT * FROM pg_temp.consume('g1', 'grp.one');
-- a group that never consumed
SELECT streamlog.seek('g6', 'grp.one', 0, 11);
SELECT * FROM pg_temp.consume('g6', 'grp.one');
-- rolled back: the offset stays
BEGIN;
SELECT streamlog.seek('g6', 'grp.one', 0, 0);
ROLLBACK;
SELECT committed_offset FROM pg_temp.lag WHERE group_id = 'g6';
-- out of range: 22023 with the valid range; nothing changes
CALL regress.expect_error($$SELECT streamlog.seek('g6', 'grp.one', 0, -1)$$);
CALL regress.expect_error($$SELECT streamlog.seek('g6', 'grp.one', 0, 13)$$);
CALL regress.expect_error($$SELECT streamlog.seek('g6', 'grp.trim', 0, 3)$$);
CALL regress.expect_error($$SELECT streamlog.seek('g6', 'grp.one', 1, 0)$$);
CALL regress.expect_error($$SELECT streamlog.seek('g6', 'grp.one', -1, 0)$$);
SELECT group_id, committed_offset FROM pg_temp.lag WHERE group_id = 'g6';

--
-- reset_offsets(): to the earliest or latest offsets, or to a time
--
SELECT * FROM streamlog.reset_offsets('g3', 'grp.three', 'earliest');
SELECT count(*) FROM pg_temp.consume('g3', 'grp.three');
SELECT * FROM streamlog.reset_offsets('g3', 'grp.three', reset_to => 'latest');
SELECT * FROM pg_temp.consume('g3', 'grp.three');
SELECT streamlog.create_topic('grp.time', 2);
SELECT streamlog.produce('grp.time', NULL, 'day ' || d, partition => 0,
						 ts => timestamptz '2024-01-01 00:00:00+00' + d * interval '1 day')
  FROM generate_series(0, 2) d;
SELECT streamlog.produce('grp.time', NULL, 'early', partition => 1,
						 ts => timestamptz '2023-12-31 00:00:00+00');
SELECT * FROM streamlog.reset_offsets('g7', 'grp.time', timestamptz '2024-01-02 00:00:00+00');
SELECT * FROM pg_temp.consume('g7', 'grp.time');
SELECT * FROM streamlog.reset_offsets('g7', 'grp.time', reset_to => timestamptz '2000-01-01 00:00:00+00');
SELECT * FROM pg_temp.consume('g7', 'grp.time');
CALL regress.expect_error($$SELECT * FROM streamlog.reset_offsets('g7', 'grp.time', 'oldest')$$);
CALL regress.expect_error($$SELECT * FROM streamlog.reset_offsets('g7', 'grp.time', '2024-01-02')$$);
CALL regress.expect_error($$SELECT * FROM streamlog.reset_offsets('g7', 'grp.missing', 'earliest')$$);

--
-- The views, for every group
--
SELECT * FROM pg_temp.lag;
SELECT group_id, topics, partitions, total_lag, last_commit IS NOT NULL AS has_last_commit
  FROM streamlog.consumer_groups ORDER BY group_id;

--
-- delete_group()
--
SELECT streamlog.delete_group('g2');
SELECT group_id FROM streamlog.consumer_groups ORDER BY group_id;
-- a deleted group starts again from the beginning
SELECT * FROM pg_temp.consume('g2', 'grp.one', 1);
CALL regress.expect_error($$SELECT streamlog.delete_group('g.missing')$$);
SELECT streamlog.delete_group('g.missing', if_exists => true);
-- dropping a topic drops the groups' offsets of it
SELECT streamlog.drop_topic('grp.trim');
SELECT DISTINCT topic FROM streamlog.consumer_lag ORDER BY topic;
SELECT group_id, topics FROM streamlog.consumer_groups ORDER BY group_id;

--
-- Bad input
--
-- unknown topic: 42704
CALL regress.expect_error($$SELECT * FROM streamlog.consume('g1', 'grp.missing')$$);
CALL regress.expect_error($$SELECT streamlog.seek('g1', 'grp.missing', 0, 0)$$);
-- NULL arguments: 22004
CALL regress.expect_error($$SELECT * FROM streamlog.consume(NULL, 'grp.one')$$);
CALL regress.expect_error($$SELECT * FROM streamlog.consume('g1', NULL)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.consume('g1', 'grp.one', NULL)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.consume('g1', 'grp.one', 1, NULL)$$);
CALL regress.expect_error($$SELECT streamlog.seek(NULL, 'grp.one', 0, 0)$$);
CALL regress.expect_error($$SELECT streamlog.seek('g1', NULL, 0, 0)$$);
CALL regress.expect_error($$SELECT streamlog.seek('g1', 'grp.one', NULL, 0)$$);
CALL regress.expect_error($$SELECT streamlog.seek('g1', 'grp.one', 0, NULL)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.reset_offsets(NULL, 'grp.one', 'earliest')$$);
CALL regress.expect_error($$SELECT * FROM streamlog.reset_offsets('g1', NULL, 'earliest')$$);
CALL regress.expect_error($$SELECT * FROM streamlog.reset_offsets('g1', 'grp.one', NULL::text)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.reset_offsets('g1', 'grp.one', NULL::timestamptz)$$);
CALL regress.expect_error($$SELECT streamlog.delete_group(NULL)$$);
CALL regress.expect_error($$SELECT streamlog.delete_group('g1', NULL)$$);
-- invalid values: 22023
CALL regress.expect_error($$SELECT * FROM streamlog.consume('', 'grp.one')$$);
CALL regress.expect_error($$SELECT * FROM streamlog.consume('g1', 'grp.one', 0)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.consume('g1', 'grp.one', -5)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.consume('g1', 'grp.one', 1, '-1 s')$$);
-- none of it changed an offset
SELECT * FROM pg_temp.lag;

-- Kafka "consumer" protocol assignments decode into (topic, partition)
SELECT * FROM streamlog.consumer_assignment('\x000000000002000174000000020000000000000002000275760000000100000005ffffffff'::bytea);
-- bytes of another protocol give nothing, not an error
SELECT count(*) FROM streamlog.consumer_assignment('\x0102'::bytea);
SELECT count(*) FROM streamlog.group_assignments;
