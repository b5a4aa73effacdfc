/*
 * Wakeups of parked requests: the lower layers (partition state, the group
 * coordinator) say what changed; whoever parks requests (the broker
 * workers) subscribes and says what it waits on.  The notifier knows
 * nothing of its subscribers but a latch and a set of keys, so no layer
 * calls up into the one that parks.
 */
#ifndef SL_WAKEUPS_H
#define SL_WAKEUPS_H

#include "postgres.h"

#include "streamlog/storage/storage.h"

/*
 * What a parked request can wait on, a partition or a group, hashed to a
 * bit of a fixed-size filter.  Two things that share a bit only cost a
 * spurious look at a parked request, never a missed one.
 */
#define SL_WAIT_FILTER_BITS 1024
#define SL_WAIT_FILTER_WORDS (SL_WAIT_FILTER_BITS / 64)

typedef uint32 SlWaitKey;

typedef struct SlWaitSet
{
	uint64		words[SL_WAIT_FILTER_WORDS];
} SlWaitSet;

extern SlWaitKey SlWaitKeyForPartition(SlPartitionKey key);
extern SlWaitKey SlWaitKeyForGroup(const char *group_id);

extern void SlWaitSetClear(SlWaitSet *set);
extern void SlWaitSetAdd(SlWaitSet *set, SlWaitKey key);
extern void SlWaitSetUnion(SlWaitSet *into, const SlWaitSet *set);
extern bool SlWaitSetIsEmpty(const SlWaitSet *set);
extern bool SlWaitSetOverlaps(const SlWaitSet *a, const SlWaitSet *b);

/* Subscribers, at most this many, each with a latch of its own */
#define SL_WAIT_MAX_SUBSCRIBERS 32

extern Size SlWakeupsShmemSize(void);
extern void SlWakeupsShmemInit(void);

/* Subscribe this process in slot (one per broker worker), until it exits */
extern void SlWaitSubscribe(int slot);

/*
 * Say we wait on key, before looking at the thing it stands for: a change
 * after the look sets our latch.  Nothing when this process has not
 * subscribed.
 */
extern void SlWaitExpect(SlWaitKey key);

/* What we still wait on, replacing what was said before */
extern void SlWaitSetInterest(const SlWaitSet *set);

/* The keys notified since the last call, emptied */
extern void SlWaitTakeChanges(SlWaitSet *changed);

/* Notifiers: key (or the keys of set) changed; wake who waits on them */
extern void SlWaitNotify(SlWaitKey key);
extern void SlWaitNotifySet(const SlWaitSet *set);

#endif							/* SL_WAKEUPS_H */
