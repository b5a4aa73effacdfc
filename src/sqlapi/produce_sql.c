/*
 * SQL: streamlog.produce() and streamlog.partition_for().
 *
 * Keys and values are declared "any" so that text, bytea, jsonb and json
 * all resolve without casts (an unknown literal becomes text); any other
 * type is produced as its text form.  Text is produced as UTF-8, whatever
 * the database encoding.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/sqlapi/cluster_sql.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog_produce);
PG_FUNCTION_INFO_V1(streamlog_partition_for);

/* How to turn an argument of some type into bytes */
typedef struct ArgConverter
{
	Oid			type;
	FmgrInfo	output;			/* for types without a special case */
	bool		output_ready;
} ArgConverter;

typedef enum HeadersKind
{
	HEADERS_OTHER,
	HEADERS_JSONB,
	HEADERS_TEXT,				/* JSON as text, e.g. an unknown literal */
	HEADERS_ARRAY				/* streamlog.header[] */
} HeadersKind;

/* Per call site state, in fn_extra */
typedef struct ProduceCache
{
	ArgConverter key;
	ArgConverter value;
	HeadersKind headers_kind;
	bool		headers_type_is_unknown;
	/* the topic last produced to, locked in this transaction */
	SlTopicLockCache topic_lock;
	/*
	 * The role that was last found to have WRITE on a topic, the topic, and
	 * the statement it was asked in: asked again in the next statement, by
	 * another role (SET ROLE, SECURITY DEFINER) or for another topic
	 */
	Oid			write_checked_role;
	TimestampTz write_checked_at;
	char		write_checked_topic[SL_TOPIC_NAME_MAX + 1];
	/* sticky partition for null keys */
	int32		sticky_partition;
	int64		sticky_bytes;
} ProduceCache;

static void
converter_init(ArgConverter *conv, Oid type)
{
	conv->type = type;
	conv->output_ready = false;
}

/* Bytes of text in the server encoding, as UTF-8 */
static const uint8 *
text_bytes(const char *data, int len, int32 *out_len)
{
	char	   *utf8 = pg_server_to_any(data, len, PG_UTF8);

	*out_len = (utf8 == data) ? len : (int32) strlen(utf8);
	return (const uint8 *) utf8;
}

/* The bytes of datum d of the converter's type */
static const uint8 *
datum_bytes(ArgConverter *conv, Datum d, int32 *len)
{
	switch (conv->type)
	{
		case BYTEAOID:
			{
				bytea	   *b = DatumGetByteaPP(d);

				*len = VARSIZE_ANY_EXHDR(b);
				return (const uint8 *) VARDATA_ANY(b);
			}
		case TEXTOID:
		case VARCHAROID:
		case JSONOID:
		case UNKNOWNOID:
			{
				text	   *t;

				if (conv->type == UNKNOWNOID)
					return text_bytes(DatumGetCString(d), strlen(DatumGetCString(d)), len);
				t = DatumGetTextPP(d);
				return text_bytes(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), len);
			}
		case JSONBOID:
			{
				Jsonb	   *jb = DatumGetJsonbP(d);
				char	   *s = JsonbToCString(NULL, &jb->root, VARSIZE(jb));

				return text_bytes(s, strlen(s), len);
			}
		default:
			{
				char	   *s;

				if (!conv->output_ready)
				{
					Oid			func;
					bool		varlena;

					getTypeOutputInfo(conv->type, &func, &varlena);
					fmgr_info_cxt(func, &conv->output, TopMemoryContext);
					conv->output_ready = true;
				}
				s = OutputFunctionCall(&conv->output, d);
				return text_bytes(s, strlen(s), len);
			}
	}
}

static void
add_header(SlRecordHeader **headers, int *n, int *cap,
		   const char *key, int key_len, const uint8 *value, int32 value_len)
{
	if (*n == *cap)
	{
		*cap = *cap ? *cap * 2 : 8;
		*headers = *headers ? repalloc(*headers, sizeof(SlRecordHeader) * *cap) :
			palloc(sizeof(SlRecordHeader) * *cap);
	}
	(*headers)[*n].key = key;
	(*headers)[*n].key_len = key_len;
	(*headers)[*n].value = value;
	(*headers)[*n].value_len = value_len;
	(*n)++;
}

