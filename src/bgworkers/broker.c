/*
 * Broker workers: each one listens on every Kafka listener (server/listeners.h;
 * the workers share the ports with SO_REUSEPORT, so the kernel spreads
 * connections over them) and runs one event loop over its sockets and its
 * latch.
 *
 * A loop iteration reads whatever the sockets have, cuts it into frames,
 * hands complete requests to the server layer, and writes responses back
 * in request order per connection (clients pipeline).  Produce requests
 * read in the same iteration are committed together: one transaction, one
 * WAL flush.  A Fetch that must wait for data (or a JoinGroup or SyncGroup
 * that must wait for its group) is parked with a deadline and looked at
 * again when what it waits on changes or the deadline passes: each worker
 * subscribes to the wakeups that storage and the group coordinator notify
 * (storage/wakeups.h), which set our latch; no transaction is open while
 * the worker waits on its sockets.  A frame that cannot be parsed closes only
 * its own connection, with a log line; a request that fails inside the
 * server layer gets an error response.
 *
 * As PostgreSQL's own processes, the loop has a recovery point: an ERROR
 * outside any request (a query cancel between requests, a failure while
 * reading or writing a connection) is reported, the transaction aborted,
 * the loop's memory reset, the connection being served when it happened
 * (if any) closed, and the worker goes on serving everyone else instead of
 * exiting, which would drop every connection.
 */
#include "postgres.h"

#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "access/xact.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "streamlog/bgworkers/broker.h"
#include "streamlog/bgworkers/broker_stats.h"
#include "streamlog/bgworkers/conn.h"
#include "streamlog/bgworkers/conn_handoff.h"
#include "streamlog/bgworkers/conn_limits.h"
#include "streamlog/bgworkers/listen_socket.h"
#include "streamlog/bgworkers/tls.h"
#include "streamlog/bgworkers/wal_prealloc.h"
#include "streamlog/guc.h"
#include "streamlog/metrics/connections.h"
#include "streamlog/metrics/counters.h"
#include "streamlog/server/auth.h"
#include "streamlog/server/fetch_sessions.h"
#include "streamlog/server/group_coordinator.h"
#include "streamlog/server/group_metadata.h"
#include "streamlog/server/listeners.h"
#include "streamlog/server/quotas.h"
#include "streamlog/server/request_metrics.h"
#include "streamlog/server/server.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/wakeups.h"
#include "streamlog/worker.h"

#define MAX_LISTEN_SOCKETS 32

/* Listening sockets, and the listener (index in SlListenerAt) of each */
static pgsocket listen_sockets[MAX_LISTEN_SOCKETS];
static int	listen_listener[MAX_LISTEN_SOCKETS];
static int	nlisten = 0;
static int	worker_index = 0;

/* Where other workers hand this one connections (conn_handoff.h) */
static pgsocket handoff_sock = PGINVALID_SOCKET;

static SlConn **conns = NULL;	/* open connections */
static int	nconns = 0;
static bool wait_set_stale = true;
static WaitEventSet *wait_set = NULL;

static void report_stats(void);

/* What is being served, to be closed if an ERROR escapes to the loop */
static SlConn *serving_conn = NULL;
static SlRequest **serving_produces = NULL;
static int	serving_nproduces = 0;

static bool
any_tls_listener(void)
{
	for (int i = 0; i < SlListenerCount(); i++)
		if (SlSecurityProtocolUsesTls(SlListenerAt(i)->protocol))
			return true;
	return false;
}

void
SlBrokerRegister(void)
{
	/* A bad listener setting stops the postmaster here, with its reason */
	SlListenersLoad();
	if (SlListenerCount() == 0)
		return;					/* the Kafka door is off */
	/* and so does a certificate that does not load */
	if (any_tls_listener())
		SlTlsLoad(true);
	for (int i = 0; i < sl_broker_workers; i++)
	{
		BackgroundWorker worker;

		SlWorkerDescribe(&worker, "SlBrokerMain", "streamlog broker", 1);
		snprintf(worker.bgw_name, BGW_MAXLEN, "streamlog broker %d", i);
		worker.bgw_main_arg = Int32GetDatum(i);
		RegisterBackgroundWorker(&worker);
	}
}

/*
 * Open the sockets of one listener: one per address its host resolves to
 * (every interface for an empty host or *).  Shared with the other workers
 * through SO_REUSEPORT.
 */
