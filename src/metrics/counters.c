/*
 * The counters of streamlog in shared memory, see counters.h.
 *
 * Four families, each a fixed array of atomics sized at startup: Kafka
 * requests per API key and version (with their latency histograms) and
 * error codes per API key; listeners; broker-wide counters; and the
 * partitions, whose table is partition_counters.c's.
 * An increment is an atomic add on a counter that few processes share (each
 * broker worker and each SQL backend counts its own requests' partitions),
 * which is what PostgreSQL's own shared counters do where per-backend slots
 * would cost more memory than they save.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metrics/counters.h"
#include "streamlog/metrics/fetch_session_counts.h"
#include "streamlog/metrics/internal/partition_counters.h"
#include "streamlog/protocol/generated/kapi.h"

typedef struct SlAtomicHistogram
{
	pg_atomic_uint64 buckets[SL_HISTOGRAM_BUCKETS];
	pg_atomic_uint64 sum_us;
} SlAtomicHistogram;

/* One API key and version */
typedef struct ApiCell
{
	pg_atomic_uint64 requests;
	pg_atomic_uint64 errors;
	pg_atomic_uint64 throttle_ms;
	SlAtomicHistogram time[SL_TIME_COUNT];
} ApiCell;

StaticAssertDecl(sizeof(ApiCell) % sizeof(pg_atomic_uint64) == 0,
				 "ApiCell holds only 64-bit counters");

/* Error codes -1 .. SL_METRICS_MAX_ERROR_CODE, then the others */
#define ERROR_SLOTS (SL_METRICS_MAX_ERROR_CODE + 3)

/* Slot states of the listeners' names: a name is written once */
#define SLOT_EMPTY 0
#define SLOT_CLAIMING 1			/* its name is being written */
#define SLOT_READY 2

typedef struct ListenerCounters
{
	pg_atomic_uint32 state;		/* SLOT_*: name written once */
	char		name[64];
	pg_atomic_uint64 events[SL_LISTENER_EVENT_COUNT];
} ListenerCounters;

typedef struct SlMetricsShared
{
	pg_atomic_uint64 reset_time;	/* TimestampTz */
	pg_atomic_uint64 globals[SL_METRIC_COUNT];
	ListenerCounters listeners[SL_METRICS_MAX_LISTENERS];
	/* error codes per API key */
	pg_atomic_uint64 api_errors[SL_API_KEY_MAX + 1][ERROR_SLOTS];
	int			api_cells;
	/* then ApiCell[api_cells] */
} SlMetricsShared;

static SlMetricsShared *shared = NULL;
static ApiCell *api_cells = NULL;

/*
 * The API cells: one per version of each generated API key (versions as the
 * schemas define them), then one for keys and versions outside them.
 * Computed from the constant API table, alike in every process.
 */
static int	api_first_cell[SL_API_KEY_MAX + 1];
static int	api_cell_count = -1;

static const char *const metric_names[SL_METRIC_COUNT] = {
	[SL_METRIC_ISR_SHRINKS] = "isr_shrinks",
	[SL_METRIC_ISR_EXPANDS] = "isr_expands",
	[SL_METRIC_THROTTLE_PRODUCE_MS] = "throttle_produce_ms",
	[SL_METRIC_THROTTLE_FETCH_MS] = "throttle_fetch_ms",
	[SL_METRIC_THROTTLE_REQUEST_MS] = "throttle_request_ms",
	[SL_METRIC_CLEANER_RUNS] = "cleaner_runs",
	[SL_METRIC_CLEANER_SEGMENTS_DELETED] = "cleaner_segments_deleted",
	[SL_METRIC_CLEANER_PARTITIONS_CLEANED] = "cleaner_partitions_cleaned",
	[SL_METRIC_CLEANER_RECORDS_REMOVED] = "cleaner_records_removed",
	[SL_METRIC_CLEANER_BYTES_RECLAIMED] = "cleaner_bytes_reclaimed",
	[SL_METRIC_CLEANER_LAST_RUN_END] = "cleaner_last_run_end_ms",
	[SL_METRIC_SLOW_REQUESTS] = "slow_requests",
	[SL_METRIC_CONNECTION_SLOTS_FULL] = "connection_slots_full",
};

