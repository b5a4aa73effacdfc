/*-------------------------------------------------------------------------
 * batch_cache.c
 *	  The last stored batch a scan put together, for the next scan
 *	  (batch_cache.h).
 *
 * One batch per backend, of at most BATCH_CACHE_MAX bytes, in a context of
 * its own.  A batch is known by its segment table, the TID of its first
 * row, its offsets and length, and its header bytes: a row that is gone
 * and replaced (truncation, compaction into new tables, retention) has a
 * different TID or table, and the header (CRC, leader epoch, counts)
 * tells apart what else could still match.  The scan still finds the first
 * row through the index with its own snapshot, so the cache never decides
 * what is visible, only spares copying and checking the same bytes again.
 *
 * While a scan decodes the cached batch it is pinned: another scan of the
 * backend at the same time puts its batches together in its own memory.
 * The pin goes when the memory the scan named is reset or deleted, also
 * when an error abandons the scan.
 *
 * IDENTIFICATION
 *	  src/storage/batch_cache.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "streamlog/protocol/records.h"
#include "streamlog/storage/internal/batch_cache.h"

/* Larger batches are put together in the scan's memory, as before */
#define BATCH_CACHE_MAX (1024 * 1024)

static MemoryContext cache_context = NULL;
static uint8 *cache_data = NULL;
static size_t cache_size = 0;	/* allocated at cache_data */
static bool cache_valid = false;
static bool cache_pinned = false;	/* a scan decodes it: leave it alone */
static SlBatchCacheKey cache_key;
static SlBatchCacheResume cache_resume;

static void
unpin(void *arg)
{
	cache_pinned = false;
}

/* Pinned until owner is reset or deleted */
static void
pin(MemoryContext owner)
{
	MemoryContextCallback *cb = MemoryContextAlloc(owner, sizeof(MemoryContextCallback));

	cb->func = unpin;
	cb->arg = NULL;
	MemoryContextRegisterResetCallback(owner, cb);
	cache_pinned = true;
}

const uint8 *
SlBatchCacheLookup(const SlBatchCacheKey *key, const uint8 *first_piece,
				   SlBatchCacheResume *resume, MemoryContext owner)
{
	if (!cache_valid || cache_pinned ||
		key->relid != cache_key.relid ||
		!ItemPointerEquals((ItemPointer) &key->tid, &cache_key.tid) ||
		key->base_offset != cache_key.base_offset ||
		key->last_offset != cache_key.last_offset ||
		key->len != cache_key.len ||
		memcmp(first_piece, cache_data, SL_BATCH_HEADER_SIZE) != 0)
		return NULL;
	*resume = cache_resume;
	pin(owner);
	return cache_data;
}

uint8 *
SlBatchCacheFill(const SlBatchCacheKey *key, MemoryContext owner)
{
	if (key->len > BATCH_CACHE_MAX || cache_pinned)
		return NULL;
	cache_valid = false;
	if (cache_context == NULL)
		cache_context = AllocSetContextCreate(TopMemoryContext,
											  "streamlog batch cache",
											  ALLOCSET_SMALL_SIZES);
	if (key->len > cache_size)
	{
		if (cache_data != NULL)
			pfree(cache_data);
		cache_data = NULL;
		cache_size = 0;
		cache_data = MemoryContextAlloc(cache_context, key->len);
		cache_size = key->len;
	}
	cache_key = *key;
	cache_resume.after = -1;
	pin(owner);
	return cache_data;
}

void
SlBatchCacheFilled(void)
{
	cache_valid = true;
}

void
SlBatchCacheStopped(const uint8 *data, const SlBatchCacheResume *resume)
{
	if (cache_valid && data == cache_data)
		cache_resume = *resume;
}
