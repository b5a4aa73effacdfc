/*
 * What every streamlog background worker does alike (worker.c): how it is
 * described to the postmaster, how its main starts, how its loop waits and
 * serves signals, and how it survives an error.  In the common layer, so
 * that the workers of every layer (bgworkers, replication) share it.
 *
 * A worker's loop must never let an ERROR reach the top: that restarts the
 * whole server.  Each round runs in PG_TRY, and its PG_CATCH calls
 * SlWorkerRecover.
 */
#ifndef SL_WORKER_H
#define SL_WORKER_H

#include "postmaster/bgworker.h"

/* How long the postmaster waits before it starts a stopped worker again */
#define SL_WORKER_RESTART_S 5

/*
 * Fill worker in for function_name of streamlog.so, connected to a
 * database and started once recovery finished, named type (bgw_name and
 * bgw_type: the caller may set a longer bgw_name), restarted restart_time
 * seconds after it stopped (BGW_NEVER_RESTART: never).  The caller sets
 * what else it needs (bgw_main_arg, bgw_notify_pid, bgw_extra).
 */
extern void SlWorkerDescribe(BackgroundWorker *worker, const char *function_name,
							 const char *type, int restart_time);

/*
 * Register, from _PG_init, one worker described so, restarted
 * SL_WORKER_RESTART_S after it stopped
 */
extern void SlWorkerRegister(const char *function_name, const char *type);

/*
 * The start of a worker's main: SIGHUP reloads the configuration (in
 * SlWorkerWait), SIGTERM ends the worker (at its next
 * CHECK_FOR_INTERRUPTS), then connect to streamlog.database and show
 * appname in pg_stat_activity (NULL: the worker's bgw_name).
 */
extern void SlWorkerStart(const char *appname);

/*
 * Wait until the latch is set or timeout_ms passes (0: no wait), then
 * serve what came meanwhile: interrupts (a SIGTERM ends the worker here)
 * and a reload of the configuration.  Exits if the postmaster died.
 * True if the configuration was reloaded.  The latch is also set by
 * signals meant for something else (a catch-up of invalidations, say): a
 * worker with a schedule checks the time, not only that it woke.
 */
extern bool SlWorkerWait(long timeout_ms);

/*
 * A transaction of the worker's own with a snapshot for its reads, begun
 * and committed.  As CommitTransactionCommand, the commit leaves
 * TopMemoryContext current: switch back to where the worker allocates.
 */
extern void SlWorkerBeginTransaction(void);
extern void SlWorkerCommitTransaction(void);

/*
 * In the PG_CATCH of a worker's round: log the error, forget it and abort
 * the transaction the round left, in context (NULL: the current one), so
 * that the worker goes on with its next round.
 */
extern void SlWorkerRecover(MemoryContext context);

#endif							/* SL_WORKER_H */
