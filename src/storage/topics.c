/*
 * The topic catalog: create, drop, alter and resize topics, and look them up
 * through a per-backend cache.
 *
 * The cache is flushed whenever the shared catalog generation moved: every
 * transaction that changed a topic bumps it after it commits.  A topic is
 * protected by a lock on (streamlog.topic, topic_id): readers and producers
 * hold AccessShareLock until their transaction ends, schema changes take
 * AccessExclusiveLock, so a topic cannot be dropped or resized under a
 * transaction that produced to it.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "port.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "streamlog/guc.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/key_index.h"
#include "streamlog/storage/internal/log_append.h"
#include "streamlog/storage/internal/offsets_topic.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/segments.h"
#include "streamlog/storage/internal/topics.h"
#include "streamlog/storage/internal/xact.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/storage_init.h"

typedef struct TopicCacheEntry
{
	char		name[SL_TOPIC_NAME_MAX + 1];	/* hash key */
	bool		exists;
	SlTopic		topic;
} TopicCacheEntry;

/* A dropped topic whose shared state goes when the dropping xact commits */
typedef struct PendingForget
{
	SlPendingWork work;			/* first: kept in pending_forgets */
	SlPartitionKey key;			/* topic, and the first partition to forget */
	bool		on_commit;		/* dropped topic: forget at commit; else
								 * added partitions: forget at abort */
} PendingForget;

static HTAB *topic_cache = NULL;
/* Where the cached topics' leadership lives; reset with the cache */
static MemoryContext topic_cache_context = NULL;
static uint64 topic_cache_generation = 0;

/*
 * Filled on a hot standby, whose catalog changes by WAL replay: no commit
 * of its own bumps the generation there, so such a cache is used for one
 * lookup only, also after promotion.
 */
static bool topic_cache_in_recovery = false;
static Oid	topic_class_oid = InvalidOid;

static List *pending_forgets = NIL;	/* in TopTransactionContext */
static bool catalog_changed = false;

/* OID of streamlog.topic, the class of the topic locks */
static Oid
topic_class(void)
{
	if (!OidIsValid(topic_class_oid))
		topic_class_oid = SlCatalogRelid("topic");
	return topic_class_oid;
}

/*
 * Flush the cache if any topic changed since it was filled.
 *
 * Entries are freed here, which is why lookups hand out copies: a caller
 * may hold a topic across a lock wait (which may bring news of a change)
 * or across another lookup.  The entries are poisoned before they go, so
 * that anything still pointing into them reads an obviously wrong name
 * rather than the one that happened to survive in freed memory.
 */
static void
topic_cache_check(void)
{
	uint64		generation;

	SlCheckPreloaded();
	generation = pg_atomic_read_u64(&sl_shared->catalog_generation);
	if (topic_cache != NULL && generation == topic_cache_generation &&
		!topic_cache_in_recovery)
		return;
	if (topic_cache != NULL)
	{
		HASH_SEQ_STATUS seq;
		TopicCacheEntry *entry;

		hash_seq_init(&seq, topic_cache);
		while ((entry = hash_seq_search(&seq)) != NULL)
			memset(entry, 0x7f, sizeof(*entry));
		hash_destroy(topic_cache);
		MemoryContextReset(topic_cache_context);
	}
	if (topic_cache_context == NULL)
		topic_cache_context = AllocSetContextCreate(CacheMemoryContext,
													"streamlog topic leadership",
													ALLOCSET_SMALL_SIZES);
	{
		HASHCTL		info;

		info.keysize = SL_TOPIC_NAME_MAX + 1;
		info.entrysize = sizeof(TopicCacheEntry);
		topic_cache = hash_create("streamlog topics", 64, &info, HASH_ELEM | HASH_STRINGS);
	}
	topic_class_oid = InvalidOid;
	topic_cache_generation = generation;
	topic_cache_in_recovery = RecoveryInProgress();
	/* Known from now on, so that dropping the table flushes the cache */
	(void) topic_class();
}

/*
 * One allocation in cxt for the leadership of count partitions: the array,
 * then the nids node ids its replicas and ISRs point into
 */
static SlPartitionLeadership *
leadership_alloc(int32 count, int64 nids, MemoryContext cxt, int32 **ids)
{
	Size		head = MAXALIGN(sizeof(SlPartitionLeadership) * Max(count, 1));
	char	   *chunk = MemoryContextAllocZero(cxt, head + sizeof(int32) * Max(nids, 1));

	*ids = (int32 *) (chunk + head);
	return (SlPartitionLeadership *) chunk;
}

