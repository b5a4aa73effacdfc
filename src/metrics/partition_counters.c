/*
 * The partitions' counters, see counters.h: bytes and records in and out,
 * produce and fetch requests, per partition and door.
 *
 * An open-addressing hash table in shared memory, with linear probing, that
 * is never shrunk: a partition's slot is claimed once (a compare-and-swap
 * on its state, then its key, then the state says it is ready) and kept
 * until the server restarts, so that an increment finds its slot without a
 * lock and a reader iterates the table without one.  At most
 * streamlog.metrics_max_partitions slots are claimed, in a table at most
 * two thirds full, so that a partition not in it is known to be missing
 * after a few probes; what is counted for a partition that finds no room
 * goes to the overflow counters.  Resetting zeroes the counts and keeps
 * the slots.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "port/atomics.h"
#include "storage/shmem.h"

#include "streamlog/guc.h"
#include "streamlog/metrics/counters.h"
#include "streamlog/metrics/internal/partition_counters.h"

typedef struct DoorCounters
{
	pg_atomic_uint64 bytes_in;
	pg_atomic_uint64 records_in;
	pg_atomic_uint64 bytes_out;
	pg_atomic_uint64 records_out;
	pg_atomic_uint64 produce_requests;
	pg_atomic_uint64 produce_failed;
	pg_atomic_uint64 fetch_requests;
	pg_atomic_uint64 fetch_failed;
} DoorCounters;

/*
 * Counters are zeroed as flat arrays of pg_atomic_uint64: the structs of
 * counters hold nothing else
 */
#define DOOR_ATOMICS (SL_DOOR_COUNT * (sizeof(DoorCounters) / sizeof(pg_atomic_uint64)))
StaticAssertDecl(sizeof(DoorCounters) % sizeof(pg_atomic_uint64) == 0,
				 "DoorCounters holds only 64-bit counters");

/* Slot states of the partition table: a slot is claimed once, for good */
#define SLOT_EMPTY 0
#define SLOT_CLAIMING 1			/* its key is being written */
#define SLOT_READY 2

typedef struct PartitionSlot
{
	pg_atomic_uint32 state;
	SlMetricsPartition key;		/* written once, before state is READY */
	DoorCounters door[SL_DOOR_COUNT];
} PartitionSlot;

typedef struct PartitionCounters
{
	/* slots claimed, at most capacity */
	pg_atomic_uint32 used;
	uint32		capacity;
	uint32		slots;			/* a power of two */
	DoorCounters overflow[SL_DOOR_COUNT];
	PartitionSlot slot[FLEXIBLE_ARRAY_MEMBER];
} PartitionCounters;

static PartitionCounters *parts = NULL;

/*
 * The slots this process found last, by partition: a slot is claimed for
 * good (kept by resets, given back only with shared memory, which no
 * process outlives), so a slot once found stays the partition's.  Direct
 * mapped on a cheap hash of the key: a hit spares the murmur hash and the
 * probe through the shared table, whose cache lines every counting
 * process reads; a collision only costs the next lookup its probe.
 */
#define SLOT_CACHE_SIZE 256		/* a power of two */

typedef struct SlotCacheEntry
{
	SlMetricsPartition key;
	PartitionSlot *slot;		/* NULL: empty */
} SlotCacheEntry;

static SlotCacheEntry slot_cache[SLOT_CACHE_SIZE];

/* The door of this process's appends */
static SlMetricsDoor process_door = SL_DOOR_SQL;

static uint32
slot_count(void)
{
	uint32		slots = 16;

	/* at most two thirds full, so that a miss finds an empty slot soon */
	while (slots < (uint32) sl_metrics_max_partitions + (uint32) sl_metrics_max_partitions / 2)
		slots <<= 1;
	return slots;
}

Size
SlPartitionCountersShmemSize(void)
{
	return add_size(offsetof(PartitionCounters, slot),
					mul_size(slot_count(), sizeof(PartitionSlot)));
}

