/*
 * DescribeCluster: on a node of its own the cluster is this broker, which
 * is also its controller; on a cluster, every registered broker that is
 * not fenced, and the controller the metadata quorum names.  As in Kafka 3.9, anyone gets the answer; DESCRIBE on the
 * cluster decides only the authorized operations a client asks for (none
 * without it).
 */
#include "postgres.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/topic_admin.h"

#define ENDPOINT_BROKERS 1
#define ENDPOINT_CONTROLLERS 2

bool
SlHandleDescribeCluster(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeClusterRequest request;
	SlDescribeClusterResponse resp;
	const char *host;
	int32		port;

	if (!SlDescribeClusterRequestDecode(body, req->api_version, &request))
		return false;
	SlDescribeClusterResponseInit(&resp);
	resp.error_message = SL_STR_NULL;
	resp.cluster_id = SlStrFromCString(SlClusterId());
	resp.cluster_authorized_operations = PG_INT32_MIN;
	if (request.include_cluster_authorized_operations)
		resp.cluster_authorized_operations = SlClusterAuthorizedOperations();
	SL_ARRAY_ALLOC(resp.brokers, 0);

	if (req->api_version >= 1 && request.endpoint_type != ENDPOINT_BROKERS)
	{
		resp.endpoint_type = request.endpoint_type;
		if (request.endpoint_type == ENDPOINT_CONTROLLERS)
		{
			resp.error_code = SL_ERR_MISMATCHED_ENDPOINT_TYPE;
			resp.error_message = SlStrFromCString("The request was sent to an endpoint of type BROKER, "
												  "but we wanted an endpoint of type CONTROLLER");
		}
		else
		{
			resp.error_code = SL_ERR_UNSUPPORTED_ENDPOINT_TYPE;
			resp.error_message = SlStrFromCString(psprintf("Unsupported endpoint type %d",
														   request.endpoint_type));
		}
		SlDescribeClusterResponseEncode(out, req->api_version, &resp);
		return true;
	}

	SlAdvertisedEndpoint(req->session, &host, &port);
	resp.error_code = SL_ERR_NONE;
	if (SlClusterEnabled())
	{
		SlClusterNode *nodes = palloc(sizeof(SlClusterNode) * SL_MAX_NODES);
		int			nnodes = SlClusterGetNodes(nodes, SL_MAX_NODES);
		int			n = 0;

		resp.controller_id = SlClusterControllerId();
		SL_ARRAY_ALLOC(resp.brokers, nnodes);
		for (int i = 0; i < nnodes; i++)
		{
			SlDescribeClusterResponseDescribeClusterBroker *b = &resp.brokers.items[n];

			if (nodes[i].fenced)
				continue;
			SlDescribeClusterResponseDescribeClusterBrokerInit(b);
			b->broker_id = nodes[i].node_id;
			/* this node as the client's listener advertises it */
			b->host = SlStrFromCString(nodes[i].node_id == sl_node_id ? host :
									   pstrdup(nodes[i].kafka_host));
			b->port = nodes[i].node_id == sl_node_id ? port : nodes[i].kafka_port;
			b->rack = nodes[i].rack[0] ? SlStrFromCString(pstrdup(nodes[i].rack)) : SL_STR_NULL;
			n++;
		}
		resp.brokers.n = n;
		SlDescribeClusterResponseEncode(out, req->api_version, &resp);
		return true;
	}
	resp.controller_id = sl_node_id;
	SL_ARRAY_ALLOC(resp.brokers, 1);
	SlDescribeClusterResponseDescribeClusterBrokerInit(&resp.brokers.items[0]);
	resp.brokers.items[0].broker_id = sl_node_id;
	resp.brokers.items[0].host = SlStrFromCString(host);
	resp.brokers.items[0].port = port;
	resp.brokers.items[0].rack = SL_STR_NULL;
	SlDescribeClusterResponseEncode(out, req->api_version, &resp);
	return true;
}
