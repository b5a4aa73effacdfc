/*
 * Appending to the log from SQL, atomically with the caller's transaction.
 *
 * produce() only buffers: records are encoded into RecordBatch v2 batches in
 * backend memory as they arrive.  At XACT_EVENT_PRE_COMMIT the batches of
 * each partition get their offsets (SlPartitionStateReserve, in commit
 * order) and are written to the partition's active segment; once the commit
 * is durable and visible (XACT_EVENT_COMMIT) or abandoned (XACT_EVENT_ABORT)
 * the reservation is released and the high watermark moves past it.  So a
 * record is visible to consumers exactly when its transaction commits (P1),
 * offsets become visible in order (P2, P3), and an open transaction holds no
 * offsets and blocks no one (P4).  produce() cannot return the offset: it
 * does not exist before commit.
 *
 * A rolled-back savepoint discards the records produced inside it: the first
 * record a subtransaction buffers for a partition closes the open batch and
 * leaves a mark to truncate back to.
 *
 * On a cluster, a partition another node leads (SlLogForwardRecord) has
 * its batches go to this node's forward queue at pre-commit instead, in the
 * same transaction (storage/forward_queue.h); so do SQL's records for a
 * partition this node leads while its queue still holds some for it.
 *
 * Sealed batches stay in memory up to streamlog.produce_memory; past that
 * they wait in a temporary file of the transaction until commit reads them
 * back one at a time, so a transaction of any size takes bounded memory.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/genam.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "common/pg_prng.h"
#include "nodes/execnodes.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metrics/counters.h"
#include "streamlog/storage/internal/catalog.h"
#include "streamlog/storage/internal/forward_queue.h"
#include "streamlog/storage/internal/key_index.h"
#include "streamlog/storage/internal/log_append.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/producers.h"
#include "streamlog/storage/internal/segment_rows.h"
#include "streamlog/storage/internal/spill_file.h"
#include "streamlog/storage/internal/txn.h"
#include "streamlog/storage/internal/xact.h"
#include "streamlog/storage/storage.h"

/*
 * A finished batch waiting for its offsets.  data starts with room for a
 * varlena header, so that it is stored as the bytea it already is; or the
 * batch is in the spill file (data empty) until commit loads it back; or
 * it stays where its caller holds it (borrowed, SlLogBufferBatchInPlace).
 */
typedef struct PendingBatch
{
	StringInfoData data;
	uint8	   *borrowed;		/* the caller's bytes, else NULL */
	bool		spilled;		/* in spill at spill_offset */
	off_t		spill_offset;
	size_t		len;			/* of the batch, without the room in data */
	bool		client_crc;		/* a producer's valid CRC: keep it */
	int32		record_count;	/* offsets it takes: lastOffsetDelta + 1 */
	int64		min_timestamp;	/* of its records; -1 if none has one */
	int64		max_timestamp;	/* of its records; -1 if none has one */
	int64		producer_id;
	int16		producer_epoch;
	int32		base_sequence;
	int64	   *base_offset_out;	/* where to report the offset, or NULL */
	int64	   *log_append_time_out;	/* and the LogAppendTime, or NULL */
} PendingBatch;

/* Where to truncate back to if a subtransaction aborts */
typedef struct BufferMark
{
	SubTransactionId subid;
	int			nbatches;
} BufferMark;

typedef struct PendingPartition
{
	SlPartitionKey key;			/* hash key */
	SlPartitionState *state;
	int			compression;
	bool		log_append_time;
	size_t		batch_target;	/* close a batch at this many record bytes */
	int32		max_message_bytes;
	int32		leader_epoch;	/* stamped in every batch (replica_log.h) */
	SlBatchBuilder builder;
	int64		builder_min_ts;
	List	   *batches;		/* of PendingBatch */
	List	   *marks;			/* of BufferMark, oldest first */
	bool		forward;		/* another node leads it: to the forward queue */
	bool		given_batches;	/* SlLogBufferBatch's: a leader's, never queued */
} PendingPartition;

