/*
 * Client connections of the broker workers, see conn.h.
 *
 * Every byte from the network is hostile: a frame size that is negative,
 * zero or above streamlog.max_request_size closes the connection (with a
 * log line) before anything is allocated for it.  A client that stops
 * reading is not read from either once its output or request queue is
 * backed up, so it cannot make the worker hold unbounded memory; other
 * connections are not affected.
 *
 * The input buffer holds whole frames and the start of the next one.  A
 * frame not wholly read is read straight into its request (only what was
 * already buffered, at most one read's worth, is copied), and the buffer
 * is given back whenever the socket has nothing more to read, so an idle
 * connection holds about a kilobyte whatever it read before.  Rejected:
 * growing the buffer to the frame and copying the frame out of it (one
 * 100 MB produce kept 100 MB for the life of the connection, and was
 * copied once more), and handing the grown buffer itself to the request
 * (the frames pipelined behind it would then have to be copied out).
 */
#include "postgres.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "postmaster/postmaster.h"
#include "storage/latch.h"
#include "utils/memutils.h"

#include "streamlog/bgworkers/conn.h"
#include "streamlog/guc.h"
#include "streamlog/metrics/connections.h"
#include "streamlog/metrics/counters.h"
#include "streamlog/server/auth.h"
#include "streamlog/server/request_metrics.h"
#include "streamlog/server/server.h"

/*
 * Stop reading from a client with this many requests queued or this much
 * output unsent, and stop answering it (as Kafka mutes a connection) while
 * its answers waiting to go out pass MAX_BACKLOG: a client that does not
 * read cannot make the worker hold more than about one response for it.
 */
#define MAX_QUEUED_REQUESTS 256
#define MAX_PENDING_OUTPUT (64 * 1024 * 1024)
#define MAX_BACKLOG (8 * 1024 * 1024)

#define READ_CHUNK 65536

/* An idle connection's input buffer is given back above this size */
#define INPUT_BUFFER_IDLE_SIZE 1024

/* Pieces of answers handed to one sendmsg() at most */
#define FLUSH_IOVECS 64

/*
 * Bytes handed to one SSL_write at most: OpenSSL cuts them into records of
 * 16 kB, each written as it is sealed, so a large write costs few calls
 * and the copy into it is small beside the encryption
 */
#define TLS_WRITE_MAX (256 * 1024)

/* A piece at least a TLS record long is written from where it is */
#define TLS_DIRECT_MIN (16 * 1024)

SlConn *
SlConnCreate(pgsocket sock, char *peer, bool peer_is_loopback, const SlListener *listener)
{
	MemoryContext context = AllocSetContextCreate(TopMemoryContext,
												  "streamlog connection",
												  ALLOCSET_DEFAULT_SIZES);
	SlConn	   *conn = MemoryContextAllocZero(context, sizeof(SlConn));
	MemoryContext oldcxt = MemoryContextSwitchTo(context);

	conn->sock = sock;
	conn->peer = pstrdup(peer);
	conn->context = context;
	conn->last_active = GetCurrentTimestamp();
	initStringInfo(&conn->in);
	conn->listener = listener;
	conn->session.listener_name = listener->name;
	conn->session.protocol = listener->protocol;
	conn->session.advertised_host = listener->advertised_host;
	conn->session.advertised_port = listener->advertised_port;
	conn->session.peer = conn->peer;
	conn->session.peer_is_loopback = peer_is_loopback;
	conn->session.role = InvalidOid;
	conn->session.listener_index = -1;
	conn->session.activity_slot = -1;
	if (SlSecurityProtocolUsesTls(listener->protocol))
	{
		/* No TLS context: closed at once, SlTlsCreate said why */
		conn->tls = SlTlsCreate(sock);
		conn->handshaking = true;
		if (conn->tls == NULL)
		{
			conn->closing = true;
			conn->peer_gone = true;
		}
	}
	MemoryContextSwitchTo(oldcxt);
	return conn;
}

