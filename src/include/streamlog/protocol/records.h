/*
 * Kafka RecordBatch v2 (magic 2): parse, validate, iterate and build.
 *
 * Layout of a batch (all integers big endian):
 *
 *   0 baseOffset int64         27 baseTimestamp int64
 *   8 batchLength int32        35 maxTimestamp int64
 *  12 partitionLeaderEpoch i32 43 producerId int64
 *  16 magic int8 (2)           51 producerEpoch int16
 *  17 crc uint32 (CRC32C of    53 baseSequence int32
 *     bytes 21..end)           57 recordCount int32
 *  21 attributes int16         61 records (compressed as a whole if the
 *  23 lastOffsetDelta int32       attributes say so)
 *
 * batchLength counts the bytes after itself, so a batch is batchLength + 12
 * bytes long.  The CRC does not cover baseOffset nor partitionLeaderEpoch:
 * the log rewrites the base offset of a stored batch without re-encoding it.
 *
 * Each record: length varint, attributes int8, timestampDelta varlong,
 * offsetDelta varint, keyLength varint (-1 = null), key, valueLength varint
 * (-1 = null), value, headerCount varint, then per header keyLength varint,
 * key (UTF-8), valueLength varint (-1 = null), value.
 */
#ifndef SL_RECORDS_H
#define SL_RECORDS_H

#include "streamlog/protocol/codec_base.h"
#include "streamlog/protocol/compression.h"

#define SL_BATCH_HEADER_SIZE 61
#define SL_BATCH_LOG_OVERHEAD 12	/* baseOffset + batchLength */
#define SL_BATCH_MAGIC 2

/* Byte positions of the fields the log rewrites */
#define SL_BATCH_OFFSET_BASE_OFFSET 0
#define SL_BATCH_OFFSET_LENGTH 8
#define SL_BATCH_OFFSET_LEADER_EPOCH 12
#define SL_BATCH_OFFSET_MAGIC 16
#define SL_BATCH_OFFSET_CRC 17
#define SL_BATCH_OFFSET_ATTRIBUTES 21
#define SL_BATCH_OFFSET_MAX_TIMESTAMP 35

/* Bits of the batch attributes */
#define SL_BATCH_ATTR_COMPRESSION_MASK 0x07
#define SL_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define SL_BATCH_ATTR_TRANSACTIONAL 0x10
#define SL_BATCH_ATTR_CONTROL 0x20
/*
 * KIP-534: the log cleaner kept tombstones (or transaction markers) of this
 * batch and will remove them once the clock passes the delete horizon,
 * which the batch carries as its baseTimestamp (record timestamps are
 * still baseTimestamp + timestampDelta).
 */
#define SL_BATCH_ATTR_DELETE_HORIZON 0x40

#define SL_NO_PRODUCER_ID (-1)
#define SL_NO_PRODUCER_EPOCH (-1)
#define SL_NO_SEQUENCE (-1)

typedef struct SlBatchHeader
{
	int64		base_offset;
	int32		batch_length;
	int32		partition_leader_epoch;
	int8		magic;
	uint32		crc;
	int16		attributes;
	int32		last_offset_delta;
	int64		base_timestamp;
	int64		max_timestamp;
	int64		producer_id;
	int16		producer_epoch;
	int32		base_sequence;
	int32		record_count;
} SlBatchHeader;

/* One header of a record; value_len is -1 for a null value */
typedef struct SlRecordHeader
{
	const char *key;
	int32		key_len;
	const uint8 *value;
	int32		value_len;
} SlRecordHeader;

/*
 * One decoded record.  Pointers point into the batch (or into the
 * iterator's decompression buffer) and live as long as the iterator.
 * key_len / value_len are -1 for null.  The headers are left encoded: walk
 * them with SlRecordHeaderNext().
 */
typedef struct SlRecord
{
	int64		offset;			/* base offset + offset delta */
	int64		timestamp;		/* ms since epoch, per the timestamp type */
	int8		attributes;
	const uint8 *key;
	int32		key_len;
	const uint8 *value;
	int32		value_len;
	int32		header_count;
	const uint8 *headers;		/* first encoded header */
	const uint8 *headers_end;
} SlRecord;

