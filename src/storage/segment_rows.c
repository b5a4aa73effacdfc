/*-------------------------------------------------------------------------
 * segment_rows.c
 *	  A batch written as the rows of a segment table (segment_rows.h).
 *
 * A batch larger than a heap tuple may hold is cut into pieces of
 * SL_SEGMENT_CHUNK_BYTES rather than TOASTed (catalog.h): every piece is a
 * row of its own with the batch's columns, numbered from 0, under the
 * unique index on (last_offset, chunk).
 *
 * IDENTIFICATION
 *	  src/storage/segment_rows.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"

#include "streamlog/storage/internal/catalog.h"
#include "streamlog/storage/internal/segment_pages.h"
#include "streamlog/storage/internal/segment_rows.h"

/*
 * Insert the rows of the batch; in_place: data (writable) has VARHDRSZ
 * bytes of room before it and each piece is made a bytea where it is, else
 * each is copied into one bytea of this function's.
 */
static void
insert_rows(Relation rel, Relation index, IndexInfo *index_info, SlSegmentPages *pages,
			const SlSegmentRow *row, const uint8 *data, size_t len, uint8 *in_place)
{
	Datum		values[Natts_segment];
	bool		nulls[Natts_segment] = {0};
	Datum		key[2];
	bool		key_null[2] = {false, false};
	bytea	   *piece = NULL;

	values[Anum_segment_base_offset - 1] = Int64GetDatum(row->base_offset);
	values[Anum_segment_last_offset - 1] = Int64GetDatum(row->last_offset);
	values[Anum_segment_min_timestamp - 1] = Int64GetDatum(row->min_timestamp);
	values[Anum_segment_max_timestamp - 1] = Int64GetDatum(row->max_timestamp);
	values[Anum_segment_append_time - 1] = Int64GetDatum(row->append_time);
	values[Anum_segment_record_count - 1] = Int32GetDatum(row->record_count);
	values[Anum_segment_producer_id - 1] = Int64GetDatum(row->producer_id);
	values[Anum_segment_producer_epoch - 1] = Int16GetDatum(row->producer_epoch);
	values[Anum_segment_base_sequence - 1] = Int32GetDatum(row->base_sequence);
	key[0] = Int64GetDatum(row->last_offset);
	if (in_place == NULL)
		piece = palloc(VARHDRSZ + Min(len, (size_t) SL_SEGMENT_CHUNK_BYTES));

	for (size_t pos = 0, chunk = 0; pos < len; pos += SL_SEGMENT_CHUNK_BYTES, chunk++)
	{
		size_t		n = Min(len - pos, (size_t) SL_SEGMENT_CHUNK_BYTES);
		HeapTuple	tuple;

		uint8	   *header = NULL;
		uint8		saved[VARHDRSZ];

		values[Anum_segment_chunk - 1] = Int32GetDatum((int32) chunk);
		if (in_place != NULL)
		{
			header = in_place + pos - VARHDRSZ;
			memcpy(saved, header, VARHDRSZ);
			SET_VARSIZE(header, VARHDRSZ + n);
			values[Anum_segment_batch - 1] = PointerGetDatum(header);
		}
		else
		{
			SET_VARSIZE(piece, VARHDRSZ + n);
			memcpy(VARDATA(piece), data + pos, n);
			values[Anum_segment_batch - 1] = PointerGetDatum(piece);
		}
		if (!SlSegmentPagesAddRow(pages, RelationGetDescr(rel), values, nulls,
								  row->last_offset, (int32) chunk))
		{
			tuple = heap_form_tuple(RelationGetDescr(rel), values, nulls);
			simple_heap_insert(rel, tuple);
			key[1] = Int32GetDatum((int32) chunk);
			index_insert(index, key, key_null, &tuple->t_self, rel,
						 UNIQUE_CHECK_YES, false, index_info);
			heap_freetuple(tuple);
		}
		/* the bytes before this piece are the end of the previous one */
		if (header != NULL)
			memcpy(header, saved, VARHDRSZ);
	}
	if (piece != NULL)
		pfree(piece);
}

void
SlSegmentInsertBatch(Relation rel, Relation index, IndexInfo *index_info,
					 const SlSegmentRow *row, const uint8 *data, size_t len)
{
	insert_rows(rel, index, index_info, NULL, row, data, len, NULL);
}

void
SlSegmentInsertBatchInPlace(Relation rel, Relation index, IndexInfo *index_info,
							SlSegmentPages *pages, const SlSegmentRow *row,
							uint8 *data, size_t len)
{
	insert_rows(rel, index, index_info, pages, row, data, len, data);
}