/* A jsonb header value: strings as their text, null as null, others as JSON */
static void
jsonb_header_value(JsonbValue *v, const uint8 **value, int32 *len)
{
	if (v->type == jbvNull)
	{
		*value = NULL;
		*len = -1;
	}
	else if (v->type == jbvString)
		*value = text_bytes(v->val.string.val, v->val.string.len, len);
	else
	{
		Jsonb	   *jb = JsonbValueToJsonb(v);
		char	   *s = JsonbToCString(NULL, &jb->root, VARSIZE(jb));

		*value = text_bytes(s, strlen(s), len);
	}
}

static void
bad_headers(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("headers must be a JSON object or an array of [key, value] pairs"),
			 errhint("For example '{\"trace-id\": \"abc\"}' or '[[\"k\", \"v1\"], [\"k\", \"v2\"]]'; "
					 "or pass a streamlog.header[].")));
}

/* Headers from jsonb: {"k": "v", ...} or [["k", "v"], ...] */
static SlRecordHeader *
headers_from_jsonb(Jsonb *jb, int *count)
{
	SlRecordHeader *headers = NULL;
	int			n = 0;
	int			cap = 0;

	if (JB_ROOT_IS_SCALAR(jb))
		bad_headers();
	if (JB_ROOT_IS_OBJECT(jb))
	{
		JsonbIterator *it = JsonbIteratorInit(&jb->root);
		JsonbValue	k;
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			const uint8 *value;
			int32		value_len;
			int32		key_len;
			const char *key;

			if (tok != WJB_KEY)
				continue;
			key = (const char *) text_bytes(k.val.string.val, k.val.string.len, &key_len);
			JsonbIteratorNext(&it, &v, true);
			jsonb_header_value(&v, &value, &value_len);
			add_header(&headers, &n, &cap, key, key_len, value, value_len);
		}
	}
	else
	{
		int			npairs = JB_ROOT_COUNT(jb);

		for (int i = 0; i < npairs; i++)
		{
			JsonbValue *pair = getIthJsonbValueFromContainer(&jb->root, i);
			JsonbValue *k;
			JsonbValue *v;
			const uint8 *value;
			int32		value_len;
			int32		key_len;
			const char *key;

			if (pair == NULL || pair->type != jbvBinary ||
				!JsonContainerIsArray(pair->val.binary.data) ||
				JsonContainerSize(pair->val.binary.data) != 2)
				bad_headers();
			k = getIthJsonbValueFromContainer(pair->val.binary.data, 0);
			v = getIthJsonbValueFromContainer(pair->val.binary.data, 1);
			if (k->type != jbvString)
				bad_headers();
			key = (const char *) text_bytes(k->val.string.val, k->val.string.len, &key_len);
			jsonb_header_value(v, &value, &value_len);
			add_header(&headers, &n, &cap, key, key_len, value, value_len);
		}
	}
	*count = n;
	return headers;
}

/* Headers from streamlog.header[] */
static SlRecordHeader *
headers_from_array(ArrayType *array, int *count)
{
	SlRecordHeader *headers = NULL;
	int			n = 0;
	int			cap = 0;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	Oid			elemtype = ARR_ELEMTYPE(array);
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign, &elems, &nulls, &nelems);
	for (int i = 0; i < nelems; i++)
	{
		HeapTupleHeader rec;
		bool		isnull;
		Datum		d;
		text	   *key;
		const uint8 *value = NULL;
		int32		value_len = -1;
		int32		key_len;
		const char *key_bytes;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("a header in the headers array is NULL")));
		rec = DatumGetHeapTupleHeader(elems[i]);
		d = GetAttributeByNum(rec, 1, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("header keys must not be NULL")));
		key = DatumGetTextPP(d);
		key_bytes = (const char *) text_bytes(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), &key_len);
		d = GetAttributeByNum(rec, 2, &isnull);
		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(d);

			value = (const uint8 *) VARDATA_ANY(b);
			value_len = VARSIZE_ANY_EXHDR(b);
		}
		add_header(&headers, &n, &cap, key_bytes, key_len, value, value_len);
	}
	*count = n;
	return headers;
}

