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
 *
 * On a cluster, the committed log end and the high watermark part: a
 * partition with replicas has its high watermark where every member of its
 * ISR holds the log (replica_view.c has the rules, replica_progress.c the
 * reports that move it), and readers read below that.  The view of the
 * partition's leadership that decides it is refreshed from the catalog
 * whenever the catalog generation moved since it was read, so that a
 * committed leader or ISR change reaches the high watermark without
 * waiting for the next report.  A node of its own, and a partition without
 * other replicas, keep the high watermark at the log end, as before.
 *
 * A hot standby appends nothing itself: its segments grow by WAL replay,
 * which knows nothing of this state.  There the state is read again from
 * the segments at every use, so that readers see what was replayed, and a
 * state read during recovery is read once more after promotion, before
 * the promoted server hands out its first offset.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/hsearch.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "streamlog/guc.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/internal/group_wait.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/replica_view.h"
#include "streamlog/storage/internal/segments.h"
#include "streamlog/storage/internal/txn.h"
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
	bool		replica;		/* a follower's append (SlPartitionStateReserveAt) */
} SlReservation;

struct SlPartitionState
{
	SlPartitionKey key;			/* hash key: must be first */
	slock_t		mutex;			/* guards everything below */
	bool		loaded;
	bool		loaded_in_recovery; /* from a standby's segments: stale */
	int64		next_offset;
	int64		log_end;		/* end of the committed reservations */
	int64		high_watermark; /* what readers get: log_end unless replicated */
	int64		log_start_offset;
	Oid			active_relid;
	int32		active_seq;
	int64		active_base;
	int32		ring_head;
	int32		ring_count;
	SlReservation ring[SL_MAX_INFLIGHT];
	ConditionVariable changed;	/* HWM moved, or a ring slot freed */
	/* catalog generation the view's leadership was read at; 0 never */
	pg_atomic_uint64 view_generation;
	SlReplicaView view;			/* guarded by mutex */
	int			truncating_pid; /* a truncation's backend, or 0 (below) */
	/*
	 * The last stable offset without a query (transactions.h, see
	 * SlPartitionStateReadTxn): an upper bound of the partition's open
	 * transactions, and whether it may have aborted ones; both guarded by
	 * mutex, meaningless unless txn_known.
	 */
	bool		txn_known;
	int32		open_txns;
	bool		may_have_aborted;
	pg_atomic_uint64 lso_queries;	/* LSOs that needed the query */
	pg_atomic_uint64 lso_skipped;	/* LSOs that did without */
	int32		led_epoch;		/* newest epoch this node led it in, -1 none
								 * (SlPartitionStateLeadAt) */
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
				state->loaded_in_recovery = false;
				state->truncating_pid = 0;
				state->txn_known = false;
				state->open_txns = 0;
				state->may_have_aborted = true;
				pg_atomic_init_u64(&state->lso_queries, 0);
				pg_atomic_init_u64(&state->lso_skipped, 0);
				state->led_epoch = -1;
				ConditionVariableInit(&state->changed);
				pg_atomic_init_u64(&state->view_generation, 0);
				SlReplicaViewInit(&state->view);
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

/* Is this node part of a cluster (streamlog.controller_quorum_voters)? */
static bool
in_cluster(void)
{
	return SlQuorumVotersGet()->n > 0;
}

static int64
now_ms(void)
{
	return SlTimestampToKafka(GetCurrentTimestamp());
}

static void
leadership_from(const SlPartitionLeadership *l, SlReplicaLeadership *out)
{
	out->leader = l->leader;
	out->leader_epoch = l->leader_epoch;
	out->partition_epoch = l->partition_epoch;
	out->nreplicas = l->nreplicas;
	out->replicas = l->replicas;
	out->nisr = l->nisr;
	out->isr = l->isr;
}

/*
 * The leadership the catalog gives key's partition; false if it has none
 * (yet: a partition whose row the catalog sync has not written)
 */
static bool
catalog_leadership(SlPartitionKey key, SlReplicaLeadership *out)
{
	const SlTopic *topic = SlTopicLookupById(key.topic_id);
	const SlPartitionLeadership *l;

	if (topic == NULL || topic->partitions == NULL ||
		key.partition >= topic->partition_count)
		return false;
	l = &topic->partitions[key.partition];
	if (l->leader == SL_NO_LEADER && l->nreplicas == 0)
		return false;
	leadership_from(l, out);
	return true;
}

/* Wake whoever waits for the high watermark of state to move */
static void
high_watermark_moved(SlPartitionState *state)
{
	ConditionVariableBroadcast(&state->changed);
	SlWaitNotify(SlWaitKeyForPartition(state->key));
	SlGroupWakeConsumers(state->key);
}

/*
 * Rebuild a partition's state from its catalog rows and segments.  On a
 * standby (in_recovery) a state loaded before is refreshed, never moved
 * backwards by a reader whose snapshot is older than another's; a state
 * loaded during recovery is replaced once recovery has ended.
 */
static void
partition_load(SlPartitionState *state, bool in_recovery)
{
	SlSegment  *segments;
	int			nsegments;
	SlSegment  *active;
	SlSegmentStats stats;
	int64		next_offset = 0;
	int64		active_base;
	int64		log_start;
	bool		found_data = false;
	uint64		generation = pg_atomic_read_u64(&sl_shared->catalog_generation);
	SlReplicaLeadership leadership;
	bool		replicated = in_cluster() && catalog_leadership(state->key, &leadership);
	int32		open_txns = 0;
	bool		any_aborted = true;

	segments = SlSegmentList(state->key, &nsegments, &log_start);
	/*
	 * Counted before the state is loaded: whatever opens a transaction
	 * after that finds it loaded and counts itself (txn_index.c).  A
	 * standby's tables grow by replay, which counts nothing: there the LSO
	 * is always queried.
	 */
	if (!in_recovery)
		SlTxnCountForLoad(state->key.topic_id, state->key.partition, &open_txns,
						  &any_aborted);
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
	if (state->loaded && state->loaded_in_recovery && in_recovery)
	{
		if (next_offset > state->next_offset)
			state->next_offset = state->log_end = state->high_watermark = next_offset;
		if (log_start > state->log_start_offset)
			state->log_start_offset = log_start;
		if (active->seq >= state->active_seq)
		{
			state->active_relid = active->relid;
			state->active_seq = active->seq;
			state->active_base = active_base;
		}
	}
	else if (!state->loaded || state->loaded_in_recovery)
	{
		state->next_offset = next_offset;
		state->log_end = next_offset;
		state->high_watermark = next_offset;
		state->log_start_offset = log_start;
		if (replicated)
		{
			/*
			 * What the followers held before the start is not known: until
			 * they report, readers of a replicated partition get no more
			 * than the log start (Kafka keeps a checkpoint of it; a stale
			 * one is as good).  Without other members it is the log end.
			 */
			SlReplicaViewSetLeadership(&state->view, sl_node_id, &leadership,
									   next_offset, now_ms());
			state->high_watermark = SlReplicaViewHighWatermark(&state->view, next_offset,
															   log_start);
		}
		state->active_relid = active->relid;
		state->active_seq = active->seq;
		state->active_base = active_base;
		state->ring_head = 0;
		state->ring_count = 0;
		state->txn_known = !in_recovery;
		state->open_txns = open_txns;
		state->may_have_aborted = any_aborted;
		state->loaded_in_recovery = in_recovery;
		state->loaded = true;
	}
	SpinLockRelease(&state->mutex);
	pg_atomic_write_u64(&state->view_generation, generation);
	pfree(segments);
}

/*
 * The catalog changed since state's leadership was read: read it again.
 * Cheap when nothing changed (an atomic read); one catalog lookup per
 * partition and change otherwise, by whichever process comes first.
 */
static void
refresh_leadership(SlPartitionState *state)
{
	uint64		generation = pg_atomic_read_u64(&sl_shared->catalog_generation);
	SlReplicaLeadership leadership;

	if (pg_atomic_read_u64(&state->view_generation) == generation)
		return;
	/*
	 * A partition without a row yet gets one in a commit that moves the
	 * generation again: no need to look before that
	 */
	if (catalog_leadership(state->key, &leadership))
		SlPartitionStateSetLeadership(state, &leadership);
	pg_atomic_write_u64(&state->view_generation, generation);
}

SlPartitionState *
SlPartitionStateFind(SlPartitionKey key)
{
	SlPartitionState *state;

	LWLockAcquire(sl_shared->partition_map_lock, LW_SHARED);
	state = hash_search(partition_map, &key, HASH_FIND, NULL);
	LWLockRelease(sl_shared->partition_map_lock);
	return state != NULL && state->loaded ? state : NULL;
}

SlPartitionState *
SlPartitionStateGet(SlPartitionKey key)
{
	SlPartitionState *state;

	SlCheckPreloaded();
	state = partition_entry(key);
	if (!state->loaded || state->loaded_in_recovery)
		partition_load(state, RecoveryInProgress());
	else if (in_cluster())
		refresh_leadership(state);
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
	snap->log_end = state->log_end;
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
	offsets->log_end_offset = snap.log_end;
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
		if (state->ring_count < SL_MAX_INFLIGHT &&
			(state->truncating_pid == 0 || state->truncating_pid == MyProcPid))
			break;
		SpinLockRelease(&state->mutex);
		/* Queue behind the committers already in flight */
		ConditionVariableSleep(&state->changed, PG_WAIT_EXTENSION);
		slept = true;
	}
	start = state->next_offset;
	state->next_offset += count;
	state->ring[(state->ring_head + state->ring_count) % SL_MAX_INFLIGHT] =
		(SlReservation) {start, start + count, false, false};
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
	bool		hw_moved = false;

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
		state->log_end = state->ring[state->ring_head].end;
		state->ring_head = (state->ring_head + 1) % SL_MAX_INFLIGHT;
		state->ring_count--;
		advanced = true;
	}
	if (advanced)
	{
		int64		hw = SlReplicaViewHighWatermark(&state->view, state->log_end,
													state->high_watermark);

		hw_moved = hw != state->high_watermark;
		state->high_watermark = hw;
	}
	SpinLockRelease(&state->mutex);

	if (hw_moved)
		high_watermark_moved(state);
	else if (advanced)
		ConditionVariableBroadcast(&state->changed);	/* a ring slot freed */
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

