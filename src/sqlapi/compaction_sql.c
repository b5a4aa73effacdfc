/*
 * SQL: streamlog.clean(), one cleaning pass now, and
 * streamlog.compaction_status(), the cleaner's progress behind the view
 * streamlog.compaction.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog_clean);
PG_FUNCTION_INFO_V1(streamlog_compaction_status);

/*
 * Clean one partition or all of a compacted topic, in the caller's
 * transaction, as if every partition were dirty enough (a forced clean):
 * the active segment, the high watermark and min.compaction.lag.ms still
 * bound what is cleaned.  Waits for a background pass on the same
 * partition to end.
 */
Datum
streamlog_clean(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const SlTopic *topic;
	char	   *name;
	int32		first;
	int32		last;
	int64		now_ms = SlTimestampToKafka(GetCurrentTimestamp());

	SlRequireArg(fcinfo, 0, "topic");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SlAclCheck(SL_RESOURCE_TOPIC, name, SL_ACL_ALTER);
	topic = SlTopicLookupAndLock(name, AccessShareLock);
	if (!topic->config.compact)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("topic \"%s\" is not compacted", name),
				 errdetail("Its cleanup.policy has no \"compact\"."),
				 errhint("Set it with streamlog.alter_topic('%s', '{\"cleanup.policy\": \"compact\"}').",
						 name)));
	if (PG_ARGISNULL(1))
	{
		first = 0;
		last = topic->partition_count - 1;
	}
	else
	{
		first = last = PG_GETARG_INT32(1);
		SlTopicCheckPartition(topic, first);
	}

	InitMaterializedSRF(fcinfo, 0);
	for (int32 p = first; p <= last; p++)
	{
		SlCompactionResult result;
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		CHECK_FOR_INTERRUPTS();
		SlCompactPartition(topic, p, now_ms, true, false, &result);
		values[0] = Int32GetDatum(p);
		values[1] = Int64GetDatum(result.cleaned_offset);
		values[2] = Int64GetDatum(result.records_removed);
		values[3] = Int64GetDatum(result.bytes_reclaimed);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* One row per partition of a compacted topic the caller may describe */
Datum
streamlog_compaction_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const SlTopic *topic;
	int64		now_ms = SlTimestampToKafka(GetCurrentTimestamp());

	InitMaterializedSRF(fcinfo, 0);
	if (!SlAclAllowed(GetUserId(), SL_RESOURCE_TOPIC, name, SL_ACL_DESCRIBE))
		return (Datum) 0;
	topic = SlTopicTryLookupAndLock(name, AccessShareLock);
	if (topic == NULL || !topic->config.compact)
		return (Datum) 0;

	for (int32 p = 0; p < topic->partition_count; p++)
	{
		SlCompactionStatus st;
		Datum		values[9];
		bool		nulls[9] = {0};

		SlCompactionGetStatus(topic, p, now_ms, &st);
		values[0] = Int32GetDatum(p);
		values[1] = Int64GetDatum(st.cleaned_offset);
		values[2] = Float8GetDatum(st.dirty_ratio);
		values[3] = Int64GetDatum(st.dirty_bytes);
		values[4] = TimestampTzGetDatum(st.last_run);
		nulls[4] = st.last_run == 0;
		values[5] = Int64GetDatum(st.passes);
		values[6] = Int64GetDatum(st.records_removed);
		values[7] = Int64GetDatum(st.bytes_reclaimed);
		if (st.last_error)
			values[8] = CStringGetTextDatum(st.last_error);
		nulls[8] = st.last_error == NULL;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
