/*
 * Records of the metadata log and their encoding: a versioned binary
 * format, one record batch per Raft entry (see metadata_image.h).
 *
 * Each record is: type (u8), version (u8), then its fields.  Decoding
 * treats the bytes as hostile (they come from the network and from disk):
 * every length is checked, and an unknown type or version fails the whole
 * batch.
 */
#ifndef SL_CLUSTER_METADATA_RECORDS_H
#define SL_CLUSTER_METADATA_RECORDS_H

#include "streamlog/cluster/metadata_image.h"

typedef enum SlMetaRecordType
{
	SL_META_REGISTER_NODE = 1,	/* node: id, incarnation, endpoints, rack */
	SL_META_FENCE_NODE = 2,		/* node_id, incarnation */
	SL_META_UNFENCE_NODE = 3,	/* node_id, incarnation */
	SL_META_UNREGISTER_NODE = 4,	/* node_id */
	SL_META_TOPIC = 5,			/* topic: id, uuid, name, config, owner */
	SL_META_REMOVE_TOPIC = 6,	/* topic_id */
	SL_META_PARTITION = 7,		/* topic_id + partition (new partition) */
	SL_META_PARTITION_CHANGE = 8,	/* topic_id + partition: leader and/or ISR */
	SL_META_TOPIC_CONFIG = 9,	/* topic_id, config_json (the whole set) */
	SL_META_PRODUCER_IDS = 10,	/* node_id, first id, count */
	SL_META_CONTROLLER = 11,	/* node_id, epoch: takes office */
	SL_META_SHUTDOWN_NODE = 12	/* node_id, incarnation: controlled shutdown */
} SlMetaRecordType;

/* Fields of PARTITION_CHANGE not given keep their value */
#define SL_META_UNCHANGED (-2)

typedef struct SlMetaRecord
{
	SlMetaRecordType type;
	SlMetaNode	node;			/* REGISTER_NODE; node_id/incarnation for
								 * FENCE, UNFENCE, UNREGISTER, SHUTDOWN */
	SlMetaTopic topic;			/* TOPIC (partition_count 0, no partitions),
								 * REMOVE_TOPIC and TOPIC_CONFIG (id, config) */
	int32_t		topic_id;		/* PARTITION, PARTITION_CHANGE */
	SlMetaPartition partition;	/* PARTITION: all fields; PARTITION_CHANGE:
								 * leader (or SL_META_UNCHANGED), isr (nisr <
								 * 0: unchanged); epochs are set by apply */
	int32_t		node_id;		/* PRODUCER_IDS, CONTROLLER */
	int64_t		first_producer_id;	/* PRODUCER_IDS */
	int32_t		producer_id_count;
	uint64_t	controller_epoch;	/* CONTROLLER */
} SlMetaRecord;

/* A batch being built or decoded; records own their strings and arrays */
typedef struct SlMetaBatch
{
	int			nrecords;
	int			capacity;
	SlMetaRecord *records;
} SlMetaBatch;

extern void SlMetaBatchInit(SlMetaBatch *batch);
extern void SlMetaBatchFree(SlMetaBatch *batch);
/* Append a deep copy of rec; false if out of memory */
extern bool SlMetaBatchAdd(SlMetaBatch *batch, const SlMetaRecord *rec);

/* The batch as the bytes of one Raft entry (malloc'd) */
extern bool SlMetaBatchEncode(const SlMetaBatch *batch, void **data, size_t *len);
/* Decode; false (batch left empty) on anything malformed */
extern bool SlMetaBatchDecode(SlMetaBatch *batch, const void *data, size_t len);

/* Name of a record type, for logs ("RegisterNode"...) */
extern const char *SlMetaRecordTypeName(SlMetaRecordType type);

#endif							/* SL_CLUSTER_METADATA_RECORDS_H */
