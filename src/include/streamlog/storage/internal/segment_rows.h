/*
 * A batch written as the rows of a segment table (segment_rows.c): one row
 * per SL_SEGMENT_CHUNK_BYTES piece of its bytes (catalog.h), each with the
 * batch's columns and its piece number, in the table and its (last_offset,
 * chunk) index.  The one writer of segment rows: appends (log_append.c),
 * a follower's replicated batches (replica_append.c) and compaction's
 * rewrites (compaction.c).  Internal to storage.
 */
#ifndef SL_STORAGE_INTERNAL_SEGMENT_ROWS_H
#define SL_STORAGE_INTERNAL_SEGMENT_ROWS_H

#include "access/genam.h"
#include "nodes/execnodes.h"
#include "utils/rel.h"

#include "streamlog/storage/internal/segment_pages.h"

/* The columns of a batch's rows besides its bytes and piece number */
typedef struct SlSegmentRow
{
	int64		base_offset;
	int64		last_offset;
	int64		min_timestamp;
	int64		max_timestamp;
	int64		append_time;
	int32		record_count;	/* lastOffsetDelta + 1 */
	int64		producer_id;
	int16		producer_epoch;
	int32		base_sequence;
} SlSegmentRow;

/*
 * Insert the rows of the len bytes at data into segment rel, whose index
 * (opened RowExclusiveLock) and its IndexInfo are index and index_info.
 * Each piece is copied into a bytea of its own.
 */
extern void SlSegmentInsertBatch(Relation rel, Relation index, IndexInfo *index_info,
								 const SlSegmentRow *row, const uint8 *data, size_t len);

/*
 * The same without copying, for the append path: data is preceded by
 * VARHDRSZ bytes of the caller's that may be written.  Each piece becomes
 * a bytea in place, its length word written over the 4 bytes before it
 * (the end of the previous piece, or that room) until its tuple is formed,
 * then put back: data is unchanged on return.  With pages (or NULL), the
 * pieces that fill a page go to it (segment_pages.h), the rest are heap
 * inserts.
 */
extern void SlSegmentInsertBatchInPlace(Relation rel, Relation index, IndexInfo *index_info,
										SlSegmentPages *pages, const SlSegmentRow *row,
										uint8 *data, size_t len);

#endif							/* SL_STORAGE_INTERNAL_SEGMENT_ROWS_H */
