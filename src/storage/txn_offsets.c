/*-------------------------------------------------------------------------
 * txn_offsets.c
 *	  Pending transactional offsets (txn_offsets.h).
 *
 * Kafka keeps them in the group coordinator's memory and in
 * __consumer_offsets as transactional records the marker settles; here
 * they wait in a table of their own, and the commit goes through the
 * group offsets' own path (SlGroupOffsetsCommit), which writes the
 * __consumer_offsets records, so that readers of group_offset never see
 * an offset of a transaction that has not committed.
 *
 * On a cluster the table is the coordinator's working copy, as
 * group_offset is: what survives the coordinator is the log.  Staging
 * therefore also appends the offsets to the group's partition of
 * __consumer_offsets as Kafka's coordinator does, one transactional batch
 * (the producer's id and epoch, no sequence) of OffsetCommit records, in
 * the same transaction as the rows; the marker the transaction
 * coordinator writes into that partition settles them.  A node that
 * starts leading the partition rebuilds the rows of transactions still
 * open from its replica (group_offsets_load.c).  Standalone there is no
 * other node to replay the log, and the rows are as durable as it: no
 * batch, and __consumer_offsets holds only committed offsets, as before.
 *
 * IDENTIFICATION
 *	  src/storage/txn_offsets.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/offsets_records.h"
#include "streamlog/protocol/records.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/txn_offsets.h"

typedef enum PendingQueryId
{
	Q_STAGE,
	Q_TAKE,
	Q_DISCARD,
	Q_PENDING
} PendingQueryId;

static const SlNamedQuery pending_queries[] = {
	[Q_STAGE] = {
		"INSERT INTO streamlog.txn_pending_offset AS o (producer_id, group_id, topic_id, "
		"  partition, committed_offset, leader_epoch, metadata, staged_epoch) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
		"ON CONFLICT (producer_id, group_id, topic_id, partition) DO UPDATE SET "
		"  committed_offset = excluded.committed_offset, "
		"  leader_epoch = excluded.leader_epoch, metadata = excluded.metadata, "
		"  staged_epoch = excluded.staged_epoch",
		8, {INT8OID, TEXTOID, INT4OID, INT4OID, INT8OID, INT4OID, TEXTOID, INT4OID}
	},
	[Q_TAKE] = {
		"SELECT topic_id, partition, committed_offset, leader_epoch, metadata "
		"FROM streamlog.txn_pending_offset WHERE producer_id = $1 AND group_id = $2 "
		"ORDER BY topic_id, partition",
		2, {INT8OID, TEXTOID}
	},
	[Q_DISCARD] = {
		"DELETE FROM streamlog.txn_pending_offset WHERE producer_id = $1 AND group_id = $2",
		2, {INT8OID, TEXTOID}
	},
	[Q_PENDING] = {
		"SELECT 1 FROM streamlog.txn_pending_offset "
		"WHERE group_id = $1 AND topic_id = $2 AND partition = $3 LIMIT 1",
		3, {TEXTOID, INT4OID, INT4OID}
	},
};

/*
 * The group's partition of __consumer_offsets, locked, if the offsets go
 * there too (a cluster that has the topic, and this node leads the
 * partition), with the leader epoch it leads it in; else NULL
 */
static const SlTopic *
logged_partition(const char *group_id, int32 *partition, int32 *leader_epoch)
{
	const SlTopic *topic;
	const SlPartitionLeadership *l;

	if (!sl_offsets_topic)
		return NULL;
	topic = SlTopicTryLookupAndLock(SL_OFFSETS_TOPIC_NAME, AccessShareLock);
	/* partitions: the leaders of a cluster's topic (NULL standalone) */
	if (topic == NULL || topic->partitions == NULL || topic->partition_count <= 0)
		return NULL;
	*partition = SlOffsetsPartitionFor(group_id, topic->partition_count);
	l = SlTopicPartitionLeadership(topic, *partition);
	if (l->leader != sl_node_id)
		return NULL;
	*leader_epoch = l->leader_epoch;
	return topic;
}

/*
 * Buffer the offsets as one transactional batch of producer (id, epoch)
 * for the group's partition: appended at commit, gone with a rollback
 */
