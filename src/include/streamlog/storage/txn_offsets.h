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

/* Store offsets pending in producer_id's transaction (the last one wins) */
extern void SlTxnOffsetsStage(int64 producer_id, const char *group_id,
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
