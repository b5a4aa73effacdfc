/*
 * Kafka's __consumer_offsets: an internal compacted topic holding, per
 * group, the latest committed offset of each partition and the group's
 * metadata, in Kafka's own record layouts (protocol/offsets_records.h), so
 * that lag monitors and tools that decode it see every group.
 *
 * streamlog.group_offset stays what streamlog reads; the topic follows it.
 * Every change of that table (storage/group_offsets.c) buffers the
 * matching record in the same transaction, with SlLogBufferRecord: the
 * record is appended at commit, or vanishes with a rollback, so the table
 * and the topic never disagree.  Deleted offsets, and groups that go,
 * leave tombstones (a key with a null value) for the compaction to keep
 * until delete.retention.ms.
 *
 * The topic is created on first use, as Kafka creates it on the first
 * FindCoordinator.  Not in the caller's transaction: concurrent first
 * commits would then wait for that transaction to end (a SQL consumer's
 * may last long, and consumers must never wait on each other), and a
 * rollback would take the topic with it.  A short-lived background worker
 * creates it and commits (bgworkers/offsets_topic_creator.c) while the
 * caller waits for it, once per installation; workers that race create it
 * once, as SlOffsetsTopicCreate takes a lock first.  The topic belongs to
 * the bootstrap superuser, so that only superusers, streamlog_admin and
 * roles granted READ on it may read it.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/offsets_records.h"
#include "streamlog/storage/internal/offsets_topic.h"
#include "streamlog/storage/storage.h"

/* Kafka's configs of the topic (besides the partition count) */
#define OFFSETS_TOPIC_CONFIG \
	"{\"cleanup.policy\": \"compact\", \"compression.type\": \"producer\", " \
	"\"segment.bytes\": \"104857600\"}"

/*
 * The lock that serializes creating the topic: an object lock of the class
 * of the topic locks (storage/topics.c), with an objid no topic has (topic
 * ids start at 1)
 */
#define OFFSETS_TOPIC_CREATE_LOCK_OBJID 0
#define OFFSETS_TOPIC_CREATE_LOCK_SUBID 0x0ff5

/*
 * Names of topics by id, for the keys: a topic id is never reused for
 * another name in one installation (the catalogue's OID tells installations
 * apart), so entries never go stale.
 */
typedef struct TopicNameKey
{
	Oid			catalog;
	int32		topic_id;
} TopicNameKey;

typedef struct TopicNameEntry
{
	TopicNameKey key;
	char		name[SL_TOPIC_NAME_MAX + 1];
} TopicNameEntry;

static HTAB *topic_names = NULL;

/* The name of a topic by id; NULL if the topic is gone */
static const char *
topic_name(int32 topic_id)
{
	TopicNameKey key;
	TopicNameEntry *entry;
	bool		found;
	const SlTopic *topic;

	if (topic_names == NULL)
	{
		HASHCTL		info;

		info.keysize = sizeof(TopicNameKey);
		info.entrysize = sizeof(TopicNameEntry);
		topic_names = hash_create("streamlog topic names", 64, &info,
								  HASH_ELEM | HASH_BLOBS);
	}
	memset(&key, 0, sizeof(key));
	key.catalog = SlMakePartitionKey(topic_id, 0).catalog;
	key.topic_id = topic_id;
	entry = hash_search(topic_names, &key, HASH_FIND, NULL);
	if (entry != NULL)
		return entry->name;
	topic = SlTopicLookupById(topic_id);
	if (topic == NULL)
		return NULL;
	entry = hash_search(topic_names, &key, HASH_ENTER, &found);
	strlcpy(entry->name, topic->name, sizeof(entry->name));
	return entry->name;
}

/* Take the lock that serializes creating the topic, until the transaction ends */
static bool
lock_topic_creation(bool nowait)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, SlMakePartitionKey(0, 0).catalog,
					   OFFSETS_TOPIC_CREATE_LOCK_OBJID, OFFSETS_TOPIC_CREATE_LOCK_SUBID);
	return LockAcquire(&tag, ExclusiveLock, false, nowait) != LOCKACQUIRE_NOT_AVAIL;
}

