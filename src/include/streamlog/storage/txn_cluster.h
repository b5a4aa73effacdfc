/*-------------------------------------------------------------------------
 * txn_cluster.h
 *	  The storage side of the transaction coordinator on a cluster
 *	  (README, "Transactions on a cluster").
 *
 * As Kafka: the coordinator of a transactional id is the leader of the id's
 * partition of __transaction_state, a replicated internal topic.  The rows
 * of streamlog.txn_state are each node's own table of the ids it
 * coordinates, what the coordinator reads and locks; what is replicated is
 * the partition of __transaction_state every change writes in the same
 * transaction (txn_state.c).  A node that starts leading a partition
 * rebuilds the rows of its ids from its own replica of that log
 * (txn_state_load.c), in the transaction coordinator's worker
 * (bgworkers/txn_coordinator_worker.c); requests for those ids are answered
 * COORDINATOR_LOAD_IN_PROGRESS until it is done.
 *
 * Markers (txn_marker_apply.c): the coordinator writes a partition's marker
 * on the partition's leader, itself or another node (over the SQL side
 * channel, streamlog._txn_write_marker), then waits until the partition's
 * high watermark passed it (its in-sync replicas hold it), before the
 * transaction may become Complete.
 *
 * IDENTIFICATION
 *	  src/include/streamlog/storage/txn_cluster.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_STORAGE_TXN_CLUSTER_H
#define SL_STORAGE_TXN_CLUSTER_H

#include "nodes/pg_list.h"
#include "storage/latch.h"

#include "streamlog/storage/storage.h"

extern Size SlTxnClusterShmemSize(void);
extern void SlTxnClusterShmemInit(void);

/*
 * Has this node loaded partition of __transaction_state (topic_id) for
 * leader_epoch?  If not, the caller answers COORDINATOR_LOAD_IN_PROGRESS;
 * the coordinator's worker is woken to load it.
 */
extern bool SlTxnStateLoaded(int32 topic_id, int32 partition, int32 leader_epoch);

/* The worker's latch, set by SlTxnCoordinatorWake; NULL when it leaves */
extern void SlTxnCoordinatorSetWorkerLatch(Latch *latch);

/* Wake the coordinator's worker: a load or a transaction's end waits for it */
extern void SlTxnCoordinatorWake(void);

/* Forget the load of a partition (this node stopped leading it) */
extern void SlTxnStateUnload(int32 topic_id, int32 partition);

/* Say the partition is loaded for leader_epoch (after the load committed) */
extern void SlTxnStateMarkLoaded(int32 topic_id, int32 partition, int32 leader_epoch);

/* The leader epoch the partition was loaded for; -1 if none */
extern int32 SlTxnStateLoadedEpoch(int32 topic_id, int32 partition);

/*
 * The load, in the caller's transaction: replace the rows of
 * streamlog.txn_state of every id of the partition by what this node's
 * replica of the partition of __transaction_state says (the last record of
 * each id; a tombstone removes it).  Returns the number of ids loaded.
 */
extern int64 SlTxnStateLoadPartition(const SlTopic *topic, int32 partition);

/* Remove the rows of every id of the partition (this node stopped leading it) */
extern int64 SlTxnStateDropPartition(const SlTopic *topic, int32 partition);

/*
 * Write producer (id, epoch)'s marker into partition, led here, in the
 * caller's transaction; on a partition of __consumer_offsets also commit
 * (or drop) the producer's offsets pending there for the partition's
 * groups (TxnOffsetCommit), as Kafka's group coordinator does when the
 * marker reaches it.  *leader_epoch is the epoch the marker was written in.
 * Returns the marker's offset.  ERROR (SQLSTATE 55000) if this node does
 * not lead the partition, or if the producer's newest marker here came
 * from a newer coordinator epoch (the sender was fenced by a failover of
 * its partition of __transaction_state).
 */
extern int64 SlTxnApplyMarker(const SlTopic *topic, int32 partition, int64 producer_id,
							  int16 producer_epoch, bool commit, int32 coordinator_epoch,
							  int32 *leader_epoch);

/*
 * After the commit of a marker at offset: wait until the partition's high
 * watermark passed it, while this node leads it in leader_epoch, for at
 * most timeout_ms.  True once replicated; false at the timeout or when the
 * leadership moved (the coordinator retries, maybe on the new leader).
 */
extern bool SlTxnWaitReplicated(int32 topic_id, int32 partition, int32 leader_epoch,
								int64 offset, int timeout_ms);

/*
 * The producer's groups with offsets pending in a transaction here, of
 * those that live in partition of a topic of partitions partitions
 * (palloc'd strings)
 */
extern List *SlTxnOffsetsGroupsOf(int64 producer_id, int32 partition, int32 partitions);

#endif							/* SL_STORAGE_TXN_CLUSTER_H */
