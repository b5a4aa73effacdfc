/*
 * Reading a partition: stored batches in offset order, decoded into records.
 *
 * A scan reads the high watermark first, then lists the segments, and only
 * then takes its snapshot: every offset below the HWM it saw is visible to
 * that snapshot (a commit releases its reservation only after it is
 * visible to new snapshots), and so is every segment table the list names.
 * That second point matters under compaction, which swaps the catalogue
 * rows of segments to new tables in the transaction that fills them: a
 * list naming a new table read with an older snapshot would see it empty.
 * A list taken before the swap names the old tables, which keep their rows
 * until a later cleaner pass drops them, and it cannot drop one a scan has
 * open.  If it dropped one the scan was about to open (or retention
 * dropped it), the scan lists the segments again, with a new snapshot
 * taken after that list, and goes on from the next offset it wants: so for
 * every offset a scan sees either the old segment or the new one, and it
 * never skips a record that compaction kept (P2).  Records below a new log
 * start offset were removed by retention: the scan goes on from there.
 *
 * The scan never returns offsets at or past the HWM it read.  Segment rows
 * are filtered on their offset and timestamp columns before any batch is
 * fetched or decoded.
 *
 * Transactions (transactions.h): a read_committed scan stops at the last
 * stable offset instead, read after the HWM (so never above it).  Records
 * (SlLogScanNext) never include control batches, the transaction markers;
 * a read_committed scan also skips the batches of aborted transactions,
 * by the partition's aborted-transaction index over the range it reads,
 * judged from the batch header before the batch is decoded.  Stored
 * batches (SlLogScanPeekBatch, for Fetch) come as they are: Kafka clients
 * filter them themselves.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "streamlog/storage/internal/batch_cache.h"
#include "streamlog/storage/internal/catalog.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/segments.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/transactions.h"
#include "streamlog/storage/txn_filter.h"

/* Decompressed batches may not exceed this */
#define SL_MAX_DECOMPRESSED_BATCH (MaxAllocSize - 1)

struct SlLogScan
{
	SlTopic		topic;
	int32		partition;
	SlLogScanBounds bounds;
	bool		time_bounded;	/* records without a timestamp never match */
	int64		high_watermark;
	int64		read_limit;		/* the HWM, or the LSO if read_committed */
	SlAbortedFilter aborted;	/* which batches records skip */
	int64		log_start;
	SlPartitionKey key;
	int64		next_wanted;	/* offsets below it were passed over */
	Snapshot	snapshot;
	SlSegment  *segments;
	int			nsegments;
	int			next_segment;	/* index of the segment to open next */

	/* the open segment */
	Relation	rel;
	Relation	index;
	IndexScanDesc iscan;
	TupleTableSlot *slot;

	/* the row that begins the batch found last (next_batch_row) */
	const uint8 *first_piece;	/* in scan->slot */
	size_t		first_len;
	ItemPointerData first_tid;	/* of its row */
	size_t		batch_len;		/* of the whole batch */
	int64		batch_last_offset;
	int64		batch_append_time;
	bool		have_batch;		/* a batch was found, not yet passed */
	bool		pieces_unread;	/* its further pieces are still ahead */

	/* the batch being decoded */
	MemoryContext batch_context;
	bool		in_batch;
	int64		batch_base_offset;
	const uint8 *batch_data;	/* the whole batch, maybe the cached one */
	const uint8 *returned_pos;	/* after the last record returned, */
	int64		returned_after; /* its offset (-1: none yet) */
	int32		returned_remaining;
	SlRecordIter iter;
	bool		done;
};

static void
close_segment(SlLogScan *scan)
{
	if (scan->iscan)
	{
		index_endscan(scan->iscan);
		ExecDropSingleTupleTableSlot(scan->slot);
		index_close(scan->index, AccessShareLock);
		relation_close(scan->rel, AccessShareLock);
		scan->iscan = NULL;
	}
}

/*
 * List the segments, then take the snapshot to read them with (see the
 * file header for why in that order), and find the last segment that
 * begins at or before from.  Returns the log start offset.
 */
