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

#endif							/* SL_STORAGE_INTERNAL_LOG_APPEND_H */
