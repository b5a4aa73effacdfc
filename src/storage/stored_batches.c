/*
 * A partition's stored batches by offset (see stored_batches.h).
 *
 * Segments hold increasing ranges of offsets in seq order, and each has one
 * btree on (last_offset, chunk): "the first batch ending at or after x" is
 * the first index entry >= x in the last segment that begins at or before
 * x (or a later one), and "the last batch ending before x" the last entry
 * < x going back from there.  The leader epoch is read from the first piece
 * of a batch (bytes 12-15), which every row-0 piece holds whole.
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

#include "streamlog/storage/internal/catalog.h"
#include "streamlog/storage/internal/stored_batches.h"

/* One open segment with an index scan */
typedef struct SegmentScan
{
	Relation	rel;
	Relation	index;
	IndexScanDesc iscan;
	TupleTableSlot *slot;
} SegmentScan;

struct SlStoredBatches
{
	SlPartitionKey key;
	SlSegment  *segments;
	int			nsegments;
	int64		log_start;
	Snapshot	snapshot;

	/* the forward reader */
	SegmentScan cursor;
	int			cursor_segment; /* open, or the next to open */
	int64		next_wanted;
};

SlStoredBatches *
SlStoredBatchesOpen(SlPartitionKey key)
{
	SlStoredBatches *sb = palloc0(sizeof(SlStoredBatches));

	sb->key = key;
	sb->segments = SlSegmentList(key, &sb->nsegments, &sb->log_start);
	/* after the list: it may name tables newer than an older snapshot sees */
	sb->snapshot = RegisterSnapshot(GetLatestSnapshot());
	return sb;
}

static void
scan_close(SegmentScan *s)
{
	if (s->rel == NULL)
		return;
	index_endscan(s->iscan);
	ExecDropSingleTupleTableSlot(s->slot);
	index_close(s->index, AccessShareLock);
	relation_close(s->rel, AccessShareLock);
	s->rel = NULL;
}

/*
 * Open segment i with a scan of its index entries compared to offset by
 * strategy; false if its table is gone (the cleaner dropped it since the
 * list: what it held is below the log start now).
 */
static bool
scan_open(SlStoredBatches *sb, int i, SegmentScan *s, StrategyNumber strategy,
		  RegProcedure proc, int64 offset)
{
	ScanKeyData key;

	s->rel = try_relation_open(sb->segments[i].relid, AccessShareLock);
	if (s->rel == NULL)
		return false;
	s->index = index_open(SlSegmentIndexOid(s->rel), AccessShareLock);
	s->slot = table_slot_create(s->rel, NULL);
	ScanKeyInit(&key, 1, strategy, proc, Int64GetDatum(offset));
	s->iscan = index_beginscan(s->rel, s->index, sb->snapshot, 1, 0);
	index_rescan(s->iscan, &key, 1, NULL, 0);
	return true;
}

/* The columns of the row in s->slot, and the epoch if it is a first piece */
static int32
row_to_batch(SlStoredBatches *sb, SegmentScan *s, int segment, SlStoredBatch *batch)
{
	Datum	   *values;
	int32		chunk;

	slot_getallattrs(s->slot);
	values = s->slot->tts_values;
	batch->base_offset = DatumGetInt64(values[Anum_segment_base_offset - 1]);
	batch->last_offset = DatumGetInt64(values[Anum_segment_last_offset - 1]);
	batch->append_time = DatumGetInt64(values[Anum_segment_append_time - 1]);
	batch->segment = segment;
	batch->leader_epoch = -1;
	chunk = DatumGetInt32(values[Anum_segment_chunk - 1]);
	if (chunk == 0)
	{
		bytea	   *piece = DatumGetByteaPP(values[Anum_segment_batch - 1]);

		if (VARSIZE_ANY_EXHDR(piece) < SL_BATCH_HEADER_SIZE)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("stored batch at offset %lld of partition %d of topic id %d is shorter than a batch header",
							(long long) batch->base_offset, sb->key.partition,
							sb->key.topic_id)));
		batch->leader_epoch =
			SlLoadInt32((const uint8 *) VARDATA_ANY(piece) + SL_BATCH_OFFSET_LEADER_EPOCH);
	}
	return chunk;
}

/* The last segment that begins at or before offset (0 if none does) */
static int
segment_for(SlStoredBatches *sb, int64 offset)
{
	int			found = 0;

	for (int i = 0; i < sb->nsegments; i++)
		if (sb->segments[i].base_offset >= 0 && sb->segments[i].base_offset <= offset)
			found = i;
	return found;
}

