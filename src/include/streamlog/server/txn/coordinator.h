/*-------------------------------------------------------------------------
 * coordinator.h
 *	  Kafka's transaction coordinator (KIP-98): InitProducerId with a
 *	  transactional id, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, and
 *	  the periodic pass that aborts timed-out transactions and forgets
 *	  idle ids.  The handlers decode and encode; this decides (with
 *	  txn_machine.h) and stores (storage/txn_state.h), and writes the
 *	  markers through storage/transactions.h.
 *
 * Every call runs in the caller's transaction and changes one id under
 * its transition lock, taken without waiting: a second request for the
 * same id meanwhile is answered CONCURRENT_TRANSACTIONS, which clients
 * retry.  Standalone, EndTxn writes PrepareCommit/PrepareAbort, every
 * marker and CompleteCommit/CompleteAbort in that one transaction, so a
 * crash at any point leaves the transaction either whole or not ended at
 * all (its timeout then aborts it).  On a cluster it writes the Prepare
 * state only; the coordinator's worker writes the markers on the
 * partitions' leaders and then Complete (coordinator_cluster.h).
 *
 * IDENTIFICATION
 *	  src/include/streamlog/server/txn/coordinator.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_SERVER_TXN_COORDINATOR_H
#define SL_SERVER_TXN_COORDINATOR_H

#include "postgres.h"

/*
 * Does this node serve transactional producers?  streamlog.
 * transaction_coordinator is on.  On a cluster each id is this node's only
 * while it leads the id's partition of __transaction_state: the calls
 * below answer NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS otherwise
 * (coordinator_cluster.h).
 */
extern bool SlTxnCoordinatorEnabled(void);

/* A partition of a transaction */
typedef struct SlTxnPartitionRef
{
	int32		topic_id;
	int32		partition;
} SlTxnPartitionRef;

/*
 * Each returns a Kafka error code (0 = NONE).  InitProducerId sets
 * *producer_id and *producer_epoch (-1 on error).
 */
extern int16 SlTxnInitProducerId(const char *transactional_id, int32 timeout_ms,
								 int64 expected_id, int16 expected_epoch,
								 int64 *producer_id, int16 *producer_epoch);
extern int16 SlTxnAddPartitions(const char *transactional_id, int64 producer_id,
								int16 producer_epoch, const SlTxnPartitionRef *parts,
								int nparts);
extern int16 SlTxnAddOffsets(const char *transactional_id, int64 producer_id,
							 int16 producer_epoch, const char *group_id);
/*
 * TxnOffsetCommit's check: the producer is the id's current one and its
 * open transaction holds the group (AddOffsetsToTxn came first).  Read
 * only: the offsets are staged by the caller (storage/txn_offsets.h).
 */
extern int16 SlTxnCheckOffsetCommit(const char *transactional_id, int64 producer_id,
									int16 producer_epoch, const char *group_id);
/*
 * Produce's check of a transactional batch (KIP-890 part 1): does the
 * producer id, at this epoch, have an open transaction holding the
 * partition?  Read only, with the committed state.
 */
extern bool SlTxnPartitionInTransaction(int64 producer_id, int16 producer_epoch,
										int32 topic_id, int32 partition);
extern int16 SlTxnEnd(const char *transactional_id, int64 producer_id,
					  int16 producer_epoch, bool commit);

/*
 * The periodic pass, in the caller's transaction: abort Ongoing
 * transactions past their timeout (fencing the producer's epoch, as
 * Kafka does), finish transactions left in a Prepare state, and remove
 * ids idle longer than streamlog.transactional_id_expiration.  Ids busy
 * in another transaction wait for the next pass.  Returns how many ids it
 * changed.
 */
extern int	SlTxnExpire(void);

#endif							/* SL_SERVER_TXN_COORDINATOR_H */
