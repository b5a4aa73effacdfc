--
-- Privileges: the store both doors check (streamlog.acl), managed with
-- grant(), deny() and revoke(), and the owner of a topic.
-- (The suite before may have left the extension installed.)
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamlog;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- The predefined role exists, and cannot log in
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = 'streamlog_admin';

CREATE ROLE acl_alice;
CREATE ROLE acl_bob;
CREATE ROLE acl_readers;
CREATE ROLE acl_carol IN ROLE acl_readers;
CREATE ROLE acl_noinherit NOINHERIT IN ROLE acl_readers;
CREATE ROLE acl_admin IN ROLE streamlog_admin;
CREATE ROLE acl_super SUPERUSER;

GRANT USAGE ON SCHEMA regress TO acl_alice, acl_bob, acl_carol;

-- A topic is owned by its creator (who needs CREATE to create it; no table
-- privilege: the functions check streamlog's own)
SELECT streamlog.create_topic('acl.super');
SELECT streamlog.grant('create', 'topic', 'acl.alice', 'acl_alice');
SET ROLE acl_alice;
SELECT streamlog.create_topic('acl.alice');
RESET ROLE;
SELECT streamlog.revoke('create', 'topic', 'acl.alice', 'acl_alice');
SELECT topic, owner FROM streamlog.topics WHERE topic LIKE 'acl.%' ORDER BY topic COLLATE "C";

-- Nobody has anything yet, but superusers, streamlog_admin and owners
SELECT r AS role,
	   streamlog.has_privilege('read', 'topic', 'acl.alice', r) AS read_alice,
	   streamlog.has_privilege('write', 'topic', 'acl.super', r) AS write_super,
	   streamlog.has_privilege('alter', 'cluster', NULL, r) AS alter_cluster
  FROM unnest('{acl_alice,acl_bob,acl_admin,acl_super}'::regrole[]) r;

-- Grant, and read back as Kafka bindings and as aclitem[]
SELECT streamlog.grant('read, write', 'topic', 'acl.super', 'acl_bob');
SELECT streamlog.grant('describe', 'topic', 'acl.', 'acl_readers', pattern => 'prefixed');
SELECT streamlog.grant('all', 'group', 'app-1', 'public');
SELECT streamlog.grant('IdempotentWrite', 'cluster', NULL, 'acl_bob');
SELECT streamlog.deny('write', 'topic', '*', 'acl_carol');
SELECT * FROM streamlog.acls ORDER BY 1, 2, 3, 4, 6, 7;
SELECT * FROM streamlog.privileges ORDER BY 1, 2, 3;

-- Granting again changes nothing
SELECT streamlog.grant('read', 'topic', 'acl.super', 'acl_bob');
SELECT count(*) FROM streamlog.acls WHERE role = 'acl_bob'::regrole;

-- Checks: direct grants, implied DESCRIBE, prefixes, inheritance (not
-- through NOINHERIT), PUBLIC, DENY over ALLOW
SELECT r AS role, op,
	   streamlog.has_privilege(op, 'topic', 'acl.super', r) AS on_super,
	   streamlog.has_privilege(op, 'topic', 'acl.other', r) AS on_other,
	   streamlog.has_privilege(op, 'topic', 'other', r) AS off_prefix
  FROM unnest('{acl_bob,acl_carol,acl_noinherit}'::regrole[]) r,
	   unnest('{read,write,describe,delete}'::text[]) op
 ORDER BY 1, 2;
SELECT streamlog.has_privilege('read', 'group', 'app-1', 'acl_noinherit') AS public_all_implies_read,
	   streamlog.has_privilege('read', 'group', 'app-2', 'acl_noinherit') AS other_group;
-- A DENY on the owner's own topic does not bind the owner
SELECT streamlog.deny('all', 'topic', 'acl.alice', 'acl_alice');
SELECT streamlog.has_privilege('write', 'topic', 'acl.alice', 'acl_alice');

-- Revoke removes ALLOW and DENY entries of the operations named
SELECT streamlog.revoke('write', 'topic', '*', 'acl_carol');
SELECT streamlog.revoke('write', 'topic', 'acl.super', 'acl_bob');
SELECT streamlog.revoke('all', 'topic', 'acl.alice', 'acl_alice');
SELECT resource_type, pattern_type, name, principal, operation, permission
  FROM streamlog.acls ORDER BY 1, 2, 3, 4, 5, 6;
SELECT streamlog.has_privilege('write', 'topic', 'acl.super', 'acl_bob') AS bob_write,
	   streamlog.has_privilege('read', 'topic', 'acl.super', 'acl_bob') AS bob_read;

-- Who may grant: the owner on its own topic, not on others' nor on a prefix
SET ROLE acl_alice;
SELECT streamlog.grant('read', 'topic', 'acl.alice', 'acl_bob');
CALL regress.expect_error($$SELECT streamlog.grant('read', 'topic', 'acl.super', 'acl_bob')$$);
CALL regress.expect_error($$SELECT streamlog.grant('read', 'topic', 'acl.', 'acl_bob', 'prefixed')$$);
CALL regress.expect_error($$SELECT streamlog.revoke('read', 'topic', 'acl.super', 'acl_bob')$$);
RESET ROLE;
-- streamlog_admin members, and roles with ALTER on the cluster
SET ROLE acl_admin;
SELECT streamlog.grant('alter', 'cluster', 'kafka-cluster', 'acl_bob');
RESET ROLE;
SET ROLE acl_bob;
SELECT streamlog.grant('read', 'transactional_id', 'tx-', 'acl_carol', 'prefixed');
RESET ROLE;
SELECT resource_type, pattern_type, name, principal, operation, permission
  FROM streamlog.acls WHERE principal <> 'User:*' ORDER BY 1, 2, 3, 4, 5, 6;

-- The views show the bindings to roles with DESCRIBE on the cluster (as
-- DescribeAcls): acl_bob has ALTER, which implies it; acl_carol has not
SET ROLE acl_bob;
SELECT count(*) > 0 AS bob_sees FROM streamlog.acls;
SET ROLE acl_carol;
SELECT count(*) AS carol_sees FROM streamlog.acls;
SELECT count(*) AS carol_sees FROM streamlog.privileges;
CALL regress.expect_error('SELECT count(*) FROM streamlog.acl');
RESET ROLE;

-- The error of the check the functions of both doors make (SlAclCheck)
CREATE FUNCTION regress.acl_check(privilege text, on_type text, name text)
	RETURNS void AS 'streamlog', 'streamlog_acl_check' LANGUAGE C;
SET ROLE acl_carol;
CALL regress.expect_error($$SELECT streamlog.grant('read', 'topic', 'acl.super', 'acl_carol')$$);
SELECT regress.acl_check('describe', 'topic', 'acl.super');
SELECT regress.acl_check('write', 'topic', 'acl.super');
SELECT regress.acl_check('alter', 'cluster', NULL);
-- the hint quotes what it names
SELECT regress.acl_check('read', 'group', 'o''brien');
RESET ROLE;

-- The check reads the catalogue whatever the role may read: acl_carol
-- has no privilege on streamlog.topic, in a session that has not looked
-- the topic up before
\c
SET ROLE acl_carol;
SELECT has_table_privilege('streamlog.topic', 'SELECT') AS reads_topic_table,
	   streamlog.has_privilege('describe', 'topic', 'acl.super') AS describe_super,
	   streamlog.has_privilege('write', 'topic', 'acl.alice') AS write_alice;
RESET ROLE;

-- Mistakes
CALL regress.expect_error($$SELECT streamlog.grant('reed', 'topic', 'acl.super', 'acl_bob')$$);
CALL regress.expect_error($$SELECT streamlog.grant(' , ', 'topic', 'acl.super', 'acl_bob')$$);
CALL regress.expect_error($$SELECT streamlog.grant('read', 'table', 'acl.super', 'acl_bob')$$);
CALL regress.expect_error($$SELECT streamlog.grant('read', 'topic', 'acl.super', 'nobody')$$);
CALL regress.expect_error($$SELECT streamlog.grant('read', 'topic', 'acl.super', 'acl_bob', 'suffixed')$$);
CALL regress.expect_error($$SELECT streamlog.grant('read', 'topic', '', 'acl_bob')$$);
CALL regress.expect_error($$SELECT streamlog.grant('read', 'topic', NULL, 'acl_bob')$$);
CALL regress.expect_error($$SELECT streamlog.grant('read', 'cluster', 'my-cluster', 'acl_bob')$$);
CALL regress.expect_error($$SELECT streamlog.grant('read', 'topic', 'acl.super', NULL)$$);
CALL regress.expect_error($$SELECT streamlog.has_privilege('read, write', 'topic', 'acl.super')$$);

-- Kafka principals are accepted for roles
SELECT streamlog.grant('describe_configs', 'topic', 'acl.super', 'User:acl_carol');
SELECT streamlog.grant('describe_configs', 'topic', 'acl.super', 'User:*');
SELECT principal, operation FROM streamlog.acls WHERE operation = 'DESCRIBE_CONFIGS' ORDER BY 1;

-- A change made in a transaction that rolls back leaves nothing behind
BEGIN;
SELECT streamlog.grant('delete', 'topic', 'acl.super', 'acl_carol');
SELECT streamlog.has_privilege('delete', 'topic', 'acl.super', 'acl_carol');
ROLLBACK;
SELECT streamlog.has_privilege('delete', 'topic', 'acl.super', 'acl_carol');

-- Roles: DROP ROLE refuses a role with privileges or topics, REASSIGN
-- OWNED gives its topics away, DROP OWNED revokes its privileges
DROP ROLE acl_alice;
CALL regress.expect_error('DROP ROLE acl_readers');
REASSIGN OWNED BY acl_alice TO acl_bob;
SELECT topic, owner FROM streamlog.topics WHERE topic LIKE 'acl.%' ORDER BY topic COLLATE "C";
DROP OWNED BY acl_readers, acl_carol;
SELECT principal, count(*) FROM streamlog.acls GROUP BY 1 ORDER BY 1;
DROP ROLE acl_readers;
SELECT streamlog.has_privilege('describe', 'topic', 'acl.other', 'acl_carol');

-- Clean up
SELECT streamlog.drop_topic(t) FROM unnest('{acl.super,acl.alice}'::text[]) t;
SET client_min_messages = warning;
DROP EXTENSION streamlog CASCADE;
RESET client_min_messages;
DROP FUNCTION regress.acl_check;
DROP OWNED BY acl_alice, acl_bob, acl_carol;
DROP ROLE acl_alice, acl_bob, acl_carol, acl_noinherit, acl_admin, acl_super;
