/*
 * The cluster's metadata image written into this node's catalog, see
 * cluster_catalog.h.
 *
 * The image is the truth and the catalog a copy of it: whatever the
 * catalog held, a sync leaves the topics the image has, with its ids,
 * names, configs, partitions and leadership, and nothing else.  Topics are
 * created, dropped, resized and configured by the same functions as the
 * standalone topic DDL (storage/internal/topics.h), so a topic made here is
 * the topic a node of its own would have made, and every backend's topic
 * cache is flushed when the sync commits (catalog generation).
 *
 * Dropping, resizing or reconfiguring a topic takes its lock in
 * AccessExclusiveLock, as the DDL does, but without waiting: the Raft
 * worker that syncs must go on heartbeating, so a topic some transaction
 * holds (an idle one that produced to it, say) makes the sync fail with
 * lock_not_available, and the worker tries again after its next round.
 * Leadership changes take no lock: the log does not change with them, and
 * the doors read leadership from the topic they look up.
 *
 * A sync follows every committed change, and most change one topic or a
 * few partitions: what the calling process (the Raft worker) last wrote
 * and committed is remembered (the synced cache), and only topics and
 * partitions that differ from it are looked at again.  The cache is
 * replaced when a sync commits, kept as it was when one aborts, and
 * forgotten when streamlog.topic is another table (the extension was
 * created again).
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "streamlog/cluster/metadata_image.h"
#include "streamlog/storage/cluster_catalog.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/topics.h"
#include "streamlog/storage/storage.h"

/*
 * A topic as the last committed sync of this process wrote it: enough to
 * tell whether the image changed it since.  Partitions' leadership is
 * told by their epochs, since any change bumps the partition epoch.
 */
typedef struct SyncedTopic
{
	int32		topic_id;		/* hash key */
	uint8		uuid[16];
	int32		partition_count;
	uint32		config_hash;	/* of the image's config text */
	int32	   *leader;			/* [partition_count] */
	int32	   *leader_epoch;
	int32	   *partition_epoch;
} SyncedTopic;

static HTAB *synced = NULL;		/* committed */
static MemoryContext synced_context = NULL;
static Oid	synced_catalog = InvalidOid;	/* streamlog.topic it is of */
static HTAB *pending = NULL;	/* written by the sync under way */
static MemoryContext pending_context = NULL;
static bool xact_callback_registered = false;