static HeadersKind
headers_kind(Oid type)
{
	Oid			header_type;

	if (type == JSONBOID)
		return HEADERS_JSONB;
	if (type == TEXTOID || type == UNKNOWNOID || type == JSONOID)
		return HEADERS_TEXT;
	header_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
								  CStringGetDatum("header"),
								  ObjectIdGetDatum(get_namespace_oid("streamlog", false)));
	if (OidIsValid(header_type) && get_element_type(type) == header_type)
		return HEADERS_ARRAY;
	return HEADERS_OTHER;
}

static ProduceCache *
produce_cache(FunctionCallInfo fcinfo)
{
	ProduceCache *cache = fcinfo->flinfo->fn_extra;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ProduceCache));
		converter_init(&cache->key, get_fn_expr_argtype(fcinfo->flinfo, 1));
		converter_init(&cache->value, get_fn_expr_argtype(fcinfo->flinfo, 2));
		cache->headers_kind = PG_NARGS() > 3 ?
			headers_kind(get_fn_expr_argtype(fcinfo->flinfo, 3)) : HEADERS_OTHER;
		cache->headers_type_is_unknown = PG_NARGS() > 3 &&
			get_fn_expr_argtype(fcinfo->flinfo, 3) == UNKNOWNOID;
		cache->sticky_partition = -1;
		fcinfo->flinfo->fn_extra = cache;
	}
	return cache;
}

/* The topic named by argument 0, locked for this transaction */
static const SlTopic *
produce_topic(FunctionCallInfo fcinfo, ProduceCache *cache)
{
	char	   *name;
	const SlTopic *topic;
	bool		refilled;

	SlRequireArg(fcinfo, 0, "topic");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	/* Once per statement, not per row: it took more than the rest of a row */
	if (cache->write_checked_role != GetUserId() ||
		cache->write_checked_at != GetCurrentStatementStartTimestamp() ||
		strcmp(cache->write_checked_topic, name) != 0)
	{
		SlAclCheck(SL_RESOURCE_TOPIC, name, SL_ACL_WRITE);
		cache->write_checked_role = GetUserId();
		cache->write_checked_at = GetCurrentStatementStartTimestamp();
		strlcpy(cache->write_checked_topic, name, sizeof(cache->write_checked_topic));
	}
	SlTopicRefuseInternal(name, "produce to");
	topic = SlTopicLookupAndLockCached(&cache->topic_lock, name, AccessShareLock,
									   &refilled);
	if (refilled)
		cache->sticky_partition = -1;
	return topic;
}

/* Partition for a record without an explicit one */
static int32
choose_partition(const SlTopic *topic, ProduceCache *cache,
				 const uint8 *key, int32 key_len, size_t record_bytes)
{
	if (key != NULL)
		return SlPartitionForKey(topic->config.partitioner, key, key_len,
								 topic->partition_count);

	/*
	 * No key: stick to one partition for about a batch's worth of records,
	 * then pick another, so records spread but batches stay full.
	 */
	if (cache->sticky_partition < 0 || cache->sticky_bytes >= sl_batch_bytes)
	{
		cache->sticky_partition = (int32) pg_prng_uint64_range(&pg_global_prng_state, 0,
															   topic->partition_count - 1);
		cache->sticky_bytes = 0;
	}
	cache->sticky_bytes += record_bytes;
	return cache->sticky_partition;
}

/*
 * Refuse a CreateTime timestamp outside the topic's
 * message.timestamp.before.max.ms / after.max.ms, as the broker does: one
 * wrong clock must not make retention drop a partition's records.
 */
static void
check_timestamp_bounds(const SlTopic *topic, TimestampTz ts, int64 ts_ms)
{
	int64		now_ms = SlTimestampToKafka(GetCurrentTimestamp());
	int64		lower;
	int64		upper;
	bool		too_old;
	const char *config;

	if (SlTopicTimestampInRange(&topic->config, ts_ms, now_ms, &lower, &upper))
		return;
	too_old = ts_ms < lower;
	config = too_old ? "message.timestamp.before.max.ms" : "message.timestamp.after.max.ms";
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("record timestamp %s is out of range for topic \"%s\"",
					timestamptz_to_str(ts), topic->name),
			 errdetail("Timestamps may lie at most %lld ms %s the current time.",
					   (long long) (too_old ? SlTopicTimestampBeforeMaxMs(&topic->config) :
									SlTopicTimestampAfterMaxMs(&topic->config)),
					   too_old ? "before" : "after"),
			 errhint("Produce with a timestamp within that range, or raise the topic's %s "
					 "(message.timestamp.difference.max.ms stands in for it when it is not set).",
					 config)));
}

