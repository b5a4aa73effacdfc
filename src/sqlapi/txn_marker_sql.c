/*
 * SQL: the side channel of the transaction coordinator on a cluster
 * (server/txn/coordinator_cluster.c says why this and not WriteTxnMarkers):
 * _txn_write_marker() writes a transaction's marker on a partition this
 * node leads, _txn_marker_replicated() waits until the partition's in-sync
 * replicas hold it.  Internal: superusers only (the node role of the
 * coordinator's connection is one).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"

#include "streamlog/storage/storage.h"
#include "streamlog/storage/txn_cluster.h"

PG_FUNCTION_INFO_V1(streamlog__txn_write_marker);
PG_FUNCTION_INFO_V1(streamlog__txn_marker_replicated);

/* The longest wait one call may ask for */
#define MAX_REPLICATED_WAIT_MS 300000

static void
require_superuser(const char *function)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may call streamlog.%s()", function),
				 errdetail("It is the transaction coordinator's call to a partition's leader."),
				 errhint("Kafka's transactional producers end transactions with EndTxn.")));
}

Datum
streamlog__txn_write_marker(PG_FUNCTION_ARGS)
{
	int32		topic_id = PG_GETARG_INT32(0);
	int32		partition = PG_GETARG_INT32(1);
	int64		producer_id = PG_GETARG_INT64(2);
	int16		producer_epoch = PG_GETARG_INT16(3);
	bool		commit = PG_GETARG_BOOL(4);
	int32		coordinator_epoch = PG_GETARG_INT32(5);
	const SlTopic *topic;
	int32		leader_epoch = 0;
	int64		offset;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	require_superuser("_txn_write_marker");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "streamlog._txn_write_marker must return a record");
	topic = SlTopicLookupById(topic_id);
	if (topic != NULL)
		topic = SlTopicTryLookupAndLock(topic->name, AccessShareLock);
	if (topic == NULL || topic->topic_id != topic_id)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no topic has id %d on this node", topic_id),
				 errhint("The topic was dropped, or this node's catalog lags the cluster's.")));
	offset = SlTxnApplyMarker(topic, partition, producer_id, producer_epoch, commit,
							  coordinator_epoch, &leader_epoch);
	values[0] = Int64GetDatum(offset);
	values[1] = Int32GetDatum(leader_epoch);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

Datum
streamlog__txn_marker_replicated(PG_FUNCTION_ARGS)
{
	int32		timeout_ms = PG_GETARG_INT32(4);

	require_superuser("_txn_marker_replicated");
	if (timeout_ms < 0 || timeout_ms > MAX_REPLICATED_WAIT_MS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must be between 0 and %d, not %d",
						MAX_REPLICATED_WAIT_MS, timeout_ms)));
	PG_RETURN_BOOL(SlTxnWaitReplicated(PG_GETARG_INT32(0), PG_GETARG_INT32(1),
									   PG_GETARG_INT32(2), PG_GETARG_INT64(3), timeout_ms));
}
