/*
 * ListOffsets: earliest (-2) is the log start offset, latest (-1) the high
 * watermark, and a timestamp the first offset whose record timestamp is at
 * or after it (offsetsForTimes), or -1 if there is none.  v0 answers with
 * an array of offsets, as Kafka did then.
 *
 * With isolation_level READ_COMMITTED (v2+) the end is the last stable
 * offset instead (storage/transactions.h), and a record found by its
 * timestamp must lie below it, as in Kafka's Partition.fetchOffsetForTimestamp.
 */
#include "postgres.h"

#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/partition_leader.h"
#include "streamlog/storage/replica_log.h"
#include "streamlog/storage/transactions.h"

#define LATEST_TIMESTAMP (-1)
#define EARLIEST_TIMESTAMP (-2)

static void
list_partition(const SlTopic *topic, SlListOffsetsRequestListOffsetsPartition *lp,
			   SlListOffsetsResponseListOffsetsPartitionResponse *pr, int16 version,
			   bool read_committed)
{
	SlPartitionOffsets state;
	int64		end;

	pr->partition_index = lp->partition_index;
	pr->timestamp = -1;
	pr->offset = -1;
	pr->leader_epoch = version >= 4 ? 0 : -1;
	SL_ARRAY_ALLOC(pr->old_style_offsets, 0);
	if (lp->partition_index < 0 || lp->partition_index >= topic->partition_count)
	{
		pr->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		return;
	}
	if ((pr->error_code = SlPartitionLeaderError(topic, lp->partition_index)) != SL_ERR_NONE)
		return;
	if (version >= 4 &&
		(pr->error_code = SlPartitionLeaderEpochError(topic, lp->partition_index,
													  lp->current_leader_epoch)) != SL_ERR_NONE)
		return;
	if (version >= 4)
		pr->leader_epoch = SlPartitionLeaderEpoch(topic, lp->partition_index);
	pr->error_code = SL_ERR_NONE;
	SlPartitionGetOffsets(topic->topic_id, lp->partition_index, &state);
	/* After the high watermark: never above it */
	end = !read_committed ? state.high_watermark :
		Min(state.high_watermark,
			SlPartitionLastStableOffset(topic->topic_id, lp->partition_index));
	/*
	 * The epoch of the offset answered, as Kafka's leader: the current one
	 * for the end, the stored batch's for the log start and for a record
	 * found by its timestamp (KIP-320: a consumer that resets there checks
	 * its position against that epoch)
	 */
	if (lp->timestamp == LATEST_TIMESTAMP)
		pr->offset = end;
	else if (lp->timestamp == EARLIEST_TIMESTAMP)
	{
		pr->offset = state.log_start_offset;
		if (version >= 4)
		{
			int32		epoch = SlPartitionEpochAt(topic, lp->partition_index, pr->offset);

			if (epoch >= 0)
				pr->leader_epoch = epoch;
		}
	}
	else if (lp->timestamp >= 0)
	{
		SlLogScanBounds bounds;
		SlLogScan  *scan;
		SlRecord	rec;

		SlLogScanBoundsInit(&bounds);
		bounds.from_offset = state.log_start_offset;
		bounds.from_ts = lp->timestamp;
		bounds.to_offset = end - 1;
		scan = SlLogScanBegin(topic, lp->partition_index, &bounds);
		if (SlLogScanNext(scan, &rec))
		{
			pr->offset = rec.offset;
			pr->timestamp = rec.timestamp;
		}
		SlLogScanEnd(scan);
		if (version >= 4 && pr->offset >= 0)
		{
			int32		epoch = SlPartitionEpochAt(topic, lp->partition_index, pr->offset);

			if (epoch >= 0)
				pr->leader_epoch = epoch;
		}
	}
	else
	{
		pr->error_code = SL_ERR_UNSUPPORTED_VERSION;
		return;
	}

	if (version == 0)
	{
		/* v0 has a list of offsets instead: the one we found, if any */
		if (pr->offset >= 0 && lp->max_num_offsets > 0)
		{
			SL_ARRAY_ALLOC(pr->old_style_offsets, 1);
			pr->old_style_offsets.items[0] = pr->offset;
		}
		pr->offset = -1;
		pr->timestamp = -1;
	}
}

bool
SlHandleListOffsets(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlListOffsetsRequest request;
	SlListOffsetsResponse resp;
	bool		read_committed;

	if (!SlListOffsetsRequestDecode(body, req->api_version, &request))
		return false;
	read_committed = req->api_version >= 2 && request.isolation_level == 1;
	SlListOffsetsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.topics, request.topics.n);
	for (int t = 0; t < request.topics.n; t++)
	{
		SlListOffsetsRequestListOffsetsTopic *lt = &request.topics.items[t];
		SlListOffsetsResponseListOffsetsTopicResponse *tr = &resp.topics.items[t];
		char	   *name = SlTopicNameFromWire(lt->name);
		/* DESCRIBE on the topic, asked before whether it exists, as Kafka */
		bool		allowed = name == NULL || SlMayTopic(name, SL_ACL_DESCRIBE);
		const SlTopic *topic = name && allowed ? SlTopicLookup(name, true) : NULL;

		tr->name = lt->name;
		if (topic != NULL)
			topic = SlTopicTryLookupAndLock(name, AccessShareLock);
		SL_ARRAY_ALLOC(tr->partitions, lt->partitions.n);
		for (int p = 0; p < lt->partitions.n; p++)
		{
			SlListOffsetsResponseListOffsetsPartitionResponse *pr = &tr->partitions.items[p];

			SlListOffsetsResponseListOffsetsPartitionResponseInit(pr);
			if (topic == NULL)
			{
				pr->partition_index = lt->partitions.items[p].partition_index;
				pr->error_code = allowed ? SL_ERR_UNKNOWN_TOPIC_OR_PARTITION :
					SL_ERR_TOPIC_AUTHORIZATION_FAILED;
				SL_ARRAY_ALLOC(pr->old_style_offsets, 0);
				continue;
			}
			list_partition(topic, &lt->partitions.items[p], pr, req->api_version,
						   read_committed);
		}
	}
	SlListOffsetsResponseEncode(out, req->api_version, &resp);
	return true;
}
