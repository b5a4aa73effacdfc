/*
 * Unit tests of the replication stream's messages (src/replication/
 * stream_message.c): batch and commit messages round-trip, and the decoder
 * refuses every message whose parts disagree, truncations and single-byte
 * corruptions included.
 */
#include "streamlog/protocol/codec_base.h"

#include "unit.h"

#include "streamlog/protocol/records.h"
#include "streamlog/replication/stream_message.h"

/* A sealed batch of n records at base_offset, stamped with epoch */
static void
make_batch(StringInfo out, int n, int64 base_offset, int32 epoch)
{
	SlBatchBuilder b;

	SlBatchBuilderInit(&b, SL_COMPRESSION_NONE);
	for (int i = 0; i < n; i++)
	{
		char		key[16];
		char		value[32];

		snprintf(key, sizeof(key), "k%d", i);
		snprintf(value, sizeof(value), "value %d", i);
		SlBatchBuilderAdd(&b, 1700000000000 + i, (const uint8 *) key, strlen(key),
						  (const uint8 *) value, strlen(value), NULL, 0);
	}
	resetStringInfo(out);
	CHECK_NULL_ERR(SlBatchBuilderFinish(&b, out));
	SlStoreInt32((uint8 *) out->data + SL_BATCH_OFFSET_LEADER_EPOCH, epoch);
	SlBatchSeal((uint8 *) out->data, out->len, base_offset, -1);
	SlBatchBuilderFree(&b);
}

/* A whole 'B' message for batch (malloc'd) */
static uint8 *
encode_batch(const SlStreamBatch *batch, size_t *len)
{
	uint8	   *msg;

	*len = SlStreamBatchMessageSize(batch->len);
	msg = malloc(*len);
	SlStreamBatchEncode(batch, msg);
	return msg;
}

static void
test_batch_roundtrip(void)
{
	StringInfoData data;
	SlStreamBatch in;
	SlStreamMessage out;
	uint8	   *msg;
	size_t		len;

	initStringInfo(&data);
	make_batch(&data, 5, 42, 7);
	in.topic_id = 3;
	in.partition = 2;
	in.base_offset = 42;
	in.last_offset = 46;
	in.leader_epoch = 7;
	in.append_time = 1700000000123;
	in.data = (const uint8 *) data.data;
	in.len = data.len;
	msg = encode_batch(&in, &len);
	CHECK_EQ_INT(len, SL_STREAM_BATCH_HEADER_SIZE + data.len);
	CHECK_NULL_ERR(SlStreamMessageDecode(msg, len, &out));
	CHECK_EQ_INT(out.type, SL_STREAM_MSG_BATCH);
	CHECK_EQ_INT(out.u.batch.topic_id, 3);
	CHECK_EQ_INT(out.u.batch.partition, 2);
	CHECK_EQ_INT(out.u.batch.base_offset, 42);
	CHECK_EQ_INT(out.u.batch.last_offset, 46);
	CHECK_EQ_INT(out.u.batch.leader_epoch, 7);
	CHECK_EQ_INT(out.u.batch.append_time, 1700000000123);
	CHECK_EQ_INT(out.u.batch.len, data.len);
	CHECK(out.u.batch.data == msg + SL_STREAM_BATCH_HEADER_SIZE);
	CHECK_MEM(out.u.batch.data, data.data, data.len);

	/* The header alone, then the bytes, make the same message */
	{
		uint8	   *two = malloc(len);

		SlStreamBatchHeaderEncode(&in, two);
		memcpy(two + SL_STREAM_BATCH_HEADER_SIZE, data.data, data.len);
		CHECK_MEM(two, msg, len);
		free(two);
	}
	free(msg);
	pfree(data.data);
}

static void
test_commit_roundtrip(void)
{
	SlStreamCommit in = {0x16B3A28, 0x16B3A60, 1700000000999};
	SlStreamMessage out;
	uint8		msg[SL_STREAM_COMMIT_SIZE];

	SlStreamCommitEncode(&in, msg);
	CHECK_NULL_ERR(SlStreamMessageDecode(msg, sizeof(msg), &out));
	CHECK_EQ_INT(out.type, SL_STREAM_MSG_COMMIT);
	CHECK_EQ_UINT(out.u.commit.commit_lsn, in.commit_lsn);
	CHECK_EQ_UINT(out.u.commit.end_lsn, in.end_lsn);
	CHECK_EQ_INT(out.u.commit.commit_time, in.commit_time);

	/* a byte more or less, an end before the commit, no end */
	CHECK(SlStreamMessageDecode(msg, sizeof(msg) - 1, &out) != NULL);
	in.end_lsn = in.commit_lsn - 1;
	SlStreamCommitEncode(&in, msg);
	CHECK(SlStreamMessageDecode(msg, sizeof(msg), &out) != NULL);
	in.commit_lsn = in.end_lsn = 0;
	SlStreamCommitEncode(&in, msg);
	CHECK(SlStreamMessageDecode(msg, sizeof(msg), &out) != NULL);
}

