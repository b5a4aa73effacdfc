/*
 * The key index of a topic (topic config key.index): where each key's
 * records are, so that the current value of a key is found in O(log n)
 * instead of by reading the whole log.
 *
 * One table per topic, streamlog_data.t<topic id>_keys, with a row
 * (key_hash, partition, offset) for every keyed record and a btree on all
 * three: one descent finds a key's entries in every partition, newest
 * first.  The rows are written by the append, at commit, in the
 * transaction that writes the batches (log_append.c), so they are exactly
 * as visible as the records, and a rollback or a crash leaves none without
 * its record.  They are gathered and written sorted, many at a time (see
 * SlKeyIndexWriter): one btree insertion per keyed record is nearly all
 * that the index costs a produce.  The hash is 64 bits of PostgreSQL's
 * hash_bytes_extended (stable across versions: hash partitioning depends
 * on it); a lookup reads the record at each candidate offset and compares
 * the key bytes, so collisions cost a read and nothing else.
 *
 * Entries are derived data: compaction and retention remove records and
 * leave their entries behind, which lookups skip (the offset no longer
 * holds that key).  Retention's pruning (SlKeyIndexPrune, called by the
 * cleaner) deletes the entries below a partition's log start.  Replicas
 * need none of it: the table is not a segment, so the log's stream leaves
 * it out, and a node that appends batches builds its own.
 *
 * Turning key.index on for a live topic builds the index from the log in
 * the altering transaction (which holds the topic's AccessExclusiveLock,
 * so no append runs meanwhile); turning it off, or dropping the topic,
 * drops the table.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/key_index.h"
#include "streamlog/storage/storage.h"

#define Natts_key_index 3
#define Anum_key_index_key_hash 1
#define Anum_key_index_partition 2
#define Anum_key_index_offset 3

/* Most bytes a stored batch may decompress to while its keys are read */
#define KEY_INDEX_MAX_DECOMPRESSED (MaxAllocSize - 1)

static void
key_index_name(int32 topic_id, char *name)
{
	snprintf(name, NAMEDATALEN, "t%d_keys", topic_id);
}

