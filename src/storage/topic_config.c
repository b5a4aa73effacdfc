/*
 * Topic configuration: Kafka's config names, their defaults, validation.
 *
 * A topic row stores only what was set explicitly (as strings, like Kafka);
 * the effective configuration is the defaults with those applied.
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/compression.h"
#include "streamlog/storage/storage.h"

/*
 * How a value is checked and normalized.  Kafka trims every value before it
 * parses it; enum values are matched case-insensitively here and stored in
 * Kafka's spelling.
 */
typedef enum SlConfigKind
{
	CONFIG_BOOLEAN,				/* true or false, any case */
	CONFIG_INT,					/* integer in [min, max] */
	CONFIG_LONG,				/* integer in [min, max] */
	CONFIG_DOUBLE,				/* number in [min, max] */
	CONFIG_ENUM,				/* one of choices; Kafka's type string */
	CONFIG_LIST,				/* comma-separated items, each one of choices
								 * (if given) */
	CONFIG_STRING				/* any string that check accepts */
} SlConfigKind;

struct SlConfigDef;

/* A check of its own for a config, on the normalized value; errors out */
typedef void (*SlConfigCheck) (const struct SlConfigDef *def, const char *value);

typedef struct SlConfigDef
{
	const char *name;
	SlConfigKind kind;
	const char *default_value;
	int64		min;			/* for numbers */
	int64		max;
	const char *const *choices; /* for enums and lists, NULL-terminated */
	SlConfigCheck check;		/* or NULL */
	bool		enforced;		/* false: stored, not acted on */
	const char *synonym;		/* the broker config Kafka reports the
								 * default under, or NULL */
	const char *synonym_default;	/* its value, NULL: default_value */
	const char *doc;
} SlConfigDef;

static void check_cleanup_policy(const SlConfigDef *def, const char *value);
static void check_gzip_level(const SlConfigDef *def, const char *value);
static void check_message_format_version(const SlConfigDef *def, const char *value);
static void check_remote_storage(const SlConfigDef *def, const char *value);
static void check_throttled_replicas(const SlConfigDef *def, const char *value);

static const char *const cleanup_policies[] = {"compact", "delete", NULL};
static const char *const compression_types[] = {"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd", NULL};
static const char *const timestamp_types[] = {"CreateTime", "LogAppendTime", NULL};
static const char *const partitioners[] = {"murmur2", "crc32", "fnv1a", NULL};

#define INT32_RANGE(min) (min), PG_INT32_MAX
#define INT64_RANGE(min) (min), PG_INT64_MAX
#define LONG_MAX_TEXT "9223372036854775807"

/*
 * Apache Kafka's topic configs (as of 3.9) and streamlog's own partitioner,
 * sorted by name: SlTopicConfigDescribe lists them in this order.  Types,
 * defaults, ranges and synonyms are Kafka's.
 */
