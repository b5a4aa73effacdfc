/*
 * Unit tests of the HTTP request head parser (src/protocol/http_request.c)
 * and the Accept negotiation of the metrics endpoint.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/http_request.h"
#include "unit.h"

#define MAX_HEAD 8192
#define MAX_HEADERS 64

static SlHttpParse
parse(const char *text, SlHttpRequest *req)
{
	return SlHttpParseRequest(text, (int) strlen(text), MAX_HEAD, MAX_HEADERS, req);
}

static void
check_bad(const char *text, int status)
{
	SlHttpRequest req;

	CHECK_EQ_INT(parse(text, &req), SL_HTTP_BAD);
	CHECK_MSG(req.status == status, "%s: status %d, want %d", text, req.status, status);
	CHECK(req.error != NULL);
}

static void
test_whole_requests(void)
{
	SlHttpRequest req;
	const char *prom = "GET /metrics HTTP/1.1\r\nHost: localhost:9644\r\n"
		"User-Agent: Prometheus/2.42.0\r\n"
		"Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
		"version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
		"Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\nGET";

	CHECK_EQ_INT(parse(prom, &req), SL_HTTP_DONE);
	CHECK(strcmp(req.method, "GET") == 0);
	CHECK(strcmp(req.path, "/metrics") == 0);
	CHECK_EQ_INT(req.minor_version, 1);
	CHECK(req.keep_alive);
	CHECK(req.openmetrics);
	CHECK_EQ_INT(req.header_count, 5);
	/* what follows the head is the next request's */
	CHECK_EQ_INT(req.consumed, (int) strlen(prom) - 3);

	CHECK_EQ_INT(parse("GET /metrics?a=b HTTP/1.0\n\n", &req), SL_HTTP_DONE);
	CHECK(strcmp(req.path, "/metrics") == 0);
	CHECK(!req.keep_alive);
	CHECK(!req.openmetrics);
	CHECK_EQ_INT(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req), SL_HTTP_DONE);
	CHECK(req.keep_alive);
	CHECK_EQ_INT(parse("HEAD /x HTTP/1.1\r\nConnection: foo, close\r\n\r\n", &req),
				 SL_HTTP_DONE);
	CHECK(!req.keep_alive);
	CHECK(strcmp(req.method, "HEAD") == 0);
	/* empty lines before the request line are skipped (RFC 9112 2.2) */
	CHECK_EQ_INT(parse("\r\n\r\nGET / HTTP/1.1\r\n\r\n", &req), SL_HTTP_DONE);
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &req), SL_HTTP_DONE);
}

static void
test_incomplete(void)
{
	SlHttpRequest req;
	const char *full = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

	/* every prefix is incomplete, never an error */
	for (size_t n = 0; n < strlen(full); n++)
		CHECK_EQ_INT(SlHttpParseRequest(full, (int) n, MAX_HEAD, MAX_HEADERS, &req),
					 SL_HTTP_INCOMPLETE);
	CHECK_EQ_INT(parse(full, &req), SL_HTTP_DONE);
}

