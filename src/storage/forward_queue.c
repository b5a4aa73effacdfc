/*
 * The forward queue: batches produced by SQL to partitions another node
 * leads, waiting to be sent there (storage/forward_queue.h).
 *
 * Positions order the queue the way offsets order a log: they are handed
 * out at pre-commit, so a transaction that reaches its commit first comes
 * first, and the forwarder never passes a position still in flight (the
 * queue's high watermark, SlForwardQueueHorizon).  Each backend has one
 * slot in shared memory holding the first position its transaction
 * reserved, cleared when the transaction ends; the counter itself starts
 * after the largest position in the table, read once after each start
 * (positions left in the table by a crash are all final by then).
 *
 * The tables are small and touched once per commit and per forwarded
 * batch: SPI with kept plans (catalog_query.c), as the other catalogue
 * tables.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/protocol/records.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/forward_queue.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/forward_queue.h"

/* What a transaction queues between its pre-commit and its end */
typedef struct InFlight
{
	int64		first;			/* its first position; 0 = none */
	int32		topic_id;		/* a partition it queues to */
	int32		partition;
	bool		several;		/* and others besides */
} InFlight;

typedef struct ForwardShared
{
	LWLock	   *lock;
	bool		ready;			/* next_position was read from the table */
	int64		next_position;
	/*
	 * The queue may hold batches: it did at the start or something was
	 * queued since, and the forwarder has not found it empty since then
	 */
	bool		maybe_queued;
	int			forwarder_procno;	/* -1 when not running */
	int			nslots;
	InFlight	in_flight[FLEXIBLE_ARRAY_MEMBER];	/* by procno */
} ForwardShared;

static ForwardShared *forward = NULL;

/* This backend reserved positions in its current transaction */
static bool reserved = false;

typedef enum ForwardQueryId
{
	Q_MAX_POSITION,
	Q_INSERT,
	Q_HOLDS,
	Q_HEADS,
	Q_SEQUENCE,
	Q_STAMP,
	Q_SET_SEQUENCE,
	Q_NEW_EPOCH,
	Q_UNSTAMP,
	Q_REMOVE,
	Q_REMOVE_TOPIC,
	Q_REMOVE_TOPIC_SEQUENCES,
	Q_PRODUCER,
	Q_SET_PRODUCER,
	Q_FORGET_PRODUCER,
	Q_FORGET_SEQUENCES,
	Q_FORGET_QUEUE,
	NUM_FORWARD_QUERIES
} ForwardQueryId;

