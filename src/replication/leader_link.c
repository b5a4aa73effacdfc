/*-------------------------------------------------------------------------
 * leader_link.c
 *	  libpq connections from a follower to a partition leader, waited on
 *	  through the latch with deadlines (see leader_link.h): the links every
 *	  node uses (metadata/node_link.h), in the replication connection's
 *	  non-blocking mode, with timeouts where the apply worker counts them.
 *
 * IDENTIFICATION
 *	  src/replication/leader_link.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "streamlog/metadata/node_link.h"
#include "streamlog/replication/leader_link.h"

int
SlLeaderWait(PGconn *conn, int events, long timeout_ms)
{
	int			rc;

	rc = WaitLatchOrSocket(MyLatch,
						   WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | WL_TIMEOUT | events,
						   PQsocket(conn), Max(timeout_ms, 0), PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return rc;
}

PGconn *
SlLeaderConnect(const char *conninfo, bool replication,
				const char *application_name, int timeout_ms, char **why)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	PGconn	   *conn;

	conn = SlNodeLinkConnect(conninfo, application_name,
							 replication ? "replication" : NULL,
							 replication ? "database" : NULL, deadline, why);
	if (conn == NULL)
		return NULL;
	if (PQsetnonblocking(conn, 1) != 0)
	{
		*why = pchomp(PQerrorMessage(conn));
		SlNodeLinkClose(conn);
		return NULL;
	}
	return conn;
}

void
SlLeaderDisconnect(PGconn *conn)
{
	SlNodeLinkClose(conn);
}

PGresult *
SlLeaderQuery(PGconn *conn, const char *query, int nparams,
			  const char *const *values, bool binary_results,
			  int timeout_ms, char **why)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	PGresult   *result;

	if (SlNodeLinkQuery(conn, query, nparams, NULL, values, NULL, NULL,
						binary_results ? 1 : 0, deadline, &result, why) !=
		SL_NODE_LINK_ANSWERED)
		return NULL;
	return result;
}

bool
SlLeaderResultInt(const PGresult *res, int row, int col, int width, int64 *out)
{
	return SlNodeLinkResultInt(res, row, col, width, out);
}
