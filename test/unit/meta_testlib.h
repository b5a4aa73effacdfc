/*
 * Builders of metadata records and batches for the cluster layer's unit
 * tests: each returns a record that the caller adds to a batch (the batch
 * takes a deep copy, so records built from literals are fine).
 */
#ifndef SL_META_TESTLIB_H
#define SL_META_TESTLIB_H

#include <stdlib.h>
#include <string.h>

#include "streamlog/cluster/metadata_records.h"

static inline SlMetaRecord
meta_rec(SlMetaRecordType type)
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

static inline SlMetaRecord
meta_register(int32_t node_id, uint64_t incarnation, const char *rack)
{
	SlMetaRecord rec = meta_rec(SL_META_REGISTER_NODE);

	rec.node.node_id = node_id;
	rec.node.incarnation = incarnation;
	rec.node.kafka_host = (char *) "127.0.0.1";
	rec.node.kafka_port = 9092 + node_id;
	rec.node.sql_conninfo = (char *) "host=127.0.0.1 port=5432 dbname=postgres";
	rec.node.raft_address = (char *) "127.0.0.1:7000";
	rec.node.rack = (char *) rack;
	return rec;
}

static inline SlMetaRecord
meta_node_state(SlMetaRecordType type, int32_t node_id, uint64_t incarnation)
{
	SlMetaRecord rec = meta_rec(type);

	rec.node.node_id = node_id;
	rec.node.incarnation = incarnation;
	return rec;
}

static inline SlMetaRecord
meta_topic(int32_t topic_id, const char *name)
{
	SlMetaRecord rec = meta_rec(SL_META_TOPIC);

	rec.topic.topic_id = topic_id;
	rec.topic.name = (char *) name;
	rec.topic.config_json = (char *) "{}";
	rec.topic.owner = (char *) "postgres";
	for (int i = 0; i < 16; i++)
		rec.topic.uuid[i] = (uint8_t) (topic_id * 16 + i);
	return rec;
}

/* replicas and isr point at the caller's arrays (copied by the batch) */
static inline SlMetaRecord
meta_partition(int32_t topic_id, int32_t partition, int32_t *replicas, int32_t nreplicas,
			   int32_t *isr, int32_t nisr, int32_t leader)
{
	SlMetaRecord rec = meta_rec(SL_META_PARTITION);

	rec.topic_id = topic_id;
	rec.partition.partition = partition;
	rec.partition.replicas = replicas;
	rec.partition.nreplicas = nreplicas;
	rec.partition.isr = isr;
	rec.partition.nisr = nisr;
	rec.partition.leader = leader;
	return rec;
}

static inline SlMetaRecord
meta_change(int32_t topic_id, int32_t partition, int32_t leader, int32_t *isr, int32_t nisr)
{
	SlMetaRecord rec = meta_rec(SL_META_PARTITION_CHANGE);

	rec.topic_id = topic_id;
	rec.partition.partition = partition;
	rec.partition.leader = leader;
	rec.partition.isr = isr;
	rec.partition.nisr = nisr;
	return rec;
}

/* Apply one record as a batch of its own at index; the apply result */
static inline bool
meta_apply1(SlMetaImage *image, uint64_t index, SlMetaRecord rec)
{
	SlMetaBatch batch;
	void	   *data;
	size_t		len;
	bool		ok;

	SlMetaBatchInit(&batch);
	if (!SlMetaBatchAdd(&batch, &rec) || !SlMetaBatchEncode(&batch, &data, &len))
		abort();
	ok = SlMetaImageApply(image, index, data, len);
	free(data);
	SlMetaBatchFree(&batch);
	return ok;
}

/* Apply a whole batch (encoded) at index */
static inline bool
meta_apply_batch(SlMetaImage *image, uint64_t index, const SlMetaBatch *batch)
{
	void	   *data;
	size_t		len;
	bool		ok;

	if (!SlMetaBatchEncode(batch, &data, &len))
		abort();
	ok = SlMetaImageApply(image, index, data, len);
	free(data);
	return ok;
}

/* Are two images the same (their snapshots byte for byte)? */
static inline bool
meta_images_equal(const SlMetaImage *a, const SlMetaImage *b)
{
	void	   *da,
			   *db;
	size_t		la,
				lb;
	bool		eq;

	if (!SlMetaImageEncode(a, &da, &la) || !SlMetaImageEncode(b, &db, &lb))
		abort();
	eq = la == lb && memcmp(da, db, la) == 0;
	free(da);
	free(db);
	return eq;
}

#endif							/* SL_META_TESTLIB_H */
