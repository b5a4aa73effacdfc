/*-------------------------------------------------------------------------
 * replica_append.c
 *	  A follower appends the batches its leader stored, at the leader's
 *	  offsets (SlReplicaAppend, replica_log.h).
 *
 * A follower never assigns offsets: a batch is written only if it starts
 * exactly at the log's next offset, checked and reserved in one step under
 * the partition's lock in shared memory (SlPartitionStateReserveAt), so
 * that two appliers racing for one partition cannot both write there.  The
 * reservation is released at the end of the transaction like a produce's
 * (xact.c); one whose transaction or subtransaction aborts is taken back
 * if nothing was reserved after it, so that an apply that failed leaves
 * the log's end where the stored batches end and the retry appends at the
 * same offsets.
 *
 * Once this node leads the partition, a follower append under an older
 * leadership is refused (SL_REPLICA_FENCED), and the leader's door waits
 * until those started before have ended (SlPartitionLeaderReady): the
 * producer sequences they carry must be known before the new leader checks
 * a retry against them, or it would store the retry a second time.
 *
 * The batch is checked as a produce's would be (magic 2, CRC32C, length,
 * offsets, records decodable) and stored as it came: the same bytes at the
 * same offsets on every replica (P9).
 *
 * IDENTIFICATION
 *	  src/storage/replica_append.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "nodes/execnodes.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/control_records.h"
#include "streamlog/protocol/records.h"
#include "streamlog/storage/internal/catalog.h"
#include "streamlog/storage/internal/key_index.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/producers.h"
#include "streamlog/storage/internal/segment_rows.h"
#include "streamlog/storage/internal/txn.h"
#include "streamlog/storage/internal/xact.h"
#include "streamlog/storage/replica_log.h"
#include "streamlog/storage/storage.h"

/* Largest decompressed batch the check walks through */
#define REPLICA_MAX_DECOMPRESSED (MaxAllocSize - 1)

/* A reservation of this transaction, released at its end */
typedef struct ReplicaReservation
{
	SlPartitionState *state;
	int64		start;
	int64		end;
	SubTransactionId subid;
} ReplicaReservation;

static List *reservations = NIL;	/* of ReplicaReservation, in TopTransactionContext */

/* What a batch's rows say of it besides its bytes */
typedef struct BatchColumns
{
	int32		offsets;		/* lastOffsetDelta + 1 */
	int64		min_timestamp;	/* of its records, -1 if none has one */
	int64		max_timestamp;
	int64		producer_id;
	int16		producer_epoch;
	int32		base_sequence;
	int16		attributes;
	int16		control_type;	/* a marker's (control_records.h), else -1 */
	int32		coordinator_epoch;	/* a marker's, else -1 */
} BatchColumns;

/*
 * Check a batch as a produce's would be and gather its columns; NULL if it
 * is valid, else what is wrong.
 */
static const char *
check_batch(const SlReplicaBatch *batch, BatchColumns *cols)
{
	SlRecordIter it;
	SlRecord	rec;
	const char *err;
	int32		nrecords = 0;

	if (batch->base_offset < 0 || batch->last_offset < batch->base_offset)
		return "invalid offsets";
	err = SlRecordIterInit(&it, batch->data, batch->len, true, REPLICA_MAX_DECOMPRESSED);
	if (err)
		return err;
	if (SlBatchSize(&it.hdr) != batch->len)
		err = "its length differs from its header's";
	else if (it.hdr.base_offset != batch->base_offset)
		err = "its base offset differs from its header's";
	else if (it.hdr.last_offset_delta < 0 ||
			 (int64) it.hdr.last_offset_delta != batch->last_offset - batch->base_offset)
		err = "its last offset differs from its header's";
	else if (it.hdr.partition_leader_epoch != batch->leader_epoch)
		err = "its leader epoch differs from its header's";
	if (err)
	{
		SlRecordIterFree(&it);
		return err;
	}
	cols->offsets = it.hdr.last_offset_delta + 1;
	cols->producer_id = it.hdr.producer_id;
	cols->producer_epoch = it.hdr.producer_epoch;
	cols->base_sequence = it.hdr.base_sequence;
	cols->attributes = it.hdr.attributes;
	cols->control_type = -1;
	cols->coordinator_epoch = -1;
	cols->min_timestamp = -1;
	cols->max_timestamp = -1;
	while (SlRecordIterNext(&it, &rec))
	{
		nrecords++;
		if (rec.offset > batch->last_offset)
		{
			SlRecordIterFree(&it);
			return "a record's offset is past the batch's last offset";
		}
		/* A marker the leader wrote: which end of a transaction */
		if ((it.hdr.attributes & SL_BATCH_ATTR_CONTROL) && nrecords == 1 &&
			!SlControlKeyDecode(rec.key, rec.key_len, &cols->control_type))
			cols->control_type = -1;
		if ((it.hdr.attributes & SL_BATCH_ATTR_CONTROL) && nrecords == 1 &&
			!SlControlValueDecode(rec.value, rec.value_len, &cols->coordinator_epoch))
			cols->coordinator_epoch = -1;
		if (rec.timestamp >= 0)
		{
			cols->min_timestamp = cols->min_timestamp < 0 ? rec.timestamp :
				Min(cols->min_timestamp, rec.timestamp);
			cols->max_timestamp = Max(cols->max_timestamp, rec.timestamp);
		}
	}
	if (it.error)
		err = it.error;
	else if (nrecords != it.hdr.record_count)
		err = "its record count differs from its records";
	/* As the leader stored it: LogAppendTime batches carry that time */
	if ((it.hdr.attributes & SL_BATCH_ATTR_LOG_APPEND_TIME) != 0)
		cols->min_timestamp = cols->max_timestamp = it.hdr.max_timestamp;
	SlRecordIterFree(&it);
	return err;
}

