/*
 * Loading a partition of __consumer_offsets into streamlog.group_offset
 * (group_load.h).
 *
 * Why a load at all: streamlog.group_offset is a plain table of each node,
 * not replicated (only the segment tables are, CLUSTER.md section 3), and
 * the doors lock and read its rows (SQL consumers claim partitions by row
 * lock).  What is replicated is the partition of __consumer_offsets every
 * commit writes in the same transaction; a new coordinator therefore
 * rebuilds its rows from its own replica of that log, as Kafka's
 * coordinator rebuilds its cache.
 *
 * The rebuild reads the whole partition up to the committed log end (a
 * new leader's log holds every record it acknowledged as follower and
 * maybe more: those count too, as in Kafka, which loads to the log end),
 * keeps the last record of each key (a tombstone deletes; a group's
 * metadata tombstone deletes its offsets committed before it), then
 * deletes the rows of every group of the partition and inserts what the
 * log says, in one transaction.  Offsets of topics this node does not know
 * (dropped since) are left out, as the table's foreign key wants.
 *
 * Offsets of Kafka transactions (TxnOffsetCommit, txn_offsets.h) are
 * transactional batches of their producer, settled by the producer's
 * marker, as Kafka's loader reads them: a COMMIT marker makes the
 * producer's pending offsets committed ones, an ABORT drops them, and
 * those of producers without a marker yet are the rows of
 * streamlog.txn_pending_offset the marker will settle on this node.  Rows
 * of that table staged in an earlier leader epoch (this node coordinated
 * the group before) are replaced by what the log says; rows staged in
 * this epoch are kept, as TxnOffsetCommit is taken while the load runs:
 * one staged after the point the load read is newer than the log it read,
 * and one staged before it is what the log holds.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/control_records.h"
#include "streamlog/protocol/offsets_records.h"
#include "streamlog/protocol/records.h"
#include "streamlog/storage/group_load.h"
#include "streamlog/worker.h"
#include "streamlog/storage/replica_log.h"

/* streamlog.offsets_topic_num_partitions's largest value */
#define MAX_OFFSETS_PARTITIONS 1000

/* A loader that has not finished in this long is taken for dead */
#define LOADER_STALE_MS 60000

/* Batches read at a time while loading */
#define LOAD_READ_BYTES (1024 * 1024)

/* Records of one batch decompress to at most this */
#define LOAD_MAX_DECOMPRESSED (64 * 1024 * 1024)

/* Kafka's group ids and topic names, with room for the terminator */
#define KEY_GROUP_LEN 256

typedef struct LoadSlot
{
	int32		topic_id;		/* of __consumer_offsets; 0 = never used */
	int32		loaded_epoch;	/* -1 = not loaded */
	int32		loading_epoch;	/* -1 = no loader at work */
	TimestampTz loading_since;
} LoadSlot;

typedef struct GroupLoadShared
{
	slock_t		mutex;
	LoadSlot	slots[MAX_OFFSETS_PARTITIONS];
} GroupLoadShared;

static GroupLoadShared *group_load = NULL;

Size
SlGroupLoadShmemSize(void)
{
	return MAXALIGN(sizeof(GroupLoadShared));
}

void
SlGroupLoadShmemInit(void)
{
	bool		found;

	group_load = ShmemInitStruct("streamlog group offsets load",
								 sizeof(GroupLoadShared), &found);
	if (!found)
	{
		SpinLockInit(&group_load->mutex);
		for (int i = 0; i < MAX_OFFSETS_PARTITIONS; i++)
		{
			group_load->slots[i].topic_id = 0;
			group_load->slots[i].loaded_epoch = -1;
			group_load->slots[i].loading_epoch = -1;
			group_load->slots[i].loading_since = 0;
		}
	}
}

/* Start the loader of a partition; false if no worker slot was free */
static bool
start_loader(int32 topic_id, int32 partition, int32 leader_epoch)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	int32		args[3] = {topic_id, partition, leader_epoch};

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "streamlog");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "SlGroupLoaderMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "streamlog group loader of %s-%d",
			 SL_OFFSETS_TOPIC_NAME, partition);
	snprintf(worker.bgw_type, BGW_MAXLEN, "streamlog group loader");
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	StaticAssertStmt(sizeof(args) <= BGW_EXTRALEN, "loader arguments fit in bgw_extra");
	memcpy(worker.bgw_extra, args, sizeof(args));
	worker.bgw_notify_pid = 0;
	return RegisterDynamicBackgroundWorker(&worker, &handle);
}

