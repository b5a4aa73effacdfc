/*-------------------------------------------------------------------------
 * partition_change_sql.c
 *	  streamlog._alter_partition_isr(topic, partition, leader_epoch,
 *	  partition_epoch, isr, timeout_ms): Kafka's AlterPartition from SQL.
 *
 * What a partition leader's ISR manager asks the controller, as this node:
 * for operators and tests that need to make the request by hand (a stale
 * epoch, an ISR with a fenced member).  It answers one row (error_code,
 * message) with Kafka's error code: the refusals are answers, not errors,
 * as the ISR manager gets them.  Superuser only: it speaks for the
 * partition's leader without any of its checks.
 *
 * IDENTIFICATION
 *	  src/sqlapi/partition_change_sql.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "streamlog/metadata/cluster_topics.h"
#include "streamlog/metadata/partition_change.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog__alter_partition_isr);

/* The node ids of an int[] without NULLs; *n set */
static int32 *
node_ids(ArrayType *array, int *n, const char *what)
{
	Datum	   *elems;
	bool	   *nulls;
	int32	   *ids;

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array of node ids", what)));
	deconstruct_array(array, INT4OID, 4, true, TYPALIGN_INT, &elems, &nulls, n);
	ids = palloc(sizeof(int32) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not hold NULL", what)));
		ids[i] = DatumGetInt32(elems[i]);
	}
	return ids;
}

Datum
streamlog__alter_partition_isr(PG_FUNCTION_ARGS)
{
	char	   *name;
	const SlTopic *topic;
	int32		partition;
	int32	   *isr;
	int			nisr;
	int			timeout_ms;
	int16		error_code;
	char	   *message = NULL;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to change the ISR of a partition"),
				 errdetail("It speaks for the partition's leader without its checks."),
				 errhint("Only superusers may call streamlog._alter_partition_isr().")));
	SlRequireArg(fcinfo, 0, "topic");
	SlRequireArg(fcinfo, 1, "partition");
	SlRequireArg(fcinfo, 2, "leader_epoch");
	SlRequireArg(fcinfo, 3, "partition_epoch");
	SlRequireArg(fcinfo, 4, "isr");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	partition = PG_GETARG_INT32(1);
	isr = node_ids(PG_GETARG_ARRAYTYPE_P(4), &nisr, "isr");
	timeout_ms = PG_ARGISNULL(5) ? SL_CLUSTER_TOPIC_TIMEOUT_MS : PG_GETARG_INT32(5);
	if (timeout_ms <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must be positive, not %d", timeout_ms)));
	topic = SlTopicLookup(name, false);

	error_code = SlClusterAlterPartition(topic->topic_id, partition,
										 PG_GETARG_INT32(2), PG_GETARG_INT32(3),
										 isr, nisr, timeout_ms, &message);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int32GetDatum(error_code);
	if (message != NULL)
		values[1] = CStringGetTextDatum(message);
	else
		nulls[1] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
