/*
 * The current record of a key: what a topic read as a table holds for it.
 *
 * Within a partition the record with the highest offset is current, as
 * compaction keeps it.  A key normally lives in one partition, but nothing
 * makes it: producers choose partitions themselves (librdkafka hashes with
 * CRC32 by default, the Java client with murmur2, a custom partitioner as
 * it likes), and partitions added to a topic move keys.  So every
 * partition is searched, and where a key has records in several the
 * newest timestamp wins (records without one count as oldest; on a tie the
 * higher partition), which is also what streamlog.latest(topic) keeps.  A
 * current record that is a tombstone (null value) means the key has none.
 *
 * With the topic's key index (key_index.c) the search walks the key's
 * entries newest first and reads the record at each, skipping entries whose
 * record is gone or belongs to another key of the same hash; without it,
 * every partition's log is read.
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/tuplesort.h"
#include "utils/typcache.h"

#include "streamlog/storage/internal/key_index.h"
#include "streamlog/storage/storage.h"

/* A found record, copied out of its scan */
typedef struct Found
{
	bool		valid;
	int32		partition;
	SlRecord	rec;
} Found;

static const uint8 *
copy_bytes(const uint8 *data, size_t len)
{
	uint8	   *copy = palloc(Max(len, 1));

	if (len > 0)
		memcpy(copy, data, len);
	return copy;
}

static void
found_free(Found *found)
{
	if (found->valid)
	{
		pfree((void *) found->rec.key);
		pfree((void *) found->rec.value);
		pfree((void *) found->rec.headers);
	}
	found->valid = false;
}

static void
found_set(Found *found, int32 partition, const SlRecord *rec)
{
	found_free(found);
	found->valid = true;
	found->partition = partition;
	found->rec = *rec;
	found->rec.key = copy_bytes(rec->key, Max(rec->key_len, 0));
	found->rec.value = copy_bytes(rec->value, Max(rec->value_len, 0));
	found->rec.headers = copy_bytes(rec->headers, rec->headers_end - rec->headers);
	found->rec.headers_end = found->rec.headers + (rec->headers_end - rec->headers);
}

static bool
same_key(const SlRecord *rec, const uint8 *key, int32 key_len)
{
	return rec->key_len == key_len && memcmp(rec->key, key, key_len) == 0;
}

/* Timestamps as the rule compares them: none (-1) is the oldest */
static int64
rule_timestamp(int64 ts)
{
	return ts == -1 ? PG_INT64_MIN : ts;
}

/* Keep the newer of best and candidate (see the file header); candidate goes */
static void
keep_newer(Found *best, Found *candidate)
{
	if (!candidate->valid)
		return;
	if (best->valid &&
		(rule_timestamp(best->rec.timestamp) > rule_timestamp(candidate->rec.timestamp) ||
		 (best->rec.timestamp == candidate->rec.timestamp &&
		  best->partition > candidate->partition)))
	{
		found_free(candidate);
		return;
	}
	found_free(best);
	*best = *candidate;
	candidate->valid = false;
}

/* The record at offset of partition if it is there and has key */
static bool
read_at(const SlTopic *topic, int32 partition, int64 offset,
		const uint8 *key, int32 key_len, Found *found)
{
	SlLogScanBounds bounds;
	SlLogScan  *scan;
	SlRecord	rec;
	bool		hit = false;

	SlLogScanBoundsInit(&bounds);
	bounds.from_offset = offset;
	bounds.to_offset = offset;
	scan = SlLogScanBegin(topic, partition, &bounds);
	if (SlLogScanNext(scan, &rec) && rec.offset == offset && same_key(&rec, key, key_len))
	{
		found_set(found, partition, &rec);
		hit = true;
	}
	SlLogScanEnd(scan);
	return hit;
}

static void
search_index(const SlTopic *topic, Oid relid, const uint8 *key, int32 key_len,
			 int32 partition, Found *best)
{
	SlKeyIndexCandidates *c = SlKeyIndexCandidatesBegin(relid, key, key_len, partition);
	int32		p;
	int64		offset;

	while (SlKeyIndexCandidatesNext(c, &p, &offset))
	{
		Found		candidate = {0};

		if (p < topic->partition_count &&
			read_at(topic, p, offset, key, key_len, &candidate))
		{
			keep_newer(best, &candidate);
			/* The older entries of p do not count */
			SlKeyIndexCandidatesSkipPartition(c, p);
		}
		CHECK_FOR_INTERRUPTS();
	}
	SlKeyIndexCandidatesEnd(c);
}

