/*
 * What the log cleaner does with transactions (Kafka's
 * CleanedTransactionMetadata): going through a partition's batches in
 * offset order, with the aborted transactions of the range from the
 * aborted-transaction index, it tells
 *
 * - which data batches belong to an aborted transaction (removed whole);
 * - whether a transaction marker may go, because none of its
 *   transaction's batches was met in this pass (all removed before, or
 *   compacted away): the cleaner then gives it a delete horizon, and
 *   removes it in a pass after that horizon, as a tombstone (KIP-534);
 * - whether an aborted transaction's index entry may go: once its marker
 *   is met with none of its batches left.  An ABORT met right after its
 *   batches (removed in this very pass) keeps both until the next pass.
 *
 * Producers with a transaction under way in the pass are kept in a small
 * array searched linearly: there are as many as transactions run at once
 * on the partition.
 *
 * Pure code: compiled as frontend code for test/unit/test_txn_cleaner.c.
 */
#ifndef SL_STORAGE_TXN_CLEANER_H
#define SL_STORAGE_TXN_CLEANER_H

#include "streamlog/protocol/codec_base.h"
#include "streamlog/storage/txn_filter.h"

/* A producer's transaction met in the pass */
typedef struct SlTxnCleanerOngoing
{
	int64		producer_id;
	int			aborted;		/* index in the aborted list, or -1 */
	bool		batch_seen;		/* one of its data batches was met */
} SlTxnCleanerOngoing;

typedef struct SlTxnCleaner
{
	const SlAbortedTxn *aborted;	/* by first offset; the caller's */
	int			naborted;
	int			next_aborted;	/* the first not yet under way */
	SlTxnCleanerOngoing *ongoing;
	int			nongoing;
	int			capacity;
} SlTxnCleaner;

/* What to do with a marker */
typedef struct SlTxnMarkerVerdict
{
	bool		can_discard;	/* no batch of its transaction is left */
	bool		drop_index;		/* an ABORT whose index entry may go */
} SlTxnMarkerVerdict;

extern void SlTxnCleanerInit(SlTxnCleaner *c, const SlAbortedTxn *aborted, int naborted);
extern void SlTxnCleanerFree(SlTxnCleaner *c);

/*
 * A data batch (not a control one) in offset order: true if it belongs to
 * an aborted transaction and goes whole
 */
extern bool SlTxnCleanerDataBatch(SlTxnCleaner *c, int16 attributes, int64 producer_id,
								  int64 last_offset);

/* A marker of producer_id at offset, abort or commit */
extern SlTxnMarkerVerdict SlTxnCleanerMarker(SlTxnCleaner *c, int64 producer_id,
											 int64 offset, bool abort);

#endif							/* SL_STORAGE_TXN_CLEANER_H */
