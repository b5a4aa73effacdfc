/*-------------------------------------------------------------------------
 * join.c
 *	  JoinGroup: a member joins (or rejoins) a group and waits for the
 *	  rebalance to give it a generation.
 *
 * A JoinGroup that must wait is parked by its broker worker with the
 * group's rebalance deadline and looks again (SlGroupJoinPoll) when woken;
 * it re-validates everything then, so a member that was removed, fenced or
 * moved to another generation in the meantime gets the error Kafka gives.
 *
 * A join takes one of three paths, as in Redpanda's group: the
 * unknown-member path (no member id yet: a new member, or the first join
 * of KIP-394), the known-member path (a member, or a pending one, joining
 * again), and the static-member path, taken from the unknown-member one
 * when the instance id is already registered: a static member (with a
 * group.instance.id) that restarts replaces its old member id, which is
 * fenced (FENCED_INSTANCE_ID); if the group is Stable and the member's
 * subscription did not change, nobody else rebalances.
 *
 * IDENTIFICATION
 *	  src/server/groups/join.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/server/groups/protocols.h"
#include "streamlog/server/groups/rebalance.h"
#include "streamlog/server/groups/slots.h"

static void
result_init(SlGroupJoinResult *res, const char *member_id)
{
	memset(res, 0, sizeof(*res));
	res->error = SL_ERR_NONE;
	res->member_id = pstrdup(member_id ? member_id : "");
	res->generation = -1;
	res->leader = pstrdup("");
}

/* The JoinGroup answer of member m from the group's current generation */
static void
fill_join_result(const GroupSlot *g, const MemberSlot *m, SlGroupJoinResult *res)
{
	res->error = SL_ERR_NONE;
	res->wait = false;
	res->member_id = pstrdup(m->member_id);
	res->generation = g->generation;
	res->protocol_type = SlNullIfEmpty(g->protocol_type);
	res->protocol_name = SlNullIfEmpty(g->protocol_name);
	res->leader = pstrdup(g->leader >= 0 ? sl_group_members[g->leader].member_id : "");
	res->nmembers = 0;
	res->members = NULL;
	if (g->leader == SlMemberIndex(m))
	{
		int			n = 0;

		for (int i = g->first; i >= 0; i = sl_group_members[i].next)
			if (!sl_group_members[i].pending)
				n++;
		res->members = palloc0(sizeof(SlGroupMemberInfo) * Max(n, 1));
		for (int i = g->first; i >= 0; i = sl_group_members[i].next)
		{
			if (sl_group_members[i].pending || sl_group_members[i].join_generation != g->generation)
				continue;
			SlMemberCopyInfo(g, &sl_group_members[i], &res->members[res->nmembers++], true, false);
		}
	}
}

static void
set_member_client(MemberSlot *m, const SlGroupJoinArgs *args)
{
	strlcpy(m->client_id, args->client_id ? args->client_id : "", SL_GROUP_CLIENT_ID_LEN);
	strlcpy(m->client_host, args->client_host ? args->client_host : "", SL_GROUP_CLIENT_HOST_LEN);
	m->session_timeout_ms = args->session_timeout_ms;
	m->rebalance_timeout_ms = args->rebalance_timeout_ms;
}

/* Replace a member's protocols with new ones stored in *stored */
static void
set_member_protocols(MemberSlot *m, dsa_pointer stored, const SlProtoList *list)
{
	SlGroupBlobFree(&m->protocols);
	m->protocols = stored;
	m->protocols_len = list->len;
	m->nprotocols = list->n;
}

/* Join: the member rejoined for this rebalance */
static void
member_joined(GroupSlot *g, MemberSlot *m, const SlGroupJoinArgs *args, dsa_pointer stored,
			  const SlProtoList *list, TimestampTz now)
{
	set_member_client(m, args);
	set_member_protocols(m, stored, list);
	m->awaiting_join = true;
	m->last_heartbeat = now;
	if (g->leader < 0)
		g->leader = SlMemberIndex(m);
}