/* Replication: the view of the partition's leadership and followers */

int64
SlPartitionStateUpdateView(SlPartitionState *state, SlReplicaViewUpdate update, void *arg)
{
	int64		hw;
	bool		moved;

	SpinLockAcquire(&state->mutex);
	update(&state->view, state->log_end, arg);
	hw = SlReplicaViewHighWatermark(&state->view, state->log_end, state->high_watermark);
	moved = hw != state->high_watermark;
	state->high_watermark = hw;
	SpinLockRelease(&state->mutex);
	if (moved)
		high_watermark_moved(state);
	return hw;
}

void
SlPartitionStateReadView(SlPartitionState *state, SlReplicaView *view,
						 SlPartitionSnapshot *snap)
{
	SpinLockAcquire(&state->mutex);
	*view = state->view;
	SpinLockRelease(&state->mutex);
	SlPartitionStateRead(state, snap);
}

typedef struct SetLeadershipArg
{
	const SlReplicaLeadership *leadership;
	int64		now_ms;
	bool		lost_leadership;	/* led before, not in this epoch now */
} SetLeadershipArg;

static void
set_leadership(SlReplicaView *view, int64 log_end, void *arg)
{
	SetLeadershipArg *a = arg;
	SlReplicaRole role = view->role;
	int32		epoch = view->leader_epoch;

	if (SlReplicaViewSetLeadership(view, sl_node_id, a->leadership, log_end, a->now_ms))
		a->lost_leadership = role == SL_ROLE_LEADER &&
			(view->role != SL_ROLE_LEADER || view->leader_epoch != epoch);
}

