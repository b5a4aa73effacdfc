/*
 * SCRAM-SHA-512 credentials of PostgreSQL roles, in
 * streamlog.scram_credential; see scram_credentials.h.
 *
 * A role's row is found by oid and must carry the role's current name:
 * roles are shared by every database but this table lives in one, so a
 * DROP ROLE run elsewhere cannot remove the row, and an oid may be handed
 * to a new role once the old one is gone.  Rows whose role is gone or
 * renamed are deleted whenever credentials are set or removed, and when a
 * login finds none (Kafka keys credentials by user name too; PostgreSQL
 * clears an MD5 password on rename for the same reason).
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "catalog/pg_authid.h"
#include "access/htup_details.h"

#include "streamlog/storage/acl.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/scram_credentials.h"

#define SHA512_MECHANISM "SCRAM-SHA-512"

typedef enum ScramQueryId
{
	Q_GET,
	Q_UPSERT,
	Q_DELETE,
	Q_FORGET_STALE,
	Q_LIST,
	NUM_SCRAM_QUERIES
} ScramQueryId;

static const SlNamedQuery scram_queries[NUM_SCRAM_QUERIES] = {
	[Q_GET] = {
		"SELECT iterations, salt, stored_key, server_key FROM streamlog.scram_credential "
		"WHERE role = $1 AND role_name = $2 AND mechanism = $3",
		3, {OIDOID, TEXTOID, TEXTOID}
	},
	[Q_UPSERT] = {
		"INSERT INTO streamlog.scram_credential "
		"(role, role_name, mechanism, iterations, salt, stored_key, server_key) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7) "
		"ON CONFLICT (role, mechanism) DO UPDATE SET role_name = excluded.role_name, "
		"iterations = excluded.iterations, salt = excluded.salt, "
		"stored_key = excluded.stored_key, server_key = excluded.server_key",
		7, {OIDOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, BYTEAOID, BYTEAOID}
	},
	[Q_DELETE] = {
		"DELETE FROM streamlog.scram_credential WHERE role = $1 AND mechanism = $2",
		2, {OIDOID, TEXTOID}
	},
	/* rows of roles dropped or renamed since */
	[Q_FORGET_STALE] = {
		"DELETE FROM streamlog.scram_credential c WHERE NOT EXISTS "
		"(SELECT 1 FROM pg_catalog.pg_authid a WHERE a.oid = c.role AND a.rolname = c.role_name)",
		0, {InvalidOid}
	},
	/* the iteration count is the first field of PostgreSQL's verifier text */
	[Q_LIST] = {
		"SELECT a.rolname::text, 0, split_part(split_part(a.rolpassword, '$', 2), ':', 1)::int "
		"FROM pg_catalog.pg_authid a WHERE a.rolpassword LIKE 'SCRAM-SHA-256$%' "
		"AND ($1::text IS NULL OR a.rolname = $1) "
		"UNION ALL "
		"SELECT c.role_name::text, 1, c.iterations FROM streamlog.scram_credential c "
		"JOIN pg_catalog.pg_authid a ON a.oid = c.role AND a.rolname = c.role_name "
		"WHERE $1::text IS NULL OR c.role_name = $1 "
		"ORDER BY 1, 2",
		1, {TEXTOID}
	},
};

/*
 * Run q; as every catalogue query, as the catalogue's owner (the table is
 * readable by no one else)
 */
static uint64
run_query(ScramQueryId q, Datum *values)
{
	return SlCatalogRun(&scram_queries[q], values, NULL);
}

