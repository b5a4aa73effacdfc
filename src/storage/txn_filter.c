/*
 * The read_committed filter over stored batches (txn_filter.h).
 *
 * A transactional batch of producer P at offset o was aborted if one of
 * P's aborted transactions spans it: first_offset <= o < last_offset (the
 * ABORT marker's offset).  One producer's transactions never overlap on a
 * partition, so no other rule is needed.  The transactions are ordered by
 * first offset and batches come in offset order: lo skips the prefix of
 * transactions that all end below the batches read, so a long read over
 * many short aborted transactions stays linear.
 */
#include "streamlog/protocol/records.h"
#include "streamlog/storage/txn_filter.h"

void
SlAbortedFilterInit(SlAbortedFilter *filter, const SlAbortedTxn *txns, int ntxns)
{
	filter->txns = txns;
	filter->ntxns = ntxns;
	filter->lo = 0;
}

bool
SlAbortedFilterSkips(SlAbortedFilter *filter, int16 attributes, int64 producer_id,
					 int64 base_offset)
{
	if (attributes & SL_BATCH_ATTR_CONTROL)
		return true;
	if (!(attributes & SL_BATCH_ATTR_TRANSACTIONAL) || producer_id < 0)
		return false;
	while (filter->lo < filter->ntxns &&
		   filter->txns[filter->lo].last_offset < base_offset)
		filter->lo++;
	for (int i = filter->lo; i < filter->ntxns; i++)
	{
		const SlAbortedTxn *txn = &filter->txns[i];

		if (txn->first_offset > base_offset)
			break;
		if (txn->producer_id == producer_id && base_offset < txn->last_offset)
			return true;
	}
	return false;
}