static void
compute_api_cells(void)
{
	int			n = 0;

	if (api_cell_count >= 0)
		return;
	for (int key = 0; key <= SL_API_KEY_MAX; key++)
	{
		const SlApiInfo *info = &sl_kafka_apis[key];

		if (info->name == NULL || info->max_version < info->min_version)
		{
			api_first_cell[key] = -1;
			continue;
		}
		api_first_cell[key] = n;
		n += info->max_version - info->min_version + 1;
	}
	api_cell_count = n + 1;		/* the last: unknown keys and versions */
}

static int
api_cell_of(int16 api_key, int16 api_version)
{
	const SlApiInfo *info;

	if (api_key < 0 || api_key > SL_API_KEY_MAX || api_first_cell[api_key] < 0)
		return api_cell_count - 1;
	info = &sl_kafka_apis[api_key];
	if (api_version < info->min_version || api_version > info->max_version)
		return api_cell_count - 1;
	return api_first_cell[api_key] + api_version - info->min_version;
}

static Size
header_size(void)
{
	return MAXALIGN(sizeof(SlMetricsShared));
}

Size
SlMetricsShmemSize(void)
{
	Size		size = header_size();

	compute_api_cells();
	size = add_size(size, mul_size(api_cell_count, sizeof(ApiCell)));
	return add_size(size, SlPartitionCountersShmemSize());
}

void
SlMetricsShmemInit(void)
{
	bool		found;

	compute_api_cells();
	shared = ShmemInitStruct("streamlog metrics",
							 add_size(header_size(), mul_size(api_cell_count, sizeof(ApiCell))),
							 &found);
	api_cells = (ApiCell *) ((char *) shared + header_size());
	SlPartitionCountersShmemInit();
	if (found)
		return;

	/* every counter is a pg_atomic_uint64 but the listeners' states */
	pg_atomic_init_u64(&shared->reset_time, (uint64) GetCurrentTimestamp());
	SlAtomicsInit(shared->globals, SL_METRIC_COUNT);
	for (int i = 0; i < SL_METRICS_MAX_LISTENERS; i++)
	{
		pg_atomic_init_u32(&shared->listeners[i].state, SLOT_EMPTY);
		shared->listeners[i].name[0] = '\0';
		SlAtomicsInit(shared->listeners[i].events, SL_LISTENER_EVENT_COUNT);
	}
	SlAtomicsInit(&shared->api_errors[0][0], (SL_API_KEY_MAX + 1) * ERROR_SLOTS);
	shared->api_cells = api_cell_count;
	SlAtomicsInit((pg_atomic_uint64 *) api_cells,
				 api_cell_count * sizeof(ApiCell) / sizeof(pg_atomic_uint64));
}

/* Counting is off, or shared memory is not there (not preloaded) */
static inline bool
not_counting(void)
{
	return !sl_track_metrics || shared == NULL;
}

TimestampTz
SlMetricsResetTime(void)
{
	if (shared == NULL)
		return 0;
	return (TimestampTz) pg_atomic_read_u64(&shared->reset_time);
}

void
SlMetricsReset(void)
{
	if (shared == NULL)
		return;
	/*
	 * Counter by counter: an increment racing with the reset is either
	 * kept or lost, as with pg_stat_reset.  Partitions keep their slots.
	 */
	SlAtomicsZero(shared->globals, SL_METRIC_COUNT);
	for (int i = 0; i < SL_METRICS_MAX_LISTENERS; i++)
		SlAtomicsZero(shared->listeners[i].events, SL_LISTENER_EVENT_COUNT);
	SlAtomicsZero(&shared->api_errors[0][0], (SL_API_KEY_MAX + 1) * ERROR_SLOTS);
	SlAtomicsZero((pg_atomic_uint64 *) api_cells,
				 shared->api_cells * sizeof(ApiCell) / sizeof(pg_atomic_uint64));
	SlPartitionCountersReset();
	SlFetchSessionCountsReset();
	pg_atomic_write_u64(&shared->reset_time, (uint64) GetCurrentTimestamp());
}