static void
open_listener_sockets(int index)
{
	const SlListener *l = SlListenerAt(index);
	char	   *list = pstrdup(l->bind_hosts);
	char	   *saveptr = NULL;
	char		port[16];
	int			opened = 0;
	char	   *host = strtok_r(list, ", ", &saveptr);

	snprintf(port, sizeof(port), "%d", l->port);
	do
	{
		struct addrinfo hints;
		struct addrinfo *res;
		int			rc;
		bool		wildcard = host == NULL || strcmp(host, "*") == 0;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		rc = getaddrinfo(wildcard ? NULL : host, port, &hints, &res);
		if (rc != 0)
			ereport(FATAL,
					(errmsg("could not resolve the address \"%s\" of Kafka listener %s: %s",
							host, l->name, gai_strerror(rc))));
		for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
		{
			pgsocket	s;

			if (nlisten == MAX_LISTEN_SOCKETS)
				ereport(FATAL,
						(errmsg("streamlog broker cannot listen on more than %d sockets",
								MAX_LISTEN_SOCKETS),
						 errhint("Name fewer addresses in streamlog.listeners or streamlog.listen_addresses.")));
			/* every broker worker listens on the port: the kernel shares out */
			s = SlListenSocketOpen(ai, true, 128);
			if (s == PGINVALID_SOCKET)
			{
				ereport(LOG,
						(errcode_for_socket_access(),
						 errmsg("streamlog broker could not listen on %s port %d for listener %s: %m",
								wildcard ? "*" : host, l->port, l->name)));
				continue;
			}
			listen_listener[nlisten] = index;
			listen_sockets[nlisten++] = s;
			opened++;
		}
		freeaddrinfo(res);
	} while (host != NULL && (host = strtok_r(NULL, ", ", &saveptr)) != NULL);
	if (opened == 0)
		ereport(FATAL,
				(errmsg("streamlog broker could not listen on any address of Kafka listener %s (%s port %d)",
						l->name, l->bind_hosts[0] ? l->bind_hosts : "*", l->port),
				 errhint("Check streamlog.listeners (or streamlog.listen_addresses and streamlog.port).")));
}

static void
open_listen_sockets(void)
{
	for (int i = 0; i < SlListenerCount(); i++)
		open_listener_sockets(i);
}

/*
 * File descriptors for client connections.  PostgreSQL budgets a backend's
 * descriptors at start (max_safe_fds, from max_files_per_process and the
 * soft RLIMIT_NOFILE, 1024 by default) and lends a third of them to
 * sockets like ours (AcquireExternalFD): about 330 connections per worker,
 * far below streamlog.max_connections.  So each worker raises its own soft
 * limit by what its connections need, on top of PostgreSQL's budget, which
 * it leaves whole for relation files.  Where the hard limit does not allow
 * the setting, the worker serves as many as it does and says so, at start
 * and after each reload, naming both knobs.
 */
#define FDS_SPARE 16			/* listeners, and descriptors opened meanwhile */
#define FDS_PG_RESERVED 10		/* fd.c's NUM_RESERVED_FDS, kept for system() */

static int	connection_fds = 0;	/* connections the limit has room for */

static void
reserve_connection_fds(void)
{
	struct rlimit rl;
	rlim_t		base;
	rlim_t		want;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
	{
		connection_fds = Min(sl_max_connections, max_safe_fds / 3);
		return;
	}
	/* what PostgreSQL counts on, as fd.c computes it, plus its reserve */
	base = (rlim_t) max_safe_fds + FDS_PG_RESERVED + FDS_SPARE;
	want = base + (rlim_t) sl_max_connections;
	if (rl.rlim_cur < want)
	{
		struct rlimit raised = rl;

		raised.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : Min(want, rl.rlim_max);
		if (raised.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &raised) == 0)
			rl = raised;
	}
	connection_fds = rl.rlim_cur > base ? (int) Min(rl.rlim_cur - base, (rlim_t) sl_max_connections) : 0;
	if (connection_fds < sl_max_connections)
		ereport(WARNING,
				(errmsg("streamlog broker %d can serve %d connections, not streamlog.max_connections = %d",
						worker_index, connection_fds, sl_max_connections),
				 errdetail("Its file descriptor limit is %llu (hard limit %llu), and PostgreSQL keeps %llu of them for itself.",
						   (unsigned long long) rl.rlim_cur,
						   (unsigned long long) rl.rlim_max,
						   (unsigned long long) base),
				 errhint("Raise the hard limit of open files of the server (ulimit -Hn, LimitNOFILE in a systemd unit), or lower streamlog.max_connections.")));
}

