/*-------------------------------------------------------------------------
 * legacy_records.c
 *	  Up-conversion of magic 0/1 message sets to RecordBatch v2 (Produce
 *	  v0-2) and down-conversion of stored batches to message sets (Fetch
 *	  v0-3).  See legacy_records.h for the format and the choices made.
 *
 * IDENTIFICATION
 *	  src/protocol/legacy_records.c
 *-------------------------------------------------------------------------
 */
#include "streamlog/protocol/codec_base.h"

#include <string.h>

#include <zlib.h>

#include "streamlog/protocol/compression.h"
#include "streamlog/protocol/legacy_records.h"
#include "streamlog/protocol/records.h"

#ifndef FRONTEND
#include "utils/memutils.h"
#elif !defined(MaxAllocSize)
/* same limit as the frontend StringInfo implementation */
#define MaxAllocSize	((Size) 0x3fffffff)
#endif

/* Largest decompressed stored batch that down-conversion accepts */
#define MAX_STORED_DECOMPRESSED (MaxAllocSize - 1)

#define LZ4_FRAME_MAGIC 0x184D2204U

/* One parsed legacy message; key and value point into the input */
typedef struct LegacyMessage
{
	int64		offset;
	int8		magic;
	int8		attributes;
	int64		timestamp;		/* -1 for magic 0 */
	const uint8 *key;			/* NULL if null */
	int32		key_len;		/* -1 if null */
	const uint8 *value;
	int32		value_len;
} LegacyMessage;

/* State of one up-conversion */
typedef struct UpConversion
{
	SlBatchBuilder builder;
	int			codec;			/* of the first wrapper; -1 before one */
	size_t		budget;			/* decompressed bytes still allowed */
	StringInfoData inner;		/* decompressed message set of a wrapper */
	StringInfoData frame;		/* lz4 frame with its header checksum fixed */
} UpConversion;

/* CRC-32 (IEEE) of a legacy message, over everything after the crc field */
static uint32
message_crc(const uint8 *message, size_t message_size)
{
	uLong		crc = crc32(0L, Z_NULL, 0);

	return (uint32) crc32(crc, message + 4, (uInt) (message_size - 4));
}

/*
 * Read the length-prefixed bytes (key or value) at *pos, not past end.
 * Sets *data to NULL for a null (-1) length.  Returns false on a length
 * below -1 or running past end.
 */
static bool
read_bytes(const uint8 **pos, const uint8 *end, const uint8 **data,
		   int32 *len)
{
	const uint8 *p = *pos;
	int32		n;

	if (end - p < 4)
		return false;
	n = SlLoadInt32(p);
	p += 4;
	if (n < -1 || n > end - p)
		return false;
	if (n < 0)
		*data = NULL;
	else
	{
		*data = p;
		p += n;
	}
	*len = n;
	*pos = p;
	return true;
}

/*
 * Parse the message set entry at *pos (not reading at or past end) into m,
 * checking its CRC and that its fields fill message_size exactly.  Advances
 * *pos past the entry.  Returns NULL or a static error message.
 */
static const char *
read_message(const uint8 **pos, const uint8 *end, LegacyMessage *m)
{
	const uint8 *p = *pos;
	const uint8 *message;
	const uint8 *message_end;
	int32		size;

	if (end - p < SL_LEGACY_LOG_OVERHEAD)
		return "truncated message set entry";
	m->offset = SlLoadInt64(p);
	size = SlLoadInt32(p + 8);
	p += SL_LEGACY_LOG_OVERHEAD;
	if (size < SL_LEGACY_MIN_MESSAGE_SIZE_V0)
		return "message size too small";
	if (size > end - p)
		return "truncated message";
	message = p;
	message_end = p + size;

	if (message_crc(message, (size_t) size) != (uint32) SlLoadInt32(message))
		return "message CRC mismatch";
	m->magic = (int8) message[4];
	m->attributes = (int8) message[5];
	p = message + SL_LEGACY_PREFIX_SIZE_V0;
	if (m->magic == SL_LEGACY_MAGIC_V0)
		m->timestamp = -1;
	else if (m->magic == SL_LEGACY_MAGIC_V1)
	{
		if (size < SL_LEGACY_MIN_MESSAGE_SIZE_V1)
			return "message size too small";
		m->timestamp = SlLoadInt64(p);
		p += 8;
	}
	else
		return "unsupported message magic (only 0 and 1 are legacy formats)";

	if (!read_bytes(&p, message_end, &m->key, &m->key_len))
		return "invalid message key length";
	if (!read_bytes(&p, message_end, &m->value, &m->value_len))
		return "invalid message value length";
	if (p != message_end)
		return "message size does not match its contents";

	*pos = message_end;
	return NULL;
}