void
SlPartitionStateSetLeadership(SlPartitionState *state, const SlReplicaLeadership *leadership)
{
	SetLeadershipArg arg = {leadership, now_ms(), false};

	if (!in_cluster())
		return;
	SlPartitionStateUpdateView(state, set_leadership, &arg);
	/* what waits for this leader's high watermark learns it is deposed */
	if (arg.lost_leadership)
		high_watermark_moved(state);
}

void
SlPartitionStateNoteLeadership(SlPartitionState *state, const SlPartitionLeadership *l)
{
	SlReplicaLeadership leadership;

	if (l == NULL || (l->leader == SL_NO_LEADER && l->nreplicas == 0))
		return;
	leadership_from(l, &leadership);
	SlPartitionStateSetLeadership(state, &leadership);
}

int
SlPartitionStateListLoaded(SlPartitionKey *keys, int max)
{
	HASH_SEQ_STATUS status;
	SlPartitionState *state;
	int			n = 0;

	LWLockAcquire(sl_shared->partition_map_lock, LW_SHARED);
	hash_seq_init(&status, partition_map);
	while ((state = hash_seq_search(&status)) != NULL)
	{
		if (n < max && state->loaded && state->key.database == MyDatabaseId)
			keys[n++] = state->key;
	}
	LWLockRelease(sl_shared->partition_map_lock);
	return n;
}

