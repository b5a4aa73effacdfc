/*
 * The cluster as this node sees it, in shared memory (see
 * metadata/cluster_state.h): the Raft worker (bgworkers/raft_worker.c)
 * publishes it after each round; backends and broker workers read it, and
 * hand requests to the Raft worker through the slots.
 *
 * Slots: a backend takes a free slot and fills it (QUEUED), sets the Raft
 * worker's latch and waits on the condition variable.  The worker takes it
 * (WORKING), carries it out and fills in the result (DONE); the backend
 * copies the result and frees the slot.  A backend that gives up (timeout,
 * cancel) frees a slot still QUEUED, and marks one WORKING abandoned, for
 * the worker to free when it is done with it: only the owner of a slot
 * frees it, so a slot is never reused under someone's feet.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"

/* Kafka error codes this file answers with */
#define KAFKA_REQUEST_TIMED_OUT 7
#define KAFKA_NOT_CONTROLLER 41

SlClusterShared *sl_cluster = NULL;

Size
SlClusterShmemSize(void)
{
	return MAXALIGN(sizeof(SlClusterShared));
}

void
SlClusterShmemInit(void)
{
	bool		found;
	static int	tranche_id = 0;

	sl_cluster = ShmemInitStruct("streamlog cluster", sizeof(SlClusterShared), &found);
	if (!found)
	{
		memset(sl_cluster, 0, sizeof(SlClusterShared));
		tranche_id = LWLockNewTrancheId();
		LWLockInitialize(&sl_cluster->lock, tranche_id);
		ConditionVariableInit(&sl_cluster->changed);
		sl_cluster->enabled = SlClusterEnabled();
		sl_cluster->raft_worker_procno = -1;
		sl_cluster->controller_id = SlClusterEnabled() ? -1 : sl_node_id;
		sl_cluster->raft.leader_id = -1;
	}
	else
		tranche_id = sl_cluster->lock.tranche;
	LWLockRegisterTranche(tranche_id, "streamlog cluster");
}

bool
SlClusterEnabled(void)
{
	return SlQuorumVotersGet()->n > 0;
}

const char *
SlClusterRaftAddress(void)
{
	const SlQuorumVoters *voters = SlQuorumVotersGet();

	if (sl_raft_listen_address && sl_raft_listen_address[0])
		return sl_raft_listen_address;
	for (int i = 0; i < voters->n; i++)
		if (voters->items[i].node_id == sl_node_id)
			return voters->items[i].address;
	return "";
}

void
SlClusterSqlConninfo(char *out, size_t size)
{
	const char *listen = GetConfigOption("listen_addresses", true, false);
	const char *port = GetConfigOption("port", true, false);
	char		host[256] = "127.0.0.1";

	if (sl_advertised_sql_conninfo && sl_advertised_sql_conninfo[0])
	{
		strlcpy(out, sl_advertised_sql_conninfo, size);
		return;
	}
	/* The first of listen_addresses, unless a wildcard */
	if (listen && listen[0])
	{
		size_t		n = strcspn(listen, ", ");

		if (n > 0 && n < sizeof(host) &&
			!(n == 1 && listen[0] == '*') &&
			strncmp(listen, "0.0.0.0", n) != 0 && strncmp(listen, "::", n) != 0)
		{
			memcpy(host, listen, n);
			host[n] = '\0';
		}
	}
	snprintf(out, size, "host=%s port=%s dbname=%s", host, port ? port : "5432",
			 sl_database ? sl_database : "postgres");
}

/*
 * This node as a standalone node shows itself: its own controller, with
 * the addresses its settings give
 */
static void
standalone_node(SlClusterNode *node)
{
	const char *host = "localhost";

	memset(node, 0, sizeof(*node));
	node->node_id = sl_node_id;
	if (sl_advertised_host && sl_advertised_host[0])
		host = sl_advertised_host;
	else if (sl_listen_addresses && sl_listen_addresses[0] &&
			 strcspn(sl_listen_addresses, ", ") < sizeof(node->kafka_host) &&
			 sl_listen_addresses[0] != '*')
		host = sl_listen_addresses;
	strlcpy(node->kafka_host, host, Min(sizeof(node->kafka_host),
										strcspn(host, ", ") + 1));
	node->kafka_port = sl_advertised_port > 0 ? sl_advertised_port : sl_port;
	SlClusterSqlConninfo(node->sql_conninfo, sizeof(node->sql_conninfo));
	strlcpy(node->rack, sl_broker_rack ? sl_broker_rack : "", sizeof(node->rack));
	node->voter = true;
	if (sl_cluster)
		node->incarnation = sl_cluster->incarnation;
}

