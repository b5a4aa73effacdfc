/*
 * Metadata: this broker, and the topics asked for (or all of them), each
 * partition led by this broker in epoch 0.  On a cluster: every registered
 * broker that is not fenced, the controller, and each partition's leader
 * (-1 with LEADER_NOT_AVAILABLE while it has none), leader epoch,
 * replicas, ISR and the replicas on fenced nodes, as the metadata quorum
 * last said (this node's catalog).  Unknown topics are created when
 * the request allows it (v4+; earlier versions always do, as Kafka) and
 * streamlog.auto_create_topics is on, except internal topics ("__" names),
 * which are also the ones marked is_internal.
 *
 * Authorization as Kafka's: a listing of all topics leaves out those the
 * role may not DESCRIBE; a topic asked for by name or id that it may not
 * DESCRIBE is answered with TOPIC_AUTHORIZATION_FAILED, and so is one that
 * would be created without CREATE on the cluster or on its name.  The
 * authorized operations of the cluster and of each topic (KIP-430, v8+)
 * are filled in when the client asks for them.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/topic_admin.h"

/* The cluster's nodes, for the brokers and offline replicas (cluster mode) */
typedef struct ClusterView
{
	int			nnodes;
	SlClusterNode *nodes;
} ClusterView;

static bool
node_is_up(const ClusterView *view, int32 node_id)
{
	for (int i = 0; i < view->nnodes; i++)
		if (view->nodes[i].node_id == node_id)
			return !view->nodes[i].fenced;
	return false;
}

/* A partition as the cluster's metadata has it */
static void
fill_cluster_partition(SlMetadataResponseMetadataResponsePartition *part,
					   const SlPartitionLeadership *l, const ClusterView *view)
{
	int			noffline = 0;

	part->leader_id = l->leader;
	part->leader_epoch = l->leader_epoch;
	part->error_code = l->leader == SL_NO_LEADER ? SL_ERR_LEADER_NOT_AVAILABLE : SL_ERR_NONE;
	SL_ARRAY_ALLOC(part->replica_nodes, l->nreplicas);
	memcpy(part->replica_nodes.items, l->replicas, sizeof(int32) * l->nreplicas);
	SL_ARRAY_ALLOC(part->isr_nodes, l->nisr);
	memcpy(part->isr_nodes.items, l->isr, sizeof(int32) * l->nisr);
	SL_ARRAY_ALLOC(part->offline_replicas, l->nreplicas);
	for (int r = 0; r < l->nreplicas; r++)
		if (!node_is_up(view, l->replicas[r]))
			part->offline_replicas.items[noffline++] = l->replicas[r];
	part->offline_replicas.n = noffline;
}

static void
fill_topic(SlMetadataResponseMetadataResponseTopic *t, const SlTopic *topic,
		   bool with_operations, const ClusterView *view)
{
	t->error_code = SL_ERR_NONE;
	t->name = SlStrFromCString(pstrdup(topic->name));
	memcpy(t->topic_id.data, topic->uuid, 16);
	t->is_internal = SlTopicNameIsInternal(topic->name);
	t->topic_authorized_operations = with_operations ?
		SlTopicAuthorizedOperations(topic->name) : PG_INT32_MIN;
	SL_ARRAY_ALLOC(t->partitions, topic->partition_count);
	for (int p = 0; p < topic->partition_count; p++)
	{
		SlMetadataResponseMetadataResponsePartition *part = &t->partitions.items[p];

		part->partition_index = p;
		if (view != NULL && topic->partitions != NULL)
		{
			fill_cluster_partition(part, SlTopicPartitionLeadership(topic, p), view);
			continue;
		}
		part->error_code = SL_ERR_NONE;
		part->leader_id = sl_node_id;
		part->leader_epoch = 0;
		SL_ARRAY_ALLOC(part->replica_nodes, 1);
		part->replica_nodes.items[0] = sl_node_id;
		SL_ARRAY_ALLOC(part->isr_nodes, 1);
		part->isr_nodes.items[0] = sl_node_id;
		SL_ARRAY_ALLOC(part->offline_replicas, 0);
	}
}

