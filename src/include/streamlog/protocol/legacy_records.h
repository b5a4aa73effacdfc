/*-------------------------------------------------------------------------
 * legacy_records.h
 *	  Kafka's legacy message format (magic 0 and 1, the "MessageSet" of
 *	  Produce v0-2 and Fetch v0-3) and its conversion to and from the
 *	  RecordBatch v2 the log stores.
 *
 * A message set is a sequence of entries, all integers big endian:
 *
 *   offset int64, message_size int32, then message_size bytes of message:
 *     crc uint32      CRC-32 (IEEE, as zlib's crc32) of the rest of the
 *                     message, from magic to the end of the value
 *     magic int8      0 or 1
 *     attributes int8 bits 0-2 codec (0 none, 1 gzip, 2 snappy, 3 lz4),
 *                     bit 3 timestamp type (magic 1 only: 1 = LogAppendTime)
 *     timestamp int64 magic 1 only
 *     key             int32 length (-1 = null), bytes
 *     value           int32 length (-1 = null), bytes
 *
 * A compressed message (a "wrapper") holds in its value a whole message
 * set, compressed with the wrapper's codec; its inner messages are never
 * compressed themselves.  With magic 1 the inner offsets are relative
 * (0..n-1) and the wrapper carries the absolute offset of the last inner
 * message; with magic 0 every offset is absolute.  lz4 wrappers written with
 * magic 0 carry an LZ4 frame whose header checksum was computed over the
 * frame magic number too (KAFKA-3160); both that checksum and the correct
 * one are accepted on input.
 *
 * Behaviour chosen on purpose:
 *
 * - Up-conversion ignores the offsets a producer put in the message set
 *   (the log assigns offsets) and returns one batch with base offset 0,
 *   record i at offset delta i, in the order of the messages.  The batch
 *   uses the codec of the first compressed wrapper (lz4 written as a
 *   standard LZ4 frame), or none if no message was compressed.
 * - Timestamps: a magic 1 message keeps its own timestamp as CreateTime,
 *   unless it is inside a wrapper marked LogAppendTime, in which case it
 *   takes the wrapper's timestamp.  Magic 0 messages have no timestamp and
 *   get -1 (Kafka's NO_TIMESTAMP), as Kafka does when it up-converts; a
 *   topic using LogAppendTime overwrites it when the log seals the batch.
 * - Down-conversion writes one uncompressed message per record, with the
 *   record's absolute offset.  Magic 1 keeps the timestamp and sets the
 *   LogAppendTime bit if the batch has it; magic 0 has no timestamp.
 *   Record headers are dropped (the format cannot carry them) and control
 *   batches are skipped.  Any codec, zstd included, becomes uncompressed,
 *   so old fetchers never see a codec they cannot read.
 *
 * IDENTIFICATION
 *	  src/protocol/legacy_records.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_LEGACY_RECORDS_H
#define SL_LEGACY_RECORDS_H

#include "streamlog/protocol/codec_base.h"

#define SL_LEGACY_MAGIC_V0 0
#define SL_LEGACY_MAGIC_V1 1

/* offset + message_size in front of every message */
#define SL_LEGACY_LOG_OVERHEAD 12

/* Message bytes before the key: crc, magic, attributes (+ timestamp) */
#define SL_LEGACY_PREFIX_SIZE_V0 6
#define SL_LEGACY_PREFIX_SIZE_V1 14

/* Smallest message_size: prefix plus the two length fields */
#define SL_LEGACY_MIN_MESSAGE_SIZE_V0 (SL_LEGACY_PREFIX_SIZE_V0 + 8)
#define SL_LEGACY_MIN_MESSAGE_SIZE_V1 (SL_LEGACY_PREFIX_SIZE_V1 + 8)

/* Bits of the message attributes */
#define SL_LEGACY_ATTR_COMPRESSION_MASK 0x07
#define SL_LEGACY_ATTR_LOG_APPEND_TIME 0x08

/*
 * Most records one up-converted message set may yield.  Compressed wrappers
 * make it cheap to send millions of empty messages; a batch this large is
 * already far beyond anything a legacy producer sends.
 */
#define SL_LEGACY_MAX_RECORDS (1 << 20)

/*
 * Up-convert the message set of a Produce v0-2 partition (len bytes at data)
 * into one RecordBatch v2 appended to out, with base offset 0 and CRC 0,
 * ready for SlBatchSeal().  Every message CRC is checked; bad magic bytes,
 * lengths that do not add up, a truncated message, a magic 0 message inside
 * a magic 1 wrapper (or the reverse), compressed messages inside a
 * compressed message, an unknown codec, an empty set and more than
 * SL_LEGACY_MAX_RECORDS records are errors.  All compressed wrappers
 * together may decompress to at most max_decompressed bytes.
 *
 * On success returns NULL and sets *record_count (if not NULL) to the
 * number of records in the batch.  On failure returns a static error
 * message and leaves out as it was.
 */
extern const char *SlMessageSetToBatch(const uint8 *data, size_t len,
									   size_t max_decompressed,
									   StringInfo out,
									   int32 *record_count);

/*
 * Down-convert stored batches (len bytes at batches: whole v2 batches, base
 * offsets assigned, CRCs valid) into a message set of the given magic (0 or
 * 1) appended to out, for Fetch v0-3.  Messages are appended in order until
 * the next one would take the bytes appended past max_bytes; the first
 * message is always written whole, whatever its size.
 *
 * Returns NULL on success, else a static error message (out is then left
 * as it was).  A message set with no message is a success.
 */
extern const char *SlBatchesToMessageSet(const uint8 *batches, size_t len,
										 int8 magic, int64 max_bytes,
										 StringInfo out);

/*
 * Same, but leave out the records below first_offset.  A fetch returns the
 * whole batch that holds the fetch offset; without this, max_bytes could be
 * spent on records the consumer already has, and a max_bytes smaller than
 * two messages would return the same stale message forever.
 */
extern const char *SlBatchesToMessageSetFrom(const uint8 *batches,
											 size_t len, int8 magic,
											 int64 first_offset,
											 int64 max_bytes,
											 StringInfo out);

#endif							/* SL_LEGACY_RECORDS_H */
