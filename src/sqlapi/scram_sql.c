/*
 * SQL: SCRAM-SHA-512 passwords of roles, for Kafka clients that log in
 * with SCRAM-SHA-512 (PostgreSQL's own verifier, set with ALTER ROLE ...
 * PASSWORD, serves SCRAM-SHA-256 and PLAIN).  The password is not kept:
 * only its verifier (salt, iterations, StoredKey, ServerKey).
 *
 *	 streamlog.set_scram_sha512_password(role, password, iterations => 4096)
 *	 streamlog.drop_scram_sha512_password(role) -> whether it had one
 *
 * The password is taken as the bytes given, without SASLprep: Kafka
 * clients compute their proof from the raw UTF-8 password.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "streamlog/protocol/scram.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/scram_credentials.h"

PG_FUNCTION_INFO_V1(streamlog_set_scram_sha512_password);
PG_FUNCTION_INFO_V1(streamlog_drop_scram_sha512_password);

/* Error out unless the current user may manage role's credentials */
static void
check_may_manage(Oid role)
{
	if (!SlScramCredentialMayManage(GetUserId(), role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to change the SCRAM-SHA-512 password of role \"%s\"",
						GetUserNameFromId(role, false)),
				 errdetail("As with ALTER ROLE ... PASSWORD: a role may change its own, "
						   "CREATEROLE or ALTER on the Kafka cluster those of roles "
						   "that are not superusers, a superuser any."),
				 errhint("Ask for streamlog.grant() of ALTER on the cluster, or CREATEROLE.")));
}

/* The role of a regrole argument, which must still exist */
static Oid
role_arg(FunctionCallInfo fcinfo)
{
	Oid			role;

	SlRequireArg(fcinfo, 0, "role");
	role = PG_GETARG_OID(0);
	if (GetUserNameFromId(role, true) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", role)));
	return role;
}

Datum
streamlog_set_scram_sha512_password(PG_FUNCTION_ARGS)
{
	Oid			role = role_arg(fcinfo);
	char	   *password;
	int			iterations;
	uint8		salt[SL_SCRAM_SALT_LEN];
	SlScramSecret secret;
	const char *err;

	SlRequireArg(fcinfo, 1, "password");
	SlRequireArg(fcinfo, 2, "iterations");
	password = text_to_cstring(PG_GETARG_TEXT_PP(1));
	iterations = PG_GETARG_INT32(2);
	check_may_manage(role);
	if (password[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("password must not be empty")));
	if (iterations < SL_SCRAM_MIN_ITERATIONS || iterations > SL_SCRAM_MAX_ITERATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("iterations must be between %d and %d, not %d",
						SL_SCRAM_MIN_ITERATIONS, SL_SCRAM_MAX_ITERATIONS, iterations),
				 errhint("These are Kafka's bounds for SCRAM iterations.")));
	if (!pg_strong_random(salt, sizeof(salt)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random salt")));
	err = SlScramMakeSecret(SL_SCRAM_SHA_512, password, salt, sizeof(salt), iterations, &secret);
	explicit_bzero(password, strlen(password));
	if (err != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not make the SCRAM-SHA-512 verifier: %s", err)));
	SlScramCredentialSet(role, &secret);
	PG_RETURN_VOID();
}

Datum
streamlog_drop_scram_sha512_password(PG_FUNCTION_ARGS)
{
	Oid			role = role_arg(fcinfo);

	check_may_manage(role);
	PG_RETURN_BOOL(SlScramCredentialDelete(role));
}
