/*
 * Which partitions this node follows, and from which leaders, as the
 * cluster's metadata last synced to the catalog says (replica_followed.c):
 * for the replication launcher (one apply worker per leader) and each
 * apply worker (the partitions it keeps in step).
 */
#ifndef SL_STORAGE_REPLICA_FOLLOWED_H
#define SL_STORAGE_REPLICA_FOLLOWED_H

#include "nodes/pg_list.h"

typedef struct SlFollowedPartition
{
	int32		topic_id;
	int32		partition;
	int32		leader;
	int32		leader_epoch;
} SlFollowedPartition;

/*
 * Partitions node_id is a replica of but does not lead, whose leader is
 * leader_id (any live leader if -1), in topic and partition order: a List
 * of palloc'd SlFollowedPartition.  Runs in the caller's transaction.
 */
extern List *SlFollowedPartitions(int32 node_id, int32 leader_id);

#endif							/* SL_STORAGE_REPLICA_FOLLOWED_H */
