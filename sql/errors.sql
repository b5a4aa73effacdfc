--
-- Errors, each with its SQLSTATE.
--
CREATE EXTENSION streamlog;
SET timezone = 'UTC';
\set VERBOSITY default
\set SHOW_CONTEXT never

SELECT streamlog.create_topic('err.one');
SELECT streamlog.create_topic('err.three', 3);
SELECT streamlog.produce('err.one', NULL, 'only');

--
-- A topic that does not exist: 42704 (undefined_object)
--
SELECT streamlog.produce('err.missing', NULL, 'x');
CALL regress.expect_error($$SELECT streamlog.produce('err.missing', 'k', 'v', partition => 0)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.read('err.missing', 0)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.history('err.missing')$$);
CALL regress.expect_error($$SELECT streamlog.offset_for_time('err.missing', 0, '2024-01-01')$$);
CALL regress.expect_error($$SELECT streamlog.drop_topic('err.missing')$$);
CALL regress.expect_error($$SELECT streamlog.alter_topic('err.missing', '{"retention.ms": 1}')$$);
CALL regress.expect_error($$SELECT streamlog.add_partitions('err.missing', 1)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.topic_config('err.missing')$$);
CALL regress.expect_error($$SELECT streamlog.partition_for('err.missing', 'k')$$);
-- names are case-sensitive
CALL regress.expect_error($$SELECT streamlog.produce('ERR.ONE', NULL, 'x')$$);
-- a topic dropped earlier in the same transaction
BEGIN;
SELECT streamlog.create_topic('err.short-lived');
SELECT streamlog.drop_topic('err.short-lived');
CALL regress.expect_error($$SELECT streamlog.produce('err.short-lived', NULL, 'x')$$);
ROLLBACK;

--
-- Invalid topic names: 42602 (invalid_name), 42622 (name_too_long)
--
SELECT streamlog.create_topic('has space');
CALL regress.expect_error($$SELECT streamlog.create_topic('')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('.')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('..')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('has space')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('slash/ed')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('tab' || chr(9))$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('naïve')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic(repeat('a', 250))$$);
CALL regress.expect_error($$SELECT streamlog.produce(repeat('a', 250), NULL, 'x')$$);
-- 249 characters is the limit; '...' and '.a' are fine
SELECT streamlog.create_topic(repeat('a', 249));
SELECT streamlog.create_topic('...');
SELECT streamlog.create_topic('.a');
SELECT length(topic), partitions FROM streamlog.topics WHERE topic LIKE 'aaa%';
SELECT streamlog.drop_topic(repeat('a', 249));
SELECT streamlog.drop_topic('...');
SELECT streamlog.drop_topic('.a');
SELECT count(*) FROM streamlog.topics WHERE topic NOT LIKE 'err.%';

--
-- Names beginning with "__" are reserved for internal topics (Kafka's
-- __consumer_offsets and __transaction_state): 42939 (reserved_name)
--
SELECT streamlog.create_topic('__consumer_offsets');
CALL regress.expect_error($$SELECT streamlog.create_topic('__transaction_state')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('__foo', 2)$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('__')$$);
SELECT streamlog.drop_topic('__consumer_offsets');
CALL regress.expect_error($$SELECT streamlog.drop_topic('__foo', if_exists => true)$$);
SELECT streamlog.produce('__consumer_offsets', NULL, 'forged');
CALL regress.expect_error($$SELECT streamlog.produce('__foo', 'k', 'v', partition => 0)$$);
CALL regress.expect_error($$SELECT streamlog.produce_record('__foo', NULL, '\x00')$$);
-- one underscore, or two further in, are ordinary names
SELECT streamlog.create_topic('_one');
SELECT streamlog.create_topic('a__b');
SELECT streamlog.drop_topic('_one');
SELECT streamlog.drop_topic('a__b');
SELECT count(*) FROM streamlog.topics WHERE topic NOT LIKE 'err.%';

--
-- Partition counts: 22023 (invalid_parameter_value), 53400 over the budget
--
SELECT streamlog.create_topic('err.none', 0);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.none', 0)$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.none', -1)$$);
-- add_partitions() takes how many to add, and partitions are never removed
SELECT streamlog.add_partitions('err.three', 0);
CALL regress.expect_error($$SELECT streamlog.add_partitions('err.one', 0)$$);
CALL regress.expect_error($$SELECT streamlog.add_partitions('err.one', -2)$$);
-- streamlog.max_partitions (4096 by default) bounds the partitions of all topics
CALL regress.expect_error($$SELECT streamlog.create_topic('err.huge', 5000)$$);
CALL regress.expect_error($$SELECT streamlog.add_partitions('err.one', 5000)$$);
SELECT topic, partitions FROM streamlog.topics ORDER BY topic COLLATE "C";