static void
add_conn(SlConn *conn)
{
	static int	capacity = 0;

	if (nconns == capacity)
	{
		capacity = Max(16, capacity * 2);
		conns = conns ? repalloc(conns, sizeof(SlConn *) * capacity) :
			MemoryContextAlloc(TopMemoryContext, sizeof(SlConn *) * capacity);
	}
	conns[nconns++] = conn;
	wait_set_stale = true;
}

/* Does addr come from this machine (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104)? */
static bool
is_loopback(const struct sockaddr_storage *addr)
{
	if (addr->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *) addr)->sin_addr.s_addr) >> 24) == 127;
	if (addr->ss_family == AF_INET6)
	{
		const struct in6_addr *a = &((const struct sockaddr_in6 *) addr)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
			(IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* conn goes: it no longer counts for its address and listener */
static void
release_counts(SlConn *conn)
{
	SlConnLimitsRelease(&conn->peer_addr);
	if (conn->counted_listener >= 0)
		SlConnLimitsReleaseListener(conn->counted_listener);
}

/* Must conn authenticate before it is served (a SASL listener)? */
static bool
needs_login(const SlConn *conn)
{
	return (conn->session.protocol == SL_PROTOCOL_SASL_PLAINTEXT ||
			conn->session.protocol == SL_PROTOCOL_SASL_SSL) &&
		!OidIsValid(conn->session.role);
}

/*
 * May conn, just accepted, wait for its login?  A worker keeps at most
 * streamlog.max_unauthenticated_connections connections that have not
 * authenticated yet, so that clients that never log in (or cannot) do not
 * take the places of those that do; the authenticated ones are not
 * counted.
 */
static bool
admit_unauthenticated(const SlConn *conn)
{
	int			waiting = 0;

	if (sl_max_unauthenticated_connections <= 0 || !needs_login(conn))
		return true;
	for (int i = 0; i < nconns; i++)
		waiting += needs_login(conns[i]) ? 1 : 0;
	return waiting < sl_max_unauthenticated_connections;
}

/*
 * Serve s, a connection accepted on listener listener_index (here, or by
 * another worker that handed it over), or refuse it with a log line
 */
static void
admit_connection(pgsocket s, int listener_index)
{
	const SlListener *l = SlListenerAt(listener_index);
	struct sockaddr_storage addr;
	socklen_t	addrlen = sizeof(addr);
	char		host[NI_MAXHOST] = "?";
	char		serv[NI_MAXSERV] = "?";
	int			one = 1;
	int			count;
	int			limit;
	int			listener_limit;
	const char *why;
	SlConn	   *conn;

	if (getpeername(s, (struct sockaddr *) &addr, &addrlen) < 0)
	{
		closesocket(s);			/* gone already */
		return;
	}
	getnameinfo((struct sockaddr *) &addr, addrlen, host, sizeof(host),
				serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
	if (nconns >= connection_fds)
	{
		ereport(LOG,
				(errmsg("streamlog broker refused a connection from %s:%s: too many connections",
						host, serv)));
		closesocket(s);
		SlMetricsCountListener(listener_index, l->name, SL_LISTENER_CONNECTION_REFUSED);
		return;
	}
	if (!SlPeerMayConnect(l->protocol, is_loopback(&addr), &why))
	{
		ereport(LOG,
				(errmsg("streamlog broker refused a connection from %s:%s on listener %s: %s",
						host, serv, l->name, why)));
		closesocket(s);
		SlMetricsCountListener(listener_index, l->name, SL_LISTENER_CONNECTION_REFUSED);
		return;
	}
	if (!SlConnLimitsAdmit(&addr, &count, &limit))
	{
		if (limit < 0)
			ereport(LOG,
					(errmsg("streamlog broker refused a connection from %s:%s: too many client addresses to count",
							host, serv)));
		else
			ereport(LOG,
					(errmsg("streamlog broker refused a connection from %s:%s: %d connections from this address (streamlog.max_connections_per_ip)",
							host, serv, count),
					 errhint("Raise streamlog.max_connections_per_ip, or give this address its own limit in streamlog.max_connections_per_ip_overrides.")));
		closesocket(s);
		SlMetricsCountListener(listener_index, l->name, SL_LISTENER_CONNECTION_REFUSED);
		return;
	}
	pg_set_noblock(s);
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	listener_limit = SlListenerMaxConnections(l->name);
	if (listener_limit >= 0 &&
		!SlConnLimitsAdmitListener(listener_index, listener_limit, &count))
	{
		ereport(LOG,
				(errmsg("streamlog broker refused a connection from %s:%s: %d connections on listener %s (streamlog.listener_max_connections)",
						host, serv, count, l->name)));
		SlConnLimitsRelease(&addr);
		closesocket(s);
		SlMetricsCountListener(listener_index, l->name, SL_LISTENER_CONNECTION_REFUSED);
		return;
	}
	conn = SlConnCreate(s, psprintf("%s:%s", host, serv), is_loopback(&addr), l);
	conn->peer_addr = addr;
	conn->counted_listener = listener_limit >= 0 ? listener_index : -1;
	if (!admit_unauthenticated(conn))
	{
		ereport(LOG,
				(errmsg("streamlog broker refused a connection from %s:%s: %d connections are not authenticated yet (streamlog.max_unauthenticated_connections)",
						host, serv, sl_max_unauthenticated_connections)));
		release_counts(conn);
		SlConnClose(conn);
		SlMetricsCountListener(listener_index, l->name, SL_LISTENER_CONNECTION_REFUSED);
		return;
	}
	conn->session.listener_index = listener_index;
	conn->session.activity_slot = SlConnActivityOpen(listener_index, l->name, conn->peer);
	SlMetricsCountListener(listener_index, l->name, SL_LISTENER_CONNECTION_OPENED);
	add_conn(conn);
}

/*
 * Hand s to the worker serving the fewest connections if that is fewer
 * than this one serves: the kernel's SO_REUSEPORT hash may put every
 * connection of a few busy clients on one worker while the others idle.
 * The count of the receiver goes up at once, so that a burst of
 * connections is shared out rather than all sent to the same worker.
 */
static bool
hand_off(pgsocket s, int listener_index)
{
	uint32		fewest = 0;
	int			target;

	if (handoff_sock == PGINVALID_SOCKET)
		return false;
	target = SlBrokerStatsFewestConnections(worker_index, &fewest);
	if (target < 0 || (uint32) nconns <= fewest)
		return false;
	/*
	 * Counted before it goes: the receiver, once it has it, reports its
	 * count as it then is, which an increment after the send could
	 * overstate until its next wake-up
	 */
	SlBrokerStatsAddConnection(target, 1);
	if (!SlConnHandoffSend(target, s, listener_index))
	{
		SlBrokerStatsAddConnection(target, -1);
		return false;
	}
	closesocket(s);				/* the receiver has its own descriptor */
	return true;
}

static void
accept_connections(int listen_pos)
{
	pgsocket	listener = listen_sockets[listen_pos];

	for (;;)
	{
		pgsocket	s = accept(listener, NULL, NULL);

		if (s == PGINVALID_SOCKET)
			return;				/* EAGAIN, or an error: try again later */
		if (!hand_off(s, listen_listener[listen_pos]))
			admit_connection(s, listen_listener[listen_pos]);
	}
}

/* Serve the connections other workers handed to this one */
static void
receive_handed_connections(void)
{
	pgsocket	s;
	int			listener_index;

	while ((s = SlConnHandoffReceive(&listener_index)) != PGINVALID_SOCKET)
	{
		if (listener_index < 0 || listener_index >= SlListenerCount())
		{
			closesocket(s);		/* from a server of other listeners? */
			continue;
		}
		admit_connection(s, listener_index);
	}
	/* counted as it came by the giver: now as it is */
	report_stats();
}

static void
close_conn(int i)
{
	SlConn	   *conn = conns[i];

	release_counts(conn);
	SlConnClose(conn);
	conns[i] = conns[--nconns];
	wait_set_stale = true;
}

/*
 * Positions in the wait set: latch, postmaster death, listeners, the
 * hand-off socket if any, conns
 */
#define WAIT_POS_LATCH 0
#define WAIT_POS_PM 1
#define WAIT_POS_FIRST_LISTENER 2

static void
rebuild_wait_set(void)
{
	if (wait_set)
		FreeWaitEventSet(wait_set);
	wait_set = NULL;
	wait_set = CreateWaitEventSet(TopMemoryContext, 3 + nlisten + nconns);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < nlisten; i++)
		AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, listen_sockets[i], NULL, NULL);
	if (handoff_sock != PGINVALID_SOCKET)
		AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, handoff_sock, NULL, NULL);
	for (int i = 0; i < nconns; i++)
	{
		conns[i]->wait_pos = AddWaitEventToSet(wait_set, SlConnWaitEvents(conns[i]),
											   conns[i]->sock, NULL, conns[i]);
		conns[i]->wait_events = SlConnWaitEvents(conns[i]);
	}
	wait_set_stale = false;
}

