/*-------------------------------------------------------------------------
 * txn_offsets.h
 *	  Offsets committed inside a Kafka transaction (TxnOffsetCommit): kept
 *	  per producer and group in streamlog.txn_pending_offset, invisible to
 *	  OffsetFetch, until the transaction commits (they then become the
 *	  group's committed offsets, __consumer_offsets records included) or
 *	  aborts (they are dropped).  All in the caller's transaction.
 *
 * IDENTIFICATION
 *	  src/include/streamlog/storage/txn_offsets.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_STORAGE_TXN_OFFSETS_H
#define SL_STORAGE_TXN_OFFSETS_H

#include "streamlog/storage/storage.h"

/*
 * Store offsets pending in producer_id's transaction (the last one wins).
 * On a cluster, where this node leads the group's partition of
 * __consumer_offsets, also buffers them there as a transactional batch of
 * the producer (Kafka's TxnOffsetCommit records), which the transaction's
 * marker settles and a new coordinator replays: returns true, and the
 * caller answers once the partition's in-sync replicas hold it.
 */
extern bool SlTxnOffsetsStage(int64 producer_id, int16 producer_epoch, const char *group_id,
							  const SlGroupOffset *offsets, int count);

/*
 * Make producer_id's pending offsets of the group its committed offsets,
 * and forget them.  With nowait, false (nothing changed) if another
 * transaction holds one of the group's rows.
 */
extern bool SlTxnOffsetsCommit(int64 producer_id, const char *group_id, bool nowait);

/* Drop producer_id's pending offsets of the group */
extern void SlTxnOffsetsDiscard(int64 producer_id, const char *group_id);

/*
 * Has a producer's open transaction committed an offset of the partition
 * for the group (OffsetFetch's require_stable, KIP-447)?
 */
extern bool SlTxnOffsetsPending(const char *group_id, int32 topic_id, int32 partition);

#endif							/* SL_STORAGE_TXN_OFFSETS_H */
