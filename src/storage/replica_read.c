/*
 * Reading stored batches for a follower's catch-up (see replica_log.h):
 * as stored, with the offsets and epochs they were given, up to the
 * committed log end rather than the high watermark, since a follower must
 * hold what its leader holds before the high watermark can pass it.
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/stored_batches.h"
#include "streamlog/storage/replica_log.h"

int
SlReplicaRead(const SlTopic *topic, int32 partition, int64 offset, int32 max_bytes,
			  SlReplicaBatchEmit emit, void *arg)
{
	SlPartitionKey key = SlMakePartitionKey(topic->topic_id, partition);
	SlStoredBatches *sb;
	SlStoredBatch batch;
	StringInfoData data;
	int64		log_end;
	int64		bytes = 0;
	int			emitted = 0;

	SlTopicCheckPartition(topic, partition);
	/* The end before the snapshot: everything below it is visible to it */
	log_end = SlPartitionStateLogEnd(SlPartitionStateGet(key));
	if (offset >= log_end)
		return 0;
	sb = SlStoredBatchesOpen(key);
	SlStoredBatchesSeek(sb, Max(offset, 0));
	initStringInfo(&data);
	while (SlStoredBatchesNext(sb, &batch, &data))
	{
		SlReplicaBatch out;

		if (batch.base_offset >= log_end ||
			(emitted > 0 && bytes + data.len > (int64) max_bytes))
			break;
		out.base_offset = batch.base_offset;
		out.last_offset = batch.last_offset;
		out.leader_epoch = batch.leader_epoch;
		out.append_time = batch.append_time;
		out.data = (const uint8 *) data.data;
		out.len = data.len;
		emit(&out, arg);
		emitted++;
		bytes += data.len;
		resetStringInfo(&data);
	}
	pfree(data.data);
	SlStoredBatchesClose(sb);
	return emitted;
}