/* Answer a waiting JoinGroup from the group's state, or say to wait */
static void
join_outcome(GroupSlot *g, MemberSlot *m, SlGroupJoinResult *res)
{
	if (g->state == SL_GROUP_PREPARING_REBALANCE && m->awaiting_join)
	{
		res->wait = true;
		res->deadline = g->join_deadline;
		res->member_id = pstrdup(m->member_id);
		return;
	}
	fill_join_result(g, m, res);
}

/* Join: m is a new member of g, which now rebalances to take it in */
static void
member_added(GroupSlot *g, MemberSlot *m, const SlGroupJoinArgs *args, dsa_pointer stored,
			 const SlProtoList *list, TimestampTz now, SlGroupJoinResult *res)
{
	g->nmembers++;
	member_joined(g, m, args, stored, list, now);
	if (g->state == SL_GROUP_PREPARING_REBALANCE && g->initial_delay)
		g->new_member_added = true;
	SlGroupMaybePrepareRebalance(g, now);
	SlGroupTryCompleteJoin(g, now);
	join_outcome(g, m, res);
}

/*
 * The static-member path: a JoinGroup without a member id whose instance id
 * is registered to m, a static member that restarted.  It gets a new member
 * id and the old one is fenced: Kafka fences rather than refusing the join,
 * because a restarted member cannot know the id its previous incarnation
 * had.  In a Stable group whose protocol and the member's subscription
 * stay the same, it takes over its old assignment without a rebalance;
 * otherwise it rejoins like any member.
 */
static void
join_static_member(GroupSlot *g, MemberSlot *m, const SlGroupJoinArgs *args, dsa_pointer stored,
				   const SlProtoList *list, TimestampTz now, SlGroupJoinResult *res)
{
	SlMemberGenerateId(args->instance_id, m->member_id);
	ereport(LOG,
			(errmsg("streamlog group \"%s\": static member \"%s\" rejoined as \"%s\"; the old id is fenced",
					g->group_id, args->instance_id, m->member_id)));
	SlGroupChanged(g);

	if (g->state == SL_GROUP_STABLE && g->protocol_name[0] &&
		strcmp(args->protocol_type, g->protocol_type) == 0)
	{
		SlProtoList	old_list = SlProtoListOf(m);
		const uint8 *old_meta;
		const uint8 *new_meta;
		int32		old_len;
		int32		new_len;
		const char *chosen;

		if (SlProtoListFind(&old_list, g->protocol_name, &old_meta, &old_len) &&
			SlProtoListFind(list, g->protocol_name, &new_meta, &new_len) &&
			SlProtoSameSubscription(g->protocol_type, old_meta, old_len, new_meta, new_len))
		{
			set_member_client(m, args);
			set_member_protocols(m, stored, list);
			m->last_heartbeat = now;
			/* Kafka checks that the group would still choose its protocol */
			chosen = SlGroupSelectProtocol(g);
			if (chosen != NULL && strcmp(chosen, g->protocol_name) == 0)
			{
				fill_join_result(g, m, res);
				res->skip_assignment = g->leader == SlMemberIndex(m);
				return;
			}
			m->awaiting_join = true;
			SlGroupPrepareRebalance(g, now);
			join_outcome(g, m, res);
			return;
		}
	}
	member_joined(g, m, args, stored, list, now);
	if (g->state == SL_GROUP_PREPARING_REBALANCE)
		SlGroupTryCompleteJoin(g, now);
	else
		SlGroupPrepareRebalance(g, now);
	join_outcome(g, m, res);
}

/*
 * The protocols of a joining member (m, or NULL if it has no slot yet) fit
 * the group: store them, before anything changes.  False, with the error
 * in res, if they do not fit or the area is full.
 */
static bool
accept_protocols(GroupSlot *g, const MemberSlot *m, const SlGroupJoinArgs *args,
				 const SlProtoList *list, dsa_pointer *stored, SlGroupJoinResult *res)
{
	bool		failed = false;

	if (!SlGroupSupportsProtocols(g, m, args->protocol_type, list))
	{
		res->error = SL_ERR_INCONSISTENT_GROUP_PROTOCOL;
		return false;
	}
	/* New blobs first: nothing has changed if this fails */
	*stored = SlGroupBlobStore(list->data, list->len, &failed);
	if (failed)
	{
		res->error = SL_ERR_COORDINATOR_NOT_AVAILABLE;
		return false;
	}
	if (g->nmembers == 0)
		strlcpy(g->protocol_type, args->protocol_type, SL_GROUP_ID_LEN);
	return true;
}

