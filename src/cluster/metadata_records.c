/*-------------------------------------------------------------------------
 * metadata_records.c
 *	  Records of the metadata log and the record batch of one Raft entry.
 *
 * A batch is: magic "SLMB" (u32), format version (u8), record count (u32),
 * then each record: type (u8), version (u8), its fields (see
 * encode_record).  Every record type is at version 1 today; a newer
 * version, an unknown type, a short or trailing byte fails the whole batch,
 * so that a node never applies half of what a newer node meant.
 *
 * IDENTIFICATION
 *	  src/cluster/metadata_records.c
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "streamlog/cluster/metadata_records.h"
#include "streamlog/cluster/internal/metadata_parts.h"
#include "streamlog/cluster/internal/metadata_wire.h"

#define SL_META_BATCH_MAGIC 0x534c4d42	/* "SLMB" */
#define SL_META_BATCH_FORMAT 1
#define SL_META_RECORD_VERSION 1
/*
 * A PARTITION_CHANGE that also sets the replicas or a reassignment's
 * adding and removing replicas is at version 2 (the three arrays follow
 * the ISR, each -1 when unchanged); one that sets none of them stays at
 * version 1, so that each change has one encoding
 */
#define SL_META_PARTITION_CHANGE_VERSION 2

static bool
changes_replicas(const SlMetaRecord *rec)
{
	return rec->partition.nreplicas > 0 || rec->partition.nadding >= 0 ||
		rec->partition.nremoving >= 0;
}

/*
 * Most records in one batch.  A topic with all its partitions is one batch,
 * so this bounds partitions per topic creation too; decoding also refuses
 * more records than the bytes could hold.
 */
#define SL_META_MAX_RECORDS 1000000

const char *
SlMetaRecordTypeName(SlMetaRecordType type)
{
	switch (type)
	{
		case SL_META_REGISTER_NODE:
			return "RegisterNode";
		case SL_META_FENCE_NODE:
			return "FenceNode";
		case SL_META_UNFENCE_NODE:
			return "UnfenceNode";
		case SL_META_UNREGISTER_NODE:
			return "UnregisterNode";
		case SL_META_TOPIC:
			return "Topic";
		case SL_META_REMOVE_TOPIC:
			return "RemoveTopic";
		case SL_META_PARTITION:
			return "Partition";
		case SL_META_PARTITION_CHANGE:
			return "PartitionChange";
		case SL_META_TOPIC_CONFIG:
			return "TopicConfig";
		case SL_META_PRODUCER_IDS:
			return "ProducerIds";
		case SL_META_CONTROLLER:
			return "Controller";
		case SL_META_SHUTDOWN_NODE:
			return "ShutdownNode";
	}
	return "Unknown";
}

void
SlMetaBatchInit(SlMetaBatch *batch)
{
	batch->nrecords = 0;
	batch->capacity = 0;
	batch->records = NULL;
}

/* Free what a record owns (its strings and arrays) */
static void
record_free(SlMetaRecord *rec)
{
	SlMetaNodeFree(&rec->node);
	SlMetaTopicFree(&rec->topic);
	SlMetaPartitionFree(&rec->partition);
}

void
SlMetaBatchFree(SlMetaBatch *batch)
{
	for (int i = 0; i < batch->nrecords; i++)
		record_free(&batch->records[i]);
	free(batch->records);
	SlMetaBatchInit(batch);
}

/* Room for one more record */
static bool
batch_grow(SlMetaBatch *batch)
{
	int			capacity;
	SlMetaRecord *grown;

	if (batch->nrecords < batch->capacity)
		return true;
	if (batch->capacity >= SL_META_MAX_RECORDS)
		return false;
	capacity = batch->capacity < 8 ? 8 : batch->capacity * 2;
	grown = realloc(batch->records, sizeof(SlMetaRecord) * (size_t) capacity);
	if (grown == NULL)
		return false;
	batch->records = grown;
	batch->capacity = capacity;
	return true;
}

bool
SlMetaBatchAdd(SlMetaBatch *batch, const SlMetaRecord *rec)
{
	SlMetaRecord *dst;
	bool		ok;

	if (!batch_grow(batch))
		return false;
	dst = &batch->records[batch->nrecords];
	/* scalars first, then the owned parts deep */
	*dst = *rec;
	ok = SlMetaNodeCopy(&dst->node, &rec->node);
	ok = SlMetaTopicCopy(&dst->topic, &rec->topic) && ok;
	ok = SlMetaPartitionCopy(&dst->partition, &rec->partition) && ok;
	if (!ok)
	{
		record_free(dst);
		return false;
	}
	batch->nrecords++;
	return true;
}

