/*
 * Topic administration for Kafka requests, see topic_admin.h.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"

#include "streamlog/metadata/cluster_state.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/server/kafka_errors.h"
#include "streamlog/server/subtransaction.h"
#include "streamlog/server/topic_admin.h"
#include "streamlog/storage/storage.h"

int16
SlTopicAdminRun(void (*fn) (void *arg), void *arg, bool validate_only,
				int16 invalid_value_error, char **message)
{
	/* validate_only: if it works, none of it is kept */
	ErrorData  *edata = SlRunInSubtransaction(fn, arg, !validate_only);

	if (edata == NULL)
		return SL_ERR_NONE;
	if (message)
		*message = edata->message;
	/* invalid_parameter_value means different things per API */
	if (edata->sqlerrcode == ERRCODE_INVALID_PARAMETER_VALUE)
		return invalid_value_error;
	return SlKafkaErrorForSqlstate(edata->sqlerrcode, SL_API_CREATE_TOPICS);
}

typedef struct CreateArgs
{
	const char *name;
	int32		partitions;
	Jsonb	   *config;
	Jsonb	   *normalized;		/* cluster: the config as checked */
} CreateArgs;

static void
create_topic(void *arg)
{
	CreateArgs *args = arg;

	SlTopicCreate(args->name, args->partitions, args->config);
}

static void
check_create_topic(void *arg)
{
	CreateArgs *args = arg;

	args->normalized = SlTopicCheckCreate(args->name, args->partitions, args->config, false);
}

int16
SlTopicAdminCreate(const char *name, int32 partitions, Jsonb *config,
				   bool validate_only, char **message)
{
	return SlTopicAdminCreateReplicas(name, partitions, 1, NULL, config, validate_only,
									  SL_CLUSTER_TOPIC_TIMEOUT_MS, message);
}

int16
SlTopicAdminCreateReplicas(const char *name, int32 partitions, int32 replication_factor,
						   const SlReplicaAssignment *assignment, Jsonb *config,
						   bool validate_only, int timeout_ms, char **message)
{
	CreateArgs	args = {name, partitions, config, NULL};
	int16		error;

	if (partitions < 1)
	{
		if (message)
			*message = psprintf("a topic needs at least one partition, not %d", partitions);
		return SL_ERR_INVALID_PARTITIONS;
	}
	if (!SlClusterEnabled())
		return SlTopicAdminRun(create_topic, &args, validate_only, SL_ERR_INVALID_CONFIG, message);

	/* On a cluster: the same checks here, then the controller's */
	error = SlTopicAdminRun(check_create_topic, &args, true, SL_ERR_INVALID_CONFIG, message);
	if (error != SL_ERR_NONE || validate_only)
		return error;
	return SlClusterCreateTopic(name, partitions, replication_factor, args.normalized, false,
								assignment, timeout_ms, message);
}

const char *
SlClusterId(void)
{
	static char id[64];

	/* A cluster's id is the one its nodes were started with */
	if (SlClusterEnabled() && sl_cluster != NULL && sl_cluster->cluster_id[0] != '\0')
	{
		LWLockAcquire(&sl_cluster->lock, LW_SHARED);
		strlcpy(id, sl_cluster->cluster_id, sizeof(id));
		LWLockRelease(&sl_cluster->lock);
		return id;
	}
	if (id[0] == '\0')
		snprintf(id, sizeof(id), "streamlog-%llx-%u",
				 (unsigned long long) GetSystemIdentifier(), MyDatabaseId);
	return id;
}
