/*
 * Shared memory set-up: sizes requested in shmem_request_hook (PG15+), then
 * initialized under AddinShmemInitLock in shmem_startup_hook.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "streamlog/bgworkers/broker_stats.h"
#include "streamlog/server/group_coordinator.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/wakeups.h"

SlShared   *sl_shared = NULL;
bool		sl_preloaded = false;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
sl_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(sizeof(SlShared)));
	RequestAddinShmemSpace(SlPartitionStateShmemSize());
	RequestAddinShmemSpace(SlProducersShmemSize());
	RequestAddinShmemSpace(SlGroupWaitShmemSize());
	RequestAddinShmemSpace(SlGroupCoordinatorShmemSize());
	RequestAddinShmemSpace(SlBrokerStatsShmemSize());
	RequestAddinShmemSpace(SlWakeupsShmemSize());
	/* 0: the partition map, 1: the producer states, 2: the group coordinator */
	RequestNamedLWLockTranche("streamlog", 3);
}

static void
sl_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sl_shared = ShmemInitStruct("streamlog", sizeof(SlShared), &found);
	if (!found)
	{
		sl_shared->partition_map_lock = &(GetNamedLWLockTranche("streamlog"))->lock;
		pg_atomic_init_u64(&sl_shared->catalog_generation, 1);
		for (int i = 0; i < SL_MAX_BROKERS; i++)
			sl_shared->broker_procno[i] = -1;
		pg_atomic_init_u64(&sl_shared->next_producer_id, 0);
	}
	SlPartitionStateShmemInit();
	SlProducersShmemInit();
	SlGroupWaitShmemInit();
	SlGroupCoordinatorShmemInit();
	SlBrokerStatsShmemInit();
	SlWakeupsShmemInit();
	LWLockRelease(AddinShmemInitLock);
}

void
SlShmemRequest(void)
{
	sl_preloaded = true;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sl_shmem_request;
#else
	sl_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sl_shmem_startup;
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
