/*
 * The segment tables of a partition (segments.c): a chain of tables, each
 * holding the batches of one range of offsets, created as the log grows
 * and dropped whole by retention.  Internal to storage.
 */
#ifndef SL_STORAGE_INTERNAL_SEGMENTS_H
#define SL_STORAGE_INTERNAL_SEGMENTS_H

#include "streamlog/storage/storage.h"

typedef struct SlSegment
{
	int32		seq;
	Oid			relid;
	int64		base_offset;	/* -1 if not yet switched to */
	int64		max_timestamp;	/* newest_timestamp of its stats; -1 if not
								 * computed yet */
} SlSegment;

/* Segments of a partition in seq order (palloc'd array), and its log start */
extern SlSegment *SlSegmentList(SlPartitionKey key, int *count, int64 *log_start);

/* Create segment seq of a partition (an empty table); returns its relid */
extern Oid	SlSegmentCreate(SlPartitionKey key, int32 seq, int64 base_offset);

/*
 * Create an empty segment table streamlog_data.<name>, without a catalogue
 * row (compaction fills it before it replaces others); returns its relid
 */
extern Oid	SlSegmentCreateTable(const char *name);

/* Bytes of a segment table with its index */
extern int64 SlSegmentBytes(Oid relid);

extern void SlSegmentSetBase(SlPartitionKey key, int32 seq, int64 base_offset);
extern void SlSegmentSetMaxTimestamp(SlPartitionKey key, int32 seq, int64 max_ts);
extern void SlSegmentDrop(SlPartitionKey key, int32 seq, Oid relid);

/* Aggregates of a segment's stored batches (no decoding) */
typedef struct SlSegmentStats
{
	bool		empty;
	int64		first_offset;
	int64		next_offset;	/* last offset + 1 */
	int64		first_timestamp;	/* of the first batch (see below) */
	int64		newest_timestamp;	/* largest of its batches' (see below) */
} SlSegmentStats;

/*
 * A batch's time for retention and segment rolling: its min_timestamp or
 * max_timestamp column, or its append time if no record has a timestamp
 * (-1, as in v0 message sets).  So a batch without timestamps ages from
 * when it was appended (Kafka uses the segment file's mtime) and is never
 * taken for one from 1970.
 */
#define SlTimestampOrAppendTime(timestamp, append_time) \
	((timestamp) >= 0 ? (timestamp) : (append_time))

/*
 * first_timestamp is the first batch's min_timestamp, or its append time if
 * it has no timestamp; newest_timestamp (only computed if asked for: it
 * reads every row) is the largest of its batches' max_timestamp, each
 * taken through SlTimestampOrAppendTime.
 */
extern void SlSegmentGetStats(Oid relid, SlSegmentStats *stats,
							  bool with_newest_timestamp);

#endif							/* SL_STORAGE_INTERNAL_SEGMENTS_H */
