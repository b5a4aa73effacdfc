/*
 * Fuzz target: RecordBatch v2 parsing and record iteration.
 *
 * The input is one or more record batches back to back, as in the records
 * of a Produce partition.  It is walked three times, each batch with
 * SlBatchParseHeader, then SlRecordIterInit / SlRecordIterNext
 * over every record and SlRecordHeaderNext over every record header,
 * decompressing at most 1 MiB per batch:
 *
 *   - with CRC verification off;
 *   - with CRC verification on: it may stop earlier, never later, and
 *     whatever it returns is what the unverified walk returned;
 *   - with every batch's CRC recomputed first, verification on: the same
 *     records and the same error as the unverified walk.  Without this the
 *     fuzzer would hardly get past the CRC check.
 *
 * Then every batch that iterated cleanly is rebuilt with SlBatchBuilder
 * (same codec) and must give back the same records, and SlBatchSeal must
 * leave it with a valid CRC.
 */
#include "fuzz_common.h"

FUZZ_COMMON_INITIALIZE()

/* Both records carry the same headers */
static void
check_same_headers(const SlRecord *a, const SlRecord *b)
{
	const uint8 *pa = a->headers;
	const uint8 *pb = b->headers;

	FUZZ_CHECK(a->header_count == b->header_count);
	for (int32 i = 0; i < a->header_count; i++)
	{
		SlRecordHeader ha;
		SlRecordHeader hb;

		FUZZ_CHECK(SlRecordHeaderNext(&pa, a->headers_end, &ha));
		FUZZ_CHECK(SlRecordHeaderNext(&pb, b->headers_end, &hb));
		FUZZ_CHECK(ha.key_len == hb.key_len);
		FUZZ_CHECK(ha.key_len == 0 || memcmp(ha.key, hb.key, ha.key_len) == 0);
		FUZZ_CHECK(ha.value_len == hb.value_len);
		FUZZ_CHECK(ha.value_len <= 0 || memcmp(ha.value, hb.value, ha.value_len) == 0);
	}
}

/*
 * batch (len bytes, exactly one batch) iterates without error: build it
 * again from its records and compare.
 */