#define batch_bytes(b) ((b)->borrowed ? (b)->borrowed : (uint8 *) (b)->data.data + VARHDRSZ)
#define batch_len(b) ((b)->len)

static void
batch_data_init(PendingBatch *batch)
{
	initStringInfo(&batch->data);
	appendStringInfoSpaces(&batch->data, VARHDRSZ);
}

/* A reservation to release when the transaction ends */
typedef struct Reservation
{
	SlPartitionState *state;
	int64		start;
} Reservation;

static HTAB *pending = NULL;	/* PendingPartition by key; in xact memory */
static MemoryContext pending_context = NULL;
static SlSpillFile spill = SL_SPILL_FILE_INIT;
static size_t pending_memory = 0;	/* bytes of sealed batches in memory */
static PendingPartition *last_pending = NULL;	/* the one used last */

uint64		sl_subxact_aborts = 0;

static Reservation *reservations = NULL;	/* in TopMemoryContext */
static int	nreservations = 0;
static int	max_reservations = 0;

static void
pending_reset(void)
{
	pending = NULL;
	pending_context = NULL;
	last_pending = NULL;
	/* Closed by now, or by the resource owner of the aborting transaction */
	spill.file = -1;
	spill.end = 0;
	pending_memory = 0;
}

/*
 * Queue a sealed batch of pp.  Past streamlog.produce_memory it goes to the
 * transaction's spill file, owned by the top transaction so that it lives
 * until commit reads it and is deleted if the transaction aborts.
 */
static void
keep_batch(PendingPartition *pp, PendingBatch *batch)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(pending_context);

	batch->spilled = false;
	if (batch->borrowed)
	{
		/* the caller's memory, held until the end of the transaction */
		pp->batches = lappend(pp->batches, batch);
		MemoryContextSwitchTo(oldcxt);
		return;
	}
	batch->len = (size_t) batch->data.len - VARHDRSZ;
	if (pending_memory + batch->len > (size_t) sl_produce_memory * 1024)
	{
		batch->spill_offset = SlSpillWrite(&spill, batch_bytes(batch), batch->len);
		pfree(batch->data.data);
		batch->data.data = NULL;
		batch->spilled = true;
	}
	else
		pending_memory += batch->len;
	pp->batches = lappend(pp->batches, batch);
	MemoryContextSwitchTo(oldcxt);
}

/* Drop the batches of pp after the first keep */
static void
forget_batches(PendingPartition *pp, int keep)
{
	for (int i = keep; i < list_length(pp->batches); i++)
	{
		PendingBatch *batch = list_nth(pp->batches, i);

		if (!batch->spilled && !batch->borrowed)
			pending_memory -= batch->len;
	}
	pp->batches = keep == 0 ? NIL : list_truncate(pp->batches, keep);
}

/* A copy of a borrowed batch, of its own, with room for a varlena header */
static void
own_batch(PendingBatch *batch)
{
	if (!batch->borrowed)
		return;
	batch_data_init(batch);
	appendBinaryStringInfo(&batch->data, (const char *) batch->borrowed, batch->len);
	batch->borrowed = NULL;
}

/* Bring a spilled batch back into memory, to be appended */
static void
load_batch(PendingBatch *batch)
{
	if (!batch->spilled)
		return;
	batch_data_init(batch);
	enlargeStringInfo(&batch->data, batch->len);
	SlSpillRead(&spill, batch->spill_offset, batch_bytes(batch), batch->len);
	batch->data.len += batch->len;
	batch->spilled = false;
}

