/*
 * The end of a transaction, for all of storage: one XactCallback and one
 * SubXactCallback that call each module's handler in the order written
 * here.
 *
 * Several modules keep work for the end of the transaction: log_append.c
 * buffers produced records and holds offset reservations, producers.c the
 * sequences of idempotent batches, delete_records.c new log start offsets,
 * topics.c the shared state of dropped or added partitions.  Each used to
 * register its own callbacks, which PostgreSQL runs newest first, so their
 * order was that of _PG_init read backwards, and the code depended on it
 * without saying so.  Here the order is the code.
 *
 * At commit (and at abort, whose work follows the same order):
 *
 * 1. delete_records: publish the new log start offsets.  Before topics,
 *    which may forget the partition state they point to (a topic dropped
 *    after its records were deleted, in one transaction).
 * 2. producers: publish the sequences of the batches stored.  Before
 *    log_append moves the high watermark past them: a retry that could
 *    see the records must also see their sequences, or it would be stored
 *    a second time.
 * 3. log_append: release the offset reservations, which moves the high
 *    watermark (XACT_EVENT_PRE_COMMIT is where it appends and fills in
 *    the base offsets that producers.c publishes in 2).
 *    replica_append does the same for a follower's appends (and takes back
 *    an aborted one's reservation).
 * 3b. replica_truncate: unfence the partitions a truncation fenced, and
 *    forget their producers' state (rebuilt from the log that is left);
 *    at abort, put back the partition state it changed, after log_append
 *    released this transaction's own reservations.
 * 3c. txn_index: lower the count of open transactions of the partitions
 *    whose markers committed, or that this transaction's aborted appends
 *    had raised; before topics forgets partition states.
 * 4. topics: forget the shared state of dropped (at commit) or added (at
 *    abort) partitions, once log_append has released its reservations on
 *    them, and publish the catalog generation.
 *
 * A subtransaction that aborts is undone in the same order.  Only
 * SUBXACT_EVENT_ABORT_SUB needs any work: a committed subtransaction's
 * work belongs to its parent, and SlPendingWork needs no update for that.
 *
 * Citus (transaction_management.c) keeps the same shape: one callback pair,
 * a switch on the event, each subsystem called in turn.  Rejected: a list
 * of handlers that modules register into, which would only move the
 * ordering problem back into _PG_init.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"

#include "streamlog/storage/internal/xact.h"
#include "streamlog/storage/storage_init.h"

static void
storage_xact_callback(XactEvent event, void *arg)
{
	SlDeleteRecordsXactEvent(event);
	SlProducersXactEvent(event);
	SlLogAppendXactEvent(event);
	SlReplicaAppendXactEvent(event);
	SlReplicaTruncateXactEvent(event);
	SlTxnIndexXactEvent(event);
	SlTopicsXactEvent(event);
}

static void
storage_subxact_callback(SubXactEvent event, SubTransactionId subid,
						 SubTransactionId parent_subid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	SlDeleteRecordsSubXactAbort(subid);
	SlProducersSubXactAbort(subid);
	SlLogAppendSubXactAbort(subid);
	SlReplicaAppendSubXactAbort(subid);
	SlReplicaTruncateSubXactAbort(subid);
	SlTxnIndexSubXactAbort(subid);
	SlTopicsSubXactAbort(subid);
}

void
SlXactInit(void)
{
	RegisterXactCallback(storage_xact_callback, NULL);
	RegisterSubXactCallback(storage_subxact_callback, NULL);
}

void *
SlPendingWorkAdd(List **list, Size size)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	SlPendingWork *work;

	Assert(size >= sizeof(SlPendingWork));
	work = palloc0(size);
	work->subid = GetCurrentSubTransactionId();
	*list = lappend(*list, work);
	MemoryContextSwitchTo(oldcxt);
	return work;
}

void
SlPendingWorkAbortSub(List **list, SubTransactionId subid,
					  void (*undo) (SlPendingWork *work))
{
	ListCell   *lc;

	foreach(lc, *list)
	{
		SlPendingWork *work = lfirst(lc);

		/*
		 * Subtransaction ids only grow, and subid is still open: an item of
		 * a later id that exists now was made in one of its children.
		 */
		if (work->subid >= subid)
		{
			if (undo)
				undo(work);
			*list = foreach_delete_current(*list, lc);
		}
	}
}
