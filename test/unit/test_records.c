#include "streamlog/protocol/codec_base.h"

#include <stdlib.h>

#include "streamlog/protocol/compression.h"
#include "streamlog/protocol/records.h"
#include "streamlog/protocol/varint.h"
#include "unit.h"

static const SlCompression codecs[] = {
	SL_COMPRESSION_NONE, SL_COMPRESSION_GZIP, SL_COMPRESSION_SNAPPY,
	SL_COMPRESSION_LZ4, SL_COMPRESSION_ZSTD
};

#define NCODECS ((int) lengthof(codecs))
#define MAX_DECOMP (64 * 1024 * 1024)
#define BASE_TS INT64CONST(1700000000000)

/* State of the random loops, seeded by main() (UNIT_SEED reproduces a run) */
static uint64_t seed;

/* Deterministic description of record i of a test batch */
typedef struct TestRecord
{
	int64		ts;
	uint8		key[40];
	int32		key_len;
	uint8		value[300];
	int32		value_len;
	int			nheaders;
	SlRecordHeader headers[4];
	char		hkeys[4][16];
	uint8		hvals[4][24];
} TestRecord;

static void
make_record(int i, TestRecord *r)
{
	int			h;

	memset(r, 0, sizeof(*r));
	/* timestamps go up and down around the base */
	r->ts = BASE_TS + (i % 7) * 1000 - (i % 3) * 1500 + i;
	if (i % 5 == 3)
		r->key_len = -1;
	else
	{
		r->key_len = snprintf((char *) r->key, sizeof(r->key), "key-%d", i);
		if (i % 11 == 0)
			r->key_len = 0;
	}
	if (i % 7 == 4)
		r->value_len = -1;
	else
	{
		int			j;

		r->value_len = (i * 37) % 300;
		for (j = 0; j < r->value_len; j++)
			r->value[j] = (uint8) ((i + j) % 13 == 0 ? j : 'a' + (i + j) % 26);
	}
	r->nheaders = i % 4;
	for (h = 0; h < r->nheaders; h++)
	{
		SlRecordHeader *hd = &r->headers[h];

		hd->key_len = snprintf(r->hkeys[h], sizeof(r->hkeys[h]), "h%d-%d", h, i);
		hd->key = r->hkeys[h];
		if ((i + h) % 3 == 0)
		{
			hd->value = NULL;
			hd->value_len = -1;
		}
		else
		{
			hd->value_len = snprintf((char *) r->hvals[h], sizeof(r->hvals[h]), "val%d", i * h);
			if ((i + h) % 5 == 0)
				hd->value_len = 0;
			hd->value = r->hvals[h];
		}
	}
}

static void
add_record(SlBatchBuilder *b, const TestRecord *r)
{
	SlBatchBuilderAdd(b, r->ts,
					  r->key_len < 0 ? NULL : r->key, r->key_len,
					  r->value_len < 0 ? NULL : r->value, r->value_len,
					  r->headers, r->nheaders);
}

static bool
same_bytes(const uint8 *a, int32 alen, const uint8 *b, int32 blen)
{
	if (alen != blen)
		return false;
	if (alen < 0)
		return a == NULL && b == NULL;
	return alen == 0 || memcmp(a, b, alen) == 0;
}

/* Iterate the batch and compare every field with make_record() */
static void
verify_batch(const uint8 *buf, size_t len, int n, int64 base_offset,
			 int64 log_append_time)
{
	SlRecordIter it;
	SlRecord rec;
	const char *err;
	int			i = 0;
	int			bad = 0;

	err = SlRecordIterInit(&it, buf, len, true, MAX_DECOMP);
	CHECK_MSG(err == NULL, "iter_init: %s", err);
	if (err)
		return;
	CHECK_EQ_INT(it.hdr.record_count, n);
	while (SlRecordIterNext(&it, &rec))
	{
		TestRecord r;
		const uint8 *hp;
		int			h;

		make_record(i, &r);
		if (rec.offset != base_offset + i)
			bad++;
		if (log_append_time >= 0 ? rec.timestamp != log_append_time : rec.timestamp != r.ts)
			bad++;
		if (rec.attributes != 0)
			bad++;
		if (!same_bytes(rec.key, rec.key_len, r.key_len < 0 ? NULL : r.key, r.key_len))
			bad++;
		if (!same_bytes(rec.value, rec.value_len, r.value_len < 0 ? NULL : r.value, r.value_len))
			bad++;
		if (rec.header_count != r.nheaders)
			bad++;
		hp = rec.headers;
		for (h = 0; h < rec.header_count && h < r.nheaders; h++)
		{
			SlRecordHeader got;

			if (!SlRecordHeaderNext(&hp, rec.headers_end, &got))
			{
				bad++;
				break;
			}
			if (!same_bytes((const uint8 *) got.key, got.key_len,
							(const uint8 *) r.headers[h].key, r.headers[h].key_len))
				bad++;
			if (!same_bytes(got.value, got.value_len,
							r.headers[h].value, r.headers[h].value_len))
				bad++;
		}
		if (hp != rec.headers_end)
			bad++;
		i++;
	}
	CHECK_MSG(it.error == NULL, "iteration stopped: %s", it.error);
	CHECK_EQ_INT(i, n);
	CHECK_MSG(bad == 0, "%d field mismatches over %d records", bad, n);
	SlRecordIterFree(&it);
}