/* Update what we wait for on each connection */
static void
update_wait_events(void)
{
	if (wait_set_stale)
	{
		rebuild_wait_set();
		return;
	}
	for (int i = 0; i < nconns; i++)
	{
		uint32		events = SlConnWaitEvents(conns[i]);

		if (events != conns[i]->wait_events)
		{
			ModifyWaitEvent(wait_set, conns[i]->wait_pos, events, NULL);
			conns[i]->wait_events = events;
		}
	}
}

/*
 * Memory held for answers that clients do not read.  Each connection is
 * muted past a backlog of its own (conn.c); the worker as a whole past
 * streamlog.max_unsent_bytes_per_worker: then every connection holding
 * unsent answers is muted until it drains (it is not read, its requests
 * are not handled, its parked ones not looked at again), while one that
 * holds none is still served, its answer trimmed to the room left (a
 * Fetch returns its first batch whatever the room, KIP-74).  So a few
 * clients asking for huge fetches and never reading hold about the bound
 * plus a batch each, and the worker itself never stops serving.
 */
static bool
conn_muted(SlConn *conn, size_t worker_unsent)
{
	/* over a client quota (server/quotas.h): muted for the throttle time */
	if (conn->throttled_until != 0 && GetCurrentTimestamp() < conn->throttled_until)
		return true;
	return SlConnMuted(conn) ||
		(worker_unsent >= (size_t) sl_max_unsent_bytes_per_worker &&
		 SlConnUnsentBytes(conn) > 0);
}

