/*
 * Retention: rolling the active segment and dropping whole old segments,
 * as Kafka rolls and deletes segment files.
 *
 * The cleaner (bgworkers/cleaner.c) calls these in two transactions per
 * partition: SlRetentionPrepareRoll creates the next segment, and once that
 * table is committed (so producers can open it) SlRetentionApply switches
 * appends to it and drops the segments retention no longer keeps.  A
 * segment is only dropped when every offset in it is below the high
 * watermark, so no reservation still in flight can point into it.
 *
 * Only cleanup.policy "delete" (alone or with "compact") drops segments: a
 * topic that is "compact" alone keeps every segment, which the log cleaner
 * (compaction.c) rewrites instead.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "storage/lockdefs.h"

#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/compaction.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/segments.h"
#include "streamlog/storage/internal/txn.h"
#include "streamlog/storage/storage.h"

/* Does retention.ms remove old segments of a topic with this config? */
static inline bool
retention_by_time(const SlTopicConfig *config)
{
	return config->delete_policy && config->retention_ms >= 0;
}

bool
SlRetentionPrepareRoll(const SlTopic *topic, int32 partition, int64 now_ms,
					   int32 *seq, Oid *relid)
{
	SlPartitionKey key = SlMakePartitionKey(topic->topic_id, partition);
	SlPartitionSnapshot snap;
	SlSegment  *segments;
	SlSegment  *last;
	SlSegmentStats stats;
	int			nsegments;
	int64		log_start;
	bool		roll;
	bool		time_retention = retention_by_time(&topic->config);

	SlPartitionStateRead(SlPartitionStateGet(key), &snap);
	segments = SlSegmentList(key, &nsegments, &log_start);
	last = &segments[nsegments - 1];

	/* A segment made by a pass that stopped before switching to it */
	if (last->seq != snap.active_seq)
	{
		*seq = last->seq;
		*relid = last->relid;
		return true;
	}
	if (snap.next_offset == snap.active_base)
		return false;			/* nothing was appended to the active segment */

	SlSegmentGetStats(last->relid, &stats, time_retention);
	if (stats.empty)
		return false;
	roll = SlSegmentBytes(last->relid) >= topic->config.segment_bytes ||
		now_ms - stats.first_timestamp >= topic->config.segment_ms ||
		(time_retention &&
		 stats.newest_timestamp < now_ms - topic->config.retention_ms);

	/*
	 * The active segment is never compacted: a compacted topic rolls it
	 * once its first record is older than max.compaction.lag.ms, so that
	 * the cleaner may clean that record in time (Kafka does the same).
	 */
	if (topic->config.compact &&
		topic->config.max_compaction_lag_ms < PG_INT64_MAX &&
		now_ms - stats.first_timestamp >= topic->config.max_compaction_lag_ms)
		roll = true;
	if (!roll)
		return false;

	*seq = last->seq + 1;
	*relid = SlSegmentCreate(key, *seq, -1);
	return true;
}

int
SlRetentionApply(const SlTopic *topic, int32 partition, int64 now_ms,
				 int32 roll_seq, Oid roll_relid)
{
	SlPartitionKey key = SlMakePartitionKey(topic->topic_id, partition);
	SlPartitionState *state = SlPartitionStateGet(key);
	SlPartitionSnapshot snap;
	SlSegment  *segments;
	int64	   *sizes;
	int64		total = 0;
	int64		log_start;
	int64		new_start = -1;
	int			nsegments;
	int			dropped = 0;
	bool		may_drop;

	if (OidIsValid(roll_relid))
	{
		int64		base = SlPartitionStateSwitchSegment(state, roll_relid, roll_seq);

		SlSegmentSetBase(key, roll_seq, base);
	}

	/*
	 * Only cleanup.policy "delete" removes old segments; and not while the
	 * log cleaner rewrites the partition's segments (the next round will).
	 * The lock comes before the list, so that the list shows what a pass
	 * that just ended made.
	 */
	may_drop = topic->config.delete_policy &&
		(topic->config.retention_ms >= 0 || topic->config.retention_bytes >= 0) &&
		SlCompactionLockPartition(key, true);

	SlPartitionStateRead(state, &snap);
	segments = SlSegmentList(key, &nsegments, &log_start);

	/* Persist the base of the active segment if a crash lost it */
	if (segments[nsegments - 1].base_offset < 0 &&
		segments[nsegments - 1].seq == snap.active_seq)
	{
		SlSegmentSetBase(key, snap.active_seq, snap.active_base);
		segments[nsegments - 1].base_offset = snap.active_base;
	}

	if (!may_drop)
	{
		pfree(segments);
		return 0;
	}

	sizes = palloc(sizeof(int64) * nsegments);
	for (int i = 0; i < nsegments; i++)
		total += sizes[i] = SlSegmentBytes(segments[i].relid);

	/* Drop from the head, the active segment never */
	for (int i = 0; i < nsegments - 1; i++)
	{
		SlSegment  *segment = &segments[i];
		int64		next_base = segments[i + 1].base_offset;
		bool		expired = false;

		if (next_base < 0 || next_base > snap.high_watermark)
			break;				/* some offsets of it may still be committing */
		if (topic->config.retention_ms >= 0)
		{
			/*
			 * Batches without timestamps count at their append time, so the
			 * newest timestamp of a segment with records is never -1.
			 */
			int64		newest = segment->max_timestamp;

			if (newest < 0)
			{
				SlSegmentStats stats;

				SlSegmentGetStats(segment->relid, &stats, true);
				newest = stats.empty ? PG_INT64_MIN : stats.newest_timestamp;
				if (!stats.empty)
					SlSegmentSetMaxTimestamp(key, segment->seq, newest);
			}
			expired = newest < now_ms - topic->config.retention_ms;
		}
		if (topic->config.retention_bytes >= 0 &&
			total - sizes[i] >= topic->config.retention_bytes)
			expired = true;
		if (!expired)
			break;

		SlSegmentDrop(key, segment->seq, segment->relid);
		total -= sizes[i];
		new_start = next_base;
		dropped++;
	}

	if (new_start > log_start)
	{
		Oid			types[3] = {INT4OID, INT4OID, INT8OID};
		Datum		values[3] = {Int32GetDatum(key.topic_id), Int32GetDatum(key.partition),
		Int64GetDatum(new_start)};

		SPI_connect();
		SlCatalogQuery("UPDATE streamlog.partition SET log_start_offset = $3 "
					   "WHERE topic_id = $1 AND partition = $2", 3, types, values, NULL);
		SPI_finish();
		/* Aborted transactions wholly below it are gone with their records */
		SlTxnPruneBelow(key.topic_id, key.partition, new_start);
		SlPartitionStateSetLogStart(state, new_start);
	}
	pfree(sizes);
	pfree(segments);
	return dropped;
}