/* A copy of topic's leadership, allocated in cxt */
const SlPartitionLeadership *
SlTopicCopyLeadership(const SlTopic *topic, MemoryContext cxt)
{
	SlPartitionLeadership *copy;
	int64		nids = 0;
	int32	   *ids;

	if (topic->partitions == NULL)
		return NULL;
	for (int32 p = 0; p < topic->partition_count; p++)
		nids += topic->partitions[p].nreplicas + topic->partitions[p].nisr;
	copy = leadership_alloc(topic->partition_count, nids, cxt, &ids);
	for (int32 p = 0; p < topic->partition_count; p++)
	{
		const SlPartitionLeadership *src = &topic->partitions[p];

		copy[p] = *src;
		memcpy(ids, src->replicas, sizeof(int32) * src->nreplicas);
		copy[p].replicas = ids;
		ids += src->nreplicas;
		memcpy(ids, src->isr, sizeof(int32) * src->nisr);
		copy[p].isr = ids;
		ids += src->nisr;
	}
	return copy;
}

/* The elements of an int4[] without nulls */
static const int32 *
node_array_items(Datum d, int32 *n)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);

	if (ARR_NDIM(arr) == 0)
	{
		*n = 0;
		return NULL;
	}
	if (ARR_NDIM(arr) != 1 || ARR_HASNULL(arr) || ARR_ELEMTYPE(arr) != INT4OID)
		elog(ERROR, "streamlog.partition holds a malformed node id array");
	*n = ARR_DIMS(arr)[0];
	return (const int32 *) ARR_DATA_PTR(arr);
}

Datum
SlTopicNodeArray(const int32 *ids, int32 n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int32 i = 0; i < n; i++)
		elems[i] = Int32GetDatum(ids[i]);
	return PointerGetDatum(construct_array(elems, n, INT4OID, sizeof(int32), true,
										   TYPALIGN_INT));
}

/*
 * Read the leadership of partitions [0, count) of a topic into cxt.  The
 * caller is connected to SPI.  A partition without its row (none should
 * be) reads as offline, with no replicas.
 */
static const SlPartitionLeadership *
leadership_fetch(int32 topic_id, int32 count, MemoryContext cxt)
{
	static const SlNamedQuery q = {
		"SELECT partition, leader_id, leader_epoch, partition_epoch, replicas, isr "
		"FROM streamlog.partition WHERE topic_id = $1 AND partition < $2",
		2, {INT4OID, INT4OID}
	};
	Datum		values[2] = {Int32GetDatum(topic_id), Int32GetDatum(count)};
	uint64		n = SlCatalogRun(&q, values, NULL);
	int64		nids = 0;
	int32	   *ids;
	SlPartitionLeadership *leadership;

	for (uint64 r = 0; r < n; r++)
	{
		bool		isnull;
		int32		nr,
					ni;

		node_array_items(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 5, &isnull), &nr);
		node_array_items(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 6, &isnull), &ni);
		nids += nr + ni;
	}
	leadership = leadership_alloc(count, nids, cxt, &ids);
	for (int32 p = 0; p < count; p++)
		leadership[p].leader = SL_NO_LEADER;
	for (uint64 r = 0; r < n; r++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		int32		p = SlCatalogInt32(r, 1, -1);
		SlPartitionLeadership *l;
		const int32 *items;
		bool		isnull;

		if (p < 0 || p >= count)
			continue;
		l = &leadership[p];
		l->leader = SlCatalogInt32(r, 2, SL_NO_LEADER);
		l->leader_epoch = SlCatalogInt32(r, 3, 0);
		l->partition_epoch = SlCatalogInt32(r, 4, 0);
		items = node_array_items(SPI_getbinval(tuple, desc, 5, &isnull), &l->nreplicas);
		memcpy(ids, items, sizeof(int32) * l->nreplicas);
		l->replicas = ids;
		ids += l->nreplicas;
		items = node_array_items(SPI_getbinval(tuple, desc, 6, &isnull), &l->nisr);
		memcpy(ids, items, sizeof(int32) * l->nisr);
		l->isr = ids;
		ids += l->nisr;
	}
	return leadership;
}

/*
 * Read one topic row (by name, or by id if name is NULL) into topic, its
 * partitions' leadership allocated in cxt
 */