/*
 * Room left for answers under the worker's bound; one byte at least, for
 * which a Fetch still returns its first batch (KIP-74), as it must for the
 * client to make progress
 */
static int64
response_room(size_t worker_unsent)
{
	return worker_unsent >= (size_t) sl_max_unsent_bytes_per_worker ? 1 :
		(int64) sl_max_unsent_bytes_per_worker - (int64) worker_unsent;
}

/* Mark the muted connections; returns the worker's unsent bytes */
static size_t
mark_muted(void)
{
	size_t		unsent = 0;

	for (int i = 0; i < nconns; i++)
		unsent += SlConnUnsentBytes(conns[i]);
	for (int i = 0; i < nconns; i++)
		conns[i]->muted = conn_muted(conns[i], unsent);
	return unsent;
}

/*
 * An answer over a client quota says for how long (throttle_time_ms); its
 * connection is muted that long from now, while the answer goes out
 * (KIP-219)
 */
static void
note_throttle(SlConn *conn, SlRequest *req)
{
	if (req->state == SL_REQUEST_DONE && req->throttle_ms > 0)
	{
		SlRequestMetricsNoteThrottle(req, req->throttle_ms);
		conn->throttled_until = Max(conn->throttled_until,
									TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																req->throttle_ms));
		req->throttle_ms = 0;	/* noted; the answer keeps it */
	}
}

/*
 * Hand every new request to the server layer; Produces go together.
 * A parked request is looked at again when what it waits on changed (a
 * partition's high watermark, a group's state: the handler said which with
 * SlRequestWaitOn before it looked) or its deadline passed; the others
 * stay as they are, however busy the rest of the server is.  A muted
 * connection's requests wait (see conn_muted).
 */