static void
append_batch(const SlTopic *offsets_topic, int32 partition, int64 producer_id,
			 int16 producer_epoch, const char *group_id, const SlGroupOffset *offsets,
			 int count)
{
	SlBatchBuilder builder;
	StringInfoData key;
	StringInfoData value;
	StringInfoData data;
	SlBatchHeader hdr;
	int64		now_ms = SlTimestampToKafka(GetCurrentTimestamp());
	const char *error = NULL;
	int			nrecords = 0;

	SlBatchBuilderInit(&builder, SL_COMPRESSION_NONE);
	builder.producer_id = producer_id;
	builder.producer_epoch = producer_epoch;
	builder.base_sequence = SL_NO_SEQUENCE;
	SlBatchBuilderSetBase(&builder, SL_BATCH_ATTR_TRANSACTIONAL, false, 0);
	initStringInfo(&key);
	initStringInfo(&value);
	for (int i = 0; i < count && error == NULL; i++)
	{
		const SlTopic *topic = SlTopicLookupById(offsets[i].topic_id);
		SlOffsetCommitValue v;

		if (topic == NULL)
			continue;
		resetStringInfo(&key);
		resetStringInfo(&value);
		v.offset = offsets[i].committed_offset;
		v.leader_epoch = offsets[i].leader_epoch;
		v.metadata = offsets[i].metadata;
		v.commit_timestamp = now_ms;
		error = SlEncodeOffsetCommitKey(&key, group_id, topic->name, offsets[i].partition);
		if (error == NULL)
			error = SlEncodeOffsetCommitValue(&value, &v);
		if (error == NULL)
		{
			SlBatchBuilderAdd(&builder, now_ms, (const uint8 *) key.data, key.len,
							  (const uint8 *) value.data, value.len, NULL, 0);
			nrecords++;
		}
	}
	if (error != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cannot write the pending offsets of group \"%s\" to %s: %s",
						group_id, SL_OFFSETS_TOPIC_NAME, error),
				 errhint("Kafka's record layouts limit group ids, topic names and metadata to 32767 bytes.")));
	if (nrecords == 0)
		return;
	initStringInfo(&data);
	error = SlBatchBuilderFinishSealed(&builder, &data, &hdr);
	if (error)
		elog(ERROR, "could not build the batch of pending offsets of group \"%s\": %s",
			 group_id, error);
	SlBatchBuilderFree(&builder);
	SlLogBufferBatch(offsets_topic, partition, (const uint8 *) data.data, data.len, &hdr,
					 now_ms, now_ms, NULL, NULL);
	pfree(key.data);
	pfree(value.data);
}

bool
SlTxnOffsetsStage(int64 producer_id, int16 producer_epoch, const char *group_id,
				  const SlGroupOffset *offsets, int count)
{
	Datum		values[8];
	char		nulls[8];
	int32		partition = -1;
	int32		staged_epoch = -1;
	const SlTopic *offsets_topic = logged_partition(group_id, &partition, &staged_epoch);

	SPI_connect();
	for (int i = 0; i < count; i++)
	{
		memset(nulls, ' ', sizeof(nulls));
		values[0] = Int64GetDatum(producer_id);
		values[1] = CStringGetTextDatum(group_id);
		values[2] = Int32GetDatum(offsets[i].topic_id);
		values[3] = Int32GetDatum(offsets[i].partition);
		values[4] = Int64GetDatum(offsets[i].committed_offset);
		values[5] = Int32GetDatum(offsets[i].leader_epoch);
		if (offsets[i].metadata != NULL)
			values[6] = CStringGetTextDatum(offsets[i].metadata);
		else
		{
			values[6] = (Datum) 0;
			nulls[6] = 'n';
		}
		values[7] = Int32GetDatum(staged_epoch);
		(void) SlCatalogRun(&pending_queries[Q_STAGE], values, nulls);
	}
	SPI_finish();
	if (offsets_topic == NULL || count == 0)
		return false;
	append_batch(offsets_topic, partition, producer_id, producer_epoch, group_id, offsets,
				 count);
	return true;
}

bool
SlTxnOffsetsCommit(int64 producer_id, const char *group_id, bool nowait)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		values[2];
	SlGroupOffset *offsets = NULL;
	uint64		n;

	values[0] = Int64GetDatum(producer_id);
	values[1] = CStringGetTextDatum(group_id);
	SPI_connect();
	n = SlCatalogRun(&pending_queries[Q_TAKE], values, NULL);
	if (n > 0)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);

		offsets = palloc0(sizeof(SlGroupOffset) * n);
		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;
			Datum		d;

			offsets[i].topic_id = SlCatalogInt32(i, 1, -1);
			offsets[i].partition = SlCatalogInt32(i, 2, -1);
			offsets[i].committed_offset = SlCatalogInt64(i, 3, 0);
			offsets[i].leader_epoch = SlCatalogInt32(i, 4, -1);
			d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 5, &isnull);
			offsets[i].metadata = isnull ? NULL : TextDatumGetCString(d);
		}
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	if (n == 0)
		return true;
	if (!SlGroupOffsetsCommit(group_id, offsets, (int) n, nowait))
		return false;
	SlTxnOffsetsDiscard(producer_id, group_id);
	return true;
}

void
SlTxnOffsetsDiscard(int64 producer_id, const char *group_id)
{
	Datum		values[2];

	values[0] = Int64GetDatum(producer_id);
	values[1] = CStringGetTextDatum(group_id);
	SPI_connect();
	(void) SlCatalogRun(&pending_queries[Q_DISCARD], values, NULL);
	SPI_finish();
}

bool
SlTxnOffsetsPending(const char *group_id, int32 topic_id, int32 partition)
{
	Datum		values[3];
	uint64		n;

	values[0] = CStringGetTextDatum(group_id);
	values[1] = Int32GetDatum(topic_id);
	values[2] = Int32GetDatum(partition);
	SPI_connect();
	n = SlCatalogRun(&pending_queries[Q_PENDING], values, NULL);
	SPI_finish();
	return n > 0;
}