bool
SlGroupOffsetsLoaded(const SlTopic *offsets_topic, int32 partition, int32 leader_epoch)
{
	LoadSlot   *slot;
	TimestampTz now = GetCurrentTimestamp();
	bool		start = false;

	if (group_load == NULL || partition < 0 || partition >= MAX_OFFSETS_PARTITIONS)
		return true;			/* not preloaded: nothing to coordinate with */
	slot = &group_load->slots[partition];
	SpinLockAcquire(&group_load->mutex);
	if (slot->topic_id != offsets_topic->topic_id)
	{
		slot->topic_id = offsets_topic->topic_id;
		slot->loaded_epoch = -1;
		slot->loading_epoch = -1;
	}
	if (slot->loaded_epoch == leader_epoch)
	{
		SpinLockRelease(&group_load->mutex);
		return true;
	}
	if (slot->loading_epoch != leader_epoch ||
		TimestampDifferenceExceeds(slot->loading_since, now, LOADER_STALE_MS))
	{
		slot->loading_epoch = leader_epoch;
		slot->loading_since = now;
		start = true;
	}
	SpinLockRelease(&group_load->mutex);

	if (start && !start_loader(offsets_topic->topic_id, partition, leader_epoch))
	{
		/* no worker slot now: the next request tries again */
		SlGroupOffsetsLoadDone(offsets_topic->topic_id, partition, leader_epoch, false);
	}
	return false;
}

void
SlGroupOffsetsLoadDone(int32 topic_id, int32 partition, int32 leader_epoch, bool loaded)
{
	LoadSlot   *slot;

	if (group_load == NULL || partition < 0 || partition >= MAX_OFFSETS_PARTITIONS)
		return;
	slot = &group_load->slots[partition];
	SpinLockAcquire(&group_load->mutex);
	if (slot->topic_id == topic_id && slot->loading_epoch == leader_epoch)
	{
		slot->loading_epoch = -1;
		if (loaded)
			slot->loaded_epoch = leader_epoch;
	}
	SpinLockRelease(&group_load->mutex);
}

/* One key of the partition, and the last value the log holds for it */
typedef struct LoadKey
{
	char		group_id[KEY_GROUP_LEN];
	char		topic[SL_TOPIC_NAME_MAX + 1];
	int32		partition;
} LoadKey;

typedef struct LoadEntry
{
	LoadKey		key;
	bool		live;			/* false: a tombstone was last */
	int64		offset;
	int32		leader_epoch;
	char	   *metadata;		/* NULL: none */
	int64		commit_timestamp;
} LoadEntry;

/* An offset of a producer's transaction that no marker settled yet */
typedef struct PendingKey
{
	int64		producer_id;
	LoadKey		key;
} PendingKey;

typedef struct PendingEntry
{
	PendingKey	key;
	LoadEntry	value;			/* its key unused */
} PendingEntry;

typedef struct LoadState
{
	HTAB	   *entries;
	HTAB	   *pending;		/* PendingEntry by producer and key */
	int32		partition;
	int32		partitions;		/* of the topic, to tell a group's partition */
	int64		next_offset;
	int64		skipped;		/* records that were no key Kafka writes */
} LoadState;

/* Copy a string view into a fixed buffer; false if it does not fit */
static bool
copy_str(char *dst, size_t size, SlStr s)
{
	if (s.len < 0 || (size_t) s.len >= size || memchr(s.data, '\0', s.len) != NULL)
		return false;
	memcpy(dst, s.data, s.len);
	dst[s.len] = '\0';
	return true;
}

/* A group's metadata tombstone: the group is gone, and its offsets with it */
static void
forget_group(LoadState *st, const char *group_id)
{
	HASH_SEQ_STATUS seq;
	LoadEntry  *e;

	hash_seq_init(&seq, st->entries);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (strcmp(e->key.group_id, group_id) == 0)
			e->live = false;
}

/* Set an entry's value from a record's; false if it is no committed offset */
static bool
set_value(LoadEntry *e, bool found, const SlRecord *rec)
{
	SlOffsetCommitValue v;
	int32		metadata_len;

	if (SlDecodeOffsetCommitValue(rec->value, rec->value_len, &v, &metadata_len) != NULL ||
		v.offset < 0)
		return false;
	e->live = true;
	e->offset = v.offset;
	e->leader_epoch = v.leader_epoch;
	e->commit_timestamp = v.commit_timestamp;
	if (found && e->metadata)
		pfree(e->metadata);
	e->metadata = NULL;
	if (v.metadata != NULL && metadata_len > 0 &&
		memchr(v.metadata, '\0', metadata_len) == NULL)
		e->metadata = pnstrdup(v.metadata, metadata_len);
	return true;
}

