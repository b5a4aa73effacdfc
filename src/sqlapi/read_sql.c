/*
 * SQL: streamlog.read(), history(), offset_for_time(), partition_state()
 * and as_text().
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lockdefs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "streamlog/sqlapi/record_rows.h"
#include "streamlog/sqlapi/cluster_sql.h"
#include "streamlog/sqlapi/isolation_arg.h"
#include "streamlog/sqlapi/remote_read.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/sqlapi/sql_read_metrics.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/transactions.h"

PG_FUNCTION_INFO_V1(streamlog_read);
PG_FUNCTION_INFO_V1(streamlog_history);
PG_FUNCTION_INFO_V1(streamlog_offset_for_time);
PG_FUNCTION_INFO_V1(streamlog_partition_state);
PG_FUNCTION_INFO_V1(streamlog_as_text);

/*
 * The topic named by argument 0, once the caller may do op on it, locked
 * for reading.  The privilege is checked before the lookup, so that a role
 * without it cannot tell whether the topic exists.
 */
static const SlTopic *
topic_arg(FunctionCallInfo fcinfo, SlAclOperation op)
{
	char	   *name;

	SlRequireArg(fcinfo, 0, "topic");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SlAclCheck(SL_RESOURCE_TOPIC, name, op);
	return SlTopicLookupAndLock(name, AccessShareLock);
}

/*
 * Emit up to max_records records of one partition; returns how many.  A
 * partition this node has no copy of is read through its leader: read()
 * (history = false) by the leader's read(), history() by its history(),
 * which takes the time bounds too.
 */
static int64
emit_partition(SlRecordRows *rows, const SlTopic *topic, int32 partition,
			   const SlLogScanBounds *bounds, int64 max_records, bool history)
{
	SlLogScan  *scan;
	SlRecord	rec;
	int64		n = 0;
	SlSqlReadCount count = {0, 0};

	/*
	 * No copy here: the leader's read() stops at its own high watermark
	 * (and LSO), and refuses an offset out of its range itself
	 */
	if (SlSqlPartitionReadRemotely(topic, partition))
	{
		int64		next;

		if (history)
			return SlRemoteHistoryRecords(rows, topic, partition, bounds);

		return SlRemoteReadRecords(rows, topic, partition, bounds->from_offset, max_records,
								   bounds->read_committed, PG_INT64_MAX, &next);
	}
	SlSqlCheckPartitionReplica(topic, partition);
	scan = SlLogScanBegin(topic, partition, bounds);

	while (n < max_records && SlLogScanNext(scan, &rec))
	{
		SlRecordRowsPut(rows, partition, &rec);
		SlSqlReadCountAdd(&count, &rec);
		n++;
		CHECK_FOR_INTERRUPTS();
	}
	SlLogScanEnd(scan);
	SlSqlReadCountDone(topic, partition, &count);
	return n;
}

