/*
 * Client quotas, see quotas.h.
 *
 * Which quota applies: for each quota key on its own, the first entity
 * that has one, in Kafka's order of precedence (KIP-55):
 *   user + client id, user + <default> client id, user,
 *   <default> user + client id, <default> user + <default> client id,
 *   <default> user, client id, <default> client id.
 * Whose requests share it: the parts the entity names, as Kafka's metric
 * tags: a quota set for a user is shared by all that user's clients, one
 * set for <default> client ids is one per client id.
 *
 * How fast: Kafka's sampled rate with quota.window.num = 11 samples of
 * quota.window.size.seconds = 1, in shared memory, so that a client with
 * connections to several workers is measured once.  When the rate passes
 * the quota, the throttle time is what brings it back under it, (rate -
 * quota) / quota x the measured window, at most the whole window (11 s).
 *
 * The user is the role the request runs as (the session's role once
 * authenticated, the bootstrap superuser before SASL).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/quotas.h"
#include "streamlog/storage/client_quotas.h"

#define QUOTA_SAMPLES 11		/* Kafka's quota.window.num */
#define QUOTA_SAMPLE_MS 1000	/* Kafka's quota.window.size.seconds */
#define QUOTA_MAX_THROTTLE_MS (QUOTA_SAMPLES * QUOTA_SAMPLE_MS)

/* Stored quotas are looked at again this often by each worker */
#define QUOTA_CONFIG_REFRESH_MS 1000

/* Client ids longer than this share the quota of their first bytes */
#define QUOTA_CLIENT_ID_MAX 256

/* Clients measured at once; the idle ones are forgotten when it is full */
#define QUOTA_MAX_SENSORS 8192

typedef enum QuotaType
{
	QUOTA_PRODUCE,
	QUOTA_FETCH,
	QUOTA_REQUEST,
	QUOTA_MUTATION,
	QUOTA_TYPES
} QuotaType;

static const char *const quota_keys[QUOTA_TYPES] = {
	[QUOTA_PRODUCE] = "producer_byte_rate",
	[QUOTA_FETCH] = "consumer_byte_rate",
	[QUOTA_REQUEST] = "request_percentage",
	[QUOTA_MUTATION] = "controller_mutation_rate",
};

/* Whose requests one rate counts: the parts of the entity that matched */
typedef struct SensorKey
{
	int32		type;
	char		user[NAMEDATALEN];	/* "" when shared by all users */
	char		client_id[QUOTA_CLIENT_ID_MAX];	/* "" when shared by all */
} SensorKey;

typedef struct Sensor
{
	SensorKey	key;
	int64		start_ms[QUOTA_SAMPLES];	/* 0: an empty sample */
	double		value[QUOTA_SAMPLES];
	int			current;
	int64		last_ms;		/* last recorded or measured */
} Sensor;

static HTAB *sensors = NULL;
static LWLock *sensors_lock = NULL;

/* This worker's copy of streamlog.client_quota */
static MemoryContext config_context = NULL;
static List *config = NIL;
static int64 config_loaded_ms = 0;

Size
SlQuotasShmemSize(void)
{
	return hash_estimate_size(QUOTA_MAX_SENSORS, sizeof(Sensor));
}

void
SlQuotasShmemInit(void)
{
	HASHCTL		info;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(SensorKey);
	info.entrysize = sizeof(Sensor);
	sensors = ShmemInitHash("streamlog quota sensors", QUOTA_MAX_SENSORS,
							QUOTA_MAX_SENSORS, &info, HASH_ELEM | HASH_BLOBS);
	sensors_lock = &(GetNamedLWLockTranche("streamlog quotas"))->lock;
}

static int64
now_ms(void)
{
	return GetCurrentTimestamp() / 1000;
}

