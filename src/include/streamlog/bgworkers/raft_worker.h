/*
 * The Raft worker: one per node in cluster mode (streamlog.
 * controller_quorum_voters set).  It runs the metadata quorum, acts as the
 * controller when a committed entry names it, heartbeats, and writes the
 * applied metadata into shared memory and the local catalog.
 */
#ifndef SL_RAFT_WORKER_H
#define SL_RAFT_WORKER_H

#include "postgres.h"

/* Register the worker (in _PG_init, cluster mode only) */
extern void SlRaftWorkerRegister(void);
extern PGDLLEXPORT void SlRaftWorkerMain(Datum arg);

#endif							/* SL_RAFT_WORKER_H */