static const SlConfigDef config_defs[] = {
	{"cleanup.policy", CONFIG_LIST, "delete", 0, 0, cleanup_policies, check_cleanup_policy,
		true, "log.cleanup.policy", NULL,
	"What happens to old records: \"delete\" removes whole segments past retention.ms or "
	"retention.bytes; \"compact\" keeps the newest record of each key; \"compact,delete\" does both."},
	{"compression.gzip.level", CONFIG_INT, "-1", -1, 9, NULL, check_gzip_level,
		false, "compression.gzip.level", NULL,
	"Level of gzip compression when compression.type is gzip: 1 to 9, or -1 for the codec's default."},
	{"compression.lz4.level", CONFIG_INT, "9", 1, 17, NULL, NULL,
		false, "compression.lz4.level", NULL,
	"Level of lz4 compression when compression.type is lz4, 1 to 17."},
	{"compression.type", CONFIG_ENUM, "producer", 0, 0, compression_types, NULL,
		true, "compression.type", NULL,
	"Codec of the stored batches: \"producer\" keeps what the producer sent; otherwise "
	"uncompressed, gzip, snappy, lz4 or zstd."},
	{"compression.zstd.level", CONFIG_INT, "3", -131072, 22, NULL, NULL,
		false, "compression.zstd.level", NULL,
	"Level of zstd compression when compression.type is zstd, -131072 to 22."},
	{"delete.retention.ms", CONFIG_LONG, "86400000", INT64_RANGE(0), NULL, NULL,
		true, "log.cleaner.delete.retention.ms", NULL,
	"How long a compacted topic keeps delete markers (records with a null value)."},
	{"file.delete.delay.ms", CONFIG_LONG, "60000", INT64_RANGE(0), NULL, NULL,
		false, "log.segment.delete.delay.ms", NULL,
	"Time Kafka waits before removing a deleted segment's files; streamlog drops segments at once."},
	{"flush.messages", CONFIG_LONG, LONG_MAX_TEXT, INT64_RANGE(1), NULL, NULL,
		false, "log.flush.interval.messages", NULL,
	"Records after which Kafka forces the log to disk; streamlog makes every commit durable "
	"through PostgreSQL's WAL instead."},
	{"flush.ms", CONFIG_LONG, LONG_MAX_TEXT, INT64_RANGE(0), NULL, NULL,
		false, "log.flush.scheduler.interval.ms", NULL,
	"Time after which Kafka forces the log to disk; streamlog makes every commit durable "
	"through PostgreSQL's WAL instead."},
	{"follower.replication.throttled.replicas", CONFIG_LIST, "", 0, 0, NULL, check_throttled_replicas,
		false, NULL, NULL,
	"Replicas whose replication to followers is throttled: \"*\" or partition:broker pairs."},
	{"index.interval.bytes", CONFIG_INT, "4096", INT32_RANGE(0), NULL, NULL,
		false, "log.index.interval.bytes", NULL,
	"Bytes between two entries of Kafka's offset index; streamlog indexes every batch."},
	{"key.index", CONFIG_BOOLEAN, "false", 0, 0, NULL, NULL,
		true, NULL, NULL,
	"streamlog's own: whether the topic keeps an index of its record keys, so that "
	"streamlog.latest(topic, key) finds the current value of a key in O(log n)."},
	{"leader.replication.throttled.replicas", CONFIG_LIST, "", 0, 0, NULL, check_throttled_replicas,
		false, NULL, NULL,
	"Replicas whose replication from the leader is throttled: \"*\" or partition:broker pairs."},
	{"local.retention.bytes", CONFIG_LONG, "-2", INT64_RANGE(-2), NULL, NULL,
		false, "log.local.retention.bytes", NULL,
	"Bytes of a tiered partition kept locally; -2 means retention.bytes."},
	{"local.retention.ms", CONFIG_LONG, "-2", INT64_RANGE(-2), NULL, NULL,
		false, "log.local.retention.ms", NULL,
	"Time records of a tiered partition are kept locally; -2 means retention.ms."},
	{"max.compaction.lag.ms", CONFIG_LONG, LONG_MAX_TEXT, INT64_RANGE(1), NULL, NULL,
		true, "log.cleaner.max.compaction.lag.ms", NULL,
	"Longest time a record stays uncompacted in a compacted topic."},
	{"max.message.bytes", CONFIG_INT, "1048588", INT32_RANGE(0), NULL, NULL,
		true, "message.max.bytes", NULL,
	"Largest record batch the topic takes, in bytes after compression."},
	{"message.downconversion.enable", CONFIG_BOOLEAN, "true", 0, 0, NULL, NULL,
		false, "log.message.downconversion.enable", NULL,
	"Whether Kafka converts batches to an older format for old consumers."},
	{"message.format.version", CONFIG_STRING, "3.0-IV1", 0, 0, NULL, check_message_format_version,
		false, "log.message.format.version", NULL,
	"Record format of the topic as a Kafka version (e.g. 2.8 or 3.0-IV1); deprecated in Kafka "
	"and ignored from 3.0, as streamlog always stores format v2."},
	{"message.timestamp.after.max.ms", CONFIG_LONG, LONG_MAX_TEXT, INT64_RANGE(0), NULL, NULL,
		true, "log.message.timestamp.after.max.ms", NULL,
	"How far in the future of the broker's clock a CreateTime timestamp may be."},
	{"message.timestamp.before.max.ms", CONFIG_LONG, LONG_MAX_TEXT, INT64_RANGE(0), NULL, NULL,
		true, "log.message.timestamp.before.max.ms", NULL,
	"How far in the past of the broker's clock a CreateTime timestamp may be."},
	{"message.timestamp.difference.max.ms", CONFIG_LONG, LONG_MAX_TEXT, INT64_RANGE(0), NULL, NULL,
		true, "log.message.timestamp.difference.max.ms", NULL,
	"Deprecated: the bound of message.timestamp.before.max.ms and after.max.ms where those "
	"are left at their defaults."},
	{"message.timestamp.type", CONFIG_ENUM, "CreateTime", 0, 0, timestamp_types, NULL,
		true, "log.message.timestamp.type", NULL,
	"Timestamp of stored records: the producer's (CreateTime) or the broker's at append "
	"(LogAppendTime)."},
	{"min.cleanable.dirty.ratio", CONFIG_DOUBLE, "0.5", 0, 1, NULL, NULL,
		true, "log.cleaner.min.cleanable.ratio", NULL,
	"Share of uncompacted log, 0 to 1, above which a compacted topic is cleaned."},
	{"min.compaction.lag.ms", CONFIG_LONG, "0", INT64_RANGE(0), NULL, NULL,
		true, "log.cleaner.min.compaction.lag.ms", NULL,
	"Shortest time a record stays uncompacted in a compacted topic."},
	{"min.insync.replicas", CONFIG_INT, "1", INT32_RANGE(1), NULL, NULL,
		true, "min.insync.replicas", NULL,
	"Fewest in-sync replicas a produce with acks=all needs: with fewer, it is refused "
	"(NOT_ENOUGH_REPLICAS) and nothing is written.  Its default is the server's "
	"streamlog.min_insync_replicas."},
	{"partitioner", CONFIG_ENUM, "murmur2", 0, 0, partitioners, NULL,
		true, NULL, NULL,
	"streamlog's own: the hash that picks the partition of a keyed record produced by SQL "
	"(murmur2 as Kafka's Java client, crc32, or fnv1a)."},
	{"preallocate", CONFIG_BOOLEAN, "false", 0, 0, NULL, NULL,
		false, "log.preallocate", NULL,
	"Whether Kafka preallocates a new segment's file; streamlog's segments are tables."},
	{"remote.log.copy.disable", CONFIG_BOOLEAN, "false", 0, 0, NULL, NULL,
		false, NULL, NULL,
	"Whether copying a tiered topic's segments to remote storage is stopped."},
	{"remote.log.delete.on.disable", CONFIG_BOOLEAN, "false", 0, 0, NULL, NULL,
		false, NULL, NULL,
	"Whether turning remote storage off deletes the remote segments."},
	{"remote.storage.enable", CONFIG_BOOLEAN, "false", 0, 0, NULL, check_remote_storage,
		true, NULL, NULL,
	"Whether the topic keeps segments in remote (tiered) storage; streamlog has none, so "
	"only false is accepted."},
	{"retention.bytes", CONFIG_LONG, "-1", INT64_RANGE(-1), NULL, NULL,
		true, "log.retention.bytes", NULL,
	"Largest size of a partition before its oldest segments are deleted; -1 for no limit."},
	{"retention.ms", CONFIG_LONG, "604800000", INT64_RANGE(-1), NULL, NULL,
		true, "log.retention.hours", "168",
	"Age after which a segment's records are deleted; -1 to keep them forever."},
	{"segment.bytes", CONFIG_INT, "1073741824", INT32_RANGE(14), NULL, NULL,
		true, "log.segment.bytes", NULL,
	"Size at which a partition starts a new segment, the unit retention deletes."},
	{"segment.index.bytes", CONFIG_INT, "10485760", INT32_RANGE(4), NULL, NULL,
		false, "log.index.size.max.bytes", NULL,
	"Size of Kafka's offset index of a segment; streamlog's indexes are btrees."},
	{"segment.jitter.ms", CONFIG_LONG, "0", INT64_RANGE(0), NULL, NULL,
		false, "log.roll.jitter.hours", NULL,
	"Random time taken off segment.ms, so that segments do not all roll at once."},
	{"segment.ms", CONFIG_LONG, "604800000", INT64_RANGE(1), NULL, NULL,
		true, "log.roll.hours", "168",
	"Age at which a partition starts a new segment even if it is not full."},
	{"unclean.leader.election.enable", CONFIG_BOOLEAN, "false", 0, 0, NULL, NULL,
		true, "unclean.leader.election.enable", NULL,
	"Whether a replica out of sync may become leader when no in-sync replica is alive, "
	"at the price of the records it lacks."},
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

static SlConfigType
config_type(const SlConfigDef *def)
{
	switch (def->kind)
	{
		case CONFIG_BOOLEAN:
			return SL_CONFIG_TYPE_BOOLEAN;
		case CONFIG_INT:
			return SL_CONFIG_TYPE_INT;
		case CONFIG_LONG:
			return SL_CONFIG_TYPE_LONG;
		case CONFIG_DOUBLE:
			return SL_CONFIG_TYPE_DOUBLE;
		case CONFIG_LIST:
			return SL_CONFIG_TYPE_LIST;
		case CONFIG_ENUM:
		case CONFIG_STRING:
			return SL_CONFIG_TYPE_STRING;
	}
	return SL_CONFIG_TYPE_UNKNOWN;
}

SlConfigType
SlTopicConfigTypeOf(const char *name)
{
	const SlConfigDef *def = config_find(name);

	return def ? config_type(def) : SL_CONFIG_TYPE_UNKNOWN;
}

/* Set the field of config that def describes from a validated value */
static void
config_set(SlTopicConfig *config, const SlConfigDef *def, const char *value)
{
	const char *name = def->name;

	if (strcmp(name, "cleanup.policy") == 0)
	{
		config->compact = strstr(value, "compact") != NULL;
		config->delete_policy = strstr(value, "delete") != NULL;
	}
	else if (strcmp(name, "delete.retention.ms") == 0)
		config->delete_retention_ms = strtoll(value, NULL, 10);
	else if (strcmp(name, "min.compaction.lag.ms") == 0)
		config->min_compaction_lag_ms = strtoll(value, NULL, 10);
	else if (strcmp(name, "max.compaction.lag.ms") == 0)
		config->max_compaction_lag_ms = strtoll(value, NULL, 10);
	else if (strcmp(name, "min.cleanable.dirty.ratio") == 0)
		config->min_cleanable_dirty_ratio = strtod(value, NULL);
	else if (strcmp(name, "key.index") == 0)
		config->key_index = strcmp(value, "true") == 0;
	else if (strcmp(name, "compression.type") == 0)
		config->compression = strcmp(value, "producer") == 0 ? -1 :
			SlCompressionFromName(value);
	else if (strcmp(name, "max.message.bytes") == 0)
		config->max_message_bytes = (int32) strtol(value, NULL, 10);
	else if (strcmp(name, "min.insync.replicas") == 0)
		config->min_insync_replicas = (int32) strtol(value, NULL, 10);
	else if (strcmp(name, "message.timestamp.after.max.ms") == 0)
		config->timestamp_after_max_ms = strtoll(value, NULL, 10);
	else if (strcmp(name, "message.timestamp.before.max.ms") == 0)
		config->timestamp_before_max_ms = strtoll(value, NULL, 10);
	else if (strcmp(name, "message.timestamp.difference.max.ms") == 0)
		config->timestamp_difference_max_ms = strtoll(value, NULL, 10);
	else if (strcmp(name, "message.timestamp.type") == 0)
		config->log_append_time = strcmp(value, "LogAppendTime") == 0;
	else if (strcmp(name, "partitioner") == 0)
		config->partitioner = SlPartitionerFromName(value);
	else if (strcmp(name, "retention.bytes") == 0)
		config->retention_bytes = strtoll(value, NULL, 10);
	else if (strcmp(name, "retention.ms") == 0)
		config->retention_ms = strtoll(value, NULL, 10);
	else if (strcmp(name, "segment.bytes") == 0)
		config->segment_bytes = strtoll(value, NULL, 10);
	else if (strcmp(name, "segment.ms") == 0)
		config->segment_ms = strtoll(value, NULL, 10);
	/* the others are stored only */
}

void
SlTopicConfigDefaults(SlTopicConfig *config)
{
	memset(config, 0, sizeof(*config));
	for (int i = 0; i < NUM_CONFIGS; i++)
		config_set(config, &config_defs[i], config_defs[i].default_value);
	/* the server's streamlog.min_insync_replicas, read when it is used */
	config->min_insync_replicas = -1;
}

static void
invalid_value(const SlConfigDef *def, const char *value, const char *hint_fmt,...)
			pg_attribute_printf(3, 4);

/* Error out: value is not valid for def, and the hint says what is */
static void
invalid_value(const SlConfigDef *def, const char *value, const char *hint_fmt,...)
{
	va_list		args;
	StringInfoData hint;

	initStringInfo(&hint);
	for (;;)
	{
		int			needed;

		va_start(args, hint_fmt);
		needed = appendStringInfoVA(&hint, hint_fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&hint, needed);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value \"%s\" for topic config \"%s\"", value, def->name),
			 errhint("%s", hint.data)));
}