static void
test_refused(void)
{
	char		big[MAX_HEAD + 100];
	SlHttpRequest req;

	check_bad("GARBAGE\r\n\r\n", 400);
	check_bad("GET\r\n\r\n", 400);
	check_bad("GET /metrics\r\n\r\n", 400);
	check_bad("GET metrics HTTP/1.1\r\n\r\n", 400);
	check_bad("GET http://x/metrics HTTP/1.1\r\n\r\n", 400);
	check_bad("GET /metrics HTTP/2.0\r\n\r\n", 505);
	check_bad("GET /metrics HTTP/1.11\r\n\r\n", 400);
	check_bad("GET /metrics FTP/1.1\r\n\r\n", 400);
	check_bad("GET  /metrics HTTP/1.1\r\n\r\n", 400);
	check_bad("G\x01T /metrics HTTP/1.1\r\n\r\n", 400);
	check_bad("GET /me\rtrics HTTP/1.1\r\n\r\n", 400);
	check_bad("GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n", 400);
	check_bad("GET /metrics HTTP/1.1\r\n: empty\r\n\r\n", 400);
	check_bad("GET /metrics HTTP/1.1\r\nA B: c\r\n\r\n", 400);
	check_bad("GET /metrics HTTP/1.1\r\n folded\r\n\r\n", 400);
	check_bad("GET /metrics HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400);
	check_bad("GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", 400);
	check_bad("GET /metrics HTTP/1.1\r\nContent-Length: 1\r\n\r\n", 413);
	check_bad("GET /metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400);
	check_bad("GET /metrics HTTP/1.1\r\nContent-Length:\r\n\r\n", 400);
	check_bad("GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 413);
	check_bad("TOOLONGMETHODNAMEXX / HTTP/1.1\r\n\r\n", 400);

	/* a NUL byte before the end of the request line */
	CHECK_EQ_INT(SlHttpParseRequest("GET /\0", 6, MAX_HEAD, MAX_HEADERS, &req), SL_HTTP_BAD);

	/* a path longer than kept */
	memset(big, 0, sizeof(big));
	snprintf(big, sizeof(big), "GET /%0*d HTTP/1.1\r\n\r\n", SL_HTTP_MAX_PATH, 0);
	check_bad(big, 414);
	snprintf(big, sizeof(big), "GET /%0*d HTTP/1.1\r\n\r\n", SL_HTTP_MAX_PATH - 1, 0);
	CHECK_EQ_INT(parse(big, &req), SL_HTTP_DONE);

	/* a request line filling the head, without an end */
	memset(big, 'a', MAX_HEAD);
	memcpy(big, "GET /", 5);
	CHECK_EQ_INT(SlHttpParseRequest(big, MAX_HEAD, MAX_HEAD, MAX_HEADERS, &req), SL_HTTP_BAD);
	CHECK_EQ_INT(req.status, 414);
	CHECK_EQ_INT(SlHttpParseRequest(big, MAX_HEAD - 1, MAX_HEAD, MAX_HEADERS, &req),
				 SL_HTTP_INCOMPLETE);

	/* headers filling the head, without an end */
	memset(big, 'b', MAX_HEAD);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	CHECK_EQ_INT(SlHttpParseRequest(big, MAX_HEAD, MAX_HEAD, MAX_HEADERS, &req), SL_HTTP_BAD);
	CHECK_EQ_INT(req.status, 431);

	/* one header line too many */
	{
		StringInfoData s;

		initStringInfo(&s);
		appendStringInfoString(&s, "GET / HTTP/1.1\r\n");
		for (int i = 0; i < MAX_HEADERS; i++)
			appendStringInfo(&s, "X-%d: y\r\n", i);
		appendStringInfoString(&s, "\r\n");
		CHECK_EQ_INT(parse(s.data, &req), SL_HTTP_DONE);
		CHECK_EQ_INT(req.header_count, MAX_HEADERS);
		resetStringInfo(&s);
		appendStringInfoString(&s, "GET / HTTP/1.1\r\n");
		for (int i = 0; i <= MAX_HEADERS; i++)
			appendStringInfo(&s, "X-%d: y\r\n", i);
		appendStringInfoString(&s, "\r\n");
		check_bad(s.data, 431);
		pfree(s.data);
	}
}

static bool
accepts(const char *value)
{
	return SlHttpAcceptsOpenMetrics(value, (int) strlen(value));
}

static void
test_accept(void)
{
	CHECK(accepts("application/openmetrics-text"));
	CHECK(accepts("application/openmetrics-text; version=1.0.0"));
	CHECK(accepts("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"));
	CHECK(accepts("text/plain;q=0.5, application/openmetrics-text;q=0.5"));
	CHECK(accepts("APPLICATION/OpenMetrics-Text;Q=1"));
	CHECK(!accepts(""));
	CHECK(!accepts("*/*"));
	CHECK(!accepts("text/plain"));
	CHECK(!accepts("text/plain;version=0.0.4"));
	CHECK(!accepts("application/openmetrics-text;q=0"));
	CHECK(!accepts("application/openmetrics-text;q=0.2,text/plain"));
	CHECK(!accepts("application/openmetrics-text;q=0.2,*/*"));
	CHECK(accepts("application/openmetrics-text;q=0.2,*/*;q=0.1"));
	CHECK(!accepts("application/openmetrics-text;q=2"));
	CHECK(!accepts("application/openmetrics-text;q=abc"));
	CHECK(!accepts("application/openmetrics-text;q=0.12345"));
	CHECK(accepts("application/openmetrics-text;q=0.125"));
	CHECK(!accepts(",,;;,q=,"));
}

int
main(void)
{
	test_whole_requests();
	test_incomplete();
	test_refused();
	test_accept();
	return UNIT_DONE();
}
