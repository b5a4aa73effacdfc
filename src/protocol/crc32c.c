/*-------------------------------------------------------------------------
 * crc32c.c
 *	  CRC32C of record batches, three streams at a time.
 *
 * PostgreSQL's CRC32C with SSE 4.2 (pg_comp_crc32c_sse42) feeds one crc32
 * instruction with the result of the one before: the instruction takes
 * three cycles to give its result and could start one every cycle, so it
 * runs at a third of what the CPU can do.  Checking the CRC of each batch
 * a read() puts together took 7% of a paged read() of 100-byte records
 * and 19% with 1 KiB ones.
 *
 * So a long input is cut into three blocks computed side by side, and
 * their CRCs are joined: the CRC of a block followed by LEN more bytes is
 * the block's CRC shifted over LEN zero bytes (a linear map, applied with
 * four lookups in a table made once for each block length) xor the CRC
 * of those bytes computed from zero.  This is the method of Mark Adler's
 * crc32c.c (zlib's crc32_combine).  Where SSE 4.2 is missing (checked
 * at run time) or the compiler is not GCC-compatible on x86-64,
 * PostgreSQL's COMP_CRC32C does it all.
 *
 * IDENTIFICATION
 *	  src/protocol/crc32c.c
 *-------------------------------------------------------------------------
 */
#include "streamlog/protocol/codec_base.h"

#include "port/pg_crc32c.h"
#include "streamlog/protocol/crc32c.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define SL_CRC32C_INTERLEAVED 1
#include <cpuid.h>
#include <nmmintrin.h>
#endif

#ifdef SL_CRC32C_INTERLEAVED

/* CRC32C's polynomial, reflected */
#define POLY 0x82f63b78U

/* Block lengths: three of LONG_BLOCK, then three of SHORT_BLOCK */
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

static uint32 shift_long[4][256];
static uint32 shift_short[4][256];
static int	have_sse42 = -1;	/* not yet known */

/* Multiply the 32x32 GF(2) matrix mat by vec */
static uint32
gf2_times(const uint32 *mat, uint32 vec)
{
	uint32		sum = 0;

	while (vec)
	{
		if (vec & 1)
			sum ^= *mat;
		vec >>= 1;
		mat++;
	}
	return sum;
}

static void
gf2_square(uint32 *square, const uint32 *mat)
{
	for (int n = 0; n < 32; n++)
		square[n] = gf2_times(mat, mat[n]);
}

/* The matrix that moves a CRC over len zero bytes, into even */
static void
zeros_operator(uint32 *even, size_t len)
{
	uint32		odd[32];
	uint32		row = 1;

	/* one zero bit */
	odd[0] = POLY;
	for (int n = 1; n < 32; n++)
	{
		odd[n] = row;
		row <<= 1;
	}
	gf2_square(even, odd);		/* two zero bits */
	gf2_square(odd, even);		/* four zero bits */

	/*
	 * The next square makes the operator for one zero byte, each one after
	 * it doubles the bytes, until len (a power of two) is shifted out
	 */
	do
	{
		gf2_square(even, odd);
		len >>= 1;
		if (len == 0)
			return;
		gf2_square(odd, even);
		len >>= 1;
	} while (len);
	memcpy(even, odd, sizeof(odd));
}

/* Tables applying the len-zero-bytes operator one byte of a CRC at a time */
static void
make_shift_table(uint32 table[4][256], size_t len)
{
	uint32		op[32];

	zeros_operator(op, len);
	for (uint32 n = 0; n < 256; n++)
	{
		table[0][n] = gf2_times(op, n);
		table[1][n] = gf2_times(op, n << 8);
		table[2][n] = gf2_times(op, n << 16);
		table[3][n] = gf2_times(op, n << 24);
	}
}

static inline uint32
shift(uint32 table[4][256], uint32 crc)
{
	return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^
		table[2][(crc >> 16) & 0xff] ^ table[3][crc >> 24];
}

/* Is SSE 4.2 there?  Makes the tables the first time it is */
static bool
interleaved_usable(void)
{
	if (have_sse42 < 0)
	{
		unsigned int a,
					b,
					c,
					d;

		have_sse42 = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2) != 0;
		if (have_sse42)
		{
			make_shift_table(shift_long, LONG_BLOCK);
			make_shift_table(shift_short, SHORT_BLOCK);
		}
	}
	return have_sse42 > 0;
}

/*
 * Three blocks of block bytes at a time while 3 * block are left; returns
 * the CRC so far, *next and *len moved past what was done
 */
__attribute__((target("sse4.2")))
static inline uint32
three_blocks(uint32 crc0, const uint8 **next, size_t *len, size_t block,
			 uint32 table[4][256])
{
	const uint8 *p = *next;

	while (*len >= 3 * block)
	{
		uint64		crc1 = 0;
		uint64		crc2 = 0;
		uint64		c0 = crc0;
		const uint8 *end = p + block;

		do
		{
			uint64		w0,
						w1,
						w2;

			memcpy(&w0, p, 8);
			memcpy(&w1, p + block, 8);
			memcpy(&w2, p + 2 * block, 8);
			c0 = _mm_crc32_u64(c0, w0);
			crc1 = _mm_crc32_u64(crc1, w1);
			crc2 = _mm_crc32_u64(crc2, w2);
			p += 8;
		} while (p < end);
		crc0 = shift(table, (uint32) c0) ^ (uint32) crc1;
		crc0 = shift(table, crc0) ^ (uint32) crc2;
		p += 2 * block;
		*len -= 3 * block;
	}
	*next = p;
	return crc0;
}

__attribute__((target("sse4.2")))
static uint32
crc32c_interleaved(uint32 crc, const uint8 *p, size_t len)
{
	uint64		c;

	crc = three_blocks(crc, &p, &len, LONG_BLOCK, shift_long);
	crc = three_blocks(crc, &p, &len, SHORT_BLOCK, shift_short);
	c = crc;
	while (len >= 8)
	{
		uint64		w;

		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		len -= 8;
	}
	crc = (uint32) c;
	while (len > 0)
	{
		crc = _mm_crc32_u8(crc, *p++);
		len--;
	}
	return crc;
}

#endif							/* SL_CRC32C_INTERLEAVED */

uint32
SlCrc32cUpdate(uint32 crc, const void *data, size_t len)
{
	pg_crc32c	c = crc;

#ifdef SL_CRC32C_INTERLEAVED
	/* short inputs gain nothing: three blocks of SHORT_BLOCK at least */
	if (len >= 3 * SHORT_BLOCK && interleaved_usable())
		return crc32c_interleaved(crc, (const uint8 *) data, len);
#endif
	COMP_CRC32C(c, data, len);
	return (uint32) c;
}
