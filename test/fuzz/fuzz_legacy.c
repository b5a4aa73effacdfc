/*
 * Fuzz target: legacy message sets (magic 0 and 1) and their conversion
 * to and from RecordBatch v2 (src/protocol/legacy_records.c).
 *
 * Every input is tried both ways:
 *
 *   - as a message set for SlMessageSetToBatch (Produce v0-2), both as
 *     it is and normalized: every message CRC recomputed and every
 *     compressed wrapper decompressed, its inner CRCs fixed and compressed
 *     again, so that mutations get past the CRC checks.  An accepted set
 *     must give one batch of the reported record count, which sealed must
 *     verify and iterate, and which down-converted (magic 0 and 1, all of
 *     it, one message, from the last offset) must give well-formed message
 *     sets that up-convert again to the same keys, values and timestamps;
 *
 *   - as stored batches for SlBatchesToMessageSet (Fetch v0-3), as it
 *     is and, when no batch is compressed, with the batch CRCs recomputed.
 *     The output must be well-formed messages, and up-convert again.
 */
#include "fuzz_common.h"

#include <zlib.h>

#include "streamlog/protocol/legacy_records.h"

#define BASE_OFFSET 1000

FUZZ_COMMON_INITIALIZE()

static uint32
message_crc(const uint8 *message, size_t size)
{
	return (uint32) crc32(crc32(0L, Z_NULL, 0), message + 4, (uInt) (size - 4));
}

/*
 * Check that data holds whole, valid messages of the given magic with
 * offsets >= first_offset; returns how many.
 */
static int64
check_message_set(const uint8 *data, size_t len, int8 magic, int64 first_offset)
{
	size_t		pos = 0;
	int64		n = 0;

	while (pos < len)
	{
		const uint8 *m;
		int32		size;
		int64		offset;
		size_t		p;
		int32		klen;
		int32		vlen;

		FUZZ_CHECK(len - pos >= SL_LEGACY_LOG_OVERHEAD);
		offset = SlLoadInt64(data + pos);
		size = SlLoadInt32(data + pos + 8);
		FUZZ_CHECK(offset >= first_offset);
		FUZZ_CHECK(size >= (magic == 0 ? SL_LEGACY_MIN_MESSAGE_SIZE_V0 : SL_LEGACY_MIN_MESSAGE_SIZE_V1));
		FUZZ_CHECK((size_t) size <= len - pos - SL_LEGACY_LOG_OVERHEAD);
		m = data + pos + SL_LEGACY_LOG_OVERHEAD;
		FUZZ_CHECK((uint32) SlLoadInt32(m) == message_crc(m, size));
		FUZZ_CHECK(m[4] == (uint8) magic);
		FUZZ_CHECK((m[5] & ~SL_LEGACY_ATTR_LOG_APPEND_TIME) == 0);
		FUZZ_CHECK(magic == 1 || m[5] == 0);
		p = magic == 0 ? SL_LEGACY_PREFIX_SIZE_V0 : SL_LEGACY_PREFIX_SIZE_V1;
		klen = SlLoadInt32(m + p);
		FUZZ_CHECK(klen >= -1);
		p += 4 + (klen > 0 ? klen : 0);
		FUZZ_CHECK(p + 4 <= (size_t) size);
		vlen = SlLoadInt32(m + p);
		FUZZ_CHECK(vlen >= -1);
		p += 4 + (vlen > 0 ? vlen : 0);
		FUZZ_CHECK(p == (size_t) size);
		pos += SL_LEGACY_LOG_OVERHEAD + size;
		n++;
	}
	return n;
}