static void
search_log(const SlTopic *topic, int32 partition, const uint8 *key, int32 key_len,
		   Found *best)
{
	Found		candidate = {0};
	SlLogScanBounds bounds;
	SlLogScan  *scan;
	SlRecord	rec;

	SlLogScanBoundsInit(&bounds);
	scan = SlLogScanBegin(topic, partition, &bounds);
	while (SlLogScanNext(scan, &rec))
	{
		if (rec.key_len >= 0 && same_key(&rec, key, key_len))
			found_set(&candidate, partition, &rec);
		CHECK_FOR_INTERRUPTS();
	}
	SlLogScanEnd(scan);
	keep_newer(best, &candidate);
}

bool
SlLogLatest(const SlTopic *topic, const uint8 *key, int32 key_len, int32 partition,
			int32 *partition_out, SlRecord *rec_out)
{
	Found		best = {0};
	Oid			relid = topic->config.key_index ? SlKeyIndexRelid(topic->topic_id) : InvalidOid;

	if (partition >= 0)
		SlTopicCheckPartition(topic, partition);
	if (OidIsValid(relid))
		search_index(topic, relid, key, key_len, partition, &best);
	else if (partition >= 0)
		search_log(topic, partition, key, key_len, &best);
	else
		for (int32 p = 0; p < topic->partition_count; p++)
			search_log(topic, p, key, key_len, &best);

	if (!best.valid || best.rec.value_len < 0)
		return false;
	*partition_out = best.partition;
	*rec_out = best.rec;
	return true;
}

/*
 * Every key's current record, in two passes over the log, in bounded
 * memory (work_mem, spilling to temp files):
 *
 * 1. every keyed record's (key, partition, offset, timestamp, tombstone)
 *    is sorted by key, partition and offset descending: the first row of
 *    each (key, partition) is that partition's current record, and the
 *    rows of a key decide which partition's is the key's;
 * 2. the winners that are not tombstones, sorted by partition and offset,
 *    are read from the log in one more scan per partition and emitted.
 *
 * Only the small tuples of pass 1 are sorted, never the values.  Pass 2
 * reads below the high watermarks pass 1 saw; a winner that retention or
 * compaction removed in between is not emitted, as a reader would not
 * see it.
 */

/* Fixed-width columns first: the sort reads them at cached offsets */
#define P1_PARTITION 1
#define P1_OFFSET 2
#define P1_TIMESTAMP 3
#define P1_TOMBSTONE 4
#define P1_KEY 5
#define P1_NATTS 5

#define P2_PARTITION 1
#define P2_OFFSET 2
#define P2_NATTS 2

static Tuplesortstate *
begin_sort(TupleDesc desc, int nkeys, const AttrNumber *attnums, const bool *descending)
{
	Oid			operators[3];
	Oid			collations[3];
	bool		nulls_first[3];

	for (int i = 0; i < nkeys; i++)
	{
		Oid			type = TupleDescAttr(desc, attnums[i] - 1)->atttypid;
		TypeCacheEntry *tc = lookup_type_cache(type, TYPECACHE_LT_OPR | TYPECACHE_GT_OPR);

		operators[i] = descending[i] ? tc->gt_opr : tc->lt_opr;
		collations[i] = InvalidOid;
		nulls_first[i] = false;
	}
	return tuplesort_begin_heap(desc, nkeys, (AttrNumber *) attnums, operators, collations,
								nulls_first, work_mem, NULL, TUPLESORT_NONE);
}