static const SlNamedQuery forward_queries[NUM_FORWARD_QUERIES] = {
	[Q_MAX_POSITION] = {
		"SELECT max(position) FROM streamlog.forward_queue", 0, {0}
	},
	[Q_INSERT] = {
		"INSERT INTO streamlog.forward_queue (position, topic_id, partition, record_count, "
		"enqueued_at, batch) VALUES ($1, $2, $3, $4, $5, $6)",
		6, {INT8OID, INT4OID, INT4OID, INT4OID, TIMESTAMPTZOID, BYTEAOID}
	},
	/*
	 * The partitions with queued batches by a skip scan of the partition
	 * index (a step per partition, not per batch: the queue may be long
	 * while a leader is away), then the head of each
	 */
	[Q_HOLDS] = {
		"SELECT 1 FROM streamlog.forward_queue WHERE topic_id = $1 AND partition = $2 LIMIT 1",
		2, {INT4OID, INT4OID}
	},
	[Q_HEADS] = {
		"WITH RECURSIVE parts AS ("
		" (SELECT topic_id, partition FROM streamlog.forward_queue"
		"  ORDER BY topic_id, partition LIMIT 1)"
		" UNION ALL"
		" SELECT n.topic_id, n.partition FROM parts p, LATERAL"
		"  (SELECT q.topic_id, q.partition FROM streamlog.forward_queue q"
		"   WHERE (q.topic_id, q.partition) > (p.topic_id, p.partition)"
		"   ORDER BY q.topic_id, q.partition LIMIT 1) n)"
		" SELECT h.position, h.topic_id, h.partition, h.record_count,"
		" coalesce(h.producer_epoch, -1), coalesce(h.base_sequence, -1), h.batch"
		" FROM parts p, LATERAL"
		"  (SELECT * FROM streamlog.forward_queue q"
		"   WHERE q.topic_id = p.topic_id AND q.partition = p.partition AND q.position < $1"
		"   ORDER BY q.position LIMIT $2) h"
		" ORDER BY h.topic_id, h.partition, h.position",
		2, {INT8OID, INT4OID}
	},
	[Q_SEQUENCE] = {
		"SELECT producer_epoch, next_sequence FROM streamlog.forward_sequence "
		"WHERE topic_id = $1 AND partition = $2",
		2, {INT4OID, INT4OID}
	},
	[Q_STAMP] = {
		"UPDATE streamlog.forward_queue SET producer_epoch = $2, base_sequence = $3, "
		"batch = $4 WHERE position = $1",
		4, {INT8OID, INT2OID, INT4OID, BYTEAOID}
	},
	[Q_SET_SEQUENCE] = {
		"INSERT INTO streamlog.forward_sequence AS s (topic_id, partition, producer_epoch, "
		"next_sequence) VALUES ($1, $2, $3, $4) ON CONFLICT (topic_id, partition) DO UPDATE "
		"SET producer_epoch = excluded.producer_epoch, next_sequence = excluded.next_sequence",
		4, {INT4OID, INT4OID, INT2OID, INT4OID}
	},
	[Q_NEW_EPOCH] = {
		"UPDATE streamlog.forward_sequence SET producer_epoch = producer_epoch + 1, "
		"next_sequence = 0 WHERE topic_id = $1 AND partition = $2",
		2, {INT4OID, INT4OID}
	},
	[Q_UNSTAMP] = {
		"UPDATE streamlog.forward_queue SET producer_epoch = NULL, base_sequence = NULL "
		"WHERE topic_id = $1 AND partition = $2",
		2, {INT4OID, INT4OID}
	},
	[Q_REMOVE] = {
		"DELETE FROM streamlog.forward_queue WHERE position = $1", 1, {INT8OID}
	},
	[Q_REMOVE_TOPIC] = {
		"DELETE FROM streamlog.forward_queue WHERE topic_id = $1", 1, {INT4OID}
	},
	[Q_REMOVE_TOPIC_SEQUENCES] = {
		"DELETE FROM streamlog.forward_sequence WHERE topic_id = $1", 1, {INT4OID}
	},
	[Q_PRODUCER] = {
		"SELECT producer_id, node_id FROM streamlog.forward_producer", 0, {0}
	},
	[Q_SET_PRODUCER] = {
		"INSERT INTO streamlog.forward_producer (producer_id, node_id) VALUES ($1, $2) "
		"ON CONFLICT DO NOTHING",
		2, {INT8OID, INT4OID}
	},
	[Q_FORGET_PRODUCER] = {
		"DELETE FROM streamlog.forward_producer", 0, {0}
	},
	[Q_FORGET_SEQUENCES] = {
		"DELETE FROM streamlog.forward_sequence", 0, {0}
	},
	[Q_FORGET_QUEUE] = {
		"DELETE FROM streamlog.forward_queue", 0, {0}
	},
};

static uint64
run(ForwardQueryId id, Datum *values)
{
	return SlCatalogRun(&forward_queries[id], values, NULL);
}

Size
SlForwardQueueShmemSize(void)
{
	return add_size(offsetof(ForwardShared, in_flight),
					mul_size(sizeof(InFlight), MaxBackends));
}

void
SlForwardQueueShmemInit(void)
{
	bool		found;

	forward = ShmemInitStruct("streamlog forward queue", SlForwardQueueShmemSize(), &found);
	if (!found)
	{
		forward->lock = &(GetNamedLWLockTranche("streamlog forward"))->lock;
		forward->ready = false;
		forward->maybe_queued = true;
		forward->next_position = 1;
		forward->forwarder_procno = -1;
		forward->nslots = MaxBackends;
		memset(forward->in_flight, 0, sizeof(InFlight) * MaxBackends);
	}
}

void
SlForwardQueueSetForwarder(int procno)
{
	LWLockAcquire(forward->lock, LW_EXCLUSIVE);
	forward->forwarder_procno = procno;
	LWLockRelease(forward->lock);
}

/* The largest position in the table, 0 if empty (latest snapshot) */
static int64
max_position(void)
{
	int64		max;

	SPI_connect();
	run(Q_MAX_POSITION, NULL);
	max = SlCatalogInt64(0, 1, 0);
	SPI_finish();
	return max;
}

/*
 * After each start, once: the position counter goes on after the largest
 * position in the table (every one there is final: no one reserved
 * before), and the queue may hold batches if it has any
 */
static void
ensure_ready(void)
{
	bool		ready;
	int64		max;

	LWLockAcquire(forward->lock, LW_SHARED);
	ready = forward->ready;
	LWLockRelease(forward->lock);
	if (ready)
		return;
	max = max_position();
	LWLockAcquire(forward->lock, LW_EXCLUSIVE);
	if (!forward->ready)
	{
		forward->next_position = max + 1;
		forward->maybe_queued = max > 0;
		forward->ready = true;
	}
	LWLockRelease(forward->lock);
}

