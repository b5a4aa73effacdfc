/*
 * ApiVersions: the versions of every API streamlog serves, straight from
 * the handler table (less the APIs it only answers with "not supported").  Its response header is always v0, even for the
 * flexible v3 body.
 */
#include "postgres.h"

#include "streamlog/metrics/connections.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/txn/coordinator.h"

/*
 * Is key advertised?  The transaction APIs only while the coordinator
 * serves them: librdkafka and the Java client refuse a transactional
 * producer at once when they are missing.
 */
static bool
advertised(int key)
{
	const SlHandler *h = SlHandlerFor(key);

	if (h == NULL || h->unadvertised)
		return false;
	return !h->transactional || SlTxnCoordinatorEnabled();
}

/* Fill resp's api_keys from the handler table */
static void
fill_api_keys(SlApiVersionsResponse *resp)
{
	int			n = 0;

	for (int key = 0; key <= SL_API_KEY_MAX; key++)
		if (advertised(key))
			n++;
	SL_ARRAY_ALLOC(resp->api_keys, n);
	n = 0;
	for (int key = 0; key <= SL_API_KEY_MAX; key++)
	{
		const SlHandler *h = SlHandlerFor(key);

		if (!advertised(key))
			continue;
		resp->api_keys.items[n].api_key = key;
		resp->api_keys.items[n].min_version = h->min_version;
		resp->api_keys.items[n].max_version = h->max_version;
		n++;
	}
}

bool
SlHandleApiVersions(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlApiVersionsRequest request;
	SlApiVersionsResponse resp;

	if (!SlApiVersionsRequestDecode(body, req->api_version, &request))
		return false;
	/* KIP-511: who the client is, for streamlog.stat_connections */
	if (req->api_version >= 3 && req->session->activity_slot >= 0)
		SlConnActivitySetSoftware(req->session->activity_slot,
								  request.client_software_name.len >= 0 ?
								  pnstrdup(request.client_software_name.data,
										   request.client_software_name.len) : "",
								  request.client_software_version.len >= 0 ?
								  pnstrdup(request.client_software_version.data,
										   request.client_software_version.len) : "");
	SlApiVersionsResponseInit(&resp);
	resp.error_code = SL_ERR_NONE;
	fill_api_keys(&resp);
	SlApiVersionsResponseEncode(out, req->api_version, &resp);
	return true;
}

void
SlApiVersionsUnsupported(SlRequest *req, SlWriter *out)
{
	SlApiVersionsResponse resp;

	/* A v0 body, which every client can read whatever it asked for */
	SlWriteInt32(out, req->correlation_id);
	SlApiVersionsResponseInit(&resp);
	resp.error_code = SL_ERR_UNSUPPORTED_VERSION;
	fill_api_keys(&resp);
	SlApiVersionsResponseEncode(out, 0, &resp);
}
