--
-- SCRAM-SHA-512 passwords of roles for Kafka logins
-- (streamlog.set_scram_sha512_password, drop_scram_sha512_password): who
-- may set them, the bounds, and that only verifiers are kept, readable by
-- superusers only.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS streamlog;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE ROLE scram_alice LOGIN;
CREATE ROLE scram_bob LOGIN;
CREATE ROLE scram_creator CREATEROLE;
CREATE ROLE scram_super SUPERUSER;
GRANT USAGE ON SCHEMA regress TO scram_alice, scram_creator;

-- A superuser sets any role's; the table holds a verifier, not the password
SELECT streamlog.set_scram_sha512_password('scram_bob', 'bob-pw');
SELECT role_name, mechanism, iterations, length(stored_key) AS stored_key_bytes,
	   length(server_key) AS server_key_bytes,
	   position('bob-pw' IN salt || encode(stored_key, 'escape')) = 0 AS no_password
  FROM streamlog.scram_credential;
-- Kafka's bounds on iterations, a password
CALL regress.expect_error($$SELECT streamlog.set_scram_sha512_password('scram_bob', 'pw', 1000)$$);
CALL regress.expect_error($$SELECT streamlog.set_scram_sha512_password('scram_bob', 'pw', 20000)$$);
CALL regress.expect_error($$SELECT streamlog.set_scram_sha512_password('scram_bob', '')$$);
CALL regress.expect_error($$SELECT streamlog.set_scram_sha512_password('scram_bob', NULL)$$);
CALL regress.expect_error($$SELECT streamlog.set_scram_sha512_password('no_such_role', 'pw')$$);
SELECT streamlog.set_scram_sha512_password('scram_bob', 'bob-pw-2', 8192);
SELECT role_name, iterations FROM streamlog.scram_credential;

-- A role sets its own, not another's; it cannot read the verifiers
SET ROLE scram_alice;
SELECT streamlog.set_scram_sha512_password('scram_alice', 'alice-pw');
CALL regress.expect_error($$SELECT streamlog.set_scram_sha512_password('scram_bob', 'x')$$);
CALL regress.expect_error($$SELECT streamlog.drop_scram_sha512_password('scram_bob')$$);
CALL regress.expect_error('SELECT count(*) FROM streamlog.scram_credential');
RESET ROLE;

-- CREATEROLE: roles that are not superusers, as ALTER ROLE ... PASSWORD
SET ROLE scram_creator;
SELECT streamlog.set_scram_sha512_password('scram_bob', 'bob-pw-3');
CALL regress.expect_error($$SELECT streamlog.set_scram_sha512_password('scram_super', 'x')$$);
RESET ROLE;

-- Dropping: true if there was one; a dropped role's row is forgotten
SELECT streamlog.drop_scram_sha512_password('scram_bob');
SELECT streamlog.drop_scram_sha512_password('scram_bob');
REVOKE USAGE ON SCHEMA regress FROM scram_alice;
DROP ROLE scram_alice;
SELECT streamlog.set_scram_sha512_password('scram_super', 'super-pw');
SELECT role_name FROM streamlog.scram_credential ORDER BY 1;

-- Clean up
SELECT streamlog.drop_scram_sha512_password('scram_super');
REVOKE USAGE ON SCHEMA regress FROM scram_creator;
DROP ROLE scram_bob, scram_creator, scram_super;
