/*
 * SPI helpers for the catalog tables, see catalog_query.h.
 *
 * Every query runs as the owner of streamlog's catalogue (the role that
 * created the extension), with a fixed search_path, whoever the caller is.
 * Who may do what to a topic is decided by the privileges streamlog keeps
 * (storage/acl.h), checked by the SQL functions and the Kafka handlers
 * before they call storage; the tables themselves grant nothing to anyone,
 * so that SELECT on a catalogue table reads that table and nothing more.
 * The fixed search_path keeps a caller's own operators and functions out
 * of queries that run with the owner's rights (as PostgreSQL does for
 * maintenance commands, see RestrictSearchPath in PostgreSQL 17).
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

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

Oid
SlCatalogRelid(const char *name)
{
	Oid			nsp = get_namespace_oid("streamlog", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"streamlog\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION streamlog.")));
	return relid;
}

/*
 * The role that owns streamlog.topic: the one that ran CREATE EXTENSION,
 * which owns every table of the extension and the segment tables (created
 * by storage as that role).  Looked up each time through the syscache (a
 * few hash lookups), so a dropped and re-created extension is followed.
 */
static Oid
catalog_owner(void)
{
	Oid			relid = SlCatalogRelid("topic");
	HeapTuple	tuple;
	Oid			owner;

	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * How a catalogue query runs: as the catalogue's owner, in a security-
 * restricted operation (no SET ROLE, no temporary objects), with
 * search_path = pg_catalog, pg_temp.  The same search_path every time
 * also keeps the kept plans valid (a plan is made again when the
 * search_path differs from the one it was made with).
 */
typedef struct CatalogAccess
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} CatalogAccess;

static void
catalog_access_begin(CatalogAccess *access)
{
	Oid			owner = catalog_owner();

	GetUserIdAndSecContext(&access->save_userid, &access->save_sec_context);
	SetUserIdAndSecContext(owner, access->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	access->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

/*
 * Back to the caller's role and settings.  Called on error too (before the
 * error goes up): a caller that catches an error without aborting a
 * (sub)transaction must not be left running as the owner.
 */
static void
catalog_access_end(CatalogAccess *access, bool ok)
{
	AtEOXact_GUC(ok, access->save_nestlevel);
	SetUserIdAndSecContext(access->save_userid, access->save_sec_context);
}

uint64
SlCatalogQuery(const char *sql, int nargs, Oid *types, Datum *values,
			   const char *nulls)
{
	CatalogAccess access;
	SPIPlanPtr	plan;
	int			rc;

	catalog_access_begin(&access);
	PG_TRY();
	{
		plan = plan_for(sql, nargs, types);
		rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
								  InvalidSnapshot, false, true, 0);
		if (rc < 0)
			elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));
		if (strlen(sql) >= PLAN_KEY_SIZE)
			SPI_freeplan(plan);
	}
	PG_CATCH();
	{
		catalog_access_end(&access, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	catalog_access_end(&access, true);
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
	CatalogAccess access;

	catalog_access_begin(&access);
	PG_TRY();
	{
		int			rc = SPI_execute(sql, false, 0);

		if (rc < 0)
			elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));
	}
	PG_CATCH();
	{
		catalog_access_end(&access, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	catalog_access_end(&access, true);
}
