/*
 * Inside the metrics layer: the partitions' counters (partition_counters.c)
 * have shared memory of their own, sized, set up and reset with the rest
 * by counters.c; and the counters of every family are flat arrays of
 * pg_atomic_uint64, set up and zeroed alike.
 */
#ifndef SL_METRICS_PARTITION_COUNTERS_H
#define SL_METRICS_PARTITION_COUNTERS_H

#include "port/atomics.h"

extern Size SlPartitionCountersShmemSize(void);
extern void SlPartitionCountersShmemInit(void);
extern void SlPartitionCountersReset(void);

static inline void
SlAtomicsInit(pg_atomic_uint64 *a, Size n)
{
	for (Size i = 0; i < n; i++)
		pg_atomic_init_u64(&a[i], 0);
}

/* Counter by counter: an increment racing with it is kept or lost */
static inline void
SlAtomicsZero(pg_atomic_uint64 *a, Size n)
{
	for (Size i = 0; i < n; i++)
		pg_atomic_write_u64(&a[i], 0);
}

#endif							/* SL_METRICS_PARTITION_COUNTERS_H */
