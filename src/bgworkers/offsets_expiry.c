/*
 * Expiry of committed offsets, as Kafka's offsets.retention.minutes
 * (KIP-211): the offsets of a group expire only while it has no members.
 *
 *	- a Kafka group the coordinator knows with members keeps its offsets;
 *	- a Kafka consumer group that is Empty loses all of them once it has
 *	  been empty for the retention (Kafka's currentStateTimestamp), and is
 *	  then forgotten, its metadata tombstoned;
 *	- every other group (SQL consumers, standalone commits, Kafka groups
 *	  the coordinator forgot in a restart) loses each offset committed
 *	  longer ago than the retention.
 *
 * SQL consumers have no membership: a SQL group that stops consuming for
 * the retention loses its offsets, and its next consume() starts over as
 * a new group would.  Rows an SQL consumer holds in an open transaction
 * are skipped until the next pass.  Deleting the rows writes their
 * tombstones to __consumer_offsets in the same transaction
 * (storage/group_offsets.c).
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/bgworkers/offsets_expiry.h"
#include "streamlog/guc.h"
#include "streamlog/server/group_coordinator.h"
#include "streamlog/storage/storage.h"
#include "streamlog/worker.h"

/* Is the extension installed in this database?  (a syscache lookup) */
static bool
extension_installed(void)
{
	return OidIsValid(get_extension_oid("streamlog", true));
}

void
SlOffsetsExpire(void)
{
	static TimestampTz next_run = 0;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz cutoff;
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext pass;
	List	   *keep = NIL;
	List	   *expire = NIL;
	ListCell   *lc;

	if (now < next_run)
		return;
	next_run = TimestampTzPlusMilliseconds(now, sl_offsets_retention_check_interval);
	cutoff = now - (TimestampTz) sl_offsets_retention_minutes * USECS_PER_MINUTE;

	pass = AllocSetContextCreate(TopMemoryContext, "streamlog offsets expiry",
								 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(pass);
	foreach(lc, SlGroupList())
	{
		SlGroupListing *g = lfirst(lc);

		if (g->state != SL_GROUP_EMPTY)
			keep = lappend(keep, g->group_id);
		else if (g->protocol_type[0] == '\0')
			continue;			/* standalone: offset by offset */
		else if (g->empty_since < cutoff)
			expire = lappend(expire, g->group_id);
		else
			keep = lappend(keep, g->group_id);
	}

	PG_TRY();
	{
		int64		expired = 0;

		SlWorkerBeginTransaction();
		MemoryContextSwitchTo(pass);
		if (extension_installed())
		{
			expired = SlGroupOffsetsExpire(cutoff, keep, expire);
			/* Expired Kafka groups go, metadata and all */
			foreach(lc, expire)
				SlOffsetsTopicStoreGroup(lfirst(lc), NULL);
		}
		SlWorkerCommitTransaction();
		MemoryContextSwitchTo(pass);
		foreach(lc, expire)
		{
			bool		found;

			/* Refused if members joined meanwhile: they start afresh */
			(void) SlGroupForget(lfirst(lc), &found);
		}
		if (expired > 0)
			elog(LOG, "streamlog expired %lld committed offsets", (long long) expired);
	}
	PG_CATCH();
	{
		SlWorkerRecover(pass);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(pass);
}