/* Reload the stored quotas if this worker's copy is old; in a transaction */
static void
refresh_config(void)
{
	int64		now = now_ms();
	MemoryContext oldcxt;

	if (config_context != NULL && now - config_loaded_ms < QUOTA_CONFIG_REFRESH_MS)
		return;
	if (config_context == NULL)
		config_context = AllocSetContextCreate(TopMemoryContext, "streamlog quotas",
											   ALLOCSET_SMALL_SIZES);
	MemoryContextReset(config_context);
	config = NIL;
	oldcxt = MemoryContextSwitchTo(config_context);
	config = SlClientQuotasList();
	MemoryContextSwitchTo(oldcxt);
	config_loaded_ms = now;
}

/* How an entity's part must be to match at one level of precedence */
typedef enum PartMatch
{
	PART_NAMED,					/* this user / client id by name */
	PART_DEFAULT,				/* <default> */
	PART_ABSENT					/* the entity has no part of this type */
} PartMatch;

static const PartMatch precedence[][2] = {
	{PART_NAMED, PART_NAMED},
	{PART_NAMED, PART_DEFAULT},
	{PART_NAMED, PART_ABSENT},
	{PART_DEFAULT, PART_NAMED},
	{PART_DEFAULT, PART_DEFAULT},
	{PART_DEFAULT, PART_ABSENT},
	{PART_ABSENT, PART_NAMED},
	{PART_ABSENT, PART_DEFAULT},
};

static bool
part_matches(PartMatch how, bool has, const char *stored, const char *name)
{
	switch (how)
	{
		case PART_NAMED:
			return has && stored != NULL && strcmp(stored, name) == 0;
		case PART_DEFAULT:
			return has && stored == NULL;
		case PART_ABSENT:
			return !has;
	}
	return false;
}

/*
 * The quota of type for user and client_id, and the sensor that counts
 * against it; false if none applies
 */
static bool
resolve(QuotaType type, const char *user, const char *client_id, double *quota,
		SensorKey *key)
{
	for (int level = 0; level < lengthof(precedence); level++)
	{
		ListCell   *lc;

		foreach(lc, config)
		{
			SlClientQuota *q = lfirst(lc);

			if (strcmp(q->key, quota_keys[type]) != 0 ||
				!part_matches(precedence[level][0], q->has_user, q->user, user) ||
				!part_matches(precedence[level][1], q->has_client_id, q->client_id, client_id))
				continue;
			*quota = q->value;
			memset(key, 0, sizeof(*key));
			key->type = type;
			if (q->has_user)
				strlcpy(key->user, user, sizeof(key->user));
			if (q->has_client_id)
				strlcpy(key->client_id, client_id, sizeof(key->client_id));
			return true;
		}
	}
	return false;
}

/* Samples older than the whole window count no more */
static void
purge_obsolete(Sensor *s, int64 now)
{
	for (int i = 0; i < QUOTA_SAMPLES; i++)
		if (s->start_ms[i] != 0 && now - s->start_ms[i] >= QUOTA_MAX_THROTTLE_MS)
		{
			s->start_ms[i] = 0;
			s->value[i] = 0;
		}
}

/*
 * The rate of s now, and the window it was measured over: from the oldest
 * sample, but never less than all samples but one (Kafka's Rate), so that
 * a client's first second does not count as a whole window
 */
static double
measure(Sensor *s, int64 now, int64 *window_ms)
{
	double		total = 0;
	int64		oldest = now;
	int64		elapsed;
	int64		full_windows;

	purge_obsolete(s, now);
	for (int i = 0; i < QUOTA_SAMPLES; i++)
		if (s->start_ms[i] != 0)
		{
			total += s->value[i];
			oldest = Min(oldest, s->start_ms[i]);
		}
	elapsed = now - oldest;
	full_windows = elapsed / QUOTA_SAMPLE_MS;
	if (full_windows < QUOTA_SAMPLES - 1)
		elapsed += (QUOTA_SAMPLES - 1 - full_windows) * QUOTA_SAMPLE_MS;
	*window_ms = elapsed;
	return total * 1000.0 / (double) elapsed;
}

