/*
 * Idempotent producers (P6): the sequence state of each (partition,
 * producer id), so that a retried batch is stored once and a gap or a
 * reordering is refused, as Kafka's ProducerStateManager does.
 *
 * The state lives in shared memory: the producer's epoch and its last five
 * batches (first and last sequence, base offset), Kafka's
 * max.in.flight.requests.per.connection.  Checks made while a transaction
 * buffers batches also see that transaction's own earlier batches; what it
 * buffered reaches shared memory only when it commits, so an abort leaves
 * no sequence behind that was never stored.  After a restart a partition's
 * state is rebuilt from the producer columns of its newest stored batches.
 *
 * Each producer also has the time of its newest batch or transaction
 * marker and the coordinator epoch of its newest marker, as Kafka's
 * ProducerStateEntry (lastTimestamp, coordinatorEpoch), for
 * DescribeProducers.  Markers change nothing else: they have no sequence.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/control_records.h"
#include "streamlog/protocol/records.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/internal/catalog.h"
#include "streamlog/storage/internal/producers.h"
#include "streamlog/storage/internal/segments.h"
#include "streamlog/storage/internal/xact.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/storage_init.h"

#define SL_PRODUCER_BATCHES 5

/* Segment rows (batches, or pieces of large ones) looked at per partition
 * when rebuilding after a start */
#define REBUILD_SCAN_LIMIT 10000

typedef struct ProducerKey
{
	SlPartitionKey partition;
	int64		producer_id;
} ProducerKey;

typedef struct ProducerBatch
{
	int32		first_seq;
	int32		last_seq;
	int64		base_offset;
} ProducerBatch;

typedef struct ProducerEntry
{
	ProducerKey key;			/* hash key: must be first */
	int16		epoch;
	int			nbatches;		/* newest last */
	ProducerBatch batches[SL_PRODUCER_BATCHES];
	int64		last_timestamp; /* of its newest batch or marker; -1 */
	int32		coordinator_epoch;	/* of its newest marker; -1 */
} ProducerEntry;

/* A batch this transaction buffered, for shared memory at commit */
typedef struct PendingNote
{
	SlPendingWork work;			/* first: kept in pending_notes */
	ProducerKey key;
	int16		epoch;
	int32		first_seq;
	int32		last_seq;
	int64	   *base_offset;	/* filled in by the log at commit */
	int64		timestamp;		/* its max timestamp; -1: its append time */
	bool		marker;			/* a transaction marker: no sequence */
	int32		coordinator_epoch;	/* a marker's */
} PendingNote;

/* Partitions whose producers were rebuilt since the start */
typedef struct RebuiltEntry
{
	SlPartitionKey key;
} RebuiltEntry;

static HTAB *producers = NULL;
static HTAB *rebuilt = NULL;
static LWLock *producers_lock = NULL;
static List *pending_notes = NIL;	/* in TopTransactionContext */

Size
SlProducersShmemSize(void)
{
	return add_size(hash_estimate_size(sl_max_producer_states, sizeof(ProducerEntry)),
					hash_estimate_size(sl_max_partitions, sizeof(RebuiltEntry)));
}

void
SlProducersShmemInit(void)
{
	HASHCTL		info;

	info.keysize = sizeof(ProducerKey);
	info.entrysize = sizeof(ProducerEntry);
	producers = ShmemInitHash("streamlog producers", sl_max_producer_states,
							  sl_max_producer_states, &info, HASH_ELEM | HASH_BLOBS);
	info.keysize = sizeof(SlPartitionKey);
	info.entrysize = sizeof(RebuiltEntry);
	rebuilt = ShmemInitHash("streamlog producer partitions", sl_max_partitions,
							sl_max_partitions, &info, HASH_ELEM | HASH_BLOBS);
	producers_lock = &(GetNamedLWLockTranche("streamlog"))[1].lock;
}

static ProducerKey
make_key(SlPartitionKey partition, int64 producer_id)
{
	ProducerKey key;

	memset(&key, 0, sizeof(key));
	key.partition = partition;
	key.producer_id = producer_id;
	return key;
}

/* Remember a stored batch in entry (oldest goes when full) */
static void
entry_add_batch(ProducerEntry *entry, int16 epoch, int32 first_seq, int32 last_seq,
				int64 base_offset)
{
	if (epoch != entry->epoch)
	{
		entry->epoch = epoch;
		entry->nbatches = 0;
	}
	if (entry->nbatches == SL_PRODUCER_BATCHES)
	{
		memmove(&entry->batches[0], &entry->batches[1],
				sizeof(ProducerBatch) * (SL_PRODUCER_BATCHES - 1));
		entry->nbatches--;
	}
	entry->batches[entry->nbatches++] = (ProducerBatch) {first_seq, last_seq, base_offset};
}

