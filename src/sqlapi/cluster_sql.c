/*
 * The SQL door on a cluster, see cluster_sql.h.
 *
 * A partition is served by its leader alone (until replicas come, with
 * the next step of the cluster work): a call on a partition another node
 * leads fails, and says which node that is and how to reach it, so that
 * the caller can go there.
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/sqlapi/cluster_sql.h"

void
SlSqlClusterTopicResult(int16 error, const char *message, const char *name)
{
	int			sqlstate;
	const char *what;

	if (error == SL_ERR_NONE)
		return;
	switch (error)
	{
		case SL_ERR_TOPIC_ALREADY_EXISTS:
			sqlstate = ERRCODE_DUPLICATE_OBJECT;
			what = "the topic already exists";
			break;
		case SL_ERR_UNKNOWN_TOPIC_OR_PARTITION:
		case SL_ERR_UNKNOWN_TOPIC_ID:
			sqlstate = ERRCODE_UNDEFINED_OBJECT;
			what = "the cluster has no such topic";
			break;
		case SL_ERR_INVALID_PARTITIONS:
		case SL_ERR_INVALID_REPLICATION_FACTOR:
		case SL_ERR_INVALID_REPLICA_ASSIGNMENT:
		case SL_ERR_INVALID_CONFIG:
		case SL_ERR_INVALID_REQUEST:
		case SL_ERR_INVALID_TOPIC_EXCEPTION:
			sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
			what = "the controller refused it";
			break;
		case SL_ERR_POLICY_VIOLATION:
			sqlstate = ERRCODE_CONFIGURATION_LIMIT_EXCEEDED;
			what = "the controller refused it";
			break;
		case SL_ERR_TOPIC_AUTHORIZATION_FAILED:
		case SL_ERR_CLUSTER_AUTHORIZATION_FAILED:
			sqlstate = ERRCODE_INSUFFICIENT_PRIVILEGE;
			what = "the controller refused it";
			break;
		default:
			/* no controller, none answering in time, nodes missing */
			sqlstate = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
			what = "the cluster could not carry it out";
			break;
	}
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("cannot change topic \"%s\": %s", name, what),
			 message ? errdetail("The controller answered Kafka error %d: %s", error, message)
			 : errdetail("The controller answered Kafka error %d.", error),
			 sqlstate == ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE ?
			 errhint("See streamlog.nodes and streamlog.raft_status for the state of the cluster, and try again.") : 0));
}

/* "Kafka at host:port, SQL at conninfo" for a node, or why not */
static char *
node_addresses(int32 node_id)
{
	SlClusterNode node;

	if (!SlClusterGetNode(node_id, &node))
		return psprintf("node %d has not registered with the cluster yet", node_id);
	return psprintf("Kafka at %s:%d, SQL at \"%s\"%s", node.kafka_host, node.kafka_port,
					node.sql_conninfo, node.fenced ? " (fenced: not heartbeating)" : "");
}

static char *
node_list(const int32 *ids, int32 n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int32 i = 0; i < n; i++)
		appendStringInfo(&buf, i ? ", %d" : "%d", ids[i]);
	return buf.data;
}

void
SlSqlCheckPartitionLeader(const SlTopic *topic, int32 partition)
{
	const SlPartitionLeadership *l;

	if (!SlClusterEnabled() || topic->partitions == NULL ||
		partition < 0 || partition >= topic->partition_count)
		return;
	l = SlTopicPartitionLeadership(topic, partition);
	if (l->leader == sl_node_id)
		return;
	if (l->leader == SL_NO_LEADER)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("partition %d of topic \"%s\" is offline: it has no leader",
						partition, topic->name),
				 errdetail("None of its in-sync replicas (nodes %s) is available.",
						   node_list(l->isr, l->nisr)),
				 errhint("It comes back on its own when one of nodes %s returns.",
						 node_list(l->replicas, l->nreplicas))));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("partition %d of topic \"%s\" is led by node %d, not by this node (%d)",
					partition, topic->name, l->leader, sl_node_id),
			 errdetail("A partition is produced to and read on its leader."),
			 errhint("Connect to node %d: %s.", l->leader, node_addresses(l->leader))));
}

/*
 * Reads from the nearest replica (README, "The replicated log"): a node
 * holding a copy of the partition, its leader or a follower, reads it
 * below its own high watermark while the partition has a leader.  Another
 * node is told where the copies are; an offline partition is refused as
 * by SlSqlCheckPartitionLeader.
 */
void
SlSqlCheckPartitionReplica(const SlTopic *topic, int32 partition)
{
	const SlPartitionLeadership *l;

	if (!SlClusterEnabled() || topic->partitions == NULL ||
		partition < 0 || partition >= topic->partition_count)
		return;
	l = SlTopicPartitionLeadership(topic, partition);
	/* Offline: no copy is known to be current (as Fetch from a follower) */
	if (l->leader == SL_NO_LEADER || l->leader == sl_node_id)
	{
		SlSqlCheckPartitionLeader(topic, partition);
		return;
	}
	for (int32 i = 0; i < l->nreplicas; i++)
		if (l->replicas[i] == sl_node_id)
			return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("partition %d of topic \"%s\" is led by node %d and has no replica on this node (%d)",
					partition, topic->name, l->leader, sl_node_id),
			 errdetail("It is read on a node that holds a replica: nodes %s.",
					   node_list(l->replicas, l->nreplicas)),
			 errhint("Connect to node %d: %s.", l->leader, node_addresses(l->leader))));
}

bool
SlSqlPartitionLedElsewhere(const SlTopic *topic, int32 partition)
{
	if (!SlClusterEnabled() || topic->partitions == NULL ||
		partition < 0 || partition >= topic->partition_count)
		return false;
	return SlTopicPartitionLeadership(topic, partition)->leader != sl_node_id;
}

void
SlSqlCheckTopicLeader(const SlTopic *topic)
{
	if (!SlClusterEnabled())
		return;
	for (int32 p = 0; p < topic->partition_count; p++)
		SlSqlCheckPartitionLeader(topic, p);
}

const SlTopic *
SlSqlTopicByIdLocked(int32 topic_id, LOCKMODE mode)
{
	const SlTopic *topic = SlTopicLookupById(topic_id);

	if (topic != NULL)
		topic = SlTopicTryLookupAndLock(topic->name, mode);
	if (topic == NULL || topic->topic_id != topic_id)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("topic id %d does not exist", topic_id),
				 errhint("Topic ids are in streamlog.topics; a dropped topic's are not reused.")));
	return topic;
}
