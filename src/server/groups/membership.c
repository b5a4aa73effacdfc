/*-------------------------------------------------------------------------
 * membership.c
 *	  What a joined member asks of its group: SyncGroup, Heartbeat,
 *	  LeaveGroup, and whether it may commit offsets (OffsetCommit).
 *
 * The leader's SyncGroup stores every member's assignment and makes the
 * group Stable; the other members' SyncGroups are parked by their broker
 * worker until then (or the sync deadline) and look again when woken
 * (args->poll).  Every call checks the member the way Kafka does: unknown
 * or pending members, fenced static instances, stale generations.
 *
 * IDENTIFICATION
 *	  src/server/groups/membership.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/server/groups/rebalance.h"
#include "streamlog/server/groups/slots.h"

/* Look up a member for SyncGroup, Heartbeat and commits: error or NONE */
static int16
check_member(const GroupSlot *g, const char *member_id, const char *instance_id, MemberSlot **mp)
{
	MemberSlot *m;

	*mp = NULL;
	if (g->state == SL_GROUP_DEAD)
		return SL_ERR_COORDINATOR_NOT_AVAILABLE;
	if (instance_id)
	{
		MemberSlot *s = SlMemberFindStatic(g, instance_id);

		if (s == NULL)
			return SL_ERR_UNKNOWN_MEMBER_ID;
		if (strcmp(s->member_id, member_id) != 0)
			return SL_ERR_FENCED_INSTANCE_ID;
	}
	m = SlMemberFind(g, member_id);
	if (m == NULL || m->pending)
		return SL_ERR_UNKNOWN_MEMBER_ID;
	*mp = m;
	return SL_ERR_NONE;
}

static void
sync_answer(const GroupSlot *g, const MemberSlot *m, SlGroupSyncResult *res)
{
	res->error = SL_ERR_NONE;
	res->wait = false;
	res->protocol_type = SlNullIfEmpty(g->protocol_type);
	res->protocol_name = SlNullIfEmpty(g->protocol_name);
	res->assignment = SlGroupBlobCopy(m->assignment, m->assignment_len);
	res->assignment_len = m->assignment_len;
}

/*
 * The leader's SyncGroup: store every member's assignment (members it left
 * out get an empty one) and make the group Stable.
 */
static int16
store_assignments(GroupSlot *g, const SlGroupSyncArgs *args, TimestampTz now)
{
	int			n = g->nmembers + g->npending;
	dsa_pointer *blobs = palloc0(sizeof(dsa_pointer) * Max(n, 1));
	int32	   *lens = palloc0(sizeof(int32) * Max(n, 1));
	bool		failed = false;
	int			k = 0;

	for (int i = g->first; i >= 0; i = sl_group_members[i].next, k++)
	{
		if (sl_group_members[i].pending)
			continue;
		for (int a = 0; a < args->nassignments; a++)
		{
			if (strcmp(args->assignments[a].member_id, sl_group_members[i].member_id) == 0)
			{
				blobs[k] = SlGroupBlobStore(args->assignments[a].data, args->assignments[a].len, &failed);
				lens[k] = DsaPointerIsValid(blobs[k]) ? args->assignments[a].len : 0;
				break;
			}
		}
	}
	if (failed)
	{
		for (int j = 0; j < n; j++)
			SlGroupBlobFree(&blobs[j]);
		return SL_ERR_COORDINATOR_NOT_AVAILABLE;
	}
	k = 0;
	for (int i = g->first; i >= 0; i = sl_group_members[i].next, k++)
	{
		MemberSlot *m = &sl_group_members[i];

		if (m->pending)
			continue;
		SlGroupBlobFree(&m->assignment);
		m->assignment = blobs[k];
		m->assignment_len = lens[k];
		m->assignment_generation = g->generation;
		m->awaiting_sync = false;
		m->last_heartbeat = now;
	}
	g->state = SL_GROUP_STABLE;
	/* Kafka stores the group with its assignment when the leader syncs */
	g->metadata_changes++;
	SlGroupChanged(g);
	return SL_ERR_NONE;
}

