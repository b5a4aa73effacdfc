/*-------------------------------------------------------------------------
 * txn_state.h
 *	  Durable state of the transaction coordinator: one row of
 *	  streamlog.txn_state per transactional id, and the same state as
 *	  Kafka's TransactionLog records in __transaction_state, written in the
 *	  same transaction (storage/txn_state.c).
 *
 * The coordinator (server/txn/) decides; this module stores.  A change is
 * durable when the caller's transaction commits, and vanishes with its
 * rollback, record and row alike.
 *
 * IDENTIFICATION
 *	  src/include/streamlog/storage/txn_state.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_STORAGE_TXN_STATE_H
#define SL_STORAGE_TXN_STATE_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#define SL_TRANSACTION_STATE_TOPIC_NAME "__transaction_state"

/* The longest transactional id (Kafka's strings are int16-length) */
#define SL_TRANSACTIONAL_ID_MAX 32767

/* One transactional id's row; state uses Kafka's status numbers */
typedef struct SlTxnStateRow
{
	int64		producer_id;
	int64		last_producer_id;
	int16		producer_epoch;
	int16		last_producer_epoch;
	int32		timeout_ms;
	int8		state;
	int32		npartitions;
	int32	   *topic_ids;		/* [npartitions] */
	int32	   *partitions;		/* [npartitions] */
	int32		ngroups;
	char	  **groups;			/* [ngroups]: groups of AddOffsetsToTxn */
	TimestampTz started_at;		/* 0: no transaction started */
	TimestampTz updated_at;
} SlTxnStateRow;

/*
 * Take the id's transition lock until the transaction ends: one request
 * at a time changes an id (Kafka's pending transition).  Never waits:
 * false if another transaction holds it (the caller answers
 * CONCURRENT_TRANSACTIONS, which clients retry).
 */
extern bool SlTxnStateTryLock(const char *transactional_id);

/* The id's row, palloc'd in the caller's context; false if none */
extern bool SlTxnStateRead(const char *transactional_id, SlTxnStateRow *row);

/*
 * Store the id's row (updated_at is set to now) and buffer its
 * __transaction_state record, creating that topic at first use.
 */
extern void SlTxnStateWrite(const char *transactional_id, SlTxnStateRow *row);

/*
 * The row alone, as a load from __transaction_state found it (no record:
 * the log holds it already), or its removal: txn_state_load.c
 */
extern void SlTxnStateRestore(const char *transactional_id, const SlTxnStateRow *row);
extern void SlTxnStateForget(const char *transactional_id);

/* Remove the id: its row, and a tombstone for its record */
extern void SlTxnStateRemove(const char *transactional_id);

/*
 * Ids with work for the coordinator's periodic pass: an Ongoing
 * transaction older than its timeout, a Prepare state (markers not all
 * written), or no transaction (Empty, Complete*) and idle longer than
 * expiration_ms.  Strings palloc'd in the caller's context.
 */
extern List *SlTxnStateDue(TimestampTz now, int64 expiration_ms);

/*
 * Is there an id whose producer is (producer_id, producer_epoch), in the
 * given state, with the partition in its transaction?  If so, its row is
 * locked FOR SHARE until the caller's transaction ends: Produce's check of
 * a transactional batch holds until the batch is appended, so that an
 * EndTxn or a fencing InitProducerId changing the row waits for it and
 * its marker comes after the batch (KIP-890's verification).  One that
 * was changing the row meanwhile is waited for, and its result is what
 * the check sees.
 */
extern bool SlTxnStateProducerHolds(int64 producer_id, int16 producer_epoch, int8 state,
									int32 topic_id, int32 partition);

/*
 * Every transactional id, in order (ListTransactions); strings palloc'd
 * in the caller's context
 */
extern List *SlTxnStateIds(void);

/* The partition of __transaction_state that holds an id */
extern int32 SlTxnStatePartition(const char *transactional_id);

/*
 * Does this node's coordinator hold the partition in a transaction of the
 * producer id that is open or being ended (Ongoing, PrepareCommit,
 * PrepareAbort)?  Its transactional id (palloc'd) if so, else NULL.  Locks
 * the producer's rows FOR SHARE until the caller's transaction ends, after
 * waiting for a coordinator call changing them: a coordinator call on the
 * id meanwhile waits in turn.  For abort_transaction(), which may abort
 * only what no coordinator will end.
 */
extern char *SlTxnStateCoordinatorHolds(int64 producer_id, int32 topic_id, int32 partition);

#endif							/* SL_STORAGE_TXN_STATE_H */