static void
build(SlBatchBuilder *b, int n, StringInfo out)
{
	int			i;

	SlBatchBuilderReset(b);
	for (i = 0; i < n; i++)
	{
		TestRecord r;

		make_record(i, &r);
		add_record(b, &r);
	}
	resetStringInfo(out);
	CHECK_NULL_ERR(SlBatchBuilderFinish(b, out));
}

static void
test_roundtrips(void)
{
	static const int counts[] = {0, 1, 2, 3, 17, 100, 5000};
	int			c;
	int			k;

	for (c = 0; c < NCODECS; c++)
	{
		SlBatchBuilder b;
		StringInfoData out;

		SlBatchBuilderInit(&b, codecs[c]);
		initStringInfo(&out);
		for (k = 0; k < (int) lengthof(counts); k++)
		{
			int			n = counts[k];
			SlBatchHeader hdr;
			int64		min_ts = 0;
			int64		max_ts = -1;
			int			i;

			build(&b, n, &out);
			for (i = 0; i < n; i++)
			{
				TestRecord r;

				make_record(i, &r);
				if (i == 0 || r.ts > max_ts)
					max_ts = r.ts;
				if (i == 0)
					min_ts = r.ts;
			}

			/* header as written by finish() */
			CHECK_NULL_ERR(SlBatchParseHeader((uint8 *) out.data, out.len, &hdr, false));
			CHECK_EQ_INT(hdr.base_offset, 0);
			CHECK_EQ_INT(hdr.crc, 0);
			CHECK_EQ_INT(SlBatchSize(&hdr), out.len);
			CHECK_EQ_INT(hdr.partition_leader_epoch, 0);
			CHECK_EQ_INT(hdr.magic, 2);
			CHECK_EQ_INT(hdr.attributes, codecs[c]);
			CHECK_EQ_INT(SlBatchCompression(&hdr), codecs[c]);
			CHECK_EQ_INT(hdr.last_offset_delta, n - 1);
			CHECK_EQ_INT(hdr.base_timestamp, n ? min_ts : -1);
			CHECK_EQ_INT(hdr.max_timestamp, max_ts);
			CHECK_EQ_INT(hdr.producer_id, -1);
			CHECK_EQ_INT(hdr.producer_epoch, -1);
			CHECK_EQ_INT(hdr.base_sequence, -1);
			CHECK_EQ_INT(hdr.record_count, n);
			if (n > 0)
				CHECK(SlBatchParseHeader((uint8 *) out.data, out.len, &hdr, true) != NULL);

			/* sealed at an offset */
			SlBatchSeal((uint8 *) out.data, out.len, 1000 + k, -1);
			CHECK_NULL_ERR(SlBatchParseHeader((uint8 *) out.data, out.len, &hdr, true));
			CHECK_EQ_INT(hdr.base_offset, 1000 + k);
			CHECK_EQ_UINT(hdr.crc, SlBatchComputeCrc((uint8 *) out.data, out.len));
			verify_batch((uint8 *) out.data, out.len, n, 1000 + k, -1);

			/* LogAppendTime */
			SlBatchSeal((uint8 *) out.data, out.len, 77, BASE_TS + 999999);
			CHECK_NULL_ERR(SlBatchParseHeader((uint8 *) out.data, out.len, &hdr, true));
			CHECK(hdr.attributes & SL_BATCH_ATTR_LOG_APPEND_TIME);
			CHECK_EQ_INT(SlBatchCompression(&hdr), codecs[c]);
			CHECK_EQ_INT(hdr.max_timestamp, BASE_TS + 999999);
			CHECK_EQ_INT(hdr.base_timestamp, n ? min_ts : -1);
			verify_batch((uint8 *) out.data, out.len, n, 77, BASE_TS + 999999);

			/* a corrupted byte is caught by the CRC */
			out.data[out.len - 1] ^= 0x40;
			CHECK(SlBatchParseHeader((uint8 *) out.data, out.len, &hdr, true) != NULL);
			{
				SlRecordIter it;

				CHECK(SlRecordIterInit(&it, (uint8 *) out.data, out.len, true, MAX_DECOMP) != NULL);
				SlRecordIterFree(&it);
			}
			out.data[out.len - 1] ^= 0x40;
			CHECK_NULL_ERR(SlBatchParseHeader((uint8 *) out.data, out.len, &hdr, true));

			/* two batches back to back: each parses on its own */
			{
				int			first = out.len;
				SlBatchHeader h2;

				enlargeStringInfo(&out, first);
				memcpy(out.data + first, out.data, first);
				out.len += first;
				CHECK_NULL_ERR(SlBatchParseHeader((uint8 *) out.data, out.len, &hdr, true));
				CHECK_EQ_INT(SlBatchSize(&hdr), first);
				CHECK_NULL_ERR(SlBatchParseHeader((uint8 *) out.data + first, out.len - first, &h2, true));
				verify_batch((uint8 *) out.data, out.len, n, 77, BASE_TS + 999999);
			}
		}

		/* producer fields are carried into the header */
		SlBatchBuilderReset(&b);
		b.producer_id = 123456789012LL;
		b.producer_epoch = 7;
		b.base_sequence = 42;
		{
			TestRecord r;
			SlBatchHeader hdr;

			make_record(1, &r);
			add_record(&b, &r);
			resetStringInfo(&out);
			CHECK_NULL_ERR(SlBatchBuilderFinish(&b, &out));
			CHECK_NULL_ERR(SlBatchParseHeader((uint8 *) out.data, out.len, &hdr, false));
			CHECK_EQ_INT(hdr.producer_id, 123456789012LL);
			CHECK_EQ_INT(hdr.producer_epoch, 7);
			CHECK_EQ_INT(hdr.base_sequence, 42);
		}

		/* finish() appends after what out holds */
		{
			SlBatchHeader hdr;

			resetStringInfo(&out);
			appendStringInfoString(&out, "xyz");
			CHECK_NULL_ERR(SlBatchBuilderFinish(&b, &out));
			CHECK(memcmp(out.data, "xyz", 3) == 0);
			CHECK_NULL_ERR(SlBatchParseHeader((uint8 *) out.data + 3, out.len - 3, &hdr, false));
			CHECK_EQ_INT(SlBatchSize(&hdr), out.len - 3);
		}

		SlBatchBuilderFree(&b);
		pfree(out.data);
	}
}

