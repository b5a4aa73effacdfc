/*
 * Shared memory of streamlog: requested at startup (the library must be in
 * shared_preload_libraries), holding the partitions' live state and the
 * catalog generation that backends check their topic caches against.
 */
#ifndef SL_SHMEM_H
#define SL_SHMEM_H

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/proc.h"

#define SL_MAX_BROKERS 32

/*
 * This process's index in ProcGlobal->allProcs, whose latch other processes
 * set to wake it: MyProc->pgprocno until PostgreSQL 16, MyProcNumber since
 * 17.
 */
#if PG_VERSION_NUM >= 170000
#define SL_MY_PROCNO ((int) MyProcNumber)
#else
#define SL_MY_PROCNO (MyProc->pgprocno)
#endif

typedef struct SlShared
{
	LWLock	   *partition_map_lock;	/* guards the partition hash's shape */
	pg_atomic_uint64 catalog_generation;	/* bumped by each committed topic DDL */
	int			broker_procno[SL_MAX_BROKERS];	/* -1 if not running */
} SlShared;

extern SlShared *sl_shared;

/* True once _PG_init ran from shared_preload_libraries */
extern bool sl_preloaded;

/*
 * Size of SlShared, and its initialization (from shmem_startup_hook, under
 * AddinShmemInitLock, after the "streamlog" LWLock tranche was requested)
 */
extern Size SlSharedShmemSize(void);
extern void SlSharedShmemInit(void);

/* Error out (in a SQL function) when shared memory is not there */
extern void SlCheckPreloaded(void);

#endif							/* SL_SHMEM_H */
