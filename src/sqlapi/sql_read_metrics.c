/*
 * What the SQL door hands out, counted, see sql_read_metrics.h.
 */
#include "postgres.h"

#include "streamlog/guc.h"
#include "streamlog/metrics/counters.h"
#include "streamlog/sqlapi/sql_read_metrics.h"
#include "streamlog/storage/partition_metrics.h"

void
SlSqlReadCountDone(const SlTopic *topic, int32 partition, const SlSqlReadCount *count)
{
	SlMetricsPartition key;

	if (!sl_track_metrics)
		return;
	key = SlPartitionMetricsKey(topic->topic_id, partition);
	SlMetricsCountFetch(&key, SL_DOOR_SQL, false);
	if (count->records > 0)
		SlMetricsCountOut(&key, SL_DOOR_SQL, count->bytes, count->records);
}