/* The records of two single batches have the same keys and values */
static void
check_same_records(const uint8 *a, size_t alen, const uint8 *b, size_t blen,
				   bool same_timestamps)
{
	SlRecordIter ia;
	SlRecordIter ib;
	SlRecord	ra;
	SlRecord	rb;

	FUZZ_CHECK(SlRecordIterInit(&ia, a, alen, false, SIZE_MAX) == NULL);
	FUZZ_CHECK(SlRecordIterInit(&ib, b, blen, false, SIZE_MAX) == NULL);
	for (;;)
	{
		bool		more = SlRecordIterNext(&ia, &ra);

		FUZZ_CHECK(more == SlRecordIterNext(&ib, &rb));
		if (!more)
			break;
		FUZZ_CHECK(ra.key_len == rb.key_len);
		FUZZ_CHECK(ra.key_len <= 0 || memcmp(ra.key, rb.key, ra.key_len) == 0);
		FUZZ_CHECK(ra.value_len == rb.value_len);
		FUZZ_CHECK(ra.value_len <= 0 || memcmp(ra.value, rb.value, ra.value_len) == 0);
		if (same_timestamps)
			FUZZ_CHECK(ra.timestamp == rb.timestamp);
		else
			FUZZ_CHECK(rb.timestamp == -1);
		FUZZ_CHECK(rb.header_count == 0);
	}
	FUZZ_CHECK(ia.error == NULL && ib.error == NULL);
	SlRecordIterFree(&ia);
	SlRecordIterFree(&ib);
}

/*
 * Up-convert len bytes at data.  On success returns the batch (malloc'd,
 * exactly sized, base offset 0 and CRC 0) and its size and record count.
 */
static uint8 *
up_convert(const uint8 *data, size_t len, size_t *batch_len, int32 *count,
		   const char **error)
{
	StringInfoData out;
	const char *err;
	uint8	   *batch = NULL;
	SlBatchHeader hdr;

	initStringInfo(&out);
	appendStringInfoString(&out, "pfx");
	*count = -1;
	err = SlMessageSetToBatch(data, len, FUZZ_MAX_DECOMPRESSED, &out, count);
	FUZZ_CHECK(out.len >= 3 && memcmp(out.data, "pfx", 3) == 0);
	if (error)
		*error = err;
	if (err != NULL)
	{
		FUZZ_CHECK(out.len == 3);
		pfree(out.data);
		return NULL;
	}
	*batch_len = out.len - 3;
	batch = fuzz_copy((const uint8 *) out.data + 3, *batch_len);
	pfree(out.data);

	FUZZ_CHECK(*count > 0 && *count <= SL_LEGACY_MAX_RECORDS);
	FUZZ_CHECK(SlBatchParseHeader(batch, *batch_len, &hdr, false) == NULL);
	FUZZ_CHECK(SlBatchSize(&hdr) == *batch_len);
	FUZZ_CHECK(hdr.base_offset == 0 && hdr.crc == 0);
	FUZZ_CHECK(hdr.record_count == *count);
	FUZZ_CHECK(hdr.last_offset_delta == *count - 1);
	FUZZ_CHECK(SlBatchCompression(&hdr) <= SL_COMPRESSION_LZ4);
	FUZZ_CHECK((hdr.attributes & ~SL_BATCH_ATTR_COMPRESSION_MASK) == 0);
	return batch;
}

/* Down-convert, check the output, return it (palloc'd) and its count */
static const char *
down_convert(const uint8 *batches, size_t len, int8 magic, int64 first_offset,
			 int64 max_bytes, StringInfo out, int64 *count)
{
	const char *err;

	initStringInfo(out);
	appendStringInfoString(out, "pfx");
	err = SlBatchesToMessageSetFrom(batches, len, magic, first_offset,
									max_bytes, out);
	FUZZ_CHECK(out->len >= 3 && memcmp(out->data, "pfx", 3) == 0);
	*count = 0;
	if (err != NULL)
	{
		FUZZ_CHECK(out->len == 3);
		return err;
	}
	*count = check_message_set((const uint8 *) out->data + 3, out->len - 3,
							   magic, first_offset);
	if (*count > 1)
		FUZZ_CHECK(out->len - 3 <= max_bytes);
	return NULL;
}