Jsonb *
SlOffsetsTopicConfig(void)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(OFFSETS_TOPIC_CONFIG)));
}

void
SlOffsetsTopicCreate(void)
{
	lock_topic_creation(false);
	/* Whoever held the lock may have created it meanwhile */
	if (SlTopicLookup(SL_OFFSETS_TOPIC_NAME, true) != NULL)
		return;
	SlTopicCreateInternal(SL_OFFSETS_TOPIC_NAME, sl_offsets_topic_num_partitions,
						  SlOffsetsTopicConfig());
}

/* Without a free worker slot: try this often, this many times (10 s) */
#define CREATOR_RETRY_MS 100
#define CREATOR_ATTEMPTS 100

/* Register the worker that creates the topic; false if none could be */
static bool
register_creator(BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "streamlog");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "SlOffsetsTopicCreatorMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "streamlog %s creator", SL_OFFSETS_TOPIC_NAME);
	snprintf(worker.bgw_type, BGW_MAXLEN, "streamlog topic creator");
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	worker.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

/*
 * Start the worker that creates the topic and wait until it is done;
 * false if no worker could be started.
 */
static bool
start_creator(void)
{
	BackgroundWorkerHandle *handle;

	if (!register_creator(&handle))
		return false;
	(void) WaitForBackgroundWorkerShutdown(handle);
	/* The wait may have eaten a wakeup meant for the caller's own loop */
	SetLatch(MyLatch);
	return true;
}

const SlTopic *
SlOffsetsTopicOpen(void)
{
	const SlTopic *topic;

	if (!sl_offsets_topic)
		return NULL;
	topic = SlTopicTryLookupAndLock(SL_OFFSETS_TOPIC_NAME, AccessShareLock);
	if (topic != NULL)
		return topic;

	/*
	 * Even a broker worker, which must not wait on other transactions, waits
	 * for this one: it waits only for other creators', as short.  With no
	 * worker slot free (many first commits at once each start one), wait
	 * for the others to create it, and try again.
	 */
	for (int attempt = 0; !start_creator(); attempt++)
	{
		if (attempt >= CREATOR_ATTEMPTS)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start a worker to create %s", SL_OFFSETS_TOPIC_NAME),
					 errhint("Raise max_worker_processes, or set streamlog.offsets_topic to off.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 CREATOR_RETRY_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		topic = SlTopicTryLookupAndLock(SL_OFFSETS_TOPIC_NAME, AccessShareLock);
		if (topic != NULL)
		{
			SetLatch(MyLatch);
			return topic;
		}
	}
	topic = SlTopicTryLookupAndLock(SL_OFFSETS_TOPIC_NAME, AccessShareLock);
	if (topic == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not create %s", SL_OFFSETS_TOPIC_NAME),
				 errdetail("The worker that creates it failed: the server log says why."),
				 errhint("Commits need the topic while streamlog.offsets_topic is on; "
						 "fix the cause (such as streamlog.max_partitions), or set "
						 "streamlog.offsets_topic to off.")));
	return topic;
}

/* A creator this process started in the background, and when */
static BackgroundWorkerHandle *background_creator = NULL;
static TimestampTz background_started = 0;

/* Not more often than this per process: a failing creation logs each time */
#define BACKGROUND_CREATOR_INTERVAL_MS 1000

bool
SlOffsetsTopicCreateInBackground(void)
{
	pid_t		pid;
	TimestampTz now;
	MemoryContext oldcxt;
	bool		started;

	if (!sl_offsets_topic || SlTopicLookup(SL_OFFSETS_TOPIC_NAME, true) != NULL)
		return true;
	if (background_creator != NULL)
	{
		if (GetBackgroundWorkerPid(background_creator, &pid) != BGWH_STOPPED)
			return false;		/* still at it */
		pfree(background_creator);
		background_creator = NULL;
	}
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(background_started, now, BACKGROUND_CREATOR_INTERVAL_MS))
		return false;
	background_started = now;
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	started = register_creator(&background_creator);
	MemoryContextSwitchTo(oldcxt);
	if (!started)
	{
		background_creator = NULL;
		ereport(LOG,
				(errmsg("could not start a worker to create %s", SL_OFFSETS_TOPIC_NAME),
				 errhint("Raise max_worker_processes.")));
	}
	return false;
}

