/*
 * SQL: what a partition's shared state knows of its transactions, the
 * state that spares the last stable offset its query
 * (storage/transactions.h), and how many LSOs were computed with and
 * without the query since it was loaded.  For operators and tests: a
 * server-side count, not a timing.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "streamlog/storage/acl.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/transactions.h"

PG_FUNCTION_INFO_V1(streamlog_partition_lso_cache);

Datum
streamlog_partition_lso_cache(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		partition = PG_GETARG_INT32(1);
	const SlTopic *topic;
	SlPartitionTxnStats stats;
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "streamlog.partition_lso_cache must return a record");
	SlAclCheck(SL_RESOURCE_TOPIC, name, SL_ACL_DESCRIBE);
	topic = SlTopicLookupAndLock(name, AccessShareLock);
	SlTopicCheckPartition(topic, partition);
	SlPartitionTxnStatsGet(topic->topic_id, partition, &stats);
	values[0] = BoolGetDatum(stats.known);
	values[1] = Int32GetDatum(stats.open_txns);
	values[2] = BoolGetDatum(stats.may_have_aborted);
	values[3] = Int64GetDatum(stats.lso_queries);
	values[4] = Int64GetDatum(stats.lso_skipped);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