/* Codec of a parsed batch */
#define SlBatchCompression(hdr) ((hdr)->attributes & SL_BATCH_ATTR_COMPRESSION_MASK)

/*
 * Parse the fixed header of the batch at buf, of which len bytes are
 * available.  Checks the magic byte, that batchLength is sane and that the
 * whole batch is within len, and (if verify_crc) the CRC32C.  Returns NULL on
 * success, else a static error message.
 */
extern const char *SlBatchParseHeader(const uint8 *buf, size_t len,
									  SlBatchHeader *hdr, bool verify_crc);

/* Total size in bytes of the batch whose header is hdr */
#define SlBatchSize(hdr) ((size_t) (hdr)->batch_length + SL_BATCH_LOG_OVERHEAD)

/* CRC32C of a whole batch as it would be stored in its crc field */
extern uint32 SlBatchComputeCrc(const uint8 *batch, size_t len);

/*
 * Iterator over the records of one batch.  Decompresses the records into
 * its own buffer when needed (bounded by max_decompressed bytes).  Every
 * length read from the batch is checked against the bytes that are there.
 */
typedef struct SlRecordIter
{
	SlBatchHeader hdr;
	const uint8 *pos;
	const uint8 *end;
	int32		remaining;		/* records not yet returned */
	StringInfoData decompressed;	/* data == NULL if not compressed */
	const char *error;			/* set when next() stopped on bad input */
} SlRecordIter;

/*
 * Start iterating over the batch at buf (len bytes, exactly one batch or
 * more).  Returns NULL on success, else a static error message:
 * sl_err_decompressed_too_large if the records decompress to more than
 * max_decompressed bytes.
 */
extern const char *SlRecordIterInit(SlRecordIter *it, const uint8 *buf,
									size_t len, bool verify_crc,
									size_t max_decompressed);

/*
 * Fill rec with the next record.  Returns false at the end of the batch, or
 * on malformed input, in which case it->error is set.  Finding fewer or more
 * records than recordCount says is malformed input.
 */
extern bool SlRecordIterNext(SlRecordIter *it, SlRecord *rec);

/* Free what the iterator allocated */
extern void SlRecordIterFree(SlRecordIter *it);

/*
 * Read the next encoded header at *pos (not past end).  Advances *pos.
 * Returns false on malformed input.
 */
extern bool SlRecordHeaderNext(const uint8 **pos, const uint8 *end,
							   SlRecordHeader *header);

/*
 * Builds one batch from records.  The records are encoded as they are
 * added; finish() compresses them and writes the header.  The base offset
 * and CRC are written by SlBatchSeal() once the log assigns the offset.
 */
typedef struct SlBatchBuilder
{
	SlCompression compression;
	int64		base_timestamp;
	int64		max_timestamp;
	int32		record_count;
	int64		producer_id;
	int16		producer_epoch;
	int32		base_sequence;
	int16		attributes;		/* batch attributes besides the codec */
	bool		fixed_base_timestamp;	/* base_timestamp set by the caller */
	int32		last_offset_delta;
	StringInfoData records;		/* encoded, uncompressed records */
} SlBatchBuilder;

extern void SlBatchBuilderInit(SlBatchBuilder *b, SlCompression compression);

/* Free the builder's buffers */
extern void SlBatchBuilderFree(SlBatchBuilder *b);

/* Reset a builder to hold no records, keeping its buffers */
extern void SlBatchBuilderReset(SlBatchBuilder *b);

/*
 * Append one record.  key/value may be NULL (with len -1) for null.  The
 * offset delta is the number of records added before it.
 */
extern void SlBatchBuilderAdd(SlBatchBuilder *b, int64 timestamp,
							  const uint8 *key, int32 key_len,
							  const uint8 *value, int32 value_len,
							  const SlRecordHeader *headers, int nheaders);

