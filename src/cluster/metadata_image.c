/*-------------------------------------------------------------------------
 * metadata_image.c
 *	  The metadata image: what applying the records of the Raft log in
 *	  order builds, with KRaft's rules for each record, and its snapshot.
 *
 * A batch applies atomically.  Records are applied in place, and before a
 * record first touches a node or a topic in this batch, that node or
 * topic is saved (a deep copy, or "absent"); an invalid record puts every
 * saved one back.  A batch so costs what it touches, not the size of the
 * image (creating the thousandth topic copies nothing of the others).
 *
 * The rules (KRaft's ClusterControlManager and ReplicationControlManager,
 * reduced to what the records carry):
 *	- REGISTER_NODE: a node registers fenced; a new registration of an id
 *	  replaces the old one whole (new incarnation, endpoints, not shutting
 *	  down).
 *	- FENCE/UNFENCE/SHUTDOWN_NODE name an incarnation: one that is not the
 *	  registered one is stale and the record changes nothing (the batch
 *	  stays valid: the controller decided on an older image).
 *	- TOPIC ids are new and names unique; next_topic_id passes the largest.
 *	- PARTITION adds the next partition of a topic, PARTITION_CHANGE sets
 *	  leader and/or ISR: the ISR is a subset of the replicas, the leader is
 *	  in the ISR or none; a new leader is a registered node, unfenced and
 *	  not shutting down; a new leader bumps the leader epoch, any change
 *	  the partition epoch.
 *	- PRODUCER_IDS hands out the block starting at next_producer_id, no
 *	  other (a block decided on a stale image is refused).
 *	- CONTROLLER epochs only grow.
 *
 * IDENTIFICATION
 *	  src/cluster/metadata_image.c
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "streamlog/cluster/metadata_image.h"
#include "streamlog/cluster/metadata_records.h"
#include "streamlog/cluster/internal/metadata_parts.h"
#include "streamlog/cluster/internal/metadata_wire.h"

#define SL_META_IMAGE_MAGIC 0x534c4d49	/* "SLMI" */
/*
 * Format 2 adds each partition's reassignment (adding, removing), written
 * only when some partition has one: an image without is at format 1, so
 * that each image has one encoding
 */
#define SL_META_IMAGE_FORMAT 2

/* Does some partition of the image have a reassignment under way? */
static bool
any_reassignment(const SlMetaImage *image)
{
	for (int32_t i = 0; i < image->ntopics; i++)
		for (int32_t p = 0; p < image->topics[i].partition_count; p++)
			if (image->topics[i].partitions[p].nadding > 0 ||
				image->topics[i].partitions[p].nremoving > 0)
				return true;
	return false;
}

/* Kafka's limit on a topic name's length */
#define SL_META_MAX_TOPIC_NAME 249

/* Most producer ids one block may hand out */
#define SL_META_MAX_PRODUCER_ID_BLOCK 1000000

/* ---- parts: copy, free, encode ---- */

/*
 * Room allocated for an array of count elements (a topic's partitions, the
 * image's nodes and topics): count rounded up to a power of two, at least
 * 4, wherever such an array is allocated, so that adding elements one
 * record at a time grows it geometrically (a topic of 20,000 partitions
 * would otherwise copy its array 20,000 times).  The structs have no
 * capacity field: this rule is it.
 */
static size_t
array_room(int32_t count)
{
	size_t		room = 4;

	while (room < (size_t) count)
		room *= 2;
	return room;
}

bool
SlMetaIntsCopy(int32_t **dst, const int32_t *src, int32_t n)
{
	*dst = NULL;
	if (n <= 0 || src == NULL)
		return true;
	*dst = malloc(sizeof(int32_t) * (size_t) n);
	if (*dst == NULL)
		return false;
	memcpy(*dst, src, sizeof(int32_t) * (size_t) n);
	return true;
}

