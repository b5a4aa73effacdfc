/*
 * The transaction APIs (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
 * WriteTxnMarkers, TxnOffsetCommit) until Kafka transactions exist: not
 * advertised, so clients do not send them, but a client that does gets a
 * final error in every partition of its request rather than a closed
 * connection.  TRANSACTIONAL_ID_AUTHORIZATION_FAILED is what librdkafka
 * and kafkajs give up on at once; WriteTxnMarkers, which only brokers
 * send, gets CLUSTER_AUTHORIZATION_FAILED, as Kafka answers a non-broker.
 */
#include "postgres.h"

#include "streamlog/server/handlers.h"
#include "streamlog/server/kafka_errors.h"

bool
SlHandleTransactionApi(SlRequest *req, SlReader *body, SlWriter *out)
{
	int16		error = req->api_key == SL_API_WRITE_TXN_MARKERS ?
		SL_ERR_CLUSTER_AUTHORIZATION_FAILED : SL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;

	return SlErrorResponseEncode(body, req->api_key, req->api_version, error,
								 SlStrFromCString(SL_TRANSACTIONS_UNSUPPORTED), out);
}