static PendingPartition *
pending_partition(const SlTopic *topic, int32 partition)
{
	SlPartitionKey key = SlMakePartitionKey(topic->topic_id, partition);
	PendingPartition *pp;
	bool		found;

	if (last_pending && memcmp(&last_pending->key, &key, sizeof(key)) == 0)
		return last_pending;

	if (pending == NULL)
	{
		HASHCTL		info;

		pending_context = AllocSetContextCreate(TopTransactionContext,
												"streamlog produce buffer",
												ALLOCSET_DEFAULT_SIZES);
		info.keysize = sizeof(SlPartitionKey);
		info.entrysize = sizeof(PendingPartition);
		info.hcxt = pending_context;
		pending = hash_create("streamlog pending partitions", 16, &info,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	pp = hash_search(pending, &key, HASH_ENTER, &found);
	if (!found)
	{
		MemoryContext oldcxt;

		/* Load the shared state now, not in the middle of commit */
		pp->state = SlPartitionStateGet(key);
		pp->compression = topic->config.compression < 0 ? SL_COMPRESSION_NONE :
			topic->config.compression;
		pp->log_append_time = topic->config.log_append_time;
		pp->max_message_bytes = topic->config.max_message_bytes;
		/* The epoch this node leads the partition in; 0 on a node of its own */
		pp->leader_epoch = topic->partitions != NULL ?
			SlTopicPartitionLeadership(topic, partition)->leader_epoch : 0;
		pp->batch_target = Min((size_t) sl_batch_bytes,
							   (size_t) Max(topic->config.max_message_bytes - SL_BATCH_HEADER_SIZE, 1));
		oldcxt = MemoryContextSwitchTo(pending_context);
		SlBatchBuilderInit(&pp->builder, pp->compression);
		MemoryContextSwitchTo(oldcxt);
		pp->batches = NIL;
		pp->marks = NIL;
		pp->forward = false;
		pp->given_batches = false;
	}
	last_pending = pp;
	return pp;
}

/* Compress the open batch of pp, if any, into its list of batches */
static void
close_batch(PendingPartition *pp)
{
	PendingBatch *batch;
	MemoryContext oldcxt;
	const char *error;

	if (pp->builder.record_count == 0)
		return;
	oldcxt = MemoryContextSwitchTo(pending_context);
	batch = palloc0(sizeof(PendingBatch));
	batch_data_init(batch);
	batch->client_crc = false;
	error = SlBatchBuilderFinish(&pp->builder, &batch->data);
	if (error)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compress a record batch with %s: %s",
						SlCompressionName(pp->compression), error)));
	batch->record_count = pp->builder.record_count;
	batch->min_timestamp = pp->builder_min_ts;
	batch->max_timestamp = pp->builder.max_timestamp;
	batch->producer_id = SL_NO_PRODUCER_ID;
	batch->producer_epoch = SL_NO_PRODUCER_EPOCH;
	batch->base_sequence = SL_NO_SEQUENCE;
	batch->base_offset_out = NULL;
	batch->log_append_time_out = NULL;
	MemoryContextSwitchTo(oldcxt);
	keep_batch(pp, batch);
	SlBatchBuilderReset(&pp->builder);
}

/* Leave a mark for the current subtransaction if it has none yet */
static void
mark_subtransaction(PendingPartition *pp)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	BufferMark *mark;
	MemoryContext oldcxt;

	if (subid == TopSubTransactionId)
		return;
	if (pp->marks != NIL && ((BufferMark *) llast(pp->marks))->subid == subid)
		return;
	close_batch(pp);
	oldcxt = MemoryContextSwitchTo(pending_context);
	mark = palloc(sizeof(BufferMark));
	mark->subid = subid;
	mark->nbatches = list_length(pp->batches);
	pp->marks = lappend(pp->marks, mark);
	MemoryContextSwitchTo(oldcxt);
}

/* Encoded size of a record, near enough to decide on batch boundaries */
static size_t
record_size_estimate(const SlProduceRecord *record)
{
	size_t		size = 24 + Max(record->key_len, 0) + Max(record->value_len, 0);

	for (int i = 0; i < record->nheaders; i++)
		size += 10 + record->headers[i].key_len + Max(record->headers[i].value_len, 0);
	return size;
}

/*
 * Buffer a record for SlLogBufferRecord (forward false) or
 * SlLogForwardRecord (true).  The last call decides where a partition's
 * records go at commit: the leadership as last seen.
 */
