/*
 * Dropping the slots of followers that stopped following this node
 * (replication/slot_cleanup.c).  A leader keeps a logical slot per
 * follower (SL_REPLICATION_SLOT_FORMAT); one whose follower no longer
 * replicates any partition this node leads would pin WAL for good.
 */
#ifndef SL_REPLICATION_SLOT_CLEANUP_H
#define SL_REPLICATION_SLOT_CLEANUP_H

/*
 * One round, from the replication launcher of every node of a cluster
 * (outside a transaction): drop each inactive follower slot of this
 * database whose follower has had no partition in common with this node
 * as leader, as the catalog says, for SL_SLOT_UNNEEDED_GRACE_MS.  An
 * active slot is never dropped; a follower that comes back creates its
 * slot again and catches up through the side channel.  Errors are
 * reported and cost the round only.
 */
extern void SlDropUnfollowedSlots(void);

#endif							/* SL_REPLICATION_SLOT_CLEANUP_H */
