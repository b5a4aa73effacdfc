/*-------------------------------------------------------------------------
 * group_coordinator.c
 *	  The consumer-group coordinator of the broker: Kafka's classic group
 *	  membership protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a
 *	  state machine shared by every broker worker.
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
 * waiting SyncGroups (Stable).  A member that sends nothing for its session
 * timeout is removed, and the group rebalances.  A static member (with a
 * group.instance.id) that restarts replaces its old member id, which is
 * fenced (FENCED_INSTANCE_ID); if the group is Stable and the member's
 * subscription did not change, nobody else rebalances.
 *
 * Where the state lives.  A group's members may be served by different
 * broker workers, so the state is in shared memory: fixed slots for groups
 * (streamlog.max_groups) and members (streamlog.max_group_members, over all
 * groups), and a dynamic shared area (dsa) for the variable-size parts, the
 * members' protocol metadata and assignments.  The area is created in place
 * in the main shared memory at startup (like the statistics collector's in
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
 * Waiting.  JoinGroup and SyncGroup requests that must wait are parked by
 * their broker worker with a deadline (the group's rebalance or sync
 * deadline) and look again when woken.  Any transition a parked request may
 * be waiting for notifies the group's wakeup key (storage/wakeups.h); the
 * JoinGroup and SyncGroup handlers wait on that key before they call in
 * here, so only the requests parked on that group look again.  A parked
 * request re-validates everything when it looks again, so a member that
 * was removed, fenced or moved to another generation in the meantime gets
 * the error Kafka gives.
 * Timers (session expiry, rebalance and sync deadlines) run when any
 * request touches the group, and every SL_GROUP_TIMER_MS in broker worker
 * 0 while any group has members, so that a group nobody talks to still
 * expires its members.
 *
 * IDENTIFICATION
 *	  src/server/group_coordinator.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/dsa.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/protocol/wire.h"
#include "streamlog/server/group_coordinator.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/wakeups.h"

/* Index of the coordinator's lock in the "streamlog" LWLock tranche */
#define GROUP_LWLOCK_INDEX 2

/* Plain shared memory the area starts in; it grows in dynamic segments */
#define AREA_INPLACE_SIZE (1024 * 1024)

/* Most the area may grow to: a JoinGroup past it gets a retriable error */
#define AREA_MAX_SIZE ((size_t) 1024 * 1024 * 1024)

#define CLIENT_ID_LEN 128
#define CLIENT_HOST_LEN 64

/* Part of the client id kept in generated member ids */
#define MEMBER_ID_CLIENT_PART 128

typedef struct MemberSlot
{
	int			group;			/* slot of its group; -1 if the slot is free */
	int			next;			/* next member of the group, or free slot */
	bool		pending;		/* got an id (MEMBER_ID_REQUIRED), not joined */
	bool		awaiting_join;	/* joined in the current rebalance */
	bool		awaiting_sync;	/* its SyncGroup waits for the leader's */
	int32		join_generation;	/* generation its join completed in */
	int32		sync_generation;	/* generation it sent SyncGroup for */
	int32		assignment_generation;	/* generation of its assignment */
	int32		session_timeout_ms;
	int32		rebalance_timeout_ms;
	TimestampTz last_heartbeat;

	/* protocols: count, then (int32 len, name, NUL, int32 len, metadata)* */
	dsa_pointer protocols;
	int32		protocols_len;
	int32		nprotocols;
	dsa_pointer assignment;
	int32		assignment_len;

	char		member_id[SL_GROUP_ID_LEN];
	char		instance_id[SL_GROUP_ID_LEN];	/* "" if dynamic */
	char		client_id[CLIENT_ID_LEN];
	char		client_host[CLIENT_HOST_LEN];
} MemberSlot;

typedef struct GroupSlot
{
	bool		in_use;
	uint32		hash;			/* of group_id */
	SlGroupState state;
	int32		generation;
	int			first;			/* members in join order, then pending ones */
	int			last;
	int			nmembers;		/* not counting pending ones */
	int			npending;
	int			leader;			/* member slot, -1 if none */

	/* PreparingRebalance: the join completes at join_deadline at the latest */
	TimestampTz join_deadline;
	bool		initial_delay;	/* first rebalance of an Empty group */
	bool		new_member_added;	/* during the initial delay */
	int32		initial_remaining_ms;	/* rebalance time left to delay by */

	/* CompletingRebalance: members not synced by then are removed */
	TimestampTz sync_deadline;

	TimestampTz empty_since;	/* for reusing slots of Empty groups */
	char		group_id[SL_GROUP_ID_LEN];
	char		protocol_type[SL_GROUP_ID_LEN];
	char		protocol_name[SL_GROUP_ID_LEN];	/* "" while none chosen */
} GroupSlot;

typedef struct Coordinator
{
	LWLock	   *lock;
	int			area_tranche;
	int			free_member;	/* first free member slot, -1 if none */
	pg_atomic_uint32 members_in_use;	/* timers run while > 0 */
} Coordinator;

static Coordinator *coord = NULL;
static GroupSlot *groups = NULL;
static MemberSlot *members = NULL;
static void *area_place = NULL;
static dsa_area *area = NULL;	/* this process's attachment */

/* Groups with a transition that parked requests may wait for */
static SlWaitSet groups_changed;

/* The first member arrived: broker worker 0 must start running the timers */
static bool wake_timer_worker = false;

static const char *const state_names[] = {
	[SL_GROUP_EMPTY] = "Empty",
	[SL_GROUP_PREPARING_REBALANCE] = "PreparingRebalance",
	[SL_GROUP_COMPLETING_REBALANCE] = "CompletingRebalance",
	[SL_GROUP_STABLE] = "Stable",
	[SL_GROUP_DEAD] = "Dead",
};

const char *
SlGroupStateName(SlGroupState state)
{
	return state_names[state];
}

/* Shared memory */

static Size
GroupsSize(void)
{
	return mul_size(sl_max_groups, sizeof(GroupSlot));
}

static Size
MembersSize(void)
{
	return mul_size(sl_max_group_members, sizeof(MemberSlot));
}

