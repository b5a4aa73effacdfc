/*-------------------------------------------------------------------------
 * partition_reassignments.c
 *	  Kafka AlterPartitionReassignments (API key 45, v0, flexible) and
 *	  ListPartitionReassignments (API key 46, v0, flexible), KIP-455.
 *
 * Alter starts (replicas given) or cancels (replicas null) the
 * reassignment of each partition named, through the controller
 * (metadata/partition_reassignment.c), and answers each partition with
 * Kafka's error code once this node applied it; List answers from this
 * node's catalog.  As in Kafka, Alter needs ALTER on the cluster and List
 * DESCRIBE on it (CLUSTER_AUTHORIZATION_FAILED as the top-level error).
 *
 * IDENTIFICATION
 *	  src/server/handlers/partition_reassignments.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "streamlog/metadata/partition_reassignment.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"
#include "streamlog/storage/partition_reassignments.h"

/* How long a reassignment waits for the controller when the request says 0 */
#define DEFAULT_TIMEOUT_MS 60000

bool
SlHandleAlterPartitionReassignments(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlAlterPartitionReassignmentsRequest request;
	SlAlterPartitionReassignmentsResponse resp;
	int			timeout_ms;

	if (!SlAlterPartitionReassignmentsRequestDecode(body, req->api_version, &request))
		return false;
	SlAlterPartitionReassignmentsResponseInit(&resp);
	resp.error_message = SL_STR_NULL;
	if (!SlMayCluster(SL_ACL_ALTER))
	{
		resp.error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		resp.error_message = SlStrFromCString("Reassigning partitions takes ALTER on the cluster.");
		SL_ARRAY_ALLOC(resp.responses, 0);
		SlAlterPartitionReassignmentsResponseEncode(out, req->api_version, &resp);
		return true;
	}
	timeout_ms = request.timeout_ms > 0 ? request.timeout_ms : DEFAULT_TIMEOUT_MS;
	SL_ARRAY_ALLOC(resp.responses, Max(request.topics.n, 0));
	for (int t = 0; t < request.topics.n; t++)
	{
		SlAlterPartitionReassignmentsRequestReassignableTopic *rt = &request.topics.items[t];
		SlAlterPartitionReassignmentsResponseReassignableTopicResponse *tr = &resp.responses.items[t];
		char	   *name = SlTopicNameFromWire(rt->name);

		SlAlterPartitionReassignmentsResponseReassignableTopicResponseInit(tr);
		tr->name = rt->name;
		SL_ARRAY_ALLOC(tr->partitions, Max(rt->partitions.n, 0));
		for (int p = 0; p < rt->partitions.n; p++)
		{
			SlAlterPartitionReassignmentsRequestReassignablePartition *rp = &rt->partitions.items[p];
			SlAlterPartitionReassignmentsResponseReassignablePartitionResponse *pr =
				&tr->partitions.items[p];
			char	   *message = NULL;

			SlAlterPartitionReassignmentsResponseReassignablePartitionResponseInit(pr);
			pr->partition_index = rp->partition_index;
			if (name == NULL)
			{
				pr->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
				message = pstrdup("This server does not host this topic-partition.");
			}
			else
				pr->error_code = SlReassignPartition(name, rp->partition_index,
													 rp->replicas.items,
													 rp->replicas.n < 0 ? -1 : rp->replicas.n,
													 timeout_ms, &message);
			pr->error_message = pr->error_code != SL_ERR_NONE && message != NULL ?
				SlStrFromCString(message) : SL_STR_NULL;
		}
	}
	SlAlterPartitionReassignmentsResponseEncode(out, req->api_version, &resp);
	return true;
}

/* The ongoing reassignments of one topic, from its entries in list */
static void
add_topic(SlListPartitionReassignmentsResponse *resp, const char *name, List *list,
		  const int32 *wanted, int nwanted)
{
	SlListPartitionReassignmentsResponseOngoingTopicReassignment *topic = NULL;
	ListCell   *lc;

	foreach(lc, list)
	{
		SlPartitionReassignment *ra = lfirst(lc);
		SlListPartitionReassignmentsResponseOngoingPartitionReassignment *pr;
		bool		asked = nwanted < 0;

		if (strcmp(ra->topic, name) != 0)
			continue;
		for (int i = 0; i < nwanted && !asked; i++)
			asked = wanted[i] == ra->partition;
		if (!asked)
			continue;
		if (topic == NULL)
		{
			topic = &resp->topics.items[resp->topics.n++];
			SlListPartitionReassignmentsResponseOngoingTopicReassignmentInit(topic);
			topic->name = SlStrFromCString(ra->topic);
			SL_ARRAY_ALLOC(topic->partitions, list_length(list));
			topic->partitions.n = 0;
		}
		pr = &topic->partitions.items[topic->partitions.n++];
		SlListPartitionReassignmentsResponseOngoingPartitionReassignmentInit(pr);
		pr->partition_index = ra->partition;
		pr->replicas.n = ra->nreplicas;
		pr->replicas.items = ra->replicas;
		pr->adding_replicas.n = ra->nadding;
		pr->adding_replicas.items = ra->adding;
		pr->removing_replicas.n = ra->nremoving;
		pr->removing_replicas.items = ra->removing;
	}
}

bool
SlHandleListPartitionReassignments(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlListPartitionReassignmentsRequest request;
	SlListPartitionReassignmentsResponse resp;
	List	   *list;
	ListCell   *lc;

	if (!SlListPartitionReassignmentsRequestDecode(body, req->api_version, &request))
		return false;
	SlListPartitionReassignmentsResponseInit(&resp);
	resp.error_message = SL_STR_NULL;
	if (!SlMayCluster(SL_ACL_DESCRIBE))
	{
		resp.error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		resp.error_message = SlStrFromCString("Listing reassignments takes DESCRIBE on the cluster.");
		SL_ARRAY_ALLOC(resp.topics, 0);
		SlListPartitionReassignmentsResponseEncode(out, req->api_version, &resp);
		return true;
	}
	list = SlPartitionReassignmentsList(NULL);
	SL_ARRAY_ALLOC(resp.topics, Max(list_length(list), 1));
	resp.topics.n = 0;
	if (request.topics.n < 0)
	{
		/* every topic, each once, in the list's order */
		foreach(lc, list)
		{
			SlPartitionReassignment *ra = lfirst(lc);
			bool		seen = false;

			for (int t = 0; t < resp.topics.n && !seen; t++)
				seen = SlStrEqualCString(resp.topics.items[t].name, ra->topic);
			if (!seen)
				add_topic(&resp, ra->topic, list, NULL, -1);
		}
	}
	else
		for (int t = 0; t < request.topics.n; t++)
		{
			char	   *name = SlTopicNameFromWire(request.topics.items[t].name);
			bool		seen = false;

			if (name == NULL)
				continue;
			for (int k = 0; k < resp.topics.n && !seen; k++)
				seen = SlStrEqualCString(resp.topics.items[k].name, name);
			if (!seen)
				add_topic(&resp, name, list, request.topics.items[t].partition_indexes.items,
						  Max(request.topics.items[t].partition_indexes.n, 0));
		}
	SlListPartitionReassignmentsResponseEncode(out, req->api_version, &resp);
	return true;
}
