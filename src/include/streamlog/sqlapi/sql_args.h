/*
 * Arguments of the SQL functions, and the one rule for NULL among them.
 *
 * An argument that must have a value is an error when NULL, with SQLSTATE
 * null_value_not_allowed naming the argument: a NULL there is a mistake
 * (a variable never set, an outer join that found nothing), and doing
 * nothing, as a STRICT function would, hides it; worse for functions that
 * act, like drop_topic() or delete_records().  Where NULL has a meaning of
 * its own, it is taken as that: a null key or value, no headers, any
 * partition, now, no bound.  Only functions that convert values
 * (as_text(), as_jsonb(), consumer_assignment(), and partition_state()
 * behind the views) are STRICT, NULL in and NULL out, like PostgreSQL's own.
 */
#ifndef SL_SQL_ARGS_H
#define SL_SQL_ARGS_H

#include "postgres.h"

#include "fmgr.h"

/* Error out if argument argno, called name in the function's signature, is NULL */
static inline void
SlRequireArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
}

#endif							/* SL_SQL_ARGS_H */