static void
conn_fail(SlConn *conn, const char *why)
{
	ereport(LOG,
			(errmsg("streamlog broker closing connection from %s: %s", conn->peer, why)));
	conn->closing = true;
	/* Nothing more will be answered */
	resetStringInfo(&conn->in);
	if (conn->reading)
	{
		MemoryContextDelete(conn->reading->context);
		conn->reading = NULL;
	}
}

/*
 * Go on with the TLS handshake; true once it is done.  A client that
 * stalls in the middle of it stalls only its own connection (and is
 * closed when streamlog.connections_max_idle has passed).
 */
static bool
tls_handshake(SlConn *conn)
{
	conn->tls_want_write = false;
	switch (SlTlsHandshake(conn->tls))
	{
		case SL_TLS_OK:
			conn->handshaking = false;
			/* the client's first requests may have come with its Finished */
			conn->tls_input_held = true;
			conn->session.tls_subject = SlTlsPeerSubject(conn->tls);
			if (Log_connections)
				ereport(LOG,
						(errmsg("streamlog broker: TLS connection from %s on listener %s (%s, %s)%s%s%s",
								conn->peer, conn->listener->name,
								SlTlsProtocolName(conn->tls), SlTlsCipher(conn->tls),
								conn->session.tls_subject ? ", client certificate \"" : "",
								conn->session.tls_subject ? conn->session.tls_subject : "",
								conn->session.tls_subject ? "\"" : "")));
			return true;
		case SL_TLS_WANT_READ:
			return false;
		case SL_TLS_WANT_WRITE:
			conn->tls_want_write = true;
			return false;
		case SL_TLS_CLOSED:
			conn->closing = true;
			conn->peer_gone = true;
			return false;
		case SL_TLS_ERROR:
			conn_fail(conn, psprintf("TLS handshake failed: %s", SlTlsError(conn->tls)));
			conn->peer_gone = true;
			return false;
	}
	return false;
}

/*
 * recv() through TLS when the connection has it.  A TLS failure closes the
 * connection here, with its reason, and reads as EAGAIN.
 */
static ssize_t
conn_recv(SlConn *conn, void *buf, size_t len)
{
	size_t		n;

	if (conn->tls == NULL)
		return recv(conn->sock, buf, len, 0);
	switch (SlTlsRead(conn->tls, buf, len, &n))
	{
		case SL_TLS_OK:
			return (ssize_t) n;
		case SL_TLS_CLOSED:
			return 0;
		case SL_TLS_WANT_WRITE:
			conn->tls_want_write = true;
			break;
		case SL_TLS_WANT_READ:
			break;
		case SL_TLS_ERROR:
			conn_fail(conn, psprintf("TLS error while reading: %s", SlTlsError(conn->tls)));
			conn->peer_gone = true;
			break;
	}
	errno = EAGAIN;
	return -1;
}

/* A request for a frame of size bytes, its frame not filled in yet */
static SlRequest *
request_create(SlConn *conn, int32 size)
{
	MemoryContext context = AllocSetContextCreate(conn->context, "streamlog request",
												  ALLOCSET_DEFAULT_SIZES);
	SlRequest  *req = MemoryContextAllocZero(context, sizeof(SlRequest));

	req->context = context;
	req->frame = MemoryContextAlloc(context, size);
	req->frame_len = size;
	req->state = SL_REQUEST_NEW;
	req->send_response = true;
	req->response_room = -1;
	req->peer = conn->peer;
	req->session = &conn->session;
	return req;
}

/*
 * Queue req, whose frame is complete; false, with the connection failed,
 * if its header cannot be parsed
 */
