/*
 * Loading a partition of __consumer_offsets into streamlog.group_offset
 * when this node becomes its leader, and so the coordinator of its groups
 * (Kafka's GroupMetadataManager.loadGroupsAndOffsets; README, "Consumer
 * groups on a cluster").
 *
 * The committed offsets of a group live in its partition of
 * __consumer_offsets, replicated like any partition; streamlog.group_offset
 * is each node's table of the groups it coordinates, what the doors read
 * and lock.  A node that starts leading the partition (a new leader epoch)
 * rebuilds the rows of that partition's groups from its own replica of the
 * log, in a worker of its own (bgworkers/group_loader.c), and answers
 * COORDINATOR_LOAD_IN_PROGRESS for them until it is done.  The state is in
 * shared memory, per partition: the leader epoch it was loaded for, and
 * the one a worker is loading for.  Empty after a restart: the first
 * request for a group loads its partition again.
 */
#ifndef SL_STORAGE_GROUP_LOAD_H
#define SL_STORAGE_GROUP_LOAD_H

#include "streamlog/storage/storage.h"

extern Size SlGroupLoadShmemSize(void);
extern void SlGroupLoadShmemInit(void);

/*
 * Has this node loaded partition of offsets_topic for leader_epoch (the
 * epoch in which it leads it)?  If not, starts a loader worker for it
 * unless one is at it already, and returns false: the caller answers
 * COORDINATOR_LOAD_IN_PROGRESS (Kafka) or waits (SQL).
 */
extern bool SlGroupOffsetsLoaded(const SlTopic *offsets_topic, int32 partition,
								 int32 leader_epoch);

/*
 * The loader's work, in the caller's transaction: replace the rows of
 * streamlog.group_offset of every group of partition by what this node's
 * replica of the partition says (the last record of each key, tombstones
 * deleting), and the pending offsets of transactions (TxnOffsetCommit)
 * staged here before leader_epoch by those of the transactions the log
 * leaves without a marker.  Returns the number of committed offsets
 * loaded, and *pending the number of pending ones.
 */
extern int64 SlGroupOffsetsLoadPartition(const SlTopic *offsets_topic, int32 partition,
										 int32 leader_epoch, int64 *pending);

/*
 * The loader's end: loaded for leader_epoch (after its commit), or failed
 * (the next request starts another).
 */
extern void SlGroupOffsetsLoadDone(int32 topic_id, int32 partition, int32 leader_epoch,
								   bool loaded);

#endif							/* SL_STORAGE_GROUP_LOAD_H */
