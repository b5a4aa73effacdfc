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
 * True if a marker of producer_id written now would come from the past, as
 * Kafka's leader refuses it (TRANSACTION_COORDINATOR_FENCED,
 * INVALID_PRODUCER_EPOCH): the partition holds batches of a newer epoch of
 * the producer, or a marker from a newer coordinator (a higher coordinator
 * epoch: the coordinator that sends this one was replaced, and a late
 * marker of its would end the producer's next transaction).  Then
 * *known_epoch and *known_coordinator_epoch are what the partition holds.
 * coordinator_epoch -1, an operator's abort of a hanging transaction, is
 * never fenced.
 */
extern bool SlProducerMarkerFenced(const SlTopic *topic, int32 partition,
								   int64 producer_id, int16 producer_epoch,
								   int32 coordinator_epoch, int16 *known_epoch,
								   int32 *known_coordinator_epoch);

/*
 * Forget the producer states of a partition whose log was truncated; they
 * are rebuilt from its stored batches when next needed
 */
extern void SlProducersForgetPartition(SlPartitionKey partition);

#endif							/* SL_STORAGE_INTERNAL_PRODUCERS_H */