static HTAB *
synced_create(MemoryContext cxt)
{
	HASHCTL		info;

	info.keysize = sizeof(int32);
	info.entrysize = sizeof(SyncedTopic);
	info.hcxt = cxt;
	return hash_create("streamlog synced topics", 256, &info,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* The sync's transaction ended: what it wrote is the cache, or nothing */
static void
synced_xact_callback(XactEvent event, void *arg)
{
	if (pending == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (synced_context != NULL)
				MemoryContextDelete(synced_context);
			synced = pending;
			synced_context = pending_context;
			break;
		case XACT_EVENT_ABORT:
			MemoryContextDelete(pending_context);
			break;
		default:
			return;
	}
	pending = NULL;
	pending_context = NULL;
}

static uint32
config_hash(const SlMetaTopic *t)
{
	const char *config = t->config_json ? t->config_json : "{}";

	return hash_bytes((const unsigned char *) config, strlen(config));
}

/* Is the image's topic as the cache says the catalog has it? */
static bool
topic_unchanged(const SlMetaTopic *t)
{
	SyncedTopic *s = synced ? hash_search(synced, &t->topic_id, HASH_FIND, NULL) : NULL;

	return s != NULL && memcmp(s->uuid, t->uuid, 16) == 0 &&
		s->partition_count == t->partition_count && s->config_hash == config_hash(t);
}

/* Is partition p of the image's topic as the cache says? */
static bool
partition_unchanged(const SlMetaTopic *t, int32 p)
{
	SyncedTopic *s = synced ? hash_search(synced, &t->topic_id, HASH_FIND, NULL) : NULL;
	const SlMetaPartition *mp = &t->partitions[p];

	/*
	 * a partition under reassignment is always written: a topic created
	 * here from an image takes its replicas, not its reassignment
	 */
	return s != NULL && memcmp(s->uuid, t->uuid, 16) == 0 && p < s->partition_count &&
		s->leader[p] == mp->leader && s->leader_epoch[p] == mp->leader_epoch &&
		s->partition_epoch[p] == mp->partition_epoch &&
		mp->nadding == 0 && mp->nremoving == 0;
}

/* What this sync leaves in the catalog, for the cache once it commits */
static void
pending_note(const SlMetaImage *image)
{
	if (pending_context != NULL)
		MemoryContextDelete(pending_context);
	pending_context = AllocSetContextCreate(TopMemoryContext, "streamlog synced topics",
											ALLOCSET_DEFAULT_SIZES);
	pending = synced_create(pending_context);
	for (int32 i = 0; i < image->ntopics; i++)
	{
		const SlMetaTopic *t = &image->topics[i];
		SyncedTopic *s;
		int32		n = t->partition_count;

		s = hash_search(pending, &t->topic_id, HASH_ENTER, NULL);
		memcpy(s->uuid, t->uuid, 16);
		s->partition_count = n;
		s->config_hash = config_hash(t);
		s->leader = MemoryContextAlloc(pending_context, sizeof(int32) * Max(n, 1));
		s->leader_epoch = MemoryContextAlloc(pending_context, sizeof(int32) * Max(n, 1));
		s->partition_epoch = MemoryContextAlloc(pending_context, sizeof(int32) * Max(n, 1));
		for (int32 p = 0; p < n; p++)
		{
			s->leader[p] = t->partitions[p].leader;
			s->leader_epoch[p] = t->partitions[p].leader_epoch;
			s->partition_epoch[p] = t->partitions[p].partition_epoch;
		}
	}
	if (!xact_callback_registered)
	{
		RegisterXactCallback(synced_xact_callback, NULL);
		xact_callback_registered = true;
	}
}

/* A topic of the catalog, as the sync compares it to the image */
typedef struct CatalogTopic
{
	int32		topic_id;
	uint8		uuid[16];
} CatalogTopic;

/* The topics of the catalog */
static List *
catalog_topics(void)
{
	List	   *topics = NIL;
	MemoryContext caller = CurrentMemoryContext;
	uint64		n;

	SPI_connect();
	n = SlCatalogQuery("SELECT topic_id, topic_uuid FROM streamlog.topic", 0, NULL, NULL, NULL);
	for (uint64 r = 0; r < n; r++)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(caller);
		CatalogTopic *t = palloc(sizeof(CatalogTopic));
		bool		isnull;

		t->topic_id = SlCatalogInt32(r, 1, 0);
		memcpy(t->uuid,
			   DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc,
										   2, &isnull))->data, 16);
		topics = lappend(topics, t);
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return topics;
}

/*
 * The image's topic by id, NULL if none: a linear look, so that storage
 * needs none of the image's own functions (the cluster layer's objects);
 * once per catalog topic and sync, it costs nothing next to the sync.
 */
static const SlMetaTopic *
image_topic(const SlMetaImage *image, int32 topic_id)
{
	for (int32 i = 0; i < image->ntopics; i++)
		if (image->topics[i].topic_id == topic_id)
			return &image->topics[i];
	return NULL;
}

/* Lock a topic for a change, or fail so that the sync is tried again */
static void
lock_for_change(int32 topic_id, const char *name)
{
	if (!SlTopicTryLock(topic_id, AccessExclusiveLock))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("cannot apply the cluster's change of topic \"%s\" yet: a transaction holds the topic",
						name),
				 errdetail("The change was committed by the cluster; this node applies it once the transaction ends."),
				 errhint("End the sessions that produce to, read or alter the topic in an open transaction.")));
}

