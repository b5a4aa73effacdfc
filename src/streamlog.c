/*
 * streamlog: Kafka semantics inside PostgreSQL.  Library entry point.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "streamlog/guc.h"
#include "streamlog/shmem.h"
#include "streamlog/metadata/producer_id_blocks.h"
#include "streamlog/server/auth.h"
#include "streamlog/server/group_coordinator.h"
#include "streamlog/server/quotas.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/sqlapi/drop_extension.h"
#include "streamlog/sqlapi/role_commands.h"
#include "streamlog/storage/forward_queue.h"
#include "streamlog/storage/storage_init.h"
#include "streamlog/storage/wakeups.h"
#include "streamlog/storage/isr_changes.h"
#include "streamlog/bgworkers/broker.h"
#include "streamlog/bgworkers/broker_stats.h"
#include "streamlog/bgworkers/wal_prealloc.h"
#include "streamlog/bgworkers/conn_limits.h"
#include "streamlog/bgworkers/cleaner.h"
#include "streamlog/bgworkers/forwarder.h"
#include "streamlog/bgworkers/txn_coordinator_worker.h"
#include "streamlog/bgworkers/raft_worker.h"
#include "streamlog/bgworkers/isr_manager.h"
#include "streamlog/bgworkers/metrics_http.h"
#include "streamlog/storage/group_load.h"
#include "streamlog/storage/txn_cluster.h"
#include "streamlog/replication/apply_worker.h"
#include "streamlog/metrics/connections.h"
#include "streamlog/metrics/fetch_session_counts.h"
#include "streamlog/metrics/counters.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * Shared memory of every layer: sizes requested in shmem_request_hook
 * (PG15+), then initialized under AddinShmemInitLock in shmem_startup_hook.
 * Here rather than in shmem.c, which every layer uses and so may know none.
 */
static void
sl_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(SlSharedShmemSize());
	RequestAddinShmemSpace(SlPartitionStateShmemSize());
	RequestAddinShmemSpace(SlProducersShmemSize());
	RequestAddinShmemSpace(SlGroupWaitShmemSize());
	RequestAddinShmemSpace(SlGroupCoordinatorShmemSize());
	RequestAddinShmemSpace(SlWakeupsShmemSize());
	RequestAddinShmemSpace(SlBrokerStatsShmemSize());
	RequestAddinShmemSpace(SlWalPreallocShmemSize());
	RequestAddinShmemSpace(SlRoleSessionsShmemSize());
	RequestAddinShmemSpace(SlConnLimitsShmemSize());
	RequestNamedLWLockTranche("streamlog connections", 1);
	RequestAddinShmemSpace(SlQuotasShmemSize());
	RequestAddinShmemSpace(SlClusterShmemSize());
	RequestAddinShmemSpace(SlReplicaProgressShmemSize());
	RequestAddinShmemSpace(SlProducerIdBlocksShmemSize());
	RequestNamedLWLockTranche("streamlog quotas", 1);
	RequestAddinShmemSpace(SlForwardQueueShmemSize());
	RequestNamedLWLockTranche("streamlog forward", 1);
	RequestAddinShmemSpace(SlGroupLoadShmemSize());
	RequestAddinShmemSpace(SlTxnClusterShmemSize());
	RequestAddinShmemSpace(SlMetricsShmemSize());
	RequestAddinShmemSpace(SlConnActivityShmemSize());
	RequestAddinShmemSpace(SlFetchSessionCountsShmemSize());
	/* 0: the partition map, 1: the producer states, 2: the group coordinator */
	RequestNamedLWLockTranche("streamlog", 3);
}

static void
sl_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	SlSharedShmemInit();
	SlPartitionStateShmemInit();
	SlProducersShmemInit();
	SlGroupWaitShmemInit();
	SlGroupCoordinatorShmemInit();
	SlWakeupsShmemInit();
	SlBrokerStatsShmemInit();
	SlWalPreallocShmemInit();
	SlRoleSessionsShmemInit();
	SlConnLimitsShmemInit();
	SlProducerIdBlocksShmemInit();
	SlQuotasShmemInit();
	SlClusterShmemInit();
	SlForwardQueueShmemInit();
	SlReplicaProgressShmemInit();
	SlGroupLoadShmemInit();
	SlTxnClusterShmemInit();
	SlMetricsShmemInit();
	SlConnActivityShmemInit();
	SlFetchSessionCountsShmemInit();
	LWLockRelease(AddinShmemInitLock);
}

static void
sl_shmem_hooks_install(void)
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
_PG_init(void)
{
	/*
	 * Loaded by CREATE EXTENSION or a function call without preloading: stay
	 * inert, so that the install script can report what to set.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	SlDefineGucs();
	sl_shmem_hooks_install();
	SlTopicsInit();
	SlDropExtensionInit();
	SlRoleCommandsInit();
	SlXactInit();
	SlCleanerRegister();
	SlBrokerRegister();
	if (SlClusterEnabled())
	{
		SlRaftWorkerRegister();
		SlForwarderRegister();
		SlReplicationLauncherRegister();
	}
	/* the ISR of the partitions this node leads (issue 13) */
	if (SlClusterEnabled())
		SlIsrManagerRegister();
	/* the transaction coordinator's loads, markers and timeouts (issue 14) */
	if (SlClusterEnabled())
		SlTxnCoordinatorWorkerRegister();
	/* the Prometheus endpoint (issue 15), if streamlog.metrics_listen is set */
	SlMetricsHttpRegister();
	SlRoleSessionsInstallHook();
}
