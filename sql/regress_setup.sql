--
-- Helpers shared by the suites that follow (REGRESS runs this first), in
-- a schema of their own: DROP EXTENSION streamlog does not take them.
--
CREATE SCHEMA regress;

-- Run a statement that must fail, and show its SQLSTATE and message
CREATE PROCEDURE regress.expect_error(statement text)
LANGUAGE plpgsql AS $$
DECLARE
	state text;
	message text;
BEGIN
	EXECUTE statement;
	RAISE NOTICE 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
	RAISE NOTICE '%: %', state, message;
END
$$;
