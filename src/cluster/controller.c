/*-------------------------------------------------------------------------
 * controller.c
 *	  The controller's decisions: the records that carry out a request
 *	  from the doors, and what node liveness asks for on each tick.
 *
 * Everything here is a pure function of the image (and of the heartbeats
 * the caller collected): the Raft worker of the controller proposes the
 * records, and the image applies them on every node.  The rules are
 * KRaft's (ReplicationControlManager, ClusterControlManager):
 *	- a usable node is registered, unfenced and not shutting down; new
 *	  partitions go to usable nodes only, leaders are usable nodes only;
 *	- a leader is elected only from the ISR, first in replica order; when
 *	  no ISR member is usable the partition is offline (leader -1);
 *	- a node that stops being usable leaves the ISR of its partitions
 *	  where another member remains; the last member stays (it holds
 *	  everything acknowledged, as KRaft's ELR idea), so that the partition
 *	  comes back with it;
 *	- a partition offline whose ISR member is usable again gets it as
 *	  leader;
 *	- a partition whose topic sets unclean.leader.election.enable and
 *	  whose ISR has no usable member is led by its first usable replica,
 *	  alone in the ISR (an unclean election: what it lacks is lost).
 *
 * IDENTIFICATION
 *	  src/cluster/controller.c
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamlog/cluster/controller.h"
#include "streamlog/cluster/internal/controller_parts.h"
#include "streamlog/cluster/internal/metadata_parts.h"

/* Kafka's AllocateProducerIds hands out blocks of this many */
#define SL_CTRL_PRODUCER_ID_BLOCK 1000

/* Most partitions of one topic: its creation is one batch of records */
#define SL_CTRL_MAX_TOPIC_PARTITIONS 100000

/* Kafka's limit on a topic name */
#define SL_CTRL_MAX_TOPIC_NAME 249

/* Report code with a message in errbuf */
int16_t
SlControllerFail(char *errbuf, size_t errbuf_len, int16_t code, const char *fmt,...)
{
	va_list		ap;

	if (errbuf != NULL && errbuf_len > 0)
	{
		va_start(ap, fmt);
		vsnprintf(errbuf, errbuf_len, fmt, ap);
		va_end(ap);
	}
	return code;
}

bool
SlControllerNodeUsable(const SlMetaNode *node)
{
	return node != NULL && !node->fenced && !node->shutting_down;
}

static int32_t
usable_count(const SlMetaImage *image)
{
	int32_t		n = 0;

	for (int32_t i = 0; i < image->nnodes; i++)
		if (SlControllerNodeUsable(&image->nodes[i]))
			n++;
	return n;
}

SlMetaRecord
SlControllerNewRecord(SlMetaRecordType type)
{
	SlMetaRecord rec;

	memset(&rec, 0, sizeof(rec));
	rec.type = type;
	rec.partition.leader = SL_META_UNCHANGED;
	rec.partition.nisr = -1;
	rec.partition.nadding = -1;
	rec.partition.nremoving = -1;
	return rec;
}

/*
 * The PARTITION record of a new partition on replicas: the ISR is the
 * replicas that are usable (all of them when the controller placed them),
 * the leader the first of those.
 */
static bool
add_new_partition(const SlMetaImage *image, SlMetaBatch *out, int32_t topic_id,
				  int32_t partition, const int32_t *replicas, int32_t nreplicas)
{
	SlMetaRecord rec = SlControllerNewRecord(SL_META_PARTITION);
	int32_t    *isr = malloc(sizeof(int32_t) * (size_t) nreplicas);
	bool		ok;

	if (isr == NULL)
		return false;
	rec.topic_id = topic_id;
	rec.partition.partition = partition;
	rec.partition.replicas = (int32_t *) replicas;
	rec.partition.nreplicas = nreplicas;
	rec.partition.isr = isr;
	rec.partition.nisr = 0;
	for (int32_t i = 0; i < nreplicas; i++)
		if (SlControllerNodeUsable(SlMetaImageNode(image, replicas[i])))
			isr[rec.partition.nisr++] = replicas[i];
	rec.partition.leader = rec.partition.nisr > 0 ? isr[0] : SL_META_NO_LEADER;
	ok = SlMetaBatchAdd(out, &rec);
	free(isr);
	return ok;
}

