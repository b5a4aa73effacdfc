/*-------------------------------------------------------------------------
 * metrics_partitions.c
 *	  Metrics of the partitions (metrics_sources.h): each partition's log
 *	  (size, start and end offsets, segments) and replicas, the replica
 *	  manager's counts of this node, and the controller's counts, which
 *	  Kafka reports on the active controller only.
 *
 * IDENTIFICATION
 *	  src/storage/metrics_partitions.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"

#include "streamlog/guc.h"
#include "streamlog/storage/metrics_sources.h"
#include "streamlog/storage/internal/catalog_query.h"

static const SlNamedQuery partitions_query = {
	"SELECT topic, partition::text, log_start_offset, high_watermark, bytes, segments,"
	" coalesce(leader, -1), coalesce(cardinality(replicas), 0),"
	" coalesce(cardinality(isr), 0), coalesce(offline, false),"
	" coalesce(under_replicated, false), $1 = ANY (replicas)"
	" FROM streamlog.partitions ORDER BY topic, partition",
	1, {INT4OID}
};

static const SlNamedQuery controller_query = {
	"SELECT controller_id FROM streamlog.raft_status", 0, {0}
};

void
SlMetricsAddPartitions(SlExposition *e)
{
	Datum		node = Int32GetDatum(sl_node_id);
	uint64		n;
	int64		replicas_here = 0;
	int64		leaders = 0;
	int64		under_replicated_led = 0;
	int64		offline = 0;
	int64		partitions;
	bool		controller;
	List	   *topics = NIL;

	SPI_connect();
	n = SlCatalogRun(&controller_query, NULL, NULL);
	controller = n > 0 && SlCatalogInt32(0, 1, -1) == sl_node_id;
	n = SlCatalogRun(&partitions_query, &node, NULL);
	partitions = (int64) n;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *topic = SPI_getvalue(tuple, desc, 1);
		SlMetricLabel labels[2] = {{"topic", topic}, {"partition", SPI_getvalue(tuple, desc, 2)}};
		int32		leader = SlCatalogInt32(i, 7, -1);
		bool		is_offline = SlCatalogInt32(i, 10, 0) != 0;
		bool		under = SlCatalogInt32(i, 11, 0) != 0;

		SlExpositionAdd(e, SL_M_LOG_START_OFFSET, labels, 2, (double) SlCatalogInt64(i, 3, 0));
		SlExpositionAdd(e, SL_M_LOG_END_OFFSET, labels, 2, (double) SlCatalogInt64(i, 4, 0));
		SlExpositionAdd(e, SL_M_LOG_SIZE, labels, 2, (double) SlCatalogInt64(i, 5, 0));
		SlExpositionAdd(e, SL_M_LOG_SEGMENTS, labels, 2, (double) SlCatalogInt64(i, 6, 0));
		SlExpositionAdd(e, SL_M_PARTITION_REPLICAS, labels, 2, (double) SlCatalogInt32(i, 8, 0));
		SlExpositionAdd(e, SL_M_PARTITION_IN_SYNC_REPLICAS, labels, 2,
						(double) SlCatalogInt32(i, 9, 0));
		SlExpositionAdd(e, SL_M_PARTITION_UNDER_REPLICATED, labels, 2, under ? 1 : 0);
		if (SlCatalogInt32(i, 12, 0) != 0 || leader == sl_node_id)
			replicas_here++;
		if (leader == sl_node_id)
		{
			leaders++;
			if (under)
				under_replicated_led++;
		}
		if (is_offline)
			offline++;
		if (topics == NIL || strcmp(llast(topics), topic) != 0)
			topics = lappend(topics, topic);
	}
	SlExpositionAdd(e, SL_M_REPLICA_PARTITIONS, NULL, 0, (double) replicas_here);
	SlExpositionAdd(e, SL_M_REPLICA_LEADERS, NULL, 0, (double) leaders);
	SlExpositionAdd(e, SL_M_REPLICA_UNDER_REPLICATED, NULL, 0, (double) under_replicated_led);
	SlExpositionAdd(e, SL_M_ACTIVE_CONTROLLER, NULL, 0, controller ? 1 : 0);
	SlExpositionAdd(e, SL_M_OFFLINE_PARTITIONS, NULL, 0, controller ? (double) offline : 0);
	SlExpositionAdd(e, SL_M_GLOBAL_TOPICS, NULL, 0,
					controller ? (double) list_length(topics) : 0);
	SlExpositionAdd(e, SL_M_GLOBAL_PARTITIONS, NULL, 0, controller ? (double) partitions : 0);
	SPI_finish();
}