/* "a", "b", "c" */
static char *
choices_text(const char *const *choices)
{
	StringInfoData text;

	initStringInfo(&text);
	for (int i = 0; choices[i]; i++)
		appendStringInfo(&text, "%s\"%s\"", i ? ", " : "", choices[i]);
	return text.data;
}

/* value without leading and trailing white space, as Kafka parses it */
static char *
trimmed(const char *value)
{
	const char *end = value + strlen(value);

	while (*value && isspace((unsigned char) *value))
		value++;
	while (end > value && isspace((unsigned char) end[-1]))
		end--;
	return pnstrdup(value, end - value);
}

/*
 * A double as Java's Double.toString writes it, which is how Kafka gives
 * the value back: the shortest digits that read back as the same double,
 * in plain notation from 10^-3 up to 10^7 (always with a fraction: "1.0"),
 * in computerized scientific notation ("1.0E-5") outside.
 */
static char *
java_double_text(double d)
{
	char		buf[64];
	char		digits[32];
	int			ndigits = 0;
	int			exponent;
	bool		negative = d < 0 || (d == 0 && signbit(d));
	StringInfoData out;
	char	   *p;

	if (d == 0)
		return pstrdup(negative ? "-0.0" : "0.0");
	for (int precision = 1; precision <= 17; precision++)
	{
		snprintf(buf, sizeof(buf), "%.*e", precision - 1, fabs(d));
		if (strtod(buf, NULL) == fabs(d))
			break;
	}
	/* buf is d.ddde[+-]x: collect the digits, drop trailing zeros */
	for (p = buf; *p != 'e'; p++)
		if (isdigit((unsigned char) *p))
			digits[ndigits++] = *p;
	exponent = atoi(p + 1);
	while (ndigits > 1 && digits[ndigits - 1] == '0')
		ndigits--;
	digits[ndigits] = '\0';

	initStringInfo(&out);
	if (negative)
		appendStringInfoChar(&out, '-');
	if (exponent >= -3 && exponent < 7)
	{
		if (exponent < 0)
		{
			appendStringInfoString(&out, "0.");
			for (int i = -1; i > exponent; i--)
				appendStringInfoChar(&out, '0');
			appendStringInfoString(&out, digits);
		}
		else
		{
			for (int i = 0; i <= exponent; i++)
				appendStringInfoChar(&out, i < ndigits ? digits[i] : '0');
			appendStringInfoChar(&out, '.');
			if (ndigits > exponent + 1)
				appendStringInfoString(&out, digits + exponent + 1);
			else
				appendStringInfoChar(&out, '0');
		}
	}
	else
		appendStringInfo(&out, "%c.%s%sE%d", digits[0], ndigits > 1 ? digits + 1 : "0",
						 "", exponent);
	return out.data;
}