/*
 * Check a manual assignment of count new partitions (KRaft's
 * validateManualPartitionAssignment): as many as asked, each the same
 * size, no node twice, every node registered, at least one usable.
 */
static int16_t
check_manual_assignment(const SlMetaImage *image, const SlControllerRequest *req,
						int32_t count, int32_t *replication_factor,
						char *errbuf, size_t errbuf_len)
{
	if (req->nassignments != count)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
								"the manual assignment names %d partitions, %d are being created",
								(int) req->nassignments, (int) count);
	for (int32_t p = 0; p < count; p++)
	{
		const int32_t *reps = req->assignments[p];
		int32_t		size = req->assignment_sizes[p];
		bool		any_usable = false;

		if (size <= 0)
			return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
									"the manual assignment of partition %d is empty", (int) p);
		if (size > SL_CTRL_MAX_REPLICAS)
			return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
									"the manual assignment of partition %d has %d replicas, more than the %d a partition may have",
									(int) p, (int) size, SL_CTRL_MAX_REPLICAS);
		if (p == 0 && *replication_factor <= 0)
			*replication_factor = size;
		if (size != *replication_factor)
			return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
									"the manual assignment of partition %d has %d replicas, not %d as the others",
									(int) p, (int) size, (int) *replication_factor);
		for (int32_t i = 0; i < size; i++)
		{
			const SlMetaNode *node = SlMetaImageNode(image, reps[i]);

			for (int32_t k = 0; k < i; k++)
				if (reps[k] == reps[i])
					return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
											"the manual assignment of partition %d names node %d twice",
											(int) p, (int) reps[i]);
			if (node == NULL)
				return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
										"the manual assignment of partition %d names node %d, which is not registered",
										(int) p, (int) reps[i]);
			any_usable |= SlControllerNodeUsable(node);
		}
		if (!any_usable)
			return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
									"every node of the manual assignment of partition %d is fenced or shutting down",
									(int) p);
	}
	return 0;
}

/* A placement seed from a topic's uuid: random per topic, fixed for it */
static uint64_t
uuid_seed(const uint8_t *uuid)
{
	uint64_t	seed = 0;

	for (int i = 0; i < 8; i++)
		seed = (seed << 8) | uuid[i];
	return seed;
}

/*
 * The PARTITION records of partitions [first, first + count) of topic_id,
 * placed by hand (req) or by SlControllerAssign.
 */
static int16_t
add_partitions(const SlMetaImage *image, const SlControllerRequest *req,
			   int32_t topic_id, const uint8_t *uuid, int32_t first, int32_t count,
			   int32_t replication_factor, SlMetaBatch *out,
			   char *errbuf, size_t errbuf_len)
{
	int32_t    *placed;
	int16_t		err;

	if (req->nassignments > 0)
	{
		err = check_manual_assignment(image, req, count, &replication_factor, errbuf, errbuf_len);
		if (err != 0)
			return err;
		for (int32_t p = 0; p < count; p++)
			if (!add_new_partition(image, out, topic_id, first + p,
								   req->assignments[p], req->assignment_sizes[p]))
				return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
		return 0;
	}
	if (replication_factor <= 0)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICATION_FACTOR,
								"replication factor must be larger than 0, not %d", (int) replication_factor);
	if (replication_factor > SL_CTRL_MAX_REPLICAS)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICATION_FACTOR,
								"replication factor %d is larger than the %d replicas a partition may have",
								(int) replication_factor, SL_CTRL_MAX_REPLICAS);
	if (replication_factor > usable_count(image))
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICATION_FACTOR,
								"replication factor %d is larger than the %d available nodes",
								(int) replication_factor, (int) usable_count(image));
	placed = malloc(sizeof(int32_t) * (size_t) count * (size_t) replication_factor);
	if (placed == NULL)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
	if (!SlControllerAssign(image, count, replication_factor, first, uuid_seed(uuid), placed))
	{
		free(placed);
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICATION_FACTOR,
								"replication factor %d is larger than the %d available nodes",
								(int) replication_factor, (int) usable_count(image));
	}
	for (int32_t p = 0; p < count; p++)
		if (!add_new_partition(image, out, topic_id, first + p,
							   &placed[(size_t) p * (size_t) replication_factor],
							   replication_factor))
		{
			free(placed);
			return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
		}
	free(placed);
	return 0;
}

