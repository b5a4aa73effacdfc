/*
 * The log cleaner: compaction of partitions whose cleanup.policy has
 * "compact", as Kafka's LogCleaner does it.
 *
 * Vocabulary (Kafka's).  The cleanable range of a partition is its closed
 * segments wholly below the high watermark, up to the first one younger
 * than min.compaction.lag.ms; the active segment is never in it.  The
 * checkpoint (cleaned_offset) splits it: below, the clean part, where each
 * key has at most one record; from it on, the dirty part.
 *
 * A pass reads the dirty part into an offset map (offset_map.h: the last
 * offset of each key, by a 128-bit hash of the key, in
 * streamlog.log_cleaner_dedupe_buffer_size of memory).  If the map fills
 * up, the pass ends where it stopped, and the next one goes on from there.
 * Then it rewrites every segment of the cleanable range below that end,
 * clean part included, into new segment tables (consecutive segments
 * grouped up to segment.bytes), keeping a record if it is the last of its
 * key, or lies past where the map ends; records without a key are
 * removed.  Each batch becomes one batch with the records it keeps, at
 * their offsets (its base and last offsets stay, so consumers see gaps and
 * move past them), with their timestamps and headers, compressed with the
 * topic's compression.type; a batch that keeps everything and needs no
 * change is copied as it is, one that keeps nothing goes, unless it is the
 * last batch of an idempotent producer appended within
 * streamlog.producer_id_expiration_ms: that one stays as an empty batch
 * (no records, its offsets and producer fields), as Kafka keeps it, since
 * producer state is rebuilt from the stored batches after a restart.  The
 * batch that holds the log end (the high watermark's last offset) stays
 * too, emptied if its records go: in Kafka it is in the active segment,
 * which is never cleaned, but streamlog's cleaner rolls segments without
 * an append, and without it consumers could not move past the removed
 * tail up to the high watermark.
 *
 * Tombstones (a null value) follow KIP-534: the first pass that keeps one
 * marks its batch with a delete horizon (now + delete.retention.ms, in
 * baseTimestamp, attribute bit 6); a pass after the horizon removes it.
 *
 * Crash safety and readers.  A pass fills its new tables and swaps the
 * catalogue rows of the old segments (streamlog.segment) to them in one
 * transaction, with the checkpoint: a crash before its commit leaves the
 * old segments as they were, one after leaves the new ones.  The old
 * tables keep their rows: they are listed in streamlog.retired_segment and
 * dropped by a later cleaner round only if no one has them open
 * (ConditionalLockRelationOid), so a reader that listed them before the
 * swap reads them to the end; log_read.c lists again if one is gone.  No
 * lock a producer or reader takes is ever waited for, and a background
 * pass gives way to a transaction that waits for its topic (see
 * give_way_if_waited_for).
 *
 * One transaction at a time changes a partition's closed segments: the
 * partition lock (SlCompactionLockPartition), which retention takes too.
 *
 * Transactions (as Kafka's cleaner, txn_cleaner.h).  A pass stops at the
 * last stable offset, and the records of aborted transactions never enter
 * the offset map.  The batches of an aborted transaction go whole (a
 * producer's last batch stays, emptied, as above).  A marker stays while
 * any batch of its transaction is met in the pass; the first pass that
 * meets none gives it a delete horizon (now + delete.retention.ms, as a
 * tombstone's), and a pass after the horizon removes it.  An ABORT's entry
 * in the aborted-transaction index goes in the pass that first finds its
 * batches gone (not in the one that removes them), in the transaction that
 * swaps the segments.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/control_records.h"
#include "streamlog/storage/internal/catalog.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/compaction.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/segment_rows.h"
#include "streamlog/storage/internal/segments.h"
#include "streamlog/storage/internal/txn.h"
#include "streamlog/storage/offset_map.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/transactions.h"
#include "streamlog/storage/txn_cleaner.h"

/* Decompressed batches may not exceed this (as log_read.c) */
#define SL_MAX_DECOMPRESSED_BATCH (MaxAllocSize - 1)

/*
 * The class of the partition lock: an advisory lock tag whose fourth field
 * no SQL advisory lock function uses (they use 1 and 2).
 */
#define SL_CLEANER_LOCK_CLASS 0x534c

bool
SlCompactionLockPartition(SlPartitionKey key, bool nowait)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) key.topic_id,
						 (uint32) key.partition, SL_CLEANER_LOCK_CLASS);
	return LockAcquire(&tag, ExclusiveLock, false, nowait) != LOCKACQUIRE_NOT_AVAIL;
}

/* The cleaner's persistent state of one partition (compaction_state) */
typedef struct CleanerState
{
	bool		exists;
	int64		cleaned_offset;
	int64		delete_horizon; /* earliest horizon of kept tombstones; -1 */
	int64		passes;
} CleanerState;

/* The cleanable range of a partition now */
typedef struct CleanableRange
{
	SlSegment  *segments;
	int			nsegments;
	int			ncleanable;		/* segments[0 .. ncleanable) */
	int64	   *sizes;			/* bytes of each cleanable segment */
	int64		log_start;
	int64		end;			/* first offset past the cleanable segments */
	int64		high_watermark;
	int64		checkpoint;		/* in [log_start, end] or past end */
	int64		clean_bytes;
	int64		dirty_bytes;
} CleanableRange;

/* One pass over one partition */
typedef struct CleanerPass
{
	const SlTopic *topic;
	int32		partition;
	int64		now_ms;
	bool		give_way;		/* to a transaction waiting for the topic */
	int			target_codec;	/* -1: each batch keeps its own */
	SlOffsetMap map;
	int64		map_end;		/* records from here on are kept unread */
	HTAB	   *last_batches;	/* ProducerLastBatch by producer id */
	int64		log_end;		/* the high watermark if the pass reaches it,
								 * else -1 */
	MemoryContext cxt;			/* the pass's: batches have one of their own */
	SlTxnCleaner txns;			/* transactions met in the rewrite */
	int64	   *dropped_aborted;	/* ABORT offsets whose index entries go */
	int			ndropped;
	int			dropped_cap;
	int64		aborted_batches_removed;	/* whole, not kept empty */

	/* output of the pass */
	int64		records_removed;
	int64		next_horizon;	/* earliest horizon of kept tombstones; -1 */

	/* the I/O budget */
	TimestampTz io_start;
	int64		io_bytes;
} CleanerPass;

