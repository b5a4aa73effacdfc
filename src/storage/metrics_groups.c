/*-------------------------------------------------------------------------
 * metrics_groups.c
 *	  Metrics of the consumer groups (metrics_sources.h), named as
 *	  kafka-exporter names them: each group's committed offset and lag per
 *	  partition (lag to the last stable offset, as streamlog.consumer_lag
 *	  measures it).  Sums per topic are PromQL's to make.
 *
 * IDENTIFICATION
 *	  src/storage/metrics_groups.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "streamlog/storage/metrics_sources.h"
#include "streamlog/storage/internal/catalog_query.h"

static const SlNamedQuery lag_query = {
	"SELECT group_id, topic, partition::text, committed_offset, greatest(lag, 0)"
	" FROM streamlog.consumer_lag ORDER BY group_id, topic, partition",
	0, {0}
};

void
SlMetricsAddConsumerGroups(SlExposition *e)
{
	uint64		n;

	SPI_connect();
	n = SlCatalogRun(&lag_query, NULL, NULL);
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		SlMetricLabel labels[3] = {
			{"consumergroup", SPI_getvalue(tuple, desc, 1)},
			{"topic", SPI_getvalue(tuple, desc, 2)},
			{"partition", SPI_getvalue(tuple, desc, 3)}
		};

		SlExpositionAdd(e, SL_M_GROUP_OFFSET, labels, 3, (double) SlCatalogInt64(i, 4, 0));
		SlExpositionAdd(e, SL_M_GROUP_LAG, labels, 3, (double) SlCatalogInt64(i, 5, 0));
	}
	SPI_finish();
}