bool
SlStoredBatchAtOrAfter(SlStoredBatches *sb, int64 offset, SlStoredBatch *batch)
{
	for (int i = segment_for(sb, offset); i < sb->nsegments; i++)
	{
		SegmentScan s = {0};
		bool		found = false;

		if (!scan_open(sb, i, &s, BTGreaterEqualStrategyNumber, F_INT8GE, offset))
			continue;
		/* The first entry >= offset is the first piece of its batch */
		if (index_getnext_slot(s.iscan, ForwardScanDirection, s.slot))
			found = row_to_batch(sb, &s, i, batch) == 0;
		scan_close(&s);
		if (found)
			return true;
	}
	return false;
}

bool
SlStoredBatchBefore(SlStoredBatches *sb, int64 offset, SlStoredBatch *batch)
{
	for (int i = sb->nsegments - 1; i >= 0; i--)
	{
		SegmentScan s = {0};
		bool		found = false;

		/* Every batch of a segment beginning at or past offset ends past it */
		if (sb->segments[i].base_offset >= offset)
			continue;
		if (!scan_open(sb, i, &s, BTLessStrategyNumber, F_INT8LT, offset))
			continue;
		/* Backwards from the batch's last piece to its first */
		while (index_getnext_slot(s.iscan, BackwardScanDirection, s.slot))
		{
			if (row_to_batch(sb, &s, i, batch) == 0)
			{
				found = true;
				break;
			}
		}
		scan_close(&s);
		if (found)
			return true;
	}
	return false;
}

void
SlStoredBatchesSeek(SlStoredBatches *sb, int64 offset)
{
	scan_close(&sb->cursor);
	sb->next_wanted = offset;
	sb->cursor_segment = segment_for(sb, offset);
}

bool
SlStoredBatchesNext(SlStoredBatches *sb, SlStoredBatch *batch, StringInfo data)
{
	bytea	   *piece;
	size_t		batch_len;
	size_t		have;

	for (;;)
	{
		if (sb->cursor.rel != NULL &&
			index_getnext_slot(sb->cursor.iscan, ForwardScanDirection, sb->cursor.slot))
		{
			if (row_to_batch(sb, &sb->cursor, sb->cursor_segment, batch) == 0)
				break;
			continue;			/* a piece of a batch passed over */
		}
		if (sb->cursor.rel != NULL)
		{
			scan_close(&sb->cursor);
			sb->cursor_segment++;
		}
		if (sb->cursor_segment >= sb->nsegments)
			return false;
		if (!scan_open(sb, sb->cursor_segment, &sb->cursor,
					   BTGreaterEqualStrategyNumber, F_INT8GE, sb->next_wanted))
			sb->cursor_segment++;
	}

	/* The first piece says how long the whole batch is */
	piece = DatumGetByteaPP(sb->cursor.slot->tts_values[Anum_segment_batch - 1]);
	have = VARSIZE_ANY_EXHDR(piece);
	batch_len = SL_BATCH_OFFSET_LENGTH + sizeof(int32) +
		(size_t) (uint32) SlLoadInt32((const uint8 *) VARDATA_ANY(piece) + SL_BATCH_OFFSET_LENGTH);
	if (batch_len < have || batch_len > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored batch at offset %lld of partition %d of topic id %d has a length out of range",
						(long long) batch->base_offset, sb->key.partition, sb->key.topic_id)));
	appendBinaryStringInfo(data, VARDATA_ANY(piece), have);
	for (int32 chunk = 1; have < batch_len; chunk++)
	{
		Datum	   *values;
		size_t		len;

		if (!index_getnext_slot(sb->cursor.iscan, ForwardScanDirection, sb->cursor.slot))
			values = NULL;
		else
		{
			slot_getallattrs(sb->cursor.slot);
			values = sb->cursor.slot->tts_values;
		}
		if (values == NULL ||
			DatumGetInt64(values[Anum_segment_last_offset - 1]) != batch->last_offset ||
			DatumGetInt32(values[Anum_segment_chunk - 1]) != chunk)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("piece %d of the stored batch at offset %lld of partition %d of topic id %d is missing",
							chunk, (long long) batch->base_offset, sb->key.partition,
							sb->key.topic_id)));
		piece = DatumGetByteaPP(values[Anum_segment_batch - 1]);
		len = VARSIZE_ANY_EXHDR(piece);
		if (len > batch_len - have)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("stored pieces of the batch at offset %lld of partition %d of topic id %d are longer than the batch",
							(long long) batch->base_offset, sb->key.partition,
							sb->key.topic_id)));
		appendBinaryStringInfo(data, VARDATA_ANY(piece), len);
		have += len;
	}
	sb->next_wanted = batch->last_offset + 1;
	return true;
}

const SlSegment *
SlStoredBatchesSegments(SlStoredBatches *sb, int *count, int64 *log_start)
{
	*count = sb->nsegments;
	*log_start = sb->log_start;
	return sb->segments;
}

void
SlStoredBatchesClose(SlStoredBatches *sb)
{
	scan_close(&sb->cursor);
	UnregisterSnapshot(sb->snapshot);
	pfree(sb->segments);
	pfree(sb);
}
