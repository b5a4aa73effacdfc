/*-------------------------------------------------------------------------
 * metrics_http.c
 *	  The Prometheus endpoint: one background worker serving HTTP/1.1 on
 *	  streamlog.metrics_listen.  GET (or HEAD) /metrics answers the
 *	  metrics (metrics_scrape.c) in the Prometheus text format 0.0.4, or in
 *	  OpenMetrics 1.0 when the Accept header prefers it; other paths get
 *	  404 and other methods 405.
 *
 *	  The endpoint faces whatever reaches its port, so nothing a client
 *	  sends may block the others or stop the worker: sockets are
 *	  non-blocking in one WaitEventSet with the latch; a request head is
 *	  bounded in bytes and header lines (http_request.c parses it); a
 *	  client gets streamlog.metrics_request_timeout to send a whole request
 *	  and again to take a whole answer, then it is closed with a log line;
 *	  connections are bounded too, and when all are taken the oldest one
 *	  not being answered makes room, so that a real scraper always gets
 *	  in.  An error in a round of the loop is logged and the worker goes on.
 *
 * IDENTIFICATION
 *	  src/bgworkers/metrics_http.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/worker.h"
#include "streamlog/bgworkers/listen_socket.h"
#include "streamlog/bgworkers/metrics_http.h"
#include "streamlog/bgworkers/metrics_scrape.h"
#include "streamlog/protocol/http_request.h"
#include "streamlog/protocol/metrics_exposition.h"

/* Bounds on what a client may send or hold */
#define MAX_HEAD 8192			/* bytes of a request head */
#define MAX_HEADERS 64			/* header lines of a request */
#define MAX_CONNS 32			/* open connections */
#define MAX_LISTEN 8			/* addresses the host resolves to */

typedef struct HttpConn
{
	pgsocket	sock;
	char		peer[NI_MAXHOST + NI_MAXSERV + 4];
	char		in[MAX_HEAD];
	int			inlen;
	StringInfoData out;			/* the answer being sent; out.data NULL if none */
	int			outpos;
	bool		close_after;	/* close once the answer is sent */
	bool		served;			/* answered a request already */
	TimestampTz accepted;
	TimestampTz deadline;		/* to send a whole request, or take an answer */
} HttpConn;

static pgsocket listen_sockets[MAX_LISTEN];
static int	nlisten = 0;
static HttpConn *conns[MAX_CONNS];
static int	nconns = 0;
static bool wait_set_stale = true;
static WaitEventSet *wait_set = NULL;
static MemoryContext conn_context = NULL;
static SlMetricsHttpStats stats;

/*
 * Split streamlog.metrics_listen into host (NULL: every interface) and
 * port: host:port, [ipv6]:port, *:port or :port.  False if it does not
 * parse.
 */
static bool
split_listen(const char *value, char *host, size_t hostsize, char *port, size_t portsize,
			 bool *any)
{
	const char *colon;
	const char *h = value;
	size_t		hlen;
	char	   *end;
	long		p;

	if (value[0] == '[')
	{
		const char *close = strchr(value, ']');

		if (close == NULL || close[1] != ':')
			return false;
		h = value + 1;
		hlen = close - h;
		colon = close + 1;
	}
	else
	{
		colon = strrchr(value, ':');
		if (colon == NULL)
			return false;
		hlen = colon - value;
	}
	if (hlen >= hostsize)
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*any = hlen == 0 || strcmp(host, "*") == 0;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 1 || p > 65535)
		return false;
	snprintf(port, portsize, "%ld", p);
	return true;
}

void
SlMetricsHttpRegister(void)
{
	char		host[NI_MAXHOST];
	char		port[16];
	bool		any;

	if (sl_metrics_listen == NULL || sl_metrics_listen[0] == '\0')
		return;
	if (!split_listen(sl_metrics_listen, host, sizeof(host), port, sizeof(port), &any))
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for parameter \"streamlog.metrics_listen\": \"%s\"",
						sl_metrics_listen),
				 errhint("Write host:port, [ipv6 address]:port or *:port, for example localhost:9644.")));
	SlWorkerRegister("SlMetricsHttpMain", "streamlog metrics");
}

