/*
 * Which stored batches a read_committed reader skips: control batches
 * (transaction markers, never user records) and the batches of aborted
 * transactions, given the partition's aborted-transaction index over the
 * range read.  Kafka's consumer does the same from the aborted_transactions
 * list of a Fetch response (Fetcher / CompletedFetch).
 *
 * Pure code: compiled as frontend code for test/unit/test_txn_filter.c.
 */
#ifndef SL_STORAGE_TXN_FILTER_H
#define SL_STORAGE_TXN_FILTER_H

#include "streamlog/protocol/codec_base.h"

/* An aborted transaction of a partition, as Fetch reports it */
typedef struct SlAbortedTxn
{
	int64		producer_id;
	int64		first_offset;
	int64		last_offset;	/* its ABORT marker's offset */
} SlAbortedTxn;

/*
 * A filter over batches read in increasing offset order, with the aborted
 * transactions that overlap the range read, ordered by first offset (the
 * array is the caller's and must outlive the filter).
 */
typedef struct SlAbortedFilter
{
	const SlAbortedTxn *txns;
	int			ntxns;
	int			lo;				/* txns before it end below the last batch */
} SlAbortedFilter;

extern void SlAbortedFilterInit(SlAbortedFilter *filter, const SlAbortedTxn *txns,
								int ntxns);

/*
 * Does a read_committed reader skip the batch (its attributes, producer id
 * and base offset)?  Control batches always; a transactional batch if its
 * producer's transaction that holds it was aborted.  Batches must come in
 * increasing offset order.
 */
extern bool SlAbortedFilterSkips(SlAbortedFilter *filter, int16 attributes,
								 int64 producer_id, int64 base_offset);

#endif							/* SL_STORAGE_TXN_FILTER_H */
