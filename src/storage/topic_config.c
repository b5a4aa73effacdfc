/*
 * Topic configuration: Kafka's config names, their defaults, validation.
 *
 * A topic row stores only what was set explicitly (as strings, like Kafka);
 * the effective configuration is the defaults with those applied.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "protocol/compression.h"
#include "storage/storage.h"

typedef enum SlConfigKind
{
	CONFIG_LONG,
	CONFIG_INT,
	CONFIG_ENUM
} SlConfigKind;

typedef struct SlConfigDef
{
	const char *name;
	const char *default_value;
	SlConfigKind kind;
	int64		min;			/* for numbers */
	const char *const *choices; /* for enums, NULL-terminated */
	const char *doc;
} SlConfigDef;

static const char *const cleanup_policies[] = {"delete", "compact", "compact,delete", "delete,compact", NULL};
static const char *const compression_types[] = {"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd", NULL};
static const char *const timestamp_types[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const partitioners[] = {"murmur2", "crc32", "fnv1a", NULL};

/* Sorted by name: SlTopicConfigDescribe lists them in this order */
static const SlConfigDef config_defs[] = {
	{"cleanup.policy", "delete", CONFIG_ENUM, 0, cleanup_policies, NULL},
	{"compression.type", "producer", CONFIG_ENUM, 0, compression_types, NULL},
	{"max.message.bytes", "1048588", CONFIG_INT, 0, NULL, NULL},
	{"message.timestamp.after.max.ms", "9223372036854775807", CONFIG_LONG, 0, NULL, NULL},
	{"message.timestamp.before.max.ms", "9223372036854775807", CONFIG_LONG, 0, NULL, NULL},
	{"message.timestamp.difference.max.ms", "9223372036854775807", CONFIG_LONG, 0, NULL, NULL},
	{"message.timestamp.type", "CreateTime", CONFIG_ENUM, 0, timestamp_types, NULL},
	{"partitioner", "murmur2", CONFIG_ENUM, 0, partitioners, NULL},
	{"retention.bytes", "-1", CONFIG_LONG, -1, NULL, NULL},
	{"retention.ms", "604800000", CONFIG_LONG, -1, NULL, NULL},
	{"segment.bytes", "1073741824", CONFIG_INT, 14, NULL, NULL},
	{"segment.ms", "604800000", CONFIG_LONG, 1, NULL, NULL},
};

#define NUM_CONFIGS lengthof(config_defs)

static const SlConfigDef *
config_find(const char *name)
{
	for (int i = 0; i < NUM_CONFIGS; i++)
		if (strcmp(config_defs[i].name, name) == 0)
			return &config_defs[i];
	return NULL;
}

/* Set the field of config that def describes from a validated value */
static void
config_set(SlTopicConfig *config, const SlConfigDef *def, const char *value)
{
	const char *name = def->name;

	if (strcmp(name, "cleanup.policy") == 0)
		config->compact = strstr(value, "compact") != NULL;
	else if (strcmp(name, "compression.type") == 0)
		config->compression = strcmp(value, "producer") == 0 ? -1 :
			sl_compression_from_name(value);
	else if (strcmp(name, "max.message.bytes") == 0)
		config->max_message_bytes = (int32) strtol(value, NULL, 10);
	else if (strcmp(name, "message.timestamp.after.max.ms") == 0)
		config->timestamp_after_max_ms = strtoll(value, NULL, 10);
	else if (strcmp(name, "message.timestamp.before.max.ms") == 0)
		config->timestamp_before_max_ms = strtoll(value, NULL, 10);
	else if (strcmp(name, "message.timestamp.difference.max.ms") == 0)
		config->timestamp_difference_max_ms = strtoll(value, NULL, 10);
	else if (strcmp(name, "message.timestamp.type") == 0)
		config->log_append_time = strcmp(value, "LogAppendTime") == 0;
	else if (strcmp(name, "partitioner") == 0)
		config->partitioner = sl_partitioner_from_name(value);
	else if (strcmp(name, "retention.bytes") == 0)
		config->retention_bytes = strtoll(value, NULL, 10);
	else if (strcmp(name, "retention.ms") == 0)
		config->retention_ms = strtoll(value, NULL, 10);
	else if (strcmp(name, "segment.bytes") == 0)
		config->segment_bytes = strtoll(value, NULL, 10);
	else if (strcmp(name, "segment.ms") == 0)
		config->segment_ms = strtoll(value, NULL, 10);
}

void
SlTopicConfigDefaults(SlTopicConfig *config)
{
	memset(config, 0, sizeof(*config));
	for (int i = 0; i < NUM_CONFIGS; i++)
		config_set(config, &config_defs[i], config_defs[i].default_value);
}

/* Check value for def; errors out naming the config.  Returns it normalized. */
static char *
config_validate(const SlConfigDef *def, const char *value)
{
	if (def->kind == CONFIG_ENUM)
	{
		for (int i = 0; def->choices[i]; i++)
			if (pg_strcasecmp(def->choices[i], value) == 0)
			{
				if (strcmp(def->name, "cleanup.policy") == 0 &&
					strstr(def->choices[i], "compact") != NULL)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cleanup.policy \"%s\" is not supported yet", value),
							 errhint("Use cleanup.policy \"delete\".")));
				return pstrdup(def->choices[i]);
			}
		{
			StringInfoData choices;

			initStringInfo(&choices);
			for (int i = 0; def->choices[i]; i++)
				appendStringInfo(&choices, "%s\"%s\"", i ? ", " : "", def->choices[i]);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value \"%s\" for topic config \"%s\"", value, def->name),
					 errhint("Valid values are %s.", choices.data)));
		}
	}
	else
	{
		char	   *end;
		long long	n;

		errno = 0;
		n = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || n < def->min ||
			(def->kind == CONFIG_INT && n > PG_INT32_MAX))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value \"%s\" for topic config \"%s\"", value, def->name),
					 errhint("\"%s\" takes an integer from %lld to %lld.", def->name,
							 (long long) def->min,
							 (long long) (def->kind == CONFIG_INT ? PG_INT32_MAX : PG_INT64_MAX))));
		return psprintf("%lld", n);
	}
	return NULL;				/* keep compiler quiet */
}

