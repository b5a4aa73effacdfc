/*-------------------------------------------------------------------------
 * segment_pages.c
 *	  Full-size pieces of batches written as whole pages (segment_pages.h).
 *
 * What a heap insert of a piece that fills a page costs on PostgreSQL 15:
 * the relation is extended by a zero page (a write of BLCKSZ), the tuple is
 * copied into the buffer and WAL-logged, and the dirty page is written
 * again at the next checkpoint or eviction.  Here the pages are built in
 * private memory, WAL-logged as images (log_newpages: the same bytes as
 * the tuples' records), then added to the relation under one extension
 * lock by smgrextend with their contents: written once, never through
 * shared buffers.
 *
 * Durability is that of heap inserts: each page is in the WAL before the
 * commit record, so redo restores it; smgrextend asks the checkpointer to
 * fsync the file.  The one gap is a checkpoint that starts after a page's
 * WAL record but absorbs the fsync request too late: redo would begin
 * after the record and the page might never reach the disk.  So, as
 * PostgreSQL 17's bulk writes do, if the redo pointer moved while pages
 * were written, the file is fsynced before the commit.
 *
 * The tuples are what heap_insert makes of them (xmin, cmin, the flags of
 * a fresh insert), so that visibility, VACUUM and readers cannot tell the
 * difference; each gets its index entry once its block number is known.
 *
 * IDENTIFICATION
 *	  src/storage/segment_pages.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "storage/smgr.h"
#include "utils/memutils.h"

#include "streamlog/guc.h"
#include "streamlog/storage/internal/segment_pages.h"

/* Pages written at once: as many as one WAL record of page images holds */
#define PAGES_PER_WRITE XLR_MAX_BLOCK_ID

struct SlSegmentPages
{
	Relation	rel;
	Relation	index;
	IndexInfo  *index_info;
	TransactionId xid;
	CommandId	cid;
	XLogRecPtr	start_redo;		/* the redo pointer before the first page */
	int			npages;			/* built, not yet written */
	char	   *pages;			/* PAGES_PER_WRITE pages */
	int64		last_offset[PAGES_PER_WRITE];	/* index keys of their tuples */
	int32		chunk[PAGES_PER_WRITE];
	int64		written;		/* pages written so far */
};

#define page_at(p, i) ((Page) ((p)->pages + (size_t) (i) * BLCKSZ))

SlSegmentPages *
SlSegmentPagesBegin(Relation rel, Relation index, IndexInfo *index_info)
{
	SlSegmentPages *pages;

	if (!sl_page_writes || XLogLogicalInfoActive() || !RelationNeedsWAL(rel))
		return NULL;
	pages = palloc0(sizeof(SlSegmentPages));
	pages->rel = rel;
	pages->index = index;
	pages->index_info = index_info;
	pages->xid = GetCurrentTransactionId();
	pages->cid = GetCurrentCommandId(true);
	pages->start_redo = GetRedoRecPtr();
	/* pages: at the first piece that takes one, not for a commit of a record */
	return pages;
}

/* Extend the relation by the pages built, WAL-logged, then index them */
static void
write_pages(SlSegmentPages *pages)
{
	Relation	rel = pages->rel;
	BlockNumber first;
	BlockNumber blknos[PAGES_PER_WRITE];
	Page		images[PAGES_PER_WRITE];
	int			n = pages->npages;

	if (n == 0)
		return;
	/* As heap_insert: a serializable reader of the relation conflicts */
	CheckForSerializableConflictIn(rel, NULL, InvalidBlockNumber);

	LockRelationForExtension(rel, ExclusiveLock);
	first = RelationGetNumberOfBlocks(rel);
	if ((uint64) first + n > MaxBlockNumber)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cannot extend segment table \"%s\" beyond %u blocks",
						RelationGetRelationName(rel), MaxBlockNumber)));
	for (int i = 0; i < n; i++)
	{
		Page		page = page_at(pages, i);
		HeapTupleHeader htup = (HeapTupleHeader) PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));

		blknos[i] = first + i;
		images[i] = page;
		ItemPointerSet(&htup->t_ctid, blknos[i], FirstOffsetNumber);
	}
	/* Sets each page's LSN; one record per PAGES_PER_WRITE pages */
#if PG_VERSION_NUM >= 160000
	log_newpages(&rel->rd_locator, MAIN_FORKNUM, n, blknos, images, true);
#else
	log_newpages(&rel->rd_node, MAIN_FORKNUM, n, blknos, images, true);
#endif
	for (int i = 0; i < n; i++)
	{
		PageSetChecksumInplace(images[i], blknos[i]);
		/* skipFsync false: the checkpointer fsyncs the file */
		smgrextend(RelationGetSmgr(rel), MAIN_FORKNUM, blknos[i], (char *) images[i], false);
	}
	UnlockRelationForExtension(rel, ExclusiveLock);
	pgstat_count_heap_insert(rel, n);

	for (int i = 0; i < n; i++)
	{
		ItemPointerData tid;
		Datum		key[2];
		bool		key_null[2] = {false, false};

		ItemPointerSet(&tid, blknos[i], FirstOffsetNumber);
		key[0] = Int64GetDatum(pages->last_offset[i]);
		key[1] = Int32GetDatum(pages->chunk[i]);
		index_insert(pages->index, key, key_null, &tid, rel,
					 UNIQUE_CHECK_YES, false, pages->index_info);
	}
	pages->written += n;
	pages->npages = 0;
}

