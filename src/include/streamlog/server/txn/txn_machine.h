/*-------------------------------------------------------------------------
 * txn_machine.h
 *	  The transaction coordinator's state machine: what each request does
 *	  to a transactional id's state, as Kafka 3.9's TransactionCoordinator
 *	  decides it.  Pure code (no storage, no ereport), unit-tested under
 *	  ASan/UBSan; server/txn/coordinator.c applies its decisions.
 *
 * A transactional id has one producer id and epoch at a time.  Its states
 * are Kafka's, with Kafka's numbers (they are written in the status byte
 * of __transaction_state records):
 *
 *	Empty --AddPartitions--> Ongoing --EndTxn--> PrepareCommit/PrepareAbort
 *	--markers written--> CompleteCommit/CompleteAbort --AddPartitions-->
 *	Ongoing ...; InitProducerId from Empty or Complete* bumps the epoch
 *	(back to Empty), from Ongoing fences the old epoch and aborts first.
 *
 * There is no pending-transition state here: every transition of one id
 * is made in one PostgreSQL transaction holding the id's row lock, so a
 * second request for the id waits for the first to commit and then sees
 * its result.
 *
 * IDENTIFICATION
 *	  src/include/streamlog/server/txn/txn_machine.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_TXN_MACHINE_H
#define SL_TXN_MACHINE_H

#include "streamlog/protocol/codec_base.h"

typedef enum SlTxnState
{
	SL_TXN_EMPTY = 0,
	SL_TXN_ONGOING = 1,
	SL_TXN_PREPARE_COMMIT = 2,
	SL_TXN_PREPARE_ABORT = 3,
	SL_TXN_COMPLETE_COMMIT = 4,
	SL_TXN_COMPLETE_ABORT = 5,
	SL_TXN_DEAD = 6,
	SL_TXN_PREPARE_EPOCH_FENCE = 7
} SlTxnState;

#define SL_TXN_STATE_MAX SL_TXN_PREPARE_EPOCH_FENCE

/* No producer id / no epoch yet, as Kafka's RecordBatch constants */
#define SL_TXN_NO_PRODUCER_ID		(-1)
#define SL_TXN_NO_PRODUCER_EPOCH	(-1)

/* The identity of a transactional id's producer, and its state */
typedef struct SlTxnMeta
{
	int64		producer_id;
	int64		last_producer_id;	/* before the last id rotation; -1 */
	int16		producer_epoch; /* -1: created, never initialised */
	int16		last_producer_epoch;	/* before the last bump; -1 */
	SlTxnState	state;
} SlTxnMeta;

/* Kafka's name of a state ("Ongoing"...); "Unknown" out of range */
extern const char *SlTxnStateName(int state);

/* Is the state one with an open or finishing transaction? */
extern bool SlTxnStateHasPartitions(SlTxnState state);

/* Kafka's isEpochExhausted: no epoch left to bump to */
extern bool SlTxnEpochExhausted(int16 epoch);

/* What InitProducerId does with an existing (or just created) id */
typedef enum SlTxnInitAction
{
	SL_TXN_INIT_FAIL,			/* answer error, change nothing */
	SL_TXN_INIT_BUMP,			/* store next, answer its id and epoch */
	SL_TXN_INIT_ROTATE,			/* a new producer id: the caller allocates it */
	SL_TXN_INIT_RETURN,			/* a retried bump: answer cur's id and epoch */
	SL_TXN_INIT_FENCE_AND_ABORT /* store next (epoch bumped), abort the
								 * open transaction, answer
								 * CONCURRENT_TRANSACTIONS */
} SlTxnInitAction;

typedef struct SlTxnInitDecision
{
	SlTxnInitAction action;
	int16		error;			/* Kafka error code for FAIL and FENCE */
	SlTxnMeta	next;			/* for BUMP, ROTATE (id to fill) and FENCE */
} SlTxnInitDecision;

/*
 * InitProducerId with a transactional id whose state is cur (producer
 * epoch -1 when just created).  expected_id/expected_epoch are the
 * request's (KIP-360, v3+), -1 when absent.
 */
extern void SlTxnDecideInit(const SlTxnMeta *cur, int64 expected_id,
							int16 expected_epoch, SlTxnInitDecision *out);

/*
 * AddPartitionsToTxn / AddOffsetsToTxn: 0 when the partitions may be
 * added (the caller then moves the state to Ongoing, unless all are in it
 * already), else the Kafka error.  cur NULL: the id is unknown.
 */
extern int16 SlTxnCheckAddPartitions(const SlTxnMeta *cur, int64 producer_id,
									 int16 producer_epoch);

/* What EndTxn does */
typedef enum SlTxnEndAction
{
	SL_TXN_END_FAIL,			/* answer error */
	SL_TXN_END_PREPARE,			/* Ongoing: prepare, write markers, complete */
	SL_TXN_END_DONE				/* a retry of the same outcome: answer NONE */
} SlTxnEndAction;

extern SlTxnEndAction SlTxnDecideEnd(const SlTxnMeta *cur, int64 producer_id,
									 int16 producer_epoch, bool commit,
									 int16 *error);

/*
 * The epoch with which the coordinator itself aborts an open transaction
 * (zombie fencing by InitProducerId, a timed-out transaction): the
 * current one bumped, so that the old producer is fenced, or the same one
 * when it is exhausted (the next InitProducerId rotates the id).
 */
extern int16 SlTxnFenceEpoch(const SlTxnMeta *cur);

#endif							/* SL_TXN_MACHINE_H */