static int64
list_segments(SlLogScan *scan, int64 from)
{
	int64		log_start;

	if (scan->segments)
		pfree(scan->segments);
	if (scan->snapshot)
		UnregisterSnapshot(scan->snapshot);
	scan->segments = SlSegmentList(scan->key, &scan->nsegments, &log_start);
	scan->snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan->next_segment = 0;
	for (int i = 0; i < scan->nsegments; i++)
		if (scan->segments[i].base_offset >= 0 &&
			scan->segments[i].base_offset <= from)
			scan->next_segment = i;
	return log_start;
}

/* Open the next segment that can hold wanted records; false if none */
static bool
open_next_segment(SlLogScan *scan)
{
	close_segment(scan);
	while (scan->next_segment < scan->nsegments)
	{
		SlSegment  *segment = &scan->segments[scan->next_segment++];
		ScanKeyData key;

		/* A closed segment whose newest record is too old (see SlSegment) */
		if (segment->max_timestamp >= 0 && segment->max_timestamp < scan->bounds.from_ts)
			continue;
		if (segment->base_offset > scan->bounds.to_offset ||
			segment->base_offset >= scan->read_limit)
			return false;

		/*
		 * The cleaner dropped it since we listed the segments (compaction
		 * replaced it, or retention removed it): list them again and go on
		 * from the next offset we want, or from the new log start.
		 */
		scan->rel = try_relation_open(segment->relid, AccessShareLock);
		if (scan->rel == NULL)
		{
			Oid			gone = segment->relid;
			int64		log_start = list_segments(scan, scan->next_wanted);

			if (log_start > scan->next_wanted)
			{
				scan->next_wanted = log_start;
				(void) list_segments(scan, scan->next_wanted);
			}
			/* A catalogue row naming a table that is gone: pass it over */
			if (scan->next_segment < scan->nsegments &&
				scan->segments[scan->next_segment].relid == gone)
				scan->next_segment++;
			continue;
		}
		scan->index = index_open(SlSegmentIndexOid(scan->rel), AccessShareLock);
		scan->slot = table_slot_create(scan->rel, NULL);
		ScanKeyInit(&key, 1, BTGreaterEqualStrategyNumber, F_INT8GE,
					Int64GetDatum(scan->next_wanted));
		scan->iscan = index_beginscan(scan->rel, scan->index, scan->snapshot, 1, 0);
		index_rescan(scan->iscan, &key, 1, NULL, 0);
		return true;
	}
	return false;
}

static void
corrupt_batch(SlLogScan *scan, const char *error)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("corrupt record batch at offset %lld of partition %d of topic \"%s\": %s",
					(long long) scan->batch_base_offset, scan->partition,
					scan->topic.name, error)));
}

/*
 * Move to the next row that begins a stored batch (piece 0, see catalog.h)
 * and can hold wanted records; note the batch's size from its header.
 */