static bool
request_queue(SlConn *conn, SlRequest *req)
{
	MemoryContext oldcxt;

	if (!SlServerParseHeader(req))
	{
		MemoryContextDelete(req->context);
		conn_fail(conn, "request header cannot be parsed");
		return false;
	}
	oldcxt = MemoryContextSwitchTo(req->context);
	initStringInfo(&req->response);
	MemoryContextSwitchTo(oldcxt);
	SlRequestMetricsReceived(req, GetCurrentTimestamp());
	if (conn->tail)
		conn->tail->next = req;
	else
	{
		conn->head = req;
		/* stat_connections shows the oldest request not yet answered */
		SlConnActivityRequestStart(conn->session.activity_slot, req->api_key,
								   req->api_version, req->received_at);
	}
	conn->tail = req;
	conn->nrequests++;
	return true;
}

void
SlConnTakeFrames(SlConn *conn)
{
	size_t		pos = 0;

	while (!conn->closing && conn->reading == NULL &&
		   conn->nrequests < MAX_QUEUED_REQUESTS && conn->in.len - pos >= 4)
	{
		const uint8 *p = (const uint8 *) conn->in.data + pos;
		int32		size = (int32) (((uint32) p[0] << 24) | ((uint32) p[1] << 16) |
									((uint32) p[2] << 8) | p[3]);
		size_t		have = conn->in.len - pos - 4;
		SlRequest  *req;

		if (size <= 0 || size > SlSessionMaxFrameSize(&conn->session))
		{
			if (size > 0 && size <= sl_max_request_size)
				conn_fail(conn, psprintf("frame size %d is more than a client may send before it authenticates (%d)",
										 size, SlSessionMaxFrameSize(&conn->session)));
			else
				conn_fail(conn, psprintf("frame size %d is out of range (1 to streamlog.max_request_size = %d)",
										 size, sl_max_request_size));
			return;
		}
		req = request_create(conn, size);
		if (have < (size_t) size)
		{
			/*
			 * The rest of the frame goes straight into the request: the input
			 * buffer does not grow to the size of the largest frame, and the
			 * frame is not copied out of it once complete.
			 */
			memcpy((uint8 *) req->frame, p + 4, have);
			conn->reading = req;
			conn->reading_have = have;
			pos = conn->in.len;
			break;
		}
		memcpy((uint8 *) req->frame, p + 4, size);
		pos += (size_t) size + 4;
		if (!request_queue(conn, req))
			return;
	}

	/* Drop the consumed bytes */
	if (pos > 0)
	{
		memmove(conn->in.data, conn->in.data + pos, conn->in.len - pos);
		conn->in.len -= pos;
		conn->in.data[conn->in.len] = '\0';
	}
}

/* Bytes of a request's answer on the wire: size prefix and response */
static size_t
answer_size(const SlRequest *req)
{
	return req->send_response ?
		4 + (size_t) req->response.len + req->response_ref_bytes : 0;
}

/* Bytes answered but not yet written */
static size_t
unsent_bytes(SlConn *conn, size_t enough)
{
	size_t		backlog = 0;

	for (SlRequest *req = conn->head; req != NULL && backlog <= enough; req = req->next)
		if (req->state == SL_REQUEST_DONE)
			backlog += answer_size(req) - (req == conn->head ? conn->head_sent : 0);
	return backlog;
}

bool
SlConnMuted(SlConn *conn)
{
	return unsent_bytes(conn, MAX_BACKLOG) > MAX_BACKLOG;
}

size_t
SlConnUnsentBytes(SlConn *conn)
{
	return unsent_bytes(conn, SIZE_MAX);
}

/*
 * Nothing more to read for now: give back a grown input buffer, so that an
 * idle connection holds a small one, whatever it read before.
 */
static void
shrink_input(SlConn *conn)
{
	if (conn->in.len == 0 && conn->in.maxlen > INPUT_BUFFER_IDLE_SIZE)
	{
		pfree(conn->in.data);
		initStringInfo(&conn->in);
	}
}