static int64
min_horizon(int64 a, int64 b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return Min(a, b);
}

/* ---- catalogue ---- */

static void
read_state(SlPartitionKey key, CleanerState *st)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(key.topic_id), Int32GetDatum(key.partition)};

	SPI_connect();
	st->exists = SlCatalogQuery("SELECT cleaned_offset, delete_horizon, passes "
								"FROM streamlog.compaction_state "
								"WHERE topic_id = $1 AND partition = $2",
								2, types, values, NULL) > 0;
	st->cleaned_offset = st->exists ? SlCatalogInt64(0, 1, 0) : 0;
	st->delete_horizon = st->exists ? SlCatalogInt64(0, 2, -1) : -1;
	st->passes = st->exists ? SlCatalogInt64(0, 3, 0) : 0;
	SPI_finish();
}

static void
write_state(SlPartitionKey key, int64 cleaned_offset, int64 delete_horizon,
			int64 records_removed, int64 bytes_reclaimed)
{
	Oid			types[6] = {INT4OID, INT4OID, INT8OID, INT8OID, INT8OID, INT8OID};
	Datum		values[6] = {Int32GetDatum(key.topic_id), Int32GetDatum(key.partition),
		Int64GetDatum(cleaned_offset), Int64GetDatum(delete_horizon),
	Int64GetDatum(records_removed), Int64GetDatum(bytes_reclaimed)};
	char		nulls[6] = {' ', ' ', ' ', delete_horizon < 0 ? 'n' : ' ', ' ', ' '};

	SPI_connect();
	SlCatalogQuery("INSERT INTO streamlog.compaction_state AS c "
				   "(topic_id, partition, cleaned_offset, delete_horizon, last_run, passes, "
				   " records_removed, bytes_reclaimed, last_error) "
				   "VALUES ($1, $2, $3, $4, now(), 1, $5, $6, NULL) "
				   "ON CONFLICT (topic_id, partition) DO UPDATE SET "
				   "cleaned_offset = $3, delete_horizon = $4, last_run = now(), "
				   "passes = c.passes + 1, records_removed = c.records_removed + $5, "
				   "bytes_reclaimed = c.bytes_reclaimed + $6, last_error = NULL",
				   6, types, values, nulls);
	SPI_finish();
}

void
SlCompactionNoteError(int32 topic_id, int32 partition, const char *message)
{
	Oid			types[3] = {INT4OID, INT4OID, TEXTOID};
	Datum		values[3] = {Int32GetDatum(topic_id), Int32GetDatum(partition),
	CStringGetTextDatum(message)};

	SPI_connect();
	/* A partition dropped meanwhile has no row to note it in: the FK says */
	SlCatalogQuery("INSERT INTO streamlog.compaction_state AS c "
				   "(topic_id, partition, last_error) "
				   "SELECT $1, $2, $3 FROM streamlog.partition p "
				   "WHERE p.topic_id = $1 AND p.partition = $2 "
				   "ON CONFLICT (topic_id, partition) DO UPDATE SET last_error = $3",
				   3, types, values, NULL);
	SPI_finish();
}

/* ---- the cleanable range ---- */

/* The newest timestamp of a closed segment, computed once and kept */
static int64
segment_newest(SlPartitionKey key, SlSegment *segment)
{
	if (segment->max_timestamp < 0)
	{
		SlSegmentStats stats;

		SlSegmentGetStats(segment->relid, &stats, true);
		if (stats.empty)
			return PG_INT64_MIN;
		segment->max_timestamp = stats.newest_timestamp;
		SlSegmentSetMaxTimestamp(key, segment->seq, stats.newest_timestamp);
	}
	return segment->max_timestamp;
}

static void
cleanable_range(const SlTopic *topic, SlPartitionKey key, int64 now_ms,
				const CleanerState *st, CleanableRange *r)
{
	SlPartitionSnapshot snap;
	int64		stable;

	SlPartitionStateRead(SlPartitionStateGet(key), &snap);
	/*
	 * As Kafka's cleaner, nothing at or past the last stable offset: an open
	 * transaction's records are not to be judged before it ends
	 */
	stable = Min(snap.high_watermark,
				 SlPartitionLastStableOffset(key.topic_id, key.partition));
	r->segments = SlSegmentList(key, &r->nsegments, &r->log_start);
	r->log_start = Max(r->log_start, snap.log_start_offset);
	r->ncleanable = 0;
	for (int i = 0; i < r->nsegments - 1; i++)
	{
		int64		next_base = r->segments[i + 1].base_offset;

		if (r->segments[i].seq == snap.active_seq)
			break;				/* never the active segment */
		if (next_base < 0 || next_base > stable)
			break;				/* still committing, or in an open transaction */
		if (topic->config.min_compaction_lag_ms > 0 &&
			segment_newest(key, &r->segments[i]) > now_ms - topic->config.min_compaction_lag_ms)
			break;				/* too young: min.compaction.lag.ms */
		r->ncleanable = i + 1;
	}
	r->end = r->ncleanable > 0 ? r->segments[r->ncleanable].base_offset : r->log_start;
	r->high_watermark = snap.high_watermark;

	/* From the log start: a topic switched to compact starts there */
	r->checkpoint = Max(st->exists ? st->cleaned_offset : r->log_start, r->log_start);

	r->sizes = palloc0(sizeof(int64) * Max(r->ncleanable, 1));
	r->clean_bytes = 0;
	r->dirty_bytes = 0;
	for (int i = 0; i < r->ncleanable; i++)
	{
		int64		base = Max(r->segments[i].base_offset, r->log_start);
		int64		next = r->segments[i + 1].base_offset;

		r->sizes[i] = SlSegmentBytes(r->segments[i].relid);
		if (next <= r->checkpoint)
			r->clean_bytes += r->sizes[i];
		else if (base >= r->checkpoint || next <= base)
			r->dirty_bytes += r->sizes[i];
		else
		{
			/*
			 * The checkpoint is inside, where a pass stopped with a full
			 * offset map: the segment counts whole on both sides, as in
			 * Kafka (LogToClean).  A share by offsets would make the few
			 * records such a pass left look too clean to be due among many
			 * segments, and they would wait for the next append.
			 */
			r->dirty_bytes += r->sizes[i];
			r->clean_bytes += r->sizes[i];
		}
	}
}

