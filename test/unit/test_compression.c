#include "streamlog/protocol/codec_base.h"

#include <stdlib.h>
#include <zlib.h>
#include <snappy-c.h>
#include <lz4frame.h>
#include <zstd.h>

#include "streamlog/protocol/compression.h"
#include "unit.h"

static const SlCompression codecs[] = {
	SL_COMPRESSION_NONE, SL_COMPRESSION_GZIP, SL_COMPRESSION_SNAPPY,
	SL_COMPRESSION_LZ4, SL_COMPRESSION_ZSTD
};

#define NCODECS ((int) lengthof(codecs))

/* State of the random loops, seeded by main() (UNIT_SEED reproduces a run) */
static uint64_t seed;

static void
fill_random(uint8 *p, size_t len)
{
	size_t		i;

	for (i = 0; i < len; i++)
		p[i] = (uint8) unit_rand(&seed);
}

static void
fill_text(uint8 *p, size_t len)
{
	static const char *words[] = {
		"kafka", "topic", "partition", "offset", "record", "batch ",
		"postgres", "{\"id\":", "\"value\":", "consumer", "producer", "\n"
	};
	size_t		i = 0;

	while (i < len)
	{
		const char *w = words[unit_rand(&seed) % lengthof(words)];
		size_t		n = strlen(w);

		if (n > len - i)
			n = len - i;
		memcpy(p + i, w, n);
		i += n;
	}
}

static void
roundtrip(SlCompression codec, const uint8 *data, size_t len, const char *what)
{
	StringInfoData c;
	StringInfoData d;
	const char *err;

	initStringInfo(&c);
	initStringInfo(&d);
	err = SlCompress(codec, data, len, &c);
	CHECK_MSG(err == NULL, "%s %s compress: %s", SlCompressionName(codec), what, err);
	CHECK_EQ_INT(c.data[c.len], 0);

	err = SlDecompress(codec, (const uint8 *) c.data, c.len, &d, len);
	CHECK_MSG(err == NULL, "%s %s decompress: %s", SlCompressionName(codec), what, err);
	CHECK_EQ_INT(d.len, len);
	CHECK_MSG(d.len == (int) len && memcmp(d.data, data, len) == 0,
			  "%s %s: data differs", SlCompressionName(codec), what);
	CHECK_EQ_INT(d.data[d.len], 0);

	/* one byte short of the size is refused */
	if (len > 0)
	{
		resetStringInfo(&d);
		err = SlDecompress(codec, (const uint8 *) c.data, c.len, &d, len - 1);
		CHECK_MSG(err == sl_err_decompressed_too_large, "%s %s: max_out not enforced: %s",
				  SlCompressionName(codec), what, err ? err : "no error");
		CHECK(d.len <= (int) len - 1);
	}

	/* appending keeps what dst held */
	resetStringInfo(&d);
	appendStringInfoString(&d, "prefix");
	err = SlDecompress(codec, (const uint8 *) c.data, c.len, &d, len);
	CHECK_NULL_ERR(err);
	CHECK(d.len == (int) len + 6 && memcmp(d.data, "prefix", 6) == 0 &&
		  memcmp(d.data + 6, data, len) == 0);

	pfree(c.data);
	pfree(d.data);
}

/* Decoding arbitrary bytes must terminate with an error or bounded output */
static void
decode_hostile(SlCompression codec, const uint8 *data, size_t len, size_t max_out)
{
	StringInfoData d;
	const char *err;

	initStringInfo(&d);
	err = SlDecompress(codec, data, len, &d, max_out);
	/* failing or not, never more than max_out: the cap is what bounds memory */
	CHECK_MSG((size_t) d.len <= max_out, "%s: %d bytes out, max_out %zu (%s)",
			  SlCompressionName(codec), d.len, max_out, err ? err : "accepted");
	/* and a failure says why */
	if (err != NULL)
		CHECK_MSG(*err != '\0', "%s: empty error message", SlCompressionName(codec));
	pfree(d.data);
}