Oid
SlKeyIndexRelid(int32 topic_id)
{
	char		name[NAMEDATALEN];
	Oid			nsp = get_namespace_oid("streamlog_data", true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	key_index_name(topic_id, name);
	return get_relname_relid(name, nsp);
}

static int64
key_hash(const uint8 *key, int32 key_len)
{
	return (int64) DatumGetUInt64(hash_bytes_extended(key, key_len, 0));
}

/* The btree of a key index table: its only index */
static Oid
key_index_btree(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	Oid			oid;

	if (list_length(indexes) != 1)
		elog(ERROR, "key index table \"%s\" has %d indexes, not 1",
			 RelationGetRelationName(rel), list_length(indexes));
	oid = linitial_oid(indexes);
	list_free(indexes);
	return oid;
}

/*
 * Entries gathered before they are written: sorted, consecutive entries
 * fall on the same btree pages, and the heap rows go in with one WAL
 * record per page (heap_multi_insert) instead of one per row.  Bounds the
 * memory of a commit of any size.
 */
#define KEY_INDEX_FLUSH_ENTRIES 65536
#define KEY_INDEX_SLOTS 1000

void
SlKeyIndexOpen(SlKeyIndexWriter *writer, Oid relid)
{
	writer->rel = table_open(relid, RowExclusiveLock);
	writer->index = index_open(key_index_btree(writer->rel), RowExclusiveLock);
	writer->index_info = BuildIndexInfo(writer->index);
	writer->entries = NULL;
	writer->nentries = 0;
	writer->slots = NULL;
	writer->nslots = 0;
	/* Its own: callers may reset theirs between batches */
	writer->context = AllocSetContextCreate(CurrentMemoryContext, "streamlog key index writer",
											ALLOCSET_DEFAULT_SIZES);
}

static int
compare_entries(const void *a, const void *b)
{
	const SlKeyIndexEntry *ea = a;
	const SlKeyIndexEntry *eb = b;

	if (ea->key_hash != eb->key_hash)
		return ea->key_hash < eb->key_hash ? -1 : 1;
	if (ea->partition != eb->partition)
		return ea->partition < eb->partition ? -1 : 1;
	if (ea->offset != eb->offset)
		return ea->offset < eb->offset ? -1 : 1;
	return 0;
}

/* Write slots[0..n) to the heap, then their index entries */
static void
insert_slots(SlKeyIndexWriter *writer, int n)
{
	table_multi_insert(writer->rel, writer->slots, n, GetCurrentCommandId(true), 0, NULL);
	for (int i = 0; i < n; i++)
	{
		TupleTableSlot *slot = writer->slots[i];

		/* The index's columns are the table's: the same values and nulls */
		index_insert(writer->index, slot->tts_values, slot->tts_isnull, &slot->tts_tid,
					 writer->rel, UNIQUE_CHECK_NO, false, writer->index_info);
	}
}

static void
flush_entries(SlKeyIndexWriter *writer)
{
	int			n = 0;

	MemoryContext oldcxt;

	if (writer->nentries == 0)
		return;
	oldcxt = MemoryContextSwitchTo(writer->context);
	qsort(writer->entries, writer->nentries, sizeof(SlKeyIndexEntry), compare_entries);
	if (writer->slots == NULL)
		writer->slots = palloc(sizeof(TupleTableSlot *) * KEY_INDEX_SLOTS);
	for (int i = 0; i < writer->nentries; i++)
	{
		TupleTableSlot *slot;

		/* A small commit (a Kafka request) makes only the slots it fills */
		if (n == writer->nslots)
			writer->slots[writer->nslots++] = table_slot_create(writer->rel, NULL);
		slot = writer->slots[n];

		ExecClearTuple(slot);
		slot->tts_values[Anum_key_index_key_hash - 1] = Int64GetDatum(writer->entries[i].key_hash);
		slot->tts_values[Anum_key_index_partition - 1] = Int32GetDatum(writer->entries[i].partition);
		slot->tts_values[Anum_key_index_offset - 1] = Int64GetDatum(writer->entries[i].offset);
		memset(slot->tts_isnull, 0, sizeof(bool) * Natts_key_index);
		ExecStoreVirtualTuple(slot);
		if (++n == KEY_INDEX_SLOTS)
		{
			insert_slots(writer, n);
			n = 0;
		}
	}
	if (n > 0)
		insert_slots(writer, n);
	writer->nentries = 0;
	MemoryContextSwitchTo(oldcxt);
}

void
SlKeyIndexClose(SlKeyIndexWriter *writer)
{
	flush_entries(writer);
	for (int i = 0; i < writer->nslots; i++)
		ExecDropSingleTupleTableSlot(writer->slots[i]);
	MemoryContextDelete(writer->context);
	index_close(writer->index, RowExclusiveLock);
	table_close(writer->rel, RowExclusiveLock);
}

static void
add_entry(SlKeyIndexWriter *writer, int32 partition, const uint8 *key, int32 key_len,
		  int64 offset)
{
	SlKeyIndexEntry *entry;

	if (writer->entries == NULL)
		writer->entries = MemoryContextAlloc(writer->context,
											 sizeof(SlKeyIndexEntry) * KEY_INDEX_FLUSH_ENTRIES);
	if (writer->nentries == KEY_INDEX_FLUSH_ENTRIES)
		flush_entries(writer);
	entry = &writer->entries[writer->nentries++];
	entry->key_hash = key_hash(key, key_len);
	entry->partition = partition;
	entry->offset = offset;
}

void
SlKeyIndexAddBatch(SlKeyIndexWriter *writer, int32 partition, const uint8 *batch,
				   size_t len)
{
	SlRecordIter it;
	SlRecord	rec;
	const char *error;

	/* Checked when it was received or built: no CRC to verify again */
	error = SlRecordIterInit(&it, batch, len, false, KEY_INDEX_MAX_DECOMPRESSED);
	if (error)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not read the keys of a record batch of partition %d: %s",
						partition, error)));
	while (SlRecordIterNext(&it, &rec))
	{
		if (rec.key_len >= 0)
			add_entry(writer, partition, rec.key, rec.key_len, rec.offset);
	}
	error = it.error;
	SlRecordIterFree(&it);
	if (error)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not read the keys of a record batch of partition %d: %s",
						partition, error)));
}

