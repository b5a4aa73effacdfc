/*
 * The transaction state of a partition follows its log down when a
 * replica truncates it (replica_truncate.c), as Kafka rebuilds producer
 * state from the log after a truncation
 * (ProducerStateManager.truncateAndReload):
 *
 * - a transactional batch that goes no longer opens a transaction: rows of
 *   streamlog.txn_open starting at or past the offset go;
 * - a marker that goes no longer closes its transaction: an ABORT's row in
 *   streamlog.txn_aborted goes, and the transaction it closed is open
 *   again if any of its batches is left, from the first of them.  A COMMIT
 *   left no row, so the log below the offset says where the transaction
 *   began: going back from the offset, the producer's transactional
 *   batches up to its previous marker (or any batch of it outside a
 *   transaction, or the start of the log).
 * - emptied (fully, or below the log start): nothing is left open nor
 *   aborted.
 *
 * The batches are read from the segment rows' producer columns and the
 * attributes in each batch's header, without decoding records; the
 * backward walk ends as soon as every producer that lost a marker is
 * placed.  Reopening goes through SlTxnNoteAppend, which raises the
 * partition's count of open transactions before the commit (the LSO cache
 * stays an upper bound); the rows that go only leave the count too high
 * until the next load.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "streamlog/protocol/codec_base.h"
#include "streamlog/protocol/records.h"
#include "streamlog/storage/internal/catalog.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/segments.h"
#include "streamlog/storage/internal/txn.h"

/* A producer whose marker the truncation removes */
typedef struct LostMarker
{
	int64		producer_id;
	bool		placed;			/* its previous marker or the log start seen */
	bool		reopen;			/* a transactional batch of it is left */
	int16		epoch;			/* of that batch */
	int64		first_offset;	/* the earliest such batch seen */
} LostMarker;

static LostMarker *
find_lost(List *lost, int64 producer_id)
{
	ListCell   *lc;

	foreach(lc, lost)
	{
		LostMarker *m = lfirst(lc);

		if (m->producer_id == producer_id)
			return m;
	}
	return NULL;
}

/* The attributes of a stored batch, from its first piece's header */
static int16
row_attributes(TupleTableSlot *slot)
{
	bytea	   *head;
	int16		attributes = 0;

	slot_getallattrs(slot);
	head = DatumGetByteaPSlice(slot->tts_values[Anum_segment_batch - 1], 0,
							   SL_BATCH_HEADER_SIZE);
	if (VARSIZE_ANY_EXHDR(head) >= SL_BATCH_HEADER_SIZE)
		attributes = SlLoadInt16((const uint8 *) VARDATA_ANY(head) +
								 SL_BATCH_OFFSET_ATTRIBUTES);
	return attributes;
}

/*
 * Walk the partition's batches of producers newest first: those at or past
 * offset name the producers that lose a marker, those below place them.
 * Returns the list of LostMarker.
 */
static List *
walk_back(SlPartitionKey key, int64 offset)
{
	SlSegment  *segments;
	int			nsegments;
	int64		log_start;
	List	   *lost = NIL;
	int			unplaced = 0;
	bool		done = false;
	Snapshot	snapshot;

	segments = SlSegmentList(key, &nsegments, &log_start);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	for (int i = nsegments - 1; i >= 0 && !done; i--)
	{
		Relation	rel = try_relation_open(segments[i].relid, AccessShareLock);
		Relation	index;
		IndexScanDesc scan;
		TupleTableSlot *slot;

		if (rel == NULL)
			continue;
		index = index_open(SlSegmentIndexOid(rel), AccessShareLock);
		slot = table_slot_create(rel, NULL);
		scan = index_beginscan(rel, index, snapshot, 0, 0);
		index_rescan(scan, NULL, 0, NULL, 0);
		while (index_getnext_slot(scan, BackwardScanDirection, slot))
		{
			int64		producer_id;
			int64		base_offset;
			int64		last_offset;
			int16		attributes;
			LostMarker *m;

			CHECK_FOR_INTERRUPTS();
			slot_getsomeattrs(slot, Anum_segment_chunk);
			producer_id = DatumGetInt64(slot->tts_values[Anum_segment_producer_id - 1]);
			base_offset = DatumGetInt64(slot->tts_values[Anum_segment_base_offset - 1]);
			last_offset = DatumGetInt64(slot->tts_values[Anum_segment_last_offset - 1]);
			/* A batch goes if it ends at or past the offset (as the rows do) */
			if (last_offset < offset)
			{
				if (unplaced == 0)
				{
					done = true;
					break;
				}
				if (producer_id < 0 ||
					DatumGetInt32(slot->tts_values[Anum_segment_chunk - 1]) != 0)
					continue;
				m = find_lost(lost, producer_id);
				if (m == NULL || m->placed)
					continue;
				attributes = row_attributes(slot);
				if ((attributes & SL_BATCH_ATTR_TRANSACTIONAL) &&
					!(attributes & SL_BATCH_ATTR_CONTROL))
				{
					m->reopen = true;
					m->first_offset = base_offset;
					m->epoch = DatumGetInt16(slot->tts_values[Anum_segment_producer_epoch - 1]);
				}
				else
				{
					/* Its previous marker, or a batch outside transactions */
					m->placed = true;
					unplaced--;
				}
				continue;
			}
			if (producer_id < 0 ||
				DatumGetInt32(slot->tts_values[Anum_segment_chunk - 1]) != 0 ||
				find_lost(lost, producer_id) != NULL)
				continue;
			attributes = row_attributes(slot);
			if (attributes & SL_BATCH_ATTR_CONTROL)
			{
				m = palloc0(sizeof(LostMarker));
				m->producer_id = producer_id;
				lost = lappend(lost, m);
				unplaced++;
			}
		}
		index_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		index_close(index, AccessShareLock);
		relation_close(rel, AccessShareLock);
	}
	UnregisterSnapshot(snapshot);
	pfree(segments);
	return lost;
}

void
SlTxnTruncate(int32 topic_id, int32 partition, int64 offset, bool empty)
{
	Oid			types[3] = {INT4OID, INT4OID, INT8OID};
	Datum		values[3] = {Int32GetDatum(topic_id), Int32GetDatum(partition),
	Int64GetDatum(empty ? PG_INT64_MIN : offset)};
	List	   *lost = NIL;
	ListCell   *lc;

	/* Before the rows go: the markers at or past the offset are read */
	if (!empty)
		lost = walk_back(SlMakePartitionKey(topic_id, partition), offset);

	SPI_connect();
	SlCatalogQuery("DELETE FROM streamlog.txn_open "
				   "WHERE topic_id = $1 AND partition = $2 AND first_offset >= $3",
				   3, types, values, NULL);
	SlCatalogQuery("DELETE FROM streamlog.txn_aborted "
				   "WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3",
				   3, types, values, NULL);
	SPI_finish();

	foreach(lc, lost)
	{
		LostMarker *m = lfirst(lc);

		if (m->reopen)
			SlTxnNoteAppend(topic_id, partition, m->producer_id, m->epoch,
							m->first_offset);
	}
	list_free_deep(lost);
}
