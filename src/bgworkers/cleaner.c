/*
 * The cleaner: every streamlog.retention_check_interval, roll and trim the
 * segments of every partition in streamlog.database (see
 * src/storage/retention.c), then compact the partitions of compacted topics
 * that are due (src/storage/compaction.c), one partition at a time, and
 * drop the segment tables compaction replaced that no one reads any more.
 * With streamlog.log_cleaner_threads above 1, the first cleaner does the
 * retention and the dropping, and the partitions to compact are shared
 * among all by a hash of their topic and number.
 * An error on one partition is logged (and, for compaction, noted in
 * streamlog.compaction's last_error) and the pass goes on with the next;
 * the worker itself only exits on SIGTERM or postmaster death.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "common/hashfn.h"
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
#include "streamlog/bgworkers/txn_expiry.h"
#include "streamlog/guc.h"
#include "streamlog/storage/storage.h"

void
SlCleanerRegister(void)
{
	for (int i = 0; i < sl_log_cleaner_threads; i++)
	{
		BackgroundWorker worker;

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = 5;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "streamlog");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "SlCleanerMain");
		if (i == 0)
			snprintf(worker.bgw_name, BGW_MAXLEN, "streamlog cleaner");
		else
			snprintf(worker.bgw_name, BGW_MAXLEN, "streamlog cleaner %d", i);
		snprintf(worker.bgw_type, BGW_MAXLEN, "streamlog cleaner");
		worker.bgw_main_arg = Int32GetDatum(i);
		RegisterBackgroundWorker(&worker);
	}
}

/*
 * Which cleaner compacts a partition: partitions are shared among the
 * streamlog.log_cleaner_threads cleaners by a hash, so that each is
 * compacted by one of them, one partition at a time per cleaner.
 */
static int	cleaner_index = 0;

static bool
compacts_partition(int32 topic_id, int32 partition)
{
	uint32		h = hash_combine(hash_uint32((uint32) topic_id), hash_uint32((uint32) partition));

	return (int) (h % (uint32) sl_log_cleaner_threads) == cleaner_index;
}

/* Is the extension installed in this database?  (a syscache lookup) */
static bool
extension_installed(void)
{
	return OidIsValid(get_extension_oid("streamlog", true));
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

/* Set while a compaction pass runs, so that its error is noted */
static bool compacting = false;

/* Compact one partition if it is due, in a transaction of its own */
static void
compact_partition(int32 topic_id, int32 partition, int64 now_ms)
{
	const SlTopic *topic;

	begin_step();
	topic = SlTopicLookupById(topic_id);
	if (topic != NULL && topic->config.compact && partition < topic->partition_count)
	{
		SlCompactionResult result;

		topic = SlTopicLookupAndLock(topic->name, AccessShareLock);
		compacting = true;
		pgstat_report_activity(STATE_RUNNING, "compacting");
		SlCompactPartition(topic, partition, now_ms, false, true, &result);
		compacting = false;
		pgstat_report_activity(STATE_RUNNING, "enforcing retention");
		if (result.cleaned)
			elog(DEBUG1, "streamlog cleaner compacted partition %d of topic \"%s\" up to offset %lld: %lld records removed",
				 partition, topic->name, (long long) result.cleaned_offset,
				 (long long) result.records_removed);
	}
	end_step();
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
		SlKeyIndexPrune(topic, partition);
		if (dropped > 0)
			elog(DEBUG1, "streamlog cleaner dropped %d segments of partition %d of topic \"%s\"",
				 dropped, partition, topic->name);
	}
	end_step();
}

/* Note a compaction error in streamlog.compaction; never throws */
static void
note_error(int32 topic_id, int32 partition, const char *message)
{
	PG_TRY();
	{
		begin_step();
		SlCompactionNoteError(topic_id, partition, message);
		end_step();
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
}

/* Drop the segment tables compaction replaced, if no one reads them */
static void
drop_retired(MemoryContext pass_context)
{
	PG_TRY();
	{
		begin_step();
		if (extension_installed())
			(void) SlCompactionDropRetired();
		end_step();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(pass_context);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
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
				/* Retention is the first cleaner's, compaction each one's share */
				if (cleaner_index == 0)
					clean_partition(topic_id, p, now_ms);
				if (sl_log_cleaner_enable && compacts_partition(topic_id, p))
					compact_partition(topic_id, p, now_ms);
			}
			PG_CATCH();
			{
				/* Log it, and go on with the next partition */
				ErrorData  *edata;
				bool		gave_way;

				MemoryContextSwitchTo(pass_context);
				edata = CopyErrorData();
				/* A pass that gave way to a change of its topic did not fail */
				gave_way = compacting && edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
				if (!gave_way)
					EmitErrorReport();
				FlushErrorState();
				AbortCurrentTransaction();
				if (gave_way)
					elog(LOG, "%s", edata->message);
				else if (compacting)
					note_error(topic_id, p, edata->message);
				if (compacting)
					pgstat_report_activity(STATE_RUNNING, "enforcing retention");
				compacting = false;
				FreeErrorData(edata);
			}
			PG_END_TRY();
		}
	}
	if (cleaner_index == 0)
		drop_retired(pass_context);
	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextReset(pass_context);
}

void
SlCleanerMain(Datum arg)
{
	MemoryContext pass_context;

	cleaner_index = DatumGetInt32(arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(sl_database, NULL, 0);
	pgstat_report_appname(MyBgworkerEntry->bgw_name);

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
		SlTransactionsExpire();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
}