static bool
next_batch_row(SlLogScan *scan)
{
	/* The batch found last is passed: no offset below its end is wanted */
	if (scan->have_batch)
	{
		scan->next_wanted = Max(scan->next_wanted, scan->batch_last_offset + 1);
		scan->have_batch = false;

		/*
		 * Its further pieces were not read (the batch came from the cache,
		 * or was passed over): find the next batch through the index
		 * rather than fetch each of them to pass it over.  One descent of
		 * the index against a heap fetch per piece, some 30 for a 256 kB
		 * batch.
		 */
		if (scan->pieces_unread && scan->iscan != NULL)
		{
			ScanKeyData key;

			ScanKeyInit(&key, 1, BTGreaterEqualStrategyNumber, F_INT8GE,
						Int64GetDatum(scan->next_wanted));
			index_rescan(scan->iscan, &key, 1, NULL, 0);
		}
		scan->pieces_unread = false;
	}
	for (;;)
	{
		Datum	   *values;
		int64		base_offset;
		bytea	   *piece;

		if (scan->iscan == NULL || !index_getnext_slot(scan->iscan, ForwardScanDirection, scan->slot))
		{
			if (!open_next_segment(scan))
				return false;
			continue;
		}
		slot_getallattrs(scan->slot);
		values = scan->slot->tts_values;
		if (DatumGetInt32(values[Anum_segment_chunk - 1]) != 0)
			continue;			/* the rest of a batch passed over */
		base_offset = DatumGetInt64(values[Anum_segment_base_offset - 1]);
		if (base_offset >= scan->read_limit || base_offset > scan->bounds.to_offset)
			return false;
		if (DatumGetInt64(values[Anum_segment_max_timestamp - 1]) < scan->bounds.from_ts ||
			DatumGetInt64(values[Anum_segment_min_timestamp - 1]) > scan->bounds.to_ts)
			continue;

		scan->batch_base_offset = base_offset;
		scan->batch_last_offset = DatumGetInt64(values[Anum_segment_last_offset - 1]);
		scan->batch_append_time = DatumGetInt64(values[Anum_segment_append_time - 1]);
		scan->have_batch = true;
		scan->first_tid = scan->slot->tts_tid;
		/* STORAGE PLAIN: the piece is in the row, never compressed */
		piece = DatumGetByteaPP(values[Anum_segment_batch - 1]);
		scan->first_piece = (const uint8 *) VARDATA_ANY(piece);
		scan->first_len = VARSIZE_ANY_EXHDR(piece);
		if (scan->first_len < SL_BATCH_HEADER_SIZE)
			corrupt_batch(scan, "stored batch is shorter than a batch header");
		scan->batch_len = SL_BATCH_OFFSET_LENGTH + sizeof(int32) +
			(size_t) (uint32) SlLoadInt32(scan->first_piece + SL_BATCH_OFFSET_LENGTH);
		if (scan->batch_len < scan->first_len || scan->batch_len > MaxAllocSize)
			corrupt_batch(scan, "stored batch length is out of range");
		scan->pieces_unread = scan->batch_len > scan->first_len;
		return true;
	}
}

/*
 * Copy the batch next_batch_row found to dst, reading the rows of its
 * further pieces.  The first piece is copied first: reading the next row
 * replaces it in the slot.
 */
static void
copy_batch(SlLogScan *scan, uint8 *dst)
{
	size_t		pos = scan->first_len;

	memcpy(dst, scan->first_piece, scan->first_len);
	scan->first_piece = NULL;
	scan->pieces_unread = false;
	for (int32 chunk = 1; pos < scan->batch_len; chunk++)
	{
		Datum	   *values;
		bytea	   *piece;
		size_t		len;

		if (!index_getnext_slot(scan->iscan, ForwardScanDirection, scan->slot))
			corrupt_batch(scan, psprintf("piece %d of the stored batch is missing", chunk));
		slot_getallattrs(scan->slot);
		values = scan->slot->tts_values;
		if (DatumGetInt64(values[Anum_segment_last_offset - 1]) != scan->batch_last_offset ||
			DatumGetInt32(values[Anum_segment_chunk - 1]) != chunk)
			corrupt_batch(scan, psprintf("piece %d of the stored batch is missing", chunk));
		piece = DatumGetByteaPP(values[Anum_segment_batch - 1]);
		len = VARSIZE_ANY_EXHDR(piece);
		if (len > scan->batch_len - pos)
			corrupt_batch(scan, "stored pieces are longer than the batch");
		memcpy(dst + pos, VARDATA_ANY(piece), len);
		pos += len;
	}
}

