/*
 * One scrape of the Prometheus endpoint: every source read in one short
 * read-only transaction, written as the Prometheus text format or
 * OpenMetrics (bgworkers/metrics_scrape.c).
 */
#ifndef SL_METRICS_SCRAPE_H
#define SL_METRICS_SCRAPE_H

#include "postgres.h"

#include "lib/stringinfo.h"

/* The endpoint's own counters, kept by its worker */
#define SL_METRICS_HTTP_CODES 9

typedef struct SlMetricsHttpStats
{
	uint64		requests[SL_METRICS_HTTP_CODES];	/* by code, sl_metrics_http_codes */
	uint64		closed_timeout;
	uint64		closed_malformed;
	uint64		closed_too_many;
	uint64		closed_error;
	double		last_scrape_seconds;
} SlMetricsHttpStats;

/* The status codes counted, in the order of SlMetricsHttpStats.requests */
extern const int sl_metrics_http_codes[SL_METRICS_HTTP_CODES];

/*
 * Append the metrics to out, in out's memory context.  Runs its own
 * transaction: the caller has none.  A source that fails is logged and
 * left out, the others are served.
 */
extern void SlMetricsScrape(StringInfo out, bool openmetrics, const SlMetricsHttpStats *stats);

#endif							/* SL_METRICS_SCRAPE_H */