static void
buffer_record(const SlTopic *topic, int32 partition,
			  const SlProduceRecord *record, bool forward)
{
	PendingPartition *pp;
	size_t		size = record_size_estimate(record);

	if (record->key_len < 0 && SlTopicRequiresKeys(&topic->config))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("compacted topic \"%s\" cannot accept a record without a key",
						topic->name),
				 errdetail("Its cleanup.policy has \"compact\": compaction keeps the newest record of each key, so every record needs one."),
				 errhint("Give the record a key, or set cleanup.policy of topic \"%s\" to \"delete\".",
						 topic->name)));
	pp = pending_partition(topic, partition);
	if (size + SL_BATCH_HEADER_SIZE > (size_t) pp->max_message_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("record of %zu bytes is larger than max.message.bytes of topic \"%s\" (%d)",
						size + SL_BATCH_HEADER_SIZE, topic->name, pp->max_message_bytes),
				 errhint("Raise it with streamlog.alter_topic('%s', '{\"max.message.bytes\": \"...\"}').",
						 topic->name)));

	pp->forward = forward;
	mark_subtransaction(pp);
	if (pp->builder.record_count > 0 &&
		SlBatchBuilderRecordsSize(&pp->builder) + size > pp->batch_target)
		close_batch(pp);

	if (pp->builder.record_count == 0 || record->timestamp < pp->builder_min_ts)
		pp->builder_min_ts = record->timestamp;
	SlBatchBuilderAdd(&pp->builder, record->timestamp,
					  record->key, record->key_len,
					  record->value, record->value_len,
					  record->headers, record->nheaders);
}

void
SlLogBufferRecord(const SlTopic *topic, int32 partition,
				  const SlProduceRecord *record)
{
	buffer_record(topic, partition, record, false);
}

void
SlLogForwardRecord(const SlTopic *topic, int32 partition,
				   const SlProduceRecord *record)
{
	buffer_record(topic, partition, record, true);
}

/* SlLogBufferBatch, the batch copied, or borrowed where it is */
static void
buffer_batch(const SlTopic *topic, int32 partition, uint8 *data, bool borrow,
			 size_t len, const SlBatchHeader *hdr, int64 min_timestamp,
			 int64 max_timestamp, int64 *base_offset_out,
			 int64 *log_append_time_out)
{
	PendingPartition *pp = pending_partition(topic, partition);
	PendingBatch *batch;
	MemoryContext oldcxt;

	pp->given_batches = true;
	/* Records buffered by SQL before this batch go first */
	mark_subtransaction(pp);
	close_batch(pp);

	oldcxt = MemoryContextSwitchTo(pending_context);
	batch = palloc0(sizeof(PendingBatch));
	batch->client_crc = true;
	batch->len = len;
	if (borrow)
		batch->borrowed = data;
	else
	{
		batch_data_init(batch);
		appendBinaryStringInfo(&batch->data, (const char *) data, len);
	}
	/*
	 * Some producers write -1 or a stale value for maxTimestamp: as Kafka's
	 * log validator, store the one the records have, under a new CRC.  A
	 * correct header is left alone, so its batch stays byte for byte as the
	 * producer sent it.
	 */
	if (hdr->max_timestamp != max_timestamp)
	{
		SlStoreInt64(batch_bytes(batch) + SL_BATCH_OFFSET_MAX_TIMESTAMP, max_timestamp);
		batch->client_crc = false;
	}
	batch->record_count = hdr->last_offset_delta + 1;
	batch->min_timestamp = min_timestamp;
	batch->max_timestamp = max_timestamp;
	batch->producer_id = hdr->producer_id;
	batch->producer_epoch = hdr->producer_epoch;
	batch->base_sequence = hdr->base_sequence;
	batch->base_offset_out = base_offset_out;
	batch->log_append_time_out = log_append_time_out;
	MemoryContextSwitchTo(oldcxt);
	keep_batch(pp, batch);
	if (hdr->producer_id >= 0)
		SlProducerNoteBatch(pp->key, hdr->producer_id, hdr->producer_epoch,
							hdr->base_sequence,
							hdr->base_sequence + hdr->last_offset_delta,
							base_offset_out,
							(hdr->attributes & SL_BATCH_ATTR_LOG_APPEND_TIME) ? -1 :
							max_timestamp);
}

