/*-------------------------------------------------------------------------
 * group_placement.c
 *	  The coordinator of each consumer group on a cluster
 *	  (group_placement.h).
 *
 * As Kafka: a group belongs to one partition of __consumer_offsets, and the
 * leader of that partition coordinates it; a change of leader moves the
 * group, and its members find the new coordinator through FindCoordinator
 * after a NOT_COORDINATOR.  Without that topic (streamlog.offsets_topic
 * off, or not yet created) the group goes to the unfenced registered node
 * at the group's hash among their ids: deterministic for a given set of
 * live nodes, so every node names the same one while the view agrees.
 *
 * A group can move while a member's JoinGroup or SyncGroup is parked on
 * its old coordinator: the parked request also waits on the placement key,
 * which the Raft worker notifies with every change of its view, and looks
 * again (answering NOT_COORDINATOR).  Without it the request waited for
 * the rebalance deadline (minutes) for members that had gone to the new
 * coordinator and formed the group there without it.
 *
 * The group coordinator's state stays in each node's shared memory: a
 * group that moves starts over there (its members rejoin).  Its committed
 * offsets move with the partition: a node that starts leading a partition
 * of __consumer_offsets loads them from its replica of the partition
 * before it answers for the partition's groups (SlGroupCoordinatorError,
 * storage/group_load.h), as Kafka's coordinator does.
 *
 * IDENTIFICATION
 *	  src/metadata/group_placement.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/group_placement.h"
#include "streamlog/storage/group_load.h"
#include "streamlog/storage/storage.h"

static int
cmp_int32(const void *a, const void *b)
{
	int32		x = *(const int32 *) a;
	int32		y = *(const int32 *) b;

	return (x > y) - (x < y);
}

int32
SlGroupCoordinatorNode(const char *group_id)
{
	const SlTopic *offsets_topic;
	SlClusterNode *nodes;
	int32	   *live;
	int			nnodes;
	int			nlive = 0;

	if (!SlClusterEnabled())
		return sl_node_id;

	offsets_topic = SlTopicLookup(SL_OFFSETS_TOPIC_NAME, true);
	if (offsets_topic != NULL && offsets_topic->partition_count > 0)
	{
		int32		p = SlOffsetsGroupPartition(group_id, offsets_topic->partition_count);

		return SlTopicPartitionLeadership(offsets_topic, p)->leader;
	}

	nodes = palloc(sizeof(SlClusterNode) * SL_MAX_NODES);
	live = palloc(sizeof(int32) * SL_MAX_NODES);
	nnodes = SlClusterGetNodes(nodes, SL_MAX_NODES);
	for (int i = 0; i < nnodes; i++)
		if (!nodes[i].fenced && !nodes[i].shutting_down)
			live[nlive++] = nodes[i].node_id;
	pfree(nodes);
	if (nlive == 0)
		return -1;
	qsort(live, nlive, sizeof(int32), cmp_int32);
	return live[SlOffsetsGroupPartition(group_id, nlive)];
}

bool
SlGroupCoordinatedHere(const char *group_id)
{
	return !SlClusterEnabled() || SlGroupCoordinatorNode(group_id) == sl_node_id;
}

/* Kafka's error codes */
#define ERR_COORDINATOR_LOAD_IN_PROGRESS 14
#define ERR_NOT_COORDINATOR 16

int16
SlGroupCoordinatorError(const char *group_id)
{
	const SlTopic *offsets_topic;
	const SlPartitionLeadership *l;
	int32		p;

	if (!SlClusterEnabled())
		return 0;
	offsets_topic = SlTopicLookup(SL_OFFSETS_TOPIC_NAME, true);
	if (offsets_topic == NULL || offsets_topic->partition_count <= 0)
		return SlGroupCoordinatedHere(group_id) ? 0 : ERR_NOT_COORDINATOR;
	p = SlOffsetsGroupPartition(group_id, offsets_topic->partition_count);
	l = SlTopicPartitionLeadership(offsets_topic, p);
	if (l->leader != sl_node_id)
		return ERR_NOT_COORDINATOR;
	return SlGroupOffsetsLoaded(offsets_topic, p, l->leader_epoch) ?
		0 : ERR_COORDINATOR_LOAD_IN_PROGRESS;
}

SlWaitKey
SlGroupPlacementWaitKey(void)
{
	static const char salt[] = "streamlog group placement";

	return hash_bytes((const unsigned char *) salt, sizeof(salt) - 1) % SL_WAIT_FILTER_BITS;
}

void
SlGroupPlacementMayHaveChanged(void)
{
	SlWaitNotify(SlGroupPlacementWaitKey());
}
