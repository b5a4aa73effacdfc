/*
 * Client quotas in streamlog.client_quota, see client_quotas.h.  The checks
 * live in one place, the SQL function streamlog.alter_client_quota(), which
 * the Kafka door calls too, so both give the same errors.
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/rel.h"

#include "streamlog/storage/client_quotas.h"
#include "streamlog/storage/internal/catalog_query.h"

static const SlNamedQuery list_quotas = {
	"SELECT entity ? 'user', entity ->> 'user', entity ? 'client-id', "
	"       entity ->> 'client-id', quota_key, value "
	"  FROM streamlog.client_quota ORDER BY entity::text, quota_key",
	0, {0}
};

static const SlNamedQuery alter_quota = {
	"SELECT streamlog.alter_client_quota($1::jsonb, $2, $3, $4)",
	4, {TEXTOID, TEXTOID, FLOAT8OID, BOOLOID}
};

/* Column col of row of the last SPI result as a string made in cxt, or NULL */
static char *
column_text(uint64 row, int col, MemoryContext cxt)
{
	char	   *value = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return value ? MemoryContextStrdup(cxt, value) : NULL;
}

/*
 * Every stored quota, read as the table's owner: the broker reads them
 * for whatever role a request runs as, and the table is not readable by
 * PUBLIC (Kafka's DescribeClientQuotas needs DESCRIBE_CONFIGS on the
 * cluster).  An ERROR meanwhile puts the user back with the (sub)transaction's
 * abort.
 */
List *
SlClientQuotasList(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *quotas = NIL;
	uint64		n;
	Oid			save_userid;
	int			save_sec_context;
	Relation	rel;
	Oid			owner;
	Oid			relid;

	/* no extension in this database (yet, or any more): no quotas */
	relid = RangeVarGetRelid(makeRangeVar("streamlog", "client_quota", -1), AccessShareLock,
							 true);
	if (!OidIsValid(relid))
		return NIL;
	rel = table_open(relid, NoLock);
	owner = rel->rd_rel->relowner;
	table_close(rel, AccessShareLock);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
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
	SetUserIdAndSecContext(save_userid, save_sec_context);
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
SlClientQuotaAlter(const SlClientQuota *quota, bool remove, bool validate_only)
{
	StringInfoData entity;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	initStringInfo(&entity);
	appendStringInfoChar(&entity, '{');
	if (quota->has_user)
		append_entity_part(&entity, "user", quota->user);
	if (quota->has_client_id)
		append_entity_part(&entity, "client-id", quota->client_id);
	appendStringInfoChar(&entity, '}');

	values[0] = CStringGetTextDatum(entity.data);
	values[1] = CStringGetTextDatum(quota->key ? quota->key : "");
	values[2] = Float8GetDatum(quota->value);
	if (remove)
		nulls[2] = 'n';
	values[3] = BoolGetDatum(validate_only);
	SPI_connect();
	SlCatalogRun(&alter_quota, values, nulls);
	SPI_finish();
}
