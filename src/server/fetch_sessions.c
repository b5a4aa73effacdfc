/*
 * Incremental fetch sessions (KIP-227), one shard of the cache per broker
 * worker, in the worker's own memory: see server/fetch_sessions.h.
 *
 * Kafka's rules, kept here (FetchManager, FetchSession, FetchSessionCache
 * of Apache Kafka 3.9):
 * - session id 0 and epoch -1: sessionless, nothing is kept;
 * - epoch 0 or -1 (a full fetch): the named session, if any, is closed;
 *   epoch 0 then makes a new one once the response is ready (its epoch is
 *   1: the client's next fetch says 1);
 * - epoch > 0 (incremental): an unknown id is FETCH_SESSION_ID_NOT_FOUND,
 *   another epoch than the session's INVALID_FETCH_SESSION_EPOCH, a topic
 *   naming (ids or names) other than the session's
 *   FETCH_SESSION_TOPIC_ID_ERROR; otherwise the request's partitions are
 *   added or updated, the forgotten ones removed (a session left empty is
 *   closed and the fetch is sessionless), the epoch moves on and all the
 *   session's partitions are read;
 * - a partition is in an incremental answer if it has records, an error, a
 *   preferred read replica or a diverging epoch, or if its high watermark
 *   or log start offset is not what the client was last told; a partition
 *   that got records moves to the end of the session, so that the others
 *   get their share of the response's bytes next time;
 * - a full cache makes room by evicting the session unused for longest if
 *   that was more than streamlog.fetch_session_eviction_ms ago; otherwise
 *   a new session may evict the smallest (fewest partitions, then a
 *   consumer's before a replica's, then the lower id) of those it may
 *   evict, if it is itself at least as large: a consumer only sessions
 *   that had lived longer than the eviction time when last used, a
 *   replica also every consumer's session.  Otherwise there is no session
 *   and the answer says id 0.
 *
 * A session never holds more partitions than the server may have
 * (streamlog.max_partitions): a client cannot fill a worker's memory with
 * partitions that cannot exist.  A full fetch of more gets no session; an
 * incremental one that would grow past it (before its forgotten ones go)
 * ends its session, answered FETCH_SESSION_ID_NOT_FOUND: the client then
 * fetches in full, without a session.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metrics/fetch_session_counts.h"
#include "streamlog/server/fetch_sessions.h"
#include "streamlog/server/handlers.h"
#include "streamlog/shmem.h"

/*
 * Longest topic name a session keeps; Kafka's limit is 249 characters.  A
 * longer name cannot be a topic's, and is kept cut (it stays unknown).
 */
#define SESSION_NAME_MAX	256

/* A partition of a session: by topic name (v7-12) or topic id (v13+) */
typedef struct CachedPartitionKey
{
	uint8		topic_id[16];
	int32		partition;
	char		topic[SESSION_NAME_MAX];
} CachedPartitionKey;

typedef struct CachedPartition
{
	CachedPartitionKey key;		/* hash key, first */
	dlist_node	order;			/* in the session's order */
	/* what the client last asked */
	int32		current_leader_epoch;
	int64		fetch_offset;
	int32		last_fetched_epoch;
	int64		log_start_offset;
	int32		partition_max_bytes;
	/* what the client was last told; -1: tell it next time */
	int64		high_watermark;
	int64		local_log_start_offset;
} CachedPartition;

typedef struct FetchSession
{
	int32		id;
	int32		epoch;			/* the one the client's next fetch must carry */
	bool		privileged;
	bool		uses_topic_ids;
	TimestampTz created;
	TimestampTz last_used;
	int32		size;			/* partitions when last touched */
	/* when last touched: who may evict it without its being stale */
	bool		evictable_by_all;
	bool		evictable_by_privileged;
	MemoryContext context;		/* everything of the session */
	HTAB	   *partitions;		/* CachedPartitionKey -> CachedPartition */
	dlist_head	order;
} FetchSession;