/*
 * The unknown-member path: a JoinGroup without a member id.  A static
 * member takes the static-member path; a dynamic one gets a new id, and
 * with JoinGroup v4+ (KIP-394) must come back with it before it counts as
 * a member, so that a client that retries joins does not leave members
 * behind.
 */
static void
join_unknown_member(GroupSlot *g, const SlGroupJoinArgs *args, const SlProtoList *list,
					TimestampTz now, SlGroupJoinResult *res)
{
	dsa_pointer stored;
	MemberSlot *m;
	MemberSlot *old;

	if (!accept_protocols(g, NULL, args, list, &stored, res))
		return;
	old = SlMemberFindStatic(g, args->instance_id);
	if (old != NULL)
	{
		join_static_member(g, old, args, stored, list, now, res);
		return;
	}
	m = SlMemberAlloc(g);
	if (m == NULL)
	{
		SlGroupBlobFree(&stored);
		res->error = SL_ERR_GROUP_MAX_SIZE_REACHED;
		return;
	}
	SlMemberGenerateId(args->instance_id ? args->instance_id : args->client_id,
					   m->member_id);
	if (args->instance_id)
		strlcpy(m->instance_id, args->instance_id, SL_GROUP_ID_LEN);
	if (args->require_known_member_id && args->instance_id == NULL)
	{
		/* Kafka 2.2+ (KIP-394): rejoin with this id */
		m->pending = true;
		g->npending++;
		set_member_client(m, args);
		m->last_heartbeat = now;
		SlGroupBlobFree(&stored);
		res->error = SL_ERR_MEMBER_ID_REQUIRED;
		res->member_id = pstrdup(m->member_id);
		return;
	}
	member_added(g, m, args, stored, list, now, res);
}

/*
 * The known-member path: a JoinGroup with a member id, which must be the
 * group's (or the one a static instance is registered to).  A pending
 * member becomes a member; a member that rejoins with what it had while the
 * group is not rebalancing is given its join again (it missed the answer),
 * unless it is the leader of a Stable group, whose rejoin means that it
 * wants a new assignment; anything else starts or joins a rebalance.
 */
static void
join_known_member(GroupSlot *g, const SlGroupJoinArgs *args, const SlProtoList *list,
				  TimestampTz now, SlGroupJoinResult *res)
{
	dsa_pointer stored;
	MemberSlot *m = SlMemberFind(g, args->member_id);

	if (args->instance_id && SlMemberStaticFenced(g, args->member_id, args->instance_id))
	{
		res->error = SL_ERR_FENCED_INSTANCE_ID;
		return;
	}
	if (m == NULL)
	{
		res->error = SL_ERR_UNKNOWN_MEMBER_ID;
		return;
	}
	if (!accept_protocols(g, m, args, list, &stored, res))
		return;

	if (m->pending)
	{
		/* The second join of KIP-394: a member now */
		m->pending = false;
		g->npending--;
		member_added(g, m, args, stored, list, now, res);
		return;
	}

	switch (g->state)
	{
		case SL_GROUP_PREPARING_REBALANCE:
			member_joined(g, m, args, stored, list, now);
			SlGroupTryCompleteJoin(g, now);
			break;
		case SL_GROUP_COMPLETING_REBALANCE:
		case SL_GROUP_STABLE:
			{
				SlProtoList	current = SlProtoListOf(m);

				if (SlProtoListEqual(&current, list) &&
					(g->state == SL_GROUP_COMPLETING_REBALANCE || g->leader != SlMemberIndex(m)))
				{
					/* It missed the answer to its join: give it again */
					SlGroupBlobFree(&stored);
					m->last_heartbeat = now;
					fill_join_result(g, m, res);
					return;
				}
				member_joined(g, m, args, stored, list, now);
				SlGroupPrepareRebalance(g, now);
				break;
			}
		default:
			SlGroupBlobFree(&stored);
			res->error = SL_ERR_UNKNOWN_MEMBER_ID;
			return;
	}
	join_outcome(g, m, res);
}