/* Forget the sensors nobody used for a whole window; under the lock */
static void
evict_idle(int64 now)
{
	HASH_SEQ_STATUS seq;
	Sensor	   *s;

	hash_seq_init(&seq, sensors);
	while ((s = hash_seq_search(&seq)) != NULL)
		if (now - s->last_ms >= QUOTA_MAX_THROTTLE_MS)
			hash_search(sensors, &s->key, HASH_REMOVE, NULL);
}

/*
 * Record value (0: only measure) on the sensor of key and return how long
 * its client is to be throttled for quota; with over_before, whether it
 * was over the quota before this record
 */
static int32
record(const SensorKey *key, double quota, double value, bool *over_before)
{
	int64		now = now_ms();
	Sensor	   *s;
	bool		found;
	double		rate;
	int64		window_ms;
	int32		throttle = 0;

	LWLockAcquire(sensors_lock, LW_EXCLUSIVE);
	s = hash_search(sensors, key, HASH_FIND, &found);
	if (s == NULL)
	{
		/*
		 * A shared hash table grows into the rest of shared memory: keep
		 * this one to its size, whatever client ids arrive
		 */
		if (hash_get_num_entries(sensors) >= QUOTA_MAX_SENSORS)
			evict_idle(now);
		if (hash_get_num_entries(sensors) < QUOTA_MAX_SENSORS)
			s = hash_search(sensors, key, HASH_ENTER_NULL, &found);
	}
	if (s == NULL)
	{
		/* every sensor is in use: this client goes unmeasured for now */
		LWLockRelease(sensors_lock);
		if (over_before)
			*over_before = false;
		return 0;
	}
	if (!found)
	{
		memset(s->start_ms, 0, sizeof(s->start_ms));
		memset(s->value, 0, sizeof(s->value));
		s->current = 0;
		s->start_ms[0] = now;
	}
	s->last_ms = now;
	if (over_before)
		*over_before = measure(s, now, &window_ms) > quota;
	if (value != 0)
	{
		/* the current sample, or a new one once it is a window old */
		if (s->start_ms[s->current] == 0 ||
			now - s->start_ms[s->current] >= QUOTA_SAMPLE_MS)
		{
			s->current = (s->current + 1) % QUOTA_SAMPLES;
			s->start_ms[s->current] = now;
			s->value[s->current] = 0;
		}
		s->value[s->current] += value;
	}
	rate = measure(s, now, &window_ms);
	if (rate > quota)
		throttle = (int32) Min((double) QUOTA_MAX_THROTTLE_MS,
							   (rate - quota) / quota * (double) window_ms + 0.5);
	LWLockRelease(sensors_lock);
	return throttle;
}

/*
 * Record value against req's quota of type, if one applies; returns the
 * throttle time
 */
static int32
record_for(SlRequest *req, QuotaType type, double value, bool *over_before)
{
	double		quota;
	SensorKey	key;

	if (over_before)
		*over_before = false;
	if (req->quota_user == NULL ||
		!resolve(type, req->quota_user, req->client_id, &quota, &key))
		return 0;
	return record(&key, quota, value, over_before);
}

/*
 * Whom req's quotas are looked up for: the role it runs as; in its
 * transaction
 */
static const char *
quota_user(SlRequest *req)
{
	char	   *name = GetUserNameFromId(GetUserId(), true);

	return name ? MemoryContextStrdup(req->context, name) : NULL;
}

/*
 * Partitions a topic administration request creates or deletes (KIP-599's
 * mutations), or -1 if req is none; counted as asked, before it is
 * handled
 */