static int16_t
create_topic(const SlMetaImage *image, const SlControllerRequest *req, SlMetaBatch *out,
			 char *errbuf, size_t errbuf_len)
{
	SlMetaRecord rec;
	size_t		namelen = req->topic_name ? strlen(req->topic_name) : 0;

	if (namelen == 0 || namelen > SL_CTRL_MAX_TOPIC_NAME)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_TOPIC_EXCEPTION,
								"a topic name has 1 to %d characters", SL_CTRL_MAX_TOPIC_NAME);
	if (SlMetaImageTopicByName(image, req->topic_name) != NULL)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_TOPIC_ALREADY_EXISTS,
								"topic \"%s\" already exists", req->topic_name);
	if (req->partition_count <= 0 || req->partition_count > SL_CTRL_MAX_TOPIC_PARTITIONS)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_PARTITIONS,
								"a topic has 1 to %d partitions, not %d",
								SL_CTRL_MAX_TOPIC_PARTITIONS, (int) req->partition_count);
	if (image->next_topic_id <= 0 || image->next_topic_id == INT32_MAX)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "no topic id left");

	rec = SlControllerNewRecord(SL_META_TOPIC);
	rec.topic.topic_id = image->next_topic_id;
	memcpy(rec.topic.uuid, req->topic_uuid, 16);
	rec.topic.name = req->topic_name;
	rec.topic.config_json = req->config_json;
	rec.topic.owner = req->owner;
	if (!SlMetaBatchAdd(out, &rec))
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
	return add_partitions(image, req, rec.topic.topic_id, req->topic_uuid, 0,
						  req->partition_count,
						  req->nassignments > 0 ? -1 : req->replication_factor,
						  out, errbuf, errbuf_len);
}

static int16_t
create_partitions(const SlMetaImage *image, const SlControllerRequest *req, SlMetaBatch *out,
				  char *errbuf, size_t errbuf_len)
{
	const SlMetaTopic *topic = SlMetaImageTopicByName(image, req->topic_name);
	int32_t		rf;

	if (topic == NULL)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
								"topic \"%s\" does not exist", req->topic_name ? req->topic_name : "");
	if (req->partition_count <= topic->partition_count)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_PARTITIONS,
								"topic \"%s\" has %d partitions, which is not fewer than the requested %d",
								topic->name, (int) topic->partition_count, (int) req->partition_count);
	if (req->partition_count > SL_CTRL_MAX_TOPIC_PARTITIONS)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_PARTITIONS,
								"a topic has at most %d partitions", SL_CTRL_MAX_TOPIC_PARTITIONS);
	/*
	 * new partitions have the topic's replication factor, as in Kafka: that
	 * of partition 0's target, should a reassignment be under way
	 */
	rf = topic->partition_count > 0 ?
		topic->partitions[0].nreplicas - topic->partitions[0].nremoving :
		req->replication_factor;
	return add_partitions(image, req, topic->topic_id, topic->uuid, topic->partition_count,
						  req->partition_count - topic->partition_count, rf,
						  out, errbuf, errbuf_len);
}

static int16_t
delete_topic(const SlMetaImage *image, const SlControllerRequest *req, SlMetaBatch *out,
			 char *errbuf, size_t errbuf_len)
{
	const SlMetaTopic *topic = SlMetaImageTopicByName(image, req->topic_name);
	SlMetaRecord rec;

	if (topic == NULL)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
								"topic \"%s\" does not exist", req->topic_name ? req->topic_name : "");
	rec = SlControllerNewRecord(SL_META_REMOVE_TOPIC);
	rec.topic.topic_id = topic->topic_id;
	if (!SlMetaBatchAdd(out, &rec))
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
	return 0;
}