void
SlPartitionCountersShmemInit(void)
{
	bool		found;

	parts = ShmemInitStruct("streamlog metrics partitions", SlPartitionCountersShmemSize(),
							&found);
	if (found)
		return;
	pg_atomic_init_u32(&parts->used, 0);
	parts->capacity = sl_metrics_max_partitions;
	parts->slots = slot_count();
	SlAtomicsInit((pg_atomic_uint64 *) parts->overflow, DOOR_ATOMICS);
	for (uint32 i = 0; i < parts->slots; i++)
	{
		PartitionSlot *slot = &parts->slot[i];

		pg_atomic_init_u32(&slot->state, SLOT_EMPTY);
		memset(&slot->key, 0, sizeof(slot->key));
		SlAtomicsInit((pg_atomic_uint64 *) slot->door, DOOR_ATOMICS);
	}
}

void
SlPartitionCountersReset(void)
{
	if (parts == NULL)
		return;
	SlAtomicsZero((pg_atomic_uint64 *) parts->overflow, DOOR_ATOMICS);
	for (uint32 i = 0; i < parts->slots; i++)
		SlAtomicsZero((pg_atomic_uint64 *) parts->slot[i].door, DOOR_ATOMICS);
}

/* Counting is off, or shared memory is not there (not preloaded) */
static inline bool
not_counting(void)
{
	return !sl_track_metrics || parts == NULL;
}

static inline uint32
partition_hash(const SlMetricsPartition *key)
{
	uint32		h = murmurhash32((uint32) key->topic_id);

	h = hash_combine(h, murmurhash32((uint32) key->partition));
	h = hash_combine(h, murmurhash32(key->database));
	return hash_combine(h, murmurhash32(key->catalog));
}

static inline bool
partition_equal(const SlMetricsPartition *a, const SlMetricsPartition *b)
{
	return a->topic_id == b->topic_id && a->partition == b->partition &&
		a->database == b->database && a->catalog == b->catalog;
}

/* Wait out the few instructions between a slot's claim and its key */
static uint32
slot_state_settled(PartitionSlot *slot)
{
	uint32		state;

	while ((state = pg_atomic_read_u32(&slot->state)) == SLOT_CLAIMING)
		pg_spin_delay();
	pg_read_barrier();
	return state;
}

/*
 * The slot of key, claimed on first use; NULL when the table holds as many
 * partitions as it may.  Linear probing from the key's hash; slots are
 * never given back, so a probe that reaches an empty slot knows the key is
 * not further on.
 */
static PartitionSlot *
find_slot(const SlMetricsPartition *key)
{
	uint32		mask = parts->slots - 1;
	uint32		i = partition_hash(key) & mask;
	bool		reserved = false;

	for (uint32 probes = 0; probes <= mask; probes++, i = (i + 1) & mask)
	{
		PartitionSlot *slot = &parts->slot[i];
		uint32		state = slot_state_settled(slot);

		if (state == SLOT_EMPTY)
		{
			uint32		expected = SLOT_EMPTY;

			if (!reserved)
			{
				if (pg_atomic_fetch_add_u32(&parts->used, 1) >=
					parts->capacity)
				{
					pg_atomic_fetch_sub_u32(&parts->used, 1);
					break;
				}
				reserved = true;
			}
			if (pg_atomic_compare_exchange_u32(&slot->state, &expected, SLOT_CLAIMING))
			{
				slot->key = *key;
				pg_write_barrier();
				pg_atomic_write_u32(&slot->state, SLOT_READY);
				return slot;
			}
			/* another process claimed it first: for the same key? */
			state = slot_state_settled(slot);
		}
		if (partition_equal(&slot->key, key))
		{
			if (reserved)
				pg_atomic_fetch_sub_u32(&parts->used, 1);
			return slot;
		}
	}
	if (reserved)
		pg_atomic_fetch_sub_u32(&parts->used, 1);
	return NULL;
}

/*
 * The counters of key, door: its slot's, found through this process's
 * cache first; the overflow row's when the table has no room for it (not
 * cached: each such count looks again, as before)
 */
static inline DoorCounters *
door_counters(const SlMetricsPartition *key, SlMetricsDoor door)
{
	SlotCacheEntry *e = &slot_cache[((uint32) key->topic_id * 31 + (uint32) key->partition) &
									(SLOT_CACHE_SIZE - 1)];
	PartitionSlot *slot;

	if (e->slot != NULL && partition_equal(&e->key, key))
		return &e->slot->door[door];
	slot = find_slot(key);
	if (slot == NULL)
		return &parts->overflow[door];
	e->key = *key;
	e->slot = slot;
	return &slot->door[door];
}

