/*
 * The transaction coordinator's pure parts: __transaction_state records
 * against bytes worked out by hand from Kafka's TransactionLog schemas,
 * decoding of hostile bytes, and the state machine's answers to each
 * request in each state, as Kafka 3.9's TransactionCoordinator gives them.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/protocol/txn_log_records.h"
#include "streamlog/server/txn/txn_machine.h"
#include "unit.h"
#include "unit_hex.h"

static void
test_key(void)
{
	StringInfoData buf;
	SlStr		id;

	initStringInfo(&buf);
	CHECK(SlEncodeTxnLogKey(&buf, "tx-1") == NULL);
	/* version 0, string length 4, "tx-1" */
	CHECK_HEX(&buf, "00000004" "74782d31");
	CHECK(SlDecodeTxnLogKey((uint8 *) buf.data, buf.len, &id) == NULL);
	CHECK_EQ_INT(id.len, 4);
	CHECK(memcmp(id.data, "tx-1", 4) == 0);
	/* A key of another version, a short one, trailing bytes */
	CHECK(SlDecodeTxnLogKey((const uint8 *) "\x00\x01\x00\x00", 4, &id) != NULL);
	CHECK(SlDecodeTxnLogKey((const uint8 *) "\x00\x00\x00\x05tx", 6, &id) != NULL);
	CHECK(SlDecodeTxnLogKey((const uint8 *) "\x00\x00\x00\x00\x01", 5, &id) != NULL);
	CHECK(SlDecodeTxnLogKey(NULL, 0, &id) != NULL);
	pfree(buf.data);
}

static void
test_value(void)
{
	StringInfoData buf;
	int32		parts[] = {0, 2};
	SlTxnLogTopic topics[] = {{"t", 2, parts}};
	SlTxnLogValue v = {
		.producer_id = 7, .producer_epoch = 3, .timeout_ms = 60000,
		.status = SL_TXN_ONGOING, .ntopics = 1, .topics = topics,
		.last_update_ms = 1000, .start_ms = 900
	};
	SlTxnLogValue d;

	initStringInfo(&buf);
	CHECK(SlEncodeTxnLogValue(&buf, &v) == NULL);
	CHECK_HEX(&buf,
			  "0000"				/* version */
			  "0000000000000007"	/* producer id */
			  "0003"				/* epoch */
			  "0000ea60"			/* timeout 60000 */
			  "01"					/* Ongoing */
			  "00000001" "0001" "74" "00000002" "00000000" "00000002"
			  "00000000000003e8"	/* last update */
			  "0000000000000384");	/* start */
	CHECK(SlDecodeTxnLogValue((uint8 *) buf.data, buf.len, &d) == NULL);
	CHECK_EQ_INT(d.producer_id, 7);
	CHECK_EQ_INT(d.producer_epoch, 3);
	CHECK_EQ_INT(d.timeout_ms, 60000);
	CHECK_EQ_INT(d.status, SL_TXN_ONGOING);
	CHECK_EQ_INT(d.ntopics, 1);
	CHECK(strcmp(d.topics[0].topic, "t") == 0);
	CHECK_EQ_INT(d.topics[0].npartitions, 2);
	CHECK_EQ_INT(d.topics[0].partitions[1], 2);
	CHECK_EQ_INT(d.last_update_ms, 1000);
	CHECK_EQ_INT(d.start_ms, 900);

	/* Every truncation of it is refused, never read past its end */
	for (int n = 0; n < buf.len; n++)
	{
		uint8	   *copy = palloc(n + 1);

		memcpy(copy, buf.data, n);
		CHECK(SlDecodeTxnLogValue(copy, n, &d) != NULL);
		pfree(copy);
	}

	/* Empty: no partitions, an empty array */
	resetStringInfo(&buf);
	v.status = SL_TXN_EMPTY;
	v.ntopics = 0;
	v.topics = NULL;
	CHECK(SlEncodeTxnLogValue(&buf, &v) == NULL);
	CHECK(SlDecodeTxnLogValue((uint8 *) buf.data, buf.len, &d) == NULL);
	CHECK_EQ_INT(d.ntopics, 0);

	/* A huge claimed count of topics is refused at once */
	{
		uint8		bad[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
		0, 1, 0x7f, 0xff, 0xff, 0xff};

		CHECK(SlDecodeTxnLogValue(bad, sizeof(bad), &d) != NULL);
	}
	pfree(buf.data);
}

