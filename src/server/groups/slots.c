/*-------------------------------------------------------------------------
 * slots.c
 *	  The group coordinator's shared state: fixed slots for groups and
 *	  members, the dynamic shared area holding their variable-size parts,
 *	  and the lock every transition holds.
 *
 * A group's members may be served by different broker workers, so the
 * state is in shared memory: fixed slots for groups (streamlog.max_groups)
 * and members (streamlog.max_group_members, over all groups), and a
 * dynamic shared area (dsa) for the variable-size parts, the members'
 * protocol metadata and assignments.  The area is created in place in the
 * main shared memory at startup (like the statistics collector's in
 * PostgreSQL 15), so every process attaches to the same area without a
 * handle to publish, and it grows by itself in dynamic segments.  An
 * UNLOGGED table keyed by (group, member) was the alternative: it would
 * make every heartbeat a write, need a transaction in the session-expiry
 * timer, and couple the non-transactional membership state to transaction
 * outcomes.  Kafka keeps this state in memory too; it is not durable: after
 * a restart the members rejoin (their commits and heartbeats get
 * ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID), and only the committed offsets,
 * which live in streamlog.group_offset, survive.
 *
 * One LWLock serializes every transition; requests are short (a few slot
 * scans and copies), the rates are those of heartbeats.  New blobs are
 * allocated before any state changes, so an error while allocating leaves
 * the state as it was.
 *
 * Releasing the lock notifies the wakeup key of each group with a
 * transition that a parked JoinGroup or SyncGroup may wait for
 * (SlGroupChanged; storage/wakeups.h: the JoinGroup and SyncGroup handlers
 * wait on that key before they call in here, so only the requests parked
 * on that group look again), and wakes broker worker 0, which runs the
 * timers (see timers.c), when the first member arrives.
 *
 * IDENTIFICATION
 *	  src/server/groups/slots.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/server/groups/protocols.h"
#include "streamlog/server/groups/slots.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/wakeups.h"

/* Index of the coordinator's lock in the "streamlog" LWLock tranche */
#define GROUP_LWLOCK_INDEX 2

/* Plain shared memory the area starts in; it grows in dynamic segments */
#define AREA_INPLACE_SIZE (1024 * 1024)

/* Most the area may grow to: a JoinGroup past it gets a retriable error */
#define AREA_MAX_SIZE ((size_t) 1024 * 1024 * 1024)

/* Part of the client id kept in generated member ids */
#define MEMBER_ID_CLIENT_PART 128

GroupCoordinatorShared *sl_group_coord = NULL;
GroupSlot  *sl_groups = NULL;
MemberSlot *sl_group_members = NULL;

/* Groups with a transition that parked requests may wait for */
static SlWaitSet groups_changed;

static void *area_place = NULL;
static dsa_area *area = NULL;	/* this process's attachment */

/* The first member arrived: broker worker 0 must start running the timers */
static bool wake_timer_worker = false;

static const char *const state_names[] = {
	[SL_GROUP_EMPTY] = "Empty",
	[SL_GROUP_PREPARING_REBALANCE] = "PreparingRebalance",
	[SL_GROUP_COMPLETING_REBALANCE] = "CompletingRebalance",
	[SL_GROUP_STABLE] = "Stable",
	[SL_GROUP_DEAD] = "Dead",
};

/* Shared memory */

static Size
groups_size(void)
{
	return mul_size(sl_max_groups, sizeof(GroupSlot));
}

static Size
members_size(void)
{
	return mul_size(sl_max_group_members, sizeof(MemberSlot));
}

Size
SlGroupCoordinatorShmemSize(void)
{
	Size		size = MAXALIGN(sizeof(GroupCoordinatorShared));

	size = add_size(size, MAXALIGN(groups_size()));
	size = add_size(size, MAXALIGN(members_size()));
	size = add_size(size, AREA_INPLACE_SIZE);
	return size;
}

/*
 * SlGroupCoordinatorShmemInit sets up the slots and creates the area in
 * place.  Called under AddinShmemInitLock at startup.
 */
void
SlGroupCoordinatorShmemInit(void)
{
	bool		found;
	char	   *p;

	sl_group_coord = ShmemInitStruct("streamlog group coordinator",
							SlGroupCoordinatorShmemSize(), &found);
	p = (char *) sl_group_coord + MAXALIGN(sizeof(GroupCoordinatorShared));
	sl_groups = (GroupSlot *) p;
	p += MAXALIGN(groups_size());
	sl_group_members = (MemberSlot *) p;
	p += MAXALIGN(members_size());
	area_place = p;
	if (found)
		return;

	sl_group_coord->lock = &(GetNamedLWLockTranche("streamlog"))[GROUP_LWLOCK_INDEX].lock;
	pg_atomic_init_u32(&sl_group_coord->members_in_use, 0);
	for (int i = 0; i < sl_max_groups; i++)
		sl_groups[i].in_use = false;
	for (int i = 0; i < sl_max_group_members; i++)
	{
		sl_group_members[i].group = -1;
		sl_group_members[i].next = i + 1 < sl_max_group_members ? i + 1 : -1;
	}
	sl_group_coord->free_member = sl_max_group_members > 0 ? 0 : -1;

	{
		dsa_area   *created;

		sl_group_coord->area_tranche = LWLockNewTrancheId();
		created = dsa_create_in_place(area_place, AREA_INPLACE_SIZE,
									  sl_group_coord->area_tranche, NULL);
		dsa_pin(created);
		dsa_set_size_limit(created, AREA_MAX_SIZE);
		dsa_detach(created);
	}
}