/*
 * A record of a producer's transaction: pending until its marker.  Kafka's
 * coordinator writes only committed offsets there.
 */
static void
load_txn_record(LoadState *st, int64 producer_id, const LoadKey *key, const SlRecord *rec)
{
	PendingKey	pk;
	PendingEntry *p;
	bool		found;

	memset(&pk, 0, sizeof(pk));
	pk.producer_id = producer_id;
	pk.key = *key;
	if (rec->value == NULL)
	{
		st->skipped++;
		return;
	}
	p = hash_search(st->pending, &pk, HASH_ENTER, &found);
	if (!found)
		p->value.metadata = NULL;
	if (!set_value(&p->value, found, rec))
	{
		if (!found)
			hash_search(st->pending, &pk, HASH_REMOVE, NULL);
		st->skipped++;
	}
}

/*
 * A producer's marker: COMMIT makes its pending offsets committed ones
 * (the coordinator made them so in the marker's transaction), ABORT drops
 * them
 */
static void
settle_producer(LoadState *st, int64 producer_id, bool commit)
{
	HASH_SEQ_STATUS seq;
	PendingEntry *p;

	hash_seq_init(&seq, st->pending);
	while ((p = hash_seq_search(&seq)) != NULL)
	{
		if (p->key.producer_id != producer_id)
			continue;
		if (commit)
		{
			bool		found;
			LoadEntry  *e = hash_search(st->entries, &p->key.key, HASH_ENTER, &found);

			if (found && e->metadata)
				pfree(e->metadata);
			e->live = true;
			e->offset = p->value.offset;
			e->leader_epoch = p->value.leader_epoch;
			e->commit_timestamp = p->value.commit_timestamp;
			e->metadata = p->value.metadata;
		}
		else if (p->value.metadata)
			pfree(p->value.metadata);
		/* dynahash allows removing the entry a scan just returned */
		hash_search(st->pending, &p->key, HASH_REMOVE, NULL);
	}
}

static void
load_record(LoadState *st, const SlRecord *rec, int64 txn_producer_id)
{
	SlOffsetsKey k;
	LoadKey		key;
	LoadEntry  *e;
	bool		found;

	if (SlDecodeOffsetsKey(rec->key, rec->key_len < 0 ? 0 : rec->key_len, &k) != NULL)
	{
		st->skipped++;
		return;
	}
	memset(&key, 0, sizeof(key));
	if (!copy_str(key.group_id, sizeof(key.group_id), k.group_id))
	{
		st->skipped++;
		return;
	}
	if (k.kind == SL_OFFSETS_KEY_GROUP_METADATA)
	{
		if (rec->value == NULL)
			forget_group(st, key.group_id);
		return;
	}
	if (!copy_str(key.topic, sizeof(key.topic), k.topic))
	{
		st->skipped++;
		return;
	}
	key.partition = k.partition;
	if (txn_producer_id >= 0)
	{
		load_txn_record(st, txn_producer_id, &key, rec);
		return;
	}
	if (rec->value == NULL)
	{
		e = hash_search(st->entries, &key, HASH_FIND, NULL);
		if (e != NULL)
			e->live = false;
		return;
	}
	e = hash_search(st->entries, &key, HASH_ENTER, &found);
	if (!found)
		e->metadata = NULL;
	if (!set_value(e, found, rec))
	{
		if (!found)
			hash_search(st->entries, &key, HASH_REMOVE, NULL);
		st->skipped++;
	}
}

