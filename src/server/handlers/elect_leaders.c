/*-------------------------------------------------------------------------
 * elect_leaders.c
 *	  Kafka ElectLeaders (API key 43, v0-2; v1 adds the election type and
 *	  a top-level error code, v2 is flexible).  Preferred elections (type
 *	  0) and unclean ones (type 1, KIP-460: for partitions without a
 *	  leader, an ISR member if one is alive, else any live replica); any
 *	  other type is refused per partition with INVALID_REQUEST.
 *
 * The work is metadata/leader_election.c's, shared with
 * streamlog.elect_leaders().  As in Kafka: ALTER on the cluster is needed
 * (CLUSTER_AUTHORIZATION_FAILED for every partition, or as the top-level
 * error with no results when all partitions were asked for); a null list
 * of partitions means every partition, and then partitions whose preferred
 * replica already leads are left out of the results.
 *
 * IDENTIFICATION
 *	  src/server/handlers/elect_leaders.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "streamlog/cluster/controller.h"
#include "streamlog/metadata/leader_election.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"

#define ELECTION_TYPE_PREFERRED 0
#define ELECTION_TYPE_UNCLEAN 1

/* Results grouped by topic, in the order the elections came */
static void
encode_results(SlElectLeadersResponse *resp, List *elections, bool skip_not_needed)
{
	ListCell   *lc;
	int			ntopics = 0;

	SL_ARRAY_ALLOC(resp->replica_election_results, list_length(elections));
	foreach(lc, elections)
	{
		SlElection *e = lfirst(lc);
		SlElectLeadersResponseReplicaElectionResult *topic = NULL;
		SlElectLeadersResponsePartitionResult *part;

		if (skip_not_needed && e->error_code == SL_ERR_ELECTION_NOT_NEEDED)
			continue;
		for (int t = 0; t < ntopics; t++)
			if (SlStrEqualCString(resp->replica_election_results.items[t].topic, e->topic))
				topic = &resp->replica_election_results.items[t];
		if (topic == NULL)
		{
			topic = &resp->replica_election_results.items[ntopics++];
			SlElectLeadersResponseReplicaElectionResultInit(topic);
			topic->topic = SlStrFromCString(e->topic);
			SL_ARRAY_ALLOC(topic->partition_result, list_length(elections));
			topic->partition_result.n = 0;
		}
		part = &topic->partition_result.items[topic->partition_result.n++];
		SlElectLeadersResponsePartitionResultInit(part);
		part->partition_id = e->partition;
		part->error_code = e->error_code;
		part->error_message = e->message ? SlStrFromCString(e->message) : SL_STR_NULL;
	}
	resp->replica_election_results.n = ntopics;
}

bool
SlHandleElectLeaders(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlElectLeadersRequest request;
	SlElectLeadersResponse resp;
	List	   *elections = NIL;
	List	   *to_elect = NIL;
	bool		all = false;
	bool		authorized;
	int16		refusal = SL_ERR_NONE;
	const char *refusal_message = NULL;
	ListCell   *lc;

	if (!SlElectLeadersRequestDecode(body, req->api_version, &request))
		return false;
	SlElectLeadersResponseInit(&resp);
	resp.error_code = SL_ERR_NONE;
	authorized = SlMayCluster(SL_ACL_ALTER);

	if (request.topic_partitions.n < 0)
	{
		all = true;
		if (!authorized)
		{
			resp.error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
			SL_ARRAY_ALLOC(resp.replica_election_results, 0);
			SlElectLeadersResponseEncode(out, req->api_version, &resp);
			return true;
		}
		elections = SlElectionsForAllPartitions();
	}
	else
	{
		for (int t = 0; t < request.topic_partitions.n; t++)
		{
			SlElectLeadersRequestTopicPartitions *tp = &request.topic_partitions.items[t];
			char	   *name = SlTopicNameFromWire(tp->topic);

			for (int p = 0; p < tp->partitions.n; p++)
			{
				SlElection *e = palloc0(sizeof(SlElection));

				e->topic = name ? name : pnstrdup(tp->topic.data, Max(tp->topic.len, 0));
				e->partition = tp->partitions.items[p];
				if (name == NULL)
				{
					/* not a name a topic can have */
					e->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
					e->message = pstrdup("This server does not host this topic-partition.");
				}
				elections = lappend(elections, e);
			}
		}
	}

	if (!authorized)
	{
		refusal = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		refusal_message = "Electing leaders takes ALTER on the cluster.";
		if (req->api_version >= 1)
			resp.error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
	}
	else if (req->api_version >= 1 && request.election_type != ELECTION_TYPE_PREFERRED &&
			 request.election_type != ELECTION_TYPE_UNCLEAN)
	{
		refusal = SL_ERR_INVALID_REQUEST;
		refusal_message = psprintf("election type %d is not one of Kafka's: 0 (preferred) or 1 (unclean)",
								   request.election_type);
	}
	foreach(lc, elections)
	{
		SlElection *e = lfirst(lc);

		if (e->error_code != SL_ERR_NONE)
			continue;
		if (refusal != SL_ERR_NONE)
		{
			e->error_code = refusal;
			e->message = pstrdup(refusal_message);
		}
		else
			to_elect = lappend(to_elect, e);
	}
	if (to_elect != NIL)
		SlElectLeaders(to_elect,
					   req->api_version >= 1 && request.election_type == ELECTION_TYPE_UNCLEAN ?
					   SL_ELECTION_UNCLEAN : SL_ELECTION_PREFERRED,
					   request.timeout_ms > 0 ? request.timeout_ms : 60000);

	encode_results(&resp, elections, all);
	SlElectLeadersResponseEncode(out, req->api_version, &resp);
	return true;
}
