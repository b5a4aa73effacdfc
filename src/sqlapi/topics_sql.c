/*
 * SQL: topic administration (create_topic, drop_topic, alter_topic,
 * add_partitions, topic_config).  NULL arguments: see sql_args.h.
 *
 * On a cluster the change is checked here as on a node of its own, then
 * carried out by the controller (metadata/cluster_topics.h), outside the
 * caller's transaction, as Kafka's topic administration.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/cluster_topics.h"
#include "streamlog/shmem.h"
#include "streamlog/sqlapi/cluster_sql.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/authorize.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog_assert_preloaded);
PG_FUNCTION_INFO_V1(streamlog_create_topic);
PG_FUNCTION_INFO_V1(streamlog_drop_topic);
PG_FUNCTION_INFO_V1(streamlog_alter_topic);
PG_FUNCTION_INFO_V1(streamlog_add_partitions);
PG_FUNCTION_INFO_V1(streamlog_topic_config);
PG_FUNCTION_INFO_V1(streamlog_create_internal_topic);

Datum
streamlog_assert_preloaded(PG_FUNCTION_ARGS)
{
	SlCheckPreloaded();
	PG_RETURN_VOID();
}

/*
 * The replication factor of a new topic: -1 (none given) is
 * streamlog.default_replication_factor.  A node of its own holds one
 * replica of each partition; on a cluster the controller judges it
 * against the nodes it has.
 */
static int32
check_replication_factor(int32 replication_factor)
{
	int32		rf = replication_factor == -1 ? sl_default_replication_factor : replication_factor;

	if (rf < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("replication factor must be at least 1, not %d", rf)));
	if (rf > 1 && !SlClusterEnabled())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("replication factor %d is larger than the 1 node this server has", rf),
				 errdetail("A node of its own holds one replica of each partition%s.",
						   replication_factor == -1 ?
						   " (the replication factor came from streamlog.default_replication_factor)" : ""),
				 errhint("Create the topic with replication factor 1, or on a cluster of at least %d nodes.",
						 rf)));
	return rf;
}

Datum
streamlog_create_topic(PG_FUNCTION_ARGS)
{
	char	   *name;

	int32		replication_factor;

	SlRequireArg(fcinfo, 0, "topic name");
	SlRequireArg(fcinfo, 1, "partitions");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SlCheckCreateTopic(name);
	replication_factor = check_replication_factor(PG_NARGS() > 3 && !PG_ARGISNULL(3) ?
												  PG_GETARG_INT32(3) : -1);
	if (SlClusterEnabled())
	{
		Jsonb	   *config = SlTopicCheckCreate(name, PG_GETARG_INT32(1),
												PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
												false);
		char	   *message;
		int16		error = SlClusterCreateTopic(name, PG_GETARG_INT32(1), replication_factor,
												 config, false, NULL,
												 SL_CLUSTER_TOPIC_TIMEOUT_MS, &message);

		SlSqlClusterTopicResult(error, message, name);
		PG_RETURN_VOID();
	}
	SlTopicCreate(name, PG_GETARG_INT32(1),
				  PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2));
	PG_RETURN_VOID();
}

Datum
streamlog_drop_topic(PG_FUNCTION_ARGS)
{
	char	   *name;
	bool		if_exists;

	SlRequireArg(fcinfo, 0, "topic name");
	SlRequireArg(fcinfo, 1, "if_exists");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if_exists = PG_GETARG_BOOL(1);
	SlAclCheck(SL_RESOURCE_TOPIC, name, SL_ACL_DELETE);
	if (SlClusterEnabled())
	{
		char	   *message = NULL;

		SlTopicRefuseInternal(name, "drop");
		if (SlTopicLookup(name, if_exists) != NULL)
		{
			/* message is set by the call: not in the same argument list */
			int16		error = SlClusterDeleteTopic(name, SL_CLUSTER_TOPIC_TIMEOUT_MS,
													 &message);

			SlSqlClusterTopicResult(error, message, name);
			PG_RETURN_VOID();
		}
		ereport(NOTICE,
				(errmsg("topic \"%s\" does not exist, skipping", name)));
		PG_RETURN_VOID();
	}
	if (!SlTopicDrop(name, if_exists))
		ereport(NOTICE,
				(errmsg("topic \"%s\" does not exist, skipping", name)));
	PG_RETURN_VOID();
}

Datum
streamlog_alter_topic(PG_FUNCTION_ARGS)
{
	char	   *name;

	SlRequireArg(fcinfo, 0, "topic name");
	SlRequireArg(fcinfo, 1, "config");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SlAclCheck(SL_RESOURCE_TOPIC, name, SL_ACL_ALTER_CONFIGS);
	if (SlClusterEnabled())
	{
		Jsonb	   *config = SlTopicCheckAlterConfig(SlTopicLookup(name, false),
													 PG_GETARG_JSONB_P(1));
		char	   *message;
		int16		error = SlClusterAlterTopicConfig(name, config,
													  SL_CLUSTER_TOPIC_TIMEOUT_MS, &message);

		SlSqlClusterTopicResult(error, message, name);
		PG_RETURN_VOID();
	}
	SlTopicAlterConfig(name, PG_GETARG_JSONB_P(1));
	PG_RETURN_VOID();
}