/*
 * The image's explicit config of a topic as jsonb, normalized as the
 * topic DDL stores it; NULL (with a WARNING) if this node cannot take it
 * or the name (a newer node's config, say): the entry is committed, so
 * refusing it here would stop the sync for good.  Checked in a
 * subtransaction, which an error rolls back.
 */
static Jsonb *
image_topic_config(const SlMetaTopic *t)
{
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Jsonb	   *config = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller);
	PG_TRY();
	{
		SlTopicConfig effective;
		Jsonb	   *parsed;

		SlTopicValidateName(t->name);
		parsed = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
													CStringGetDatum(t->config_json ? t->config_json : "{}")));
		SlTopicConfigDefaults(&effective);
		config = SlTopicConfigApply(parsed, &effective);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
		ereport(WARNING,
				(errmsg("topic \"%s\" of the cluster's metadata cannot be created on this node: %s",
						t->name ? t->name : "", edata->message),
				 errhint("Upgrade this node to the version of the other nodes.")));
		config = NULL;
	}
	PG_END_TRY();
	return config;
}

/* The image's owner of a topic as a role of this node */
static Oid
image_topic_owner(const SlMetaTopic *t)
{
	Oid			role;

	if (SlTopicNameIsInternal(t->name))
		return BOOTSTRAP_SUPERUSERID;
	role = t->owner ? get_role_oid(t->owner, true) : InvalidOid;
	if (OidIsValid(role))
		return role;
	ereport(LOG,
			(errmsg("topic \"%s\" of the cluster is owned by role \"%s\", which this node does not have; the bootstrap superuser owns it here",
					t->name, t->owner ? t->owner : "")));
	return BOOTSTRAP_SUPERUSERID;
}

/* Partitions [from, to) of an image topic as SlPartitionLeadership */
static SlPartitionLeadership *
image_leadership(const SlMetaTopic *t, int32 from, int32 to)
{
	SlPartitionLeadership *l = palloc0(sizeof(SlPartitionLeadership) * Max(to - from, 1));

	for (int32 p = from; p < to; p++)
	{
		const SlMetaPartition *mp = &t->partitions[p];
		SlPartitionLeadership *out = &l[p - from];

		out->leader = mp->leader;
		out->leader_epoch = mp->leader_epoch;
		out->partition_epoch = mp->partition_epoch;
		out->nreplicas = mp->nreplicas;
		out->replicas = mp->replicas;
		out->nisr = mp->nisr;
		out->isr = mp->isr;
	}
	return l;
}

/* Does an image topic look like one this code can write? */
static bool
image_topic_sane(const SlMetaTopic *t)
{
	if (t->name == NULL || t->topic_id <= 0 || t->partition_count < 1)
		return false;
	for (int32 p = 0; p < t->partition_count; p++)
		if (t->partitions[p].partition != p ||
			t->partitions[p].nreplicas < 0 || t->partitions[p].nisr < 0 ||
			t->partitions[p].nadding < 0 || t->partitions[p].nremoving < 0)
			return false;
	return true;
}