void
SlLogBufferBatch(const SlTopic *topic, int32 partition, const uint8 *data,
				 size_t len, const SlBatchHeader *hdr, int64 min_timestamp,
				 int64 max_timestamp, int64 *base_offset_out,
				 int64 *log_append_time_out)
{
	buffer_batch(topic, partition, unconstify(uint8 *, data), false, len, hdr,
				 min_timestamp, max_timestamp, base_offset_out, log_append_time_out);
}

void
SlLogBufferBatchInPlace(const SlTopic *topic, int32 partition, uint8 *data,
						size_t len, const SlBatchHeader *hdr, int64 min_timestamp,
						int64 max_timestamp, int64 *base_offset_out,
						int64 *log_append_time_out)
{
	buffer_batch(topic, partition, data, true, len, hdr, min_timestamp,
				 max_timestamp, base_offset_out, log_append_time_out);
}

/* Does the transaction still have records to append? */
static bool
pending_has_records(void)
{
	HASH_SEQ_STATUS status;
	PendingPartition *pp;
	bool		found = false;

	if (pending == NULL)
		return false;
	hash_seq_init(&status, pending);
	while ((pp = hash_seq_search(&status)) != NULL)
	{
		if (pp->batches != NIL || pp->builder.record_count > 0)
		{
			found = true;
			hash_seq_term(&status);
			break;
		}
	}
	return found;
}

void
SlLogDiscardTopic(SlPartitionKey topic_key)
{
	HASH_SEQ_STATUS status;
	PendingPartition *pp;

	if (pending == NULL)
		return;
	hash_seq_init(&status, pending);
	while ((pp = hash_seq_search(&status)) != NULL)
	{
		if (pp->key.topic_id == topic_key.topic_id &&
			pp->key.database == topic_key.database &&
			pp->key.catalog == topic_key.catalog)
		{
			forget_batches(pp, 0);
			pp->marks = NIL;
			SlBatchBuilderReset(&pp->builder);
		}
	}
}

/* Remember a reservation to release at the end of the transaction */
static void
remember_reservation(SlPartitionState *state, int64 start)
{
	if (nreservations == max_reservations)
	{
		int			n = Max(16, max_reservations * 2);

		reservations = reservations == NULL ?
			MemoryContextAlloc(TopMemoryContext, n * sizeof(Reservation)) :
			repalloc(reservations, n * sizeof(Reservation));
		max_reservations = n;
	}
	reservations[nreservations].state = state;
	reservations[nreservations].start = start;
	nreservations++;
}

static void
release_reservations(void)
{
	for (int i = 0; i < nreservations; i++)
		SlPartitionStateRelease(reservations[i].state, reservations[i].start);
	nreservations = 0;
}

static int
compare_pending(const void *a, const void *b)
{
	const PendingPartition *pa = *(PendingPartition *const *) a;
	const PendingPartition *pb = *(PendingPartition *const *) b;

	if (pa->key.topic_id != pb->key.topic_id)
		return pa->key.topic_id < pb->key.topic_id ? -1 : 1;
	if (pa->key.partition != pb->key.partition)
		return pa->key.partition < pb->key.partition ? -1 : 1;
	return 0;
}

/*
 * Write one sealed batch to segment rel (segment_rows.h), in place: its
 * bytes have the room before them that batch_data_init left
 */
