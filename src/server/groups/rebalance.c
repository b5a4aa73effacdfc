/*-------------------------------------------------------------------------
 * rebalance.c
 *	  The state machine of a classic consumer group: rebalances, the
 *	  generations they make, and the removal of members.
 *
 * A group is Empty, PreparingRebalance, CompletingRebalance or Stable (Dead
 * only while DeleteGroups forgets it).  A JoinGroup moves it to
 * PreparingRebalance; the joins wait until every member has rejoined or the
 * rebalance timeout (the largest of the members') has passed, members that
 * did not rejoin are removed, the generation goes up, a protocol every
 * member supports is chosen by the members' preferences, and every joined
 * member learns the generation, the protocol and the leader; the leader also
 * gets every member's metadata (CompletingRebalance).  The leader's
 * SyncGroup stores each member's assignment and completes the group's
 * waiting SyncGroups (Stable, see membership.c).  A member that sends
 * nothing for its session timeout is removed (timers.c), and the group
 * rebalances.
 *
 * The first rebalance of an Empty group waits
 * streamlog.group_initial_rebalance_delay (Kafka's
 * group.initial.rebalance.delay.ms), and again while new members keep
 * arriving, within the rebalance timeout, so that consumers started
 * together do not make one rebalance each.
 *
 * Every transition a parked JoinGroup or SyncGroup may be waiting for is
 * noted with SlGroupChanged; the requests parked on that group are woken
 * when the lock is released (slots.c).
 *
 * IDENTIFICATION
 *	  src/server/groups/rebalance.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/server/groups/protocols.h"
#include "streamlog/server/groups/rebalance.h"
#include "streamlog/server/groups/slots.h"

static int32
max_rebalance_timeout(const GroupSlot *g)
{
	int32		t = 0;

	for (int i = g->first; i >= 0; i = sl_group_members[i].next)
		if (!sl_group_members[i].pending)
			t = Max(t, sl_group_members[i].rebalance_timeout_ms);
	return Max(t, 1);
}

static bool
all_joined(const GroupSlot *g)
{
	if (g->npending > 0)
		return false;
	for (int i = g->first; i >= 0; i = sl_group_members[i].next)
		if (!sl_group_members[i].awaiting_join)
			return false;
	return true;
}

/*
 * complete_join ends a rebalance: members that did not rejoin go, the
 * generation goes up, and the joined members learn it from their parked
 * JoinGroups.
 */
static void
complete_join(GroupSlot *g, TimestampTz now)
{
	int			i = g->first;
	const char *protocol;

	while (i >= 0)
	{
		MemberSlot *m = &sl_group_members[i];

		i = m->next;
		if (!m->pending && !m->awaiting_join)
			SlMemberFree(g, m);
	}
	g->initial_delay = false;
	g->generation++;
	g->state_since = now;
	SlGroupChanged(g);
	if (g->nmembers == 0)
	{
		g->state = SL_GROUP_EMPTY;
		g->protocol_name[0] = '\0';
		g->empty_since = now;
		/* Kafka stores the emptied group (its generation, no members) */
		g->metadata_changes++;
		return;
	}
	protocol = SlGroupSelectProtocol(g);
	strlcpy(g->protocol_name, protocol ? protocol : "", SL_GROUP_ID_LEN);
	g->state = SL_GROUP_COMPLETING_REBALANCE;
	g->sync_deadline = TimestampTzPlusMilliseconds(now, max_rebalance_timeout(g));
	for (i = g->first; i >= 0; i = sl_group_members[i].next)
	{
		MemberSlot *m = &sl_group_members[i];

		if (m->pending)
			continue;
		m->awaiting_join = false;
		m->awaiting_sync = false;
		m->join_generation = g->generation;
		m->last_heartbeat = now;
	}
}

/* Complete the rebalance if every member rejoined or its time is up */
void
SlGroupTryCompleteJoin(GroupSlot *g, TimestampTz now)
{
	if (g->state != SL_GROUP_PREPARING_REBALANCE)
		return;
	if (g->initial_delay)
	{
		if (now < g->join_deadline)
			return;
		/* Members keep arriving: wait a little more, within the timeout */
		if (g->new_member_added && g->initial_remaining_ms > 0)
		{
			int32		delay = Min(sl_group_initial_rebalance_delay, g->initial_remaining_ms);

			g->new_member_added = false;
			g->initial_remaining_ms -= delay;
			g->join_deadline = TimestampTzPlusMilliseconds(now, delay);
			SlGroupChanged(g);
			return;
		}
	}
	else if (!all_joined(g) && now < g->join_deadline)
		return;
	complete_join(g, now);
}

void
SlGroupPrepareRebalance(GroupSlot *g, TimestampTz now)
{
	bool		was_empty = g->state == SL_GROUP_EMPTY;
	int32		timeout = max_rebalance_timeout(g);

	/* Waiting SyncGroups now get REBALANCE_IN_PROGRESS */
	for (int i = g->first; i >= 0; i = sl_group_members[i].next)
		sl_group_members[i].awaiting_sync = false;
	g->state = SL_GROUP_PREPARING_REBALANCE;
	if (was_empty && sl_group_initial_rebalance_delay > 0)
	{
		int32		delay = Min(sl_group_initial_rebalance_delay, timeout);

		g->initial_delay = true;
		g->new_member_added = false;
		g->initial_remaining_ms = timeout - delay;
		g->join_deadline = TimestampTzPlusMilliseconds(now, delay);
	}
	else
	{
		g->initial_delay = false;
		g->join_deadline = TimestampTzPlusMilliseconds(now, timeout);
	}
	SlGroupChanged(g);
	SlGroupTryCompleteJoin(g, now);
}

void
SlGroupMaybePrepareRebalance(GroupSlot *g, TimestampTz now)
{
	if (g->state == SL_GROUP_EMPTY || g->state == SL_GROUP_STABLE ||
		g->state == SL_GROUP_COMPLETING_REBALANCE)
		SlGroupPrepareRebalance(g, now);
}

/* Remove a member (left, expired or fenced) and move the group on */
void
SlGroupRemoveMember(GroupSlot *g, MemberSlot *m, TimestampTz now)
{
	bool		was_pending = m->pending;

	SlMemberFree(g, m);
	switch (g->state)
	{
		case SL_GROUP_STABLE:
		case SL_GROUP_COMPLETING_REBALANCE:
			if (!was_pending)
				SlGroupPrepareRebalance(g, now);
			break;
		case SL_GROUP_PREPARING_REBALANCE:
			SlGroupTryCompleteJoin(g, now);
			break;
		default:
			break;
	}
}