static double
dirty_ratio(const CleanableRange *r)
{
	int64		total = r->clean_bytes + r->dirty_bytes;

	return total > 0 ? (double) r->dirty_bytes / (double) total : 0.0;
}

/*
 * Is a pass due without being forced?  Dirty enough, or the oldest dirty
 * record older than max.compaction.lag.ms, or a kept tombstone past its
 * delete horizon (Kafka's LogCleanerManager asks the same).
 */
static bool
pass_due(const SlTopic *topic, int64 now_ms, const CleanerState *st,
		 const CleanableRange *r)
{
	if (st->delete_horizon >= 0 && st->delete_horizon <= now_ms && r->ncleanable > 0)
		return true;
	if (r->checkpoint >= r->end || r->dirty_bytes <= 0)
		return false;
	/* Strictly more, as Kafka: a ratio of 1 leaves it to the other reasons */
	if (dirty_ratio(r) > topic->config.min_cleanable_dirty_ratio)
		return true;
	if (topic->config.max_compaction_lag_ms < PG_INT64_MAX)
	{
		for (int i = 0; i < r->ncleanable; i++)
		{
			if (r->segments[i + 1].base_offset > r->checkpoint)
			{
				SlSegmentStats stats;

				SlSegmentGetStats(r->segments[i].relid, &stats, false);
				return !stats.empty &&
					stats.first_timestamp < now_ms - topic->config.max_compaction_lag_ms;
			}
		}
	}
	return false;
}

/* ---- idempotent producers' last batches ---- */

/* The last batch of an idempotent producer in the partition */
typedef struct ProducerLastBatch
{
	int64		producer_id;	/* hash key: must be first */
	int64		last_offset;
	int64		append_time;
} ProducerLastBatch;

/*
 * Find the last batch of every idempotent producer of the partition, in
 * all its segments, from the producer columns of the segment rows (no
 * decoding).  The pass keeps these batches, emptied if their records go,
 * as Kafka's cleaner keeps the last batch of each active producer
 * (BatchRetention RETAIN_EMPTY): producer state is rebuilt after a restart
 * from the stored batches (producers.c), and without its last batch a
 * producer's retry or next sequence would be refused as out of order.
 */
static HTAB *
producers_last_batches(const CleanableRange *r)
{
	HASHCTL		info;
	HTAB	   *last_batches;
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());

	info.keysize = sizeof(int64);
	info.entrysize = sizeof(ProducerLastBatch);
	info.hcxt = CurrentMemoryContext;
	last_batches = hash_create("streamlog cleaner producers", 64, &info,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int i = 0; i < r->nsegments; i++)
	{
		Relation	rel = try_relation_open(r->segments[i].relid, AccessShareLock);
		TupleTableSlot *slot;
		TableScanDesc scan;

		if (rel == NULL)
			continue;			/* dropped since the list was read */
		slot = table_slot_create(rel, NULL);
		scan = table_beginscan(rel, snapshot, 0, NULL);
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			int64		producer_id;
			int64		last_offset;
			ProducerLastBatch *entry;
			bool		found;

			slot_getsomeattrs(slot, Anum_segment_producer_id);
			producer_id = DatumGetInt64(slot->tts_values[Anum_segment_producer_id - 1]);
			/*
			 * A marker has no sequence: the producer's last data batch is
			 * what its state is rebuilt from (Kafka's lastDataOffset)
			 */
			if (producer_id < 0 ||
				DatumGetInt32(slot->tts_values[Anum_segment_base_sequence - 1]) < 0)
				continue;
			last_offset = DatumGetInt64(slot->tts_values[Anum_segment_last_offset - 1]);
			entry = hash_search(last_batches, &producer_id, HASH_ENTER, &found);
			if (!found || last_offset > entry->last_offset)
			{
				entry->last_offset = last_offset;
				entry->append_time =
					DatumGetInt64(slot->tts_values[Anum_segment_append_time - 1]);
			}
		}
		table_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		relation_close(rel, AccessShareLock);
	}
	UnregisterSnapshot(snapshot);
	return last_batches;
}

/*
 * Is this batch the last of a producer whose state has not expired
 * (streamlog.producer_id_expiration_ms since it was appended, Kafka's
 * producer.id.expiration.ms)?
 */
static bool
is_producers_last_batch(CleanerPass *pass, const SlBatchHeader *hdr, int64 append_time)
{
	ProducerLastBatch *entry;

	if (hdr->producer_id < 0 || pass->last_batches == NULL)
		return false;
	entry = hash_search(pass->last_batches, &hdr->producer_id, HASH_FIND, NULL);
	if (entry == NULL || entry->last_offset != hdr->base_offset + hdr->last_offset_delta)
		return false;
	return append_time >= pass->now_ms - sl_producer_id_expiration_ms;
}

/* ---- giving way, and the I/O budget ---- */

/*
 * A background pass holds the topic's lock for as long as it runs; a
 * transaction that waits for a stronger one (alter, drop, delete records)
 * would hold up every producer and reader queued behind it.  So the pass
 * gives way: it ends with lock_not_available, its transaction rolls back
 * and leaves the log as it was, and a later round cleans the partition.
 */
static void
give_way_if_waited_for(CleanerPass *pass)
{
	if (pass->give_way && SlTopicLockHasWaiters(pass->topic->topic_id, AccessShareLock))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("compaction of partition %d of topic \"%s\" gave way to a transaction waiting for the topic",
						pass->partition, pass->topic->name)));
}

/*
 * Sleep as long as it takes to keep read + written bytes within
 * streamlog.log_cleaner_io_max_bytes_per_second since the pass began, on
 * the latch, so that SIGTERM and cancellation are served at once.
 */
static void
throttle(CleanerPass *pass, int64 bytes)
{
	double		rate = (double) sl_log_cleaner_io_max_bytes_per_second;

	give_way_if_waited_for(pass);
	pass->io_bytes += bytes;
	if (rate <= 0)
		return;
	for (;;)
	{
		long		secs;
		int			usecs;
		double		elapsed_ms;
		double		due_ms = (double) pass->io_bytes * 1000.0 / rate;

		TimestampDifference(pass->io_start, GetCurrentTimestamp(), &secs, &usecs);
		elapsed_ms = secs * 1000.0 + usecs / 1000.0;
		if (elapsed_ms >= due_ms)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 (long) Min(due_ms - elapsed_ms + 1, 100.0), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		give_way_if_waited_for(pass);
	}
}

