/*
 * Topic administration: CreateTopics, DeleteTopics, CreatePartitions.
 *
 * Each topic of a request is handled in its own subtransaction, so one
 * failure becomes that topic's error code and message and the others go
 * on.  validate_only runs the real operation, checks and all, and rolls it
 * back.  A node of its own is the only broker, so the only replication
 * factor is 1 and the only replica assignment puts every partition on it.
 *
 * On a cluster each change is checked here the same way, then carried out
 * by the controller (metadata/cluster_topics.h), which spreads new
 * partitions over the nodes or takes the client's assignment, and judges
 * the replication factor; the answer comes once this node's catalog has
 * the change.
 *
 * Authorization, as Kafka's, asked before whether the topic exists:
 * creating takes CREATE on the cluster or on the topic's name, deleting
 * DELETE, adding partitions ALTER; TOPIC_AUTHORIZATION_FAILED otherwise.
 * The configs CreateTopics returns (v5+) take DESCRIBE_CONFIGS.
 */
#include "postgres.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/cluster_topics.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/topic_admin.h"
#include "streamlog/server/handlers/admin.h"

/* CreateTopics */

/* True if topic i's name appears in the request before or after it */
static bool
create_name_is_duplicate(const SlCreateTopicsRequest *request, int i)
{
	for (int j = 0; j < request->topics.n; j++)
		if (j != i && SlStrEqual(request->topics.items[j].name, request->topics.items[i].name))
			return true;
	return false;
}

static bool
create_name_seen_before(const SlCreateTopicsRequest *request, int i)
{
	for (int j = 0; j < i; j++)
		if (SlStrEqual(request->topics.items[j].name, request->topics.items[i].name))
			return true;
	return false;
}

/*
 * The partition count of a topic to create, from num_partitions or its
 * assignments; checks the replication factor and assignments.  On a
 * cluster, *replication_factor (-1: streamlog.default_replication_factor,
 * Kafka's default.replication.factor) and *assignment (NULL
 * if none) are what the controller gets.
 */
static int16
create_partition_count(const SlCreateTopicsRequestCreatableTopic *ct, int32 *partitions,
					   int32 *replication_factor, SlReplicaAssignment **assignment,
					   char **message)
{
	bool		cluster = SlClusterEnabled();

	*replication_factor = ct->replication_factor == -1 ?
		sl_default_replication_factor : ct->replication_factor;
	*assignment = NULL;
	if (ct->assignments.n > 0)
	{
		int32		n = ct->assignments.n;
		bool	   *seen = palloc0(sizeof(bool) * n);
		SlReplicaAssignment *given = palloc(sizeof(SlReplicaAssignment));

		if (ct->num_partitions != -1 || ct->replication_factor != -1)
		{
			*message = pstrdup("Both num_partitions or replication_factor and assignments were set; "
							   "use either.");
			return SL_ERR_INVALID_REQUEST;
		}
		given->count = n;
		given->sizes = palloc0(sizeof(int32) * n);
		given->nodes = palloc0(sizeof(int32 *) * n);
		for (int i = 0; i < n; i++)
		{
			const SlCreateTopicsRequestCreatableReplicaAssignment *a = &ct->assignments.items[i];

			if (a->partition_index < 0 || a->partition_index >= n || seen[a->partition_index])
			{
				*message = psprintf("The assignments must cover partitions 0 to %d, each once.", n - 1);
				return SL_ERR_INVALID_REQUEST;
			}
			seen[a->partition_index] = true;
			if (cluster)
			{
				/* The controller judges the nodes; in partition order */
				if (a->broker_ids.n < 1)
				{
					*message = psprintf("Partition %d has no replicas in the assignment.",
										a->partition_index);
					return SL_ERR_INVALID_REPLICA_ASSIGNMENT;
				}
				given->sizes[a->partition_index] = a->broker_ids.n;
				given->nodes[a->partition_index] = a->broker_ids.items;
				continue;
			}
			if (a->broker_ids.n != 1 || a->broker_ids.items[0] != sl_node_id)
			{
				*message = psprintf("This cluster has one broker (node %d): the replicas of "
									"partition %d can only be [%d].",
									sl_node_id, a->partition_index, sl_node_id);
				return SL_ERR_INVALID_REQUEST;
			}
		}
		*partitions = n;
		if (cluster)
		{
			*assignment = given;
			*replication_factor = given->sizes[0];
		}
		return SL_ERR_NONE;
	}

	if (ct->num_partitions == -1)
		*partitions = sl_default_partitions;
	else if (ct->num_partitions < 1)
	{
		*message = psprintf("Number of partitions must be larger than 0, not %d.", ct->num_partitions);
		return SL_ERR_INVALID_PARTITIONS;
	}
	else
		*partitions = ct->num_partitions;

	if (ct->replication_factor == 0 || ct->replication_factor < -1)
	{
		*message = psprintf("Replication factor must be larger than 0, not %d.",
							ct->replication_factor);
		return SL_ERR_INVALID_REPLICATION_FACTOR;
	}
	/* a cluster's controller knows how many nodes there are */
	if (*replication_factor > 1 && !cluster)
	{
		*message = psprintf("Replication factor: %d larger than available brokers: 1.",
							*replication_factor);
		return SL_ERR_INVALID_REPLICATION_FACTOR;
	}
	return SL_ERR_NONE;
}

