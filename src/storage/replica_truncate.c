/*
 * Truncating a replica's log to where its leader's epoch ended (KIP-101,
 * KIP-279; CLUSTER.md section 4): every batch at or above an offset goes,
 * in the caller's transaction, and what follows the log goes with it.
 *
 * - Segment rows: the rows of batches ending at or past the offset are
 *   deleted from the segment holding it; later segments (wholly above it)
 *   are dropped, except an empty one retention prepared and has not
 *   switched to yet (it switches to it later, at the log's new end).  The
 *   segment left last is the active one again, its max_timestamp unknown.
 * - Below the log start: the log is emptied and starts at the offset.
 * - Fully (SlPartitionTruncateFullyAndStartAt, Kafka's
 *   truncateFullyAndStartAt): the log is emptied wherever the offset is,
 *   even above its end, and its next batch is expected there; the log
 *   start offset may be set above it, into that batch.  For a follower
 *   whose leader's log starts above its log end.
 * - The key index loses the partition's entries at or past the offset, and
 *   the cleaner's checkpoint moves back to it if it was past it.
 * - The open transactions and the aborted-transaction index follow the
 *   log (txn_truncate.c): a transaction whose marker goes is open again.
 * - Shared state: the partition is fenced first (no reservation in flight,
 *   none made by others until the transaction ends: partition_state.c),
 *   its next offset is the offset and its high watermark at most that,
 *   right away, so that the same transaction can append the new leader's
 *   batches; an abort puts back what was.  At commit the idempotent
 *   producers' state is forgotten and rebuilt from what is left.
 *
 * The cleaner's partition lock (compaction.c) keeps retention and
 * compaction, which rewrite and drop segments, out meanwhile.  Readers
 * never wait: their snapshots see the log before the truncation, or after,
 * and they stop at the high watermark.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "streamlog/storage/internal/catalog.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/compaction.h"
#include "streamlog/storage/internal/key_index.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/producers.h"
#include "streamlog/storage/internal/segments.h"
#include "streamlog/storage/internal/stored_batches.h"
#include "streamlog/storage/internal/txn.h"
#include "streamlog/storage/internal/xact.h"
#include "streamlog/storage/replica_log.h"

/* A partition this transaction truncated: to unfence, or put back */
typedef struct Truncation
{
	SlPendingWork work;			/* first: kept in truncations */
	SlPartitionKey key;
	SlPartitionState *state;
	SlPartitionSnapshot before; /* the state as it was */
	bool		undone;			/* its subtransaction aborted */
} Truncation;

static List *truncations = NIL;	/* in TopTransactionContext */

/*
 * Delete the rows of segment relid whose batch ends at or after from (every
 * row if from is PG_INT64_MIN), or only count them; returns how many
 * batches they hold that end at or past count_from (rows below the log
 * start are gone already, for readers).
 */
static int64
delete_rows(Oid relid, int64 from, bool do_delete, int64 count_from)
{
	Relation	rel = table_open(relid, RowExclusiveLock);
	Relation	index = index_open(SlSegmentIndexOid(rel), RowExclusiveLock);
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan;
	ScanKeyData key;
	int64		batches = 0;

	ScanKeyInit(&key, 1, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(from));
	scan = index_beginscan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		slot_getsomeattrs(slot, Anum_segment_chunk);
		if (DatumGetInt32(slot->tts_values[Anum_segment_chunk - 1]) == 0 &&
			DatumGetInt64(slot->tts_values[Anum_segment_last_offset - 1]) >= count_from)
			batches++;
		if (do_delete)
			simple_heap_delete(rel, &slot->tts_tid);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(index, RowExclusiveLock);
	table_close(rel, RowExclusiveLock);
	return batches;
}

/* The key index entries and the cleaner's checkpoint follow the log */
static void
truncate_followers(const SlTopic *topic, int32 partition, int64 offset, bool empty,
				   int64 log_start)
{
	Oid			key_index = SlKeyIndexRelid(topic->topic_id);
	Oid			types[3] = {INT4OID, INT4OID, INT8OID};
	Datum		values[3] = {Int32GetDatum(topic->topic_id), Int32GetDatum(partition),
	Int64GetDatum(offset)};

	SPI_connect();
	if (OidIsValid(key_index))
		SlCatalogQuery(psprintf("DELETE FROM streamlog_data.%s "
								"WHERE partition = $2 AND ($4 OR \"offset\" >= $3)",
								quote_identifier(get_rel_name(key_index))),
					   4, (Oid[]) {INT4OID, INT4OID, INT8OID, BOOLOID},
					   (Datum[]) {values[0], values[1], values[2], BoolGetDatum(empty)},
					   NULL);
	SlCatalogQuery("UPDATE streamlog.compaction_state SET cleaned_offset = $3 "
				   "WHERE topic_id = $1 AND partition = $2 AND cleaned_offset > $3",
				   3, types, values, NULL);
	if (empty)
	{
		values[2] = Int64GetDatum(log_start);
		SlCatalogQuery("UPDATE streamlog.partition SET log_start_offset = $3 "
					   "WHERE topic_id = $1 AND partition = $2", 3, types, values, NULL);
	}
	SPI_finish();
}

/*
 * Remove every batch at or above offset; fully, every batch, the next one
 * expected at offset and the log starting at log_start (>= offset).
 */
