/*
 * Fuzz target: transaction markers (src/protocol/control_records.c) as a
 * follower meets them: record batches from its leader whose control
 * batches it decodes (storage/replica_append.c reads the type of a
 * marker's first record).
 *
 * The input is one or more record batches back to back.  Each is walked
 * with its CRC not checked (the follower checks it, but the fuzzer would
 * not get past it); in a control batch, every record's key and value go
 * through SlControlKeyDecode and SlControlValueDecode from exactly sized
 * copies.  A key or value accepted must be a COMMIT or ABORT type, and
 * encoding what was decoded gives back its first bytes (a later version
 * may carry more).
 */
#include "fuzz_common.h"

#include "streamlog/protocol/control_records.h"

FUZZ_COMMON_INITIALIZE()

static int	nmarkers;

static void
check_control_record(const SlRecord *rec)
{
	uint8	   *key = rec->key_len >= 0 ? fuzz_copy(rec->key, rec->key_len) : NULL;
	uint8	   *value = rec->value_len >= 0 ? fuzz_copy(rec->value, rec->value_len) : NULL;
	int16		type = -1;
	int32		epoch = 0;
	bool		key_ok = SlControlKeyDecode(key, rec->key_len, &type);
	bool		value_ok = SlControlValueDecode(value, rec->value_len, &epoch);

	FUZZ_EXPECT(key_ok && value_ok, "control record");
	if (key_ok)
	{
		uint8		again[SL_CONTROL_KEY_SIZE];

		FUZZ_CHECK(type == SL_CONTROL_TYPE_ABORT || type == SL_CONTROL_TYPE_COMMIT);
		FUZZ_CHECK(rec->key_len >= SL_CONTROL_KEY_SIZE);
		SlControlKeyEncode(again, type);
		/* the type; the version is ours (0) or a later one */
		FUZZ_CHECK(memcmp(again + 2, key + 2, 2) == 0);
		nmarkers++;
	}
	if (value_ok)
	{
		uint8		again[SL_CONTROL_VALUE_SIZE];

		FUZZ_CHECK(rec->value_len >= SL_CONTROL_VALUE_SIZE);
		SlControlValueEncode(again, epoch);
		FUZZ_CHECK(memcmp(again + 2, value + 2, 4) == 0);
	}
	free(key);
	free(value);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8	   *copy = fuzz_copy(data, size);
	size_t		pos = 0;

	nmarkers = 0;
	while (pos < size)
	{
		SlBatchHeader hdr;
		SlRecordIter it;
		SlRecord	rec;
		const uint8 *lo;
		const uint8 *hi;
		uint32		h = 0;
		const char *err = SlBatchParseHeader(copy + pos, size - pos, &hdr, false);

		FUZZ_EXPECT(err == NULL, err);
		if (err)
			break;
		err = SlRecordIterInit(&it, copy + pos, size - pos, false, FUZZ_MAX_DECOMPRESSED);
		FUZZ_EXPECT(err == NULL, err);
		if (err)
			break;
		FUZZ_EXPECT(hdr.attributes & SL_BATCH_ATTR_CONTROL, "not a control batch");
		lo = it.decompressed.data ? (const uint8 *) it.decompressed.data :
			copy + pos + SL_BATCH_HEADER_SIZE;
		hi = it.decompressed.data ? lo + it.decompressed.len : copy + pos + SlBatchSize(&hdr);
		while (SlRecordIterNext(&it, &rec))
		{
			fuzz_check_record(lo, hi, &rec, &h);
			if (hdr.attributes & SL_BATCH_ATTR_CONTROL)
				check_control_record(&rec);
		}
		err = it.error;
		FUZZ_EXPECT(err == NULL, err);
		SlRecordIterFree(&it);
		if (err)
			break;
		pos += SlBatchSize(&hdr);
	}
	free(copy);
	return 0;
}
