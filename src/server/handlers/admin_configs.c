/*
 * Configs: DescribeConfigs, AlterConfigs, IncrementalAlterConfigs.
 *
 * Topic configs are the ones the storage layer knows (Kafka's names), kept
 * in the topic's row as the settings made explicitly; the rest take their
 * defaults.  AlterConfigs replaces the explicit settings of a topic whole,
 * IncrementalAlterConfigs sets, deletes, appends to or subtracts from
 * single ones.  Broker configs are the streamlog.* server settings that
 * have a Kafka counterpart: they are described read-only (change them with
 * ALTER SYSTEM or postgresql.conf), and altering them is refused.
 */
#include "postgres.h"

#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/jsonb.h"

#include "guc.h"
#include "server/handlers/admin.h"

#define OP_SET 0
#define OP_DELETE 1
#define OP_APPEND 2
#define OP_SUBTRACT 3

/* Broker configs: Kafka's name, the setting behind it, its value */
typedef struct BrokerConfig
{
	const char *name;
	const char *guc;			/* NULL: fixed by streamlog */
	int8		type;
	char	   *value;
} BrokerConfig;

static List *
broker_configs(void)
{
	List	   *configs = NIL;
	const char *host;
	int32		port;
	BrokerConfig *c;

#define BROKER_CONFIG(n, g, t, v) \
	(c = palloc(sizeof(BrokerConfig)), c->name = (n), c->guc = (g), c->type = (t), \
	 c->value = (v), configs = lappend(configs, c))

	SlAdvertisedEndpoint(&host, &port);
	BROKER_CONFIG("advertised.listeners", "streamlog.advertised_host", SL_CONFIG_TYPE_LIST,
				  psprintf("PLAINTEXT://%s:%d", host, port));
	BROKER_CONFIG("auto.create.topics.enable", "streamlog.auto_create_topics",
				  SL_CONFIG_TYPE_BOOLEAN, pstrdup(sl_auto_create_topics ? "true" : "false"));
	BROKER_CONFIG("broker.id", "streamlog.node_id", SL_CONFIG_TYPE_INT,
				  psprintf("%d", sl_node_id));
	BROKER_CONFIG("default.replication.factor", NULL, SL_CONFIG_TYPE_INT, pstrdup("1"));
	BROKER_CONFIG("log.retention.check.interval.ms", "streamlog.retention_check_interval",
				  SL_CONFIG_TYPE_LONG, psprintf("%d", sl_retention_check_interval));
	BROKER_CONFIG("node.id", "streamlog.node_id", SL_CONFIG_TYPE_INT,
				  psprintf("%d", sl_node_id));
	BROKER_CONFIG("num.partitions", "streamlog.default_partitions", SL_CONFIG_TYPE_INT,
				  psprintf("%d", sl_default_partitions));
	BROKER_CONFIG("port", "streamlog.port", SL_CONFIG_TYPE_INT, psprintf("%d", sl_port));
	BROKER_CONFIG("socket.request.max.bytes", "streamlog.max_request_size", SL_CONFIG_TYPE_INT,
				  psprintf("%d", sl_max_request_size));
#undef BROKER_CONFIG
	return configs;
}

