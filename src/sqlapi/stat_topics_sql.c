/*
 * streamlog.stat_topics: bytes and records in and out, produce and fetch
 * requests of each partition counted since the server started (zeroed by
 * stat_reset), one row per door (kafka, sql).  The function returns every
 * database's partitions by key; the view keeps this database's, named.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "streamlog/metrics/counters.h"
#include "streamlog/shmem.h"

#define STAT_TOPICS_COLUMNS 13

static const char *const door_names[SL_DOOR_COUNT] = {
	[SL_DOOR_KAFKA] = "kafka",
	[SL_DOOR_SQL] = "sql",
};

PG_FUNCTION_INFO_V1(streamlog_stat_partitions);

Datum
streamlog_stat_partitions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlPartitionStats *rows;
	int			n;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	rows = SlMetricsPartitionSnapshot(&n);
	for (int i = 0; i < n; i++)
	{
		for (int d = 0; d < SL_DOOR_COUNT; d++)
		{
			const SlPartitionDoorStats *s = &rows[i].door[d];
			Datum		values[STAT_TOPICS_COLUMNS];
			bool		nulls[STAT_TOPICS_COLUMNS] = {0};

			/* a door that never counted anything here has no row */
			if (s->bytes_in == 0 && s->records_in == 0 && s->bytes_out == 0 &&
				s->records_out == 0 && s->produce_requests == 0 && s->fetch_requests == 0)
				continue;
			values[0] = ObjectIdGetDatum(rows[i].key.database);
			values[1] = ObjectIdGetDatum(rows[i].key.catalog);
			values[2] = Int32GetDatum(rows[i].key.topic_id);
			values[3] = Int32GetDatum(rows[i].key.partition);
			values[4] = CStringGetTextDatum(door_names[d]);
			values[5] = Int64GetDatum((int64) s->bytes_in);
			values[6] = Int64GetDatum((int64) s->records_in);
			values[7] = Int64GetDatum((int64) s->bytes_out);
			values[8] = Int64GetDatum((int64) s->records_out);
			values[9] = Int64GetDatum((int64) s->produce_requests);
			values[10] = Int64GetDatum((int64) s->produce_failed);
			values[11] = Int64GetDatum((int64) s->fetch_requests);
			values[12] = Int64GetDatum((int64) s->fetch_failed);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