static bool
topic_fetch(const char *name, int32 topic_id, SlTopic *topic, MemoryContext cxt)
{
	Oid			types[1];
	Datum		values[1];
	uint64		n;
	bool		found = false;

	SPI_connect();
	if (name)
	{
		types[0] = TEXTOID;
		values[0] = CStringGetTextDatum(name);
		n = SlCatalogQuery("SELECT topic_id, partition_count, config, name, topic_uuid, owner "
						   "FROM streamlog.topic WHERE name = $1", 1, types, values, NULL);
	}
	else
	{
		types[0] = INT4OID;
		values[0] = Int32GetDatum(topic_id);
		n = SlCatalogQuery("SELECT topic_id, partition_count, config, name, topic_uuid, owner "
						   "FROM streamlog.topic WHERE topic_id = $1", 1, types, values, NULL);
	}
	if (n > 0)
	{
		bool		isnull;
		Jsonb	   *config;
		char	   *stored_name;

		found = true;
		topic->topic_id = SlCatalogInt32(0, 1, 0);
		topic->partition_count = SlCatalogInt32(0, 2, 0);
		config = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 3, &isnull));
		SlTopicConfigDefaults(&topic->config);
		SlTopicConfigApply(config, &topic->config);
		stored_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
		strlcpy(topic->name, stored_name, sizeof(topic->name));
		memcpy(topic->uuid,
			   DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull))->data,
			   16);
		topic->owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 6, &isnull));
		topic->partitions = leadership_fetch(topic->topic_id, topic->partition_count, cxt);
	}
	SPI_finish();
	return found;
}

static void
topic_not_found(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("topic \"%s\" does not exist", name),
			 errhint("Create it with streamlog.create_topic('%s', partitions).", name)));
}

/* A copy of a topic in the caller's memory context */
static SlTopic *
topic_copy(const SlTopic *topic)
{
	SlTopic    *copy = palloc(sizeof(SlTopic));

	memcpy(copy, topic, sizeof(SlTopic));
	copy->partitions = SlTopicCopyLeadership(topic, CurrentMemoryContext);
	return copy;
}

const SlTopic *
SlTopicLookup(const char *name, bool missing_ok)
{
	char		key[SL_TOPIC_NAME_MAX + 1];
	TopicCacheEntry *entry;
	bool		found;

	if (strlen(name) > SL_TOPIC_NAME_MAX)
	{
		if (missing_ok)
			return NULL;
		SlTopicValidateName(name);
	}
	/* name may point into an entry that the check below frees */
	strlcpy(key, name, sizeof(key));
	topic_cache_check();
	entry = hash_search(topic_cache, key, HASH_ENTER, &found);
	if (!found)
		entry->exists = topic_fetch(key, 0, &entry->topic, topic_cache_context);
	if (!entry->exists)
	{
		if (!missing_ok)
			topic_not_found(key);
		return NULL;
	}
	return topic_copy(&entry->topic);
}

/*
 * Look a topic up, lock it, and look again if a change committed while we
 * waited for the lock: the topic may have been altered, resized, dropped,
 * or dropped and created again under another id (whose lock we take in
 * turn).  Whatever we return was current once the lock was ours, and
 * stays so until the transaction ends.
 */
static const SlTopic *
topic_lookup_and_lock(const char *name, LOCKMODE mode, bool missing_ok)
{
	char		key[SL_TOPIC_NAME_MAX + 1];
	const SlTopic *topic;

	/*
	 * A standby's topics change only by replay, and PostgreSQL refuses it
	 * the stronger locks: say so in our words
	 */
	if (mode > RowExclusiveLock && RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot change topic \"%s\" on a standby", name),
				 errhint("Change it on the primary: a standby replays its topics.")));
	if (strlen(name) > SL_TOPIC_NAME_MAX)
		return SlTopicLookup(name, missing_ok);
	strlcpy(key, name, sizeof(key));
	topic = SlTopicLookup(key, missing_ok);
	while (topic != NULL)
	{
		int32		topic_id = topic->topic_id;
		uint64		generation = topic_cache_generation;
		const SlTopic *current;

		LockDatabaseObject(topic_class(), topic_id, 0, mode);
		/* A change may have committed while we waited for the lock */
		if (pg_atomic_read_u64(&sl_shared->catalog_generation) == generation)
			return topic;
		current = SlTopicLookup(key, missing_ok);
		if (current == NULL || current->topic_id == topic_id)
			return current;
		topic = current;
	}
	return NULL;
}

const SlTopic *
SlTopicLookupAndLock(const char *name, LOCKMODE mode)
{
	return topic_lookup_and_lock(name, mode, false);
}

const SlTopic *
SlTopicTryLookupAndLock(const char *name, LOCKMODE mode)
{
	return topic_lookup_and_lock(name, mode, true);
}

bool
SlTopicLockHasWaiters(int32 topic_id, LOCKMODE held)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, topic_class(), topic_id, 0);
	return LockHasWaiters(&tag, held, false);
}

bool
SlTopicLockedByMe(int32 topic_id)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, topic_class(), topic_id, 0);
	for (LOCKMODE mode = AccessShareLock; mode <= MaxLockMode; mode++)
		if (LockHeldByMe(&tag, mode))
			return true;
	return false;
}

