/*
 * Wakeups of parked requests, see wakeups.h.
 *
 * Each subscriber has a slot in shared memory: its latch (as a pgprocno),
 * the filter bits of what it waits on, and the bits notified since it last
 * looked.  A notifier sets the subscriber's changed bits and its latch only
 * where its interest has the key's bit, so a commit to one partition wakes
 * neither the workers with nothing parked nor those waiting on other
 * partitions, and the woken worker looks again only at the requests whose
 * keys changed.
 *
 * The order that keeps wakeups from being lost is the one of a condition
 * variable: the waiter publishes its interest (SlWaitExpect, a full
 * barrier) before it reads the state; the notifier changes the state, then
 * (after a full barrier) reads the interests.  Either the waiter sees the
 * change, or the notifier sees the interest.
 *
 * Rejected: one latch per parked request (a worker has one latch, and the
 * requests live in its local memory), and exact keys instead of a filter
 * (a bounded list per subscriber, with an overflow path that wakes
 * everything anyway; a shared bit costs a spurious look, nothing more).
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "port/pg_bitutils.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"

#include "streamlog/shmem.h"
#include "streamlog/storage/wakeups.h"

typedef struct SlWaitSubscriber
{
	pg_atomic_uint32 procno;	/* whose latch to set; -1 when none */
	pg_atomic_uint64 interest[SL_WAIT_FILTER_WORDS];
	pg_atomic_uint64 changed[SL_WAIT_FILTER_WORDS];
} SlWaitSubscriber;

typedef struct SlWakeups
{
	pg_atomic_uint32 waiting;	/* bit i: subscriber i waits on something */
	SlWaitSubscriber subscribers[SL_WAIT_MAX_SUBSCRIBERS];
} SlWakeups;

#define NO_PROCNO ((uint32) -1)

static SlWakeups *wakeups = NULL;
static int	my_slot = -1;

/* Keys */

SlWaitKey
SlWaitKeyForPartition(SlPartitionKey key)
{
	uint32		h = hash_bytes((const unsigned char *) &key, sizeof(key));

	return h % SL_WAIT_FILTER_BITS;
}

SlWaitKey
SlWaitKeyForGroup(const char *group_id)
{
	/* Salted, so that a group and a partition seldom share a bit */
	uint32		h = hash_combine(0x67726f75, hash_bytes((const unsigned char *) group_id,
														strlen(group_id)));

	return h % SL_WAIT_FILTER_BITS;
}

/* Sets of keys */

void
SlWaitSetClear(SlWaitSet *set)
{
	memset(set, 0, sizeof(*set));
}

void
SlWaitSetAdd(SlWaitSet *set, SlWaitKey key)
{
	set->words[key / 64] |= UINT64CONST(1) << (key % 64);
}

void
SlWaitSetUnion(SlWaitSet *into, const SlWaitSet *set)
{
	for (int w = 0; w < SL_WAIT_FILTER_WORDS; w++)
		into->words[w] |= set->words[w];
}

bool
SlWaitSetIsEmpty(const SlWaitSet *set)
{
	for (int w = 0; w < SL_WAIT_FILTER_WORDS; w++)
		if (set->words[w] != 0)
			return false;
	return true;
}

bool
SlWaitSetOverlaps(const SlWaitSet *a, const SlWaitSet *b)
{
	for (int w = 0; w < SL_WAIT_FILTER_WORDS; w++)
		if ((a->words[w] & b->words[w]) != 0)
			return true;
	return false;
}

/* Shared memory */

Size
SlWakeupsShmemSize(void)
{
	return MAXALIGN(sizeof(SlWakeups));
}

void
SlWakeupsShmemInit(void)
{
	bool		found;

	wakeups = ShmemInitStruct("streamlog wakeups", SlWakeupsShmemSize(), &found);
	if (!found)
	{
		pg_atomic_init_u32(&wakeups->waiting, 0);
		for (int i = 0; i < SL_WAIT_MAX_SUBSCRIBERS; i++)
		{
			SlWaitSubscriber *s = &wakeups->subscribers[i];

			pg_atomic_init_u32(&s->procno, NO_PROCNO);
			for (int w = 0; w < SL_WAIT_FILTER_WORDS; w++)
			{
				pg_atomic_init_u64(&s->interest[w], 0);
				pg_atomic_init_u64(&s->changed[w], 0);
			}
		}
	}
}