static const uint8 golden[] = {
	0, 0, 0, 0, 0, 0, 0, 0,		/* base offset */
	0, 0, 0, 0x3a,				/* batch length 58 */
	0, 0, 0, 0,					/* partition leader epoch */
	2,							/* magic */
	0, 0, 0, 0,					/* crc */
	0, 0,						/* attributes */
	0, 0, 0, 0,					/* last offset delta */
	0, 0, 0, 0, 0, 0, 0x03, 0xe8,	/* base timestamp 1000 */
	0, 0, 0, 0, 0, 0, 0x03, 0xe8,	/* max timestamp 1000 */
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* producer id */
	0xff, 0xff,					/* producer epoch */
	0xff, 0xff, 0xff, 0xff,		/* base sequence */
	0, 0, 0, 1,					/* record count */
	0x10,						/* record length 8 */
	0,							/* attributes */
	0,							/* timestamp delta */
	0,							/* offset delta */
	0x02, 'k',					/* key */
	0x02, 'v',					/* value */
	0							/* header count */
};

static void
test_golden(void)
{
	SlBatchBuilder b;
	StringInfoData out;
	uint8		buf[sizeof(golden)];
	SlRecordIter it;
	SlRecord rec;

	SlBatchBuilderInit(&b, SL_COMPRESSION_NONE);
	initStringInfo(&out);
	SlBatchBuilderAdd(&b, 1000, (const uint8 *) "k", 1, (const uint8 *) "v", 1, NULL, 0);
	CHECK_EQ_INT(SlBatchBuilderRecordsSize(&b), 9);
	CHECK_NULL_ERR(SlBatchBuilderFinish(&b, &out));
	CHECK_EQ_INT(out.len, sizeof(golden));
	CHECK(out.len == sizeof(golden) && memcmp(out.data, golden, sizeof(golden)) == 0);

	/* sealing at offset 0 gives the CRC32C of bytes 21.. */
	SlBatchSeal((uint8 *) out.data, out.len, 0, -1);
	CHECK_EQ_UINT((uint32) SlLoadInt32((uint8 *) out.data + 17), 0x716a6189U);
	CHECK(memcmp(out.data + 21, golden + 21, sizeof(golden) - 21) == 0);

	/* the hand-made batch parses */
	memcpy(buf, golden, sizeof(buf));
	SlStoreInt32(buf + 17, (int32) 0x716a6189U);
	CHECK_NULL_ERR(SlRecordIterInit(&it, buf, sizeof(buf), true, 1024));
	CHECK(SlRecordIterNext(&it, &rec));
	CHECK_EQ_INT(rec.offset, 0);
	CHECK_EQ_INT(rec.timestamp, 1000);
	CHECK(rec.key_len == 1 && rec.key[0] == 'k');
	CHECK(rec.value_len == 1 && rec.value[0] == 'v');
	CHECK_EQ_INT(rec.header_count, 0);
	CHECK(!SlRecordIterNext(&it, &rec));
	CHECK(it.error == NULL);
	SlRecordIterFree(&it);

	SlBatchBuilderFree(&b);
	pfree(out.data);
}

