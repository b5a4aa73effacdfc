/*
 * A client connection of a broker worker: non-blocking socket, input
 * buffer cut into size-prefixed frames, a queue of requests answered in
 * order, and an output buffer.
 */
#ifndef SL_CONN_H
#define SL_CONN_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "server/request.h"

typedef struct SlConn
{
	pgsocket	sock;
	char	   *peer;			/* "host:port", for log lines */
	MemoryContext context;

	StringInfoData in;			/* bytes read, not yet cut into frames */
	StringInfoData out;			/* bytes to write */
	size_t		out_pos;		/* written so far */

	SlRequest  *head;			/* oldest request still due an answer */
	SlRequest  *tail;
	int			nrequests;

	bool		closing;		/* close once out is written */
	int			wait_pos;		/* position in the worker's wait set */
	uint32		wait_events;	/* events registered there */
} SlConn;

extern SlConn *SlConnCreate(pgsocket sock, char *peer);

/* Read what the socket has and queue the complete requests */
extern void SlConnRead(SlConn *conn);

/* Cut complete frames read earlier into requests, while the queue has room */
extern void SlConnTakeFrames(SlConn *conn);

/* Too much answered but unsent: handle no more of its requests for now */
extern bool SlConnMuted(SlConn *conn);

/* Move answered requests at the head of the queue out, and write */
extern void SlConnFlush(SlConn *conn);

extern bool SlConnHasOutput(SlConn *conn);

/* What to wait for on this socket: readable unless backed up, writeable
 * while output is pending */
extern uint32 SlConnWaitEvents(SlConn *conn);

extern void SlConnClose(SlConn *conn);

#endif							/* SL_CONN_H */
