/*-------------------------------------------------------------------------
 * group_coordinator.h
 *	  The Kafka consumer-group coordinator: the membership state machine of
 *	  classic (JoinGroup/SyncGroup) groups, shared by every broker worker.
 *
 * Every function takes the coordinator's lock itself; results are copied
 * out of shared memory into the caller's memory context.  Nothing here
 * touches relations: committed offsets live in streamlog.group_offset
 * (storage/group_offsets.c).  Error results are Kafka error codes.
 *
 * The coordinator is src/server/groups/, one file per job:
 *	slots.c			shared-memory slots, the blob area, the lock and wakeups
 *	protocols.c		members' protocol lists, protocol choice, subscriptions
 *	rebalance.c		the state machine's transitions
 *	timers.c		session expiry, rebalance and sync deadlines
 *	join.c			JoinGroup: unknown-member, known-member and static paths
 *	membership.c	SyncGroup, Heartbeat, LeaveGroup, commit checks
 *	admin.c			DescribeGroups, ListGroups, DeleteGroups, OffsetDelete
 * Their internal headers are in streamlog/server/groups/.  The consumer
 * protocol's embedded messages are decoded in protocol/consumer_protocol.c,
 * the SQL functions are in sqlapi/groups_sql.c.
 *
 * IDENTIFICATION
 *	  src/include/streamlog/server/group_coordinator.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_GROUP_COORDINATOR_H
#define SL_GROUP_COORDINATOR_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/* Longest group, member or instance id kept, NUL included */
#define SL_GROUP_ID_LEN 256

typedef enum SlGroupState
{
	SL_GROUP_EMPTY,
	SL_GROUP_PREPARING_REBALANCE,
	SL_GROUP_COMPLETING_REBALANCE,
	SL_GROUP_STABLE,
	SL_GROUP_DEAD
} SlGroupState;

/* Kafka's name of a state ("PreparingRebalance", ...) */
extern const char *SlGroupStateName(SlGroupState state);

/* One protocol a joining member supports, in its order of preference */
typedef struct SlGroupProtocol
{
	const char *name;			/* NUL-terminated */
	const uint8 *metadata;
	int32		metadata_len;
} SlGroupProtocol;

typedef struct SlGroupJoinArgs
{
	const char *group_id;
	const char *member_id;		/* "" for a member without an id yet */
	const char *instance_id;	/* group.instance.id; NULL if dynamic */
	const char *client_id;
	const char *client_host;
	int32		session_timeout_ms;
	int32		rebalance_timeout_ms;
	const char *protocol_type;
	int			nprotocols;
	const SlGroupProtocol *protocols;
	bool		require_known_member_id;	/* JoinGroup v4+ */
	/*
	 * Who joins: a group it creates counts against its
	 * streamlog.max_groups_per_role, unless it is a superuser (capped false)
	 */
	Oid			role;
	bool		role_capped;
} SlGroupJoinArgs;

/* A member as JoinGroup (to the leader) and DescribeGroups show it */
typedef struct SlGroupMemberInfo
{
	char	   *member_id;
	char	   *instance_id;	/* NULL if dynamic */
	char	   *client_id;
	char	   *client_host;
	uint8	   *metadata;		/* of the group's protocol */
	int32		metadata_len;
	uint8	   *assignment;
	int32		assignment_len;
	int32		session_timeout_ms;
	int32		rebalance_timeout_ms;
	TimestampTz last_heartbeat;
} SlGroupMemberInfo;

typedef struct SlGroupJoinResult
{
	int16		error;
	bool		wait;			/* park the request until deadline or a wakeup */
	TimestampTz deadline;
	char	   *member_id;
	int32		generation;
	char	   *protocol_type;	/* NULL if none */
	char	   *protocol_name;	/* NULL if none */
	char	   *leader;
	bool		skip_assignment;	/* a static leader rejoined without rebalance */
	int			nmembers;		/* the leader gets every member */
	SlGroupMemberInfo *members;
} SlGroupJoinResult;

/*
 * A JoinGroup request.  If result->wait, the request waits for the
 * rebalance to complete: call SlGroupJoinPoll with result->member_id when
 * woken or at result->deadline.
 */
extern void SlGroupJoin(const SlGroupJoinArgs *args, SlGroupJoinResult *result);
extern void SlGroupJoinPoll(const char *group_id, const char *member_id,
							const char *instance_id, SlGroupJoinResult *result);

typedef struct SlGroupAssignment
{
	const char *member_id;
	const uint8 *data;
	int32		len;
} SlGroupAssignment;