/* The topic configs of a request as a jsonb object */
static int16
create_configs(const SlCreateTopicsRequestCreatableTopic *ct, Jsonb **config, char **message)
{
	int32		n = Max(ct->configs.n, 0);
	char	  **names = palloc0(sizeof(char *) * Max(n, 1));
	char	  **values = palloc0(sizeof(char *) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		const SlCreateTopicsRequestCreatableTopicConfig *c = &ct->configs.items[i];

		names[i] = SlAdminCString(c->name);
		if (SlStrIsNull(c->value))
		{
			*message = psprintf("Null value not supported for topic config \"%s\".", names[i]);
			return SL_ERR_INVALID_CONFIG;
		}
		values[i] = SlAdminCString(c->value);
		for (int j = 0; j < i; j++)
			if (strcmp(names[j], names[i]) == 0)
			{
				*message = psprintf("Topic config \"%s\" is given twice.", names[i]);
				return SL_ERR_INVALID_REQUEST;
			}
	}
	*config = n > 0 ? SlAdminConfigObject(n, names, values) : NULL;
	return SL_ERR_NONE;
}

/* v5+: the configs the topic has (or would have) */
static void
create_result_configs(SlCreateTopicsResponseCreatableTopicResult *tr, Jsonb *config)
{
	SlTopicConfig effective;
	List	   *entries;
	ListCell   *lc;
	int			i = 0;

	SlTopicConfigDefaults(&effective);
	entries = SlTopicConfigDescribe(SlTopicConfigApply(config, &effective));
	SL_ARRAY_ALLOC(tr->configs, list_length(entries));
	foreach(lc, entries)
	{
		SlConfigEntry *e = lfirst(lc);
		SlCreateTopicsResponseCreatableTopicConfigs *c = &tr->configs.items[i++];

		SlCreateTopicsResponseCreatableTopicConfigsInit(c);
		c->name = SlStrFromCString(e->name);
		c->value = SlStrFromCString(e->value);
		c->read_only = false;
		c->config_source = e->is_default ? SL_CONFIG_SOURCE_DEFAULT : SL_CONFIG_SOURCE_DYNAMIC_TOPIC;
		c->is_sensitive = false;
	}
}