static int16_t
alter_config(const SlMetaImage *image, const SlControllerRequest *req, SlMetaBatch *out,
			 char *errbuf, size_t errbuf_len)
{
	const SlMetaTopic *topic = SlMetaImageTopicByName(image, req->topic_name);
	SlMetaRecord rec;

	if (topic == NULL)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
								"topic \"%s\" does not exist", req->topic_name ? req->topic_name : "");
	rec = SlControllerNewRecord(SL_META_TOPIC_CONFIG);
	rec.topic.topic_id = topic->topic_id;
	rec.topic.config_json = req->config_json;
	if (!SlMetaBatchAdd(out, &rec))
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
	return 0;
}

/*
 * Preferred leader election of one partition: the first replica becomes
 * leader if it is in the ISR and usable and does not lead already.
 */
static bool
elect_preferred(const SlMetaImage *image, const SlMetaTopic *topic,
				const SlMetaPartition *part, SlMetaBatch *out)
{
	int32_t		preferred = part->replicas[0];
	SlMetaRecord rec;

	if (part->leader == preferred ||
		!SlMetaIntsContain(part->isr, part->nisr, preferred) ||
		!SlControllerNodeUsable(SlMetaImageNode(image, preferred)))
		return true;
	rec = SlControllerNewRecord(SL_META_PARTITION_CHANGE);
	rec.topic_id = topic->topic_id;
	rec.partition.partition = part->partition;
	rec.partition.leader = preferred;
	return SlMetaBatchAdd(out, &rec);
}

/*
 * Unclean election of one partition (Kafka's ElectionType.UNCLEAN): one
 * that has a live leader is left alone; else its first live ISR member
 * in replica order leads, or, if none, its first live replica, alone in
 * the ISR.  Nothing if no replica is alive.
 */
static bool
elect_unclean(const SlMetaImage *image, const SlMetaTopic *topic,
			  const SlMetaPartition *part, SlMetaBatch *out)
{
	SlPartitionTarget target;

	if (part->leader != SL_META_NO_LEADER &&
		SlControllerNodeUsable(SlMetaImageNode(image, part->leader)))
		return true;
	if (!SlPartitionTargetInit(&target, part))
		return true;
	SlPartitionTargetElect(&target, SlControllerImageNodeUsable, (void *) image);
	if (target.leader == SL_META_NO_LEADER)
		for (int32_t r = 0; r < target.nreplicas; r++)
			if (SlControllerNodeUsable(SlMetaImageNode(image, target.replicas[r])))
			{
				target.leader = target.replicas[r];
				target.isr[0] = target.leader;
				target.nisr = 1;
				break;
			}
	return SlPartitionTargetRecord(&target, topic->topic_id, part, out);
}

/* The election req asks for, of one partition */
static bool
elect_one(const SlMetaImage *image, const SlControllerRequest *req, const SlMetaTopic *topic,
		  const SlMetaPartition *part, SlMetaBatch *out)
{
	if (req->election_type == SL_ELECTION_UNCLEAN)
		return elect_unclean(image, topic, part, out);
	return elect_preferred(image, topic, part, out);
}

static int16_t
elect_leaders(const SlMetaImage *image, const SlControllerRequest *req, SlMetaBatch *out,
			  char *errbuf, size_t errbuf_len)
{
	bool		ok = true;

	if (req->npartitions == 0)
	{
		for (int32_t t = 0; t < image->ntopics; t++)
			for (int32_t p = 0; p < image->topics[t].partition_count; p++)
				ok = ok && elect_one(image, req, &image->topics[t],
									 &image->topics[t].partitions[p], out);
	}
	else
	{
		for (int32_t i = 0; i < req->npartitions; i++)
		{
			const SlMetaTopic *topic = SlMetaImageTopicById(image, req->election_topic_ids[i]);
			int32_t		p = req->election_partitions[i];
			bool		seen = false;

			/* unknown partitions are the caller's to report */
			if (topic == NULL || p < 0 || p >= topic->partition_count)
				continue;
			/* a partition named twice is elected once */
			for (int32_t k = 0; k < i && !seen; k++)
				seen = req->election_topic_ids[k] == topic->topic_id &&
					req->election_partitions[k] == p;
			if (!seen)
				ok = ok && elect_one(image, req, topic, &topic->partitions[p], out);
		}
	}
	if (!ok)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
	return 0;
}