static void
test_names(void)
{
	CHECK(strcmp(SlCompressionName(SL_COMPRESSION_NONE), "none") == 0);
	CHECK(strcmp(SlCompressionName(SL_COMPRESSION_GZIP), "gzip") == 0);
	CHECK(strcmp(SlCompressionName(SL_COMPRESSION_SNAPPY), "snappy") == 0);
	CHECK(strcmp(SlCompressionName(SL_COMPRESSION_LZ4), "lz4") == 0);
	CHECK(strcmp(SlCompressionName(SL_COMPRESSION_ZSTD), "zstd") == 0);
	CHECK(SlCompressionName(-1) == NULL);
	CHECK(SlCompressionName(5) == NULL);
	CHECK_EQ_INT(SlCompressionFromName("none"), SL_COMPRESSION_NONE);
	CHECK_EQ_INT(SlCompressionFromName("uncompressed"), SL_COMPRESSION_NONE);
	CHECK_EQ_INT(SlCompressionFromName("gzip"), SL_COMPRESSION_GZIP);
	CHECK_EQ_INT(SlCompressionFromName("snappy"), SL_COMPRESSION_SNAPPY);
	CHECK_EQ_INT(SlCompressionFromName("lz4"), SL_COMPRESSION_LZ4);
	CHECK_EQ_INT(SlCompressionFromName("zstd"), SL_COMPRESSION_ZSTD);
	CHECK_EQ_INT(SlCompressionFromName("producer"), -1);
	CHECK_EQ_INT(SlCompressionFromName("brotli"), -1);
	CHECK_EQ_INT(SlCompressionFromName(""), -1);
	CHECK_EQ_INT(SlCompressionFromName(NULL), -1);
}