static int
mutations(SlRequest *req)
{
	SlReader	body;
	int			n = 0;

	SlReaderInit(&body, req->frame + req->header_len, req->frame_len - req->header_len);
	switch (req->api_key)
	{
		case SL_API_CREATE_TOPICS:
			{
				SlCreateTopicsRequest r;

				if (!SlCreateTopicsRequestDecode(&body, req->api_version, &r))
					return 0;
				for (int i = 0; i < r.topics.n; i++)
				{
					SlCreateTopicsRequestCreatableTopic *t = &r.topics.items[i];

					n += t->assignments.n > 0 ? t->assignments.n :
						t->num_partitions > 0 ? t->num_partitions : sl_default_partitions;
				}
				return n;
			}
		case SL_API_CREATE_PARTITIONS:
			{
				SlCreatePartitionsRequest r;

				if (!SlCreatePartitionsRequestDecode(&body, req->api_version, &r))
					return 0;
				for (int i = 0; i < r.topics.n; i++)
				{
					char	   *name = SlTopicNameFromWire(r.topics.items[i].name);
					const SlTopic *topic = name ? SlTopicLookup(name, true) : NULL;

					if (topic != NULL)
						n += Max(0, r.topics.items[i].count - topic->partition_count);
				}
				return n;
			}
		case SL_API_DELETE_TOPICS:
			{
				SlDeleteTopicsRequest r;

				if (!SlDeleteTopicsRequestDecode(&body, req->api_version, &r))
					return 0;
				for (int i = 0; i < r.topic_names.n; i++)
				{
					char	   *name = SlTopicNameFromWire(r.topic_names.items[i]);
					const SlTopic *topic = name ? SlTopicLookup(name, true) : NULL;

					if (topic != NULL)
						n += topic->partition_count;
				}
				for (int i = 0; i < r.topics.n; i++)
				{
					const SlTopic *topic = NULL;

					if (r.topics.items[i].name.len > 0)
					{
						char	   *name = SlTopicNameFromWire(r.topics.items[i].name);

						topic = name ? SlTopicLookup(name, true) : NULL;
					}
					else
						topic = SlTopicLookupByUuid(r.topics.items[i].topic_id.data);
					if (topic != NULL)
						n += topic->partition_count;
				}
				return n;
			}
		default:
			return -1;
	}
}

/* KIP-599: versions that are refused over quota; older ones are only throttled */
static bool
mutation_strict(const SlRequest *req)
{
	switch (req->api_key)
	{
		case SL_API_CREATE_TOPICS:
			return req->api_version >= 6;
		case SL_API_CREATE_PARTITIONS:
			return req->api_version >= 3;
		case SL_API_DELETE_TOPICS:
			return req->api_version >= 5;
		default:
			return false;
	}
}

bool
SlQuotasInForce(void)
{
	return config != NIL;
}

int16
SlQuotaBeforeRequest(SlRequest *req)
{
	int			mutated;
	int32		throttle = 0;

	req->throttle_ms = 0;
	refresh_config();
	if (config == NIL)
		return SL_ERR_NONE;
	if (req->quota_user == NULL)
		req->quota_user = quota_user(req);

	/* what the client used so far of its request time */
	throttle = record_for(req, QUOTA_REQUEST, 0, NULL);

	if (req->api_key == SL_API_PRODUCE)
		throttle = Max(throttle, record_for(req, QUOTA_PRODUCE, (double) req->frame_len, NULL));
	else if (req->api_key == SL_API_FETCH)
	{
		int32		fetch_throttle = record_for(req, QUOTA_FETCH, 0, NULL);

		/* over its byte rate: answered at once, without records */
		if (fetch_throttle > 0)
		{
			req->response_room = 0;
			req->final_attempt = true;
		}
		throttle = Max(throttle, fetch_throttle);
	}
	else if ((mutated = mutations(req)) >= 0)
	{
		bool		over;
		int32		mutation_throttle;

		/* a strict request over quota mutates nothing, so records nothing */
		mutation_throttle = record_for(req, QUOTA_MUTATION, 0, &over);
		if (over && mutation_strict(req))
		{
			req->throttle_ms = Max(throttle, mutation_throttle);
			return SL_ERR_THROTTLING_QUOTA_EXCEEDED;
		}
		throttle = Max(throttle, record_for(req, QUOTA_MUTATION, (double) mutated, NULL));
	}
	req->throttle_ms = throttle;
	return SL_ERR_NONE;
}