Datum
streamlog_read(PG_FUNCTION_ARGS)
{
	const SlTopic *topic;
	int32		partition;
	int64		from_offset;
	int32		max_records;
	SlLogScanBounds bounds;
	SlRecordRows rows;

	SlRequireArg(fcinfo, 0, "topic");
	SlRequireArg(fcinfo, 1, "partition");
	SlRequireArg(fcinfo, 2, "from_offset");
	SlRequireArg(fcinfo, 3, "max_records");
	topic = topic_arg(fcinfo, SL_ACL_READ);
	partition = PG_GETARG_INT32(1);
	from_offset = PG_GETARG_INT64(2);
	max_records = PG_GETARG_INT32(3);
	SlTopicCheckPartition(topic, partition);
	if (from_offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_offset must not be negative")));
	if (max_records < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_records must not be negative")));
	SlLogScanBoundsInit(&bounds);
	bounds.from_offset = from_offset;
	bounds.error_below_start = true;
	bounds.read_committed = SlIsolationArgReadCommitted(fcinfo, 4);
	SlRecordRowsInit(&rows, fcinfo);
	emit_partition(&rows, topic, partition, &bounds, max_records, false);
	return (Datum) 0;
}

Datum
streamlog_history(PG_FUNCTION_ARGS)
{
	const SlTopic *topic;
	SlLogScanBounds bounds;
	SlRecordRows rows;
	int32	   *partitions;
	int			npartitions;

	topic = topic_arg(fcinfo, SL_ACL_READ);
	SlLogScanBoundsInit(&bounds);
	if (!PG_ARGISNULL(2))
		bounds.from_offset = Max(PG_GETARG_INT64(2), 0);
	if (!PG_ARGISNULL(3))
		bounds.to_offset = PG_GETARG_INT64(3);
	if (!PG_ARGISNULL(4))
		bounds.from_ts = SlTimestampToKafka(PG_GETARG_TIMESTAMPTZ(4));
	if (!PG_ARGISNULL(5))
		bounds.to_ts = SlTimestampToKafka(PG_GETARG_TIMESTAMPTZ(5));
	bounds.read_committed = SlIsolationArgReadCommitted(fcinfo, 6);

	if (PG_ARGISNULL(1))
	{
		npartitions = topic->partition_count;
		partitions = palloc(sizeof(int32) * npartitions);
		for (int i = 0; i < npartitions; i++)
			partitions[i] = i;
	}
	else
	{
		ArrayType  *array = PG_GETARG_ARRAYTYPE_P(1);
		Datum	   *elems;
		bool	   *nulls;

		deconstruct_array(array, INT4OID, 4, true, TYPALIGN_INT, &elems, &nulls, &npartitions);
		partitions = palloc(sizeof(int32) * Max(npartitions, 1));
		for (int i = 0; i < npartitions; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("partitions must not contain NULL")));
			partitions[i] = DatumGetInt32(elems[i]);
			SlTopicCheckPartition(topic, partitions[i]);
		}
	}

	SlRecordRowsInit(&rows, fcinfo);
	for (int i = 0; i < npartitions; i++)
		emit_partition(&rows, topic, partitions[i], &bounds, PG_INT64_MAX, true);
	return (Datum) 0;
}

Datum
streamlog_offset_for_time(PG_FUNCTION_ARGS)
{
	const SlTopic *topic;
	int32		partition;
	SlLogScanBounds bounds;
	SlLogScan  *scan;
	SlRecord	rec;
	bool		found;
	int64		offset = 0;

	SlRequireArg(fcinfo, 0, "topic");
	SlRequireArg(fcinfo, 1, "partition");
	SlRequireArg(fcinfo, 2, "ts");
	/* DESCRIBE, as Kafka's ListOffsets (offsetsForTimes) asks */
	topic = topic_arg(fcinfo, SL_ACL_DESCRIBE);
	partition = PG_GETARG_INT32(1);
	SlTopicCheckPartition(topic, partition);
	SlLogScanBoundsInit(&bounds);
	bounds.from_ts = SlTimestampToKafka(PG_GETARG_TIMESTAMPTZ(2));
	/* No copy here: the leader answers, below its own high watermark */
	if (SlSqlPartitionReadRemotely(topic, partition))
	{
		if (!SlRemoteOffsetForTime(topic, partition, bounds.from_ts, &offset))
			PG_RETURN_NULL();
		PG_RETURN_INT64(offset);
	}
	SlSqlCheckPartitionReplica(topic, partition);
	scan = SlLogScanBegin(topic, partition, &bounds);
	found = SlLogScanNext(scan, &rec);
	if (found)
		offset = rec.offset;
	SlLogScanEnd(scan);
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_INT64(offset);
}

Datum
streamlog_partition_state(PG_FUNCTION_ARGS)
{
	SlPartitionOffsets state;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	const SlTopic *topic;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	/* The views call it for the topics they show: those the role may describe */
	topic = SlTopicLookupById(PG_GETARG_INT32(0));
	if (topic == NULL)
		PG_RETURN_NULL();
	SlAclCheck(SL_RESOURCE_TOPIC, topic->name, SL_ACL_DESCRIBE);
	SlPartitionGetOffsets(PG_GETARG_INT32(0), PG_GETARG_INT32(1), &state);
	values[0] = Int64GetDatum(state.log_start_offset);
	values[1] = Int64GetDatum(state.high_watermark);
	/* Read after the high watermark: never above the one shown */
	values[2] = Int64GetDatum(Min(state.high_watermark,
								  SlPartitionLastStableOffset(PG_GETARG_INT32(0),
															  PG_GETARG_INT32(1))));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

Datum
streamlog_as_text(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	const char *data = VARDATA_ANY(b);
	int			len = VARSIZE_ANY_EXHDR(b);

	/* Errors out, with the offending bytes, if not valid UTF-8 */
	pg_verify_mbstr(PG_UTF8, data, len, false);
	PG_RETURN_TEXT_P(SlUtf8ToText(data, len));
}