/* True if the server setting guc still has its built-in default */
static bool
guc_is_default(const char *guc)
{
	struct config_generic **vars;
	int			n;

	if (guc == NULL)
		return true;
	vars = get_guc_variables();
	n = GetNumConfigOptions();
	for (int i = 0; i < n; i++)
		if (pg_strcasecmp(vars[i]->name, guc) == 0)
			return vars[i]->source == PGC_S_DEFAULT;
	return true;
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
		  int8 source, int8 type)
{
	SlDescribeConfigsResponseDescribeConfigsResourceResultInit(e);
	e->name = SlStrFromCString(name);
	e->value = SlStrFromCString(value);
	e->read_only = read_only;
	e->is_sensitive = false;
	e->documentation = SL_STR_NULL;
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
	const SlTopic *topic = name ? SlTopicLookup(name, true) : NULL;
	List	   *entries;
	List	   *defaults;
	ListCell   *lc;
	ListCell   *dc;
	int			n = 0;

	if (topic == NULL)
	{
		rr->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		rr->error_message = SlStrFromCString("This server does not host this topic-partition.");
		return;
	}
	entries = SlTopicConfigDescribe(SlTopicExplicitConfig(topic->topic_id));
	defaults = SlTopicConfigDescribe(NULL);
	SL_ARRAY_ALLOC(rr->configs, list_length(entries));
	forboth(lc, entries, dc, defaults)
	{
		SlConfigEntry *ce = lfirst(lc);
		SlConfigEntry *de = lfirst(dc);
		SlDescribeConfigsResponseDescribeConfigsResourceResult *e;
		int8		source = ce->is_default ? SL_CONFIG_SOURCE_DEFAULT : SL_CONFIG_SOURCE_DYNAMIC_TOPIC;

		if (!key_wanted(res, ce->name))
			continue;
		e = &rr->configs.items[n++];
		set_entry(e, version, ce->name, ce->value, false, ce->is_default, source,
				  SlAdminTopicConfigType(ce->name));
		if (version >= 1 && request->include_synonyms)
		{
			int			s = 0;

			SL_ARRAY_ALLOC(e->synonyms, ce->is_default ? 1 : 2);
			if (!ce->is_default)
				set_synonym(&e->synonyms.items[s++], ce->name, ce->value,
							SL_CONFIG_SOURCE_DYNAMIC_TOPIC);
			set_synonym(&e->synonyms.items[s], de->name, de->value, SL_CONFIG_SOURCE_DEFAULT);
		}
	}
	rr->configs.n = n;
}

