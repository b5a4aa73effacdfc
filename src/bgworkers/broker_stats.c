/*
 * Broker worker statistics, see broker_stats.h.
 *
 * These are what an operator asks of a broker that uses too much memory or
 * CPU (which worker, how many connections, how much buffered input, how
 * many parked requests and how often they are looked at again), and what
 * the tests read to prove that a parked request is looked at again only
 * when what it waits on changed: a counter, not a measured time.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/tuplestore.h"

#include "streamlog/bgworkers/broker_stats.h"
#include "streamlog/shmem.h"

typedef struct SlBrokerWorkerStats
{
	pg_atomic_uint32 pid;		/* 0 when the worker is not running */
	pg_atomic_uint32 connections;
	pg_atomic_uint32 parked_requests;
	pg_atomic_uint64 parked_request_bytes;
	pg_atomic_uint64 parked_attempts;
	pg_atomic_uint64 input_buffer_bytes;
	pg_atomic_uint64 unsent_bytes;
	pg_atomic_uint32 muted_connections;
} SlBrokerWorkerStats;

static SlBrokerWorkerStats *worker_stats = NULL;
static SlBrokerWorkerStats *my_stats = NULL;

Size
SlBrokerStatsShmemSize(void)
{
	return MAXALIGN(mul_size(SL_MAX_BROKERS, sizeof(SlBrokerWorkerStats)));
}

void
SlBrokerStatsShmemInit(void)
{
	bool		found;

	worker_stats = ShmemInitStruct("streamlog broker stats", SlBrokerStatsShmemSize(), &found);
	if (!found)
		for (int i = 0; i < SL_MAX_BROKERS; i++)
		{
			pg_atomic_init_u32(&worker_stats[i].pid, 0);
			pg_atomic_init_u32(&worker_stats[i].connections, 0);
			pg_atomic_init_u32(&worker_stats[i].parked_requests, 0);
			pg_atomic_init_u64(&worker_stats[i].parked_request_bytes, 0);
			pg_atomic_init_u64(&worker_stats[i].parked_attempts, 0);
			pg_atomic_init_u64(&worker_stats[i].input_buffer_bytes, 0);
			pg_atomic_init_u64(&worker_stats[i].unsent_bytes, 0);
			pg_atomic_init_u32(&worker_stats[i].muted_connections, 0);
		}
}

static void
stats_stop(int code, Datum arg)
{
	pg_atomic_write_u32(&my_stats->pid, 0);
}

void
SlBrokerStatsStart(int worker_index)
{
	Assert(worker_index >= 0 && worker_index < SL_MAX_BROKERS);
	my_stats = &worker_stats[worker_index];
	pg_atomic_write_u32(&my_stats->connections, 0);
	pg_atomic_write_u32(&my_stats->parked_requests, 0);
	pg_atomic_write_u64(&my_stats->parked_request_bytes, 0);
	pg_atomic_write_u64(&my_stats->parked_attempts, 0);
	pg_atomic_write_u64(&my_stats->input_buffer_bytes, 0);
	pg_atomic_write_u64(&my_stats->unsent_bytes, 0);
	pg_atomic_write_u32(&my_stats->muted_connections, 0);
	pg_atomic_write_u32(&my_stats->pid, MyProcPid);
	before_shmem_exit(stats_stop, (Datum) 0);
}

void
SlBrokerStatsCountParkedAttempt(void)
{
	/* Only this worker writes its slot: no atomic increment needed */
	pg_atomic_write_u64(&my_stats->parked_attempts,
						pg_atomic_read_u64(&my_stats->parked_attempts) + 1);
}

void
SlBrokerStatsReport(int connections, uint64 input_buffer_bytes, int parked_requests,
					uint64 parked_request_bytes, uint64 unsent_bytes, int muted_connections)
{
	pg_atomic_write_u64(&my_stats->unsent_bytes, unsent_bytes);
	pg_atomic_write_u32(&my_stats->muted_connections, muted_connections);
	pg_atomic_write_u32(&my_stats->connections, connections);
	pg_atomic_write_u64(&my_stats->input_buffer_bytes, input_buffer_bytes);
	pg_atomic_write_u32(&my_stats->parked_requests, parked_requests);
	pg_atomic_write_u64(&my_stats->parked_request_bytes, parked_request_bytes);
}

int
SlBrokerStatsFewestConnections(int me, uint32 *connections)
{
	int			best = -1;

	for (int i = 0; i < SL_MAX_BROKERS; i++)
	{
		uint32		n;

		if (i == me || pg_atomic_read_u32(&worker_stats[i].pid) == 0)
			continue;
		n = pg_atomic_read_u32(&worker_stats[i].connections);
		if (best < 0 || n < *connections)
		{
			best = i;
			*connections = n;
		}
	}
	return best;
}

void
SlBrokerStatsAddConnection(int worker, int n)
{
	pg_atomic_fetch_add_u32(&worker_stats[worker].connections, n);
}

PG_FUNCTION_INFO_V1(streamlog_broker_stats);

/* streamlog.broker_stats(): one row per running broker worker */
Datum
streamlog_broker_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < SL_MAX_BROKERS; i++)
	{
		SlBrokerWorkerStats *s = &worker_stats[i];
		Datum		values[9];
		bool		nulls[9] = {0};
		uint32		pid = pg_atomic_read_u32(&s->pid);

		if (pid == 0)
			continue;
		values[0] = Int32GetDatum(i);
		values[1] = Int32GetDatum((int32) pid);
		values[2] = Int32GetDatum((int32) pg_atomic_read_u32(&s->connections));
		values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&s->input_buffer_bytes));
		values[4] = Int32GetDatum((int32) pg_atomic_read_u32(&s->parked_requests));
		values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&s->parked_request_bytes));
		values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&s->parked_attempts));
		values[7] = Int64GetDatum((int64) pg_atomic_read_u64(&s->unsent_bytes));
		values[8] = Int32GetDatum((int32) pg_atomic_read_u32(&s->muted_connections));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
