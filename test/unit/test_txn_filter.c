/*
 * Transactions, the pure parts: the control record codec (ControlRecordType
 * key, EndTransactionMarker value) through a whole control batch, and the
 * read_committed filter over batches against a naive model on random logs
 * of interleaved producers.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/control_records.h"
#include "streamlog/protocol/records.h"
#include "streamlog/storage/txn_filter.h"
#include "unit.h"

static void
test_control_codec(void)
{
	uint8		key[SL_CONTROL_KEY_SIZE];
	uint8		value[SL_CONTROL_VALUE_SIZE];
	uint8		later[6] = {0, 1, 0, 1, 0xAB, 0xCD};	/* version 1, longer */
	uint8		negative[4] = {0xFF, 0xFF, 0, 1};
	uint8		unknown[4] = {0, 0, 0, 7};
	int16		type = -1;
	int32		epoch = 0;

	SlControlKeyEncode(key, SL_CONTROL_TYPE_COMMIT);
	CHECK_MEM(key, "\0\0\0\1", 4);
	CHECK(SlControlKeyDecode(key, 4, &type));
	CHECK_EQ_INT(type, SL_CONTROL_TYPE_COMMIT);
	SlControlKeyEncode(key, SL_CONTROL_TYPE_ABORT);
	CHECK(SlControlKeyDecode(key, 4, &type));
	CHECK_EQ_INT(type, SL_CONTROL_TYPE_ABORT);

	SlControlValueEncode(value, 123456);
	CHECK_MEM(value, "\0\0\0\x01\xe2\x40", 6);
	CHECK(SlControlValueDecode(value, 6, &epoch));
	CHECK_EQ_INT(epoch, 123456);
	SlControlValueEncode(value, -1);
	CHECK(SlControlValueDecode(value, 6, &epoch));
	CHECK_EQ_INT(epoch, -1);

	/* A later version still starts with the type, as Kafka reads it */
	CHECK(SlControlKeyDecode(later, 6, &type));
	CHECK_EQ_INT(type, SL_CONTROL_TYPE_COMMIT);
	/* Malformed: short, null, negative version, unknown type */
	CHECK(!SlControlKeyDecode(key, 3, &type));
	CHECK(!SlControlKeyDecode(NULL, -1, &type));
	CHECK(!SlControlKeyDecode(negative, 4, &type));
	CHECK(!SlControlKeyDecode(unknown, 4, &type));
	CHECK(!SlControlValueDecode(value, 5, &epoch));
	CHECK(!SlControlValueDecode(NULL, -1, &epoch));
	CHECK(!SlControlValueDecode(negative, 4, &epoch));
}

/* A marker as the log writes it, read back record by record */
static void
test_control_batch(void)
{
	SlBatchBuilder b;
	StringInfoData out;
	SlRecordIter it;
	SlRecord	rec;
	uint8		key[SL_CONTROL_KEY_SIZE];
	uint8		value[SL_CONTROL_VALUE_SIZE];
	int16		type;
	int32		epoch;

	SlControlKeyEncode(key, SL_CONTROL_TYPE_ABORT);
	SlControlValueEncode(value, 9);
	SlBatchBuilderInit(&b, SL_COMPRESSION_NONE);
	b.producer_id = 4242;
	b.producer_epoch = 3;
	b.base_sequence = SL_NO_SEQUENCE;
	SlBatchBuilderSetBase(&b, SL_BATCH_ATTR_CONTROL | SL_BATCH_ATTR_TRANSACTIONAL, false, 0);
	SlBatchBuilderAdd(&b, 1700000000000LL, key, sizeof(key), value, sizeof(value), NULL, 0);
	initStringInfo(&out);
	CHECK_NULL_ERR(SlBatchBuilderFinish(&b, &out));
	SlBatchSeal((uint8 *) out.data, out.len, 77, -1);

	CHECK_NULL_ERR(SlRecordIterInit(&it, (const uint8 *) out.data, out.len, true, 1 << 20));
	CHECK_EQ_INT(it.hdr.base_offset, 77);
	CHECK_EQ_INT(it.hdr.attributes & 0x30, 0x30);
	CHECK_EQ_INT(it.hdr.producer_id, 4242);
	CHECK_EQ_INT(it.hdr.producer_epoch, 3);
	CHECK_EQ_INT(it.hdr.base_sequence, -1);
	CHECK_EQ_INT(it.hdr.record_count, 1);
	CHECK(SlRecordIterNext(&it, &rec));
	CHECK_EQ_INT(rec.offset, 77);
	CHECK(SlControlKeyDecode(rec.key, rec.key_len, &type));
	CHECK_EQ_INT(type, SL_CONTROL_TYPE_ABORT);
	CHECK(SlControlValueDecode(rec.value, rec.value_len, &epoch));
	CHECK_EQ_INT(epoch, 9);
	CHECK(!SlRecordIterNext(&it, &rec));
	CHECK(it.error == NULL);
	SlRecordIterFree(&it);
	SlBatchBuilderFree(&b);
	pfree(out.data);
}

