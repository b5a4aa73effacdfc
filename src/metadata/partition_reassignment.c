/*-------------------------------------------------------------------------
 * partition_reassignment.c
 *	  A partition's reassignment handed to the controller
 *	  (partition_reassignment.h).
 *
 * The partition is looked up in this node's catalog (an unknown one is
 * answered here, as Kafka's broker does), then the controller gets an
 * SL_CTRL_REASSIGN_PARTITIONS of that one partition and judges the target
 * on its image.  The answer comes once this node's catalog applied it, so
 * that the caller reads the reassignment it started.
 *
 * IDENTIFICATION
 *	  src/metadata/partition_reassignment.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "streamlog/guc.h"
#include "streamlog/cluster/controller.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/partition_reassignment.h"
#include "streamlog/storage/replica_progress.h"
#include "streamlog/storage/storage.h"

/* Most replicas of a partition (the leader tracks each in shared memory) */
#define SL_REASSIGN_MAX_REPLICAS SL_MAX_REPLICAS

/* A node of its own: its partitions have one replica, this node */
static int16
reassign_standalone(const SlTopic *topic, int32 partition, const int32 *replicas,
					int nreplicas, char **message)
{
	if (nreplicas < 0)
	{
		*message = psprintf("%s-%d has no reassignment to cancel", topic->name, partition);
		return SL_REASSIGN_ERR_NO_REASSIGNMENT_IN_PROGRESS;
	}
	if (nreplicas == 1 && replicas[0] == sl_node_id)
		return 0;
	*message = psprintf("this node runs on its own (node %d): the replicas of %s-%d can only be [%d]",
						sl_node_id, topic->name, partition, sl_node_id);
	return SL_REASSIGN_ERR_INVALID_REPLICA_ASSIGNMENT;
}

int16
SlReassignPartition(const char *topic_name, int32 partition, const int32 *replicas,
					int nreplicas, int timeout_ms, char **message)
{
	const SlTopic *topic = SlTopicLookup(topic_name, true);
	SlControllerRequest req;
	int32		topic_id;
	int32		size;
	int32	   *target;

	*message = NULL;
	if (topic == NULL || partition < 0 || partition >= topic->partition_count)
	{
		*message = pstrdup("This server does not host this topic-partition.");
		return SL_REASSIGN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
	}
	if (nreplicas == 0)
	{
		*message = psprintf("the target replicas of %s-%d are empty", topic->name, partition);
		return SL_REASSIGN_ERR_INVALID_REPLICA_ASSIGNMENT;
	}
	/* the controller refuses more too; a client's list stops here */
	if (nreplicas > SL_REASSIGN_MAX_REPLICAS)
	{
		*message = psprintf("the target of %s-%d has %d replicas, more than the %d a partition may have",
							topic->name, partition, nreplicas, SL_REASSIGN_MAX_REPLICAS);
		return SL_REASSIGN_ERR_INVALID_REPLICA_ASSIGNMENT;
	}
	if (!SlClusterEnabled())
		return reassign_standalone(topic, partition, replicas, nreplicas, message);

	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_REASSIGN_PARTITIONS;
	topic_id = topic->topic_id;
	size = nreplicas < 0 ? 0 : nreplicas;
	target = (int32 *) replicas;
	req.npartitions = 1;
	req.election_topic_ids = &topic_id;
	req.election_partitions = &partition;
	req.nassignments = 1;
	req.assignment_sizes = &size;
	req.assignments = &target;
	return SlClusterSubmit(&req, timeout_ms, message);
}