/* Pass 1: the keyed records of every partition, into sort */
static void
sort_keys(const SlTopic *topic, Tuplesortstate *sort, TupleTableSlot *slot,
		  int64 *high_watermarks)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "streamlog latest scan",
											  ALLOCSET_DEFAULT_SIZES);

	for (int32 p = 0; p < topic->partition_count; p++)
	{
		SlLogScanBounds bounds;
		SlLogScan  *scan;
		SlRecord	rec;
		MemoryContext oldcxt = MemoryContextSwitchTo(cxt);

		SlLogScanBoundsInit(&bounds);
		scan = SlLogScanBegin(topic, p, &bounds);
		high_watermarks[p] = SlLogScanHighWatermark(scan);
		while (SlLogScanNext(scan, &rec))
		{
			bytea	   *key;

			if (rec.key_len < 0)
				continue;
			key = palloc(VARHDRSZ + rec.key_len);
			SET_VARSIZE(key, VARHDRSZ + rec.key_len);
			memcpy(VARDATA(key), rec.key, rec.key_len);
			ExecClearTuple(slot);
			slot->tts_values[P1_KEY - 1] = PointerGetDatum(key);
			slot->tts_values[P1_PARTITION - 1] = Int32GetDatum(p);
			slot->tts_values[P1_OFFSET - 1] = Int64GetDatum(rec.offset);
			slot->tts_values[P1_TIMESTAMP - 1] = Int64GetDatum(rule_timestamp(rec.timestamp));
			slot->tts_values[P1_TOMBSTONE - 1] = BoolGetDatum(rec.value_len < 0);
			memset(slot->tts_isnull, 0, sizeof(bool) * P1_NATTS);
			ExecStoreVirtualTuple(slot);
			tuplesort_puttupleslot(sort, slot);	/* copies it */
			pfree(key);
			CHECK_FOR_INTERRUPTS();
		}
		SlLogScanEnd(scan);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(cxt);
	}
	MemoryContextDelete(cxt);
}

/* The winner of one key, once its rows are read */
typedef struct Winner
{
	bool		valid;
	int32		partition;
	int64		offset;
	int64		timestamp;
	bool		tombstone;
} Winner;

static void
put_winner(Tuplesortstate *winners, TupleTableSlot *slot, const Winner *w)
{
	if (!w->valid || w->tombstone)
		return;
	ExecClearTuple(slot);
	slot->tts_values[P2_PARTITION - 1] = Int32GetDatum(w->partition);
	slot->tts_values[P2_OFFSET - 1] = Int64GetDatum(w->offset);
	memset(slot->tts_isnull, 0, sizeof(bool) * P2_NATTS);
	ExecStoreVirtualTuple(slot);
	tuplesort_puttupleslot(winners, slot);
}

/* Pass 1's groups: each key's winner, into winners */
static void
pick_winners(Tuplesortstate *sort, TupleTableSlot *slot, Tuplesortstate *winners,
			 TupleTableSlot *winner_slot)
{
	bytea	   *current = NULL;
	int32		current_partition = -1;
	Winner		best = {0};

	while (tuplesort_gettupleslot(sort, true, false, slot, NULL))
	{
		bool		isnull;
		bytea	   *key = DatumGetByteaPP(slot_getattr(slot, P1_KEY, &isnull));
		int32		partition = DatumGetInt32(slot_getattr(slot, P1_PARTITION, &isnull));
		int64		timestamp = DatumGetInt64(slot_getattr(slot, P1_TIMESTAMP, &isnull));

		if (current == NULL || VARSIZE_ANY_EXHDR(key) != VARSIZE_ANY_EXHDR(current) ||
			memcmp(VARDATA_ANY(key), VARDATA_ANY(current), VARSIZE_ANY_EXHDR(key)) != 0)
		{
			put_winner(winners, winner_slot, &best);
			best.valid = false;
			if (current)
				pfree(current);
			current = DatumGetByteaPCopy(PointerGetDatum(key));
			current_partition = -1;
		}
		/* Only the first row of a partition, its newest, counts */
		if (partition == current_partition)
			continue;
		current_partition = partition;
		/* Partitions come in ascending order: on a tie the later one wins */
		if (!best.valid || timestamp >= best.timestamp)
		{
			best.valid = true;
			best.partition = partition;
			best.offset = DatumGetInt64(slot_getattr(slot, P1_OFFSET, &isnull));
			best.timestamp = timestamp;
			best.tombstone = DatumGetBool(slot_getattr(slot, P1_TOMBSTONE, &isnull));
		}
		CHECK_FOR_INTERRUPTS();
	}
	put_winner(winners, winner_slot, &best);
}

/* The next winner of pass 2, from the sorted winners */
static bool
next_winner(Tuplesortstate *winners, TupleTableSlot *slot, int32 *partition, int64 *offset)
{
	bool		isnull;

	if (!tuplesort_gettupleslot(winners, true, false, slot, NULL))
		return false;
	*partition = DatumGetInt32(slot_getattr(slot, P2_PARTITION, &isnull));
	*offset = DatumGetInt64(slot_getattr(slot, P2_OFFSET, &isnull));
	return true;
}

