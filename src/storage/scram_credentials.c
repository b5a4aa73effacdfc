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

#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/scram_credentials.h"

#define SHA512_MECHANISM "SCRAM-SHA-512"

typedef enum ScramQueryId
{
	Q_GET,
	Q_UPSERT,
	Q_DELETE,
	Q_FORGET_STALE,
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
};

/* Run q as the bootstrap superuser: the table is readable by no one else */
static uint64
run_as_owner(ScramQueryId q, Datum *values)
{
	Oid			save_userid;
	int			save_sec_context;
	uint64		n;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	n = SlCatalogRun(&scram_queries[q], values, NULL);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return n;
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

/* Is user a member of streamlog_admin (when that role exists)? */
static bool
is_streamlog_admin(Oid user)
{
	Oid			admin = get_role_oid("streamlog_admin", true);

	return OidIsValid(admin) && has_privs_of_role(user, admin);
}

bool
SlScramCredentialMayManage(Oid user, Oid role)
{
	if (superuser_arg(user) || user == role)
		return true;
	if (superuser_arg(role))
		return false;
	return has_createrole_privilege(user) || is_streamlog_admin(user);
}

bool
SlScramCredentialMayDescribe(Oid user)
{
	return superuser_arg(user) || is_streamlog_admin(user);
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
		if (run_as_owner(Q_GET, values) == 1)
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
		run_as_owner(Q_FORGET_STALE, values);
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
	run_as_owner(Q_FORGET_STALE, values);
	values[0] = ObjectIdGetDatum(role);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(SHA512_MECHANISM);
	values[3] = Int32GetDatum(secret->iterations);
	values[4] = CStringGetTextDatum(secret->salt);
	values[5] = PointerGetDatum(bytes_datum(secret->stored_key, keylen));
	values[6] = PointerGetDatum(bytes_datum(secret->server_key, keylen));
	run_as_owner(Q_UPSERT, values);
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
	n = run_as_owner(Q_DELETE, values);
	run_as_owner(Q_FORGET_STALE, values);
	SPI_finish();
	return n > 0;
}
