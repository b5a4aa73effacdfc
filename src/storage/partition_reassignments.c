/*-------------------------------------------------------------------------
 * partition_reassignments.c
 *	  The reassignments under way in this node's catalog
 *	  (partition_reassignments.h).
 *
 * The Raft worker writes a partition's adding and removing replicas into
 * streamlog.partition with the rest of its leadership
 * (cluster_catalog.c); this reads them back.  A cold admin path: one
 * query.
 *
 * IDENTIFICATION
 *	  src/storage/partition_reassignments.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "streamlog/storage/partition_reassignments.h"
#include "streamlog/storage/internal/catalog_query.h"

static const char *const reassignments_query =
"SELECT t.name, p.partition, p.replicas, p.adding_replicas, p.removing_replicas "
"FROM streamlog.partition p JOIN streamlog.topic t USING (topic_id) "
"WHERE (cardinality(p.adding_replicas) > 0 OR cardinality(p.removing_replicas) > 0) "
"AND ($1::text IS NULL OR t.name = $1) "
"ORDER BY t.name COLLATE \"C\", p.partition";

/* Column col of row as int32s (made in the current context) */
static int32 *
int_array(uint64 row, int col, int *n)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
	Datum	   *elems;
	int32	   *ids;

	*n = 0;
	if (isnull)
		return NULL;
	deconstruct_array(DatumGetArrayTypeP(d), INT4OID, 4, true, TYPALIGN_INT,
					  &elems, NULL, n);
	ids = palloc(sizeof(int32) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		ids[i] = DatumGetInt32(elems[i]);
	return ids;
}

List *
SlPartitionReassignmentsList(const char *topic)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *result = NIL;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char		nulls[1] = {topic ? ' ' : 'n'};
	uint64		n;

	values[0] = topic ? CStringGetTextDatum(topic) : (Datum) 0;
	SPI_connect();
	n = SlCatalogQuery(reassignments_query, 1, types, values, nulls);
	for (uint64 r = 0; r < n; r++)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(caller);
		SlPartitionReassignment *ra = palloc0(sizeof(SlPartitionReassignment));

		ra->topic = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
		ra->partition = SlCatalogInt32(r, 2, 0);
		ra->replicas = int_array(r, 3, &ra->nreplicas);
		ra->adding = int_array(r, 4, &ra->nadding);
		ra->removing = int_array(r, 5, &ra->nremoving);
		result = lappend(result, ra);
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return result;
}