static int16_t
allocate_producer_ids(const SlMetaImage *image, const SlControllerRequest *req,
					  SlMetaBatch *out, char *errbuf, size_t errbuf_len)
{
	SlMetaRecord rec;

	if (SlMetaImageNode(image, req->node_id) == NULL)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_BROKER_ID_NOT_REGISTERED,
								"node %d is not registered", (int) req->node_id);
	if (image->next_producer_id < 0 ||
		image->next_producer_id > INT64_MAX - SL_CTRL_PRODUCER_ID_BLOCK)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR,
								"every producer id has been handed out");
	rec = SlControllerNewRecord(SL_META_PRODUCER_IDS);
	rec.node_id = req->node_id;
	rec.first_producer_id = image->next_producer_id;
	rec.producer_id_count = SL_CTRL_PRODUCER_ID_BLOCK;
	if (!SlMetaBatchAdd(out, &rec))
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
	return 0;
}

/* Drop the records of out past the first keep (the batch owns them) */
static void
truncate_batch(SlMetaBatch *out, int keep)
{
	while (out->nrecords > keep)
	{
		SlMetaRecord *rec = &out->records[--out->nrecords];

		SlMetaNodeFree(&rec->node);
		SlMetaTopicFree(&rec->topic);
		SlMetaPartitionFree(&rec->partition);
	}
}

/* ---- liveness ---- */

/* A node's state as the records being built leave it */
typedef struct NodeView
{
	int32_t		node_id;
	uint64_t	incarnation;
	bool		registered;
	bool		fenced;
	bool		shutting_down;
} NodeView;

typedef struct NodeViews
{
	int32_t		n;
	NodeView   *v;				/* sorted by node_id */
} NodeViews;

static bool
views_init(NodeViews *views, const SlMetaImage *image, int32_t extra)
{
	views->n = image->nnodes;
	views->v = malloc(sizeof(NodeView) * ((size_t) image->nnodes + (size_t) extra + 1));
	if (views->v == NULL)
		return false;
	for (int32_t i = 0; i < image->nnodes; i++)
	{
		views->v[i].node_id = image->nodes[i].node_id;
		views->v[i].incarnation = image->nodes[i].incarnation;
		views->v[i].registered = true;
		views->v[i].fenced = image->nodes[i].fenced;
		views->v[i].shutting_down = image->nodes[i].shutting_down;
	}
	return true;
}

static NodeView *
view_of(NodeViews *views, int32_t node_id)
{
	for (int32_t i = 0; i < views->n; i++)
		if (views->v[i].node_id == node_id)
			return &views->v[i];
	return NULL;
}

/* The view of a node, added (unregistered) if absent; room was reserved */
static NodeView *
view_add(NodeViews *views, int32_t node_id)
{
	NodeView   *v = view_of(views, node_id);

	if (v != NULL)
		return v;
	v = &views->v[views->n++];
	memset(v, 0, sizeof(*v));
	v->node_id = node_id;
	return v;
}

static bool
view_usable(NodeViews *views, int32_t node_id)
{
	NodeView   *v = view_of(views, node_id);

	return v != NULL && v->registered && !v->fenced && !v->shutting_down;
}

/* view_usable as a SlNodeUsableFn */
static bool
view_usable_fn(void *arg, int32_t node_id)
{
	return view_usable((NodeViews *) arg, node_id);
}

/*
 * The PARTITION_CHANGE records that the node views ask for: members that
 * are not usable leave the ISR unless they are its last (the leader is kept
 * last), a leader that is not usable gives way to the first usable ISR
 * member in replica order, or to none; an offline partition takes the
 * first usable ISR member.
 */
