/*
 * Configs: DescribeConfigs, AlterConfigs, IncrementalAlterConfigs.
 *
 * Topic configs are the ones the storage layer knows (every one of Kafka's,
 * and streamlog's partitioner), kept in the topic's row as the settings
 * made explicitly; the rest take their defaults.  AlterConfigs replaces the
 * explicit settings of a topic whole, IncrementalAlterConfigs sets,
 * deletes, appends to or subtracts from single ones.
 *
 * Broker configs are Kafka's names for streamlog.* server settings, and
 * the broker-wide defaults of the topic configs (fixed).  Those whose
 * setting takes a reload can be altered: as ALTER SYSTEM does, the new
 * value goes to postgresql.auto.conf, and the server reloads its
 * configuration.  The broker logger resource has no configs.
 *
 * Authorization, as Kafka's: describing a topic's configs takes
 * DESCRIBE_CONFIGS on the topic, altering them ALTER_CONFIGS
 * (TOPIC_AUTHORIZATION_FAILED); broker configs take the same on the
 * cluster (CLUSTER_AUTHORIZATION_FAILED).  Writing a broker config is also
 * PostgreSQL's ALTER SYSTEM, which checks its own privilege on the setting
 * (superuser, or GRANT ALTER SYSTEM ON PARAMETER) for the request's role.
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/jsonb.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/cluster_topics.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers/admin.h"
#include "streamlog/server/listeners.h"

#define OP_SET 0
#define OP_DELETE 1
#define OP_APPEND 2
#define OP_SUBTRACT 3

/* A streamlog.* setting under Kafka's name for a broker config */
typedef struct BrokerSetting
{
	const char *name;
	const char *guc;
	SlConfigType type;
} BrokerSetting;

static const BrokerSetting broker_settings[] = {
	{"auto.create.topics.enable", "streamlog.auto_create_topics", SL_CONFIG_TYPE_BOOLEAN},
	{"broker.id", "streamlog.node_id", SL_CONFIG_TYPE_INT},
	{"connections.max.idle.ms", "streamlog.connections_max_idle", SL_CONFIG_TYPE_LONG},
	{"fetch.max.bytes", "streamlog.fetch_max_bytes", SL_CONFIG_TYPE_INT},
	{"group.initial.rebalance.delay.ms", "streamlog.group_initial_rebalance_delay", SL_CONFIG_TYPE_INT},
	{"group.max.session.timeout.ms", "streamlog.group_max_session_timeout", SL_CONFIG_TYPE_INT},
	{"group.min.session.timeout.ms", "streamlog.group_min_session_timeout", SL_CONFIG_TYPE_INT},
	{"log.retention.check.interval.ms", "streamlog.retention_check_interval", SL_CONFIG_TYPE_LONG},
	{"node.id", "streamlog.node_id", SL_CONFIG_TYPE_INT},
	{"num.partitions", "streamlog.default_partitions", SL_CONFIG_TYPE_INT},
	{"port", "streamlog.port", SL_CONFIG_TYPE_INT},
	{"socket.request.max.bytes", "streamlog.max_request_size", SL_CONFIG_TYPE_INT},
};

static const BrokerSetting *
broker_setting(const char *name)
{
	for (int i = 0; i < lengthof(broker_settings); i++)
		if (strcmp(broker_settings[i].name, name) == 0)
			return &broker_settings[i];
	return NULL;
}

/* Broker configs: Kafka's name, the setting behind it, its value */
typedef struct BrokerConfig
{
	const char *name;
	const char *guc;			/* NULL: fixed by streamlog */
	int8		type;
	char	   *value;
} BrokerConfig;

static struct config_generic *
guc_record(const char *guc)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();

	for (int i = 0; guc != NULL && i < n; i++)
		if (pg_strcasecmp(vars[i]->name, guc) == 0)
			return vars[i];
	return NULL;
}

/* A setting's current value as Kafka writes it (true/false for booleans) */
static char *
guc_value(const char *guc, SlConfigType type)
{
	const char *value = GetConfigOption(guc, true, false);

	if (value == NULL)
		return NULL;
	if (type == SL_CONFIG_TYPE_BOOLEAN)
		return pstrdup(strcmp(value, "on") == 0 ? "true" : "false");
	return pstrdup(value);
}

/* True if Kafka clients may alter the setting: it takes a reload, not a restart */
static bool
guc_is_reloadable(const char *guc)
{
	struct config_generic *record = guc_record(guc);

	return record != NULL && record->context == PGC_SIGHUP;
}

