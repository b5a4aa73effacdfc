/*
 * The ISR manager (see isr_manager.h).
 *
 * Every streamlog.replica_lag_time_max_ms / 2 (at most every second), and
 * whenever a follower outside the ISR reached the high watermark (a
 * report sets our latch, replica_progress.c), it asks the leader's view
 * of each partition this node leads what ISR it should have
 * (storage/isr_changes.h): a follower not caught up for the lag time
 * leaves, one at the high watermark in the current leader epoch joins.
 * Each change goes to the controller with the leader and partition epochs
 * it was computed in; the controller refuses it if either is stale
 * (another leader, another change committed first), and the next round
 * computes it again from what is then committed.  While an addition is
 * asked for, the follower counts in the high watermark (maximal ISR); a
 * removal counts only once committed, so acks=all never relies on a
 * follower the controller has not yet let go.
 *
 * A refused change is not asked again for the same partition epoch
 * before REFUSAL_BACKOFF_MS (the controller refuses a fenced or
 * shutting-down follower, INELIGIBLE_REPLICA, until that changes), so that
 * neither the controller nor the log is flooded.  A failed round is logged
 * and the next one starts afresh; the worker only exits on SIGTERM or
 * postmaster death.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/bgworkers/isr_manager.h"
#include "streamlog/guc.h"
#include "streamlog/metadata/partition_change.h"
#include "streamlog/metrics/counters.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/isr_changes.h"
#include "streamlog/worker.h"

/* Changes asked for in one round, at most */
#define MAX_CHANGES 64

/*
 * Answers that say nothing of whether the change was taken (Kafka's
 * REQUEST_TIMED_OUT, NOT_CONTROLLER): its additions keep counting
 */
#define SL_ALTER_NO_ANSWER_TIMED_OUT 7
#define SL_ALTER_NO_ANSWER_NOT_CONTROLLER 41

/* How long a refused change waits before it is asked again */
#define REFUSAL_BACKOFF_MS 5000

/* Changes the controller refused lately, by partition and partition epoch */
typedef struct Refusal
{
	int32		topic_id;
	int32		partition;
	int32		partition_epoch;
	TimestampTz until;
} Refusal;

static Refusal refusals[MAX_CHANGES];

static bool
refused_lately(const SlIsrChange *c, TimestampTz now)
{
	for (int i = 0; i < MAX_CHANGES; i++)
		if (refusals[i].until > now && refusals[i].topic_id == c->topic_id &&
			refusals[i].partition == c->partition &&
			refusals[i].partition_epoch == c->partition_epoch)
			return true;
	return false;
}

static void
note_refusal(const SlIsrChange *c)
{
	TimestampTz now = GetCurrentTimestamp();
	int			slot = 0;

	/* a free slot, else the one that expires first */
	for (int i = 0; i < MAX_CHANGES; i++)
		if (refusals[i].until < refusals[slot].until)
			slot = i;
	refusals[slot].topic_id = c->topic_id;
	refusals[slot].partition = c->partition;
	refusals[slot].partition_epoch = c->partition_epoch;
	refusals[slot].until = TimestampTzPlusMilliseconds(now, REFUSAL_BACKOFF_MS);
}

/* How long one AlterPartition may wait for the controller */
#define ALTER_TIMEOUT_MS 10000

void
SlIsrManagerRegister(void)
{
	SlWorkerRegister("SlIsrManagerMain", "streamlog ISR manager");
}

static void
unset_procno(int code, Datum arg)
{
	SlIsrManagerSetProcno(-1);
}

static char *
isr_text(const SlIsrChange *c)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < c->nisr; i++)
		appendStringInfo(&buf, "%s%d", i > 0 ? ", " : "", c->isr[i]);
	return buf.data;
}

/* Ask the controller for one change; clears its pending additions after */
static void
ask(const SlIsrChange *c)
{
	char	   *message = NULL;
	int16		error;
	/* the round's: a commit leaves TopMemoryContext current */
	MemoryContext round = CurrentMemoryContext;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SlIsrChangeAsking(c);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(round);

	PG_TRY();
	{
		StartTransactionCommand();
		MemoryContextSwitchTo(round);
		error = SlClusterAlterPartition(c->topic_id, c->partition, c->leader_epoch,
										c->partition_epoch, c->isr, c->nisr,
										ALTER_TIMEOUT_MS, &message);
		CommitTransactionCommand();
		MemoryContextSwitchTo(round);
	}
	PG_CATCH();
	{
		/* the pending additions must not outlive the question */
		AbortCurrentTransaction();
		PG_RE_THROW();
	}
	PG_END_TRY();

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SlIsrChangeAnswered(c, error != 0 && error != SL_ALTER_NO_ANSWER_TIMED_OUT &&
						error != SL_ALTER_NO_ANSWER_NOT_CONTROLLER);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(round);

	if (error != 0)
		note_refusal(c);
	/* Kafka's IsrShrinksPerSec and IsrExpandsPerSec */
	if (error == 0 && c->nisr < c->nisr_before)
		SlMetricsAdd(SL_METRIC_ISR_SHRINKS, 1);
	else if (error == 0 && c->nisr > c->nisr_before)
		SlMetricsAdd(SL_METRIC_ISR_EXPANDS, 1);
	if (error == 0)
		ereport(LOG,
				(errmsg("streamlog: the ISR of partition %d of topic id %d is now [%s] (leader epoch %d)",
						c->partition, c->topic_id, isr_text(c), c->leader_epoch)));
	else
		ereport(LOG,
				(errmsg("streamlog: the controller did not change the ISR of partition %d of topic id %d to [%s]: error %d%s%s",
						c->partition, c->topic_id, isr_text(c), error,
						message ? ": " : "", message ? message : "")));
}

/* One round: which changes are due, then ask for each */
static void
manage(bool *loaded, uint64 *generation)
{
	MemoryContext round = CurrentMemoryContext;
	SlIsrChange *changes = palloc(sizeof(SlIsrChange) * MAX_CHANGES);
	int			n = 0;
	uint64		now_generation = pg_atomic_read_u64(&sl_shared->catalog_generation);

	SlWorkerBeginTransaction();
	if (OidIsValid(get_extension_oid("streamlog", true)))
	{
		/* partitions this node came to lead are watched from the start */
		if (!*loaded || now_generation != *generation)
			SlIsrLoadLeaderships();
		*loaded = true;
		*generation = now_generation;
		n = SlIsrChangesNeeded(sl_replica_lag_time_max_ms, changes, MAX_CHANGES);
	}
	SlWorkerCommitTransaction();
	MemoryContextSwitchTo(round);

	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (!refused_lately(&changes[i], GetCurrentTimestamp()))
			ask(&changes[i]);
	}
}

void
SlIsrManagerMain(Datum arg)
{
	MemoryContext round_context;
	bool		loaded = false;
	uint64		generation = 0;

	SlWorkerStart(NULL);
	SlIsrManagerSetProcno(SL_MY_PROCNO);
	before_shmem_exit(unset_procno, (Datum) 0);

	round_context = AllocSetContextCreate(TopMemoryContext, "streamlog ISR manager round",
										  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		SlWorkerWait(Min(Max(sl_replica_lag_time_max_ms / 2, 10), 1000));
		MemoryContextSwitchTo(round_context);
		PG_TRY();
		{
			manage(&loaded, &generation);
		}
		PG_CATCH();
		{
			SlWorkerRecover(round_context);
			/* whatever came to lead meanwhile is looked at again */
			loaded = false;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(round_context);
	}
}
