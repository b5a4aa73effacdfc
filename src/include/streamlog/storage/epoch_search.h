/*
 * Where did a leader epoch end in a log?  Kafka's OffsetForLeaderEpoch
 * answer (KIP-101, KIP-279; LeaderEpochFileCache.endOffsetFor), computed
 * from the stored batches themselves instead of a separate epoch file:
 * every batch carries the epoch it was appended in, and epochs never
 * decrease along a log (a replica truncates before it follows a newer
 * leader), so "the first batch of an epoch above E" is a binary search
 * over offsets.
 *
 * Pure code over two probes the caller supplies (storage probes the
 * segment tables; the unit tests an array): compiled as frontend code for
 * test/unit/test_epoch_search.c.
 */
#ifndef SL_STORAGE_EPOCH_SEARCH_H
#define SL_STORAGE_EPOCH_SEARCH_H

#include "streamlog/protocol/codec_base.h"

/* Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET */
#define SL_UNDEFINED_EPOCH (-1)
#define SL_UNDEFINED_EPOCH_OFFSET (-1)

/* A stored batch, as far as epochs go */
typedef struct SlEpochBatch
{
	int64		base_offset;
	int64		last_offset;
	int32		epoch;
} SlEpochBatch;

/*
 * The probes: the first batch whose last offset is >= offset (SlEpochFirst)
 * and the last batch whose last offset is < offset (SlEpochBefore), both
 * within the log the search was given; false if there is none.
 */
typedef bool (*SlEpochProbe) (int64 offset, SlEpochBatch *batch, void *arg);

typedef struct SlEpochLog
{
	int64		log_start;		/* first offset held */
	int64		log_end;		/* the offset the next batch gets */
	SlEpochProbe first;
	SlEpochProbe before;
	void	   *arg;
	int			probes;			/* probes made (for tests) */
} SlEpochLog;

/*
 * The first batch of the log whose epoch is above epoch, in O(log n)
 * probes; false if none is.
 */
extern bool SlEpochFirstAbove(SlEpochLog *log, int32 epoch, SlEpochBatch *found);

/*
 * Kafka's answer for requested_epoch on this log: (*end_epoch,
 * *end_offset).  current_epoch is the epoch this node leads the partition
 * in (Kafka's leader adds it to its epoch cache when elected, starting at
 * its log end), or -1 where it does not lead; an epoch above every stored
 * one and current_epoch is unknown here.
 *
 * - requested -1, or above the latest epoch: (-1, -1), UNDEFINED;
 * - the latest epoch (the current one, or the last stored): (it, log end);
 * - otherwise, with H the first epoch above requested and S its start
 *   offset: (the largest stored epoch <= requested, S), or (requested, S)
 *   if the log holds none (retention took them; Kafka answers so).
 */
extern void SlEpochEndOffset(SlEpochLog *log, int32 requested_epoch,
							 int32 current_epoch, int32 *end_epoch,
							 int64 *end_offset);

#endif							/* SL_STORAGE_EPOCH_SEARCH_H */