/* This worker's shard: a few hundred sessions at most, scanned in a row */
static MemoryContext cache_context = NULL;
static FetchSession **sessions = NULL;
static int	nsessions = 0;
static int	shard_index = -1;
static pg_prng_state id_state;

/*
 * Partitions the shard's sessions hold in all, and what the metrics were
 * last told (fetch_session_counts.h): told again only when it changes
 */
static int64 cached_partitions = 0;
static int	told_sessions = -1;
static int64 told_partitions = -1;

/* Session ids of one worker: its own range of the positive int32 */
#define SESSION_ID_RANGE	(PG_INT32_MAX / SL_MAX_BROKERS)

/* The shard's sessions and partitions to the metrics, if they changed */
static void
tell_counts(void)
{
	if (nsessions == told_sessions && cached_partitions == told_partitions)
		return;
	SlFetchSessionCountsSet(shard_index, nsessions, cached_partitions);
	told_sessions = nsessions;
	told_partitions = cached_partitions;
}

void
SlFetchSessionsStart(int worker_index)
{
	shard_index = worker_index;
	/* ids unlike those of the worker this one replaces */
	if (!pg_prng_strong_seed(&id_state))
		pg_prng_seed(&id_state, (uint64) MyProcPid ^ (uint64) GetCurrentTimestamp());
	cache_context = AllocSetContextCreate(TopMemoryContext, "streamlog fetch sessions",
										  ALLOCSET_DEFAULT_SIZES);
	sessions = MemoryContextAllocZero(cache_context, sizeof(FetchSession *) * 16);
	nsessions = 0;
	cached_partitions = 0;
	told_sessions = -1;
	tell_counts();
}

/* The slots of this worker's shard (0: no sessions) */
static int
shard_slots(void)
{
	if (sl_fetch_session_cache_slots <= 0)
		return 0;
	return Max(1, sl_fetch_session_cache_slots / Max(sl_broker_workers, 1));
}

static int
find_session(int32 id)
{
	for (int i = 0; i < nsessions; i++)
		if (sessions[i]->id == id)
			return i;
	return -1;
}

static void
remove_session_at(int i)
{
	FetchSession *s = sessions[i];

	sessions[i] = sessions[--nsessions];
	cached_partitions -= hash_get_num_entries(s->partitions);
	MemoryContextDelete(s->context);
	tell_counts();
}

static void
remove_session(int32 id)
{
	int			i = find_session(id);

	if (i >= 0)
		remove_session_at(i);
}

/* Kafka's FetchSession.touch: used now, with its current size */
static void
touch(FetchSession *s, TimestampTz now)
{
	s->last_used = now;
	s->size = (int32) hash_get_num_entries(s->partitions);
	s->evictable_by_all = TimestampDifferenceExceeds(s->created, now,
													 sl_fetch_session_eviction_ms);
	s->evictable_by_privileged = !s->privileged || s->evictable_by_all;
}

/* Kafka's EvictableKey order: size, then privileged, then id */
static int
evictable_cmp(int32 size_a, bool priv_a, int32 id_a, const FetchSession *b)
{
	if (size_a != b->size)
		return size_a < b->size ? -1 : 1;
	if (priv_a != b->privileged)
		return priv_a ? 1 : -1;
	if (id_a != b->id)
		return id_a < b->id ? -1 : 1;
	return 0;
}