/* Bring one topic of the image into the catalog */
static void
sync_topic(const SlMetaTopic *t)
{
	const SlTopic *topic;
	Jsonb	   *config;

	if (!image_topic_sane(t))
	{
		ereport(WARNING,
				(errmsg("topic %d of the cluster's metadata is malformed, skipped", t->topic_id)));
		return;
	}
	config = image_topic_config(t);
	if (config == NULL)
		return;
	topic = SlTopicLookupById(t->topic_id);
	if (topic == NULL)
	{
		SlTopicCreateWithId(t->topic_id, t->uuid, t->name, t->partition_count,
							image_topic_owner(t), config,
							image_leadership(t, 0, t->partition_count));
		return;
	}
	if (t->partition_count > topic->partition_count)
	{
		lock_for_change(topic->topic_id, topic->name);
		SlTopicAddPartitionsLocked(topic, t->partition_count,
								   image_leadership(t, topic->partition_count,
													t->partition_count));
	}
	else if (t->partition_count < topic->partition_count)
		ereport(WARNING,
				(errmsg("topic \"%s\" has %d partitions on this node, more than the %d of the cluster's metadata",
						topic->name, topic->partition_count, t->partition_count)));

	/* jsonb's text is canonical (keys in order): equal text, equal config */
	{
		Jsonb	   *current = SlTopicExplicitConfig(topic->topic_id);
		char	   *now = current ? JsonbToCString(NULL, &current->root, VARSIZE(current)) : "{}";
		char	   *wanted = JsonbToCString(NULL, &config->root, VARSIZE(config));

		if (strcmp(now, wanted) != 0)
		{
			lock_for_change(topic->topic_id, topic->name);
			SlTopicSetConfigLocked(topic, config);
		}
	}
}

/* text of an int4[] literal, for passing arrays of arrays as text[] */
static Datum
node_list_text(const int32_t *ids, int32_t n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int32_t i = 0; i < n; i++)
		appendStringInfo(&buf, i ? ",%d" : "%d", ids[i]);
	appendStringInfoChar(&buf, '}');
	return CStringGetTextDatum(buf.data);
}