static void
test_formats(const uint8 *text, size_t len)
{
	StringInfoData c;
	StringInfoData d;
	const uint8 *p;
	const uint8 *end;
	int			nblocks = 0;
	bool		blocks_ok = true;
	static const uint8 xerial[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0,
	0, 0, 0, 1, 0, 0, 0, 1};

	initStringInfo(&c);
	initStringInfo(&d);

	/* gzip container */
	CHECK_NULL_ERR(SlCompress(SL_COMPRESSION_GZIP, text, len, &c));
	CHECK((uint8) c.data[0] == 0x1f && (uint8) c.data[1] == 0x8b);

	/* xerial framing, blocks of at most 32 KiB of input */
	resetStringInfo(&c);
	CHECK_NULL_ERR(SlCompress(SL_COMPRESSION_SNAPPY, text, len, &c));
	CHECK(c.len >= 16 && memcmp(c.data, xerial, 16) == 0);
	p = (const uint8 *) c.data + 16;
	end = (const uint8 *) c.data + c.len;
	while (p + 4 <= end)
	{
		uint32		blen = ((uint32) p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
		size_t		ulen = 0;

		p += 4;
		if (blen > (size_t) (end - p) ||
			snappy_uncompressed_length((const char *) p, blen, &ulen) != SNAPPY_OK ||
			ulen > 32 * 1024 || (ulen < 32 * 1024 && p + blen != end))
			blocks_ok = false;
		p += blen;
		nblocks++;
	}
	CHECK(blocks_ok && p == end);
	CHECK_EQ_INT(nblocks, (len + 32767) / 32768);

	/* empty input: a header alone, which decodes to nothing */
	resetStringInfo(&c);
	CHECK_NULL_ERR(SlCompress(SL_COMPRESSION_SNAPPY, text, 0, &c));
	CHECK(c.len == 16 && memcmp(c.data, xerial, 16) == 0);

	/* lz4 frame and zstd frame magics */
	resetStringInfo(&c);
	CHECK_NULL_ERR(SlCompress(SL_COMPRESSION_LZ4, text, len, &c));
	CHECK((uint8) c.data[0] == 0x04 && (uint8) c.data[1] == 0x22 &&
		  (uint8) c.data[2] == 0x4d && (uint8) c.data[3] == 0x18);
	resetStringInfo(&c);
	CHECK_NULL_ERR(SlCompress(SL_COMPRESSION_ZSTD, text, len, &c));
	CHECK((uint8) c.data[0] == 0x28 && (uint8) c.data[1] == 0xb5 &&
		  (uint8) c.data[2] == 0x2f && (uint8) c.data[3] == 0xfd);

	/* raw (unframed) snappy input */
	{
		size_t		clen = snappy_max_compressed_length(len);
		char	   *raw = malloc(clen);

		CHECK(snappy_compress((const char *) text, len, raw, &clen) == SNAPPY_OK);
		resetStringInfo(&d);
		CHECK_NULL_ERR(SlDecompress(SL_COMPRESSION_SNAPPY, (uint8 *) raw, clen, &d, len));
		CHECK(d.len == (int) len && memcmp(d.data, text, len) == 0);
		resetStringInfo(&d);
		CHECK(SlDecompress(SL_COMPRESSION_SNAPPY, (uint8 *) raw, clen, &d, len - 1) != NULL);
		free(raw);
	}

	/* two concatenated xerial streams */
	{
		resetStringInfo(&c);
		CHECK_NULL_ERR(SlCompress(SL_COMPRESSION_SNAPPY, text, 1000, &c));
		CHECK_NULL_ERR(SlCompress(SL_COMPRESSION_SNAPPY, text + 1000, 2000, &c));
		resetStringInfo(&d);
		CHECK_NULL_ERR(SlDecompress(SL_COMPRESSION_SNAPPY, (uint8 *) c.data, c.len, &d, 3000));
		CHECK(d.len == 3000 && memcmp(d.data, text, 3000) == 0);
	}

	/* zlib-wrapped deflate is accepted through auto-detection */
	{
		uLongf		zlen = compressBound(len);
		uint8	   *z = malloc(zlen);

		CHECK(compress2(z, &zlen, text, len, 6) == Z_OK);
		resetStringInfo(&d);
		CHECK_NULL_ERR(SlDecompress(SL_COMPRESSION_GZIP, z, zlen, &d, len));
		CHECK(d.len == (int) len && memcmp(d.data, text, len) == 0);
		free(z);
	}

	/* concatenated gzip members; trailing garbage refused */
	{
		resetStringInfo(&c);
		CHECK_NULL_ERR(SlCompress(SL_COMPRESSION_GZIP, text, 500, &c));
		CHECK_NULL_ERR(SlCompress(SL_COMPRESSION_GZIP, text + 500, 700, &c));
		resetStringInfo(&d);
		CHECK_NULL_ERR(SlDecompress(SL_COMPRESSION_GZIP, (uint8 *) c.data, c.len, &d, 1200));
		CHECK(d.len == 1200 && memcmp(d.data, text, 1200) == 0);
		appendStringInfoString(&c, "junk");
		resetStringInfo(&d);
		CHECK(SlDecompress(SL_COMPRESSION_GZIP, (uint8 *) c.data, c.len, &d, 1200) != NULL);
	}

	/* zstd frame without a content size (streaming, nothing pledged) */
	{
		ZSTD_CCtx  *cctx = ZSTD_createCCtx();
		size_t		cap = ZSTD_compressBound(len);
		uint8	   *z = malloc(cap);
		ZSTD_inBuffer in = {text, len, 0};
		ZSTD_outBuffer out = {z, cap, 0};
		size_t		rem;

		ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
		/* feed it in pieces so the frame is truly streamed */
		in.size = len / 2;
		ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_continue);
		in.size = len;
		do
		{
			rem = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end);
		} while (rem != 0 && !ZSTD_isError(rem));
		CHECK(!ZSTD_isError(rem));
		CHECK(ZSTD_getFrameContentSize(z, out.pos) == ZSTD_CONTENTSIZE_UNKNOWN);
		resetStringInfo(&d);
		CHECK_NULL_ERR(SlDecompress(SL_COMPRESSION_ZSTD, z, out.pos, &d, len));
		CHECK(d.len == (int) len && memcmp(d.data, text, len) == 0);
		resetStringInfo(&d);
		CHECK(SlDecompress(SL_COMPRESSION_ZSTD, z, out.pos, &d, len - 1) != NULL);
		ZSTD_freeCCtx(cctx);
		free(z);
	}

	/* lz4 frame with content size and checksums, written by liblz4 */
	{
		LZ4F_preferences_t prefs;
		size_t		cap;
		uint8	   *z;
		size_t		n;

		memset(&prefs, 0, sizeof(prefs));
		prefs.frameInfo.contentSize = len;
		prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
		prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
		prefs.frameInfo.blockSizeID = LZ4F_max256KB;
		cap = LZ4F_compressFrameBound(len, &prefs);
		z = malloc(cap);
		n = LZ4F_compressFrame(z, cap, text, len, &prefs);
		CHECK(!LZ4F_isError(n));
		resetStringInfo(&d);
		CHECK_NULL_ERR(SlDecompress(SL_COMPRESSION_LZ4, z, n, &d, len));
		CHECK(d.len == (int) len && memcmp(d.data, text, len) == 0);
		/* a corrupted content byte fails a checksum */
		z[n / 2] ^= 0x20;
		resetStringInfo(&d);
		CHECK(SlDecompress(SL_COMPRESSION_LZ4, z, n, &d, len) != NULL);
		free(z);
	}

	pfree(c.data);
	pfree(d.data);
}