/* Subscribers */

static void
unsubscribe(int code, Datum arg)
{
	SlWaitSubscriber *s = &wakeups->subscribers[my_slot];

	pg_atomic_fetch_and_u32(&wakeups->waiting, ~(1U << my_slot));
	pg_atomic_write_u32(&s->procno, NO_PROCNO);
	my_slot = -1;
}

void
SlWaitSubscribe(int slot)
{
	SlWaitSubscriber *s;

	Assert(slot >= 0 && slot < SL_WAIT_MAX_SUBSCRIBERS);
	if (wakeups == NULL)
		elog(ERROR, "streamlog wakeups are not initialized");
	s = &wakeups->subscribers[slot];
	/* What a previous incarnation of this worker waited on is gone */
	for (int w = 0; w < SL_WAIT_FILTER_WORDS; w++)
	{
		pg_atomic_write_u64(&s->interest[w], 0);
		pg_atomic_write_u64(&s->changed[w], 0);
	}
	pg_atomic_write_u32(&s->procno, SL_MY_PROCNO);
	my_slot = slot;
	before_shmem_exit(unsubscribe, (Datum) 0);
}

void
SlWaitExpect(SlWaitKey key)
{
	SlWaitSubscriber *s;

	if (my_slot < 0)
		return;
	s = &wakeups->subscribers[my_slot];
	/* Both are full barriers: published before the caller reads */
	pg_atomic_fetch_or_u64(&s->interest[key / 64], UINT64CONST(1) << (key % 64));
	pg_atomic_fetch_or_u32(&wakeups->waiting, 1U << my_slot);
}

void
SlWaitSetInterest(const SlWaitSet *set)
{
	SlWaitSubscriber *s;

	if (my_slot < 0)
		return;
	s = &wakeups->subscribers[my_slot];
	for (int w = 0; w < SL_WAIT_FILTER_WORDS; w++)
		if (pg_atomic_read_u64(&s->interest[w]) != set->words[w])
			pg_atomic_write_u64(&s->interest[w], set->words[w]);
	if (SlWaitSetIsEmpty(set))
		pg_atomic_fetch_and_u32(&wakeups->waiting, ~(1U << my_slot));
	else
		pg_atomic_fetch_or_u32(&wakeups->waiting, 1U << my_slot);
}

void
SlWaitTakeChanges(SlWaitSet *changed)
{
	SlWaitSubscriber *s;

	SlWaitSetClear(changed);
	if (my_slot < 0)
		return;
	s = &wakeups->subscribers[my_slot];
	for (int w = 0; w < SL_WAIT_FILTER_WORDS; w++)
		if (pg_atomic_read_u64(&s->changed[w]) != 0)
			changed->words[w] = pg_atomic_exchange_u64(&s->changed[w], 0);
}

/* Notifiers */

void
SlWaitNotifySet(const SlWaitSet *set)
{
	uint32		waiting;

	if (wakeups == NULL)
		return;
	/* The change is visible before we read who waits on it */
	pg_memory_barrier();
	waiting = pg_atomic_read_u32(&wakeups->waiting);
	while (waiting != 0)
	{
		int			i = pg_rightmost_one_pos32(waiting);
		SlWaitSubscriber *s = &wakeups->subscribers[i];
		bool		wake = false;

		waiting &= waiting - 1;
		for (int w = 0; w < SL_WAIT_FILTER_WORDS; w++)
		{
			uint64		hit;

			if (set->words[w] == 0)
				continue;
			hit = pg_atomic_read_u64(&s->interest[w]) & set->words[w];
			if (hit != 0)
			{
				pg_atomic_fetch_or_u64(&s->changed[w], hit);
				wake = true;
			}
		}
		if (wake)
		{
			uint32		procno = pg_atomic_read_u32(&s->procno);

			if (procno != NO_PROCNO)
				SetLatch(&ProcGlobal->allProcs[procno].procLatch);
		}
	}
}

void
SlWaitNotify(SlWaitKey key)
{
	SlWaitSet	set;

	SlWaitSetClear(&set);
	SlWaitSetAdd(&set, key);
	SlWaitNotifySet(&set);
}
