/*
 * A partition's log end and the leader epochs of its stored batches: where
 * the log ends, the epoch of its last batch, and where an epoch ended
 * (Kafka's OffsetForLeaderEpoch), read from the batches themselves through
 * the binary search of epoch_search.c.  See replica_log.h.
 */
#include "postgres.h"

#include "streamlog/storage/epoch_search.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/stored_batches.h"
#include "streamlog/storage/replica_log.h"

int64
SlPartitionLogEnd(const SlTopic *topic, int32 partition)
{
	SlTopicCheckPartition(topic, partition);
	return SlPartitionStateLogEnd(SlPartitionStateGet(SlMakePartitionKey(topic->topic_id,
																		 partition)));
}

static bool
probe_first(int64 offset, SlEpochBatch *batch, void *arg)
{
	SlStoredBatch b;

	if (!SlStoredBatchAtOrAfter((SlStoredBatches *) arg, offset, &b))
		return false;
	*batch = (SlEpochBatch) {b.base_offset, b.last_offset, b.leader_epoch};
	return true;
}

static bool
probe_before(int64 offset, SlEpochBatch *batch, void *arg)
{
	SlStoredBatch b;

	if (!SlStoredBatchBefore((SlStoredBatches *) arg, offset, &b))
		return false;
	*batch = (SlEpochBatch) {b.base_offset, b.last_offset, b.leader_epoch};
	return true;
}

/* The log as the epoch search sees it: its start, its committed end */
static SlStoredBatches *
epoch_log_open(const SlTopic *topic, int32 partition, SlEpochLog *log)
{
	SlPartitionKey key = SlMakePartitionKey(topic->topic_id, partition);
	SlPartitionState *state;
	SlPartitionSnapshot snap;
	SlStoredBatches *sb;
	int			nsegments;
	int64		catalog_start;

	SlTopicCheckPartition(topic, partition);
	state = SlPartitionStateGet(key);
	/* The end first: every batch below it is committed before the snapshot */
	log->log_end = SlPartitionStateLogEnd(state);
	SlPartitionStateRead(state, &snap);
	sb = SlStoredBatchesOpen(key);
	(void) SlStoredBatchesSegments(sb, &nsegments, &catalog_start);
	log->log_start = Max(snap.log_start_offset, catalog_start);
	log->log_start = Min(log->log_start, log->log_end);
	log->first = probe_first;
	log->before = probe_before;
	log->arg = sb;
	log->probes = 0;
	return sb;
}

int32
SlPartitionLastEpoch(const SlTopic *topic, int32 partition)
{
	SlEpochLog	log;
	SlStoredBatches *sb = epoch_log_open(topic, partition, &log);
	SlEpochBatch last;
	int32		epoch = -1;

	if (probe_before(log.log_end, &last, sb) && last.last_offset >= log.log_start)
		epoch = last.epoch;
	SlStoredBatchesClose(sb);
	return epoch;
}

int32
SlPartitionEpochAt(const SlTopic *topic, int32 partition, int64 offset)
{
	SlEpochLog	log;
	SlStoredBatches *sb = epoch_log_open(topic, partition, &log);
	SlEpochBatch batch;
	int32		epoch = -1;

	if (offset < log.log_end && probe_first(Max(offset, log.log_start), &batch, sb) &&
		batch.base_offset < log.log_end)
		epoch = batch.epoch;
	SlStoredBatchesClose(sb);
	return epoch;
}

void
SlPartitionEpochEndOffset(const SlTopic *topic, int32 partition, int32 epoch,
						  int32 current_epoch, int32 *end_epoch, int64 *end_offset)
{
	SlEpochLog	log;
	SlStoredBatches *sb = epoch_log_open(topic, partition, &log);

	SlEpochEndOffset(&log, epoch, current_epoch, end_epoch, end_offset);
	SlStoredBatchesClose(sb);
}
