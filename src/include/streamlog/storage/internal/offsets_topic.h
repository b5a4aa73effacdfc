/*
 * Writing __consumer_offsets from storage (see src/storage/offsets_topic.c):
 * the records that go with every change of streamlog.group_offset, in the
 * same transaction.  Internal to src/storage/.
 */
#ifndef SL_STORAGE_OFFSETS_TOPIC_H
#define SL_STORAGE_OFFSETS_TOPIC_H

#include "streamlog/storage/storage.h"

/*
 * __consumer_offsets, locked for the transaction, created (and committed at
 * once, by a worker the caller waits for) if it does not exist yet.  NULL
 * if streamlog.offsets_topic is off.
 */
extern const SlTopic *SlOffsetsTopicOpen(void);

/* An OffsetCommit record of a group's committed offset */
extern void SlOffsetsTopicWriteCommit(const SlTopic *offsets_topic, const char *group_id,
									  int32 topic_id, int32 partition, int64 offset,
									  int32 leader_epoch, const char *metadata,
									  TimestampTz committed_at);

/* The tombstone of a group's committed offset of a partition */
extern void SlOffsetsTopicWriteOffsetTombstone(const SlTopic *offsets_topic,
											   const char *group_id, int32 topic_id,
											   int32 partition);

/* The tombstone of a group's metadata: the group is gone */
extern void SlOffsetsTopicWriteGroupTombstone(const SlTopic *offsets_topic,
											  const char *group_id);

/*
 * A topic is being dropped (its lock held exclusively): delete every
 * group's committed offsets of it, with their tombstones, as Kafka cleans
 * up the offsets of deleted partitions (group_offsets.c).
 */
extern void SlGroupOffsetsForgetTopic(int32 topic_id);

#endif							/* SL_STORAGE_OFFSETS_TOPIC_H */
