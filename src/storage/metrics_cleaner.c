/*-------------------------------------------------------------------------
 * metrics_cleaner.c
 *	  Metrics of the cleaner (metrics_sources.h): how far it compacted each
 *	  partition of a compacted topic, the largest dirty share left, and the
 *	  partitions whose last compaction failed (Kafka's uncleanable ones).
 *
 * IDENTIFICATION
 *	  src/storage/metrics_cleaner.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "streamlog/storage/metrics_sources.h"
#include "streamlog/storage/internal/catalog_query.h"

static const SlNamedQuery cleaner_query = {
	"SELECT topic, partition::text, coalesce(cleaned_offset, 0),"
	" coalesce(dirty_ratio, 0) * 100, last_error IS NOT NULL"
	" FROM streamlog.compaction ORDER BY topic, partition",
	0, {0}
};

void
SlMetricsAddCleaner(SlExposition *e)
{
	uint64		n;
	double		max_dirty = 0;
	int64		uncleanable = 0;

	SPI_connect();
	n = SlCatalogRun(&cleaner_query, NULL, NULL);
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		SlMetricLabel labels[2] = {
			{"topic", SPI_getvalue(tuple, desc, 1)},
			{"partition", SPI_getvalue(tuple, desc, 2)}
		};
		bool		isnull;
		double		dirty = DatumGetFloat8(SPI_getbinval(tuple, desc, 4, &isnull));

		SlExpositionAdd(e, SL_M_CLEANER_CLEANED_OFFSET, labels, 2,
						(double) SlCatalogInt64(i, 3, 0));
		if (!isnull && dirty > max_dirty)
			max_dirty = dirty;
		if (SlCatalogInt32(i, 5, 0) != 0)
			uncleanable++;
	}
	SlExpositionAdd(e, SL_M_CLEANER_MAX_DIRTY, NULL, 0, max_dirty);
	SlExpositionAdd(e, SL_M_CLEANER_UNCLEANABLE, NULL, 0, (double) uncleanable);
	SPI_finish();
}