/* A stored batch of an idempotent producer, as the rebuild reads it */
typedef struct StoredBatch
{
	int64		producer_id;
	int16		epoch;
	int32		first_seq;		/* -1: a transaction marker */
	int64		base_offset;
	int64		last_offset;
	int64		timestamp;		/* newest record's, else its append time */
	int32		coordinator_epoch;	/* a marker's, -1 if unreadable */
} StoredBatch;

/* The coordinator epoch a stored marker carries (one piece: it is small) */
static int32
marker_coordinator_epoch(TupleTableSlot *slot)
{
	bytea	   *data;
	SlRecordIter it;
	SlRecord	rec;
	int32		epoch = -1;

	slot_getallattrs(slot);
	data = DatumGetByteaPP(slot->tts_values[Anum_segment_batch - 1]);
	if (SlRecordIterInit(&it, (const uint8 *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data),
						 false, 1024 * 1024) != NULL)
		return -1;
	if (!(it.hdr.attributes & SL_BATCH_ATTR_CONTROL) || !SlRecordIterNext(&it, &rec) ||
		!SlControlValueDecode(rec.value, rec.value_len, &epoch))
		epoch = -1;
	SlRecordIterFree(&it);
	return epoch;
}

/*
 * Read the newest stored batches of idempotent producers in a partition,
 * newest first, going back through the segments (a roll leaves the active
 * segment empty, and the producers' last batches in the one before), up to
 * REBUILD_SCAN_LIMIT rows in all.  Returns how many it put in batches.
 */
static int
read_newest_batches(SlPartitionKey key, StoredBatch *batches)
{
	SlSegment  *segments;
	int			nsegments;
	int64		log_start;
	int			seen = 0;
	int			count = 0;
	Snapshot	snapshot;

	segments = SlSegmentList(key, &nsegments, &log_start);
	/* after the list: it may name tables newer than an older snapshot sees */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	for (int i = nsegments - 1; i >= 0 && seen < REBUILD_SCAN_LIMIT; i--)
	{
		Relation	rel = try_relation_open(segments[i].relid, AccessShareLock);
		Relation	index;
		IndexScanDesc scan;
		TupleTableSlot *slot;

		if (rel == NULL)
			continue;			/* dropped since the list was read */
		index = index_open(SlSegmentIndexOid(rel), AccessShareLock);
		slot = table_slot_create(rel, NULL);
		scan = index_beginscan(rel, index, snapshot, 0, 0);
		index_rescan(scan, NULL, 0, NULL, 0);
		while (seen < REBUILD_SCAN_LIMIT &&
			   index_getnext_slot(scan, BackwardScanDirection, slot))
		{
			StoredBatch *batch = &batches[count];

			seen++;
			slot_getsomeattrs(slot, Anum_segment_chunk);
			batch->producer_id = DatumGetInt64(slot->tts_values[Anum_segment_producer_id - 1]);
			/* A batch counts once: by its first piece (catalog.h) */
			if (batch->producer_id < 0 ||
				DatumGetInt32(slot->tts_values[Anum_segment_chunk - 1]) != 0)
				continue;
			batch->epoch = DatumGetInt16(slot->tts_values[Anum_segment_producer_epoch - 1]);
			batch->first_seq = DatumGetInt32(slot->tts_values[Anum_segment_base_sequence - 1]);
			batch->base_offset = DatumGetInt64(slot->tts_values[Anum_segment_base_offset - 1]);
			batch->last_offset = DatumGetInt64(slot->tts_values[Anum_segment_last_offset - 1]);
			batch->timestamp = DatumGetInt64(slot->tts_values[Anum_segment_max_timestamp - 1]);
			if (batch->timestamp < 0)
				batch->timestamp = DatumGetInt64(slot->tts_values[Anum_segment_append_time - 1]);
			/* A transaction marker has no sequence: the producer's go on */
			batch->coordinator_epoch = batch->first_seq < 0 ? marker_coordinator_epoch(slot) : -1;
			count++;
		}
		index_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		index_close(index, AccessShareLock);
		relation_close(rel, AccessShareLock);
	}
	UnregisterSnapshot(snapshot);
	pfree(segments);
	return count;
}