/* Move to the next stored batch that can hold wanted records, to decode it */
static bool
next_batch(SlLogScan *scan)
{
	const uint8 *data;
	const char *error;
	MemoryContext oldcxt;
	bool		verify_crc = true;
	bool		cached = false;
	SlBatchCacheResume resume;

	do
	{
		if (!next_batch_row(scan))
			return false;
	} while (SlAbortedFilterSkips(&scan->aborted,
								  SlLoadInt16(scan->first_piece + SL_BATCH_OFFSET_ATTRIBUTES),
								  SlLoadInt64(scan->first_piece + SL_BATCH_OFFSET_PRODUCER_ID),
								  scan->batch_base_offset));
	MemoryContextReset(scan->batch_context);
	oldcxt = MemoryContextSwitchTo(scan->batch_context);
	resume.after = -1;
	if (scan->batch_len == scan->first_len)
		data = scan->first_piece;	/* in the slot, until the next row is read */
	else
	{
		SlBatchCacheKey key;

		key.relid = RelationGetRelid(scan->rel);
		key.tid = scan->first_tid;
		key.base_offset = scan->batch_base_offset;
		key.last_offset = scan->batch_last_offset;
		key.len = scan->batch_len;
		/* Put together and checked by an earlier scan (batch_cache.h) */
		data = SlBatchCacheLookup(&key, scan->first_piece, &resume,
								  scan->batch_context);
		if (data != NULL)
			verify_crc = false;
		else
		{
			uint8	   *whole = SlBatchCacheFill(&key, scan->batch_context);

			cached = whole != NULL;
			if (whole == NULL)
				whole = palloc(scan->batch_len);
			copy_batch(scan, whole);
			data = whole;
		}
	}
	error = SlRecordIterInit(&scan->iter, data, scan->batch_len, verify_crc,
							 SL_MAX_DECOMPRESSED_BATCH);
	MemoryContextSwitchTo(oldcxt);
	if (error == sl_err_decompressed_too_large)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("record batch at offset %lld of partition %d of topic \"%s\" decompresses to more than %zu bytes",
						(long long) scan->batch_base_offset, scan->partition,
						scan->topic.name, (size_t) SL_MAX_DECOMPRESSED_BATCH),
				 errdetail("That is the most PostgreSQL can allocate at once, and no setting raises it."),
				 errhint("Kafka clients can fetch the batch: Fetch returns stored batches without decompressing them.")));
	if (error)
		corrupt_batch(scan, error);
	if (cached)
		SlBatchCacheFilled();
	if (scan->iter.hdr.base_offset != scan->batch_base_offset)
		corrupt_batch(scan, "stored base offset differs from the row's");
	/*
	 * An earlier scan stopped before the offset this one wants: go on from
	 * there rather than decode the records before it again (uncompressed
	 * only: the iterator then reads the batch's own bytes)
	 */
	if (resume.after >= 0 && resume.after < scan->next_wanted &&
		scan->iter.decompressed.data == NULL)
	{
		scan->iter.pos = data + resume.pos;
		scan->iter.remaining = resume.remaining;
	}
	scan->batch_data = data;
	scan->returned_after = -1;
	scan->in_batch = true;
	return true;
}

void
SlLogScanBoundsInit(SlLogScanBounds *bounds)
{
	bounds->from_offset = 0;
	bounds->to_offset = PG_INT64_MAX;
	bounds->from_ts = PG_INT64_MIN;
	bounds->to_ts = PG_INT64_MAX;
	bounds->error_below_start = false;
	bounds->read_committed = false;
}

SlLogScan *
SlLogScanBegin(const SlTopic *topic, int32 partition, const SlLogScanBounds *bounds)
{
	SlLogScan  *scan = palloc0(sizeof(SlLogScan));
	SlPartitionKey key = SlMakePartitionKey(topic->topic_id, partition);
	SlPartitionSnapshot state;
	int64		log_start;

	scan->topic = *topic;
	scan->partition = partition;
	scan->bounds = *bounds;
	scan->time_bounded = bounds->from_ts != PG_INT64_MIN || bounds->to_ts != PG_INT64_MAX;

	/* The HWM first, then the list, then the snapshot: see the file header */
	SlPartitionStateRead(SlPartitionStateGet(key), &state);
	scan->high_watermark = state.high_watermark;
	scan->key = key;
	/*
	 * A read_committed scan stops at the LSO, read after the HWM, and skips
	 * the aborted transactions it finds below it.  Both are read before the
	 * segments are listed and the snapshot taken, as the HWM is: nothing
	 * runs between the snapshot and the scan (see the file header).
	 */
	scan->read_limit = scan->high_watermark;
	SlAbortedFilterInit(&scan->aborted, NULL, 0);
	if (bounds->read_committed)
	{
		SlAbortedTxn *txns;
		int			ntxns;

		scan->read_limit = Min(scan->read_limit,
							   SlPartitionLastStableOffset(topic->topic_id, partition));
		txns = SlTxnAbortedInRange(topic->topic_id, partition, Max(bounds->from_offset, 0),
								   scan->read_limit, &ntxns);
		SlAbortedFilterInit(&scan->aborted, txns, ntxns);
	}
	log_start = list_segments(scan, Max(bounds->from_offset, 0));
	log_start = Max(log_start, state.log_start_offset);
	scan->log_start = log_start;

	if (scan->bounds.from_offset < log_start)
	{
		if (bounds->error_below_start)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("offset %lld is below the log start offset %lld of partition %d of topic \"%s\"",
							(long long) bounds->from_offset, (long long) log_start,
							partition, topic->name),
					 errdetail("Records before offset %lld were removed, by retention or by delete_records().",
							   (long long) log_start),
					 errhint("Read from offset %lld or later.", (long long) log_start)));
		scan->bounds.from_offset = log_start;
	}
	/* between the high watermark and the log end: nothing to read yet */
	if (bounds->error_below_start && scan->bounds.from_offset > state.log_end)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset %lld is past the end of partition %d of topic \"%s\"",
						(long long) bounds->from_offset, partition, topic->name),
				 errdetail("The high watermark is %lld.", (long long) scan->high_watermark)));

	/* Start at the last segment that begins at or before from_offset */
	scan->next_wanted = scan->bounds.from_offset;
	scan->next_segment = 0;
	for (int i = 0; i < scan->nsegments; i++)
		if (scan->segments[i].base_offset >= 0 &&
			scan->segments[i].base_offset <= scan->bounds.from_offset)
			scan->next_segment = i;

	scan->batch_context = AllocSetContextCreate(CurrentMemoryContext,
												"streamlog batch",
												ALLOCSET_DEFAULT_SIZES);
	scan->done = scan->bounds.from_offset >= scan->read_limit;
	return scan;
}