static List *
broker_configs(void)
{
	List	   *configs = NIL;
	BrokerConfig *c;
	ListCell   *lc;

#define BROKER_CONFIG(n, g, t, v) \
	(c = palloc(sizeof(BrokerConfig)), c->name = (n), c->guc = (g), c->type = (t), \
	 c->value = (v), configs = lappend(configs, c))

	BROKER_CONFIG("advertised.listeners", "streamlog.advertised_listeners", SL_CONFIG_TYPE_STRING,
				  SlListenersDescribe(true));
	BROKER_CONFIG("default.replication.factor", NULL, SL_CONFIG_TYPE_INT, pstrdup("1"));
	BROKER_CONFIG("listener.security.protocol.map", "streamlog.listener_security_protocol_map",
				  SL_CONFIG_TYPE_STRING, pstrdup(sl_listener_security_protocol_map));
	BROKER_CONFIG("listeners", "streamlog.listeners", SL_CONFIG_TYPE_STRING,
				  SlListenersDescribe(false));
	for (int i = 0; i < lengthof(broker_settings); i++)
		BROKER_CONFIG(broker_settings[i].name, broker_settings[i].guc, broker_settings[i].type,
					  guc_value(broker_settings[i].guc, broker_settings[i].type));

	/* The broker-wide defaults of the topic configs, which streamlog fixes */
	foreach(lc, SlTopicConfigDescribe(NULL))
	{
		SlConfigEntry *e = lfirst(lc);
		bool		hours = e->synonym && strstr(e->synonym, ".hours") != NULL;

		if (e->synonym != NULL)
			BROKER_CONFIG(e->synonym, NULL, hours ? SL_CONFIG_TYPE_INT : e->type,
						  pstrdup(e->synonym_default));
	}
#undef BROKER_CONFIG
	return configs;
}

/*
 * Kafka's source of a broker config: the built-in default, a value set as
 * ALTER SYSTEM does (which Kafka calls a dynamic cluster-wide default), or
 * one from the server's configuration files.
 */
static int8
guc_source(const char *guc)
{
	struct config_generic *record = guc_record(guc);
	const char *file;

	if (record == NULL || record->source == PGC_S_DEFAULT)
		return SL_CONFIG_SOURCE_DEFAULT;
	file = record->sourcefile ? strrchr(record->sourcefile, '/') : NULL;
	if (file != NULL && strcmp(file + 1, PG_AUTOCONF_FILENAME) == 0)
		return SL_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER;
	return SL_CONFIG_SOURCE_STATIC_BROKER;
}

/* True if name is among the keys asked for (all when null or empty, as Kafka) */
static bool
key_wanted(const SlDescribeConfigsRequestDescribeConfigsResource *res, const char *name)
{
	if (res->configuration_keys.n <= 0)
		return true;
	for (int i = 0; i < res->configuration_keys.n; i++)
		if (SlStrEqualCString(res->configuration_keys.items[i], name))
			return true;
	return false;
}

static void
set_synonym(SlDescribeConfigsResponseDescribeConfigsSynonym *s, const char *name,
			const char *value, int8 source)
{
	SlDescribeConfigsResponseDescribeConfigsSynonymInit(s);
	s->name = SlStrFromCString(name);
	s->value = SlStrFromCString(value);
	s->source = source;
}

/* Fill one config entry; the version decides which fields exist */
static void
set_entry(SlDescribeConfigsResponseDescribeConfigsResourceResult *e, int16 version,
		  const char *name, const char *value, bool read_only, bool is_default,
		  int8 source, int8 type, const char *doc)
{
	SlDescribeConfigsResponseDescribeConfigsResourceResultInit(e);
	e->name = SlStrFromCString(name);
	e->value = SlStrFromCString(value);
	e->read_only = read_only;
	e->is_sensitive = false;
	e->documentation = doc ? SlStrFromCString(doc) : SL_STR_NULL;
	SL_ARRAY_ALLOC(e->synonyms, 0);
	if (version == 0)
		e->is_default = is_default;
	else
		e->config_source = source;
	if (version >= 3)
		e->config_type = type;
}