/* A message set SlMessageSetToBatch accepted, and its batch */
static void
check_accepted(uint8 *batch, size_t batch_len, int32 count)
{
	FuzzWalk	w;

	SlBatchSeal(batch, batch_len, BASE_OFFSET, -1);
	fuzz_walk_batches(batch, batch_len, true, SIZE_MAX, &w);
	FUZZ_CHECK(w.error == NULL && w.nbatches == 1 && w.nrecords == count);

	for (int8 magic = 0; magic <= 1; magic++)
	{
		StringInfoData all;
		StringInfoData part;
		int64		n;
		uint8	   *copy;
		uint8	   *again;
		size_t		again_len;
		int32		again_count;
		const char *err;

		/* everything, then up again: same records */
		FUZZ_CHECK(down_convert(batch, batch_len, magic, PG_INT64_MIN,
								PG_INT64_MAX, &all, &n) == NULL);
		FUZZ_CHECK(n == count);
		copy = fuzz_copy((const uint8 *) all.data + 3, all.len - 3);
		again = up_convert(copy, all.len - 3, &again_len, &again_count, &err);
		if (again == NULL)
		{
			fprintf(stderr, "down-converted message set (magic %d) does not up-convert: %s\n",
					magic, err);
			abort();
		}
		FUZZ_CHECK(again_count == count);
		check_same_records(batch, batch_len, again, again_len, magic == 1);
		free(again);
		free(copy);

		/* a tiny max_bytes still gives the first message whole */
		FUZZ_CHECK(down_convert(batch, batch_len, magic, PG_INT64_MIN, 1,
								&part, &n) == NULL);
		FUZZ_CHECK(n == 1);
		FUZZ_CHECK(part.len <= all.len && memcmp(part.data, all.data, part.len) == 0);
		pfree(part.data);

		/* from the last offset: the last message only */
		FUZZ_CHECK(down_convert(batch, batch_len, magic,
								BASE_OFFSET + count - 1, PG_INT64_MAX,
								&part, &n) == NULL);
		FUZZ_CHECK(n == 1);
		FUZZ_CHECK(part.len <= all.len &&
				   memcmp(part.data + 3, all.data + all.len - (part.len - 3),
						  part.len - 3) == 0);
		pfree(part.data);
		pfree(all.data);
	}
}

static bool
try_up(const uint8 *data, size_t len)
{
	uint8	   *copy = fuzz_copy(data, len);
	size_t		batch_len;
	int32		count;
	uint8	   *batch = up_convert(copy, len, &batch_len, &count, NULL);

	if (batch != NULL)
	{
		check_accepted(batch, batch_len, count);
		free(batch);
	}
	free(copy);
	return batch != NULL;
}

/*
 * Append the message set at data to out with every CRC recomputed; the
 * compressed wrappers at depth 0 are decompressed, fixed the same way and
 * compressed again.  Bytes that do not parse are copied as they are.
 */
static void
normalize(const uint8 *data, size_t len, StringInfo out, int depth)
{
	size_t		pos = 0;

	while (len - pos >= SL_LEGACY_LOG_OVERHEAD)
	{
		int32		size = SlLoadInt32(data + pos + 8);
		const uint8 *m = data + pos + SL_LEGACY_LOG_OVERHEAD;
		size_t		prefix;
		int32		klen;
		int32		vlen;
		int			codec;
		int			start = out->len;

		if (size < SL_LEGACY_PREFIX_SIZE_V0 ||
			(size_t) size > len - pos - SL_LEGACY_LOG_OVERHEAD)
			break;
		codec = m[5] & SL_LEGACY_ATTR_COMPRESSION_MASK;
		prefix = m[4] == 1 ? SL_LEGACY_PREFIX_SIZE_V1 : SL_LEGACY_PREFIX_SIZE_V0;

		if (depth == 0 && codec >= SL_COMPRESSION_GZIP &&
			codec <= SL_COMPRESSION_LZ4 &&
			(size_t) size >= prefix + 8 &&
			(klen = SlLoadInt32(m + prefix)) >= -1 &&
			klen <= size - (int32) prefix - 8 &&
			(vlen = SlLoadInt32(m + prefix + 4 + Max(klen, 0))) >= 0 &&
			vlen == size - (int32) prefix - 8 - Max(klen, 0))
		{
			const uint8 *value = m + prefix + 8 + Max(klen, 0);
			StringInfoData inner;
			StringInfoData fixed;
			StringInfoData packed;

			initStringInfo(&inner);
			initStringInfo(&fixed);
			initStringInfo(&packed);
			if (SlDecompress((SlCompression) codec, value, vlen, &inner,
							 FUZZ_MAX_DECOMPRESSED) == NULL)
			{
				normalize((const uint8 *) inner.data, inner.len, &fixed, depth + 1);
				FUZZ_CHECK(SlCompress((SlCompression) codec,
									  (const uint8 *) fixed.data, fixed.len,
									  &packed) == NULL);
				/* the same message with the new value */
				appendBinaryStringInfo(out, (const char *) data + pos,
									   SL_LEGACY_LOG_OVERHEAD + prefix + 4 + Max(klen, 0));
				enlargeStringInfo(out, 4);
				SlStoreInt32((uint8 *) out->data + out->len, packed.len);
				out->len += 4;
				appendBinaryStringInfo(out, packed.data, packed.len);
				SlStoreInt32((uint8 *) out->data + start + 8,
							 out->len - start - SL_LEGACY_LOG_OVERHEAD);
				pfree(inner.data);
				pfree(fixed.data);
				pfree(packed.data);
				goto fix_crc;
			}
			pfree(inner.data);
			pfree(fixed.data);
			pfree(packed.data);
		}
		appendBinaryStringInfo(out, (const char *) data + pos,
							   SL_LEGACY_LOG_OVERHEAD + size);
fix_crc:
		{
			uint8	   *msg = (uint8 *) out->data + start + SL_LEGACY_LOG_OVERHEAD;

			SlStoreInt32(msg, (int32) message_crc(msg, out->len - start - SL_LEGACY_LOG_OVERHEAD));
		}
		pos += SL_LEGACY_LOG_OVERHEAD + size;
	}
	appendBinaryStringInfo(out, (const char *) data + pos, len - pos);
}

