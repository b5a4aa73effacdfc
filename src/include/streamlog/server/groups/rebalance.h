/*-------------------------------------------------------------------------
 * rebalance.h
 *	  Internal to the group coordinator (src/server/groups/): the
 *	  transitions of a group's state machine, and the timers that drive
 *	  some of them.  Called with the coordinator's lock held.
 *
 * IDENTIFICATION
 *	  src/include/streamlog/server/groups/rebalance.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_GROUP_REBALANCE_H
#define SL_GROUP_REBALANCE_H

#include "postgres.h"

#include "streamlog/server/groups/slots.h"

/* Start a rebalance (PreparingRebalance) from any state */
extern void SlGroupPrepareRebalance(GroupSlot *g, TimestampTz now);

/* Start a rebalance unless one is already under way */
extern void SlGroupMaybePrepareRebalance(GroupSlot *g, TimestampTz now);

/* Complete the rebalance if every member rejoined or its time is up */
extern void SlGroupTryCompleteJoin(GroupSlot *g, TimestampTz now);

/* Remove a member (left, expired or fenced) and move the group on */
extern void SlGroupRemoveMember(GroupSlot *g, MemberSlot *m, TimestampTz now);

/*
 * Run what is due in a group (timers.c): session expiry, rebalance and
 * sync deadlines.  Every request that touches a group calls it first.
 */
extern void SlGroupRunTimers(GroupSlot *g, TimestampTz now);

#endif							/* SL_GROUP_REBALANCE_H */
