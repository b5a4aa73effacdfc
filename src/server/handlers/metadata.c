/*
 * Metadata: this broker, and the topics asked for (or all of them), each
 * partition led by this broker in epoch 0.  Unknown topics are created when
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
#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/topic_admin.h"

static void
fill_topic(SlMetadataResponseMetadataResponseTopic *t, const SlTopic *topic,
		   bool with_operations)
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

		part->error_code = SL_ERR_NONE;
		part->partition_index = p;
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

	if (!SlMetadataRequestDecode(body, req->api_version, &request))
		return false;

	SlMetadataResponseInit(&resp);
	SlAdvertisedEndpoint(req->session, &host, &port);
	SL_ARRAY_ALLOC(resp.brokers, 1);
	resp.brokers.items[0].node_id = sl_node_id;
	resp.brokers.items[0].host = SlStrFromCString(host);
	resp.brokers.items[0].port = port;
	resp.brokers.items[0].rack = SL_STR_NULL;
	resp.cluster_id = SlStrFromCString(SlClusterId());
	resp.controller_id = sl_node_id;
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
			fill_topic(&resp.topics.items[i++], topic, topic_operations);
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
				fill_topic(t, topic, topic_operations);
		}
	}
	SlMetadataResponseEncode(out, req->api_version, &resp);
	return true;
}
