/*-------------------------------------------------------------------------
 * metrics_raft.c
 *	  Metrics of the metadata quorum (metrics_sources.h), named after
 *	  KRaft's raft-metrics group: this node's role, the leader and term it
 *	  knows, the committed, last and applied indexes of its Raft log.  A
 *	  node of its own shows the role "standalone".
 *
 * IDENTIFICATION
 *	  src/storage/metrics_raft.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "streamlog/storage/metrics_sources.h"
#include "streamlog/storage/internal/catalog_query.h"

static const SlNamedQuery raft_query = {
	"SELECT role, coalesce(leader_id, -1), coalesce(term, 0), coalesce(commit_index, 0),"
	" coalesce(last_index, 0), coalesce(applied_index, 0) FROM streamlog.raft_status",
	0, {0}
};

void
SlMetricsAddRaft(SlExposition *e)
{
	SPI_connect();
	if (SlCatalogRun(&raft_query, NULL, NULL) > 0)
	{
		char	   *role = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		SlMetricLabel state = {"state", role ? role : "none"};

		SlExpositionAdd(e, SL_M_RAFT_STATE, &state, 1, 1);
		SlExpositionAdd(e, SL_M_RAFT_LEADER, NULL, 0, (double) SlCatalogInt32(0, 2, -1));
		SlExpositionAdd(e, SL_M_RAFT_EPOCH, NULL, 0, (double) SlCatalogInt64(0, 3, 0));
		SlExpositionAdd(e, SL_M_RAFT_HIGH_WATERMARK, NULL, 0, (double) SlCatalogInt64(0, 4, 0));
		SlExpositionAdd(e, SL_M_RAFT_LOG_END_OFFSET, NULL, 0, (double) SlCatalogInt64(0, 5, 0));
		SlExpositionAdd(e, SL_M_RAFT_APPLIED_OFFSET, NULL, 0, (double) SlCatalogInt64(0, 6, 0));
	}
	SPI_finish();
}