/*
 * Rebuild the producer states of a partition from its newest stored
 * batches, once per start.  Batches are read newest first; older ones are
 * put in front of what is already known, which may include batches
 * committed since they were read (those are not added twice).
 */
static void
rebuild_partition(SlPartitionKey key)
{
	StoredBatch *batches;
	int			count;
	bool		found;

	LWLockAcquire(producers_lock, LW_SHARED);
	found = hash_search(rebuilt, &key, HASH_FIND, NULL) != NULL;
	LWLockRelease(producers_lock);
	if (found)
		return;

	batches = palloc(sizeof(StoredBatch) * REBUILD_SCAN_LIMIT);
	count = read_newest_batches(key, batches);

	LWLockAcquire(producers_lock, LW_EXCLUSIVE);
	if (hash_search(rebuilt, &key, HASH_FIND, NULL) == NULL)
	{
		/*
		 * Data batches first, as before markers were read: a marker
		 * changes nothing of a producer's epoch and sequences
		 */
		for (int i = 0; i < count; i++)
		{
			StoredBatch *batch = &batches[i];
			ProducerKey pkey = make_key(key, batch->producer_id);
			ProducerEntry *entry;
			bool		entry_found;

			if (batch->first_seq < 0)
				continue;
			entry = hash_search(producers, &pkey, HASH_ENTER_NULL, &entry_found);
			if (entry == NULL)
				break;			/* full: the rest stays unknown */
			if (!entry_found)
			{
				entry->epoch = batch->epoch;
				entry->nbatches = 0;
				entry->last_timestamp = -1;
				entry->coordinator_epoch = -1;
			}
			entry->last_timestamp = Max(entry->last_timestamp, batch->timestamp);
			/* Older than what we have: goes in front, if there is room */
			if (batch->epoch == entry->epoch && entry->nbatches < SL_PRODUCER_BATCHES &&
				(entry->nbatches == 0 || batch->base_offset < entry->batches[0].base_offset))
			{
				memmove(&entry->batches[1], &entry->batches[0],
						sizeof(ProducerBatch) * entry->nbatches);
				entry->batches[0] = (ProducerBatch) {
					batch->first_seq,
					batch->first_seq + (int32) (batch->last_offset - batch->base_offset),
					batch->base_offset
				};
				entry->nbatches++;
			}
		}
		/*
		 * Then markers: the highest coordinator epoch is the newest
		 * coordinator's (an operator's abort writes -1, SlProducerMarkerFenced)
		 */
		for (int i = 0; i < count; i++)
		{
			StoredBatch *batch = &batches[i];
			ProducerKey pkey = make_key(key, batch->producer_id);
			ProducerEntry *entry;
			bool		entry_found;

			if (batch->first_seq >= 0)
				continue;
			entry = hash_search(producers, &pkey, HASH_ENTER_NULL, &entry_found);
			if (entry == NULL)
				break;
			if (!entry_found)
			{
				entry->epoch = batch->epoch;
				entry->nbatches = 0;
				entry->last_timestamp = -1;
				entry->coordinator_epoch = batch->coordinator_epoch;
			}
			else
				entry->coordinator_epoch = Max(entry->coordinator_epoch,
											   batch->coordinator_epoch);
			entry->last_timestamp = Max(entry->last_timestamp, batch->timestamp);
		}
		hash_search(rebuilt, &key, HASH_ENTER_NULL, NULL);
	}
	LWLockRelease(producers_lock);
	pfree(batches);
}

