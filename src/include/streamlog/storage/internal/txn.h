/*
 * What the log (log_append.c, retention) tells the transaction state of
 * its partitions (txn_index.c).  Internal to storage.
 */
#ifndef SL_STORAGE_INTERNAL_TXN_H
#define SL_STORAGE_INTERNAL_TXN_H

#include "streamlog/storage/storage.h"

/*
 * A transactional batch of producer_id was appended at first_offset, in
 * this transaction: it opens the producer's transaction on the partition
 * unless one is open (which keeps the smaller first offset).  Needs an
 * active snapshot.
 */
extern void SlTxnNoteAppend(int32 topic_id, int32 partition, int64 producer_id,
							int16 producer_epoch, int64 first_offset);

/*
 * A marker of producer_id was appended at marker_offset: close its open
 * transaction, and index it if the marker aborts it
 */
extern void SlTxnNoteMarker(int32 topic_id, int32 partition, int64 producer_id,
							bool commit, int64 marker_offset);

/*
 * For the shared state of a partition being loaded (partition_state.c):
 * how many transactions are open on it, and whether it has any aborted
 * transaction indexed
 */
extern void SlTxnCountForLoad(int32 topic_id, int32 partition, int32 *open_txns,
							  bool *any_aborted);

/*
 * Forget the aborted transactions whose ABORT markers are at these offsets
 * (the cleaner removed all their batches: compaction.c)
 */
extern void SlTxnAbortedForget(int32 topic_id, int32 partition, const int64 *last_offsets,
							   int count);

/* Forget aborted transactions that end below the log start offset */
extern void SlTxnPruneBelow(int32 topic_id, int32 partition, int64 log_start);

/*
 * A replica's log loses every batch ending at or past offset, or every
 * batch if empty (txn_truncate.c): the open transactions and the
 * aborted-transaction index follow it, in the caller's transaction.  Call
 * before the batches are deleted.
 */
extern void SlTxnTruncate(int32 topic_id, int32 partition, int64 offset, bool empty);

#endif							/* SL_STORAGE_INTERNAL_TXN_H */