/*
 * Whether this node led the partition in followed_epoch or later: then a
 * batch its leader of followed_epoch sent comes too late (under the mutex)
 */
static bool
led_since(SlPartitionState *state, int32 followed_epoch)
{
	return state->led_epoch >= 0 && state->led_epoch >= followed_epoch;
}

/*
 * A leader's door (SlPartitionLeaderReady), leading in epoch: from now on
 * no follower append made under a leadership of epoch or older may start
 * (SlPartitionStateReserveAt refuses it), and false while one made before
 * is still in flight.  Kafka stops a partition's fetcher before it makes
 * the partition leader; here the apply worker learns of the new leadership
 * only from its next catalog read, and one of its transactions may have
 * checked the old leadership and reserved already.  Its batches, and the
 * producer sequences they carry, must be in place before the new leader
 * checks a producer's batch against them, or a retry of a batch it is
 * applying would be stored twice.
 */
bool
SlPartitionStateLeadAt(SlPartitionState *state, int32 epoch)
{
	bool		ready = true;

	SpinLockAcquire(&state->mutex);
	if (epoch > state->led_epoch)
		state->led_epoch = epoch;
	for (int i = 0; i < state->ring_count; i++)
	{
		SlReservation *r = &state->ring[(state->ring_head + i) % SL_MAX_INFLIGHT];

		if (r->replica && !r->done)
			ready = false;
	}
	SpinLockRelease(&state->mutex);
	return ready;
}

/*
 * Replication (replica_append.c): a follower appends at the offsets its
 * leader gave, so it reserves exactly where the log ends or not at all.
 */
bool
SlPartitionStateReserveAt(SlPartitionState *state, int64 start, int64 count,
						  int32 followed_epoch, Oid *relid, int64 *next_offset,
						  bool *fenced)
{
	bool		slept = false;
	bool		reserved = false;

	Assert(count > 0);
	for (;;)
	{
		SpinLockAcquire(&state->mutex);
		/* Full ring or a truncation under way: wait, as a produce does */
		if (state->next_offset != start ||
			(state->ring_count < SL_MAX_INFLIGHT &&
			 (state->truncating_pid == 0 || state->truncating_pid == MyProcPid)))
			break;
		SpinLockRelease(&state->mutex);
		ConditionVariableSleep(&state->changed, PG_WAIT_EXTENSION);
		slept = true;
	}
	*next_offset = state->next_offset;
	*fenced = led_since(state, followed_epoch);
	if (state->next_offset == start && !*fenced)
	{
		state->next_offset += count;
		state->ring[(state->ring_head + state->ring_count) % SL_MAX_INFLIGHT] =
			(SlReservation) {start, start + count, false, true};
		state->ring_count++;
		*relid = state->active_relid;
		reserved = true;
	}
	SpinLockRelease(&state->mutex);

	if (slept)
		ConditionVariableCancelSleep();
	return reserved;
}

/*
 * A follower applying one leader transaction of many batches to one
 * partition extends its own reservation instead of taking one of the
 * partition's SL_MAX_INFLIGHT slots per batch: past that many it would
 * wait for a slot only its own commit frees.  Only the partition's last
 * reservation, ending where the next batch starts, is extended; no other
 * backend can hold the truncation fence meanwhile (it waits for an empty
 * ring).
 */