static void
process_requests(void)
{
	SlRequest **produces = NULL;
	int			nproduces = 0;
	int			max_produces = 0;
	TimestampTz now = GetCurrentTimestamp();
	SlWaitSet	changed;
	SlWaitSet	interest;
	size_t		unsent = mark_muted();
	bool		one_produce_each = SlQuotasInForce();

	/* Taken before looking: a change during the looks comes back as new */
	SlWaitTakeChanges(&changed);
	SlWaitSetClear(&interest);

	for (int i = 0; i < nconns; i++)
	{
		size_t		conn_before = SlConnUnsentBytes(conns[i]);

		serving_conn = conns[i];
		for (SlRequest *req = conns[i]->head; req != NULL; req = req->next)
		{
			/* what this connection's answers so far added */
			size_t		worker_unsent = unsent - conn_before + SlConnUnsentBytes(conns[i]);

			conns[i]->muted = conn_muted(conns[i], worker_unsent);
			/* Answers pile up unsent: this client waits until it reads */
			if (conns[i]->muted &&
				(req->state == SL_REQUEST_NEW || req->state == SL_REQUEST_PARKED))
			{
				if (req->state == SL_REQUEST_PARKED)
					SlWaitSetUnion(&interest, &req->waiting_on);
				continue;
			}
			req->response_room = response_room(worker_unsent);
			if (req->state == SL_REQUEST_NEW)
			{
				if (SlServerIsBatchable(req))
				{
					if (nproduces == max_produces)
					{
						max_produces = Max(16, max_produces * 2);
						produces = produces ? repalloc(produces, sizeof(SlRequest *) * max_produces) :
							palloc(sizeof(SlRequest *) * max_produces);
					}
					produces[nproduces++] = req;
					/* the rest once its quota is known (SlQuotasInForce) */
					if (one_produce_each)
						break;
				}
				else
				{
					pgstat_report_activity(STATE_RUNNING, SlRequestMetricsActivity(req));
					SlServerHandle(req);
				}
			}
			else if (req->state == SL_REQUEST_PARKED &&
					 (now >= req->deadline || SlWaitSetOverlaps(&req->waiting_on, &changed)))
			{
				SlBrokerStatsCountParkedAttempt();
				pgstat_report_activity(STATE_RUNNING, SlRequestMetricsActivity(req));
				SlServerRetryParked(req, now >= req->deadline);
			}
			note_throttle(conns[i], req);
			if (req->state == SL_REQUEST_PARKED)
				SlWaitSetUnion(&interest, &req->waiting_on);
		}
		unsent = unsent - conn_before + SlConnUnsentBytes(conns[i]);
	}
	serving_conn = NULL;
	if (nproduces > 0)
	{
		serving_produces = produces;
		serving_nproduces = nproduces;
		pgstat_report_activity(STATE_RUNNING, SlRequestMetricsActivity(produces[0]));
		SlServerHandleBatch(produces, nproduces);
		serving_produces = NULL;
		serving_nproduces = 0;
		/* the next WAL segments, made by another worker meanwhile */
		SlWalPreallocAsk(worker_index);
		/* acks=all produces wait for their replicas' high watermarks */
		for (int i = 0; i < nproduces; i++)
			if (produces[i]->state == SL_REQUEST_PARKED)
				SlWaitSetUnion(&interest, &produces[i]->waiting_on);
	}
	if (produces)
		pfree(produces);

	/* the produces' throttle times: mute their connections */
	for (int i = 0; i < nconns; i++)
		for (SlRequest *req = conns[i]->head; req != NULL; req = req->next)
			note_throttle(conns[i], req);

	/* From now on, be woken only for what the parked requests wait on */
	SlWaitSetInterest(&interest);
}

/*
 * When conn, if it stays idle, is to be closed for
 * streamlog.connections_max_idle; 0 if it is not idle or the limit is off
 */
static TimestampTz
idle_expiry(SlConn *conn)
{
	if (sl_connections_max_idle <= 0 || !SlConnIsIdle(conn))
		return 0;
	return TimestampTzPlusMilliseconds(conn->last_active, sl_connections_max_idle);
}

/*
 * Milliseconds until the nearest deadline (a parked request's, the end of
 * a connection's throttle time, an idle connection's close), or -1; 0 when
 * requests are waiting to be handled (cut from bytes read earlier, or held
 * while their connection was muted and now unmuted) or decrypted bytes
 * wait inside OpenSSL.
 */