/* ---- the offset map ---- */

static void
corrupt(CleanerPass *pass, int64 offset, const char *error)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("corrupt record batch at offset %lld of partition %d of topic \"%s\": %s",
					(long long) offset, pass->partition, pass->topic->name, error)));
}

/*
 * Note the last offset of each key of [from, to): map_end is to, or the
 * offset of the first record whose key the full map could not take.
 */
static void
build_offset_map(CleanerPass *pass, int64 from, int64 to)
{
	SlLogScanBounds bounds;
	SlLogScan  *scan;
	size_t		len;
	int64		base;
	int64		last;
	SlAbortedTxn *aborted;
	int			naborted;
	SlAbortedFilter filter;
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
													"streamlog cleaner map batch",
													ALLOCSET_DEFAULT_SIZES);

	pass->map_end = to;
	if (from >= to)
		return;
	/*
	 * Records of aborted transactions are no key's last record (Kafka's
	 * cleaner leaves them out of the map too): a committed record they
	 * follow stays
	 */
	aborted = SlTxnAbortedInRange(pass->topic->topic_id, pass->partition, from, to,
								  &naborted);
	SlAbortedFilterInit(&filter, aborted, naborted);
	SlLogScanBoundsInit(&bounds);
	bounds.from_offset = from;
	bounds.to_offset = to - 1;
	scan = SlLogScanBegin(pass->topic, pass->partition, &bounds);
	while (SlLogScanPeekBatch(scan, &len, &base, &last))
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(batch_cxt);
		uint8	   *data = palloc(len);
		SlRecordIter it;
		SlRecord	rec;
		const char *error;
		bool		full = false;

		CHECK_FOR_INTERRUPTS();
		SlLogScanCopyBatch(scan, data);
		error = SlRecordIterInit(&it, data, len, false, SL_MAX_DECOMPRESSED_BATCH);
		if (error)
			corrupt(pass, base, error);
		if (!SlAbortedFilterSkips(&filter, it.hdr.attributes, it.hdr.producer_id, base))
		{
			while (SlRecordIterNext(&it, &rec))
			{
				if (rec.offset < from || rec.key == NULL)
					continue;
				if (rec.offset >= to)
					break;
				if (!SlOffsetMapPut(&pass->map,
									SlOffsetMapHash(rec.key, rec.key_len), rec.offset))
				{
					pass->map_end = rec.offset;
					full = true;
					break;
				}
			}
			if (it.error && !full)
				corrupt(pass, base, it.error);
		}
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(batch_cxt);
		throttle(pass, (int64) len);
		if (full)
			break;
	}
	SlLogScanEnd(scan);
	MemoryContextDelete(batch_cxt);
}

/* ---- the per-batch filter ---- */

typedef enum BatchRetention
{
	BATCH_DISCARD,				/* whole: none of its records is kept */
	BATCH_FILTER				/* record by record */
} BatchRetention;

/*
 * The decision on a whole data batch before its records: Kafka's
 * checkBatchRetention.  The batches of an aborted transaction go whole;
 * markers are judged by clean_marker().
 */
static BatchRetention
batch_retention(CleanerPass *pass, const SlBatchHeader *hdr)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(pass->cxt);
	bool		aborted = SlTxnCleanerDataBatch(&pass->txns, hdr->attributes,
												hdr->producer_id,
												hdr->base_offset + hdr->last_offset_delta);

	MemoryContextSwitchTo(oldcxt);
	return aborted ? BATCH_DISCARD : BATCH_FILTER;
}

/*
 * Kafka's shouldRetainRecord: keep a record past where the map ends, or
 * the last of its key (a key the map does not hold has its last record in
 * the clean part), unless it is a tombstone past its batch's delete
 * horizon; remove records without a key.
 */
static bool
record_retained(CleanerPass *pass, const SlRecord *rec, bool retain_deletes)
{
	int64		last;

	if (rec->offset >= pass->map_end)
		return true;
	if (rec->key == NULL)
		return false;
	last = SlOffsetMapGet(&pass->map, SlOffsetMapHash(rec->key, rec->key_len));
	if (rec->offset < last)
		return false;
	return rec->value != NULL || retain_deletes;
}

/* ---- writing segments ---- */

/* A segment table being written */
typedef struct SegmentWriter
{
	Relation	rel;
	Relation	index;
	IndexInfo  *index_info;
	int64		newest;			/* newest timestamp written (see SlSegment) */
	int64		bytes;
} SegmentWriter;

/* Write a batch to the new segment (segment_rows.h) and count it */
static void
write_batch(SegmentWriter *w, const SlSegmentRow *row, const uint8 *data, size_t len)
{
	SlSegmentInsertBatch(w->rel, w->index, w->index_info, row, data, len);
	w->newest = Max(w->newest, SlTimestampOrAppendTime(row->max_timestamp, row->append_time));
	w->bytes += len;
}

/*
 * Write the empty batch that stands for a batch whose records all went but
 * which must stay (a producer's last, or the one that holds the log end),
 * as Kafka's writeEmptyHeader: no records, uncompressed, its base and last
 * offsets, producer id, epoch, base sequence and timestamps.  Its row has
 * no record timestamps (-1), so that time lookups pass it by.
 */
