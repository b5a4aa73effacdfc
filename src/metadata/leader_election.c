/*-------------------------------------------------------------------------
 * leader_election.c
 *	  Preferred leader election for the doors (leader_election.h).
 *
 * As Kafka's controller does for ElectLeaders with type PREFERRED: the
 * preferred leader is the first replica; it is elected only if it is in
 * the ISR and its node is alive (registered, not fenced, not shutting
 * down).  The checks here are made on this node's catalog to answer each
 * partition as Kafka does; the controller checks again on its image
 * before it proposes anything (P10), and what this node's catalog shows
 * once the controller's answer is applied is the result.
 *
 * IDENTIFICATION
 *	  src/metadata/leader_election.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/leader_election.h"
#include "streamlog/storage/storage.h"

static bool
contains(const int32 *ids, int32 n, int32 id)
{
	for (int i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Is the node alive as this node's view has it? */
static bool
node_alive(int32 node_id)
{
	SlClusterNode node;

	return SlClusterGetNode(node_id, &node) && !node.fenced && !node.shutting_down;
}

static void
set_result(SlElection *e, int16 error_code, const char *message)
{
	e->error_code = error_code;
	e->message = message ? pstrdup(message) : NULL;
}

/* Kafka's message for a partition whose preferred leader cannot lead */
static char *
not_available_message(const SlElection *e)
{
	return psprintf("Failed to elect leader for partition %s-%d under strategy PreferredElection",
					e->topic, e->partition);
}

/*
 * The partition's leadership as the catalog has it now, or NULL (with the
 * result set) when the partition does not exist
 */
static const SlPartitionLeadership *
lookup_partition(SlElection *e)
{
	const SlTopic *topic = SlTopicLookup(e->topic, true);

	if (topic == NULL || e->partition < 0 || e->partition >= topic->partition_count)
	{
		set_result(e, SL_ELECTION_ERR_UNKNOWN_TOPIC_OR_PARTITION,
				   "This server does not host this topic-partition.");
		return NULL;
	}
	return SlTopicPartitionLeadership(topic, e->partition);
}

List *
SlElectionsForAllPartitions(void)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, SlTopicListNames())
	{
		char	   *name = lfirst(lc);
		const SlTopic *topic = SlTopicLookup(name, true);

		if (topic == NULL)
			continue;
		for (int32 p = 0; p < topic->partition_count; p++)
		{
			SlElection *e = palloc0(sizeof(SlElection));

			e->topic = pstrdup(name);
			e->partition = p;
			result = lappend(result, e);
		}
	}
	return result;
}

/* Kafka's message for a partition no replica of which can lead */
static char *
no_eligible_message(const SlElection *e)
{
	return psprintf("Failed to elect leader for partition %s-%d under strategy UncleanLeaderElectionStrategy",
					e->topic, e->partition);
}

/* Can any replica of the partition lead (alive as this node sees it)? */
static bool
any_replica_alive(const SlPartitionLeadership *l)
{
	for (int i = 0; i < l->nreplicas; i++)
		if (node_alive(l->replicas[i]))
			return true;
	return false;
}

void
SlElectPreferredLeaders(List *elections, int timeout_ms)
{
	SlElectLeaders(elections, SL_ELECTION_PREFERRED, timeout_ms);
}

void
SlElectLeaders(List *elections, int election_type, int timeout_ms)
{
	SlControllerRequest req;
	List	   *pending = NIL;
	ListCell   *lc;
	int			n = 0;
	int16		error_code;
	char	   *message;

	foreach(lc, elections)
	{
		SlElection *e = lfirst(lc);
		const SlPartitionLeadership *l = lookup_partition(e);

		if (l == NULL)
			continue;
		if (election_type == SL_ELECTION_UNCLEAN)
		{
			/* standalone, every partition has its leader */
			if (!SlClusterEnabled() || l->leader != SL_NO_LEADER)
				set_result(e, SL_ELECTION_ERR_ELECTION_NOT_NEEDED,
						   "Leader election not needed for topic partition.");
			else if (!any_replica_alive(l))
				set_result(e, SL_ELECTION_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE,
						   no_eligible_message(e));
			else
				pending = lappend(pending, e);
			continue;
		}
		if (l->nreplicas == 0)
			set_result(e, SL_ELECTION_ERR_PREFERRED_LEADER_NOT_AVAILABLE,
					   not_available_message(e));
		else if (l->leader == l->replicas[0])
			set_result(e, SL_ELECTION_ERR_ELECTION_NOT_NEEDED,
					   "Leader election not needed for topic partition.");
		else if (!SlClusterEnabled() || !contains(l->isr, l->nisr, l->replicas[0]) ||
				 !node_alive(l->replicas[0]))
			set_result(e, SL_ELECTION_ERR_PREFERRED_LEADER_NOT_AVAILABLE,
					   not_available_message(e));
		else
			pending = lappend(pending, e);
	}
	if (pending == NIL)
		return;

	memset(&req, 0, sizeof(req));
	req.type = SL_CTRL_ELECT_LEADERS;
	req.election_type = (int8_t) election_type;
	req.npartitions = list_length(pending);
	req.election_topic_ids = palloc(sizeof(int32) * req.npartitions);
	req.election_partitions = palloc(sizeof(int32) * req.npartitions);
	foreach(lc, pending)
	{
		SlElection *e = lfirst(lc);
		const SlTopic *topic = SlTopicLookup(e->topic, false);
		bool		duplicate = false;

		/* a partition named twice is elected once, and answered twice */
		for (int i = 0; i < n; i++)
			duplicate |= req.election_topic_ids[i] == topic->topic_id &&
				req.election_partitions[i] == e->partition;
		if (duplicate)
			continue;
		req.election_topic_ids[n] = topic->topic_id;
		req.election_partitions[n] = e->partition;
		n++;
	}
	req.npartitions = n;
	error_code = SlClusterSubmit(&req, timeout_ms, &message);

	/* The catalog as the controller's answer left it (a new generation) */
	foreach(lc, pending)
	{
		SlElection *e = lfirst(lc);
		const SlPartitionLeadership *l;

		if (error_code != 0)
		{
			set_result(e, error_code, message);
			continue;
		}
		l = lookup_partition(e);
		if (l == NULL)
			continue;
		if (election_type == SL_ELECTION_UNCLEAN)
		{
			if (l->leader != SL_NO_LEADER)
				set_result(e, 0, NULL);
			else
				set_result(e, SL_ELECTION_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE,
						   no_eligible_message(e));
		}
		else if (l->nreplicas > 0 && l->leader == l->replicas[0])
			set_result(e, 0, NULL);
		else
			set_result(e, SL_ELECTION_ERR_PREFERRED_LEADER_NOT_AVAILABLE,
					   not_available_message(e));
	}
}