Datum
streamlog_add_partitions(PG_FUNCTION_ARGS)
{
	char	   *name;

	SlRequireArg(fcinfo, 0, "topic name");
	SlRequireArg(fcinfo, 1, "count");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SlAclCheck(SL_RESOURCE_TOPIC, name, SL_ACL_ALTER);
	if (SlClusterEnabled())
	{
		const SlTopic *topic;
		int32		total;
		char	   *message = NULL;
		int16		error;

		SlTopicRefuseInternal(name, "add partitions to");
		topic = SlTopicLookup(name, false);
		SlTopicCheckAddPartitions(topic, PG_GETARG_INT32(1));
		total = topic->partition_count + PG_GETARG_INT32(1);
		/* message is set by the call: not in the same argument list */
		error = SlClusterCreatePartitions(name, total, NULL, SL_CLUSTER_TOPIC_TIMEOUT_MS,
										  &message);
		SlSqlClusterTopicResult(error, message, name);
		PG_RETURN_INT32(total);
	}
	PG_RETURN_INT32(SlTopicAddPartitions(name, PG_GETARG_INT32(1)));
}

/* Kafka's name of a config type, as its admin client spells it */
static const char *
config_type_name(SlConfigType type)
{
	switch (type)
	{
		case SL_CONFIG_TYPE_BOOLEAN:
			return "boolean";
		case SL_CONFIG_TYPE_STRING:
			return "string";
		case SL_CONFIG_TYPE_INT:
			return "int";
		case SL_CONFIG_TYPE_LONG:
			return "long";
		case SL_CONFIG_TYPE_DOUBLE:
			return "double";
		case SL_CONFIG_TYPE_LIST:
			return "list";
		case SL_CONFIG_TYPE_UNKNOWN:
			break;
	}
	return "unknown";
}

Datum
streamlog_topic_config(PG_FUNCTION_ARGS)
{
	const SlTopic *topic;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *explicit_settings;
	ListCell   *lc;

	char	   *name;

	SlRequireArg(fcinfo, 0, "topic");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SlAclCheck(SL_RESOURCE_TOPIC, name, SL_ACL_DESCRIBE_CONFIGS);
	topic = SlTopicLookup(name, false);
	explicit_settings = SlTopicExplicitConfig(topic->topic_id);
	InitMaterializedSRF(fcinfo, 0);
	foreach(lc, SlTopicConfigDescribe(explicit_settings))
	{
		SlConfigEntry *e = lfirst(lc);
		Datum		values[10];
		bool		nulls[10] = {false};

		values[0] = CStringGetTextDatum(e->name);
		values[1] = CStringGetTextDatum(e->value);
		values[2] = BoolGetDatum(e->is_default);
		values[3] = CStringGetTextDatum(config_type_name(e->type));
		values[4] = CStringGetTextDatum(e->is_default ? "DEFAULT_CONFIG" : "DYNAMIC_TOPIC_CONFIG");
		values[5] = BoolGetDatum(false);	/* every topic config can be altered */
		values[6] = BoolGetDatum(false);	/* and none is a secret */
		if (e->synonym)
			values[7] = CStringGetTextDatum(e->synonym);
		else
			nulls[7] = true;
		values[8] = BoolGetDatum(e->enforced);
		values[9] = CStringGetTextDatum(e->doc);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Create an internal topic (name beginning with "__"), the path streamlog
 * takes for its own topics.  The extension script does not declare it:
 * clients cannot create internal topics.  Tests bind it as superusers with
 * CREATE FUNCTION ... (name text, partitions integer) RETURNS void
 * AS 'streamlog', 'streamlog_create_internal_topic' LANGUAGE C.
 */
Datum
streamlog_create_internal_topic(PG_FUNCTION_ARGS)
{
	char	   *name;

	SlRequireArg(fcinfo, 0, "topic name");
	SlRequireArg(fcinfo, 1, "partitions");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (SlClusterEnabled())
	{
		Jsonb	   *config = SlTopicCheckCreate(name, PG_GETARG_INT32(1), NULL, true);
		char	   *message;
		int16		error = SlClusterCreateTopic(name, PG_GETARG_INT32(1), 1, config, true,
												 NULL, SL_CLUSTER_TOPIC_TIMEOUT_MS, &message);

		SlSqlClusterTopicResult(error, message, name);
		PG_RETURN_VOID();
	}
	SlTopicCreateInternal(name, PG_GETARG_INT32(1), NULL);
	PG_RETURN_VOID();
}