/* Run the iterator over buf, expecting it to stop, cleanly */
static int
drain(const uint8 *buf, size_t len, bool verify, size_t max_decomp, bool *ok)
{
	SlRecordIter it;
	SlRecord rec;
	int			n = 0;
	const uint8 *lo;
	const uint8 *hi;

	*ok = false;
	if (SlRecordIterInit(&it, buf, len, verify, max_decomp) != NULL)
		return -1;
	if (it.decompressed.data != NULL)
		CHECK((size_t) it.decompressed.len <= max_decomp);
	lo = it.decompressed.data ? (const uint8 *) it.decompressed.data : buf + SL_BATCH_HEADER_SIZE;
	hi = it.end;
	while (SlRecordIterNext(&it, &rec))
	{
		SlRecordHeader h;
		const uint8 *hp = rec.headers;
		int			k;

		/* everything handed out is inside the data */
		CHECK_MSG(rec.key_len <= 0 || (rec.key >= lo && rec.key + rec.key_len <= hi),
				  "record %d: key outside the batch", n);
		CHECK_MSG(rec.value_len <= 0 ||
				  (rec.value >= lo && rec.value + rec.value_len <= hi),
				  "record %d: value outside the batch", n);
		CHECK_MSG(rec.headers >= lo && rec.headers_end <= hi &&
				  rec.headers <= rec.headers_end,
				  "record %d: headers outside the batch", n);
		for (k = 0; k < rec.header_count; k++)
		{
			bool		got = SlRecordHeaderNext(&hp, rec.headers_end, &h);

			CHECK_MSG(got, "record %d: header %d of %d missing", n, k, rec.header_count);
			if (!got)
				break;
		}
		n++;
	}
	*ok = (it.error == NULL);
	if (*ok)
		CHECK_EQ_INT(n, it.hdr.record_count);
	SlRecordIterFree(&it);
	return n;
}

static void
test_hostile(void)
{
	int			c;

	for (c = 0; c < NCODECS; c++)
	{
		SlBatchBuilder b;
		StringInfoData out;
		uint8	   *copy;
		size_t		cut;
		int			round;
		bool		ok;
		int			n = 40;

		SlBatchBuilderInit(&b, codecs[c]);
		initStringInfo(&out);
		build(&b, n, &out);
		SlBatchSeal((uint8 *) out.data, out.len, 500, -1);
		CHECK_EQ_INT(drain((uint8 *) out.data, out.len, true, MAX_DECOMP, &ok), n);
		CHECK(ok);
		copy = malloc(out.len);

		/* truncated input: the header check refuses it */
		for (cut = 0; cut < (size_t) out.len; cut++)
		{
			memcpy(copy, out.data, cut);
			CHECK_EQ_INT(drain(copy, cut, false, MAX_DECOMP, &ok), -1);
		}

		/*
		 * Truncated batch whose length field agrees: the records themselves
		 * are cut short.  Never a crash; with a valid CRC it is the records
		 * parser that must notice.
		 */
		for (cut = SL_BATCH_HEADER_SIZE; cut < (size_t) out.len; cut++)
		{
			int			got;

			memcpy(copy, out.data, cut);
			SlStoreInt32(copy + 8, (int32) (cut - 12));
			SlBatchSeal(copy, cut, 500, -1);
			got = drain(copy, cut, true, MAX_DECOMP, &ok);
			CHECK_MSG(!ok, "codec %d: batch cut at %zu accepted (%d records)",
					  codecs[c], cut, got);
		}

		/* random byte flips, CRC unchecked then fixed up */
		for (round = 0; round < 3000; round++)
		{
			int			flips = 1 + unit_rand(&seed) % 3;
			int			f;

			memcpy(copy, out.data, out.len);
			for (f = 0; f < flips; f++)
			{
				size_t		at = unit_rand(&seed) % out.len;

				/* mostly hit the records, where parsing happens */
				if (round % 4 != 0 && out.len > SL_BATCH_HEADER_SIZE)
					at = SL_BATCH_HEADER_SIZE + unit_rand(&seed) % (out.len - SL_BATCH_HEADER_SIZE);
				copy[at] ^= (uint8) (1 + unit_rand(&seed) % 255);
			}
			/*
			 * drain() asserts that whatever the iterator hands out lies in
			 * the batch, within max_decomp, and that a clean end has
			 * counted as many records as the header announced
			 */
			drain(copy, out.len, false, 1 << 20, &ok);
			drain(copy, out.len, false, 2000, &ok);
			if (SlLoadInt32(copy + 8) >= 0)
				SlBatchSeal(copy, out.len, 0, -1);
			drain(copy, out.len, true, 1 << 20, &ok);
		}

		free(copy);
		SlBatchBuilderFree(&b);
		pfree(out.data);
	}

	/* random bytes behind a plausible header */
	{
		uint8		buf[512];
		int			round;
		bool		ok;

		for (round = 0; round < 20000; round++)
		{
			size_t		len = SL_BATCH_HEADER_SIZE + unit_rand(&seed) % (sizeof(buf) - SL_BATCH_HEADER_SIZE);
			size_t		i;

			for (i = 0; i < len; i++)
				buf[i] = (uint8) unit_rand(&seed);
			memcpy(buf, golden, SL_BATCH_HEADER_SIZE);
			SlStoreInt32(buf + 8, (int32) (len - 12));
			SlStoreInt16(buf + 21, (int16) (round % 6));
			SlStoreInt32(buf + 57, (int32) (unit_rand(&seed) % 8));
			/* drain() asserts the records handed out, as above */
			drain(buf, len, false, 4096, &ok);
		}
	}
}