/* The items of a list value as Kafka splits it: at commas, each trimmed */
static List *
list_items(const char *value)
{
	List	   *items = NIL;
	const char *p = value;

	if (*value == '\0')
		return NIL;
	for (;;)
	{
		const char *comma = strchr(p, ',');

		items = lappend(items, trimmed(comma ? pnstrdup(p, comma - p) : p));
		if (comma == NULL)
			return items;
		p = comma + 1;
	}
}

/* Check value for def; errors out naming the config.  Returns it normalized. */
static char *
config_validate(const SlConfigDef *def, const char *given)
{
	char	   *value = trimmed(given);
	char	   *normalized = NULL;

	switch (def->kind)
	{
		case CONFIG_BOOLEAN:
			if (pg_strcasecmp(value, "true") == 0)
				normalized = pstrdup("true");
			else if (pg_strcasecmp(value, "false") == 0)
				normalized = pstrdup("false");
			else
				invalid_value(def, given, "\"%s\" is either true or false.", def->name);
			break;

		case CONFIG_INT:
		case CONFIG_LONG:
			{
				char	   *end;
				long long	n;

				errno = 0;
				n = strtoll(value, &end, 10);
				if (errno != 0 || end == value || *end != '\0' || n < def->min || n > def->max)
					invalid_value(def, given, "\"%s\" takes an integer from %lld to %lld.",
								  def->name, (long long) def->min, (long long) def->max);
				normalized = psprintf("%lld", n);
				break;
			}

		case CONFIG_DOUBLE:
			{
				char	   *end;
				double		d;

				errno = 0;
				d = strtod(value, &end);
				if (errno != 0 || end == value || *end != '\0' || isnan(d) || isinf(d) ||
					d < def->min || d > def->max)
					invalid_value(def, given, "\"%s\" takes a number from %lld to %lld.",
								  def->name, (long long) def->min, (long long) def->max);
				normalized = java_double_text(d);
				break;
			}

		case CONFIG_ENUM:
			for (int i = 0; def->choices[i]; i++)
				if (pg_strcasecmp(def->choices[i], value) == 0)
					normalized = pstrdup(def->choices[i]);
			if (normalized == NULL)
				invalid_value(def, given, "Valid values are %s.", choices_text(def->choices));
			break;

		case CONFIG_LIST:
			{
				StringInfoData list;
				ListCell   *lc;

				initStringInfo(&list);
				foreach(lc, list_items(value))
				{
					char	   *item = lfirst(lc);

					if (def->choices != NULL)
					{
						char	   *choice = NULL;

						for (int i = 0; def->choices[i]; i++)
							if (pg_strcasecmp(def->choices[i], item) == 0)
								choice = (char *) def->choices[i];
						if (choice == NULL)
							invalid_value(def, given,
										  "\"%s\" is a comma-separated list of %s.",
										  def->name, choices_text(def->choices));
						item = choice;
					}
					appendStringInfo(&list, "%s%s", list.len ? "," : "", item);
				}
				normalized = list.data;
				break;
			}

		case CONFIG_STRING:
			normalized = value;
			break;
	}
	if (def->check)
		def->check(def, normalized);
	return normalized;
}

