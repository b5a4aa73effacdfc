/*
 * Topic administration for Kafka requests, see topic_admin.h.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"

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
