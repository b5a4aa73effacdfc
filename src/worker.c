/*-------------------------------------------------------------------------
 * worker.c
 *	  What every streamlog background worker does alike: its description to
 *	  the postmaster, the start of its main, its loop's wait and its
 *	  recovery from an error (worker.h).
 *
 * IDENTIFICATION
 *	  src/worker.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

#include "streamlog/guc.h"
#include "streamlog/worker.h"

void
SlWorkerDescribe(BackgroundWorker *worker, const char *function_name,
				 const char *type, int restart_time)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = restart_time;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "streamlog");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function_name);
	snprintf(worker->bgw_name, BGW_MAXLEN, "%s", type);
	snprintf(worker->bgw_type, BGW_MAXLEN, "%s", type);
}

void
SlWorkerRegister(const char *function_name, const char *type)
{
	BackgroundWorker worker;

	SlWorkerDescribe(&worker, function_name, type, SL_WORKER_RESTART_S);
	RegisterBackgroundWorker(&worker);
}

void
SlWorkerStart(const char *appname)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(sl_database, NULL, 0);
	pgstat_report_appname(appname != NULL ? appname : MyBgworkerEntry->bgw_name);
}

bool
SlWorkerWait(long timeout_ms)
{
	if (timeout_ms > 0)
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout_ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (!ConfigReloadPending)
		return false;
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	return true;
}

void
SlWorkerBeginTransaction(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
}

void
SlWorkerCommitTransaction(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
}

void
SlWorkerRecover(MemoryContext context)
{
	if (context != NULL)
		MemoryContextSwitchTo(context);
	EmitErrorReport();
	FlushErrorState();
	AbortCurrentTransaction();
}
