/*-------------------------------------------------------------------------
 * quorum.c
 *	  Kafka's APIs of the metadata quorum: DescribeQuorum (55, v0-2,
 *	  KIP-595), AddRaftVoter (80, v0) and RemoveRaftVoter (81, v0,
 *	  KIP-853).
 *
 * The quorum is the one partition "__cluster_metadata" 0, as in KRaft; its
 * leader epoch is the Raft term and its high watermark the commit index.
 * The voters' and observers' log end offsets are known only on the Raft
 * leader: a node that is not the leader asks it over libpq (its
 * streamlog.raft_status and raft_members), as Kafka's brokers forward
 * DescribeQuorum to the active controller, and answers from its own view
 * (-1 for the offsets it does not know, as Kafka says of an unknown one)
 * when the leader does not answer within 2 s.  Standalone, the quorum is
 * this node alone, leader at epoch 0.
 *
 * AddRaftVoter and RemoveRaftVoter go to the controller (forwarded over
 * libpq when it is another node, metadata/membership.c); the new voter's
 * address is the Raft address it registered with, so the request's
 * listeners are not needed, and directory ids are not used (libraft knows
 * none).  Standalone nodes refuse them: there is no quorum to change.
 *
 * Authorization as Kafka's: DESCRIBE on the cluster for DescribeQuorum,
 * ALTER on the cluster for the membership changes
 * (CLUSTER_AUTHORIZATION_FAILED).
 *
 * IDENTIFICATION
 *	  src/server/handlers/quorum.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_submit.h"
#include "streamlog/metadata/membership.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/topic_admin.h"

#define METADATA_TOPIC "__cluster_metadata"
#define CONTROLLER_LISTENER "CONTROLLER"

/* How long a node waits for the Raft leader's view before giving its own */
#define LEADER_STATUS_TIMEOUT_MS 2000

/* One voter's or observer's state */
static void
replica_state(SlDescribeQuorumResponseReplicaState *state, const SlQuorumStatus *status,
			  int i, int64 now_ms)
{
	SlDescribeQuorumResponseReplicaStateInit(state);
	state->replica_id = status->members[i].node_id;
	state->log_end_offset = -1;
	state->last_fetch_timestamp = -1;
	state->last_caught_up_timestamp = -1;
	if (status->members[i].node_id == status->node_id)
	{
		/* As Kafka: the leader reports its own log end and now */
		state->log_end_offset = (int64) status->last_index;
		if (status->is_leader)
			state->last_caught_up_timestamp = now_ms;
	}
	else if (status->is_leader)
	{
		state->log_end_offset = (int64) status->match_index[i];
		if (status->last_contact_ms[i] >= 0)
			state->last_fetch_timestamp = now_ms - status->last_contact_ms[i];
		if (status->match_index[i] >= status->commit_index)
			state->last_caught_up_timestamp = state->last_fetch_timestamp;
	}
}

/* host:port of a Raft address into the listener; false if it is not one */
static bool
split_address(const char *address, SlDescribeQuorumResponseListener *listener)
{
	const char *colon = strrchr(address, ':');
	char	   *end;
	long		port;

	if (colon == NULL || colon == address)
		return false;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port <= 0 || port > 65535)
		return false;
	listener->name = SlStrFromCString(CONTROLLER_LISTENER);
	listener->host = SlStrFromCString(pnstrdup(address, colon - address));
	listener->port = (uint16) port;
	return true;
}

/* The partition of the metadata quorum, as this node sees it */
static void
describe_partition(SlDescribeQuorumResponsePartitionData *part, const SlQuorumStatus *status)
{
	int64		now_ms = (int64) (GetCurrentTimestamp() / 1000) +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
	int			nmembers = Min(status->nmembers, (int) lengthof(status->members));
	int			nvoters = 0;
	int			nobservers = 0;

	part->error_code = SL_ERR_NONE;
	part->error_message = SL_STR_NULL;
	part->leader_id = status->leader_id;
	part->leader_epoch = (int32) Min(status->term, (uint64) PG_INT32_MAX);
	part->high_watermark = (int64) status->commit_index;
	for (int i = 0; i < nmembers; i++)
		if (status->members[i].role == SL_QUORUM_VOTER)
			nvoters++;
		else
			nobservers++;
	SL_ARRAY_ALLOC(part->current_voters, nvoters);
	SL_ARRAY_ALLOC(part->observers, nobservers);
	nvoters = nobservers = 0;
	for (int i = 0; i < nmembers; i++)
	{
		if (status->members[i].role == SL_QUORUM_VOTER)
			replica_state(&part->current_voters.items[nvoters++], status, i, now_ms);
		else
			replica_state(&part->observers.items[nobservers++], status, i, now_ms);
	}
}

