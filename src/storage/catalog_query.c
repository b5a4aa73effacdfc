/*
 * SPI helpers for the catalog tables, see catalog_query.h.
 */
#include "postgres.h"

#include "utils/snapmgr.h"

#include "storage/catalog_query.h"

uint64
SlCatalogQuery(const char *sql, int nargs, Oid *types, Datum *values,
			   const char *nulls)
{
	SPIPlanPtr	plan;
	int			rc;

	plan = SPI_prepare(sql, nargs, types);
	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
							  InvalidSnapshot, false, true, 0);
	if (rc < 0)
		elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));
	SPI_freeplan(plan);
	return SPI_processed;
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

void
SlCatalogExec(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));
}
