/*
 * The last stored batch a scan of this backend put together, kept for the
 * next scan (batch_cache.c).
 *
 * A batch of several pieces is copied into one buffer and its CRC checked
 * before it is decoded.  A reader paging through a partition (read() of
 * 1,000 records at a time, say) asks for the same 256 KiB batch several
 * times in a row: each call would copy and check it again and decode the
 * records before its first offset once more.  The cache keeps that one
 * batch, known by its first row and header, and where the last scan
 * stopped in it.  Internal to storage.
 */
#ifndef SL_STORAGE_INTERNAL_BATCH_CACHE_H
#define SL_STORAGE_INTERNAL_BATCH_CACHE_H

#include "storage/itemptr.h"
#include "utils/palloc.h"

/* A stored batch: its segment, first row, offsets and whole length */
typedef struct SlBatchCacheKey
{
	Oid			relid;
	ItemPointerData tid;		/* of its row with piece 0 */
	int64		base_offset;
	int64		last_offset;
	size_t		len;
} SlBatchCacheKey;

/* Where a scan stopped in the batch: after the record at offset after */
typedef struct SlBatchCacheResume
{
	int64		after;			/* -1: nowhere known */
	size_t		pos;			/* of the next record, from the batch start */
	int32		remaining;		/* records after it */
} SlBatchCacheResume;

/*
 * The cached bytes of the batch key names, whose first piece (header
 * included) is first_piece, or NULL; *resume says where a scan stopped.
 * They stay the caller's until owner is reset or deleted.
 */
extern const uint8 *SlBatchCacheLookup(const SlBatchCacheKey *key, const uint8 *first_piece,
									   SlBatchCacheResume *resume, MemoryContext owner);

/*
 * A buffer of key->len bytes to put the batch together in, in place of
 * what the cache held, the caller's until owner is reset or deleted; or
 * NULL if the batch is too large to keep or another scan decodes the
 * cached one.  It is found by SlBatchCacheLookup only after
 * SlBatchCacheFilled (its CRC checked).
 */
extern uint8 *SlBatchCacheFill(const SlBatchCacheKey *key, MemoryContext owner);
extern void SlBatchCacheFilled(void);

/* A scan stopped in data, where resume says: kept if data is cached */
extern void SlBatchCacheStopped(const uint8 *data, const SlBatchCacheResume *resume);

#endif							/* SL_STORAGE_INTERNAL_BATCH_CACHE_H */
