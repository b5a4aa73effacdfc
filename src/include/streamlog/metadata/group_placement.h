/*
 * Which node coordinates a consumer group on a cluster
 * (metadata/group_placement.c): one node per group, the same answer on
 * every node, so that members that bootstrap from different nodes form one
 * group.  Standalone, this node coordinates every group.
 */
#ifndef SL_METADATA_GROUP_PLACEMENT_H
#define SL_METADATA_GROUP_PLACEMENT_H

#include "streamlog/storage/wakeups.h"

/*
 * The coordinator of group_id: the leader of the partition of
 * __consumer_offsets that holds the group (Kafka's Utils.abs(hashCode) %
 * partitions) when that topic exists, else the unfenced registered node at
 * the same hash among their ids in ascending order.  -1 when none is
 * available (the partition is offline, or no node is up).
 */
extern int32 SlGroupCoordinatorNode(const char *group_id);

/* Does this node coordinate group_id?  Always true standalone */
extern bool SlGroupCoordinatedHere(const char *group_id);

/*
 * Can this node answer for group_id now?  0 if so; NOT_COORDINATOR (16)
 * if another node (or none) coordinates it; COORDINATOR_LOAD_IN_PROGRESS
 * (14) while this node, new leader of the group's partition of
 * __consumer_offsets, loads that partition's committed offsets
 * (storage/group_load.h; the first call starts the load).
 */
extern int16 SlGroupCoordinatorError(const char *group_id);

/*
 * A group request that may park (JoinGroup, SyncGroup) waits on this key
 * too, said before it asks whether this node coordinates the group; the
 * Raft worker notifies it each time it publishes a changed view of the
 * cluster (__consumer_offsets created, its leaders moved, a node fenced or
 * stopping), so that a request parked here while its group moved away is
 * answered NOT_COORDINATOR at once, as Kafka answers the waiting members of
 * a group it unloads, rather than at the rebalance deadline.
 */
extern SlWaitKey SlGroupPlacementWaitKey(void);
extern void SlGroupPlacementMayHaveChanged(void);

#endif							/* SL_METADATA_GROUP_PLACEMENT_H */
