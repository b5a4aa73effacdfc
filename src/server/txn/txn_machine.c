/*-------------------------------------------------------------------------
 * txn_machine.c
 *	  The transaction coordinator's decisions (txn_machine.h), after
 *	  Kafka 3.9's TransactionCoordinator and TransactionMetadata.
 *
 * IDENTIFICATION
 *	  src/server/txn/txn_machine.c
 *-------------------------------------------------------------------------
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/server/txn/txn_machine.h"

static const char *const state_names[] = {
	[SL_TXN_EMPTY] = "Empty",
	[SL_TXN_ONGOING] = "Ongoing",
	[SL_TXN_PREPARE_COMMIT] = "PrepareCommit",
	[SL_TXN_PREPARE_ABORT] = "PrepareAbort",
	[SL_TXN_COMPLETE_COMMIT] = "CompleteCommit",
	[SL_TXN_COMPLETE_ABORT] = "CompleteAbort",
	[SL_TXN_DEAD] = "Dead",
	[SL_TXN_PREPARE_EPOCH_FENCE] = "PrepareEpochFence",
};

const char *
SlTxnStateName(int state)
{
	if (state < 0 || state > SL_TXN_STATE_MAX)
		return "Unknown";
	return state_names[state];
}

bool
SlTxnStateHasPartitions(SlTxnState state)
{
	return state == SL_TXN_ONGOING || state == SL_TXN_PREPARE_COMMIT ||
		state == SL_TXN_PREPARE_ABORT;
}

bool
SlTxnEpochExhausted(int16 epoch)
{
	return epoch >= PG_INT16_MAX - 1;
}

/*
 * Kafka's isValidProducerId: a request naming a producer id and epoch
 * (KIP-360) may go on if the id has never been initialised (a producer
 * recovering from UNKNOWN_PRODUCER_ID gets the fresh id), if it names the
 * current id (its epoch is checked by the bump), or if it names the id
 * before a rotation with the exhausted epoch (a retry of the rotation
 * whose answer was lost).
 */
static bool
valid_expected_id(const SlTxnMeta *cur, int64 expected_id, int16 expected_epoch)
{
	return cur->producer_epoch == SL_TXN_NO_PRODUCER_EPOCH ||
		expected_id == cur->producer_id ||
		(expected_id == cur->last_producer_id && SlTxnEpochExhausted(expected_epoch));
}

void
SlTxnDecideInit(const SlTxnMeta *cur, int64 expected_id, int16 expected_epoch,
				SlTxnInitDecision *out)
{
	bool		expected = expected_id >= 0;

	out->action = SL_TXN_INIT_FAIL;
	out->error = SL_ERR_NONE;
	out->next = *cur;
	if (expected && !valid_expected_id(cur, expected_id, expected_epoch))
	{
		out->error = SL_ERR_PRODUCER_FENCED;
		return;
	}
	switch (cur->state)
	{
		case SL_TXN_PREPARE_COMMIT:
		case SL_TXN_PREPARE_ABORT:
			/* Markers are being written: the client retries */
			out->error = SL_ERR_CONCURRENT_TRANSACTIONS;
			return;
		case SL_TXN_EMPTY:
		case SL_TXN_COMPLETE_COMMIT:
		case SL_TXN_COMPLETE_ABORT:
			out->next.state = SL_TXN_EMPTY;
			if (SlTxnEpochExhausted(cur->producer_epoch) &&
				(!expected || expected_epoch == cur->producer_epoch))
			{
				/* A new id with epoch 0; the caller fills producer_id */
				out->action = SL_TXN_INIT_ROTATE;
				out->next.last_producer_id = cur->producer_id;
				out->next.producer_epoch = 0;
				out->next.last_producer_epoch = expected ? cur->producer_epoch :
					SL_TXN_NO_PRODUCER_EPOCH;
				return;
			}
			if (!expected)
			{
				out->action = SL_TXN_INIT_BUMP;
				out->next.producer_epoch = cur->producer_epoch + 1;
				out->next.last_producer_epoch = SL_TXN_NO_PRODUCER_EPOCH;
				return;
			}
			if (cur->producer_epoch == SL_TXN_NO_PRODUCER_EPOCH ||
				expected_epoch == cur->producer_epoch)
			{
				out->action = SL_TXN_INIT_BUMP;
				out->next.producer_epoch = cur->producer_epoch + 1;
				out->next.last_producer_epoch = cur->producer_epoch;
				return;
			}
			if (expected_epoch == cur->last_producer_epoch)
			{
				/* The producer did not get the answer of the bump it asked */
				out->action = SL_TXN_INIT_RETURN;
				return;
			}
			out->error = SL_ERR_PRODUCER_FENCED;
			return;
		case SL_TXN_ONGOING:
			/* Fence the old instance, abort its transaction; then retry */
			out->action = SL_TXN_INIT_FENCE_AND_ABORT;
			out->error = SL_ERR_CONCURRENT_TRANSACTIONS;
			out->next.producer_epoch = SlTxnFenceEpoch(cur);
			/* As Kafka's fence: no retry of the old epoch's init after it */
			out->next.last_producer_epoch = SL_TXN_NO_PRODUCER_EPOCH;
			return;
		case SL_TXN_DEAD:
		case SL_TXN_PREPARE_EPOCH_FENCE:
			break;
	}
	/* Never stored for an id the coordinator serves */
	out->error = SL_ERR_INVALID_TXN_STATE;
}