SlPartitionKey
SlMakePartitionKey(int32 topic_id, int32 partition)
{
	SlPartitionKey key;

	memset(&key, 0, sizeof(key));	/* hashed as bytes */
	key.database = MyDatabaseId;
	key.catalog = topic_class();
	key.topic_id = topic_id;
	key.partition = partition;
	return key;
}

const SlTopic *
SlTopicLookupById(int32 topic_id)
{
	SlTopic    *topic = palloc(sizeof(SlTopic));

	SlCheckPreloaded();
	if (!topic_fetch(NULL, topic_id, topic, CurrentMemoryContext))
	{
		pfree(topic);
		return NULL;
	}
	return topic;
}

void
SlTopicValidateName(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("topic name must not be empty")));
	if (len > SL_TOPIC_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("topic name is %zu characters long, the limit is %d", len,
						SL_TOPIC_NAME_MAX)));
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("topic name cannot be \".\" or \"..\"")));
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("invalid topic name \"%s\"", name),
					 errdetail("Topic names may contain only ASCII letters, digits, '.', '_' and '-'.")));
}

bool
SlTopicNameIsInternal(const char *name)
{
	return strncmp(name, SL_INTERNAL_TOPIC_PREFIX, strlen(SL_INTERNAL_TOPIC_PREFIX)) == 0;
}

void
SlTopicRefuseInternal(const char *name, const char *action)
{
	if (!SlTopicNameIsInternal(name))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_RESERVED_NAME),
			 errmsg("cannot %s topic \"%s\": names beginning with \"%s\" are reserved for internal topics",
					action, name, SL_INTERNAL_TOPIC_PREFIX),
			 errdetail("Internal topics, such as Kafka's __consumer_offsets and __transaction_state, "
					   "are created and written by streamlog itself; clients may only read them."),
			 errhint("Use a topic name that does not begin with \"%s\".",
					 SL_INTERNAL_TOPIC_PREFIX)));
}

void
SlTopicCheckPartition(const SlTopic *topic, int32 partition)
{
	if (partition < 0 || partition >= topic->partition_count)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partition %d of topic \"%s\" does not exist", partition, topic->name),
				 errhint("Topic \"%s\" has partitions 0 to %d.", topic->name,
						 topic->partition_count - 1)));
}

/* Note that this transaction changed the catalog (bump at commit) */
static void
catalog_changed_in_xact(void)
{
	catalog_changed = true;
	/* Our own later lookups in this transaction must see the change */
	topic_cache_generation = 0;
}

/*
 * Forget the shared state of a topic's partitions from first_partition on
 * when the transaction commits (a dropped topic) or aborts (partitions it
 * added: shared state loaded for them in this transaction would outlive
 * their tables).
 */
static void
forget_at_end(int32 topic_id, int32 first_partition, bool on_commit)
{
	PendingForget *forget = SlPendingWorkAdd(&pending_forgets, sizeof(PendingForget));

	forget->key = SlMakePartitionKey(topic_id, first_partition);
	forget->on_commit = on_commit;
}

/*
 * Error out unless count more partitions fit in shared memory and, for
 * topics owned by owner (InvalidOid: an internal topic, not counted), in
 * streamlog.max_partitions_per_role: the partitions of the topics a role
 * owns, so that one role cannot take every partition there is.  Superusers
 * are not counted, as PostgreSQL does not count them against a role's
 * CONNECTION LIMIT.
 */
static void
check_partition_budget(int32 count, Oid owner)
{
	int64		in_use;
	int64		owned = 0;
	bool		capped = OidIsValid(owner) && sl_max_partitions_per_role > 0 &&
		!superuser_arg(owner);
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(owner)};

	SPI_connect();
	SlCatalogQuery("SELECT coalesce(sum(partition_count), 0)::int8 FROM streamlog.topic",
				   0, NULL, NULL, NULL);
	in_use = SlCatalogInt64(0, 1, 0);
	if (capped)
	{
		SlCatalogQuery("SELECT coalesce(sum(partition_count), 0)::int8 FROM streamlog.topic "
					   "WHERE owner = $1", 1, types, values, NULL);
		owned = SlCatalogInt64(0, 1, 0);
	}
	SPI_finish();
	if (in_use + count > sl_max_partitions)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("cannot add %d partitions: %lld of streamlog.max_partitions (%d) are in use",
						count, (long long) in_use, sl_max_partitions),
				 errhint("Raise streamlog.max_partitions and restart the server.")));
	if (capped && owned + count > sl_max_partitions_per_role)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("cannot add %d partitions: role \"%s\" owns topics with %lld partitions, and streamlog.max_partitions_per_role is %d",
						count, GetUserNameFromId(owner, false), (long long) owned,
						sl_max_partitions_per_role),
				 errhint("Delete topics the role owns, or ask an administrator to raise streamlog.max_partitions_per_role.")));
}

