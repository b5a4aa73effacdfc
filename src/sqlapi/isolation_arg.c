/*
 * The isolation argument of the SQL readers (isolation_arg.h).
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "streamlog/sqlapi/isolation_arg.h"
#include "streamlog/sqlapi/sql_args.h"

bool
SlIsolationArgReadCommitted(FunctionCallInfo fcinfo, int argno)
{
	char	   *value;

	SlRequireArg(fcinfo, argno, "isolation");
	value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (pg_strcasecmp(value, "read_committed") == 0)
		return true;
	if (pg_strcasecmp(value, "read_uncommitted") == 0)
		return false;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("isolation must be 'read_committed' or 'read_uncommitted', not '%s'", value),
			 errhint("'read_committed' (the default) stops at the last stable offset and skips aborted Kafka transactions; 'read_uncommitted' reads to the high watermark.")));
	return true;				/* keep the compiler quiet */
}
