/*-------------------------------------------------------------------------
 * http_request.c
 *	  The head of an HTTP/1.x request (RFC 9112 sections 2-5), as the
 *	  metrics endpoint reads it from a stranger: every byte is checked for
 *	  its place, every length against a bound, and nothing is allocated.
 *
 *	  The head is parsed again from its start each time more bytes came
 *	  (it is at most max_head bytes, a few kB): simpler than keeping a
 *	  parser's state between reads, and cheap at that size.
 *
 * IDENTIFICATION
 *	  src/protocol/http_request.c
 *-------------------------------------------------------------------------
 */
#include "streamlog/protocol/http_request.h"

#include <ctype.h>

/* tchar of RFC 9110 5.6.2: what a method or a header name is made of */
static bool
is_tchar(unsigned char c)
{
	if (isalnum(c) && c < 0x80)
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A byte allowed in a header value: VCHAR, obs-text, SP, HTAB */
static bool
is_field_char(unsigned char c)
{
	return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

/* A byte allowed in a request target: VCHAR or obs-text, no space */
static bool
is_target_char(unsigned char c)
{
	return c > 0x20 && c != 0x7f;
}

static bool
equals_ci(const char *a, int alen, const char *b)
{
	int			blen = (int) strlen(b);

	return alen == blen && pg_strncasecmp(a, b, blen) == 0;
}

static SlHttpParse
bad(SlHttpRequest *req, int status, const char *why)
{
	req->status = status;
	req->error = why;
	return SL_HTTP_BAD;
}

/*
 * The end of the line starting at pos: the index of its '\n', or -1 if
 * none yet.  *content_end is where its content ends (before a "\r\n").
 */
static int
line_end(const char *buf, int len, int pos, int *content_end)
{
	const char *nl = memchr(buf + pos, '\n', len - pos);
	int			end;

	if (nl == NULL)
		return -1;
	end = (int) (nl - buf);
	*content_end = end > pos && buf[end - 1] == '\r' ? end - 1 : end;
	return end;
}

/* Trim optional white space (SP, HTAB) from both ends of [*start, *end) */
static void
trim_ows(const char *buf, int *start, int *end)
{
	while (*start < *end && (buf[*start] == ' ' || buf[*start] == '\t'))
		(*start)++;
	while (*end > *start && (buf[*end - 1] == ' ' || buf[*end - 1] == '\t'))
		(*end)--;
}

static SlHttpParse
parse_request_line(const char *buf, int start, int end, SlHttpRequest *req)
{
	int			pos = start;
	int			mlen = 0;
	int			tstart;
	int			tend;
	int			plen;
	const char *v;

	while (pos < end && is_tchar((unsigned char) buf[pos]))
		pos++;
	mlen = pos - start;
	if (mlen == 0 || pos >= end || buf[pos] != ' ')
		return bad(req, 400, "malformed request line");
	if (mlen > SL_HTTP_MAX_METHOD)
		return bad(req, 400, "method too long");
	memcpy(req->method, buf + start, mlen);
	req->method[mlen] = '\0';

	tstart = ++pos;
	while (pos < end && is_target_char((unsigned char) buf[pos]))
		pos++;
	tend = pos;
	if (tend == tstart || pos >= end || buf[pos] != ' ')
		return bad(req, 400, "malformed request target");
	if (buf[tstart] != '/')
		return bad(req, 400, "request target is not an absolute path");
	for (plen = 0; tstart + plen < tend; plen++)
	{
		char		c = buf[tstart + plen];

		if (c == '?' || c == '#')
			break;
	}
	if (plen > SL_HTTP_MAX_PATH)
		return bad(req, 414, "request target too long");
	memcpy(req->path, buf + tstart, plen);
	req->path[plen] = '\0';

	pos++;
	v = buf + pos;
	if (end - pos != 8 || memcmp(v, "HTTP/", 5) != 0 || !isdigit((unsigned char) v[5]) ||
		v[6] != '.' || !isdigit((unsigned char) v[7]))
		return bad(req, 400, "malformed HTTP version");
	if (v[5] != '1')
		return bad(req, 505, "HTTP version not supported");
	req->minor_version = v[7] - '0';
	req->keep_alive = req->minor_version >= 1;
	return SL_HTTP_DONE;
}

/* Connection: a comma-separated list of options; close and keep-alive count */
static void
read_connection(const char *buf, int start, int end, SlHttpRequest *req)
{
	int			pos = start;

	while (pos <= end)
	{
		int			tstart = pos;
		int			tend;

		while (pos < end && buf[pos] != ',')
			pos++;
		tend = pos;
		trim_ows(buf, &tstart, &tend);
		if (equals_ci(buf + tstart, tend - tstart, "close"))
			req->keep_alive = false;
		else if (equals_ci(buf + tstart, tend - tstart, "keep-alive"))
			req->keep_alive = true;
		pos++;
	}
}

static SlHttpParse
parse_header(const char *buf, int start, int end, SlHttpRequest *req)
{
	int			pos = start;
	int			nlen;
	int			vstart;
	int			vend;

	if (buf[start] == ' ' || buf[start] == '\t')
		return bad(req, 400, "obsolete header line folding");
	while (pos < end && is_tchar((unsigned char) buf[pos]))
		pos++;
	nlen = pos - start;
	if (nlen == 0 || pos >= end || buf[pos] != ':')
		return bad(req, 400, "malformed header line");
	for (int i = pos + 1; i < end; i++)
		if (!is_field_char((unsigned char) buf[i]))
			return bad(req, 400, "control character in a header value");
	vstart = pos + 1;
	vend = end;
	trim_ows(buf, &vstart, &vend);

	if (equals_ci(buf + start, nlen, "accept"))
	{
		if (SlHttpAcceptsOpenMetrics(buf + vstart, vend - vstart))
			req->openmetrics = true;
	}
	else if (equals_ci(buf + start, nlen, "connection"))
		read_connection(buf, vstart, vend, req);
	else if (equals_ci(buf + start, nlen, "transfer-encoding"))
		return bad(req, 413, "request with a body");
	else if (equals_ci(buf + start, nlen, "content-length"))
	{
		if (vend == vstart)
			return bad(req, 400, "empty Content-Length");
		for (int i = vstart; i < vend; i++)
		{
			if (!isdigit((unsigned char) buf[i]))
				return bad(req, 400, "malformed Content-Length");
			if (buf[i] != '0')
				return bad(req, 413, "request with a body");
		}
	}
	return SL_HTTP_DONE;
}

SlHttpParse
SlHttpParseRequest(const char *buf, int len, int max_head, int max_headers,
				   SlHttpRequest *req)
{
	int			pos = 0;
	int			end;
	int			content_end;
	SlHttpParse rc;

	memset(req, 0, sizeof(*req));
	/* a server should ignore empty lines before a request line (2.2) */
	while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n'))
	{
		if (buf[pos] == '\r' && (pos + 1 >= len || buf[pos + 1] != '\n'))
			break;
		pos += buf[pos] == '\r' ? 2 : 1;
	}
	if (pos > max_head)
		return bad(req, 400, "too many empty lines");

	end = line_end(buf, len, pos, &content_end);
	if (end < 0 || end >= max_head)
	{
		if (len >= max_head)
			return bad(req, 414, "request line too long");
		if (memchr(buf + pos, '\0', len - pos) != NULL)
			return bad(req, 400, "NUL byte in the request line");
		return SL_HTTP_INCOMPLETE;
	}
	if (memchr(buf + pos, '\r', content_end - pos) != NULL)
		return bad(req, 400, "bare CR in the request line");
	rc = parse_request_line(buf, pos, content_end, req);
	if (rc != SL_HTTP_DONE)
		return rc;
	pos = end + 1;

	for (;;)
	{
		end = line_end(buf, len, pos, &content_end);
		if (end < 0 || end >= max_head)
		{
			if (len >= max_head)
				return bad(req, 431, "request header fields too large");
			return SL_HTTP_INCOMPLETE;
		}
		if (memchr(buf + pos, '\r', content_end - pos) != NULL)
			return bad(req, 400, "bare CR in a header line");
		if (content_end == pos)
		{
			req->consumed = end + 1;
			return SL_HTTP_DONE;
		}
		if (++req->header_count > max_headers)
			return bad(req, 431, "too many header fields");
		rc = parse_header(buf, pos, content_end, req);
		if (rc != SL_HTTP_DONE)
			return rc;
		pos = end + 1;
	}
}

/*
 * The weight of a media range: its q parameter in thousandths (1000 when
 * absent, 0 when malformed or out of range)
 */
static int
range_weight(const char *params, int len)
{
	int			pos = 0;

	while (pos < len)
	{
		int			pstart;
		int			pend;

		while (pos < len && params[pos] != ';')
			pos++;
		pos++;
		pstart = pos;
		while (pos < len && params[pos] != ';')
			pos++;
		pend = pos;
		trim_ows(params, &pstart, &pend);
		if (pend - pstart >= 2 && (params[pstart] == 'q' || params[pstart] == 'Q') &&
			params[pstart + 1] == '=')
		{
			const char *q = params + pstart + 2;
			int			qlen = pend - pstart - 2;
			int			weight;
			int			scale = 100;

			if (qlen < 1 || (q[0] != '0' && q[0] != '1'))
				return 0;
			weight = (q[0] - '0') * 1000;
			if (qlen > 1 && (q[1] != '.' || qlen > 5))
				return 0;
			for (int i = 2; i < qlen; i++, scale /= 10)
			{
				if (!isdigit((unsigned char) q[i]))
					return 0;
				weight += (q[i] - '0') * scale;
			}
			return weight > 1000 ? 0 : weight;
		}
	}
	return 1000;
}

bool
SlHttpAcceptsOpenMetrics(const char *value, int len)
{
	int			openmetrics = -1;
	int			text = -1;
	int			wildcard = -1;
	int			pos = 0;

	while (pos < len)
	{
		int			estart = pos;
		int			eend;
		int			tend;
		int			weight;

		while (pos < len && value[pos] != ',')
			pos++;
		eend = pos++;
		trim_ows(value, &estart, &eend);
		for (tend = estart; tend < eend && value[tend] != ';'; tend++)
			;
		weight = range_weight(value + tend, eend - tend);
		{
			int			ts = estart;
			int			te = tend;

			trim_ows(value, &ts, &te);
			if (equals_ci(value + ts, te - ts, "application/openmetrics-text"))
				openmetrics = Max(openmetrics, weight);
			else if (equals_ci(value + ts, te - ts, "text/plain"))
				text = Max(text, weight);
			else if (equals_ci(value + ts, te - ts, "*/*") ||
					 equals_ci(value + ts, te - ts, "text/*"))
				wildcard = Max(wildcard, weight);
		}
	}
	if (text < 0)
		text = wildcard;
	return openmetrics > 0 && openmetrics >= text;
}

const char *
SlHttpReason(int status)
{
	switch (status)
	{
		case 200:
			return "OK";
		case 400:
			return "Bad Request";
		case 404:
			return "Not Found";
		case 405:
			return "Method Not Allowed";
		case 408:
			return "Request Timeout";
		case 411:
			return "Length Required";
		case 413:
			return "Content Too Large";
		case 414:
			return "URI Too Long";
		case 431:
			return "Request Header Fields Too Large";
		case 500:
			return "Internal Server Error";
		case 503:
			return "Service Unavailable";
		case 505:
			return "HTTP Version Not Supported";
	}
	return "Error";
}