static void
insert_batch(Relation rel, Relation index, IndexInfo *index_info, SlSegmentPages *pages,
			 PendingBatch *batch, int64 base_offset, int64 append_time)
{
	SlSegmentRow row;

	row.base_offset = base_offset;
	row.last_offset = base_offset + batch->record_count - 1;
	row.min_timestamp = batch->min_timestamp;
	row.max_timestamp = batch->max_timestamp;
	row.append_time = append_time;
	row.record_count = batch->record_count;
	row.producer_id = batch->producer_id;
	row.producer_epoch = batch->producer_epoch;
	row.base_sequence = batch->base_sequence;
	SlSegmentInsertBatchInPlace(rel, index, index_info, pages, &row, batch_bytes(batch),
								batch_len(batch));
}

/*
 * The batches of partitions another node leads go to the forward queue
 * (storage/forward_queue.h), in the caller's transaction, at positions
 * taken now: the order of commits, as offsets are for a local append.
 */
static void
queue_forwarded(PendingPartition **sorted, int n)
{
	int			nbatches = 0;
	int			npartitions = 0;
	PendingPartition *first = NULL;
	int64		position;

	for (int i = 0; i < n; i++)
	{
		/*
		 * A partition this node leads now, whose queue still holds records
		 * committed before: SQL's records go behind them, through the
		 * queue.  Batches given to append (a Kafka producer's, or the
		 * queue's own being delivered here) are the leader's to store.
		 */
		if (!sorted[i]->forward && !sorted[i]->given_batches &&
			SlForwardQueueHolds(sorted[i]->key.topic_id, sorted[i]->key.partition))
			sorted[i]->forward = true;
		if (sorted[i]->forward)
		{
			nbatches += list_length(sorted[i]->batches);
			npartitions++;
			if (first == NULL)
				first = sorted[i];
		}
	}
	if (nbatches == 0)
		return;
	position = SlForwardQueueReserve(nbatches, first->key.topic_id, first->key.partition,
									 npartitions > 1);
	for (int i = 0; i < n; i++)
	{
		PendingPartition *pp = sorted[i];
		ListCell   *lc;

		if (!pp->forward)
			continue;
		foreach(lc, pp->batches)
		{
			PendingBatch *batch = lfirst(lc);

			load_batch(batch);
			own_batch(batch);
			SET_VARSIZE(batch->data.data, VARHDRSZ + batch_len(batch));
			SlForwardQueueInsert(position++, pp->key.topic_id, pp->key.partition,
								 batch->record_count, (bytea *) batch->data.data);
			pfree(batch->data.data);
			batch->data.data = NULL;
		}
	}
}

/*
 * Append every partition's buffered batches; runs at pre-commit.
 *
 * Every batch records when it was appended (now_ms): that is the time a
 * LogAppendTime topic stamps on it, the time the Produce response reports,
 * and the time retention goes by for a batch whose records carry no
 * timestamp.  One column per stored row, written with the row, costs the
 * append path nothing more.
 */