/* Write the batch to segment rel (segment_rows.h) */
static void
insert_rows(Relation rel, const SlReplicaBatch *batch, const BatchColumns *cols)
{
	Relation	index = index_open(SlSegmentIndexOid(rel), RowExclusiveLock);
	SlSegmentRow row;

	row.base_offset = batch->base_offset;
	row.last_offset = batch->last_offset;
	row.min_timestamp = cols->min_timestamp;
	row.max_timestamp = cols->max_timestamp;
	row.append_time = batch->append_time;
	row.record_count = cols->offsets;
	row.producer_id = cols->producer_id;
	row.producer_epoch = cols->producer_epoch;
	row.base_sequence = cols->base_sequence;
	SlSegmentInsertBatch(rel, index, BuildIndexInfo(index), &row, batch->data, batch->len);
	index_close(index, RowExclusiveLock);
}

SlReplicaAppendResult
SlReplicaAppend(const SlTopic *topic, int32 partition, const SlReplicaBatch *batch)
{
	SlPartitionKey key = SlMakePartitionKey(topic->topic_id, partition);
	SlPartitionState *state;
	BatchColumns cols;
	ReplicaReservation *r;
	const char *err;
	int64		next_offset;
	int32		followed_epoch;
	bool		fenced;
	int64	   *base_offset;	/* where producers.c finds the batch */
	Oid			relid;
	Oid			key_index_relid;
	Relation	rel;

	err = check_batch(batch, &cols);
	if (err)
	{
		ereport(LOG,
				(errmsg("replicated batch at offset " INT64_FORMAT " of topic \"%s\" partition %d is invalid: %s",
						batch->base_offset, topic->name, partition, err)));
		return SL_REPLICA_INVALID;
	}

	/* The leadership the caller follows, read with topic */
	followed_epoch = topic->partitions != NULL ?
		SlTopicPartitionLeadership(topic, partition)->leader_epoch : -1;
	state = SlPartitionStateGet(key);
	r = reservations != NIL ? llast(reservations) : NULL;
	if (r != NULL && r->state == state && r->end == batch->base_offset &&
		r->subid == GetCurrentSubTransactionId() &&
		SlPartitionStateExtend(state, r->start, r->end, cols.offsets, followed_epoch, &relid))
	{
		/* The next batch of this transaction's run: one in-flight slot */
		r->end = batch->last_offset + 1;
	}
	else
	{
		if (!SlPartitionStateReserveAt(state, batch->base_offset, cols.offsets, followed_epoch,
									   &relid, &next_offset, &fenced))
		{
			if (fenced)
				return SL_REPLICA_FENCED;
			return batch->base_offset < next_offset ? SL_REPLICA_HAVE : SL_REPLICA_GAP;
		}

		r = MemoryContextAlloc(TopTransactionContext, sizeof(ReplicaReservation));
		r->state = state;
		r->start = batch->base_offset;
		r->end = batch->last_offset + 1;
		r->subid = GetCurrentSubTransactionId();
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);

			reservations = lappend(reservations, r);
			MemoryContextSwitchTo(oldcxt);
		}
	}

	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(relid, RowExclusiveLock);
	insert_rows(rel, batch, &cols);
	table_close(rel, RowExclusiveLock);

	key_index_relid = SlKeyIndexRelid(topic->topic_id);
	if (OidIsValid(key_index_relid))
	{
		SlKeyIndexWriter writer;

		SlKeyIndexOpen(&writer, key_index_relid);
		SlKeyIndexAddBatch(&writer, partition, batch->data, batch->len);
		SlKeyIndexClose(&writer);
	}
	/*
	 * The transaction state follows the log as on the leader
	 * (transactions.h): so that this node's readers, and this node once
	 * leader, see the same open and aborted transactions
	 */
	if ((cols.attributes & SL_BATCH_ATTR_TRANSACTIONAL) && cols.producer_id >= 0)
	{
		if (!(cols.attributes & SL_BATCH_ATTR_CONTROL))
			SlTxnNoteAppend(topic->topic_id, partition, cols.producer_id,
							cols.producer_epoch, batch->base_offset);
		else if (cols.control_type >= 0)
			SlTxnNoteMarker(topic->topic_id, partition, cols.producer_id,
							cols.control_type == SL_CONTROL_TYPE_COMMIT,
							batch->base_offset);
		else
			ereport(LOG,
					(errmsg("replicated transaction marker at offset " INT64_FORMAT " of topic \"%s\" partition %d has no valid control record; its transaction stays open here",
							batch->base_offset, topic->name, partition)));
	}
	PopActiveSnapshot();

	/*
	 * So that this node, once leader, deduplicates retries as its leader
	 * did; a marker has no sequence
	 */
	if (cols.producer_id >= 0 && !(cols.attributes & SL_BATCH_ATTR_CONTROL))
	{
		base_offset = MemoryContextAlloc(TopTransactionContext, sizeof(int64));
		*base_offset = batch->base_offset;
		SlProducerNoteBatch(key, cols.producer_id, cols.producer_epoch,
							cols.base_sequence,
							cols.base_sequence + (int32) (cols.offsets - 1),
							base_offset, cols.max_timestamp);
	}
	else if (cols.producer_id >= 0)
		SlProducerNoteMarker(key, cols.producer_id, cols.producer_epoch,
							 cols.coordinator_epoch, cols.max_timestamp);
	return SL_REPLICA_APPENDED;
}

