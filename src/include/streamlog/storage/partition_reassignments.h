/*
 * The reassignments under way as this node's catalog holds them
 * (storage/partition_reassignments.c): what the cluster's metadata last
 * applied here, for Kafka's ListPartitionReassignments.
 */
#ifndef SL_STORAGE_PARTITION_REASSIGNMENTS_H
#define SL_STORAGE_PARTITION_REASSIGNMENTS_H

#include "postgres.h"

#include "nodes/pg_list.h"

typedef struct SlPartitionReassignment
{
	char	   *topic;
	int32		partition;
	int			nreplicas;
	int32	   *replicas;
	int			nadding;
	int32	   *adding;
	int			nremoving;
	int32	   *removing;
} SlPartitionReassignment;

/*
 * Every partition with a reassignment under way, of topic (NULL: of every
 * topic), by topic name and partition: a List of SlPartitionReassignment *
 * made in the caller's memory context.  The caller checked authorization.
 */
extern List *SlPartitionReassignmentsList(const char *topic);

#endif							/* SL_STORAGE_PARTITION_REASSIGNMENTS_H */
