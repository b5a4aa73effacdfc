/*
 * SQL: streamlog.delete_records(), Kafka's DeleteRecords for one partition.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "streamlog/sqlapi/cluster_sql.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog_delete_records);

Datum
streamlog_delete_records(PG_FUNCTION_ARGS)
{
	const SlTopic *topic;
	char	   *name;

	SlRequireArg(fcinfo, 0, "topic");
	SlRequireArg(fcinfo, 1, "partition");
	SlRequireArg(fcinfo, 2, "before_offset");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SlAclCheck(SL_RESOURCE_TOPIC, name, SL_ACL_DELETE);
	topic = SlTopicLookup(name, false);
	SlSqlCheckPartitionLeader(topic, PG_GETARG_INT32(1));
	PG_RETURN_INT64(SlPartitionDeleteRecords(topic, PG_GETARG_INT32(1), PG_GETARG_INT64(2)));
}
