/*
 * Shared helpers of the libFuzzer targets in test/fuzz/.
 *
 * The targets are frontend programs (-DFRONTEND): palloc is malloc and
 * pfree is free, so every allocation a target makes or causes is freed
 * before LLVMFuzzerTestOneInput returns, and LeakSanitizer stays on.
 *
 * FUZZ_CHECK() turns a broken invariant into a crash that libFuzzer
 * records like a sanitizer report.  With STREAMLOG_FUZZ_EXPECT_VALID=1 in
 * the environment, a target also aborts when an input is not accepted
 * whole: running a target on the seed corpus that way checks that every
 * seed is a valid message (see test/python/test_fuzz.py).
 */
#ifndef SL_FUZZ_COMMON_H
#define SL_FUZZ_COMMON_H

#include "streamlog/protocol/codec_base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamlog/protocol/compression.h"
#include "streamlog/protocol/records.h"

/* Bound on decompressed data, as a broker would set it for one batch */
#define FUZZ_MAX_DECOMPRESSED ((size_t) 1024 * 1024)

extern int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern int	LLVMFuzzerInitialize(int *argc, char ***argv);

static bool fuzz_expect_valid = false;

#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", \
					__FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

/* In expect-valid mode, an input the codec refused is a failure */
#define FUZZ_EXPECT(cond, what) \
	do { \
		if (fuzz_expect_valid && !(cond)) \
		{ \
			fprintf(stderr, "%s:%d: seed not accepted: %s\n", \
					__FILE__, __LINE__, (what) ? (what) : #cond); \
			abort(); \
		} \
	} while (0)

static inline void
fuzz_init_common(void)
{
	const char *v = getenv("STREAMLOG_FUZZ_EXPECT_VALID");

	fuzz_expect_valid = v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* The initializer of a target that needs nothing more than the common one */
#define FUZZ_COMMON_INITIALIZE() \
	int \
	LLVMFuzzerInitialize(int *argc, char ***argv) \
	{ \
		fuzz_init_common(); \
		(void) argc; \
		(void) argv; \
		return 0; \
	}

/* Read every byte of a view so that ASan checks its bounds */
static volatile uint32 fuzz_sink;

static inline uint32
fuzz_touch(const void *data, int64 len, uint32 h)
{
	const uint8 *p = data;

	for (int64 i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	fuzz_sink = h;
	return h;
}

/* A private, exactly sized copy: reads past its end are ASan errors */
static inline uint8 *
fuzz_copy(const uint8 *data, size_t len)
{
	uint8	   *copy = malloc(len > 0 ? len : 1);

	FUZZ_CHECK(copy != NULL);
	if (len > 0)
		memcpy(copy, data, len);
	return copy;
}

/* A view [p, p + len) lies within [lo, hi) */
static inline bool
fuzz_within(const uint8 *p, int64 len, const uint8 *lo, const uint8 *hi)
{
	if (len <= 0)
		return true;
	return p >= lo && p <= hi && len <= hi - p;
}

/* Outcome of walking a sequence of record batches */
typedef struct FuzzWalk
{
	int			nbatches;		/* batches iterated without error */
	int64		nrecords;		/* records returned, in all batches */
	size_t		consumed;		/* bytes of the whole batches walked */
	const char *error;			/* first error, NULL if none */
	uint32		digest;			/* hash of every record field */
} FuzzWalk;

/* Check one record returned by an iterator and fold it into *h */
static inline void
fuzz_check_record(const uint8 *lo, const uint8 *hi, const SlRecord *rec,
				  uint32 *h)
{
	const uint8 *hp = rec->headers;

	FUZZ_CHECK(rec->key_len >= -1 && rec->value_len >= -1);
	FUZZ_CHECK((rec->key == NULL) == (rec->key_len < 0));
	FUZZ_CHECK((rec->value == NULL) == (rec->value_len < 0));
	FUZZ_CHECK(rec->key_len <= 0 || fuzz_within(rec->key, rec->key_len, lo, hi));
	FUZZ_CHECK(rec->value_len <= 0 || fuzz_within(rec->value, rec->value_len, lo, hi));
	FUZZ_CHECK(rec->header_count >= 0);
	FUZZ_CHECK(rec->headers <= rec->headers_end);
	FUZZ_CHECK(fuzz_within(rec->headers, rec->headers_end - rec->headers, lo, hi));

	*h = fuzz_touch(rec->key, rec->key_len, *h);
	*h = fuzz_touch(rec->value, rec->value_len, *h);
	*h = fuzz_touch(&rec->timestamp, sizeof(rec->timestamp), *h);
	*h = fuzz_touch(&rec->offset, sizeof(rec->offset), *h);

	/* the iterator validated the headers: walking them again must agree */
	for (int32 i = 0; i < rec->header_count; i++)
	{
		SlRecordHeader hdr;

		FUZZ_CHECK(SlRecordHeaderNext(&hp, rec->headers_end, &hdr));
		FUZZ_CHECK(hdr.key_len >= 0 && hdr.value_len >= -1);
		FUZZ_CHECK((hdr.value == NULL) == (hdr.value_len < 0));
		FUZZ_CHECK(fuzz_within((const uint8 *) hdr.key, hdr.key_len, rec->headers, rec->headers_end));
		FUZZ_CHECK(hdr.value_len <= 0 || fuzz_within(hdr.value, hdr.value_len, rec->headers, rec->headers_end));
		*h = fuzz_touch(hdr.key, hdr.key_len, *h);
		*h = fuzz_touch(hdr.value, hdr.value_len, *h);
	}
	FUZZ_CHECK(hp == rec->headers_end);
}

/*
 * Walk the record batches at data the way the Produce handler does: parse
 * each header, iterate over all records and their headers, then step to the
 * next batch.  Stops at the first error.
 */
static inline void
fuzz_walk_batches(const uint8 *data, size_t len, bool verify_crc,
				  size_t max_decompressed, FuzzWalk *w)
{
	size_t		pos = 0;

	memset(w, 0, sizeof(*w));
	w->digest = 2166136261u;
	while (pos < len)
	{
		SlBatchHeader hdr;
		SlRecordIter it;
		SlRecord	rec;
		const uint8 *lo;
		const uint8 *hi;
		int32		n = 0;
		const char *err;

		err = SlBatchParseHeader(data + pos, len - pos, &hdr, verify_crc);
		if (err)
		{
			w->error = err;
			break;
		}
		FUZZ_CHECK(hdr.magic == SL_BATCH_MAGIC);
		FUZZ_CHECK(SlBatchSize(&hdr) >= SL_BATCH_HEADER_SIZE);
		FUZZ_CHECK(SlBatchSize(&hdr) <= len - pos);
		FUZZ_CHECK(hdr.record_count >= 0);

		err = SlRecordIterInit(&it, data + pos, len - pos, verify_crc,
							   max_decompressed);
		if (err)
		{
			FUZZ_CHECK(it.decompressed.data == NULL);
			w->error = err;
			break;
		}
		if (it.decompressed.data != NULL)
		{
			FUZZ_CHECK(SlBatchCompression(&hdr) != SL_COMPRESSION_NONE);
			FUZZ_CHECK((size_t) it.decompressed.len <= max_decompressed);
			lo = (const uint8 *) it.decompressed.data;
			hi = lo + it.decompressed.len;
		}
		else
		{
			FUZZ_CHECK(SlBatchCompression(&hdr) == SL_COMPRESSION_NONE);
			lo = data + pos + SL_BATCH_HEADER_SIZE;
			hi = data + pos + SlBatchSize(&hdr);
		}
		while (SlRecordIterNext(&it, &rec))
		{
			n++;
			FUZZ_CHECK(n <= hdr.record_count);
			fuzz_check_record(lo, hi, &rec, &w->digest);
		}
		if (it.error == NULL)
			FUZZ_CHECK(n == hdr.record_count);
		/* a finished or failed iterator stays finished */
		FUZZ_CHECK(!SlRecordIterNext(&it, &rec));
		err = it.error;
		SlRecordIterFree(&it);
		w->nrecords += n;
		if (err)
		{
			w->error = err;
			break;
		}
		w->nbatches++;
		pos += SlBatchSize(&hdr);
	}
	w->consumed = pos;
}

/* Recompute the CRC of every batch that parses, in place */
static inline void
fuzz_fix_batch_crcs(uint8 *data, size_t len)
{
	size_t		pos = 0;

	while (pos < len)
	{
		SlBatchHeader hdr;

		if (SlBatchParseHeader(data + pos, len - pos, &hdr, false) != NULL)
			break;
		SlStoreInt32(data + pos + SL_BATCH_OFFSET_CRC,
					 (int32) SlBatchComputeCrc(data + pos, SlBatchSize(&hdr)));
		pos += SlBatchSize(&hdr);
	}
}

#endif							/* SL_FUZZ_COMMON_H */