--
-- Partitions out of range: 22023
--
SELECT streamlog.produce('err.three', NULL, 'x', partition => 3);
CALL regress.expect_error($$SELECT streamlog.produce('err.three', NULL, 'x', partition => -1)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.read('err.three', 3)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.read('err.three', -1)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.history('err.three', partitions => '{0,3}')$$);
CALL regress.expect_error($$SELECT streamlog.offset_for_time('err.three', 3, '2024-01-01')$$);
-- 22004 (null_value_not_allowed) for a NULL partition in history
CALL regress.expect_error($$SELECT * FROM streamlog.history('err.three', partitions => '{0,NULL}')$$);

--
-- Offsets: 22023
--
CALL regress.expect_error($$SELECT * FROM streamlog.read('err.one', 0, -1)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.read('err.one', 0, 0, -1)$$);
-- past the high watermark (1)
SELECT * FROM streamlog.read('err.one', 0, 2);
CALL regress.expect_error($$SELECT * FROM streamlog.read('err.one', 0, 9223372036854775807)$$);
-- at the high watermark there is nothing yet, and that is no error
SELECT count(*) FROM streamlog.read('err.one', 0, 1);
-- history() takes any bounds
SELECT count(*) FROM streamlog.history('err.one', from_offset => 2);

--
-- Deleting records: 22023 for an offset that is neither -1 nor 0 to the
-- high watermark (1)
--
SELECT streamlog.delete_records('err.one', 0, -2);
CALL regress.expect_error($$SELECT streamlog.delete_records('err.one', 0, -9223372036854775808)$$);
SELECT streamlog.delete_records('err.one', 0, 2);
CALL regress.expect_error($$SELECT streamlog.delete_records('err.one', 9, 0)$$);
-- nothing was deleted
SELECT log_start_offset, high_watermark FROM streamlog.partitions WHERE topic = 'err.one';
-- reading below records deleted by hand says so, not only retention
SELECT streamlog.create_topic('err.deleted');
SELECT streamlog.produce('err.deleted', NULL, 'v' || g, partition => 0) FROM generate_series(1, 3) g;
SELECT streamlog.delete_records('err.deleted', 0, 2);
SELECT "offset" FROM streamlog.read('err.deleted', 0, from_offset => 0);
SELECT "offset" FROM streamlog.read('err.deleted', 0, from_offset => 2);
SELECT streamlog.drop_topic('err.deleted');

--
-- Topic configs: 22023, or 0A000 (feature_not_supported) for an empty policy
--
SELECT streamlog.create_topic('err.config', 1, '{"retention.hours": 1}');
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"retention.ms": "abc"}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"retention.ms": "-2"}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"retention.ms": 1.5}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"retention.ms": true}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"retention.ms": "99999999999999999999"}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"max.message.bytes": 3000000000}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"segment.bytes": 13}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"segment.ms": 0}')$$);
SELECT streamlog.create_topic('err.config', 1, '{"compression.type": "brotli"}');
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"compression.type": "brotli"}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"message.timestamp.type": "x"}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"partitioner": "random"}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"cleanup.policy": "delete;"}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"cleanup.policy": ""}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"cleanup.policy": "compact,purge"}')$$);
-- config values must be strings or numbers
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"retention.ms": {"v": 1}}')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '{"retention.ms": [1]}')$$);
-- the config must be an object
SELECT streamlog.create_topic('err.config', 1, '[]');
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '"retention.ms"')$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.config', 1, '5')$$);
CALL regress.expect_error($$SELECT streamlog.alter_topic('err.one', '[["retention.ms", "1"]]')$$);
CALL regress.expect_error($$SELECT streamlog.alter_topic('err.one', '{"retention.hours": 1}')$$);
-- none of these created or changed a topic
SELECT count(*) FROM streamlog.topics WHERE topic = 'err.config';
SELECT name, value FROM streamlog.topic_config('err.one') WHERE NOT is_default;