static void
test_malformed(void)
{
	uint8		buf[sizeof(golden) + 16];
	SlRecordIter it;
	SlRecord rec;
	SlBatchHeader hdr;

	/* wrong magic */
	memcpy(buf, golden, sizeof(golden));
	buf[16] = 1;
	CHECK(SlBatchParseHeader(buf, sizeof(golden), &hdr, false) != NULL);

	/* batch length too small, negative, or past the buffer */
	memcpy(buf, golden, sizeof(golden));
	SlStoreInt32(buf + 8, 48);
	CHECK(SlBatchParseHeader(buf, sizeof(golden), &hdr, false) != NULL);
	SlStoreInt32(buf + 8, 49);
	CHECK_NULL_ERR(SlBatchParseHeader(buf, sizeof(golden), &hdr, false));
	SlStoreInt32(buf + 8, -1);
	CHECK(SlBatchParseHeader(buf, sizeof(golden), &hdr, false) != NULL);
	SlStoreInt32(buf + 8, PG_INT32_MIN);
	CHECK(SlBatchParseHeader(buf, sizeof(golden), &hdr, false) != NULL);
	SlStoreInt32(buf + 8, 59);
	CHECK(SlBatchParseHeader(buf, sizeof(golden), &hdr, false) != NULL);
	SlStoreInt32(buf + 8, PG_INT32_MAX);
	CHECK(SlBatchParseHeader(buf, sizeof(golden), &hdr, false) != NULL);

	/* negative record count */
	memcpy(buf, golden, sizeof(golden));
	SlStoreInt32(buf + 57, -1);
	CHECK(SlBatchParseHeader(buf, sizeof(golden), &hdr, false) != NULL);

	/* more records announced than present */
	memcpy(buf, golden, sizeof(golden));
	SlStoreInt32(buf + 57, 2);
	if (SlRecordIterInit(&it, buf, sizeof(golden), false, 1024) == NULL)
	{
		CHECK(SlRecordIterNext(&it, &rec));
		CHECK(!SlRecordIterNext(&it, &rec));
		CHECK(it.error != NULL);
		SlRecordIterFree(&it);
	}
	else
		PASS();
	SlStoreInt32(buf + 57, 1000);
	CHECK(SlRecordIterInit(&it, buf, sizeof(golden), false, 1024) != NULL);

	/* fewer records announced than present */
	memcpy(buf, golden, sizeof(golden));
	SlStoreInt32(buf + 57, 0);
	CHECK_NULL_ERR(SlRecordIterInit(&it, buf, sizeof(golden), false, 1024));
	CHECK(!SlRecordIterNext(&it, &rec));
	CHECK(it.error != NULL);
	SlRecordIterFree(&it);

	/* record length that does not match what the record uses */
	memcpy(buf, golden, sizeof(golden));
	buf[61] = 0x0e;				/* 7 */
	CHECK_NULL_ERR(SlRecordIterInit(&it, buf, sizeof(golden), false, 1024));
	CHECK(!SlRecordIterNext(&it, &rec));
	CHECK(it.error != NULL);
	SlRecordIterFree(&it);
	buf[61] = 0x12;				/* 9: one byte past the batch */
	CHECK_NULL_ERR(SlRecordIterInit(&it, buf, sizeof(golden), false, 1024));
	CHECK(!SlRecordIterNext(&it, &rec));
	CHECK(it.error != NULL);
	SlRecordIterFree(&it);
	buf[61] = 0x01;				/* -1 */
	CHECK_NULL_ERR(SlRecordIterInit(&it, buf, sizeof(golden), false, 1024));
	CHECK(!SlRecordIterNext(&it, &rec));
	CHECK(it.error != NULL);
	SlRecordIterFree(&it);

	/* negative lengths other than -1 */
	memcpy(buf, golden, sizeof(golden));
	buf[65] = 0x03;				/* key length -2 */
	CHECK_NULL_ERR(SlRecordIterInit(&it, buf, sizeof(golden), false, 1024));
	CHECK(!SlRecordIterNext(&it, &rec));
	CHECK(it.error != NULL);
	SlRecordIterFree(&it);
	memcpy(buf, golden, sizeof(golden));
	buf[67] = 0x03;				/* value length -2 */
	CHECK_NULL_ERR(SlRecordIterInit(&it, buf, sizeof(golden), false, 1024));
	CHECK(!SlRecordIterNext(&it, &rec));
	CHECK(it.error != NULL);
	SlRecordIterFree(&it);
	memcpy(buf, golden, sizeof(golden));
	buf[69] = 0x01;				/* header count -1 */
	CHECK_NULL_ERR(SlRecordIterInit(&it, buf, sizeof(golden), false, 1024));
	CHECK(!SlRecordIterNext(&it, &rec));
	CHECK(it.error != NULL);
	SlRecordIterFree(&it);

	/* unknown compression codec */
	memcpy(buf, golden, sizeof(golden));
	buf[22] = 5;
	CHECK(SlRecordIterInit(&it, buf, sizeof(golden), false, 1024) != NULL);

	/* compressed records over the decompression limit */
	{
		SlBatchBuilder b;
		StringInfoData out;
		uint8		big[10000];

		memset(big, 'x', sizeof(big));
		SlBatchBuilderInit(&b, SL_COMPRESSION_ZSTD);
		initStringInfo(&out);
		SlBatchBuilderAdd(&b, 1, NULL, -1, big, sizeof(big), NULL, 0);
		CHECK_NULL_ERR(SlBatchBuilderFinish(&b, &out));
		SlBatchSeal((uint8 *) out.data, out.len, 0, -1);
		CHECK(SlRecordIterInit(&it, (uint8 *) out.data, out.len, true, 5000) != NULL);
		CHECK_NULL_ERR(SlRecordIterInit(&it, (uint8 *) out.data, out.len, true, 20000));
		SlRecordIterFree(&it);
		SlBatchBuilderFree(&b);
		pfree(out.data);
	}

	/* header walking */
	{
		StringInfoData h;
		const uint8 *p;
		SlRecordHeader hd;

		initStringInfo(&h);
		SlPutVarint(&h, 2);
		appendBinaryStringInfo(&h, "ab", 2);
		SlPutVarint(&h, -1);
		SlPutVarint(&h, 0);
		SlPutVarint(&h, 3);
		appendBinaryStringInfo(&h, "xyz", 3);
		p = (const uint8 *) h.data;
		CHECK(SlRecordHeaderNext(&p, (uint8 *) h.data + h.len, &hd));
		CHECK(hd.key_len == 2 && memcmp(hd.key, "ab", 2) == 0);
		CHECK(hd.value == NULL && hd.value_len == -1);
		CHECK(SlRecordHeaderNext(&p, (uint8 *) h.data + h.len, &hd));
		CHECK(hd.key_len == 0 && hd.value_len == 3 && memcmp(hd.value, "xyz", 3) == 0);
		CHECK(p == (uint8 *) h.data + h.len);
		CHECK(!SlRecordHeaderNext(&p, (uint8 *) h.data + h.len, &hd));
		/* key lengths are never null */
		resetStringInfo(&h);
		SlPutVarint(&h, -1);
		SlPutVarint(&h, 0);
		p = (const uint8 *) h.data;
		CHECK(!SlRecordHeaderNext(&p, (uint8 *) h.data + h.len, &hd));
		/* value running past the end */
		resetStringInfo(&h);
		SlPutVarint(&h, 0);
		SlPutVarint(&h, 5);
		appendBinaryStringInfo(&h, "abcd", 4);
		p = (const uint8 *) h.data;
		CHECK(!SlRecordHeaderNext(&p, (uint8 *) h.data + h.len, &hd));
		pfree(h.data);
	}
}