static void
load_batch(const SlReplicaBatch *batch, void *arg)
{
	LoadState  *st = arg;
	SlRecordIter it;
	SlRecord	rec;

	st->next_offset = Max(st->next_offset, batch->last_offset + 1);
	if (SlRecordIterInit(&it, batch->data, batch->len, false, LOAD_MAX_DECOMPRESSED) != NULL)
	{
		st->skipped++;
		return;
	}
	if (it.hdr.attributes & SL_BATCH_ATTR_CONTROL)
	{
		int16		type;

		/* A transaction marker: its one record says which */
		if (it.hdr.producer_id >= 0 && SlRecordIterNext(&it, &rec) &&
			SlControlKeyDecode(rec.key, rec.key_len, &type) &&
			(type == SL_CONTROL_TYPE_COMMIT || type == SL_CONTROL_TYPE_ABORT))
			settle_producer(st, it.hdr.producer_id, type == SL_CONTROL_TYPE_COMMIT);
		SlRecordIterFree(&it);
		return;
	}
	while (SlRecordIterNext(&it, &rec))
		load_record(st, &rec, (it.hdr.attributes & SL_BATCH_ATTR_TRANSACTIONAL) ?
					it.hdr.producer_id : -1);
	if (it.error)
		st->skipped++;
	SlRecordIterFree(&it);
}

