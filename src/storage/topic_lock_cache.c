/*
 * The topic-lock fast path (SlTopicLookupAndLockCached): SQL produce() is
 * called once per row, and a lookup with its lock per row showed in
 * profiles.  The lock, once taken, lasts until the transaction ends, unless
 * the subtransaction that took it aborts; the topic, once read, stays as
 * it was unless a topic DDL commits.  So a cached topic is valid while the
 * transaction, its count of subtransaction aborts and the catalog
 * generation are the ones it was cached under.
 */
#include "postgres.h"

#include "storage/proc.h"
#include "utils/memutils.h"

#include "streamlog/shmem.h"
#include "streamlog/storage/internal/log_append.h"
#include "streamlog/storage/internal/topics.h"
#include "streamlog/storage/storage.h"

#if PG_VERSION_NUM >= 170000
#define MyLocalXid (MyProc->vxid.lxid)
#else
#define MyLocalXid (MyProc->lxid)
#endif

const SlTopic *
SlTopicLookupAndLockCached(SlTopicLockCache *cache, const char *name, LOCKMODE mode,
						   bool *refilled)
{
	const SlTopic *topic;
	bool		valid;

	valid = cache->lxid == MyLocalXid &&
		cache->mode == mode &&
		cache->subxact_aborts == sl_subxact_aborts &&
		cache->generation == pg_atomic_read_u64(&sl_shared->catalog_generation) &&
		strcmp(cache->topic.name, name) == 0;
	if (refilled)
		*refilled = !valid;
	if (valid)
		return &cache->topic;

	topic = SlTopicLookupAndLock(name, mode);
	cache->topic = *topic;

	/*
	 * The cache is valid in this transaction only, and so is the copy of
	 * the leadership it keeps (the lookup's is the caller's, maybe a
	 * context reset per row)
	 */
	cache->topic.partitions = SlTopicCopyLeadership(topic, TopTransactionContext);
	cache->mode = mode;
	cache->lxid = MyLocalXid;
	cache->subxact_aborts = sl_subxact_aborts;
	cache->generation = pg_atomic_read_u64(&sl_shared->catalog_generation);
	return &cache->topic;
}