/* Highly compressible input that claims far more than max_out */
static void
test_bombs(void)
{
	size_t		big = 64 * 1024 * 1024;
	uint8	   *zeros = calloc(1, big);
	int			i;

	for (i = 0; i < NCODECS; i++)
	{
		StringInfoData c;
		StringInfoData d;
		const char *err;

		initStringInfo(&c);
		initStringInfo(&d);
		CHECK_NULL_ERR(SlCompress(codecs[i], zeros, big, &c));
		err = SlDecompress(codecs[i], (const uint8 *) c.data, c.len, &d, 1024 * 1024);
		CHECK_MSG(err == sl_err_decompressed_too_large, "%s bomb not refused as too large: %s",
				  SlCompressionName(codecs[i]), err ? err : "no error");
		CHECK_MSG(d.maxlen <= 4 * 1024 * 1024, "%s bomb: buffer grew to %d",
				  SlCompressionName(codecs[i]), d.maxlen);
		/* zero max_out refuses any output */
		resetStringInfo(&d);
		CHECK(SlDecompress(codecs[i], (const uint8 *) c.data, c.len, &d, 0) ==
			  sl_err_decompressed_too_large);
		CHECK_EQ_INT(d.len, 0);
		pfree(c.data);
		pfree(d.data);
	}
	free(zeros);
}

/*
 * A failed decompression leaves nothing behind for the next one.  liblz4
 * leaves its decompression context in an undefined state after an error,
 * and LZ4F_resetDecompressionContext() did not undo what this truncated
 * frame (content size, dictionary id, checksums) left in it: the next
 * frame, even a valid one, was refused.  Found by fuzz_decompress.
 */
static void
test_context_after_error(void)
{
	static const uint8 bad[] = {
		0x04, 0x22, 0x4d, 0x18, 0x5d, 0x40, 0x7e, 0x82, 0x09, 0x00, 0x00, 0x00,
		0x00, 0x00, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0x00
	};

	for (int i = 0; i < NCODECS; i++)
	{
		StringInfoData d;

		initStringInfo(&d);
		/* garbage for every codec but none, which takes any bytes */
		CHECK((SlDecompress(codecs[i], bad, sizeof(bad), &d, 1024 * 1024) != NULL) ==
			  (codecs[i] != SL_COMPRESSION_NONE));
		pfree(d.data);
		roundtrip(codecs[i], bad, sizeof(bad), "after a failed decompression");
	}
}