bool
SlHandleCreateTopics(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlCreateTopicsRequest request;
	SlCreateTopicsResponse resp;
	int16		version = req->api_version;
	int			nresults = 0;

	if (!SlCreateTopicsRequestDecode(body, version, &request))
		return false;
	SlCreateTopicsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.topics, request.topics.n);

	for (int i = 0; i < request.topics.n; i++)
	{
		SlCreateTopicsRequestCreatableTopic *ct = &request.topics.items[i];
		SlCreateTopicsResponseCreatableTopicResult *tr;
		char	   *message = NULL;
		const char *name = NULL;
		int32		partitions = 0;
		int32		replication_factor = 1;
		SlReplicaAssignment *assignment = NULL;
		Jsonb	   *config = NULL;
		int16		error;

		/* One result per name: a name given twice is an invalid request */
		if (create_name_seen_before(&request, i))
			continue;
		tr = &resp.topics.items[nresults++];
		SlCreateTopicsResponseCreatableTopicResultInit(tr);
		tr->name = ct->name;
		tr->error_message = SL_STR_NULL;

		if (create_name_is_duplicate(&request, i))
		{
			error = SL_ERR_INVALID_REQUEST;
			message = pstrdup("Topic is given more than once in the request.");
		}
		else if ((name = SlTopicNameFromWire(ct->name)) == NULL)
		{
			error = SL_ERR_INVALID_TOPIC_EXCEPTION;
			message = psprintf("Topic name must be 1 to %d characters long.", SL_TOPIC_NAME_MAX);
		}
		else if (!SlMayCreateTopic(name))
		{
			error = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
			message = pstrdup("Authorization failed: creating a topic takes CREATE on the cluster or on the topic.");
		}
		else if ((error = create_partition_count(ct, &partitions, &replication_factor,
												 &assignment, &message)) == SL_ERR_NONE &&
				 (error = create_configs(ct, &config, &message)) == SL_ERR_NONE)
			error = SlTopicAdminCreateReplicas(name, partitions, replication_factor, assignment,
											   config, request.validate_only,
											   request.timeout_ms > 0 ? request.timeout_ms :
											   SL_CLUSTER_TOPIC_TIMEOUT_MS, &message);

		tr->error_code = error;
		if (error != SL_ERR_NONE)
		{
			tr->error_message = SlStrFromCString(message);
			continue;
		}
		if (version >= 5)
		{
			tr->num_partitions = partitions;
			tr->replication_factor = replication_factor;
			if (SlMayTopic(name, SL_ACL_DESCRIBE_CONFIGS))
				create_result_configs(tr, config);
			else
			{
				tr->topic_config_error_code = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
				SL_ARRAY_ALLOC(tr->configs, 0);
			}
		}
		if (version >= 7 && !request.validate_only)
		{
			const SlTopic *topic = SlTopicLookup(name, true);

			if (topic != NULL)
				memcpy(tr->topic_id.data, topic->uuid, 16);
		}
	}
	resp.topics.n = nresults;
	SlCreateTopicsResponseEncode(out, version, &resp);
	return true;
}

/* DeleteTopics */

static void
drop_topic(void *arg)
{
	SlTopicDrop((const char *) arg, false);
}

/* The checks of drop_topic, for a cluster's controller to drop it */
static void
check_drop_topic(void *arg)
{
	SlTopicRefuseInternal((const char *) arg, "drop");
}

/* Delete the topic called name (NULL: none by the id asked for) */
static void
delete_one(SlDeleteTopicsResponseDeletableTopicResult *tr, char *name, bool by_id,
		   int timeout_ms)
{
	const SlTopic *topic;
	char	   *message = NULL;

	if (name != NULL && !SlMayTopic(name, SL_ACL_DELETE))
	{
		tr->error_code = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
		tr->error_message = SlStrFromCString("Authorization failed: deleting a topic takes DELETE on it.");
		return;
	}
	topic = name ? SlTopicLookup(name, true) : NULL;
	if (topic == NULL)
	{
		tr->error_code = by_id ? SL_ERR_UNKNOWN_TOPIC_ID : SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		tr->error_message = SlStrFromCString(by_id ? "This server does not host this topic ID."
											 : "This server does not host this topic-partition.");
		return;
	}
	memcpy(tr->topic_id.data, topic->uuid, 16);
	if (SlClusterEnabled())
	{
		tr->error_code = SlTopicAdminRun(check_drop_topic, name, true,
										 SL_ERR_UNKNOWN_SERVER_ERROR, &message);
		if (tr->error_code == SL_ERR_NONE)
			tr->error_code = SlClusterDeleteTopic(name, timeout_ms, &message);
	}
	else
		tr->error_code = SlTopicAdminRun(drop_topic, name, false,
										 SL_ERR_UNKNOWN_SERVER_ERROR, &message);
	if (tr->error_code != SL_ERR_NONE)
		tr->error_message = SlStrFromCString(message);
}