static void
check_cleanup_policy(const SlConfigDef *def, const char *value)
{
	if (value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("an empty cleanup.policy is not supported"),
				 errhint("Use cleanup.policy \"delete\", \"compact\" or \"compact,delete\".")));
}

/* gzip: 1 to 9, or -1 for the codec's default; not 0 */
static void
check_gzip_level(const SlConfigDef *def, const char *value)
{
	if (strcmp(value, "0") == 0)
		invalid_value(def, value, "\"%s\" takes an integer from 1 to 9, or -1 for the default.",
					  def->name);
}

static void
check_remote_storage(const SlConfigDef *def, const char *value)
{
	if (strcmp(value, "true") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("remote.storage.enable \"true\" is not supported"),
				 errdetail("streamlog keeps every segment in PostgreSQL: it has no tiered storage."),
				 errhint("Leave remote.storage.enable false.")));
}

/* "*", or partition:broker pairs (empty items allowed, as in Kafka) */
static void
check_throttled_replicas(const SlConfigDef *def, const char *value)
{
	ListCell   *lc;
	StringInfoData joined;
	bool		pairs = true;

	initStringInfo(&joined);
	foreach(lc, list_items(value))
	{
		const char *item = lfirst(lc);
		const char *p = item;

		appendStringInfoString(&joined, item);
		if (*p == '\0')
			continue;
		if (!isdigit((unsigned char) *p))
			pairs = false;
		while (isdigit((unsigned char) *p))
			p++;
		if (*p++ != ':' || !isdigit((unsigned char) *p))
		{
			pairs = false;
			continue;
		}
		while (isdigit((unsigned char) *p))
			p++;
		if (*p != '\0')
			pairs = false;
	}
	if (!pairs && strcmp(joined.data, "*") != 0)
		invalid_value(def, value, "\"%s\" is \"*\" or a list of partition:broker pairs, "
					  "e.g. \"0:1,1:1\".", def->name);
}

