/*
 * SPI helpers for the catalog tables, see catalog_query.h.
 */
#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/snapmgr.h"

#include "streamlog/storage/internal/catalog_query.h"

/*
 * Plans are kept per backend, by query text: the same few queries run on
 * every produce, fetch and read, and parsing them each time showed in
 * profiles.  The plan cache revalidates them when the catalog changes.
 *
 * This is the one plan cache of streamlog: named queries (SlNamedQuery)
 * go through it too.  Keyed by text rather than by a name or an index, so
 * that a caller needs no registration and the same text is prepared once
 * whoever runs it.  A text of PLAN_KEY_SIZE or more is prepared at each
 * run: none of ours is that long.
 */
#define PLAN_KEY_SIZE 1024

typedef struct PlanEntry
{
	char		sql[PLAN_KEY_SIZE];	/* hash key */
	SPIPlanPtr	plan;
} PlanEntry;

static HTAB *plans = NULL;

static SPIPlanPtr
plan_for(const char *sql, int nargs, Oid *types)
{
	PlanEntry  *entry = NULL;
	SPIPlanPtr	plan;
	bool		found;

	if (strlen(sql) < PLAN_KEY_SIZE)
	{
		if (plans == NULL)
		{
			HASHCTL		info;

			info.keysize = PLAN_KEY_SIZE;
			info.entrysize = sizeof(PlanEntry);
			plans = hash_create("streamlog catalog plans", 32, &info,
								HASH_ELEM | HASH_STRINGS);
		}
		entry = hash_search(plans, sql, HASH_FIND, &found);
		if (entry)
			return entry->plan;
	}
	plan = SPI_prepare(sql, nargs, types);
	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (strlen(sql) < PLAN_KEY_SIZE && SPI_keepplan(plan) == 0)
	{
		entry = hash_search(plans, sql, HASH_ENTER, &found);
		entry->plan = plan;
	}
	return plan;
}

uint64
SlCatalogQuery(const char *sql, int nargs, Oid *types, Datum *values,
			   const char *nulls)
{
	SPIPlanPtr	plan = plan_for(sql, nargs, types);
	int			rc;

	rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
							  InvalidSnapshot, false, true, 0);
	if (rc < 0)
		elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));
	if (strlen(sql) >= PLAN_KEY_SIZE)
		SPI_freeplan(plan);
	return SPI_processed;
}

uint64
SlCatalogRun(const SlNamedQuery *q, Datum *values, const char *nulls)
{
	return SlCatalogQuery(q->sql, q->nargs, (Oid *) q->types, values, nulls);
}

int64
SlCatalogInt64(uint64 row, int col, int64 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
								  col, &isnull);

	return isnull ? dflt : DatumGetInt64(d);
}

int32
SlCatalogInt32(uint64 row, int col, int32 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
								  col, &isnull);

	return isnull ? dflt : DatumGetInt32(d);
}

List *
SlCatalogTexts(uint64 n, int col, MemoryContext cxt)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	List	   *texts = NIL;

	for (uint64 i = 0; i < n; i++)
		texts = lappend(texts, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, col));
	MemoryContextSwitchTo(oldcxt);
	return texts;
}

void
SlCatalogExec(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));
}