typedef struct SlGroupSyncArgs
{
	const char *group_id;
	const char *member_id;
	const char *instance_id;	/* NULL if dynamic */
	int32		generation;
	const char *protocol_type;	/* v5+: checked if not NULL */
	const char *protocol_name;
	int			nassignments;
	const SlGroupAssignment *assignments;
	bool		poll;			/* a parked request looking again */
} SlGroupSyncArgs;

typedef struct SlGroupSyncResult
{
	int16		error;
	bool		wait;
	TimestampTz deadline;
	char	   *protocol_type;
	char	   *protocol_name;
	uint8	   *assignment;
	int32		assignment_len;
} SlGroupSyncResult;

extern void SlGroupSync(const SlGroupSyncArgs *args, SlGroupSyncResult *result);

extern int16 SlGroupHeartbeat(const char *group_id, const char *member_id,
							  const char *instance_id, int32 generation);

/*
 * A member leaves (member_id "" with an instance id: the static member of
 * that instance).  *group_found tells whether the coordinator knew the group.
 */
extern int16 SlGroupLeave(const char *group_id, const char *member_id,
						  const char *instance_id, bool *group_found);

/*
 * May this member commit offsets for the group now?  generation -1 with
 * no member is a commit from outside the group's membership (an admin
 * client, manual assignment), accepted while the group has no members.
 */
extern int16 SlGroupCheckCommit(const char *group_id, const char *member_id,
								const char *instance_id, int32 generation,
								int16 api_version);

typedef struct SlGroupDescription
{
	SlGroupState state;
	int32		generation;
	char	   *protocol_type;
	char	   *protocol_name;	/* "" unless Stable (as Kafka describes) */
	char	   *leader;			/* "" if none */
	int			nmembers;
	SlGroupMemberInfo *members;	/* metadata and assignment only if Stable */
} SlGroupDescription;

/* Describe a group the coordinator knows; false if it does not */
extern bool SlGroupDescribe(const char *group_id, bool all_details,
							SlGroupDescription *desc);

/* Every group the coordinator knows: a List of SlGroupListing * */
typedef struct SlGroupListing
{
	char	   *group_id;
	SlGroupState state;
	char	   *protocol_type;
	TimestampTz empty_since;	/* if Empty: since when */
} SlGroupListing;

extern List *SlGroupList(void);

/*
 * Forget a group without members (DeleteGroups); NON_EMPTY_GROUP if it has
 * some.  *found tells whether the coordinator knew it.
 */
extern int16 SlGroupForget(const char *group_id, bool *found);

/*
 * For OffsetDelete: the group's state, and the topics its members
 * subscribe to (List of char *) if it is a "consumer" group with members.
 * False if the coordinator does not know the group.
 */
extern bool SlGroupSubscriptions(const char *group_id, SlGroupState *state,
								 bool *consumer_protocol, List **topics);

/*
 * Group metadata to store in __consumer_offsets, as Kafka's coordinator
 * stores it: after a rebalance completes (the leader's SyncGroup) and when
 * the group empties.  SlGroupMetadataChanges lists the groups that changed
 * since they were last stored (only group_id's, unless NULL), with their
 * state now, every detail included; once a change is written, pass its
 * count to SlGroupMetadataStored, which marks the group clean unless it
 * changed again meanwhile.
 */
typedef struct SlGroupMetadataChange
{
	char	   *group_id;
	uint32		change;
	TimestampTz state_since;	/* when the group entered its state */
	SlGroupDescription desc;
} SlGroupMetadataChange;

extern List *SlGroupMetadataChanges(const char *group_id);
extern void SlGroupMetadataStored(const char *group_id, uint32 change);

/*
 * Broker worker 0 calls this each time round its loop: it runs the due
 * timers (session expiry, rebalance and sync deadlines) at most every
 * SL_GROUP_TIMER_MS, and returns the wait timeout to use: timeout_ms
 * (-1 = none), lowered so that the next check is not late.  Runs outside
 * any transaction.
 */
#define SL_GROUP_TIMER_MS 500
extern long SlGroupCoordinatorTimers(long timeout_ms);

/*
 * Broker worker 0 calls this each time round its loop too, outside any
 * transaction: at most every second, on a cluster, the groups this node
 * holds state for but no longer coordinates (their partition of
 * __consumer_offsets is led elsewhere) are unloaded, as Kafka's
 * onResignation does (server/groups/resign.c).  Returns the wait timeout
 * to use, as SlGroupCoordinatorTimers: lowered while groups are held.
 */
extern long SlGroupUnloadResigned(long timeout_ms);

extern Size SlGroupCoordinatorShmemSize(void);
extern void SlGroupCoordinatorShmemInit(void);

#endif							/* SL_GROUP_COORDINATOR_H */