static void
open_listen_sockets(void)
{
	char		host[NI_MAXHOST];
	char		port[16];
	bool		any;
	struct addrinfo hints;
	struct addrinfo *res;
	int			rc;

	if (!split_listen(sl_metrics_listen, host, sizeof(host), port, sizeof(port), &any))
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for parameter \"streamlog.metrics_listen\": \"%s\"",
						sl_metrics_listen)));
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(any ? NULL : host, port, &hints, &res);
	if (rc != 0)
		ereport(FATAL,
				(errmsg("streamlog metrics could not resolve \"%s\": %s",
						sl_metrics_listen, gai_strerror(rc))));
	for (struct addrinfo *ai = res; ai != NULL && nlisten < MAX_LISTEN; ai = ai->ai_next)
	{
		pgsocket	s = SlListenSocketOpen(ai, false, 64);

		if (s == PGINVALID_SOCKET)
		{
			ereport(LOG,
					(errcode_for_socket_access(),
					 errmsg("streamlog metrics could not listen on an address of \"%s\": %m",
							sl_metrics_listen)));
			continue;
		}
		listen_sockets[nlisten++] = s;
	}
	freeaddrinfo(res);
	if (nlisten == 0)
		ereport(FATAL,
				(errmsg("streamlog metrics could not listen on \"%s\"", sl_metrics_listen),
				 errhint("Check streamlog.metrics_listen: is the port free, is the address this machine's?")));
}

/*
 * Read and drop what a client sent that was not read, so that closing
 * does not answer it with a reset, which may make its system discard our
 * last answer before the client read it.  Bounded: what is left is left.
 */
static void
drain_unread(pgsocket sock)
{
	char		buf[4096];

	for (int i = 0; i < 16; i++)
		if (recv(sock, buf, sizeof(buf), 0) <= 0)
			break;
}

static void
close_conn(int i, const char *why, uint64 *counter)
{
	HttpConn   *c = conns[i];

	if (why != NULL)
		ereport(LOG,
				(errmsg("streamlog metrics closed the connection from %s: %s", c->peer, why)));
	if (counter != NULL)
		(*counter)++;
	shutdown(c->sock, SHUT_WR);
	drain_unread(c->sock);
	closesocket(c->sock);
	ReleaseExternalFD();
	if (c->out.data)
		pfree(c->out.data);
	pfree(c);
	conns[i] = conns[--nconns];
	wait_set_stale = true;
}

/*
 * Room for one more connection: close the one accepted first among those
 * not being answered (a scraper's request is answered as soon as it came
 * whole, so what waits there is idle, slow or hostile)
 */
static bool
make_room(void)
{
	int			oldest = -1;

	for (int i = 0; i < nconns; i++)
		if (conns[i]->out.data == NULL &&
			(oldest < 0 || conns[i]->accepted < conns[oldest]->accepted))
			oldest = i;
	if (oldest < 0)
		return false;
	close_conn(oldest, "too many connections, this one waited longest", &stats.closed_too_many);
	return true;
}

static void
accept_connections(pgsocket listener)
{
	for (;;)
	{
		struct sockaddr_storage addr;
		socklen_t	addrlen = sizeof(addr);
		pgsocket	s = accept(listener, (struct sockaddr *) &addr, &addrlen);
		char		host[NI_MAXHOST] = "?";
		char		serv[NI_MAXSERV] = "?";
		HttpConn   *c;
		int			one = 1;

		if (s == PGINVALID_SOCKET)
			return;
		getnameinfo((struct sockaddr *) &addr, addrlen, host, sizeof(host),
					serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
		if ((nconns == MAX_CONNS && !make_room()) || !AcquireExternalFD())
		{
			ereport(LOG,
					(errmsg("streamlog metrics refused a connection from %s:%s: too many connections",
							host, serv)));
			stats.closed_too_many++;
			closesocket(s);
			continue;
		}
		pg_set_noblock(s);
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = MemoryContextAllocZero(conn_context, sizeof(HttpConn));
		c->sock = s;
		snprintf(c->peer, sizeof(c->peer), "%s:%s", host, serv);
		c->accepted = GetCurrentTimestamp();
		c->deadline = TimestampTzPlusMilliseconds(c->accepted, sl_metrics_request_timeout_ms);
		conns[nconns++] = c;
		wait_set_stale = true;
	}
}

static void
count_status(int status)
{
	for (int i = 0; i < SL_METRICS_HTTP_CODES; i++)
		if (sl_metrics_http_codes[i] == status)
			stats.requests[i]++;
}

/* Queue an answer on c: status, content type, body (NULL: none for HEAD) */
static void
start_answer(HttpConn *c, int status, const char *content_type, const char *extra_headers,
			 StringInfo body, bool head_only)
{
	MemoryContext old = MemoryContextSwitchTo(conn_context);

	initStringInfo(&c->out);
	appendStringInfo(&c->out,
					 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s"
					 "Connection: %s\r\n\r\n",
					 status, SlHttpReason(status), content_type, body->len,
					 extra_headers ? extra_headers : "",
					 c->close_after ? "close" : "keep-alive");
	if (!head_only)
		appendBinaryStringInfo(&c->out, body->data, body->len);
	MemoryContextSwitchTo(old);
	c->outpos = 0;
	c->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											  sl_metrics_request_timeout_ms);
	count_status(status);
}

