/*
 * Reading a partition this node holds no copy of through its leader
 * (README, "SQL consume() on any node"): SQL read(), consume(), history()
 * and offset_for_time() on a
 * node without a replica ask the leader over libpq, as streamlog's node
 * role, for its partition state and its records below its own high
 * watermark (and last stable offset under read_committed).  The caller's
 * privileges are checked here, before anything is asked.
 */
#ifndef SL_SQLAPI_REMOTE_READ_H
#define SL_SQLAPI_REMOTE_READ_H

#include "streamlog/sqlapi/record_rows.h"
#include "streamlog/storage/storage.h"

/*
 * True if partition must be read through its leader: a cluster, the
 * partition has a leader, and this node holds no replica of it
 */
extern bool SlSqlPartitionReadRemotely(const SlTopic *topic, int32 partition);

/* The leader's log start, high watermark and min(high watermark, LSO) */
extern void SlRemotePartitionState(const SlTopic *topic, int32 partition,
								   int64 *log_start, int64 *high_watermark,
								   int64 *last_stable);

/*
 * Emit up to max_records records of partition from from_offset as read on
 * its leader by streamlog.read(), never at or above limit (the bound the
 * caller took from SlRemotePartitionState); returns how many, and
 * *next_offset the offset after the last emitted (from_offset if none).  An error
 * (SQLSTATE 08006) names the leader when it cannot be reached.
 */
extern int64 SlRemoteReadRecords(SlRecordRows *rows, const SlTopic *topic, int32 partition,
								 int64 from_offset, int64 max_records, bool read_committed,
								 int64 limit, int64 *next_offset);

/*
 * Emit the records of partition within bounds (offsets, timestamps,
 * isolation) as the leader's streamlog.history() returns them, below the
 * leader's high watermark (LSO under read_committed) as it was when the
 * call began; returns how many.
 */
extern int64 SlRemoteHistoryRecords(SlRecordRows *rows, const SlTopic *topic,
									int32 partition, const SlLogScanBounds *bounds);

/*
 * The leader's streamlog.offset_for_time() for a Kafka timestamp ts_ms:
 * true and *offset if it found a record at or after ts_ms
 */
extern bool SlRemoteOffsetForTime(const SlTopic *topic, int32 partition, int64 ts_ms,
								  int64 *offset);

#endif							/* SL_SQLAPI_REMOTE_READ_H */