static void
test_partition_for(void)
{
	/* Utils.abs(transactionalId.hashCode) % 50, as for group ids */
	CHECK_EQ_INT(SlTxnLogPartitionFor("hello", 50), 22);
	CHECK_EQ_INT(SlTxnLogPartitionFor("my-group", 50), 12);
	CHECK_EQ_INT(SlTxnLogPartitionFor("polygenelubricants", 50), 0);
}

static SlTxnMeta
meta(int64 id, int16 epoch, SlTxnState state)
{
	SlTxnMeta	m = {id, -1, epoch, -1, state};

	return m;
}

static void
test_init(void)
{
	SlTxnInitDecision d;
	SlTxnMeta	m;

	/* A fresh id: epoch 0 */
	m = meta(5, -1, SL_TXN_EMPTY);
	SlTxnDecideInit(&m, -1, -1, &d);
	CHECK_EQ_INT(d.action, SL_TXN_INIT_BUMP);
	CHECK_EQ_INT(d.next.producer_epoch, 0);
	CHECK_EQ_INT(d.next.state, SL_TXN_EMPTY);

	/* Each init bumps, from Empty and from both Complete states */
	m = meta(5, 3, SL_TXN_COMPLETE_COMMIT);
	SlTxnDecideInit(&m, -1, -1, &d);
	CHECK_EQ_INT(d.action, SL_TXN_INIT_BUMP);
	CHECK_EQ_INT(d.next.producer_epoch, 4);
	CHECK_EQ_INT(d.next.producer_id, 5);
	CHECK_EQ_INT(d.next.state, SL_TXN_EMPTY);

	/* An open transaction: fenced with the next epoch, aborted, retry */
	m = meta(5, 3, SL_TXN_ONGOING);
	SlTxnDecideInit(&m, -1, -1, &d);
	CHECK_EQ_INT(d.action, SL_TXN_INIT_FENCE_AND_ABORT);
	CHECK_EQ_INT(d.error, SL_ERR_CONCURRENT_TRANSACTIONS);
	CHECK_EQ_INT(d.next.producer_epoch, 4);

	/* Markers pending */
	m = meta(5, 3, SL_TXN_PREPARE_ABORT);
	SlTxnDecideInit(&m, -1, -1, &d);
	CHECK_EQ_INT(d.action, SL_TXN_INIT_FAIL);
	CHECK_EQ_INT(d.error, SL_ERR_CONCURRENT_TRANSACTIONS);

	/* Exhausted epoch: a new id */
	m = meta(5, PG_INT16_MAX - 1, SL_TXN_EMPTY);
	SlTxnDecideInit(&m, -1, -1, &d);
	CHECK_EQ_INT(d.action, SL_TXN_INIT_ROTATE);
	CHECK_EQ_INT(d.next.producer_epoch, 0);
	CHECK_EQ_INT(d.next.last_producer_id, 5);

	/* KIP-360: the producer names its id and epoch */
	m = meta(5, 3, SL_TXN_EMPTY);
	SlTxnDecideInit(&m, 5, 3, &d);
	CHECK_EQ_INT(d.action, SL_TXN_INIT_BUMP);
	CHECK_EQ_INT(d.next.producer_epoch, 4);
	CHECK_EQ_INT(d.next.last_producer_epoch, 3);
	/* ... and asks again, not having seen the answer: the same epoch */
	m = d.next;
	SlTxnDecideInit(&m, 5, 3, &d);
	CHECK_EQ_INT(d.action, SL_TXN_INIT_RETURN);
	/* An older epoch, or another id: fenced */
	SlTxnDecideInit(&m, 5, 1, &d);
	CHECK_EQ_INT(d.action, SL_TXN_INIT_FAIL);
	CHECK_EQ_INT(d.error, SL_ERR_PRODUCER_FENCED);
	SlTxnDecideInit(&m, 9, 4, &d);
	CHECK_EQ_INT(d.error, SL_ERR_PRODUCER_FENCED);
	/* A fresh id takes any producer recovering from UNKNOWN_PRODUCER_ID */
	m = meta(6, -1, SL_TXN_EMPTY);
	SlTxnDecideInit(&m, 9, 4, &d);
	CHECK_EQ_INT(d.action, SL_TXN_INIT_BUMP);
	CHECK_EQ_INT(d.next.producer_epoch, 0);

	/* Never served */
	m = meta(5, 3, SL_TXN_DEAD);
	SlTxnDecideInit(&m, -1, -1, &d);
	CHECK_EQ_INT(d.action, SL_TXN_INIT_FAIL);
}

