#include "streamlog/protocol/codec_base.h"

#include "port/pg_crc32c.h"
#include "streamlog/protocol/crc32c.h"
#include "streamlog/protocol/records.h"
#include "unit.h"

static uint32
crc32c(const void *data, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, data, len);
	FIN_CRC32C(crc);
	return (uint32) crc;
}

/* Bit-at-a-time CRC32C (Castagnoli, reflected polynomial 0x82F63B78) */
static uint32
crc32c_ref(const uint8 *p, size_t len)
{
	uint32		crc = 0xffffffffU;
	size_t		i;
	int			k;

	for (i = 0; i < len; i++)
	{
		crc ^= p[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78U & (0U - (crc & 1)));
	}
	return ~crc;
}

int
main(void)
{
	uint8		zeros[32];
	uint8		ones[32];
	uint8		incr[32];
	uint8		big[4099];
	int			i;

	memset(zeros, 0, sizeof(zeros));
	memset(ones, 0xff, sizeof(ones));
	for (i = 0; i < 32; i++)
		incr[i] = (uint8) i;
	for (i = 0; i < (int) sizeof(big); i++)
		big[i] = (uint8) (i * 31 + 7);

	CHECK_EQ_UINT(crc32c("123456789", 9), 0xE3069283U);
	CHECK_EQ_UINT(crc32c("", 0), 0);
	CHECK_EQ_UINT(crc32c(zeros, 32), 0x8A9136AAU);
	CHECK_EQ_UINT(crc32c(ones, 32), 0x62A8AB43U);
	CHECK_EQ_UINT(crc32c(incr, 32), 0x46DD794EU);
	CHECK_EQ_UINT(crc32c_ref((const uint8 *) "123456789", 9), 0xE3069283U);
	for (i = 0; i + 13 < (int) sizeof(big); i += 97)
	{
		size_t		off = i % 13;
		size_t		len = sizeof(big) - i - off;

		CHECK_EQ_UINT(crc32c(big + off, len), crc32c_ref(big + off, len));
	}

	/*
	 * A one-record batch assembled by hand: key "k", value "v", timestamp
	 * 1000, no headers, uncompressed.
	 */
	{
		uint8		batch[61 + 11];
		uint8	   *p = batch;
		uint32		want;
		SlBatchHeader hdr;

		memset(batch, 0, sizeof(batch));
		SlStoreInt64(p + 0, 42);	/* base offset */
		SlStoreInt32(p + 8, sizeof(batch) - 12);
		SlStoreInt32(p + 12, 0);	/* leader epoch */
		p[16] = 2;				/* magic */
		SlStoreInt16(p + 21, 0);	/* attributes */
		SlStoreInt32(p + 23, 0);	/* last offset delta */
		SlStoreInt64(p + 27, 1000);
		SlStoreInt64(p + 35, 1000);
		SlStoreInt64(p + 43, -1);
		SlStoreInt16(p + 51, -1);
		SlStoreInt32(p + 53, -1);
		SlStoreInt32(p + 57, 1);
		p += 61;
		*p++ = 0x10;			/* length 8 */
		*p++ = 0;				/* attributes */
		*p++ = 0;				/* timestamp delta */
		*p++ = 0;				/* offset delta */
		*p++ = 0x02;			/* key length 1 */
		*p++ = 'k';
		*p++ = 0x02;			/* value length 1 */
		*p++ = 'v';
		*p++ = 0;				/* header count */
		CHECK_EQ_INT(p - batch, 61 + 9);
		/* batch buffer has two extra bytes: shrink the length */
		SlStoreInt32(batch + 8, 61 + 9 - 12);

		want = crc32c_ref(batch + 21, 61 + 9 - 21);
		CHECK_EQ_UINT(SlBatchComputeCrc(batch, 61 + 9), want);

		/* base offset and leader epoch are not covered */
		SlStoreInt64(batch, 123456789);
		SlStoreInt32(batch + 12, 77);
		CHECK_EQ_UINT(SlBatchComputeCrc(batch, 61 + 9), want);

		/* wrong CRC rejected, right CRC accepted */
		CHECK(SlBatchParseHeader(batch, 61 + 9, &hdr, true) != NULL);
		CHECK_NULL_ERR(SlBatchParseHeader(batch, 61 + 9, &hdr, false));
		SlStoreInt32(batch + 17, (int32) want);
		CHECK_NULL_ERR(SlBatchParseHeader(batch, 61 + 9, &hdr, true));
		CHECK_EQ_UINT(hdr.crc, want);

		/* sealing computes the same CRC */
		SlStoreInt32(batch + 17, 0);
		SlBatchSeal(batch, 61 + 9, 5, -1);
		CHECK_EQ_UINT((uint32) SlLoadInt32(batch + 17), want);
		CHECK_EQ_INT(SlLoadInt64(batch), 5);

		/* any flipped covered byte changes it */
		for (i = 21; i < 61 + 9; i++)
		{
			batch[i] ^= 0x01;
			CHECK(SlBatchComputeCrc(batch, 61 + 9) != want);
			CHECK(SlBatchParseHeader(batch, 61 + 9, &hdr, true) != NULL);
			batch[i] ^= 0x01;
		}
		CHECK_NULL_ERR(SlBatchParseHeader(batch, 61 + 9, &hdr, true));
	}

	/*
	 * SlCrc32cUpdate, three blocks at a time past 768 bytes: equal to the
	 * bitwise CRC at every length around the block sizes (256, 8192) and
	 * their triples, at every alignment, and when chained over pieces
	 */
	{
		size_t		size = 3 * 8192 * 2 + 3 * 256 + 64;
		uint8	   *data = malloc(size);
		static const size_t lengths[] = {
			0, 1, 7, 8, 9, 255, 256, 257, 767, 768, 769, 775, 776, 1000,
			8191, 8192, 8193, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1,
			3 * 8192 + 768, 3 * 8192 + 777, 6 * 8192, 6 * 8192 + 3 * 256 + 63
		};
		uint32		seed = 12345;

		for (size_t k = 0; k < size; k++)
		{
			seed = seed * 1103515245 + 12345;
			data[k] = (uint8) (seed >> 16);
		}
		for (size_t l = 0; l < lengthof(lengths); l++)
			for (size_t off = 0; off < 9; off++)
			{
				size_t		len = Min(lengths[l], size - off);
				uint32		crc = 0xFFFFFFFFU;

				CHECK_EQ_UINT(~SlCrc32cUpdate(crc, data + off, len),
							  crc32c_ref(data + off, len));
				/* in two pieces, cut anywhere */
				crc = SlCrc32cUpdate(crc, data + off, len / 3);
				crc = SlCrc32cUpdate(crc, data + off + len / 3, len - len / 3);
				CHECK_EQ_UINT(~crc, crc32c_ref(data + off, len));
			}
		free(data);
	}

	return UNIT_DONE();
}