static size_t
write_empty_batch(SegmentWriter *w, SlSegmentRow *row, const SlBatchHeader *hdr)
{
	SlBatchBuilder b;
	StringInfoData out;
	int16		attrs = hdr->attributes &
		~(SL_BATCH_ATTR_COMPRESSION_MASK | SL_BATCH_ATTR_DELETE_HORIZON);
	const char *error;
	size_t		written;

	SlBatchBuilderInit(&b, SL_COMPRESSION_NONE);
	b.producer_id = hdr->producer_id;
	b.producer_epoch = hdr->producer_epoch;
	b.base_sequence = hdr->base_sequence;
	SlBatchBuilderSetBase(&b, attrs, true,
						  (hdr->attributes & SL_BATCH_ATTR_DELETE_HORIZON) ?
						  hdr->max_timestamp : hdr->base_timestamp);
	b.max_timestamp = hdr->max_timestamp;
	b.last_offset_delta = hdr->last_offset_delta;
	initStringInfo(&out);
	error = SlBatchBuilderFinish(&b, &out);
	if (error)
		elog(ERROR, "could not write an empty record batch: %s", error);
	SlBatchSeal((uint8 *) out.data, out.len, hdr->base_offset, -1);
	/* Its leader epoch stays (Kafka's cleaner keeps partitionLeaderEpoch) */
	SlStoreInt32((uint8 *) out.data + SL_BATCH_OFFSET_LEADER_EPOCH,
				 hdr->partition_leader_epoch);
	row->last_offset = hdr->base_offset + hdr->last_offset_delta;
	row->record_count = hdr->last_offset_delta + 1;
	row->min_timestamp = -1;
	row->max_timestamp = -1;
	write_batch(w, row, (const uint8 *) out.data, out.len);
	written = out.len;
	pfree(out.data);
	SlBatchBuilderFree(&b);
	return written;
}

/* The offset of an ABORT whose index entry goes with this pass */
static void
note_dropped_abort(CleanerPass *pass, int64 offset)
{
	if (pass->ndropped == pass->dropped_cap)
	{
		pass->dropped_cap = pass->dropped_cap == 0 ? 16 : pass->dropped_cap * 2;
		pass->dropped_aborted = pass->dropped_aborted == NULL ?
			palloc(sizeof(int64) * pass->dropped_cap) :
			repalloc(pass->dropped_aborted, sizeof(int64) * pass->dropped_cap);
	}
	pass->dropped_aborted[pass->ndropped++] = offset;
}

/* Write a control batch as it is: never rewritten nor compressed */
static size_t
keep_marker(SegmentWriter *w, SlRecordIter *it, SlSegmentRow *row, const uint8 *data,
			size_t len)
{
	row->last_offset = it->hdr.base_offset + it->hdr.last_offset_delta;
	row->record_count = it->hdr.last_offset_delta + 1;
	row->min_timestamp = row->max_timestamp = it->hdr.max_timestamp;
	write_batch(w, row, data, len);
	SlRecordIterFree(it);
	return len;
}

/*
 * Clean a control batch (a transaction marker), as Kafka's cleaner: kept
 * while a batch of its transaction was met in this pass; else given a
 * delete horizon by the first pass, removed by one after it (unless it
 * holds the log end: see the head comment).  Returns the bytes written.
 */
static size_t
clean_marker(CleanerPass *pass, SegmentWriter *w, SlRecordIter *it, SlSegmentRow *row,
			 const uint8 *data, size_t len)
{
	SlRecord	rec;
	int16		type = -1;
	bool		has_record = SlRecordIterNext(it, &rec);
	bool		has_horizon = (it->hdr.attributes & SL_BATCH_ATTR_DELETE_HORIZON) != 0;
	int64		horizon = has_horizon ? it->hdr.base_timestamp : -1;
	bool		holds_end = it->hdr.base_offset + it->hdr.last_offset_delta + 1 == pass->log_end;
	SlTxnMarkerVerdict v;
	SlBatchBuilder b;
	StringInfoData out;
	const char *error;

	if (it->error)
		corrupt(pass, it->hdr.base_offset, it->error);
	if (has_record && !SlControlKeyDecode(rec.key, rec.key_len, &type))
		return keep_marker(w, it, row, data, len);	/* unknown: as Kafka, kept */
	if (has_record)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(pass->cxt);

		v = SlTxnCleanerMarker(&pass->txns, it->hdr.producer_id, it->hdr.base_offset,
							   type == SL_CONTROL_TYPE_ABORT);
		if (v.drop_index)
			note_dropped_abort(pass, it->hdr.base_offset);
		MemoryContextSwitchTo(oldcxt);
		if (!v.can_discard)
		{
			/*
			 * An ABORT met after its batches, which go in this pass: the
			 * next pass may remove it, so it is due at once (Kafka's waits
			 * for the log to be dirty again).  Only if this pass removed
			 * some: a producer's last batch, kept empty, is met by every
			 * pass, which must not make every round due.
			 */
			if (type == SL_CONTROL_TYPE_ABORT && pass->aborted_batches_removed > 0)
				pass->next_horizon = min_horizon(pass->next_horizon, pass->now_ms);
			return keep_marker(w, it, row, data, len);
		}
	}
	/* Its transaction is gone (or, empty, it was cleaned before) */
	if (holds_end)
		return keep_marker(w, it, row, data, len);
	if (!has_record || (has_horizon && horizon <= pass->now_ms))
	{
		pass->records_removed += it->hdr.record_count;
		SlRecordIterFree(it);
		return 0;
	}
	if (has_horizon)
	{
		pass->next_horizon = min_horizon(pass->next_horizon, horizon);
		return keep_marker(w, it, row, data, len);
	}

	/* The first pass that may remove it sets its horizon (KIP-534) */
	horizon = pass->now_ms + pass->topic->config.delete_retention_ms;
	if (horizon < pass->now_ms)
		horizon = PG_INT64_MAX;
	pass->next_horizon = min_horizon(pass->next_horizon, horizon);
	SlBatchBuilderInit(&b, SL_COMPRESSION_NONE);
	b.producer_id = it->hdr.producer_id;
	b.producer_epoch = it->hdr.producer_epoch;
	b.base_sequence = it->hdr.base_sequence;
	SlBatchBuilderSetBase(&b, (it->hdr.attributes & ~SL_BATCH_ATTR_COMPRESSION_MASK) |
						  SL_BATCH_ATTR_DELETE_HORIZON, true, horizon);
	SlBatchBuilderAddRecord(&b, (int32) (rec.offset - it->hdr.base_offset), &rec);
	b.last_offset_delta = it->hdr.last_offset_delta;
	initStringInfo(&out);
	error = SlBatchBuilderFinish(&b, &out);
	if (error)
		elog(ERROR, "could not write a transaction marker: %s", error);
	SlBatchSeal((uint8 *) out.data, out.len, it->hdr.base_offset, -1);
	SlStoreInt32((uint8 *) out.data + SL_BATCH_OFFSET_LEADER_EPOCH,
				 it->hdr.partition_leader_epoch);
	row->last_offset = it->hdr.base_offset + it->hdr.last_offset_delta;
	row->record_count = it->hdr.last_offset_delta + 1;
	row->min_timestamp = row->max_timestamp = it->hdr.max_timestamp;
	write_batch(w, row, (const uint8 *) out.data, out.len);
	len = out.len;
	pfree(out.data);
	SlBatchBuilderFree(&b);
	SlRecordIterFree(it);
	return len;
}