static void
describe_topic(SlDescribeConfigsResponseDescribeConfigsResult *rr,
			   const SlDescribeConfigsRequestDescribeConfigsResource *res,
			   const SlDescribeConfigsRequest *request, int16 version)
{
	char	   *name = SlTopicNameFromWire(res->resource_name);
	const SlTopic *topic;
	List	   *entries;
	ListCell   *lc;
	int			n = 0;

	if (name != NULL && !SlMayTopic(name, SL_ACL_DESCRIBE_CONFIGS))
	{
		rr->error_code = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
		rr->error_message = SlStrFromCString("Authorization failed: describing a topic's configs takes DESCRIBE_CONFIGS on it.");
		return;
	}
	topic = name ? SlTopicLookup(name, true) : NULL;
	if (topic == NULL)
	{
		rr->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		rr->error_message = SlStrFromCString("This server does not host this topic-partition.");
		return;
	}
	entries = SlTopicConfigDescribe(SlTopicExplicitConfig(topic->topic_id));
	SL_ARRAY_ALLOC(rr->configs, list_length(entries));
	foreach(lc, entries)
	{
		SlConfigEntry *ce = lfirst(lc);
		SlDescribeConfigsResponseDescribeConfigsResourceResult *e;
		int8		source = ce->is_default ? SL_CONFIG_SOURCE_DEFAULT : SL_CONFIG_SOURCE_DYNAMIC_TOPIC;

		if (!key_wanted(res, ce->name))
			continue;
		e = &rr->configs.items[n++];
		set_entry(e, version, ce->name, ce->value, false, ce->is_default, source, ce->type,
				  version >= 3 && request->include_documentation ? ce->doc : NULL);

		/*
		 * As Kafka: the topic's own value, then the broker config it takes
		 * its default from, if there is one
		 */
		if (version >= 1 && request->include_synonyms)
		{
			int			s = 0;

			SL_ARRAY_ALLOC(e->synonyms, (ce->is_default ? 0 : 1) + (ce->synonym ? 1 : 0));
			if (!ce->is_default)
				set_synonym(&e->synonyms.items[s++], ce->name, ce->value,
							SL_CONFIG_SOURCE_DYNAMIC_TOPIC);
			if (ce->synonym)
				set_synonym(&e->synonyms.items[s], ce->synonym, ce->synonym_default,
							SL_CONFIG_SOURCE_DEFAULT);
		}
	}
	rr->configs.n = n;
}

/* Error out of a broker resource whose name is not this broker's */
static bool
broker_name_ok(SlStr resource_name, bool empty_ok, int16 *error, char **message)
{
	char	   *node = psprintf("%d", sl_node_id);

	if (resource_name.len == 0 && !empty_ok)
	{
		*error = SL_ERR_INVALID_REQUEST;
		*message = pstrdup("Broker id must not be empty");
		return false;
	}
	if (resource_name.len != 0 && !SlStrEqualCString(resource_name, node))
	{
		*error = SL_ERR_INVALID_REQUEST;
		*message = psprintf("Unexpected broker id, expected %s%s, but received %.*s",
							node, empty_ok ? " or empty string" : "",
							resource_name.len, resource_name.data);
		return false;
	}
	return true;
}

static void
describe_broker(SlDescribeConfigsResponseDescribeConfigsResult *rr,
				const SlDescribeConfigsRequestDescribeConfigsResource *res,
				const SlDescribeConfigsRequest *request, int16 version)
{
	List	   *configs;
	ListCell   *lc;
	int			n = 0;
	char	   *message;

	/* "" is the cluster-wide default, else the broker's id */
	if (!broker_name_ok(res->resource_name, true, &rr->error_code, &message))
	{
		rr->error_message = SlStrFromCString(message);
		return;
	}
	configs = broker_configs();
	SL_ARRAY_ALLOC(rr->configs, list_length(configs));
	foreach(lc, configs)
	{
		BrokerConfig *c = lfirst(lc);
		SlDescribeConfigsResponseDescribeConfigsResourceResult *e;
		int8		source = guc_source(c->guc);
		bool		is_default = source == SL_CONFIG_SOURCE_DEFAULT;

		if (!key_wanted(res, c->name))
			continue;
		e = &rr->configs.items[n++];
		set_entry(e, version, c->name, c->value,
				  broker_setting(c->name) == NULL || !guc_is_reloadable(c->guc), is_default,
				  source, c->type,
				  version >= 3 && request->include_documentation && c->guc ?
				  psprintf("The server setting %s.", c->guc) : NULL);
		if (version >= 1 && request->include_synonyms && c->guc != NULL)
		{
			SL_ARRAY_ALLOC(e->synonyms, 1);
			set_synonym(&e->synonyms.items[0], c->guc, c->value, source);
		}
	}
	rr->configs.n = n;
}

