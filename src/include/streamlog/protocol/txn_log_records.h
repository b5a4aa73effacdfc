/*-------------------------------------------------------------------------
 * txn_log_records.h
 *	  The records of Kafka's __transaction_state topic: the key and value
 *	  of a transactional id's state, in the versions Kafka 3.9's transaction
 *	  coordinator writes, so that tools which decode that topic read ours.
 *
 *	TransactionLogKey v0	transactional id string
 *	TransactionLogValue v0	producer id int64, producer epoch int16,
 *							transaction timeout ms int32, status int8,
 *							partitions: nullable array of (topic string,
 *							partition ids array of int32), last update
 *							timestamp ms int64, start timestamp ms int64
 *
 * Version 0 is not flexible; Kafka 3.9 writes it (version 1, flexible,
 * only adds tagged fields its later releases use).  The status byte is
 * Kafka's TransactionState id (SlTxnState in server/txn/txn_machine.h uses
 * the same numbers).  A state without partitions (Empty, and the Complete
 * states once their markers are written) is written with an empty array.
 *
 * Pure codec code: no ereport, errors are returned as static strings.
 *
 * IDENTIFICATION
 *	  src/include/streamlog/protocol/txn_log_records.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_TXN_LOG_RECORDS_H
#define SL_TXN_LOG_RECORDS_H

#include "streamlog/protocol/wire.h"

#include "streamlog/protocol/codec_base.h"

#define SL_TXN_LOG_KEY_VERSION		0
#define SL_TXN_LOG_VALUE_VERSION	0

/* The partitions of one topic in a transaction */
typedef struct SlTxnLogTopic
{
	const char *topic;
	int32		npartitions;
	const int32 *partitions;
} SlTxnLogTopic;

typedef struct SlTxnLogValue
{
	int64		producer_id;
	int16		producer_epoch;
	int32		timeout_ms;
	int8		status;
	int32		ntopics;
	const SlTxnLogTopic *topics;
	int64		last_update_ms;
	int64		start_ms;		/* -1 when no transaction has started */
} SlTxnLogValue;

/*
 * Append the key or value to buf.  NULL, or a static message if a field
 * cannot be encoded (a string longer than 32767 bytes).
 */
extern const char *SlEncodeTxnLogKey(StringInfo buf, const char *transactional_id);
extern const char *SlEncodeTxnLogValue(StringInfo buf, const SlTxnLogValue *value);

/*
 * Decode a key (the transactional id is a view into buf) or a value (its
 * topics palloc'd, the strings views into buf).  NULL, or a static message
 * for bytes that are not a record Kafka writes.
 */
extern const char *SlDecodeTxnLogKey(const uint8 *buf, size_t len, SlStr *transactional_id);
extern const char *SlDecodeTxnLogValue(const uint8 *buf, size_t len, SlTxnLogValue *value);

/*
 * The partition of __transaction_state holding a transactional id, as
 * Kafka picks it: Utils.abs(transactionalId.hashCode) % partitions.
 */
extern int32 SlTxnLogPartitionFor(const char *transactional_id, int32 partitions);

#endif							/* SL_TXN_LOG_RECORDS_H */