/*
 * Add partitions [from, to) of a topic, each with its first segment and
 * its leadership, leadership[p - from] (NULL: this node alone)
 */
static void
create_partitions(int32 topic_id, int32 from, int32 to,
				  const SlPartitionLeadership *leadership)
{
	static const SlNamedQuery insert_partition = {
		"INSERT INTO streamlog.partition (topic_id, partition, leader_id, leader_epoch, "
		"partition_epoch, replicas, isr) VALUES ($1, $2, $3, $4, $5, $6, $7)",
		7, {INT4OID, INT4OID, INT4OID, INT4OID, INT4OID, INT4ARRAYOID, INT4ARRAYOID}
	};
	int32		self = sl_node_id;
	SlPartitionLeadership alone = {self, 0, 0, 1, 1, &self, &self};

	for (int32 p = from; p < to; p++)
	{
		const SlPartitionLeadership *l = leadership ? &leadership[p - from] : &alone;
		Datum		values[7];
		SlPartitionKey key = SlMakePartitionKey(topic_id, p);

		values[0] = Int32GetDatum(topic_id);
		values[1] = Int32GetDatum(p);
		values[2] = Int32GetDatum(l->leader);
		values[3] = Int32GetDatum(l->leader_epoch);
		values[4] = Int32GetDatum(l->partition_epoch);
		values[5] = SlTopicNodeArray(l->replicas, l->nreplicas);
		values[6] = SlTopicNodeArray(l->isr, l->nisr);
		SPI_connect();
		SlCatalogRun(&insert_partition, values, NULL);
		SPI_finish();
		SlSegmentCreate(key, 0, 0);
	}
}

/*
 * Check that a topic called name could be created with partitions and
 * config, its partitions counted against owner's budget; returns the
 * config normalized
 */
static Jsonb *
topic_check_create(const char *name, int32 partitions, Jsonb *config, Oid owner)
{
	SlTopicConfig effective;
	Jsonb	   *normalized;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	uint64		n;

	SlCheckPreloaded();
	SlTopicValidateName(name);
	if (partitions < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a topic needs at least one partition, not %d", partitions)));
	SlTopicConfigDefaults(&effective);
	normalized = SlTopicConfigApply(config, &effective);
	check_partition_budget(partitions, owner);

	SPI_connect();
	values[0] = CStringGetTextDatum(name);
	n = SlCatalogQuery("SELECT name FROM streamlog.topic "
					   "WHERE translate(name, '.', '_') = translate($1, '.', '_')",
					   1, types, values, NULL);
	if (n > 0)
	{
		char	   *existing = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (strcmp(existing, name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("topic \"%s\" already exists", name)));
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("topic name \"%s\" collides with existing topic \"%s\"", name, existing),
				 errdetail("As in Kafka, '.' and '_' are the same in topic names, since metric names cannot tell them apart.")));
	}
	SPI_finish();
	return normalized;
}

/*
 * Who owns a new topic: its creator, whichever door it came through
 * (storage/acl.h); an internal topic, created by whichever role first
 * needed it, is the bootstrap superuser's, so that nobody gets its owner's
 * rights by chance.  InvalidOid for an internal topic's budget, which is
 * not counted.
 */
static Oid
new_topic_owner(const char *name)
{
	return SlTopicNameIsInternal(name) ? BOOTSTRAP_SUPERUSERID : GetUserId();
}

Jsonb *
SlTopicCheckCreate(const char *name, int32 partitions, Jsonb *config, bool internal)
{
	if (!internal)
		SlTopicRefuseInternal(name, "create");
	else if (!SlTopicNameIsInternal(name))
		elog(ERROR, "internal topic name \"%s\" does not begin with \"%s\"",
			 name, SL_INTERNAL_TOPIC_PREFIX);
	return topic_check_create(name, partitions, config,
							  internal ? InvalidOid : new_topic_owner(name));
}

void
SlTopicCreateWithId(int32 topic_id, const uint8 *uuid, const char *name, int32 partitions,
					Oid owner, Jsonb *config, const SlPartitionLeadership *leadership)
{
	static const SlNamedQuery insert_topic = {
		"INSERT INTO streamlog.topic (topic_id, name, partition_count, config, owner, topic_uuid) "
		"VALUES ($1, $2, $3, $4, $5, $6)",
		6, {INT4OID, TEXTOID, INT4OID, JSONBOID, OIDOID, UUIDOID}
	};
	SlTopicConfig effective;
	pg_uuid_t	id;
	Datum		values[6];

	SlTopicConfigDefaults(&effective);
	SlTopicConfigApply(config, &effective);
	memcpy(id.data, uuid, 16);
	values[0] = Int32GetDatum(topic_id);
	values[1] = CStringGetTextDatum(name);
	values[2] = Int32GetDatum(partitions);
	values[3] = JsonbPGetDatum(config);
	values[4] = ObjectIdGetDatum(owner);
	values[5] = UUIDPGetDatum(&id);
	SPI_connect();
	SlCatalogRun(&insert_topic, values, NULL);
	SPI_finish();

	create_partitions(topic_id, 0, partitions, leadership);
	catalog_changed_in_xact();
	if (effective.key_index)
		SlKeyIndexCreate(topic_id, NULL);
}