static bool
reassess_partitions(const SlMetaImage *image, NodeViews *views, SlMetaBatch *out)
{
	int32_t    *isr = NULL;
	int32_t		cap = 0;
	bool		ok = true;

	for (int32_t t = 0; ok && t < image->ntopics; t++)
	{
		const SlMetaTopic *topic = &image->topics[t];

		for (int32_t p = 0; ok && p < topic->partition_count; p++)
		{
			const SlMetaPartition *part = &topic->partitions[p];
			int32_t		nisr = 0;
			int32_t		leader = SL_META_NO_LEADER;
			bool		isr_changed;

			/* room for the ISR, and for the one member an unclean election sets */
			if (part->nisr > cap || cap == 0)
			{
				int32_t		room = part->nisr > 1 ? part->nisr : 1;
				int32_t    *grown = realloc(isr, sizeof(int32_t) * (size_t) room);

				if (grown == NULL)
				{
					ok = false;
					break;
				}
				isr = grown;
				cap = room;
			}
			for (int32_t i = 0; i < part->nisr; i++)
				if (view_usable(views, part->isr[i]))
					isr[nisr++] = part->isr[i];
			if (nisr == 0)
			{
				/* nobody usable: keep the last member, the leader if any */
				if (part->leader != SL_META_NO_LEADER &&
					SlMetaIntsContain(part->isr, part->nisr, part->leader))
				{
					isr[0] = part->leader;
					nisr = 1;
				}
				else
				{
					if (part->nisr > 0)
						memcpy(isr, part->isr, sizeof(int32_t) * (size_t) part->nisr);
					nisr = part->nisr;
				}
			}
			if (part->leader != SL_META_NO_LEADER && view_usable(views, part->leader))
				leader = part->leader;
			else
				for (int32_t r = 0; r < part->nreplicas; r++)
					if (SlMetaIntsContain(isr, nisr, part->replicas[r]) &&
						view_usable(views, part->replicas[r]))
					{
						leader = part->replicas[r];
						break;
					}

			/*
			 * Unclean election (the topic's unclean.leader.election.enable,
			 * as KRaft's PartitionChangeBuilder): no ISR member can lead, so
			 * the first usable replica does, alone in the ISR, and whatever
			 * it lacks of the log is lost
			 */
			if (leader == SL_META_NO_LEADER &&
				SlMetaTopicConfigFlag(topic, "unclean.leader.election.enable"))
				for (int32_t r = 0; r < part->nreplicas; r++)
					if (view_usable(views, part->replicas[r]))
					{
						leader = part->replicas[r];
						isr[0] = leader;
						nisr = 1;
						break;
					}
			/*
			 * A reassignment under way completes here too when the change
			 * leaves its adding replicas all in the ISR
			 */
			if ((part->nadding > 0 || part->nremoving > 0) && nisr <= SL_CTRL_MAX_TARGET)
			{
				SlPartitionTarget target;

				if (SlPartitionTargetInit(&target, part))
				{
					memcpy(target.isr, isr, sizeof(int32_t) * (size_t) nisr);
					target.nisr = nisr;
					target.leader = leader;
					if (SlPartitionTargetCompleteReassignment(&target))
						SlPartitionTargetElect(&target, view_usable_fn, views);
					ok = SlPartitionTargetRecord(&target, topic->topic_id, part, out);
					continue;
				}
			}
			isr_changed = nisr != part->nisr ||
				(nisr > 0 && memcmp(isr, part->isr, sizeof(int32_t) * (size_t) nisr) != 0);
			if (isr_changed || leader != part->leader)
			{
				SlMetaRecord rec = SlControllerNewRecord(SL_META_PARTITION_CHANGE);

				rec.topic_id = topic->topic_id;
				rec.partition.partition = part->partition;
				rec.partition.leader = leader != part->leader ? leader : SL_META_UNCHANGED;
				if (isr_changed)
				{
					rec.partition.isr = isr;
					rec.partition.nisr = nisr;
				}
				ok = SlMetaBatchAdd(out, &rec);
			}
		}
	}
	free(isr);
	return ok;
}

static int16_t
unregister_node(const SlMetaImage *image, const SlControllerRequest *req, SlMetaBatch *out,
				char *errbuf, size_t errbuf_len)
{
	NodeViews	views;
	NodeView   *v;
	SlMetaRecord rec;
	bool		ok;

	if (SlMetaImageNode(image, req->node_id) == NULL)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_BROKER_ID_NOT_REGISTERED,
								"node %d is not registered", (int) req->node_id);
	if (!views_init(&views, image, 0))
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
	v = view_of(&views, req->node_id);
	v->registered = false;
	/* its leaderships move first, as when it is fenced */
	ok = reassess_partitions(image, &views, out);
	free(views.v);
	rec = SlControllerNewRecord(SL_META_UNREGISTER_NODE);
	rec.node.node_id = req->node_id;
	if (!ok || !SlMetaBatchAdd(out, &rec))
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
	return 0;
}