/*
 * SlGroupJoin checks what does not depend on the member, finds (or
 * creates) the group, and takes the unknown-member or the known-member
 * path, as Redpanda's group does.
 */
/*
 * Groups role created that are in use: with members, or not yet Empty.
 * An Empty group without members may have its slot taken by another
 * (SlGroupCreate), so it does not count.  Under the coordinator's lock.
 */
static int
groups_created_by(Oid role)
{
	int			n = 0;

	for (int i = 0; i < sl_max_groups; i++)
	{
		const GroupSlot *g = &sl_groups[i];

		if (g->in_use && g->creator == role &&
			!(g->state == SL_GROUP_EMPTY && g->first < 0))
			n++;
	}
	return n;
}

void
SlGroupJoin(const SlGroupJoinArgs *args, SlGroupJoinResult *res)
{
	SlProtoList	list;
	TimestampTz now;
	GroupSlot  *g;

	result_init(res, args->member_id);
	if (args->session_timeout_ms < sl_group_min_session_timeout ||
		args->session_timeout_ms > sl_group_max_session_timeout)
	{
		res->error = SL_ERR_INVALID_SESSION_TIMEOUT;
		return;
	}
	if (args->protocol_type[0] == '\0' || args->nprotocols == 0)
	{
		res->error = SL_ERR_INCONSISTENT_GROUP_PROTOCOL;
		return;
	}
	list = SlProtoListFromArgs(args);

	SlGroupLock();
	now = GetCurrentTimestamp();
	g = SlGroupFind(args->group_id);
	if (g == NULL)
	{
		if (args->member_id[0] != '\0')
		{
			res->error = SL_ERR_UNKNOWN_MEMBER_ID;
			goto done;
		}
		if (args->role_capped && sl_max_groups_per_role > 0 &&
			groups_created_by(args->role) >= sl_max_groups_per_role)
		{
			ereport(LOG,
					(errmsg("streamlog group \"%s\" cannot be created: its role already created %d groups that have members (streamlog.max_groups_per_role)",
							args->group_id, sl_max_groups_per_role),
					 errhint("Use fewer groups, or raise streamlog.max_groups_per_role.")));
			res->error = SL_ERR_POLICY_VIOLATION;
			goto done;
		}
		g = SlGroupCreate(args->group_id, now);
		if (g != NULL)
			g->creator = args->role;
		if (g == NULL)
		{
			ereport(LOG,
					(errmsg("streamlog group \"%s\" cannot be created: all %d group slots are in use",
							args->group_id, sl_max_groups),
					 errhint("Raise streamlog.max_groups.")));
			res->error = SL_ERR_COORDINATOR_NOT_AVAILABLE;
			goto done;
		}
	}
	SlGroupRunTimers(g, now);
	if (g->state == SL_GROUP_DEAD)
	{
		res->error = SL_ERR_COORDINATOR_NOT_AVAILABLE;
		goto done;
	}
	if (args->member_id[0] == '\0')
		join_unknown_member(g, args, &list, now, res);
	else
		join_known_member(g, args, &list, now, res);

done:
	SlGroupUnlock();
}

void
SlGroupJoinPoll(const char *group_id, const char *member_id, const char *instance_id,
				SlGroupJoinResult *res)
{
	TimestampTz now;
	GroupSlot  *g;
	MemberSlot *m;

	result_init(res, member_id);
	SlGroupLock();
	now = GetCurrentTimestamp();
	g = SlGroupFind(group_id);
	if (g == NULL)
	{
		res->error = SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	SlGroupRunTimers(g, now);
	m = SlMemberFind(g, member_id);
	if (m == NULL || m->pending)
	{
		res->error = instance_id && SlMemberStaticFenced(g, member_id, instance_id) ?
			SL_ERR_FENCED_INSTANCE_ID : SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	if (g->state == SL_GROUP_EMPTY || g->state == SL_GROUP_DEAD)
	{
		res->error = SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	join_outcome(g, m, res);

done:
	SlGroupUnlock();
}