/* A random Kafka topic id (a version 4 uuid, as gen_random_uuid()) */
static void
random_topic_uuid(uint8 *uuid)
{
	if (!pg_strong_random(uuid, 16))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random topic id")));
	uuid[6] = (uuid[6] & 0x0f) | 0x40;
	uuid[8] = (uuid[8] & 0x3f) | 0x80;
}

/* Create a topic on a node of its own; name checked as internal or not */
static void
topic_create(const char *name, int32 partitions, Jsonb *config, bool internal)
{
	Jsonb	   *normalized = SlTopicCheckCreate(name, partitions, config, internal);
	uint8		uuid[16];
	int32		topic_id;

	SPI_connect();
	SlCatalogQuery("SELECT nextval('streamlog.topic_id_seq')::int4", 0, NULL, NULL, NULL);
	topic_id = SlCatalogInt32(0, 1, 0);
	SPI_finish();
	random_topic_uuid(uuid);
	SlTopicCreateWithId(topic_id, uuid, name, partitions, new_topic_owner(name),
						normalized, NULL);
}

void
SlTopicCreate(const char *name, int32 partitions, Jsonb *config)
{
	topic_create(name, partitions, config, false);
}

void
SlTopicCreateInternal(const char *name, int32 partitions, Jsonb *config)
{
	topic_create(name, partitions, config, true);
}

bool
SlTopicDrop(const char *name, bool missing_ok)
{
	const SlTopic *topic;

	SlTopicRefuseInternal(name, "drop");
	topic = SlTopicLookup(name, missing_ok);
	if (topic == NULL)
		return false;
	topic = SlTopicLookupAndLock(name, AccessExclusiveLock);
	SlTopicDropLocked(topic, true);
	return true;
}

void
SlTopicDropLocked(const SlTopic *topic, bool tombstones)
{
	int32		topic_id = topic->topic_id;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	uint64		n;
	List	   *segments = NIL;
	ListCell   *lc;
	MemoryContext oldcxt;

	values[0] = Int32GetDatum(topic_id);
	/* Its committed offsets go with tombstones in __consumer_offsets */
	if (tombstones)
		SlGroupOffsetsForgetTopic(topic_id);

	SPI_connect();
	/* Its segments, and those compaction replaced and not dropped yet */
	n = SlCatalogQuery("SELECT relid FROM streamlog.segment WHERE topic_id = $1 "
					   "UNION ALL "
					   "SELECT relid FROM streamlog.retired_segment WHERE topic_id = $1",
					   1, types, values, NULL);
	for (uint64 i = 0; i < n; i++)
	{
		oldcxt = MemoryContextSwitchTo(CurTransactionContext);
		segments = lappend_oid(segments, (Oid) SlCatalogInt32(i, 1, 0));
		MemoryContextSwitchTo(oldcxt);
	}
	/* group offsets of it go by cascade when there are no tombstones */
	SlCatalogQuery("DELETE FROM streamlog.topic WHERE topic_id = $1", 1, types, values, NULL);
	/*
	 * IF EXISTS: the cleaner may drop a replaced segment's table between our
	 * look at its name and our DROP (it takes no topic lock to do so)
	 */
	foreach(lc, segments)
	{
		char	   *relname = get_rel_name(lfirst_oid(lc));

		if (relname)
			SlCatalogExec(psprintf("DROP TABLE IF EXISTS streamlog_data.%s",
								   quote_identifier(relname)));
	}
	SPI_finish();
	SlKeyIndexDrop(topic_id);

	SlLogDiscardTopic(SlMakePartitionKey(topic_id, 0));
	forget_at_end(topic_id, 0, true);
	catalog_changed_in_xact();
}

