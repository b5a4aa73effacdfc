/*
 * SQL: the replicated log's side channel (README, "The replicated log"),
 * streamlog._replica_read() and streamlog._epoch_end_offset(), which a
 * follower calls on its leader over libpq, and _truncate_partition(), a
 * replica's own truncation.  Superuser only: they go beneath privileges
 * and the high watermark.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/sqlapi/cluster_sql.h"
#include "streamlog/storage/replica_log.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog__replica_read);
PG_FUNCTION_INFO_V1(streamlog__epoch_end_offset);
PG_FUNCTION_INFO_V1(streamlog__truncate_partition);

static void
require_superuser(const char *function)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", function),
				 errdetail("It reads or changes a partition's log beneath privileges and the high watermark."),
				 errhint("Nodes call it on each other as a superuser (streamlog's replication role).")));
}

/* The topic with id topic_id, locked in mode, and a partition of it */
static const SlTopic *
lock_topic(int32 topic_id, int32 partition, LOCKMODE mode)
{
	const SlTopic *topic = SlSqlTopicByIdLocked(topic_id, mode);

	SlTopicCheckPartition(topic, partition);
	return topic;
}

typedef struct ReadRows
{
	ReturnSetInfo *rsinfo;
} ReadRows;

static void
emit_row(const SlReplicaBatch *batch, void *arg)
{
	ReadRows   *rows = arg;
	Datum		values[5];
	bool		nulls[5] = {0};
	bytea	   *bytes = palloc(VARHDRSZ + batch->len);

	SET_VARSIZE(bytes, VARHDRSZ + batch->len);
	memcpy(VARDATA(bytes), batch->data, batch->len);
	values[0] = Int64GetDatum(batch->base_offset);
	values[1] = Int64GetDatum(batch->last_offset);
	values[2] = Int32GetDatum(batch->leader_epoch);
	values[3] = Int64GetDatum(batch->append_time);
	values[4] = PointerGetDatum(bytes);
	tuplestore_putvalues(rows->rsinfo->setResult, rows->rsinfo->setDesc, values, nulls);
	pfree(bytes);
}

Datum
streamlog__replica_read(PG_FUNCTION_ARGS)
{
	int32		topic_id = PG_GETARG_INT32(0);
	int32		partition = PG_GETARG_INT32(1);
	int64		from = PG_GETARG_INT64(2);
	int32		max_bytes = PG_GETARG_INT32(3);
	const SlTopic *topic;
	ReadRows	rows;

	require_superuser("_replica_read");
	if (from < 0 || max_bytes < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_offset and max_bytes must be 0 or more")));
	topic = lock_topic(topic_id, partition, AccessShareLock);
	InitMaterializedSRF(fcinfo, 0);
	rows.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	(void) SlReplicaRead(topic, partition, from, max_bytes, emit_row, &rows);
	return (Datum) 0;
}

Datum
streamlog__epoch_end_offset(PG_FUNCTION_ARGS)
{
	int32		topic_id = PG_GETARG_INT32(0);
	int32		partition = PG_GETARG_INT32(1);
	int32		epoch = PG_GETARG_INT32(2);
	const SlTopic *topic;
	int32		current = -1;
	int32		end_epoch;
	int64		end_offset;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[2];
	bool		nulls[2] = {0};

	require_superuser("_epoch_end_offset");
	topic = lock_topic(topic_id, partition, AccessShareLock);

	/*
	 * A leader knows its own epoch before it wrote a batch in it (Kafka's);
	 * a node of its own leads every partition, in the epoch its catalog says
	 */
	if (topic->partitions == NULL)
		current = 0;
	else if (!SlClusterEnabled() ||
			 SlTopicPartitionLeadership(topic, partition)->leader == sl_node_id)
		current = SlTopicPartitionLeadership(topic, partition)->leader_epoch;
	SlPartitionEpochEndOffset(topic, partition, epoch, current, &end_epoch, &end_offset);

	InitMaterializedSRF(fcinfo, 0);
	values[0] = Int32GetDatum(end_epoch);
	values[1] = Int64GetDatum(end_offset);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

Datum
streamlog__truncate_partition(PG_FUNCTION_ARGS)
{
	int32		topic_id = PG_GETARG_INT32(0);
	int32		partition = PG_GETARG_INT32(1);
	int64		offset = PG_GETARG_INT64(2);
	const SlTopic *topic;

	require_superuser("_truncate_partition");
	topic = lock_topic(topic_id, partition, RowExclusiveLock);
	PG_RETURN_INT64(SlPartitionTruncate(topic, partition, offset));
}