bool
SlPartitionStateExtend(SlPartitionState *state, int64 start, int64 end,
					   int64 count, int32 followed_epoch, Oid *relid)
{
	bool		done = false;

	Assert(count > 0);
	SpinLockAcquire(&state->mutex);
	if (state->ring_count > 0 && state->next_offset == end &&
		!led_since(state, followed_epoch))
	{
		SlReservation *last =
			&state->ring[(state->ring_head + state->ring_count - 1) % SL_MAX_INFLIGHT];

		if (last->start == start && last->end == end && !last->done)
		{
			last->end += count;
			state->next_offset += count;
			*relid = state->active_relid;
			done = true;
		}
	}
	SpinLockRelease(&state->mutex);
	return done;
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

/*
 * Truncation (replica_truncate.c).  A replica truncating its log must not
 * race an append: a reservation made before the truncation but written
 * after it would land above the new end and leave a hole below it.  So the
 * truncating backend first waits until no reservation is in flight, then
 * keeps other backends from reserving (SlPartitionStateReserve waits) until
 * its transaction ends; readers never wait.
 */
void
SlPartitionStateFence(SlPartitionState *state)
{
	bool		slept = false;

	for (;;)
	{
		SpinLockAcquire(&state->mutex);
		if (state->ring_count == 0 &&
			(state->truncating_pid == 0 || state->truncating_pid == MyProcPid))
		{
			state->truncating_pid = MyProcPid;
			SpinLockRelease(&state->mutex);
			break;
		}
		SpinLockRelease(&state->mutex);
		ConditionVariableSleep(&state->changed, PG_WAIT_EXTENSION);
		slept = true;
	}
	if (slept)
		ConditionVariableCancelSleep();
}

void
SlPartitionStateUnfence(SlPartitionState *state)
{
	SpinLockAcquire(&state->mutex);
	if (state->truncating_pid == MyProcPid)
		state->truncating_pid = 0;
	SpinLockRelease(&state->mutex);
	ConditionVariableBroadcast(&state->changed);
}

/*
 * The log now ends at snap->next_offset, in the segment snap names, with
 * snap's log start and high watermark: after a truncation (or to put back
 * what an aborted one changed).  Only under the fence, so nothing is in
 * flight but this backend's own reservations.
 */
void
SlPartitionStateReset(SlPartitionState *state, const SlPartitionSnapshot *snap)
{
	SpinLockAcquire(&state->mutex);
	Assert(state->truncating_pid == MyProcPid);
	state->next_offset = snap->next_offset;
	state->log_end = snap->log_end;
	state->high_watermark = snap->high_watermark;
	state->log_start_offset = snap->log_start_offset;
	state->active_relid = snap->active_relid;
	state->active_seq = snap->active_seq;
	state->active_base = snap->active_base;
	state->ring_head = 0;
	state->ring_count = 0;
	SpinLockRelease(&state->mutex);
	ConditionVariableBroadcast(&state->changed);
}

/*
 * The end of the committed log (log_end: where the first reservation still
 * in flight starts).  Not the high watermark, which on a replicated
 * partition waits for the followers.
 */
int64
SlPartitionStateLogEnd(SlPartitionState *state)
{
	int64		end;

	SpinLockAcquire(&state->mutex);
	end = state->log_end;
	SpinLockRelease(&state->mutex);
	return end;
}

/*
 * The last stable offset without a query (txn_index.c).  open_txns is
 * raised by the append that opens a transaction, before its commit makes
 * the row in streamlog.txn_open visible, and before it releases its
 * reservation, which is what moves the high watermark past the
 * transaction's first offset; it is lowered only once a marker that closed
 * one has committed.  So a reader that sees both under the mutex with
 * open_txns at zero knows every transaction below the high watermark it
 * sees is closed.  A count too high only costs a query.
 */
void
SlPartitionStateReadTxn(SlPartitionState *state, SlPartitionTxnSnapshot *snap)
{
	SpinLockAcquire(&state->mutex);
	snap->high_watermark = state->high_watermark;
	snap->log_start_offset = state->log_start_offset;
	snap->none_open = state->txn_known && state->open_txns == 0;
	snap->none_aborted = state->txn_known && !state->may_have_aborted;
	SpinLockRelease(&state->mutex);
}

void
SlPartitionStateCountLso(SlPartitionState *state, bool skipped)
{
	pg_atomic_fetch_add_u64(skipped ? &state->lso_skipped : &state->lso_queries, 1);
}

void
SlPartitionStateTxnOpened(SlPartitionState *state, int32 delta)
{
	SpinLockAcquire(&state->mutex);
	state->open_txns = Max(state->open_txns + delta, 0);
	SpinLockRelease(&state->mutex);
}

void
SlPartitionStateTxnAborted(SlPartitionState *state)
{
	SpinLockAcquire(&state->mutex);
	state->may_have_aborted = true;
	SpinLockRelease(&state->mutex);
}

void
SlPartitionStateTxnStats(SlPartitionState *state, SlPartitionTxnStats *stats)
{
	SpinLockAcquire(&state->mutex);
	stats->known = state->txn_known;
	stats->open_txns = state->open_txns;
	stats->may_have_aborted = state->may_have_aborted;
	SpinLockRelease(&state->mutex);
	stats->lso_queries = (int64) pg_atomic_read_u64(&state->lso_queries);
	stats->lso_skipped = (int64) pg_atomic_read_u64(&state->lso_skipped);
}
