/*
 * Which node coordinates a consumer group on a cluster
 * (metadata/group_placement.c): one node per group, the same answer on
 * every node, so that members that bootstrap from different nodes form one
 * group.  Standalone, this node coordinates every group.
 */
#ifndef SL_METADATA_GROUP_PLACEMENT_H
#define SL_METADATA_GROUP_PLACEMENT_H

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

#endif							/* SL_METADATA_GROUP_PLACEMENT_H */
