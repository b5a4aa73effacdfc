/*
 * The transaction coordinator's worker on a cluster
 * (bgworkers/txn_coordinator_worker.c): loads and unloads the partitions of
 * __transaction_state as this node's leaderships change, completes the
 * transactions this node coordinates that are in a Prepare state (their
 * markers, then Complete), and aborts those past their timeout.  Also the
 * short-lived worker that has the controller create __transaction_state.
 */
#ifndef SL_BGWORKERS_TXN_COORDINATOR_WORKER_H
#define SL_BGWORKERS_TXN_COORDINATOR_WORKER_H

#include "postgres.h"

extern void SlTxnCoordinatorWorkerRegister(void);
extern PGDLLEXPORT void SlTxnCoordinatorWorkerMain(Datum arg);
extern PGDLLEXPORT void SlTxnStateTopicCreatorMain(Datum arg);

#endif							/* SL_BGWORKERS_TXN_COORDINATOR_WORKER_H */