void
SlConnRead(SlConn *conn)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(conn->context);

	/* Called when the socket is readable: the client did something */
	conn->last_active = GetCurrentTimestamp();
	if (conn->handshaking && !conn->closing && !tls_handshake(conn))
	{
		MemoryContextSwitchTo(oldcxt);
		return;
	}

	/* Until OpenSSL says it wants the socket, it may hold bytes read ahead */
	conn->tls_input_held = true;
	while (!conn->closing && conn->nrequests < MAX_QUEUED_REQUESTS)
	{
		ssize_t		n;

		if (conn->reading)
		{
			SlRequest  *req = conn->reading;

			n = conn_recv(conn, (uint8 *) req->frame + conn->reading_have,
						  req->frame_len - conn->reading_have);
			if (n > 0)
			{
				conn->reading_have += n;
				if (conn->reading_have == req->frame_len)
				{
					conn->reading = NULL;
					if (request_queue(conn, req))
						SlConnTakeFrames(conn);
				}
				continue;
			}
		}
		else
		{
			enlargeStringInfo(&conn->in, READ_CHUNK);
			n = conn_recv(conn, conn->in.data + conn->in.len,
						  conn->in.maxlen - conn->in.len - 1);
			if (n > 0)
			{
				conn->in.len += n;
				conn->in.data[conn->in.len] = '\0';
				SlConnTakeFrames(conn);
				continue;
			}
		}
		if (n == 0)
		{
			/* The client closed; answer nothing more */
			conn->closing = true;
			conn->peer_gone = true;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
		{
			conn_fail(conn, psprintf("could not read: %m"));
			conn->peer_gone = true;
		}
		conn->tls_input_held = false;
		break;
	}
	shrink_input(conn);
	MemoryContextSwitchTo(oldcxt);
}

/* Free a request that has been answered (or never will be) */
static void
request_free(SlConn *conn, SlRequest *req)
{
	conn->head = req->next;
	if (conn->head == NULL)
		conn->tail = NULL;
	conn->nrequests--;
	conn->head_sent = 0;
	SlRequestMetricsFinish(req);
	MemoryContextDelete(req->context);
	if (conn->head != NULL)
		SlConnActivityRequestStart(conn->session.activity_slot, conn->head->api_key,
								   conn->head->api_version, conn->head->received_at);
	else
		SlConnActivityRequestEnd(conn->session.activity_slot);
}

/*
 * Whether the answer of req, an answered request, is still to be written.
 * Once the connection is closing, only an answer already begun is finished.
 */
static bool
answer_due(SlConn *conn, SlRequest *req)
{
	size_t		sent = req == conn->head ? conn->head_sent : 0;

	if (conn->peer_gone || sent == answer_size(req))
		return false;
	return !conn->closing || sent > 0;
}

/* Free the answered requests at the head that owe nothing more */
static void
free_answered(SlConn *conn)
{
	while (conn->head != NULL && conn->head->state == SL_REQUEST_DONE &&
		   !answer_due(conn, conn->head))
	{
		bool		close_after = conn->head->close_after &&
			conn->head_sent == answer_size(conn->head);

		request_free(conn, conn->head);
		if (close_after)
			conn->closing = true;
	}
}

/* iovecs being gathered for one sendmsg() */
typedef struct Gather
{
	struct iovec iov[FLUSH_IOVECS];
	uint8		prefix[FLUSH_IOVECS][4];	/* size prefixes of the answers */
	int			niov;
	int			nprefix;
	size_t		skip;			/* bytes still to pass over (already sent) */
} Gather;

/* Add n bytes at data, less what is to be skipped; false if g is full */
static bool
gather_piece(Gather *g, const void *data, size_t n)
{
	if (g->skip >= n)
	{
		g->skip -= n;
		return true;
	}
	if (g->niov == FLUSH_IOVECS)
		return false;
	g->iov[g->niov].iov_base = (char *) data + g->skip;
	g->iov[g->niov].iov_len = n - g->skip;
	g->niov++;
	g->skip = 0;
	return true;
}

