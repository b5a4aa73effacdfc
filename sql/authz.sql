--
-- Authorization at the SQL door: each function asks the privilege Kafka's
-- authorizer would (storage/acl.h), before it looks the topic up, and
-- errs with 42501 naming it; the views show what the role may DESCRIBE;
-- the catalogue tables grant nothing.
-- (The suite before may have left the extension installed.)
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamlog;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE ROLE authz_app;
CREATE ROLE authz_team;
GRANT authz_team TO authz_app;
SELECT streamlog.create_topic('authz.orders', 2);
SELECT streamlog.create_topic('other.hidden');
SELECT streamlog.produce('authz.orders', 'k', 'v', partition => 0);
SELECT streamlog.seek('authz.billing', 'authz.orders', 0, 0);

-- Nothing without a privilege, the table privileges included
SET ROLE authz_app;
SELECT streamlog.produce('authz.orders', 'k', 'v');
SELECT * FROM streamlog.read('authz.orders', 0);
SELECT * FROM streamlog.read('authz.no_such_topic', 0);
SELECT streamlog.create_topic('authz.new');
SELECT * FROM streamlog.consume('authz.billing', 'authz.orders');
SELECT streamlog.delete_group('authz.billing');
SELECT count(*) FROM streamlog.topic;
SELECT topic FROM streamlog.topics WHERE topic LIKE 'authz.%' OR topic LIKE 'other.%';
RESET ROLE;

-- A grant to a role the session's role is a member of
SELECT streamlog.grant('read, write', 'topic', 'authz.', 'authz_team', pattern => 'prefixed');
SELECT streamlog.grant('read', 'group', 'authz.billing', 'authz_app');
SET ROLE authz_app;
SELECT streamlog.produce('authz.orders', 'k', 'v2', partition => 0);
SELECT "offset", convert_from(value, 'UTF8') FROM streamlog.read('authz.orders', 0);
SELECT partition, "offset" FROM streamlog.consume('authz.billing', 'authz.orders');
SELECT topic, partitions, config IS NULL AS no_config FROM streamlog.topics
 WHERE topic LIKE 'authz.%' OR topic LIKE 'other.%' ORDER BY topic;
SELECT topic, partition FROM streamlog.partitions WHERE topic LIKE 'authz.%' OR topic LIKE 'other.%' ORDER BY 1, 2;
-- READ on the topic does not give its configs, nor DELETE
SELECT count(*) FROM streamlog.topic_config('authz.orders');
SELECT streamlog.delete_records('authz.orders', 0, 1);
RESET ROLE;

-- DENY wins, on the role or on one it is a member of
SELECT streamlog.deny('write', 'topic', 'authz.orders', 'authz_team');
SET ROLE authz_app;
SELECT streamlog.produce('authz.orders', 'k', 'v3');
SELECT count(*) FROM streamlog.read('authz.orders', 0);
RESET ROLE;

-- The creator owns its topic: everything on it, without a grant
SELECT streamlog.grant('create', 'cluster', NULL, 'authz_app');
SET ROLE authz_app;
SELECT streamlog.create_topic('mine');
SELECT streamlog.alter_topic('mine', '{"retention.ms": "3600000"}');
SELECT streamlog.add_partitions('mine', 1);
SELECT streamlog.drop_topic('mine');
RESET ROLE;

-- Clean up
SELECT streamlog.drop_topic(t) FROM unnest('{authz.orders,other.hidden}'::text[]) t;
SET client_min_messages = warning;
DROP EXTENSION streamlog CASCADE;
RESET client_min_messages;
DROP OWNED BY authz_app, authz_team;
DROP ROLE authz_app, authz_team;
