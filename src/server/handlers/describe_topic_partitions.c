/*-------------------------------------------------------------------------
 * describe_topic_partitions.c
 *	  Kafka DescribeTopicPartitions (API key 75, v0, flexible; KIP-966):
 *	  the partitions of topics, a page at a time.
 *
 * Each partition as this node's catalog holds the cluster's metadata:
 * leader (-1 and LEADER_NOT_AVAILABLE while it has none), leader epoch,
 * replicas, ISR, and the replicas on fenced nodes as offline; streamlog
 * has no eligible leader replicas (KIP-966's ELR is off, as by default in
 * Kafka 3.9), so both ELR lists are empty.  As Kafka's handler: topics by
 * name; no topic named means every topic the role may DESCRIBE; a topic
 * named that it may not is TOPIC_AUTHORIZATION_FAILED, one that does not
 * exist UNKNOWN_TOPIC_OR_PARTITION; a cursor starts at its topic and
 * partition (its topic must be among those named); at most
 * response_partition_limit partitions (and never more than 2000, Kafka's
 * max.request.partition.size.limit) are answered, with next_cursor
 * naming the first one left out.
 *
 * IDENTIFICATION
 *	  src/server/handlers/describe_topic_partitions.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"

/* Kafka's max.request.partition.size.limit */
#define MAX_PARTITIONS_PER_RESPONSE 2000

typedef SlDescribeTopicPartitionsResponseDescribeTopicPartitionsResponseTopic TopicResult;
typedef SlDescribeTopicPartitionsResponseDescribeTopicPartitionsResponsePartition PartitionResult;