/* Down-convert the input as stored batches */
static bool
try_down(const uint8 *data, size_t len)
{
	bool		accepted = false;
	SlBatchHeader hdr;
	int64		first = PG_INT64_MIN;

	if (SlBatchParseHeader(data, len, &hdr, false) == NULL)
		first = (int64) ((uint64) hdr.base_offset + 1);

	for (int8 magic = 0; magic <= 1; magic++)
	{
		StringInfoData out;
		int64		n;

		if (down_convert(data, len, magic, PG_INT64_MIN, PG_INT64_MAX,
						 &out, &n) == NULL)
		{
			accepted = true;
			if (n > 0 && n <= SL_LEGACY_MAX_RECORDS)
			{
				uint8	   *copy = fuzz_copy((const uint8 *) out.data + 3, out.len - 3);
				size_t		batch_len;
				int32		count;
				const char *err;
				uint8	   *batch = up_convert(copy, out.len - 3, &batch_len, &count, &err);

				if (batch == NULL)
				{
					fprintf(stderr, "down-converted message set (magic %d) does not up-convert: %s\n",
							magic, err);
					abort();
				}
				FUZZ_CHECK(count == n);
				free(batch);
				free(copy);
			}
		}
		pfree(out.data);

		if (down_convert(data, len, magic, first, 64, &out, &n) == NULL)
			FUZZ_CHECK(n <= 1 || out.len - 3 <= 64);
		pfree(out.data);
	}
	return accepted;
}

/* All batches that parse are uncompressed */
static bool
all_uncompressed(const uint8 *data, size_t len)
{
	size_t		pos = 0;

	while (pos < len)
	{
		SlBatchHeader hdr;

		if (SlBatchParseHeader(data + pos, len - pos, &hdr, false) != NULL)
			break;
		if (SlBatchCompression(&hdr) != SL_COMPRESSION_NONE)
			return false;
		pos += SlBatchSize(&hdr);
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool		accepted;
	StringInfoData fixed;
	uint8	   *copy;

	/* as a Produce v0-2 message set */
	accepted = try_up(data, size);
	initStringInfo(&fixed);
	normalize(data, size, &fixed, 0);
	if ((size_t) fixed.len != size || memcmp(fixed.data, data, size) != 0)
		try_up((const uint8 *) fixed.data, fixed.len);
	pfree(fixed.data);

	/* as stored batches for a Fetch v0-3 */
	copy = fuzz_copy(data, size);
	initStringInfo(&fixed);
	FUZZ_CHECK(SlBatchesToMessageSet(copy, size, 2, PG_INT64_MAX, &fixed) != NULL);
	FUZZ_CHECK(fixed.len == 0);
	pfree(fixed.data);
	accepted |= try_down(copy, size);
	if (all_uncompressed(copy, size))
	{
		fuzz_fix_batch_crcs(copy, size);
		if (memcmp(copy, data, size) != 0)
			try_down(copy, size);
	}
	free(copy);

	FUZZ_EXPECT(accepted, "neither a message set nor stored batches");
	return 0;
}