/* ---- requests ---- */

static inline void
histogram_add(SlAtomicHistogram *h, uint64 us)
{
	pg_atomic_fetch_add_u64(&h->buckets[SlHistogramBucketOf(us)], 1);
	pg_atomic_fetch_add_u64(&h->sum_us, us);
}

static inline int
error_slot(int16 error_code)
{
	if (error_code < -1 || error_code > SL_METRICS_MAX_ERROR_CODE)
		return ERROR_SLOTS - 1;
	return error_code + 1;
}

void
SlMetricsCountRequest(const SlRequestOutcome *outcome)
{
	ApiCell    *cell;
	uint64		total = outcome->time_us[SL_TIME_TOTAL];

	if (not_counting())
		return;
	cell = &api_cells[api_cell_of(outcome->api_key, outcome->api_version)];
	pg_atomic_fetch_add_u64(&cell->requests, 1);
	if (outcome->error_code != 0)
	{
		pg_atomic_fetch_add_u64(&cell->errors, 1);
		SlMetricsCountError(outcome->api_key, outcome->error_code, 1);
	}
	if (outcome->throttle_ms > 0)
		pg_atomic_fetch_add_u64(&cell->throttle_ms, outcome->throttle_ms);
	if (total == 0)
		for (int t = SL_TIME_TOTAL + 1; t < SL_TIME_COUNT; t++)
			total += outcome->time_us[t];
	histogram_add(&cell->time[SL_TIME_TOTAL], total);
	for (int t = SL_TIME_TOTAL + 1; t < SL_TIME_COUNT; t++)
		histogram_add(&cell->time[t], outcome->time_us[t]);
}

void
SlMetricsCountError(int16 api_key, int16 error_code, uint64 n)
{
	if (not_counting() || api_key < 0 || api_key > SL_API_KEY_MAX || error_code == 0)
		return;
	pg_atomic_fetch_add_u64(&shared->api_errors[api_key][error_slot(error_code)], n);
}

static void
histogram_read(SlHistogram *out, SlAtomicHistogram *h)
{
	for (int i = 0; i < SL_HISTOGRAM_BUCKETS; i++)
		out->buckets[i] = pg_atomic_read_u64(&h->buckets[i]);
	out->sum_us = pg_atomic_read_u64(&h->sum_us);
}

/* The key and version of API cell i: the inverse of api_cell_of */
static void
api_of_cell(int i, int16 *api_key, int16 *api_version)
{
	for (int key = 0; key <= SL_API_KEY_MAX; key++)
	{
		const SlApiInfo *info = &sl_kafka_apis[key];

		if (api_first_cell[key] < 0 || i < api_first_cell[key] ||
			i > api_first_cell[key] + info->max_version - info->min_version)
			continue;
		*api_key = key;
		*api_version = info->min_version + (i - api_first_cell[key]);
		return;
	}
	*api_key = -1;
	*api_version = -1;
}

SlApiStats *
SlMetricsApiSnapshot(int *count)
{
	SlApiStats *rows;
	int			n = 0;

	*count = 0;
	if (shared == NULL)
		return NULL;
	rows = palloc0(sizeof(SlApiStats) * shared->api_cells);
	for (int i = 0; i < shared->api_cells; i++)
	{
		ApiCell    *cell = &api_cells[i];
		SlApiStats *row = &rows[n];

		row->requests = pg_atomic_read_u64(&cell->requests);
		if (row->requests == 0)
			continue;
		api_of_cell(i, &row->api_key, &row->api_version);
		row->errors = pg_atomic_read_u64(&cell->errors);
		row->throttle_ms = pg_atomic_read_u64(&cell->throttle_ms);
		for (int t = 0; t < SL_TIME_COUNT; t++)
			histogram_read(&row->time[t], &cell->time[t]);
		n++;
	}
	*count = n;
	return rows;
}