bool
SlHandleDescribeConfigs(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeConfigsRequest request;
	SlDescribeConfigsResponse resp;
	int16		version = req->api_version;

	if (!SlDescribeConfigsRequestDecode(body, version, &request))
		return false;
	SlDescribeConfigsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.results, request.resources.n);
	for (int i = 0; i < request.resources.n; i++)
	{
		SlDescribeConfigsRequestDescribeConfigsResource *res = &request.resources.items[i];
		SlDescribeConfigsResponseDescribeConfigsResult *rr = &resp.results.items[i];

		SlDescribeConfigsResponseDescribeConfigsResultInit(rr);
		rr->resource_type = res->resource_type;
		rr->resource_name = res->resource_name;
		rr->error_message = SL_STR_NULL;
		SL_ARRAY_ALLOC(rr->configs, 0);
		if ((res->resource_type == SL_CONFIG_RESOURCE_BROKER ||
			 res->resource_type == SL_CONFIG_RESOURCE_BROKER_LOGGER) &&
			!SlMayCluster(SL_ACL_DESCRIBE_CONFIGS))
		{
			rr->error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
			rr->error_message = SlStrFromCString("Authorization failed: describing broker configs takes DESCRIBE_CONFIGS on the cluster.");
		}
		else if (res->resource_type == SL_CONFIG_RESOURCE_TOPIC)
			describe_topic(rr, res, &request, version);
		else if (res->resource_type == SL_CONFIG_RESOURCE_BROKER)
			describe_broker(rr, res, &request, version);
		else if (res->resource_type == SL_CONFIG_RESOURCE_BROKER_LOGGER)
		{
			char	   *message;

			/* streamlog's loggers are PostgreSQL's: none to show */
			if (!broker_name_ok(res->resource_name, false, &rr->error_code, &message))
				rr->error_message = SlStrFromCString(message);
		}
		else
		{
			rr->error_code = SL_ERR_INVALID_REQUEST;
			rr->error_message = SlStrFromCString(psprintf("Unsupported resource type %d: streamlog has topic (2), broker (4) and broker logger (8) configs.",
														  res->resource_type));
		}
	}
	SlDescribeConfigsResponseEncode(out, version, &resp);
	return true;
}

/* AlterConfigs and IncrementalAlterConfigs */

typedef struct AlterArgs
{
	const char *topic;
	bool		incremental;
	int			n;
	char	  **names;
	char	  **values;			/* NULL: delete (back to the default) */
	int8	   *ops;			/* incremental only */
	int16		error;			/* set by alter_topic for checks of its own */
	char	   *message;
	bool		cluster;		/* check only, into config: the controller sets it */
	Jsonb	   *config;			/* cluster: the whole explicit config to set */
} AlterArgs;

/* The explicit settings of a topic as parallel arrays of names and values */
static int
explicit_settings(Jsonb *config, char ***names, char ***values)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = 0;
	int			cap;

	if (config == NULL || !JB_ROOT_IS_OBJECT(config))
	{
		*names = *values = NULL;
		return 0;
	}
	cap = Max(JB_ROOT_COUNT(config), 1);
	*names = palloc0(sizeof(char *) * cap);
	*values = palloc0(sizeof(char *) * cap);
	it = JsonbIteratorInit(&config->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			(*names)[n] = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			(*values)[n] = v.type == jbvString ?
				pnstrdup(v.val.string.val, v.val.string.len) : NULL;
			n++;
		}
	}
	return n;
}

/* The items of a comma-separated list, trimmed, empty ones left out */
static List *
list_items(const char *text)
{
	List	   *items = NIL;
	const char *p = text;

	while (*p)
	{
		const char *end = strchr(p, ',');
		const char *stop = end ? end : p + strlen(p);
		const char *first = p;

		while (first < stop && isspace((unsigned char) *first))
			first++;
		while (stop > first && isspace((unsigned char) stop[-1]))
			stop--;
		if (stop > first)
			items = lappend(items, pnstrdup(first, stop - first));
		if (end == NULL)
			break;
		p = end + 1;
	}
	return items;
}

/* Append to (or subtract from) a comma-separated list value */
static char *
list_change(const char *current, const char *items, bool append)
{
	List	   *have = list_items(current);
	ListCell   *lc;
	StringInfoData result;

	foreach(lc, list_items(items))
	{
		char	   *item = lfirst(lc);
		ListCell   *hc;
		bool		found = false;

		foreach(hc, have)
			if (strcmp(lfirst(hc), item) == 0)
			{
				found = true;
				if (!append)
					have = foreach_delete_current(have, hc);
			}
		if (append && !found)
			have = lappend(have, item);
	}
	initStringInfo(&result);
	foreach(lc, have)
		appendStringInfo(&result, "%s%s", result.len ? "," : "", (char *) lfirst(lc));
	return result.data;
}

