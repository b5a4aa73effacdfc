#include "streamlog/protocol/codec_base.h"

#include "streamlog/storage/partitioner.h"
#include "unit.h"

static int32
m2(const char *s)
{
	return SlMurmur2((const uint8 *) s, strlen(s));
}

int
main(void)
{
	static const char *keys[] = {
		"", "a", "ab", "abc", "abcd", "abcde", "21", "foobar", "user-42",
		"a-little-bit-long-string", "\xff\xfe\x80"
	};
	int			i;
	int			n;

	/* Kafka's Utils.murmur2 test vectors */
	CHECK_EQ_INT(m2("21"), -973932308);
	CHECK_EQ_INT(m2("foobar"), -790332482);
	CHECK_EQ_INT(m2("a-little-bit-long-string"), -985981536);
	CHECK_EQ_INT(m2("a-little-bit-longer-string"), -1486304829);
	CHECK_EQ_INT(m2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
	CHECK_EQ_INT(m2("abc"), 479470107);

	/* CRC-32 (IEEE) */
	CHECK_EQ_UINT(SlCrc32((const uint8 *) "123456789", 9), 0xCBF43926U);
	CHECK_EQ_UINT(SlCrc32((const uint8 *) "", 0), 0);

	/* 32-bit FNV-1a */
	CHECK_EQ_UINT(SlFnv1a((const uint8 *) "", 0), 0x811c9dc5U);
	CHECK_EQ_UINT(SlFnv1a((const uint8 *) "a", 1), 0xe40c292cU);
	CHECK_EQ_UINT(SlFnv1a((const uint8 *) "foobar", 6), 0xbf9cf968U);

	/* partition choice */
	CHECK_EQ_INT(SlPartitionForKey(SL_PARTITIONER_MURMUR2, (const uint8 *) "foobar", 6, 6),
				 (-790332482 & 0x7fffffff) % 6);
	CHECK_EQ_INT(SlPartitionForKey(SL_PARTITIONER_MURMUR2, (const uint8 *) "21", 2, 10),
				 (-973932308 & 0x7fffffff) % 10);
	CHECK_EQ_INT(SlPartitionForKey(SL_PARTITIONER_MURMUR2, (const uint8 *) "abc", 3, 7),
				 479470107 % 7);
	CHECK_EQ_INT(SlPartitionForKey(SL_PARTITIONER_CRC32, (const uint8 *) "123456789", 9, 10),
				 0xCBF43926U % 10);
	/* fnv1a("foobar") is negative as an int32: Go's % keeps the sign, then abs */
	CHECK_EQ_INT(SlPartitionForKey(SL_PARTITIONER_FNV1A, (const uint8 *) "foobar", 6, 7),
				 -((int32) 0xbf9cf968U % 7));
	CHECK_EQ_INT(SlPartitionForKey(SL_PARTITIONER_FNV1A, (const uint8 *) "a", 1, 5),
				 -((int32) 0xe40c292cU % 5));
	CHECK_EQ_INT(SlPartitionForKey(SL_PARTITIONER_FNV1A, (const uint8 *) "", 0, 3),
				 -((int32) 0x811c9dc5U % 3));

	for (n = 1; n <= 64; n++)
	{
		bool		in_range = true;

		for (i = 0; i < (int) lengthof(keys); i++)
		{
			const uint8 *k = (const uint8 *) keys[i];
			size_t		len = strlen(keys[i]);
			int32		p;

			p = SlPartitionForKey(SL_PARTITIONER_MURMUR2, k, len, n);
			in_range &= (p >= 0 && p < n && p == (int32) (((uint32) SlMurmur2(k, len) & 0x7fffffffU) % n));
			p = SlPartitionForKey(SL_PARTITIONER_CRC32, k, len, n);
			in_range &= (p >= 0 && p < n && p == (int32) (SlCrc32(k, len) % (uint32) n));
			p = SlPartitionForKey(SL_PARTITIONER_FNV1A, k, len, n);
			in_range &= (p >= 0 && p < n);
		}
		CHECK_MSG(in_range, "partitions out of range for n=%d", n);
	}
	CHECK_EQ_INT(SlPartitionForKey(SL_PARTITIONER_MURMUR2, (const uint8 *) "x", 1, 1), 0);

	CHECK_EQ_INT(SlPartitionerFromName("murmur2"), SL_PARTITIONER_MURMUR2);
	CHECK_EQ_INT(SlPartitionerFromName("crc32"), SL_PARTITIONER_CRC32);
	CHECK_EQ_INT(SlPartitionerFromName("fnv1a"), SL_PARTITIONER_FNV1A);
	CHECK_EQ_INT(SlPartitionerFromName("random"), -1);
	CHECK_EQ_INT(SlPartitionerFromName(NULL), -1);

	return UNIT_DONE();
}