/*
 * Clean one stored batch into w: keep it, rebuild it with the records it
 * keeps, or leave it out.  Returns the bytes written.
 */
static size_t
clean_batch(CleanerPass *pass, SegmentWriter *w, const uint8 *data, size_t len,
			int64 append_time)
{
	SlRecordIter it;
	SlRecord   *kept;
	SlRecord	rec;
	int			nkept = 0;
	int			nrecords = 0;
	bool		has_horizon;
	bool		retain_deletes;
	bool		tombstones = false;
	int64		horizon;
	int			codec;
	SlSegmentRow	row;
	BatchRetention retention;
	size_t		written;
	const char *error;

	error = SlRecordIterInit(&it, data, len, true, SL_MAX_DECOMPRESSED_BATCH);
	if (error)
		corrupt(pass, SlLoadInt64(data), error);

	row.base_offset = it.hdr.base_offset;
	row.append_time = append_time;
	row.producer_id = it.hdr.producer_id;
	row.producer_epoch = it.hdr.producer_epoch;
	row.base_sequence = it.hdr.base_sequence;
	row.min_timestamp = -1;
	row.max_timestamp = -1;

	if (it.hdr.attributes & SL_BATCH_ATTR_CONTROL)
		return clean_marker(pass, w, &it, &row, data, len);
	retention = batch_retention(pass, &it.hdr);
	if (retention == BATCH_DISCARD)
	{
		/* An aborted transaction's: emptied if it must stay, as above */
		written = 0;
		pass->records_removed += it.hdr.record_count;
		if (is_producers_last_batch(pass, &it.hdr, append_time) ||
			it.hdr.base_offset + it.hdr.last_offset_delta + 1 == pass->log_end)
			written = write_empty_batch(w, &row, &it.hdr);
		else
			pass->aborted_batches_removed++;
		SlRecordIterFree(&it);
		return written;
	}

	has_horizon = (it.hdr.attributes & SL_BATCH_ATTR_DELETE_HORIZON) != 0;
	horizon = has_horizon ? it.hdr.base_timestamp : -1;
	retain_deletes = !has_horizon || pass->now_ms < horizon;

	kept = palloc(sizeof(SlRecord) * Max(it.hdr.record_count, 1));
	while (SlRecordIterNext(&it, &rec))
	{
		nrecords++;
		if (!record_retained(pass, &rec, retain_deletes))
			continue;
		if (rec.value == NULL)
			tombstones = true;
		if (rec.timestamp >= 0)
		{
			row.min_timestamp = row.min_timestamp < 0 ? rec.timestamp :
				Min(row.min_timestamp, rec.timestamp);
			row.max_timestamp = Max(row.max_timestamp, rec.timestamp);
		}
		kept[nkept++] = rec;
	}
	if (it.error)
		corrupt(pass, it.hdr.base_offset, it.error);
	pass->records_removed += nrecords - nkept;

	if (nkept == 0)
	{
		written = 0;
		if (is_producers_last_batch(pass, &it.hdr, append_time) ||
			it.hdr.base_offset + it.hdr.last_offset_delta + 1 == pass->log_end)
			written = write_empty_batch(w, &row, &it.hdr);
		SlRecordIterFree(&it);
		pfree(kept);
		return written;
	}

	/* The first pass that keeps a tombstone sets the horizon (KIP-534) */
	if (tombstones && !has_horizon)
	{
		horizon = pass->now_ms + pass->topic->config.delete_retention_ms;
		if (horizon < pass->now_ms)
			horizon = PG_INT64_MAX;
	}
	if (tombstones && horizon >= 0)
		pass->next_horizon = min_horizon(pass->next_horizon, horizon);

	codec = pass->target_codec < 0 ? SlBatchCompression(&it.hdr) : pass->target_codec;
	if (nkept == nrecords && (has_horizon || !tombstones) &&
		codec == SlBatchCompression(&it.hdr))
	{
		/* Nothing to change: the stored bytes, as Kafka keeps the batch */
		row.last_offset = it.hdr.base_offset + it.hdr.last_offset_delta;
		row.record_count = it.hdr.last_offset_delta + 1;
		if (it.hdr.attributes & SL_BATCH_ATTR_LOG_APPEND_TIME)
			row.min_timestamp = row.max_timestamp = it.hdr.max_timestamp;
		write_batch(w, &row, data, len);
		written = len;
	}
	else
	{
		SlBatchBuilder b;
		StringInfoData out;
		int16		attrs = it.hdr.attributes & ~SL_BATCH_ATTR_COMPRESSION_MASK;
		bool		set_horizon = tombstones || has_horizon;

		if (set_horizon)
			attrs |= SL_BATCH_ATTR_DELETE_HORIZON;
		else
			attrs &= ~SL_BATCH_ATTR_DELETE_HORIZON;
		SlBatchBuilderInit(&b, (SlCompression) codec);
		b.producer_id = it.hdr.producer_id;
		b.producer_epoch = it.hdr.producer_epoch;
		b.base_sequence = it.hdr.base_sequence;
		/* A LogAppendTime batch keeps its base timestamp: readers use max */
		SlBatchBuilderSetBase(&b, attrs,
							  set_horizon || (attrs & SL_BATCH_ATTR_LOG_APPEND_TIME),
							  set_horizon ? horizon : it.hdr.base_timestamp);
		for (int i = 0; i < nkept; i++)
			SlBatchBuilderAddRecord(&b, (int32) (kept[i].offset - it.hdr.base_offset),
									&kept[i]);

		/*
		 * The batch keeps its last offset, as Kafka's cleaner keeps it: an
		 * idempotent producer's last sequence (baseSequence +
		 * lastOffsetDelta) stays what it was, and a consumer moves past the
		 * whole batch even if its last records went
		 */
		b.last_offset_delta = it.hdr.last_offset_delta;
		initStringInfo(&out);
		error = SlBatchBuilderFinish(&b, &out);
		if (error)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not compress a record batch with %s: %s",
							SlCompressionName((SlCompression) codec), error)));
		/*
		 * The records of a LogAppendTime batch all read as its append time
		 * (maxTimestamp), so the builder's maxTimestamp is that time again
		 */
		SlBatchSeal((uint8 *) out.data, out.len, it.hdr.base_offset, -1);
		/* The epoch it was appended in, outside the CRC (replica_log.h) */
		SlStoreInt32((uint8 *) out.data + SL_BATCH_OFFSET_LEADER_EPOCH,
					 it.hdr.partition_leader_epoch);
		row.last_offset = it.hdr.base_offset + b.last_offset_delta;
		row.record_count = b.last_offset_delta + 1;
		write_batch(w, &row, (const uint8 *) out.data, out.len);
		written = out.len;
		pfree(out.data);
		SlBatchBuilderFree(&b);
	}
	SlRecordIterFree(&it);
	pfree(kept);
	return written;
}

