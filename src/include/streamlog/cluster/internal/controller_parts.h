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

/* The request decisions of their own files */
extern int16_t SlControllerAlterPartition(const SlMetaImage *image,
										  const SlControllerRequest *req,
										  SlMetaBatch *out,
										  char *errbuf, size_t errbuf_len);

#endif							/* SL_CLUSTER_INTERNAL_CONTROLLER_PARTS_H */
