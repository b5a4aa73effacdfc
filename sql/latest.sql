--
-- Topics as tables: latest(topic) and latest(topic, key), with and
-- without the key index; compacted topics refuse records without a key.
--
CREATE EXTENSION IF NOT EXISTS streamlog;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY default
\set SHOW_CONTEXT never

-- latest(topic) with keys and values as text
CREATE FUNCTION pg_temp.current(topic text)
RETURNS TABLE (partition integer, "offset" bigint, key text, value text)
LANGUAGE sql AS $$
	SELECT l.partition, l."offset", streamlog.as_text(l.key), streamlog.as_text(l.value)
	  FROM streamlog.latest(topic) l ORDER BY l.key
$$;

-- Keys required on compacted topics
SELECT streamlog.create_topic('compacted', 1, '{"cleanup.policy": "compact"}');
SELECT streamlog.produce('compacted', NULL, 'no key');
SELECT streamlog.produce_record('compacted', NULL, 'no key'::bytea);
\set VERBOSITY terse
SELECT streamlog.produce('compacted', NULL::bytea, 'no key'::bytea);
\set VERBOSITY default
SELECT streamlog.produce('compacted', 'a', '1'), streamlog.produce('compacted', '', 'empty key'),
	   streamlog.produce('compacted', 'b', NULL::text);
SELECT streamlog.create_topic('turned', 1);
SELECT streamlog.produce('turned', NULL, 'before');
SELECT streamlog.alter_topic('turned', '{"cleanup.policy": "compact,delete"}');
SELECT streamlog.produce('turned', NULL, 'after');
SELECT count(*) FROM streamlog.read('turned', 0);

-- latest(topic): the newest record of each key; tombstones and keyless
-- records absent; across partitions the newest timestamp wins
SELECT streamlog.create_topic('plain', 2);
SELECT streamlog.produce('plain', 'a', 'a1', partition => 0, ts => '2030-01-01 00:00:01'),
	   streamlog.produce('plain', 'b', 'b1', partition => 0, ts => '2030-01-01 00:00:01'),
	   streamlog.produce('plain', NULL, 'keyless', partition => 0, ts => '2030-01-01 00:00:02'),
	   streamlog.produce('plain', 'a', 'a2', partition => 0, ts => '2030-01-01 00:00:00'),
	   streamlog.produce('plain', 'c', 'c1', partition => 1, ts => '2030-01-01 00:00:03'),
	   streamlog.produce('plain', 'b', NULL::text, partition => 0, ts => '2030-01-01 00:00:04'),
	   streamlog.produce('plain', 'c', 'c-old', partition => 0, ts => '2030-01-01 00:00:02');
SELECT * FROM pg_temp.current('plain');
SELECT * FROM pg_temp.current('compacted');

-- latest(topic, key): one key, in any partition or in one
SELECT partition, "offset", ts, streamlog.as_text(value) AS value, headers
  FROM streamlog.latest('plain', 'c');
SELECT partition, "offset", streamlog.as_text(value) AS value FROM streamlog.latest('plain', 'c', 0);
SELECT count(*) FROM streamlog.latest('plain', 'b');
SELECT count(*) FROM streamlog.latest('plain', 'nothing'::bytea);

-- The key index: set at create, on and off on a live topic
SELECT streamlog.create_topic('indexed', 2, '{"key.index": true}');
SELECT streamlog.produce('indexed', 'x', 'x1', partition => 1),
	   streamlog.produce('indexed', 'x', 'x2', partition => 1),
	   streamlog.produce('indexed', NULL, 'keyless', partition => 0);
SELECT partition, "offset", streamlog.as_text(value) AS value FROM streamlog.latest('indexed', 'x');
SELECT value, enforced FROM streamlog.topic_config('indexed') WHERE name = 'key.index';
SELECT streamlog.alter_topic('plain', '{"key.index": "true"}');
SELECT partition, "offset", streamlog.as_text(value) AS value FROM streamlog.latest('plain', 'c');
SELECT count(*) FROM streamlog.latest('plain', 'b');
SELECT streamlog.alter_topic('plain', '{"key.index": "false"}');
SELECT partition, "offset", streamlog.as_text(value) AS value FROM streamlog.latest('plain', 'a');

-- Errors
SELECT * FROM streamlog.latest('plain', NULL::bytea);
SELECT * FROM streamlog.latest(NULL, 'a');
SELECT * FROM streamlog.latest('plain', 'a', 2);
SELECT * FROM streamlog.latest('missing', 'a');
SELECT * FROM streamlog.latest('missing');

DROP EXTENSION streamlog CASCADE;