/*
 * The log cleaner's rebuild: every third record of a batch kept, at its
 * offset, with its timestamp, key, value and headers, under a delete
 * horizon in baseTimestamp (KIP-534), in every codec, from every codec.
 */
static void
test_rebuild_with_horizon(void)
{
	const int	n = 40;
	const int64 horizon = BASE_TS + 86400000;

	for (int from = 0; from < NCODECS; from++)
	{
		for (int to = 0; to < NCODECS; to++)
		{
			SlBatchBuilder b;
			SlBatchBuilder rb;
			StringInfoData out;
			StringInfoData rebuilt;
			TestRecord	r;
			SlRecordIter it;
			SlRecordIter rit;
			SlRecord	rec;
			SlRecord	kept[40];
			int			nkept = 0;
			int			i;

			SlBatchBuilderInit(&b, codecs[from]);
			b.producer_id = 77;
			b.producer_epoch = 3;
			b.base_sequence = 1000;
			for (i = 0; i < n; i++)
			{
				make_record(i, &r);
				add_record(&b, &r);
			}
			initStringInfo(&out);
			CHECK_NULL_ERR(SlBatchBuilderFinish(&b, &out));
			SlBatchSeal((uint8 *) out.data, out.len, 5000, -1);

			CHECK_NULL_ERR(SlRecordIterInit(&it, (uint8 *) out.data, out.len, true, MAX_DECOMP));
			while (SlRecordIterNext(&it, &rec))
				if ((rec.offset - 5000) % 3 == 1)
					kept[nkept++] = rec;
			CHECK(it.error == NULL);

			SlBatchBuilderInit(&rb, codecs[to]);
			rb.producer_id = it.hdr.producer_id;
			rb.producer_epoch = it.hdr.producer_epoch;
			rb.base_sequence = it.hdr.base_sequence;
			SlBatchBuilderSetBase(&rb, SL_BATCH_ATTR_DELETE_HORIZON, true, horizon);
			for (i = 0; i < nkept; i++)
				SlBatchBuilderAddRecord(&rb, (int32) (kept[i].offset - 5000), &kept[i]);
			initStringInfo(&rebuilt);
			CHECK_NULL_ERR(SlBatchBuilderFinish(&rb, &rebuilt));
			SlBatchSeal((uint8 *) rebuilt.data, rebuilt.len, 5000, -1);

			CHECK_NULL_ERR(SlRecordIterInit(&rit, (uint8 *) rebuilt.data, rebuilt.len, true,
											MAX_DECOMP));
			CHECK_EQ_INT(rit.hdr.base_offset, 5000);
			CHECK_EQ_INT(rit.hdr.base_timestamp, horizon);
			CHECK_EQ_INT(rit.hdr.attributes, SL_BATCH_ATTR_DELETE_HORIZON | codecs[to]);
			CHECK_EQ_INT(rit.hdr.record_count, nkept);
			CHECK_EQ_INT(rit.hdr.last_offset_delta, kept[nkept - 1].offset - 5000);
			CHECK_EQ_INT(rit.hdr.producer_id, 77);
			CHECK_EQ_INT(rit.hdr.producer_epoch, 3);
			CHECK_EQ_INT(rit.hdr.base_sequence, 1000);
			for (i = 0; SlRecordIterNext(&rit, &rec); i++)
			{
				const uint8 *hp = rec.headers;

				make_record((int) (rec.offset - 5000), &r);
				CHECK_EQ_INT(rec.offset, kept[i].offset);
				CHECK_EQ_INT(rec.timestamp, r.ts);
				CHECK(same_bytes(rec.key, rec.key_len, r.key_len < 0 ? NULL : r.key, r.key_len));
				CHECK(same_bytes(rec.value, rec.value_len,
								 r.value_len < 0 ? NULL : r.value, r.value_len));
				CHECK_EQ_INT(rec.header_count, r.nheaders);
				for (int h = 0; h < rec.header_count; h++)
				{
					SlRecordHeader hd;

					CHECK(SlRecordHeaderNext(&hp, rec.headers_end, &hd));
					CHECK(same_bytes((const uint8 *) hd.key, hd.key_len,
									 (const uint8 *) r.headers[h].key, r.headers[h].key_len));
					CHECK(same_bytes(hd.value, hd.value_len,
									 r.headers[h].value, r.headers[h].value_len));
				}
			}
			CHECK(rit.error == NULL);
			CHECK_EQ_INT(i, nkept);
			SlRecordIterFree(&rit);
			SlRecordIterFree(&it);
			SlBatchBuilderFree(&b);
			SlBatchBuilderFree(&rb);
			pfree(out.data);
			pfree(rebuilt.data);
		}
	}
}

