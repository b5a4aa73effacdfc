/*
 * The topic catalog's changes, as one set of functions that both the
 * standalone topic DDL (topics.c, which checks and chooses ids itself) and
 * the cluster's catalog sync (cluster_catalog.c, which is told them by the
 * metadata image) use: a topic is created, dropped, resized and
 * configured the same way whoever decided it.
 */
#ifndef SL_STORAGE_INTERNAL_TOPICS_H
#define SL_STORAGE_INTERNAL_TOPICS_H

#include "postgres.h"

#include "storage/lockdefs.h"
#include "utils/jsonb.h"

#include "streamlog/storage/storage.h"

/*
 * Create a topic with the given identity and explicit config (normalized,
 * as SlTopicConfigApply returns it) and partitions [0, partitions), each
 * with its first segment and the given leadership (NULL: led by this node
 * alone, as on a node of its own).  No checks: the caller made them.
 */
extern void SlTopicCreateWithId(int32 topic_id, const uint8 *uuid, const char *name,
								int32 partitions, Oid owner, Jsonb *config,
								const SlPartitionLeadership *leadership);

/*
 * Drop a topic the caller locked in AccessExclusiveLock, its segments and
 * key index with it; group offsets of it are deleted, with tombstones in
 * __consumer_offsets if tombstones.
 */
extern void SlTopicDropLocked(const SlTopic *topic, bool tombstones);

/*
 * Add partitions [topic->partition_count, new_count) to a topic the caller
 * locked in AccessExclusiveLock, with the given leadership (NULL: this
 * node alone), [new_count - partition_count].
 */
extern void SlTopicAddPartitionsLocked(const SlTopic *topic, int32 new_count,
									   const SlPartitionLeadership *leadership);

/*
 * Replace the explicit config of a topic the caller locked in
 * AccessExclusiveLock with config (normalized), and build or drop its key
 * index to match.
 */
extern void SlTopicSetConfigLocked(const SlTopic *topic, Jsonb *config);

/*
 * A copy of a topic's partition leadership, allocated in cxt: for a copy
 * of an SlTopic that must outlive the one it was copied from
 */
extern const SlPartitionLeadership *SlTopicCopyLeadership(const SlTopic *topic,
														  MemoryContext cxt);

/* Take a topic's lock if no one holds a conflicting one; false if not */
extern bool SlTopicTryLock(int32 topic_id, LOCKMODE mode);

/* Int4 array datum of ids, for the leadership columns */
extern Datum SlTopicNodeArray(const int32 *ids, int32 n);

/* This transaction changed the catalog: caches are flushed at commit */
extern void SlTopicsCatalogChanged(void);

#endif							/* SL_STORAGE_INTERNAL_TOPICS_H */