/* ---- lz4 frames of magic 0 wrappers ---- */

#define XXH_PRIME1 2654435761U
#define XXH_PRIME2 2246822519U
#define XXH_PRIME3 3266489917U
#define XXH_PRIME4 668265263U
#define XXH_PRIME5 374761393U

static inline uint32
rotl32(uint32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static inline uint32
read_le32(const uint8 *p)
{
	return (uint32) p[0] | ((uint32) p[1] << 8) | ((uint32) p[2] << 16) |
		((uint32) p[3] << 24);
}

static inline uint32
xxh32_round(uint32 acc, uint32 lane)
{
	acc += lane * XXH_PRIME2;
	acc = rotl32(acc, 13);
	return acc * XXH_PRIME1;
}

/* xxHash32 with seed 0, the hash of LZ4 frame header checksums */
static uint32
xxh32(const uint8 *p, size_t len)
{
	const uint8 *end = p + len;
	uint32		h;

	if (len >= 16)
	{
		uint32		v1 = XXH_PRIME1 + XXH_PRIME2;
		uint32		v2 = XXH_PRIME2;
		uint32		v3 = 0;
		uint32		v4 = 0 - XXH_PRIME1;

		while (end - p >= 16)
		{
			v1 = xxh32_round(v1, read_le32(p));
			v2 = xxh32_round(v2, read_le32(p + 4));
			v3 = xxh32_round(v3, read_le32(p + 8));
			v4 = xxh32_round(v4, read_le32(p + 12));
			p += 16;
		}
		h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
	}
	else
		h = XXH_PRIME5;

	h += (uint32) len;
	while (end - p >= 4)
	{
		h += read_le32(p) * XXH_PRIME3;
		h = rotl32(h, 17) * XXH_PRIME4;
		p += 4;
	}
	while (p < end)
	{
		h += (uint32) *p * XXH_PRIME5;
		h = rotl32(h, 11) * XXH_PRIME1;
		p++;
	}
	h ^= h >> 15;
	h *= XXH_PRIME2;
	h ^= h >> 13;
	h *= XXH_PRIME3;
	h ^= h >> 16;
	return h;
}

/*
 * If src holds an LZ4 frame whose header checksum is the one of KAFKA-3160
 * (computed from the frame magic number on rather than from the frame
 * descriptor), copy it to fixed with the correct checksum and point *src
 * there.  Anything else is left for the decoder to accept or reject.
 */
static void
fix_lz4_header_checksum(const uint8 **src, size_t len, StringInfo fixed)
{
	const uint8 *f = *src;
	size_t		desc_len;
	uint8		correct;
	uint8		broken;

	if (len < 7 || read_le32(f) != LZ4_FRAME_MAGIC)
		return;
	desc_len = 2 + ((f[4] & 0x08) ? 8 : 0) + ((f[4] & 0x01) ? 4 : 0);
	if (len <= 4 + desc_len)
		return;
	correct = (uint8) (xxh32(f + 4, desc_len) >> 8);
	if (f[4 + desc_len] == correct)
		return;
	broken = (uint8) (xxh32(f, 4 + desc_len) >> 8);
	if (f[4 + desc_len] != broken)
		return;

	resetStringInfo(fixed);
	appendBinaryStringInfo(fixed, (const char *) f, (int) len);
	fixed->data[4 + desc_len] = (char) correct;
	*src = (const uint8 *) fixed->data;
}

/* ---- up-conversion ---- */

/* Add one uncompressed message to the batch being built */
static const char *
add_record(UpConversion *uc, const LegacyMessage *m, int64 timestamp)
{
	if (uc->builder.record_count >= SL_LEGACY_MAX_RECORDS)
		return "too many messages in message set";
	SlBatchBuilderAdd(&uc->builder, timestamp, m->key, m->key_len,
					  m->value, m->value_len, NULL, 0);
	return NULL;
}

/* Decompress the wrapper w and add its inner messages */
static const char *
add_wrapper(UpConversion *uc, const LegacyMessage *w, int codec)
{
	const uint8 *src = w->value;
	size_t		src_len = (size_t) w->value_len;
	const uint8 *p;
	const uint8 *end;
	const char *err;
	bool		log_append_time;
	int32		count = 0;

	if (codec > SL_COMPRESSION_LZ4)
		return "unsupported compression codec in message";
	if (src == NULL)
		return "compressed message has a null value";
	if (uc->codec < 0)
		uc->codec = codec;

	if (codec == SL_COMPRESSION_LZ4)
		fix_lz4_header_checksum(&src, src_len, &uc->frame);
	resetStringInfo(&uc->inner);
	err = SlDecompress((SlCompression) codec, src, src_len, &uc->inner,
					   uc->budget);
	if (err)
		return err;
	uc->budget -= (size_t) uc->inner.len;

	log_append_time = w->magic == SL_LEGACY_MAGIC_V1 &&
		(w->attributes & SL_LEGACY_ATTR_LOG_APPEND_TIME) != 0;
	p = (const uint8 *) uc->inner.data;
	end = p + uc->inner.len;
	while (p < end)
	{
		LegacyMessage m;

		err = read_message(&p, end, &m);
		if (err)
			return err;
		if (m.magic != w->magic)
			return "inner message magic does not match its wrapper";
		if ((m.attributes & SL_LEGACY_ATTR_COMPRESSION_MASK) != 0)
			return "compressed message inside a compressed message";
		err = add_record(uc, &m, log_append_time ? w->timestamp : m.timestamp);
		if (err)
			return err;
		count++;
	}
	if (count == 0)
		return "compressed message holds no messages";
	return NULL;
}

const char *
SlMessageSetToBatch(const uint8 *data, size_t len,
					size_t max_decompressed, StringInfo out,
					int32 *record_count)
{
	UpConversion uc;
	const uint8 *p = data;
	const uint8 *end = data + len;
	const char *err = NULL;
	int			start = out->len;

	if (len == 0)
		return "empty message set";

	SlBatchBuilderInit(&uc.builder, SL_COMPRESSION_NONE);
	uc.codec = -1;
	uc.budget = max_decompressed;
	initStringInfo(&uc.inner);
	initStringInfo(&uc.frame);

	while (p < end)
	{
		LegacyMessage m;
		int			codec;

		err = read_message(&p, end, &m);
		if (err)
			break;
		codec = m.attributes & SL_LEGACY_ATTR_COMPRESSION_MASK;
		if (codec == SL_COMPRESSION_NONE)
			err = add_record(&uc, &m, m.timestamp);
		else
			err = add_wrapper(&uc, &m, codec);
		if (err)
			break;
	}

	if (err == NULL)
	{
		uc.builder.compression =
			uc.codec < 0 ? SL_COMPRESSION_NONE : (SlCompression) uc.codec;
		err = SlBatchBuilderFinish(&uc.builder, out);
	}
	if (err == NULL && record_count != NULL)
		*record_count = uc.builder.record_count;

	SlBatchBuilderFree(&uc.builder);
	pfree(uc.inner.data);
	pfree(uc.frame.data);
	if (err)
	{
		out->len = start;
		out->data[start] = '\0';
	}
	return err;
}

/* ---- down-conversion ---- */

/*
 * Append rec as one message of the given magic.  attributes are the message
 * attributes (the timestamp type bit at most).
 */
static void
write_message(StringInfo out, const SlRecord *rec, int8 magic,
			  int8 attributes, int32 message_size)
{
	uint8	   *entry;
	uint8	   *message;
	uint8	   *p;

	enlargeStringInfo(out, SL_LEGACY_LOG_OVERHEAD + message_size);
	entry = (uint8 *) out->data + out->len;
	SlStoreInt64(entry, rec->offset);
	SlStoreInt32(entry + 8, message_size);
	message = entry + SL_LEGACY_LOG_OVERHEAD;
	message[4] = (uint8) magic;
	message[5] = (uint8) attributes;
	p = message + SL_LEGACY_PREFIX_SIZE_V0;
	if (magic == SL_LEGACY_MAGIC_V1)
	{
		SlStoreInt64(p, rec->timestamp);
		p += 8;
	}
	SlStoreInt32(p, rec->key_len);
	p += 4;
	if (rec->key_len > 0)
	{
		memcpy(p, rec->key, rec->key_len);
		p += rec->key_len;
	}
	SlStoreInt32(p, rec->value_len);
	p += 4;
	if (rec->value_len > 0)
	{
		memcpy(p, rec->value, rec->value_len);
		p += rec->value_len;
	}
	Assert(p == message + message_size);
	SlStoreInt32(message, (int32) message_crc(message, (size_t) message_size));
	out->len += SL_LEGACY_LOG_OVERHEAD + message_size;
	out->data[out->len] = '\0';
}

const char *
SlBatchesToMessageSetFrom(const uint8 *batches, size_t len, int8 magic,
						  int64 first_offset, int64 max_bytes,
						  StringInfo out)
{
	const uint8 *p = batches;
	const uint8 *end = batches + len;
	int			start = out->len;
	int64		written = 0;
	const char *err = NULL;
	bool		full = false;

	if (magic != SL_LEGACY_MAGIC_V0 && magic != SL_LEGACY_MAGIC_V1)
		return "message set magic must be 0 or 1";

	while (p < end && !full)
	{
		SlBatchHeader hdr;
		SlRecordIter it;
		SlRecord	rec;
		int64		last_offset;
		int8		attributes = 0;

		err = SlBatchParseHeader(p, (size_t) (end - p), &hdr, true);
		if (err)
			break;
		last_offset = (int64) ((uint64) hdr.base_offset +
							   (uint64) (int64) hdr.last_offset_delta);
		if ((hdr.attributes & SL_BATCH_ATTR_CONTROL) ||
			last_offset < first_offset)
		{
			p += SlBatchSize(&hdr);
			continue;
		}
		if (magic == SL_LEGACY_MAGIC_V1 &&
			(hdr.attributes & SL_BATCH_ATTR_LOG_APPEND_TIME))
			attributes = SL_LEGACY_ATTR_LOG_APPEND_TIME;

		err = SlRecordIterInit(&it, p, SlBatchSize(&hdr), false,
							   MAX_STORED_DECOMPRESSED);
		if (err)
			break;
		while (SlRecordIterNext(&it, &rec))
		{
			int64		message_size;
			int64		entry_size;

			if (rec.offset < first_offset)
				continue;
			message_size = (magic == SL_LEGACY_MAGIC_V1 ?
							SL_LEGACY_MIN_MESSAGE_SIZE_V1 :
							SL_LEGACY_MIN_MESSAGE_SIZE_V0) +
				(int64) Max(rec.key_len, 0) + (int64) Max(rec.value_len, 0);
			entry_size = SL_LEGACY_LOG_OVERHEAD + message_size;
			if (written > 0 && written + entry_size > max_bytes)
			{
				full = true;
				break;
			}
			if (message_size > PG_INT32_MAX ||
				(size_t) entry_size >= (size_t) (MaxAllocSize - 1) - (size_t) out->len)
			{
				err = "message too large for a message set";
				break;
			}
			write_message(out, &rec, magic, attributes, (int32) message_size);
			written += entry_size;
		}
		if (err == NULL && it.error != NULL)
			err = it.error;
		SlRecordIterFree(&it);
		if (err)
			break;
		p += SlBatchSize(&hdr);
	}

	if (err)
	{
		out->len = start;
		out->data[start] = '\0';
	}
	return err;
}

const char *
SlBatchesToMessageSet(const uint8 *batches, size_t len, int8 magic,
					  int64 max_bytes, StringInfo out)
{
	return SlBatchesToMessageSetFrom(batches, len, magic, PG_INT64_MIN,
									 max_bytes, out);
}