/* Each field of the message disagreeing with the batch is refused */
static void
test_batch_disagreements(void)
{
	StringInfoData data;
	SlStreamBatch good;
	SlStreamMessage out;
	uint8	   *msg;
	size_t		len;

	initStringInfo(&data);
	make_batch(&data, 3, 100, 4);
	good.topic_id = 1;
	good.partition = 0;
	good.base_offset = 100;
	good.last_offset = 102;
	good.leader_epoch = 4;
	good.append_time = 5;
	good.data = (const uint8 *) data.data;
	good.len = data.len;

	for (int field = 0; field < 7; field++)
	{
		SlStreamBatch bad = good;

		switch (field)
		{
			case 0:
				bad.base_offset = 101;
				break;
			case 1:
				bad.last_offset = 103;
				break;
			case 2:
				bad.leader_epoch = 5;
				break;
			case 3:
				bad.topic_id = 0;
				break;
			case 4:
				bad.partition = -1;
				break;
			case 5:
				bad.last_offset = 99;
				break;
			case 6:
				bad.leader_epoch = -1;
				break;
		}
		msg = encode_batch(&bad, &len);
		CHECK_MSG(SlStreamMessageDecode(msg, len, &out) != NULL, "field %d", field);
		free(msg);
	}

	/* The length word disagreeing with the message's size */
	msg = encode_batch(&good, &len);
	SlStoreInt32(msg + 38, (int32) good.len - 1);
	CHECK(SlStreamMessageDecode(msg, len, &out) != NULL);
	SlStoreInt32(msg + 38, -1);
	CHECK(SlStreamMessageDecode(msg, len, &out) != NULL);
	free(msg);

	/* Unknown type and version */
	msg = encode_batch(&good, &len);
	msg[0] = 'X';
	CHECK(SlStreamMessageDecode(msg, len, &out) != NULL);
	msg[0] = SL_STREAM_MSG_BATCH;
	msg[1] = SL_STREAM_VERSION + 1;
	CHECK(SlStreamMessageDecode(msg, len, &out) != NULL);
	free(msg);
	CHECK(SlStreamMessageDecode((const uint8 *) "", 0, &out) != NULL);
	pfree(data.data);
}

/*
 * Every truncation is refused, and so is every single-byte change in the
 * batch's CRC-covered part or its header fields the message repeats: the
 * CRC or a cross-check catches it.  (Bytes the CRC does not cover and the
 * message does not repeat are none: base offset, length and epoch are all
 * cross-checked.)
 */
static void
test_truncations_and_corruptions(void)
{
	StringInfoData data;
	SlStreamBatch good;
	SlStreamMessage out;
	uint8	   *msg;
	size_t		len;
	uint64		rng = unit_seed(0x5eed5eedULL);
	int			accepted = 0;

	initStringInfo(&data);
	make_batch(&data, 4, 7, 2);
	good.topic_id = 9;
	good.partition = 1;
	good.base_offset = 7;
	good.last_offset = 10;
	good.leader_epoch = 2;
	good.append_time = 0;
	good.data = (const uint8 *) data.data;
	good.len = data.len;
	msg = encode_batch(&good, &len);

	for (size_t n = 0; n < len; n++)
		if (SlStreamMessageDecode(msg, n, &out) == NULL)
			accepted++;
	CHECK_EQ_INT(accepted, 0);

	accepted = 0;
	for (size_t pos = SL_STREAM_BATCH_HEADER_SIZE; pos < len; pos++)
	{
		uint8		saved = msg[pos];
		uint8		flip = (uint8) (1 + unit_rand(&rng) % 255);

		msg[pos] ^= flip;
		if (SlStreamMessageDecode(msg, len, &out) == NULL)
			accepted++;
		msg[pos] = saved;
	}
	CHECK_EQ_INT(accepted, 0);
	CHECK_NULL_ERR(SlStreamMessageDecode(msg, len, &out));
	free(msg);
	pfree(data.data);
}

int
main(void)
{
	test_batch_roundtrip();
	test_commit_roundtrip();
	test_batch_disagreements();
	test_truncations_and_corruptions();
	return UNIT_DONE();
}