static void
alter_topic(void *arg)
{
	AlterArgs  *args = arg;
	const SlTopic *topic = SlTopicLookupAndLock(args->topic, AccessExclusiveLock);
	Jsonb	   *config = SlTopicExplicitConfig(topic->topic_id);
	char	  **old_names;
	char	  **old_values;
	int			nold = explicit_settings(config, &old_names, &old_values);
	char	  **names = palloc0(sizeof(char *) * (args->n + nold + 1));
	char	  **values = palloc0(sizeof(char *) * (args->n + nold + 1));
	int			n = 0;

	for (int i = 0; i < args->n; i++)
	{
		names[n] = args->names[i];
		values[n] = args->values[i];
		if (args->incremental && args->ops[i] == OP_DELETE)
			values[n] = NULL;
		else if (args->incremental && (args->ops[i] == OP_APPEND || args->ops[i] == OP_SUBTRACT))
		{
			ListCell   *lc;
			const char *current = "";

			foreach(lc, SlTopicConfigDescribe(config))
			{
				SlConfigEntry *e = lfirst(lc);

				if (strcmp(e->name, names[n]) == 0)
					current = e->value;
			}
			values[n] = list_change(current, args->values[i] ? args->values[i] : "",
									args->ops[i] == OP_APPEND);
			if (values[n][0] == '\0')
			{
				args->error = SL_ERR_INVALID_CONFIG;
				args->message = psprintf("Topic config \"%s\" cannot be an empty list.", names[n]);
				return;
			}
		}
		n++;
	}

	/* AlterConfigs: whatever was set and is not given goes back to default */
	if (!args->incremental)
	{
		for (int j = 0; j < nold; j++)
		{
			bool		given = false;

			for (int i = 0; i < args->n; i++)
				if (strcmp(args->names[i], old_names[j]) == 0)
					given = true;
			if (!given)
			{
				names[n] = old_names[j];
				values[n] = NULL;
				n++;
			}
		}
	}
	if (n > 0 && args->cluster)
		args->config = SlTopicCheckAlterConfig(topic, SlAdminConfigObject(n, names, values));
	else if (n > 0)
		SlTopicAlterConfig(args->topic, SlAdminConfigObject(n, names, values));
}

/* Broker configs */

/* One setting to write as ALTER SYSTEM does: value NULL resets it */
typedef struct BrokerChange
{
	const char *guc;
	const char *value;
} BrokerChange;

/* Check a value for a setting without changing it */
static void
validate_setting(void *arg)
{
	BrokerChange *change = arg;

	if (change->value != NULL)
		(void) set_config_option(change->guc, change->value, PGC_SIGHUP, PGC_S_FILE,
								 GUC_ACTION_SET, false, ERROR, false);
}

/* Write the setting to postgresql.auto.conf, as ALTER SYSTEM does */
static void
write_setting(void *arg)
{
	BrokerChange *change = arg;
	AlterSystemStmt *stmt = makeNode(AlterSystemStmt);
	VariableSetStmt *set = makeNode(VariableSetStmt);

	set->name = pstrdup(change->guc);
	set->is_local = false;
	if (change->value == NULL)
		set->kind = VAR_RESET;
	else
	{
		A_Const    *value = makeNode(A_Const);

		value->val.sval.type = T_String;
		value->val.sval.sval = pstrdup(change->value);
		value->location = -1;
		set->kind = VAR_SET_VALUE;
		set->args = list_make1(value);
	}
	stmt->setstmt = set;
	AlterSystemSetConfigFile(stmt);
}

/*
 * Alter broker configs: the reloadable settings behind them are written
 * as ALTER SYSTEM does, then the server reloads its configuration.  As in
 * Kafka, AlterConfigs (ops NULL) sets the whole dynamic configuration:
 * the alterable settings it does not name go back to the server's own.
 */
