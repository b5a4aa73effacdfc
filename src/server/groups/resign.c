/*-------------------------------------------------------------------------
 * resign.c
 *	  Unloading the groups this node no longer coordinates (Kafka's
 *	  GroupCoordinator.onResignation and unloadGroup).
 *
 * On a cluster a group is coordinated by the leader of its partition of
 * __consumer_offsets; when that leadership moves, the members find the new
 * coordinator and form the group there.  The state the old coordinator
 * kept in shared memory (members, their protocols and assignments, the
 * generation, pending joins) would stay: listed by ListGroups here, and
 * served again, stale, if the leadership came back later.  So broker
 * worker 0 looks every SL_GROUP_UNLOAD_MS for groups in use here that this
 * node does not coordinate, as its catalog says, and drops them: the group
 * becomes Dead, which answers its parked JoinGroup and SyncGroup requests
 * (they look again and find NOT_COORDINATOR), and its slots are freed.  A
 * node that coordinates the group again later starts it over, as a new
 * coordinator does, and loads the committed offsets afresh for its new
 * leader epoch (storage/group_load.h).
 *
 * IDENTIFICATION
 *	  src/server/groups/resign.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/group_placement.h"
#include "streamlog/server/groups/slots.h"

#define SL_GROUP_UNLOAD_MS 1000

/* timeout_ms (-1: none), lowered to wake up at next_run */
static long
next_timeout(long timeout_ms, TimestampTz now, TimestampTz next_run)
{
	long		until = TimestampDifferenceMilliseconds(now, next_run);

	return timeout_ms < 0 ? until : Min(timeout_ms, until);
}

/* The ids of the groups in use here */
static List *
groups_in_use(void)
{
	List	   *ids = NIL;

	SlGroupLock();
	for (int i = 0; i < sl_max_groups; i++)
		if (sl_groups[i].in_use)
			ids = lappend(ids, pstrdup(sl_groups[i].group_id));
	SlGroupUnlock();
	return ids;
}

/* Of ids, those another node (or none) coordinates, as the catalog says */
static List *
not_coordinated_here(List *ids)
{
	List	   *out = NIL;
	ListCell   *lc;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	foreach(lc, ids)
	{
		char	   *id = lfirst(lc);

		if (!SlGroupCoordinatedHere(id))
			out = lappend(out, id);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	return out;
}

/* Drop a group's state, its parked requests told (SlGroupUnlock wakes them) */
static void
unload_locked(GroupSlot *g)
{
	g->state = SL_GROUP_DEAD;
	SlGroupChanged(g);
	while (g->first >= 0)
		SlMemberFree(g, &sl_group_members[g->first]);
	g->in_use = false;
}

long
SlGroupUnloadResigned(long timeout_ms)
{
	static TimestampTz next_run = 0;
	static MemoryContext context = NULL;
	TimestampTz now = GetCurrentTimestamp();
	MemoryContext oldcxt;
	List	   *ids;
	List	   *resigned = NIL;
	ListCell   *lc;
	int			unloaded = 0;

	if (sl_group_coord == NULL || !SlClusterEnabled())
		return timeout_ms;
	if (now < next_run)
		return next_timeout(timeout_ms, now, next_run);
	next_run = TimestampTzPlusMilliseconds(now, SL_GROUP_UNLOAD_MS);
	if (context == NULL)
		context = AllocSetContextCreate(TopMemoryContext, "streamlog group unload",
										ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(context);
	ids = groups_in_use();
	if (ids != NIL)
	{
		PG_TRY();
		{
			resigned = not_coordinated_here(ids);
		}
		PG_CATCH();
		{
			/* The catalog not there yet (or gone): keep every group */
			MemoryContextSwitchTo(context);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			resigned = NIL;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(context);
	}
	if (resigned != NIL)
	{
		SlGroupLock();
		foreach(lc, resigned)
		{
			GroupSlot  *g = SlGroupFind(lfirst(lc));

			if (g != NULL)
			{
				unload_locked(g);
				unloaded++;
			}
		}
		SlGroupUnlock();
		ereport(LOG,
				(errmsg("streamlog: unloaded %d consumer groups this node no longer coordinates",
						unloaded)));
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(context);
	/* Nothing held here: nothing to look at until a group comes */
	if (ids == NIL || list_length(resigned) == list_length(ids))
		return timeout_ms;
	return next_timeout(timeout_ms, now, next_run);
}