static void
encode_record(SlWireWriter *w, const SlMetaRecord *rec)
{
	SlWirePutU8(w, (uint8_t) rec->type);
	SlWirePutU8(w, rec->type == SL_META_PARTITION_CHANGE && changes_replicas(rec) ?
				SL_META_PARTITION_CHANGE_VERSION : SL_META_RECORD_VERSION);
	switch (rec->type)
	{
		case SL_META_REGISTER_NODE:
			SlMetaNodeEncode(w, &rec->node);
			break;
		case SL_META_FENCE_NODE:
		case SL_META_UNFENCE_NODE:
		case SL_META_SHUTDOWN_NODE:
			SlWirePutI32(w, rec->node.node_id);
			SlWirePutU64(w, rec->node.incarnation);
			break;
		case SL_META_UNREGISTER_NODE:
			SlWirePutI32(w, rec->node.node_id);
			break;
		case SL_META_TOPIC:
			SlWirePutI32(w, rec->topic.topic_id);
			SlWirePutBytes(w, rec->topic.uuid, 16);
			SlWirePutString(w, rec->topic.name);
			SlWirePutString(w, rec->topic.config_json);
			SlWirePutString(w, rec->topic.owner);
			break;
		case SL_META_REMOVE_TOPIC:
			SlWirePutI32(w, rec->topic.topic_id);
			break;
		case SL_META_PARTITION:
			SlWirePutI32(w, rec->topic_id);
			SlWirePutI32(w, rec->partition.partition);
			SlWirePutI32Array(w, rec->partition.replicas, rec->partition.nreplicas);
			SlWirePutI32Array(w, rec->partition.isr, rec->partition.nisr);
			SlWirePutI32(w, rec->partition.leader);
			SlWirePutI32(w, rec->partition.leader_epoch);
			SlWirePutI32(w, rec->partition.partition_epoch);
			break;
		case SL_META_PARTITION_CHANGE:
			SlWirePutI32(w, rec->topic_id);
			SlWirePutI32(w, rec->partition.partition);
			SlWirePutI32(w, rec->partition.leader);
			SlWirePutI32Array(w, rec->partition.isr,
							  rec->partition.nisr < 0 ? -1 : rec->partition.nisr);
			if (!changes_replicas(rec))
				break;
			SlWirePutI32Array(w, rec->partition.replicas,
							  rec->partition.nreplicas <= 0 ? -1 : rec->partition.nreplicas);
			SlWirePutI32Array(w, rec->partition.adding,
							  rec->partition.nadding < 0 ? -1 : rec->partition.nadding);
			SlWirePutI32Array(w, rec->partition.removing,
							  rec->partition.nremoving < 0 ? -1 : rec->partition.nremoving);
			break;
		case SL_META_TOPIC_CONFIG:
			SlWirePutI32(w, rec->topic.topic_id);
			SlWirePutString(w, rec->topic.config_json);
			break;
		case SL_META_PRODUCER_IDS:
			SlWirePutI32(w, rec->node_id);
			SlWirePutI64(w, rec->first_producer_id);
			SlWirePutI32(w, rec->producer_id_count);
			break;
		case SL_META_CONTROLLER:
			SlWirePutI32(w, rec->node_id);
			SlWirePutU64(w, rec->controller_epoch);
			break;
		default:
			/* a record the writer cannot name is a bug: refuse the batch */
			w->failed = true;
			break;
	}
}

bool
SlMetaBatchEncode(const SlMetaBatch *batch, void **data, size_t *len)
{
	SlWireWriter w;

	SlWireWriterInit(&w);
	SlWirePutU32(&w, SL_META_BATCH_MAGIC);
	SlWirePutU8(&w, SL_META_BATCH_FORMAT);
	SlWirePutU32(&w, (uint32_t) batch->nrecords);
	for (int i = 0; i < batch->nrecords; i++)
		encode_record(&w, &batch->records[i]);
	return SlWireWriterFinish(&w, data, len);
}