static int16
alter_broker(SlStr resource_name, int n, SlStr *names, SlStr *values, int8 *ops,
			 bool validate_only, char **message)
{
	BrokerChange *changes = palloc0(sizeof(BrokerChange) * (n + lengthof(broker_settings)));
	int			nchanges = 0;
	int16		error = SL_ERR_NONE;

	if (!broker_name_ok(resource_name, true, &error, message))
		return error;
	for (int i = 0; i < n; i++)
	{
		char	   *name = SlAdminCString(names[i]);
		char	   *value = SlAdminCString(values[i]);
		const BrokerSetting *setting = name ? broker_setting(name) : NULL;
		ListCell   *lc;

		if (setting == NULL)
		{
			const BrokerConfig *known = NULL;

			foreach(lc, broker_configs())
				if (name && strcmp(((BrokerConfig *) lfirst(lc))->name, name) == 0)
					known = lfirst(lc);
			if (known == NULL)
				*message = psprintf("Unknown broker config \"%s\": streamlog has no setting for it.",
									name ? name : "");
			else if (known->guc != NULL)
				*message = psprintf("Cannot update these configs dynamically: %s (change the "
									"server setting %s in postgresql.conf).", name, known->guc);
			else
				*message = psprintf("Cannot update these configs dynamically: %s (streamlog fixes it).",
									name);
			return SL_ERR_INVALID_CONFIG;
		}
		if (!guc_is_reloadable(setting->guc))
		{
			*message = psprintf("Cannot update these configs dynamically: %s (the server "
								"setting %s takes a restart: change it in postgresql.conf).",
								name, setting->guc);
			return SL_ERR_INVALID_CONFIG;
		}
		for (int j = 0; j < i; j++)
			if (SlStrEqual(names[j], names[i]))
			{
				*message = psprintf("Config \"%s\" is given more than once.", name);
				return SL_ERR_INVALID_REQUEST;
			}
		if (ops != NULL && ops[i] == OP_DELETE)
			value = NULL;
		else if (ops != NULL && ops[i] != OP_SET)
		{
			*message = psprintf("Config \"%s\" is not a list: it cannot be appended to or subtracted from.",
								name);
			return SL_ERR_INVALID_REQUEST;
		}
		else if (value == NULL)
		{
			*message = psprintf("Null value not supported for: %s", name);
			return SL_ERR_INVALID_REQUEST;
		}
		else if (setting->type == SL_CONFIG_TYPE_BOOLEAN &&
				 pg_strcasecmp(value, "true") != 0 && pg_strcasecmp(value, "false") != 0)
		{
			*message = psprintf("Invalid value %s for configuration %s: Expected value to be either true or false",
								value, name);
			return SL_ERR_INVALID_CONFIG;
		}
		changes[nchanges].guc = setting->guc;
		changes[nchanges].value = value;
		if (SlTopicAdminRun(validate_setting, &changes[nchanges], true,
							SL_ERR_INVALID_CONFIG, message) != SL_ERR_NONE)
		{
			*message = psprintf("Invalid value %s for configuration %s: %s", value, name, *message);
			return SL_ERR_INVALID_CONFIG;
		}
		nchanges++;
	}
	if (ops == NULL)
	{
		for (int s = 0; s < lengthof(broker_settings); s++)
		{
			bool		given = false;

			for (int i = 0; i < n; i++)
				if (SlStrEqualCString(names[i], broker_settings[s].name))
					given = true;
			/* broker.id and node.id share a setting: reset it once */
			for (int c = 0; c < nchanges; c++)
				if (strcmp(changes[c].guc, broker_settings[s].guc) == 0)
					given = true;
			if (!given && guc_is_reloadable(broker_settings[s].guc))
			{
				changes[nchanges].guc = broker_settings[s].guc;
				changes[nchanges++].value = NULL;
			}
		}
	}
	if (validate_only)
		return SL_ERR_NONE;
	for (int c = 0; c < nchanges; c++)
	{
		error = SlTopicAdminRun(write_setting, &changes[c], false, SL_ERR_INVALID_CONFIG, message);
		if (error != SL_ERR_NONE)
			return error;
	}
	/* As pg_reload_conf(): every process rereads the configuration files */
	if (nchanges > 0 && kill(PostmasterPid, SIGHUP) != 0)
		elog(WARNING, "could not signal the postmaster to reload the configuration: %m");
	return SL_ERR_NONE;
}

/*
 * Alter one resource; returns the error code and sets *message.  ops is
 * NULL for AlterConfigs.
 */