bool
SlHandleDescribeQuorum(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeQuorumRequest request;
	SlDescribeQuorumResponse resp;
	SlQuorumStatus status;
	bool		authorized;

	if (!SlDescribeQuorumRequestDecode(body, req->api_version, &request))
		return false;
	SlDescribeQuorumResponseInit(&resp);
	resp.error_code = SL_ERR_NONE;
	resp.error_message = SL_STR_NULL;
	authorized = SlMayCluster(SL_ACL_DESCRIBE);
	SlClusterGetQuorumStatus(&status);
	/* Only the leader knows the others' progress: ask it, as Kafka does */
	if (authorized && SlClusterEnabled() && !status.is_leader && status.leader_id > 0)
		(void) SlClusterLeaderQuorumStatus(status.leader_id, &status, LEADER_STATUS_TIMEOUT_MS);

	SL_ARRAY_ALLOC(resp.topics, Max(request.topics.n, 0));
	for (int t = 0; t < request.topics.n; t++)
	{
		SlDescribeQuorumRequestTopicData *rt = &request.topics.items[t];
		SlDescribeQuorumResponseTopicData *topic = &resp.topics.items[t];
		bool		metadata_topic = SlStrEqualCString(rt->topic_name, METADATA_TOPIC);

		SlDescribeQuorumResponseTopicDataInit(topic);
		topic->topic_name = rt->topic_name;
		SL_ARRAY_ALLOC(topic->partitions, Max(rt->partitions.n, 0));
		for (int p = 0; p < rt->partitions.n; p++)
		{
			SlDescribeQuorumResponsePartitionData *part = &topic->partitions.items[p];

			SlDescribeQuorumResponsePartitionDataInit(part);
			part->partition_index = rt->partitions.items[p].partition_index;
			part->leader_id = -1;
			part->leader_epoch = -1;
			part->high_watermark = -1;
			SL_ARRAY_ALLOC(part->current_voters, 0);
			SL_ARRAY_ALLOC(part->observers, 0);
			if (!authorized)
			{
				part->error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
				part->error_message = SlStrFromCString("Describing the metadata quorum takes DESCRIBE on the cluster.");
			}
			else if (!metadata_topic || part->partition_index != 0)
			{
				part->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
				part->error_message = SlStrFromCString("The metadata quorum is partition 0 of " METADATA_TOPIC ".");
			}
			else
				describe_partition(part, &status);
		}
	}
	if (!authorized)
	{
		resp.error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		resp.error_message = SlStrFromCString("Describing the metadata quorum takes DESCRIBE on the cluster.");
	}

	/* v2: the voters' controller endpoints (their Raft addresses) */
	SL_ARRAY_ALLOC(resp.nodes, 0);
	if (authorized && req->api_version >= 2)
	{
		int			nmembers = Min(status.nmembers, (int) lengthof(status.members));
		int			n = 0;

		SL_ARRAY_ALLOC(resp.nodes, nmembers);
		for (int i = 0; i < nmembers; i++)
		{
			SlDescribeQuorumResponseNode *node = &resp.nodes.items[n];
			SlDescribeQuorumResponseListener listener;

			if (status.members[i].role != SL_QUORUM_VOTER)
				continue;
			SlDescribeQuorumResponseNodeInit(node);
			node->node_id = status.members[i].node_id;
			SL_ARRAY_ALLOC(node->listeners, 0);
			SlDescribeQuorumResponseListenerInit(&listener);
			if (split_address(status.members[i].address, &listener))
			{
				SL_ARRAY_ALLOC(node->listeners, 1);
				node->listeners.items[0] = listener;
			}
			n++;
		}
		resp.nodes.n = n;
	}
	SlDescribeQuorumResponseEncode(out, req->api_version, &resp);
	return true;
}

/*
 * The error of a membership change asked with cluster_id, before anything
 * is done; 0 if it may go on
 */
static int16
membership_refusal(SlStr cluster_id, const char **message)
{
	if (!SlMayCluster(SL_ACL_ALTER))
	{
		*message = "Changing the metadata quorum takes ALTER on the cluster.";
		return SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
	}
	if (!SlStrIsNull(cluster_id) && !SlStrEqualCString(cluster_id, SlClusterId()))
	{
		*message = psprintf("The request is for cluster \"%.*s\", this is cluster \"%s\".",
							Max(cluster_id.len, 0), cluster_id.data ? cluster_id.data : "",
							SlClusterId());
		return SL_ERR_INCONSISTENT_CLUSTER_ID;
	}
	return SL_ERR_NONE;
}

bool
SlHandleAddRaftVoter(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlAddRaftVoterRequest request;
	SlAddRaftVoterResponse resp;
	const char *message = NULL;
	char	   *result = NULL;

	if (!SlAddRaftVoterRequestDecode(body, req->api_version, &request))
		return false;
	SlAddRaftVoterResponseInit(&resp);
	resp.error_code = membership_refusal(request.cluster_id, &message);
	if (resp.error_code == SL_ERR_NONE)
	{
		resp.error_code = SlClusterChangeMembership(SL_SLOT_ADD_VOTER, request.voter_id,
													request.timeout_ms > 0 ? request.timeout_ms :
													SL_CLUSTER_SUBMIT_TIMEOUT_MS,
													&result);
		message = result;
	}
	resp.error_message = message ? SlStrFromCString(message) : SL_STR_NULL;
	SlAddRaftVoterResponseEncode(out, req->api_version, &resp);
	return true;
}

bool
SlHandleRemoveRaftVoter(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlRemoveRaftVoterRequest request;
	SlRemoveRaftVoterResponse resp;
	const char *message = NULL;
	char	   *result = NULL;

	if (!SlRemoveRaftVoterRequestDecode(body, req->api_version, &request))
		return false;
	SlRemoveRaftVoterResponseInit(&resp);
	resp.error_code = membership_refusal(request.cluster_id, &message);
	if (resp.error_code == SL_ERR_NONE)
	{
		resp.error_code = SlClusterChangeMembership(SL_SLOT_REMOVE_MEMBER, request.voter_id,
													SL_CLUSTER_SUBMIT_TIMEOUT_MS, &result);
		message = result;
	}
	resp.error_message = message ? SlStrFromCString(message) : SL_STR_NULL;
	SlRemoveRaftVoterResponseEncode(out, req->api_version, &resp);
	return true;
}