/* The lock */

/* This process's attachment to the area, made on first use */
static dsa_area *
group_area(void)
{
	if (area == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

		LWLockRegisterTranche(sl_group_coord->area_tranche, "streamlog groups");
		area = dsa_attach_in_place(area_place, NULL);
		dsa_pin_mapping(area);
		MemoryContextSwitchTo(oldcxt);
	}
	return area;
}

void
SlGroupLock(void)
{
	if (sl_group_coord == NULL)
		elog(ERROR, "streamlog group coordinator is not initialized");
	/* Attach first: the area has locks of its own */
	group_area();
	LWLockAcquire(sl_group_coord->lock, LW_EXCLUSIVE);
}

void
SlGroupChanged(const GroupSlot *g)
{
	SlWaitSetAdd(&groups_changed, SlWaitKeyForGroup(g->group_id));
}

/* Release the lock, then wake the requests parked on the groups that changed */
void
SlGroupUnlock(void)
{
	LWLockRelease(sl_group_coord->lock);
	if (!SlWaitSetIsEmpty(&groups_changed))
	{
		SlWaitNotifySet(&groups_changed);
		SlWaitSetClear(&groups_changed);
	}
	if (wake_timer_worker)
	{
		int			procno = sl_shared->broker_procno[0];

		wake_timer_worker = false;
		if (procno >= 0)
			SetLatch(&ProcGlobal->allProcs[procno].procLatch);
	}
}

/* Blobs in the area */

dsa_pointer
SlGroupBlobStore(const void *data, int32 len, bool *failed)
{
	dsa_pointer p;

	if (len <= 0)
		return InvalidDsaPointer;
	p = dsa_allocate_extended(area, len, DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(p))
	{
		*failed = true;
		return InvalidDsaPointer;
	}
	memcpy(dsa_get_address(area, p), data, len);
	return p;
}

void
SlGroupBlobFree(dsa_pointer *p)
{
	if (DsaPointerIsValid(*p))
		dsa_free(area, *p);
	*p = InvalidDsaPointer;
}

/* The address of a blob in this process */
const void *
SlGroupBlobGet(dsa_pointer p)
{
	return dsa_get_address(area, p);
}

/* A copy of a blob in the current memory context (never NULL) */
uint8 *
SlGroupBlobCopy(dsa_pointer p, int32 len)
{
	uint8	   *copy = palloc(Max(len, 1));

	if (DsaPointerIsValid(p) && len > 0)
		memcpy(copy, dsa_get_address(area, p), len);
	return copy;
}

/* Slots */

GroupSlot *
SlGroupFind(const char *group_id)
{
	uint32		h = hash_bytes((const unsigned char *) group_id, strlen(group_id));

	for (int i = 0; i < sl_max_groups; i++)
	{
		GroupSlot  *g = &sl_groups[i];

		if (g->in_use && g->hash == h && strcmp(g->group_id, group_id) == 0)
			return g;
	}
	return NULL;
}

/* A fresh Empty group; reuses the slot of the longest-empty group if full */
GroupSlot *
SlGroupCreate(const char *group_id, TimestampTz now)
{
	GroupSlot  *g = NULL;

	for (int i = 0; i < sl_max_groups && g == NULL; i++)
		if (!sl_groups[i].in_use)
			g = &sl_groups[i];
	if (g == NULL)
	{
		for (int i = 0; i < sl_max_groups; i++)
		{
			GroupSlot  *c = &sl_groups[i];

			if (c->state == SL_GROUP_EMPTY && c->first < 0 &&
				(g == NULL || c->empty_since < g->empty_since))
				g = c;
		}
		if (g == NULL)
			return NULL;
	}
	memset(g, 0, sizeof(GroupSlot));
	g->in_use = true;
	g->hash = hash_bytes((const unsigned char *) group_id, strlen(group_id));
	g->state = SL_GROUP_EMPTY;
	g->generation = 0;
	g->first = g->last = -1;
	g->leader = -1;
	g->empty_since = now;
	g->state_since = now;
	strlcpy(g->group_id, group_id, SL_GROUP_ID_LEN);
	return g;
}

MemberSlot *
SlMemberFind(const GroupSlot *g, const char *member_id)
{
	if (member_id == NULL || member_id[0] == '\0')
		return NULL;
	for (int i = g->first; i >= 0; i = sl_group_members[i].next)
		if (strcmp(sl_group_members[i].member_id, member_id) == 0)
			return &sl_group_members[i];
	return NULL;
}

