/*
 * An HTTP/1.x request head (RFC 9112), parsed as a pure function over the
 * bytes received so far: the request line, then header lines up to the
 * empty line.  Only what the metrics endpoint needs is kept (method, path,
 * whether the client asks for OpenMetrics, whether it keeps the
 * connection); the rest is checked for form and skipped.  No allocation,
 * no I/O, no ereport: the bytes come from the network and may be anything.
 *
 * A request with a body (Content-Length other than 0, or any
 * Transfer-Encoding) is refused: nothing the endpoint serves takes one,
 * and skipping it would mean reading bytes on a stranger's word.
 */
#ifndef SL_HTTP_REQUEST_H
#define SL_HTTP_REQUEST_H

#include "streamlog/protocol/codec_base.h"

/* Longest method and path kept; a longer path is refused with 414 */
#define SL_HTTP_MAX_METHOD 16
#define SL_HTTP_MAX_PATH 256

typedef enum SlHttpParse
{
	SL_HTTP_INCOMPLETE,			/* no empty line yet: read more */
	SL_HTTP_DONE,				/* a whole head; consumed says how long */
	SL_HTTP_BAD					/* refuse with status, then close */
} SlHttpParse;

typedef struct SlHttpRequest
{
	char		method[SL_HTTP_MAX_METHOD + 1];
	char		path[SL_HTTP_MAX_PATH + 1];	/* without the query */
	int			minor_version;	/* HTTP/1.<minor_version> */
	int			header_count;
	bool		keep_alive;		/* 1.1 unless "close"; 1.0 if "keep-alive" */
	bool		openmetrics;	/* Accept prefers application/openmetrics-text */
	int			consumed;		/* bytes of the head, with its empty line */
	int			status;			/* SL_HTTP_BAD: 400, 411, 413, 414, 431, 505 */
	const char *error;			/* SL_HTTP_BAD: why, for the log */
} SlHttpRequest;

/*
 * Parse the head at the start of buf[0..len).  max_headers bounds the
 * header lines and max_head the bytes of the head: SL_HTTP_BAD with 431
 * beyond them (also when len already passes max_head without an end).
 */
extern SlHttpParse SlHttpParseRequest(const char *buf, int len, int max_head,
									  int max_headers, SlHttpRequest *req);

/*
 * Does an Accept header value prefer OpenMetrics 1.0 to the Prometheus
 * text format?  By the q values of its media ranges (RFC 9110 12.5.1):
 * yes if application/openmetrics-text has a q above zero and at least
 * that of text/plain (or of the best wildcard, if text/plain is not named).
 */
extern bool SlHttpAcceptsOpenMetrics(const char *value, int len);

/* The reason phrase of a status code the endpoint sends */
extern const char *SlHttpReason(int status);

#endif							/* SL_HTTP_REQUEST_H */
