/*
 * The parts of an image (nodes, partitions, topics) as the records, the
 * image and the controller copy, free and encode them.  Copies are deep and
 * malloc'd; a failed copy leaves its destination empty (freeable).
 */
#ifndef SL_CLUSTER_INTERNAL_METADATA_PARTS_H
#define SL_CLUSTER_INTERNAL_METADATA_PARTS_H

#include "streamlog/cluster/metadata_image.h"
#include "streamlog/cluster/internal/metadata_wire.h"

extern bool SlMetaNodeCopy(SlMetaNode *dst, const SlMetaNode *src);
extern void SlMetaNodeFree(SlMetaNode *node);
extern bool SlMetaPartitionCopy(SlMetaPartition *dst, const SlMetaPartition *src);
extern void SlMetaPartitionFree(SlMetaPartition *part);
extern bool SlMetaTopicCopy(SlMetaTopic *dst, const SlMetaTopic *src);
extern void SlMetaTopicFree(SlMetaTopic *topic);

/* A copy of n int32s (NULL for none); false if out of memory */
extern bool SlMetaIntsCopy(int32_t **dst, const int32_t *src, int32_t n);

/* A node's endpoints as REGISTER_NODE and snapshots carry them */
extern void SlMetaNodeEncode(SlWireWriter *w, const SlMetaNode *node);
extern void SlMetaNodeDecode(SlWireReader *r, SlMetaNode *node);

/*
 * Is a partition's replica state consistent: replicas non-empty, node ids
 * >= 0, no duplicate, ISR a subset of the replicas without duplicates,
 * leader in the ISR or none, epochs >= 0?
 */
extern bool SlMetaPartitionValid(const SlMetaPartition *part);

/*
 * Could a node register as it is described: node id >= 0, a port in
 * 0..65535, endpoints that a record can carry?
 */
extern bool SlMetaNodeValid(const SlMetaNode *node);

/* Is id in ids[0..n)? */
extern bool SlMetaIntsContain(const int32_t *ids, int32_t n, int32_t id);

#endif							/* SL_CLUSTER_INTERNAL_METADATA_PARTS_H */