Size
SlGroupCoordinatorShmemSize(void)
{
	Size		size = MAXALIGN(sizeof(Coordinator));

	size = add_size(size, MAXALIGN(GroupsSize()));
	size = add_size(size, MAXALIGN(MembersSize()));
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

	coord = ShmemInitStruct("streamlog group coordinator",
							SlGroupCoordinatorShmemSize(), &found);
	p = (char *) coord + MAXALIGN(sizeof(Coordinator));
	groups = (GroupSlot *) p;
	p += MAXALIGN(GroupsSize());
	members = (MemberSlot *) p;
	p += MAXALIGN(MembersSize());
	area_place = p;
	if (found)
		return;

	coord->lock = &(GetNamedLWLockTranche("streamlog"))[GROUP_LWLOCK_INDEX].lock;
	pg_atomic_init_u32(&coord->members_in_use, 0);
	for (int i = 0; i < sl_max_groups; i++)
		groups[i].in_use = false;
	for (int i = 0; i < sl_max_group_members; i++)
	{
		members[i].group = -1;
		members[i].next = i + 1 < sl_max_group_members ? i + 1 : -1;
	}
	coord->free_member = sl_max_group_members > 0 ? 0 : -1;

	{
		dsa_area   *created;

		coord->area_tranche = LWLockNewTrancheId();
		created = dsa_create_in_place(area_place, AREA_INPLACE_SIZE,
									  coord->area_tranche, NULL);
		dsa_pin(created);
		dsa_set_size_limit(created, AREA_MAX_SIZE);
		dsa_detach(created);
	}
}

/* This process's attachment to the area, made on first use */
static dsa_area *
GroupArea(void)
{
	if (area == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

		LWLockRegisterTranche(coord->area_tranche, "streamlog groups");
		area = dsa_attach_in_place(area_place, NULL);
		dsa_pin_mapping(area);
		MemoryContextSwitchTo(oldcxt);
	}
	return area;
}

static void
CoordinatorLock(void)
{
	if (coord == NULL)
		elog(ERROR, "streamlog group coordinator is not initialized");
	/* Attach first: the area has locks of its own */
	GroupArea();
	LWLockAcquire(coord->lock, LW_EXCLUSIVE);
}

