/*
 * The live state of each partition, in shared memory.
 *
 * Offsets are handed out at commit time (see log_append.c), so a partition
 * can have several reservations whose transactions are still committing.
 * They sit in a small ring, in offset order; the high watermark advances
 * over the ring's head as soon as the reservations there are released
 * (committed, or abandoned by an abort).  A reader that stays below the high
 * watermark can therefore never skip an offset that becomes visible later
 * (P2), while an open transaction that has only buffered records reserves
 * nothing and holds nobody up (P4).
 *
 * The state is rebuilt from the segments the first time a partition is
 * touched after a start: the next offset follows the last stored batch, and
 * nothing is in flight.
 */
#include "postgres.h"

#include "access/table.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/hsearch.h"
#include "utils/syscache.h"
#include "utils/wait_event.h"

#include "streamlog/guc.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/internal/group_wait.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/segments.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/storage_init.h"
#include "streamlog/storage/wakeups.h"

/* Reservations a partition may have in flight before committers queue up */
#define SL_MAX_INFLIGHT 64

typedef struct SlReservation
{
	int64		start;
	int64		end;
	bool		done;
} SlReservation;

struct SlPartitionState
{
	SlPartitionKey key;			/* hash key: must be first */
	slock_t		mutex;			/* guards everything below */
	bool		loaded;
	int64		next_offset;
	int64		high_watermark;
	int64		log_start_offset;
	Oid			active_relid;
	int32		active_seq;
	int64		active_base;
	int32		ring_head;
	int32		ring_count;
	SlReservation ring[SL_MAX_INFLIGHT];
	ConditionVariable changed;	/* HWM moved, or a ring slot freed */
};

static HTAB *partition_map = NULL;

Size
SlPartitionStateShmemSize(void)
{
	return hash_estimate_size(sl_max_partitions, sizeof(SlPartitionState));
}

void
SlPartitionStateShmemInit(void)
{
	HASHCTL		info;

	info.keysize = sizeof(SlPartitionKey);
	info.entrysize = sizeof(SlPartitionState);
	partition_map = ShmemInitHash("streamlog partitions",
								  sl_max_partitions, sl_max_partitions,
								  &info, HASH_ELEM | HASH_BLOBS);
}

/*
 * Whether an installation of streamlog that shared state belongs to is gone:
 * its database was dropped, or (in our own database) the extension was
 * dropped, taking the streamlog.topic table with it.  Another database's
 * catalog cannot be read from here; its slots wait for one of its own
 * backends, or for a restart.
 */
static bool
installation_is_gone(Oid database, Oid catalog)
{
	if (!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(database)))
		return true;
	return database == MyDatabaseId &&
		!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(catalog));
}

/* Index of key's installation in owners[0..n), or -1 */
static int
owner_index(const SlPartitionKey *owners, int n, const SlPartitionKey *key)
{
	for (int i = 0; i < n; i++)
		if (owners[i].database == key->database && owners[i].catalog == key->catalog)
			return i;
	return -1;
}

/*
 * Release the slots of partitions of installations that are gone (DROP
 * EXTENSION, DROP DATABASE): nobody can use them any more, since their
 * topic ids are not reached through the live catalog.  Returns how many
 * were released.  Called when the map is full, so that dropping the
 * extension needs no hook and costs nothing until the slots are needed.
 */
static int
release_gone_installations(void)
{
	HASH_SEQ_STATUS status;
	SlPartitionState *state;
	SlPartitionKey *owners;		/* database and catalog of each installation */
	bool	   *gone;
	bool		any_gone = false;
	int			nowners = 0;
	int			released = 0;

	owners = palloc(sizeof(SlPartitionKey) * sl_max_partitions);
	LWLockAcquire(sl_shared->partition_map_lock, LW_SHARED);
	hash_seq_init(&status, partition_map);
	while ((state = hash_seq_search(&status)) != NULL)
		if (nowners < sl_max_partitions &&
			owner_index(owners, nowners, &state->key) < 0)
			owners[nowners++] = state->key;
	LWLockRelease(sl_shared->partition_map_lock);

	/* Catalog lookups may fail: none while holding the LWLock */
	gone = palloc(sizeof(bool) * Max(nowners, 1));
	for (int i = 0; i < nowners; i++)
	{
		gone[i] = installation_is_gone(owners[i].database, owners[i].catalog);
		any_gone |= gone[i];
	}

	if (any_gone)
	{
		LWLockAcquire(sl_shared->partition_map_lock, LW_EXCLUSIVE);
		hash_seq_init(&status, partition_map);
		while ((state = hash_seq_search(&status)) != NULL)
		{
			int			i = owner_index(owners, nowners, &state->key);

			if (i >= 0 && gone[i])
			{
				hash_search(partition_map, &state->key, HASH_REMOVE, NULL);
				released++;
			}
		}
		LWLockRelease(sl_shared->partition_map_lock);
	}
	pfree(owners);
	pfree(gone);
	return released;
}

