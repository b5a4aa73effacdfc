/*-------------------------------------------------------------------------
 * coordinator_cluster.h
 *	  The transaction coordinator on a cluster (README, "Transactions on a
 *	  cluster"): which node coordinates an id, and how a transaction whose
 *	  Prepare state is stored becomes Complete there.
 *
 * As Kafka: the coordinator of a transactional id is the leader of the
 * id's partition of __transaction_state (replicated, created by the
 * controller at the first FindCoordinator for a transactional id).  EndTxn
 * stores PrepareCommit/PrepareAbort and answers; the coordinator's worker
 * (bgworkers/txn_coordinator_worker.c) then has every partition's leader
 * write the marker and waits for their in-sync replicas, and only then
 * stores CompleteCommit/CompleteAbort; meanwhile the id's producer gets
 * CONCURRENT_TRANSACTIONS, which clients retry.  A marker that fails
 * (leader away, moved, timeout) is retried on the next pass, on whoever
 * leads the partition then.
 *
 * IDENTIFICATION
 *	  src/include/streamlog/server/txn/coordinator_cluster.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_SERVER_TXN_COORDINATOR_CLUSTER_H
#define SL_SERVER_TXN_COORDINATOR_CLUSTER_H

#include "postgres.h"

#include "nodes/pg_list.h"

/*
 * The node that coordinates transactional_id: the leader of its partition
 * of __transaction_state; -1 while none (the topic is being created, or
 * the partition has no leader).  Standalone: this node.
 */
extern int32 SlTxnCoordinatorNode(const char *transactional_id);

/*
 * Can this node answer for transactional_id now?  0 if so (always
 * standalone); NOT_COORDINATOR if another node (or none) leads its
 * partition; COORDINATOR_LOAD_IN_PROGRESS while this node, its new
 * leader, loads the partition (the worker is woken for it).
 */
extern int16 SlTxnCoordinatorError(const char *transactional_id);

/* Ask for __transaction_state in the background; true if it exists */
extern bool SlTxnStateTopicReady(void);

/*
 * The ids in a Prepare state that this node coordinates (loaded), in the
 * caller's transaction; palloc'd strings
 */
extern List *SlTxnCompletionsDue(void);

/*
 * What completing one id takes: its producer, the kind of marker, the
 * coordinator's epoch and the partitions, read in the caller's
 * transaction.  False if the id is no longer in a Prepare state here.
 */
typedef struct SlTxnCompletion
{
	int64		producer_id;
	int16		producer_epoch;
	int8		state;			/* SL_TXN_PREPARE_COMMIT or _ABORT */
	int32		coordinator_epoch;
	int			npartitions;
	int32	   *topic_ids;
	int32	   *partitions;
	/* the id's partition of __transaction_state and its log end at the plan */
	int32		state_topic_id;
	int32		state_partition;
	int64		state_log_end;
} SlTxnCompletion;

extern bool SlTxnCompletionPlan(const char *transactional_id, SlTxnCompletion *plan);

/*
 * Once the in-sync replicas of __transaction_state hold the Prepare state
 * (never a marker before), have the marker of every partition of plan
 * written by its leader and wait for their in-sync replicas.  Manages its own transactions (a marker
 * must be committed before its replicas are waited for): call it outside
 * one.  False (logged) if one did not get there: the next pass retries
 * them all (a marker written twice closes nothing the second time).
 */
extern bool SlTxnDeliverMarkers(const SlTxnCompletion *plan);

/*
 * In the caller's transaction: store Complete for the id if it is still in
 * plan's Prepare state with plan's producer.  False otherwise.
 */
extern bool SlTxnCompletionFinish(const char *transactional_id, const SlTxnCompletion *plan);

/*
 * The loads and unloads of __transaction_state's partitions as this
 * node's leaderships say, each in a transaction of its own: call outside
 * one.  Returns how many partitions changed.
 */
extern int	SlTxnCoordinatorSyncLoads(void);

/* Close this process's links to other nodes (after an error) */
extern void SlTxnCoordinatorDisconnect(void);

#endif							/* SL_SERVER_TXN_COORDINATOR_CLUSTER_H */
