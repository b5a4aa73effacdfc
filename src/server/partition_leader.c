/*
 * Which partitions this broker serves, see partition_leader.h.
 *
 * The leadership read is the one the topic was looked up with: the catalog
 * as the Raft worker last synced it.  A change committed since is seen by
 * the next request (every sync bumps the catalog generation), and a client
 * told NOT_LEADER_OR_FOLLOWER by a node that has not synced yet asks
 * again after refreshing its metadata, as with a Kafka broker that has not
 * applied the newest metadata yet.
 */
#include "postgres.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/server/partition_leader.h"

int16
SlPartitionLeaderError(const SlTopic *topic, int32 partition)
{
	const SlPartitionLeadership *l;

	if (!SlClusterEnabled() || topic->partitions == NULL)
		return SL_ERR_NONE;
	l = SlTopicPartitionLeadership(topic, partition);
	if (l->leader == sl_node_id)
		return SL_ERR_NONE;
	return l->leader == SL_NO_LEADER ? SL_ERR_LEADER_NOT_AVAILABLE : SL_ERR_NOT_LEADER_OR_FOLLOWER;
}

int16
SlPartitionLeaderEpochError(const SlTopic *topic, int32 partition, int32 current_leader_epoch)
{
	int32		epoch;

	if (current_leader_epoch < 0 || !SlClusterEnabled() || topic->partitions == NULL)
		return SL_ERR_NONE;
	epoch = SlTopicPartitionLeadership(topic, partition)->leader_epoch;
	if (current_leader_epoch < epoch)
		return SL_ERR_FENCED_LEADER_EPOCH;
	if (current_leader_epoch > epoch)
		return SL_ERR_UNKNOWN_LEADER_EPOCH;
	return SL_ERR_NONE;
}

int32
SlPartitionLeaderEpoch(const SlTopic *topic, int32 partition)
{
	if (!SlClusterEnabled() || topic->partitions == NULL)
		return 0;
	return SlTopicPartitionLeadership(topic, partition)->leader_epoch;
}
