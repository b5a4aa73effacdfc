/*
 * Kafka error codes for PostgreSQL errors: what a client is told when a
 * request, or a topic or partition inside it, fails with an ERROR.
 */
#ifndef SL_KAFKA_ERRORS_H
#define SL_KAFKA_ERRORS_H

#include "postgres.h"

/*
 * The Kafka error code for an ERROR with SQLSTATE sqlerrcode raised while
 * serving a request of api_key.  Some SQLSTATEs mean different things to
 * different APIs (a limit is MESSAGE_TOO_LARGE to Produce and
 * POLICY_VIOLATION to topic administration); anything unexpected is
 * UNKNOWN_SERVER_ERROR.
 */
extern int16 SlKafkaErrorForSqlstate(int sqlerrcode, int16 api_key);

/*
 * What transactional clients are told where the transaction coordinator
 * does not run (streamlog.transaction_coordinator off, or a cluster)
 */
#define SL_TRANSACTIONS_UNSUPPORTED \
	"Kafka transactions are not supported by this broker (streamlog: " \
	"streamlog.transaction_coordinator is off, or the node is in a cluster); " \
	"produce without transactional.id (idempotent producers are supported)"

#endif							/* SL_KAFKA_ERRORS_H */
