/*-------------------------------------------------------------------------
 * metrics_brokers.c
 *	  What each broker worker holds now (metrics_sources.h), as
 *	  streamlog.broker_stats shows it: parked requests (Kafka keeps them
 *	  in its purgatories) and the memory they hold, answers not taken yet
 *	  and the connections muted for them.
 *
 * IDENTIFICATION
 *	  src/storage/metrics_brokers.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "streamlog/storage/metrics_sources.h"
#include "streamlog/storage/internal/catalog_query.h"

static const SlNamedQuery workers_query = {
	"SELECT worker::text, parked_requests, parked_request_bytes, unsent_bytes,"
	" muted_connections FROM streamlog.broker_stats ORDER BY worker",
	0, {0}
};

void
SlMetricsAddBrokerWorkers(SlExposition *e)
{
	uint64		n;

	SPI_connect();
	n = SlCatalogRun(&workers_query, NULL, NULL);
	for (uint64 i = 0; i < n; i++)
	{
		SlMetricLabel label = {"worker",
		SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)};

		SlExpositionAdd(e, SL_M_WORKER_PARKED, &label, 1, (double) SlCatalogInt32(i, 2, 0));
		SlExpositionAdd(e, SL_M_WORKER_PARKED_BYTES, &label, 1, (double) SlCatalogInt64(i, 3, 0));
		SlExpositionAdd(e, SL_M_WORKER_UNSENT_BYTES, &label, 1, (double) SlCatalogInt64(i, 4, 0));
		SlExpositionAdd(e, SL_M_WORKER_MUTED, &label, 1, (double) SlCatalogInt32(i, 5, 0));
	}
	SPI_finish();
}