void
SlMetricsSetProcessDoor(SlMetricsDoor door)
{
	process_door = door;
}

SlMetricsDoor
SlMetricsProcessDoor(void)
{
	return process_door;
}

void
SlMetricsCountIn(const SlMetricsPartition *key, SlMetricsDoor door,
				 uint64 bytes, uint64 records)
{
	DoorCounters *c;

	if (not_counting())
		return;
	c = door_counters(key, door);
	pg_atomic_fetch_add_u64(&c->bytes_in, bytes);
	pg_atomic_fetch_add_u64(&c->records_in, records);
}

void
SlMetricsCountOut(const SlMetricsPartition *key, SlMetricsDoor door,
				  uint64 bytes, uint64 records)
{
	DoorCounters *c;

	if (not_counting())
		return;
	c = door_counters(key, door);
	pg_atomic_fetch_add_u64(&c->bytes_out, bytes);
	pg_atomic_fetch_add_u64(&c->records_out, records);
}

void
SlMetricsCountProduce(const SlMetricsPartition *key, SlMetricsDoor door, bool failed)
{
	DoorCounters *c;

	if (not_counting())
		return;
	c = door_counters(key, door);
	pg_atomic_fetch_add_u64(&c->produce_requests, 1);
	if (failed)
		pg_atomic_fetch_add_u64(&c->produce_failed, 1);
}

void
SlMetricsCountFetch(const SlMetricsPartition *key, SlMetricsDoor door, bool failed)
{
	DoorCounters *c;

	if (not_counting())
		return;
	c = door_counters(key, door);
	pg_atomic_fetch_add_u64(&c->fetch_requests, 1);
	if (failed)
		pg_atomic_fetch_add_u64(&c->fetch_failed, 1);
}

static bool
door_read(SlPartitionDoorStats *out, DoorCounters *c)
{
	out->bytes_in = pg_atomic_read_u64(&c->bytes_in);
	out->records_in = pg_atomic_read_u64(&c->records_in);
	out->bytes_out = pg_atomic_read_u64(&c->bytes_out);
	out->records_out = pg_atomic_read_u64(&c->records_out);
	out->produce_requests = pg_atomic_read_u64(&c->produce_requests);
	out->produce_failed = pg_atomic_read_u64(&c->produce_failed);
	out->fetch_requests = pg_atomic_read_u64(&c->fetch_requests);
	out->fetch_failed = pg_atomic_read_u64(&c->fetch_failed);
	return out->bytes_in || out->records_in || out->bytes_out || out->records_out ||
		out->produce_requests || out->fetch_requests;
}

SlPartitionStats *
SlMetricsPartitionSnapshot(int *count)
{
	SlPartitionStats *rows;
	SlPartitionStats overflow;
	bool		overflowed = false;
	int			capacity;
	int			n = 0;

	*count = 0;
	if (parts == NULL)
		return NULL;
	capacity = (int) Min(pg_atomic_read_u32(&parts->used),
						 parts->capacity);
	rows = palloc0(sizeof(SlPartitionStats) * (capacity + 1));
	for (uint32 i = 0; i < parts->slots && n < capacity; i++)
	{
		PartitionSlot *slot = &parts->slot[i];

		if (pg_atomic_read_u32(&slot->state) != SLOT_READY)
			continue;
		pg_read_barrier();
		rows[n].key = slot->key;
		for (int d = 0; d < SL_DOOR_COUNT; d++)
			door_read(&rows[n].door[d], &slot->door[d]);
		n++;
	}
	memset(&overflow, 0, sizeof(overflow));
	overflow.key.topic_id = -1;
	overflow.key.partition = -1;
	for (int d = 0; d < SL_DOOR_COUNT; d++)
		overflowed |= door_read(&overflow.door[d], &parts->overflow[d]);
	if (overflowed)
		rows[n++] = overflow;
	*count = n;
	return rows;
}