/*
 * Rewrite the offsets [from, to) of the partition into a new segment table
 * named name; returns its relid and, in *newest, its newest timestamp.
 */
static Oid
rewrite_segments(CleanerPass *pass, const char *name, int64 from, int64 to,
				 int64 *newest)
{
	SegmentWriter w;
	Oid			relid = SlSegmentCreateTable(name);
	SlLogScanBounds bounds;
	SlLogScan  *scan;
	size_t		len;
	int64		base;
	int64		last;
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
													"streamlog cleaner batch",
													ALLOCSET_DEFAULT_SIZES);

	w.rel = table_open(relid, RowExclusiveLock);
	w.index = index_open(SlSegmentIndexOid(w.rel), RowExclusiveLock);
	w.index_info = BuildIndexInfo(w.index);
	w.newest = -1;
	w.bytes = 0;

	SlLogScanBoundsInit(&bounds);
	bounds.from_offset = from;
	bounds.to_offset = to - 1;
	scan = SlLogScanBegin(pass->topic, pass->partition, &bounds);
	while (SlLogScanPeekBatch(scan, &len, &base, &last))
	{
		MemoryContext oldcxt;
		uint8	   *data;
		size_t		written;

		CHECK_FOR_INTERRUPTS();
		if (base >= to)
			break;
		oldcxt = MemoryContextSwitchTo(batch_cxt);
		data = palloc(len);
		SlLogScanCopyBatch(scan, data);
		written = clean_batch(pass, &w, data, len, SlLogScanBatchAppendTime(scan));
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(batch_cxt);
		throttle(pass, (int64) (len + written));
	}
	SlLogScanEnd(scan);
	MemoryContextDelete(batch_cxt);

	index_close(w.index, RowExclusiveLock);
	table_close(w.rel, RowExclusiveLock);
	*newest = w.newest;
	return relid;
}

/*
 * Swap the catalogue rows of segments [first, last] to the new table: the
 * first segment's row takes it, the others' rows go, and their tables are
 * retired (dropped by a later SlCompactionDropRetired).
 */
