/*-------------------------------------------------------------------------
 * metrics_scrape.c
 *	  One scrape of the Prometheus endpoint: the sources of
 *	  storage/metrics_sources.h read in one short read-only transaction,
 *	  each in a subtransaction of its own, so that one that fails (a lock
 *	  it waited for too long, a view missing before CREATE EXTENSION)
 *	  leaves the others served; then the endpoint's own counters.
 *
 * IDENTIFICATION
 *	  src/bgworkers/metrics_scrape.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "streamlog/worker.h"
#include "streamlog/bgworkers/metrics_counter_sources.h"
#include "streamlog/bgworkers/metrics_scrape.h"
#include "streamlog/storage/metrics_sources.h"

/*
 * How long a scrape waits for a lock (a segment being dropped by
 * retention, say) before it leaves that source out: the worker serves
 * its other clients meanwhile only once the scrape is done
 */
#define SCRAPE_LOCK_TIMEOUT "2s"

const int	sl_metrics_http_codes[SL_METRICS_HTTP_CODES] = {200, 400, 404, 405, 413, 414,
	431, 500, 505};

typedef void (*SourceFn) (SlExposition *e);

static const struct
{
	const char *name;
	SourceFn	fn;
}			sources[] = {
	{"partitions", SlMetricsAddPartitions},
	{"consumer groups", SlMetricsAddConsumerGroups},
	{"cleaner", SlMetricsAddCleaner},
	{"metadata quorum", SlMetricsAddRaft},
	{"topics' traffic", SlMetricsAddTraffic},
	{"broker workers", SlMetricsAddBrokerWorkers},
	{"Kafka requests", SlMetricsAddRequests},
	{"connections", SlMetricsAddConnections},
};

/* Run one source in a subtransaction; on an error, log it and go on */
static void
run_source(int i, SlExposition *e)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		sources[i].fn(e);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ereport(LOG,
				(errmsg("streamlog metrics left out the metrics of the %s: %s",
						sources[i].name, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

static void
add_endpoint_stats(SlExposition *e, const SlMetricsHttpStats *stats)
{
	static const char *const reasons[] = {"timeout", "malformed", "too_many", "error"};
	uint64		closed[] = {stats->closed_timeout, stats->closed_malformed,
		stats->closed_too_many, stats->closed_error};

	SlExpositionAdd(e, SL_M_SCRAPE_SECONDS, NULL, 0, stats->last_scrape_seconds);
	for (int i = 0; i < SL_METRICS_HTTP_CODES; i++)
	{
		char		code[8];
		SlMetricLabel label = {"code", code};

		snprintf(code, sizeof(code), "%d", sl_metrics_http_codes[i]);
		SlExpositionAdd(e, SL_M_HTTP_REQUESTS, &label, 1, (double) stats->requests[i]);
	}
	for (int i = 0; i < lengthof(reasons); i++)
	{
		SlMetricLabel label = {"reason", reasons[i]};

		SlExpositionAdd(e, SL_M_HTTP_REFUSED, &label, 1, (double) closed[i]);
	}
}

void
SlMetricsScrape(StringInfo out, bool openmetrics, const SlMetricsHttpStats *stats)
{
	MemoryContext cxt = CurrentMemoryContext;
	SlExposition e;

	SlExpositionInit(&e, sl_metric_defs, SL_M_COUNT, openmetrics);
	SlExpositionAdd(&e, SL_M_BROKER_STATE, NULL, 0, 3);

	SlWorkerBeginTransaction();
	MemoryContextSwitchTo(cxt);
	XactReadOnly = true;
	(void) set_config_option("lock_timeout", SCRAPE_LOCK_TIMEOUT, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	if (OidIsValid(get_extension_oid("streamlog", true)))
	{
		for (int i = 0; i < lengthof(sources); i++)
			run_source(i, &e);
	}
	SlWorkerCommitTransaction();
	MemoryContextSwitchTo(cxt);

	add_endpoint_stats(&e, stats);
	SlExpositionFinish(&e, out);
}