/*
 * The log cleaner's way to rebuild a batch with some of its records: give
 * the batch header's fields first (producer id, epoch and base sequence as
 * fields of the builder; attributes such as transactional, control,
 * LogAppendTime or delete horizon; and a base timestamp of the caller's,
 * which is the delete horizon when there is one), then add each record kept
 * with its original offset delta and timestamp, its key, value and headers
 * copied as they are.  Offset deltas must increase.
 */
extern void SlBatchBuilderSetBase(SlBatchBuilder *b, int16 attributes,
								  bool fixed_base_timestamp, int64 base_timestamp);
extern void SlBatchBuilderAddRecord(SlBatchBuilder *b, int32 offset_delta,
									const SlRecord *rec);

/* Bytes of encoded records so far (uncompressed) */
#define SlBatchBuilderRecordsSize(b) ((size_t) (b)->records.len)

/*
 * Compress the records and append the complete batch to out: header with
 * base offset 0 and CRC 0 (see SlBatchSeal), then the records.  Returns
 * NULL on success, else a static error message.  The builder keeps its
 * records; reset it to start the next batch.
 */
extern const char *SlBatchBuilderFinish(SlBatchBuilder *b, StringInfo out);

/*
 * SlBatchBuilderFinish, then the batch as a producer sends it: sealed at
 * base offset 0 with its CRC (the log keeps a producer's CRC), and its
 * header parsed into hdr.  Returns NULL on success, else a static error
 * message.
 */
extern const char *SlBatchBuilderFinishSealed(SlBatchBuilder *b, StringInfo out,
											  SlBatchHeader *hdr);

/*
 * Give a batch its place in the log: write base_offset and, if
 * log_append_time >= 0, switch the batch to LogAppendTime with that
 * max timestamp.  Then recompute the CRC.  batch must hold a whole batch
 * whose header was validated.
 */
extern void SlBatchSeal(uint8 *batch, size_t len, int64 base_offset,
						int64 log_append_time);

/* Byte positions of the idempotent producer's fields */
#define SL_BATCH_OFFSET_PRODUCER_ID 43
#define SL_BATCH_OFFSET_PRODUCER_EPOCH 51
#define SL_BATCH_OFFSET_BASE_SEQUENCE 53

/*
 * Make a batch an idempotent producer's: write its producer id, epoch and
 * base sequence, then recompute the CRC (which covers them).  For batches
 * a node forwards to a partition's leader on behalf of SQL producers.
 * batch must hold a whole batch whose header was validated.
 */
extern void SlBatchSetProducer(uint8 *batch, size_t len, int64 producer_id,
							   int16 producer_epoch, int32 base_sequence);

/* Big-endian helpers shared by the codecs */
static inline int16
SlLoadInt16(const uint8 *p)
{
	return (int16) (((uint16) p[0] << 8) | p[1]);
}

static inline int32
SlLoadInt32(const uint8 *p)
{
	return (int32) (((uint32) p[0] << 24) | ((uint32) p[1] << 16) |
					((uint32) p[2] << 8) | p[3]);
}

static inline int64
SlLoadInt64(const uint8 *p)
{
	return (int64) (((uint64) (uint32) SlLoadInt32(p) << 32) |
					(uint32) SlLoadInt32(p + 4));
}

static inline void
SlStoreInt16(uint8 *p, int16 v)
{
	p[0] = (uint8) ((uint16) v >> 8);
	p[1] = (uint8) v;
}

static inline void
SlStoreInt32(uint8 *p, int32 v)
{
	p[0] = (uint8) ((uint32) v >> 24);
	p[1] = (uint8) ((uint32) v >> 16);
	p[2] = (uint8) ((uint32) v >> 8);
	p[3] = (uint8) v;
}

static inline void
SlStoreInt64(uint8 *p, int64 v)
{
	SlStoreInt32(p, (int32) ((uint64) v >> 32));
	SlStoreInt32(p + 4, (int32) v);
}

#endif							/* SL_RECORDS_H */
