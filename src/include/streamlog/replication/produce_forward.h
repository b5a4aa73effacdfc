/*
 * Forwarding SQL produce to partition leaders (P1 on a cluster): the
 * forwarder's work, which bgworkers/forwarder.c runs in a loop.  See
 * storage/forward_queue.h for the queue and src/sqlapi/forward_sql.c for
 * the leader's side.
 */
#ifndef SL_REPLICATION_PRODUCE_FORWARD_H
#define SL_REPLICATION_PRODUCE_FORWARD_H

#include "postgres.h"

/*
 * One pass over the queue: the final batches at the head of each
 * partition's queue are stamped, sent to the partition's leader and, once
 * it stored them, removed.  Starts and commits its own transactions (none
 * may be open); allocates in pass_context, which the caller resets.
 * Returns true if it delivered anything (more may be waiting).  Errors
 * with one partition are logged and leave its batches for the next pass.
 */
extern bool SlForwardPass(MemoryContext pass_context);

/* Close the connections to the leaders (after an error, at exit) */
extern void SlForwardDisconnect(void);

#endif							/* SL_REPLICATION_PRODUCE_FORWARD_H */
