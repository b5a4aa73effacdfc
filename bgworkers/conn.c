/*
 * Client connections of the broker workers, see conn.h.
 *
 * Every byte from the network is hostile: a frame size that is negative,
 * zero or above streamlog.max_request_size closes the connection (with a
 * log line) before anything is allocated for it.  A client that stops
 * reading is not read from either once its output or request queue is
 * backed up, so it cannot make the worker hold unbounded memory; other
 * connections are not affected.
 */
#include "postgres.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "storage/latch.h"
#include "utils/memutils.h"

#include "bgworkers/conn.h"
#include "guc.h"
#include "server/server.h"

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

SlConn *
SlConnCreate(pgsocket sock, char *peer)
{
	MemoryContext context = AllocSetContextCreate(TopMemoryContext,
												  "streamlog connection",
												  ALLOCSET_DEFAULT_SIZES);
	SlConn	   *conn = MemoryContextAllocZero(context, sizeof(SlConn));
	MemoryContext oldcxt = MemoryContextSwitchTo(context);

	conn->sock = sock;
	conn->peer = pstrdup(peer);
	conn->context = context;
	initStringInfo(&conn->in);
	initStringInfo(&conn->out);
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
}

void
SlConnTakeFrames(SlConn *conn)
{
	size_t		pos = 0;
	MemoryContext oldcxt = MemoryContextSwitchTo(conn->context);

	while (!conn->closing && conn->nrequests < MAX_QUEUED_REQUESTS &&
		   conn->in.len - pos >= 4)
	{
		const uint8 *p = (const uint8 *) conn->in.data + pos;
		int32		size = (int32) (((uint32) p[0] << 24) | ((uint32) p[1] << 16) |
									((uint32) p[2] << 8) | p[3]);
		SlRequest  *req;
		MemoryContext context;
		uint8	   *frame;

		if (size <= 0 || size > sl_max_request_size)
		{
			conn_fail(conn, psprintf("frame size %d is out of range (1 to streamlog.max_request_size = %d)",
									 size, sl_max_request_size));
			MemoryContextSwitchTo(oldcxt);
			return;
		}
		if ((size_t) (conn->in.len - pos) < (size_t) size + 4)
		{
			/* Make room for the rest of this frame in one go */
			if (pos == 0)
				enlargeStringInfo(&conn->in, size + 4 - conn->in.len);
			break;
		}

		context = AllocSetContextCreate(conn->context, "streamlog request",
										ALLOCSET_DEFAULT_SIZES);
		req = MemoryContextAllocZero(context, sizeof(SlRequest));
		frame = MemoryContextAlloc(context, size);
		memcpy(frame, p + 4, size);
		req->context = context;
		req->frame = frame;
		req->frame_len = size;
		req->state = SL_REQUEST_NEW;
		req->send_response = true;
		req->peer = conn->peer;
		pos += (size_t) size + 4;

		if (!SlServerParseHeader(req))
		{
			MemoryContextDelete(context);
			conn_fail(conn, "request header cannot be parsed");
			MemoryContextSwitchTo(oldcxt);
			return;
		}
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(context);

			initStringInfo(&req->response);
			MemoryContextSwitchTo(oldcxt);
		}
		if (conn->tail)
			conn->tail->next = req;
		else
			conn->head = req;
		conn->tail = req;
		conn->nrequests++;
	}

	/* Drop the consumed bytes */
	if (pos > 0)
	{
		memmove(conn->in.data, conn->in.data + pos, conn->in.len - pos);
		conn->in.len -= pos;
		conn->in.data[conn->in.len] = '\0';
	}
	MemoryContextSwitchTo(oldcxt);
}

bool
SlConnMuted(SlConn *conn)
{
	size_t		backlog = conn->out.len - conn->out_pos;

	for (SlRequest *req = conn->head; req != NULL && backlog <= MAX_BACKLOG; req = req->next)
		if (req->state == SL_REQUEST_DONE)
			backlog += req->response.len;
	return backlog > MAX_BACKLOG;
}

void
SlConnRead(SlConn *conn)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(conn->context);

	while (!conn->closing && conn->nrequests < MAX_QUEUED_REQUESTS)
	{
		ssize_t		n;

		enlargeStringInfo(&conn->in, READ_CHUNK);
		n = recv(conn->sock, conn->in.data + conn->in.len,
				 conn->in.maxlen - conn->in.len - 1, 0);
		if (n > 0)
		{
			conn->in.len += n;
			conn->in.data[conn->in.len] = '\0';
			SlConnTakeFrames(conn);
			continue;
		}
		if (n == 0)
		{
			/* The client closed; answer nothing more */
			conn->closing = true;
			resetStringInfo(&conn->out);
			conn->out_pos = 0;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
		{
			conn_fail(conn, psprintf("could not read: %m"));
			resetStringInfo(&conn->out);
			conn->out_pos = 0;
		}
		break;
	}
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
	MemoryContextDelete(req->context);
}

void
SlConnFlush(SlConn *conn)
{
	/* Queue the answers that are due, in request order */
	while (conn->head != NULL && conn->head->state == SL_REQUEST_DONE)
	{
		SlRequest  *req = conn->head;
		bool		close_after = req->close_after;

		if (req->send_response && !conn->closing)
		{
			uint8		size[4];
			int32		len = req->response.len;

			size[0] = (uint8) ((uint32) len >> 24);
			size[1] = (uint8) ((uint32) len >> 16);
			size[2] = (uint8) ((uint32) len >> 8);
			size[3] = (uint8) len;
			appendBinaryStringInfo(&conn->out, (char *) size, 4);
			appendBinaryStringInfo(&conn->out, req->response.data, len);
		}
		request_free(conn, req);
		if (close_after)
			conn->closing = true;
	}

	while (conn->out_pos < (size_t) conn->out.len)
	{
		ssize_t		n = send(conn->sock, conn->out.data + conn->out_pos,
							 conn->out.len - conn->out_pos, MSG_NOSIGNAL);

		if (n > 0)
		{
			conn->out_pos += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		{
			/* The peer is gone: drop what it was owed */
			conn->closing = true;
			resetStringInfo(&conn->out);
			conn->out_pos = 0;
		}
		break;
	}
	if (conn->out_pos == (size_t) conn->out.len && conn->out.len > 0)
	{
		resetStringInfo(&conn->out);
		conn->out_pos = 0;
	}
}

bool
SlConnHasOutput(SlConn *conn)
{
	return conn->out_pos < (size_t) conn->out.len;
}

uint32
SlConnWaitEvents(SlConn *conn)
{
	uint32		events = 0;

	if (!conn->closing && conn->nrequests < MAX_QUEUED_REQUESTS &&
		conn->out.len - conn->out_pos < MAX_PENDING_OUTPUT)
		events |= WL_SOCKET_READABLE;
	if (SlConnHasOutput(conn))
		events |= WL_SOCKET_WRITEABLE;
	if (events == 0)
		events = WL_SOCKET_READABLE;	/* notice the peer closing */
	return events;
}

void
SlConnClose(SlConn *conn)
{
	while (conn->head != NULL)
		request_free(conn, conn->head);
	closesocket(conn->sock);
	MemoryContextDelete(conn->context);
}