struct SlKeyIndexCandidates
{
	Relation	rel;
	Relation	index;
	Snapshot	snapshot;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	int64		hash;
	bool		one_partition;
};

SlKeyIndexCandidates *
SlKeyIndexCandidatesBegin(Oid relid, const uint8 *key, int32 key_len, int32 partition)
{
	SlKeyIndexCandidates *c = palloc0(sizeof(SlKeyIndexCandidates));
	ScanKeyData keys[2];

	c->rel = table_open(relid, AccessShareLock);
	c->index = index_open(key_index_btree(c->rel), AccessShareLock);
	c->slot = table_slot_create(c->rel, NULL);
	/* The latest snapshot, as the log's reads (log_read.c) */
	c->snapshot = RegisterSnapshot(GetLatestSnapshot());
	c->hash = key_hash(key, key_len);
	c->one_partition = partition >= 0;
	/* Always two keys, the second on the partition, so rescans can move it */
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(c->hash));
	if (c->one_partition)
		ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(partition));
	else
		ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT4GE, Int32GetDatum(0));
	c->scan = index_beginscan(c->rel, c->index, c->snapshot, 2, 0);
	index_rescan(c->scan, keys, 2, NULL, 0);
	return c;
}

void
SlKeyIndexCandidatesSkipPartition(SlKeyIndexCandidates *c, int32 partition)
{
	ScanKeyData keys[2];

	/* With one partition asked for, nothing is left below it */
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(c->hash));
	ScanKeyInit(&keys[1], 2, BTLessStrategyNumber, F_INT4LT,
				Int32GetDatum(c->one_partition ? 0 : partition));
	index_rescan(c->scan, keys, 2, NULL, 0);
}

bool
SlKeyIndexCandidatesNext(SlKeyIndexCandidates *c, int32 *partition, int64 *offset)
{
	bool		isnull;

	if (!index_getnext_slot(c->scan, BackwardScanDirection, c->slot))
		return false;
	*partition = DatumGetInt32(slot_getattr(c->slot, Anum_key_index_partition, &isnull));
	*offset = DatumGetInt64(slot_getattr(c->slot, Anum_key_index_offset, &isnull));
	return true;
}

void
SlKeyIndexCandidatesEnd(SlKeyIndexCandidates *c)
{
	index_endscan(c->scan);
	ExecDropSingleTupleTableSlot(c->slot);
	UnregisterSnapshot(c->snapshot);
	index_close(c->index, AccessShareLock);
	table_close(c->rel, AccessShareLock);
	pfree(c);
}

/* Fill a new key index from every partition's log */
static void
backfill(const SlTopic *topic, Oid relid)
{
	SlKeyIndexWriter writer;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "streamlog key index backfill",
											  ALLOCSET_DEFAULT_SIZES);

	SlKeyIndexOpen(&writer, relid);
	for (int32 p = 0; p < topic->partition_count; p++)
	{
		SlLogScanBounds bounds;
		SlLogScan  *scan;
		SlRecord	rec;
		MemoryContext oldcxt = MemoryContextSwitchTo(cxt);

		SlLogScanBoundsInit(&bounds);
		scan = SlLogScanBegin(topic, p, &bounds);
		while (SlLogScanNext(scan, &rec))
		{
			if (rec.key_len >= 0)
				add_entry(&writer, p, rec.key, rec.key_len, rec.offset);
			CHECK_FOR_INTERRUPTS();
		}
		SlLogScanEnd(scan);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(cxt);
	}
	SlKeyIndexClose(&writer);
	MemoryContextDelete(cxt);
}

