/*
 * A partition as the shared counters key it (metrics/counters.h): the same
 * database, catalog and topic id as storage's own SlPartitionKey, so that a
 * topic dropped and created again, or another database's, counts apart.
 */
#ifndef SL_PARTITION_METRICS_H
#define SL_PARTITION_METRICS_H

#include "streamlog/metrics/counters.h"
#include "streamlog/storage/storage.h"

static inline SlMetricsPartition
SlPartitionMetricsKey(int32 topic_id, int32 partition)
{
	SlPartitionKey key = SlMakePartitionKey(topic_id, partition);
	SlMetricsPartition m;

	m.database = key.database;
	m.catalog = key.catalog;
	m.topic_id = key.topic_id;
	m.partition = key.partition;
	return m;
}

#endif							/* SL_PARTITION_METRICS_H */
