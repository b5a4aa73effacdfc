/*
 * The forwarder's loop: run a pass over the forward queue
 * (replication/produce_forward.c) whenever a commit queued batches (it
 * sets this worker's latch), and at least every FORWARD_IDLE_MS for
 * batches waiting on a leader that was away; right again after a pass
 * that delivered, as more may wait.  An error in a pass is logged, its
 * transaction aborted and its connections closed; the worker goes on (an
 * ERROR reaching the top would restart the whole server).
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "streamlog/bgworkers/forwarder.h"
#include "streamlog/guc.h"
#include "streamlog/metadata/group_remote.h"
#include "streamlog/replication/produce_forward.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/forward_queue.h"
#include "streamlog/worker.h"

/* Longest wait between passes while nothing wakes the worker */
#define FORWARD_IDLE_MS 1000
/* How often the consume() resolver runs here (metadata/group_remote.h) */
#define CONSUME_RESOLVE_MS 2000

void
SlForwarderRegister(void)
{
	SlWorkerRegister("SlForwarderMain", "streamlog forwarder");
}

static void
forwarder_detach(int code, Datum arg)
{
	SlForwardQueueSetForwarder(-1);
	SlForwardDisconnect();
	SlRemoteGroupResolverDisconnect();
}

/*
 * The in-doubt resolver of consume() on other nodes, at start and every
 * CONSUME_RESOLVE_MS: its errors are logged, never raised
 */
static void
resolve_consumes(MemoryContext pass_context, TimestampTz *last)
{
	if (!TimestampDifferenceExceeds(*last, GetCurrentTimestamp(), CONSUME_RESOLVE_MS))
		return;
	*last = GetCurrentTimestamp();
	pgstat_report_activity(STATE_RUNNING, "resolving consumes");
	PG_TRY();
	{
		SlRemoteGroupResolve();
	}
	PG_CATCH();
	{
		SlWorkerRecover(pass_context);
		SlRemoteGroupResolverDisconnect();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextReset(pass_context);
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
SlForwarderMain(Datum arg)
{
	MemoryContext pass_context;
	bool		more = false;
	TimestampTz last_resolve = 0;

	SlWorkerStart(NULL);
	/* see SlForwardPass for why its commits need not wait for the flush */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SlForwardQueueSetForwarder(SL_MY_PROCNO);
	before_shmem_exit(forwarder_detach, 0);

	pass_context = AllocSetContextCreate(TopMemoryContext, "streamlog forwarder pass",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		SlWorkerWait(more ? 0 : FORWARD_IDLE_MS);
		pgstat_report_activity(STATE_RUNNING, "forwarding");
		PG_TRY();
		{
			more = SlForwardPass(pass_context);
		}
		PG_CATCH();
		{
			SlWorkerRecover(pass_context);
			SlForwardDisconnect();
			more = false;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(pass_context);
		pgstat_report_activity(STATE_IDLE, NULL);
		MemoryContextSwitchTo(pass_context);
		resolve_consumes(pass_context, &last_resolve);
	}
}
