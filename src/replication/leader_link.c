/*-------------------------------------------------------------------------
 * leader_link.c
 *	  libpq connections from a follower to a partition leader, waited on
 *	  through the latch with deadlines (see leader_link.h).
 *
 * IDENTIFICATION
 *	  src/replication/leader_link.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "streamlog/metadata/cluster_submit.h"
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
	const char *keywords[4];
	const char *values[4];
	int			n = 0;
	PGconn	   *conn;
	PostgresPollingStatusType poll;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	keywords[n] = "dbname";
	values[n++] = conninfo;
	keywords[n] = "application_name";
	values[n++] = application_name;
	if (replication)
	{
		keywords[n] = "replication";
		values[n++] = "database";
	}
	keywords[n] = NULL;
	values[n] = NULL;

	if (!AcquireExternalFD())
	{
		*why = pstrdup("out of file descriptors for a connection to the leader");
		return NULL;
	}
	conn = PQconnectStartParams(keywords, values, 1);
	if (conn == NULL)
	{
		ReleaseExternalFD();
		*why = pstrdup("out of memory");
		return NULL;
	}
	poll = PGRES_POLLING_WRITING;
	while (PQstatus(conn) != CONNECTION_BAD &&
		   poll != PGRES_POLLING_OK && poll != PGRES_POLLING_FAILED)
	{
		int			events = poll == PGRES_POLLING_READING ?
			WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;

		if (PQsocket(conn) < 0)
			break;
		if (!SlWaitSocketUntil(PQsocket(conn), events, deadline))
		{
			*why = pstrdup("connecting timed out");
			SlLeaderDisconnect(conn);
			return NULL;
		}
		poll = PQconnectPoll(conn);
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		*why = pchomp(PQerrorMessage(conn));
		SlLeaderDisconnect(conn);
		return NULL;
	}
	if (PQsetnonblocking(conn, 1) != 0)
	{
		*why = pchomp(PQerrorMessage(conn));
		SlLeaderDisconnect(conn);
		return NULL;
	}
	return conn;
}

void
SlLeaderDisconnect(PGconn *conn)
{
	if (conn == NULL)
		return;
	PQfinish(conn);
	ReleaseExternalFD();
}

PGresult *
SlLeaderQuery(PGconn *conn, const char *query, int nparams,
			  const char *const *values, bool binary_results,
			  int timeout_ms, char **why)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	PGresult   *last = NULL;
	int			rc;

	/* A walsender takes the simple query protocol only */
	if (nparams == 0 && !binary_results ? !PQsendQuery(conn, query) :
		!PQsendQueryParams(conn, query, nparams, NULL, values, NULL, NULL,
						   binary_results ? 1 : 0))
	{
		*why = pchomp(PQerrorMessage(conn));
		return NULL;
	}
	while ((rc = PQflush(conn)) == 1)
	{
		if (!SlWaitSocketUntil(PQsocket(conn), WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE, deadline))
		{
			*why = pstrdup("sending the query timed out");
			return NULL;
		}
		if (!PQconsumeInput(conn))
		{
			*why = pchomp(PQerrorMessage(conn));
			return NULL;
		}
	}
	if (rc < 0)
	{
		*why = pchomp(PQerrorMessage(conn));
		return NULL;
	}
	for (;;)
	{
		PGresult   *res;

		while (PQisBusy(conn))
		{
			if (!SlWaitSocketUntil(PQsocket(conn), WL_SOCKET_READABLE, deadline))
			{
				PQclear(last);
				*why = pstrdup("the leader did not answer in time");
				return NULL;
			}
			if (!PQconsumeInput(conn))
			{
				PQclear(last);
				*why = pchomp(PQerrorMessage(conn));
				return NULL;
			}
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		/* START_REPLICATION: the stream begins, no more results follow */
		if (PQresultStatus(res) == PGRES_COPY_BOTH)
		{
			PQclear(last);
			return res;
		}
		PQclear(last);
		last = res;
	}
	if (last == NULL)
		*why = pstrdup("no result");
	return last;
}

bool
SlLeaderResultInt(const PGresult *res, int row, int col, int width, int64 *out)
{
	const unsigned char *p;

	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != width)
		return false;
	p = (const unsigned char *) PQgetvalue(res, row, col);
	switch (width)
	{
		case 2:
			*out = (int16) (((uint16) p[0] << 8) | p[1]);
			return true;
		case 4:
			*out = (int32) (((uint32) p[0] << 24) | ((uint32) p[1] << 16) |
							((uint32) p[2] << 8) | p[3]);
			return true;
		case 8:
			{
				uint64		v = 0;

				for (int i = 0; i < 8; i++)
					v = (v << 8) | p[i];
				*out = (int64) v;
				return true;
			}
	}
	return false;
}