/*
 * Find or make the entry for key; not necessarily loaded.  The map holds
 * at most streamlog.max_partitions entries: it was sized for that many, and
 * growing past it would take shared memory that others count on.
 */
static SlPartitionState *
partition_entry(SlPartitionKey key)
{
	SlPartitionState *state;
	bool		found;

	LWLockAcquire(sl_shared->partition_map_lock, LW_SHARED);
	state = hash_search(partition_map, &key, HASH_FIND, NULL);
	LWLockRelease(sl_shared->partition_map_lock);
	if (state)
		return state;

	for (int attempt = 0;; attempt++)
	{
		LWLockAcquire(sl_shared->partition_map_lock, LW_EXCLUSIVE);
		state = hash_search(partition_map, &key, HASH_FIND, NULL);
		if (state == NULL && hash_get_num_entries(partition_map) < sl_max_partitions)
		{
			state = hash_search(partition_map, &key, HASH_ENTER_NULL, &found);
			if (state && !found)
			{
				SpinLockInit(&state->mutex);
				state->loaded = false;
				ConditionVariableInit(&state->changed);
			}
		}
		LWLockRelease(sl_shared->partition_map_lock);
		if (state != NULL || attempt > 0 || release_gone_installations() == 0)
			break;
	}

	if (state == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many partitions in use: streamlog.max_partitions is %d",
						sl_max_partitions),
				 errhint("Raise streamlog.max_partitions and restart the server.")));
	return state;
}

/* Rebuild a partition's state from its catalog rows and segments */
static void
partition_load(SlPartitionState *state)
{
	SlSegment  *segments;
	int			nsegments;
	SlSegment  *active;
	SlSegmentStats stats;
	int64		next_offset = 0;
	int64		active_base;
	int64		log_start;
	bool		found_data = false;

	segments = SlSegmentList(state->key, &nsegments, &log_start);
	if (nsegments == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("partition %d of topic id %d does not exist",
						state->key.partition, state->key.topic_id)));
	active = &segments[nsegments - 1];

	next_offset = log_start;
	for (int i = nsegments - 1; i >= 0; i--)
	{
		if (segments[i].base_offset > next_offset)
			next_offset = segments[i].base_offset;
		if (!found_data)
		{
			SlSegmentGetStats(segments[i].relid, &stats, false);
			if (!stats.empty)
			{
				found_data = true;
				if (stats.next_offset > next_offset)
					next_offset = stats.next_offset;
			}
		}
	}

	if (active->base_offset >= 0)
		active_base = active->base_offset;
	else
	{
		SlSegmentGetStats(active->relid, &stats, false);
		active_base = stats.empty ? next_offset : stats.first_offset;
	}

	SpinLockAcquire(&state->mutex);
	if (!state->loaded)
	{
		state->next_offset = next_offset;
		state->high_watermark = next_offset;
		state->log_start_offset = log_start;
		state->active_relid = active->relid;
		state->active_seq = active->seq;
		state->active_base = active_base;
			state->ring_head = 0;
		state->ring_count = 0;
		state->loaded = true;
	}
	SpinLockRelease(&state->mutex);
	pfree(segments);
}

SlPartitionState *
SlPartitionStateGet(SlPartitionKey key)
{
	SlPartitionState *state;

	SlCheckPreloaded();
	state = partition_entry(key);
	if (!state->loaded)
		partition_load(state);
	return state;
}

void
SlPartitionStateForget(SlPartitionKey key)
{
	HASH_SEQ_STATUS status;
	SlPartitionState *state;

	LWLockAcquire(sl_shared->partition_map_lock, LW_EXCLUSIVE);
	hash_seq_init(&status, partition_map);
	while ((state = hash_seq_search(&status)) != NULL)
	{
		if (state->key.topic_id == key.topic_id &&
			state->key.database == key.database &&
			state->key.catalog == key.catalog &&
			state->key.partition >= key.partition)
			hash_search(partition_map, &state->key, HASH_REMOVE, NULL);
	}
	LWLockRelease(sl_shared->partition_map_lock);
}

void
SlPartitionStateRead(SlPartitionState *state, SlPartitionSnapshot *snap)
{
	SpinLockAcquire(&state->mutex);
	snap->log_start_offset = state->log_start_offset;
	snap->high_watermark = state->high_watermark;
	snap->next_offset = state->next_offset;
	snap->active_relid = state->active_relid;
	snap->active_seq = state->active_seq;
	snap->active_base = state->active_base;
	SpinLockRelease(&state->mutex);
}