/*
 * Only a piece that leaves a page nearly full: a smaller one shares a page
 * with others through a heap insert
 */
static bool
takes_len(SlSegmentPages *pages, Size len)
{
	return pages != NULL && MAXALIGN(len) <= MaxHeapTupleSize &&
		MAXALIGN(len) + BLCKSZ / 8 > MaxHeapTupleSize;
}

/*
 * The tuple is formed where it lies on the page, as heap_form_tuple would
 * form it elsewhere (same header, same data), rather than formed, then
 * copied onto the page: the piece's bytes are copied once, and there is
 * no zeroed tuple to allocate and free for each 8 kB.
 */
bool
SlSegmentPagesAddRow(SlSegmentPages *pages, TupleDesc desc, const Datum *values,
					 const bool *nulls, int64 last_offset, int32 chunk)
{
	bool		hasnull = false;
	Size		hoff;
	Size		data_len;
	Size		len;
	Page		page;
	PageHeader	phdr;
	HeapTupleHeader htup;
	uint16		upper;
	Form_pg_attribute last;
	Size		last_size = 0;

	if (pages == NULL)
		return false;
	for (int i = 0; i < desc->natts; i++)
		hasnull |= nulls[i];
	hoff = offsetof(HeapTupleHeaderData, t_bits);
	if (hasnull)
		hoff += BITMAPLEN(desc->natts);
	hoff = MAXALIGN(hoff);
	data_len = heap_compute_data_size(desc, unconstify(Datum *, values), unconstify(bool *, nulls));
	len = hoff + data_len;
	if (!takes_len(pages, len))
		return false;

	if (pages->pages == NULL)
		pages->pages = palloc((size_t) PAGES_PER_WRITE * BLCKSZ);
	if (pages->npages == PAGES_PER_WRITE)
		write_pages(pages);
	page = page_at(pages, pages->npages);

	/*
	 * What PageInit and PageAddItem make of an empty page and one item.
	 * The page is zeroed as PageInit and heap_form_tuple's palloc0 zero
	 * theirs (heap_fill_tuple skips alignment padding), all but the bytes
	 * the last attribute, a varlena not null, fills by itself at the end.
	 */
	upper = (uint16) (BLCKSZ - MAXALIGN(len));
	last = TupleDescAttr(desc, desc->natts - 1);
	if (last->attlen == -1 && !nulls[desc->natts - 1])
		last_size = VARSIZE_ANY(DatumGetPointer(values[desc->natts - 1]));
	/* A small one may be stored with a shorter header than it has */
	if (last_size <= BLCKSZ / 8)
		last_size = 0;
	memset(page, 0, upper + len - last_size);
	if (MAXALIGN(len) > len)
		memset((char *) page + upper + len, 0, MAXALIGN(len) - len);
	phdr = (PageHeader) page;
	phdr->pd_lower = SizeOfPageHeaderData + sizeof(ItemIdData);
	phdr->pd_upper = upper;
	phdr->pd_special = BLCKSZ;
	PageSetPageSizeAndVersion(page, BLCKSZ, PG_PAGE_LAYOUT_VERSION);
	ItemIdSetNormal(PageGetItemId(page, FirstOffsetNumber), upper, len);

	/*
	 * heap_form_tuple's datum length, type and typmod share their place
	 * with xmin, xmax and cmin, set below as heap_insert sets them
	 */
	htup = (HeapTupleHeader) ((char *) page + upper);
	HeapTupleHeaderSetNatts(htup, desc->natts);
	htup->t_hoff = hoff;
	heap_fill_tuple(desc, unconstify(Datum *, values), unconstify(bool *, nulls),
					(char *) htup + hoff, data_len, &htup->t_infomask,
					hasnull ? htup->t_bits : NULL);

	/* What heap_prepare_insert makes of a tuple; t_ctid is set when written */
	htup->t_infomask &= ~(HEAP_XACT_MASK);
	htup->t_infomask2 &= ~(HEAP2_XACT_MASK);
	htup->t_infomask |= HEAP_XMAX_INVALID;
	HeapTupleHeaderSetXmin(htup, pages->xid);
	HeapTupleHeaderSetCmin(htup, pages->cid);
	HeapTupleHeaderSetXmax(htup, 0);

	pages->last_offset[pages->npages] = last_offset;
	pages->chunk[pages->npages] = chunk;
	pages->npages++;
	return true;
}

void
SlSegmentPagesEnd(SlSegmentPages *pages)
{
	if (pages == NULL)
		return;
	write_pages(pages);
	/*
	 * A checkpoint that began after some page's WAL record moved the redo
	 * pointer: it may have missed that page's fsync request (file header).
	 * One that begins from now on has its redo after every page.
	 */
	if (pages->written > 0 && pages->start_redo != GetRedoRecPtr())
		smgrimmedsync(RelationGetSmgr(pages->rel), MAIN_FORKNUM);
	if (pages->pages != NULL)
		pfree(pages->pages);
	pfree(pages);
}
