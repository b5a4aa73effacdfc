/*
 * Segments: the tables that hold a partition's log.
 *
 * Segment seq of partition p of topic t is table streamlog_data.t<t>_p<p>_s<seq>,
 * made LIKE streamlog.segment_template, with a row in streamlog.segment.
 * The last segment (highest seq) is the active one that appends go to;
 * retention drops closed segments whole.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "streamlog/storage/internal/catalog.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/segments.h"
#include "streamlog/storage/storage.h"

/*
 * Read straight from the catalogue tables through their primary keys,
 * with the latest snapshot (as the queries this replaced did): every
 * read() and Fetch lists the segments of its partition, and two kept SPI
 * plans (each run as the catalogue's owner, with its own search_path)
 * cost a paged read() of 1,000 records 8% of its time.
 */
SlSegment *
SlSegmentList(SlPartitionKey key, int *count, int64 *log_start)
{
	Snapshot	snapshot;
	ScanKeyData keys[2];
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	SlSegment  *segments;
	int			n = 0;
	int			cap = 8;

	/*
	 * See the rows this transaction wrote so far, as the SPI queries did
	 * (SPI counts a command before each query): the segment a caller
	 * created a moment ago in this command, say, when a partition's log
	 * is first set up on a node.  A no-op when nothing was written.
	 */
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetLatestSnapshot());

	ScanKeyInit(&keys[0], Anum_catalog_partition_topic_id, BTEqualStrategyNumber,
				F_INT4EQ, Int32GetDatum(key.topic_id));
	ScanKeyInit(&keys[1], Anum_catalog_partition_partition, BTEqualStrategyNumber,
				F_INT4EQ, Int32GetDatum(key.partition));

	*log_start = 0;
	rel = table_open(SlCatalogRelid("partition"), AccessShareLock);
	scan = systable_beginscan(rel, RelationGetPrimaryKeyIndex(rel), true, snapshot, 2, keys);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_catalog_partition_log_start_offset,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			*log_start = DatumGetInt64(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	/* Index order: (topic_id, partition, seq) */
	segments = palloc(sizeof(SlSegment) * cap);
	rel = table_open(SlCatalogRelid("segment"), AccessShareLock);
	scan = systable_beginscan(rel, RelationGetPrimaryKeyIndex(rel), true, snapshot, 2, keys);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		SlSegment  *segment;
		bool		isnull;
		Datum		d;

		if (n == cap)
		{
			cap *= 2;
			segments = repalloc(segments, sizeof(SlSegment) * cap);
		}
		segment = &segments[n++];
		segment->seq = DatumGetInt32(heap_getattr(tuple, Anum_catalog_segment_seq, desc, &isnull));
		segment->relid = DatumGetObjectId(heap_getattr(tuple, Anum_catalog_segment_relid, desc,
													   &isnull));
		d = heap_getattr(tuple, Anum_catalog_segment_base_offset, desc, &isnull);
		segment->base_offset = isnull ? -1 : DatumGetInt64(d);
		d = heap_getattr(tuple, Anum_catalog_segment_max_timestamp, desc, &isnull);
		segment->max_timestamp = isnull ? -1 : DatumGetInt64(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snapshot);
	*count = n;
	return segments;
}