/*
 * A forwarded batch is stamped with the node's producer fields after it
 * was built: the header parses with a valid CRC, says what was written,
 * and the records are untouched, whatever the codec
 */
static void
test_set_producer(void)
{
	for (int c = 0; c < NCODECS; c++)
	{
		SlBatchBuilder b;
		StringInfoData out;
		TestRecord	r;
		SlBatchHeader hdr;
		SlRecordIter it;
		SlRecord	rec;
		int			i;

		SlBatchBuilderInit(&b, codecs[c]);
		for (i = 0; i < 7; i++)
		{
			make_record(i, &r);
			add_record(&b, &r);
		}
		initStringInfo(&out);
		CHECK_NULL_ERR(SlBatchBuilderFinish(&b, &out));
		SlBatchSeal((uint8 *) out.data, out.len, 0, -1);
		CHECK_NULL_ERR(SlBatchParseHeader((uint8 *) out.data, out.len, &hdr, true));
		CHECK_EQ_INT(hdr.producer_id, -1);
		CHECK_EQ_INT(hdr.base_sequence, -1);

		SlBatchSetProducer((uint8 *) out.data, out.len, INT64CONST(1234567890123), 9,
						   PG_INT32_MAX - 3);
		CHECK_NULL_ERR(SlBatchParseHeader((uint8 *) out.data, out.len, &hdr, true));
		CHECK_EQ_INT(hdr.producer_id, INT64CONST(1234567890123));
		CHECK_EQ_INT(hdr.producer_epoch, 9);
		CHECK_EQ_INT(hdr.base_sequence, PG_INT32_MAX - 3);
		CHECK_EQ_INT(hdr.record_count, 7);
		CHECK_EQ_INT(hdr.base_offset, 0);

		/* stamped again (a new epoch): still valid, the new values */
		SlBatchSetProducer((uint8 *) out.data, out.len, INT64CONST(1234567890123), 10, 0);
		CHECK_NULL_ERR(SlBatchParseHeader((uint8 *) out.data, out.len, &hdr, true));
		CHECK_EQ_INT(hdr.producer_epoch, 10);
		CHECK_EQ_INT(hdr.base_sequence, 0);

		CHECK_NULL_ERR(SlRecordIterInit(&it, (uint8 *) out.data, out.len, true, MAX_DECOMP));
		for (i = 0; SlRecordIterNext(&it, &rec); i++)
		{
			make_record(i, &r);
			CHECK(same_bytes(rec.value, rec.value_len,
							 r.value_len < 0 ? NULL : r.value, r.value_len));
		}
		CHECK(it.error == NULL);
		CHECK_EQ_INT(i, 7);

		/* a short buffer is left alone */
		SlBatchSetProducer((uint8 *) out.data, 10, 1, 1, 1);
		CHECK_NULL_ERR(SlBatchParseHeader((uint8 *) out.data, out.len, &hdr, true));
		SlRecordIterFree(&it);
		SlBatchBuilderFree(&b);
		pfree(out.data);
	}
}