int64
SlForwardQueueReserve(int n, int32 topic_id, int32 partition, bool several)
{
	int64		start;
	int			slot = SL_MY_PROCNO;

	Assert(n > 0);
	if (slot < 0 || slot >= forward->nslots)
		elog(ERROR, "process number %d has no slot in the forward queue", slot);
	ensure_ready();

	LWLockAcquire(forward->lock, LW_EXCLUSIVE);
	start = forward->next_position;
	forward->next_position += n;
	forward->maybe_queued = true;
	if (forward->in_flight[slot].first == 0)
	{
		forward->in_flight[slot].first = start;
		forward->in_flight[slot].topic_id = topic_id;
		forward->in_flight[slot].partition = partition;
		forward->in_flight[slot].several = several;
	}
	else
		forward->in_flight[slot].several = true;
	LWLockRelease(forward->lock);
	reserved = true;
	return start;
}

bool
SlForwardQueueHolds(int32 topic_id, int32 partition)
{
	bool		holds = false;
	Datum		values[2];

	ensure_ready();
	LWLockAcquire(forward->lock, LW_SHARED);
	if (forward->maybe_queued)
	{
		for (int i = 0; i < forward->nslots && !holds; i++)
		{
			InFlight   *f = &forward->in_flight[i];

			holds = f->first > 0 && i != SL_MY_PROCNO &&
				(f->several || (f->topic_id == topic_id && f->partition == partition));
		}
	}
	else
	{
		LWLockRelease(forward->lock);
		return false;
	}
	LWLockRelease(forward->lock);
	if (holds)
		return true;
	/* committed batches, after the in-flight ones were looked at */
	values[0] = Int32GetDatum(topic_id);
	values[1] = Int32GetDatum(partition);
	SPI_connect();
	holds = run(Q_HOLDS, values) > 0;
	SPI_finish();
	return holds;
}

void
SlForwardQueueFoundEmpty(int64 next_position)
{
	LWLockAcquire(forward->lock, LW_EXCLUSIVE);
	if (forward->ready && forward->next_position == next_position)
		forward->maybe_queued = false;
	LWLockRelease(forward->lock);
}

void
SlForwardQueueInsert(int64 position, int32 topic_id, int32 partition,
					 int32 record_count, bytea *batch)
{
	Datum		values[6];

	values[0] = Int64GetDatum(position);
	values[1] = Int32GetDatum(topic_id);
	values[2] = Int32GetDatum(partition);
	values[3] = Int32GetDatum(record_count);
	values[4] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[5] = PointerGetDatum(batch);
	SPI_connect();
	run(Q_INSERT, values);
	SPI_finish();
}

