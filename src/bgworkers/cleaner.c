/*
 * The cleaner: every streamlog.retention_check_interval, roll and trim the
 * segments of every partition in streamlog.database (see
 * src/storage/retention.c).  An error on one partition is logged and the
 * pass goes on with the next; the worker itself only exits on SIGTERM or
 * postmaster death.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/bgworkers/cleaner.h"
#include "streamlog/bgworkers/offsets_expiry.h"
#include "streamlog/guc.h"
#include "streamlog/storage/storage.h"

void
SlCleanerRegister(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "streamlog");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "SlCleanerMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "streamlog cleaner");
	snprintf(worker.bgw_type, BGW_MAXLEN, "streamlog cleaner");
	RegisterBackgroundWorker(&worker);
}

/* Is the extension installed in this database? */
static bool
extension_installed(void)
{
	bool		installed;

	SPI_connect();
	SPI_execute("SELECT 1 FROM pg_extension WHERE extname = 'streamlog'", true, 1);
	installed = SPI_processed > 0;
	SPI_finish();
	return installed;
}

static void
begin_step(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
end_step(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* Roll and trim one partition, in two transactions */
static void
clean_partition(int32 topic_id, int32 partition, int64 now_ms)
{
	const SlTopic *topic;
	int32		roll_seq = 0;
	Oid			roll_relid = InvalidOid;

	begin_step();
	topic = SlTopicLookupById(topic_id);
	if (topic == NULL || partition >= topic->partition_count)
	{
		end_step();
		return;
	}
	topic = SlTopicLookupAndLock(topic->name, AccessShareLock);
	if (!SlRetentionPrepareRoll(topic, partition, now_ms, &roll_seq, &roll_relid))
		roll_relid = InvalidOid;
	end_step();

	begin_step();
	topic = SlTopicLookupById(topic_id);
	if (topic != NULL)
	{
		int			dropped;

		topic = SlTopicLookupAndLock(topic->name, AccessShareLock);
		dropped = SlRetentionApply(topic, partition, now_ms, roll_seq, roll_relid);
		if (dropped > 0)
			elog(DEBUG1, "streamlog cleaner dropped %d segments of partition %d of topic \"%s\"",
				 dropped, partition, topic->name);
	}
	end_step();
}

/* One pass over every partition */
static void
clean_all(MemoryContext pass_context)
{
	List	   *topics;
	ListCell   *lc;
	int64		now_ms = SlTimestampToKafka(GetCurrentTimestamp());
	MemoryContext oldcxt;

	/* The transaction's memory is gone at commit: keep the list in ours */
	begin_step();
	oldcxt = MemoryContextSwitchTo(pass_context);
	topics = extension_installed() ? SlTopicListIds() : NIL;
	MemoryContextSwitchTo(oldcxt);
	end_step();

	foreach(lc, topics)
	{
		int32		topic_id = lfirst_int(lc);
		int32		npartitions = 0;

		begin_step();
		{
			const SlTopic *topic = SlTopicLookupById(topic_id);

			npartitions = topic ? topic->partition_count : 0;
		}
		end_step();

		for (int32 p = 0; p < npartitions; p++)
		{
			CHECK_FOR_INTERRUPTS();
			PG_TRY();
			{
				clean_partition(topic_id, p, now_ms);
			}
			PG_CATCH();
			{
				/* Log it, and go on with the next partition */
				MemoryContextSwitchTo(pass_context);
				EmitErrorReport();
				FlushErrorState();
				AbortCurrentTransaction();
			}
			PG_END_TRY();
		}
	}
	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextReset(pass_context);
}

void
SlCleanerMain(Datum arg)
{
	MemoryContext pass_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(sl_database, NULL, 0);
	pgstat_report_appname("streamlog cleaner");

	pass_context = AllocSetContextCreate(TopMemoryContext, "streamlog cleaner pass",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sl_retention_check_interval, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		pgstat_report_activity(STATE_RUNNING, "enforcing retention");
		clean_all(pass_context);
		SlOffsetsExpire();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
}
