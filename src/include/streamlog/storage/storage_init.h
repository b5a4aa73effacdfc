/*
 * What the entry point (_PG_init and its shared-memory hooks) sets up for
 * storage: the transaction callbacks and the shared memory of each of its
 * modules.  No other layer has a use for it.
 */
#ifndef SL_STORAGE_INIT_H
#define SL_STORAGE_INIT_H

#include "postgres.h"

/* Register the transaction callbacks, one pair for all of storage (xact.c) */
extern void SlXactInit(void);

/* Register the topic cache's invalidation callback */
extern void SlTopicsInit(void);

/*
 * Shared memory: the partitions' state, the idempotent producers' state,
 * and the waiters for records.  Without the last, waiters re-read the high
 * watermarks at short intervals.
 */
extern Size SlPartitionStateShmemSize(void);
extern void SlPartitionStateShmemInit(void);
extern Size SlProducersShmemSize(void);
extern void SlProducersShmemInit(void);
extern Size SlGroupWaitShmemSize(void);
extern void SlGroupWaitShmemInit(void);

#endif							/* SL_STORAGE_INIT_H */
