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

/*
 * Kafka's fencing of a client's view (KIP-320): a Fetch (v9+) or
 * ListOffsets (v4+) that names the leader epoch it believes current gets
 * FENCED_LEADER_EPOCH if that epoch is older than the partition's, and
 * UNKNOWN_LEADER_EPOCH if newer (this node has not applied it yet); -1
 * (not given) always passes.  On a cluster only: a node of its own answers
 * as it always did.
 */
extern int16 SlPartitionLeaderEpochError(const SlTopic *topic, int32 partition,
										 int32 current_leader_epoch);

/* The leader epoch clients are told (0 on a node of its own) */
extern int32 SlPartitionLeaderEpoch(const SlTopic *topic, int32 partition);

#endif							/* SL_SERVER_PARTITION_LEADER_H */