Oid
SlSegmentCreate(SlPartitionKey key, int32 seq, int64 base_offset)
{
	char		name[NAMEDATALEN];
	Oid			relid;
	Oid			types[5] = {INT4OID, INT4OID, INT4OID, OIDOID, INT8OID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	snprintf(name, sizeof(name), "t%d_p%d_s%d", key.topic_id, key.partition, seq);
	relid = SlSegmentCreateTable(name);

	SPI_connect();

	values[0] = Int32GetDatum(key.topic_id);
	values[1] = Int32GetDatum(key.partition);
	values[2] = Int32GetDatum(seq);
	values[3] = ObjectIdGetDatum(relid);
	values[4] = Int64GetDatum(base_offset);
	if (base_offset < 0)
		nulls[4] = 'n';
	SlCatalogQuery("INSERT INTO streamlog.segment "
				   "(topic_id, partition, seq, relid, base_offset) "
				   "VALUES ($1, $2, $3, $4, $5)", 5, types, values, nulls);
	SPI_finish();
	return relid;
}

Oid
SlSegmentCreateTable(const char *name)
{
	char	   *sql;
	Oid			relid;

	sql = psprintf("CREATE TABLE streamlog_data.%s "
				   "(LIKE streamlog.segment_template INCLUDING ALL)", quote_identifier(name));
	SPI_connect();
	SlCatalogExec(sql);
	relid = get_relname_relid(name, get_namespace_oid("streamlog_data", false));
	if (!OidIsValid(relid))
		elog(ERROR, "segment table %s was not created", name);
	SPI_finish();
	pfree(sql);
	return relid;
}

int64
SlSegmentBytes(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	int64		bytes;

	SPI_connect();
	SlCatalogQuery("SELECT coalesce(pg_total_relation_size($1), 0)", 1, types, values, NULL);
	bytes = SlCatalogInt64(0, 1, 0);
	SPI_finish();
	return bytes;
}

/* Update one int8 column of a segment's catalog row */
static void
segment_set(SlPartitionKey key, int32 seq, const char *column, int64 value)
{
	Oid			types[4] = {INT4OID, INT4OID, INT4OID, INT8OID};
	Datum		values[4] = {Int32GetDatum(key.topic_id), Int32GetDatum(key.partition),
	Int32GetDatum(seq), Int64GetDatum(value)};
	char	   *sql = psprintf("UPDATE streamlog.segment SET %s = $4 "
							   "WHERE topic_id = $1 AND partition = $2 AND seq = $3",
							   column);

	SPI_connect();
	SlCatalogQuery(sql, 4, types, values, NULL);
	SPI_finish();
	pfree(sql);
}

void
SlSegmentSetBase(SlPartitionKey key, int32 seq, int64 base_offset)
{
	segment_set(key, seq, "base_offset", base_offset);
}

void
SlSegmentSetMaxTimestamp(SlPartitionKey key, int32 seq, int64 max_ts)
{
	segment_set(key, seq, "max_timestamp", max_ts);
}

void
SlSegmentDrop(SlPartitionKey key, int32 seq, Oid relid)
{
	Oid			types[3] = {INT4OID, INT4OID, INT4OID};
	Datum		values[3] = {Int32GetDatum(key.topic_id), Int32GetDatum(key.partition),
	Int32GetDatum(seq)};
	char	   *name = get_rel_name(relid);

	SPI_connect();
	SlCatalogQuery("DELETE FROM streamlog.segment "
				   "WHERE topic_id = $1 AND partition = $2 AND seq = $3",
				   3, types, values, NULL);
	if (name)
		SlCatalogExec(psprintf("DROP TABLE IF EXISTS streamlog_data.%s",
							   quote_identifier(name)));
	SPI_finish();
}

/* Fetch the first row of relid's batches in the given index direction */
static bool
segment_edge(Relation rel, Relation index, Snapshot snapshot, ScanDirection dir,
			 TupleTableSlot *slot)
{
	IndexScanDesc scan;
	bool		found;

	scan = index_beginscan(rel, index, snapshot, 0, 0);
	index_rescan(scan, NULL, 0, NULL, 0);
	found = index_getnext_slot(scan, dir, slot);
	index_endscan(scan);
	return found;
}

void
SlSegmentGetStats(Oid relid, SlSegmentStats *stats, bool with_newest_timestamp)
{
	Relation	rel;
	Relation	index;
	Snapshot	snapshot;
	TupleTableSlot *slot;
	TableScanDesc scan;

	memset(stats, 0, sizeof(*stats));
	stats->empty = true;

	rel = table_open(relid, AccessShareLock);
	index = index_open(SlSegmentIndexOid(rel), AccessShareLock);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);

	if (segment_edge(rel, index, snapshot, ForwardScanDirection, slot))
	{
		stats->empty = false;
		slot_getallattrs(slot);
		stats->first_offset = DatumGetInt64(slot->tts_values[Anum_segment_base_offset - 1]);
		stats->first_timestamp =
			SlTimestampOrAppendTime(DatumGetInt64(slot->tts_values[Anum_segment_min_timestamp - 1]),
									DatumGetInt64(slot->tts_values[Anum_segment_append_time - 1]));
		segment_edge(rel, index, snapshot, BackwardScanDirection, slot);
		slot_getallattrs(slot);
		stats->next_offset = DatumGetInt64(slot->tts_values[Anum_segment_last_offset - 1]) + 1;

		/* The newest timestamp needs every batch row, but no decoding */
		stats->newest_timestamp = PG_INT64_MIN;
		if (with_newest_timestamp)
			scan = table_beginscan(rel, snapshot, 0, NULL);
		while (with_newest_timestamp &&
			   table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			int64		ts;

			slot_getsomeattrs(slot, Anum_segment_append_time);
			ts = SlTimestampOrAppendTime(DatumGetInt64(slot->tts_values[Anum_segment_max_timestamp - 1]),
										 DatumGetInt64(slot->tts_values[Anum_segment_append_time - 1]));
			if (ts > stats->newest_timestamp)
				stats->newest_timestamp = ts;
		}
		if (with_newest_timestamp)
			table_endscan(scan);
	}

	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
}

Oid
SlSegmentIndexOid(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);

	if (list_length(indexes) != 1)
		elog(ERROR, "segment table \"%s\" has %d indexes, expected 1",
			 RelationGetRelationName(rel), list_length(indexes));
	return linitial_oid(indexes);
}
