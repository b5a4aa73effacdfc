/*
 * SQL: the internal door that tests drive the partition side of
 * transactions through until the transaction coordinator opens the Kafka
 * one (transactions.h, SL_TXN_PRODUCE_ACCEPTED): _txn_test_append and
 * _txn_test_marker.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "streamlog/protocol/records.h"
#include "streamlog/sqlapi/cluster_sql.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/transactions.h"

PG_FUNCTION_INFO_V1(streamlog__txn_test_append);
PG_FUNCTION_INFO_V1(streamlog__txn_test_marker);

static void
require_superuser(const char *function)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may call streamlog.%s()", function),
				 errdetail("It is an internal function for tests of transactions."),
				 errhint("Kafka's transactional producers write transactions; SQL's produce() writes in the caller's transaction.")));
}

static const SlTopic *
locked_topic(FunctionCallInfo fcinfo, int32 partition)
{
	const SlTopic *topic =
		SlTopicLookupAndLock(text_to_cstring(PG_GETARG_TEXT_PP(0)), AccessShareLock);

	SlTopicCheckPartition(topic, partition);
	/* Markers and transactional batches are the leader's to write */
	SlSqlCheckPartitionLeader(topic, partition);
	return topic;
}

/*
 * A transactional batch of producer (id, epoch) from base_sequence on, one
 * record per value, checked as a Produce request's batch is
 */
Datum
streamlog__txn_test_append(PG_FUNCTION_ARGS)
{
	int32		partition;
	int64		producer_id;
	int16		epoch;
	int32		base_sequence;
	const SlTopic *topic;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	Datum	   *key_elems = NULL;
	bool	   *key_nulls = NULL;
	int			nkeys = 0;
	SlBatchBuilder builder;
	StringInfoData data;
	SlBatchHeader hdr;
	int64		now_ms = SlTimestampToKafka(GetCurrentTimestamp());
	int64		duplicate_offset;
	const char *error;

	require_superuser("_txn_test_append");
	for (int i = 0; i <= 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("only keys may be NULL")));
	partition = PG_GETARG_INT32(1);
	producer_id = PG_GETARG_INT64(2);
	epoch = PG_GETARG_INT16(3);
	base_sequence = PG_GETARG_INT32(4);
	topic = locked_topic(fcinfo, partition);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(5), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &nelems);
	if (!PG_ARGISNULL(6))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(6), TEXTOID, -1, false, TYPALIGN_INT,
						  &key_elems, &key_nulls, &nkeys);
	if (nkeys != 0 && nkeys != nelems)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("keys must have one element per value")));
	if (nelems == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transactional batch needs at least one value")));

	SlBatchBuilderInit(&builder, SL_COMPRESSION_NONE);
	builder.producer_id = producer_id;
	builder.producer_epoch = epoch;
	builder.base_sequence = base_sequence;
	SlBatchBuilderSetBase(&builder, SL_BATCH_ATTR_TRANSACTIONAL, false, 0);
	for (int i = 0; i < nelems; i++)
	{
		text	   *t = nulls[i] ? NULL : DatumGetTextPP(elems[i]);
		text	   *k = nkeys == 0 || key_nulls[i] ? NULL : DatumGetTextPP(key_elems[i]);

		SlBatchBuilderAdd(&builder, now_ms,
						  k ? (const uint8 *) VARDATA_ANY(k) : NULL,
						  k ? (int32) VARSIZE_ANY_EXHDR(k) : -1,
						  t ? (const uint8 *) VARDATA_ANY(t) : NULL,
						  t ? (int32) VARSIZE_ANY_EXHDR(t) : -1, NULL, 0);
	}
	initStringInfo(&data);
	error = SlBatchBuilderFinishSealed(&builder, &data, &hdr);
	if (error)
		elog(ERROR, "could not build a transactional batch: %s", error);

	switch (SlProducerCheckBatch(topic, partition, &hdr, &duplicate_offset))
	{
		case SL_SEQUENCE_OK:
			break;
		case SL_SEQUENCE_DUPLICATE:
			PG_RETURN_VOID();
		case SL_SEQUENCE_OUT_OF_ORDER:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sequence %d of producer %lld is out of order",
							base_sequence, (long long) producer_id)));
			break;
		case SL_SEQUENCE_FENCED:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("epoch %d of producer %lld is fenced", epoch,
							(long long) producer_id)));
			break;
	}
	SlLogBufferBatch(topic, partition, (const uint8 *) data.data, data.len, &hdr,
					 now_ms, now_ms, NULL, NULL);
	PG_RETURN_VOID();
}

Datum
streamlog__txn_test_marker(PG_FUNCTION_ARGS)
{
	int32		partition = PG_GETARG_INT32(1);
	const SlTopic *topic;

	require_superuser("_txn_test_marker");
	topic = locked_topic(fcinfo, partition);
	PG_RETURN_INT64(SlTxnWriteMarker(topic, partition, PG_GETARG_INT64(2),
									 PG_GETARG_INT16(3), PG_GETARG_BOOL(4),
									 PG_GETARG_INT32(5)));
}
