/*-------------------------------------------------------------------------
 * slots.h
 *	  Internal to the group coordinator (src/server/groups/): the layout of
 *	  its shared state, the lock, blobs in the shared area, and finding,
 *	  allocating and freeing group and member slots.
 *
 * Everything here is called with the coordinator's lock held
 * (SlGroupLock), except SlGroupLock itself and the shared-memory setup.
 * Outside src/server/groups/, use server/group_coordinator.h.
 *
 * IDENTIFICATION
 *	  src/include/streamlog/server/groups/slots.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_GROUP_SLOTS_H
#define SL_GROUP_SLOTS_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "utils/dsa.h"

#include "streamlog/server/group_coordinator.h"

#define SL_GROUP_CLIENT_ID_LEN 128
#define SL_GROUP_CLIENT_HOST_LEN 64

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
	char		client_id[SL_GROUP_CLIENT_ID_LEN];
	char		client_host[SL_GROUP_CLIENT_HOST_LEN];
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
	/*
	 * What Kafka stores in __consumer_offsets: the state's start (its
	 * currentStateTimestamp), and a count of the changes to store (a
	 * rebalance completed, or the group emptied) against the count stored
	 */
	TimestampTz state_since;
	uint32		metadata_changes;
	uint32		metadata_stored;
	Oid			creator;		/* the role whose JoinGroup created it */
	char		group_id[SL_GROUP_ID_LEN];
	char		protocol_type[SL_GROUP_ID_LEN];
	char		protocol_name[SL_GROUP_ID_LEN];	/* "" while none chosen */
} GroupSlot;

typedef struct GroupCoordinatorShared
{
	LWLock	   *lock;
	int			area_tranche;
	int			free_member;	/* first free member slot, -1 if none */
	pg_atomic_uint32 members_in_use;	/* timers run while > 0 */
} GroupCoordinatorShared;

/* The shared state: sl_max_groups group slots, sl_max_group_members members */
extern GroupCoordinatorShared *sl_group_coord;
extern GroupSlot *sl_groups;
extern MemberSlot *sl_group_members;

/*
 * Group g had a transition that parked requests may wait for: SlGroupUnlock
 * wakes the requests parked on it.
 */
extern void SlGroupChanged(const GroupSlot *g);

/* Take the lock (attaching to the area first); release it, then wake */
extern void SlGroupLock(void);
extern void SlGroupUnlock(void);

/*
 * Blobs in the shared area.  SlGroupBlobStore returns InvalidDsaPointer for
 * len <= 0, and sets *failed (leaving everything as it was) when the area
 * is full.
 */
extern dsa_pointer SlGroupBlobStore(const void *data, int32 len, bool *failed);
extern void SlGroupBlobFree(dsa_pointer *p);
extern const void *SlGroupBlobGet(dsa_pointer p);
extern uint8 *SlGroupBlobCopy(dsa_pointer p, int32 len);

/* Slots */
static inline int
SlMemberIndex(const MemberSlot *m)
{
	return (int) (m - sl_group_members);
}

extern GroupSlot *SlGroupFind(const char *group_id);
extern GroupSlot *SlGroupCreate(const char *group_id, TimestampTz now);
extern MemberSlot *SlMemberFind(const GroupSlot *g, const char *member_id);
extern MemberSlot *SlMemberFindStatic(const GroupSlot *g, const char *instance_id);
extern bool SlMemberStaticFenced(const GroupSlot *g, const char *member_id,
								 const char *instance_id);
extern MemberSlot *SlMemberAlloc(GroupSlot *g);
extern void SlMemberFree(GroupSlot *g, MemberSlot *m);
extern void SlMemberGenerateId(const char *prefix, char *out);

/* Copies out of the shared state, in the current memory context */
static inline char *
SlNullIfEmpty(const char *s)
{
	return s[0] ? pstrdup(s) : NULL;
}

extern void SlMemberCopyInfo(const GroupSlot *g, const MemberSlot *m,
							 SlGroupMemberInfo *info, bool with_metadata,
							 bool with_assignment);

#endif							/* SL_GROUP_SLOTS_H */
