/*-------------------------------------------------------------------------
 * log_dirs.c
 *	  A node's log directory for DescribeLogDirs: PostgreSQL keeps every
 *	  partition under its data directory, so that is the one log
 *	  directory; a partition's size is that of its segment relations, as
 *	  streamlog.partitions shows it.
 *
 * IDENTIFICATION
 *	  src/storage/log_dirs.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/statvfs.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"

#include "streamlog/storage/log_dirs.h"
#include "streamlog/storage/internal/catalog_query.h"

static const SlNamedQuery partitions_query = {
	"SELECT t.name, p.partition,"
	" (SELECT coalesce(sum(pg_total_relation_size(g.relid)), 0)::bigint"
	"    FROM streamlog.segment g"
	"   WHERE g.topic_id = p.topic_id AND g.partition = p.partition)"
	" FROM streamlog.topic t JOIN streamlog.partition p USING (topic_id)"
	" WHERE p.leader_id = $1 OR $1 = ANY (p.replicas)"
	" ORDER BY t.name, p.partition",
	1, {INT4OID}
};

SlLogDirPartition *
SlLogDirPartitions(int32 node_id, int *count)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		node = Int32GetDatum(node_id);
	SlLogDirPartition *rows;
	uint64		n;

	SPI_connect();
	n = SlCatalogRun(&partitions_query, &node, NULL);
	rows = MemoryContextAlloc(cxt, sizeof(SlLogDirPartition) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		char	   *topic = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		rows[i].topic = MemoryContextStrdup(cxt, topic);
		rows[i].partition = SlCatalogInt32(i, 2, 0);
		rows[i].size_bytes = SlCatalogInt64(i, 3, 0);
	}
	SPI_finish();
	*count = (int) n;
	return rows;
}

const char *
SlLogDirPath(void)
{
	return DataDir;
}

bool
SlLogDirSpace(int64 *total_bytes, int64 *usable_bytes)
{
	struct statvfs st;

	*total_bytes = -1;
	*usable_bytes = -1;
	if (statvfs(DataDir, &st) != 0)
		return false;
	*total_bytes = (int64) st.f_blocks * (int64) st.f_frsize;
	*usable_bytes = (int64) st.f_bavail * (int64) st.f_frsize;
	return true;
}
