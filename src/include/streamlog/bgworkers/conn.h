/*
 * A client connection of a broker worker: non-blocking socket, input
 * buffer cut into size-prefixed frames, and a queue of requests answered in
 * order.  A frame not wholly read yet is read straight into the buffer of
 * its request, so the input buffer stays small whatever the frame size.
 * Answers are written straight from each request's response buffer,
 * several at a time with sendmsg(), never copied again; over TLS they are
 * gathered into large writes of SSL_write (bgworkers/tls.h).
 */
#ifndef SL_CONN_H
#define SL_CONN_H

#include "postgres.h"

#include <sys/socket.h>

#include "lib/stringinfo.h"
#include "utils/timestamp.h"
#include "streamlog/bgworkers/tls.h"
#include "streamlog/server/listeners.h"
#include "streamlog/server/request.h"
#include "streamlog/server/session.h"

typedef struct SlConn
{
	pgsocket	sock;
	char	   *peer;			/* "host:port", for log lines */
	struct sockaddr_storage peer_addr;	/* counted per address (conn_limits.h) */
	int			counted_listener;	/* and on this listener; -1 if not */
	MemoryContext context;
	const SlListener *listener; /* the one it came in on */
	SlSession	session;		/* the server layer's view of it */

	/* TLS listeners: the TLS state; no request is read before the handshake */
	SlTls	   *tls;
	bool		handshaking;
	bool		tls_want_write; /* OpenSSL waits for the socket to take bytes */
	bool		tls_input_held; /* reading stopped before OpenSSL ran dry */

	StringInfoData in;			/* bytes read, not yet cut into frames */
	SlRequest  *reading;		/* frame being read straight into its request */
	size_t		reading_have;	/* bytes of it read so far */
	SlRequest  *head;			/* oldest request not yet answered in full */
	SlRequest  *tail;
	int			nrequests;
	size_t		head_sent;		/* bytes of head's answer already written */

	TimestampTz last_active;	/* when bytes last came in or went out */
	bool		closing;		/* answer nothing new, close once written */
	bool		peer_gone;		/* nothing more can be written either */
	/*
	 * Set by the worker: too many of its answers (or of the worker's) wait
	 * to be sent, so it is not read, and its requests are neither handled
	 * nor, if parked, looked at again, until it drains
	 */
	bool		muted;
	/* over a client quota: muted until then (KIP-219) */
	TimestampTz throttled_until;
	int			wait_pos;		/* position in the worker's wait set */
	uint32		wait_events;	/* events registered there */
} SlConn;

extern SlConn *SlConnCreate(pgsocket sock, char *peer, bool peer_is_loopback,
							const SlListener *listener);

/* Read what the socket has and queue the complete requests */
extern void SlConnRead(SlConn *conn);

/* Cut complete frames read earlier into requests, while the queue has room */
extern void SlConnTakeFrames(SlConn *conn);

/* Too much answered but unsent: handle no more of its requests for now */
extern bool SlConnMuted(SlConn *conn);

/* Bytes of its answers not yet written */
extern size_t SlConnUnsentBytes(SlConn *conn);

/* Write the answers that are due, in request order, and free them */
extern void SlConnFlush(SlConn *conn);

extern bool SlConnHasOutput(SlConn *conn);

/*
 * Bytes already read from the socket and decrypted, that the client is to
 * be served from before waiting again (the socket will not signal them)
 */
extern bool SlConnHasBufferedInput(SlConn *conn);

/* Bytes held to read frames into, for streamlog.broker_stats */
extern size_t SlConnInputBufferBytes(SlConn *conn);

/* What to wait for on this socket: readable unless backed up, writeable
 * while output is pending */
extern uint32 SlConnWaitEvents(SlConn *conn);

/*
 * Is the connection idle: no request waiting for its answer or to be sent?
 * (Since when: last_active.)
 */
extern bool SlConnIsIdle(SlConn *conn);

extern void SlConnClose(SlConn *conn);

#endif							/* SL_CONN_H */
