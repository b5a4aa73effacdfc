/*
 * The counters of streamlog, kept in shared memory: what the
 * streamlog.stat_* views and the Prometheus endpoint show.  One set, so
 * that both always agree.
 *
 * Counting is cheap and never fails: atomic additions on shared memory, no
 * lock, no table write, nothing allocated.  With streamlog.track_metrics
 * off, every counting function returns at once (that is what the benchmark
 * compares).  Every door counts here: the Kafka server (requests, bytes of
 * its produce and fetch), the SQL functions (their bytes, by door SQL),
 * the workers (ISR changes, the cleaner) - hence a layer of its own, below
 * all of them but common (scripts/check_layers.py).
 *
 * Reading takes a snapshot: each family is copied counter by counter into
 * palloc'd memory with atomic reads, no lock, so a reader in another
 * process (a SQL backend, the metrics worker) never holds up the hot path.
 * A snapshot is consistent enough: each counter is exact, but two counters
 * may be read a few increments apart (requests against their histogram),
 * as with pg_stat views.
 *
 * Counters only go up, until streamlog.stat_reset() (SlMetricsReset) sets
 * them all back to zero; readers that compute rates (Prometheus) see a
 * counter reset as they do when a process restarts.
 */
#ifndef SL_METRICS_COUNTERS_H
#define SL_METRICS_COUNTERS_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "streamlog/metrics/histogram.h"

/* ---- shared memory (the entry point's hooks call these) ---- */

extern Size SlMetricsShmemSize(void);
extern void SlMetricsShmemInit(void);

/* When the counters were last reset (or the server started) */
extern TimestampTz SlMetricsResetTime(void);

/* Set every counter of every family back to zero (stat_reset) */
extern void SlMetricsReset(void);

/* ---- Kafka requests, per API key and version ---- */

/*
 * Kafka error codes are counted per API key from -1 (UNKNOWN_SERVER_ERROR)
 * up to SL_METRICS_MAX_ERROR_CODE; any other code in the last slot,
 * reported as error code SL_METRICS_OTHER_ERROR_CODE.
 */
#define SL_METRICS_MAX_ERROR_CODE 127
#define SL_METRICS_OTHER_ERROR_CODE 32767

/* The parts of a request's time, as Kafka's RequestMetrics splits it */
typedef enum SlRequestTime
{
	SL_TIME_TOTAL,				/* received to response sent */
	SL_TIME_QUEUE,				/* received to its handler starting */
	SL_TIME_LOCAL,				/* in its handler, not waiting */
	SL_TIME_REMOTE,				/* parked (Fetch, JoinGroup, ...), waiting on
								 * replication or another node */
	SL_TIME_SEND,				/* response ready to its last byte sent */
	SL_TIME_COUNT
} SlRequestTime;

/* How one request went, counted when its response is sent (or dropped) */
typedef struct SlRequestOutcome
{
	int16		api_key;
	int16		api_version;
	/*
	 * The request's error: the top-level error code of the response, or
	 * for a request whose answer is per partition (Produce, Fetch) the
	 * first non-zero one; 0 for none
	 */
	int16		error_code;
	uint64		time_us[SL_TIME_COUNT];	/* SL_TIME_TOTAL may be left 0: it
										 * is then the sum of the others */
	uint64		throttle_ms;	/* what the response told the client to wait */
} SlRequestOutcome;

extern void SlMetricsCountRequest(const SlRequestOutcome *outcome);

/*
 * Count error codes of api_key's responses beyond the one of its outcome
 * (Kafka's ErrorsPerSec counts each error of a response: one per failed
 * partition)
 */
extern void SlMetricsCountError(int16 api_key, int16 error_code, uint64 n);

/* One row of the API snapshot: one API key and version seen */
typedef struct SlApiStats
{
	int16		api_key;		/* -1, version -1: keys or versions unknown */
	int16		api_version;
	uint64		requests;
	uint64		errors;			/* requests whose error_code was not 0 */
	uint64		throttle_ms;
	SlHistogram time[SL_TIME_COUNT];
} SlApiStats;

/* Counts of one error code of one API key (non-zero ones only) */
typedef struct SlApiErrorStats
{
	int16		api_key;
	int16		error_code;		/* SL_METRICS_OTHER_ERROR_CODE: out of range */
	uint64		count;
} SlApiErrorStats;

/*
 * Snapshot of the API keys and versions that saw at least one request since
 * the last reset, ordered by key and version; palloc'd, *count rows
 */
extern SlApiStats *SlMetricsApiSnapshot(int *count);
extern SlApiErrorStats *SlMetricsApiErrorSnapshot(int *count);

/* ---- topics and partitions, per door ---- */

typedef enum SlMetricsDoor
{
	SL_DOOR_KAFKA,
	SL_DOOR_SQL,
	SL_DOOR_COUNT
} SlMetricsDoor;

/*
 * A partition as the counters key it: the same as storage's SlPartitionKey
 * (database, OID of the streamlog.topic table, topic id, partition), so
 * that a topic dropped and created again, or another database's, is not
 * counted as this one.  The overflow row has topic_id -1, partition -1.
 */
typedef struct SlMetricsPartition
{
	Oid			database;
	Oid			catalog;
	int32		topic_id;
	int32		partition;
} SlMetricsPartition;