static SlSequenceCheck
check_sequence(SlPartitionKey partition, int64 producer_id, int16 epoch,
			   int32 first_seq, int32 last_seq, int64 *duplicate_offset)
{
	ProducerKey key = make_key(partition, producer_id);
	ProducerEntry state;
	ProducerEntry *shared;
	ListCell   *lc;
	bool		known = false;

	rebuild_partition(partition);

	LWLockAcquire(producers_lock, LW_SHARED);
	shared = hash_search(producers, &key, HASH_FIND, NULL);
	if (shared)
	{
		state = *shared;
		known = true;
	}
	LWLockRelease(producers_lock);

	/* This transaction's own batches come after what is shared */
	foreach(lc, pending_notes)
	{
		PendingNote *note = lfirst(lc);

		if (note->marker || memcmp(&note->key, &key, sizeof(key)) != 0)
			continue;
		if (!known)
		{
			state.epoch = note->epoch;
			state.nbatches = 0;
			known = true;
		}
		entry_add_batch(&state, note->epoch, note->first_seq, note->last_seq, -1);
	}

	/*
	 * A producer this partition has no state for may be one whose batches
	 * retention removed, or older than a rebuild looks back: like Kafka
	 * (KIP-360) take any sequence from it, since refusing one is fatal to
	 * the client.  A retry of such a producer's lost batch is not
	 * recognised, as in Kafka.
	 */
	if (!known)
		return SL_SEQUENCE_OK;
	if (epoch < state.epoch)
		return SL_SEQUENCE_FENCED;
	if (epoch > state.epoch)
		return first_seq == 0 ? SL_SEQUENCE_OK : SL_SEQUENCE_OUT_OF_ORDER;
	for (int i = 0; i < state.nbatches; i++)
	{
		if (state.batches[i].first_seq == first_seq && state.batches[i].last_seq == last_seq)
		{
			*duplicate_offset = state.batches[i].base_offset;
			return SL_SEQUENCE_DUPLICATE;
		}
	}
	if (state.nbatches == 0)
		return first_seq == 0 ? SL_SEQUENCE_OK : SL_SEQUENCE_OUT_OF_ORDER;
	{
		int32		last = state.batches[state.nbatches - 1].last_seq;
		int32		expected = last == PG_INT32_MAX ? 0 : last + 1;

		return first_seq == expected ? SL_SEQUENCE_OK : SL_SEQUENCE_OUT_OF_ORDER;
	}
}

SlSequenceCheck
SlProducerCheckBatch(const SlTopic *topic, int32 partition, const SlBatchHeader *hdr,
					 int64 *duplicate_offset)
{
	if (hdr->producer_id < 0)
		return SL_SEQUENCE_OK;
	return check_sequence(SlMakePartitionKey(topic->topic_id, partition),
						  hdr->producer_id, hdr->producer_epoch, hdr->base_sequence,
						  hdr->base_sequence + hdr->last_offset_delta, duplicate_offset);
}

bool
SlProducerNewestBatch(const SlTopic *topic, int32 partition, int64 producer_id,
					  int16 *epoch, int32 *last_seq, int64 *end_offset)
{
	SlPartitionKey pkey = SlMakePartitionKey(topic->topic_id, partition);
	ProducerKey key = make_key(pkey, producer_id);
	ProducerEntry *shared;
	bool		known = false;

	rebuild_partition(pkey);
	LWLockAcquire(producers_lock, LW_SHARED);
	shared = hash_search(producers, &key, HASH_FIND, NULL);
	if (shared && shared->nbatches > 0)
	{
		ProducerBatch *newest = &shared->batches[shared->nbatches - 1];

		*epoch = shared->epoch;
		*last_seq = newest->last_seq;
		*end_offset = newest->base_offset < 0 ? -1 :
			newest->base_offset + (newest->last_seq - newest->first_seq) + 1;
		known = true;
	}
	LWLockRelease(producers_lock);
	return known;
}

bool
SlProducerMarkerFenced(const SlTopic *topic, int32 partition, int64 producer_id,
					   int16 producer_epoch, int32 coordinator_epoch,
					   int16 *known_epoch, int32 *known_coordinator_epoch)
{
	SlPartitionKey pkey = SlMakePartitionKey(topic->topic_id, partition);
	ProducerKey key = make_key(pkey, producer_id);
	ProducerEntry *shared;
	bool		fenced = false;

	if (coordinator_epoch < 0)
		return false;
	rebuild_partition(pkey);
	LWLockAcquire(producers_lock, LW_SHARED);
	shared = hash_search(producers, &key, HASH_FIND, NULL);
	if (shared != NULL)
	{
		*known_epoch = shared->epoch;
		*known_coordinator_epoch = shared->coordinator_epoch;
		fenced = producer_epoch < shared->epoch ||
			coordinator_epoch < shared->coordinator_epoch;
	}
	LWLockRelease(producers_lock);
	return fenced;
}

/*
 * Every producer the partition knows (DescribeProducers): a scan of the
 * whole table under the shared lock, which only admin requests make
 */
