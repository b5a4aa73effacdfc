/*-------------------------------------------------------------------------
 * admin.c
 *	  What the administrative APIs and SQL ask of the group coordinator:
 *	  describe, list and forget groups (DescribeGroups, ListGroups,
 *	  DeleteGroups), and the topics a consumer group subscribes to
 *	  (OffsetDelete).
 *
 * Each call copies what it returns out of shared memory into the caller's
 * memory context under the coordinator's lock, after running the group's
 * due timers, so that a group nobody talks to is described as it stands.
 *
 * IDENTIFICATION
 *	  src/server/groups/admin.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/server/groups/protocols.h"
#include "streamlog/server/groups/rebalance.h"
#include "streamlog/server/groups/slots.h"

/* Copy out the description of g; the lock is held */
static void
describe_locked(const GroupSlot *g, bool all_details, SlGroupDescription *desc)
{
	bool		stable;

	memset(desc, 0, sizeof(*desc));
	stable = g->state == SL_GROUP_STABLE;
	desc->state = g->state;
	desc->generation = g->generation;
	desc->protocol_type = pstrdup(g->protocol_type);
	desc->protocol_name = pstrdup(stable || all_details ? g->protocol_name : "");
	desc->leader = pstrdup(g->leader >= 0 ? sl_group_members[g->leader].member_id : "");
	desc->members = palloc0(sizeof(SlGroupMemberInfo) * Max(g->nmembers, 1));
	for (int i = g->first; i >= 0; i = sl_group_members[i].next)
	{
		if (sl_group_members[i].pending || desc->nmembers >= g->nmembers)
			continue;
		SlMemberCopyInfo(g, &sl_group_members[i], &desc->members[desc->nmembers++],
					   stable || all_details, stable || all_details);
	}
}

bool
SlGroupDescribe(const char *group_id, bool all_details, SlGroupDescription *desc)
{
	GroupSlot  *g;

	memset(desc, 0, sizeof(*desc));
	SlGroupLock();
	g = SlGroupFind(group_id);
	if (g == NULL)
	{
		SlGroupUnlock();
		return false;
	}
	SlGroupRunTimers(g, GetCurrentTimestamp());
	describe_locked(g, all_details, desc);
	SlGroupUnlock();
	return true;
}

List *
SlGroupMetadataChanges(const char *group_id)
{
	List	   *result = NIL;

	GroupSlot  *one;

	SlGroupLock();
	one = group_id != NULL ? SlGroupFind(group_id) : NULL;
	for (int i = 0; i < sl_max_groups; i++)
	{
		GroupSlot  *g = group_id != NULL ? one : &sl_groups[i];
		SlGroupMetadataChange *c;

		if (group_id != NULL && i > 0)
			break;
		if (g == NULL || !g->in_use || g->metadata_changes == g->metadata_stored)
			continue;
		c = palloc(sizeof(SlGroupMetadataChange));
		c->group_id = pstrdup(g->group_id);
		c->change = g->metadata_changes;
		c->state_since = g->state_since;
		describe_locked(g, true, &c->desc);
		result = lappend(result, c);
	}
	SlGroupUnlock();
	return result;
}

void
SlGroupMetadataStored(const char *group_id, uint32 change)
{
	GroupSlot  *g;

	SlGroupLock();
	g = SlGroupFind(group_id);
	if (g != NULL && g->metadata_changes == change)
		g->metadata_stored = change;
	SlGroupUnlock();
}

List *
SlGroupList(void)
{
	List	   *result = NIL;

	SlGroupLock();
	for (int i = 0; i < sl_max_groups; i++)
	{
		GroupSlot  *g = &sl_groups[i];
		SlGroupListing *l;

		if (!g->in_use)
			continue;
		l = palloc(sizeof(SlGroupListing));
		l->group_id = pstrdup(g->group_id);
		l->state = g->state;
		l->empty_since = g->empty_since;
		l->protocol_type = pstrdup(g->protocol_type);
		result = lappend(result, l);
	}
	SlGroupUnlock();
	return result;
}

int16
SlGroupForget(const char *group_id, bool *found)
{
	GroupSlot  *g;
	int16		error = SL_ERR_NONE;

	SlGroupLock();
	g = SlGroupFind(group_id);
	*found = g != NULL;
	if (g != NULL)
	{
		SlGroupRunTimers(g, GetCurrentTimestamp());
		if (g->state != SL_GROUP_EMPTY)
			error = SL_ERR_NON_EMPTY_GROUP;
		else
		{
			g->state = SL_GROUP_DEAD;
			while (g->first >= 0)
				SlMemberFree(g, &sl_group_members[g->first]);
			g->in_use = false;
		}
	}
	SlGroupUnlock();
	return error;
}

bool
SlGroupSubscriptions(const char *group_id, SlGroupState *state, bool *consumer_protocol,
					 List **topics)
{
	GroupSlot  *g;

	*topics = NIL;
	SlGroupLock();
	g = SlGroupFind(group_id);
	if (g == NULL)
	{
		SlGroupUnlock();
		return false;
	}
	SlGroupRunTimers(g, GetCurrentTimestamp());
	*state = g->state;
	*consumer_protocol = strcmp(g->protocol_type, "consumer") == 0;
	if (*consumer_protocol)
	{
		for (int i = g->first; i >= 0; i = sl_group_members[i].next)
		{
			SlProtoList	l = SlProtoListOf(&sl_group_members[i]);
			SlProtoIter	it;
			const char *name;
			const uint8 *meta = NULL;
			int32		len = 0;
			bool		ok;
			List	   *mine;
			ListCell   *lc;

			if (sl_group_members[i].pending)
				continue;
			if (g->protocol_name[0] == '\0' ||
				!SlProtoListFind(&l, g->protocol_name, &meta, &len))
			{
				SlProtoIterInit(&it, &l);
				if (!SlProtoIterNext(&it, &name, &meta, &len))
					continue;
			}
			mine = SlProtoSubscriptionTopics(meta, len, &ok);
			foreach(lc, mine)
			{
				ListCell   *seen;
				bool		dup = false;

				foreach(seen, *topics)
					dup = dup || strcmp(lfirst(seen), lfirst(lc)) == 0;
				if (!dup)
					*topics = lappend(*topics, lfirst(lc));
			}
		}
	}
	SlGroupUnlock();
	return true;
}