/*
 * Since which version the first field of an API's response body is
 * throttle_time_ms (from Kafka's message schemas), -1 for never; Produce,
 * whose throttle_time_ms comes last, is apart
 */
static int
throttle_first_since(int16 api_key)
{
	switch (api_key)
	{
		case SL_API_FETCH:
		case SL_API_HEARTBEAT:
		case SL_API_LEAVE_GROUP:
		case SL_API_SYNC_GROUP:
		case SL_API_DESCRIBE_GROUPS:
		case SL_API_LIST_GROUPS:
		case SL_API_DELETE_TOPICS:
		case SL_API_FIND_COORDINATOR:
			return 1;
		case SL_API_LIST_OFFSETS:
		case SL_API_JOIN_GROUP:
		case SL_API_CREATE_TOPICS:
			return 2;
		case SL_API_METADATA:
		case SL_API_OFFSET_COMMIT:
		case SL_API_OFFSET_FETCH:
			return 3;
		case SL_API_DELETE_RECORDS:
		case SL_API_INIT_PRODUCER_ID:
		case SL_API_DESCRIBE_CONFIGS:
		case SL_API_ALTER_CONFIGS:
		case SL_API_CREATE_PARTITIONS:
		case SL_API_DELETE_GROUPS:
		case SL_API_INCREMENTAL_ALTER_CONFIGS:
		case SL_API_DESCRIBE_CLIENT_QUOTAS:
		case SL_API_ALTER_CLIENT_QUOTAS:
		case SL_API_DESCRIBE_CLUSTER:
			return 0;
		default:
			return -1;
	}
}

static void
store_int32(char *p, int32 v)
{
	p[0] = (char) ((uint32) v >> 24);
	p[1] = (char) ((uint32) v >> 16);
	p[2] = (char) ((uint32) v >> 8);
	p[3] = (char) (uint32) v;
}

/*
 * Write req->throttle_ms into the throttle_time_ms of req's encoded
 * response: right after the response header for most APIs, last (before
 * the tagged fields of a flexible version) for Produce v1+
 */
static void
write_throttle(SlRequest *req)
{
	bool		flexible = SlResponseHeaderVersion(req->api_key, req->api_version) >= 1;
	int			header = 4 + (flexible ? 1 : 0);
	int			since = throttle_first_since(req->api_key);
	int			pos = -1;

	if (req->api_key == SL_API_PRODUCE && req->api_version >= 1)
	{
		/* its response has no tagged fields of its own below v10 */
		pos = req->response.len - 4 - (req->api_version >= 9 ? 1 : 0);
	}
	else if (since >= 0 && req->api_version >= since)
		pos = header;
	if (pos >= header && pos + 4 <= req->response.len &&
		(req->response_nrefs == 0 || pos + 4 <= (int) req->response_refs[0].offset))
		store_int32(req->response.data + pos, req->throttle_ms);
}

void
SlQuotaAfterRequest(SlRequest *req, int64 elapsed_us)
{
	if (config == NIL || req->quota_user == NULL)
		return;

	/*
	 * Kafka's request_percentage: time used, as a percentage of a second.
	 * This answer is throttled on what came before it; the next one on
	 * this too.
	 */
	record_for(req, QUOTA_REQUEST, (double) elapsed_us / 10000.0, NULL);
	if (req->state != SL_REQUEST_DONE)
		return;
	if (req->api_key == SL_API_FETCH)
		record_for(req, QUOTA_FETCH,
				   (double) req->response.len + (double) req->response_ref_bytes, NULL);
	if (req->throttle_ms > 0 && req->send_response)
		write_throttle(req);
}