SlApiErrorStats *
SlMetricsApiErrorSnapshot(int *count)
{
	SlApiErrorStats *rows;
	int			capacity = 0;
	int			n = 0;

	*count = 0;
	if (shared == NULL)
		return NULL;
	/*
	 * Two passes, count then copy; a code first counted between the two
	 * is left for the next snapshot
	 */
	for (int key = 0; key <= SL_API_KEY_MAX; key++)
		for (int e = 0; e < ERROR_SLOTS; e++)
			if (pg_atomic_read_u64(&shared->api_errors[key][e]) > 0)
				capacity++;
	rows = palloc0(sizeof(SlApiErrorStats) * Max(capacity, 1));
	for (int key = 0; key <= SL_API_KEY_MAX; key++)
		for (int e = 0; e < ERROR_SLOTS && n < capacity; e++)
		{
			uint64		v = pg_atomic_read_u64(&shared->api_errors[key][e]);

			if (v == 0)
				continue;
			rows[n].api_key = key;
			rows[n].error_code = e == ERROR_SLOTS - 1 ? SL_METRICS_OTHER_ERROR_CODE : e - 1;
			rows[n].count = v;
			n++;
		}
	*count = n;
	return rows;
}

/* ---- listeners ---- */

void
SlMetricsCountListener(int listener, const char *name, SlListenerEvent event)
{
	ListenerCounters *l;

	if (not_counting() || listener < 0 || listener >= SL_METRICS_MAX_LISTENERS)
		return;
	l = &shared->listeners[listener];
	if (pg_atomic_read_u32(&l->state) == SLOT_EMPTY)
	{
		uint32		expected = SLOT_EMPTY;

		if (pg_atomic_compare_exchange_u32(&l->state, &expected, SLOT_CLAIMING))
		{
			strlcpy(l->name, name ? name : "", sizeof(l->name));
			pg_write_barrier();
			pg_atomic_write_u32(&l->state, SLOT_READY);
		}
	}
	pg_atomic_fetch_add_u64(&l->events[event], 1);
}

SlListenerStats *
SlMetricsListenerSnapshot(int *count)
{
	SlListenerStats *rows;
	int			n = 0;

	*count = 0;
	if (shared == NULL)
		return NULL;
	rows = palloc0(sizeof(SlListenerStats) * SL_METRICS_MAX_LISTENERS);
	for (int i = 0; i < SL_METRICS_MAX_LISTENERS; i++)
	{
		ListenerCounters *l = &shared->listeners[i];

		if (pg_atomic_read_u32(&l->state) != SLOT_READY)
			continue;
		pg_read_barrier();
		strlcpy(rows[n].name, l->name, sizeof(rows[n].name));
		for (int e = 0; e < SL_LISTENER_EVENT_COUNT; e++)
			rows[n].events[e] = pg_atomic_read_u64(&l->events[e]);
		n++;
	}
	*count = n;
	return rows;
}

/* ---- broker-wide ---- */

void
SlMetricsAdd(SlMetric metric, uint64 n)
{
	if (not_counting() || metric < 0 || metric >= SL_METRIC_COUNT)
		return;
	pg_atomic_fetch_add_u64(&shared->globals[metric], n);
}

void
SlMetricsSet(SlMetric metric, uint64 value)
{
	if (not_counting() || metric < 0 || metric >= SL_METRIC_COUNT)
		return;
	pg_atomic_write_u64(&shared->globals[metric], value);
}

const char *
SlMetricName(SlMetric metric)
{
	if (metric < 0 || metric >= SL_METRIC_COUNT)
		return NULL;
	return metric_names[metric];
}

bool
SlMetricIsGauge(SlMetric metric)
{
	return metric == SL_METRIC_CLEANER_LAST_RUN_END;
}

void
SlMetricsGlobalSnapshot(uint64 *values)
{
	for (int i = 0; i < SL_METRIC_COUNT; i++)
		values[i] = shared ? pg_atomic_read_u64(&shared->globals[i]) : 0;
}