Datum
streamlog_produce(PG_FUNCTION_ARGS)
{
	ProduceCache *cache;
	const SlTopic *topic;
	SlProduceRecord record;
	int32		partition;

	PreventCommandIfReadOnly("produce()");
	cache = produce_cache(fcinfo);
	topic = produce_topic(fcinfo, cache);

	record.key = NULL;
	record.key_len = -1;
	record.value = NULL;
	record.value_len = -1;
	record.headers = NULL;
	record.nheaders = 0;
	if (!PG_ARGISNULL(1))
		record.key = datum_bytes(&cache->key, PG_GETARG_DATUM(1), &record.key_len);
	if (!PG_ARGISNULL(2))
		record.value = datum_bytes(&cache->value, PG_GETARG_DATUM(2), &record.value_len);
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
	{
		if (cache->headers_kind == HEADERS_JSONB)
			record.headers = headers_from_jsonb(PG_GETARG_JSONB_P(3), &record.nheaders);
		else if (cache->headers_kind == HEADERS_TEXT)
		{
			char	   *json = cache->headers_type_is_unknown ?
				PG_GETARG_CSTRING(3) : text_to_cstring(PG_GETARG_TEXT_PP(3));

			record.headers = headers_from_jsonb(DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json))),
												&record.nheaders);
		}
		else if (cache->headers_kind == HEADERS_ARRAY)
			record.headers = headers_from_array(PG_GETARG_ARRAYTYPE_P(3), &record.nheaders);
		else
			bad_headers();
	}
	if (PG_NARGS() > 5 && !PG_ARGISNULL(5))
	{
		TimestampTz ts = PG_GETARG_TIMESTAMPTZ(5);

		/* Kafka timestamps are ms since 1970; negative ones mean "none" */
		if (TIMESTAMP_NOT_FINITE(ts) || SlTimestampToKafka(ts) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("record timestamp must be a finite time from 1970-01-01 00:00:00+00 on")));
		record.timestamp = SlTimestampToKafka(ts);
		if (!topic->config.log_append_time)
			check_timestamp_bounds(topic, ts, record.timestamp);
	}
	else
		record.timestamp = SlTimestampToKafka(GetCurrentTimestamp());

	if (PG_NARGS() > 4 && !PG_ARGISNULL(4))
	{
		partition = PG_GETARG_INT32(4);
		SlTopicCheckPartition(topic, partition);
	}
	else
		partition = choose_partition(topic, cache, record.key, record.key_len,
									 Max(record.key_len, 0) + Max(record.value_len, 0) + 24);

	/*
	 * On a cluster, a partition another node leads (or none, for now) gets
	 * the record through this node's forward queue after the commit
	 */
	if (SlSqlPartitionLedElsewhere(topic, partition))
		SlLogForwardRecord(topic, partition, &record);
	else
		SlLogBufferRecord(topic, partition, &record);
	PG_RETURN_INT32(partition);
}

Datum
streamlog_partition_for(PG_FUNCTION_ARGS)
{
	ProduceCache *cache;
	const SlTopic *topic;
	const uint8 *key;
	int32		key_len;

	char	   *name;

	SlRequireArg(fcinfo, 0, "topic");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	/* It tells the partition count and partitioner: what Metadata tells */
	SlAclCheck(SL_RESOURCE_TOPIC, name, SL_ACL_DESCRIBE);
	topic = SlTopicLookup(name, false);
	/* A null key has no partition of its own: records without one spread */
	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	cache = produce_cache(fcinfo);
	key = datum_bytes(&cache->key, PG_GETARG_DATUM(1), &key_len);
	PG_RETURN_INT32(SlPartitionForKey(topic->config.partitioner, key, key_len,
									  topic->partition_count));
}