/* The producer checks of every call after InitProducerId */
static int16
check_producer(const SlTxnMeta *cur, int64 producer_id, int16 producer_epoch)
{
	if (cur == NULL || cur->producer_id != producer_id)
		return SL_ERR_INVALID_PRODUCER_ID_MAPPING;
	if (cur->producer_epoch != producer_epoch)
		return SL_ERR_PRODUCER_FENCED;
	return SL_ERR_NONE;
}

int16
SlTxnCheckAddPartitions(const SlTxnMeta *cur, int64 producer_id, int16 producer_epoch)
{
	int16		error = check_producer(cur, producer_id, producer_epoch);

	if (error != SL_ERR_NONE)
		return error;
	switch (cur->state)
	{
		case SL_TXN_PREPARE_COMMIT:
		case SL_TXN_PREPARE_ABORT:
			return SL_ERR_CONCURRENT_TRANSACTIONS;
		case SL_TXN_EMPTY:
		case SL_TXN_ONGOING:
		case SL_TXN_COMPLETE_COMMIT:
		case SL_TXN_COMPLETE_ABORT:
			return SL_ERR_NONE;
		case SL_TXN_DEAD:
		case SL_TXN_PREPARE_EPOCH_FENCE:
			break;
	}
	return SL_ERR_INVALID_TXN_STATE;
}

SlTxnEndAction
SlTxnDecideEnd(const SlTxnMeta *cur, int64 producer_id, int16 producer_epoch,
			   bool commit, int16 *error)
{
	*error = check_producer(cur, producer_id, producer_epoch);
	if (*error != SL_ERR_NONE)
		return SL_TXN_END_FAIL;
	switch (cur->state)
	{
		case SL_TXN_ONGOING:
			return SL_TXN_END_PREPARE;
		case SL_TXN_COMPLETE_COMMIT:
		case SL_TXN_COMPLETE_ABORT:
			/* The retry of an EndTxn whose answer was lost */
			if (commit == (cur->state == SL_TXN_COMPLETE_COMMIT))
				return SL_TXN_END_DONE;
			break;
		case SL_TXN_PREPARE_COMMIT:
		case SL_TXN_PREPARE_ABORT:
			if (commit == (cur->state == SL_TXN_PREPARE_COMMIT))
			{
				*error = SL_ERR_CONCURRENT_TRANSACTIONS;
				return SL_TXN_END_FAIL;
			}
			break;
		case SL_TXN_EMPTY:
		case SL_TXN_DEAD:
		case SL_TXN_PREPARE_EPOCH_FENCE:
			break;
	}
	*error = SL_ERR_INVALID_TXN_STATE;
	return SL_TXN_END_FAIL;
}

int16
SlTxnFenceEpoch(const SlTxnMeta *cur)
{
	if (SlTxnEpochExhausted(cur->producer_epoch))
		return cur->producer_epoch;
	return cur->producer_epoch + 1;
}
