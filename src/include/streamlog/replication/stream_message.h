/*
 * The messages of streamlog's output plugin (CLUSTER.md section 3): what a
 * leader's walsender sends a follower's apply worker for each appended
 * batch and each commit that held batches.  Pure code over bytes, built
 * into the server and into the unit tests and fuzzers (-DFRONTEND): the
 * follower treats every message as hostile, so decoding checks everything
 * it can and never trusts a length.
 *
 * Every message starts with a type byte and the format version:
 *
 *	 'B' 1  topic_id int32, partition int32, base_offset int64,
 *			last_offset int64, leader_epoch int32, append_time int64,
 *			len int32, then len bytes: the whole RecordBatch v2 as stored
 *	 'C' 1  commit_lsn int64, end_lsn int64, commit_time int64 (unix ms)
 *
 * all integers big-endian, like the Kafka protocol.  A batch's own header
 * must agree with the message: its base offset, length, magic 2, leader
 * epoch, last offset delta and CRC32C.
 */
#ifndef SL_REPLICATION_STREAM_MESSAGE_H
#define SL_REPLICATION_STREAM_MESSAGE_H

#include "streamlog/protocol/codec_base.h"

#define SL_STREAM_MSG_BATCH 'B'
#define SL_STREAM_MSG_COMMIT 'C'
#define SL_STREAM_VERSION 1

/* Bytes before the batch in a 'B' message */
#define SL_STREAM_BATCH_HEADER_SIZE (2 + 4 + 4 + 8 + 8 + 4 + 8 + 4)
#define SL_STREAM_COMMIT_SIZE (2 + 8 + 8 + 8)

/* Largest batch a message may carry: PostgreSQL's largest allocation */
#define SL_STREAM_MAX_BATCH ((size_t) 0x3fffffff - SL_STREAM_BATCH_HEADER_SIZE)

typedef struct SlStreamBatch
{
	int32		topic_id;
	int32		partition;
	int64		base_offset;
	int64		last_offset;
	int32		leader_epoch;
	int64		append_time;	/* the leader's, unix ms */
	const uint8 *data;			/* the RecordBatch v2; into the message */
	size_t		len;
} SlStreamBatch;

typedef struct SlStreamCommit
{
	uint64		commit_lsn;
	uint64		end_lsn;		/* where the follower resumes after it */
	int64		commit_time;	/* unix ms */
} SlStreamCommit;

typedef struct SlStreamMessage
{
	char		type;			/* SL_STREAM_MSG_* */
	union
	{
		SlStreamBatch batch;
		SlStreamCommit commit;
	}			u;
} SlStreamMessage;

/* Size of the 'B' message carrying a batch of len bytes */
extern size_t SlStreamBatchMessageSize(size_t len);

/*
 * Write the header of a 'B' message (SL_STREAM_BATCH_HEADER_SIZE bytes)
 * to out; the batch bytes follow it, written by the caller (the output
 * plugin appends them without one more copy).
 */
extern void SlStreamBatchHeaderEncode(const SlStreamBatch *batch, uint8 *out);

/* Write a whole 'B' message (SlStreamBatchMessageSize bytes) to out */
extern void SlStreamBatchEncode(const SlStreamBatch *batch, uint8 *out);

/* Write a 'C' message (SL_STREAM_COMMIT_SIZE bytes) to out */
extern void SlStreamCommitEncode(const SlStreamCommit *commit, uint8 *out);

/*
 * Decode one message of len bytes; NULL if it is valid (pointers in *msg
 * point into buf), else a static message saying what is wrong.
 */
extern const char *SlStreamMessageDecode(const uint8 *buf, size_t len,
										 SlStreamMessage *msg);

#endif							/* SL_REPLICATION_STREAM_MESSAGE_H */
