/*
 * SQL: streamlog.latest(topic), the current value of every key of a topic
 * read as a table, and streamlog.latest(topic, key), of one key
 * (storage/latest.c says which record that is).
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "storage/lockdefs.h"
#include "utils/builtins.h"

#include "streamlog/sqlapi/cluster_sql.h"
#include "streamlog/sqlapi/record_rows.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog_latest);
PG_FUNCTION_INFO_V1(streamlog_latest_key);

static void
put_row(void *arg, int32 partition, const SlRecord *rec)
{
	SlRecordRowsPut((SlRecordRows *) arg, partition, rec);
}

/* latest(topic text): a row per key, with the columns of read() */
Datum
streamlog_latest(PG_FUNCTION_ARGS)
{
	char	   *name;
	const SlTopic *topic;
	SlRecordRows rows;

	SlRequireArg(fcinfo, 0, "topic");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SlAclCheck(SL_RESOURCE_TOPIC, name, SL_ACL_READ);
	topic = SlTopicLookupAndLock(name, AccessShareLock);
	SlSqlCheckTopicLeader(topic);
	SlRecordRowsInit(&rows, fcinfo);
	SlLogLatestAll(topic, put_row, &rows);
	return (Datum) 0;
}

/*
 * latest(topic text, key bytea, partition integer): 0 or 1 row, with the
 * columns of read().  A null partition searches them all.
 */
Datum
streamlog_latest_key(PG_FUNCTION_ARGS)
{
	char	   *name;
	const SlTopic *topic;
	bytea	   *key;
	int32		partition = -1;
	int32		found_partition;
	SlRecord	rec;
	SlRecordRows rows;

	SlRequireArg(fcinfo, 0, "topic");
	SlRequireArg(fcinfo, 1, "key");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	key = PG_GETARG_BYTEA_PP(1);
	/* Asked before the lookup, so that no one learns what exists */
	SlAclCheck(SL_RESOURCE_TOPIC, name, SL_ACL_READ);
	topic = SlTopicLookupAndLock(name, AccessShareLock);
	if (!PG_ARGISNULL(2))
	{
		partition = PG_GETARG_INT32(2);
		SlSqlCheckPartitionLeader(topic, partition);
	}
	else
		SlSqlCheckTopicLeader(topic);

	SlRecordRowsInit(&rows, fcinfo);
	if (SlLogLatest(topic, (const uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key),
					partition, &found_partition, &rec))
		SlRecordRowsPut(&rows, found_partition, &rec);
	return (Datum) 0;
}
