/*-------------------------------------------------------------------------
 * node_link.c
 *	  libpq links between nodes: connect, send a statement and collect its
 *	  answer with every wait on the latch and a deadline (node_link.h).
 *
 * libpq is driven in its asynchronous mode only (PQconnectStartParams,
 * PQsendQueryParams, PQconsumeInput): its blocking calls wait in poll()
 * without the latch, where neither a cancel nor a shutdown reaches them.
 *
 * IDENTIFICATION
 *	  src/metadata/node_link.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/node_link.h"

StaticAssertDecl(sizeof(((SlClusterNode *) 0)->sql_conninfo) == SL_NODE_LINK_CONNINFO_MAX,
				 "a link keeps a node's whole conninfo");

bool
SlWaitSocketUntil(pgsocket sock, int events, TimestampTz deadline)
{
	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		int			rc;

		if (left <= 0)
			return false;
		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | WL_TIMEOUT | events,
							   sock, left, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (rc & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
			return true;
	}
}

PGconn *
SlNodeLinkConnect(const char *conninfo, const char *application_name,
				  const char *extra_keyword, const char *extra_value,
				  TimestampTz deadline, char **why)
{
	const char *keywords[4];
	const char *values[4];
	int			n = 0;
	PGconn	   *conn;
	PostgresPollingStatusType poll;

	keywords[n] = "dbname";
	values[n++] = conninfo;
	keywords[n] = "application_name";
	values[n++] = application_name;
	if (extra_keyword != NULL)
	{
		keywords[n] = extra_keyword;
		values[n++] = extra_value;
	}
	keywords[n] = NULL;
	values[n] = NULL;

	if (!AcquireExternalFD())
	{
		*why = pstrdup("out of file descriptors for a connection to another node");
		return NULL;
	}
	/* expand_dbname: conninfo may be a whole connection string */
	conn = PQconnectStartParams(keywords, values, 1);
	if (conn == NULL)
	{
		ReleaseExternalFD();
		*why = pstrdup("out of memory");
		return NULL;
	}
	/* From here on, SlNodeLinkClose releases both */
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
			SlNodeLinkClose(conn);
			return NULL;
		}
		poll = PQconnectPoll(conn);
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		*why = pchomp(PQerrorMessage(conn));
		SlNodeLinkClose(conn);
		return NULL;
	}
	return conn;
}

void
SlNodeLinkClose(PGconn *conn)
{
	if (conn == NULL)
		return;
	PQfinish(conn);
	ReleaseExternalFD();
}

PGconn *
SlNodeLinkOpen(SlNodeLink *link, int32 node_id, const char *conninfo,
			   const char *application_name,
			   const char *extra_keyword, const char *extra_value,
			   TimestampTz deadline, char **why)
{
	if (link->conn != NULL && link->node_id == node_id &&
		strcmp(link->conninfo, conninfo) == 0 &&
		PQstatus(link->conn) == CONNECTION_OK &&
		PQtransactionStatus(link->conn) == PQTRANS_IDLE)
		return link->conn;
	SlNodeLinkDrop(link);

	link->node_id = node_id;
	link->conn = SlNodeLinkConnect(conninfo, application_name, extra_keyword, extra_value,
								   deadline, why);
	if (link->conn != NULL)
		strlcpy(link->conninfo, conninfo, sizeof(link->conninfo));
	return link->conn;
}

void
SlNodeLinkDrop(SlNodeLink *link)
{
	SlNodeLinkClose(link->conn);
	link->conn = NULL;
	link->conninfo[0] = '\0';
}

SlNodeLinkOutcome
SlNodeLinkQuery(PGconn *conn, const char *query, int nparams,
				const Oid *types, const char *const *values,
				const int *lengths, const int *formats,
				int result_format, TimestampTz deadline,
				PGresult **result, char **why)
{
	PGresult   *last = NULL;
	int			rc;

	*result = NULL;
	/* A walsender takes the simple query protocol only */
	if (nparams == 0 && result_format == 0 ? !PQsendQuery(conn, query) :
		!PQsendQueryParams(conn, query, nparams, types, values, lengths, formats,
						   result_format))
	{
		*why = pchomp(PQerrorMessage(conn));
		return SL_NODE_LINK_BROKEN;
	}
	while ((rc = PQflush(conn)) == 1)
	{
		if (!SlWaitSocketUntil(PQsocket(conn), WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE,
							   deadline))
		{
			*why = pstrdup("sending the query timed out");
			return SL_NODE_LINK_TIMED_OUT;
		}
		if (!PQconsumeInput(conn))
		{
			*why = pchomp(PQerrorMessage(conn));
			return SL_NODE_LINK_BROKEN;
		}
	}
	if (rc < 0)
	{
		*why = pchomp(PQerrorMessage(conn));
		return SL_NODE_LINK_BROKEN;
	}
	for (;;)
	{
		PGresult   *res;

		while (PQisBusy(conn))
		{
			if (!SlWaitSocketUntil(PQsocket(conn), WL_SOCKET_READABLE, deadline))
			{
				PQclear(last);
				*why = pstrdup("no answer in time");
				return SL_NODE_LINK_TIMED_OUT;
			}
			if (!PQconsumeInput(conn))
			{
				PQclear(last);
				*why = pchomp(PQerrorMessage(conn));
				return SL_NODE_LINK_BROKEN;
			}
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		/* START_REPLICATION: the stream begins, no more results follow */
		if (PQresultStatus(res) == PGRES_COPY_BOTH)
		{
			PQclear(last);
			*result = res;
			return SL_NODE_LINK_ANSWERED;
		}
		PQclear(last);
		last = res;
	}
	if (last == NULL)
	{
		*why = pstrdup("no answer");
		return SL_NODE_LINK_BROKEN;
	}
	*result = last;
	return SL_NODE_LINK_ANSWERED;
}

bool
SlNodeLinkResultInt(const PGresult *res, int row, int col, int width, int64 *out)
{
	const unsigned char *p;
	uint64		v = 0;

	if (width != 2 && width != 4 && width != 8)
		return false;
	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != width)
		return false;
	p = (const unsigned char *) PQgetvalue(res, row, col);
	for (int i = 0; i < width; i++)
		v = (v << 8) | p[i];
	switch (width)
	{
		case 2:
			*out = (int16) (uint16) v;
			break;
		case 4:
			*out = (int32) (uint32) v;
			break;
		default:
			*out = (int64) v;
			break;
	}
	return true;
}