static void
describe_broker(SlDescribeConfigsResponseDescribeConfigsResult *rr,
				const SlDescribeConfigsRequestDescribeConfigsResource *res,
				const SlDescribeConfigsRequest *request, int16 version)
{
	char	   *node = psprintf("%d", sl_node_id);
	List	   *configs;
	ListCell   *lc;
	int			n = 0;

	/* "" is the cluster-wide default, else the broker's id */
	if (res->resource_name.len != 0 && !SlStrEqualCString(res->resource_name, node))
	{
		rr->error_code = SL_ERR_INVALID_REQUEST;
		rr->error_message = SlStrFromCString(psprintf("Unexpected broker id, expected %s or empty string, but received %.*s",
													  node, res->resource_name.len,
													  res->resource_name.data));
		return;
	}
	configs = broker_configs();
	SL_ARRAY_ALLOC(rr->configs, list_length(configs));
	foreach(lc, configs)
	{
		BrokerConfig *c = lfirst(lc);
		SlDescribeConfigsResponseDescribeConfigsResourceResult *e;
		bool		is_default = guc_is_default(c->guc);

		if (!key_wanted(res, c->name))
			continue;
		e = &rr->configs.items[n++];
		set_entry(e, version, c->name, c->value, true, is_default,
				  is_default ? SL_CONFIG_SOURCE_DEFAULT : SL_CONFIG_SOURCE_STATIC_BROKER,
				  c->type);
		if (version >= 1 && request->include_synonyms && c->guc != NULL)
		{
			SL_ARRAY_ALLOC(e->synonyms, 1);
			set_synonym(&e->synonyms.items[0], c->guc, c->value,
						is_default ? SL_CONFIG_SOURCE_DEFAULT : SL_CONFIG_SOURCE_STATIC_BROKER);
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
		if (res->resource_type == SL_RESOURCE_TOPIC)
			describe_topic(rr, res, &request, version);
		else if (res->resource_type == SL_RESOURCE_BROKER)
			describe_broker(rr, res, &request, version);
		else
		{
			rr->error_code = SL_ERR_INVALID_REQUEST;
			rr->error_message = SlStrFromCString(psprintf("Unsupported resource type %d: streamlog has topic (2) and broker (4) configs.",
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
	if (n > 0)
		SlTopicAlterConfig(args->topic, SlAdminConfigObject(n, names, values));
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

	if (resource_type == SL_RESOURCE_BROKER)
	{
		*message = pstrdup("Broker configs are streamlog.* server settings: change them "
						   "with ALTER SYSTEM or in postgresql.conf.");
		return SL_ERR_INVALID_REQUEST;
	}
	if (resource_type != SL_RESOURCE_TOPIC)
	{
		*message = psprintf("Unsupported resource type %d: streamlog has topic (2) and broker (4) configs.",
							resource_type);
		return SL_ERR_INVALID_REQUEST;
	}

	memset(&args, 0, sizeof(args));
	args.topic = SlTopicNameFromWire(resource_name);
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
				if (SlAdminTopicConfigType(args.names[i]) != SL_CONFIG_TYPE_LIST)
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

	error = SlTopicAdminRun(alter_topic, &args, validate_only, SL_ERR_INVALID_CONFIG, message);
	if (error == SL_ERR_NONE && args.error != SL_ERR_NONE)
	{
		error = args.error;
		*message = args.message;
	}
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

bool
SlHandleAlterConfigs(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlAlterConfigsRequest request;
	SlAlterConfigsResponse resp;
	AlterResource *rs;

	if (!SlAlterConfigsRequestDecode(body, req->api_version, &request))
		return false;
	rs = alter_resources_alloc(request.resources.n);
	for (int i = 0; i < request.resources.n; i++)
	{
		SlAlterConfigsRequestAlterConfigsResource *res = &request.resources.items[i];

		rs[i].type = res->resource_type;
		rs[i].name = res->resource_name;
		alter_resource_alloc_configs(&rs[i], res->configs.n, false);
		for (int c = 0; c < rs[i].nconfigs; c++)
		{
			rs[i].names[c] = res->configs.items[c].name;
			rs[i].values[c] = res->configs.items[c].value;
		}
	}
	alter_resources(rs, request.resources.n, request.validate_only);

	SlAlterConfigsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.responses, request.resources.n);
	for (int i = 0; i < request.resources.n; i++)
	{
		SlAlterConfigsResponseAlterConfigsResourceResponse *rr = &resp.responses.items[i];

		SlAlterConfigsResponseAlterConfigsResourceResponseInit(rr);
		rr->resource_type = rs[i].type;
		rr->resource_name = rs[i].name;
		rr->error_code = rs[i].error_code;
		rr->error_message = rs[i].error_message;
	}
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
	rs = alter_resources_alloc(request.resources.n);
	for (int i = 0; i < request.resources.n; i++)
	{
		SlIncrementalAlterConfigsRequestAlterConfigsResource *res = &request.resources.items[i];

		rs[i].type = res->resource_type;
		rs[i].name = res->resource_name;
		alter_resource_alloc_configs(&rs[i], res->configs.n, true);
		for (int c = 0; c < rs[i].nconfigs; c++)
		{
			rs[i].names[c] = res->configs.items[c].name;
			rs[i].values[c] = res->configs.items[c].value;
			rs[i].ops[c] = res->configs.items[c].config_operation;
		}
	}
	alter_resources(rs, request.resources.n, request.validate_only);

	SlIncrementalAlterConfigsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.responses, request.resources.n);
	for (int i = 0; i < request.resources.n; i++)
	{
		SlIncrementalAlterConfigsResponseAlterConfigsResourceResponse *rr = &resp.responses.items[i];

		SlIncrementalAlterConfigsResponseAlterConfigsResourceResponseInit(rr);
		rr->resource_type = rs[i].type;
		rr->resource_name = rs[i].name;
		rr->error_code = rs[i].error_code;
		rr->error_message = rs[i].error_message;
	}
	SlIncrementalAlterConfigsResponseEncode(out, req->api_version, &resp);
	return true;
}
