#include "streamlog/protocol/codec_base.h"

#include <stdlib.h>

#include <zlib.h>
#include <snappy-c.h>

#include "streamlog/protocol/compression.h"
#include "streamlog/protocol/legacy_records.h"
#include "streamlog/protocol/records.h"
#include "unit.h"

#define MAX_DECOMP (64 * 1024 * 1024)
#define BASE_TS INT64CONST(1700000000000)
#define NO_LIMIT PG_INT64_MAX

/* State of the random loops, seeded by main() (UNIT_SEED reproduces a run) */
static uint64_t seed;

static const SlCompression all_codecs[] = {
	SL_COMPRESSION_NONE, SL_COMPRESSION_GZIP, SL_COMPRESSION_SNAPPY,
	SL_COMPRESSION_LZ4, SL_COMPRESSION_ZSTD
};

/* ---- assembling legacy message sets by hand ---- */

static void
put8(StringInfo b, int v)
{
	appendStringInfoChar(b, (char) (uint8) v);
}

static void
put32(StringInfo b, int32 v)
{
	uint8		x[4];

	SlStoreInt32(x, v);
	appendBinaryStringInfo(b, (const char *) x, 4);
}

static void
put64(StringInfo b, int64 v)
{
	uint8		x[8];

	SlStoreInt64(x, v);
	appendBinaryStringInfo(b, (const char *) x, 8);
}

static uint32
zcrc(const void *p, size_t n)
{
	return (uint32) crc32(crc32(0L, Z_NULL, 0), (const Bytef *) p, (uInt) n);
}

/*
 * Append an entry whose message, after the crc field, is body (blen bytes);
 * the size and CRC-32 are filled in.
 */
static void
append_entry(StringInfo b, int64 offset, const uint8 *body, int blen)
{
	put64(b, offset);
	put32(b, 4 + blen);
	put32(b, (int32) zcrc(body, blen));
	appendBinaryStringInfo(b, (const char *) body, blen);
}

/* Append one message; key/value NULL with length -1 for null */
static void
append_message(StringInfo b, int64 offset, int magic, int attributes,
			   int64 ts, const void *key, int32 key_len,
			   const void *value, int32 value_len)
{
	StringInfoData body;

	initStringInfo(&body);
	put8(&body, magic);
	put8(&body, attributes);
	if (magic == 1)
		put64(&body, ts);
	put32(&body, key_len);
	if (key_len > 0)
		appendBinaryStringInfo(&body, key, key_len);
	put32(&body, value_len);
	if (value_len > 0)
		appendBinaryStringInfo(&body, value, value_len);
	append_entry(b, offset, (const uint8 *) body.data, body.len);
	pfree(body.data);
}

#define RAW_SNAPPY 100			/* pseudo codec: snappy without xerial */

/* Compress src with codec (or RAW_SNAPPY) into dst */
static void
compress_set(int codec, const StringInfo src, StringInfo dst)
{
	resetStringInfo(dst);
	if (codec == RAW_SNAPPY)
	{
		size_t		n = snappy_max_compressed_length(src->len);

		enlargeStringInfo(dst, (int) n);
		if (snappy_compress(src->data, src->len, dst->data, &n) != SNAPPY_OK)
			abort();
		dst->len = (int) n;
	}
	else
		CHECK_NULL_ERR(SlCompress((SlCompression) codec,
								  (const uint8 *) src->data, src->len, dst));
}

/* Append a wrapper message holding inner (already a message set) */
static void
append_wrapper(StringInfo b, int64 offset, int magic, int codec,
			   int extra_attributes, int64 ts, const StringInfo inner)
{
	StringInfoData z;
	int			attr_codec = codec == RAW_SNAPPY ? SL_COMPRESSION_SNAPPY : codec;

	initStringInfo(&z);
	compress_set(codec, inner, &z);
	append_message(b, offset, magic, attr_codec | extra_attributes, ts,
				   NULL, -1, z.data, z.len);
	pfree(z.data);
}

