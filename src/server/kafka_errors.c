/*
 * SQLSTATE to Kafka error code, in one table; see kafka_errors.h.
 *
 * Retriable Kafka errors are used only for conditions that pass (a lock
 * not granted in time, a serialization failure, a canceled statement);
 * a client's own mistake gets a final error, so that no client retries
 * something that can never work.
 */
#include "postgres.h"

#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/server/kafka_errors.h"

/* Which kind of API failed: the columns of the table */
typedef enum ApiFamily
{
	FAMILY_PRODUCE,				/* Produce */
	FAMILY_READ,				/* Fetch, ListOffsets, Metadata, DeleteRecords */
	FAMILY_GROUP,				/* group coordinator and committed offsets */
	FAMILY_ADMIN,				/* topics and configs, cluster, producer ids */
	NUM_FAMILIES
} ApiFamily;

typedef struct SqlstateMapping
{
	int			sqlstate;
	bool		whole_class;	/* matches every SQLSTATE of its class */
	int16		error[NUM_FAMILIES];
} SqlstateMapping;

#define SAME(e) {(e), (e), (e), (e)}

/* Exact SQLSTATEs first, then classes: the first match wins */
static const SqlstateMapping mappings[] = {
	{ERRCODE_UNDEFINED_OBJECT, false, SAME(SL_ERR_UNKNOWN_TOPIC_OR_PARTITION)},
	{ERRCODE_UNDEFINED_TABLE, false, SAME(SL_ERR_UNKNOWN_TOPIC_OR_PARTITION)},
	{ERRCODE_DUPLICATE_OBJECT, false, SAME(SL_ERR_TOPIC_ALREADY_EXISTS)},
	{ERRCODE_INVALID_NAME, false, SAME(SL_ERR_INVALID_TOPIC_EXCEPTION)},
	{ERRCODE_NAME_TOO_LONG, false, SAME(SL_ERR_INVALID_TOPIC_EXCEPTION)},
	/* internal topics: Kafka refuses to create, delete or write them */
	{ERRCODE_RESERVED_NAME, false,
	{SL_ERR_INVALID_TOPIC_EXCEPTION, SL_ERR_INVALID_REQUEST, SL_ERR_INVALID_REQUEST, SL_ERR_INVALID_REQUEST}},
	{ERRCODE_INVALID_PARAMETER_VALUE, false,
	{SL_ERR_INVALID_REQUEST, SL_ERR_INVALID_REQUEST, SL_ERR_INVALID_REQUEST, SL_ERR_INVALID_CONFIG}},
	{ERRCODE_FEATURE_NOT_SUPPORTED, false,
	{SL_ERR_INVALID_REQUEST, SL_ERR_INVALID_REQUEST, SL_ERR_INVALID_REQUEST, SL_ERR_INVALID_CONFIG}},
	{ERRCODE_PROGRAM_LIMIT_EXCEEDED, false,
	{SL_ERR_MESSAGE_TOO_LARGE, SL_ERR_POLICY_VIOLATION, SL_ERR_POLICY_VIOLATION, SL_ERR_POLICY_VIOLATION}},
	{ERRCODE_CONFIGURATION_LIMIT_EXCEEDED, false, SAME(SL_ERR_POLICY_VIOLATION)},
	{ERRCODE_INSUFFICIENT_PRIVILEGE, false,
	{SL_ERR_TOPIC_AUTHORIZATION_FAILED, SL_ERR_TOPIC_AUTHORIZATION_FAILED,
	SL_ERR_GROUP_AUTHORIZATION_FAILED, SL_ERR_CLUSTER_AUTHORIZATION_FAILED}},
	/* conditions that pass: retry */
	{ERRCODE_LOCK_NOT_AVAILABLE, false, SAME(SL_ERR_REQUEST_TIMED_OUT)},
	{ERRCODE_QUERY_CANCELED, false, SAME(SL_ERR_REQUEST_TIMED_OUT)},
	{ERRCODE_TRANSACTION_ROLLBACK, true, SAME(SL_ERR_REQUEST_TIMED_OUT)},
	/* the server's storage: retriable, as Kafka's own storage errors */
	{ERRCODE_DATA_CORRUPTED, false,
	{SL_ERR_KAFKA_STORAGE_ERROR, SL_ERR_KAFKA_STORAGE_ERROR,
	SL_ERR_COORDINATOR_NOT_AVAILABLE, SL_ERR_KAFKA_STORAGE_ERROR}},
	{ERRCODE_INDEX_CORRUPTED, false,
	{SL_ERR_KAFKA_STORAGE_ERROR, SL_ERR_KAFKA_STORAGE_ERROR,
	SL_ERR_COORDINATOR_NOT_AVAILABLE, SL_ERR_KAFKA_STORAGE_ERROR}},
	{ERRCODE_INSUFFICIENT_RESOURCES, true,
	{SL_ERR_KAFKA_STORAGE_ERROR, SL_ERR_KAFKA_STORAGE_ERROR,
	SL_ERR_COORDINATOR_NOT_AVAILABLE, SL_ERR_KAFKA_STORAGE_ERROR}},
	{ERRCODE_SYSTEM_ERROR, true,
	{SL_ERR_KAFKA_STORAGE_ERROR, SL_ERR_KAFKA_STORAGE_ERROR,
	SL_ERR_COORDINATOR_NOT_AVAILABLE, SL_ERR_KAFKA_STORAGE_ERROR}},
	/* bad data from the client */
	{ERRCODE_DATA_EXCEPTION, true,
	{SL_ERR_CORRUPT_MESSAGE, SL_ERR_INVALID_REQUEST, SL_ERR_INVALID_REQUEST, SL_ERR_INVALID_REQUEST}},
};

static ApiFamily
family_of(int16 api_key)
{
	switch (api_key)
	{
		case SL_API_PRODUCE:
			return FAMILY_PRODUCE;
		case SL_API_FETCH:
		case SL_API_LIST_OFFSETS:
		case SL_API_METADATA:
		case SL_API_DELETE_RECORDS:
			return FAMILY_READ;
		case SL_API_OFFSET_COMMIT:
		case SL_API_OFFSET_FETCH:
		case SL_API_FIND_COORDINATOR:
		case SL_API_JOIN_GROUP:
		case SL_API_HEARTBEAT:
		case SL_API_LEAVE_GROUP:
		case SL_API_SYNC_GROUP:
		case SL_API_DESCRIBE_GROUPS:
		case SL_API_LIST_GROUPS:
		case SL_API_DELETE_GROUPS:
		case SL_API_OFFSET_DELETE:
			return FAMILY_GROUP;
		default:
			return FAMILY_ADMIN;
	}
}

int16
SlKafkaErrorForSqlstate(int sqlerrcode, int16 api_key)
{
	ApiFamily	family = family_of(api_key);

	for (int i = 0; i < lengthof(mappings); i++)
	{
		const SqlstateMapping *m = &mappings[i];

		if (m->whole_class ? ERRCODE_TO_CATEGORY(sqlerrcode) == m->sqlstate :
			sqlerrcode == m->sqlstate)
			return m->error[family];
	}
	return SL_ERR_UNKNOWN_SERVER_ERROR;
}
