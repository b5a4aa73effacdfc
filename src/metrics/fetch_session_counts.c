/*
 * The broker workers' fetch sessions, counted, see fetch_session_counts.h.
 */
#include "postgres.h"

#include "port/atomics.h"
#include "storage/shmem.h"

#include "streamlog/guc.h"
#include "streamlog/metrics/fetch_session_counts.h"
#include "streamlog/shmem.h"

typedef struct WorkerSessions
{
	pg_atomic_uint64 sessions;
	pg_atomic_uint64 partitions;
} WorkerSessions;

typedef struct FetchSessionCounts
{
	pg_atomic_uint64 evictions;
	WorkerSessions worker[SL_MAX_BROKERS];
} FetchSessionCounts;

static FetchSessionCounts *counts = NULL;

Size
SlFetchSessionCountsShmemSize(void)
{
	return MAXALIGN(sizeof(FetchSessionCounts));
}

void
SlFetchSessionCountsShmemInit(void)
{
	bool		found;

	counts = ShmemInitStruct("streamlog fetch session counts", SlFetchSessionCountsShmemSize(),
							 &found);
	if (found)
		return;
	pg_atomic_init_u64(&counts->evictions, 0);
	for (int i = 0; i < SL_MAX_BROKERS; i++)
	{
		pg_atomic_init_u64(&counts->worker[i].sessions, 0);
		pg_atomic_init_u64(&counts->worker[i].partitions, 0);
	}
}

void
SlFetchSessionCountsSet(int worker, int64 sessions, int64 partitions)
{
	if (counts == NULL || worker < 0 || worker >= SL_MAX_BROKERS)
		return;
	pg_atomic_write_u64(&counts->worker[worker].sessions, (uint64) Max(sessions, 0));
	pg_atomic_write_u64(&counts->worker[worker].partitions, (uint64) Max(partitions, 0));
}

void
SlFetchSessionCountsEvicted(void)
{
	if (counts == NULL || !sl_track_metrics)
		return;
	pg_atomic_fetch_add_u64(&counts->evictions, 1);
}

void
SlFetchSessionCountsSnapshot(uint64 *sessions, uint64 *partitions, uint64 *evictions)
{
	*sessions = 0;
	*partitions = 0;
	*evictions = 0;
	if (counts == NULL)
		return;
	for (int i = 0; i < SL_MAX_BROKERS; i++)
	{
		*sessions += pg_atomic_read_u64(&counts->worker[i].sessions);
		*partitions += pg_atomic_read_u64(&counts->worker[i].partitions);
	}
	*evictions = pg_atomic_read_u64(&counts->evictions);
}

void
SlFetchSessionCountsReset(void)
{
	if (counts != NULL)
		pg_atomic_write_u64(&counts->evictions, 0);
}