int
SlClusterGetNodes(SlClusterNode *out, int max)
{
	int			n;

	if (max <= 0)
		return 0;
	if (!SlClusterEnabled() || sl_cluster == NULL)
	{
		standalone_node(&out[0]);
		return 1;
	}
	LWLockAcquire(&sl_cluster->lock, LW_SHARED);
	n = Min(sl_cluster->nnodes, max);
	memcpy(out, sl_cluster->nodes, sizeof(SlClusterNode) * n);
	LWLockRelease(&sl_cluster->lock);
	return n;
}

bool
SlClusterGetNode(int32 node_id, SlClusterNode *out)
{
	bool		found = false;

	if (!SlClusterEnabled() || sl_cluster == NULL)
	{
		if (node_id != sl_node_id)
			return false;
		standalone_node(out);
		return true;
	}
	LWLockAcquire(&sl_cluster->lock, LW_SHARED);
	for (int i = 0; i < sl_cluster->nnodes; i++)
		if (sl_cluster->nodes[i].node_id == node_id)
		{
			*out = sl_cluster->nodes[i];
			found = true;
			break;
		}
	LWLockRelease(&sl_cluster->lock);
	return found;
}

int32
SlClusterControllerId(void)
{
	int32		id;

	if (!SlClusterEnabled() || sl_cluster == NULL)
		return sl_node_id;
	LWLockAcquire(&sl_cluster->lock, LW_SHARED);
	id = sl_cluster->controller_id;
	LWLockRelease(&sl_cluster->lock);
	return id;
}

char *
SlClusterRefusal(void)
{
	char	   *refused = NULL;

	if (sl_cluster == NULL)
		return NULL;
	LWLockAcquire(&sl_cluster->lock, LW_SHARED);
	if (sl_cluster->refused[0])
		refused = pstrdup(sl_cluster->refused);
	LWLockRelease(&sl_cluster->lock);
	return refused;
}

static int
my_procno(void)
{
#if PG_VERSION_NUM >= 170000
	return MyProcNumber;
#else
	return MyProc->pgprocno;
#endif
}

/* ms left until deadline (a GetCurrentTimestamp value), at least 0 */
static long
ms_left(TimestampTz deadline)
{
	long		ms = (long) ((deadline - GetCurrentTimestamp()) / 1000);

	return ms > 0 ? ms : 0;
}

/* Give up a slot of ours: free it if not taken, else leave it to the worker */
static void
abandon_slot(int i)
{
	SlClusterSlot *slot = &sl_cluster->slots[i];

	LWLockAcquire(&sl_cluster->lock, LW_EXCLUSIVE);
	if (slot->state == SL_SLOT_QUEUED || slot->state == SL_SLOT_DONE)
		slot->state = SL_SLOT_FREE;
	else if (slot->state == SL_SLOT_WORKING)
		slot->abandoned = true;
	LWLockRelease(&sl_cluster->lock);
}

int16
SlClusterSubmitLocal(SlClusterSlotKind kind, int32 node_id,
					 const void *request, int32 request_len,
					 int timeout_ms, char **message, uint64 *index)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	volatile int slot_index = -1;
	int16		result = KAFKA_REQUEST_TIMED_OUT;

	if (message)
		*message = NULL;
	if (index)
		*index = 0;
	if (!SlClusterEnabled() || sl_cluster == NULL)
	{
		if (message)
			*message = pstrdup("this node is not part of a cluster");
		return KAFKA_NOT_CONTROLLER;
	}
	if (sl_cluster->refused[0])
	{
		if (message)
			*message = psprintf("this node's Raft worker refused to start: %s", sl_cluster->refused);
		return KAFKA_NOT_CONTROLLER;
	}
	if (request_len < 0 || request_len > SL_CLUSTER_REQUEST_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cluster request of %d bytes is larger than the %d bytes a request may have",
						request_len, SL_CLUSTER_REQUEST_MAX)));

	PG_TRY();
	{
		int			worker_procno = -1;

		/* A free slot, waiting for one if all are taken */
		ConditionVariablePrepareToSleep(&sl_cluster->changed);
		for (;;)
		{
			LWLockAcquire(&sl_cluster->lock, LW_EXCLUSIVE);
			for (int i = 0; i < SL_CLUSTER_QUEUE_SLOTS; i++)
				if (sl_cluster->slots[i].state == SL_SLOT_FREE)
				{
					SlClusterSlot *slot = &sl_cluster->slots[i];

					slot->state = SL_SLOT_QUEUED;
					slot->kind = kind;
					slot->abandoned = false;
					slot->requester_procno = my_procno();
					slot->node_id = node_id;
					slot->request_len = request_len;
					if (request_len > 0)
						memcpy(slot->request, request, request_len);
					slot->error_code = 0;
					slot->message[0] = '\0';
					slot->index = 0;
					slot_index = i;
					break;
				}
			worker_procno = sl_cluster->raft_worker_procno;
			LWLockRelease(&sl_cluster->lock);
			if (slot_index >= 0 || ms_left(deadline) == 0)
				break;
			(void) ConditionVariableTimedSleep(&sl_cluster->changed, ms_left(deadline),
											   PG_WAIT_EXTENSION);
		}
		if (slot_index >= 0 && worker_procno >= 0)
			SetLatch(&GetPGProcByNumber(worker_procno)->procLatch);

		/* Its result */
		while (slot_index >= 0)
		{
			SlClusterSlot *slot = &sl_cluster->slots[slot_index];
			bool		done = false;

			LWLockAcquire(&sl_cluster->lock, LW_EXCLUSIVE);
			if (slot->state == SL_SLOT_DONE)
			{
				result = slot->error_code;
				if (message && slot->message[0])
					*message = pstrdup(slot->message);
				if (index)
					*index = slot->index;
				slot->state = SL_SLOT_FREE;
				done = true;
			}
			LWLockRelease(&sl_cluster->lock);
			if (done)
			{
				slot_index = -1;
				ConditionVariableBroadcast(&sl_cluster->changed);
				break;
			}
			if (ms_left(deadline) == 0)
			{
				abandon_slot(slot_index);
				slot_index = -1;
				if (message)
					*message = psprintf("the controller did not answer within %d ms", timeout_ms);
				result = KAFKA_REQUEST_TIMED_OUT;
				break;
			}
			(void) ConditionVariableTimedSleep(&sl_cluster->changed, Min(ms_left(deadline), 1000),
											   PG_WAIT_EXTENSION);
		}
		ConditionVariableCancelSleep();
		if (result == KAFKA_REQUEST_TIMED_OUT && message && *message == NULL)
			*message = psprintf("no free slot for the Raft worker within %d ms", timeout_ms);
	}
	PG_CATCH();
	{
		ConditionVariableCancelSleep();
		if (slot_index >= 0)
			abandon_slot(slot_index);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return result;
}