/* Independent xxHash32 (seed 0), written bytewise */
static uint32
t_rotl(uint32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static uint32
t_xxh32(const uint8 *p, size_t n)
{
	const uint32 P1 = 2654435761U,
				P2 = 2246822519U,
				P3 = 3266489917U,
				P4 = 668265263U,
				P5 = 374761393U;
	size_t		i = 0;
	uint32		h;

#define LANE(q) ((uint32) (q)[0] | (uint32) (q)[1] << 8 | (uint32) (q)[2] << 16 | (uint32) (q)[3] << 24)
	if (n >= 16)
	{
		uint32		v[4] = {P1 + P2, P2, 0, -P1};

		for (; i + 16 <= n; i += 16)
		{
			int			k;

			for (k = 0; k < 4; k++)
				v[k] = t_rotl(v[k] + LANE(p + i + 4 * k) * P2, 13) * P1;
		}
		h = t_rotl(v[0], 1) + t_rotl(v[1], 7) + t_rotl(v[2], 12) + t_rotl(v[3], 18);
	}
	else
		h = P5;
	h += (uint32) n;
	for (; i + 4 <= n; i += 4)
		h = t_rotl(h + LANE(p + i) * P3, 17) * P4;
	for (; i < n; i++)
		h = t_rotl(h + p[i] * P5, 11) * P1;
#undef LANE
	h = (h ^ (h >> 15)) * P2;
	h = (h ^ (h >> 13)) * P3;
	return h ^ (h >> 16);
}

/*
 * An LZ4 frame of uncompressed blocks, built without liblz4.  hc_mode 0:
 * correct header checksum, 1: the KAFKA-3160 one, 2: wrong.
 */
static void
make_lz4_frame(StringInfo f, const StringInfo data, int hc_mode,
			   bool content_size, bool dict_id)
{
	uint8		h[32];
	int			n = 0;
	int			i;
	uint8		hc;
	int			off;

	h[n++] = 0x04;
	h[n++] = 0x22;
	h[n++] = 0x4d;
	h[n++] = 0x18;
	h[n++] = 0x60 | (content_size ? 0x08 : 0) | (dict_id ? 0x01 : 0);
	h[n++] = 0x40;
	if (content_size)
		for (i = 0; i < 8; i++)
			h[n++] = i < 4 ? (uint8) ((uint32) data->len >> (8 * i)) : 0;
	if (dict_id)
		for (i = 0; i < 4; i++)
			h[n++] = (uint8) (0x11 * (i + 1));
	if (hc_mode == 1)
		hc = (uint8) (t_xxh32(h, n) >> 8);
	else
		hc = (uint8) (t_xxh32(h + 4, n - 4) >> 8);
	if (hc_mode == 2)
		hc ^= 0x5a;
	h[n++] = hc;
	resetStringInfo(f);
	appendBinaryStringInfo(f, (const char *) h, n);
	for (off = 0; off < data->len; off += 65536)
	{
		int			chunk = Min(data->len - off, 65536);
		uint32		marker = (uint32) chunk | 0x80000000U;

		for (i = 0; i < 4; i++)
			put8(f, (int) ((marker >> (8 * i)) & 0xff));
		appendBinaryStringInfo(f, data->data + off, chunk);
	}
	put32(f, 0);
}

/* ---- checking up-converted batches ---- */

typedef struct Exp
{
	int64		ts;
	const char *key;			/* NULL for null */
	const char *value;
} Exp;

static int32
slen(const char *s)
{
	return s ? (int32) strlen(s) : -1;
}

/*
 * Check the unsealed batch at out->data + start: n records as in exp, in
 * order, compressed with codec.  Seals a copy at base offset 100 and checks
 * it through the iterator with CRC verification.
 */
static void
check_batch(const StringInfo out, int start, const Exp *exp, int n, int codec)
{
	SlBatchHeader hdr;
	SlRecordIter it;
	SlRecord	rec;
	uint8	   *copy;
	size_t		len = (size_t) (out->len - start);
	int			i = 0;

	CHECK_NULL_ERR(SlBatchParseHeader((const uint8 *) out->data + start, len, &hdr, false));
	CHECK_EQ_INT(SlBatchSize(&hdr), len);
	CHECK_EQ_INT(hdr.base_offset, 0);
	CHECK_EQ_INT(hdr.record_count, n);
	CHECK_EQ_INT(hdr.last_offset_delta, n - 1);
	CHECK_EQ_INT(SlBatchCompression(&hdr), codec);
	CHECK_EQ_INT(hdr.attributes & ~SL_BATCH_ATTR_COMPRESSION_MASK, 0);
	CHECK_EQ_INT(hdr.producer_id, -1);

	copy = malloc(len);
	memcpy(copy, out->data + start, len);
	SlBatchSeal(copy, len, 100, -1);
	CHECK_NULL_ERR(SlRecordIterInit(&it, copy, len, true, MAX_DECOMP));
	while (SlRecordIterNext(&it, &rec))
	{
		if (i >= n)
		{
			i++;
			break;
		}
		CHECK_EQ_INT(rec.offset, 100 + i);
		CHECK_EQ_INT(rec.timestamp, exp[i].ts);
		CHECK_EQ_INT(rec.key_len, slen(exp[i].key));
		CHECK_EQ_INT(rec.value_len, slen(exp[i].value));
		if (exp[i].key && rec.key_len == slen(exp[i].key))
			CHECK_MEM(rec.key, exp[i].key, rec.key_len);
		if (exp[i].value && rec.value_len == slen(exp[i].value))
			CHECK_MEM(rec.value, exp[i].value, rec.value_len);
		CHECK(exp[i].key != NULL || rec.key == NULL);
		CHECK(exp[i].value != NULL || rec.value == NULL);
		CHECK_EQ_INT(rec.header_count, 0);
		i++;
	}
	CHECK(it.error == NULL);
	CHECK_EQ_INT(i, n);
	SlRecordIterFree(&it);
	free(copy);
}

/* Up-convert set into a fresh buffer and check the result against exp */
static void
upconvert_and_check(const StringInfo set, const Exp *exp, int n, int codec)
{
	StringInfoData out;
	int32		count = -1;
	const char *err;

	initStringInfo(&out);
	appendStringInfoString(&out, "prefix");
	err = SlMessageSetToBatch((const uint8 *) set->data, set->len,
							  MAX_DECOMP, &out, &count);
	CHECK_NULL_ERR(err);
	if (err == NULL)
	{
		CHECK_EQ_INT(count, n);
		CHECK_MEM(out.data, "prefix", 6);
		check_batch(&out, 6, exp, n, codec);
	}
	pfree(out.data);
}

/* Up-convert set, expecting an error; out must be left alone */
static void
expect_upconvert_error(const StringInfo set, size_t max_decomp,
					   const char *what)
{
	StringInfoData out;
	int32		count = 12345;
	const char *err;

	initStringInfo(&out);
	appendStringInfoString(&out, "keep");
	err = SlMessageSetToBatch((const uint8 *) set->data, set->len,
							  max_decomp, &out, &count);
	CHECK_MSG(err != NULL, "%s was accepted", what);
	CHECK_EQ_INT(out.len, 4);
	CHECK(strcmp(out.data, "keep") == 0);
	CHECK_EQ_INT(count, 12345);
	pfree(out.data);
}

/* ---- up-conversion tests ---- */

static const uint8 golden_v0[] = {
	0, 0, 0, 0, 0, 0, 0, 0,		/* offset */
	0, 0, 0, 22,				/* message_size */
	0x23, 0x56, 0xc1, 0x37,		/* crc */
	0,							/* magic */
	0,							/* attributes */
	0, 0, 0, 3, 'k', 'e', 'y',
	0, 0, 0, 5, 'v', 'a', 'l', 'u', 'e'
};

static void
test_golden_v0(void)
{
	StringInfoData set;
	StringInfoData built;
	Exp			exp[] = {{-1, "key", "value"}};

	CHECK_EQ_UINT(zcrc(golden_v0 + 16, sizeof(golden_v0) - 16), 0x2356c137);

	initStringInfo(&built);
	append_message(&built, 0, 0, 0, 0, "key", 3, "value", 5);
	CHECK_EQ_INT(built.len, sizeof(golden_v0));
	CHECK_MEM(built.data, golden_v0, sizeof(golden_v0));

	initStringInfo(&set);
	appendBinaryStringInfo(&set, (const char *) golden_v0, sizeof(golden_v0));
	upconvert_and_check(&set, exp, 1, SL_COMPRESSION_NONE);
	pfree(set.data);
	pfree(built.data);
}

static void
test_uncompressed_sets(void)
{
	StringInfoData set;
	Exp			v1[] = {
		{BASE_TS, "a", "1"},
		{BASE_TS - 500, NULL, "two"},
		{BASE_TS + 7, "k3", NULL},
		{BASE_TS + 8, "", ""},
		{-1, NULL, NULL},
	};
	Exp			v0[] = {
		{-1, "x", "first"},
		{-1, NULL, NULL},
		{-1, "", "third"},
	};
	int			i;

	initStringInfo(&set);
	for (i = 0; i < (int) lengthof(v1); i++)
		append_message(&set, i, 1, i == 4 ? SL_LEGACY_ATTR_LOG_APPEND_TIME : 0,
					   v1[i].ts, v1[i].key, slen(v1[i].key),
					   v1[i].value, slen(v1[i].value));
	upconvert_and_check(&set, v1, lengthof(v1), SL_COMPRESSION_NONE);

	/* the batch header's timestamps follow the records */
	{
		StringInfoData out;
		SlBatchHeader hdr;

		initStringInfo(&out);
		CHECK_NULL_ERR(SlMessageSetToBatch((const uint8 *) set.data, set.len,
										   MAX_DECOMP, &out, NULL));
		CHECK_NULL_ERR(SlBatchParseHeader((const uint8 *) out.data, out.len, &hdr, false));
		CHECK_EQ_INT(hdr.base_timestamp, BASE_TS);
		CHECK_EQ_INT(hdr.max_timestamp, BASE_TS + 8);
		pfree(out.data);
	}

	resetStringInfo(&set);
	for (i = 0; i < (int) lengthof(v0); i++)
		append_message(&set, 1000 + i, 0, 0, 0, v0[i].key, slen(v0[i].key),
					   v0[i].value, slen(v0[i].value));
	upconvert_and_check(&set, v0, lengthof(v0), SL_COMPRESSION_NONE);

	/* magic 0 and magic 1 messages side by side */
	resetStringInfo(&set);
	append_message(&set, 0, 0, 0, 0, "x", 1, "first", 5);
	append_message(&set, 0, 1, 0, BASE_TS, "a", 1, "1", 1);
	{
		Exp			mixed[] = {{-1, "x", "first"}, {BASE_TS, "a", "1"}};

		upconvert_and_check(&set, mixed, 2, SL_COMPRESSION_NONE);
	}
	pfree(set.data);
}

/* Inner message i of a compressed test set */
static void
inner_exp(int i, int magic, Exp *e, char *kbuf, char *vbuf)
{
	snprintf(kbuf, 16, "ik%d", i);
	snprintf(vbuf, 64, "inner value %d %s", i, i % 2 ? "odd" : "even");
	e->ts = magic == 1 ? BASE_TS + 10 * i - (i % 2) * 35 : -1;
	e->key = i % 3 == 1 ? NULL : kbuf;
	e->value = i % 4 == 3 ? NULL : vbuf;
}

static void
test_compressed_wrappers(void)
{
	static const int codecs[] = {
		SL_COMPRESSION_GZIP, SL_COMPRESSION_SNAPPY, RAW_SNAPPY, SL_COMPRESSION_LZ4
	};
	StringInfoData inner;
	StringInfoData set;
	char		kbuf[6][16];
	char		vbuf[6][64];
	Exp			exp[6];
	int			c;
	int			magic;
	int			i;

	initStringInfo(&inner);
	initStringInfo(&set);
	for (c = 0; c < (int) lengthof(codecs); c++)
	{
		int			out_codec = codecs[c] == RAW_SNAPPY ? SL_COMPRESSION_SNAPPY : codecs[c];

		for (magic = 0; magic <= 1; magic++)
		{
			resetStringInfo(&inner);
			for (i = 0; i < 6; i++)
			{
				inner_exp(i, magic, &exp[i], kbuf[i], vbuf[i]);
				/* magic 1: relative offsets; magic 0: absolute */
				append_message(&inner, magic == 1 ? i : 500 + i, magic, 0,
							   exp[i].ts, exp[i].key, slen(exp[i].key),
							   exp[i].value, slen(exp[i].value));
			}
			resetStringInfo(&set);
			append_wrapper(&set, magic == 1 ? 5 : 505, magic, codecs[c], 0,
						   BASE_TS + 100, &inner);
			upconvert_and_check(&set, exp, 6, out_codec);
		}
	}

	/* LogAppendTime wrapper: every inner message takes its timestamp */
	resetStringInfo(&inner);
	for (i = 0; i < 4; i++)
	{
		inner_exp(i, 1, &exp[i], kbuf[i], vbuf[i]);
		append_message(&inner, i, 1, 0, exp[i].ts, exp[i].key, slen(exp[i].key),
					   exp[i].value, slen(exp[i].value));
		exp[i].ts = BASE_TS + 999;
	}
	resetStringInfo(&set);
	append_wrapper(&set, 3, 1, SL_COMPRESSION_GZIP, SL_LEGACY_ATTR_LOG_APPEND_TIME,
				   BASE_TS + 999, &inner);
	upconvert_and_check(&set, exp, 4, SL_COMPRESSION_GZIP);

	/* plain messages and wrappers of two codecs in one set */
	{
		Exp			mixed[8];
		int			n = 0;

		resetStringInfo(&set);
		mixed[n++] = (Exp) {BASE_TS - 1, "plain", "before"};
		append_message(&set, 0, 1, 0, BASE_TS - 1, "plain", 5, "before", 6);
		resetStringInfo(&inner);
		for (i = 0; i < 3; i++)
		{
			inner_exp(i, 1, &mixed[n], kbuf[i], vbuf[i]);
			append_message(&inner, i, 1, 0, mixed[n].ts, mixed[n].key,
						   slen(mixed[n].key), mixed[n].value,
						   slen(mixed[n].value));
			n++;
		}
		append_wrapper(&set, 2, 1, SL_COMPRESSION_SNAPPY, 0, BASE_TS, &inner);
		mixed[n++] = (Exp) {BASE_TS + 1, NULL, "middle"};
		append_message(&set, 0, 1, 0, BASE_TS + 1, NULL, -1, "middle", 6);
		resetStringInfo(&inner);
		for (i = 3; i < 5; i++)
		{
			inner_exp(i, 1, &mixed[n], kbuf[i], vbuf[i]);
			append_message(&inner, i - 3, 1, 0, mixed[n].ts, mixed[n].key,
						   slen(mixed[n].key), mixed[n].value,
						   slen(mixed[n].value));
			n++;
		}
		append_wrapper(&set, 1, 1, SL_COMPRESSION_GZIP, 0, BASE_TS, &inner);
		upconvert_and_check(&set, mixed, n, SL_COMPRESSION_SNAPPY);
	}
	pfree(inner.data);
	pfree(set.data);
}

static void
test_lz4_header_checksums(void)
{
	StringInfoData data;
	StringInfoData frame;
	StringInfoData inner;
	StringInfoData set;
	StringInfoData out;
	char		kbuf[3][16];
	char		vbuf[3][64];
	Exp			exp[3];
	int			i;
	int			mode;
	int			flags;
	static const char nobody[] = "Nobody inspects the spammish repetition";

	/* the test's xxHash32 against known values and liblz4's own frames */
	CHECK_EQ_UINT(t_xxh32((const uint8 *) "", 0), 0x02cc5d05);
	CHECK_EQ_UINT(t_xxh32((const uint8 *) nobody, strlen(nobody)), 0xe2293b2f);
	initStringInfo(&data);
	initStringInfo(&frame);
	for (i = 0; i < 3; i++)
	{
		int			desc_len;

		appendStringInfoString(&data, "some data to compress, some data to compress ");
		resetStringInfo(&frame);
		CHECK_NULL_ERR(SlCompress(SL_COMPRESSION_LZ4, (const uint8 *) data.data,
								  data.len, &frame));
		desc_len = 2 + ((frame.data[4] & 0x08) ? 8 : 0) + ((frame.data[4] & 0x01) ? 4 : 0);
		CHECK_EQ_UINT((uint8) frame.data[4 + desc_len],
					  (uint8) (t_xxh32((const uint8 *) frame.data + 4, desc_len) >> 8));
	}

	initStringInfo(&inner);
	initStringInfo(&set);
	initStringInfo(&out);
	for (flags = 0; flags < 4; flags++)
	{
		bool		content_size = (flags & 1) != 0;
		bool		dict_id = (flags & 2) != 0;

		for (mode = 0; mode < 3; mode++)
		{
			int			magic;

			for (magic = 0; magic <= 1; magic++)
			{
				const char *err;

				resetStringInfo(&inner);
				for (i = 0; i < 3; i++)
				{
					inner_exp(i, magic, &exp[i], kbuf[i], vbuf[i]);
					append_message(&inner, magic ? i : 7 + i, magic, 0, exp[i].ts,
								   exp[i].key, slen(exp[i].key), exp[i].value,
								   slen(exp[i].value));
				}
				make_lz4_frame(&frame, &inner, mode, content_size, dict_id);
				resetStringInfo(&set);
				append_message(&set, magic ? 2 : 9, magic, SL_COMPRESSION_LZ4,
							   BASE_TS, NULL, -1, frame.data, frame.len);
				if (mode == 2)
				{
					expect_upconvert_error(&set, MAX_DECOMP, "bad lz4 header checksum");
					continue;
				}
				resetStringInfo(&out);
				err = SlMessageSetToBatch((const uint8 *) set.data, set.len,
										  MAX_DECOMP, &out, NULL);
				CHECK_MSG(err == NULL, "lz4 frame mode %d flags %d magic %d: %s",
						  mode, flags, magic, err);
				if (err == NULL)
				{
					SlBatchHeader hdr;
					const uint8 *records;
					size_t		rlen;

					check_batch(&out, 0, exp, 3, SL_COMPRESSION_LZ4);
					/* the stored batch carries a correct LZ4 frame */
					CHECK_NULL_ERR(SlBatchParseHeader((const uint8 *) out.data,
													  out.len, &hdr, false));
					records = (const uint8 *) out.data + SL_BATCH_HEADER_SIZE;
					rlen = out.len - SL_BATCH_HEADER_SIZE;
					if (rlen > 7)
					{
						int			dl = 2 + ((records[4] & 0x08) ? 8 : 0) + ((records[4] & 0x01) ? 4 : 0);

						CHECK_EQ_UINT(records[4 + dl], (uint8) (t_xxh32(records + 4, dl) >> 8));
					}
				}
			}
		}
	}
	pfree(data.data);
	pfree(frame.data);
	pfree(inner.data);
	pfree(set.data);
	pfree(out.data);
}

/* Append a message with an arbitrary body of given bytes (valid CRC) */
static void
append_body(StringInfo b, const uint8 *body, int len)
{
	append_entry(b, 0, body, len);
}

static void
test_upconvert_errors(void)
{
	StringInfoData set;
	StringInfoData inner;
	StringInfoData inner2;
	int			i;

	initStringInfo(&set);
	initStringInfo(&inner);
	initStringInfo(&inner2);

	expect_upconvert_error(&set, MAX_DECOMP, "an empty set");

	/* bad CRC */
	append_message(&set, 0, 1, 0, BASE_TS, "k", 1, "value", 5);
	set.data[set.len - 1] ^= 0x01;
	expect_upconvert_error(&set, MAX_DECOMP, "a bad CRC");
	resetStringInfo(&set);
	append_message(&set, 0, 0, 0, 0, "k", 1, "value", 5);
	set.data[12] ^= 0x80;
	expect_upconvert_error(&set, MAX_DECOMP, "a bad CRC field");

	/* bad magic */
	{
		static const int bad_magic[] = {2, 3, -1, 127};

		for (i = 0; i < (int) lengthof(bad_magic); i++)
		{
			resetStringInfo(&set);
			append_message(&set, 0, bad_magic[i], 0, 0, "k", 1, "v", 1);
			expect_upconvert_error(&set, MAX_DECOMP, "a bad magic");
		}
	}

	/* bad lengths, all with valid CRCs */
	{
		static const uint8 key_too_short[] = {0, 0, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0};
		static const uint8 key_too_long[] = {0, 0, 0, 0, 0, 9, 'a', 0, 0, 0, 0};
		static const uint8 value_too_long[] = {0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 'a'};
		static const uint8 value_neg[] = {0, 0, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0};
		static const uint8 trailing[] = {0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 'a', 'b'};
		static const uint8 no_value[] = {0, 0, 0, 0, 0, 1, 'a', 0, 0, 0};
		static const uint8 v1_short[] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
		static const uint8 v1_no_ts[] = {1, 0, 0, 0, 0, 1, 'a', 0, 0, 0, 1, 'b', 0, 0, 0, 0};
		static const struct
		{
			const uint8 *body;
			int			len;
		}			bad[] = {
			{key_too_short, sizeof(key_too_short)},
			{key_too_long, sizeof(key_too_long)},
			{value_too_long, sizeof(value_too_long)},
			{value_neg, sizeof(value_neg)},
			{trailing, sizeof(trailing)},
			{no_value, sizeof(no_value)},
			{v1_short, sizeof(v1_short)},
			{v1_no_ts, sizeof(v1_no_ts)},
		};

		for (i = 0; i < (int) lengthof(bad); i++)
		{
			resetStringInfo(&set);
			append_message(&set, 0, 0, 0, 0, "ok", 2, "ok", 2);
			append_body(&set, bad[i].body, bad[i].len);
			expect_upconvert_error(&set, MAX_DECOMP, "a bad length");
		}
	}

	/* message_size field lies */
	{
		static const int32 sizes[] = {-1, 0, 5, 13, 23, 1000, PG_INT32_MAX, PG_INT32_MIN};

		for (i = 0; i < (int) lengthof(sizes); i++)
		{
			resetStringInfo(&set);
			append_message(&set, 0, 0, 0, 0, "k", 1, "v", 1);
			SlStoreInt32((uint8 *) set.data + 8, sizes[i]);
			expect_upconvert_error(&set, MAX_DECOMP, "a wrong message size");
		}
	}

	/* truncated entry header */
	resetStringInfo(&set);
	append_message(&set, 0, 0, 0, 0, "k", 1, "v", 1);
	appendBinaryStringInfo(&set, "\0\0\0\0\0\0\0\0\0\0\0", 11);
	expect_upconvert_error(&set, MAX_DECOMP, "a truncated entry header");

	/* nested compression */
	resetStringInfo(&inner2);
	append_message(&inner2, 0, 1, 0, BASE_TS, "k", 1, "v", 1);
	resetStringInfo(&inner);
	append_message(&inner, 0, 1, 0, BASE_TS, "k", 1, "v", 1);
	append_wrapper(&inner, 1, 1, SL_COMPRESSION_GZIP, 0, BASE_TS, &inner2);
	resetStringInfo(&set);
	append_wrapper(&set, 1, 1, SL_COMPRESSION_GZIP, 0, BASE_TS, &inner);
	expect_upconvert_error(&set, MAX_DECOMP, "nested compression");

	/* inner magic differs from the wrapper's */
	resetStringInfo(&inner);
	append_message(&inner, 0, 0, 0, 0, "k", 1, "v", 1);
	resetStringInfo(&set);
	append_wrapper(&set, 0, 1, SL_COMPRESSION_GZIP, 0, BASE_TS, &inner);
	expect_upconvert_error(&set, MAX_DECOMP, "magic 0 inside magic 1");
	resetStringInfo(&inner);
	append_message(&inner, 0, 1, 0, BASE_TS, "k", 1, "v", 1);
	resetStringInfo(&set);
	append_wrapper(&set, 0, 0, SL_COMPRESSION_GZIP, 0, 0, &inner);
	expect_upconvert_error(&set, MAX_DECOMP, "magic 1 inside magic 0");

	/* compressed message with a null value */
	resetStringInfo(&set);
	append_message(&set, 0, 1, SL_COMPRESSION_GZIP, BASE_TS, NULL, -1, NULL, -1);
	expect_upconvert_error(&set, MAX_DECOMP, "a null wrapper value");

	/* codecs the legacy format does not have */
	for (i = 4; i <= 7; i++)
	{
		resetStringInfo(&inner);
		append_message(&inner, 0, 1, 0, BASE_TS, "k", 1, "v", 1);
		resetStringInfo(&set);
		append_wrapper(&set, 0, 1, SL_COMPRESSION_ZSTD, 0, BASE_TS, &inner);
		set.data[12 + 5] = (char) i;
		SlStoreInt32((uint8 *) set.data + 12,
					 (int32) zcrc(set.data + 16, set.len - 16));
		expect_upconvert_error(&set, MAX_DECOMP, "an unknown codec");
	}

	/* a wrapper with nothing inside, or garbage inside */
	resetStringInfo(&inner);
	resetStringInfo(&set);
	append_wrapper(&set, 0, 1, SL_COMPRESSION_GZIP, 0, BASE_TS, &inner);
	expect_upconvert_error(&set, MAX_DECOMP, "an empty wrapper");
	appendStringInfoString(&inner, "this is not a message set at all");
	resetStringInfo(&set);
	append_wrapper(&set, 0, 1, SL_COMPRESSION_SNAPPY, 0, BASE_TS, &inner);
	expect_upconvert_error(&set, MAX_DECOMP, "garbage in a wrapper");
	resetStringInfo(&set);
	append_message(&set, 0, 1, SL_COMPRESSION_GZIP, BASE_TS, NULL, -1, "not gzip", 8);
	expect_upconvert_error(&set, MAX_DECOMP, "an undecodable wrapper");

	/* inner set truncated by one byte */
	resetStringInfo(&inner);
	append_message(&inner, 0, 1, 0, BASE_TS, "k", 1, "v", 1);
	append_message(&inner, 1, 1, 0, BASE_TS, "k", 1, "v", 1);
	inner.len--;
	resetStringInfo(&set);
	append_wrapper(&set, 1, 1, SL_COMPRESSION_LZ4, 0, BASE_TS, &inner);
	expect_upconvert_error(&set, MAX_DECOMP, "a truncated inner message");

	/* decompression bound, per wrapper and for all wrappers together */
	resetStringInfo(&inner);
	for (i = 0; i < 20; i++)
		append_message(&inner, i, 1, 0, BASE_TS, "key", 3,
					   "a value of thirty-two bytes.....", 32);
	resetStringInfo(&set);
	append_wrapper(&set, 19, 1, SL_COMPRESSION_GZIP, 0, BASE_TS, &inner);
	expect_upconvert_error(&set, inner.len - 1, "too much decompressed data");
	{
		StringInfoData out;

		initStringInfo(&out);
		CHECK_NULL_ERR(SlMessageSetToBatch((const uint8 *) set.data, set.len,
										   inner.len, &out, NULL));
		append_wrapper(&set, 19, 1, SL_COMPRESSION_LZ4, 0, BASE_TS, &inner);
		expect_upconvert_error(&set, inner.len * 2 - 1, "too much decompressed data in total");
		resetStringInfo(&out);
		CHECK_NULL_ERR(SlMessageSetToBatch((const uint8 *) set.data, set.len,
										   inner.len * 2, &out, NULL));
		pfree(out.data);
	}

	pfree(set.data);
	pfree(inner.data);
	pfree(inner2.data);
}

/* The record limit, with a wrapper of SL_LEGACY_MAX_RECORDS empty messages */
static void
test_record_limit(void)
{
	StringInfoData one;
	StringInfoData inner;
	StringInfoData set;
	StringInfoData out;
	int32		count = 0;
	int			i;

	initStringInfo(&one);
	append_message(&one, 0, 0, 0, 0, NULL, -1, NULL, -1);
	initStringInfo(&inner);
	enlargeStringInfo(&inner, one.len * SL_LEGACY_MAX_RECORDS);
	for (i = 0; i < SL_LEGACY_MAX_RECORDS; i++)
		appendBinaryStringInfo(&inner, one.data, one.len);
	initStringInfo(&set);
	append_wrapper(&set, 0, 0, SL_COMPRESSION_GZIP, 0, 0, &inner);
	pfree(inner.data);

	initStringInfo(&out);
	CHECK_NULL_ERR(SlMessageSetToBatch((const uint8 *) set.data, set.len,
									   MAX_DECOMP, &out, &count));
	CHECK_EQ_INT(count, SL_LEGACY_MAX_RECORDS);
	pfree(out.data);

	appendBinaryStringInfo(&set, one.data, one.len);
	expect_upconvert_error(&set, MAX_DECOMP, "too many records");
	pfree(set.data);
	pfree(one.data);
}

/* ---- down-conversion ---- */

typedef struct TRec
{
	int64		ts;
	char		key[32];
	int32		key_len;
	char		value[200];
	int32		value_len;
	int			nheaders;
	SlRecordHeader headers[3];
	char		hkeys[3][8];
	char		hvals[3][8];
} TRec;

static void
make_rec(int i, TRec *r)
{
	int			h;

	memset(r, 0, sizeof(*r));
	r->ts = BASE_TS + (i % 5) * 100 - (i % 3) * 250 + i;
	if (i % 6 == 2)
		r->key_len = -1;
	else
		r->key_len = i % 9 == 0 ? 0 : snprintf(r->key, sizeof(r->key), "key-%d", i);
	if (i % 7 == 3)
		r->value_len = -1;
	else
	{
		int			j;

		r->value_len = (i * 31) % 200;
		for (j = 0; j < r->value_len; j++)
			r->value[j] = (char) ('a' + (i + j) % 26);
	}
	r->nheaders = i % 3;
	for (h = 0; h < r->nheaders; h++)
	{
		r->headers[h].key_len = snprintf(r->hkeys[h], sizeof(r->hkeys[h]), "h%d", h);
		r->headers[h].key = r->hkeys[h];
		r->headers[h].value_len = snprintf(r->hvals[h], sizeof(r->hvals[h]), "v%d", i);
		r->headers[h].value = (const uint8 *) r->hvals[h];
	}
}

/*
 * Append to out a stored batch of records first..first+n-1 (make_rec), at
 * base_offset.  control sets the control bit; log_append_time >= 0 seals the
 * batch with LogAppendTime.
 */
static void
append_stored(StringInfo out, SlCompression codec, int first, int n,
			  int64 base_offset, bool control, int64 log_append_time)
{
	SlBatchBuilder b;
	int			start = out->len;
	int			i;

	SlBatchBuilderInit(&b, codec);
	for (i = 0; i < n; i++)
	{
		TRec		r;

		make_rec(first + i, &r);
		SlBatchBuilderAdd(&b, r.ts, r.key_len < 0 ? NULL : (const uint8 *) r.key,
						  r.key_len, r.value_len < 0 ? NULL : (const uint8 *) r.value,
						  r.value_len, r.headers, r.nheaders);
	}
	CHECK_NULL_ERR(SlBatchBuilderFinish(&b, out));
	SlBatchBuilderFree(&b);
	if (control)
	{
		uint8	   *a = (uint8 *) out->data + start + SL_BATCH_OFFSET_ATTRIBUTES;

		SlStoreInt16(a, (int16) (SlLoadInt16(a) | SL_BATCH_ATTR_CONTROL));
	}
	SlBatchSeal((uint8 *) out->data + start, out->len - start, base_offset,
				log_append_time);
}

typedef struct Msg
{
	int64		offset;
	int			magic;
	int			attributes;
	int64		ts;
	const uint8 *key;
	int32		key_len;
	const uint8 *value;
	int32		value_len;
	int			entry_size;
} Msg;

/*
 * Parse a legacy message set strictly (valid CRCs, exact sizes, no
 * truncation, no compression).  Returns the number of messages, or -1.
 */
static int
parse_set(const uint8 *p, size_t len, Msg *msgs, int max)
{
	const uint8 *end = p + len;
	int			n = 0;

	while (p < end)
	{
		Msg			m;
		int32		size;
		const uint8 *q;
		const uint8 *mend;

		if (end - p < 12 || n >= max)
			return -1;
		m.offset = SlLoadInt64(p);
		size = SlLoadInt32(p + 8);
		if (size < 14 || size > end - p - 12)
			return -1;
		q = p + 12;
		mend = q + size;
		if (zcrc(q + 4, size - 4) != (uint32) SlLoadInt32(q))
			return -1;
		m.magic = q[4];
		m.attributes = q[5];
		if ((m.attributes & 7) != 0 || m.magic > 1)
			return -1;
		q += 6;
		m.ts = -1;
		if (m.magic == 1)
		{
			if (mend - q < 16)
				return -1;
			m.ts = SlLoadInt64(q);
			q += 8;
		}
		m.key_len = SlLoadInt32(q);
		q += 4;
		if (m.key_len < -1 || m.key_len > mend - q - 4)
			return -1;
		m.key = m.key_len < 0 ? NULL : q;
		q += Max(m.key_len, 0);
		m.value_len = SlLoadInt32(q);
		q += 4;
		if (m.value_len < -1 || m.value_len != (m.value_len < 0 ? -1 : mend - q))
			return -1;
		m.value = m.value_len < 0 ? NULL : q;
		q += Max(m.value_len, 0);
		if (q != mend)
			return -1;
		m.entry_size = 12 + size;
		msgs[n++] = m;
		p = mend;
	}
	return n;
}

static void
test_downconvert_golden(void)
{
	static const uint8 expect_v1[] = {
		0, 0, 0, 0, 0, 0, 0, 42,	/* offset */
		0, 0, 0, 28,			/* message_size */
		0x72, 0xb7, 0x1b, 0x2b, /* crc */
		1,						/* magic */
		0,						/* attributes */
		0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b, /* 1700000000123 */
		0, 0, 0, 1, 'k',
		0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'
	};
	static const uint8 expect_v0[] = {
		0, 0, 0, 0, 0, 0, 0, 42,
		0, 0, 0, 20,
		0xa4, 0xcd, 0xab, 0x3a,
		0,
		0,
		0, 0, 0, 1, 'k',
		0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'
	};
	SlBatchBuilder b;
	SlRecordHeader h = {"trace", 5, (const uint8 *) "abc", 3};
	StringInfoData batch;
	StringInfoData out;

	CHECK_EQ_UINT(zcrc(expect_v1 + 16, sizeof(expect_v1) - 16), 0x72b71b2b);
	CHECK_EQ_UINT(zcrc(expect_v0 + 16, sizeof(expect_v0) - 16), 0xa4cdab3a);
	CHECK_EQ_INT(SlLoadInt64(expect_v1 + 18), INT64CONST(1700000000123));

	initStringInfo(&batch);
	SlBatchBuilderInit(&b, SL_COMPRESSION_NONE);
	SlBatchBuilderAdd(&b, INT64CONST(1700000000123), (const uint8 *) "k", 1,
					  (const uint8 *) "hello", 5, &h, 1);
	CHECK_NULL_ERR(SlBatchBuilderFinish(&b, &batch));
	SlBatchBuilderFree(&b);
	SlBatchSeal((uint8 *) batch.data, batch.len, 42, -1);

	initStringInfo(&out);
	CHECK_NULL_ERR(SlBatchesToMessageSet((const uint8 *) batch.data, batch.len,
										 1, NO_LIMIT, &out));
	CHECK_EQ_INT(out.len, sizeof(expect_v1));
	if (out.len == sizeof(expect_v1))
		CHECK_MEM(out.data, expect_v1, sizeof(expect_v1));

	resetStringInfo(&out);
	CHECK_NULL_ERR(SlBatchesToMessageSet((const uint8 *) batch.data, batch.len,
										 0, NO_LIMIT, &out));
	CHECK_EQ_INT(out.len, sizeof(expect_v0));
	if (out.len == sizeof(expect_v0))
		CHECK_MEM(out.data, expect_v0, sizeof(expect_v0));

	/* appended after what out holds; bad magic refused */
	resetStringInfo(&out);
	appendStringInfoString(&out, "xy");
	CHECK_NULL_ERR(SlBatchesToMessageSet((const uint8 *) batch.data, batch.len,
										 0, NO_LIMIT, &out));
	CHECK_EQ_INT(out.len, 2 + sizeof(expect_v0));
	CHECK_MEM(out.data + 2, expect_v0, sizeof(expect_v0));
	resetStringInfo(&out);
	CHECK(SlBatchesToMessageSet((const uint8 *) batch.data, batch.len,
								2, NO_LIMIT, &out) != NULL);
	CHECK(SlBatchesToMessageSet((const uint8 *) batch.data, batch.len,
								-1, NO_LIMIT, &out) != NULL);
	CHECK_EQ_INT(out.len, 0);

	/* nothing in, nothing out */
	CHECK_NULL_ERR(SlBatchesToMessageSet((const uint8 *) batch.data, 0,
										 1, NO_LIMIT, &out));
	CHECK_EQ_INT(out.len, 0);

	pfree(batch.data);
	pfree(out.data);
}

/*
 * The stored log of the down-conversion tests: records 0..24 at offsets
 * 0..24 (record i is make_rec(i)), except offset 5, a control batch.  The
 * last batch uses LogAppendTime.
 */
#define LOG_RECORDS 25
#define CONTROL_OFFSET 5
#define LAT_FIRST 18
#define LAT_TS (BASE_TS + 424242)

static void
build_log(StringInfo log, SlCompression codec)
{
	resetStringInfo(log);
	append_stored(log, codec, 0, 5, 0, false, -1);
	append_stored(log, SL_COMPRESSION_NONE, 5, 1, 5, true, -1);
	append_stored(log, codec, 6, 9, 6, false, -1);
	append_stored(log, SL_COMPRESSION_GZIP, 15, 3, 15, false, -1);
	append_stored(log, codec, LAT_FIRST, LOG_RECORDS - LAT_FIRST, LAT_FIRST,
				  false, LAT_TS);
}

/* Check messages msgs[0..n-1] are the log records from first on */
static void
check_log_messages(const Msg *msgs, int n, int magic, int64 first)
{
	int64		expect = first;
	int			i;

	for (i = 0; i < n; i++)
	{
		TRec		r;

		if (expect == CONTROL_OFFSET)
			expect++;
		make_rec((int) expect, &r);
		CHECK_EQ_INT(msgs[i].offset, expect);
		CHECK_EQ_INT(msgs[i].magic, magic);
		if (magic == 1)
		{
			CHECK_EQ_INT(msgs[i].ts, expect >= LAT_FIRST ? LAT_TS : r.ts);
			CHECK_EQ_INT(msgs[i].attributes,
						 expect >= LAT_FIRST ? SL_LEGACY_ATTR_LOG_APPEND_TIME : 0);
		}
		else
			CHECK_EQ_INT(msgs[i].attributes, 0);
		CHECK_EQ_INT(msgs[i].key_len, r.key_len);
		CHECK_EQ_INT(msgs[i].value_len, r.value_len);
		if (msgs[i].key_len == r.key_len && r.key_len > 0)
			CHECK_MEM(msgs[i].key, r.key, r.key_len);
		if (msgs[i].value_len == r.value_len && r.value_len > 0)
			CHECK_MEM(msgs[i].value, r.value, r.value_len);
		if (i > 0)
			CHECK(msgs[i].offset > msgs[i - 1].offset);
		expect++;
	}
}

static void
test_downconvert_log(void)
{
	StringInfoData log;
	StringInfoData out;
	Msg			msgs[LOG_RECORDS + 1];
	int			c;
	int			magic;

	initStringInfo(&log);
	initStringInfo(&out);
	for (c = 0; c < (int) lengthof(all_codecs); c++)
	{
		build_log(&log, all_codecs[c]);
		for (magic = 0; magic <= 1; magic++)
		{
			int			n;
			int			total;
			int64		limit;
			int64		first;

			resetStringInfo(&out);
			CHECK_NULL_ERR(SlBatchesToMessageSet((const uint8 *) log.data, log.len,
												 (int8) magic, NO_LIMIT, &out));
			n = parse_set((const uint8 *) out.data, out.len, msgs, lengthof(msgs));
			CHECK_EQ_INT(n, LOG_RECORDS - 1);
			if (n != LOG_RECORDS - 1)
				continue;
			check_log_messages(msgs, n, magic, 0);
			total = out.len;

			/* max_bytes: as many whole messages as fit, at least one */
			for (limit = -1; limit <= total + 1; limit += (limit < 200 ? 1 : 37))
			{
				Msg			part[LOG_RECORDS + 1];
				int			k;
				int64		used = 0;
				int			fit = 0;

				for (k = 0; k < n; k++)
				{
					if (k > 0 && used + msgs[k].entry_size > limit)
						break;
					used += msgs[k].entry_size;
					fit++;
				}
				resetStringInfo(&out);
				CHECK_NULL_ERR(SlBatchesToMessageSet((const uint8 *) log.data,
													 log.len, (int8) magic,
													 limit, &out));
				k = parse_set((const uint8 *) out.data, out.len, part, lengthof(part));
				CHECK_EQ_INT(k, fit);
				CHECK_EQ_INT(out.len, used);
				CHECK(k == 1 || out.len <= limit);
				if (k == fit)
					check_log_messages(part, k, magic, 0);
			}

			/* from an offset inside a batch, also with a tiny max_bytes */
			for (first = 0; first <= LOG_RECORDS; first++)
			{
				Msg			part[LOG_RECORDS + 1];
				int			k;
				int64		start = first == CONTROL_OFFSET ? first + 1 : first;
				int			expect_n = (int) (LOG_RECORDS - start) - (start <= CONTROL_OFFSET ? 1 : 0);

				resetStringInfo(&out);
				CHECK_NULL_ERR(SlBatchesToMessageSetFrom((const uint8 *) log.data,
														 log.len, (int8) magic,
														 first, NO_LIMIT, &out));
				k = parse_set((const uint8 *) out.data, out.len, part, lengthof(part));
				CHECK_EQ_INT(k, expect_n);
				if (k == expect_n)
					check_log_messages(part, k, magic, start);

				resetStringInfo(&out);
				CHECK_NULL_ERR(SlBatchesToMessageSetFrom((const uint8 *) log.data,
														 log.len, (int8) magic,
														 first, 1, &out));
				k = parse_set((const uint8 *) out.data, out.len, part, lengthof(part));
				CHECK_EQ_INT(k, expect_n > 0 ? 1 : 0);
				if (k == 1)
					CHECK_EQ_INT(part[0].offset, start);
			}
		}
	}
	pfree(log.data);
	pfree(out.data);
}

/* v2 -> legacy -> v2 keeps keys, values and (magic 1) timestamps */
static void
test_round_trip(void)
{
	StringInfoData log;
	StringInfoData set;
	StringInfoData batch;
	int			c;
	int			magic;

	initStringInfo(&log);
	initStringInfo(&set);
	initStringInfo(&batch);
	for (c = 0; c < (int) lengthof(all_codecs); c++)
	{
		build_log(&log, all_codecs[c]);
		for (magic = 0; magic <= 1; magic++)
		{
			SlRecordIter it;
			SlRecord	rec;
			int32		count = 0;
			int64		expect = 0;
			int			seen = 0;

			resetStringInfo(&set);
			resetStringInfo(&batch);
			CHECK_NULL_ERR(SlBatchesToMessageSet((const uint8 *) log.data, log.len,
												 (int8) magic, NO_LIMIT, &set));
			CHECK_NULL_ERR(SlMessageSetToBatch((const uint8 *) set.data, set.len,
											   MAX_DECOMP, &batch, &count));
			CHECK_EQ_INT(count, LOG_RECORDS - 1);
			SlBatchSeal((uint8 *) batch.data, batch.len, 0, -1);
			CHECK_NULL_ERR(SlRecordIterInit(&it, (const uint8 *) batch.data,
											batch.len, true, MAX_DECOMP));
			while (SlRecordIterNext(&it, &rec))
			{
				TRec		r;

				if (expect == CONTROL_OFFSET)
					expect++;
				make_rec((int) expect, &r);
				CHECK_EQ_INT(rec.timestamp,
							 magic == 0 ? -1 : expect >= LAT_FIRST ? LAT_TS : r.ts);
				CHECK_EQ_INT(rec.key_len, r.key_len);
				CHECK_EQ_INT(rec.value_len, r.value_len);
				if (rec.key_len == r.key_len && r.key_len > 0)
					CHECK_MEM(rec.key, r.key, r.key_len);
				if (rec.value_len == r.value_len && r.value_len > 0)
					CHECK_MEM(rec.value, r.value, r.value_len);
				CHECK_EQ_INT(rec.header_count, 0);
				expect++;
				seen++;
			}
			CHECK(it.error == NULL);
			CHECK_EQ_INT(seen, LOG_RECORDS - 1);
			SlRecordIterFree(&it);
		}
	}
	pfree(log.data);
	pfree(set.data);
	pfree(batch.data);
}

/* ---- malformed input ---- */

/* Up-convert one mutated input; errors must leave out alone */
static const char *
try_upconvert(const uint8 *data, size_t len, int32 *count)
{
	StringInfoData out;
	const char *err;

	initStringInfo(&out);
	appendStringInfoString(&out, "zz");
	*count = -7;
	err = SlMessageSetToBatch(data, len, 1024 * 1024, &out, count);
	if (err)
	{
		CHECK(out.len == 2 && strcmp(out.data, "zz") == 0);
		CHECK_EQ_INT(*count, -7);
	}
	else
	{
		SlRecordIter it;
		SlRecord	rec;
		int			n = 0;

		SlBatchSeal((uint8 *) out.data + 2, out.len - 2, 0, -1);
		CHECK_NULL_ERR(SlRecordIterInit(&it, (const uint8 *) out.data + 2,
										out.len - 2, true, MAX_DECOMP));
		while (SlRecordIterNext(&it, &rec))
			n++;
		CHECK(it.error == NULL);
		CHECK_EQ_INT(n, *count);
		SlRecordIterFree(&it);
	}
	pfree(out.data);
	return err;
}

/*
 * Sample sets for the fuzz loops, each message under 11 KiB so that CRC-32
 * catches every error of up to three bits in a message.
 */
static void
build_sample_sets(StringInfo sets, int nsets)
{
	StringInfoData inner;
	char		kbuf[16];
	char		vbuf[64];
	int			s;
	int			i;

	initStringInfo(&inner);
	for (s = 0; s < nsets; s++)
	{
		StringInfo	set = &sets[s];
		int			magic = s % 2;

		initStringInfo(set);
		if (s < 2)
		{
			for (i = 0; i < 4; i++)
			{
				Exp			e;

				inner_exp(i, magic, &e, kbuf, vbuf);
				append_message(set, i, magic, 0, e.ts, e.key, slen(e.key),
							   e.value, slen(e.value));
			}
		}
		else
		{
			static const int codecs[] = {
				SL_COMPRESSION_GZIP, SL_COMPRESSION_SNAPPY, RAW_SNAPPY,
				SL_COMPRESSION_LZ4
			};

			resetStringInfo(&inner);
			for (i = 0; i < 5; i++)
			{
				Exp			e;

				inner_exp(i, magic, &e, kbuf, vbuf);
				append_message(&inner, i, magic, 0, e.ts, e.key, slen(e.key),
							   e.value, slen(e.value));
			}
			append_message(set, 0, magic, 0, BASE_TS, "p", 1, "plain", 5);
			append_wrapper(set, 4, magic, codecs[(s - 2) / 2 % 4], 0, BASE_TS, &inner);
			append_message(set, 0, magic, 0, BASE_TS, NULL, -1, "after", 5);
		}
	}
	pfree(inner.data);
}

/* Is position pos inside the offset field of an outer entry of set? */
static bool
in_offset_field(const StringInfo set, int pos)
{
	int			p = 0;

	while (p + 12 <= set->len)
	{
		if (pos >= p && pos < p + 8)
			return true;
		p += 12 + SlLoadInt32((const uint8 *) set->data + p + 8);
	}
	return false;
}

/* Is position pos inside the crc-to-end part of an outer message of set? */
static bool
in_message(const StringInfo set, int pos, int *msg_index)
{
	int			p = 0;
	int			i = 0;

	while (p + 12 <= set->len)
	{
		int			size = SlLoadInt32((const uint8 *) set->data + p + 8);

		if (pos >= p + 12 && pos < p + 12 + size)
		{
			*msg_index = i;
			return true;
		}
		p += 12 + size;
		i++;
	}
	return false;
}

static void
test_upconvert_malformed(void)
{
	StringInfoData sets[10];
	int			nsets = lengthof(sets);
	int			s;
	int			iter;

	build_sample_sets(sets, nsets);

	/* every truncation fails, except at an entry boundary */
	for (s = 0; s < nsets; s++)
	{
		const StringInfo set = &sets[s];
		int			cut;
		int			next_boundary = 0;
		int32		count;

		for (cut = 0; cut < set->len; cut++)
		{
			const char *err;
			bool		boundary = cut == next_boundary && cut > 0;

			/* a fresh copy of exactly cut bytes, so overreads are caught */
			uint8	   *exact = malloc(Max(cut, 1));

			memcpy(exact, set->data, cut);
			err = try_upconvert(exact, cut, &count);
			free(exact);
			if (boundary)
				CHECK_MSG(err == NULL, "set %d cut at boundary %d: %s", s, cut, err);
			else
				CHECK_MSG(err != NULL, "set %d cut at %d accepted", s, cut);
			if (cut == next_boundary)
				next_boundary += 12 + SlLoadInt32((const uint8 *) set->data + cut + 8);
		}
		CHECK_NULL_ERR(try_upconvert((const uint8 *) set->data, set->len, &count));
	}

	/* flips of one to three bits */
	for (iter = 0; iter < 6000; iter++)
	{
		const StringInfo set = &sets[iter % nsets];
		uint8	   *copy = malloc(set->len);
		int			nflips = 1 + (int) (unit_rand(&seed) % 3);
		bool		only_offsets = true;
		bool		one_message = true;
		int			msg = -1;
		int			f;
		int32		count;
		const char *err;

		memcpy(copy, set->data, set->len);
		for (f = 0; f < nflips; f++)
		{
			int			pos = (int) (unit_rand(&seed) % set->len);
			int			m = -1;

			copy[pos] ^= (uint8) (1 << (unit_rand(&seed) % 8));
			if (!in_offset_field(set, pos))
				only_offsets = false;
			if (!in_message(set, pos, &m) || (msg >= 0 && m != msg))
				one_message = false;
			msg = m;
		}
		if (memcmp(copy, set->data, set->len) == 0)
		{
			free(copy);
			continue;
		}
		/*
		 * try_upconvert() asserts what holds for any input: a failure leaves
		 * the output alone, a success gives a batch whose records all parse.
		 * Flips only in offsets, or inside one message, say more.
		 */
		err = try_upconvert(copy, set->len, &count);
		if (only_offsets)
			CHECK_MSG(err == NULL, "offset flip rejected: %s", err);
		else if (one_message)
			CHECK_MSG(err != NULL, "flip inside a message accepted");
		free(copy);
	}

	/* random bytes and random byte overwrites */
	for (iter = 0; iter < 3000; iter++)
	{
		const StringInfo set = &sets[iter % nsets];
		uint8	   *copy = malloc(set->len);
		int			n = 1 + (int) (unit_rand(&seed) % 8);
		int32		count;

		memcpy(copy, set->data, set->len);
		while (n-- > 0)
			copy[unit_rand(&seed) % set->len] = (uint8) unit_rand(&seed);
		/* try_upconvert() asserts the outcome is a clean error or a valid batch */
		(void) try_upconvert(copy, set->len, &count);
		free(copy);
	}
	for (iter = 0; iter < 500; iter++)
	{
		size_t		len = unit_rand(&seed) % 300;
		uint8	   *junk = malloc(Max(len, 1));
		size_t		i;
		int32		count;

		for (i = 0; i < len; i++)
			junk[i] = (uint8) unit_rand(&seed);
		/* sometimes a plausible size field */
		if (len >= 12 && iter % 2)
			SlStoreInt32(junk + 8, (int32) (len - 12));
		CHECK(try_upconvert(junk, len, &count) != NULL);
		free(junk);
	}

	for (s = 0; s < nsets; s++)
		pfree(sets[s].data);
}

/* Down-convert one mutated input; errors must leave out alone */
static const char *
try_downconvert(const uint8 *data, size_t len, int magic)
{
	StringInfoData out;
	const char *err;
	Msg			msgs[LOG_RECORDS + 1];

	initStringInfo(&out);
	appendStringInfoString(&out, "zz");
	err = SlBatchesToMessageSet(data, len, (int8) magic, NO_LIMIT, &out);
	if (err)
		CHECK(out.len == 2 && strcmp(out.data, "zz") == 0);
	else
		CHECK(parse_set((const uint8 *) out.data + 2, out.len - 2, msgs, lengthof(msgs)) >= 0);
	pfree(out.data);
	return err;
}

static void
test_downconvert_malformed(void)
{
	StringInfoData log;
	int			c;
	int			iter;

	initStringInfo(&log);
	for (c = 0; c < (int) lengthof(all_codecs); c++)
	{
		int			cut;
		int			next_boundary = 0;

		build_log(&log, all_codecs[c]);
		for (cut = 0; cut < log.len; cut++)
		{
			uint8	   *exact = malloc(Max(cut, 1));
			const char *err;

			memcpy(exact, log.data, cut);
			err = try_downconvert(exact, cut, cut % 2);
			free(exact);
			if (cut == next_boundary)
			{
				CHECK_MSG(err == NULL, "cut at batch boundary %d: %s", cut, err);
				next_boundary += SL_BATCH_LOG_OVERHEAD +
					SlLoadInt32((const uint8 *) log.data + cut + SL_BATCH_OFFSET_LENGTH);
			}
			else
				CHECK_MSG(err != NULL, "batch cut at %d accepted", cut);
		}

		for (iter = 0; iter < 1500; iter++)
		{
			uint8	   *copy = malloc(log.len);
			int			n = 1 + (int) (unit_rand(&seed) % 3);
			bool		covered = true;

			memcpy(copy, log.data, log.len);
			while (n-- > 0)
			{
				int			pos = (int) (unit_rand(&seed) % log.len);
				int			p = 0;

				copy[pos] ^= (uint8) (1 << (unit_rand(&seed) % 8));
				/* is pos outside base offset, length and leader epoch? */
				while (p < log.len)
				{
					int			size = SL_BATCH_LOG_OVERHEAD +
						SlLoadInt32((const uint8 *) log.data + p + SL_BATCH_OFFSET_LENGTH);

					if (pos >= p && pos < p + size &&
						pos < p + SL_BATCH_OFFSET_MAGIC)
						covered = false;
					p += size;
				}
			}
			if (memcmp(copy, log.data, log.len) == 0)
				covered = false;
			/*
			 * try_downconvert() asserts a clean error or a parsable message
			 * set; a flip the CRC covers must be the error.
			 */
			if (covered)
				CHECK(try_downconvert(copy, log.len, iter % 2) != NULL);
			else
				(void) try_downconvert(copy, log.len, iter % 2);
			free(copy);
		}
	}
	pfree(log.data);
}

int
main(void)
{
	seed = unit_seed(UINT64CONST(0x9e3779b97f4a7c15));
	test_golden_v0();
	test_uncompressed_sets();
	test_compressed_wrappers();
	test_lz4_header_checksums();
	test_upconvert_errors();
	test_record_limit();
	test_downconvert_golden();
	test_downconvert_log();
	test_round_trip();
	test_upconvert_malformed();
	test_downconvert_malformed();
	return UNIT_DONE();
}
