/*
 * Client quotas in streamlog.client_quota, see client_quotas.h.  The checks
 * live in one place, the SQL function streamlog.client_quota_apply(), which
 * both doors call, so both give the same errors.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/json.h"

#include "streamlog/storage/client_quotas.h"
#include "streamlog/storage/internal/catalog_query.h"

static const SlNamedQuery list_quotas = {
	"SELECT entity ? 'user', entity ->> 'user', entity ? 'client-id', "
	"       entity ->> 'client-id', quota_key, value "
	"  FROM streamlog.client_quota ORDER BY entity::text, quota_key",
	0, {0}
};

static const SlNamedQuery apply_quota = {
	"SELECT streamlog.client_quota_apply($1::jsonb, $2, $3, $4)",
	4, {TEXTOID, TEXTOID, FLOAT8OID, BOOLOID}
};

/*
 * Is streamlog.client_quota there?  Not in a database without the
 * extension (yet or any more), where the broker has no quotas to look up.
 * Its reads and writes run as the catalogue's owner, as every catalogue
 * query: the callers checked the privilege (ALTER_CONFIGS or
 * DESCRIBE_CONFIGS on the cluster), and PUBLIC may not touch the table.
 */
static bool
quota_table_exists(void)
{
	return OidIsValid(RangeVarGetRelid(makeRangeVar("streamlog", "client_quota", -1),
									   NoLock, true));
}

/* Column col of row of the last SPI result as a string made in cxt, or NULL */
static char *
column_text(uint64 row, int col, MemoryContext cxt)
{
	char	   *value = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return value ? MemoryContextStrdup(cxt, value) : NULL;
}

/* Every stored quota: the broker reads them for whatever role a request runs as */
List *
SlClientQuotasList(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *quotas = NIL;
	uint64		n;

	if (!quota_table_exists())
		return NIL;
	SPI_connect();
	n = SlCatalogRun(&list_quotas, NULL, NULL);
	for (uint64 i = 0; i < n; i++)
	{
		SlClientQuota *q = MemoryContextAllocZero(cxt, sizeof(SlClientQuota));
		bool		isnull;
		MemoryContext oldcxt;

		q->has_user = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
												 SPI_tuptable->tupdesc, 1, &isnull));
		q->user = column_text(i, 2, cxt);
		q->has_client_id = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
													  SPI_tuptable->tupdesc, 3, &isnull));
		q->client_id = column_text(i, 4, cxt);
		q->key = column_text(i, 5, cxt);
		q->value = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[i],
												SPI_tuptable->tupdesc, 6, &isnull));
		oldcxt = MemoryContextSwitchTo(cxt);
		quotas = lappend(quotas, q);
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return quotas;
}

/* One part of an entity as a JSON member: "type": "name" or null */
static void
append_entity_part(StringInfo json, const char *type, const char *name)
{
	if (json->len > 1)
		appendStringInfoString(json, ", ");
	escape_json(json, type);
	appendStringInfoString(json, ": ");
	if (name)
		escape_json(json, name);
	else
		appendStringInfoString(json, "null");
}

void
SlClientQuotaApply(const char *entity_json, const char *key, double value, bool remove,
				   bool validate_only)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	if (!quota_table_exists())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("client quotas need the streamlog extension in this database"),
				 errhint("Run CREATE EXTENSION streamlog.")));
	values[0] = entity_json ? CStringGetTextDatum(entity_json) : (Datum) 0;
	nulls[0] = entity_json ? ' ' : 'n';
	values[1] = key ? CStringGetTextDatum(key) : (Datum) 0;
	nulls[1] = key ? ' ' : 'n';
	values[2] = Float8GetDatum(value);
	nulls[2] = remove ? 'n' : ' ';
	values[3] = BoolGetDatum(validate_only);
	SPI_connect();
	SlCatalogRun(&apply_quota, values, nulls);
	SPI_finish();
}

void
SlClientQuotaAlter(const SlClientQuota *quota, bool remove, bool validate_only)
{
	StringInfoData entity;

	initStringInfo(&entity);
	appendStringInfoChar(&entity, '{');
	if (quota->has_user)
		append_entity_part(&entity, "user", quota->user);
	if (quota->has_client_id)
		append_entity_part(&entity, "client-id", quota->client_id);
	appendStringInfoChar(&entity, '}');
	SlClientQuotaApply(entity.data, quota->key, quota->value, remove, validate_only);
}