static bytea *
bytes_datum(const uint8 *data, int len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

/* The role's name now, NULL if it was dropped */
static char *
role_name(Oid role)
{
	return GetUserNameFromId(role, true);
}

bool
SlScramCredentialMayManage(Oid user, Oid role)
{
	if (superuser_arg(user) || user == role)
		return true;
	if (superuser_arg(role))
		return false;
	return has_createrole_privilege(user) ||
		SlAclAllowed(user, SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME, SL_ACL_ALTER);
}

bool
SlScramCredentialMayDescribe(Oid user)
{
	return SlAclAllowed(user, SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME, SL_ACL_DESCRIBE);
}

bool
SlScramCredentialGet(Oid role, SlScramSecret *secret)
{
	char	   *name = role_name(role);
	Datum		values[3];
	bool		found = false;
	MemoryContext caller = CurrentMemoryContext;

	SPI_connect();
	values[0] = ObjectIdGetDatum(role);
	if (name != NULL)
	{
		values[1] = CStringGetTextDatum(name);
		values[2] = CStringGetTextDatum(SHA512_MECHANISM);
		if (run_query(Q_GET, values) == 1)
		{
			bool		isnull;
			HeapTuple	row = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bytea	   *stored = DatumGetByteaPP(SPI_getbinval(row, desc, 3, &isnull));
			bytea	   *server = DatumGetByteaPP(SPI_getbinval(row, desc, 4, &isnull));
			int			keylen = SlScramKeyLength(SL_SCRAM_SHA_512);

			if (VARSIZE_ANY_EXHDR(stored) == keylen && VARSIZE_ANY_EXHDR(server) == keylen)
			{
				secret->hash = SL_SCRAM_SHA_512;
				secret->iterations = SlCatalogInt32(0, 1, 0);
				secret->salt = MemoryContextStrdup(caller, SPI_getvalue(row, desc, 2));
				memcpy(secret->stored_key, VARDATA_ANY(stored), keylen);
				memcpy(secret->server_key, VARDATA_ANY(server), keylen);
				found = secret->iterations > 0;
			}
		}
	}
	/* None: perhaps a row of a role dropped or renamed since, to forget */
	if (!found)
		run_query(Q_FORGET_STALE, values);
	SPI_finish();
	return found;
}

void
SlScramCredentialSet(Oid role, const SlScramSecret *secret)
{
	char	   *name = role_name(role);
	int			keylen = SlScramKeyLength(secret->hash);
	Datum		values[7];

	Assert(secret->hash == SL_SCRAM_SHA_512);
	if (name == NULL)
		elog(ERROR, "role with OID %u does not exist", role);
	SPI_connect();
	values[0] = ObjectIdGetDatum(role);
	run_query(Q_FORGET_STALE, values);
	values[0] = ObjectIdGetDatum(role);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(SHA512_MECHANISM);
	values[3] = Int32GetDatum(secret->iterations);
	values[4] = CStringGetTextDatum(secret->salt);
	values[5] = PointerGetDatum(bytes_datum(secret->stored_key, keylen));
	values[6] = PointerGetDatum(bytes_datum(secret->server_key, keylen));
	run_query(Q_UPSERT, values);
	SPI_finish();
}

bool
SlScramCredentialDelete(Oid role)
{
	Datum		values[2];
	uint64		n;

	SPI_connect();
	values[0] = ObjectIdGetDatum(role);
	values[1] = CStringGetTextDatum(SHA512_MECHANISM);
	n = run_query(Q_DELETE, values);
	run_query(Q_FORGET_STALE, values);
	SPI_finish();
	return n > 0;
}

void
SlRolePasswordSet(Oid role, const SlScramSecret *secret)
{
	char	   *name = role_name(role);

	Assert(secret->hash == SL_SCRAM_SHA_256);
	if (name == NULL)
		elog(ERROR, "role with OID %u does not exist", role);
	/* PostgreSQL stores a verifier given as the password as it is */
	SPI_connect();
	SlCatalogExec(psprintf("ALTER ROLE %s PASSWORD %s", quote_identifier(name),
						   quote_literal_cstr(SlScramSecretText(secret))));
	SPI_finish();
}

bool
SlRolePasswordDrop(Oid role)
{
	char	   *name = role_name(role);
	HeapTuple	tuple;
	bool		had = false;

	if (name == NULL)
		return false;
	tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(role));
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = SysCacheGetAttr(AUTHOID, tuple, Anum_pg_authid_rolpassword, &isnull);

		had = !isnull && strncmp(TextDatumGetCString(d), "SCRAM-SHA-256$", 14) == 0;
		ReleaseSysCache(tuple);
	}
	if (!had)
		return false;
	SPI_connect();
	SlCatalogExec(psprintf("ALTER ROLE %s PASSWORD NULL", quote_identifier(name)));
	SPI_finish();
	return true;
}

List *
SlScramCredentialList(const char *user)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *out = NIL;
	Datum		values[1];
	char		nulls[1] = {user ? ' ' : 'n'};
	uint64		n;

	values[0] = user ? CStringGetTextDatum(user) : (Datum) 0;
	SPI_connect();
	n = SlCatalogRun(&scram_queries[Q_LIST], values, nulls);
	for (uint64 i = 0; i < n; i++)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(caller);
		SlScramCredentialInfo *info = palloc(sizeof(SlScramCredentialInfo));

		info->user = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		info->hash = SlCatalogInt32(i, 2, 0) == 1 ? SL_SCRAM_SHA_512 : SL_SCRAM_SHA_256;
		info->iterations = SlCatalogInt32(i, 3, 0);
		out = lappend(out, info);
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return out;
}
