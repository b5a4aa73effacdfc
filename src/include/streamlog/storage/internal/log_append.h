/*
 * What the rest of storage needs of the transaction's pending appends
 * (log_append.c).  Internal to storage.
 */
#ifndef SL_STORAGE_INTERNAL_LOG_APPEND_H
#define SL_STORAGE_INTERNAL_LOG_APPEND_H

#include "streamlog/storage/storage.h"

/* Forget what this transaction produced to a topic it is dropping */
extern void SlLogDiscardTopic(SlPartitionKey topic_key);

/*
 * Count of subtransaction aborts in this backend: a cache of "topic already
 * locked in this transaction" is stale once it moves.
 */
extern uint64 sl_subxact_aborts;

/*
 * Append a control batch (a transaction marker, len bytes at data, built
 * by the caller without offsets) to a partition now, in the caller's
 * transaction: its offset is reserved at once and returned, and the high
 * watermark waits for the transaction's end (transactions.h).
 */
extern int64 SlLogAppendControlBatch(const SlTopic *topic, int32 partition,
									 const uint8 *data, size_t len,
									 int64 producer_id, int16 producer_epoch,
									 int64 timestamp);

#endif							/* SL_STORAGE_INTERNAL_LOG_APPEND_H */