/* Buffer one record (value NULL: a tombstone) in the group's partition */
static void
write_record(const SlTopic *offsets_topic, const char *group_id, StringInfo key,
			 StringInfo value, int64 timestamp_ms)
{
	SlProduceRecord record;

	memset(&record, 0, sizeof(record));
	record.timestamp = timestamp_ms;
	record.key = (const uint8 *) key->data;
	record.key_len = key->len;
	record.value = value ? (const uint8 *) value->data : NULL;
	record.value_len = value ? value->len : -1;
	SlLogBufferRecord(offsets_topic,
					  SlOffsetsPartitionFor(group_id, offsets_topic->partition_count),
					  &record);
}

static void
check_encoded(const char *error, const char *what, const char *group_id)
{
	if (error)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cannot write the %s of group \"%s\" to %s: %s",
						what, group_id, SL_OFFSETS_TOPIC_NAME, error),
				 errhint("Kafka's record layouts limit group ids, topic names and metadata to 32767 bytes.")));
}

void
SlOffsetsTopicWriteCommit(const SlTopic *offsets_topic, const char *group_id,
						  int32 topic_id, int32 partition, int64 offset,
						  int32 leader_epoch, const char *metadata,
						  TimestampTz committed_at)
{
	const char *name = topic_name(topic_id);
	StringInfoData key;
	StringInfoData value;
	SlOffsetCommitValue v;

	if (name == NULL)
		return;
	initStringInfo(&key);
	initStringInfo(&value);
	v.offset = offset;
	v.leader_epoch = leader_epoch;
	v.metadata = metadata;
	v.commit_timestamp = SlTimestampToKafka(committed_at);
	check_encoded(SlEncodeOffsetCommitKey(&key, group_id, name, partition),
				  "committed offset", group_id);
	check_encoded(SlEncodeOffsetCommitValue(&value, &v), "committed offset", group_id);
	write_record(offsets_topic, group_id, &key, &value, v.commit_timestamp);
	pfree(key.data);
	pfree(value.data);
}

void
SlOffsetsTopicWriteOffsetTombstone(const SlTopic *offsets_topic, const char *group_id,
								   int32 topic_id, int32 partition)
{
	const char *name = topic_name(topic_id);
	StringInfoData key;

	if (name == NULL)
		return;
	initStringInfo(&key);
	check_encoded(SlEncodeOffsetCommitKey(&key, group_id, name, partition),
				  "committed offset", group_id);
	write_record(offsets_topic, group_id, &key, NULL,
				 SlTimestampToKafka(GetCurrentTimestamp()));
	pfree(key.data);
}

void
SlOffsetsTopicWriteGroupTombstone(const SlTopic *offsets_topic, const char *group_id)
{
	StringInfoData key;

	initStringInfo(&key);
	check_encoded(SlEncodeGroupMetadataKey(&key, group_id), "metadata", group_id);
	write_record(offsets_topic, group_id, &key, NULL,
				 SlTimestampToKafka(GetCurrentTimestamp()));
	pfree(key.data);
}

void
SlOffsetsTopicStoreGroup(const char *group_id, const SlGroupMetadataValue *value)
{
	const SlTopic *offsets_topic = SlOffsetsTopicOpen();
	StringInfoData key;
	StringInfoData buf;

	if (offsets_topic == NULL)
		return;
	if (value == NULL)
	{
		SlOffsetsTopicWriteGroupTombstone(offsets_topic, group_id);
		return;
	}
	initStringInfo(&key);
	initStringInfo(&buf);
	check_encoded(SlEncodeGroupMetadataKey(&key, group_id), "metadata", group_id);
	check_encoded(SlEncodeGroupMetadataValue(&buf, value), "metadata", group_id);
	write_record(offsets_topic, group_id, &key, &buf,
				 SlTimestampToKafka(GetCurrentTimestamp()));
	pfree(key.data);
	pfree(buf.data);
}

int32
SlOffsetsGroupPartition(const char *group_id, int32 partitions)
{
	return SlOffsetsPartitionFor(group_id, partitions);
}
