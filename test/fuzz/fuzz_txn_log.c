/*
 * Fuzz target: the records of __transaction_state
 * (src/protocol/txn_log_records.c), which a restarted node reads from its
 * log and a follower from its leader's.
 *
 * The first byte chooses the codec (even: TransactionLogKey, odd:
 * TransactionLogValue); the rest is decoded from an exactly sized copy.
 * When it is accepted, the transactional id must lie inside the input, the
 * counts must fit in it, and the record encoded again must decode to the
 * same fields (a value's null topic array comes back empty, and a topic
 * name is compared up to its first NUL byte, as the coordinator keeps it).
 * Every allocation the decoder made, accepted or not, is freed.
 */
#include "fuzz_common.h"

#include "streamlog/protocol/txn_log_records.h"

FUZZ_COMMON_INITIALIZE()

static void
free_value(SlTxnLogValue *v)
{
	for (int32 i = 0; v->topics != NULL && i < v->ntopics; i++)
	{
		if (v->topics[i].topic)
			pfree((char *) v->topics[i].topic);
		if (v->topics[i].partitions)
			pfree((int32 *) v->topics[i].partitions);
	}
	if (v->topics)
		pfree((SlTxnLogTopic *) v->topics);
}

static void
fuzz_key(const uint8 *copy, size_t size)
{
	SlStr		id;
	StringInfoData buf;
	const char *err = SlDecodeTxnLogKey(copy, size, &id);

	FUZZ_EXPECT(err == NULL, err);
	if (err != NULL)
		return;
	FUZZ_CHECK(id.len >= 0 && (size_t) id.len + 4 == size);
	FUZZ_CHECK(fuzz_within((const uint8 *) id.data, id.len, copy, copy + size));
	fuzz_touch(id.data, id.len, 0);
	/* a key without NUL bytes is encoded back to the same bytes */
	if (memchr(id.data, 0, id.len) == NULL)
	{
		char	   *s = pnstrdup(id.data, id.len);

		initStringInfo(&buf);
		FUZZ_CHECK(SlEncodeTxnLogKey(&buf, s) == NULL);
		FUZZ_CHECK((size_t) buf.len == size && memcmp(buf.data, copy, size) == 0);
		pfree(buf.data);
		pfree(s);
	}
}

static void
fuzz_value(const uint8 *copy, size_t size)
{
	SlTxnLogValue v;
	SlTxnLogValue again;
	StringInfoData buf;
	int64		npartitions = 0;
	const char *err = SlDecodeTxnLogValue(copy, size, &v);

	FUZZ_EXPECT(err == NULL, err);
	if (err != NULL)
	{
		free_value(&v);
		return;
	}
	FUZZ_CHECK(v.ntopics >= 0);
	FUZZ_CHECK(v.ntopics == 0 || v.topics != NULL);
	for (int32 i = 0; i < v.ntopics; i++)
	{
		FUZZ_CHECK(v.topics[i].topic != NULL);
		FUZZ_CHECK(v.topics[i].npartitions >= 0);
		FUZZ_CHECK(v.topics[i].npartitions == 0 || v.topics[i].partitions != NULL);
		fuzz_touch(v.topics[i].partitions, sizeof(int32) * v.topics[i].npartitions, 0);
		npartitions += v.topics[i].npartitions;
	}
	/* every topic took 6 bytes at least, every partition 4 */
	FUZZ_CHECK((int64) v.ntopics * 6 + npartitions * 4 <= (int64) size);

	initStringInfo(&buf);
	FUZZ_CHECK(SlEncodeTxnLogValue(&buf, &v) == NULL);
	FUZZ_CHECK(SlDecodeTxnLogValue((const uint8 *) buf.data, buf.len, &again) == NULL);
	FUZZ_CHECK(again.producer_id == v.producer_id);
	FUZZ_CHECK(again.producer_epoch == v.producer_epoch);
	FUZZ_CHECK(again.timeout_ms == v.timeout_ms);
	FUZZ_CHECK(again.status == v.status);
	FUZZ_CHECK(again.last_update_ms == v.last_update_ms);
	FUZZ_CHECK(again.start_ms == v.start_ms);
	FUZZ_CHECK(again.ntopics == v.ntopics);
	for (int32 i = 0; i < v.ntopics; i++)
	{
		FUZZ_CHECK(strcmp(again.topics[i].topic, v.topics[i].topic) == 0);
		FUZZ_CHECK(again.topics[i].npartitions == v.topics[i].npartitions);
		FUZZ_CHECK(v.topics[i].npartitions == 0 ||
				   memcmp(again.topics[i].partitions, v.topics[i].partitions,
						  sizeof(int32) * v.topics[i].npartitions) == 0);
	}
	free_value(&again);
	pfree(buf.data);
	free_value(&v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8	   *copy;

	if (size < 1)
		return 0;
	copy = fuzz_copy(data + 1, size - 1);
	if (data[0] % 2 == 0)
		fuzz_key(copy, size - 1);
	else
		fuzz_value(copy, size - 1);
	free(copy);
	return 0;
}
