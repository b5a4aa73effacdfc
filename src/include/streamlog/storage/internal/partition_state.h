/*
 * The shared-memory side of each partition (partition_state.c): the next
 * offset, the reservations in flight, the high watermark and the active
 * segment.  Internal to storage: the front doors read a partition's offsets
 * with SlPartitionGetOffsets.
 */
#ifndef SL_STORAGE_INTERNAL_PARTITION_STATE_H
#define SL_STORAGE_INTERNAL_PARTITION_STATE_H

#include "streamlog/storage/storage.h"
#include "streamlog/storage/internal/replica_view.h"
#include "streamlog/storage/transactions.h"

typedef struct SlPartitionState SlPartitionState;

/*
 * The shared state of a partition, loaded from its segments the first time
 * it is needed after a start.
 */
extern SlPartitionState *SlPartitionStateGet(SlPartitionKey key);

/*
 * The shared state of key if it is loaded, as it is (its leadership not
 * refreshed from the catalog); NULL if not.  Needs no transaction.
 */
extern SlPartitionState *SlPartitionStateFind(SlPartitionKey key);

/* Forget the shared state of key's topic's partitions from key's on */
extern void SlPartitionStateForget(SlPartitionKey key);

typedef struct SlPartitionSnapshot
{
	int64		log_start_offset;
	int64		high_watermark; /* what readers get */
	int64		log_end;		/* committed log end: high_watermark unless
								 * replicated */
	int64		next_offset;
	Oid			active_relid;
	int32		active_seq;
	int64		active_base;
} SlPartitionSnapshot;

extern void SlPartitionStateRead(SlPartitionState *state, SlPartitionSnapshot *snap);

/*
 * Reserve count offsets, in offset order with every other reservation of
 * the partition; returns the first and the segment to write them to.  Until
 * SlPartitionStateRelease, the HWM stays at or below the first offset.
 */
extern int64 SlPartitionStateReserve(SlPartitionState *state, int64 count,
									 Oid *relid);

/* The reservation starting at start is committed or abandoned */
extern void SlPartitionStateRelease(SlPartitionState *state, int64 start);

/* Make relid (seq) the segment that reservations go to; returns its base */
extern int64 SlPartitionStateSwitchSegment(SlPartitionState *state, Oid relid,
										   int32 seq);

/* Advance the log start offset after retention */
extern void SlPartitionStateSetLogStart(SlPartitionState *state, int64 log_start);

/*
 * Truncation of a replica's log (replica_truncate.c): fence the partition
 * (wait until no reservation is in flight, then hold off other backends'
 * until unfenced, at the end of the truncating transaction), and set its
 * state to what the truncated log is.
 */
extern void SlPartitionStateFence(SlPartitionState *state);
extern void SlPartitionStateUnfence(SlPartitionState *state);
extern void SlPartitionStateReset(SlPartitionState *state,
								  const SlPartitionSnapshot *snap);

/* The end of the committed log (the first offset still in flight) */
extern int64 SlPartitionStateLogEnd(SlPartitionState *state);

/*
 * Replication (replica_progress.c, replica_view.h).  update runs on the
 * partition's view under its spinlock, with the committed log end, so it
 * must be pure; then the high watermark is recomputed and, if it moved, its
 * waiters woken.  Returns the high watermark.
 */
typedef void (*SlReplicaViewUpdate) (SlReplicaView *view, int64 log_end, void *arg);

extern int64 SlPartitionStateUpdateView(SlPartitionState *state,
										SlReplicaViewUpdate update, void *arg);

/* A copy of the view, and of the offsets */
extern void SlPartitionStateReadView(SlPartitionState *state, SlReplicaView *view,
									 SlPartitionSnapshot *snap);

/*
 * The partition's leadership as a caller holding a fresh topic sees it
 * (older ones are ignored); nothing on a node of its own
 */
extern void SlPartitionStateSetLeadership(SlPartitionState *state,
										  const SlReplicaLeadership *leadership);
extern void SlPartitionStateNoteLeadership(SlPartitionState *state,
										   const SlPartitionLeadership *l);

/* Keys of the partitions of this database whose state is loaded (up to max) */
extern int	SlPartitionStateListLoaded(SlPartitionKey *keys, int max);

/*
 * A follower's append (replica_append.c): reserve count offsets from start
 * only if the next offset is start (*next_offset says what it is either
 * way) and this node has not led the partition since followed_epoch, the
 * epoch in which the batch's sender leads it as the caller's catalog says
 * (*fenced if it has: the batch comes too late); and take back an aborted
 * append's reservation if it is still the partition's last one (false if
 * not: release it then, leaving a hole).
 */
extern bool SlPartitionStateReserveAt(SlPartitionState *state, int64 start,
									  int64 count, int32 followed_epoch, Oid *relid,
									  int64 *next_offset, bool *fenced);
extern bool SlPartitionStateUnreserve(SlPartitionState *state, int64 start,
									  int64 end);

/*
 * Extend this backend's reservation [start, end), the partition's last, by
 * count offsets (false if it is not the last one): one leader transaction
 * of many batches takes one in-flight slot on a follower.
 */
extern bool SlPartitionStateExtend(SlPartitionState *state, int64 start, int64 end,
								   int64 count, int32 followed_epoch, Oid *relid);

/*
 * This node leads the partition in epoch: fence follower appends of that
 * epoch's or older leaderships off; false while one is still in flight.
 */
extern bool SlPartitionStateLeadAt(SlPartitionState *state, int32 epoch);

/*
 * Transactions (txn_index.c): the high watermark, read with whether the
 * partition surely has no open transaction (then it is the last stable
 * offset) and surely no aborted one; counts which of the two cases the
 * LSO is in (SlPartitionStateTxnStats).
 */
typedef struct SlPartitionTxnSnapshot
{
	int64		high_watermark;
	int64		log_start_offset;
	bool		none_open;
	bool		none_aborted;
} SlPartitionTxnSnapshot;

extern void SlPartitionStateReadTxn(SlPartitionState *state,
									SlPartitionTxnSnapshot *snap);
extern void SlPartitionStateCountLso(SlPartitionState *state, bool skipped);

/*
 * Raise (delta > 0, before the opening append commits) or lower (once the
 * closing marker has committed, or the opening append has aborted) the
 * count of open transactions; mark the partition as having aborted
 * transactions (before the marker commits).
 */
extern void SlPartitionStateTxnOpened(SlPartitionState *state, int32 delta);
extern void SlPartitionStateTxnAborted(SlPartitionState *state);
extern void SlPartitionStateTxnStats(SlPartitionState *state, SlPartitionTxnStats *stats);

#endif							/* SL_STORAGE_INTERNAL_PARTITION_STATE_H */
