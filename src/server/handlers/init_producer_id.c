/*
 * InitProducerId for idempotent producers: a new producer id (never
 * reused, even across restarts: from the local sequence standalone, from
 * a block the controller allocated in cluster mode, so that no two nodes
 * hand out the same id) with epoch 0, or, when a producer
 * asks with its id and epoch (v3+, KIP-360), the same id with the next
 * epoch.  A transactional producer is served by the transaction
 * coordinator (server/txn/coordinator.c) when streamlog.
 * transaction_coordinator is on, and refused with
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED otherwise, and when the caller
 * may not WRITE the transactional id, as in Kafka; PRODUCER_FENCED (90)
 * exists from v4 on, older versions get INVALID_PRODUCER_EPOCH as Kafka
 * maps it.  An idempotent producer needs IDEMPOTENT_WRITE on the
 * cluster or WRITE on a topic (storage/authorize.h), as in Kafka 3.9;
 * CLUSTER_AUTHORIZATION_FAILED otherwise.
 */
#include "postgres.h"

#include "streamlog/metadata/producer_id_blocks.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/txn/coordinator.h"
#include "streamlog/storage/txn_state.h"

bool
SlHandleInitProducerId(SlRequest *req, SlReader *body, SlWriter *reply)
{
	/* answered after the commit, once replicated (txn_answer.c) */
	SlWriter   *out = SlTxnAnswerStart(req, body);
	SlInitProducerIdRequest request;
	SlInitProducerIdResponse resp;

	if (!SlInitProducerIdRequestDecode(body, req->api_version, &request))
		return false;
	SlInitProducerIdResponseInit(&resp);
	if (!SlStrIsNull(request.transactional_id) && SlTxnCoordinatorEnabled())
	{
		SlStr		id = request.transactional_id;

		char	   *tid = id.len > 0 && id.len <= SL_TRANSACTIONAL_ID_MAX ?
			pnstrdup(id.data, id.len) : NULL;

		if (tid == NULL || !SlMayTransactionalId(tid, SL_ACL_WRITE))
		{
			resp.error_code = tid == NULL ? SL_ERR_INVALID_REQUEST :
				SL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
			resp.producer_id = -1;
			resp.producer_epoch = -1;
		}
		else
			resp.error_code = SlTxnInitProducerId(tid,
												  request.transaction_timeout_ms,
												  request.producer_id, request.producer_epoch,
												  &resp.producer_id, &resp.producer_epoch);
		if (resp.error_code == SL_ERR_NONE)
			SlTxnAnswerWaitFor(req, tid);
		if (resp.error_code == SL_ERR_PRODUCER_FENCED && req->api_version < 4)
			resp.error_code = SL_ERR_INVALID_PRODUCER_EPOCH;
	}
	else if (!SlStrIsNull(request.transactional_id))
	{
		resp.error_code = SL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
		resp.producer_id = -1;
		resp.producer_epoch = -1;
	}
	else if (!SlMayWriteIdempotently())
	{
		resp.error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		resp.producer_id = -1;
		resp.producer_epoch = -1;
	}
	else if (request.producer_id >= 0 && request.producer_epoch >= 0 &&
			 request.producer_epoch < PG_INT16_MAX - 1)
	{
		resp.error_code = SL_ERR_NONE;
		resp.producer_id = request.producer_id;
		resp.producer_epoch = request.producer_epoch + 1;
	}
	else
	{
		char	   *message;

		resp.producer_id = SlProducerIdNext(&resp.error_code, &message);
		resp.producer_epoch = resp.producer_id >= 0 ? 0 : -1;
		if (message != NULL)
			ereport(LOG,
					(errmsg("streamlog: InitProducerId from %s: %s", req->peer, message)));
	}
	SlInitProducerIdResponseEncode(out, req->api_version, &resp);
	return true;
}
