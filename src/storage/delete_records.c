/*
 * Deleting records from the head of a partition (Kafka's DeleteRecords):
 * the log start offset moves up to a given offset, and segments that lie
 * wholly below it are dropped, as Kafka deletes whole segment files.
 *
 * The catalog (streamlog.partition.log_start_offset) changes in the
 * caller's transaction; the shared state follows when that transaction
 * commits, so a rolled-back deletion leaves no trace.  Readers take the
 * larger of the two, so records below the new start are unreadable from
 * the commit on.
 *
 * The topic is locked AccessExclusiveLock, as for a drop: no reader is
 * inside a segment being dropped, no produce is still committing (so the
 * high watermark holds still), and the cleaner, which reads and rewrites
 * the log start offset under AccessShareLock, cannot interleave with us
 * and set it back.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/memutils.h"

#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/segments.h"
#include "streamlog/storage/internal/txn.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/internal/xact.h"

/* A log start offset to publish to shared memory at commit */
typedef struct PendingLogStart
{
	SlPendingWork work;			/* first: kept in pending */
	SlPartitionState *state;
	int64		log_start;
} PendingLogStart;

static List *pending = NIL;		/* in TopTransactionContext */

/* Called by xact.c, before topics.c may forget the states pointed to */
void
SlDeleteRecordsXactEvent(XactEvent event)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			foreach(lc, pending)
			{
				PendingLogStart *p = lfirst(lc);

				SlPartitionStateSetLogStart(p->state, p->log_start);
			}
			pending = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* after PREPARE the catalog alone carries the new start */
			pending = NIL;
			break;
		default:
			break;
	}
}

void
SlDeleteRecordsSubXactAbort(SubTransactionId subid)
{
	SlPendingWorkAbortSub(&pending, subid, NULL);
}

static void
publish_at_commit(SlPartitionState *state, int64 log_start)
{
	PendingLogStart *p = SlPendingWorkAdd(&pending, sizeof(PendingLogStart));

	p->state = state;
	p->log_start = log_start;
}

int64
SlPartitionDeleteRecords(const SlTopic *topic, int32 partition, int64 before_offset)
{
	char		name[SL_TOPIC_NAME_MAX + 1];
	int32		topic_id = topic->topic_id;
	SlPartitionKey key;
	SlPartitionState *state;
	SlPartitionSnapshot snap;
	SlSegment  *segments;
	int			nsegments;
	int64		catalog_start;
	int64		target;
	int64		new_start;

	strlcpy(name, topic->name, sizeof(name));
	SlTopicRefuseInternal(name, "delete records of");
	topic = SlTopicLookupAndLock(name, AccessExclusiveLock);
	if (topic->topic_id != topic_id)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("topic \"%s\" was dropped", name)));
	SlTopicCheckPartition(topic, partition);

	key = SlMakePartitionKey(topic_id, partition);
	state = SlPartitionStateGet(key);
	SlPartitionStateRead(state, &snap);

	if (before_offset == -1)
		target = snap.high_watermark;
	else if (before_offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot delete records before offset %lld of partition %d of topic \"%s\": offsets are not negative",
						(long long) before_offset, partition, name),
				 errdetail("The only negative offset accepted is -1, which stands for the high watermark (%lld).",
						   (long long) snap.high_watermark),
				 errhint("Pass an offset from 0 to %lld, or -1 to delete every record of the partition.",
						 (long long) snap.high_watermark)));
	else if (before_offset > snap.high_watermark)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot delete records before offset %lld of partition %d of topic \"%s\": it is past the high watermark %lld",
						(long long) before_offset, partition, name,
						(long long) snap.high_watermark),
				 errhint("Pass an offset from 0 to %lld, or -1 to delete every record of the partition.",
						 (long long) snap.high_watermark)));
	else
		target = before_offset;

	/* The catalog row: never moves backwards */
	{
		Oid			types[3] = {INT4OID, INT4OID, INT8OID};
		Datum		values[3] = {Int32GetDatum(topic_id), Int32GetDatum(partition),
		Int64GetDatum(target)};

		SPI_connect();
		if (SlCatalogQuery("UPDATE streamlog.partition "
						   "SET log_start_offset = greatest(log_start_offset, $3) "
						   "WHERE topic_id = $1 AND partition = $2 "
						   "RETURNING log_start_offset", 3, types, values, NULL) != 1)
			elog(ERROR, "partition %d of topic \"%s\" has no catalog row", partition, name);
		catalog_start = SlCatalogInt64(0, 1, 0);
		SPI_finish();
	}
	new_start = Max(catalog_start, snap.log_start_offset);
	/* Aborted transactions wholly below it are gone with their records */
	SlTxnPruneBelow(topic_id, partition, new_start);

	/*
	 * Drop the closed segments that hold nothing at or past the new start:
	 * those whose successor begins at or below it.  The last segment is the
	 * active one (or one made for a roll not switched to yet, whose base is
	 * unknown), and stays.
	 */
	segments = SlSegmentList(key, &nsegments, &catalog_start);
	for (int i = 0; i < nsegments - 1; i++)
	{
		int64		next_base = segments[i + 1].base_offset;

		if (next_base < 0 || next_base > new_start)
			break;
		SlSegmentDrop(key, segments[i].seq, segments[i].relid);
	}
	pfree(segments);

	if (new_start > snap.log_start_offset)
		publish_at_commit(state, new_start);
	return new_start;
}
