/*
 * The high watermark of a replicated partition (CLUSTER.md section 4,
 * Kafka's rules, KIP-497): what each follower holds durably, as it reported
 * to the leader, and the high watermark that follows from it.
 *
 * On the leader of a partition with more than one replica, the high
 * watermark is the smallest durable log end over the maximal ISR (the ISR
 * the metadata committed, plus the followers the leader asked to add, minus
 * nobody until the removal is committed), the leader's own committed log
 * end included.  With one replica (and on a node of its own) it is the
 * committed log end, as before replication.  On a follower it is the
 * leader's high watermark as last reported, never above the local log end.
 * Readers (Kafka and SQL) read below it: SlPartitionGetOffsets's
 * high_watermark is this one, and it never moves backwards while the node
 * keeps its role (P9).
 *
 * Kept in shared memory beside the partition's state (partition_state.c),
 * rebuilt empty after a restart: followers report again within a round.
 */
#ifndef SL_STORAGE_REPLICA_PROGRESS_H
#define SL_STORAGE_REPLICA_PROGRESS_H

#include "streamlog/storage/storage.h"

/* Most replicas a partition may have (Kafka has no limit; ours is shmem) */
#define SL_MAX_REPLICAS 8

/* Answers of SlReplicaProgressReport, Kafka's error codes */
#define SL_REPLICA_OK 0
#define SL_REPLICA_NOT_LEADER 6		/* NOT_LEADER_OR_FOLLOWER */
#define SL_REPLICA_FENCED_EPOCH 74	/* FENCED_LEADER_EPOCH: the follower is behind */
#define SL_REPLICA_UNKNOWN_EPOCH 75 /* UNKNOWN_LEADER_EPOCH: this node is behind */

/*
 * On the leader: follower_id holds this partition durably up to log_end
 * (exclusive) in leader_epoch (the epoch it follows).  Counted only if this
 * node leads the partition in exactly that epoch and follower_id is a
 * replica; then the high watermark is recomputed, waiters are woken
 * (Fetch long-polls, acks=all produces, SlGroupWaitForRecords), and an
 * out-of-sync follower that caught up is asked into the ISR (through the
 * controller).  *high_watermark is set to the leader's high watermark
 * either way (-1 if unknown).  Cheap: shared memory only, no table write.
 */
extern int16 SlReplicaProgressReport(const SlTopic *topic, int32 partition,
									 int32 follower_id, int32 leader_epoch,
									 int64 log_end, int64 *high_watermark);

/*
 * On a follower: the leader said its high watermark is high_watermark;
 * the local one becomes min(that, local log end), never lower than it was.
 */
extern void SlReplicaSetHighWatermark(const SlTopic *topic, int32 partition,
									  int64 high_watermark);

/*
 * The high watermark is at or above offset (an acks=all produce whose
 * batch ends below offset is acknowledged); false also when this node no
 * longer leads in leader_epoch (the produce must not be acknowledged:
 * NOT_LEADER_OR_FOLLOWER).
 */
extern bool SlReplicaAcked(const SlTopic *topic, int32 partition,
						   int32 leader_epoch, int64 offset, bool *still_leader);

/*
 * The leader's view of one replica, for streamlog.replicas, the ISR
 * manager and DescribeTopicPartitions: its reported log end, when it was
 * last caught up (Kafka's lastCaughtUpTimeMs), and whether it counts in the
 * maximal ISR.
 */
typedef struct SlReplicaState
{
	int32		node_id;
	int64		log_end;		/* -1 if never reported since start */
	int64		last_caught_up_ms;	/* -1 if never */
	bool		in_maximal_isr;
} SlReplicaState;

extern int	SlReplicaStates(const SlTopic *topic, int32 partition,
							SlReplicaState *out, int max);

#endif							/* SL_STORAGE_REPLICA_PROGRESS_H */