static void
test_garbage(const uint8 *text)
{
	uint8		junk[4096];
	int			i;
	int			round;

	for (i = 1; i < NCODECS; i++)
	{
		SlCompression codec = codecs[i];
		StringInfoData c;
		StringInfoData d;
		size_t		cut;
		size_t		srclen = 3000;

		/* random bytes, and random bytes after a valid magic */
		for (round = 0; round < 200; round++)
		{
			size_t		n = unit_rand(&seed) % sizeof(junk);

			fill_random(junk, sizeof(junk));
			decode_hostile(codec, junk, n, 1 << 20);
			if (round % 4 == 0)
			{
				junk[0] = 0x1f;
				junk[1] = 0x8b;
				junk[2] = 8;
			}
			else if (round % 4 == 1)
			{
				static const uint8 xm[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};

				memcpy(junk, xm, 16);
			}
			else if (round % 4 == 2)
			{
				junk[0] = 0x04;
				junk[1] = 0x22;
				junk[2] = 0x4d;
				junk[3] = 0x18;
			}
			else
			{
				junk[0] = 0x28;
				junk[1] = 0xb5;
				junk[2] = 0x2f;
				junk[3] = 0xfd;
			}
			decode_hostile(codec, junk, n, 1 << 20);
		}

		/* every truncation of a valid stream fails */
		initStringInfo(&c);
		CHECK_NULL_ERR(SlCompress(codec, text, srclen, &c));
		initStringInfo(&d);
		for (cut = 0; cut < (size_t) c.len; cut++)
		{
			const char *err;

			resetStringInfo(&d);
			err = SlDecompress(codec, (const uint8 *) c.data, cut, &d, srclen);
			/* xerial framing cannot tell a stream cut between blocks */
			if (codec == SL_COMPRESSION_SNAPPY && cut == 16)
				CHECK(err == NULL && d.len == 0);
			else
				CHECK_MSG(err != NULL, "%s truncated at %zu/%d accepted",
						  SlCompressionName(codec), cut, c.len);
		}

		/* random byte flips never crash nor exceed max_out */
		for (round = 0; round < 2000; round++)
		{
			uint8	   *copy = malloc(c.len);
			int			flips = 1 + unit_rand(&seed) % 4;
			int			f;

			memcpy(copy, c.data, c.len);
			for (f = 0; f < flips; f++)
				copy[unit_rand(&seed) % c.len] ^= (uint8) (1 + unit_rand(&seed) % 255);
			decode_hostile(codec, copy, c.len, srclen);
			decode_hostile(codec, copy, c.len, srclen / 2);
			free(copy);
		}
		pfree(c.data);
		pfree(d.data);
	}
}

int
main(void)
{
	size_t		mib = 1024 * 1024;
	uint8	   *text = malloc(mib);
	uint8	   *rnd = malloc(mib);
	int			i;

	seed = unit_seed(UINT64CONST(0x9e3779b97f4a7c15));
	fill_text(text, mib);
	fill_random(rnd, mib);

	test_names();
	for (i = 0; i < NCODECS; i++)
	{
		roundtrip(codecs[i], (const uint8 *) "", 0, "empty");
		roundtrip(codecs[i], (const uint8 *) "hello, world", 12, "small");
		roundtrip(codecs[i], text, 1, "one byte");
		roundtrip(codecs[i], text, 32 * 1024, "32 KiB");
		roundtrip(codecs[i], text, 32 * 1024 + 1, "32 KiB + 1");
		roundtrip(codecs[i], text, mib, "1 MiB text");
		roundtrip(codecs[i], rnd, mib, "1 MiB random");
		roundtrip(codecs[i], rnd, 100000, "random 100000");
	}
	test_formats(text, mib);
	test_bombs();
	test_garbage(text);
	test_context_after_error();

	/* unknown codec */
	{
		StringInfoData d;

		initStringInfo(&d);
		CHECK(SlCompress((SlCompression) 7, text, 10, &d) != NULL);
		CHECK(SlDecompress((SlCompression) 7, text, 10, &d, 100) != NULL);
		pfree(d.data);
	}

	free(text);
	free(rnd);
	return UNIT_DONE();
}