/* Kafka's FetchSessionCache.tryEvict: make room for a session of size */
static bool
try_evict(bool privileged, int32 size, TimestampTz now)
{
	int			oldest = -1;
	int			smallest = -1;

	for (int i = 0; i < nsessions; i++)
		if (oldest < 0 || sessions[i]->last_used < sessions[oldest]->last_used ||
			(sessions[i]->last_used == sessions[oldest]->last_used &&
			 sessions[i]->id < sessions[oldest]->id))
			oldest = i;
	if (oldest < 0)
		return false;
	if (TimestampDifferenceExceeds(sessions[oldest]->last_used, now,
								   sl_fetch_session_eviction_ms))
	{
		remove_session_at(oldest);
		SlFetchSessionCountsEvicted();
		return true;
	}
	for (int i = 0; i < nsessions; i++)
	{
		FetchSession *s = sessions[i];

		if (!(privileged ? s->evictable_by_privileged : s->evictable_by_all))
			continue;
		if (smallest < 0 ||
			evictable_cmp(s->size, s->privileged, s->id, sessions[smallest]) < 0)
			smallest = i;
	}
	if (smallest < 0 || evictable_cmp(size, privileged, 0, sessions[smallest]) < 0)
		return false;
	remove_session_at(smallest);
	SlFetchSessionCountsEvicted();
	return true;
}

/* A random id in this worker's range, not in use */
static int32
new_session_id(void)
{
	for (;;)
	{
		int32		id = shard_index * SESSION_ID_RANGE + 1 +
			(int32) pg_prng_uint64_range(&id_state, 0, SESSION_ID_RANGE - 2);

		if (find_session(id) < 0)
			return id;
	}
}

static int32
next_epoch(int32 epoch)
{
	if (epoch < 0)
		return epoch;
	return epoch == PG_INT32_MAX ? 1 : epoch + 1;
}

static void
make_key(CachedPartitionKey *key, bool uses_topic_ids, SlStr topic, const SlUuid *topic_id,
		 int32 partition)
{
	memset(key, 0, sizeof(*key));
	key->partition = partition;
	if (uses_topic_ids)
		memcpy(key->topic_id, topic_id->data, sizeof(key->topic_id));
	else if (topic.data != NULL && topic.len > 0)
		memcpy(key->topic, topic.data, Min(topic.len, SESSION_NAME_MAX - 1));
}

/* What the client asks of a partition, kept for the fetches that omit it */
static void
set_request_params(CachedPartition *cp, const SlFetchRequestFetchPartition *fp)
{
	cp->current_leader_epoch = fp->current_leader_epoch;
	cp->fetch_offset = fp->fetch_offset;
	cp->last_fetched_epoch = fp->last_fetched_epoch;
	cp->log_start_offset = fp->log_start_offset;
	cp->partition_max_bytes = fp->partition_max_bytes;
}

/* Add or update the request's partitions in s (new ones go last) */
static void
add_partitions(FetchSession *s, const SlFetchRequest *request)
{
	for (int t = 0; t < request->topics.n; t++)
	{
		const SlFetchRequestFetchTopic *ft = &request->topics.items[t];

		for (int p = 0; p < ft->partitions.n; p++)
		{
			const SlFetchRequestFetchPartition *fp = &ft->partitions.items[p];
			CachedPartitionKey key;
			CachedPartition *cp;
			bool		found;

			make_key(&key, s->uses_topic_ids, ft->topic, &ft->topic_id, fp->partition);
			cp = hash_search(s->partitions, &key, HASH_ENTER, &found);
			if (!found)
			{
				cached_partitions++;
				cp->high_watermark = -1;
				cp->local_log_start_offset = -1;
				dlist_push_tail(&s->order, &cp->order);
			}
			set_request_params(cp, fp);
		}
	}
}

/* How many of the request's partitions s does not hold yet */
static long
new_partitions(FetchSession *s, const SlFetchRequest *request)
{
	long		n = 0;

	for (int t = 0; t < request->topics.n; t++)
	{
		const SlFetchRequestFetchTopic *ft = &request->topics.items[t];

		for (int p = 0; p < ft->partitions.n; p++)
		{
			CachedPartitionKey key;

			make_key(&key, s->uses_topic_ids, ft->topic, &ft->topic_id,
					 ft->partitions.items[p].partition);
			if (hash_search(s->partitions, &key, HASH_FIND, NULL) == NULL)
				n++;
		}
	}
	return n;
}