Jsonb *
SlTopicCheckAlterConfig(const SlTopic *topic, Jsonb *changes)
{
	SlTopicConfig effective;
	Jsonb	   *merged;
	Oid			types[2] = {INT4OID, JSONBOID};
	Datum		values[2];
	MemoryContext caller = CurrentMemoryContext;

	/* Validate the changes alone first, so errors name what was passed */
	SlTopicConfigDefaults(&effective);
	SlTopicConfigApply(changes, &effective);

	SPI_connect();
	values[0] = Int32GetDatum(topic->topic_id);
	values[1] = JsonbPGetDatum(changes);
	if (SlCatalogQuery("SELECT config || $2 FROM streamlog.topic WHERE topic_id = $1",
					   2, types, values, NULL) == 0)
		topic_not_found(topic->name);
	{
		bool		isnull;
		MemoryContext oldcxt = MemoryContextSwitchTo(caller);

		merged = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	SlTopicConfigDefaults(&effective);
	return SlTopicConfigApply(merged, &effective);
}

void
SlTopicSetConfigLocked(const SlTopic *topic, Jsonb *config)
{
	SlTopicConfig effective;
	Oid			types[2] = {INT4OID, JSONBOID};
	Datum		values[2];

	SlTopicConfigDefaults(&effective);
	SlTopicConfigApply(config, &effective);
	SPI_connect();
	values[0] = Int32GetDatum(topic->topic_id);
	values[1] = JsonbPGetDatum(config);
	SlCatalogQuery("UPDATE streamlog.topic SET config = $2 WHERE topic_id = $1",
				   2, types, values, NULL);
	SPI_finish();
	catalog_changed_in_xact();

	/*
	 * The key index is built from the log in this transaction, or dropped.
	 * Whether it exists is what counts, not the old setting: setting
	 * key.index again rebuilds an index that went missing (a restore that
	 * left it out).
	 */
	if (effective.key_index && !OidIsValid(SlKeyIndexRelid(topic->topic_id)))
		SlKeyIndexCreate(topic->topic_id, topic);
	else if (!effective.key_index)
		SlKeyIndexDrop(topic->topic_id);
}

void
SlTopicAlterConfig(const char *name, Jsonb *changes)
{
	const SlTopic *topic = SlTopicLookupAndLock(name, AccessExclusiveLock);

	SlTopicSetConfigLocked(topic, SlTopicCheckAlterConfig(topic, changes));
}

void
SlTopicCheckAddPartitions(const SlTopic *topic, int32 count)
{
	int32		old_count = topic->partition_count;

	if (count < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot add %d partitions to topic \"%s\": the number to add must be at least 1",
						count, topic->name),
				 errdetail("Topic \"%s\" has %d partitions; the count is how many to add, not the new total.",
						   topic->name, old_count),
				 errhint("To have %d partitions, call streamlog.add_partitions('%s', 1).  "
						 "Partitions cannot be removed, in Kafka or in streamlog.",
						 old_count + 1, topic->name)));
	if ((int64) old_count + count > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many partitions")));
	/* the new partitions are the topic owner's, whoever adds them */
	check_partition_budget(count, topic->owner);
}

void
SlTopicAddPartitionsLocked(const SlTopic *topic, int32 new_count,
						   const SlPartitionLeadership *leadership)
{
	int32		old_count = topic->partition_count;
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2];

	create_partitions(topic->topic_id, old_count, new_count, leadership);
	forget_at_end(topic->topic_id, old_count, false);
	SPI_connect();
	values[0] = Int32GetDatum(topic->topic_id);
	values[1] = Int32GetDatum(new_count);
	SlCatalogQuery("UPDATE streamlog.topic SET partition_count = $2 WHERE topic_id = $1",
				   2, types, values, NULL);
	SPI_finish();
	catalog_changed_in_xact();
}

int32
SlTopicAddPartitions(const char *name, int32 count)
{
	const SlTopic *topic;

	/* streamlog hashes groups and transactional ids onto their partitions */
	SlTopicRefuseInternal(name, "add partitions to");
	topic = SlTopicLookupAndLock(name, AccessExclusiveLock);
	SlTopicCheckAddPartitions(topic, count);
	SlTopicAddPartitionsLocked(topic, topic->partition_count + count, NULL);
	return topic->partition_count + count;
}

bool
SlTopicTryLock(int32 topic_id, LOCKMODE mode)
{
	return ConditionalLockDatabaseObject(topic_class(), topic_id, 0, mode);
}

void
SlTopicsCatalogChanged(void)
{
	catalog_changed_in_xact();
}

const SlTopic *
SlTopicLookupByUuid(const uint8 *uuid)
{
	pg_uuid_t	key;
	Oid			types[1] = {UUIDOID};
	Datum		values[1];
	char	   *name = NULL;
	MemoryContext caller = CurrentMemoryContext;

	memcpy(key.data, uuid, 16);
	values[0] = UUIDPGetDatum(&key);
	SPI_connect();
	if (SlCatalogQuery("SELECT name FROM streamlog.topic WHERE topic_uuid = $1",
					   1, types, values, NULL) > 0)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(caller);

		name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return name ? SlTopicLookup(name, true) : NULL;
}

