/*
 * Finding and reading a partition's stored batches by offset, across its
 * segments, up to whatever is committed (stored_batches.c): what leader
 * epochs, truncation and a follower's catch-up read.  Unlike a log scan
 * (log_read.c) it is not bounded by the high watermark and does not decode
 * records.  Internal to storage.
 */
#ifndef SL_STORAGE_INTERNAL_STORED_BATCHES_H
#define SL_STORAGE_INTERNAL_STORED_BATCHES_H

#include "lib/stringinfo.h"

#include "streamlog/storage/internal/segments.h"
#include "streamlog/storage/storage.h"

/* A stored batch's columns, and the leader epoch in its bytes */
typedef struct SlStoredBatch
{
	int64		base_offset;
	int64		last_offset;
	int32		leader_epoch;
	int64		append_time;
	int			segment;		/* index in the list the reader took */
} SlStoredBatch;

typedef struct SlStoredBatches SlStoredBatches;

/*
 * The segments of a partition as listed now, read with a snapshot taken
 * after the list (as log_read.c does).  The caller has locked the topic.
 */
extern SlStoredBatches *SlStoredBatchesOpen(SlPartitionKey key);
extern void SlStoredBatchesClose(SlStoredBatches *sb);

/* The segments it lists (seq order), and the log start offset */
extern const SlSegment *SlStoredBatchesSegments(SlStoredBatches *sb, int *count,
												int64 *log_start);

/* The first batch whose last offset is >= offset; false if none */
extern bool SlStoredBatchAtOrAfter(SlStoredBatches *sb, int64 offset,
								   SlStoredBatch *batch);

/* The last batch whose last offset is < offset; false if none */
extern bool SlStoredBatchBefore(SlStoredBatches *sb, int64 offset,
								SlStoredBatch *batch);

/*
 * Read batches in offset order from the one that holds offset: each call
 * fills batch and appends its whole bytes to data (reassembled from its
 * pieces); false past the last one.
 */
extern void SlStoredBatchesSeek(SlStoredBatches *sb, int64 offset);
extern bool SlStoredBatchesNext(SlStoredBatches *sb, SlStoredBatch *batch,
								StringInfo data);

#endif							/* SL_STORAGE_INTERNAL_STORED_BATCHES_H */