static void
test_filter_cases(void)
{
	/* A: 10-14 aborted at 15; B: 12 aborted at 20; A again: 16 aborted at 18 */
	SlAbortedTxn txns[] = {{1, 10, 15}, {2, 12, 20}, {1, 16, 18}};
	SlAbortedFilter f;

	SlAbortedFilterInit(&f, txns, 3);
	CHECK(!SlAbortedFilterSkips(&f, SL_BATCH_ATTR_TRANSACTIONAL, 1, 5));	/* committed before */
	CHECK(!SlAbortedFilterSkips(&f, 0, -1, 9));
	CHECK(SlAbortedFilterSkips(&f, SL_BATCH_ATTR_TRANSACTIONAL, 1, 10));
	CHECK(!SlAbortedFilterSkips(&f, 0, -1, 11));	/* not transactional */
	CHECK(SlAbortedFilterSkips(&f, SL_BATCH_ATTR_TRANSACTIONAL, 2, 12));
	CHECK(!SlAbortedFilterSkips(&f, SL_BATCH_ATTR_TRANSACTIONAL, 3, 13));	/* another producer */
	CHECK(SlAbortedFilterSkips(&f, SL_BATCH_ATTR_TRANSACTIONAL | 1, 1, 14));	/* compressed */
	CHECK(SlAbortedFilterSkips(&f, SL_BATCH_ATTR_CONTROL | SL_BATCH_ATTR_TRANSACTIONAL, 1, 15));
	CHECK(SlAbortedFilterSkips(&f, SL_BATCH_ATTR_TRANSACTIONAL, 1, 16));
	CHECK(SlAbortedFilterSkips(&f, SL_BATCH_ATTR_TRANSACTIONAL, 2, 17));
	CHECK(SlAbortedFilterSkips(&f, SL_BATCH_ATTR_CONTROL | SL_BATCH_ATTR_TRANSACTIONAL, 1, 18));
	CHECK(!SlAbortedFilterSkips(&f, SL_BATCH_ATTR_TRANSACTIONAL, 1, 19));	/* a new one */
	CHECK(SlAbortedFilterSkips(&f, SL_BATCH_ATTR_CONTROL | SL_BATCH_ATTR_TRANSACTIONAL, 2, 20));
	CHECK(!SlAbortedFilterSkips(&f, SL_BATCH_ATTR_TRANSACTIONAL, 2, 21));

	/* No index: only control batches go */
	SlAbortedFilterInit(&f, NULL, 0);
	CHECK(!SlAbortedFilterSkips(&f, SL_BATCH_ATTR_TRANSACTIONAL, 1, 0));
	CHECK(SlAbortedFilterSkips(&f, SL_BATCH_ATTR_CONTROL | SL_BATCH_ATTR_TRANSACTIONAL, 1, 1));
}

