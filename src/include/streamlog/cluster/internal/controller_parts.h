/*
 * What the controller's decision files share (controller.c and the
 * requests that change partitions: controller_alter_partition.c,
 * controller_reassign.c): Kafka's error codes, reporting a refusal,
 * which nodes may hold a leadership, and a record with nothing set.
 */
#ifndef SL_CLUSTER_INTERNAL_CONTROLLER_PARTS_H
#define SL_CLUSTER_INTERNAL_CONTROLLER_PARTS_H

#include <stddef.h>

#include "streamlog/cluster/controller.h"

/*
 * Kafka's error codes (protocol/generated/kapi.h has them; this layer may
 * not include it)
 */
#define KAFKA_UNKNOWN_SERVER_ERROR (-1)
#define KAFKA_UNKNOWN_TOPIC_OR_PARTITION 3
#define KAFKA_BROKER_NOT_AVAILABLE 8
#define KAFKA_INVALID_TOPIC_EXCEPTION 17
#define KAFKA_TOPIC_ALREADY_EXISTS 36
#define KAFKA_INVALID_PARTITIONS 37
#define KAFKA_INVALID_REPLICATION_FACTOR 38
#define KAFKA_INVALID_REPLICA_ASSIGNMENT 39
#define KAFKA_NOT_CONTROLLER 41
#define KAFKA_INVALID_REQUEST 42
#define KAFKA_FENCED_LEADER_EPOCH 74
#define KAFKA_NO_REASSIGNMENT_IN_PROGRESS 85
#define KAFKA_INVALID_UPDATE_VERSION 95
#define KAFKA_BROKER_ID_NOT_REGISTERED 102
#define KAFKA_INELIGIBLE_REPLICA 107

/*
 * Most replicas of a partition: the leader keeps each follower's progress
 * in shared memory (storage/replica_progress.h, SL_MAX_REPLICAS)
 */
#define SL_CTRL_MAX_REPLICAS 8

/* Report code with a message in errbuf (which may be NULL); returns code */
extern int16_t SlControllerFail(char *errbuf, size_t errbuf_len, int16_t code,
								const char *fmt,...)
			__attribute__((format(printf, 4, 5)));

/* May the node hold a leadership or join an ISR: registered, unfenced, not
 * shutting down? */
extern bool SlControllerNodeUsable(const SlMetaNode *node);

/* A record of type with every PARTITION_CHANGE field "unchanged" */
extern SlMetaRecord SlControllerNewRecord(SlMetaRecordType type);

/*
 * A partition's state being decided (KRaft's PartitionChangeBuilder):
 * start from the image's partition, set what the decision changes, let
 * the rules follow (a reassignment completes once its adding replicas are
 * in the ISR; a leader outside the ISR gives way), and write the one
 * PARTITION_CHANGE record that takes the image there.  During a
 * reassignment a partition has its targets and the replicas being
 * removed: twice the most a partition may have.
 */
#define SL_CTRL_MAX_TARGET (2 * SL_CTRL_MAX_REPLICAS)

typedef struct SlPartitionTarget
{
	int32_t		nreplicas;
	int32_t		replicas[SL_CTRL_MAX_TARGET];
	int32_t		nisr;
	int32_t		isr[SL_CTRL_MAX_TARGET];
	int32_t		nadding;
	int32_t		adding[SL_CTRL_MAX_TARGET];
	int32_t		nremoving;
	int32_t		removing[SL_CTRL_MAX_TARGET];
	int32_t		leader;
} SlPartitionTarget;

/* Whether a node may lead or join an ISR, as the decision sees nodes */
typedef bool (*SlNodeUsableFn) (void *arg, int32_t node_id);

/* The partition as it is; false if it has more replicas than a target holds */
extern bool SlPartitionTargetInit(SlPartitionTarget *t, const SlMetaPartition *part);

/*
 * KIP-455: a reassignment whose adding replicas are all in the ISR (and
 * whose ISR keeps a member once the removing ones leave it) is complete:
 * the removing replicas leave the replicas and the ISR.  Returns whether
 * it completed.
 */
extern bool SlPartitionTargetCompleteReassignment(SlPartitionTarget *t);

/*
 * A leader that is not in the ISR, not a replica or not usable gives way
 * to the first usable ISR member in replica order, or to none
 */
extern void SlPartitionTargetElect(SlPartitionTarget *t, SlNodeUsableFn usable, void *arg);

/*
 * Add to out the PARTITION_CHANGE record that takes part (of topic_id) to
 * t, if they differ; false if out of memory
 */
extern bool SlPartitionTargetRecord(const SlPartitionTarget *t, int32_t topic_id,
									const SlMetaPartition *part, SlMetaBatch *out);

/* SlNodeUsableFn over an image (arg): SlControllerNodeUsable of the node */
extern bool SlControllerImageNodeUsable(void *arg, int32_t node_id);

/* The request decisions of their own files */
extern int16_t SlControllerAlterPartition(const SlMetaImage *image,
										  const SlControllerRequest *req,
										  SlMetaBatch *out,
										  char *errbuf, size_t errbuf_len);

extern int16_t SlControllerReassignPartitions(const SlMetaImage *image,
											  const SlControllerRequest *req,
											  SlMetaBatch *out,
											  char *errbuf, size_t errbuf_len);

#endif							/* SL_CLUSTER_INTERNAL_CONTROLLER_PARTS_H */