bool
SlClusterWaitSynced(uint64 index, int timeout_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	bool		synced = false;

	if (!SlClusterEnabled() || sl_cluster == NULL)
		return true;
	ConditionVariablePrepareToSleep(&sl_cluster->changed);
	for (;;)
	{
		LWLockAcquire(&sl_cluster->lock, LW_SHARED);
		synced = sl_cluster->catalog_synced_index >= index;
		LWLockRelease(&sl_cluster->lock);
		if (synced || ms_left(deadline) == 0)
			break;
		(void) ConditionVariableTimedSleep(&sl_cluster->changed, Min(ms_left(deadline), 1000),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return synced;
}

#if PG_VERSION_NUM >= 170000
#define SL_MY_PROCNO MyProcNumber
#else
#define SL_MY_PROCNO (MyProc->pgprocno)
#endif

static void
unwatch_catalog(int code, Datum arg)
{
	int			slot = DatumGetInt32(arg);

	LWLockAcquire(&sl_cluster->lock, LW_EXCLUSIVE);
	if (sl_cluster->catalog_watchers[slot] == SL_MY_PROCNO + 1)
		sl_cluster->catalog_watchers[slot] = 0;
	LWLockRelease(&sl_cluster->lock);
}

bool
SlClusterWatchCatalog(void)
{
	int			slot = -1;

	if (sl_cluster == NULL)
		return false;
	LWLockAcquire(&sl_cluster->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SL_CLUSTER_CATALOG_WATCHERS; i++)
		if (sl_cluster->catalog_watchers[i] == 0)
		{
			sl_cluster->catalog_watchers[i] = SL_MY_PROCNO + 1;
			slot = i;
			break;
		}
	LWLockRelease(&sl_cluster->lock);
	if (slot < 0)
		return false;
	before_shmem_exit(unwatch_catalog, Int32GetDatum(slot));
	return true;
}

void
SlClusterWakeCatalogWatchers(void)
{
	int			procnos[SL_CLUSTER_CATALOG_WATCHERS];
	int			n = 0;

	LWLockAcquire(&sl_cluster->lock, LW_SHARED);
	for (int i = 0; i < SL_CLUSTER_CATALOG_WATCHERS; i++)
		if (sl_cluster->catalog_watchers[i] > 0)
			procnos[n++] = sl_cluster->catalog_watchers[i] - 1;
	LWLockRelease(&sl_cluster->lock);
	/* a watcher gone since only costs its successor a spurious wakeup */
	for (int i = 0; i < n; i++)
		SetLatch(&GetPGProcByNumber(procnos[i])->procLatch);
}

uint64
SlClusterCatalogIndex(void)
{
	uint64		index;

	if (sl_cluster == NULL)
		return 0;
	LWLockAcquire(&sl_cluster->lock, LW_SHARED);
	index = sl_cluster->catalog_synced_index;
	LWLockRelease(&sl_cluster->lock);
	return index;
}