static int16
alter_resource(int8 resource_type, SlStr resource_name, int n, SlStr *names, SlStr *values,
			   int8 *ops, bool validate_only, char **message)
{
	AlterArgs	args;
	int16		error;

	if (resource_type == SL_CONFIG_RESOURCE_BROKER && !SlMayCluster(SL_ACL_ALTER_CONFIGS))
	{
		*message = pstrdup("Authorization failed: altering broker configs takes ALTER_CONFIGS on the cluster.");
		return SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
	}
	if (resource_type == SL_CONFIG_RESOURCE_BROKER)
		return alter_broker(resource_name, n, names, values, ops, validate_only, message);
	if (resource_type != SL_CONFIG_RESOURCE_TOPIC)
	{
		*message = psprintf("Unsupported resource type %d: streamlog has topic (2) and broker (4) configs.",
							resource_type);
		return SL_ERR_INVALID_REQUEST;
	}

	memset(&args, 0, sizeof(args));
	args.topic = SlTopicNameFromWire(resource_name);
	if (args.topic != NULL && !SlMayTopic(args.topic, SL_ACL_ALTER_CONFIGS))
	{
		*message = pstrdup("Authorization failed: altering a topic's configs takes ALTER_CONFIGS on it.");
		return SL_ERR_TOPIC_AUTHORIZATION_FAILED;
	}
	args.incremental = ops != NULL;
	args.n = n;
	args.names = palloc0(sizeof(char *) * Max(n, 1));
	args.values = palloc0(sizeof(char *) * Max(n, 1));
	args.ops = ops;
	for (int i = 0; i < n; i++)
	{
		args.names[i] = SlAdminCString(names[i]);
		args.values[i] = SlAdminCString(values[i]);
		for (int j = 0; j < i; j++)
			if (strcmp(args.names[j], args.names[i]) == 0)
			{
				*message = psprintf("Config \"%s\" is given more than once.", args.names[i]);
				return SL_ERR_INVALID_REQUEST;
			}
		if (ops == NULL)
			continue;
		switch (ops[i])
		{
			case OP_SET:
				if (args.values[i] == NULL)
				{
					*message = psprintf("Null value not supported for: %s", args.names[i]);
					return SL_ERR_INVALID_REQUEST;
				}
				break;
			case OP_DELETE:
				break;
			case OP_APPEND:
			case OP_SUBTRACT:
				if (SlTopicConfigTypeOf(args.names[i]) != SL_CONFIG_TYPE_LIST)
				{
					*message = psprintf("Config \"%s\" is not a list: it cannot be appended to or subtracted from.",
										args.names[i]);
					return SL_ERR_INVALID_REQUEST;
				}
				break;
			default:
				*message = psprintf("Unknown config operation %d for \"%s\".", ops[i], args.names[i]);
				return SL_ERR_INVALID_REQUEST;
		}
	}
	if (args.topic == NULL || SlTopicLookup(args.topic, true) == NULL)
	{
		*message = pstrdup("This server does not host this topic-partition.");
		return SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
	}

	/* On a cluster: checked here, set by the controller */
	args.cluster = SlClusterEnabled();
	args.config = NULL;
	error = SlTopicAdminRun(alter_topic, &args, validate_only || args.cluster,
							SL_ERR_INVALID_CONFIG, message);
	if (error == SL_ERR_NONE && args.error != SL_ERR_NONE)
	{
		error = args.error;
		*message = args.message;
	}
	if (error == SL_ERR_NONE && args.cluster && !validate_only && args.config != NULL)
		error = SlClusterAlterTopicConfig(args.topic, args.config,
										  SL_CLUSTER_TOPIC_TIMEOUT_MS, message);
	return error;
}

/*
 * One resource of an AlterConfigs or IncrementalAlterConfigs request, in
 * the shape both share: ops is NULL for AlterConfigs, which replaces the
 * whole set of overrides.
 */
typedef struct AlterResource
{
	int8		type;
	SlStr		name;
	int			nconfigs;
	SlStr	   *names;
	SlStr	   *values;
	int8	   *ops;
	/* the outcome */
	int16		error_code;
	SlStr		error_message;
} AlterResource;

static AlterResource *
alter_resources_alloc(int n)
{
	return palloc0(sizeof(AlterResource) * Max(n, 1));
}

static void
alter_resource_alloc_configs(AlterResource *r, int n, bool incremental)
{
	r->nconfigs = Max(n, 0);
	r->names = palloc0(sizeof(SlStr) * Max(n, 1));
	r->values = palloc0(sizeof(SlStr) * Max(n, 1));
	r->ops = incremental ? palloc0(sizeof(int8) * Max(n, 1)) : NULL;
}