void
SlKeyIndexCreate(int32 topic_id, const SlTopic *fill_from)
{
	char		name[NAMEDATALEN];
	Oid			relid;

	key_index_name(topic_id, name);
	SPI_connect();
	SlCatalogExec(psprintf("CREATE TABLE streamlog_data.%s "
						   "(key_hash int8 NOT NULL, partition int4 NOT NULL, "
						   "\"offset\" int8 NOT NULL)", name));
	SlCatalogExec(psprintf("CREATE INDEX %s_lookup ON streamlog_data.%s "
						   "(key_hash, partition, \"offset\")", name, name));
	SPI_finish();
	CommandCounterIncrement();
	relid = SlKeyIndexRelid(topic_id);
	if (!OidIsValid(relid))
		elog(ERROR, "key index table %s was not created", name);
	if (fill_from)
		backfill(fill_from, relid);
}

void
SlKeyIndexDrop(int32 topic_id)
{
	char		name[NAMEDATALEN];

	/* Looked up first: DROP ... IF EXISTS would tell the client it skipped */
	if (!OidIsValid(SlKeyIndexRelid(topic_id)))
		return;
	key_index_name(topic_id, name);
	SPI_connect();
	SlCatalogExec(psprintf("DROP TABLE streamlog_data.%s", name));
	SPI_finish();
}

/*
 * Where pruning of each partition got to, in this process (the cleaner):
 * the log start it last pruned below.  Forgotten at a restart, which costs
 * one pruning pass per partition with a log start above 0.
 */
typedef struct PrunedPartition
{
	SlPartitionKey key;
	int64		pruned_below;
} PrunedPartition;

static HTAB *pruned = NULL;

void
SlKeyIndexPrune(const SlTopic *topic, int32 partition)
{
	SlPartitionOffsets offsets;
	SlPartitionKey key;
	PrunedPartition *entry;
	bool		found;
	Oid			relid;
	Oid			types[2] = {INT4OID, INT8OID};
	Datum		values[2];
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	if (!topic->config.key_index)
		return;
	relid = SlKeyIndexRelid(topic->topic_id);
	if (!OidIsValid(relid))
		return;
	if (pruned == NULL)
	{
		HASHCTL		info;

		info.keysize = sizeof(SlPartitionKey);
		info.entrysize = sizeof(PrunedPartition);
		info.hcxt = TopMemoryContext;
		pruned = hash_create("streamlog key index pruning", 64, &info,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	SlPartitionGetOffsets(topic->topic_id, partition, &offsets);
	key = SlMakePartitionKey(topic->topic_id, partition);
	entry = hash_search(pruned, &key, HASH_ENTER, &found);
	if (!found)
		entry->pruned_below = 0;
	if (offsets.log_start_offset <= entry->pruned_below)
		return;

	values[0] = Int32GetDatum(partition);
	values[1] = Int64GetDatum(offsets.log_start_offset);

	/*
	 * In a subtransaction: a failure here (a lock timeout, a cancel) must
	 * not undo the retention work of the caller's transaction.  Logged; the
	 * entries wait for the next time the log start moves, and lookups skip
	 * them meanwhile.  Noted as pruned before the commit for the same
	 * reason.
	 */
	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		SPI_connect();
		SlCatalogQuery(psprintf("DELETE FROM streamlog_data.%s "
								"WHERE partition = $1 AND \"offset\" < $2",
								get_rel_name(relid)),
					   2, types, values, NULL);
		SPI_finish();
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ereport(WARNING,
				(errmsg("could not prune the key index of partition %d of topic \"%s\": %s",
						partition, topic->name, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	entry->pruned_below = offsets.log_start_offset;
}
