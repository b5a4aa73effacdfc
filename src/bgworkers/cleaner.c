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
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/bgworkers/cleaner.h"
#include "streamlog/bgworkers/offsets_expiry.h"
#include "streamlog/bgworkers/txn_expiry.h"
#include "streamlog/guc.h"
#include "streamlog/metrics/counters.h"
#include "streamlog/storage/storage.h"
#include "streamlog/worker.h"

void
SlCleanerRegister(void)
{
	for (int i = 0; i < sl_log_cleaner_threads; i++)
	{
		BackgroundWorker worker;

		SlWorkerDescribe(&worker, "SlCleanerMain", "streamlog cleaner", SL_WORKER_RESTART_S);
		if (i > 0)
			snprintf(worker.bgw_name, BGW_MAXLEN, "streamlog cleaner %d", i);
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

/* Set while a compaction pass runs, so that its error is noted */
static bool compacting = false;

/* Compact one partition if it is due, in a transaction of its own */
static void
compact_partition(int32 topic_id, int32 partition, int64 now_ms)
{
	const SlTopic *topic;

	SlWorkerBeginTransaction();
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
		{
			SlMetricsAdd(SL_METRIC_CLEANER_PARTITIONS_CLEANED, 1);
			SlMetricsAdd(SL_METRIC_CLEANER_RECORDS_REMOVED, (uint64) Max(result.records_removed, 0));
			SlMetricsAdd(SL_METRIC_CLEANER_BYTES_RECLAIMED, (uint64) Max(result.bytes_reclaimed, 0));
		}
		if (result.cleaned)
			elog(DEBUG1, "streamlog cleaner compacted partition %d of topic \"%s\" up to offset %lld: %lld records removed",
				 partition, topic->name, (long long) result.cleaned_offset,
				 (long long) result.records_removed);
	}
	SlWorkerCommitTransaction();
}

/* Roll and trim one partition, in two transactions */
static void
clean_partition(int32 topic_id, int32 partition, int64 now_ms)
{
	const SlTopic *topic;
	int32		roll_seq = 0;
	Oid			roll_relid = InvalidOid;

	SlWorkerBeginTransaction();
	topic = SlTopicLookupById(topic_id);
	if (topic == NULL || partition >= topic->partition_count)
	{
		SlWorkerCommitTransaction();
		return;
	}
	topic = SlTopicLookupAndLock(topic->name, AccessShareLock);
	if (!SlRetentionPrepareRoll(topic, partition, now_ms, &roll_seq, &roll_relid))
		roll_relid = InvalidOid;
	SlWorkerCommitTransaction();

	SlWorkerBeginTransaction();
	topic = SlTopicLookupById(topic_id);
	if (topic != NULL)
	{
		int			dropped;

		topic = SlTopicLookupAndLock(topic->name, AccessShareLock);
		dropped = SlRetentionApply(topic, partition, now_ms, roll_seq, roll_relid);
		SlKeyIndexPrune(topic, partition);
		if (dropped > 0)
			SlMetricsAdd(SL_METRIC_CLEANER_SEGMENTS_DELETED, (uint64) dropped);
		if (dropped > 0)
			elog(DEBUG1, "streamlog cleaner dropped %d segments of partition %d of topic \"%s\"",
				 dropped, partition, topic->name);
	}
	SlWorkerCommitTransaction();
}

/* Note a compaction error in streamlog.compaction; never throws */
static void
note_error(int32 topic_id, int32 partition, const char *message)
{
	PG_TRY();
	{
		SlWorkerBeginTransaction();
		SlCompactionNoteError(topic_id, partition, message);
		SlWorkerCommitTransaction();
	}
	PG_CATCH();
	{
		SlWorkerRecover(NULL);
	}
	PG_END_TRY();
}

/* Drop the segment tables compaction replaced, if no one reads them */
static void
drop_retired(MemoryContext pass_context)
{
	PG_TRY();
	{
		SlWorkerBeginTransaction();
		if (extension_installed())
			(void) SlCompactionDropRetired();
		SlWorkerCommitTransaction();
	}
	PG_CATCH();
	{
		SlWorkerRecover(pass_context);
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
	SlWorkerBeginTransaction();
	oldcxt = MemoryContextSwitchTo(pass_context);
	topics = extension_installed() ? SlTopicListIds() : NIL;
	MemoryContextSwitchTo(oldcxt);
	SlWorkerCommitTransaction();

	foreach(lc, topics)
	{
		int32		topic_id = lfirst_int(lc);
		int32		npartitions = 0;

		SlWorkerBeginTransaction();
		{
			const SlTopic *topic = SlTopicLookupById(topic_id);

			npartitions = topic ? topic->partition_count : 0;
		}
		SlWorkerCommitTransaction();

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
	SlMetricsAdd(SL_METRIC_CLEANER_RUNS, 1);
	SlMetricsSet(SL_METRIC_CLEANER_LAST_RUN_END,
				 (uint64) SlTimestampToKafka(GetCurrentTimestamp()));
	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextReset(pass_context);
}

/* Milliseconds until the pass after the one that ended at last_end is due */
static long
until_next_pass(TimestampTz last_end)
{
	TimestampTz due = TimestampTzPlusMilliseconds(last_end, sl_retention_check_interval);
	TimestampTz now = GetCurrentTimestamp();

	if (last_end == 0 || due <= now)
		return 0;
	/* Rounded up: a wait that ends a little early would only loop */
	return (long) ((due - now + 999) / 1000);
}

void
SlCleanerMain(Datum arg)
{
	MemoryContext pass_context;
	TimestampTz last_pass_end = 0;

	cleaner_index = DatumGetInt32(arg);
	SlWorkerStart(NULL);

	pass_context = AllocSetContextCreate(TopMemoryContext, "streamlog cleaner pass",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		long		wait_ms = until_next_pass(last_pass_end);

		/*
		 * A pass when one is due, and after each reload (a test shortens
		 * the interval that way); not on any other wakeup: a backend that
		 * falls behind on invalidations signals every idle process, so
		 * the latch says nothing about the schedule
		 */
		if (!SlWorkerWait(wait_ms) && wait_ms > 0 && until_next_pass(last_pass_end) > 0)
			continue;
		pgstat_report_activity(STATE_RUNNING, "enforcing retention");
		clean_all(pass_context);
		SlOffsetsExpire();
		SlTransactionsExpire();
		last_pass_end = GetCurrentTimestamp();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
}
