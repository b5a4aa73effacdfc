/*
 * Fuzz target: the head of an HTTP request as the metrics endpoint reads
 * it from the network (src/protocol/http_request.c), with its bounds.
 * Whatever the bytes, the parser must answer one of its three results,
 * stay inside them, and hold its promises: a whole head consumed is
 * within the input and the head's bound, a refusal has a status and a
 * reason, what is kept is NUL-terminated within its array, and a prefix
 * of a whole head is never refused for being short.
 *
 * The first byte picks the bounds (small ones reach the limits often);
 * the rest is the input, also fed to the Accept negotiation alone.
 */
#include "fuzz_common.h"

#include "streamlog/protocol/http_request.h"

FUZZ_COMMON_INITIALIZE()

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8	   *copy;
	int			len;
	int			max_head;
	int			max_headers;
	SlHttpRequest req;
	SlHttpParse rc;

	if (size < 1 || size > 65536)
		return 0;
	max_head = (data[0] & 1) ? 8192 : 64 + (data[0] >> 1);
	max_headers = (data[0] & 2) ? 64 : 2;
	len = (int) size - 1;
	copy = fuzz_copy(data + 1, len);

	rc = SlHttpParseRequest((const char *) copy, Min(len, max_head), max_head, max_headers, &req);
	FUZZ_CHECK(rc == SL_HTTP_INCOMPLETE || rc == SL_HTTP_DONE || rc == SL_HTTP_BAD);
	FUZZ_EXPECT(rc == SL_HTTP_DONE, req.error);
	if (rc == SL_HTTP_DONE)
	{
		FUZZ_CHECK(req.consumed > 0 && req.consumed <= Min(len, max_head));
		FUZZ_CHECK(req.header_count <= max_headers);
		FUZZ_CHECK(memchr(req.method, '\0', sizeof(req.method)) != NULL);
		FUZZ_CHECK(memchr(req.path, '\0', sizeof(req.path)) != NULL);
		FUZZ_CHECK(req.path[0] == '/');
		FUZZ_CHECK(req.method[0] != '\0');
		FUZZ_CHECK(req.minor_version >= 0 && req.minor_version <= 9);
		/* every shorter prefix of the head is incomplete or refused, not done */
		for (int n = 0; n < req.consumed; n += 1 + req.consumed / 16)
		{
			SlHttpRequest part;

			FUZZ_CHECK(SlHttpParseRequest((const char *) copy, n, max_head, max_headers,
										  &part) != SL_HTTP_DONE);
		}
	}
	else if (rc == SL_HTTP_BAD)
	{
		FUZZ_CHECK(req.error != NULL && req.error[0] != '\0');
		FUZZ_CHECK(req.status >= 400 && req.status < 600);
		FUZZ_CHECK(SlHttpReason(req.status) != NULL);
	}
	else
		FUZZ_CHECK(len < max_head);
	(void) SlHttpAcceptsOpenMetrics((const char *) copy, len);
	free(copy);
	return 0;
}