static void
check_rebuild(const uint8 *batch, size_t len)
{
	SlBatchHeader hdr;
	SlRecordIter it;
	SlRecordIter again;
	SlRecord	rec;
	SlRecord	rec2;
	SlBatchBuilder b;
	StringInfoData out;
	uint8	   *rebuilt;
	int64		i = 0;

	FUZZ_CHECK(SlBatchParseHeader(batch, len, &hdr, false) == NULL);
	FUZZ_CHECK(SlBatchSize(&hdr) == len);

	SlBatchBuilderInit(&b, (SlCompression) SlBatchCompression(&hdr));
	FUZZ_CHECK(SlRecordIterInit(&it, batch, len, false, FUZZ_MAX_DECOMPRESSED) == NULL);
	while (SlRecordIterNext(&it, &rec))
	{
		SlRecordHeader *headers = NULL;
		const uint8 *hp = rec.headers;

		if (rec.header_count > 0)
			headers = palloc(sizeof(SlRecordHeader) * rec.header_count);
		for (int32 h = 0; h < rec.header_count; h++)
			FUZZ_CHECK(SlRecordHeaderNext(&hp, rec.headers_end, &headers[h]));
		SlBatchBuilderAdd(&b, rec.timestamp, rec.key, rec.key_len,
						  rec.value, rec.value_len, headers, rec.header_count);
		if (headers)
			pfree(headers);
	}
	FUZZ_CHECK(it.error == NULL);
	SlRecordIterFree(&it);

	initStringInfo(&out);
	FUZZ_CHECK(SlBatchBuilderFinish(&b, &out) == NULL);
	SlBatchBuilderFree(&b);
	rebuilt = fuzz_copy((const uint8 *) out.data, out.len);
	SlBatchSeal(rebuilt, out.len, hdr.base_offset, -1);

	FUZZ_CHECK(SlRecordIterInit(&it, batch, len, false, FUZZ_MAX_DECOMPRESSED) == NULL);
	FUZZ_CHECK(SlRecordIterInit(&again, rebuilt, out.len, true, SIZE_MAX) == NULL);
	FUZZ_CHECK(again.hdr.record_count == hdr.record_count);
	FUZZ_CHECK(SlBatchSize(&again.hdr) == (size_t) out.len);
	for (;;)
	{
		bool		more = SlRecordIterNext(&it, &rec);

		FUZZ_CHECK(more == SlRecordIterNext(&again, &rec2));
		if (!more)
			break;
		FUZZ_CHECK(rec2.offset == (int64) ((uint64) hdr.base_offset + (uint64) i));
		FUZZ_CHECK(rec2.timestamp == rec.timestamp);
		FUZZ_CHECK(rec2.key_len == rec.key_len);
		FUZZ_CHECK(rec.key_len <= 0 || memcmp(rec.key, rec2.key, rec.key_len) == 0);
		FUZZ_CHECK(rec2.value_len == rec.value_len);
		FUZZ_CHECK(rec.value_len <= 0 || memcmp(rec.value, rec2.value, rec.value_len) == 0);
		check_same_headers(&rec, &rec2);
		i++;
	}
	FUZZ_CHECK(it.error == NULL && again.error == NULL);
	FUZZ_CHECK(i == hdr.record_count);
	SlRecordIterFree(&it);
	SlRecordIterFree(&again);
	free(rebuilt);
	pfree(out.data);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8	   *copy = fuzz_copy(data, size);
	FuzzWalk	off;
	FuzzWalk	on;
	FuzzWalk	fixed;
	size_t		pos = 0;

	fuzz_walk_batches(copy, size, false, FUZZ_MAX_DECOMPRESSED, &off);
	fuzz_walk_batches(copy, size, true, FUZZ_MAX_DECOMPRESSED, &on);
	FUZZ_EXPECT(on.error == NULL && on.nbatches > 0, on.error);

	/* verification only ever adds an error */
	FUZZ_CHECK(on.nbatches <= off.nbatches);
	FUZZ_CHECK(on.consumed <= off.consumed);
	if (on.error == NULL)
	{
		FUZZ_CHECK(off.error == NULL);
		FUZZ_CHECK(on.nbatches == off.nbatches);
		FUZZ_CHECK(on.nrecords == off.nrecords);
		FUZZ_CHECK(on.digest == off.digest);
	}

	/* with every CRC right, verification changes nothing */
	fuzz_fix_batch_crcs(copy, size);
	fuzz_walk_batches(copy, size, true, FUZZ_MAX_DECOMPRESSED, &fixed);
	FUZZ_CHECK(fixed.nbatches == off.nbatches);
	FUZZ_CHECK(fixed.nrecords == off.nrecords);
	FUZZ_CHECK(fixed.consumed == off.consumed);
	FUZZ_CHECK(fixed.digest == off.digest);
	FUZZ_CHECK((fixed.error == NULL) == (off.error == NULL));

	/* the batches that iterated cleanly */
	for (int i = 0; i < off.nbatches; i++)
	{
		SlBatchHeader hdr;
		size_t		n;

		FUZZ_CHECK(SlBatchParseHeader(copy + pos, size - pos, &hdr, true) == NULL);
		n = SlBatchSize(&hdr);
		check_rebuild(copy + pos, n);

		/* sealing gives the batch its offset and a CRC that verifies */
		SlBatchSeal(copy + pos, n, 42, 1234567);
		FUZZ_CHECK(SlBatchParseHeader(copy + pos, n, &hdr, true) == NULL);
		FUZZ_CHECK(hdr.base_offset == 42);
		FUZZ_CHECK(hdr.max_timestamp == 1234567);
		FUZZ_CHECK(hdr.attributes & SL_BATCH_ATTR_LOG_APPEND_TIME);
		pos += n;
	}

	free(copy);
	return 0;
}
