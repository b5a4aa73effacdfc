/*-------------------------------------------------------------------------
 * group_metadata.c
 *	  The group coordinator's metadata in __consumer_offsets: what Kafka's
 *	  GroupMetadataManager stores, a GroupMetadataValue with the group's
 *	  protocol, generation, leader and every member with its subscription
 *	  and assignment, after the leader's SyncGroup and when the group
 *	  empties; the tombstone when the group is deleted is written with its
 *	  offsets' (storage/group_offsets.c, handlers/groups.c).
 *
 * The coordinator's state is in shared memory, not in a transaction: it
 * counts the changes to store (group_coordinator.h), and whoever has a
 * transaction stores them, the group's own requests first, broker worker 0
 * for changes no request saw (expired sessions).  A change is marked
 * stored when the transaction that wrote its record commits; if that
 * transaction fails, worker 0 stores it on its next round.
 *
 * IDENTIFICATION
 *	  src/server/group_metadata.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/server/group_coordinator.h"
#include "streamlog/server/group_metadata.h"
#include "streamlog/storage/storage.h"

/* Changes written by the current transaction, marked stored at its commit */
typedef struct StoredChange
{
	char		group_id[SL_GROUP_ID_LEN];
	uint32		change;
} StoredChange;

static List *written = NIL;		/* of StoredChange, in TopMemoryContext */
static bool callback_registered = false;

static void
mark_at_commit(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event == XACT_EVENT_COMMIT)
		foreach(lc, written)
		{
			StoredChange *c = lfirst(lc);

			SlGroupMetadataStored(c->group_id, c->change);
		}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
	{
		list_free_deep(written);
		written = NIL;
	}
}

static char *
null_if_empty(char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

/* Buffer the record of one change */
static void
store_change(const SlGroupMetadataChange *c)
{
	const SlGroupDescription *d = &c->desc;
	SlGroupMetadataMember *members = palloc0(sizeof(SlGroupMetadataMember) * Max(d->nmembers, 1));
	SlGroupMetadataValue value;

	for (int i = 0; i < d->nmembers; i++)
	{
		const SlGroupMemberInfo *m = &d->members[i];

		members[i].member_id = m->member_id;
		members[i].instance_id = m->instance_id;
		members[i].client_id = m->client_id;
		members[i].client_host = m->client_host;
		members[i].rebalance_timeout_ms = m->rebalance_timeout_ms;
		members[i].session_timeout_ms = m->session_timeout_ms;
		members[i].subscription = m->metadata;
		members[i].subscription_len = m->metadata_len;
		members[i].assignment = m->assignment;
		members[i].assignment_len = m->assignment_len;
	}
	value.protocol_type = d->protocol_type;
	value.generation = d->generation;
	/* An empty group has neither, as Kafka stores it */
	value.protocol = d->nmembers > 0 ? null_if_empty(d->protocol_name) : NULL;
	value.leader = d->nmembers > 0 ? null_if_empty(d->leader) : NULL;
	value.current_state_timestamp = SlTimestampToKafka(c->state_since);
	value.nmembers = d->nmembers;
	value.members = members;
	SlOffsetsTopicStoreGroup(c->group_id, &value);
}

void
SlGroupMetadataStore(const char *group_id)
{
	List	   *changes;
	ListCell   *lc;

	if (!sl_offsets_topic || group_id == NULL)
		return;
	changes = SlGroupMetadataChanges(group_id);
	foreach(lc, changes)
	{
		SlGroupMetadataChange *c = lfirst(lc);
		StoredChange *w;
		MemoryContext oldcxt;

		store_change(c);
		if (!callback_registered)
		{
			RegisterXactCallback(mark_at_commit, NULL);
			callback_registered = true;
		}
		oldcxt = MemoryContextSwitchTo(TopMemoryContext);
		w = palloc0(sizeof(StoredChange));
		strlcpy(w->group_id, c->group_id, sizeof(w->group_id));
		w->change = c->change;
		written = lappend(written, w);
		MemoryContextSwitchTo(oldcxt);
	}
}

void
SlGroupMetadataStoreChanged(void)
{
	static TimestampTz next_run = 0;
	static MemoryContext context = NULL;
	TimestampTz now = GetCurrentTimestamp();
	MemoryContext oldcxt;
	List	   *changes;
	ListCell   *lc;

	if (!sl_offsets_topic || now < next_run)
		return;
	next_run = TimestampTzPlusMilliseconds(now, SL_GROUP_TIMER_MS);
	if (context == NULL)
		context = AllocSetContextCreate(TopMemoryContext, "streamlog group metadata",
										ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(context);
	changes = SlGroupMetadataChanges(NULL);
	if (changes == NIL)
	{
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(context);
		return;
	}

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		MemoryContextSwitchTo(context);
		foreach(lc, changes)
			store_change(lfirst(lc));
		PopActiveSnapshot();
		CommitTransactionCommand();
		/* Durable now: the groups are clean unless they changed again */
		foreach(lc, changes)
		{
			SlGroupMetadataChange *c = lfirst(lc);

			SlGroupMetadataStored(c->group_id, c->change);
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(context);
}