/*
 * Versions Kafka knows for message.format.version: each of its metadata
 * versions in full, and the releases up to 3.9 alone (which stand for the
 * last version of that release).  A version string is looked up by its
 * first three parts for 0.x releases, its first two for later ones, so
 * "2.8.1" is "2.8".
 */
static const char *const kafka_versions[] = {
	"0.8.0", "0.8.1", "0.8.2", "0.9.0",
	"0.10.0", "0.10.0-IV0", "0.10.0-IV1", "0.10.1", "0.10.1-IV0", "0.10.1-IV1", "0.10.1-IV2",
	"0.10.2", "0.10.2-IV0", "0.11.0", "0.11.0-IV0", "0.11.0-IV1", "0.11.0-IV2",
	"1.0", "1.0-IV0", "1.1", "1.1-IV0", "2.0", "2.0-IV0", "2.0-IV1",
	"2.1", "2.1-IV0", "2.1-IV1", "2.1-IV2", "2.2", "2.2-IV0", "2.2-IV1",
	"2.3", "2.3-IV0", "2.3-IV1", "2.4", "2.4-IV0", "2.4-IV1", "2.5", "2.5-IV0", "2.6", "2.6-IV0",
	"2.7", "2.7-IV0", "2.7-IV1", "2.7-IV2", "2.8", "2.8-IV0", "2.8-IV1",
	"3.0", "3.0-IV0", "3.0-IV1", "3.1", "3.1-IV0", "3.2", "3.2-IV0",
	"3.3", "3.3-IV0", "3.3-IV1", "3.3-IV2", "3.3-IV3", "3.4", "3.4-IV0",
	"3.5", "3.5-IV0", "3.5-IV1", "3.5-IV2", "3.6", "3.6-IV0", "3.6-IV1", "3.6-IV2",
	"3.7", "3.7-IV0", "3.7-IV1", "3.7-IV2", "3.7-IV3", "3.7-IV4", "3.8", "3.8-IV0",
	"3.9", "3.9-IV0", "4.0-IV0", "4.0-IV1",
	NULL
};