static int
compare_names(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/* Is node_id registered and unfenced in the view (nodes[0..n))? */
static bool
node_is_up(const SlClusterNode *nodes, int n, int32 node_id)
{
	for (int i = 0; i < n; i++)
		if (nodes[i].node_id == node_id)
			return !nodes[i].fenced;
	return false;
}

static void
fill_partition(PartitionResult *part, const SlTopic *topic, int32 p,
			   const SlClusterNode *nodes, int nnodes)
{
	SlDescribeTopicPartitionsResponseDescribeTopicPartitionsResponsePartitionInit(part);
	part->partition_index = p;
	SL_ARRAY_ALLOC(part->eligible_leader_replicas, 0);
	SL_ARRAY_ALLOC(part->last_known_elr, 0);
	if (SlClusterEnabled() && topic->partitions != NULL)
	{
		const SlPartitionLeadership *l = SlTopicPartitionLeadership(topic, p);
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
			if (!node_is_up(nodes, nnodes, l->replicas[r]))
				part->offline_replicas.items[noffline++] = l->replicas[r];
		part->offline_replicas.n = noffline;
		return;
	}
	/* a node of its own leads its only replica of everything, in epoch 0 */
	part->error_code = SL_ERR_NONE;
	part->leader_id = sl_node_id;
	part->leader_epoch = 0;
	SL_ARRAY_ALLOC(part->replica_nodes, 1);
	part->replica_nodes.items[0] = sl_node_id;
	SL_ARRAY_ALLOC(part->isr_nodes, 1);
	part->isr_nodes.items[0] = sl_node_id;
	SL_ARRAY_ALLOC(part->offline_replicas, 0);
}

/* A topic's result with no partitions and error_code */
static void
topic_error(TopicResult *t, const char *name, int16 error_code)
{
	SlDescribeTopicPartitionsResponseDescribeTopicPartitionsResponseTopicInit(t);
	t->error_code = error_code;
	t->name = SlStrFromCString(name);
	SL_ARRAY_ALLOC(t->partitions, 0);
}

bool
SlHandleDescribeTopicPartitions(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeTopicPartitionsRequest request;
	SlDescribeTopicPartitionsResponse resp;
	List	   *names = NIL;
	bool		all = false;
	const char *cursor_topic = NULL;
	int32		cursor_partition = 0;
	int			limit;
	int			left;
	SlClusterNode *nodes = NULL;
	int			nnodes = 0;
	ListCell   *lc;

	if (!SlDescribeTopicPartitionsRequestDecode(body, req->api_version, &request))
		return false;
	SlDescribeTopicPartitionsResponseInit(&resp);

	if (request.topics.n <= 0)
	{
		all = true;
		names = list_copy(SlTopicListNames());
	}
	else
		for (int i = 0; i < request.topics.n; i++)
		{
			char	   *name = pnstrdup(request.topics.items[i].name.data,
										Max(request.topics.items[i].name.len, 0));
			bool		seen = false;

			foreach(lc, names)
				seen |= strcmp(lfirst(lc), name) == 0;
			if (!seen)
				names = lappend(names, name);
		}
	list_sort(names, compare_names);

	if (!request.cursor_null)
	{
		bool		named = false;

		cursor_topic = pnstrdup(request.cursor.topic_name.data,
								Max(request.cursor.topic_name.len, 0));
		cursor_partition = request.cursor.partition_index;
		foreach(lc, names)
			named |= strcmp(lfirst(lc), cursor_topic) == 0;
		if (cursor_partition < 0 || (!all && !named))
		{
			/* Kafka's InvalidRequestException, told on every topic asked for */
			SL_ARRAY_ALLOC(resp.topics, Max(list_length(names), 1));
			resp.topics.n = 0;
			foreach(lc, names)
				topic_error(&resp.topics.items[resp.topics.n++], lfirst(lc),
							SL_ERR_INVALID_REQUEST);
			SlDescribeTopicPartitionsResponseEncode(out, req->api_version, &resp);
			return true;
		}
	}
	limit = request.response_partition_limit;
	if (limit <= 0 || limit > MAX_PARTITIONS_PER_RESPONSE)
		limit = MAX_PARTITIONS_PER_RESPONSE;
	left = limit;
	if (SlClusterEnabled())
	{
		nodes = palloc(sizeof(SlClusterNode) * SL_MAX_NODES);
		nnodes = SlClusterGetNodes(nodes, SL_MAX_NODES);
	}

	SL_ARRAY_ALLOC(resp.topics, Max(list_length(names), 1));
	resp.topics.n = 0;
	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		TopicResult *t;
		const SlTopic *topic;
		int32		first = 0;

		if (cursor_topic != NULL)
		{
			int			c = strcmp(name, cursor_topic);

			if (c < 0)
				continue;
			if (c == 0)
				first = cursor_partition;
		}
		/* the page is full: the next one starts here */
		if (left == 0)
		{
			resp.next_cursor_null = false;
			resp.next_cursor.topic_name = SlStrFromCString(pstrdup(name));
			resp.next_cursor.partition_index = first;
			break;
		}
		t = &resp.topics.items[resp.topics.n];
		if (!SlMayTopic(name, SL_ACL_DESCRIBE))
		{
			if (!all)
			{
				topic_error(t, name, SL_ERR_TOPIC_AUTHORIZATION_FAILED);
				resp.topics.n++;
			}
			continue;
		}
		topic = SlTopicLookup(name, true);
		if (topic == NULL)
		{
			if (!all)
			{
				topic_error(t, name, SL_ERR_UNKNOWN_TOPIC_OR_PARTITION);
				resp.topics.n++;
			}
			continue;
		}
		resp.topics.n++;
		SlDescribeTopicPartitionsResponseDescribeTopicPartitionsResponseTopicInit(t);
		t->error_code = SL_ERR_NONE;
		t->name = SlStrFromCString(pstrdup(topic->name));
		memcpy(t->topic_id.data, topic->uuid, 16);
		t->is_internal = SlTopicNameIsInternal(topic->name);
		t->topic_authorized_operations = SlTopicAuthorizedOperations(topic->name);
		SL_ARRAY_ALLOC(t->partitions, Max(Min(topic->partition_count - first, left), 0));
		t->partitions.n = 0;
		for (int32 p = first; p < topic->partition_count; p++)
		{
			if (left == 0)
			{
				resp.next_cursor_null = false;
				resp.next_cursor.topic_name = t->name;
				resp.next_cursor.partition_index = p;
				break;
			}
			fill_partition(&t->partitions.items[t->partitions.n++], topic, p, nodes, nnodes);
			left--;
		}
		if (!resp.next_cursor_null)
			break;
	}
	SlDescribeTopicPartitionsResponseEncode(out, req->api_version, &resp);
	return true;
}
