/*
 * The struct of shared memory that every layer reads (SlShared).  Each
 * layer sizes and initializes its own shared memory; the hooks that call
 * them all are the entry point's (streamlog.c), so that this module, below
 * every layer, knows none of them.
 */
#include "postgres.h"

#include "storage/shmem.h"

#include "streamlog/shmem.h"

SlShared   *sl_shared = NULL;
bool		sl_preloaded = false;

Size
SlSharedShmemSize(void)
{
	return MAXALIGN(sizeof(SlShared));
}

void
SlSharedShmemInit(void)
{
	bool		found;

	sl_shared = ShmemInitStruct("streamlog", sizeof(SlShared), &found);
	if (!found)
	{
		sl_shared->partition_map_lock = &(GetNamedLWLockTranche("streamlog"))->lock;
		pg_atomic_init_u64(&sl_shared->catalog_generation, 1);
		for (int i = 0; i < SL_MAX_BROKERS; i++)
			sl_shared->broker_procno[i] = -1;
	}
}

void
SlCheckPreloaded(void)
{
	if (!sl_preloaded || sl_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("streamlog must be loaded via shared_preload_libraries"),
				 errhint("Add 'streamlog' to shared_preload_libraries in postgresql.conf and restart the server.")));
}