static void
test_add_partitions(void)
{
	SlTxnMeta	m = meta(5, 3, SL_TXN_EMPTY);

	CHECK_EQ_INT(SlTxnCheckAddPartitions(NULL, 5, 3), SL_ERR_INVALID_PRODUCER_ID_MAPPING);
	CHECK_EQ_INT(SlTxnCheckAddPartitions(&m, 6, 3), SL_ERR_INVALID_PRODUCER_ID_MAPPING);
	CHECK_EQ_INT(SlTxnCheckAddPartitions(&m, 5, 2), SL_ERR_PRODUCER_FENCED);
	CHECK_EQ_INT(SlTxnCheckAddPartitions(&m, 5, 3), SL_ERR_NONE);
	m.state = SL_TXN_ONGOING;
	CHECK_EQ_INT(SlTxnCheckAddPartitions(&m, 5, 3), SL_ERR_NONE);
	m.state = SL_TXN_COMPLETE_ABORT;
	CHECK_EQ_INT(SlTxnCheckAddPartitions(&m, 5, 3), SL_ERR_NONE);
	m.state = SL_TXN_PREPARE_COMMIT;
	CHECK_EQ_INT(SlTxnCheckAddPartitions(&m, 5, 3), SL_ERR_CONCURRENT_TRANSACTIONS);
	m.state = SL_TXN_DEAD;
	CHECK_EQ_INT(SlTxnCheckAddPartitions(&m, 5, 3), SL_ERR_INVALID_TXN_STATE);
}

static void
test_end(void)
{
	SlTxnMeta	m = meta(5, 3, SL_TXN_ONGOING);
	int16		error;

	CHECK_EQ_INT(SlTxnDecideEnd(NULL, 5, 3, true, &error), SL_TXN_END_FAIL);
	CHECK_EQ_INT(error, SL_ERR_INVALID_PRODUCER_ID_MAPPING);
	CHECK_EQ_INT(SlTxnDecideEnd(&m, 5, 2, true, &error), SL_TXN_END_FAIL);
	CHECK_EQ_INT(error, SL_ERR_PRODUCER_FENCED);
	CHECK_EQ_INT(SlTxnDecideEnd(&m, 5, 3, true, &error), SL_TXN_END_PREPARE);
	CHECK_EQ_INT(SlTxnDecideEnd(&m, 5, 3, false, &error), SL_TXN_END_PREPARE);

	/* Nothing to end */
	m.state = SL_TXN_EMPTY;
	CHECK_EQ_INT(SlTxnDecideEnd(&m, 5, 3, true, &error), SL_TXN_END_FAIL);
	CHECK_EQ_INT(error, SL_ERR_INVALID_TXN_STATE);

	/* Retries of the same outcome succeed, the other outcome does not */
	m.state = SL_TXN_COMPLETE_COMMIT;
	CHECK_EQ_INT(SlTxnDecideEnd(&m, 5, 3, true, &error), SL_TXN_END_DONE);
	CHECK_EQ_INT(SlTxnDecideEnd(&m, 5, 3, false, &error), SL_TXN_END_FAIL);
	CHECK_EQ_INT(error, SL_ERR_INVALID_TXN_STATE);
	m.state = SL_TXN_COMPLETE_ABORT;
	CHECK_EQ_INT(SlTxnDecideEnd(&m, 5, 3, false, &error), SL_TXN_END_DONE);
	CHECK_EQ_INT(SlTxnDecideEnd(&m, 5, 3, true, &error), SL_TXN_END_FAIL);

	/* Markers being written */
	m.state = SL_TXN_PREPARE_COMMIT;
	CHECK_EQ_INT(SlTxnDecideEnd(&m, 5, 3, true, &error), SL_TXN_END_FAIL);
	CHECK_EQ_INT(error, SL_ERR_CONCURRENT_TRANSACTIONS);
	CHECK_EQ_INT(SlTxnDecideEnd(&m, 5, 3, false, &error), SL_TXN_END_FAIL);
	CHECK_EQ_INT(error, SL_ERR_INVALID_TXN_STATE);
}

static void
test_names(void)
{
	CHECK(strcmp(SlTxnStateName(SL_TXN_PREPARE_COMMIT), "PrepareCommit") == 0);
	CHECK(strcmp(SlTxnStateName(99), "Unknown") == 0);
	CHECK(strcmp(SlTxnStateName(-1), "Unknown") == 0);
	CHECK_EQ_INT(SlTxnFenceEpoch(&(SlTxnMeta) {1, -1, PG_INT16_MAX - 1, -1, SL_TXN_ONGOING}),
				 PG_INT16_MAX - 1);
}

int
main(void)
{
	test_key();
	test_value();
	test_partition_for();
	test_init();
	test_add_partitions();
	test_end();
	test_names();
	return UNIT_DONE();
}