/* Pass 2: read the winners from the log, partition by partition */
static void
emit_winners(const SlTopic *topic, Tuplesortstate *winners, TupleTableSlot *slot,
			 const int64 *high_watermarks, SlLatestEmit emit, void *arg)
{
	int32		wp;
	int64		woffset;
	bool		have = next_winner(winners, slot, &wp, &woffset);

	while (have)
	{
		int32		p = wp;
		SlLogScanBounds bounds;
		SlLogScan  *scan;
		SlRecord	rec;

		SlLogScanBoundsInit(&bounds);
		bounds.from_offset = woffset;
		bounds.to_offset = high_watermarks[p] - 1;
		scan = SlLogScanBegin(topic, p, &bounds);
		while (have && wp == p && SlLogScanNext(scan, &rec))
		{
			/* Winners the scan went past were removed since pass 1 */
			while (have && wp == p && woffset < rec.offset)
				have = next_winner(winners, slot, &wp, &woffset);
			if (have && wp == p && woffset == rec.offset)
			{
				emit(arg, p, &rec);
				have = next_winner(winners, slot, &wp, &woffset);
			}
			CHECK_FOR_INTERRUPTS();
		}
		SlLogScanEnd(scan);
		/* Those past the end of p's log are gone too */
		while (have && wp == p)
			have = next_winner(winners, slot, &wp, &woffset);
	}
}

void
SlLogLatestAll(const SlTopic *topic, SlLatestEmit emit, void *arg)
{
	TupleDesc	keys_desc = CreateTemplateTupleDesc(P1_NATTS);
	TupleDesc	winners_desc = CreateTemplateTupleDesc(P2_NATTS);
	static const AttrNumber keys_order[3] = {P1_KEY, P1_PARTITION, P1_OFFSET};
	static const bool keys_descending[3] = {false, false, true};
	static const AttrNumber winners_order[2] = {P2_PARTITION, P2_OFFSET};
	static const bool winners_descending[2] = {false, false};
	int64	   *high_watermarks = palloc(sizeof(int64) * topic->partition_count);
	Tuplesortstate *keys;
	Tuplesortstate *winners;
	TupleTableSlot *keys_in;
	TupleTableSlot *keys_out;
	TupleTableSlot *winners_in;
	TupleTableSlot *winners_out;

	TupleDescInitEntry(keys_desc, P1_PARTITION, "partition", INT4OID, -1, 0);
	TupleDescInitEntry(keys_desc, P1_OFFSET, "offset", INT8OID, -1, 0);
	TupleDescInitEntry(keys_desc, P1_TIMESTAMP, "ts", INT8OID, -1, 0);
	TupleDescInitEntry(keys_desc, P1_TOMBSTONE, "tombstone", BOOLOID, -1, 0);
	TupleDescInitEntry(keys_desc, P1_KEY, "key", BYTEAOID, -1, 0);
	TupleDescInitEntry(winners_desc, P2_PARTITION, "partition", INT4OID, -1, 0);
	TupleDescInitEntry(winners_desc, P2_OFFSET, "offset", INT8OID, -1, 0);
	/* Rows go into a sort from virtual slots and come out as minimal tuples */
	keys_in = MakeSingleTupleTableSlot(keys_desc, &TTSOpsVirtual);
	keys_out = MakeSingleTupleTableSlot(keys_desc, &TTSOpsMinimalTuple);
	winners_in = MakeSingleTupleTableSlot(winners_desc, &TTSOpsVirtual);
	winners_out = MakeSingleTupleTableSlot(winners_desc, &TTSOpsMinimalTuple);

	keys = begin_sort(keys_desc, 3, keys_order, keys_descending);
	sort_keys(topic, keys, keys_in, high_watermarks);
	tuplesort_performsort(keys);
	winners = begin_sort(winners_desc, 2, winners_order, winners_descending);
	pick_winners(keys, keys_out, winners, winners_in);
	tuplesort_end(keys);
	tuplesort_performsort(winners);
	emit_winners(topic, winners, winners_out, high_watermarks, emit, arg);
	tuplesort_end(winners);
	ExecDropSingleTupleTableSlot(keys_in);
	ExecDropSingleTupleTableSlot(keys_out);
	ExecDropSingleTupleTableSlot(winners_in);
	ExecDropSingleTupleTableSlot(winners_out);
	pfree(high_watermarks);
}