MemberSlot *
SlMemberFindStatic(const GroupSlot *g, const char *instance_id)
{
	if (instance_id == NULL)
		return NULL;
	for (int i = g->first; i >= 0; i = sl_group_members[i].next)
		if (!sl_group_members[i].pending && strcmp(sl_group_members[i].instance_id, instance_id) == 0)
			return &sl_group_members[i];
	return NULL;
}

/*
 * Kafka's check of a static member: the instance id is registered to
 * another member id.
 */
bool
SlMemberStaticFenced(const GroupSlot *g, const char *member_id, const char *instance_id)
{
	MemberSlot *s = SlMemberFindStatic(g, instance_id);

	return s != NULL && strcmp(s->member_id, member_id) != 0;
}

MemberSlot *
SlMemberAlloc(GroupSlot *g)
{
	MemberSlot *m;
	int			i = sl_group_coord->free_member;

	if (i < 0)
		return NULL;
	m = &sl_group_members[i];
	sl_group_coord->free_member = m->next;
	memset(m, 0, sizeof(MemberSlot));
	m->group = (int) (g - sl_groups);
	m->next = -1;
	m->join_generation = -1;
	m->sync_generation = -1;
	m->assignment_generation = -1;
	m->protocols = InvalidDsaPointer;
	m->assignment = InvalidDsaPointer;
	if (g->last >= 0)
		sl_group_members[g->last].next = i;
	else
		g->first = i;
	g->last = i;
	if (pg_atomic_fetch_add_u32(&sl_group_coord->members_in_use, 1) == 0)
		wake_timer_worker = true;
	return m;
}

/* Unlink and free a member; no state transition (see SlGroupRemoveMember) */
void
SlMemberFree(GroupSlot *g, MemberSlot *m)
{
	int			idx = SlMemberIndex(m);
	int			prev = -1;

	for (int i = g->first; i >= 0 && i != idx; i = sl_group_members[i].next)
		prev = i;
	if (prev >= 0)
		sl_group_members[prev].next = m->next;
	else
		g->first = m->next;
	if (g->last == idx)
		g->last = prev;

	if (m->pending)
		g->npending--;
	else
		g->nmembers--;
	SlGroupBlobFree(&m->protocols);
	SlGroupBlobFree(&m->assignment);
	m->group = -1;
	m->next = sl_group_coord->free_member;
	sl_group_coord->free_member = idx;
	pg_atomic_fetch_sub_u32(&sl_group_coord->members_in_use, 1);

	if (g->leader == idx)
	{
		g->leader = -1;
		for (int i = g->first; i >= 0; i = sl_group_members[i].next)
			if (!sl_group_members[i].pending)
			{
				g->leader = i;
				break;
			}
	}
	SlGroupChanged(g);
}

/* A new member id: "<instance id or client id>-<uuid>", as Kafka makes them */
void
SlMemberGenerateId(const char *prefix, char *out)
{
	uint8		u[16];

	if (!pg_strong_random(u, sizeof(u)))
	{
		/* Not expected; fall back on something unique enough */
		uint64		t = (uint64) GetCurrentTimestamp();

		memset(u, 0, sizeof(u));
		memcpy(u, &t, sizeof(t));
		memcpy(u + 8, &MyProcPid, sizeof(MyProcPid));
	}
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(out, SL_GROUP_ID_LEN,
			 "%.*s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 MEMBER_ID_CLIENT_PART, prefix,
			 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
			 u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* Copies out */

/* A member's metadata for the group's protocol, copied */
void
SlMemberCopyInfo(const GroupSlot *g, const MemberSlot *m, SlGroupMemberInfo *info,
			   bool with_metadata, bool with_assignment)
{
	info->member_id = pstrdup(m->member_id);
	info->instance_id = SlNullIfEmpty(m->instance_id);
	info->client_id = pstrdup(m->client_id);
	info->client_host = pstrdup(m->client_host);
	info->session_timeout_ms = m->session_timeout_ms;
	info->rebalance_timeout_ms = m->rebalance_timeout_ms;
	info->last_heartbeat = m->last_heartbeat;
	info->metadata = (uint8 *) pstrdup("");
	info->metadata_len = 0;
	info->assignment = (uint8 *) pstrdup("");
	info->assignment_len = 0;
	if (with_metadata && g->protocol_name[0])
	{
		SlProtoList	l = SlProtoListOf(m);
		const uint8 *meta;
		int32		len;

		if (SlProtoListFind(&l, g->protocol_name, &meta, &len) && len > 0)
		{
			info->metadata = palloc(len);
			memcpy(info->metadata, meta, len);
			info->metadata_len = len;
		}
	}
	if (with_assignment && m->assignment_len > 0)
	{
		info->assignment = SlGroupBlobCopy(m->assignment, m->assignment_len);
		info->assignment_len = m->assignment_len;
	}
}

const char *
SlGroupStateName(SlGroupState state)
{
	return state_names[state];
}