static Datum
datum_array(Datum *elems, int n, Oid type)
{
	if (type == INT4OID)
		return PointerGetDatum(construct_array(elems, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Write every partition's leadership where it differs, in one statement:
 * a sync follows every committed change, and most leave most partitions
 * as they were.  Returns how many partitions changed.
 */
static uint64
sync_leadership(const SlMetaImage *image)
{
	static const SlNamedQuery update = {
		"UPDATE streamlog.partition p SET leader_id = u.l, leader_epoch = u.le, "
		"partition_epoch = u.pe, replicas = u.r::int4[], isr = u.i::int4[], "
		"adding_replicas = u.a::int4[], removing_replicas = u.d::int4[] "
		"FROM unnest($1::int4[], $2::int4[], $3::int4[], $4::int4[], $5::int4[], "
		"$6::text[], $7::text[], $8::text[], $9::text[]) AS u(t, p, l, le, pe, r, i, a, d) "
		"WHERE p.topic_id = u.t AND p.partition = u.p "
		"AND (p.leader_id, p.leader_epoch, p.partition_epoch, p.replicas, p.isr, "
		"p.adding_replicas, p.removing_replicas) "
		"IS DISTINCT FROM (u.l, u.le, u.pe, u.r::int4[], u.i::int4[], u.a::int4[], u.d::int4[])",
		9, {INT4ARRAYOID, INT4ARRAYOID, INT4ARRAYOID, INT4ARRAYOID, INT4ARRAYOID,
		TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID}
	};
	int64		total = 0;
	Datum	   *cols[9];
	Datum		values[9];
	int			n = 0;
	uint64		changed;

	for (int32 i = 0; i < image->ntopics; i++)
		if (image_topic_sane(&image->topics[i]))
			for (int32 p = 0; p < image->topics[i].partition_count; p++)
				if (!partition_unchanged(&image->topics[i], p))
					total++;
	if (total == 0)
		return 0;
	if (total > MaxAllocSize / sizeof(Datum))
		elog(ERROR, "too many partitions in the cluster's metadata");
	for (int c = 0; c < 9; c++)
		cols[c] = palloc(sizeof(Datum) * total);
	for (int32 i = 0; i < image->ntopics; i++)
	{
		const SlMetaTopic *t = &image->topics[i];

		if (!image_topic_sane(t))
			continue;
		for (int32 p = 0; p < t->partition_count; p++)
		{
			const SlMetaPartition *mp = &t->partitions[p];

			if (partition_unchanged(t, p))
				continue;
			cols[0][n] = Int32GetDatum(t->topic_id);
			cols[1][n] = Int32GetDatum(p);
			cols[2][n] = Int32GetDatum(mp->leader);
			cols[3][n] = Int32GetDatum(mp->leader_epoch);
			cols[4][n] = Int32GetDatum(mp->partition_epoch);
			cols[5][n] = node_list_text(mp->replicas, mp->nreplicas);
			cols[6][n] = node_list_text(mp->isr, mp->nisr);
			cols[7][n] = node_list_text(mp->adding, mp->nadding);
			cols[8][n] = node_list_text(mp->removing, mp->nremoving);
			n++;
		}
	}
	for (int c = 0; c < 9; c++)
		values[c] = datum_array(cols[c], n, c < 5 ? INT4OID : TEXTOID);
	SPI_connect();
	changed = SlCatalogRun(&update, values, NULL);
	SPI_finish();
	return changed;
}

void
SlClusterCatalogSync(const SlMetaImage *image)
{
	static const SlNamedQuery set_index = {
		"UPDATE streamlog.cluster_sync SET applied_index = $1", 1, {INT8OID}
	};
	MemoryContext sync_context = AllocSetContextCreate(CurrentMemoryContext,
													   "streamlog catalog sync",
													   ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(sync_context);
	bool		snapshot_pushed = false;
	ListCell   *lc;
	Datum		values[1];

	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		snapshot_pushed = true;
	}
	/*
	 * Never back: an image older than the catalog (a node replaying its
	 * log after a restart) would undo changes the catalog already has
	 */
	if (image->applied_index < SlClusterCatalogSyncedIndex())
	{
		if (snapshot_pushed)
			PopActiveSnapshot();
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(sync_context);
		return;
	}
	if (synced != NULL && synced_catalog != SlMakePartitionKey(0, 0).catalog)
	{
		MemoryContextDelete(synced_context);
		synced = NULL;
		synced_context = NULL;
	}
	synced_catalog = SlMakePartitionKey(0, 0).catalog;

	/* Drops first: a name may come back under a new id */
	foreach(lc, catalog_topics())
	{
		CatalogTopic *c = lfirst(lc);
		const SlMetaTopic *t = image_topic(image, c->topic_id);

		if (t == NULL || memcmp(t->uuid, c->uuid, 16) != 0)
		{
			const SlTopic *topic = SlTopicLookupById(c->topic_id);

			if (topic == NULL)
				continue;
			lock_for_change(topic->topic_id, topic->name);
			ereport(LOG,
					(errmsg("dropping topic \"%s\" (id %d): the cluster's metadata at index %llu %s",
							topic->name, topic->topic_id,
							(unsigned long long) image->applied_index,
							t == NULL ? "does not have it" : "has another topic of that id")));
			/*
			 * No tombstones in __consumer_offsets: its partitions' leaders
			 * write them, never a node that applies the metadata
			 */
			SlTopicDropLocked(topic, false);
		}
	}
	for (int32 i = 0; i < image->ntopics; i++)
		if (!topic_unchanged(&image->topics[i]))
			sync_topic(&image->topics[i]);
	if (sync_leadership(image) > 0)
		SlTopicsCatalogChanged();

	values[0] = Int64GetDatum((int64) image->applied_index);
	SPI_connect();
	SlCatalogRun(&set_index, values, NULL);
	SPI_finish();
	pending_note(image);

	if (snapshot_pushed)
		PopActiveSnapshot();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(sync_context);
}

uint64
SlClusterCatalogSyncedIndex(void)
{
	uint64		index = 0;

	SPI_connect();
	if (SlCatalogQuery("SELECT applied_index FROM streamlog.cluster_sync", 0, NULL, NULL, NULL) > 0)
		index = (uint64) SlCatalogInt64(0, 1, 0);
	SPI_finish();
	return index;
}
