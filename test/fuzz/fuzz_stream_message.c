/*
 * Fuzz target: a follower's decoder of the replication stream's messages
 * (src/replication/stream_message.c), the bytes a leader's walsender sends
 * its apply worker.  A message the decoder accepts must re-encode to the
 * same bytes, carry a batch whose records iterate to the end (what
 * SlReplicaAppend walks next), and a commit whose end is not before its
 * start.  Nothing else may happen for any input: no crash, no read out of
 * bounds, no leak.
 */
#include "fuzz_common.h"

#include "streamlog/replication/stream_message.h"

FUZZ_COMMON_INITIALIZE()

static void
check_batch(const uint8 *data, size_t size, const SlStreamBatch *b)
{
	uint8	   *again;
	SlRecordIter it;
	SlRecord	rec;
	int32		n = 0;

	FUZZ_CHECK(SlStreamBatchMessageSize(b->len) == size);
	again = malloc(size);
	SlStreamBatchEncode(b, again);
	FUZZ_CHECK(memcmp(again, data, size) == 0);
	free(again);

	FUZZ_CHECK(b->last_offset >= b->base_offset);
	if (SlRecordIterInit(&it, b->data, b->len, true, FUZZ_MAX_DECOMPRESSED) != NULL)
	{
		SlRecordIterFree(&it);
		return;
	}
	while (SlRecordIterNext(&it, &rec))
	{
		(void) fuzz_touch(rec.value, rec.value_len, fuzz_touch(rec.key, rec.key_len, 0));
		n++;
	}
	FUZZ_CHECK(n <= it.hdr.record_count || it.error != NULL);
	SlRecordIterFree(&it);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8	   *copy = fuzz_copy(data, size);
	SlStreamMessage msg;
	const char *err = SlStreamMessageDecode(copy, size, &msg);

	FUZZ_EXPECT(err == NULL, err);
	if (err == NULL)
	{
		if (msg.type == SL_STREAM_MSG_BATCH)
			check_batch(copy, size, &msg.u.batch);
		else
		{
			uint8		again[SL_STREAM_COMMIT_SIZE];

			FUZZ_CHECK(msg.type == SL_STREAM_MSG_COMMIT);
			FUZZ_CHECK(size == SL_STREAM_COMMIT_SIZE);
			FUZZ_CHECK(msg.u.commit.end_lsn >= msg.u.commit.commit_lsn);
			SlStreamCommitEncode(&msg.u.commit, again);
			FUZZ_CHECK(memcmp(again, copy, size) == 0);
		}
	}
	free(copy);
	return 0;
}