static void
append_pending(void)
{
	HASH_SEQ_STATUS status;
	PendingPartition *pp;
	PendingPartition **sorted;
	int			n = 0;
	int64		now_ms = SlTimestampToKafka(GetCurrentTimestamp());

	sorted = palloc(sizeof(PendingPartition *) * hash_get_num_entries(pending));
	hash_seq_init(&status, pending);
	while ((pp = hash_seq_search(&status)) != NULL)
	{
		close_batch(pp);
		if (pp->batches != NIL)
			sorted[n++] = pp;
	}
	/* Reserve in one global order, so that queued committers cannot deadlock */
	qsort(sorted, n, sizeof(PendingPartition *), compare_pending);

	PushActiveSnapshot(GetTransactionSnapshot());
	queue_forwarded(sorted, n);
	for (int i = 0; i < n; i++)
	{
		ListCell   *lc;
		int64		count = 0;
		int64		offset;
		Oid			relid;
		Relation	rel;
		Relation	index;
		IndexInfo  *index_info;
		SlKeyIndexWriter key_index;
		Oid			key_index_relid;
		int64		noted_producer;
		uint64		bytes = 0;
		SlSegmentPages *pages;

		pp = sorted[i];
		if (pp->forward)
			continue;
		foreach(lc, pp->batches)
			count += ((PendingBatch *) lfirst(lc))->record_count;

		offset = SlPartitionStateReserve(pp->state, count, &relid);
		remember_reservation(pp->state, offset);

		rel = table_open(relid, RowExclusiveLock);
		index = index_open(SlSegmentIndexOid(rel), RowExclusiveLock);
		index_info = BuildIndexInfo(index);
		/* Pieces that fill a page are written as whole pages */
		pages = SlSegmentPagesBegin(rel, index, index_info);
		/*
		 * Looked up now, not when the records were buffered: key.index
		 * turned on or off later in this transaction counts
		 */
		key_index_relid = SlKeyIndexRelid(pp->key.topic_id);
		if (OidIsValid(key_index_relid))
			SlKeyIndexOpen(&key_index, key_index_relid);
		noted_producer = SL_NO_PRODUCER_ID;
		foreach(lc, pp->batches)
		{
			PendingBatch *batch = lfirst(lc);

			load_batch(batch);

			/*
			 * The CRC does not cover the base offset: a producer's batch
			 * keeps its CRC unless its maxTimestamp was corrected or
			 * LogAppendTime rewrites it.
			 */
			if (batch->client_crc && !pp->log_append_time)
				SlStoreInt64(batch_bytes(batch) + SL_BATCH_OFFSET_BASE_OFFSET, offset);
			else
				SlBatchSeal(batch_bytes(batch), batch_len(batch), offset,
							pp->log_append_time ? now_ms : -1);
			/*
			 * The leader epoch it is appended in, like the base offset
			 * outside the CRC: what OffsetForLeaderEpoch and a follower's
			 * truncation go by (KIP-101), whatever the producer sent there
			 */
			SlStoreInt32(batch_bytes(batch) + SL_BATCH_OFFSET_LEADER_EPOCH,
						 pp->leader_epoch);
			if (pp->log_append_time)
			{
				batch->min_timestamp = now_ms;
				batch->max_timestamp = now_ms;
				if (batch->log_append_time_out)
					*batch->log_append_time_out = now_ms;
			}
			insert_batch(rel, index, index_info, pages, batch, offset, now_ms);
			/* In this transaction: exactly as visible as the records */
			if (OidIsValid(key_index_relid))
				SlKeyIndexAddBatch(&key_index, pp->key.partition,
								   batch_bytes(batch), batch_len(batch));
			if (batch->base_offset_out)
				*batch->base_offset_out = offset;
			/*
			 * A transactional batch opens its producer's transaction here
			 * (transactions.h), once per producer and partition is enough
			 */
			if ((SlLoadInt16(batch_bytes(batch) + SL_BATCH_OFFSET_ATTRIBUTES) &
				 SL_BATCH_ATTR_TRANSACTIONAL) && batch->producer_id >= 0 &&
				batch->producer_id != noted_producer)
			{
				SlTxnNoteAppend(pp->key.topic_id, pp->key.partition, batch->producer_id,
								batch->producer_epoch, offset);
				noted_producer = batch->producer_id;
			}
			offset += batch->record_count;
			bytes += batch_len(batch);
			/* Written: its memory can go, which bounds a spilled commit's */
			if (!batch->borrowed)
				pfree(batch->data.data);
			batch->data.data = NULL;
		}
		SlSegmentPagesEnd(pages);
		if (OidIsValid(key_index_relid))
			SlKeyIndexClose(&key_index);
		index_close(index, RowExclusiveLock);
		table_close(rel, RowExclusiveLock);
		/* by the door of this process: the broker's are Kafka's */
		{
			SlMetricsPartition mkey = {pp->key.database, pp->key.catalog,
			pp->key.topic_id, pp->key.partition};

			SlMetricsCountIn(&mkey, SlMetricsProcessDoor(), bytes, (uint64) count);
			if (SlMetricsProcessDoor() == SL_DOOR_SQL)
				SlMetricsCountProduce(&mkey, SL_DOOR_SQL, false);
		}
	}
	PopActiveSnapshot();
	pfree(sorted);
	/* Read back in full: closing it now spares a leak warning at commit */
	SlSpillClose(&spill);
}