static void
check_message_format_version(const SlConfigDef *def, const char *value)
{
	int			parts = strncmp(value, "0.", 2) == 0 ? 3 : 2;
	const char *p = value;
	char	   *key;

	/* cut after the parts that count */
	for (int dots = 0; *p; p++)
		if (*p == '.' && ++dots == parts)
			break;
	key = pnstrdup(value, p - value);
	for (int i = 0; kafka_versions[i]; i++)
		if (strcmp(kafka_versions[i], key) == 0)
			return;
	invalid_value(def, value, "\"%s\" is a Kafka version, such as \"2.8\" or \"3.0-IV1\".",
				  def->name);
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
	const char *min_lag = config_find("min.compaction.lag.ms")->default_value;
	const char *max_lag = config_find("max.compaction.lag.ms")->default_value;

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
					 errhint("streamlog knows every topic config of Apache Kafka 3.9 and its "
							 "own \"partitioner\"; streamlog.topic_config() lists them.")));
		if (v.type == jbvNull)
			continue;			/* null: back to the default */
		value = config_validate(def, config_value_text(name, &v));
		config_set(config, def, value);
		if (strcmp(name, "min.compaction.lag.ms") == 0)
			min_lag = value;
		else if (strcmp(name, "max.compaction.lag.ms") == 0)
			max_lag = value;

		val.type = jbvString;
		val.val.string.val = value;
		val.val.string.len = strlen(value);
		pushJsonbValue(&state, WJB_KEY, &key);
		pushJsonbValue(&state, WJB_VALUE, &val);
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);

	/* As Kafka, refuse a compaction lag range that is empty */
	if (strtoll(min_lag, NULL, 10) > strtoll(max_lag, NULL, 10))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("topic config \"min.compaction.lag.ms\" (%s) is greater than "
						"\"max.compaction.lag.ms\" (%s)", min_lag, max_lag),
				 errhint("Give min.compaction.lag.ms a value no greater than max.compaction.lag.ms.")));
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
		/* a default taken from a setting of the server says its value */
		if (v == NULL && strcmp(e->name, "min.insync.replicas") == 0)
			e->value = psprintf("%d", sl_min_insync_replicas);
		e->type = config_type(&config_defs[i]);
		e->enforced = config_defs[i].enforced;
		e->synonym = config_defs[i].synonym;
		e->synonym_default = config_defs[i].synonym_default ? config_defs[i].synonym_default
			: config_defs[i].default_value;
		if (strcmp(e->name, "min.insync.replicas") == 0)
			e->synonym_default = psprintf("%d", sl_min_insync_replicas);
		e->doc = config_defs[i].doc;
		entries = lappend(entries, e);
	}
	return entries;
}

int32
SlTopicMinInsyncReplicas(const SlTopicConfig *config)
{
	return config->min_insync_replicas > 0 ? config->min_insync_replicas :
		sl_min_insync_replicas;
}
