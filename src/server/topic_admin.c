/*
 * Topic administration for Kafka requests, see topic_admin.h.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"

#include "protocol/generated/kapi.h"
#include "server/subtransaction.h"
#include "server/topic_admin.h"
#include "storage/storage.h"

/* Kafka's error for a SQLSTATE raised by the storage API */
static int16
kafka_error_for(int sqlstate, int16 invalid_value_error)
{
	switch (sqlstate)
	{
		case ERRCODE_DUPLICATE_OBJECT:
			return SL_ERR_TOPIC_ALREADY_EXISTS;
		case ERRCODE_INVALID_NAME:
		case ERRCODE_NAME_TOO_LONG:
			return SL_ERR_INVALID_TOPIC_EXCEPTION;
		case ERRCODE_RESERVED_NAME:
			/* as Kafka refuses to create or delete its internal topics */
			return SL_ERR_INVALID_REQUEST;
		case ERRCODE_UNDEFINED_OBJECT:
			return SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		case ERRCODE_INVALID_PARAMETER_VALUE:
			return invalid_value_error;
		case ERRCODE_FEATURE_NOT_SUPPORTED:
			return SL_ERR_INVALID_CONFIG;
		case ERRCODE_CONFIGURATION_LIMIT_EXCEEDED:
		case ERRCODE_PROGRAM_LIMIT_EXCEEDED:
			return SL_ERR_POLICY_VIOLATION;
		default:
			return SL_ERR_UNKNOWN_SERVER_ERROR;
	}
}

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
	return kafka_error_for(edata->sqlerrcode, invalid_value_error);
}

typedef struct CreateArgs
{
	const char *name;
	int32		partitions;
	Jsonb	   *config;
} CreateArgs;

static void
create_topic(void *arg)
{
	CreateArgs *args = arg;

	SlTopicCreate(args->name, args->partitions, args->config);
}

int16
SlTopicAdminCreate(const char *name, int32 partitions, Jsonb *config,
				   bool validate_only, char **message)
{
	CreateArgs	args = {name, partitions, config};

	if (partitions < 1)
	{
		if (message)
			*message = psprintf("a topic needs at least one partition, not %d", partitions);
		return SL_ERR_INVALID_PARTITIONS;
	}
	return SlTopicAdminRun(create_topic, &args, validate_only, SL_ERR_INVALID_CONFIG, message);
}

const char *
SlClusterId(void)
{
	static char id[64];

	if (id[0] == '\0')
		snprintf(id, sizeof(id), "streamlog-%llx-%u",
				 (unsigned long long) GetSystemIdentifier(), MyDatabaseId);
	return id;
}