/*
 * Add req's answer to g: its size prefix, then its response with the
 * records it left in place (SlWriterRef) between the slices.  False if g
 * filled up before the end of it.
 */
static bool
gather_answer(Gather *g, SlRequest *req)
{
	uint8	   *prefix = g->prefix[g->nprefix++];
	uint32		len = (uint32) answer_size(req) - 4;
	size_t		pos = 0;

	prefix[0] = (uint8) (len >> 24);
	prefix[1] = (uint8) (len >> 16);
	prefix[2] = (uint8) (len >> 8);
	prefix[3] = (uint8) len;
	if (!gather_piece(g, prefix, 4))
		return false;
	for (int r = 0; r <= req->response_nrefs; r++)
	{
		size_t		end = r < req->response_nrefs ?
			req->response_refs[r].offset : (size_t) req->response.len;

		if (!gather_piece(g, req->response.data + pos, end - pos))
			return false;
		pos = end;
		if (r < req->response_nrefs &&
			!gather_piece(g, req->response_refs[r].data, req->response_refs[r].len))
			return false;
	}
	return true;
}

/*
 * Write the gathered pieces through TLS, as one SSL_write of up to
 * TLS_WRITE_MAX bytes: a piece of a record or more (fetched records) goes
 * from where it is, smaller ones (size prefixes, small answers) are copied
 * together first, so that they do not become records and syscalls of their
 * own.  A write OpenSSL could not
 * finish is retried with the same bytes from the next flush, which gathers
 * the same pieces again (the buffer may move: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
 * Returns as sendmsg() does.
 */
static ssize_t
tls_send(SlConn *conn, const Gather *g)
{
	static char *staging = NULL;
	const char *data;
	size_t		len = 0;
	size_t		n;

	if (g->iov[0].iov_len >= TLS_DIRECT_MIN)
	{
		data = g->iov[0].iov_base;
		len = Min(g->iov[0].iov_len, TLS_WRITE_MAX);
	}
	else
	{
		if (staging == NULL)
			staging = MemoryContextAlloc(TopMemoryContext, TLS_WRITE_MAX);
		for (int i = 0; i < g->niov && len < TLS_WRITE_MAX; i++)
		{
			size_t		take = Min(g->iov[i].iov_len, TLS_WRITE_MAX - len);

			/* a large piece goes by itself, from where it is, next */
			if (i > 0 && g->iov[i].iov_len >= TLS_DIRECT_MIN)
				break;

			memcpy(staging + len, g->iov[i].iov_base, take);
			len += take;
		}
		data = staging;
	}
	conn->tls_want_write = false;
	switch (SlTlsWrite(conn->tls, data, len, &n))
	{
		case SL_TLS_OK:
			return (ssize_t) n;
		case SL_TLS_WANT_WRITE:
			conn->tls_want_write = true;
			errno = EAGAIN;
			return -1;
		case SL_TLS_WANT_READ:
			errno = EAGAIN;
			return -1;
		case SL_TLS_CLOSED:
			break;
		case SL_TLS_ERROR:
			ereport(LOG,
					(errmsg("streamlog broker closing connection from %s: TLS error while writing: %s",
							conn->peer, SlTlsError(conn->tls))));
			break;
	}
	errno = EPIPE;
	return -1;
}

