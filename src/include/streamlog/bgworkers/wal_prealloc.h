/*
 * WAL segments made ready ahead of the broker that writes into them.
 *
 * PostgreSQL makes a new WAL segment (a 16 MB file written full of zeros
 * and fsynced, unless wal_init_zero is off) in the process whose insert or
 * flush first needs it, and ahead of time only at a checkpoint, one
 * segment.  A broker appending a producer's batches at hundreds of MB/s
 * spent up to a third of its time doing that, on the core that serves the
 * producer.  So a broker, after a commit that entered a new segment, asks
 * the least busy other broker worker to make the next four; the WAL
 * written is the same, and the making is done beside the producer's work
 * rather than inside it.
 */
#ifndef SL_WAL_PREALLOC_H
#define SL_WAL_PREALLOC_H

#include "postgres.h"

extern Size SlWalPreallocShmemSize(void);
extern void SlWalPreallocShmemInit(void);

/* After a commit of broker worker_index: ask for the next segments if due */
extern void SlWalPreallocAsk(int worker_index);

/* In broker worker_index's loop: make the segments asked of it, if any */
extern void SlWalPreallocWork(int worker_index);

#endif							/* SL_WAL_PREALLOC_H */
