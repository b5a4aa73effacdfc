/*-------------------------------------------------------------------------
 * launcher.c
 *	  The replication launcher: one apply worker per leader this node
 *	  follows partitions of, as the catalog's leadership says.
 *
 * Every SL_LAUNCHER_INTERVAL_MS (and when a worker it started stops) it
 * reads which leaders this node follows (SlFollowedPartitions), starts a
 * dynamic apply worker for each that has none, and stops the workers of
 * leaders it no longer follows.  A worker that exits (nothing left to
 * follow, or an error) is started again at the next round if still needed.
 * As the leader's housekeeping, it also drops the slots of followers that
 * no longer follow this node (slot_cleanup.c).
 * Only on a node of a cluster: a node of its own leads everything.  With
 * streamlog.replica_apply off it stops every worker and starts none.
 *
 * IDENTIFICATION
 *	  src/replication/launcher.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/replication/apply_worker.h"
#include "streamlog/replication/slot_cleanup.h"
#include "streamlog/storage/replica_followed.h"
#include "streamlog/worker.h"

#define SL_LAUNCHER_INTERVAL_MS 500

typedef struct ApplyWorker
{
	int32		leader;
	BackgroundWorkerHandle *handle;
} ApplyWorker;

static ApplyWorker workers[SL_MAX_NODES];
static int	nworkers = 0;

void
SlReplicationLauncherRegister(void)
{
	SlWorkerRegister("SlReplicationLauncherMain", "streamlog replication launcher");
}

/* The distinct leaders of the partitions this node follows */
static int
followed_leaders(int32 *leaders, int max)
{
	List	   *list;
	ListCell   *lc;
	int			n = 0;

	SlWorkerBeginTransaction();
	if (OidIsValid(get_extension_oid("streamlog", true)))
	{
		list = SlFollowedPartitions(sl_node_id, -1);
		foreach(lc, list)
		{
			SlFollowedPartition *p = lfirst(lc);
			bool		seen = false;

			for (int i = 0; i < n; i++)
				if (leaders[i] == p->leader)
					seen = true;
			if (!seen && n < max)
				leaders[n++] = p->leader;
		}
	}
	SlWorkerCommitTransaction();
	return n;
}

static bool
start_worker(int32 leader, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	SlWorkerDescribe(&worker, "SlApplyWorkerMain", "streamlog apply", BGW_NEVER_RESTART);
	snprintf(worker.bgw_name, BGW_MAXLEN, "streamlog apply from node %d", leader);
	worker.bgw_main_arg = Int32GetDatum(leader);
	worker.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

/* One round: start and stop workers to match the followed leaders */
static void
launch_round(void)
{
	int32		leaders[SL_MAX_NODES];
	int			nleaders = sl_replica_apply ? followed_leaders(leaders, SL_MAX_NODES) : 0;
	int			keep = 0;

	/* Forget stopped workers; stop those of leaders no longer followed */
	for (int i = 0; i < nworkers; i++)
	{
		pid_t		pid;
		bool		wanted = false;

		for (int j = 0; j < nleaders; j++)
			if (leaders[j] == workers[i].leader)
				wanted = true;
		if (GetBackgroundWorkerPid(workers[i].handle, &pid) == BGWH_STOPPED)
		{
			pfree(workers[i].handle);
			continue;
		}
		if (!wanted)
			TerminateBackgroundWorker(workers[i].handle);
		workers[keep++] = workers[i];
	}
	nworkers = keep;

	for (int j = 0; j < nleaders; j++)
	{
		bool		running = false;
		BackgroundWorkerHandle *handle;
		MemoryContext oldcxt;

		for (int i = 0; i < nworkers; i++)
			if (workers[i].leader == leaders[j])
				running = true;
		if (running || nworkers >= SL_MAX_NODES)
			continue;
		oldcxt = MemoryContextSwitchTo(TopMemoryContext);
		if (start_worker(leaders[j], &handle))
		{
			workers[nworkers].leader = leaders[j];
			workers[nworkers].handle = handle;
			nworkers++;
		}
		else
			ereport(WARNING,
					(errmsg("could not start the apply worker for leader %d", leaders[j]),
					 errhint("Raise max_worker_processes.")));
		MemoryContextSwitchTo(oldcxt);
	}
}

void
SlReplicationLauncherMain(Datum arg)
{
	SlWorkerStart(NULL);
	for (;;)
	{
		/* An error (the catalog not there yet) costs a round, never the workers' handles */
		PG_TRY();
		{
			launch_round();
			/* The leader's side of replication: slots nobody follows */
			SlDropUnfollowedSlots();
		}
		PG_CATCH();
		{
			SlWorkerRecover(NULL);
		}
		PG_END_TRY();
		SlWorkerWait(SL_LAUNCHER_INTERVAL_MS);
	}
}