SlProducerState *
SlProducersOfPartition(const SlTopic *topic, int32 partition, int *count)
{
	SlPartitionKey pkey = SlMakePartitionKey(topic->topic_id, partition);
	HASH_SEQ_STATUS scan;
	ProducerEntry *entry;
	SlProducerState *out;
	int			n = 0;
	int			cap = 8;

	rebuild_partition(pkey);
	out = palloc(sizeof(SlProducerState) * cap);
	LWLockAcquire(producers_lock, LW_SHARED);
	hash_seq_init(&scan, producers);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (memcmp(&entry->key.partition, &pkey, sizeof(pkey)) != 0)
			continue;
		if (n == cap)
		{
			cap *= 2;
			out = repalloc(out, sizeof(SlProducerState) * cap);
		}
		out[n].producer_id = entry->key.producer_id;
		out[n].producer_epoch = entry->epoch;
		out[n].last_sequence = entry->nbatches > 0 ?
			entry->batches[entry->nbatches - 1].last_seq : -1;
		out[n].last_timestamp = entry->last_timestamp;
		out[n].coordinator_epoch = entry->coordinator_epoch;
		n++;
	}
	LWLockRelease(producers_lock);
	*count = n;
	return out;
}

void
SlProducerNoteBatch(SlPartitionKey partition, int64 producer_id, int16 epoch,
					int32 first_seq, int32 last_seq, int64 *base_offset, int64 timestamp)
{
	PendingNote *note = SlPendingWorkAdd(&pending_notes, sizeof(PendingNote));

	note->key = make_key(partition, producer_id);
	note->epoch = epoch;
	note->first_seq = first_seq;
	note->last_seq = last_seq;
	note->base_offset = base_offset;
	note->timestamp = timestamp;
	note->marker = false;
	note->coordinator_epoch = -1;
}

void
SlProducerNoteMarker(SlPartitionKey partition, int64 producer_id, int16 epoch,
					 int32 coordinator_epoch, int64 timestamp)
{
	PendingNote *note = SlPendingWorkAdd(&pending_notes, sizeof(PendingNote));

	note->key = make_key(partition, producer_id);
	note->epoch = epoch;
	note->first_seq = note->last_seq = -1;
	note->base_offset = NULL;
	note->timestamp = timestamp;
	note->marker = true;
	note->coordinator_epoch = coordinator_epoch;
}

/*
 * At commit, the buffered batches are stored: publish their sequences,
 * before log_append.c moves the high watermark past them (see xact.c)
 */
void
SlProducersXactEvent(XactEvent event)
{
	ListCell   *lc;

	if (pending_notes == NIL)
		return;
	if (event == XACT_EVENT_COMMIT)
	{
		int64		now_ms = SlTimestampToKafka(GetCurrentTimestamp());

		LWLockAcquire(producers_lock, LW_EXCLUSIVE);
		foreach(lc, pending_notes)
		{
			PendingNote *note = lfirst(lc);
			ProducerEntry *entry;
			bool		found;

			entry = hash_search(producers, &note->key, HASH_ENTER_NULL, &found);
			if (entry == NULL)
				continue;		/* full: this producer loses dedup, not data */
			if (!found)
			{
				entry->epoch = note->epoch;
				entry->nbatches = 0;
				entry->coordinator_epoch = -1;
			}
			entry->last_timestamp = note->timestamp >= 0 ? note->timestamp : now_ms;
			if (note->marker)
			{
				entry->coordinator_epoch = Max(entry->coordinator_epoch,
											   note->coordinator_epoch);
				continue;
			}
			entry_add_batch(entry, note->epoch, note->first_seq, note->last_seq,
							note->base_offset ? *note->base_offset : -1);
		}
		LWLockRelease(producers_lock);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		pending_notes = NIL;
}

/*
 * A subtransaction that aborts took its buffered batches with it (a produce
 * request that failed alone): forget their sequences, or a retry would be
 * taken for a duplicate of a batch never stored.
 */
void
SlProducersSubXactAbort(SubTransactionId subid)
{
	SlPendingWorkAbortSub(&pending_notes, subid, NULL);
}

/*
 * A replica truncated its log (replica_truncate.c): forget every producer
 * state of the partition, so that the next check rebuilds it from the
 * batches that are left.  A retried batch the truncation removed is then
 * stored again instead of being answered as a duplicate of nothing.
 */
void
SlProducersForgetPartition(SlPartitionKey key)
{
	HASH_SEQ_STATUS status;
	ProducerEntry *entry;

	LWLockAcquire(producers_lock, LW_EXCLUSIVE);
	hash_seq_init(&status, producers);
	while ((entry = hash_seq_search(&status)) != NULL)
		if (memcmp(&entry->key.partition, &key, sizeof(key)) == 0)
			hash_search(producers, &entry->key, HASH_REMOVE, NULL);
	hash_search(rebuilt, &key, HASH_REMOVE, NULL);
	LWLockRelease(producers_lock);
}