bool
SlHandleDeleteTopics(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDeleteTopicsRequest request;
	SlDeleteTopicsResponse resp;
	int16		version = req->api_version;
	int			timeout_ms;

	if (!SlDeleteTopicsRequestDecode(body, version, &request))
		return false;
	timeout_ms = request.timeout_ms > 0 ? request.timeout_ms : SL_CLUSTER_TOPIC_TIMEOUT_MS;
	SlDeleteTopicsResponseInit(&resp);

	if (version >= 6)
	{
		SL_ARRAY_ALLOC(resp.responses, request.topics.n);
		for (int i = 0; i < request.topics.n; i++)
		{
			SlDeleteTopicsRequestDeleteTopicState *ts = &request.topics.items[i];
			SlDeleteTopicsResponseDeletableTopicResult *tr = &resp.responses.items[i];

			SlDeleteTopicsResponseDeletableTopicResultInit(tr);
			tr->name = ts->name;
			tr->topic_id = ts->topic_id;
			if (!SlStrIsNull(ts->name) && !SlUuidIsZero(ts->topic_id))
			{
				tr->error_code = SL_ERR_INVALID_REQUEST;
				tr->error_message = SlStrFromCString("You may not specify both topic name and topic id.");
			}
			else if (SlStrIsNull(ts->name))
			{
				const SlTopic *topic = SlTopicLookupByUuid(ts->topic_id.data);
				char	   *name = topic ? pstrdup(topic->name) : NULL;

				if (name)
					tr->name = SlStrFromCString(name);
				delete_one(tr, name, true, timeout_ms);
			}
			else
				delete_one(tr, SlTopicNameFromWire(ts->name), false, timeout_ms);
		}
	}
	else
	{
		SL_ARRAY_ALLOC(resp.responses, request.topic_names.n);
		for (int i = 0; i < request.topic_names.n; i++)
		{
			SlDeleteTopicsResponseDeletableTopicResult *tr = &resp.responses.items[i];

			SlDeleteTopicsResponseDeletableTopicResultInit(tr);
			tr->name = request.topic_names.items[i];
			delete_one(tr, SlTopicNameFromWire(tr->name), false, timeout_ms);
		}
	}
	SlDeleteTopicsResponseEncode(out, version, &resp);
	return true;
}

/* CreatePartitions */

typedef struct AddPartitionsArgs
{
	const char *name;
	int32		count;			/* the new total */
	int32		nassignments;	/* -1: none given */
	int16		error;			/* set by add_partitions for checks of its own */
	char	   *message;
	bool		cluster;		/* check only: the controller adds them */
} AddPartitionsArgs;

static void
add_partitions(void *arg)
{
	AddPartitionsArgs *args = arg;
	const SlTopic *topic = SlTopicLookupAndLock(args->name, AccessExclusiveLock);
	int32		current = topic->partition_count;

	if (args->count < current)
	{
		args->error = SL_ERR_INVALID_PARTITIONS;
		args->message = psprintf("Topic currently has %d partitions, which is higher than the requested %d.",
								 current, args->count);
		return;
	}
	if (args->count == current)
	{
		args->error = SL_ERR_INVALID_PARTITIONS;
		args->message = psprintf("Topic already has %d partitions.", current);
		return;
	}
	if (args->nassignments >= 0 && args->nassignments != args->count - current)
	{
		args->error = SL_ERR_INVALID_REPLICA_ASSIGNMENT;
		args->message = psprintf("Increasing the number of partitions by %d but %d assignments provided.",
								 args->count - current, args->nassignments);
		return;
	}
	if (args->cluster)
	{
		SlTopicRefuseInternal(args->name, "add partitions to");
		SlTopicCheckAddPartitions(topic, args->count - current);
		return;
	}
	SlTopicAddPartitions(args->name, args->count - current);
}