/* Decode one record into rec (zeroed by the caller); false if malformed */
static bool
decode_record(SlWireReader *r, SlMetaRecord *rec)
{
	uint8_t		type = SlWireGetU8(r);
	uint8_t		version = SlWireGetU8(r);

	if (r->failed || (version != SL_META_RECORD_VERSION &&
					  !(type == SL_META_PARTITION_CHANGE &&
						version == SL_META_PARTITION_CHANGE_VERSION)))
		return false;
	rec->type = (SlMetaRecordType) type;
	rec->partition.leader = SL_META_NO_LEADER;
	switch (type)
	{
		case SL_META_REGISTER_NODE:
			SlMetaNodeDecode(r, &rec->node);
			break;
		case SL_META_FENCE_NODE:
		case SL_META_UNFENCE_NODE:
		case SL_META_SHUTDOWN_NODE:
			rec->node.node_id = SlWireGetI32(r);
			rec->node.incarnation = SlWireGetU64(r);
			break;
		case SL_META_UNREGISTER_NODE:
			rec->node.node_id = SlWireGetI32(r);
			break;
		case SL_META_TOPIC:
			rec->topic.topic_id = SlWireGetI32(r);
			SlWireGetBytes(r, rec->topic.uuid, 16);
			SlWireGetString(r, &rec->topic.name, false);
			SlWireGetString(r, &rec->topic.config_json, true);
			SlWireGetString(r, &rec->topic.owner, true);
			break;
		case SL_META_REMOVE_TOPIC:
			rec->topic.topic_id = SlWireGetI32(r);
			break;
		case SL_META_PARTITION:
			rec->topic_id = SlWireGetI32(r);
			rec->partition.partition = SlWireGetI32(r);
			SlWireGetI32Array(r, &rec->partition.replicas, &rec->partition.nreplicas, false);
			SlWireGetI32Array(r, &rec->partition.isr, &rec->partition.nisr, false);
			rec->partition.leader = SlWireGetI32(r);
			rec->partition.leader_epoch = SlWireGetI32(r);
			rec->partition.partition_epoch = SlWireGetI32(r);
			break;
		case SL_META_PARTITION_CHANGE:
			rec->topic_id = SlWireGetI32(r);
			rec->partition.partition = SlWireGetI32(r);
			rec->partition.leader = SlWireGetI32(r);
			SlWireGetI32Array(r, &rec->partition.isr, &rec->partition.nisr, true);
			rec->partition.nadding = -1;
			rec->partition.nremoving = -1;
			if (version >= 2)
			{
				SlWireGetI32Array(r, &rec->partition.replicas, &rec->partition.nreplicas, true);
				SlWireGetI32Array(r, &rec->partition.adding, &rec->partition.nadding, true);
				SlWireGetI32Array(r, &rec->partition.removing, &rec->partition.nremoving, true);
				/* "unchanged" is written -1: an empty replica set is malformed */
				if (rec->partition.nreplicas == 0)
					return false;
				if (rec->partition.nreplicas < 0)
					rec->partition.nreplicas = 0;
				if (!changes_replicas(rec))
					return false;	/* written at version 1 */
			}
			break;
		case SL_META_TOPIC_CONFIG:
			rec->topic.topic_id = SlWireGetI32(r);
			SlWireGetString(r, &rec->topic.config_json, true);
			break;
		case SL_META_PRODUCER_IDS:
			rec->node_id = SlWireGetI32(r);
			rec->first_producer_id = SlWireGetI64(r);
			rec->producer_id_count = SlWireGetI32(r);
			break;
		case SL_META_CONTROLLER:
			rec->node_id = SlWireGetI32(r);
			rec->controller_epoch = SlWireGetU64(r);
			break;
		default:
			return false;
	}
	return !r->failed;
}

bool
SlMetaBatchDecode(SlMetaBatch *batch, const void *data, size_t len)
{
	SlWireReader r;
	uint32_t	magic;
	uint8_t		format;
	uint32_t	count;

	SlMetaBatchInit(batch);
	SlWireReaderInit(&r, data, len);
	magic = SlWireGetU32(&r);
	format = SlWireGetU8(&r);
	count = SlWireGetU32(&r);
	if (r.failed || magic != SL_META_BATCH_MAGIC || format != SL_META_BATCH_FORMAT)
		return false;
	/* every record is at least its type and version */
	if (count > SL_META_MAX_RECORDS || count > SlWireRemaining(&r) / 2)
		return false;
	if (count > 0)
	{
		batch->records = calloc(count, sizeof(SlMetaRecord));
		if (batch->records == NULL)
			return false;
		batch->capacity = (int) count;
	}
	for (uint32_t i = 0; i < count; i++)
	{
		SlMetaRecord *rec = &batch->records[i];

		/* counted before decoding, so that a failure frees its parts */
		batch->nrecords++;
		if (!decode_record(&r, rec))
		{
			SlMetaBatchFree(batch);
			return false;
		}
	}
	if (SlWireRemaining(&r) != 0)
	{
		SlMetaBatchFree(batch);
		return false;
	}
	return true;
}