void
SlConnFlush(SlConn *conn)
{
	/* A handshake waiting to write goes on when the socket takes bytes */
	if (conn->handshaking)
	{
		if (conn->tls_want_write && !conn->closing)
			tls_handshake(conn);
		if (conn->handshaking)
			return;
	}

	/*
	 * A read that had to write (a TLS 1.3 key update answered) goes on too,
	 * unless an answer is to be written, which sends OpenSSL's bytes first
	 */
	if (conn->tls_want_write && !SlConnHasOutput(conn) && !conn->closing)
	{
		conn->tls_want_write = false;
		SlConnRead(conn);
	}
	free_answered(conn);
	while (conn->head != NULL && conn->head->state == SL_REQUEST_DONE)
	{
		Gather		g;
		struct msghdr msg = {0};
		ssize_t		n;

		/* Gather consecutive answers from the head, from where it stopped */
		g.niov = 0;
		g.nprefix = 0;
		g.skip = conn->head_sent;
		for (SlRequest *req = conn->head;
			 req != NULL && req->state == SL_REQUEST_DONE && g.nprefix < FLUSH_IOVECS;
			 req = req->next)
		{
			if (!answer_due(conn, req))
			{
				if (conn->closing)
					break;
				continue;		/* nothing to send (acks=0) */
			}
			if (!gather_answer(&g, req))
				break;
			/* Nothing is answered after an answer that closes */
			if (req->close_after)
				break;
		}
		if (g.niov == 0)
			break;

		if (conn->tls)
			n = tls_send(conn, &g);
		else
		{
			msg.msg_iov = g.iov;
			msg.msg_iovlen = g.niov;
			n = sendmsg(conn->sock, &msg, MSG_NOSIGNAL);
		}
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
			{
				/* The peer is gone: drop what it was owed */
				conn->closing = true;
				conn->peer_gone = true;
				free_answered(conn);
			}
			break;
		}

		if (n > 0)
			conn->last_active = GetCurrentTimestamp();
		/* Account the written bytes to the answers, in order */
		while (n > 0)
		{
			size_t		left = answer_size(conn->head) - conn->head_sent;

			if ((size_t) n < left)
			{
				conn->head_sent += n;
				n = 0;
			}
			else
			{
				n -= left;
				conn->head_sent += left;
				free_answered(conn);
			}
		}
		free_answered(conn);
	}
}

bool
SlConnHasOutput(SlConn *conn)
{
	for (SlRequest *req = conn->head; req != NULL && req->state == SL_REQUEST_DONE;
		 req = req->next)
		if (answer_due(conn, req))
			return true;
	return false;
}

size_t
SlConnInputBufferBytes(SlConn *conn)
{
	return (size_t) conn->in.maxlen + (conn->reading ? conn->reading->frame_len : 0);
}

/* Is there room to read more from the client? */
static bool
wants_input(SlConn *conn)
{
	return !conn->closing && !conn->muted && conn->nrequests < MAX_QUEUED_REQUESTS &&
		unsent_bytes(conn, MAX_PENDING_OUTPUT) < MAX_PENDING_OUTPUT;
}

bool
SlConnHasBufferedInput(SlConn *conn)
{
	return conn->tls != NULL && conn->tls_input_held && !conn->handshaking &&
		wants_input(conn) && SlTlsHasBufferedInput(conn->tls);
}

uint32
SlConnWaitEvents(SlConn *conn)
{
	uint32		events = 0;

	/* During the handshake, what OpenSSL waits for */
	if (conn->handshaking && !conn->closing)
		return conn->tls_want_write ? WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE;
	if (wants_input(conn))
		events |= WL_SOCKET_READABLE;
	if (SlConnHasOutput(conn) || conn->tls_want_write)
		events |= WL_SOCKET_WRITEABLE;
	if (events == 0)
		events = WL_SOCKET_READABLE;	/* notice the peer closing */
	return events;
}

bool
SlConnIsIdle(SlConn *conn)
{
	/* a client that stopped in the middle of a frame is idle too */
	return conn->head == NULL && !conn->closing;
}

void
SlConnClose(SlConn *conn)
{
	while (conn->head != NULL)
		request_free(conn, conn->head);
	SlSessionEnd(&conn->session);
	SlConnActivityClose(conn->session.activity_slot);
	if (conn->session.listener_index >= 0)
		SlMetricsCountListener(conn->session.listener_index, conn->listener->name,
							   SL_LISTENER_CONNECTION_CLOSED);
	if (conn->tls)
		SlTlsFree(conn->tls, !conn->peer_gone);
	closesocket(conn->sock);
	MemoryContextDelete(conn->context);
}