/* Release the lock, then wake parked requests if a transition happened */
static void
CoordinatorUnlock(void)
{
	LWLockRelease(coord->lock);
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

static dsa_pointer
BlobStore(const void *data, int32 len, bool *failed)
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

static void
BlobFree(dsa_pointer *p)
{
	if (DsaPointerIsValid(*p))
		dsa_free(area, *p);
	*p = InvalidDsaPointer;
}

/* A copy of a blob in the current memory context (never NULL) */
static uint8 *
BlobCopy(dsa_pointer p, int32 len)
{
	uint8	   *copy = palloc(Max(len, 1));

	if (DsaPointerIsValid(p) && len > 0)
		memcpy(copy, dsa_get_address(area, p), len);
	return copy;
}

/* Protocol lists: serialized from JoinGroup, stored per member */

typedef struct ProtoList
{
	const uint8 *data;
	int32		len;
	int32		n;
} ProtoList;

typedef struct ProtoIter
{
	const uint8 *p;
	const uint8 *end;
} ProtoIter;

static void
ProtoIterInit(ProtoIter *it, const ProtoList *list)
{
	it->p = list->data;
	it->end = list->data + list->len;
}

static bool
ProtoIterNext(ProtoIter *it, const char **name, const uint8 **meta, int32 *meta_len)
{
	int32		name_len;

	if (it->p == NULL || it->p >= it->end)
		return false;
	memcpy(&name_len, it->p, sizeof(int32));
	*name = (const char *) it->p + sizeof(int32);
	it->p += sizeof(int32) + name_len + 1;
	memcpy(meta_len, it->p, sizeof(int32));
	*meta = it->p + sizeof(int32);
	it->p += sizeof(int32) + *meta_len;
	return true;
}

/* Serialize a joining member's protocols (palloc'd) */
static ProtoList
ProtoListFromArgs(const SlGroupJoinArgs *args)
{
	StringInfoData buf;
	ProtoList	list;

	initStringInfo(&buf);
	for (int i = 0; i < args->nprotocols; i++)
	{
		int32		name_len = strlen(args->protocols[i].name);
		int32		meta_len = Max(args->protocols[i].metadata_len, 0);

		appendBinaryStringInfo(&buf, (char *) &name_len, sizeof(int32));
		appendBinaryStringInfo(&buf, args->protocols[i].name, name_len + 1);
		appendBinaryStringInfo(&buf, (char *) &meta_len, sizeof(int32));
		if (meta_len > 0)
			appendBinaryStringInfo(&buf, (const char *) args->protocols[i].metadata, meta_len);
	}
	list.data = (const uint8 *) buf.data;
	list.len = buf.len;
	list.n = args->nprotocols;
	return list;
}

static ProtoList
ProtoListOf(const MemberSlot *m)
{
	ProtoList	list;

	list.data = DsaPointerIsValid(m->protocols) ?
		(const uint8 *) dsa_get_address(area, m->protocols) : NULL;
	list.len = list.data ? m->protocols_len : 0;
	list.n = list.data ? m->nprotocols : 0;
	return list;
}

static bool
ProtoListFind(const ProtoList *list, const char *protocol, const uint8 **meta,
			  int32 *meta_len)
{
	ProtoIter	it;
	const char *name;
	const uint8 *m;
	int32		len;

	ProtoIterInit(&it, list);
	while (ProtoIterNext(&it, &name, &m, &len))
	{
		if (strcmp(name, protocol) == 0)
		{
			if (meta)
				*meta = m;
			if (meta_len)
				*meta_len = len;
			return true;
		}
	}
	return false;
}

static bool
ProtoListEqual(const ProtoList *a, const ProtoList *b)
{
	return a->n == b->n && a->len == b->len &&
		(a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/*
 * The topics of a consumer-protocol subscription (ConsumerProtocolSubscription:
 * int16 version, then an array of topic names), sorted; NIL if it cannot be
 * read.
 */
static List *
SubscriptionTopics(const uint8 *meta, int32 len, bool *ok)
{
	SlReader	r;
	int32		n;
	List	   *topics = NIL;

	*ok = false;
	if (meta == NULL || len < 6)
		return NIL;
	SlReaderInit(&r, meta, len);
	(void) SlReadInt16(&r);
	n = SlReadArrayLen(&r, false, false, 2);
	for (int32 i = 0; i < n && SlReaderOk(&r); i++)
	{
		SlStr		s = SlReadString(&r, false, false);

		if (SlReaderOk(&r))
			topics = lappend(topics, pnstrdup(s.data, s.len));
	}
	if (!SlReaderOk(&r))
		return NIL;
	*ok = true;
	return topics;
}

static int
CompareCStrings(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/*
 * Does a member's new metadata for protocol subscribe to what the old one
 * did?  For the consumer protocol, the subscribed topics are compared
 * (owned partitions and user data change between incarnations of a
 * consumer); for other protocol types, the bytes.
 */
static bool
SameSubscription(const char *protocol_type, const uint8 *old_meta, int32 old_len,
				 const uint8 *new_meta, int32 new_len)
{
	if (strcmp(protocol_type, "consumer") == 0)
	{
		bool		old_ok;
		bool		new_ok;
		List	   *old_topics = SubscriptionTopics(old_meta, old_len, &old_ok);
		List	   *new_topics = SubscriptionTopics(new_meta, new_len, &new_ok);
		ListCell   *a;
		ListCell   *b;

		if (old_ok && new_ok)
		{
			if (list_length(old_topics) != list_length(new_topics))
				return false;
			list_sort(old_topics, CompareCStrings);
			list_sort(new_topics, CompareCStrings);
			forboth(a, old_topics, b, new_topics)
			{
				if (strcmp(lfirst(a), lfirst(b)) != 0)
					return false;
			}
			return true;
		}
	}
	return old_len == new_len && (old_len <= 0 || memcmp(old_meta, new_meta, old_len) == 0);
}

/* Slots */

static inline int
MemberIndex(const MemberSlot *m)
{
	return (int) (m - members);
}

static GroupSlot *
FindGroup(const char *group_id)
{
	uint32		h = hash_bytes((const unsigned char *) group_id, strlen(group_id));

	for (int i = 0; i < sl_max_groups; i++)
	{
		GroupSlot  *g = &groups[i];

		if (g->in_use && g->hash == h && strcmp(g->group_id, group_id) == 0)
			return g;
	}
	return NULL;
}

/* A fresh Empty group; reuses the slot of the longest-empty group if full */
static GroupSlot *
CreateGroup(const char *group_id, TimestampTz now)
{
	GroupSlot  *g = NULL;

	for (int i = 0; i < sl_max_groups && g == NULL; i++)
		if (!groups[i].in_use)
			g = &groups[i];
	if (g == NULL)
	{
		for (int i = 0; i < sl_max_groups; i++)
		{
			GroupSlot  *c = &groups[i];

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
	strlcpy(g->group_id, group_id, SL_GROUP_ID_LEN);
	return g;
}

static MemberSlot *
FindMember(const GroupSlot *g, const char *member_id)
{
	if (member_id == NULL || member_id[0] == '\0')
		return NULL;
	for (int i = g->first; i >= 0; i = members[i].next)
		if (strcmp(members[i].member_id, member_id) == 0)
			return &members[i];
	return NULL;
}

static MemberSlot *
FindStatic(const GroupSlot *g, const char *instance_id)
{
	if (instance_id == NULL)
		return NULL;
	for (int i = g->first; i >= 0; i = members[i].next)
		if (!members[i].pending && strcmp(members[i].instance_id, instance_id) == 0)
			return &members[i];
	return NULL;
}

/*
 * Kafka's check of a static member: the instance id is registered to
 * another member id.
 */
static bool
StaticMemberFenced(const GroupSlot *g, const char *member_id, const char *instance_id)
{
	MemberSlot *s = FindStatic(g, instance_id);

	return s != NULL && strcmp(s->member_id, member_id) != 0;
}

static MemberSlot *
AllocMember(GroupSlot *g)
{
	MemberSlot *m;
	int			i = coord->free_member;

	if (i < 0)
		return NULL;
	m = &members[i];
	coord->free_member = m->next;
	memset(m, 0, sizeof(MemberSlot));
	m->group = (int) (g - groups);
	m->next = -1;
	m->join_generation = -1;
	m->sync_generation = -1;
	m->assignment_generation = -1;
	m->protocols = InvalidDsaPointer;
	m->assignment = InvalidDsaPointer;
	if (g->last >= 0)
		members[g->last].next = i;
	else
		g->first = i;
	g->last = i;
	if (pg_atomic_fetch_add_u32(&coord->members_in_use, 1) == 0)
		wake_timer_worker = true;
	return m;
}

/* Unlink and free a member; no state transition (see RemoveMember) */
static void
FreeMember(GroupSlot *g, MemberSlot *m)
{
	int			idx = MemberIndex(m);
	int			prev = -1;

	for (int i = g->first; i >= 0 && i != idx; i = members[i].next)
		prev = i;
	if (prev >= 0)
		members[prev].next = m->next;
	else
		g->first = m->next;
	if (g->last == idx)
		g->last = prev;

	if (m->pending)
		g->npending--;
	else
		g->nmembers--;
	BlobFree(&m->protocols);
	BlobFree(&m->assignment);
	m->group = -1;
	m->next = coord->free_member;
	coord->free_member = idx;
	pg_atomic_fetch_sub_u32(&coord->members_in_use, 1);

	if (g->leader == idx)
	{
		g->leader = -1;
		for (int i = g->first; i >= 0; i = members[i].next)
			if (!members[i].pending)
			{
				g->leader = i;
				break;
			}
	}
	SlWaitSetAdd(&groups_changed, SlWaitKeyForGroup(g->group_id));
}

/* A new member id: "<instance id or client id>-<uuid>", as Kafka makes them */
static void
GenerateMemberId(const char *prefix, char *out)
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

/* Transitions */

static int32
MaxRebalanceTimeout(const GroupSlot *g)
{
	int32		t = 0;

	for (int i = g->first; i >= 0; i = members[i].next)
		if (!members[i].pending)
			t = Max(t, members[i].rebalance_timeout_ms);
	return Max(t, 1);
}

static bool
AllJoined(const GroupSlot *g)
{
	if (g->npending > 0)
		return false;
	for (int i = g->first; i >= 0; i = members[i].next)
		if (!members[i].awaiting_join)
			return false;
	return true;
}

/*
 * The protocol for the next generation: among those every member supports,
 * the one most members prefer (each votes for the first of its list that
 * all support); ties go to the first member's order.
 */
static const char *
SelectProtocol(const GroupSlot *g)
{
	const MemberSlot *first = NULL;
	ProtoList	first_list;
	ProtoIter	it;
	const char *name;
	const uint8 *meta;
	int32		len;
	const char *best = NULL;
	int			best_votes = -1;

	for (int i = g->first; i >= 0 && first == NULL; i = members[i].next)
		if (!members[i].pending)
			first = &members[i];
	if (first == NULL)
		return NULL;
	first_list = ProtoListOf(first);
	ProtoIterInit(&it, &first_list);
	while (ProtoIterNext(&it, &name, &meta, &len))
	{
		bool		everyone = true;
		int			votes = 0;

		for (int i = g->first; i >= 0 && everyone; i = members[i].next)
		{
			ProtoList	l;

			if (members[i].pending)
				continue;
			l = ProtoListOf(&members[i]);
			everyone = ProtoListFind(&l, name, NULL, NULL);
		}
		if (!everyone)
			continue;
		/* Count the members whose first supported-by-all choice this is */
		for (int i = g->first; i >= 0; i = members[i].next)
		{
			ProtoList	l;
			ProtoIter	mit;
			const char *mname;
			const uint8 *mmeta;
			int32		mlen;

			if (members[i].pending)
				continue;
			l = ProtoListOf(&members[i]);
			ProtoIterInit(&mit, &l);
			while (ProtoIterNext(&mit, &mname, &mmeta, &mlen))
			{
				bool		all = true;

				for (int j = g->first; j >= 0 && all; j = members[j].next)
				{
					ProtoList	o;

					if (members[j].pending)
						continue;
					o = ProtoListOf(&members[j]);
					all = ProtoListFind(&o, mname, NULL, NULL);
				}
				if (all)
				{
					if (strcmp(mname, name) == 0)
						votes++;
					break;
				}
			}
		}
		if (votes > best_votes)
		{
			best = name;
			best_votes = votes;
		}
	}
	return best;
}

/*
 * Can a member with these protocols join the group?  The protocol type must
 * match, and one of its protocols must be supported by every other member.
 */
static bool
SupportsProtocols(const GroupSlot *g, const MemberSlot *self, const char *protocol_type,
				  const ProtoList *list)
{
	ProtoIter	it;
	const char *name;
	const uint8 *meta;
	int32		len;
	int			others = 0;

	for (int i = g->first; i >= 0; i = members[i].next)
		if (!members[i].pending && &members[i] != self)
			others++;
	if (protocol_type[0] == '\0' || list->n == 0)
		return false;
	if (others == 0)
		return true;
	if (strcmp(protocol_type, g->protocol_type) != 0)
		return false;
	ProtoIterInit(&it, list);
	while (ProtoIterNext(&it, &name, &meta, &len))
	{
		bool		all = true;

		for (int i = g->first; i >= 0 && all; i = members[i].next)
		{
			ProtoList	o;

			if (members[i].pending || &members[i] == self)
				continue;
			o = ProtoListOf(&members[i]);
			all = ProtoListFind(&o, name, NULL, NULL);
		}
		if (all)
			return true;
	}
	return false;
}

/*
 * CompleteJoin ends a rebalance: members that did not rejoin go, the
 * generation goes up, and the joined members learn it from their parked
 * JoinGroups.
 */
static void
CompleteJoin(GroupSlot *g, TimestampTz now)
{
	int			i = g->first;
	const char *protocol;

	while (i >= 0)
	{
		MemberSlot *m = &members[i];

		i = m->next;
		if (!m->pending && !m->awaiting_join)
			FreeMember(g, m);
	}
	g->initial_delay = false;
	g->generation++;
	SlWaitSetAdd(&groups_changed, SlWaitKeyForGroup(g->group_id));
	if (g->nmembers == 0)
	{
		g->state = SL_GROUP_EMPTY;
		g->protocol_name[0] = '\0';
		g->empty_since = now;
		return;
	}
	protocol = SelectProtocol(g);
	strlcpy(g->protocol_name, protocol ? protocol : "", SL_GROUP_ID_LEN);
	g->state = SL_GROUP_COMPLETING_REBALANCE;
	g->sync_deadline = TimestampTzPlusMilliseconds(now, MaxRebalanceTimeout(g));
	for (i = g->first; i >= 0; i = members[i].next)
	{
		MemberSlot *m = &members[i];

		if (m->pending)
			continue;
		m->awaiting_join = false;
		m->awaiting_sync = false;
		m->join_generation = g->generation;
		m->last_heartbeat = now;
	}
}

/* Complete the rebalance if every member rejoined or its time is up */
static void
TryCompleteJoin(GroupSlot *g, TimestampTz now)
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
			SlWaitSetAdd(&groups_changed, SlWaitKeyForGroup(g->group_id));
			return;
		}
	}
	else if (!AllJoined(g) && now < g->join_deadline)
		return;
	CompleteJoin(g, now);
}

static void
PrepareRebalance(GroupSlot *g, TimestampTz now)
{
	bool		was_empty = g->state == SL_GROUP_EMPTY;
	int32		timeout = MaxRebalanceTimeout(g);

	/* Waiting SyncGroups now get REBALANCE_IN_PROGRESS */
	for (int i = g->first; i >= 0; i = members[i].next)
		members[i].awaiting_sync = false;
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
	SlWaitSetAdd(&groups_changed, SlWaitKeyForGroup(g->group_id));
	TryCompleteJoin(g, now);
}

static void
MaybePrepareRebalance(GroupSlot *g, TimestampTz now)
{
	if (g->state == SL_GROUP_EMPTY || g->state == SL_GROUP_STABLE ||
		g->state == SL_GROUP_COMPLETING_REBALANCE)
		PrepareRebalance(g, now);
}

/* Remove a member (left, expired or fenced) and move the group on */
static void
RemoveMember(GroupSlot *g, MemberSlot *m, TimestampTz now)
{
	bool		was_pending = m->pending;

	FreeMember(g, m);
	switch (g->state)
	{
		case SL_GROUP_STABLE:
		case SL_GROUP_COMPLETING_REBALANCE:
			if (!was_pending)
				PrepareRebalance(g, now);
			break;
		case SL_GROUP_PREPARING_REBALANCE:
			TryCompleteJoin(g, now);
			break;
		default:
			break;
	}
}

static bool
SessionExpired(const MemberSlot *m, TimestampTz now)
{
	return now >= TimestampTzPlusMilliseconds(m->last_heartbeat, m->session_timeout_ms);
}

/*
 * GroupTimers runs what is due in a group: members whose session expired
 * are removed (except while their JoinGroup or SyncGroup waits: those are
 * bounded by the rebalance timeout), a rebalance whose deadline passed
 * completes, and at the sync deadline the members that have not synced
 * are removed.
 */
static void
GroupTimers(GroupSlot *g, TimestampTz now)
{
	bool		removed = true;

	while (removed)
	{
		removed = false;
		for (int i = g->first; i >= 0; i = members[i].next)
		{
			MemberSlot *m = &members[i];

			if (!m->pending &&
				((m->awaiting_join && g->state == SL_GROUP_PREPARING_REBALANCE) ||
				 (m->awaiting_sync && g->state == SL_GROUP_COMPLETING_REBALANCE)))
				continue;
			if (SessionExpired(m, now))
			{
				ereport(LOG,
						(errmsg("streamlog group \"%s\": member \"%s\" removed, no heartbeat for %d ms",
								g->group_id, m->member_id, m->session_timeout_ms)));
				RemoveMember(g, m, now);
				removed = true;
				break;
			}
		}
	}

	if (g->state == SL_GROUP_PREPARING_REBALANCE)
		TryCompleteJoin(g, now);
	else if (g->state == SL_GROUP_COMPLETING_REBALANCE && now >= g->sync_deadline)
	{
		int			i = g->first;

		while (i >= 0)
		{
			MemberSlot *m = &members[i];

			i = m->next;
			if (!m->pending && m->sync_generation != g->generation)
				FreeMember(g, m);
		}
		if (g->state == SL_GROUP_COMPLETING_REBALANCE)
			PrepareRebalance(g, now);
	}
}

/* Results */

static char *
NullIfEmpty(const char *s)
{
	return s[0] ? pstrdup(s) : NULL;
}

static void
ResultInit(SlGroupJoinResult *res, const char *member_id)
{
	memset(res, 0, sizeof(*res));
	res->error = SL_ERR_NONE;
	res->member_id = pstrdup(member_id ? member_id : "");
	res->generation = -1;
	res->leader = pstrdup("");
}

/* A member's metadata for the group's protocol, copied */
static void
CopyMemberInfo(const GroupSlot *g, const MemberSlot *m, SlGroupMemberInfo *info,
			   bool with_metadata, bool with_assignment)
{
	info->member_id = pstrdup(m->member_id);
	info->instance_id = NullIfEmpty(m->instance_id);
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
		ProtoList	l = ProtoListOf(m);
		const uint8 *meta;
		int32		len;

		if (ProtoListFind(&l, g->protocol_name, &meta, &len) && len > 0)
		{
			info->metadata = palloc(len);
			memcpy(info->metadata, meta, len);
			info->metadata_len = len;
		}
	}
	if (with_assignment && m->assignment_len > 0)
	{
		info->assignment = BlobCopy(m->assignment, m->assignment_len);
		info->assignment_len = m->assignment_len;
	}
}

/* The JoinGroup answer of member m from the group's current generation */
static void
FillJoinResult(const GroupSlot *g, const MemberSlot *m, SlGroupJoinResult *res)
{
	res->error = SL_ERR_NONE;
	res->wait = false;
	res->member_id = pstrdup(m->member_id);
	res->generation = g->generation;
	res->protocol_type = NullIfEmpty(g->protocol_type);
	res->protocol_name = NullIfEmpty(g->protocol_name);
	res->leader = pstrdup(g->leader >= 0 ? members[g->leader].member_id : "");
	res->nmembers = 0;
	res->members = NULL;
	if (g->leader == MemberIndex(m))
	{
		int			n = 0;

		for (int i = g->first; i >= 0; i = members[i].next)
			if (!members[i].pending)
				n++;
		res->members = palloc0(sizeof(SlGroupMemberInfo) * Max(n, 1));
		for (int i = g->first; i >= 0; i = members[i].next)
		{
			if (members[i].pending || members[i].join_generation != g->generation)
				continue;
			CopyMemberInfo(g, &members[i], &res->members[res->nmembers++], true, false);
		}
	}
}

static void
SetMemberClient(MemberSlot *m, const SlGroupJoinArgs *args)
{
	strlcpy(m->client_id, args->client_id ? args->client_id : "", CLIENT_ID_LEN);
	strlcpy(m->client_host, args->client_host ? args->client_host : "", CLIENT_HOST_LEN);
	m->session_timeout_ms = args->session_timeout_ms;
	m->rebalance_timeout_ms = args->rebalance_timeout_ms;
}

/* Replace a member's protocols with new ones stored in *stored */
static void
SetMemberProtocols(MemberSlot *m, dsa_pointer stored, const ProtoList *list)
{
	BlobFree(&m->protocols);
	m->protocols = stored;
	m->protocols_len = list->len;
	m->nprotocols = list->n;
}

/* Join: the member rejoined for this rebalance */
static void
MemberJoined(GroupSlot *g, MemberSlot *m, const SlGroupJoinArgs *args, dsa_pointer stored,
			 const ProtoList *list, TimestampTz now)
{
	SetMemberClient(m, args);
	SetMemberProtocols(m, stored, list);
	m->awaiting_join = true;
	m->last_heartbeat = now;
	if (g->leader < 0)
		g->leader = MemberIndex(m);
}

/*
 * The static member m restarted with a new member id.  In a Stable group
 * whose protocol and the member's subscription stay the same, it takes over
 * its old assignment without a rebalance; otherwise it rejoins like any
 * member.  Returns true if the join is answered right away.
 */
static bool
ReplaceStaticMember(GroupSlot *g, MemberSlot *m, const SlGroupJoinArgs *args, dsa_pointer stored,
					const ProtoList *list, TimestampTz now, SlGroupJoinResult *res)
{
	GenerateMemberId(args->instance_id, m->member_id);
	ereport(LOG,
			(errmsg("streamlog group \"%s\": static member \"%s\" rejoined as \"%s\"; the old id is fenced",
					g->group_id, args->instance_id, m->member_id)));
	SlWaitSetAdd(&groups_changed, SlWaitKeyForGroup(g->group_id));

	if (g->state == SL_GROUP_STABLE && g->protocol_name[0] &&
		strcmp(args->protocol_type, g->protocol_type) == 0)
	{
		ProtoList	old_list = ProtoListOf(m);
		const uint8 *old_meta;
		const uint8 *new_meta;
		int32		old_len;
		int32		new_len;
		const char *chosen;

		if (ProtoListFind(&old_list, g->protocol_name, &old_meta, &old_len) &&
			ProtoListFind(list, g->protocol_name, &new_meta, &new_len) &&
			SameSubscription(g->protocol_type, old_meta, old_len, new_meta, new_len))
		{
			SetMemberClient(m, args);
			SetMemberProtocols(m, stored, list);
			m->last_heartbeat = now;
			/* Kafka checks that the group would still choose its protocol */
			chosen = SelectProtocol(g);
			if (chosen != NULL && strcmp(chosen, g->protocol_name) == 0)
			{
				FillJoinResult(g, m, res);
				res->skip_assignment = g->leader == MemberIndex(m);
				return true;
			}
			m->awaiting_join = true;
			PrepareRebalance(g, now);
			return false;
		}
	}
	MemberJoined(g, m, args, stored, list, now);
	if (g->state == SL_GROUP_PREPARING_REBALANCE)
		TryCompleteJoin(g, now);
	else
		PrepareRebalance(g, now);
	return false;
}

/* Answer a waiting JoinGroup from the group's state, or say to wait */
static void
JoinOutcome(GroupSlot *g, MemberSlot *m, SlGroupJoinResult *res)
{
	if (g->state == SL_GROUP_PREPARING_REBALANCE && m->awaiting_join)
	{
		res->wait = true;
		res->deadline = g->join_deadline;
		res->member_id = pstrdup(m->member_id);
		return;
	}
	FillJoinResult(g, m, res);
}

/* Join: m is a new member of g, which now rebalances to take it in */
static void
MemberAdded(GroupSlot *g, MemberSlot *m, const SlGroupJoinArgs *args, dsa_pointer stored,
			const ProtoList *list, TimestampTz now, SlGroupJoinResult *res)
{
	g->nmembers++;
	MemberJoined(g, m, args, stored, list, now);
	if (g->state == SL_GROUP_PREPARING_REBALANCE && g->initial_delay)
		g->new_member_added = true;
	MaybePrepareRebalance(g, now);
	TryCompleteJoin(g, now);
	JoinOutcome(g, m, res);
}

void
SlGroupJoin(const SlGroupJoinArgs *args, SlGroupJoinResult *res)
{
	ProtoList	list;
	dsa_pointer stored;
	bool		failed = false;
	TimestampTz now;
	GroupSlot  *g;
	MemberSlot *m;

	ResultInit(res, args->member_id);
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
	list = ProtoListFromArgs(args);

	CoordinatorLock();
	now = GetCurrentTimestamp();
	g = FindGroup(args->group_id);
	if (g == NULL)
	{
		if (args->member_id[0] != '\0')
		{
			res->error = SL_ERR_UNKNOWN_MEMBER_ID;
			goto done;
		}
		g = CreateGroup(args->group_id, now);
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
	GroupTimers(g, now);
	if (g->state == SL_GROUP_DEAD)
	{
		res->error = SL_ERR_COORDINATOR_NOT_AVAILABLE;
		goto done;
	}

	m = FindMember(g, args->member_id);
	if (args->member_id[0] != '\0')
	{
		if (args->instance_id && StaticMemberFenced(g, args->member_id, args->instance_id))
		{
			res->error = SL_ERR_FENCED_INSTANCE_ID;
			goto done;
		}
		if (m == NULL)
		{
			res->error = SL_ERR_UNKNOWN_MEMBER_ID;
			goto done;
		}
	}
	if (!SupportsProtocols(g, m, args->protocol_type, &list))
	{
		res->error = SL_ERR_INCONSISTENT_GROUP_PROTOCOL;
		goto done;
	}

	/* New blobs first: nothing has changed if this fails */
	stored = BlobStore(list.data, list.len, &failed);
	if (failed)
	{
		res->error = SL_ERR_COORDINATOR_NOT_AVAILABLE;
		goto done;
	}
	if (g->nmembers == 0)
		strlcpy(g->protocol_type, args->protocol_type, SL_GROUP_ID_LEN);

	if (args->member_id[0] == '\0')
	{
		MemberSlot *old = FindStatic(g, args->instance_id);

		if (old != NULL)
		{
			if (!ReplaceStaticMember(g, old, args, stored, &list, now, res))
				JoinOutcome(g, old, res);
			goto done;
		}
		m = AllocMember(g);
		if (m == NULL)
		{
			dsa_free(area, stored);
			res->error = SL_ERR_GROUP_MAX_SIZE_REACHED;
			goto done;
		}
		GenerateMemberId(args->instance_id ? args->instance_id : args->client_id,
						 m->member_id);
		if (args->instance_id)
			strlcpy(m->instance_id, args->instance_id, SL_GROUP_ID_LEN);
		if (args->require_known_member_id && args->instance_id == NULL)
		{
			/* Kafka 2.2+ (KIP-394): rejoin with this id */
			m->pending = true;
			g->npending++;
			SetMemberClient(m, args);
			m->last_heartbeat = now;
			dsa_free(area, stored);
			res->error = SL_ERR_MEMBER_ID_REQUIRED;
			res->member_id = pstrdup(m->member_id);
			goto done;
		}
		MemberAdded(g, m, args, stored, &list, now, res);
		goto done;
	}

	if (m->pending)
	{
		/* The second join of KIP-394: a member now */
		m->pending = false;
		g->npending--;
		MemberAdded(g, m, args, stored, &list, now, res);
		goto done;
	}

	switch (g->state)
	{
		case SL_GROUP_PREPARING_REBALANCE:
			MemberJoined(g, m, args, stored, &list, now);
			TryCompleteJoin(g, now);
			break;
		case SL_GROUP_COMPLETING_REBALANCE:
		case SL_GROUP_STABLE:
			{
				ProtoList	current = ProtoListOf(m);

				if (ProtoListEqual(&current, &list) &&
					(g->state == SL_GROUP_COMPLETING_REBALANCE || g->leader != MemberIndex(m)))
				{
					/* It missed the answer to its join: give it again */
					dsa_free(area, stored);
					m->last_heartbeat = now;
					FillJoinResult(g, m, res);
					goto done;
				}
				MemberJoined(g, m, args, stored, &list, now);
				PrepareRebalance(g, now);
				break;
			}
		default:
			dsa_free(area, stored);
			res->error = SL_ERR_UNKNOWN_MEMBER_ID;
			goto done;
	}
	JoinOutcome(g, m, res);

done:
	CoordinatorUnlock();
}

void
SlGroupJoinPoll(const char *group_id, const char *member_id, const char *instance_id,
				SlGroupJoinResult *res)
{
	TimestampTz now;
	GroupSlot  *g;
	MemberSlot *m;

	ResultInit(res, member_id);
	CoordinatorLock();
	now = GetCurrentTimestamp();
	g = FindGroup(group_id);
	if (g == NULL)
	{
		res->error = SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	GroupTimers(g, now);
	m = FindMember(g, member_id);
	if (m == NULL || m->pending)
	{
		res->error = instance_id && StaticMemberFenced(g, member_id, instance_id) ?
			SL_ERR_FENCED_INSTANCE_ID : SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	if (g->state == SL_GROUP_EMPTY || g->state == SL_GROUP_DEAD)
	{
		res->error = SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	JoinOutcome(g, m, res);

done:
	CoordinatorUnlock();
}

/* Look up a member for SyncGroup, Heartbeat and commits: error or NONE */
static int16
CheckMember(const GroupSlot *g, const char *member_id, const char *instance_id, MemberSlot **mp)
{
	MemberSlot *m;

	*mp = NULL;
	if (g->state == SL_GROUP_DEAD)
		return SL_ERR_COORDINATOR_NOT_AVAILABLE;
	if (instance_id)
	{
		MemberSlot *s = FindStatic(g, instance_id);

		if (s == NULL)
			return SL_ERR_UNKNOWN_MEMBER_ID;
		if (strcmp(s->member_id, member_id) != 0)
			return SL_ERR_FENCED_INSTANCE_ID;
	}
	m = FindMember(g, member_id);
	if (m == NULL || m->pending)
		return SL_ERR_UNKNOWN_MEMBER_ID;
	*mp = m;
	return SL_ERR_NONE;
}

static void
SyncAnswer(const GroupSlot *g, const MemberSlot *m, SlGroupSyncResult *res)
{
	res->error = SL_ERR_NONE;
	res->wait = false;
	res->protocol_type = NullIfEmpty(g->protocol_type);
	res->protocol_name = NullIfEmpty(g->protocol_name);
	res->assignment = BlobCopy(m->assignment, m->assignment_len);
	res->assignment_len = m->assignment_len;
}

/*
 * The leader's SyncGroup: store every member's assignment (members it left
 * out get an empty one) and make the group Stable.
 */
static int16
StoreAssignments(GroupSlot *g, const SlGroupSyncArgs *args, TimestampTz now)
{
	int			n = g->nmembers + g->npending;
	dsa_pointer *blobs = palloc0(sizeof(dsa_pointer) * Max(n, 1));
	int32	   *lens = palloc0(sizeof(int32) * Max(n, 1));
	bool		failed = false;
	int			k = 0;

	for (int i = g->first; i >= 0; i = members[i].next, k++)
	{
		if (members[i].pending)
			continue;
		for (int a = 0; a < args->nassignments; a++)
		{
			if (strcmp(args->assignments[a].member_id, members[i].member_id) == 0)
			{
				blobs[k] = BlobStore(args->assignments[a].data, args->assignments[a].len, &failed);
				lens[k] = DsaPointerIsValid(blobs[k]) ? args->assignments[a].len : 0;
				break;
			}
		}
	}
	if (failed)
	{
		for (int j = 0; j < n; j++)
			BlobFree(&blobs[j]);
		return SL_ERR_COORDINATOR_NOT_AVAILABLE;
	}
	k = 0;
	for (int i = g->first; i >= 0; i = members[i].next, k++)
	{
		MemberSlot *m = &members[i];

		if (m->pending)
			continue;
		BlobFree(&m->assignment);
		m->assignment = blobs[k];
		m->assignment_len = lens[k];
		m->assignment_generation = g->generation;
		m->awaiting_sync = false;
		m->last_heartbeat = now;
	}
	g->state = SL_GROUP_STABLE;
	SlWaitSetAdd(&groups_changed, SlWaitKeyForGroup(g->group_id));
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
	CoordinatorLock();
	now = GetCurrentTimestamp();
	g = FindGroup(args->group_id);
	if (g == NULL)
	{
		res->error = SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	GroupTimers(g, now);
	res->error = CheckMember(g, args->member_id, args->instance_id, &m);
	if (res->error != SL_ERR_NONE)
		goto done;

	if (args->poll)
	{
		if (m->assignment_generation == args->generation)
		{
			SyncAnswer(g, m, res);
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
			if (!args->poll && g->leader == MemberIndex(m))
			{
				res->error = StoreAssignments(g, args, now);
				if (res->error == SL_ERR_NONE)
					SyncAnswer(g, m, res);
				break;
			}
			m->awaiting_sync = true;
			res->wait = true;
			res->deadline = g->sync_deadline;
			break;
		case SL_GROUP_STABLE:
			/* A Stable group keeps its assignment (a static leader's resync) */
			m->last_heartbeat = now;
			SyncAnswer(g, m, res);
			break;
		default:
			res->error = SL_ERR_UNKNOWN_MEMBER_ID;
			break;
	}

done:
	CoordinatorUnlock();
}

int16
SlGroupHeartbeat(const char *group_id, const char *member_id, const char *instance_id,
				 int32 generation)
{
	TimestampTz now;
	GroupSlot  *g;
	MemberSlot *m;
	int16		error;

	CoordinatorLock();
	now = GetCurrentTimestamp();
	g = FindGroup(group_id);
	if (g == NULL)
	{
		error = SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	GroupTimers(g, now);
	error = CheckMember(g, member_id, instance_id, &m);
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
	CoordinatorUnlock();
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

	CoordinatorLock();
	now = GetCurrentTimestamp();
	g = FindGroup(group_id);
	*group_found = g != NULL;
	if (g == NULL)
	{
		error = SL_ERR_UNKNOWN_MEMBER_ID;
		goto done;
	}
	GroupTimers(g, now);
	if (g->state == SL_GROUP_DEAD)
	{
		error = SL_ERR_COORDINATOR_NOT_AVAILABLE;
		goto done;
	}
	if (instance_id)
	{
		m = FindStatic(g, instance_id);
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
		m = FindMember(g, member_id);
		if (m == NULL)
		{
			error = SL_ERR_UNKNOWN_MEMBER_ID;
			goto done;
		}
	}
	RemoveMember(g, m, now);

done:
	CoordinatorUnlock();
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

	CoordinatorLock();
	now = GetCurrentTimestamp();
	g = FindGroup(group_id);
	if (g == NULL)
	{
		/* Kafka creates a "simple" group for commits from outside any */
		if (generation >= 0 || member_id[0] != '\0' || instance_id != NULL)
			error = api_version >= 9 ? SL_ERR_GROUP_ID_NOT_FOUND : SL_ERR_ILLEGAL_GENERATION;
		goto done;
	}
	GroupTimers(g, now);
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
	error = CheckMember(g, member_id, instance_id, &m);
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
	CoordinatorUnlock();
	return error;
}

bool
SlGroupDescribe(const char *group_id, bool all_details, SlGroupDescription *desc)
{
	GroupSlot  *g;
	bool		stable;

	memset(desc, 0, sizeof(*desc));
	CoordinatorLock();
	g = FindGroup(group_id);
	if (g == NULL)
	{
		CoordinatorUnlock();
		return false;
	}
	GroupTimers(g, GetCurrentTimestamp());
	stable = g->state == SL_GROUP_STABLE;
	desc->state = g->state;
	desc->generation = g->generation;
	desc->protocol_type = pstrdup(g->protocol_type);
	desc->protocol_name = pstrdup(stable || all_details ? g->protocol_name : "");
	desc->leader = pstrdup(g->leader >= 0 ? members[g->leader].member_id : "");
	desc->members = palloc0(sizeof(SlGroupMemberInfo) * Max(g->nmembers, 1));
	for (int i = g->first; i >= 0; i = members[i].next)
	{
		if (members[i].pending || desc->nmembers >= g->nmembers)
			continue;
		CopyMemberInfo(g, &members[i], &desc->members[desc->nmembers++],
					   stable || all_details, stable || all_details);
	}
	CoordinatorUnlock();
	return true;
}

List *
SlGroupList(void)
{
	List	   *result = NIL;

	CoordinatorLock();
	for (int i = 0; i < sl_max_groups; i++)
	{
		GroupSlot  *g = &groups[i];
		SlGroupListing *l;

		if (!g->in_use)
			continue;
		l = palloc(sizeof(SlGroupListing));
		l->group_id = pstrdup(g->group_id);
		l->state = g->state;
		l->protocol_type = pstrdup(g->protocol_type);
		result = lappend(result, l);
	}
	CoordinatorUnlock();
	return result;
}

int16
SlGroupForget(const char *group_id, bool *found)
{
	GroupSlot  *g;
	int16		error = SL_ERR_NONE;

	CoordinatorLock();
	g = FindGroup(group_id);
	*found = g != NULL;
	if (g != NULL)
	{
		GroupTimers(g, GetCurrentTimestamp());
		if (g->state != SL_GROUP_EMPTY)
			error = SL_ERR_NON_EMPTY_GROUP;
		else
		{
			g->state = SL_GROUP_DEAD;
			while (g->first >= 0)
				FreeMember(g, &members[g->first]);
			g->in_use = false;
		}
	}
	CoordinatorUnlock();
	return error;
}

bool
SlGroupSubscriptions(const char *group_id, SlGroupState *state, bool *consumer_protocol,
					 List **topics)
{
	GroupSlot  *g;

	*topics = NIL;
	CoordinatorLock();
	g = FindGroup(group_id);
	if (g == NULL)
	{
		CoordinatorUnlock();
		return false;
	}
	GroupTimers(g, GetCurrentTimestamp());
	*state = g->state;
	*consumer_protocol = strcmp(g->protocol_type, "consumer") == 0;
	if (*consumer_protocol)
	{
		for (int i = g->first; i >= 0; i = members[i].next)
		{
			ProtoList	l = ProtoListOf(&members[i]);
			ProtoIter	it;
			const char *name;
			const uint8 *meta = NULL;
			int32		len = 0;
			bool		ok;
			List	   *mine;
			ListCell   *lc;

			if (members[i].pending)
				continue;
			if (g->protocol_name[0] == '\0' ||
				!ProtoListFind(&l, g->protocol_name, &meta, &len))
			{
				ProtoIterInit(&it, &l);
				if (!ProtoIterNext(&it, &name, &meta, &len))
					continue;
			}
			mine = SubscriptionTopics(meta, len, &ok);
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
	CoordinatorUnlock();
	return true;
}

long
SlGroupCoordinatorTimers(long timeout_ms)
{
	static TimestampTz next_run = 0;
	TimestampTz now;
	long		until;

	if (coord == NULL || pg_atomic_read_u32(&coord->members_in_use) == 0)
		return timeout_ms;
	now = GetCurrentTimestamp();
	if (now >= next_run)
	{
		CoordinatorLock();
		for (int i = 0; i < sl_max_groups; i++)
			if (groups[i].in_use && groups[i].first >= 0)
				GroupTimers(&groups[i], now);
		CoordinatorUnlock();
		next_run = TimestampTzPlusMilliseconds(now, SL_GROUP_TIMER_MS);
	}
	until = TimestampDifferenceMilliseconds(now, next_run);
	return timeout_ms < 0 ? until : Min(timeout_ms, until);
}

/* SQL: the coordinator's groups and members */

PG_FUNCTION_INFO_V1(streamlog_kafka_groups);
PG_FUNCTION_INFO_V1(streamlog_kafka_group_members);

/*
 * streamlog.kafka_groups(): every group the coordinator knows, with its
 * state, generation, protocol, leader and member count.
 */
Datum
streamlog_kafka_groups(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *listed;
	ListCell   *lc;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	listed = SlGroupList();
	foreach(lc, listed)
	{
		SlGroupListing *l = lfirst(lc);
		SlGroupDescription d;
		Datum		values[7];
		bool		nulls[7] = {0};

		if (!SlGroupDescribe(l->group_id, true, &d))
			continue;
		values[0] = CStringGetTextDatum(l->group_id);
		values[1] = CStringGetTextDatum(SlGroupStateName(d.state));
		values[2] = CStringGetTextDatum(d.protocol_type);
		nulls[2] = d.protocol_type[0] == '\0';
		values[3] = CStringGetTextDatum(d.protocol_name);
		nulls[3] = d.protocol_name[0] == '\0';
		values[4] = Int32GetDatum(d.generation);
		values[5] = CStringGetTextDatum(d.leader);
		nulls[5] = d.leader[0] == '\0';
		values[6] = Int32GetDatum(d.nmembers);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static Datum
BytesDatum(const uint8 *data, int32 len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	if (len > 0)
		memcpy(VARDATA(b), data, len);
	return PointerGetDatum(b);
}

/*
 * streamlog.kafka_group_members(): every member of every group, with its
 * client, timeouts, last heartbeat, metadata of the group's protocol and
 * assignment.
 */
Datum
streamlog_kafka_group_members(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *listed;
	ListCell   *lc;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	listed = SlGroupList();
	foreach(lc, listed)
	{
		SlGroupListing *l = lfirst(lc);
		SlGroupDescription d;

		if (!SlGroupDescribe(l->group_id, true, &d))
			continue;
		for (int i = 0; i < d.nmembers; i++)
		{
			SlGroupMemberInfo *m = &d.members[i];
			Datum		values[10];
			bool		nulls[10] = {0};

			values[0] = CStringGetTextDatum(l->group_id);
			values[1] = CStringGetTextDatum(m->member_id);
			values[2] = m->instance_id ? CStringGetTextDatum(m->instance_id) : (Datum) 0;
			nulls[2] = m->instance_id == NULL;
			values[3] = CStringGetTextDatum(m->client_id);
			values[4] = CStringGetTextDatum(m->client_host);
			values[5] = Int32GetDatum(m->session_timeout_ms);
			values[6] = Int32GetDatum(m->rebalance_timeout_ms);
			values[7] = TimestampTzGetDatum(m->last_heartbeat);
			values[8] = BytesDatum(m->metadata, m->metadata_len);
			values[9] = BytesDatum(m->assignment, m->assignment_len);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
