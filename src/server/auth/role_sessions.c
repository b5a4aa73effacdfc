/*
 * Kafka sessions per role, so that a role's CONNECTION LIMIT counts its
 * Kafka sessions over every broker worker together with its SQL backends
 * (as PostgreSQL counts those: CountUserBackends); see auth.h.
 *
 * A fixed table in shared memory, one row per role with sessions, one
 * counter per broker worker in each row: a worker that exits (and is
 * restarted) zeroes its own counters when it attaches again, so nothing it
 * counted before is left behind.  A spinlock guards the table: logins are
 * rare next to requests, and a scan of the table is short.
 *
 * The SQL door counts them too: a ClientAuthentication_hook refuses a SQL
 * login that the role's Kafka sessions would take past its limit, which
 * PostgreSQL's own check (its backends only) cannot see.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
/*
 * Port's GSSAPI member is only a pointer, of the same size without GSSAPI
 * (libpq-be.h keeps the offsets for extensions): read Port without the
 * GSSAPI headers, which a build machine need not have
 */
#undef ENABLE_GSS
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/syscache.h"

#include "streamlog/server/auth.h"
#include "streamlog/shmem.h"

/* Roles with Kafka sessions at once, at most; more are refused a login */
#define ROLE_SESSION_ROWS 1024

typedef struct RoleSessionRow
{
	Oid			role;			/* InvalidOid: free */
	int32		sessions[SL_MAX_BROKERS];
} RoleSessionRow;

typedef struct RoleSessions
{
	slock_t		mutex;
	RoleSessionRow rows[ROLE_SESSION_ROWS];
} RoleSessions;

static RoleSessions *role_sessions = NULL;
static int	my_worker = -1;
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

Size
SlRoleSessionsShmemSize(void)
{
	return MAXALIGN(sizeof(RoleSessions));
}

void
SlRoleSessionsShmemInit(void)
{
	bool		found;

	role_sessions = ShmemInitStruct("streamlog role sessions", sizeof(RoleSessions), &found);
	if (!found)
	{
		memset(role_sessions, 0, sizeof(RoleSessions));
		SpinLockInit(&role_sessions->mutex);
	}
}

/* Is row unused: no worker counts a session in it? */
static bool
row_empty(const RoleSessionRow *row)
{
	for (int w = 0; w < SL_MAX_BROKERS; w++)
		if (row->sessions[w] != 0)
			return false;
	return true;
}

void
SlRoleSessionsAttach(int worker_index)
{
	Assert(worker_index >= 0 && worker_index < SL_MAX_BROKERS);
	my_worker = worker_index;
	SpinLockAcquire(&role_sessions->mutex);
	for (int i = 0; i < ROLE_SESSION_ROWS; i++)
	{
		role_sessions->rows[i].sessions[worker_index] = 0;
		if (row_empty(&role_sessions->rows[i]))
			role_sessions->rows[i].role = InvalidOid;
	}
	SpinLockRelease(&role_sessions->mutex);
}

/* role's CONNECTION LIMIT, -1 for none (or a superuser, who has none) */
static int
connection_limit(Oid role)
{
	HeapTuple	tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(role));
	int			limit = -1;

	if (HeapTupleIsValid(tuple))
	{
		Form_pg_authid form = (Form_pg_authid) GETSTRUCT(tuple);

		if (!form->rolsuper)
			limit = form->rolconnlimit;
		ReleaseSysCache(tuple);
	}
	return limit;
}

/* Kafka sessions of role over every worker; the caller holds the mutex */
static int
kafka_sessions_locked(Oid role)
{
	int			n = 0;

	for (int i = 0; i < ROLE_SESSION_ROWS; i++)
		if (role_sessions->rows[i].role == role)
		{
			for (int w = 0; w < SL_MAX_BROKERS; w++)
				n += role_sessions->rows[i].sessions[w];
			break;
		}
	return n;
}

/*
 * A SQL login that passed authentication: refuse it, as PostgreSQL would,
 * if the role's SQL backends, its Kafka sessions and this one would pass
 * its CONNECTION LIMIT (PostgreSQL counts the backends alone, later)
 */
static void
check_sql_login(Port *port, int status)
{
	Oid			role;
	int			limit;
	int			kafka;

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status != STATUS_OK || role_sessions == NULL || port->user_name == NULL)
		return;
	role = get_role_oid(port->user_name, true);
	if (!OidIsValid(role) || (limit = connection_limit(role)) < 0)
		return;
	SpinLockAcquire(&role_sessions->mutex);
	kafka = kafka_sessions_locked(role);
	SpinLockRelease(&role_sessions->mutex);
	if (kafka > 0 && kafka + CountUserBackends(role) + 1 > limit)
		ereport(FATAL,
				(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
				 errmsg("too many connections for role \"%s\"", port->user_name),
				 errdetail("%d of its connections are Kafka sessions.", kafka)));
}

void
SlRoleSessionsInstallHook(void)
{
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = check_sql_login;
}

bool
SlRoleSessionAdmit(Oid role)
{
	int			limit = connection_limit(role);
	int			sql_backends = limit >= 0 ? CountUserBackends(role) : 0;
	int			kafka_sessions = 0;
	int			free_row = -1;
	int			found_row = -1;
	bool		admitted = false;

	Assert(my_worker >= 0);
	SpinLockAcquire(&role_sessions->mutex);
	for (int i = 0; i < ROLE_SESSION_ROWS; i++)
	{
		RoleSessionRow *row = &role_sessions->rows[i];

		if (row->role == role)
		{
			found_row = i;
			for (int w = 0; w < SL_MAX_BROKERS; w++)
				kafka_sessions += row->sessions[w];
			break;
		}
		if (free_row < 0 && row->role == InvalidOid)
			free_row = i;
	}
	if (limit < 0 || kafka_sessions + sql_backends < limit)
	{
		if (found_row < 0 && free_row >= 0)
		{
			found_row = free_row;
			role_sessions->rows[found_row].role = role;
		}
		if (found_row >= 0)
		{
			role_sessions->rows[found_row].sessions[my_worker]++;
			admitted = true;
		}
	}
	SpinLockRelease(&role_sessions->mutex);
	return admitted;
}

void
SlRoleSessionRelease(Oid role)
{
	SpinLockAcquire(&role_sessions->mutex);
	for (int i = 0; i < ROLE_SESSION_ROWS; i++)
	{
		RoleSessionRow *row = &role_sessions->rows[i];

		if (row->role == role)
		{
			if (row->sessions[my_worker] > 0)
				row->sessions[my_worker]--;
			if (row_empty(row))
				row->role = InvalidOid;
			break;
		}
	}
	SpinLockRelease(&role_sessions->mutex);
}