--
-- NULL arguments: an argument that is required is an error, 22004
-- (null_value_not_allowed) naming it; NULL where it has a meaning of its
-- own (a null key or value, no headers, "any partition", "now", "no
-- bound") is taken as that.  Conversions of values return NULL for NULL.
--
SELECT streamlog.produce(NULL, 'k', 'v');
CALL regress.expect_error($$SELECT streamlog.produce(NULL::text, NULL, NULL)$$);
CALL regress.expect_error($$SELECT streamlog.produce_record(NULL, NULL, NULL)$$);
CALL regress.expect_error($$SELECT streamlog.create_topic(NULL)$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err.nullparts', NULL)$$);
CALL regress.expect_error($$SELECT streamlog.drop_topic(NULL)$$);
CALL regress.expect_error($$SELECT streamlog.drop_topic('err.one', NULL)$$);
CALL regress.expect_error($$SELECT streamlog.alter_topic(NULL, '{}')$$);
CALL regress.expect_error($$SELECT streamlog.alter_topic('err.one', NULL)$$);
CALL regress.expect_error($$SELECT streamlog.add_partitions(NULL, 1)$$);
CALL regress.expect_error($$SELECT streamlog.add_partitions('err.one', NULL)$$);
CALL regress.expect_error($$SELECT streamlog.delete_records(NULL, 0, 0)$$);
CALL regress.expect_error($$SELECT streamlog.delete_records('err.one', NULL, 0)$$);
CALL regress.expect_error($$SELECT streamlog.delete_records('err.one', 0, NULL)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.topic_config(NULL)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.read(NULL, 0)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.read('err.one', NULL)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.read('err.one', 0, NULL)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.read('err.one', 0, 0, NULL)$$);
CALL regress.expect_error($$SELECT * FROM streamlog.history(NULL)$$);
CALL regress.expect_error($$SELECT streamlog.offset_for_time(NULL, 0, '2024-01-01')$$);
CALL regress.expect_error($$SELECT streamlog.offset_for_time('err.one', NULL, '2024-01-01')$$);
CALL regress.expect_error($$SELECT streamlog.offset_for_time('err.one', 0, NULL)$$);
CALL regress.expect_error($$SELECT streamlog.partition_for(NULL, 'k')$$);
CALL regress.expect_error($$SELECT * FROM streamlog.consume(NULL, 'err.one')$$);
CALL regress.expect_error($$SELECT * FROM streamlog.consume('g', 'err.one', NULL)$$);
CALL regress.expect_error($$SELECT streamlog.seek('g', 'err.one', 0, NULL)$$);
CALL regress.expect_error($$SELECT streamlog.delete_group('g', NULL)$$);
-- NULL with a meaning: a null key has no fixed partition, NULL bounds are
-- no bounds, NULL headers, partition and time are none, any and now
SELECT streamlog.partition_for('err.one', NULL) IS NULL AS partition_for_null_key;
SELECT count(*) FROM streamlog.history('err.one', NULL, NULL, NULL, NULL, NULL);
SELECT streamlog.produce('err.three', NULL, NULL, NULL, NULL, NULL) BETWEEN 0 AND 2 AS produced;
SELECT streamlog.as_text(NULL) IS NULL AS as_text, streamlog.as_jsonb(NULL) IS NULL AS as_jsonb;

--
-- Bad headers: 22023, 22004 for NULL headers, 22P02 for text that is not JSON
--
SELECT streamlog.produce('err.one', NULL, 'x', headers => '5'::jsonb);
CALL regress.expect_error($$SELECT streamlog.produce('err.one', NULL, 'x', headers => '5'::jsonb)$$);
CALL regress.expect_error($$SELECT streamlog.produce('err.one', NULL, 'x', headers => '[1,2]'::jsonb)$$);
CALL regress.expect_error($$SELECT streamlog.produce('err.one', NULL, 'x', headers => '"k"'::jsonb)$$);
CALL regress.expect_error($$SELECT streamlog.produce('err.one', NULL, 'x', headers => '[["k"]]'::jsonb)$$);
CALL regress.expect_error($$SELECT streamlog.produce('err.one', NULL, 'x', headers => '[["k", "v", "w"]]'::jsonb)$$);
CALL regress.expect_error($$SELECT streamlog.produce('err.one', NULL, 'x', headers => '[[1, "v"]]'::jsonb)$$);
CALL regress.expect_error($$SELECT streamlog.produce('err.one', NULL, 'x', headers => '[{"k": "v"}]'::jsonb)$$);
CALL regress.expect_error($$SELECT streamlog.produce('err.one', NULL, 'x', headers => 5)$$);
CALL regress.expect_error($$SELECT streamlog.produce('err.one', NULL, 'x', headers => 'not json')$$);
CALL regress.expect_error($$SELECT streamlog.produce_record('err.one', NULL, 'x', headers => ARRAY[NULL::streamlog.header])$$);
CALL regress.expect_error($$SELECT streamlog.produce_record('err.one', NULL, 'x', headers => ARRAY[ROW(NULL, '\x00')::streamlog.header])$$);
-- nothing was produced
SELECT high_watermark FROM streamlog.partitions WHERE topic = 'err.one';

--
-- A record larger than max.message.bytes: 54000 (program_limit_exceeded)
--
SELECT streamlog.create_topic('err.small', 1, '{"max.message.bytes": 1000}');
SELECT streamlog.produce('err.small', NULL, repeat('x', 2000));
CALL regress.expect_error($$SELECT streamlog.produce('err.small', repeat('k', 2000), NULL)$$);
CALL regress.expect_error($$SELECT streamlog.produce('err.small', NULL, 'v', headers => jsonb_build_object('h', repeat('x', 2000)))$$);
-- what fits is produced, and a failed record takes its transaction with it
SELECT streamlog.produce('err.small', NULL, repeat('x', 900));
BEGIN;
SELECT streamlog.produce('err.small', NULL, 'lost with the transaction');
SELECT streamlog.produce('err.small', NULL, repeat('x', 2000));
COMMIT;
SELECT "offset", octet_length(value) FROM streamlog.read('err.small', 0) ORDER BY "offset";
-- raising the limit lets it through
SELECT streamlog.alter_topic('err.small', '{"max.message.bytes": 4000}');
SELECT streamlog.produce('err.small', NULL, repeat('x', 2000));
SELECT "offset", octet_length(value) FROM streamlog.read('err.small', 0) ORDER BY "offset";

--
-- Bytes that are not UTF-8 text or JSON: 22021 (character_not_in_repertoire), 22P02
--
SELECT streamlog.as_text('\xff'::bytea);
CALL regress.expect_error($$SELECT streamlog.as_text('\xff'::bytea)$$);
CALL regress.expect_error($$SELECT streamlog.as_text('\x61c3'::bytea)$$);
CALL regress.expect_error($$SELECT streamlog.as_text('\x6100'::bytea)$$);
CALL regress.expect_error($$SELECT streamlog.as_jsonb('\xff'::bytea)$$);
CALL regress.expect_error($$SELECT streamlog.as_jsonb('not json'::bytea)$$);
SELECT streamlog.as_text('\x'::bytea) = '' AS empty, streamlog.as_text('\xc3a9'::bytea) = 'é' AS utf8;

--
-- A topic that exists: 42710 (duplicate_object)
--
SELECT streamlog.create_topic('err.one');
CALL regress.expect_error($$SELECT streamlog.create_topic('err.one', 5)$$);
CALL regress.expect_error($$SELECT streamlog.create_topic('err_one')$$);
-- created twice in one transaction
BEGIN;
SELECT streamlog.create_topic('err.twice');
SELECT streamlog.create_topic('err.twice');
ROLLBACK;
SELECT count(*) FROM streamlog.topics WHERE topic = 'err.twice';

--
-- PREPARE TRANSACTION after produce: 0A000
--
BEGIN;
SELECT streamlog.produce('err.one', NULL, 'prepared');
PREPARE TRANSACTION 'err_prepared';
\set VERBOSITY sqlstate
BEGIN;
SELECT streamlog.produce('err.one', NULL, 'prepared');
PREPARE TRANSACTION 'err_prepared';
\set VERBOSITY default
-- the transaction was rolled back, and nothing was prepared or produced
SELECT count(*) FROM pg_prepared_xacts;
SELECT "offset", streamlog.as_text(value) AS value FROM streamlog.read('err.one', 0) ORDER BY "offset";

--
-- Producing in a read-only transaction: 25006 (read_only_sql_transaction)
--
BEGIN READ ONLY;
CALL regress.expect_error($$SELECT streamlog.produce('err.one', NULL, 'read only')$$);
COMMIT;
SET default_transaction_read_only = on;
CALL regress.expect_error($$SELECT streamlog.produce('err.one', NULL, 'read only')$$);
RESET default_transaction_read_only;
SELECT "offset", streamlog.as_text(value) AS value FROM streamlog.read('err.one', 0) ORDER BY "offset";

--
-- A timestamp beyond message.timestamp.before.max.ms / after.max.ms (here
-- difference.max.ms standing in for it): 22008 (datetime_field_overflow)
--
SELECT streamlog.create_topic('err.ts', 1, '{"message.timestamp.before.max.ms": 3600000, "message.timestamp.difference.max.ms": 60000}');
SELECT streamlog.produce('err.ts', NULL, 'old', ts => '2000-01-01 00:00:00+00');
SELECT streamlog.produce('err.ts', NULL, 'future', ts => '2999-01-01 00:00:00+00');
SELECT streamlog.produce('err.ts', NULL, 'recent', ts => now() - interval '30 minutes');
SELECT "offset", streamlog.as_text(value) AS value FROM streamlog.read('err.ts', 0) ORDER BY "offset";

-- Clean up
SELECT count(*) FROM (SELECT streamlog.drop_topic(topic) FROM streamlog.topics) s;
DROP EXTENSION streamlog CASCADE;
