/*
 * The short-lived worker that loads one partition of __consumer_offsets
 * into streamlog.group_offset when this node starts leading it
 * (storage/group_load.h).  Started by the first request for one of the
 * partition's groups, which meanwhile answers COORDINATOR_LOAD_IN_PROGRESS;
 * bgw_extra holds the topic id, the partition and the leader epoch to load
 * for.  It loads only while this node still leads the partition in that
 * epoch, commits, and only then says the partition is loaded.  An error is
 * logged, the partition stays unloaded, and the next request starts
 * another.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "utils/snapmgr.h"

#include "streamlog/guc.h"
#include "streamlog/storage/group_load.h"
#include "streamlog/storage/storage.h"

extern PGDLLEXPORT void SlGroupLoaderMain(Datum arg);

static int32 load_topic_id;
static int32 load_partition;
static int32 load_epoch;

/* An error ends the worker: say the partition is not loaded */
static void
loader_exit(int code, Datum arg)
{
	SlGroupOffsetsLoadDone(load_topic_id, load_partition, load_epoch, false);
}

void
SlGroupLoaderMain(Datum arg)
{
	int32		args[3];
	const SlTopic *topic;
	const SlPartitionLeadership *l;
	int64		loaded = 0;
	int64		pending = 0;
	bool		leads;

	memcpy(args, MyBgworkerEntry->bgw_extra, sizeof(args));
	load_topic_id = args[0];
	load_partition = args[1];
	load_epoch = args[2];
	before_shmem_exit(loader_exit, (Datum) 0);

	/* for the test hook streamlog.group_load_hold, which waits for a reload */
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
	pgstat_report_appname("streamlog group loader");

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	topic = SlTopicLookupById(load_topic_id);
	if (topic != NULL)
		topic = SlTopicTryLookupAndLock(topic->name, AccessShareLock);
	leads = topic != NULL && topic->topic_id == load_topic_id &&
		load_partition >= 0 && load_partition < topic->partition_count;
	if (leads)
	{
		l = SlTopicPartitionLeadership(topic, load_partition);
		leads = l->leader == sl_node_id && l->leader_epoch == load_epoch;
	}
	if (leads)
		loaded = SlGroupOffsetsLoadPartition(topic, load_partition, load_epoch, &pending);
	PopActiveSnapshot();
	CommitTransactionCommand();

	if (leads)
	{
		SlGroupOffsetsLoadDone(load_topic_id, load_partition, load_epoch, true);
		ereport(LOG,
				(errmsg("streamlog: loaded %lld committed offsets and %lld pending in open transactions of %s-%d as its leader in epoch %d",
						(long long) loaded, (long long) pending, SL_OFFSETS_TOPIC_NAME,
						load_partition, load_epoch)));
	}
}
