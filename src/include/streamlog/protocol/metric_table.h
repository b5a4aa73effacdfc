/*
 * The metrics the Prometheus endpoint exports: one table of names, types,
 * labels and HELP texts (metric_table.c), in the order they are written.
 * Names are Kafka's, as the Prometheus JMX exporter's common Kafka rules
 * make them from Kafka's MBeans (kafka_<domain>_<type>_<name>, lower
 * case), and kafka-exporter's for consumer groups; README.md lists the
 * same table.  A counter's name here has no _total: the exposition writer
 * adds it to its samples (and, in the Prometheus text format, to its TYPE
 * line), as OpenMetrics wants the family named without it.
 */
#ifndef SL_METRIC_TABLE_H
#define SL_METRIC_TABLE_H

#include "streamlog/protocol/codec_base.h"

typedef enum SlMetricType
{
	SL_METRIC_COUNTER,
	SL_METRIC_GAUGE,
	SL_METRIC_HISTOGRAM
} SlMetricType;

typedef struct SlMetricDef
{
	const char *name;
	SlMetricType type;
	const char *labels;			/* the label names, comma-separated, for docs */
	const char *help;
} SlMetricDef;

typedef enum SlMetricId
{
	/* the broker */
	SL_M_BROKER_STATE,
	/* partitions, from the catalog and the partition state */
	SL_M_LOG_SIZE,
	SL_M_LOG_END_OFFSET,
	SL_M_LOG_START_OFFSET,
	SL_M_LOG_SEGMENTS,
	SL_M_PARTITION_UNDER_REPLICATED,
	SL_M_PARTITION_REPLICAS,
	SL_M_PARTITION_IN_SYNC_REPLICAS,
	SL_M_REPLICA_PARTITIONS,
	SL_M_REPLICA_LEADERS,
	SL_M_REPLICA_UNDER_REPLICATED,
	/* the controller */
	SL_M_ACTIVE_CONTROLLER,
	SL_M_OFFLINE_PARTITIONS,
	SL_M_GLOBAL_TOPICS,
	SL_M_GLOBAL_PARTITIONS,
	/* the metadata quorum */
	SL_M_RAFT_STATE,
	SL_M_RAFT_LEADER,
	SL_M_RAFT_EPOCH,
	SL_M_RAFT_HIGH_WATERMARK,
	SL_M_RAFT_LOG_END_OFFSET,
	SL_M_RAFT_APPLIED_OFFSET,
	/* consumer groups */
	SL_M_GROUP_LAG,
	SL_M_GROUP_OFFSET,
	/* the cleaner */
	SL_M_CLEANER_MAX_DIRTY,
	SL_M_CLEANER_UNCLEANABLE,
	SL_M_CLEANER_CLEANED_OFFSET,
	/* traffic per topic and door (the shared counters) */
	SL_M_BYTES_IN,
	SL_M_BYTES_OUT,
	SL_M_MESSAGES_IN,
	SL_M_MESSAGES_OUT,
	SL_M_PRODUCE_REQUESTS,
	SL_M_PRODUCE_FAILED,
	SL_M_FETCH_REQUESTS,
	SL_M_FETCH_FAILED,
	/* Kafka requests per API */
	SL_M_REQUESTS,
	SL_M_REQUEST_ERRORS,
	SL_M_TOTAL_TIME,
	SL_M_QUEUE_TIME,
	SL_M_LOCAL_TIME,
	SL_M_REMOTE_TIME,
	SL_M_SEND_TIME,
	SL_M_THROTTLE_TIME,
	/* connections and logins */
	SL_M_CONNECTIONS,
	SL_M_CONNECTIONS_OPENED,
	SL_M_CONNECTIONS_CLOSED,
	SL_M_CONNECTIONS_REFUSED,
	SL_M_AUTH_SUCCEEDED,
	SL_M_AUTH_FAILED,
	SL_M_CONNECTIONS_BY_PRINCIPAL,
	/* the broker workers now */
	SL_M_WORKER_PARKED,
	SL_M_WORKER_PARKED_BYTES,
	SL_M_WORKER_UNSENT_BYTES,
	SL_M_WORKER_MUTED,
	/* replicas and the cleaner, counted */
	SL_M_ISR_SHRINKS,
	SL_M_ISR_EXPANDS,
	SL_M_CLEANER_RUNS,
	SL_M_CLEANER_SEGMENTS_DELETED,
	SL_M_SLOW_REQUESTS,
	/* the broker workers' incremental fetch sessions */
	SL_M_FETCH_SESSIONS,
	SL_M_FETCH_SESSION_PARTITIONS,
	SL_M_FETCH_SESSION_EVICTIONS,
	/* the endpoint itself */
	SL_M_SCRAPE_SECONDS,
	SL_M_HTTP_REQUESTS,
	SL_M_HTTP_REFUSED,
	SL_M_COUNT
} SlMetricId;

extern const SlMetricDef sl_metric_defs[SL_M_COUNT];

/* The name of a type as TYPE lines write it */
extern const char *SlMetricTypeName(SlMetricType type);

#endif							/* SL_METRIC_TABLE_H */