bool
SlHandleMetadata(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlMetadataRequest request;
	SlMetadataResponse resp;
	const char *host;
	int32		port;
	bool		all_topics;
	bool		auto_create;
	bool		topic_operations;
	ClusterView cluster_view;
	ClusterView *view = NULL;

	if (!SlMetadataRequestDecode(body, req->api_version, &request))
		return false;

	SlMetadataResponseInit(&resp);
	SlAdvertisedEndpoint(req->session, &host, &port);
	if (SlClusterEnabled())
	{
		int			n = 0;

		view = &cluster_view;
		view->nodes = palloc(sizeof(SlClusterNode) * SL_MAX_NODES);
		view->nnodes = SlClusterGetNodes(view->nodes, SL_MAX_NODES);
		SL_ARRAY_ALLOC(resp.brokers, view->nnodes + 1);
		for (int i = 0; i < view->nnodes; i++)
		{
			const SlClusterNode *node = &view->nodes[i];
			SlMetadataResponseMetadataResponseBroker *b = &resp.brokers.items[n];

			if (node->fenced)
				continue;
			b->node_id = node->node_id;
			/* this node as the client's listener advertises it */
			b->host = SlStrFromCString(node->node_id == sl_node_id ? host :
									   pstrdup(node->kafka_host));
			b->port = node->node_id == sl_node_id ? port : node->kafka_port;
			b->rack = node->rack[0] ? SlStrFromCString(pstrdup(node->rack)) : SL_STR_NULL;
			n++;
		}
		resp.brokers.n = n;
		resp.controller_id = SlClusterControllerId();
	}
	else
	{
		SL_ARRAY_ALLOC(resp.brokers, 1);
		resp.brokers.items[0].node_id = sl_node_id;
		resp.brokers.items[0].host = SlStrFromCString(host);
		resp.brokers.items[0].port = port;
		resp.brokers.items[0].rack = SL_STR_NULL;
		resp.controller_id = sl_node_id;
	}
	resp.cluster_id = SlStrFromCString(SlClusterId());
	resp.cluster_authorized_operations = PG_INT32_MIN;
	if (req->api_version >= 8 && req->api_version <= 10 &&
		request.include_cluster_authorized_operations)
		resp.cluster_authorized_operations = SlClusterAuthorizedOperations();
	topic_operations = req->api_version >= 8 && request.include_topic_authorized_operations;

	/* v0: an empty list means all topics; v1+: null means all */
	all_topics = request.topics.n < 0 || (req->api_version == 0 && request.topics.n == 0);
	auto_create = sl_auto_create_topics &&
		(req->api_version < 4 || request.allow_auto_topic_creation);

	if (all_topics)
	{
		List	   *names = SlTopicListNames();
		ListCell   *lc;
		int			i = 0;

		SL_ARRAY_ALLOC(resp.topics, list_length(names));
		foreach(lc, names)
		{
			const SlTopic *topic = SlTopicLookup(lfirst(lc), true);

			if (topic == NULL || !SlMayTopic(topic->name, SL_ACL_DESCRIBE))
				continue;		/* dropped since, or not the role's to see */
			fill_topic(&resp.topics.items[i++], topic, topic_operations, view);
		}
		resp.topics.n = i;
	}
	else
	{
		SL_ARRAY_ALLOC(resp.topics, request.topics.n);
		for (int i = 0; i < request.topics.n; i++)
		{
			SlMetadataResponseMetadataResponseTopic *t = &resp.topics.items[i];
			SlMetadataRequestMetadataRequestTopic *rt = &request.topics.items[i];
			const SlTopic *topic = NULL;
			char	   *name;

			t->name = rt->name;
			t->topic_id = rt->topic_id;
			t->topic_authorized_operations = PG_INT32_MIN;
			SL_ARRAY_ALLOC(t->partitions, 0);

			if (SlStrIsNull(rt->name))
			{
				/* v10+ by topic id */
				topic = SlTopicLookupByUuid(rt->topic_id.data);
				t->error_code = topic ? SL_ERR_NONE : SL_ERR_UNKNOWN_TOPIC_ID;
				/* Kafka: topic ids are not secret, the refusal may say so */
				if (topic && !SlMayTopic(topic->name, SL_ACL_DESCRIBE))
				{
					t->error_code = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
					topic = NULL;
				}
			}
			else if ((name = SlTopicNameFromWire(rt->name)) == NULL)
				t->error_code = SL_ERR_INVALID_TOPIC_EXCEPTION;
			else if (!SlMayTopic(name, SL_ACL_DESCRIBE))
				t->error_code = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
			else
			{
				topic = SlTopicLookup(name, true);
				/* Internal topics are streamlog's to create, not a client's */
				if (topic == NULL && auto_create && !SlTopicNameIsInternal(name) &&
					!SlMayCreateTopic(name))
					t->error_code = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
				else if (topic == NULL && auto_create && !SlTopicNameIsInternal(name))
					t->error_code = SlTopicAdminCreate(name, sl_default_partitions, NULL, false, NULL);
				else if (topic == NULL)
					t->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
				if (t->error_code == SL_ERR_NONE && topic == NULL)
				{
					/*
					 * Created in a subtransaction that is part of ours;
					 * clients retry until the topic is there, Kafka answers
					 * LEADER_NOT_AVAILABLE for a topic it is creating.
					 */
					topic = SlTopicLookup(name, true);
				}
			}
			if (topic != NULL)
				fill_topic(t, topic, topic_operations, view);
		}
	}
	SlMetadataResponseEncode(out, req->api_version, &resp);
	return true;
}