int16_t
SlControllerHandleRequest(const SlMetaImage *image, const SlControllerRequest *req,
						  SlMetaBatch *out, char *errbuf, size_t errbuf_len)
{
	int			before = out->nrecords;
	int16_t		err;

	if (errbuf != NULL && errbuf_len > 0)
		errbuf[0] = '\0';
	switch (req->type)
	{
		case SL_CTRL_CREATE_TOPIC:
			err = create_topic(image, req, out, errbuf, errbuf_len);
			break;
		case SL_CTRL_DELETE_TOPIC:
			err = delete_topic(image, req, out, errbuf, errbuf_len);
			break;
		case SL_CTRL_CREATE_PARTITIONS:
			err = create_partitions(image, req, out, errbuf, errbuf_len);
			break;
		case SL_CTRL_ALTER_TOPIC_CONFIG:
			err = alter_config(image, req, out, errbuf, errbuf_len);
			break;
		case SL_CTRL_ELECT_LEADERS:
			err = elect_leaders(image, req, out, errbuf, errbuf_len);
			break;
		case SL_CTRL_ALLOCATE_PRODUCER_IDS:
			err = allocate_producer_ids(image, req, out, errbuf, errbuf_len);
			break;
		case SL_CTRL_UNREGISTER_NODE:
			err = unregister_node(image, req, out, errbuf, errbuf_len);
			break;
		case SL_CTRL_ALTER_PARTITION:
			err = SlControllerAlterPartition(image, req, out, errbuf, errbuf_len);
			break;
		case SL_CTRL_REASSIGN_PARTITIONS:
			err = SlControllerReassignPartitions(image, req, out, errbuf, errbuf_len);
			break;
		default:
			err = SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REQUEST,
								   "unknown controller request type %d", (int) req->type);
			break;
	}
	/* a refused request adds nothing, not even the records made so far */
	if (err != 0)
		truncate_batch(out, before);
	return err;
}

static SlMetaRecord
node_record(SlMetaRecordType type, int32_t node_id, uint64_t incarnation)
{
	SlMetaRecord rec = SlControllerNewRecord(type);

	rec.node.node_id = node_id;
	rec.node.incarnation = incarnation;
	return rec;
}

static int
compare_heartbeat_ids(const void *a, const void *b)
{
	const SlHeartbeat *x = *(const SlHeartbeat *const *) a;
	const SlHeartbeat *y = *(const SlHeartbeat *const *) b;

	if (x->node.node_id != y->node.node_id)
		return x->node.node_id < y->node.node_id ? -1 : 1;
	/* the newest first, then the larger incarnation: a fixed order */
	if (x->received_ms != y->received_ms)
		return x->received_ms > y->received_ms ? -1 : 1;
	if (x->node.incarnation != y->node.incarnation)
		return x->node.incarnation > y->node.incarnation ? -1 : 1;
	return 0;
}

/*
 * One node id's heartbeats (hbs[0..n), newest first): the records its
 * registration asks for, noted in its view.
 */
