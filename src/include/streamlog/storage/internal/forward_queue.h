/*
 * The forward queue as log_append.c fills it at commit (see
 * storage/forward_queue.h for the whole picture).  Internal to storage.
 */
#ifndef SL_STORAGE_INTERNAL_FORWARD_QUEUE_H
#define SL_STORAGE_INTERNAL_FORWARD_QUEUE_H

#include "postgres.h"

/*
 * Reserve n consecutive queue positions for batches this transaction
 * queues at pre-commit, to partition of topic_id (and others, if
 * several); returns the first.  They are in flight until
 * SlForwardQueueEndXact.
 */
extern int64 SlForwardQueueReserve(int n, int32 topic_id, int32 partition, bool several);

/*
 * Does the queue hold batches for partition of topic_id, or may another
 * transaction be queueing some now?  Then a local append to it (this node
 * leads it now) must queue too, behind them, or it would pass records
 * committed before it (P1: commit order per producing node).  Cheap while
 * the queue is known to be empty.
 */
extern bool SlForwardQueueHolds(int32 topic_id, int32 partition);

/*
 * Queue one batch at position, in the current transaction.  batch is a
 * bytea (the RecordBatch v2, unstamped: no producer, base offset 0).
 */
extern void SlForwardQueueInsert(int64 position, int32 topic_id, int32 partition,
								 int32 record_count, bytea *batch);

/*
 * The transaction that reserved ended (committed or aborted): its
 * positions are no longer in flight; wake the forwarder if it committed.
 */
extern void SlForwardQueueEndXact(bool committed);

#endif							/* SL_STORAGE_INTERNAL_FORWARD_QUEUE_H */
