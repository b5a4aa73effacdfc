/*
 * OffsetForLeaderEpoch (v0-4; KIP-101, KIP-279, KIP-320): where a leader
 * epoch ended in this leader's log, for a follower deciding where to
 * truncate and for a consumer checking, after a leader change, that the
 * records it read are still in the log.
 *
 * As Kafka's broker: a follower (replica_id >= 0, v3+) needs CLUSTER_ACTION
 * on the cluster, a consumer DESCRIBE on the topic; only the partition's
 * leader answers (NOT_LEADER_OR_FOLLOWER elsewhere, LEADER_NOT_AVAILABLE
 * while it has none); a current_leader_epoch (v2+) older than the
 * partition's is FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH;
 * then (epoch, end offset) from the stored batches (replica_log.h), or
 * (-1, -1) for an epoch this log does not know.  v0 has no epoch in the
 * answer.
 */
#include "postgres.h"

#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/partition_leader.h"
#include "streamlog/storage/replica_log.h"

static void
answer_partition(const SlTopic *topic, const SlOffsetForLeaderEpochRequestOffsetForLeaderPartition *rp,
				 SlOffsetForLeaderEpochResponseEpochEndOffset *ep, int16 version)
{
	int32		end_epoch;
	int64		end_offset;

	ep->partition = rp->partition;
	ep->leader_epoch = -1;
	ep->end_offset = -1;
	if (rp->partition < 0 || rp->partition >= topic->partition_count)
	{
		ep->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		return;
	}
	if ((ep->error_code = SlPartitionLeaderError(topic, rp->partition)) != SL_ERR_NONE)
		return;
	if (version >= 2 &&
		(ep->error_code = SlPartitionLeaderEpochError(topic, rp->partition,
													  rp->current_leader_epoch)) != SL_ERR_NONE)
		return;
	SlPartitionEpochEndOffset(topic, rp->partition, rp->leader_epoch,
							  SlPartitionLeaderEpoch(topic, rp->partition),
							  &end_epoch, &end_offset);
	ep->error_code = SL_ERR_NONE;
	ep->leader_epoch = end_epoch;
	ep->end_offset = end_offset;
}

bool
SlHandleOffsetForLeaderEpoch(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlOffsetForLeaderEpochRequest request;
	SlOffsetForLeaderEpochResponse resp;
	bool		follower;
	bool		cluster_allowed = true;

	if (!SlOffsetForLeaderEpochRequestDecode(body, req->api_version, &request))
		return false;
	follower = req->api_version >= 3 && request.replica_id >= 0;
	if (follower)
		cluster_allowed = SlMayCluster(SL_ACL_CLUSTER_ACTION);

	SlOffsetForLeaderEpochResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.topics, request.topics.n);
	for (int t = 0; t < request.topics.n; t++)
	{
		SlOffsetForLeaderEpochRequestOffsetForLeaderTopic *rt = &request.topics.items[t];
		SlOffsetForLeaderEpochResponseOffsetForLeaderTopicResult *tr = &resp.topics.items[t];
		char	   *name = SlTopicNameFromWire(rt->topic);
		int16		topic_error = SL_ERR_NONE;
		const SlTopic *topic = NULL;

		if (!cluster_allowed)
			topic_error = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		else if (name != NULL && !follower && !SlMayTopic(name, SL_ACL_DESCRIBE))
			topic_error = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
		else
		{
			topic = name ? SlTopicLookup(name, true) : NULL;
			if (topic != NULL)
				topic = SlTopicTryLookupAndLock(name, AccessShareLock);
			if (topic == NULL)
				topic_error = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		}

		tr->topic = rt->topic;
		SL_ARRAY_ALLOC(tr->partitions, rt->partitions.n);
		for (int p = 0; p < rt->partitions.n; p++)
		{
			SlOffsetForLeaderEpochResponseEpochEndOffset *ep = &tr->partitions.items[p];

			SlOffsetForLeaderEpochResponseEpochEndOffsetInit(ep);
			if (topic_error != SL_ERR_NONE)
			{
				ep->partition = rt->partitions.items[p].partition;
				ep->error_code = topic_error;
				continue;
			}
			answer_partition(topic, &rt->partitions.items[p], ep, req->api_version);
		}
	}
	SlOffsetForLeaderEpochResponseEncode(out, req->api_version, &resp);
	return true;
}
