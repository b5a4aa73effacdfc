/*-------------------------------------------------------------------------
 * timers.c
 *	  The group coordinator's timers: session expiry, and the rebalance and
 *	  sync deadlines.
 *
 * Timers run when any request touches the group (each of the coordinator's
 * calls runs the group's due timers first), and every SL_GROUP_TIMER_MS in
 * broker worker 0 while any group has members, so that a group nobody
 * talks to still expires its members.  A member whose JoinGroup or
 * SyncGroup is parked does not expire: those waits are bounded by the
 * rebalance timeout.
 *
 * IDENTIFICATION
 *	  src/server/groups/timers.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/server/groups/rebalance.h"
#include "streamlog/server/groups/slots.h"

static bool
session_expired(const MemberSlot *m, TimestampTz now)
{
	return now >= TimestampTzPlusMilliseconds(m->last_heartbeat, m->session_timeout_ms);
}

/*
 * SlGroupRunTimers runs what is due in a group: members whose session expired
 * are removed (except while their JoinGroup or SyncGroup waits: those are
 * bounded by the rebalance timeout), a rebalance whose deadline passed
 * completes, and at the sync deadline the members that have not synced
 * are removed.
 */
void
SlGroupRunTimers(GroupSlot *g, TimestampTz now)
{
	bool		removed = true;

	while (removed)
	{
		removed = false;
		for (int i = g->first; i >= 0; i = sl_group_members[i].next)
		{
			MemberSlot *m = &sl_group_members[i];

			if (!m->pending &&
				((m->awaiting_join && g->state == SL_GROUP_PREPARING_REBALANCE) ||
				 (m->awaiting_sync && g->state == SL_GROUP_COMPLETING_REBALANCE)))
				continue;
			if (session_expired(m, now))
			{
				ereport(LOG,
						(errmsg("streamlog group \"%s\": member \"%s\" removed, no heartbeat for %d ms",
								g->group_id, m->member_id, m->session_timeout_ms)));
				SlGroupRemoveMember(g, m, now);
				removed = true;
				break;
			}
		}
	}

	if (g->state == SL_GROUP_PREPARING_REBALANCE)
		SlGroupTryCompleteJoin(g, now);
	else if (g->state == SL_GROUP_COMPLETING_REBALANCE && now >= g->sync_deadline)
	{
		int			i = g->first;

		while (i >= 0)
		{
			MemberSlot *m = &sl_group_members[i];

			i = m->next;
			if (!m->pending && m->sync_generation != g->generation)
				SlMemberFree(g, m);
		}
		if (g->state == SL_GROUP_COMPLETING_REBALANCE)
			SlGroupPrepareRebalance(g, now);
	}
}

long
SlGroupCoordinatorTimers(long timeout_ms)
{
	static TimestampTz next_run = 0;
	TimestampTz now;
	long		until;

	if (sl_group_coord == NULL || pg_atomic_read_u32(&sl_group_coord->members_in_use) == 0)
		return timeout_ms;
	now = GetCurrentTimestamp();
	if (now >= next_run)
	{
		SlGroupLock();
		for (int i = 0; i < sl_max_groups; i++)
			if (sl_groups[i].in_use && sl_groups[i].first >= 0)
				SlGroupRunTimers(&sl_groups[i], now);
		SlGroupUnlock();
		next_run = TimestampTzPlusMilliseconds(now, SL_GROUP_TIMER_MS);
	}
	until = TimestampDifferenceMilliseconds(now, next_run);
	return timeout_ms < 0 ? until : Min(timeout_ms, until);
}