bool
SlLogScanPeekBatch(SlLogScan *scan, size_t *len, int64 *base_offset, int64 *last_offset)
{
	if (scan->done || !next_batch_row(scan))
	{
		scan->done = true;
		return false;
	}
	*len = scan->batch_len;
	*base_offset = scan->batch_base_offset;
	*last_offset = scan->batch_last_offset;
	return true;
}

void
SlLogScanCopyBatch(SlLogScan *scan, uint8 *dst)
{
	Assert(scan->first_piece != NULL);
	copy_batch(scan, dst);
}

int64
SlLogScanBatchAppendTime(SlLogScan *scan)
{
	return scan->batch_append_time;
}

int64
SlLogScanHighWatermark(SlLogScan *scan)
{
	return scan->high_watermark;
}

int64
SlLogScanReadLimit(SlLogScan *scan)
{
	return scan->read_limit;
}

int64
SlLogScanLogStart(SlLogScan *scan)
{
	return scan->log_start;
}

bool
SlLogScanNext(SlLogScan *scan, SlRecord *rec)
{
	while (!scan->done)
	{
		if (!scan->in_batch)
		{
			if (!next_batch(scan))
			{
				scan->done = true;
				break;
			}
		}
		if (!SlRecordIterNext(&scan->iter, rec))
		{
			if (scan->iter.error)
				corrupt_batch(scan, scan->iter.error);
			scan->in_batch = false;
			continue;
		}
		if (rec->offset < scan->next_wanted)
			continue;
		if (rec->offset >= scan->read_limit || rec->offset > scan->bounds.to_offset)
		{
			scan->done = true;
			break;
		}
		if (rec->timestamp < scan->bounds.from_ts || rec->timestamp > scan->bounds.to_ts)
			continue;
		/* -1 is "no timestamp", not a time in 1969 */
		if (rec->timestamp < 0 && scan->time_bounded)
			continue;
		scan->returned_after = rec->offset;
		scan->returned_pos = scan->iter.pos;
		scan->returned_remaining = scan->iter.remaining;
		return true;
	}
	return false;
}

void
SlLogScanEnd(SlLogScan *scan)
{
	/* The next scan may go on where this one stopped (batch_cache.h) */
	if (scan->in_batch && scan->returned_after >= 0 &&
		scan->iter.decompressed.data == NULL)
	{
		SlBatchCacheResume resume;

		resume.after = scan->returned_after;
		resume.pos = scan->returned_pos - scan->batch_data;
		resume.remaining = scan->returned_remaining;
		SlBatchCacheStopped(scan->batch_data, &resume);
	}
	close_segment(scan);
	UnregisterSnapshot(scan->snapshot);
	MemoryContextDelete(scan->batch_context);
	pfree(scan->segments);
	pfree(scan);
}