static long
next_timeout(void)
{
	TimestampTz nearest = 0;
	bool		found = false;

	for (int i = 0; i < nconns; i++)
	{
		/* Decrypted bytes waiting: the socket will not wake us for them */
		if (SlConnHasBufferedInput(conns[i]))
			return 0;
		/* a throttled connection is looked at again when its time is up */
		if (conns[i]->throttled_until > GetCurrentTimestamp() &&
			(!found || conns[i]->throttled_until < nearest))
		{
			nearest = conns[i]->throttled_until;
			found = true;
		}
		for (SlRequest *req = conns[i]->head; req != NULL; req = req->next)
		{
			/* a muted connection waits for its socket to drain */
			if (conns[i]->muted)
				break;
			if (req->state == SL_REQUEST_NEW)
				return 0;
			if (req->state == SL_REQUEST_PARKED && (!found || req->deadline < nearest))
			{
				nearest = req->deadline;
				found = true;
			}
		}
	}
	/* An idle connection is closed when it has been idle long enough */
	for (int i = 0; i < nconns; i++)
	{
		TimestampTz expires = idle_expiry(conns[i]);

		if (expires != 0 && (!found || expires < nearest))
		{
			nearest = expires;
			found = true;
		}
	}
	if (!found)
		return -1;
	return Max(0, TimestampDifferenceMilliseconds(GetCurrentTimestamp(), nearest));
}

/*
 * Close the connections idle for streamlog.connections_max_idle (Kafka's
 * connections.max.idle.ms): a client that went away without closing, or
 * one that hoards connections, does not keep a slot of max_connections
 * forever.  A connection waiting for an answer is never idle, however long
 * its request is parked.  Kafka clients reconnect when they need to.
 */
static void
close_idle_connections(void)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = nconns - 1; i >= 0; i--)
	{
		TimestampTz expires = idle_expiry(conns[i]);

		if (expires != 0 && expires <= now)
		{
			ereport(LOG,
					(errmsg("streamlog broker closed the idle connection from %s: nothing sent or received for %d ms (streamlog.connections_max_idle)",
							conns[i]->peer, sl_connections_max_idle)));
			close_conn(i);
		}
	}
}

/*
 * After a reload: the listeners may advertise other addresses, which the
 * open connections answer from now on too
 */
static void
reload_listeners(void)
{
	if (!SlListenersReload())
		return;
	for (int i = 0; i < nconns; i++)
	{
		conns[i]->session.advertised_host = conns[i]->listener->advertised_host;
		conns[i]->session.advertised_port = conns[i]->listener->advertised_port;
	}
}

/* What streamlog.broker_stats shows of this worker */
static void
report_stats(void)
{
	uint64		input_bytes = 0;
	int			parked = 0;
	uint64		parked_bytes = 0;
	uint64		unsent = 0;
	int			muted = 0;

	for (int i = 0; i < nconns; i++)
	{
		input_bytes += SlConnInputBufferBytes(conns[i]);
		unsent += SlConnUnsentBytes(conns[i]);
		muted += conns[i]->muted ? 1 : 0;
		for (SlRequest *req = conns[i]->head; req != NULL; req = req->next)
			if (req->state == SL_REQUEST_PARKED)
			{
				parked++;
				parked_bytes += MemoryContextMemAllocated(req->context, true);
			}
	}
	SlBrokerStatsReport(nconns, input_bytes, parked, parked_bytes, unsent, muted);
}

/*
 * Requests, fetched batches and responses are megabytes each, allocated and
 * freed many times a second.  glibc serves such sizes with mmap() and gives
 * them back with munmap(), so every request paid for faulting in and zeroing
 * fresh pages (a fifth of a busy worker's time).  Keep them in the heap
 * instead: memory freed by one request is reused by the next, and the
 * heap is trimmed only when more than this much of it is free.
 */
static void
keep_large_allocations(void)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);	/* glibc's maximum */
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
}

/* Does conn hold one of the produce requests being handled? */
static bool
serving_produce_of(SlConn *conn)
{
	for (SlRequest *req = conn->head; req != NULL; req = req->next)
		for (int i = 0; i < serving_nproduces; i++)
			if (serving_produces[i] == req)
				return true;
	return false;
}

/*
 * Back at the recovery point after an ERROR: clean up as postgres.c does
 * after a failed query, and close what was being served when it happened
 * (its requests are half handled and cannot be answered).
 */
