/*
 * Fuzz target: the five codecs of src/protocol/compression.c.
 *
 * The input goes to SlDecompress of every codec, with max_out 1 MiB and a
 * destination that already holds a few bytes (SlDecompress appends).  The
 * output must stay within the bound and leave the existing bytes alone.  When
 * a codec accepts the input, decompressing again with max_out set to the
 * output size must give the same bytes, and with one byte less must fail.
 *
 * The input is also compressed with every codec by SlCompress, and that
 * must decompress (with max_out = input size) to the input.
 */
#include "fuzz_common.h"

#define PREFIX "pfx"
#define PREFIX_LEN 3

FUZZ_COMMON_INITIALIZE()

/* Decompress the input with codec; returns whether it was accepted */
static bool
check_decompress(SlCompression codec, const uint8 *data, size_t size)
{
	StringInfoData out;
	StringInfoData again;
	const char *err;
	size_t		n;

	initStringInfo(&out);
	appendStringInfoString(&out, PREFIX);
	err = SlDecompress(codec, data, size, &out, FUZZ_MAX_DECOMPRESSED);
	FUZZ_CHECK(out.len >= PREFIX_LEN && memcmp(out.data, PREFIX, PREFIX_LEN) == 0);
	FUZZ_CHECK((size_t) out.len - PREFIX_LEN <= FUZZ_MAX_DECOMPRESSED);
	if (err != NULL)
	{
		pfree(out.data);
		return false;
	}
	FUZZ_CHECK(out.data[out.len] == '\0');
	n = (size_t) out.len - PREFIX_LEN;
	fuzz_touch(out.data, out.len, 0);
	if (codec == SL_COMPRESSION_NONE)
		FUZZ_CHECK(n == size && memcmp(out.data + PREFIX_LEN, data, n) == 0);

	/* exactly the output size is enough ... */
	initStringInfo(&again);
	err = SlDecompress(codec, data, size, &again, n);
	FUZZ_CHECK(err == NULL);
	FUZZ_CHECK((size_t) again.len == n);
	FUZZ_CHECK(memcmp(again.data, out.data + PREFIX_LEN, n) == 0);

	/* ... and one byte less is not */
	if (n > 0)
	{
		resetStringInfo(&again);
		err = SlDecompress(codec, data, size, &again, n - 1);
		FUZZ_CHECK(err != NULL);
		FUZZ_CHECK((size_t) again.len <= n - 1);
	}
	pfree(again.data);
	pfree(out.data);
	return true;
}

/* SlCompress then SlDecompress gives the input back */
static void
check_roundtrip(SlCompression codec, const uint8 *data, size_t size)
{
	StringInfoData z;
	StringInfoData back;
	uint8	   *zcopy;
	const char *err;

	initStringInfo(&z);
	err = SlCompress(codec, data, size, &z);
	FUZZ_CHECK(err == NULL);
	zcopy = fuzz_copy((const uint8 *) z.data, z.len);

	initStringInfo(&back);
	err = SlDecompress(codec, zcopy, z.len, &back, size);
	if (err != NULL)
	{
		fprintf(stderr, "%s: own output of %zu bytes does not decompress: %s\n",
				SlCompressionName(codec), size, err);
		abort();
	}
	FUZZ_CHECK((size_t) back.len == size);
	FUZZ_CHECK(size == 0 || memcmp(back.data, data, size) == 0);

	free(zcopy);
	pfree(z.data);
	pfree(back.data);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8	   *copy = fuzz_copy(data, size);
	bool		accepted = false;

	for (int c = SL_COMPRESSION_GZIP; c <= SL_COMPRESSION_MAX; c++)
		accepted |= check_decompress((SlCompression) c, copy, size);
	FUZZ_EXPECT(accepted, "no codec accepts the seed");
	check_decompress(SL_COMPRESSION_NONE, copy, size);

	if (size <= FUZZ_MAX_DECOMPRESSED)
	{
		for (int c = SL_COMPRESSION_NONE; c <= SL_COMPRESSION_MAX; c++)
			check_roundtrip((SlCompression) c, copy, size);
	}
	free(copy);
	return 0;
}