/*
 * The door of this process: what storage counts its appends under.  SQL
 * unless the process says otherwise (the broker workers: Kafka).
 */
extern void SlMetricsSetProcessDoor(SlMetricsDoor door);
extern SlMetricsDoor SlMetricsProcessDoor(void);

/* Records and bytes appended to a partition (produce), by door */
extern void SlMetricsCountIn(const SlMetricsPartition *key, SlMetricsDoor door,
							 uint64 bytes, uint64 records);

/* Records and bytes read from a partition and handed out (fetch), by door */
extern void SlMetricsCountOut(const SlMetricsPartition *key, SlMetricsDoor door,
							  uint64 bytes, uint64 records);

/*
 * A produce (or fetch) request's part for one partition, and whether it
 * failed: Kafka's per-topic TotalProduceRequestsPerSec and
 * FailedProduceRequestsPerSec (and the Fetch ones)
 */
extern void SlMetricsCountProduce(const SlMetricsPartition *key, SlMetricsDoor door, bool failed);
extern void SlMetricsCountFetch(const SlMetricsPartition *key, SlMetricsDoor door, bool failed);

typedef struct SlPartitionDoorStats
{
	uint64		bytes_in;
	uint64		records_in;
	uint64		bytes_out;
	uint64		records_out;
	uint64		produce_requests;
	uint64		produce_failed;
	uint64		fetch_requests;
	uint64		fetch_failed;
} SlPartitionDoorStats;

typedef struct SlPartitionStats
{
	SlMetricsPartition key;
	SlPartitionDoorStats door[SL_DOOR_COUNT];
} SlPartitionStats;

/*
 * Snapshot of the partitions counted since the server started (a reset
 * zeroes their counts but keeps them), of every database, and the overflow
 * row last if anything went to it; palloc'd, *count rows.
 *
 * The shared table holds at least streamlog.metrics_max_partitions
 * partitions; what is counted for a partition that finds no room goes to
 * the overflow row instead, never an error.  A dropped topic's partitions
 * keep their place until the server restarts.
 */
extern SlPartitionStats *SlMetricsPartitionSnapshot(int *count);

/* ---- listeners: connections and authentication ---- */

#define SL_METRICS_MAX_LISTENERS 16

typedef enum SlListenerEvent
{
	SL_LISTENER_CONNECTION_OPENED,	/* accepted */
	SL_LISTENER_CONNECTION_CLOSED,
	SL_LISTENER_CONNECTION_REFUSED,	/* over a connection limit */
	SL_LISTENER_AUTH_SUCCEEDED,
	SL_LISTENER_AUTH_FAILED,
	SL_LISTENER_EVENT_COUNT
} SlListenerEvent;

/*
 * Count an event on listener (its index in the listener table, name as
 * listeners.h names it; the name is kept for readers)
 */
extern void SlMetricsCountListener(int listener, const char *name, SlListenerEvent event);

typedef struct SlListenerStats
{
	char		name[64];
	uint64		events[SL_LISTENER_EVENT_COUNT];
} SlListenerStats;

/* Snapshot of the listeners that counted something; palloc'd */
extern SlListenerStats *SlMetricsListenerSnapshot(int *count);

/* ---- broker-wide counters ---- */

typedef enum SlMetric
{
	SL_METRIC_ISR_SHRINKS,		/* a partition's ISR lost a replica */
	SL_METRIC_ISR_EXPANDS,		/* a replica joined a partition's ISR */
	SL_METRIC_THROTTLE_PRODUCE_MS,	/* throttle time told to producers */
	SL_METRIC_THROTTLE_FETCH_MS,	/* ... to consumers */
	SL_METRIC_THROTTLE_REQUEST_MS,	/* ... for request time quotas */
	SL_METRIC_CLEANER_RUNS,		/* retention or compaction passes done */
	SL_METRIC_CLEANER_SEGMENTS_DELETED,	/* segments dropped by retention */
	SL_METRIC_CLEANER_PARTITIONS_CLEANED,	/* compaction passes over a
											 * partition */
	SL_METRIC_CLEANER_RECORDS_REMOVED,	/* records compaction removed */
	SL_METRIC_CLEANER_BYTES_RECLAIMED,	/* bytes compaction freed */
	SL_METRIC_CLEANER_LAST_RUN_END,	/* gauge: end of the last pass, Unix ms */
	SL_METRIC_SLOW_REQUESTS,	/* requests logged as slow */
	SL_METRIC_CONNECTION_SLOTS_FULL,	/* connections stat_connections could
										 * not show */
	SL_METRIC_COUNT
} SlMetric;

/* Add n to a counter */
extern void SlMetricsAdd(SlMetric metric, uint64 n);

/* Set a gauge (SL_METRIC_CLEANER_LAST_RUN_END) */
extern void SlMetricsSet(SlMetric metric, uint64 value);

/* "isr_shrinks", ... : a stable name for each; is it a gauge? */
extern const char *SlMetricName(SlMetric metric);
extern bool SlMetricIsGauge(SlMetric metric);

/* Snapshot: values[SL_METRIC_COUNT] */
extern void SlMetricsGlobalSnapshot(uint64 *values);

#endif							/* SL_METRICS_COUNTERS_H */