static void
recover_from_error(MemoryContext loop_context)
{
	/* The context callbacks' data may be gone; the report has them already */
	error_context_stack = NULL;
	HOLD_INTERRUPTS();
	disable_all_timeouts(false);
	QueryCancelPending = false;
	EmitErrorReport();
	AbortCurrentTransaction();
	LWLockReleaseAll();
	ConditionVariableCancelSleep();
	pgstat_report_wait_end();
	MemoryContextSwitchTo(TopMemoryContext);
	FlushErrorState();

	for (int i = nconns - 1; i >= 0; i--)
	{
		if (conns[i] != serving_conn && !serving_produce_of(conns[i]))
			continue;
		ereport(LOG,
				(errmsg("streamlog broker: closing connection from %s after an error while serving it",
						conns[i]->peer)));
		close_conn(i);
	}
	serving_conn = NULL;
	serving_produces = NULL;
	serving_nproduces = 0;
	wait_set_stale = true;
	MemoryContextReset(loop_context);
	RESUME_INTERRUPTS();
}

void
SlBrokerMain(Datum arg)
{
	MemoryContext loop_context;
	sigjmp_buf	local_sigjmp_buf;

	worker_index = DatumGetInt32(arg);
	keep_large_allocations();
	SlWorkerStart("streamlog broker");

	sl_shared->broker_procno[worker_index] = SL_MY_PROCNO;
	SlBrokerStatsStart(worker_index);
	SlMetricsSetProcessDoor(SL_DOOR_KAFKA);
	SlRoleSessionsAttach(worker_index);
	SlConnLimitsStart(worker_index);
	SlFetchSessionsStart(worker_index);
	SlWaitSubscribe(worker_index);
	open_listen_sockets();
	handoff_sock = SlConnHandoffOpen(worker_index);
	/* The certificate as the files are now, which a reload may have changed */
	if (any_tls_listener())
		SlTlsLoad(false);
	reserve_connection_fds();
	ereport(LOG,
			(errmsg("streamlog broker %d listening on %s",
					worker_index, SlListenersDescribe(false))));

	loop_context = AllocSetContextCreate(TopMemoryContext, "streamlog broker loop",
										 ALLOCSET_DEFAULT_SIZES);

	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
		recover_from_error(loop_context);
	PG_exception_stack = &local_sigjmp_buf;

	for (;;)
	{
		WaitEvent	events[64];
		int			nevents;
		long		timeout;

		update_wait_events();
		pgstat_report_activity(STATE_IDLE, NULL);
		timeout = next_timeout();
		/* Worker 0 runs the consumer groups' timers (session expiry) */
		if (worker_index == 0)
		{
			timeout = SlGroupCoordinatorTimers(timeout);
			SlGroupMetadataStoreChanged();
			timeout = SlGroupUnloadResigned(timeout);
		}
		nevents = WaitEventSetWait(wait_set, timeout, events, lengthof(events),
								   PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		/* WAL segments another worker asked for (wal_prealloc.h) */
		SlWalPreallocWork(worker_index);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			reserve_connection_fds();
			reload_listeners();
			if (any_tls_listener())
				SlTlsLoad(false);
		}

		MemoryContextSwitchTo(loop_context);
		for (int e = 0; e < nevents; e++)
		{
			if (events[e].pos >= WAIT_POS_FIRST_LISTENER &&
				events[e].pos < WAIT_POS_FIRST_LISTENER + nlisten)
				accept_connections(events[e].pos - WAIT_POS_FIRST_LISTENER);
			else if (handoff_sock != PGINVALID_SOCKET &&
					 events[e].pos == WAIT_POS_FIRST_LISTENER + nlisten)
				receive_handed_connections();
			else if (events[e].user_data != NULL &&
					 (events[e].events & WL_SOCKET_READABLE))
			{
				serving_conn = (SlConn *) events[e].user_data;
				SlConnRead(serving_conn);
				serving_conn = NULL;
			}
		}
		/* What OpenSSL read ahead of a full queue, now that it has room */
		for (int i = 0; i < nconns; i++)
			if (SlConnHasBufferedInput(conns[i]))
			{
				serving_conn = conns[i];
				SlConnRead(serving_conn);
				serving_conn = NULL;
			}

		pgstat_report_activity(STATE_RUNNING, "serving Kafka requests");
		process_requests();

		for (int i = nconns - 1; i >= 0; i--)
		{
			serving_conn = conns[i];
			SlConnFlush(conns[i]);
			SlConnTakeFrames(conns[i]);
			serving_conn = NULL;
			if (conns[i]->closing && !SlConnHasOutput(conns[i]))
				close_conn(i);
		}
		close_idle_connections();
		/* for the wait: what to read, which deadlines count */
		mark_muted();
		report_stats();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_context);
	}
}