/*
 * A batch finished as a producer sends it: appended after what out held,
 * sealed at offset 0 with a CRC that verifies, its header parsed
 */
static void
test_finish_sealed(void)
{
	for (int c = 0; c < NCODECS; c++)
	{
		SlBatchBuilder b;
		StringInfoData out;
		SlBatchHeader hdr;
		int			n = 1 + (int) (unit_rand(&seed) % 50);

		SlBatchBuilderInit(&b, codecs[c]);
		for (int i = 0; i < n; i++)
		{
			TestRecord r;

			make_record(i, &r);
			add_record(&b, &r);
		}
		initStringInfo(&out);
		appendStringInfoString(&out, "before");
		CHECK_NULL_ERR(SlBatchBuilderFinishSealed(&b, &out, &hdr));
		CHECK(memcmp(out.data, "before", 6) == 0);
		CHECK_EQ_INT(SlBatchSize(&hdr), out.len - 6);
		CHECK_EQ_INT(hdr.base_offset, 0);
		CHECK_EQ_INT(hdr.record_count, n);
		CHECK_EQ_UINT(hdr.crc, SlBatchComputeCrc((uint8 *) out.data + 6, out.len - 6));
		verify_batch((uint8 *) out.data + 6, out.len - 6, n, 0, -1);
		pfree(out.data);
		SlBatchBuilderFree(&b);
	}
}

int
main(void)
{
	seed = unit_seed(UINT64CONST(0x0123456789abcdef));
	test_golden();
	test_roundtrips();
	test_finish_sealed();
	test_malformed();
	test_hostile();
	test_rebuild_with_horizon();
	test_set_producer();
	return UNIT_DONE();
}