void
SlPartitionGetOffsets(int32 topic_id, int32 partition, SlPartitionOffsets *offsets)
{
	SlPartitionSnapshot snap;

	SlPartitionStateRead(SlPartitionStateGet(SlMakePartitionKey(topic_id, partition)), &snap);
	offsets->log_start_offset = snap.log_start_offset;
	offsets->high_watermark = snap.high_watermark;
}

int64
SlPartitionStateReserve(SlPartitionState *state, int64 count, Oid *relid)
{
	int64		start;
	bool		slept = false;

	Assert(count > 0);
	for (;;)
	{
		SpinLockAcquire(&state->mutex);
		if (state->ring_count < SL_MAX_INFLIGHT)
			break;
		SpinLockRelease(&state->mutex);
		/* Queue behind the committers already in flight */
		ConditionVariableSleep(&state->changed, PG_WAIT_EXTENSION);
		slept = true;
	}
	start = state->next_offset;
	state->next_offset += count;
	state->ring[(state->ring_head + state->ring_count) % SL_MAX_INFLIGHT] =
		(SlReservation) {start, start + count, false};
	state->ring_count++;
	*relid = state->active_relid;
	SpinLockRelease(&state->mutex);

	if (slept)
		ConditionVariableCancelSleep();
	return start;
}

void
SlPartitionStateRelease(SlPartitionState *state, int64 start)
{
	bool		advanced = false;

	SpinLockAcquire(&state->mutex);
	for (int i = 0; i < state->ring_count; i++)
	{
		SlReservation *r = &state->ring[(state->ring_head + i) % SL_MAX_INFLIGHT];

		if (r->start == start)
		{
			r->done = true;
			break;
		}
	}
	while (state->ring_count > 0 && state->ring[state->ring_head].done)
	{
		state->high_watermark = state->ring[state->ring_head].end;
		state->ring_head = (state->ring_head + 1) % SL_MAX_INFLIGHT;
		state->ring_count--;
		advanced = true;
	}
	SpinLockRelease(&state->mutex);

	if (advanced)
	{
		ConditionVariableBroadcast(&state->changed);
		SlWaitNotify(SlWaitKeyForPartition(state->key));
		SlGroupWakeConsumers(state->key);
	}
}

int64
SlPartitionStateSwitchSegment(SlPartitionState *state, Oid relid, int32 seq)
{
	int64		base;

	SpinLockAcquire(&state->mutex);
	state->active_relid = relid;
	state->active_seq = seq;
	state->active_base = base = state->next_offset;
	SpinLockRelease(&state->mutex);
	return base;
}

void
SlPartitionStateSetLogStart(SlPartitionState *state, int64 log_start)
{
	SpinLockAcquire(&state->mutex);
	if (log_start > state->log_start_offset)
		state->log_start_offset = log_start;
	SpinLockRelease(&state->mutex);
}

/*
 * Replication (replica_append.c): a follower appends at the offsets its
 * leader gave, so it reserves exactly where the log ends or not at all.
 */
bool
SlPartitionStateReserveAt(SlPartitionState *state, int64 start, int64 count,
						  Oid *relid, int64 *next_offset)
{
	bool		slept = false;
	bool		reserved = false;

	Assert(count > 0);
	for (;;)
	{
		SpinLockAcquire(&state->mutex);
		if (state->next_offset != start || state->ring_count < SL_MAX_INFLIGHT)
			break;
		SpinLockRelease(&state->mutex);
		ConditionVariableSleep(&state->changed, PG_WAIT_EXTENSION);
		slept = true;
	}
	*next_offset = state->next_offset;
	if (state->next_offset == start)
	{
		state->next_offset += count;
		state->ring[(state->ring_head + state->ring_count) % SL_MAX_INFLIGHT] =
			(SlReservation) {start, start + count, false};
		state->ring_count++;
		*relid = state->active_relid;
		reserved = true;
	}
	SpinLockRelease(&state->mutex);

	if (slept)
		ConditionVariableCancelSleep();
	return reserved;
}

bool
SlPartitionStateUnreserve(SlPartitionState *state, int64 start, int64 end)
{
	bool		done = false;

	SpinLockAcquire(&state->mutex);
	if (state->ring_count > 0 && state->next_offset == end)
	{
		SlReservation *last =
			&state->ring[(state->ring_head + state->ring_count - 1) % SL_MAX_INFLIGHT];

		if (last->start == start && last->end == end && !last->done)
		{
			state->ring_count--;
			state->next_offset = start;
			done = true;
		}
	}
	SpinLockRelease(&state->mutex);
	if (done)
		ConditionVariableBroadcast(&state->changed);
	return done;
}
