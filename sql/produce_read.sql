--
-- Producing records and reading them back.
--
CREATE EXTENSION streamlog;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY default
\set SHOW_CONTEXT never

-- The records of one partition, with keys, values and headers as text
CREATE FUNCTION pg_temp.records(topic text, part integer, from_offset bigint DEFAULT 0)
RETURNS TABLE ("offset" bigint, ts timestamptz, key text, value text, headers text)
LANGUAGE sql AS $$
	SELECT r."offset", r.ts, streamlog.as_text(r.key), streamlog.as_text(r.value),
		   (SELECT string_agg(format('%s=%s', h.key, coalesce(streamlog.as_text(h.value), 'NULL')),
							  ', ' ORDER BY h.ord)
			  FROM unnest(r.headers) WITH ORDINALITY AS h(key, value, ord))
	  FROM streamlog.read(topic, part, from_offset) r
	 ORDER BY r."offset"
$$;

-- The compression codec of every stored batch of a topic (from the batch
-- attributes), and how many records and bytes those batches hold
CREATE FUNCTION pg_temp.batch_codecs(topic_name text)
RETURNS TABLE (codec integer, records bigint, bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
	segment regclass;
BEGIN
	FOR segment IN
		SELECT g.relid::regclass FROM streamlog.segment g JOIN streamlog.topic t USING (topic_id)
		 WHERE t.name = topic_name ORDER BY g.partition, g.seq
	LOOP
		-- a batch's codec is in its first piece (chunk 0); its bytes in all
		RETURN QUERY EXECUTE format(
			'SELECT get_byte(f.batch, 22) & 7, sum(f.record_count)::bigint, sum(b.bytes)::bigint
			   FROM %1$s f
			   JOIN (SELECT last_offset, sum(octet_length(batch)) AS bytes
					   FROM %1$s GROUP BY 1) b USING (last_offset)
			  WHERE f.chunk = 0 GROUP BY 1', segment);
	END LOOP;
END
$$;

-- Records with explicit 2024 timestamps are past the default retention.ms
-- (7 days) and segment.ms: topics that keep them opt out of both, or the
-- cleaner would roll and delete their segments while the test runs.

--
-- Keys and values of every kind, and headers
--
SELECT streamlog.create_topic('pr.basic', 1,
	'{"retention.ms": -1, "segment.ms": 9223372036854775807}');
-- text and text
SELECT streamlog.produce('pr.basic', 'k1'::text, 'v1'::text, ts => '2024-01-01 00:00:00+00');
-- untyped literals are text
SELECT streamlog.produce('pr.basic', 'k2', 'v2', ts => '2024-01-01 00:00:01+00');
-- jsonb, as its canonical text
SELECT streamlog.produce('pr.basic', '{"id": 7}'::jsonb, '{"b": [1, 2],   "a": "x"}'::jsonb,
	ts => '2024-01-01 00:00:02+00');
-- json, as written
SELECT streamlog.produce('pr.basic', '{"id":8}'::json, '{"b": [1, 2],   "a": "x"}'::json,
	ts => '2024-01-01 00:00:03+00');
-- other types as their text form
SELECT streamlog.produce('pr.basic', 42, 1.50::numeric, ts => '2024-01-01 00:00:04+00');
SELECT streamlog.produce('pr.basic', 'vc'::varchar(10), true, ts => '2024-01-01 00:00:05+00');
-- NULL key, NULL value (a tombstone), both NULL
SELECT streamlog.produce('pr.basic', NULL, 'no key', ts => '2024-01-01 00:00:06+00');
SELECT streamlog.produce('pr.basic', 'k7', NULL, ts => '2024-01-01 00:00:07+00');
SELECT streamlog.produce('pr.basic', NULL, NULL, ts => '2024-01-01 00:00:08+00');
-- empty key and value are not NULL
SELECT streamlog.produce('pr.basic', '', '', ts => '2024-01-01 00:00:09+00');
-- non-ASCII text is produced as UTF-8
SELECT streamlog.produce('pr.basic', 'ключ', 'ж€', ts => '2024-01-01 00:00:10+00');
-- headers: a jsonb object (strings as their text, null as null, others as JSON)
SELECT streamlog.produce('pr.basic', 'h1', 'object',
	headers => '{"trace": "abc", "n": 5, "none": null, "obj": {"a": [1]}}'::jsonb,
	ts => '2024-01-01 00:00:11+00');
-- headers: a jsonb array of pairs keeps order and repeated keys
SELECT streamlog.produce('pr.basic', 'h2', 'pairs',
	headers => '[["k", "v1"], ["k", "v2"], ["empty", ""], ["nil", null], ["a", 1]]'::jsonb,
	ts => '2024-01-01 00:00:12+00');
-- headers: streamlog.header[], through produce_record
SELECT streamlog.produce_record('pr.basic', 'h3', 'header array',
	headers => ARRAY[ROW('bin', '\x6869'::bytea)::streamlog.header,
					 ROW('nil', NULL)::streamlog.header,
					 ROW('bin', '\x'::bytea)::streamlog.header],
	ts => '2024-01-01 00:00:13+00');
-- headers: JSON as an untyped literal, and as jsonb
SELECT streamlog.produce('pr.basic', 'h4', 'literal', headers => '{"lit": "yes"}',
	ts => '2024-01-01 00:00:14+00');
SELECT streamlog.produce('pr.basic', 'h5', 'text', headers => '[["t", "x"]]'::jsonb,
	ts => '2024-01-01 00:00:15+00');
SELECT streamlog.produce('pr.basic', 'h6', 'json', headers => '{"j": "y"}'::jsonb,
	ts => '2024-01-01 00:00:16+00');
-- no headers: an empty object or array, or NULL
SELECT streamlog.produce('pr.basic', 'h7', 'none', headers => '{}'::jsonb,
	ts => '2024-01-01 00:00:17+00');
SELECT streamlog.produce('pr.basic', 'h8', 'none', headers => '[]'::jsonb,
	ts => '2024-01-01 00:00:18+00');
SELECT streamlog.produce('pr.basic', 'h9', 'none', headers => NULL,
	ts => '2024-01-01 00:00:19+00');
-- timestamps have millisecond precision
SELECT streamlog.produce('pr.basic', 'ms', 'ms', ts => '2024-01-01 00:00:20.123456+00');
SELECT streamlog.produce('pr.basic', 'ms', 'before 2000', ts => '1999-12-31 23:59:59.9994+00');

SELECT * FROM pg_temp.records('pr.basic', 0);

-- The exact bytes
SELECT "offset", key IS NULL AS key_null, encode(key, 'hex') AS key,
	   value IS NULL AS value_null, encode(value, 'hex') AS value
  FROM streamlog.read('pr.basic', 0)
 WHERE "offset" IN (0, 6, 7, 8, 9, 10) ORDER BY "offset";
-- The headers as stored: NULL when a record has none
SELECT "offset", headers, headers IS NULL AS no_headers
  FROM streamlog.read('pr.basic', 0)
 WHERE "offset" BETWEEN 11 AND 19 ORDER BY "offset";
SELECT "offset", streamlog.as_jsonb(key) AS key, streamlog.as_jsonb(value) AS value,
	   streamlog.as_jsonb(value)->>'a' AS a
  FROM streamlog.read('pr.basic', 0) WHERE "offset" IN (2, 3) ORDER BY "offset";

-- bytea keys and values are produced as they are
SELECT streamlog.create_topic('pr.bytes');
SELECT streamlog.produce('pr.bytes', '\x00ff'::bytea, '\xdeadbeef00'::bytea);
SELECT streamlog.produce('pr.bytes', '\x'::bytea, decode(repeat('ab', 3000), 'hex'));
SELECT "offset", encode(key, 'hex') AS key, octet_length(value) AS value_bytes,
	   md5(value) = md5(decode(repeat('ab', 3000), 'hex')) AS same,
	   left(encode(value, 'hex'), 12) AS value_start
  FROM streamlog.read('pr.bytes', 0) ORDER BY "offset";

-- Without ts, a record gets the time it was produced
SELECT streamlog.produce('pr.bytes', NULL, 'now');
SELECT "offset", ts > '2025-01-01' AS recent, ts <= clock_timestamp() AS not_future
  FROM streamlog.read('pr.bytes', 0, 2);

--
-- Explicit partitions
--
SELECT streamlog.create_topic('pr.parts', 3);
SELECT streamlog.produce('pr.parts', 'a', 'to 2', partition => 2);
SELECT streamlog.produce('pr.parts', 'a', 'to 0', partition => 0);
SELECT streamlog.produce('pr.parts', NULL, 'to 2 again', partition => 2);
SELECT partition, "offset", streamlog.as_text(key) AS key, streamlog.as_text(value) AS value
  FROM streamlog.history('pr.parts') ORDER BY partition, "offset";
-- a NULL-key record without a partition goes to some partition
SELECT streamlog.produce('pr.parts', NULL, 'anywhere') IN (0, 1, 2) AS in_range;
SELECT count(*) FROM streamlog.history('pr.parts');

--
-- Keyed records go where partition_for() says: Kafka's murmur2 partitioner
--
SELECT streamlog.create_topic('pr.keyed', 6);
SELECT count(*) AS produced,
	   count(*) FILTER (WHERE p = streamlog.partition_for('pr.keyed', 'key-' || i)) AS as_returned
  FROM (SELECT i, streamlog.produce('pr.keyed', 'key-' || i, 'value-' || i) AS p
		  FROM generate_series(1, 50) i) s;
SELECT count(*) AS records,
	   count(*) FILTER (WHERE partition = streamlog.partition_for('pr.keyed', key)) AS on_partition_for,
	   count(DISTINCT partition) AS partitions_used
  FROM streamlog.history('pr.keyed');
-- the spread of key-1 .. key-50 over 6 partitions, as Kafka's Java client has it
SELECT partition, count(*) FROM streamlog.history('pr.keyed') GROUP BY partition ORDER BY partition;
-- Kafka's test vectors: murmur2('foobar') = -790332482, murmur2('abc') = 479470107,
-- murmur2('a-little-bit-long-string') = -985981536; partition = (hash & 0x7fffffff) % 6
SELECT ((-790332482) & 2147483647) % 6 AS foobar, 479470107 % 6 AS abc,
	   ((-985981536) & 2147483647) % 6 AS long_string;
SELECT streamlog.partition_for('pr.keyed', 'foobar') AS foobar,
	   streamlog.partition_for('pr.keyed', 'abc') AS abc,
	   streamlog.partition_for('pr.keyed', 'a-little-bit-long-string') AS long_string;
-- the key's bytes decide, whatever their type
SELECT streamlog.partition_for('pr.keyed', 'abc'::bytea) AS bytea,
	   streamlog.partition_for('pr.keyed', 'abc'::varchar) AS varchar,
	   streamlog.partition_for('pr.keyed', '"abc"'::jsonb) AS jsonb_string,
	   streamlog.partition_for('pr.keyed', '"abc"'::text) AS quoted_text;
SELECT streamlog.produce('pr.keyed', 'foobar', 'golden');
SELECT partition, "offset" FROM streamlog.history('pr.keyed')
 WHERE value = 'golden'::bytea;

--
-- Other partitioners: crc32 and fnv1a place keys differently, and stably
--
SELECT streamlog.create_topic('pr.crc32', 6, '{"partitioner": "crc32"}');
SELECT streamlog.create_topic('pr.fnv1a', 6, '{"partitioner": "fnv1a"}');
SELECT count(*) FROM (
	SELECT streamlog.produce('pr.crc32', 'key-' || i, 'value-' || i),
		   streamlog.produce('pr.fnv1a', 'key-' || i, 'value-' || i)
	  FROM generate_series(1, 50) i) s;
SELECT k, streamlog.partition_for('pr.keyed', k) AS murmur2,
	   streamlog.partition_for('pr.crc32', k) AS crc32,
	   streamlog.partition_for('pr.fnv1a', k) AS fnv1a
  FROM unnest(ARRAY['key-1', 'key-2', 'key-3', 'foobar', 'abc', '123456789']) k;
SELECT count(*) FILTER (WHERE streamlog.partition_for('pr.crc32', 'key-' || i) <>
							  streamlog.partition_for('pr.fnv1a', 'key-' || i)) AS crc32_vs_fnv1a,
	   count(*) FILTER (WHERE streamlog.partition_for('pr.keyed', 'key-' || i) <>
							  streamlog.partition_for('pr.crc32', 'key-' || i)) AS murmur2_vs_crc32
  FROM generate_series(1, 50) i;
SELECT 'crc32' AS partitioner, partition, count(*)
  FROM streamlog.history('pr.crc32') GROUP BY partition
UNION ALL
SELECT 'fnv1a', partition, count(*)
  FROM streamlog.history('pr.fnv1a') GROUP BY partition
 ORDER BY 1, 2;
SELECT (SELECT count(*) FROM streamlog.history('pr.crc32')
		 WHERE partition <> streamlog.partition_for('pr.crc32', key)) AS crc32_misplaced,
	   (SELECT count(*) FROM streamlog.history('pr.fnv1a')
		 WHERE partition <> streamlog.partition_for('pr.fnv1a', key)) AS fnv1a_misplaced;
-- changing the partitioner changes where new records go
SELECT streamlog.alter_topic('pr.crc32', '{"partitioner": "murmur2"}');
SELECT streamlog.partition_for('pr.crc32', 'foobar') AS foobar,
	   streamlog.produce('pr.crc32', 'foobar', 'after alter') AS produced_to;

--
-- Transactions: records appear when, and only if, their transaction commits
--
SELECT streamlog.create_topic('pr.tx', 2);
BEGIN;
SELECT streamlog.produce('pr.tx', NULL, 'rolled back ' || i, partition => 0)
  FROM generate_series(1, 3) i;
SELECT streamlog.produce('pr.tx', NULL, 'rolled back too', partition => 1);
-- not even the producing transaction sees them before commit
SELECT count(*) FROM streamlog.history('pr.tx');
ROLLBACK;
SELECT partition, high_watermark, records FROM streamlog.partitions
 WHERE topic = 'pr.tx' ORDER BY partition;
SELECT count(*) FROM streamlog.history('pr.tx');

-- an error rolls back what the transaction produced
BEGIN;
SELECT streamlog.produce('pr.tx', NULL, 'doomed', partition => 0);
SELECT 1 / 0;
COMMIT;
SELECT count(*) FROM streamlog.history('pr.tx');

-- a committed transaction's records appear in order, at consecutive offsets
BEGIN;
SELECT streamlog.produce('pr.tx', NULL, 'first', partition => 0);
SELECT streamlog.produce('pr.tx', 'k', 'second', partition => 0);
SELECT streamlog.produce('pr.tx', NULL, 'on 1', partition => 1);
SELECT streamlog.produce('pr.tx', NULL, 'third', partition => 0);
SELECT streamlog.produce('pr.keyed', 'foobar', 'other topic');
SELECT streamlog.produce('pr.tx', NULL, 'fourth', partition => 0);
COMMIT;
SELECT partition, "offset", streamlog.as_text(value) AS value
  FROM streamlog.history('pr.tx') ORDER BY partition, "offset";
SELECT partition, "offset", streamlog.as_text(value) AS value
  FROM streamlog.history('pr.keyed') WHERE "offset" >= (
	SELECT high_watermark - 2 FROM streamlog.partitions WHERE topic = 'pr.keyed' AND partition = 0)
   AND partition = 0 ORDER BY "offset";
-- the next transaction follows on
SELECT streamlog.produce('pr.tx', NULL, 'fifth', partition => 0);
SELECT "offset", value FROM pg_temp.records('pr.tx', 0);

--
-- Savepoints: rolling back to one discards only what was produced after it
--
SELECT streamlog.create_topic('pr.savepoint', 2);
BEGIN;
SELECT streamlog.produce('pr.savepoint', NULL, 'before a', partition => 0);
SAVEPOINT a;
SELECT streamlog.produce('pr.savepoint', NULL, 'inside a ' || i, partition => 0)
  FROM generate_series(1, 2) i;
SELECT streamlog.produce('pr.savepoint', NULL, 'inside a', partition => 1);
ROLLBACK TO a;
SELECT streamlog.produce('pr.savepoint', NULL, 'after a', partition => 0);
SAVEPOINT b;
SELECT streamlog.produce('pr.savepoint', NULL, 'inside b', partition => 1);
RELEASE b;
SAVEPOINT c;
SELECT streamlog.produce('pr.savepoint', NULL, 'inside c', partition => 0);
SAVEPOINT d;
SELECT streamlog.produce('pr.savepoint', NULL, 'inside d', partition => 0);
RELEASE d;
-- discards c and d, released into c
ROLLBACK TO c;
SELECT streamlog.produce('pr.savepoint', NULL, 'after c', partition => 0);
SAVEPOINT e;
SELECT streamlog.produce('pr.savepoint', NULL, 'inside e', partition => 1);
ROLLBACK TO e;
-- a savepoint rolled back to stays, and can be rolled back to again
SELECT streamlog.produce('pr.savepoint', NULL, 'inside e again', partition => 1);
ROLLBACK TO e;
SELECT streamlog.produce('pr.savepoint', NULL, 'last', partition => 0);
COMMIT;
SELECT partition, "offset", streamlog.as_text(value) AS value
  FROM streamlog.history('pr.savepoint') ORDER BY partition, "offset";

-- the same with a PL/pgSQL exception block, which is a savepoint
BEGIN;
SELECT streamlog.produce('pr.savepoint', NULL, 'kept 1', partition => 1);
DO $$
BEGIN
	PERFORM streamlog.produce('pr.savepoint', NULL, 'discarded', partition => 1);
	PERFORM 1 / 0;
EXCEPTION WHEN division_by_zero THEN
	PERFORM streamlog.produce('pr.savepoint', NULL, 'kept 2', partition => 1);
END
$$;
SELECT streamlog.produce('pr.savepoint', NULL, 'kept 3', partition => 1);
COMMIT;
SELECT partition, "offset", streamlog.as_text(value) AS value
  FROM streamlog.history('pr.savepoint', partitions => '{1}') ORDER BY "offset";

--
-- Compression: every codec round-trips, and the batches are stored compressed
--
CREATE TEMP TABLE codecs (codec text, id integer);
INSERT INTO codecs VALUES ('gzip', 1), ('snappy', 2), ('lz4', 3), ('zstd', 4),
	('uncompressed', 0), ('producer', 0);
SELECT streamlog.create_topic('pr.codec.' || codec, 1,
							  jsonb_build_object('compression.type', codec))
  FROM codecs ORDER BY codec;
SELECT c.codec, count(p) AS produced
  FROM codecs c
 CROSS JOIN LATERAL (
	SELECT streamlog.produce('pr.codec.' || c.codec, 'key ' || i,
							 'value ' || i || ' ' || repeat(chr(97 + i % 26), i % 300)) AS p
	  FROM generate_series(1, 1000) i) s
 GROUP BY c.codec ORDER BY c.codec;
SELECT c.codec,
	   (SELECT count(*) FROM streamlog.read('pr.codec.' || c.codec, 0, 0, 2000)) AS records,
	   (SELECT md5(string_agg(streamlog.as_text(key) || '=' || streamlog.as_text(value), ','
							  ORDER BY "offset"))
		  FROM streamlog.read('pr.codec.' || c.codec, 0, 0, 2000)) =
	   (SELECT md5(string_agg('key ' || i || '=' || 'value ' || i || ' ' ||
							  repeat(chr(97 + i % 26), i % 300), ',' ORDER BY i))
		  FROM generate_series(1, 1000) i) AS same
  FROM codecs c ORDER BY c.codec;
-- the codec of the stored batches, and whether they are smaller than the values
SELECT c.codec, b.codec AS stored_codec, b.codec = c.id AS expected, sum(b.records) AS records,
	   sum(b.bytes) < (SELECT sum(octet_length(repeat(chr(97 + i % 26), i % 300)))
						 FROM generate_series(1, 1000) i) AS smaller
  FROM codecs c CROSS JOIN LATERAL pg_temp.batch_codecs('pr.codec.' || c.codec) b
 GROUP BY 1, 2, 3 ORDER BY 1, 2;

--
-- A set-based produce of 10000 records, read from an offset near the end
--
SELECT streamlog.create_topic('pr.big');
SELECT count(*) FROM (
	SELECT streamlog.produce('pr.big', NULL, 'row ' || i) FROM generate_series(0, 9999) i) s;
SELECT partition, high_watermark, records FROM streamlog.partitions WHERE topic = 'pr.big';
SELECT "offset", streamlog.as_text(value) AS value
  FROM streamlog.read('pr.big', 0, from_offset => 9990) ORDER BY "offset";
SELECT "offset", streamlog.as_text(value) AS value
  FROM streamlog.read('pr.big', 0, from_offset => 4321, max_records => 3) ORDER BY "offset";
-- read returns at most max_records (1000 by default)
SELECT count(*), min("offset"), max("offset") FROM streamlog.read('pr.big', 0);
SELECT count(*) FROM streamlog.read('pr.big', 0, 9000, 5000);
SELECT count(*) FROM streamlog.read('pr.big', 0, 0, 0);
-- reading at the high watermark finds nothing yet
SELECT count(*) FROM streamlog.read('pr.big', 0, 10000);
SELECT count(*) AS records,
	   count(*) FILTER (WHERE streamlog.as_text(value) <> 'row ' || "offset") AS out_of_place
  FROM streamlog.history('pr.big');

--
-- history(): partitions, offset range and time range
--
SELECT streamlog.create_topic('pr.history', 3,
	'{"retention.ms": -1, "segment.ms": 9223372036854775807}');
-- two batches in each partition: hours 0 and 1, then hours 2 and 3
SELECT count(*) FROM (
	SELECT streamlog.produce('pr.history', 'p' || p, 'p' || p || ' h' || h, partition => p,
							 ts => '2024-01-01 00:00:00+00'::timestamptz + h * interval '1 hour')
	  FROM generate_series(0, 2) p, generate_series(0, 1) h ORDER BY p, h) s;
SELECT count(*) FROM (
	SELECT streamlog.produce('pr.history', 'p' || p, 'p' || p || ' h' || h, partition => p,
							 ts => '2024-01-01 00:00:00+00'::timestamptz + h * interval '1 hour')
	  FROM generate_series(0, 2) p, generate_series(2, 3) h ORDER BY p, h) s;
SELECT partition, "offset", ts, streamlog.as_text(key) AS key, streamlog.as_text(value) AS value
  FROM streamlog.history('pr.history') ORDER BY partition, "offset";
SELECT partition, "offset", streamlog.as_text(value) AS value
  FROM streamlog.history('pr.history', partitions => '{2,0}') ORDER BY partition, "offset";
SELECT count(*) FROM streamlog.history('pr.history', partitions => '{}');
-- offset bounds are inclusive
SELECT partition, "offset", streamlog.as_text(value) AS value
  FROM streamlog.history('pr.history', from_offset => 1, to_offset => 2)
 ORDER BY partition, "offset";
SELECT partition, "offset" FROM streamlog.history('pr.history', from_offset => 3)
 ORDER BY partition, "offset";
SELECT partition, "offset" FROM streamlog.history('pr.history', to_offset => 0)
 ORDER BY partition, "offset";
SELECT count(*) FROM streamlog.history('pr.history', from_offset => -5);
SELECT count(*) FROM streamlog.history('pr.history', from_offset => 4);
SELECT count(*) FROM streamlog.history('pr.history', from_offset => 2, to_offset => 1);
-- time bounds are inclusive too
SELECT partition, "offset", ts FROM streamlog.history('pr.history',
		from_ts => '2024-01-01 01:00:00+00', to_ts => '2024-01-01 02:00:00+00')
 ORDER BY partition, "offset";
SELECT partition, "offset", ts FROM streamlog.history('pr.history',
		from_ts => '2024-01-01 00:30:00+00', to_ts => '2024-01-01 01:30:00+00')
 ORDER BY partition, "offset";
SELECT partition, "offset", ts FROM streamlog.history('pr.history',
		from_ts => '2024-01-01 02:59:59.999+00')
 ORDER BY partition, "offset";
SELECT count(*) FROM streamlog.history('pr.history', to_ts => '2023-12-31 23:59:59.999+00');
-- all bounds at once
SELECT partition, "offset", ts, streamlog.as_text(value) AS value
  FROM streamlog.history('pr.history', partitions => '{1}', from_offset => 1,
						 to_ts => '2024-01-01 02:00:00+00')
 ORDER BY partition, "offset";
-- history is a relation like any other
SELECT streamlog.as_text(key) AS key, count(*), max(ts)
  FROM streamlog.history('pr.history', from_ts => '2024-01-01 01:00:00+00')
 GROUP BY 1 ORDER BY 1;

--
-- offset_for_time(): the earliest offset with a timestamp at or after ts
--
SELECT streamlog.create_topic('pr.times', 1,
	'{"retention.ms": -1, "segment.ms": 9223372036854775807}');
-- an empty partition has none
SELECT streamlog.offset_for_time('pr.times', 0, '2000-01-01 00:00:00+00') AS empty;
BEGIN;
SELECT streamlog.produce('pr.times', NULL, 'midnight', ts => '2024-01-01 00:00:00+00');
SELECT streamlog.produce('pr.times', NULL, 'one', ts => '2024-01-01 01:00:00+00');
SELECT streamlog.produce('pr.times', NULL, 'two', ts => '2024-01-01 02:00:00+00');
COMMIT;
SELECT "offset", ts, value FROM pg_temp.records('pr.times', 0);
SELECT t, streamlog.offset_for_time('pr.times', 0, t::timestamptz)
  FROM unnest(ARRAY['2023-06-01 00:00:00+00', '2024-01-01 00:00:00+00',
					'2024-01-01 00:00:00.001+00', '2024-01-01 00:30:00+00',
					'2024-01-01 01:00:00+00', '2024-01-01 02:00:00+00',
					'2024-01-01 02:00:00.001+00', '2024-01-01 02:30:00+00']) t
 ORDER BY t::timestamptz;
-- a later batch
SELECT streamlog.produce('pr.times', NULL, 'three', ts => '2024-01-01 03:00:00+00');
SELECT streamlog.offset_for_time('pr.times', 0, '2024-01-01 02:30:00+00') AS at_0230,
	   streamlog.offset_for_time('pr.times', 0, '2024-01-01 03:00:00+00') AS at_0300,
	   streamlog.offset_for_time('pr.times', 0, '2024-01-01 03:00:00.001+00') AS after_last;

--
-- message.timestamp.type = LogAppendTime: the broker's time, not the producer's
--
SELECT streamlog.create_topic('pr.appendtime', 1, '{"message.timestamp.type": "LogAppendTime"}');
BEGIN;
SELECT streamlog.produce('pr.appendtime', NULL, 'a', ts => '2024-01-01 00:00:00+00');
SELECT streamlog.produce('pr.appendtime', NULL, 'b', ts => '2024-06-01 00:00:00+00');
COMMIT;
SELECT "offset", ts > '2025-01-01' AS append_time, ts <= clock_timestamp() AS not_future
  FROM streamlog.read('pr.appendtime', 0) ORDER BY "offset";
-- the records of one commit share it
SELECT count(DISTINCT ts) FROM streamlog.read('pr.appendtime', 0);
-- time lookups use it too
SELECT streamlog.offset_for_time('pr.appendtime', 0, '2024-06-01 00:00:00+00') AS offset_for_time;
SELECT count(*) FROM streamlog.history('pr.appendtime', from_ts => '2025-01-01');
SELECT count(*) FROM streamlog.history('pr.appendtime', to_ts => '2024-12-31');
-- CreateTime, the default, keeps the producer's
SELECT streamlog.alter_topic('pr.appendtime', '{"message.timestamp.type": null}');
SELECT streamlog.produce('pr.appendtime', NULL, 'c', ts => '2024-01-01 00:00:00+00');
SELECT "offset", ts FROM streamlog.read('pr.appendtime', 0, 2);

-- Clean up
SELECT count(*) FROM (SELECT streamlog.drop_topic(topic) FROM streamlog.topics) s;
DROP EXTENSION streamlog CASCADE;