static int64
truncate_log(const SlTopic *topic, int32 partition, int64 offset, bool fully,
			 int64 log_start)
{
	SlPartitionKey key = SlMakePartitionKey(topic->topic_id, partition);
	SlPartitionState *state;
	SlPartitionSnapshot before;
	SlPartitionSnapshot after;
	SlStoredBatches *sb;
	const SlSegment *segments;
	int			nsegments;
	int64		catalog_start;
	int64		log_end;
	bool		empty;
	int			keep = 0;
	int			active = -1;
	int64		removed = 0;
	int64		count_from;
	Truncation *t;

	SlTopicCheckPartition(topic, partition);
	state = SlPartitionStateGet(key);

	/* Retention and compaction rewrite segments: not meanwhile */
	(void) SlCompactionLockPartition(key, false);
	SlPartitionStateFence(state);
	t = SlPendingWorkAdd(&truncations, sizeof(Truncation));
	t->key = key;
	t->state = state;
	SlPartitionStateRead(state, &before);
	t->before = before;

	log_end = SlPartitionStateLogEnd(state);
	empty = fully || offset < before.log_start_offset;
	if (offset >= log_end && !empty)
		return 0;				/* fenced until the end all the same: cheap */

	sb = SlStoredBatchesOpen(key);
	segments = SlStoredBatchesSegments(sb, &nsegments, &catalog_start);
	empty |= offset < catalog_start;
	/* Before the batches go: it reads the markers that go */
	SlTxnTruncate(topic->topic_id, partition, offset, empty);
	count_from = Max(fully ? PG_INT64_MIN : offset, Max(before.log_start_offset, catalog_start));
	if (!fully)
		log_start = offset;
	if (!empty)
		for (int i = 0; i < nsegments; i++)
			if (segments[i].base_offset >= 0 && segments[i].base_offset <= offset)
				keep = i;

	for (int i = keep; i < nsegments; i++)
	{
		const SlSegment *segment = &segments[i];

		if (i > keep && segment->base_offset >= 0)
		{
			/* Wholly at or past offset: the table goes */
			removed += delete_rows(segment->relid, PG_INT64_MIN, false, count_from);
			SlSegmentDrop(key, segment->seq, segment->relid);
			continue;
		}
		removed += delete_rows(segment->relid, empty ? PG_INT64_MIN : offset, true,
							   count_from);
		SlSegmentSetMaxTimestamp(key, segment->seq, -1);
		active = i;
	}
	if (empty)
		SlSegmentSetBase(key, segments[keep].seq, offset);
	truncate_followers(topic, partition, offset, empty, log_start);
	CommandCounterIncrement();

	/* The state of the log that is left (partition_load's rules) */
	after = before;
	after.next_offset = offset;
	after.log_end = offset;
	/* As Kafka, a log emptied to start further on has its watermark there */
	after.high_watermark = fully ? offset : Min(before.high_watermark, offset);
	if (empty)
		after.log_start_offset = log_start;
	after.active_relid = segments[active].relid;
	after.active_seq = segments[active].seq;
	if (empty)
		after.active_base = offset;
	else if (segments[active].base_offset >= 0)
		after.active_base = segments[active].base_offset;
	else
	{
		SlSegmentStats stats;

		SlSegmentGetStats(segments[active].relid, &stats, false);
		after.active_base = stats.empty ? offset : stats.first_offset;
	}
	SlPartitionStateReset(state, &after);
	SlStoredBatchesClose(sb);
	return removed;
}

int64
SlPartitionTruncate(const SlTopic *topic, int32 partition, int64 offset)
{
	if (offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot truncate partition %d of topic \"%s\" to offset %lld",
						partition, topic->name, (long long) offset),
				 errhint("Offsets are 0 or more.")));
	return truncate_log(topic, partition, offset, false, offset);
}

int64
SlPartitionTruncateFullyAndStartAt(const SlTopic *topic, int32 partition, int64 offset,
								   int64 log_start)
{
	if (offset < 0 || log_start < offset)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot empty partition %d of topic \"%s\" to start at offset %lld with log start offset %lld",
						partition, topic->name, (long long) offset, (long long) log_start),
				 errhint("Offsets are 0 or more, and the log start offset is at least the offset the log restarts at.")));
	return truncate_log(topic, partition, offset, true, log_start);
}

/*
 * Put back what the truncations made in subtransaction subid or later
 * changed, newest first, so that each puts back the state the one before
 * it left.  They stay in the list: the fence stays until the top
 * transaction ends, which unfences every partition in it.
 */
static void
undo_truncations(SubTransactionId subid)
{
	for (int i = list_length(truncations) - 1; i >= 0; i--)
	{
		Truncation *t = list_nth(truncations, i);

		if (t->work.subid < subid || t->undone)
			continue;
		SlPartitionStateReset(t->state, &t->before);
		t->undone = true;
	}
}

void
SlReplicaTruncateXactEvent(XactEvent event)
{
	ListCell   *lc;

	if (truncations == NIL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			foreach(lc, truncations)
			{
				Truncation *t = lfirst(lc);

				if (!t->undone)
					SlProducersForgetPartition(t->key);
				SlPartitionStateUnfence(t->state);
			}
			truncations = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			undo_truncations(TopSubTransactionId);
			foreach(lc, truncations)
				SlPartitionStateUnfence(((Truncation *) lfirst(lc))->state);
			truncations = NIL;
			break;
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot prepare a transaction that truncated a streamlog partition")));
			break;
		default:
			break;
	}
}

void
SlReplicaTruncateSubXactAbort(SubTransactionId subid)
{
	undo_truncations(subid);
}