#define NPRODUCERS 4
#define LOG_LEN 400

typedef struct ModelBatch
{
	int64		offset;
	int16		attributes;
	int64		producer_id;
	bool		aborted;		/* what the model says */
} ModelBatch;

/*
 * Random logs: each producer opens a transaction, writes batches, then
 * commits or aborts it with a marker; plain batches in between.  The
 * filter, started anywhere in the log with the aborted transactions that
 * overlap the rest, must skip exactly the markers and aborted batches.
 */
static void
test_filter_random(uint64_t *rng)
{
	for (int round = 0; round < 300; round++)
	{
		ModelBatch	log[LOG_LEN];
		SlAbortedTxn txns[LOG_LEN];
		SlAbortedTxn overlap[LOG_LEN];
		int64		open_first[NPRODUCERS];
		int			open_batches[NPRODUCERS][LOG_LEN];
		int			nopen[NPRODUCERS];
		int			ntxns = 0;
		int			noverlap = 0;
		int			n = 0;
		int			from;
		SlAbortedFilter f;
		bool		ok = true;

		for (int p = 0; p < NPRODUCERS; p++)
		{
			open_first[p] = -1;
			nopen[p] = 0;
		}
		while (n < LOG_LEN)
		{
			int			p = (int) (unit_rand(rng) % NPRODUCERS);
			int			what = (int) (unit_rand(rng) % 10);
			ModelBatch *b = &log[n];

			b->offset = n;
			b->aborted = false;
			if (what < 2)
			{
				b->attributes = 0;
				b->producer_id = -1;
			}
			else if (what < 8 || open_first[p] < 0)
			{
				b->attributes = SL_BATCH_ATTR_TRANSACTIONAL;
				b->producer_id = 100 + p;
				if (open_first[p] < 0)
					open_first[p] = n;
				open_batches[p][nopen[p]++] = n;
			}
			else
			{
				bool		abort = unit_rand(rng) % 2 == 0;

				b->attributes = SL_BATCH_ATTR_CONTROL | SL_BATCH_ATTR_TRANSACTIONAL;
				b->producer_id = 100 + p;
				b->aborted = true;	/* markers are always skipped */
				if (abort)
				{
					txns[ntxns++] = (SlAbortedTxn) {100 + p, open_first[p], n};
					for (int i = 0; i < nopen[p]; i++)
						log[open_batches[p][i]].aborted = true;
				}
				open_first[p] = -1;
				nopen[p] = 0;
			}
			n++;
		}
		/* The index lists them by first offset, as the query orders them */
		for (int i = 1; i < ntxns; i++)
			for (int j = i; j > 0 && txns[j].first_offset < txns[j - 1].first_offset; j--)
			{
				SlAbortedTxn t = txns[j];

				txns[j] = txns[j - 1];
				txns[j - 1] = t;
			}
		from = (int) (unit_rand(rng) % LOG_LEN);
		for (int i = 0; i < ntxns; i++)
			if (txns[i].last_offset >= from)
				overlap[noverlap++] = txns[i];
		SlAbortedFilterInit(&f, overlap, noverlap);
		for (int i = from; i < n; i++)
		{
			bool		skips = SlAbortedFilterSkips(&f, log[i].attributes,
													 log[i].producer_id, log[i].offset);

			if (skips != log[i].aborted)
			{
				CHECK_MSG(false, "round %d from %d: batch %d skipped %d, model %d",
						  round, from, i, skips, log[i].aborted);
				ok = false;
				break;
			}
		}
		if (ok)
			PASS();
	}
}

int
main(void)
{
	uint64_t	rng = unit_seed(0x7478636f6f726421ULL);

	test_control_codec();
	test_control_batch();
	test_filter_cases();
	test_filter_random(&rng);
	return UNIT_DONE();
}