static void
answer_error(HttpConn *c, int status, const char *extra_headers, bool head_only)
{
	StringInfoData body;

	initStringInfo(&body);
	appendStringInfo(&body, "%d %s\n", status, SlHttpReason(status));
	start_answer(c, status, "text/plain; charset=utf-8", extra_headers, &body, head_only);
	pfree(body.data);
}

static void
answer_metrics(HttpConn *c, bool openmetrics, bool head_only)
{
	StringInfoData body;
	TimestampTz start = GetCurrentTimestamp();
	long		secs;
	int			usecs;

	initStringInfo(&body);
	pgstat_report_activity(STATE_RUNNING, "serving /metrics");
	SlMetricsScrape(&body, openmetrics, &stats);
	pgstat_report_activity(STATE_IDLE, NULL);
	TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
	stats.last_scrape_seconds = secs + usecs / 1000000.0;
	start_answer(c, 200, openmetrics ? SL_EXPOSITION_OPENMETRICS_TYPE : SL_EXPOSITION_TEXT_TYPE,
				 NULL, &body, head_only);
	pfree(body.data);
}

/* Parse what c sent and, with a whole request, queue its answer */
static void
serve_request(HttpConn *c)
{
	SlHttpRequest req;
	SlHttpParse rc = SlHttpParseRequest(c->in, c->inlen, MAX_HEAD, MAX_HEADERS, &req);
	bool		head;

	if (rc == SL_HTTP_INCOMPLETE)
		return;
	if (rc == SL_HTTP_BAD)
	{
		ereport(LOG,
				(errmsg("streamlog metrics refused a request from %s: %s", c->peer, req.error)));
		stats.closed_malformed++;
		c->close_after = true;
		c->inlen = 0;
		answer_error(c, req.status, NULL, false);
		return;
	}
	memmove(c->in, c->in + req.consumed, c->inlen - req.consumed);
	c->inlen -= req.consumed;
	c->close_after = !req.keep_alive;
	c->served = true;
	head = strcmp(req.method, "HEAD") == 0;
	if (strcmp(req.method, "GET") != 0 && !head)
		answer_error(c, 405, "Allow: GET, HEAD\r\n", false);
	else if (strcmp(req.path, "/metrics") != 0)
		answer_error(c, 404, NULL, head);
	else
		answer_metrics(c, req.openmetrics, head);
}

/* Read what c sent; false if it is to be closed (gone, or an error) */
static bool
read_conn(HttpConn *c)
{
	ssize_t		n;

	if (c->inlen == MAX_HEAD)
		return true;			/* the parser refuses it */
	n = recv(c->sock, c->in + c->inlen, MAX_HEAD - c->inlen, 0);
	if (n == 0)
		return false;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	c->inlen += (int) n;
	return true;
}

/* Send what c's answer still holds; false if c is to be closed */
static bool
write_conn(HttpConn *c)
{
	while (c->outpos < c->out.len)
	{
		ssize_t		n = send(c->sock, c->out.data + c->outpos, c->out.len - c->outpos,
							 MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		c->outpos += (int) n;
	}
	pfree(c->out.data);
	c->out.data = NULL;
	if (c->close_after)
		return false;
	/* the next request: a new time to send it whole */
	c->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											  sl_metrics_request_timeout_ms);
	return true;
}

static uint32
conn_events(HttpConn *c)
{
	return c->out.data != NULL ? WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE;
}

/* Positions in the wait set: latch, postmaster death, listeners, conns */
#define WAIT_POS_FIRST_LISTENER 2

static void
update_wait_set(void)
{
	static uint32 events[MAX_CONNS];

	if (!wait_set_stale)
	{
		for (int i = 0; i < nconns; i++)
			if (conn_events(conns[i]) != events[i])
			{
				events[i] = conn_events(conns[i]);
				ModifyWaitEvent(wait_set, WAIT_POS_FIRST_LISTENER + nlisten + i, events[i], NULL);
			}
		return;
	}
	if (wait_set)
		FreeWaitEventSet(wait_set);
	wait_set = CreateWaitEventSet(TopMemoryContext, 2 + nlisten + MAX_CONNS);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < nlisten; i++)
		AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, listen_sockets[i], NULL, NULL);
	for (int i = 0; i < nconns; i++)
	{
		events[i] = conn_events(conns[i]);
		AddWaitEventToSet(wait_set, events[i], conns[i]->sock, NULL, NULL);
	}
	wait_set_stale = false;
}