/* True if resource i's (type, name) is given by some other resource too */
static bool
resource_is_duplicate(AlterResource *rs, int n, int i)
{
	for (int j = 0; j < n; j++)
		if (j != i && rs[j].type == rs[i].type && SlStrEqual(rs[j].name, rs[i].name))
			return true;
	return false;
}

/* Alter (or validate) each resource in turn, recording each one's outcome */
static void
alter_resources(AlterResource *rs, int n, bool validate_only)
{
	for (int i = 0; i < n; i++)
	{
		AlterResource *r = &rs[i];
		char	   *message = NULL;

		if (resource_is_duplicate(rs, n, i))
		{
			r->error_code = SL_ERR_INVALID_REQUEST;
			message = pstrdup("Duplicate resource in request.");
		}
		else
			r->error_code = alter_resource(r->type, r->name, r->nconfigs, r->names, r->values,
										   r->ops, validate_only, &message);
		r->error_message = r->error_code != SL_ERR_NONE ? SlStrFromCString(message)
			: SL_STR_NULL;
	}
}

/*
 * AlterConfigs and IncrementalAlterConfigs differ only in their generated
 * types (and each config's operation in the latter): these two macros are
 * the one copy of the loops between those types and AlterResource.
 *
 * RESOURCES_FROM_REQUEST sets rs to the resources of a decoded request of
 * either API, without the operations.
 */
#define RESOURCES_FROM_REQUEST(rs, request, incremental) \
	do { \
		(rs) = alter_resources_alloc((request).resources.n); \
		for (int i_ = 0; i_ < (request).resources.n; i_++) \
		{ \
			AlterResource *r_ = &(rs)[i_]; \
\
			r_->type = (request).resources.items[i_].resource_type; \
			r_->name = (request).resources.items[i_].resource_name; \
			alter_resource_alloc_configs(r_, (request).resources.items[i_].configs.n, \
										 (incremental)); \
			for (int c_ = 0; c_ < r_->nconfigs; c_++) \
			{ \
				r_->names[c_] = (request).resources.items[i_].configs.items[c_].name; \
				r_->values[c_] = (request).resources.items[i_].configs.items[c_].value; \
			} \
		} \
	} while (0)

/* RESPONSE_FROM_RESOURCES fills resp (initialized) with the outcomes in rs */
#define RESPONSE_FROM_RESOURCES(resp, rs, n, ResourceResponseInit) \
	do { \
		SL_ARRAY_ALLOC((resp).responses, (n)); \
		for (int i_ = 0; i_ < (n); i_++) \
		{ \
			ResourceResponseInit(&(resp).responses.items[i_]); \
			(resp).responses.items[i_].resource_type = (rs)[i_].type; \
			(resp).responses.items[i_].resource_name = (rs)[i_].name; \
			(resp).responses.items[i_].error_code = (rs)[i_].error_code; \
			(resp).responses.items[i_].error_message = (rs)[i_].error_message; \
		} \
	} while (0)

bool
SlHandleAlterConfigs(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlAlterConfigsRequest request;
	SlAlterConfigsResponse resp;
	AlterResource *rs;

	if (!SlAlterConfigsRequestDecode(body, req->api_version, &request))
		return false;
	RESOURCES_FROM_REQUEST(rs, request, false);
	alter_resources(rs, request.resources.n, request.validate_only);
	SlAlterConfigsResponseInit(&resp);
	RESPONSE_FROM_RESOURCES(resp, rs, request.resources.n,
							SlAlterConfigsResponseAlterConfigsResourceResponseInit);
	SlAlterConfigsResponseEncode(out, req->api_version, &resp);
	return true;
}

bool
SlHandleIncrementalAlterConfigs(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlIncrementalAlterConfigsRequest request;
	SlIncrementalAlterConfigsResponse resp;
	AlterResource *rs;

	if (!SlIncrementalAlterConfigsRequestDecode(body, req->api_version, &request))
		return false;
	RESOURCES_FROM_REQUEST(rs, request, true);
	for (int i = 0; i < request.resources.n; i++)
		for (int c = 0; c < rs[i].nconfigs; c++)
			rs[i].ops[c] = request.resources.items[i].configs.items[c].config_operation;
	alter_resources(rs, request.resources.n, request.validate_only);
	SlIncrementalAlterConfigsResponseInit(&resp);
	RESPONSE_FROM_RESOURCES(resp, rs, request.resources.n,
							SlIncrementalAlterConfigsResponseAlterConfigsResourceResponseInit);
	SlIncrementalAlterConfigsResponseEncode(out, req->api_version, &resp);
	return true;
}
