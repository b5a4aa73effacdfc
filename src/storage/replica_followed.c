/*-------------------------------------------------------------------------
 * replica_followed.c
 *	  The partitions a node follows and their leaders, from the catalog
 *	  the Raft worker syncs (see replica_followed.h).
 *
 * IDENTIFICATION
 *	  src/storage/replica_followed.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"

#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/replica_followed.h"

static const SlNamedQuery followed_query = {
	"SELECT topic_id, partition, leader_id, leader_epoch FROM streamlog.partition "
	"WHERE $1 = ANY (replicas) AND leader_id <> $1 AND leader_id >= 0 "
	"AND ($2 < 0 OR leader_id = $2) ORDER BY topic_id, partition",
	2, {INT4OID, INT4OID}
};

List *
SlFollowedPartitions(int32 node_id, int32 leader_id)
{
	Datum		values[2] = {Int32GetDatum(node_id), Int32GetDatum(leader_id)};
	MemoryContext caller = CurrentMemoryContext;
	List	   *out = NIL;
	uint64		n;

	SPI_connect();
	n = SlCatalogRun(&followed_query, values, NULL);
	for (uint64 i = 0; i < n; i++)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(caller);
		SlFollowedPartition *f = palloc(sizeof(SlFollowedPartition));

		f->topic_id = SlCatalogInt32(i, 1, 0);
		f->partition = SlCatalogInt32(i, 2, 0);
		f->leader = SlCatalogInt32(i, 3, -1);
		f->leader_epoch = SlCatalogInt32(i, 4, 0);
		out = lappend(out, f);
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return out;
}
