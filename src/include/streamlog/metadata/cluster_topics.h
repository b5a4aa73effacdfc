/*
 * Topic administration on a cluster (streamlog.controller_quorum_voters
 * set): both doors check a change as they always did, then hand it to the
 * cluster's controller here and wait until it is committed and applied to
 * this node's catalog.  As in Kafka, the change is not part of the
 * caller's transaction: once this returns, it stays, whatever the caller
 * does next.
 *
 * Each returns a Kafka error code (0: done), with *message (palloc'd) set
 * when there is something to say.
 */
#ifndef SL_METADATA_CLUSTER_TOPICS_H
#define SL_METADATA_CLUSTER_TOPICS_H

#include "postgres.h"

#include "utils/jsonb.h"

/* How long a door waits for the controller by default */
#define SL_CLUSTER_TOPIC_TIMEOUT_MS 30000

/*
 * Replicas given by the client for new partitions (CreateTopics and
 * CreatePartitions assignments): count partitions, sizes[i] node ids in
 * nodes[i]
 */
typedef struct SlReplicaAssignment
{
	int32		count;
	int32	   *sizes;
	int32	  **nodes;
} SlReplicaAssignment;

/*
 * Create a topic; config normalized (SlTopicCheckCreate), owned by the
 * current role (internal topics: by the bootstrap superuser on every
 * node).  assignment NULL: the controller spreads the partitions.
 */
extern int16 SlClusterCreateTopic(const char *name, int32 partitions,
								  int32 replication_factor, Jsonb *config,
								  bool internal, const SlReplicaAssignment *assignment,
								  int timeout_ms, char **message);

extern int16 SlClusterDeleteTopic(const char *name, int timeout_ms, char **message);

/* Grow a topic to new_total partitions */
extern int16 SlClusterCreatePartitions(const char *name, int32 new_total,
									   const SlReplicaAssignment *assignment,
									   int timeout_ms, char **message);

/* Replace a topic's explicit config with config (normalized, whole) */
extern int16 SlClusterAlterTopicConfig(const char *name, Jsonb *config,
									   int timeout_ms, char **message);

#endif							/* SL_METADATA_CLUSTER_TOPICS_H */