static bool
tick_node(const SlMetaImage *image, NodeViews *views, const SlHeartbeat *const *hbs, int n,
		  int64_t now_ms, int64_t session_timeout_ms, SlMetaBatch *out)
{
	int32_t		node_id = hbs[0]->node.node_id;
	const SlMetaNode *reg = SlMetaImageNode(image, node_id);
	const SlHeartbeat *cur = NULL;
	const SlHeartbeat *claimant = NULL;
	NodeView   *v;
	SlMetaRecord rec;

	for (int i = 0; i < n; i++)
	{
		bool		alive = now_ms - hbs[i]->received_ms <= session_timeout_ms &&
			!hbs[i]->gone;

		if (reg != NULL && hbs[i]->node.incarnation == reg->incarnation)
		{
			if (cur == NULL)
				cur = hbs[i];
		}
		/* endpoints no record can carry: a bad heartbeat registers nothing */
		else if (alive && claimant == NULL && SlMetaNodeValid(&hbs[i]->node))
			claimant = hbs[i];
	}
	v = view_add(views, node_id);

	/*
	 * The registered incarnation holds the id while it heartbeats, unless
	 * its controlled shutdown is done: then it is going, and a new
	 * incarnation (the node restarted) takes over at once, as Kafka fences
	 * a broker whose controlled shutdown completed
	 */
	if (cur != NULL && now_ms - cur->received_ms <= session_timeout_ms && !cur->gone &&
		!(claimant != NULL && cur->want_shutdown && reg->shutting_down &&
		  SlControllerShutdownDone(image, node_id)))
	{
		/* the registered incarnation is alive: any other claimant waits */
		if (cur->want_shutdown)
		{
			if (!reg->fenced && !reg->shutting_down)
			{
				rec = node_record(SL_META_SHUTDOWN_NODE, node_id, reg->incarnation);
				if (!SlMetaBatchAdd(out, &rec))
					return false;
				v->shutting_down = true;
			}
		}
		else if (reg->fenced && !reg->shutting_down)
		{
			rec = node_record(SL_META_UNFENCE_NODE, node_id, reg->incarnation);
			if (!SlMetaBatchAdd(out, &rec))
				return false;
			v->fenced = false;
		}
		return true;
	}
	if (claimant != NULL)
	{
		/* nobody registered, or its session expired: the newest claimant */
		rec = SlControllerNewRecord(SL_META_REGISTER_NODE);
		rec.node = claimant->node;
		rec.node.fenced = true;
		rec.node.shutting_down = false;
		if (!SlMetaBatchAdd(out, &rec))
			return false;
		v->registered = true;
		v->incarnation = claimant->node.incarnation;
		v->fenced = true;
		v->shutting_down = false;
		if (!claimant->want_shutdown)
		{
			rec = node_record(SL_META_UNFENCE_NODE, node_id, claimant->node.incarnation);
			if (!SlMetaBatchAdd(out, &rec))
				return false;
			v->fenced = false;
		}
		return true;
	}
	if (cur != NULL && !reg->fenced)
	{
		/* silent for longer than the session timeout, or gone */
		rec = node_record(SL_META_FENCE_NODE, node_id, reg->incarnation);
		if (!SlMetaBatchAdd(out, &rec))
			return false;
		v->fenced = true;
	}
	return true;
}

void
SlControllerTick(const SlMetaImage *image, const SlHeartbeat *heartbeats, int nheartbeats,
				 int64_t now_ms, int64_t session_timeout_ms, SlMetaBatch *out)
{
	const SlHeartbeat **sorted = NULL;
	NodeViews	views;
	int			before = out->nrecords;
	bool		ok;

	if (nheartbeats < 0)
		nheartbeats = 0;
	if (!views_init(&views, image, nheartbeats))
		return;
	ok = true;
	if (nheartbeats > 0)
	{
		sorted = malloc(sizeof(SlHeartbeat *) * (size_t) nheartbeats);
		ok = sorted != NULL;
		for (int i = 0; ok && i < nheartbeats; i++)
			sorted[i] = &heartbeats[i];
		if (ok)
			qsort(sorted, (size_t) nheartbeats, sizeof(SlHeartbeat *), compare_heartbeat_ids);
		for (int i = 0; ok && i < nheartbeats;)
		{
			int			j = i + 1;

			while (j < nheartbeats && sorted[j]->node.node_id == sorted[i]->node.node_id)
				j++;
			/* a negative node id is no node's: ignored */
			if (sorted[i]->node.node_id >= 0)
				ok = tick_node(image, &views, &sorted[i], j - i, now_ms, session_timeout_ms, out);
			i = j;
		}
	}
	if (ok)
		ok = reassess_partitions(image, &views, out);
	/* out of memory: propose nothing rather than half a decision */
	if (!ok)
		truncate_batch(out, before);
	free(sorted);
	free(views.v);
}

bool
SlControllerShutdownDone(const SlMetaImage *image, int32_t node_id)
{
	const SlMetaNode *node = SlMetaImageNode(image, node_id);

	if (node == NULL)
		return true;
	if (!node->shutting_down && !node->fenced)
		return false;
	for (int32_t t = 0; t < image->ntopics; t++)
		for (int32_t p = 0; p < image->topics[t].partition_count; p++)
			if (image->topics[t].partitions[p].leader == node_id)
				return false;
	return true;
}
