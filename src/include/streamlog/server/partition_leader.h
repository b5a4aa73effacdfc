/*
 * Which partitions this broker serves: on a cluster, those it leads, as
 * Kafka's brokers.  Produce, Fetch, ListOffsets and DeleteRecords answer
 * the others with NOT_LEADER_OR_FOLLOWER (another node leads it: the client
 * refreshes its metadata and goes there) or LEADER_NOT_AVAILABLE (no node
 * does: it is offline until a replica returns).
 */
#ifndef SL_SERVER_PARTITION_LEADER_H
#define SL_SERVER_PARTITION_LEADER_H

#include "postgres.h"

#include "streamlog/storage/storage.h"

/*
 * SL_ERR_NONE if this node leads partition of topic (always, on a node of
 * its own), else the error above.  The caller has checked the number.
 */
extern int16 SlPartitionLeaderError(const SlTopic *topic, int32 partition);

/* The leader epoch clients are told (0 on a node of its own) */
extern int32 SlPartitionLeaderEpoch(const SlTopic *topic, int32 partition);

#endif							/* SL_SERVER_PARTITION_LEADER_H */