List *
SlTopicListNames(void)
{
	List	   *names;
	MemoryContext caller = CurrentMemoryContext;
	uint64		n;

	SPI_connect();
	n = SlCatalogQuery("SELECT name FROM streamlog.topic ORDER BY name", 0, NULL, NULL, NULL);
	names = SlCatalogTexts(n, 1, caller);
	SPI_finish();
	return names;
}

typedef struct OwnedTopics
{
	Oid			role;
	Oid			new_owner;
	MemoryContext caller;
	List	   *names;
} OwnedTopics;

static void
list_owned(void *arg)
{
	OwnedTopics *owned = arg;
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(owned->role)};
	uint64		n;

	SPI_connect();
	n = SlCatalogQuery("SELECT name FROM streamlog.topic WHERE owner = $1 ORDER BY name",
					   1, types, values, NULL);
	owned->names = SlCatalogTexts(n, 1, owned->caller);
	SPI_finish();
}

static void
reassign_owned(void *arg)
{
	OwnedTopics *owned = arg;
	Oid			types[2] = {OIDOID, OIDOID};
	Datum		values[2] = {ObjectIdGetDatum(owned->role), ObjectIdGetDatum(owned->new_owner)};
	uint64		n;

	SPI_connect();
	n = SlCatalogQuery("UPDATE streamlog.topic SET owner = $2 WHERE owner = $1 RETURNING name",
					   2, types, values, NULL);
	owned->names = SlCatalogTexts(n, 1, owned->caller);
	SPI_finish();
}

List *
SlTopicListOwnedBy(Oid role)
{
	OwnedTopics owned = {role, InvalidOid, CurrentMemoryContext, NIL};

	SlCheckPreloaded();
	list_owned(&owned);
	return owned.names;
}

List *
SlTopicReassignOwner(Oid from, Oid to)
{
	OwnedTopics owned = {from, to, CurrentMemoryContext, NIL};

	SlCheckPreloaded();
	reassign_owned(&owned);
	if (owned.names != NIL)
		catalog_changed_in_xact();
	return owned.names;
}

List *
SlTopicListIds(void)
{
	List	   *ids = NIL;
	MemoryContext caller = CurrentMemoryContext;
	uint64		n;

	SPI_connect();
	n = SlCatalogQuery("SELECT topic_id FROM streamlog.topic ORDER BY topic_id",
					   0, NULL, NULL, NULL);
	for (uint64 i = 0; i < n; i++)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(caller);

		ids = lappend_int(ids, SlCatalogInt32(i, 1, 0));
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return ids;
}

/* After commit: publish the change to every backend's cache (see xact.c) */
void
SlTopicsXactEvent(XactEvent event)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			foreach(lc, pending_forgets)
			{
				PendingForget *forget = lfirst(lc);

				if (forget->on_commit)
					SlPartitionStateForget(forget->key);
			}
			if (catalog_changed)
				pg_atomic_fetch_add_u64(&sl_shared->catalog_generation, 1);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:

			/*
			 * Partitions this transaction added are invisible to everyone
			 * else, so nobody else holds their state; our own reservations
			 * were released by log_append.c, which xact.c calls first.
			 */
			foreach(lc, pending_forgets)
			{
				PendingForget *forget = lfirst(lc);

				if (!forget->on_commit)
					SlPartitionStateForget(forget->key);
			}
			/* Our own cache may hold rows that never committed */
			if (catalog_changed)
				topic_cache_generation = 0;
			break;
		default:
			return;
	}
	pending_forgets = NIL;
	catalog_changed = false;
}

/* A rolled-back drop is off; rolled-back partitions are gone */
static void
undo_forget(SlPendingWork *work)
{
	PendingForget *forget = (PendingForget *) work;

	if (!forget->on_commit)
		SlPartitionStateForget(forget->key);
}

/* A rolled-back savepoint takes back the drops made within it */
void
SlTopicsSubXactAbort(SubTransactionId subid)
{
	SlPendingWorkAbortSub(&pending_forgets, subid, undo_forget);
	if (catalog_changed)
		topic_cache_generation = 0;
}

/* streamlog.topic itself was dropped (DROP EXTENSION) or altered */
static void
topics_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == topic_class_oid)
		topic_cache_generation = 0;
}

void
SlTopicsInit(void)
{
	CacheRegisterRelcacheCallback(topics_relcache_callback, (Datum) 0);
}

Jsonb *
SlTopicExplicitConfig(int32 topic_id)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(topic_id)};
	MemoryContext caller = CurrentMemoryContext;
	Jsonb	   *config = NULL;

	SPI_connect();
	if (SlCatalogQuery("SELECT config FROM streamlog.topic WHERE topic_id = $1",
					   1, types, values, NULL) > 0)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(caller);

			config = DatumGetJsonbPCopy(d);
			MemoryContextSwitchTo(oldcxt);
		}
	}
	SPI_finish();
	return config;
}
