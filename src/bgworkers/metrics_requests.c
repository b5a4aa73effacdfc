/*-------------------------------------------------------------------------
 * metrics_requests.c
 *	  Kafka requests per API, from the shared counters: how many per API
 *	  and version, their error codes by Kafka's names, their time split as
 *	  Kafka's RequestMetrics split it (total, queue, local, remote, send)
 *	  as histograms in milliseconds per API (versions merged, as Kafka
 *	  keeps them), and the throttle time told to clients.
 *
 * IDENTIFICATION
 *	  src/bgworkers/metrics_requests.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "streamlog/bgworkers/metrics_counter_sources.h"
#include "streamlog/metrics/counters.h"
#include "streamlog/protocol/generated/kapi.h"

static const SlMetricId time_metric[SL_TIME_COUNT] = {
	[SL_TIME_TOTAL] = SL_M_TOTAL_TIME,
	[SL_TIME_QUEUE] = SL_M_QUEUE_TIME,
	[SL_TIME_LOCAL] = SL_M_LOCAL_TIME,
	[SL_TIME_REMOTE] = SL_M_REMOTE_TIME,
	[SL_TIME_SEND] = SL_M_SEND_TIME,
};

/* Kafka's name of an API, or its key for one without a name */
static const char *
api_name(int16 key, char *buf, size_t size)
{
	const SlApiInfo *info = key >= 0 ? SlApiLookup(key) : NULL;

	if (info != NULL && info->name != NULL)
		return info->name;
	snprintf(buf, size, "%s%d", key < 0 ? "unknown" : "api", (int) key);
	return buf;
}

static void
add_histogram(SlExposition *e, SlMetricId id, const char *request, const SlHistogram *h)
{
	double		bounds[SL_HISTOGRAM_BUCKETS - 1];
	uint64		cumulative[SL_HISTOGRAM_BUCKETS - 1];
	uint64		running = 0;
	SlMetricLabel label = {"request", request};

	for (int i = 0; i < SL_HISTOGRAM_BUCKETS - 1; i++)
	{
		running += h->buckets[i];
		cumulative[i] = running;
		bounds[i] = (double) SlHistogramBucketUpperUs(i) / 1000.0;
	}
	SlExpositionAddHistogram(e, id, &label, 1, bounds, cumulative, SL_HISTOGRAM_BUCKETS - 1,
							 (double) h->sum_us / 1000.0, SlHistogramCount(h));
}

void
SlMetricsAddRequests(SlExposition *e)
{
	int			count;
	SlApiStats *apis = SlMetricsApiSnapshot(&count);
	SlApiErrorStats *errors;
	int			nerrors;

	for (int i = 0; i < count;)
	{
		char		namebuf[32];
		const char *name = api_name(apis[i].api_key, namebuf, sizeof(namebuf));
		SlHistogram merged[SL_TIME_COUNT];
		uint64		throttle = 0;
		int			key = apis[i].api_key;

		memset(merged, 0, sizeof(merged));
		/* the rows of one key are together: ordered by key and version */
		for (; i < count && apis[i].api_key == key; i++)
		{
			char		version[16];
			SlMetricLabel labels[2] = {{"request", name}, {"version", version}};

			snprintf(version, sizeof(version), "%d", (int) apis[i].api_version);
			SlExpositionAdd(e, SL_M_REQUESTS, labels, 2, (double) apis[i].requests);
			for (int t = 0; t < SL_TIME_COUNT; t++)
				SlHistogramMerge(&merged[t], &apis[i].time[t]);
			throttle += apis[i].throttle_ms;
		}
		for (int t = 0; t < SL_TIME_COUNT; t++)
			add_histogram(e, time_metric[t], name, &merged[t]);
		{
			SlMetricLabel label = {"request", name};

			SlExpositionAdd(e, SL_M_THROTTLE_TIME, &label, 1, (double) throttle);
		}
	}
	pfree(apis);

	errors = SlMetricsApiErrorSnapshot(&nerrors);
	for (int i = 0; i < nerrors; i++)
	{
		char		namebuf[32];
		char		codebuf[32];
		const char *error = SlKafkaErrorName(errors[i].error_code);
		SlMetricLabel labels[2] = {
			{"request", api_name(errors[i].api_key, namebuf, sizeof(namebuf))},
			{"error", error}
		};

		if (error == NULL)
		{
			snprintf(codebuf, sizeof(codebuf), "CODE_%d", (int) errors[i].error_code);
			labels[1].value = codebuf;
		}
		SlExpositionAdd(e, SL_M_REQUEST_ERRORS, labels, 2, (double) errors[i].count);
	}
	pfree(errors);
}