int64
SlLogAppendControlBatch(const SlTopic *topic, int32 partition, const uint8 *data,
						size_t len, int64 producer_id, int16 producer_epoch,
						int64 timestamp)
{
	SlPartitionKey key = SlMakePartitionKey(topic->topic_id, partition);
	SlPartitionState *state = SlPartitionStateGet(key);
	PendingBatch batch;
	int64		now_ms = SlTimestampToKafka(GetCurrentTimestamp());
	int64		offset;
	Oid			relid;
	Relation	rel;
	Relation	index;
	IndexInfo  *index_info;
	int32		leader_epoch = topic->partitions != NULL ?
		SlTopicPartitionLeadership(topic, partition)->leader_epoch : 0;

	memset(&batch, 0, sizeof(batch));
	batch_data_init(&batch);
	appendBinaryStringInfo(&batch.data, (const char *) data, len);
	batch.len = len;
	batch.record_count = 1;
	batch.min_timestamp = timestamp;
	batch.max_timestamp = timestamp;
	batch.producer_id = producer_id;
	batch.producer_epoch = producer_epoch;
	batch.base_sequence = SL_NO_SEQUENCE;

	/*
	 * Reserved now: the caller wants the offset.  Remembered first, so that
	 * an error below still releases it at abort.
	 */
	offset = SlPartitionStateReserve(state, 1, &relid);
	remember_reservation(state, offset);

	SlBatchSeal(batch_bytes(&batch), len, offset,
				topic->config.log_append_time ? now_ms : -1);
	SlStoreInt32(batch_bytes(&batch) + SL_BATCH_OFFSET_LEADER_EPOCH, leader_epoch);
	if (topic->config.log_append_time)
	{
		batch.min_timestamp = now_ms;
		batch.max_timestamp = now_ms;
	}
	rel = table_open(relid, RowExclusiveLock);
	index = index_open(SlSegmentIndexOid(rel), RowExclusiveLock);
	index_info = BuildIndexInfo(index);
	/* Never in the key index: a marker's key is no record's */
	insert_batch(rel, index, index_info, NULL, &batch, offset, now_ms);
	index_close(index, RowExclusiveLock);
	table_close(rel, RowExclusiveLock);
	pfree(batch.data.data);
	return offset;
}

/*
 * Append at PRE_COMMIT; at the end, release the reservations, which moves
 * the high watermark (xact.c calls this after producers.c, before topics.c)
 */
void
SlLogAppendXactEvent(XactEvent event)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (pending != NULL)
				append_pending();
			break;
		case XACT_EVENT_PRE_PREPARE:
			/* A marker (SlLogAppendControlBatch) holds its offset too */
			if (pending_has_records() || nreservations > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that produced to a streamlog topic"),
						 errdetail("Offsets are assigned at commit, which PREPARE TRANSACTION splits in two.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			release_reservations();
			SlForwardQueueEndXact(event == XACT_EVENT_COMMIT ||
								  event == XACT_EVENT_PARALLEL_COMMIT);
			pending_reset();
			break;
		default:
			break;
	}
}

void
SlLogAppendSubXactAbort(SubTransactionId subid)
{
	HASH_SEQ_STATUS status;
	PendingPartition *pp;

	/* Locks taken in the subtransaction are gone: callers must retake them */
	sl_subxact_aborts++;
	if (pending == NULL)
		return;
	hash_seq_init(&status, pending);
	while ((pp = hash_seq_search(&status)) != NULL)
	{
		ListCell   *lc;

		/* Marks of subid or later, existing now, belong to subid's subtree */
		foreach(lc, pp->marks)
		{
			BufferMark *mark = lfirst(lc);

			if (mark->subid >= subid)
			{
				forget_batches(pp, mark->nbatches);
				pp->marks = list_truncate(pp->marks, foreach_current_index(lc));
				SlBatchBuilderReset(&pp->builder);
				break;
			}
		}
	}
}
