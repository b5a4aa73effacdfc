/*
 * The forward queue: records produced by SQL to a partition that another
 * node leads (P1 on a cluster, README "SQL produce on any node").
 *
 * produce() buffers them like any other; at XACT_EVENT_PRE_COMMIT
 * (log_append.c) the batches of such a partition are inserted into
 * streamlog.forward_queue in the caller's transaction instead of the
 * segment tables: they exist if and only if it commits.  Each batch gets a
 * queue position in the order transactions reach pre-commit, the order in
 * which local appends get their offsets.  A position is "in flight" from
 * then until its transaction ends; the forwarder (replication/
 * produce_forward.c) takes only positions below every one in flight, so it
 * never passes a batch that may still commit (as a reader never passes the
 * high watermark).
 *
 * The forwarder stamps each batch with this node's producer id, an epoch
 * and the partition's next sequence (kept in streamlog.forward_sequence)
 * in a transaction of its own before it sends it: a resend after a crash
 * carries the same sequence, which the leader's idempotent-producer check
 * stores once.  Once the leader answers, the batches leave the queue.
 */
#ifndef SL_STORAGE_FORWARD_QUEUE_H
#define SL_STORAGE_FORWARD_QUEUE_H

#include "postgres.h"

#include "nodes/pg_list.h"

/*
 * Most batches, and bytes of them (past the first), sent to a leader in
 * one call.  More than the few batches a leader remembers per producer
 * (producers.c): the leader takes an older sequence of a forwarding node
 * for a duplicate (forward_sql.c)
 */
#define SL_FORWARD_MAX_BATCHES 64
#define SL_FORWARD_MAX_BYTES (1024 * 1024)

/* Shared memory: the position counter and what is in flight */
extern Size SlForwardQueueShmemSize(void);
extern void SlForwardQueueShmemInit(void);

/* The forwarder announces itself (its latch is set on each commit that queued) */
extern void SlForwardQueueSetForwarder(int procno);

/*
 * The first position that may still be in flight: every queued batch
 * below it is final (committed and visible, or gone with its
 * transaction).  Call in a transaction, before the queue is read (its
 * queries take the latest snapshot).
 * *next_position is the next position to be handed out, for
 * SlForwardQueueFoundEmpty.
 */
extern int64 SlForwardQueueHorizon(int64 *next_position);

/*
 * The forwarder read the queue (with a snapshot taken after
 * SlForwardQueueHorizon said next_position and nothing in flight) and
 * found it empty: local appends need not look at it until a commit queues
 * again (see internal/forward_queue.h, SlForwardQueueHolds).
 */
extern void SlForwardQueueFoundEmpty(int64 next_position);

/* One queued batch, as the forwarder reads it */
typedef struct SlForwardBatch
{
	int64		position;
	int32		record_count;
	int16		producer_epoch;	/* -1: not stamped yet */
	int32		base_sequence;	/* -1: not stamped yet */
	bytea	   *batch;			/* stamped if producer_epoch >= 0 */
} SlForwardBatch;

/* The head of one partition's queue */
typedef struct SlForwardPartition
{
	int32		topic_id;
	int32		partition;
	int			nbatches;
	size_t		bytes;			/* of the batches */
	SlForwardBatch batches[SL_FORWARD_MAX_BATCHES];
} SlForwardPartition;

/*
 * The first SL_FORWARD_MAX_BATCHES batches (SL_FORWARD_MAX_BYTES) of each partition that has
 * final batches below horizon, in position order (a List of
 * SlForwardPartition, in the current memory context).  Needs a
 * transaction and a snapshot taken after horizon was read.
 */
extern List *SlForwardQueueHeads(int64 horizon);

/*
 * Stamp the unstamped batches of part with producer_id, the partition's
 * epoch and its next sequences, in order, and store them stamped (and the
 * partition's next sequence); updates part.  Deterministic: a stamping
 * lost in a crash is made again the same.
 */
extern void SlForwardQueueStamp(SlForwardPartition *part, int64 producer_id);

/*
 * The leader does not know this node's producer (it lost its state, or a
 * batch went missing): start the partition over at sequence 0 of the next
 * epoch, and unstamp its queued batches so that they are stamped again.
 */
extern void SlForwardQueueNewEpoch(int32 topic_id, int32 partition);

/* The leader stored them: remove batches at these positions */
extern void SlForwardQueueRemove(const int64 *positions, int n);

/* Remove every queued batch of a topic that no longer exists; returns how many */
extern int64 SlForwardQueueRemoveTopic(int32 topic_id);

/*
 * This node's producer id for forwarded batches, kept in
 * streamlog.forward_producer with the node id it was taken as (*node_id);
 * -1 if none yet.  SlForwardProducerSet stores the one the caller
 * obtained.
 */
extern int64 SlForwardProducerGet(int32 *node_id);
extern void SlForwardProducerSet(int64 producer_id, int32 node_id);

/*
 * The data is another node's (copied, then started under another node
 * id): forget its producer, its sequences and its queue, which that node
 * delivers.  Returns how many queued batches were discarded.
 */
extern int64 SlForwardProducerForget(void);

#endif							/* SL_STORAGE_FORWARD_QUEUE_H */