/* Text of a jsonb scalar config value; errors out for other kinds */
static char *
config_value_text(const char *name, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("topic config \"%s\" must be a string or a number", name)));
	}
	return NULL;
}

Jsonb *
SlTopicConfigApply(Jsonb *settings, SlTopicConfig *config)
{
	JsonbParseState *state = NULL;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbValue *result;

	if (settings == NULL)
		settings = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	if (!JB_ROOT_IS_OBJECT(settings))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("topic config must be a JSON object of config names to values"),
				 errhint("For example '{\"retention.ms\": \"86400000\"}'.")));

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	it = JsonbIteratorInit(&settings->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;
		const SlConfigDef *def;
		JsonbValue	key;
		JsonbValue	val;
		char	   *value;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		key = v;
		tok = JsonbIteratorNext(&it, &v, true);
		def = config_find(name);
		if (def == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown topic config \"%s\"", name),
					 errhint("Known configs: cleanup.policy, compression.type, max.message.bytes, "
							 "message.timestamp.after.max.ms, message.timestamp.before.max.ms, "
							 "message.timestamp.difference.max.ms, message.timestamp.type, "
							 "partitioner, retention.bytes, "
							 "retention.ms, segment.bytes, segment.ms.")));
		if (v.type == jbvNull)
			continue;			/* null: back to the default */
		value = config_validate(def, config_value_text(name, &v));
		config_set(config, def, value);

		val.type = jbvString;
		val.val.string.val = value;
		val.val.string.len = strlen(value);
		pushJsonbValue(&state, WJB_KEY, &key);
		pushJsonbValue(&state, WJB_VALUE, &val);
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}

List *
SlTopicConfigDescribe(Jsonb *explicit_settings)
{
	List	   *entries = NIL;

	for (int i = 0; i < NUM_CONFIGS; i++)
	{
		SlConfigEntry *e = palloc(sizeof(SlConfigEntry));
		JsonbValue	key;
		JsonbValue *v = NULL;

		key.type = jbvString;
		key.val.string.val = (char *) config_defs[i].name;
		key.val.string.len = strlen(config_defs[i].name);
		if (explicit_settings)
			v = findJsonbValueFromContainer(&explicit_settings->root, JB_FOBJECT, &key);
		e->name = config_defs[i].name;
		e->is_default = (v == NULL);
		e->value = v ? config_value_text(e->name, v) : pstrdup(config_defs[i].default_value);
		entries = lappend(entries, e);
	}
	return entries;
}