bool
SlPartitionLeaderReady(const SlTopic *topic, int32 partition)
{
	const SlPartitionLeadership *l;

	if (topic->partitions == NULL)
		return true;
	l = SlTopicPartitionLeadership(topic, partition);
	if (l->leader != sl_node_id)
		return true;			/* not ours to answer: the caller refuses it */
	return SlPartitionStateLeadAt(SlPartitionStateGet(SlMakePartitionKey(topic->topic_id,
																		 partition)),
								  l->leader_epoch);
}

/* Take back (or, if others follow it, give up) the reservations of aborted work */
static void
unreserve(ReplicaReservation *r)
{
	if (!SlPartitionStateUnreserve(r->state, r->start, r->end))
	{
		ereport(WARNING,
				(errmsg("offsets " INT64_FORMAT " to " INT64_FORMAT " of a replicated batch were reserved after an aborted append",
						r->start, r->end - 1),
				 errdetail("The partition's next offset stays past them until the server restarts.")));
		SlPartitionStateRelease(r->state, r->start);
	}
}

void
SlReplicaAppendXactEvent(XactEvent event)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			foreach(lc, reservations)
			{
				ReplicaReservation *r = lfirst(lc);

				SlPartitionStateRelease(r->state, r->start);
			}
			reservations = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* Newest first: each is then the last one of its partition */
			for (int i = list_length(reservations) - 1; i >= 0; i--)
				unreserve(list_nth(reservations, i));
			reservations = NIL;
			break;
		default:
			break;
	}
}

void
SlReplicaAppendSubXactAbort(SubTransactionId subid)
{
	int			keep = list_length(reservations);

	/* Reservations of subid and its children are the newest ones */
	for (int i = list_length(reservations) - 1; i >= 0; i--)
	{
		ReplicaReservation *r = list_nth(reservations, i);

		if (r->subid < subid)
			break;
		unreserve(r);
		keep = i;
	}
	reservations = keep == 0 ? NIL : list_truncate(reservations, keep);
}
