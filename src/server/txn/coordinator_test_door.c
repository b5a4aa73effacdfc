/*-------------------------------------------------------------------------
 * coordinator_test_door.c
 *	  A test-only SQL door to the transaction coordinator, so that
 *	  isolationtester specs can interleave its calls with each other and
 *	  with SQL (test/isolation/specs/txn_coordinator_races.spec).
 *
 * The coordinator serves Kafka requests in broker workers; each call runs
 * in the worker's transaction, as here in the caller's.  The function is
 * not part of the extension's script: a spec creates it in its setup, as
 * DESIGN.md asks of test-only functions, and only a superuser may call it.
 *
 *	streamlog_test_txn_coordinator(op text, transactional_id text,
 *								   producer_id bigint, producer_epoch smallint,
 *								   topic text, partition integer,
 *								   timeout_ms integer)
 *	RETURNS integer
 *
 * op is 'init' (InitProducerId with the timeout), 'add' (AddPartitionsToTxn
 * of one partition), 'commit' or 'abort' (EndTxn): each returns the Kafka
 * error code it answers.  'expire' runs the periodic pass and returns how
 * many ids it changed.  'verify' is Produce's check of a transactional
 * batch for the partition (1 if the producer may write it, else 0), which
 * a spec follows with streamlog._txn_test_append in the same transaction,
 * as a Produce request appends after its check.
 *
 * IDENTIFICATION
 *	  src/server/txn/coordinator_test_door.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "streamlog/server/txn/coordinator.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog_test_txn_coordinator);

Datum
streamlog_test_txn_coordinator(PG_FUNCTION_ARGS)
{
	char	   *op;
	char	   *tid;
	int64		producer_id;
	int16		producer_epoch;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may call the transaction coordinator's test door"),
				 errhint("Kafka's transactional producers call the coordinator.")));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("op must not be NULL")));
	op = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(op, "expire") == 0)
		PG_RETURN_INT32(SlTxnExpire());
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("op \"%s\" needs a transactional id, a producer id and an epoch", op)));
	tid = text_to_cstring(PG_GETARG_TEXT_PP(1));
	producer_id = PG_GETARG_INT64(2);
	producer_epoch = PG_GETARG_INT16(3);
	if (strcmp(op, "init") == 0)
	{
		int64		pid;
		int16		epoch;

		int32		timeout_ms = PG_NARGS() > 6 && !PG_ARGISNULL(6) ? PG_GETARG_INT32(6) : 60000;

		PG_RETURN_INT32(SlTxnInitProducerId(tid, timeout_ms, -1, -1, &pid, &epoch));
	}
	if (strcmp(op, "commit") == 0 || strcmp(op, "abort") == 0)
		PG_RETURN_INT32(SlTxnEnd(tid, producer_id, producer_epoch, strcmp(op, "commit") == 0));
	if (strcmp(op, "add") == 0 || strcmp(op, "verify") == 0)
	{
		SlTxnPartitionRef ref;
		const SlTopic *topic;

		if (PG_ARGISNULL(4) || PG_ARGISNULL(5))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("op \"%s\" needs a topic and a partition", op)));
		topic = SlTopicLookup(text_to_cstring(PG_GETARG_TEXT_PP(4)), false);
		ref.topic_id = topic->topic_id;
		ref.partition = PG_GETARG_INT32(5);
		SlTopicCheckPartition(topic, ref.partition);
		if (strcmp(op, "verify") == 0)
			PG_RETURN_INT32(SlTxnPartitionInTransaction(producer_id, producer_epoch,
														ref.topic_id, ref.partition) ? 1 : 0);
		PG_RETURN_INT32(SlTxnAddPartitions(tid, producer_id, producer_epoch, &ref, 1));
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown op \"%s\"", op),
			 errhint("Use init, add, verify, commit, abort or expire.")));
	PG_RETURN_NULL();
}