void
SlForwardQueueEndXact(bool committed)
{
	int			procno;

	if (!reserved)
		return;
	reserved = false;
	LWLockAcquire(forward->lock, LW_EXCLUSIVE);
	forward->in_flight[SL_MY_PROCNO].first = 0;
	procno = forward->forwarder_procno;
	LWLockRelease(forward->lock);
	if (committed && procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

int64
SlForwardQueueHorizon(int64 *next_position)
{
	int64		horizon;

	/*
	 * Ready first: a counter not yet read from the table would say nothing
	 * of reservations that come before the queue is read
	 */
	ensure_ready();
	LWLockAcquire(forward->lock, LW_SHARED);
	*next_position = forward->next_position;
	horizon = forward->next_position;
	for (int i = 0; i < forward->nslots; i++)
	{
		int64		first = forward->in_flight[i].first;

		if (first > 0 && first < horizon)
			horizon = first;
	}
	LWLockRelease(forward->lock);
	return horizon;
}

List *
SlForwardQueueHeads(int64 horizon)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *heads = NIL;
	SlForwardPartition *part = NULL;
	Datum		values[2];
	uint64		n;

	values[0] = Int64GetDatum(horizon);
	values[1] = Int32GetDatum(SL_FORWARD_MAX_BATCHES);
	SPI_connect();
	n = run(Q_HEADS, values);
	for (uint64 i = 0; i < n; i++)
	{
		int32		topic_id = SlCatalogInt32(i, 2, -1);
		int32		partition = SlCatalogInt32(i, 3, -1);
		SlForwardBatch *b;
		bool		isnull;
		Datum		d;
		MemoryContext oldcxt;

		oldcxt = MemoryContextSwitchTo(cxt);
		if (part == NULL || part->topic_id != topic_id || part->partition != partition)
		{
			part = palloc0(sizeof(SlForwardPartition));
			part->topic_id = topic_id;
			part->partition = partition;
			heads = lappend(heads, part);
		}
		if (part->nbatches < SL_FORWARD_MAX_BATCHES &&
			(part->nbatches == 0 || part->bytes < SL_FORWARD_MAX_BYTES))
		{
			b = &part->batches[part->nbatches++];
			b->position = SlCatalogInt64(i, 1, -1);
			b->record_count = SlCatalogInt32(i, 4, 0);
			b->producer_epoch = (int16) SlCatalogInt32(i, 5, -1);
			b->base_sequence = SlCatalogInt32(i, 6, -1);
			d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 7, &isnull);
			/* a copy of our own, detoasted, to stamp in place */
			b->batch = isnull ? NULL : DatumGetByteaPCopy(d);
			if (b->batch)
				part->bytes += VARSIZE(b->batch);
		}
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return heads;
}

void
SlForwardQueueStamp(SlForwardPartition *part, int64 producer_id)
{
	Datum		values[4];
	int16		epoch = 0;
	int64		next = 0;
	bool		stamped = false;

	SPI_connect();
	values[0] = Int32GetDatum(part->topic_id);
	values[1] = Int32GetDatum(part->partition);
	if (run(Q_SEQUENCE, values) > 0)
	{
		epoch = (int16) SlCatalogInt32(0, 1, 0);
		next = SlCatalogInt32(0, 2, 0);
	}
	for (int i = 0; i < part->nbatches; i++)
	{
		SlForwardBatch *b = &part->batches[i];

		if (b->producer_epoch >= 0 || b->batch == NULL)
			continue;
		/*
		 * A batch's sequences must not wrap inside it (the leader computes
		 * its last one as first + count - 1): at the end of the range the
		 * next epoch starts over at 0, which Kafka's check takes
		 */
		if (next + b->record_count - 1 > PG_INT32_MAX)
		{
			if (epoch == PG_INT16_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("forwarded producer of partition %d of topic %d ran out of epochs",
								part->partition, part->topic_id)));
			epoch++;
			next = 0;
		}
		SlBatchSetProducer((uint8 *) VARDATA(b->batch), VARSIZE(b->batch) - VARHDRSZ,
						   producer_id, epoch, (int32) next);
		b->producer_epoch = epoch;
		b->base_sequence = (int32) next;
		values[0] = Int64GetDatum(b->position);
		values[1] = Int16GetDatum(epoch);
		values[2] = Int32GetDatum((int32) next);
		values[3] = PointerGetDatum(b->batch);
		run(Q_STAMP, values);
		next += b->record_count;
		if (next > PG_INT32_MAX)
			next = 0;
		stamped = true;
	}
	if (stamped)
	{
		values[0] = Int32GetDatum(part->topic_id);
		values[1] = Int32GetDatum(part->partition);
		values[2] = Int16GetDatum(epoch);
		values[3] = Int32GetDatum((int32) next);
		run(Q_SET_SEQUENCE, values);
	}
	SPI_finish();
}

void
SlForwardQueueNewEpoch(int32 topic_id, int32 partition)
{
	Datum		values[2];

	values[0] = Int32GetDatum(topic_id);
	values[1] = Int32GetDatum(partition);
	SPI_connect();
	run(Q_NEW_EPOCH, values);
	run(Q_UNSTAMP, values);
	SPI_finish();
}

void
SlForwardQueueRemove(const int64 *positions, int n)
{
	SPI_connect();
	for (int i = 0; i < n; i++)
	{
		Datum		value = Int64GetDatum(positions[i]);

		run(Q_REMOVE, &value);
	}
	SPI_finish();
}

int64
SlForwardQueueRemoveTopic(int32 topic_id)
{
	Datum		value = Int32GetDatum(topic_id);
	int64		removed;

	SPI_connect();
	removed = (int64) run(Q_REMOVE_TOPIC, &value);
	run(Q_REMOVE_TOPIC_SEQUENCES, &value);
	SPI_finish();
	return removed;
}

int64
SlForwardProducerGet(int32 *node_id)
{
	int64		id = -1;

	*node_id = -1;
	SPI_connect();
	if (run(Q_PRODUCER, NULL) > 0)
	{
		id = SlCatalogInt64(0, 1, -1);
		*node_id = SlCatalogInt32(0, 2, -1);
	}
	SPI_finish();
	return id;
}

void
SlForwardProducerSet(int64 producer_id, int32 node_id)
{
	Datum		values[2];

	values[0] = Int64GetDatum(producer_id);
	values[1] = Int32GetDatum(node_id);
	SPI_connect();
	run(Q_SET_PRODUCER, values);
	SPI_finish();
}

int64
SlForwardProducerForget(void)
{
	int64		discarded;

	SPI_connect();
	run(Q_FORGET_PRODUCER, NULL);
	run(Q_FORGET_SEQUENCES, NULL);
	discarded = (int64) run(Q_FORGET_QUEUE, NULL);
	SPI_finish();
	return discarded;
}