void
SlGroupSync(const SlGroupSyncArgs *args, SlGroupSyncResult *res)
{
	TimestampTz now;
	GroupSlot  *g;
	MemberSlot *m;

	memset(res, 0, sizeof(*res));
	res->assignment = (uint8 *) pstrdup("");
	SlGroupLock();
	now = GetCurrentTimestamp();
	g = SlGroupFind(args->group_id);
	if (g == NULL)
	{
		res->error = SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	SlGroupRunTimers(g, now);
	res->error = check_member(g, args->member_id, args->instance_id, &m);
	if (res->error != SL_ERR_NONE)
		goto done;

	if (args->poll)
	{
		if (m->assignment_generation == args->generation)
		{
			sync_answer(g, m, res);
			goto done;
		}
		if (args->generation != g->generation)
		{
			res->error = SL_ERR_REBALANCE_IN_PROGRESS;
			goto done;
		}
	}
	else
	{
		if (args->generation != g->generation)
		{
			res->error = SL_ERR_ILLEGAL_GENERATION;
			goto done;
		}
		if ((args->protocol_type && strcmp(args->protocol_type, g->protocol_type) != 0) ||
			(args->protocol_name && strcmp(args->protocol_name, g->protocol_name) != 0))
		{
			res->error = SL_ERR_INCONSISTENT_GROUP_PROTOCOL;
			goto done;
		}
	}

	switch (g->state)
	{
		case SL_GROUP_PREPARING_REBALANCE:
			res->error = SL_ERR_REBALANCE_IN_PROGRESS;
			break;
		case SL_GROUP_COMPLETING_REBALANCE:
			m->last_heartbeat = now;
			m->sync_generation = g->generation;
			if (!args->poll && g->leader == SlMemberIndex(m))
			{
				res->error = store_assignments(g, args, now);
				if (res->error == SL_ERR_NONE)
					sync_answer(g, m, res);
				break;
			}
			m->awaiting_sync = true;
			res->wait = true;
			res->deadline = g->sync_deadline;
			break;
		case SL_GROUP_STABLE:
			/* A Stable group keeps its assignment (a static leader's resync) */
			m->last_heartbeat = now;
			sync_answer(g, m, res);
			break;
		default:
			res->error = SL_ERR_UNKNOWN_MEMBER_ID;
			break;
	}

done:
	SlGroupUnlock();
}

int16
SlGroupHeartbeat(const char *group_id, const char *member_id, const char *instance_id,
				 int32 generation)
{
	TimestampTz now;
	GroupSlot  *g;
	MemberSlot *m;
	int16		error;

	SlGroupLock();
	now = GetCurrentTimestamp();
	g = SlGroupFind(group_id);
	if (g == NULL)
	{
		error = SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	SlGroupRunTimers(g, now);
	error = check_member(g, member_id, instance_id, &m);
	if (error != SL_ERR_NONE)
		goto done;
	if (g->state == SL_GROUP_EMPTY)
		error = SL_ERR_UNKNOWN_MEMBER_ID;
	else if (generation != g->generation)
		error = SL_ERR_ILLEGAL_GENERATION;
	else
	{
		m->last_heartbeat = now;
		if (g->state == SL_GROUP_PREPARING_REBALANCE)
			error = SL_ERR_REBALANCE_IN_PROGRESS;
	}

done:
	SlGroupUnlock();
	return error;
}

int16
SlGroupLeave(const char *group_id, const char *member_id, const char *instance_id,
			 bool *group_found)
{
	TimestampTz now;
	GroupSlot  *g;
	MemberSlot *m;
	int16		error = SL_ERR_NONE;

	SlGroupLock();
	now = GetCurrentTimestamp();
	g = SlGroupFind(group_id);
	*group_found = g != NULL;
	if (g == NULL)
	{
		error = SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	SlGroupRunTimers(g, now);
	if (g->state == SL_GROUP_DEAD)
	{
		error = SL_ERR_COORDINATOR_NOT_AVAILABLE;
		goto done;
	}
	if (instance_id)
	{
		m = SlMemberFindStatic(g, instance_id);
		if (m == NULL)
		{
			error = SL_ERR_UNKNOWN_MEMBER_ID;
			goto done;
		}
		if (member_id[0] != '\0' && strcmp(m->member_id, member_id) != 0)
		{
			error = SL_ERR_FENCED_INSTANCE_ID;
			goto done;
		}
	}
	else
	{
		m = SlMemberFind(g, member_id);
		if (m == NULL)
		{
			error = SL_ERR_UNKNOWN_MEMBER_ID;
			goto done;
		}
	}
	SlGroupRemoveMember(g, m, now);

done:
	SlGroupUnlock();
	return error;
}

int16
SlGroupCheckCommit(const char *group_id, const char *member_id, const char *instance_id,
				   int32 generation, int16 api_version)
{
	TimestampTz now;
	GroupSlot  *g;
	MemberSlot *m;
	int16		error = SL_ERR_NONE;
	bool		simple = generation < 0 && member_id[0] == '\0' && instance_id == NULL;

	SlGroupLock();
	now = GetCurrentTimestamp();
	g = SlGroupFind(group_id);
	if (g == NULL)
	{
		/* Kafka creates a "simple" group for commits from outside any */
		if (generation >= 0 || member_id[0] != '\0' || instance_id != NULL)
			error = api_version >= 9 ? SL_ERR_GROUP_ID_NOT_FOUND : SL_ERR_ILLEGAL_GENERATION;
		goto done;
	}
	SlGroupRunTimers(g, now);
	if (g->state == SL_GROUP_DEAD)
	{
		error = SL_ERR_COORDINATOR_NOT_AVAILABLE;
		goto done;
	}
	if (generation < 0 && g->state == SL_GROUP_EMPTY)
		goto done;
	if (simple)
	{
		error = SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	error = check_member(g, member_id, instance_id, &m);
	if (error != SL_ERR_NONE)
		goto done;
	if (generation != g->generation)
	{
		error = SL_ERR_ILLEGAL_GENERATION;
		goto done;
	}
	if (g->state == SL_GROUP_COMPLETING_REBALANCE)
	{
		error = SL_ERR_REBALANCE_IN_PROGRESS;
		goto done;
	}
	m->last_heartbeat = now;

done:
	SlGroupUnlock();
	return error;
}
