/*
 * Whole pieces of batches written as whole pages (segment_pages.c).
 *
 * A full-size piece of a batch (SL_SEGMENT_CHUNK_BYTES) fills a heap page
 * by itself.  Rather than insert it through the buffer manager, which
 * extends the relation by a zero page, then WAL-logs the tuple and later
 * writes the page again, the append path builds such pages in its own
 * memory, WAL-logs them as page images and adds them to the relation in
 * one extension, as PostgreSQL's bulk paths do (index builds).  The WAL
 * carries the same bytes; the relation is written once.
 *
 * Page images are invisible to logical decoding, which replication reads
 * the log from (CLUSTER.md §3): with wal_level = logical there is no
 * writer (SlSegmentPagesBegin returns NULL) and every piece is a heap
 * insert.  Internal to storage.
 */
#ifndef SL_STORAGE_INTERNAL_SEGMENT_PAGES_H
#define SL_STORAGE_INTERNAL_SEGMENT_PAGES_H

#include "access/tupdesc.h"
#include "nodes/execnodes.h"
#include "utils/rel.h"

typedef struct SlSegmentPages SlSegmentPages;

/*
 * A writer of whole pages for segment rel (its index opened
 * RowExclusiveLock, with index_info), or NULL where pieces must be heap
 * inserts: logical decoding on (wal_level = logical), or a relation
 * without WAL.  streamlog.page_writes turns it off.
 */
extern SlSegmentPages *SlSegmentPagesBegin(Relation rel, Relation index,
										   IndexInfo *index_info);

/*
 * Put the row of a piece (desc, values, nulls) on a page of its own, to
 * be written with the next ones, its index entry (last_offset, chunk) when
 * it is; false, and nothing done, if the row is not one that fills a page
 * (or pages is NULL): the caller inserts it.
 */
extern bool SlSegmentPagesAddRow(SlSegmentPages *pages, TupleDesc desc,
								 const Datum *values, const bool *nulls,
								 int64 last_offset, int32 chunk);

/* Write what is left and make the pages as durable as heap inserts' */
extern void SlSegmentPagesEnd(SlSegmentPages *pages);

#endif							/* SL_STORAGE_INTERNAL_SEGMENT_PAGES_H */