static void
forget_partitions(FetchSession *s, const SlFetchRequest *request)
{
	for (int t = 0; t < request->forgotten_topics_data.n; t++)
	{
		const SlFetchRequestForgottenTopic *ft = &request->forgotten_topics_data.items[t];

		for (int p = 0; p < ft->partitions.n; p++)
		{
			CachedPartitionKey key;
			CachedPartition *cp;

			make_key(&key, s->uses_topic_ids, ft->topic, &ft->topic_id, ft->partitions.items[p]);
			cp = hash_search(s->partitions, &key, HASH_FIND, NULL);
			if (cp != NULL)
			{
				dlist_delete(&cp->order);
				hash_search(s->partitions, &key, HASH_REMOVE, NULL);
				cached_partitions--;
			}
		}
	}
}

static FetchSession *
new_session(bool privileged, bool uses_topic_ids, TimestampTz now)
{
	MemoryContext context = AllocSetContextCreate(cache_context, "streamlog fetch session",
												  ALLOCSET_SMALL_SIZES);
	FetchSession *s = MemoryContextAllocZero(context, sizeof(FetchSession));
	HASHCTL		info;

	s->context = context;
	s->privileged = privileged;
	s->uses_topic_ids = uses_topic_ids;
	s->created = now;
	s->epoch = next_epoch(SL_FETCH_SESSION_INITIAL_EPOCH);
	dlist_init(&s->order);
	info.keysize = sizeof(CachedPartitionKey);
	info.entrysize = sizeof(CachedPartition);
	info.hcxt = context;
	s->partitions = hash_create("streamlog fetch session partitions", 16, &info,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return s;
}

/*
 * The session's partitions as a request's topic list, in the session's
 * order, a topic entry for each run of partitions of one topic (as Kafka
 * groups them in its answer)
 */
static void
session_as_request(FetchSession *s, SlFetchRequest *request)
{
	int			n = (int) hash_get_num_entries(s->partitions);
	SlFetchRequestFetchTopic *topics = palloc0(sizeof(SlFetchRequestFetchTopic) * Max(n, 1));
	int			ntopics = 0;
	const CachedPartitionKey *prev = NULL;
	dlist_iter	it;

	dlist_foreach(it, &s->order)
	{
		CachedPartition *cp = dlist_container(CachedPartition, order, it.cur);
		SlFetchRequestFetchTopic *ft;
		SlFetchRequestFetchPartition *fp;

		if (prev == NULL || memcmp(prev->topic_id, cp->key.topic_id, 16) != 0 ||
			strcmp(prev->topic, cp->key.topic) != 0)
		{
			ft = &topics[ntopics++];
			SlFetchRequestFetchTopicInit(ft);
			memcpy(ft->topic_id.data, cp->key.topic_id, 16);
			ft->topic.data = pstrdup(cp->key.topic);
			ft->topic.len = (int32) strlen(cp->key.topic);
			ft->partitions.n = 0;
			/* at most what is left */
			ft->partitions.items = palloc0(sizeof(SlFetchRequestFetchPartition) * n);
		}
		ft = &topics[ntopics - 1];
		fp = &ft->partitions.items[ft->partitions.n++];
		SlFetchRequestFetchPartitionInit(fp);
		fp->partition = cp->key.partition;
		fp->current_leader_epoch = cp->current_leader_epoch;
		fp->fetch_offset = cp->fetch_offset;
		fp->last_fetched_epoch = cp->last_fetched_epoch;
		fp->log_start_offset = cp->log_start_offset;
		fp->partition_max_bytes = cp->partition_max_bytes;
		prev = &cp->key;
		n--;
	}
	request->topics.n = ntopics;
	request->topics.items = topics;
}

void
SlFetchSessionBegin(SlFetchRequest *request, int16 version, bool privileged,
					SlFetchSessionContext *ctx)
{
	FetchSession *s;
	int			i;

	memset(ctx, 0, sizeof(*ctx));
	ctx->kind = SL_FETCH_SESSIONLESS;
	ctx->privileged = privileged;
	ctx->uses_topic_ids = version >= 13;
	/* v0-6 have no session fields; a process that is no broker worker none */
	if (version < 7 || sessions == NULL)
		return;

	if (request->session_epoch == SL_FETCH_SESSION_INITIAL_EPOCH ||
		request->session_epoch == SL_FETCH_SESSION_FINAL_EPOCH)
	{
		/* a full fetch closes the session it names */
		if (request->session_id != SL_FETCH_SESSION_INVALID_ID)
			remove_session(request->session_id);
		if (request->session_epoch == SL_FETCH_SESSION_INITIAL_EPOCH)
			ctx->kind = SL_FETCH_FULL;
		return;
	}

	i = find_session(request->session_id);
	if (i < 0)
	{
		ctx->kind = SL_FETCH_SESSION_ERROR;
		ctx->error = SL_ERR_FETCH_SESSION_ID_NOT_FOUND;
		return;
	}
	s = sessions[i];
	if (s->epoch != request->session_epoch)
	{
		ctx->kind = SL_FETCH_SESSION_ERROR;
		ctx->error = SL_ERR_INVALID_FETCH_SESSION_EPOCH;
		return;
	}
	if (s->uses_topic_ids != ctx->uses_topic_ids)
	{
		ctx->kind = SL_FETCH_SESSION_ERROR;
		ctx->error = SL_ERR_FETCH_SESSION_TOPIC_ID_ERROR;
		return;
	}
	if (hash_get_num_entries(s->partitions) + new_partitions(s, request) > sl_max_partitions)
	{
		/*
		 * More partitions than the server can have: a client filling our
		 * memory.  The session goes; its full fetch gets none (below).
		 */
		remove_session_at(i);
		ctx->kind = SL_FETCH_SESSION_ERROR;
		ctx->error = SL_ERR_FETCH_SESSION_ID_NOT_FOUND;
		return;
	}
	add_partitions(s, request);
	forget_partitions(s, request);
	tell_counts();
	if (hash_get_num_entries(s->partitions) == 0)
	{
		/* nothing left to follow: the session ends, this fetch is sessionless */
		remove_session_at(i);
		return;
	}
	touch(s, GetCurrentTimestamp());
	s->epoch = next_epoch(s->epoch);
	ctx->kind = SL_FETCH_INCREMENTAL;
	ctx->session_id = s->id;
	session_as_request(s, request);
}

/*
 * Kafka's CachedPartition.maybeUpdateResponseData: whether the client must
 * hear about pr, remembering what it is told
 */
static bool
must_respond(CachedPartition *cp, const SlFetchResponsePartitionData *pr)
{
	bool		respond = false;

	if (pr->records.len > 0)
		respond = true;
	if (cp->high_watermark != pr->high_watermark)
	{
		respond = true;
		cp->high_watermark = pr->high_watermark;
	}
	if (cp->local_log_start_offset != pr->log_start_offset)
	{
		respond = true;
		cp->local_log_start_offset = pr->log_start_offset;
	}
	if (pr->preferred_read_replica >= 0)
		respond = true;
	if (pr->error_code != SL_ERR_NONE)
	{
		/* told again once the error is gone */
		cp->high_watermark = -1;
		respond = true;
	}
	if (pr->diverging_epoch.epoch >= 0 || pr->diverging_epoch.end_offset >= 0)
		respond = true;
	return respond;
}

/* A full fetch's new session, with what the response told; 0 if no room */
static int32
create_session(const SlFetchSessionContext *ctx, const SlFetchRequest *request,
			   const SlFetchResponse *resp)
{
	TimestampTz now = GetCurrentTimestamp();
	FetchSession *s;
	int32		size = 0;
	int			slots = shard_slots();

	for (int t = 0; t < request->topics.n; t++)
		size += request->topics.items[t].partitions.n;
	/* no session for more partitions than the server can have */
	if (size == 0 || slots == 0 || size > sl_max_partitions)
		return SL_FETCH_SESSION_INVALID_ID;
	if (nsessions >= slots && !try_evict(ctx->privileged, size, now))
		return SL_FETCH_SESSION_INVALID_ID;
	/* the GUC may have shrunk: never more than the slots */
	if (nsessions >= slots)
		return SL_FETCH_SESSION_INVALID_ID;

	s = new_session(ctx->privileged, ctx->uses_topic_ids, now);
	s->id = new_session_id();
	add_partitions(s, request);
	/* what the full answer told of each partition */
	for (int t = 0; t < request->topics.n && t < resp->responses.n; t++)
	{
		const SlFetchRequestFetchTopic *ft = &request->topics.items[t];
		const SlFetchResponseFetchableTopicResponse *tr = &resp->responses.items[t];

		for (int p = 0; p < tr->partitions.n; p++)
		{
			const SlFetchResponsePartitionData *pr = &tr->partitions.items[p];
			CachedPartitionKey key;
			CachedPartition *cp;

			make_key(&key, s->uses_topic_ids, ft->topic, &ft->topic_id, pr->partition_index);
			cp = hash_search(s->partitions, &key, HASH_FIND, NULL);
			if (cp == NULL)
				continue;
			cp->high_watermark = pr->error_code == SL_ERR_NONE ? pr->high_watermark : -1;
			cp->local_log_start_offset = pr->log_start_offset;
		}
	}
	touch(s, now);

	if (nsessions > 0 && nsessions % 16 == 0)
		sessions = repalloc(sessions, sizeof(FetchSession *) * (nsessions + 16));
	sessions[nsessions++] = s;
	tell_counts();
	return s->id;
}

/* Keep in resp only what the client must hear; move partitions with records last */
static void
filter_incremental(FetchSession *s, SlFetchResponse *resp)
{
	int			ntopics = 0;

	for (int t = 0; t < resp->responses.n; t++)
	{
		SlFetchResponseFetchableTopicResponse *tr = &resp->responses.items[t];
		int			kept = 0;

		for (int p = 0; p < tr->partitions.n; p++)
		{
			SlFetchResponsePartitionData *pr = &tr->partitions.items[p];
			CachedPartitionKey key;
			CachedPartition *cp;

			make_key(&key, s->uses_topic_ids, tr->topic, &tr->topic_id, pr->partition_index);
			cp = hash_search(s->partitions, &key, HASH_FIND, NULL);
			if (cp != NULL && !must_respond(cp, pr))
				continue;
			if (cp != NULL && pr->records.len > 0)
			{
				dlist_delete(&cp->order);
				dlist_push_tail(&s->order, &cp->order);
			}
			tr->partitions.items[kept++] = *pr;
		}
		tr->partitions.n = kept;
		if (kept > 0)
			resp->responses.items[ntopics++] = *tr;
	}
	resp->responses.n = ntopics;
}

void
SlFetchSessionFinish(const SlFetchSessionContext *ctx, const SlFetchRequest *request,
					 SlFetchResponse *resp)
{
	int			i;

	switch (ctx->kind)
	{
		case SL_FETCH_SESSIONLESS:
			resp->session_id = SL_FETCH_SESSION_INVALID_ID;
			break;
		case SL_FETCH_FULL:
			resp->session_id = create_session(ctx, request, resp);
			break;
		case SL_FETCH_INCREMENTAL:
			resp->session_id = ctx->session_id;
			/* evicted while the fetch waited: every partition is answered */
			i = find_session(ctx->session_id);
			if (i >= 0)
				filter_incremental(sessions[i], resp);
			break;
		case SL_FETCH_SESSION_ERROR:
			resp->error_code = ctx->error;
			resp->session_id = SL_FETCH_SESSION_INVALID_ID;
			resp->responses.n = 0;
			break;
	}
}