bool
SlHandleCreatePartitions(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlCreatePartitionsRequest request;
	SlCreatePartitionsResponse resp;

	if (!SlCreatePartitionsRequestDecode(body, req->api_version, &request))
		return false;
	SlCreatePartitionsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.results, request.topics.n);

	for (int i = 0; i < request.topics.n; i++)
	{
		SlCreatePartitionsRequestCreatePartitionsTopic *pt = &request.topics.items[i];
		SlCreatePartitionsResponseCreatePartitionsTopicResult *tr = &resp.results.items[i];
		AddPartitionsArgs args = {NULL, pt->count, pt->assignments.n, SL_ERR_NONE, NULL,
		SlClusterEnabled()};
		SlReplicaAssignment assignment = {0, NULL, NULL};
		char	   *message = NULL;
		int16		error = SL_ERR_NONE;

		SlCreatePartitionsResponseCreatePartitionsTopicResultInit(tr);
		tr->name = pt->name;

		for (int j = 0; j < request.topics.n; j++)
			if (j != i && SlStrEqual(request.topics.items[j].name, pt->name))
			{
				error = SL_ERR_INVALID_REQUEST;
				message = pstrdup("Duplicate topic in request.");
			}
		for (int a = 0; error == SL_ERR_NONE && a < pt->assignments.n; a++)
		{
			const SlCreatePartitionsRequestCreatePartitionsAssignment *as = &pt->assignments.items[a];

			if (args.cluster)
			{
				/* the controller judges the nodes */
				if (a == 0)
				{
					assignment.count = pt->assignments.n;
					assignment.sizes = palloc0(sizeof(int32) * pt->assignments.n);
					assignment.nodes = palloc0(sizeof(int32 *) * pt->assignments.n);
				}
				assignment.sizes[a] = as->broker_ids.n;
				assignment.nodes[a] = as->broker_ids.items;
				if (as->broker_ids.n < 1)
				{
					error = SL_ERR_INVALID_REPLICA_ASSIGNMENT;
					message = pstrdup("A new partition has no replicas in the assignment.");
				}
				continue;
			}
			if (as->broker_ids.n != 1 || as->broker_ids.items[0] != sl_node_id)
			{
				error = SL_ERR_INVALID_REPLICA_ASSIGNMENT;
				message = psprintf("This cluster has one broker (node %d): new partitions "
								   "can only be assigned [%d].", sl_node_id, sl_node_id);
			}
		}
		if (error == SL_ERR_NONE)
		{
			args.name = SlTopicNameFromWire(pt->name);
			if (args.name != NULL && !SlMayTopic(args.name, SL_ACL_ALTER))
			{
				error = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
				message = pstrdup("Authorization failed: adding partitions takes ALTER on the topic.");
			}
			else if (args.name == NULL || SlTopicLookup(args.name, true) == NULL)
			{
				error = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
				message = pstrdup("This server does not host this topic-partition.");
			}
		}
		if (error == SL_ERR_NONE)
		{
			error = SlTopicAdminRun(add_partitions, &args, request.validate_only || args.cluster,
									SL_ERR_INVALID_PARTITIONS, &message);
			if (error == SL_ERR_NONE && args.error != SL_ERR_NONE)
			{
				error = args.error;
				message = args.message;
			}
			if (error == SL_ERR_NONE && args.cluster && !request.validate_only)
				error = SlClusterCreatePartitions(args.name, args.count,
												  assignment.count > 0 ? &assignment : NULL,
												  request.timeout_ms > 0 ? request.timeout_ms :
												  SL_CLUSTER_TOPIC_TIMEOUT_MS, &message);
		}
		tr->error_code = error;
		if (error != SL_ERR_NONE)
			tr->error_message = SlStrFromCString(message);
	}
	SlCreatePartitionsResponseEncode(out, req->api_version, &resp);
	return true;
}