bool
SlMetaIntsContain(const int32_t *ids, int32_t n, int32_t id)
{
	for (int32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

void
SlMetaNodeFree(SlMetaNode *node)
{
	free(node->kafka_host);
	free(node->sql_conninfo);
	free(node->raft_address);
	free(node->rack);
	node->kafka_host = node->sql_conninfo = node->raft_address = node->rack = NULL;
}

bool
SlMetaNodeCopy(SlMetaNode *dst, const SlMetaNode *src)
{
	bool		ok;

	*dst = *src;
	ok = SlWireStrdup(&dst->kafka_host, src->kafka_host);
	ok = SlWireStrdup(&dst->sql_conninfo, src->sql_conninfo) && ok;
	ok = SlWireStrdup(&dst->raft_address, src->raft_address) && ok;
	ok = SlWireStrdup(&dst->rack, src->rack) && ok;
	if (!ok)
		SlMetaNodeFree(dst);
	return ok;
}

void
SlMetaPartitionFree(SlMetaPartition *part)
{
	free(part->replicas);
	free(part->isr);
	free(part->adding);
	free(part->removing);
	part->replicas = part->isr = part->adding = part->removing = NULL;
	part->nreplicas = 0;
	part->nisr = 0;
	part->nadding = 0;
	part->nremoving = 0;
}

bool
SlMetaPartitionCopy(SlMetaPartition *dst, const SlMetaPartition *src)
{
	bool		ok;

	*dst = *src;
	ok = SlMetaIntsCopy(&dst->replicas, src->replicas, src->nreplicas);
	ok = SlMetaIntsCopy(&dst->isr, src->isr, src->nisr) && ok;
	ok = SlMetaIntsCopy(&dst->adding, src->adding, src->nadding) && ok;
	ok = SlMetaIntsCopy(&dst->removing, src->removing, src->nremoving) && ok;
	if (!ok)
	{
		SlMetaPartitionFree(dst);
		return false;
	}
	/* an absent ISR (nisr < 0, "unchanged") stays absent */
	return true;
}

void
SlMetaTopicFree(SlMetaTopic *topic)
{
	for (int32_t i = 0; i < topic->partition_count && topic->partitions != NULL; i++)
		SlMetaPartitionFree(&topic->partitions[i]);
	free(topic->partitions);
	free(topic->name);
	free(topic->config_json);
	free(topic->owner);
	topic->partitions = NULL;
	topic->partition_count = 0;
	topic->name = topic->config_json = topic->owner = NULL;
}

bool
SlMetaTopicCopy(SlMetaTopic *dst, const SlMetaTopic *src)
{
	bool		ok;

	*dst = *src;
	dst->partitions = NULL;
	dst->partition_count = 0;
	ok = SlWireStrdup(&dst->name, src->name);
	ok = SlWireStrdup(&dst->config_json, src->config_json) && ok;
	ok = SlWireStrdup(&dst->owner, src->owner) && ok;
	if (ok && src->partition_count > 0 && src->partitions != NULL)
	{
		dst->partitions = calloc(array_room(src->partition_count), sizeof(SlMetaPartition));
		ok = dst->partitions != NULL;
		for (int32_t i = 0; ok && i < src->partition_count; i++)
		{
			ok = SlMetaPartitionCopy(&dst->partitions[i], &src->partitions[i]);
			/* a failed copy is left empty: freeing the count is safe */
			dst->partition_count = i + 1;
		}
	}
	if (!ok)
		SlMetaTopicFree(dst);
	return ok;
}

void
SlMetaNodeEncode(SlWireWriter *w, const SlMetaNode *node)
{
	SlWirePutI32(w, node->node_id);
	SlWirePutU64(w, node->incarnation);
	SlWirePutString(w, node->kafka_host);
	SlWirePutI32(w, node->kafka_port);
	SlWirePutString(w, node->sql_conninfo);
	SlWirePutString(w, node->raft_address);
	SlWirePutString(w, node->rack);
}

void
SlMetaNodeDecode(SlWireReader *r, SlMetaNode *node)
{
	node->node_id = SlWireGetI32(r);
	node->incarnation = SlWireGetU64(r);
	SlWireGetString(r, &node->kafka_host, true);
	node->kafka_port = SlWireGetI32(r);
	SlWireGetString(r, &node->sql_conninfo, true);
	SlWireGetString(r, &node->raft_address, true);
	SlWireGetString(r, &node->rack, true);
}

/* A string a record can carry (NULL is none) */
static bool
carriable(const char *s)
{
	return s == NULL || strlen(s) <= SL_WIRE_MAX_STRING;
}

bool
SlMetaNodeValid(const SlMetaNode *node)
{
	return node->node_id >= 0 && node->kafka_port >= 0 && node->kafka_port <= 65535 &&
		carriable(node->kafka_host) && carriable(node->sql_conninfo) &&
		carriable(node->raft_address) && carriable(node->rack);
}

bool
SlMetaPartitionValid(const SlMetaPartition *part)
{
	if (part->partition < 0 || part->nreplicas <= 0 || part->replicas == NULL ||
		part->nisr < 0 || part->nisr > part->nreplicas ||
		(part->nisr > 0 && part->isr == NULL) ||
		part->leader_epoch < 0 || part->partition_epoch < 0)
		return false;
	for (int32_t i = 0; i < part->nreplicas; i++)
	{
		if (part->replicas[i] < 0 ||
			SlMetaIntsContain(part->replicas, i, part->replicas[i]))
			return false;
	}
	for (int32_t i = 0; i < part->nisr; i++)
	{
		if (!SlMetaIntsContain(part->replicas, part->nreplicas, part->isr[i]) ||
			SlMetaIntsContain(part->isr, i, part->isr[i]))
			return false;
	}
	if (part->leader != SL_META_NO_LEADER &&
		!SlMetaIntsContain(part->isr, part->nisr, part->leader))
		return false;
	/* a reassignment's adding and removing replicas: disjoint replicas */
	if (part->nadding < 0 || part->nremoving < 0 ||
		(part->nadding > 0 && part->adding == NULL) ||
		(part->nremoving > 0 && part->removing == NULL) ||
		part->nadding + part->nremoving > part->nreplicas)
		return false;
	for (int32_t i = 0; i < part->nadding; i++)
		if (!SlMetaIntsContain(part->replicas, part->nreplicas, part->adding[i]) ||
			SlMetaIntsContain(part->adding, i, part->adding[i]))
			return false;
	for (int32_t i = 0; i < part->nremoving; i++)
		if (!SlMetaIntsContain(part->replicas, part->nreplicas, part->removing[i]) ||
			SlMetaIntsContain(part->removing, i, part->removing[i]) ||
			SlMetaIntsContain(part->adding, part->nadding, part->removing[i]))
			return false;
	return true;
}

/* ---- the image ---- */

void
SlMetaImageInit(SlMetaImage *image)
{
	memset(image, 0, sizeof(*image));
	image->controller_id = SL_META_NO_LEADER;
	image->next_topic_id = 1;
}

void
SlMetaImageFree(SlMetaImage *image)
{
	for (int32_t i = 0; i < image->nnodes; i++)
		SlMetaNodeFree(&image->nodes[i]);
	for (int32_t i = 0; i < image->ntopics; i++)
		SlMetaTopicFree(&image->topics[i]);
	free(image->nodes);
	free(image->topics);
	SlMetaImageInit(image);
}

bool
SlMetaImageCopy(SlMetaImage *dst, const SlMetaImage *src)
{
	*dst = *src;
	dst->nodes = NULL;
	dst->topics = NULL;
	dst->nnodes = 0;
	dst->ntopics = 0;
	if (src->nnodes > 0)
	{
		dst->nodes = calloc(array_room(src->nnodes), sizeof(SlMetaNode));
		if (dst->nodes == NULL)
			goto oom;
		for (int32_t i = 0; i < src->nnodes; i++)
		{
			bool		ok = SlMetaNodeCopy(&dst->nodes[i], &src->nodes[i]);

			dst->nnodes = i + 1;
			if (!ok)
				goto oom;
		}
	}
	if (src->ntopics > 0)
	{
		dst->topics = calloc(array_room(src->ntopics), sizeof(SlMetaTopic));
		if (dst->topics == NULL)
			goto oom;
		for (int32_t i = 0; i < src->ntopics; i++)
		{
			bool		ok = SlMetaTopicCopy(&dst->topics[i], &src->topics[i]);

			dst->ntopics = i + 1;
			if (!ok)
				goto oom;
		}
	}
	return true;

oom:
	SlMetaImageFree(dst);
	return false;
}

/* Position of node_id in the sorted nodes, or where it would go (*found) */
static int32_t
node_pos(const SlMetaImage *image, int32_t node_id, bool *found)
{
	int32_t		lo = 0,
				hi = image->nnodes;

	while (lo < hi)
	{
		int32_t		mid = lo + (hi - lo) / 2;

		if (image->nodes[mid].node_id < node_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < image->nnodes && image->nodes[lo].node_id == node_id;
	return lo;
}

static int32_t
topic_pos(const SlMetaImage *image, int32_t topic_id, bool *found)
{
	int32_t		lo = 0,
				hi = image->ntopics;

	while (lo < hi)
	{
		int32_t		mid = lo + (hi - lo) / 2;

		if (image->topics[mid].topic_id < topic_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < image->ntopics && image->topics[lo].topic_id == topic_id;
	return lo;
}

const SlMetaNode *
SlMetaImageNode(const SlMetaImage *image, int32_t node_id)
{
	bool		found;
	int32_t		pos = node_pos(image, node_id, &found);

	return found ? &image->nodes[pos] : NULL;
}

const SlMetaTopic *
SlMetaImageTopicById(const SlMetaImage *image, int32_t topic_id)
{
	bool		found;
	int32_t		pos = topic_pos(image, topic_id, &found);

	return found ? &image->topics[pos] : NULL;
}

const SlMetaTopic *
SlMetaImageTopicByName(const SlMetaImage *image, const char *name)
{
	if (name == NULL)
		return NULL;
	for (int32_t i = 0; i < image->ntopics; i++)
		if (strcmp(image->topics[i].name, name) == 0)
			return &image->topics[i];
	return NULL;
}

/*
 * Insert *node (ownership moves) at its place; false if out of memory (the
 * node is then still the caller's).
 */
static bool
insert_node(SlMetaImage *image, SlMetaNode *node)
{
	bool		found;
	int32_t		pos = node_pos(image, node->node_id, &found);
	SlMetaNode *grown;

	if (image->nodes == NULL ||
		array_room(image->nnodes + 1) > array_room(image->nnodes))
	{
		grown = realloc(image->nodes, sizeof(SlMetaNode) * array_room(image->nnodes + 1));
		if (grown == NULL)
			return false;
		image->nodes = grown;
	}
	memmove(&image->nodes[pos + 1], &image->nodes[pos],
			sizeof(SlMetaNode) * (size_t) (image->nnodes - pos));
	image->nodes[pos] = *node;
	image->nnodes++;
	return true;
}

/* Remove (and free) the node at pos */
static void
remove_node(SlMetaImage *image, int32_t pos)
{
	SlMetaNodeFree(&image->nodes[pos]);
	memmove(&image->nodes[pos], &image->nodes[pos + 1],
			sizeof(SlMetaNode) * (size_t) (image->nnodes - pos - 1));
	image->nnodes--;
}

static bool
insert_topic(SlMetaImage *image, SlMetaTopic *topic)
{
	bool		found;
	int32_t		pos = topic_pos(image, topic->topic_id, &found);
	SlMetaTopic *grown;

	if (image->topics == NULL ||
		array_room(image->ntopics + 1) > array_room(image->ntopics))
	{
		grown = realloc(image->topics, sizeof(SlMetaTopic) * array_room(image->ntopics + 1));
		if (grown == NULL)
			return false;
		image->topics = grown;
	}
	memmove(&image->topics[pos + 1], &image->topics[pos],
			sizeof(SlMetaTopic) * (size_t) (image->ntopics - pos));
	image->topics[pos] = *topic;
	image->ntopics++;
	return true;
}

static void
remove_topic(SlMetaImage *image, int32_t pos)
{
	SlMetaTopicFree(&image->topics[pos]);
	memmove(&image->topics[pos], &image->topics[pos + 1],
			sizeof(SlMetaTopic) * (size_t) (image->ntopics - pos - 1));
	image->ntopics--;
}

/* ---- applying a batch: the undo log ---- */

typedef struct SavedPart
{
	bool		is_topic;
	int32_t		id;
	bool		existed;
	SlMetaNode	node;			/* its state before the batch, if existed */
	SlMetaTopic topic;
} SavedPart;

typedef struct Undo
{
	int			nsaved;
	int			capacity;
	SavedPart  *saved;
	/* the image's scalars before the batch */
	int32_t		controller_id;
	uint64_t	controller_epoch;
	int32_t		next_topic_id;
	int64_t		next_producer_id;
} Undo;

/* Save node_id's state before this batch first changes it */
static bool
save_part(Undo *undo, const SlMetaImage *image, bool is_topic, int32_t id)
{
	SavedPart  *s;
	bool		found;
	int32_t		pos;

	for (int i = 0; i < undo->nsaved; i++)
		if (undo->saved[i].is_topic == is_topic && undo->saved[i].id == id)
			return true;
	if (undo->nsaved == undo->capacity)
	{
		int			capacity = undo->capacity < 8 ? 8 : undo->capacity * 2;
		SavedPart  *grown = realloc(undo->saved, sizeof(SavedPart) * (size_t) capacity);

		if (grown == NULL)
			return false;
		undo->saved = grown;
		undo->capacity = capacity;
	}
	s = &undo->saved[undo->nsaved];
	memset(s, 0, sizeof(*s));
	s->is_topic = is_topic;
	s->id = id;
	if (is_topic)
	{
		pos = topic_pos(image, id, &found);
		if (found && !SlMetaTopicCopy(&s->topic, &image->topics[pos]))
			return false;
	}
	else
	{
		pos = node_pos(image, id, &found);
		if (found && !SlMetaNodeCopy(&s->node, &image->nodes[pos]))
			return false;
	}
	s->existed = found;
	undo->nsaved++;
	return true;
}

/* Put every saved part back (the batch failed) */
static void
undo_rollback(Undo *undo, SlMetaImage *image)
{
	for (int i = undo->nsaved - 1; i >= 0; i--)
	{
		SavedPart  *s = &undo->saved[i];
		bool		found;
		int32_t		pos;

		if (s->is_topic)
		{
			pos = topic_pos(image, s->id, &found);
			if (found)
				remove_topic(image, pos);
			/* the array only shrank: inserting back cannot need more room */
			if (s->existed && insert_topic(image, &s->topic))
				memset(&s->topic, 0, sizeof(s->topic));
		}
		else
		{
			pos = node_pos(image, s->id, &found);
			if (found)
				remove_node(image, pos);
			if (s->existed && insert_node(image, &s->node))
				memset(&s->node, 0, sizeof(s->node));
		}
	}
	image->controller_id = undo->controller_id;
	image->controller_epoch = undo->controller_epoch;
	image->next_topic_id = undo->next_topic_id;
	image->next_producer_id = undo->next_producer_id;
}

static void
undo_free(Undo *undo)
{
	for (int i = 0; i < undo->nsaved; i++)
	{
		SlMetaNodeFree(&undo->saved[i].node);
		SlMetaTopicFree(&undo->saved[i].topic);
	}
	free(undo->saved);
}

/* ---- the records ---- */

static bool
apply_register(SlMetaImage *image, Undo *undo, const SlMetaRecord *rec)
{
	SlMetaNode	node;
	bool		found;
	int32_t		pos;

	if (!SlMetaNodeValid(&rec->node))
		return false;
	if (!save_part(undo, image, false, rec->node.node_id))
		return false;
	if (!SlMetaNodeCopy(&node, &rec->node))
		return false;
	node.fenced = true;
	node.shutting_down = false;
	pos = node_pos(image, node.node_id, &found);
	if (found)
	{
		SlMetaNodeFree(&image->nodes[pos]);
		image->nodes[pos] = node;
		return true;
	}
	if (!insert_node(image, &node))
	{
		SlMetaNodeFree(&node);
		return false;
	}
	return true;
}

/* FENCE_NODE, UNFENCE_NODE, SHUTDOWN_NODE */
static bool
apply_node_state(SlMetaImage *image, Undo *undo, const SlMetaRecord *rec)
{
	bool		found;
	int32_t		pos = node_pos(image, rec->node.node_id, &found);
	SlMetaNode *node;

	if (!found)
		return false;
	node = &image->nodes[pos];
	/* decided on an older registration: nothing to do */
	if (node->incarnation != rec->node.incarnation)
		return true;
	if (!save_part(undo, image, false, node->node_id))
		return false;
	/* save_part did not move the array, but re-read for clarity */
	node = &image->nodes[pos];
	switch (rec->type)
	{
		case SL_META_FENCE_NODE:
			node->fenced = true;
			break;
		case SL_META_UNFENCE_NODE:
			node->fenced = false;
			break;
		case SL_META_SHUTDOWN_NODE:
			node->shutting_down = true;
			break;
		default:
			return false;
	}
	return true;
}

static bool
apply_unregister(SlMetaImage *image, Undo *undo, const SlMetaRecord *rec)
{
	bool		found;
	int32_t		pos = node_pos(image, rec->node.node_id, &found);

	if (!found || !save_part(undo, image, false, rec->node.node_id))
		return false;
	remove_node(image, pos);
	return true;
}

static bool
apply_topic(SlMetaImage *image, Undo *undo, const SlMetaRecord *rec)
{
	SlMetaTopic topic;
	size_t		namelen;

	if (rec->topic.topic_id <= 0 || rec->topic.topic_id == INT32_MAX ||
		rec->topic.name == NULL)
		return false;
	namelen = strlen(rec->topic.name);
	if (namelen == 0 || namelen > SL_META_MAX_TOPIC_NAME ||
		SlMetaImageTopicById(image, rec->topic.topic_id) != NULL ||
		SlMetaImageTopicByName(image, rec->topic.name) != NULL)
		return false;
	if (!save_part(undo, image, true, rec->topic.topic_id))
		return false;
	memset(&topic, 0, sizeof(topic));
	topic.topic_id = rec->topic.topic_id;
	memcpy(topic.uuid, rec->topic.uuid, 16);
	if (!SlWireStrdup(&topic.name, rec->topic.name) ||
		!SlWireStrdup(&topic.config_json, rec->topic.config_json) ||
		!SlWireStrdup(&topic.owner, rec->topic.owner) ||
		!insert_topic(image, &topic))
	{
		SlMetaTopicFree(&topic);
		return false;
	}
	if (image->next_topic_id <= rec->topic.topic_id)
		image->next_topic_id = rec->topic.topic_id + 1;
	return true;
}

/*
 * May node_id take a leadership now: registered, unfenced, not shutting
 * down?  A controller only elects such nodes; a decision made on an image
 * that has moved on since (a node fenced meanwhile) is refused here, so
 * that no leadership ever lands on a fenced node.
 */
static bool
may_lead(const SlMetaImage *image, int32_t node_id)
{
	const SlMetaNode *node = SlMetaImageNode(image, node_id);

	return node != NULL && !node->fenced && !node->shutting_down;
}

/* The topic a record names, saved for undo first; NULL if none */
static SlMetaTopic *
touch_topic(SlMetaImage *image, Undo *undo, int32_t topic_id)
{
	bool		found;
	int32_t		pos = topic_pos(image, topic_id, &found);

	if (!found || !save_part(undo, image, true, topic_id))
		return NULL;
	return &image->topics[pos];
}

static bool
apply_remove_topic(SlMetaImage *image, Undo *undo, const SlMetaRecord *rec)
{
	bool		found;
	int32_t		pos;

	if (touch_topic(image, undo, rec->topic.topic_id) == NULL)
		return false;
	pos = topic_pos(image, rec->topic.topic_id, &found);
	remove_topic(image, pos);
	return true;
}

static bool
apply_partition(SlMetaImage *image, Undo *undo, const SlMetaRecord *rec)
{
	SlMetaTopic *topic = touch_topic(image, undo, rec->topic_id);
	SlMetaPartition *grown;
	SlMetaPartition part;

	if (topic == NULL || rec->partition.partition != topic->partition_count ||
		topic->partition_count == INT32_MAX ||
		!SlMetaPartitionValid(&rec->partition))
		return false;
	if (rec->partition.leader != SL_META_NO_LEADER && !may_lead(image, rec->partition.leader))
		return false;
	if (!SlMetaPartitionCopy(&part, &rec->partition))
		return false;
	if (topic->partitions == NULL ||
		array_room(topic->partition_count + 1) > array_room(topic->partition_count))
	{
		grown = realloc(topic->partitions,
						sizeof(SlMetaPartition) * array_room(topic->partition_count + 1));
		if (grown == NULL)
		{
			SlMetaPartitionFree(&part);
			return false;
		}
		topic->partitions = grown;
	}
	topic->partitions[topic->partition_count++] = part;
	return true;
}

/*
 * For a field a PARTITION_CHANGE gives (n >= 0): a copy of src[0..n) in
 * *copy, set as *next; the caller frees the old array once every copy is
 * made.  A field not given (n < 0) keeps *next as it is.  false if out of
 * memory.
 */
static bool
replace_ints(int32_t **next, const int32_t *src, int32_t n, int32_t **copy)
{
	*copy = NULL;
	if (n < 0)
		return true;
	if (!SlMetaIntsCopy(copy, src, n))
		return false;
	*next = *copy;
	return true;
}

static bool
apply_partition_change(SlMetaImage *image, Undo *undo, const SlMetaRecord *rec)
{
	SlMetaTopic *topic = touch_topic(image, undo, rec->topic_id);
	SlMetaPartition *cur;
	SlMetaPartition next;
	int32_t    *isr = NULL;
	int32_t    *replicas = NULL;
	int32_t    *adding = NULL;
	int32_t    *removing = NULL;

	if (topic == NULL || rec->partition.partition < 0 ||
		rec->partition.partition >= topic->partition_count)
		return false;
	cur = &topic->partitions[rec->partition.partition];
	next = *cur;
	if (rec->partition.leader != SL_META_UNCHANGED)
	{
		if (rec->partition.leader < SL_META_NO_LEADER)
			return false;
		next.leader = rec->partition.leader;
	}
	if (rec->partition.nisr >= 0)
	{
		next.nisr = rec->partition.nisr;
		next.isr = rec->partition.isr;
	}
	if (rec->partition.nreplicas > 0)
	{
		next.nreplicas = rec->partition.nreplicas;
		next.replicas = rec->partition.replicas;
	}
	if (rec->partition.nadding >= 0)
	{
		next.nadding = rec->partition.nadding;
		next.adding = rec->partition.adding;
	}
	if (rec->partition.nremoving >= 0)
	{
		next.nremoving = rec->partition.nremoving;
		next.removing = rec->partition.removing;
	}
	if (!SlMetaPartitionValid(&next))
		return false;
	if (next.leader != cur->leader)
	{
		if (cur->leader_epoch == INT32_MAX)
			return false;
		if (next.leader != SL_META_NO_LEADER && !may_lead(image, next.leader))
			return false;
		next.leader_epoch = cur->leader_epoch + 1;
	}
	if (cur->partition_epoch == INT32_MAX)
		return false;
	next.partition_epoch = cur->partition_epoch + 1;
	/* the new arrays are copies; the replaced ones are freed once all are */
	if (!replace_ints(&next.isr, rec->partition.isr, rec->partition.nisr, &isr) ||
		!replace_ints(&next.replicas, rec->partition.replicas,
					  rec->partition.nreplicas > 0 ? rec->partition.nreplicas : -1, &replicas) ||
		!replace_ints(&next.adding, rec->partition.adding,
					  rec->partition.nadding, &adding) ||
		!replace_ints(&next.removing, rec->partition.removing,
					  rec->partition.nremoving, &removing))
	{
		free(isr);
		free(replicas);
		free(adding);
		free(removing);
		return false;
	}
	if (rec->partition.nisr >= 0)
		free(cur->isr);
	if (rec->partition.nreplicas > 0)
		free(cur->replicas);
	if (rec->partition.nadding >= 0)
		free(cur->adding);
	if (rec->partition.nremoving >= 0)
		free(cur->removing);
	*cur = next;
	return true;
}

static bool
apply_topic_config(SlMetaImage *image, Undo *undo, const SlMetaRecord *rec)
{
	SlMetaTopic *topic = touch_topic(image, undo, rec->topic.topic_id);
	char	   *config;

	if (topic == NULL || !SlWireStrdup(&config, rec->topic.config_json))
		return false;
	free(topic->config_json);
	topic->config_json = config;
	return true;
}

static bool
apply_producer_ids(SlMetaImage *image, const SlMetaRecord *rec)
{
	if (rec->node_id < 0 || rec->producer_id_count <= 0 ||
		rec->producer_id_count > SL_META_MAX_PRODUCER_ID_BLOCK ||
		rec->first_producer_id != image->next_producer_id ||
		rec->first_producer_id > INT64_MAX - rec->producer_id_count)
		return false;
	image->next_producer_id += rec->producer_id_count;
	return true;
}

static bool
apply_controller(SlMetaImage *image, const SlMetaRecord *rec)
{
	if (rec->node_id < 0 || rec->controller_epoch <= image->controller_epoch)
		return false;
	image->controller_id = rec->node_id;
	image->controller_epoch = rec->controller_epoch;
	return true;
}

static bool
apply_record(SlMetaImage *image, Undo *undo, const SlMetaRecord *rec)
{
	switch (rec->type)
	{
		case SL_META_REGISTER_NODE:
			return apply_register(image, undo, rec);
		case SL_META_FENCE_NODE:
		case SL_META_UNFENCE_NODE:
		case SL_META_SHUTDOWN_NODE:
			return apply_node_state(image, undo, rec);
		case SL_META_UNREGISTER_NODE:
			return apply_unregister(image, undo, rec);
		case SL_META_TOPIC:
			return apply_topic(image, undo, rec);
		case SL_META_REMOVE_TOPIC:
			return apply_remove_topic(image, undo, rec);
		case SL_META_PARTITION:
			return apply_partition(image, undo, rec);
		case SL_META_PARTITION_CHANGE:
			return apply_partition_change(image, undo, rec);
		case SL_META_TOPIC_CONFIG:
			return apply_topic_config(image, undo, rec);
		case SL_META_PRODUCER_IDS:
			return apply_producer_ids(image, rec);
		case SL_META_CONTROLLER:
			return apply_controller(image, rec);
	}
	return false;
}

bool
SlMetaImageApply(SlMetaImage *image, uint64_t index, const void *data, size_t len)
{
	SlMetaBatch batch;
	Undo		undo;
	bool		ok = true;

	image->applied_index = index;
	if (!SlMetaBatchDecode(&batch, data, len))
	{
		image->invalid_batches++;
		return false;
	}
	memset(&undo, 0, sizeof(undo));
	undo.controller_id = image->controller_id;
	undo.controller_epoch = image->controller_epoch;
	undo.next_topic_id = image->next_topic_id;
	undo.next_producer_id = image->next_producer_id;
	for (int i = 0; ok && i < batch.nrecords; i++)
		ok = apply_record(image, &undo, &batch.records[i]);
	if (!ok)
	{
		undo_rollback(&undo, image);
		image->invalid_batches++;
	}
	undo_free(&undo);
	SlMetaBatchFree(&batch);
	return ok;
}

/* ---- snapshots ---- */

bool
SlMetaImageEncode(const SlMetaImage *image, void **data, size_t *len)
{
	SlWireWriter w;
	uint8_t		format = any_reassignment(image) ? SL_META_IMAGE_FORMAT : 1;

	SlWireWriterInit(&w);
	SlWirePutU32(&w, SL_META_IMAGE_MAGIC);
	SlWirePutU8(&w, format);
	SlWirePutU64(&w, image->applied_index);
	SlWirePutI32(&w, image->controller_id);
	SlWirePutU64(&w, image->controller_epoch);
	SlWirePutI32(&w, image->next_topic_id);
	SlWirePutI64(&w, image->next_producer_id);
	SlWirePutU64(&w, image->invalid_batches);
	SlWirePutU32(&w, (uint32_t) image->nnodes);
	for (int32_t i = 0; i < image->nnodes; i++)
	{
		const SlMetaNode *node = &image->nodes[i];

		SlMetaNodeEncode(&w, node);
		SlWirePutU8(&w, node->fenced ? 1 : 0);
		SlWirePutU8(&w, node->shutting_down ? 1 : 0);
	}
	SlWirePutU32(&w, (uint32_t) image->ntopics);
	for (int32_t i = 0; i < image->ntopics; i++)
	{
		const SlMetaTopic *topic = &image->topics[i];

		SlWirePutI32(&w, topic->topic_id);
		SlWirePutBytes(&w, topic->uuid, 16);
		SlWirePutString(&w, topic->name);
		SlWirePutString(&w, topic->config_json);
		SlWirePutString(&w, topic->owner);
		SlWirePutU32(&w, (uint32_t) topic->partition_count);
		for (int32_t p = 0; p < topic->partition_count; p++)
		{
			const SlMetaPartition *part = &topic->partitions[p];

			SlWirePutI32(&w, part->partition);
			SlWirePutI32Array(&w, part->replicas, part->nreplicas);
			SlWirePutI32Array(&w, part->isr, part->nisr);
			SlWirePutI32(&w, part->leader);
			SlWirePutI32(&w, part->leader_epoch);
			SlWirePutI32(&w, part->partition_epoch);
			if (format >= 2)
			{
				SlWirePutI32Array(&w, part->adding, part->nadding);
				SlWirePutI32Array(&w, part->removing, part->nremoving);
			}
		}
	}
	return SlWireWriterFinish(&w, data, len);
}

/* A boolean byte: 0 or 1, anything else fails the reader */
static bool
get_flag(SlWireReader *r)
{
	uint8_t		b = SlWireGetU8(r);

	if (b > 1)
		r->failed = true;
	return b == 1;
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Are the topics' names unique (sorting a copy of the pointers)? */
static bool
names_unique(const SlMetaImage *image)
{
	char	  **names;
	bool		ok = true;

	if (image->ntopics < 2)
		return true;
	names = malloc(sizeof(char *) * (size_t) image->ntopics);
	if (names == NULL)
		return false;
	for (int32_t i = 0; i < image->ntopics; i++)
		names[i] = image->topics[i].name;
	qsort(names, (size_t) image->ntopics, sizeof(char *), compare_names);
	for (int32_t i = 1; ok && i < image->ntopics; i++)
		ok = strcmp(names[i - 1], names[i]) != 0;
	free(names);
	return ok;
}

static bool
decode_topic(SlWireReader *r, SlMetaTopic *topic, int32_t prev_id, int32_t next_topic_id,
			 uint8_t format)
{
	uint32_t	count;
	size_t		namelen;

	topic->topic_id = SlWireGetI32(r);
	SlWireGetBytes(r, topic->uuid, 16);
	SlWireGetString(r, &topic->name, false);
	SlWireGetString(r, &topic->config_json, true);
	SlWireGetString(r, &topic->owner, true);
	count = SlWireGetU32(r);
	if (r->failed || topic->topic_id <= prev_id || topic->topic_id >= next_topic_id)
		return false;
	namelen = strlen(topic->name);
	if (namelen == 0 || namelen > SL_META_MAX_TOPIC_NAME)
		return false;
	/* a partition takes at least 20 bytes (five int32s, empty arrays) */
	if (count > (uint32_t) INT32_MAX || count > SlWireRemaining(r) / 20)
		return false;
	if (count == 0)
		return true;
	topic->partitions = calloc(array_room((int32_t) count), sizeof(SlMetaPartition));
	if (topic->partitions == NULL)
		return false;
	for (uint32_t p = 0; p < count; p++)
	{
		SlMetaPartition *part = &topic->partitions[p];

		topic->partition_count = (int32_t) p + 1;
		part->partition = SlWireGetI32(r);
		SlWireGetI32Array(r, &part->replicas, &part->nreplicas, false);
		SlWireGetI32Array(r, &part->isr, &part->nisr, false);
		part->leader = SlWireGetI32(r);
		part->leader_epoch = SlWireGetI32(r);
		part->partition_epoch = SlWireGetI32(r);
		if (format >= 2)
		{
			SlWireGetI32Array(r, &part->adding, &part->nadding, false);
			SlWireGetI32Array(r, &part->removing, &part->nremoving, false);
		}
		if (r->failed || part->partition != (int32_t) p || !SlMetaPartitionValid(part))
			return false;
	}
	return true;
}

bool
SlMetaImageDecode(SlMetaImage *image, const void *data, size_t len)
{
	SlWireReader r;
	uint32_t	magic;
	uint8_t		format;
	uint32_t	count;

	SlMetaImageInit(image);
	SlWireReaderInit(&r, data, len);
	magic = SlWireGetU32(&r);
	format = SlWireGetU8(&r);
	if (r.failed || magic != SL_META_IMAGE_MAGIC || format < 1 || format > SL_META_IMAGE_FORMAT)
		return false;
	image->applied_index = SlWireGetU64(&r);
	image->controller_id = SlWireGetI32(&r);
	image->controller_epoch = SlWireGetU64(&r);
	image->next_topic_id = SlWireGetI32(&r);
	image->next_producer_id = SlWireGetI64(&r);
	image->invalid_batches = SlWireGetU64(&r);
	count = SlWireGetU32(&r);
	if (r.failed || image->controller_id < SL_META_NO_LEADER ||
		image->next_topic_id <= 0 || image->next_producer_id < 0)
		goto bad;
	/* a node takes at least 32 bytes (ids, port, four absent strings, flags) */
	if (count > (uint32_t) INT32_MAX || count > SlWireRemaining(&r) / 32)
		goto bad;
	if (count > 0)
	{
		image->nodes = calloc(array_room((int32_t) count), sizeof(SlMetaNode));
		if (image->nodes == NULL)
			goto bad;
	}
	for (uint32_t i = 0; i < count; i++)
	{
		SlMetaNode *node = &image->nodes[i];

		image->nnodes = (int32_t) i + 1;
		SlMetaNodeDecode(&r, node);
		node->fenced = get_flag(&r);
		node->shutting_down = get_flag(&r);
		if (r.failed || !SlMetaNodeValid(node) ||
			(i > 0 && node->node_id <= image->nodes[i - 1].node_id))
			goto bad;
	}
	count = SlWireGetU32(&r);
	/* a topic takes at least 36 bytes */
	if (r.failed || count > (uint32_t) INT32_MAX || count > SlWireRemaining(&r) / 36)
		goto bad;
	if (count > 0)
	{
		image->topics = calloc(array_room((int32_t) count), sizeof(SlMetaTopic));
		if (image->topics == NULL)
			goto bad;
	}
	for (uint32_t i = 0; i < count; i++)
	{
		image->ntopics = (int32_t) i + 1;
		if (!decode_topic(&r, &image->topics[i],
						  i > 0 ? image->topics[i - 1].topic_id : 0,
						  image->next_topic_id, format))
			goto bad;
	}
	if (SlWireRemaining(&r) != 0 || r.failed || !names_unique(image) ||
		(format >= 2 && !any_reassignment(image)))
		goto bad;
	return true;

bad:
	SlMetaImageFree(image);
	return false;
}