static void
swap_segments(SlPartitionKey key, const SlSegment *segments, int first, int last,
			  Oid relid, int64 newest)
{
	Oid			types[5] = {INT4OID, INT4OID, INT4OID, OIDOID, INT8OID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', newest < 0 ? 'n' : ' '};

	values[0] = Int32GetDatum(key.topic_id);
	values[1] = Int32GetDatum(key.partition);
	values[2] = Int32GetDatum(segments[first].seq);
	values[3] = ObjectIdGetDatum(relid);
	values[4] = Int64GetDatum(newest);

	SPI_connect();
	if (SlCatalogQuery("UPDATE streamlog.segment SET relid = $4, max_timestamp = $5 "
					   "WHERE topic_id = $1 AND partition = $2 AND seq = $3",
					   5, types, values, nulls) != 1)
		elog(ERROR, "segment %d of partition %d of topic %d has no catalogue row",
			 segments[first].seq, key.partition, key.topic_id);
	for (int i = first; i <= last; i++)
	{
		values[2] = Int32GetDatum(segments[i].seq);
		values[3] = ObjectIdGetDatum(segments[i].relid);
		if (i > first)
			SlCatalogQuery("DELETE FROM streamlog.segment "
						   "WHERE topic_id = $1 AND partition = $2 AND seq = $3",
						   3, types, values, NULL);
		SlCatalogQuery("INSERT INTO streamlog.retired_segment (relid, topic_id) "
					   "VALUES ($4, $1)", 4, types, values, NULL);
	}
	SPI_finish();
}

/* ---- the pass ---- */

void
SlCompactPartition(const SlTopic *topic, int32 partition, int64 now_ms,
				   bool forced, bool background, SlCompactionResult *result)
{
	SlPartitionKey key = SlMakePartitionKey(topic->topic_id, partition);
	CleanerState st;
	CleanableRange r;
	CleanerPass pass;
	int			nrewrite;
	int64		old_bytes = 0;
	int64		new_bytes = 0;
	bool		horizon_due;
	MemoryContext pass_cxt;
	MemoryContext oldcxt;

	memset(result, 0, sizeof(*result));
	if (!topic->config.compact)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("topic \"%s\" is not compacted", topic->name),
				 errhint("Set its cleanup.policy to \"compact\" or \"compact,delete\" with streamlog.alter_topic().")));
	SlTopicCheckPartition(topic, partition);
	if (!SlCompactionLockPartition(key, background))
	{
		result->busy = true;
		return;
	}

	pass_cxt = AllocSetContextCreate(CurrentMemoryContext, "streamlog cleaner pass",
									 ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(pass_cxt);

	read_state(key, &st);
	cleanable_range(topic, key, now_ms, &st, &r);
	result->cleaned_offset = r.checkpoint;
	horizon_due = st.delete_horizon >= 0 && st.delete_horizon <= now_ms;
	if (r.ncleanable == 0 ||
		(r.checkpoint >= r.end && !horizon_due) ||
		(!forced && !pass_due(topic, now_ms, &st, &r)))
	{
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(pass_cxt);
		return;
	}

	memset(&pass, 0, sizeof(pass));
	pass.topic = topic;
	pass.partition = partition;
	pass.now_ms = now_ms;
	pass.give_way = background;
	pass.target_codec = topic->config.compression;
	pass.next_horizon = -1;
	pass.io_start = GetCurrentTimestamp();
	pass.cxt = pass_cxt;

	/*
	 * The dirty part into the map; the pass ends where the map does.  The
	 * map needs no more room than for one key per dirty offset, which
	 * spares a small partition the whole buffer.
	 */
	{
		double		need = ((double) Max(r.end - r.checkpoint, 0) /
							SL_OFFSET_MAP_LOAD_FACTOR + 2) * SL_OFFSET_MAP_ENTRY_BYTES;
		size_t		budget = (size_t) sl_log_cleaner_dedupe_buffer_size * 1024;

		SlOffsetMapInit(&pass.map, need < (double) budget ? (size_t) need : budget);
	}
	build_offset_map(&pass, r.checkpoint, r.end);
	/* 0: every producer's state counts as expired, none is looked for */
	pass.last_batches = sl_producer_id_expiration_ms > 0 ? producers_last_batches(&r) : NULL;
	pass.log_end = r.end == r.high_watermark ? r.end : -1;
	if (r.checkpoint >= r.end)
		pass.map_end = r.checkpoint;

	/* Segments holding offsets below the map's end, grouped by size */
	nrewrite = 0;
	while (nrewrite < r.ncleanable && r.segments[nrewrite].base_offset < pass.map_end)
		nrewrite++;
	if (r.checkpoint >= r.end)
		nrewrite = r.ncleanable;	/* only tombstones past their horizon */

	/* The aborted transactions the rewrite meets, by first offset */
	if (nrewrite > 0)
	{
		int64		from = Max(r.segments[0].base_offset, r.log_start);
		int			naborted;
		SlAbortedTxn *aborted = SlTxnAbortedInRange(topic->topic_id, partition, from,
													r.segments[nrewrite].base_offset,
													&naborted);

		SlTxnCleanerInit(&pass.txns, aborted, naborted);
	}

	for (int first = 0; first < nrewrite;)
	{
		int			last = first;
		int64		group_bytes = r.sizes[first];
		char		name[NAMEDATALEN];
		Oid			relid;
		int64		newest;

		while (last + 1 < nrewrite &&
			   group_bytes + r.sizes[last + 1] <= pass.topic->config.segment_bytes)
			group_bytes += r.sizes[++last];

		snprintf(name, sizeof(name), "t%d_p%d_s%d_c" INT64_FORMAT,
				 key.topic_id, key.partition, r.segments[first].seq, st.passes + 1);
		relid = rewrite_segments(&pass, name, r.segments[first].base_offset,
								 r.segments[last + 1].base_offset, &newest);
		swap_segments(key, r.segments, first, last, relid, newest);
		old_bytes += group_bytes;
		new_bytes += SlSegmentBytes(relid);
		first = last + 1;
	}

	/* Index entries of aborted transactions whose batches are all gone */
	if (pass.ndropped > 0)
		SlTxnAbortedForget(topic->topic_id, partition, pass.dropped_aborted, pass.ndropped);

	/* Tombstones left in segments this pass did not rewrite keep theirs */
	if (st.delete_horizon > now_ms && nrewrite < r.ncleanable)
		pass.next_horizon = min_horizon(pass.next_horizon, st.delete_horizon);

	result->cleaned = true;
	result->cleaned_offset = Max(pass.map_end, r.checkpoint);
	result->records_removed = pass.records_removed;
	result->bytes_reclaimed = old_bytes - new_bytes;
	write_state(key, result->cleaned_offset, pass.next_horizon,
				result->records_removed, result->bytes_reclaimed);

	SlOffsetMapFree(&pass.map);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(pass_cxt);
}

/* ---- retired tables ---- */

int
SlCompactionDropRetired(void)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	Oid		   *relids;
	uint64		n;
	int			dropped = 0;

	SPI_connect();
	n = SlCatalogQuery("SELECT relid::oid FROM streamlog.retired_segment ORDER BY retired_at",
					   0, NULL, NULL, NULL);
	relids = palloc(sizeof(Oid) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
		relids[i] = (Oid) SlCatalogInt32(i, 1, 0);

	for (uint64 i = 0; i < n; i++)
	{
		char	   *name;

		/* A reader has it open (or is about to): a later round will */
		if (!ConditionalLockRelationOid(relids[i], AccessExclusiveLock))
			continue;
		name = get_rel_name(relids[i]);
		if (name)
			SlCatalogExec(psprintf("DROP TABLE streamlog_data.%s", quote_identifier(name)));
		values[0] = ObjectIdGetDatum(relids[i]);
		SlCatalogQuery("DELETE FROM streamlog.retired_segment WHERE relid = $1",
					   1, types, values, NULL);
		dropped++;
	}
	SPI_finish();
	return dropped;
}

/* ---- progress ---- */

void
SlCompactionGetStatus(const SlTopic *topic, int32 partition, int64 now_ms,
					  SlCompactionStatus *status)
{
	SlPartitionKey key = SlMakePartitionKey(topic->topic_id, partition);
	CleanerState st;
	CleanableRange r;
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(key.topic_id), Int32GetDatum(key.partition)};
	MemoryContext caller = CurrentMemoryContext;
	bool		isnull;

	memset(status, 0, sizeof(*status));
	read_state(key, &st);
	/* min.compaction.lag.ms is left out: the view only reads */
	{
		SlTopic		unlagged = *topic;

		unlagged.config.min_compaction_lag_ms = 0;
		cleanable_range(&unlagged, key, now_ms, &st, &r);
	}
	status->cleaned_offset = r.checkpoint;
	status->dirty_bytes = r.dirty_bytes;
	status->dirty_ratio = dirty_ratio(&r);

	SPI_connect();
	if (SlCatalogQuery("SELECT last_run, passes, records_removed, bytes_reclaimed, last_error "
					   "FROM streamlog.compaction_state WHERE topic_id = $1 AND partition = $2",
					   2, types, values, NULL) > 0)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		status->last_run = isnull ? 0 : DatumGetTimestampTz(d);
		status->passes = SlCatalogInt64(0, 2, 0);
		status->records_removed = SlCatalogInt64(0, 3, 0);
		status->bytes_reclaimed = SlCatalogInt64(0, 4, 0);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull);
		if (!isnull)
			status->last_error = MemoryContextStrdup(caller, TextDatumGetCString(d));
	}
	SPI_finish();
	pfree(r.segments);
	pfree(r.sizes);
}