/* Close the connections past their deadline */
static void
close_late_connections(void)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = nconns - 1; i >= 0; i--)
	{
		HttpConn   *c = conns[i];

		if (c->deadline > now)
			continue;
		if (c->out.data != NULL)
			close_conn(i, "timed out taking the answer", &stats.closed_timeout);
		else if (c->inlen == 0 && c->served)
			close_conn(i, NULL, NULL);	/* an idle keep-alive connection */
		else
			close_conn(i, "timed out sending a request", &stats.closed_timeout);
	}
}

static long
next_timeout(void)
{
	TimestampTz nearest = 0;

	for (int i = 0; i < nconns; i++)
		if (nearest == 0 || conns[i]->deadline < nearest)
			nearest = conns[i]->deadline;
	if (nearest == 0)
		return -1;
	return Max(0, TimestampDifferenceMilliseconds(GetCurrentTimestamp(), nearest)) + 1;
}

/*
 * Serve the connection at index i after its socket was ready: read,
 * answer, write, or close it
 */
static void
serve_conn(int i, uint32 ready)
{
	HttpConn   *c = conns[i];

	if (ready & WL_SOCKET_READABLE && c->out.data == NULL && !read_conn(c))
	{
		close_conn(i, c->inlen > 0 ? "it closed in the middle of a request" : NULL, NULL);
		return;
	}
	/* answer, send, then the next request if one came pipelined */
	for (;;)
	{
		if (c->out.data != NULL)
		{
			if (!write_conn(c))
			{
				close_conn(i, NULL, NULL);
				return;
			}
			if (c->out.data != NULL)
				return;			/* the rest when the socket takes it */
		}
		if (c->inlen == 0)
			return;
		serve_request(c);
		if (c->out.data == NULL)
			return;				/* not whole yet */
	}
}

static void
recover_from_error(MemoryContext loop_context)
{
	HOLD_INTERRUPTS();
	SlWorkerRecover(loop_context);
	/* the connection in the middle of it may hold half an answer: drop all */
	while (nconns > 0)
		close_conn(nconns - 1, NULL, &stats.closed_error);
	MemoryContextReset(loop_context);
	RESUME_INTERRUPTS();
}

void
SlMetricsHttpMain(Datum arg)
{
	MemoryContext loop_context;
	sigjmp_buf	local_sigjmp_buf;

	SlWorkerStart("streamlog metrics");
	conn_context = AllocSetContextCreate(TopMemoryContext, "streamlog metrics connections",
										 ALLOCSET_DEFAULT_SIZES);
	loop_context = AllocSetContextCreate(TopMemoryContext, "streamlog metrics loop",
										 ALLOCSET_DEFAULT_SIZES);
	open_listen_sockets();
	ereport(LOG, (errmsg("streamlog metrics listening on %s", sl_metrics_listen)));

	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
		recover_from_error(loop_context);
	PG_exception_stack = &local_sigjmp_buf;

	for (;;)
	{
		WaitEvent	events[MAX_CONNS + MAX_LISTEN + 2];
		int			nevents;
		HttpConn   *ready[MAX_CONNS + MAX_LISTEN + 2];
		uint32		ready_events[MAX_CONNS + MAX_LISTEN + 2];
		int			nready = 0;

		update_wait_set();
		nevents = WaitEventSetWait(wait_set, next_timeout(), events, lengthof(events),
								   PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextSwitchTo(loop_context);
		/* the connections first, by identity: accepting reorders conns[] */
		for (int e = 0; e < nevents; e++)
		{
			int			i = events[e].pos - WAIT_POS_FIRST_LISTENER - nlisten;

			if (i >= 0 && i < nconns)
			{
				ready[nready] = conns[i];
				ready_events[nready++] = events[e].events;
			}
		}
		for (int r = 0; r < nready; r++)
			for (int i = 0; i < nconns; i++)
				if (conns[i] == ready[r])
				{
					serve_conn(i, ready_events[r]);
					break;
				}
		for (int e = 0; e < nevents; e++)
			if (events[e].pos >= WAIT_POS_FIRST_LISTENER &&
				events[e].pos < WAIT_POS_FIRST_LISTENER + nlisten)
				accept_connections(listen_sockets[events[e].pos - WAIT_POS_FIRST_LISTENER]);
		close_late_connections();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_context);
	}
}
