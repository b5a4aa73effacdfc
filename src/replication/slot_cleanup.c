/*-------------------------------------------------------------------------
 * slot_cleanup.c
 *	  Dropping the slots of followers that stopped following this node
 *	  (slot_cleanup.h).
 *
 * A follower creates its slot on a leader the first time it follows one
 * of its partitions and keeps it: the slot outlives the reason for it when
 * the partitions move away (a reassignment, a topic deleted, this node no
 * longer leading them, the follower removed from the cluster), and then
 * pins the leader's WAL until max_slot_wal_keep_size invalidates it.
 *
 * The leader's replication launcher looks at its slots every
 * SL_SLOT_CHECK_MS.  A slot named for follower F that is inactive, while
 * the catalog says F replicates no partition this node leads, is dropped
 * once that has held for SL_SLOT_UNNEEDED_GRACE_MS: the grace keeps a
 * leadership that moves away and back at once, or a catalog a moment
 * behind the follower's, from costing the follower its slot.  Dropping
 * loses nothing: a follower that follows this node again creates its slot
 * anew, and everything older than the slot comes through the side
 * channel (apply_worker.c).  A follower that connects while its slot is
 * being dropped fails to start streaming and retries.
 *
 * IDENTIFICATION
 *	  src/replication/slot_cleanup.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/replication/apply_worker.h"
#include "streamlog/replication/slot_cleanup.h"
#include "streamlog/storage/replica_followed.h"

#define SL_SLOT_CHECK_MS 1000
#define SL_SLOT_UNNEEDED_GRACE_MS 5000

/* A follower slot seen unneeded: since when */
typedef struct UnneededSlot
{
	int32		follower;
	TimestampTz since;
} UnneededSlot;

#define SL_MAX_TRACKED_SLOTS (SL_MAX_NODES * 2)

static UnneededSlot unneeded[SL_MAX_TRACKED_SLOTS];
static int	nunneeded = 0;
static TimestampTz last_check = 0;

/* The follower a slot name is for, or -1 if it is not one of ours */
static int32
slot_follower(const char *name)
{
	int			follower;
	char		expect[NAMEDATALEN];

	if (sscanf(name, SL_REPLICATION_SLOT_FORMAT, &follower) != 1 || follower < 0)
		return -1;
	/* Exactly the name, nothing around the number */
	snprintf(expect, sizeof(expect), SL_REPLICATION_SLOT_FORMAT, follower);
	return strcmp(expect, name) == 0 ? follower : -1;
}

/* The inactive follower slots of this database: their followers */
static int
inactive_follower_slots(int32 *followers, int max)
{
	int			n = 0;

	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	for (int i = 0; i < max_replication_slots && n < max; i++)
	{
		ReplicationSlot *s = &ReplicationSlotCtl->replication_slots[i];
		pid_t		active_pid;
		int32		follower;

		if (!s->in_use || s->data.database != MyDatabaseId ||
			s->data.persistency != RS_PERSISTENT)
			continue;
		SpinLockAcquire(&s->mutex);
		active_pid = s->active_pid;
		SpinLockRelease(&s->mutex);
		follower = slot_follower(NameStr(s->data.name));
		if (active_pid == 0 && follower >= 0 && follower != sl_node_id)
			followers[n++] = follower;
	}
	LWLockRelease(ReplicationSlotControlLock);
	return n;
}

/* Does follower replicate a partition this node leads, as the catalog says? */
static bool
follows_here(int32 follower)
{
	List	   *list;
	bool		follows;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	/* Without the extension there is no catalog: keep everything */
	if (!OidIsValid(get_extension_oid("streamlog", true)))
		follows = true;
	else
	{
		list = SlFollowedPartitions(follower, sl_node_id);
		follows = list != NIL;
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	return follows;
}

/* Since when follower's slot has been unneeded, now if it just became so */
static TimestampTz
unneeded_since(const UnneededSlot *before, int nbefore, int32 follower, TimestampTz now)
{
	for (int i = 0; i < nbefore; i++)
		if (before[i].follower == follower)
			return before[i].since;
	return now;
}

static void
drop_slot(int32 follower)
{
	char		name[NAMEDATALEN];
	MemoryContext oldcxt = CurrentMemoryContext;

	snprintf(name, sizeof(name), SL_REPLICATION_SLOT_FORMAT, follower);
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		/* nowait: a follower that took it meanwhile keeps it (an ERROR) */
		ReplicationSlotDrop(name, true);
		CommitTransactionCommand();
		ereport(LOG,
				(errmsg("dropped replication slot \"%s\": node %d follows no partition this node leads",
						name, follower)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		EmitErrorReport();
		FlushErrorState();
		if (MyReplicationSlot != NULL)
			ReplicationSlotRelease();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
}

void
SlDropUnfollowedSlots(void)
{
	int32		followers[SL_MAX_TRACKED_SLOTS];
	UnneededSlot before[SL_MAX_TRACKED_SLOTS];
	int			nbefore = nunneeded;
	int			nslots;
	TimestampTz now = GetCurrentTimestamp();

	if (!SlClusterEnabled() || RecoveryInProgress() ||
		!TimestampDifferenceExceeds(last_check, now, SL_SLOT_CHECK_MS))
		return;
	last_check = now;
	memcpy(before, unneeded, sizeof(UnneededSlot) * nbefore);
	nunneeded = 0;

	nslots = inactive_follower_slots(followers, SL_MAX_TRACKED_SLOTS);
	for (int i = 0; i < nslots; i++)
	{
		TimestampTz since;

		if (follows_here(followers[i]))
			continue;
		since = unneeded_since(before, nbefore, followers[i], now);
		if (TimestampDifferenceExceeds(since, now, SL_SLOT_UNNEEDED_GRACE_MS))
		{
			drop_slot(followers[i]);
			continue;
		}
		unneeded[nunneeded].follower = followers[i];
		unneeded[nunneeded].since = since;
		nunneeded++;
	}
}
