/*
 * Moving a partition's replicas (metadata/partition_reassignment.c),
 * Kafka's AlterPartitionReassignments (KIP-455) for both doors: the Kafka
 * API and streamlog.reassign_partition().  The controller decides
 * (cluster/controller_reassign.c); the progress is in the catalog's
 * partitions (adding_replicas, removing_replicas), which
 * ListPartitionReassignments and streamlog.reassignments read.
 */
#ifndef SL_METADATA_PARTITION_REASSIGNMENT_H
#define SL_METADATA_PARTITION_REASSIGNMENT_H

#include "postgres.h"

/* Kafka error codes of a reassignment (Kafka 3.9's Errors) */
#define SL_REASSIGN_ERR_UNKNOWN_TOPIC_OR_PARTITION 3
#define SL_REASSIGN_ERR_INVALID_REPLICA_ASSIGNMENT 39
#define SL_REASSIGN_ERR_NO_REASSIGNMENT_IN_PROGRESS 85

/*
 * Start (replicas given) or cancel (nreplicas < 0) the reassignment of
 * one partition, and wait until the controller committed it and this
 * node's catalog applied it.  Returns a Kafka error code (0: done), with
 * *message palloc'd when there is something to say.  Standalone, the only
 * replica is this node: [this node] changes nothing, anything else is
 * INVALID_REPLICA_ASSIGNMENT.  The caller checked authorization.
 */
extern int16 SlReassignPartition(const char *topic, int32 partition,
								 const int32 *replicas, int nreplicas,
								 int timeout_ms, char **message);

#endif							/* SL_METADATA_PARTITION_REASSIGNMENT_H */
