/*
 * The sequence state of idempotent producers (producers.c), as the log
 * keeps it in step with what it buffers.  Internal to storage: the front
 * door checks a batch with SlProducerCheckBatch, and SlLogBufferBatch
 * notes it.
 */
#ifndef SL_STORAGE_INTERNAL_PRODUCERS_H
#define SL_STORAGE_INTERNAL_PRODUCERS_H

#include "streamlog/storage/storage.h"

/*
 * A checked batch was buffered; base_offset is filled in at commit.
 * timestamp is its newest record's (-1: the commit's time, its append time)
 */
extern void SlProducerNoteBatch(SlPartitionKey partition, int64 producer_id,
								int16 epoch, int32 first_seq, int32 last_seq,
								int64 *base_offset, int64 timestamp);

/*
 * A transaction marker was appended in this transaction: at commit, the
 * producer's newest time and coordinator epoch (nothing of its sequence)
 */
extern void SlProducerNoteMarker(SlPartitionKey partition, int64 producer_id,
								 int16 epoch, int32 coordinator_epoch, int64 timestamp);

/*
 * Forget the producer states of a partition whose log was truncated; they
 * are rebuilt from its stored batches when next needed
 */
extern void SlProducersForgetPartition(SlPartitionKey partition);

#endif							/* SL_STORAGE_INTERNAL_PRODUCERS_H */