/* The groups of this partition among a query's first column */
static Datum
partition_groups(LoadState *st, const char *query)
{
	List	   *groups = NIL;
	Datum	   *elems;
	int			n = 0;
	ListCell   *lc;

	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the groups of %s-%d", SL_OFFSETS_TOPIC_NAME,
			 st->partition);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *g = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (g != NULL && SlOffsetsPartitionFor(g, st->partitions) == st->partition)
			groups = lappend(groups, g);
	}
	elems = palloc(sizeof(Datum) * Max(list_length(groups), 1));
	foreach(lc, groups)
		elems[n++] = CStringGetTextDatum(lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Delete the rows of every group of this partition */
static void
delete_partition_groups(LoadState *st)
{
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		values[1];

	values[0] = partition_groups(st, "SELECT DISTINCT group_id FROM streamlog.group_offset");
	if (SPI_execute_with_args("DELETE FROM streamlog.group_offset WHERE group_id = ANY ($1)",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the offsets of the groups of %s-%d",
			 SL_OFFSETS_TOPIC_NAME, st->partition);
}

/* Insert what the log says; returns the rows inserted */
static int64
insert_entries(LoadState *st)
{
	static const char *sql =
		"INSERT INTO streamlog.group_offset "
		"(group_id, topic_id, partition, committed_offset, leader_epoch, metadata, committed_at) "
		"VALUES ($1, $2, $3, $4, $5, $6, "
		"        CASE WHEN $7 >= 0 THEN to_timestamp($7 / 1000.0) ELSE now() END) "
		"ON CONFLICT DO NOTHING";
	Oid			argtypes[7] = {TEXTOID, INT4OID, INT4OID, INT8OID, INT4OID, TEXTOID, INT8OID};
	SPIPlanPtr	plan = SPI_prepare(sql, 7, argtypes);
	HASH_SEQ_STATUS seq;
	LoadEntry  *e;
	int64		n = 0;

	if (plan == NULL)
		elog(ERROR, "could not prepare the load of group offsets: %s",
			 SPI_result_code_string(SPI_result));
	hash_seq_init(&seq, st->entries);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		const SlTopic *topic;
		Datum		values[7];
		char		nulls[7] = "       ";

		if (!e->live)
			continue;
		topic = SlTopicLookup(e->key.topic, true);
		if (topic == NULL || e->key.partition < 0 || e->key.partition >= topic->partition_count)
			continue;
		values[0] = CStringGetTextDatum(e->key.group_id);
		values[1] = Int32GetDatum(topic->topic_id);
		values[2] = Int32GetDatum(e->key.partition);
		values[3] = Int64GetDatum(e->offset);
		values[4] = Int32GetDatum(e->leader_epoch);
		if (e->metadata)
			values[5] = CStringGetTextDatum(e->metadata);
		else
		{
			values[5] = (Datum) 0;
			nulls[5] = 'n';
		}
		values[6] = Int64GetDatum(e->commit_timestamp);
		if (SPI_execute_plan(plan, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not load a committed offset of group \"%s\"", e->key.group_id);
		n += SPI_processed;
	}
	return n;
}

/*
 * Replace the pending offsets this node staged in earlier leader epochs
 * for the partition's groups by those of transactions the log leaves open;
 * rows staged in this epoch stay (see the top of the file).  Returns the
 * rows inserted.
 */
static int64
load_pending(LoadState *st, int32 leader_epoch)
{
	static const char *insert_sql =
		"INSERT INTO streamlog.txn_pending_offset "
		"(producer_id, group_id, topic_id, partition, committed_offset, leader_epoch, "
		" metadata, staged_epoch) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
		"ON CONFLICT DO NOTHING";
	Oid			delete_types[2] = {TEXTARRAYOID, INT4OID};
	Oid			insert_types[8] = {INT8OID, TEXTOID, INT4OID, INT4OID, INT8OID, INT4OID,
		TEXTOID, INT4OID};
	Datum		delete_values[2];
	SPIPlanPtr	plan;
	HASH_SEQ_STATUS seq;
	PendingEntry *p;
	int64		n = 0;

	delete_values[0] = partition_groups(st, "SELECT DISTINCT group_id "
										"FROM streamlog.txn_pending_offset");
	delete_values[1] = Int32GetDatum(leader_epoch);
	if (SPI_execute_with_args("DELETE FROM streamlog.txn_pending_offset "
							  "WHERE group_id = ANY ($1) AND staged_epoch < $2",
							  2, delete_types, delete_values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the pending offsets of the groups of %s-%d",
			 SL_OFFSETS_TOPIC_NAME, st->partition);

	if (hash_get_num_entries(st->pending) == 0)
		return 0;
	plan = SPI_prepare(insert_sql, 8, insert_types);
	if (plan == NULL)
		elog(ERROR, "could not prepare the load of pending offsets: %s",
			 SPI_result_code_string(SPI_result));
	hash_seq_init(&seq, st->pending);
	while ((p = hash_seq_search(&seq)) != NULL)
	{
		const SlTopic *topic = SlTopicLookup(p->key.key.topic, true);
		Datum		values[8];
		char		nulls[8] = "        ";

		if (topic == NULL || p->key.key.partition < 0 ||
			p->key.key.partition >= topic->partition_count)
			continue;
		values[0] = Int64GetDatum(p->key.producer_id);
		values[1] = CStringGetTextDatum(p->key.key.group_id);
		values[2] = Int32GetDatum(topic->topic_id);
		values[3] = Int32GetDatum(p->key.key.partition);
		values[4] = Int64GetDatum(p->value.offset);
		values[5] = Int32GetDatum(p->value.leader_epoch);
		if (p->value.metadata)
			values[6] = CStringGetTextDatum(p->value.metadata);
		else
		{
			values[6] = (Datum) 0;
			nulls[6] = 'n';
		}
		values[7] = Int32GetDatum(leader_epoch);
		if (SPI_execute_plan(plan, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not load a pending offset of group \"%s\"",
				 p->key.key.group_id);
		n += SPI_processed;
	}
	return n;
}

/*
 * The test hook streamlog.group_load_hold: wait here, between reading the
 * log and writing what it said, while it is on (the loader reloads the
 * configuration), showing it in pg_stat_activity.query
 */
static void
hold_if_asked(int32 partition)
{
	if (!sl_group_load_hold)
		return;
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("holding the load of %s-%d", SL_OFFSETS_TOPIC_NAME,
									partition));
	while (sl_group_load_hold)
		(void) SlWorkerWait(50);
	pgstat_report_activity(STATE_RUNNING, "");
}

int64
SlGroupOffsetsLoadPartition(const SlTopic *offsets_topic, int32 partition,
							int32 leader_epoch, int64 *pending)
{
	LoadState	st;
	HASHCTL		info;
	int64		loaded;

	memset(&st, 0, sizeof(st));
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(LoadKey);
	info.entrysize = sizeof(LoadEntry);
	info.hcxt = CurrentMemoryContext;
	st.entries = hash_create("streamlog group offsets load", 256, &info,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	info.keysize = sizeof(PendingKey);
	info.entrysize = sizeof(PendingEntry);
	st.pending = hash_create("streamlog pending offsets load", 16, &info,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	st.partition = partition;
	st.partitions = offsets_topic->partition_count;
	st.next_offset = 0;

	for (;;)
	{
		int64		from = st.next_offset;

		if (SlReplicaRead(offsets_topic, partition, from, LOAD_READ_BYTES,
						  load_batch, &st) == 0 || st.next_offset <= from)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	if (st.skipped > 0)
		ereport(LOG,
				(errmsg("streamlog: %lld records of %s-%d were not offsets Kafka writes; skipped",
						(long long) st.skipped, SL_OFFSETS_TOPIC_NAME, partition)));

	hold_if_asked(partition);

	SPI_connect();
	delete_partition_groups(&st);
	loaded = insert_entries(&st);
	*pending = load_pending(&st, leader_epoch);
	SPI_finish();
	hash_destroy(st.pending);
	hash_destroy(st.entries);
	return loaded;
}
