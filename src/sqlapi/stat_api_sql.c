/*
 * streamlog.stat_api: the Kafka requests per API key and version since the
 * last reset, with their latencies read from the shared histograms
 * (metrics/counters.h): percentiles of the total time, and the mean and
 * 99th percentile of each part of it (queue, local, remote, send), in
 * milliseconds; and the error codes answered per API key
 * (streamlog.stat_api_errors).
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "streamlog/metrics/counters.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/shmem.h"

#define STAT_API_COLUMNS 19

/* A quantile of h in milliseconds; NULL if h is empty */
static void
put_quantile(Datum *value, bool *isnull, const SlHistogram *h, double q)
{
	double		us = SlHistogramQuantileUs(h, q);

	*isnull = us < 0;
	*value = Float8GetDatum(us / 1000.0);
}

/* The mean of h in milliseconds; NULL if h is empty */
static void
put_mean(Datum *value, bool *isnull, const SlHistogram *h)
{
	uint64		n = SlHistogramCount(h);

	*isnull = n == 0;
	*value = Float8GetDatum(n == 0 ? 0 : (double) h->sum_us / (double) n / 1000.0);
}

static Datum
api_name_datum(int16 api_key, bool *isnull)
{
	const SlApiInfo *api = SlApiLookup(api_key);

	*isnull = api == NULL;
	return api ? CStringGetTextDatum(api->name) : (Datum) 0;
}

PG_FUNCTION_INFO_V1(streamlog_stat_api);

Datum
streamlog_stat_api(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlApiStats *rows;
	int			n;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	rows = SlMetricsApiSnapshot(&n);
	for (int i = 0; i < n; i++)
	{
		const SlApiStats *r = &rows[i];
		Datum		values[STAT_API_COLUMNS];
		bool		nulls[STAT_API_COLUMNS] = {0};
		int			c = 0;

		values[c] = r->api_key >= 0 ? Int16GetDatum(r->api_key) : (Datum) 0;
		nulls[c] = r->api_key < 0;
		c++;
		values[c] = api_name_datum(r->api_key, &nulls[c]);
		c++;
		values[c] = r->api_version >= 0 ? Int16GetDatum(r->api_version) : (Datum) 0;
		nulls[c] = r->api_version < 0;
		c++;
		values[c++] = Int64GetDatum((int64) r->requests);
		values[c++] = Int64GetDatum((int64) r->errors);
		values[c++] = Int64GetDatum((int64) r->throttle_ms);
		put_quantile(&values[c], &nulls[c], &r->time[SL_TIME_TOTAL], 0.5);
		c++;
		put_quantile(&values[c], &nulls[c], &r->time[SL_TIME_TOTAL], 0.9);
		c++;
		put_quantile(&values[c], &nulls[c], &r->time[SL_TIME_TOTAL], 0.99);
		c++;
		put_mean(&values[c], &nulls[c], &r->time[SL_TIME_TOTAL]);
		c++;
		for (int t = SL_TIME_QUEUE; t <= SL_TIME_SEND; t++)
		{
			put_mean(&values[c], &nulls[c], &r->time[t]);
			c++;
			put_quantile(&values[c], &nulls[c], &r->time[t], 0.99);
			c++;
		}
		values[c++] = Int64GetDatum((int64) (r->time[SL_TIME_TOTAL].sum_us / 1000));
		Assert(c == STAT_API_COLUMNS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(streamlog_stat_api_errors);

Datum
streamlog_stat_api_errors(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlApiErrorStats *rows;
	int			n;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	rows = SlMetricsApiErrorSnapshot(&n);
	for (int i = 0; i < n; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {0};
		bool		other = rows[i].error_code == SL_METRICS_OTHER_ERROR_CODE;
		const char *name;

		values[0] = Int16GetDatum(rows[i].api_key);
		values[1] = api_name_datum(rows[i].api_key, &nulls[1]);
		values[2] = Int16GetDatum(rows[i].error_code);
		nulls[2] = other;
		name = other ? NULL : SlKafkaErrorName(rows[i].error_code);
		values[3] = CStringGetTextDatum(name ? name : "OTHER");
		values[4] = Int64GetDatum((int64) rows[i].count);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
