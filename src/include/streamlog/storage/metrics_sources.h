/*
 * What the Prometheus endpoint reads from the catalog and the partition
 * state, each source adding its families to an exposition (metric
 * table in protocol/metric_table.h): the partitions' logs and replicas
 * with the controller's counts, the consumer groups' lag, the cleaner's
 * progress, the metadata quorum, the traffic the shared counters
 * counted per topic.  Read from the SQL views an operator
 * sees (streamlog.partitions, consumer_lag, compaction, raft_status), so
 * that the metrics and the views agree.
 *
 * Each runs inside the caller's transaction, read only, connected to SPI
 * by itself; an error is an ERROR, for the caller to catch.
 */
#ifndef SL_STORAGE_METRICS_SOURCES_H
#define SL_STORAGE_METRICS_SOURCES_H

#include "postgres.h"

#include "streamlog/protocol/metrics_exposition.h"

extern void SlMetricsAddPartitions(SlExposition *e);
extern void SlMetricsAddConsumerGroups(SlExposition *e);
extern void SlMetricsAddCleaner(SlExposition *e);
extern void SlMetricsAddRaft(SlExposition *e);

/*
 * Bytes, records, produce and fetch requests per topic and door, from the
 * shared counters (metrics/counters.h), summed over the topic's
 * partitions; the names of the topics from the catalog
 */
extern void SlMetricsAddTraffic(SlExposition *e);

/*
 * What each broker worker holds now (streamlog.broker_stats): parked
 * requests and their memory, unsent answers, muted connections
 */
extern void SlMetricsAddBrokerWorkers(SlExposition *e);

#endif							/* SL_STORAGE_METRICS_SOURCES_H */
