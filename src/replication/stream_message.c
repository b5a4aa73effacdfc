/*
 * Encoding and decoding of the output plugin's messages; the format is in
 * stream_message.h.  The decoder is what stands between a walsender's
 * bytes and a follower's log: it accepts a batch only if the message and
 * the batch's own header say the same thing and the CRC holds, so that
 * nothing a damaged or hostile stream carries reaches SlReplicaAppend
 * looking like something else.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/records.h"
#include "streamlog/replication/stream_message.h"

size_t
SlStreamBatchMessageSize(size_t len)
{
	return SL_STREAM_BATCH_HEADER_SIZE + len;
}

void
SlStreamBatchHeaderEncode(const SlStreamBatch *batch, uint8 *out)
{
	out[0] = SL_STREAM_MSG_BATCH;
	out[1] = SL_STREAM_VERSION;
	SlStoreInt32(out + 2, batch->topic_id);
	SlStoreInt32(out + 6, batch->partition);
	SlStoreInt64(out + 10, batch->base_offset);
	SlStoreInt64(out + 18, batch->last_offset);
	SlStoreInt32(out + 26, batch->leader_epoch);
	SlStoreInt64(out + 30, batch->append_time);
	SlStoreInt32(out + 38, (int32) batch->len);
}

void
SlStreamBatchEncode(const SlStreamBatch *batch, uint8 *out)
{
	SlStreamBatchHeaderEncode(batch, out);
	memcpy(out + SL_STREAM_BATCH_HEADER_SIZE, batch->data, batch->len);
}

void
SlStreamCommitEncode(const SlStreamCommit *commit, uint8 *out)
{
	out[0] = SL_STREAM_MSG_COMMIT;
	out[1] = SL_STREAM_VERSION;
	SlStoreInt64(out + 2, (int64) commit->commit_lsn);
	SlStoreInt64(out + 10, (int64) commit->end_lsn);
	SlStoreInt64(out + 18, commit->commit_time);
}

/* Check a 'B' message's batch against what the message says of it */
static const char *
check_batch(const SlStreamBatch *b)
{
	SlBatchHeader hdr;
	const char *err;

	if (b->topic_id <= 0)
		return "batch of an invalid topic id";
	if (b->partition < 0)
		return "batch of a negative partition";
	if (b->base_offset < 0 || b->last_offset < b->base_offset)
		return "batch with invalid offsets";
	if (b->last_offset - b->base_offset > PG_INT32_MAX)
		return "batch spanning more offsets than a batch can";
	if (b->leader_epoch < 0)
		return "batch of a negative leader epoch";
	err = SlBatchParseHeader(b->data, b->len, &hdr, true);
	if (err)
		return err;
	if (SlBatchSize(&hdr) != b->len)
		return "batch length differs from the message's";
	if (hdr.base_offset != b->base_offset)
		return "batch base offset differs from the message's";
	if (hdr.partition_leader_epoch != b->leader_epoch)
		return "batch leader epoch differs from the message's";
	if (hdr.last_offset_delta < 0 ||
		(int64) hdr.last_offset_delta != b->last_offset - b->base_offset)
		return "batch last offset differs from the message's";
	return NULL;
}

const char *
SlStreamMessageDecode(const uint8 *buf, size_t len, SlStreamMessage *msg)
{
	if (len < 2)
		return "truncated stream message";
	if (buf[1] != SL_STREAM_VERSION)
		return "stream message of an unknown format version";
	msg->type = (char) buf[0];
	switch (msg->type)
	{
		case SL_STREAM_MSG_BATCH:
			{
				SlStreamBatch *b = &msg->u.batch;
				int32		n;

				if (len < SL_STREAM_BATCH_HEADER_SIZE)
					return "truncated batch message";
				b->topic_id = SlLoadInt32(buf + 2);
				b->partition = SlLoadInt32(buf + 6);
				b->base_offset = SlLoadInt64(buf + 10);
				b->last_offset = SlLoadInt64(buf + 18);
				b->leader_epoch = SlLoadInt32(buf + 26);
				b->append_time = SlLoadInt64(buf + 30);
				n = SlLoadInt32(buf + 38);
				if (n < 0 || (size_t) n != len - SL_STREAM_BATCH_HEADER_SIZE)
					return "batch message length differs from its batch's";
				b->data = buf + SL_STREAM_BATCH_HEADER_SIZE;
				b->len = (size_t) n;
				return check_batch(b);
			}
		case SL_STREAM_MSG_COMMIT:
			{
				SlStreamCommit *c = &msg->u.commit;

				if (len != SL_STREAM_COMMIT_SIZE)
					return "commit message of a wrong length";
				c->commit_lsn = (uint64) SlLoadInt64(buf + 2);
				c->end_lsn = (uint64) SlLoadInt64(buf + 10);
				c->commit_time = SlLoadInt64(buf + 18);
				if (c->end_lsn < c->commit_lsn || c->end_lsn == 0)
					return "commit message with invalid positions";
				return NULL;
			}
		default:
			return "stream message of an unknown type";
	}
}
