/*
 * Compression codecs of Kafka record batches.
 *
 * All decompressors write straight into the destination StringInfo and grow
 * it step by step, never past the caller's max_out nor past what a StringInfo
 * can hold (enlargeStringInfo would raise an error, or exit in frontend
 * code).  When the output reaches that limit, the decoder is asked for one
 * more byte into a scratch buffer: if it has one, the data is too large.
 */
#include "streamlog/protocol/codec_base.h"

#include <limits.h>
#include <string.h>

#include <zlib.h>
#include <snappy-c.h>
#include <lz4frame.h>
#include <zstd.h>

#include "streamlog/protocol/compression.h"

#ifndef FRONTEND
#include "utils/memutils.h"
#elif !defined(MaxAllocSize)
/* same limit as the frontend StringInfo implementation */
#define MaxAllocSize	((Size) 0x3fffffff)
#endif

#define OUT_MIN_STEP 8192

#define SL_ZSTD_LEVEL 3

#define XERIAL_HEADER_SIZE 16
#define XERIAL_BLOCK_SIZE (32 * 1024)
static const uint8 xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

static const char *const codec_names[] = {
	"none", "gzip", "snappy", "lz4", "zstd"
};

const char sl_err_decompressed_too_large[] = "decompressed data exceeds the size limit";
static const char err_out_too_large[] = "compressed data too large";

/*
 * Codec contexts are expensive to set up (hundreds of KiB to a few MiB of
 * buffers), so each process keeps one of each and resets it before use.  A
 * backend is single-threaded; an error thrown in the middle of a call leaves
 * a context in some state that the next reset clears.
 */
static z_stream deflate_stream;
static bool deflate_ready = false;
static LZ4F_dctx *lz4_dctx = NULL;
static ZSTD_CCtx *zstd_cctx = NULL;
static ZSTD_DCtx *zstd_dctx = NULL;

const char *
SlCompressionName(int codec)
{
	if (codec < 0 || codec > SL_COMPRESSION_MAX)
		return NULL;
	return codec_names[codec];
}

int
SlCompressionFromName(const char *name)
{
	int			i;

	if (name == NULL)
		return -1;
	if (pg_strcasecmp(name, "uncompressed") == 0)
		return SL_COMPRESSION_NONE;
	for (i = 0; i <= SL_COMPRESSION_MAX; i++)
	{
		if (pg_strcasecmp(name, codec_names[i]) == 0)
			return i;
	}
	return -1;
}

/* Bytes that may still be appended to dst before a StringInfo overflows */
static inline size_t
stringinfo_room(StringInfo dst)
{
	return (size_t) (MaxAllocSize - 1) - (size_t) dst->len;
}

static inline void
put_be32(uint8 *p, uint32 v)
{
	p[0] = (uint8) (v >> 24);
	p[1] = (uint8) (v >> 16);
	p[2] = (uint8) (v >> 8);
	p[3] = (uint8) v;
}

static inline uint32
get_be32(const uint8 *p)
{
	return ((uint32) p[0] << 24) | ((uint32) p[1] << 16) |
		((uint32) p[2] << 8) | p[3];
}

/*
 * Output window for a streaming decoder: limit is the most bytes that may
 * be appended to dst.
 */
typedef struct OutWindow
{
	StringInfo	dst;
	size_t		limit;
	size_t		hint;			/* first allocation size */
	size_t		min_free;		/* free space to offer when possible */
	uint8		scratch[1];
	bool		probing;		/* current window is the scratch byte */
} OutWindow;

static void
outwin_init(OutWindow *w, StringInfo dst, size_t max_out, size_t srclen)
{
	size_t		room = stringinfo_room(dst);
	size_t		hint;

	w->dst = dst;
	w->limit = Min(max_out, room);
	hint = srclen * 4 + 1024;
	if (hint < srclen)
		hint = w->limit;
	w->hint = Min(hint, w->limit);
	w->min_free = 1;
	w->probing = false;
}

/*
 * Window for the next decoder call: free space at the end of dst (growing
 * it if needed), capped so that at most limit bytes get appended.  When the
 * limit is reached, a one-byte scratch buffer.
 */
static uint8 *
outwin_next(OutWindow *w, size_t produced, size_t *avail)
{
	StringInfo	dst = w->dst;
	size_t		left = w->limit - produced;
	size_t		free_space;

	if (left == 0)
	{
		w->probing = true;
		*avail = sizeof(w->scratch);
		return w->scratch;
	}
	free_space = (size_t) (dst->maxlen - dst->len - 1);
	if (free_space < Min(Max(w->hint, w->min_free), left))
	{
		size_t		want = Max(w->hint, (size_t) dst->len);

		want = Max(want, w->min_free);
		want = Max(want, (size_t) OUT_MIN_STEP);
		want = Min(want, left);
		w->hint = 0;
		enlargeStringInfo(dst, (int) want);
		free_space = (size_t) (dst->maxlen - dst->len - 1);
	}
	w->probing = false;
	*avail = Min(free_space, left);
	return (uint8 *) dst->data + dst->len;
}

/* Account for n bytes written in the window; false if the limit is passed */
static inline bool
outwin_commit(OutWindow *w, size_t n)
{
	if (n == 0)
		return true;
	if (w->probing)
		return false;
	w->dst->len += (int) n;
	return true;
}

static inline void
terminate(StringInfo dst)
{
	dst->data[dst->len] = '\0';
}

/* ---- none ---- */

static const char *
none_decompress(const uint8 *src, size_t len, StringInfo dst, size_t max_out)
{
	if (len > max_out || len > stringinfo_room(dst))
		return sl_err_decompressed_too_large;
	appendBinaryStringInfo(dst, (const char *) src, (int) len);
	return NULL;
}

/* ---- gzip ---- */

static const char *
gzip_compress(const uint8 *src, size_t len, StringInfo dst)
{
	z_stream   *zs = &deflate_stream;
	uLong		bound;
	int			ret;

	if (!deflate_ready)
	{
		memset(zs, 0, sizeof(*zs));
		if (deflateInit2(zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
						 Z_DEFAULT_STRATEGY) != Z_OK)
			return "could not initialize gzip compression";
		deflate_ready = true;
	}
	else if (deflateReset(zs) != Z_OK)
		return "could not initialize gzip compression";

	bound = deflateBound(zs, (uLong) len);
	if (len > stringinfo_room(dst) || bound > stringinfo_room(dst))
		return err_out_too_large;
	enlargeStringInfo(dst, (int) bound);
	zs->next_in = (Bytef *) src;
	zs->avail_in = (uInt) len;
	zs->next_out = (Bytef *) dst->data + dst->len;
	zs->avail_out = (uInt) bound;
	ret = deflate(zs, Z_FINISH);
	if (ret != Z_STREAM_END)
		return "gzip compression failed";
	dst->len += (int) zs->total_out;
	terminate(dst);
	return NULL;
}

static const char *
gzip_decompress(const uint8 *src, size_t len, StringInfo dst, size_t max_out)
{
	z_stream	zs;
	OutWindow	w;
	size_t		produced = 0;
	const uint8 *in = src;
	const uint8 *in_end = src + len;
	const char *err = NULL;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 15 + 32) != Z_OK)
		return "could not initialize gzip decompression";
	outwin_init(&w, dst, max_out, len);

	for (;;)
	{
		size_t		avail;
		uint8	   *out = outwin_next(&w, produced, &avail);
		size_t		in_chunk = Min((size_t) (in_end - in), (size_t) UINT_MAX);
		size_t		written;
		int			ret;

		zs.next_in = (Bytef *) in;
		zs.avail_in = (uInt) in_chunk;
		zs.next_out = out;
		zs.avail_out = (uInt) Min(avail, (size_t) UINT_MAX);
		ret = inflate(&zs, Z_NO_FLUSH);
		in += in_chunk - zs.avail_in;
		written = (size_t) (zs.next_out - out);
		if (!outwin_commit(&w, written))
		{
			err = sl_err_decompressed_too_large;
			break;
		}
		produced += written;

		if (ret == Z_STREAM_END)
		{
			if (in == in_end)
				break;
			/* another gzip member may follow */
			if (in_end - in >= 2 && in[0] == 0x1f && in[1] == 0x8b &&
				inflateReset(&zs) == Z_OK)
				continue;
			err = "trailing data after gzip stream";
			break;
		}
		if (ret == Z_BUF_ERROR)
		{
			err = "truncated gzip data";
			break;
		}
		if (ret != Z_OK)
		{
			err = "invalid gzip data";
			break;
		}
	}
	inflateEnd(&zs);
	terminate(dst);
	return err;
}

/* ---- snappy ---- */

static const char *
snappy_compress_xerial(const uint8 *src, size_t len, StringInfo dst)
{
	size_t		nblocks = (len + XERIAL_BLOCK_SIZE - 1) / XERIAL_BLOCK_SIZE;
	size_t		estimate;
	size_t		off;
	uint8	   *p;

	if (len > stringinfo_room(dst))
		return err_out_too_large;
	estimate = XERIAL_HEADER_SIZE + len + len / 6 + nblocks * 36;
	if (estimate > stringinfo_room(dst))
		return err_out_too_large;
	enlargeStringInfo(dst, (int) estimate);

	p = (uint8 *) dst->data + dst->len;
	memcpy(p, xerial_magic, sizeof(xerial_magic));
	put_be32(p + 8, 1);
	put_be32(p + 12, 1);
	dst->len += XERIAL_HEADER_SIZE;

	for (off = 0; off < len; off += XERIAL_BLOCK_SIZE)
	{
		size_t		chunk = Min(len - off, (size_t) XERIAL_BLOCK_SIZE);
		size_t		max_block = snappy_max_compressed_length(chunk);
		size_t		clen = max_block;

		if (4 + max_block > stringinfo_room(dst))
			return err_out_too_large;
		if ((size_t) (dst->maxlen - dst->len - 1) < 4 + max_block)
			enlargeStringInfo(dst, (int) (4 + max_block));
		p = (uint8 *) dst->data + dst->len;
		if (snappy_compress((const char *) src + off, chunk,
							(char *) p + 4, &clen) != SNAPPY_OK)
			return "snappy compression failed";
		put_be32(p, (uint32) clen);
		dst->len += (int) (4 + clen);
	}
	terminate(dst);
	return NULL;
}

/* Decode one raw snappy block, appending to dst; *left is the room left */
static const char *
snappy_block(const uint8 *src, size_t len, StringInfo dst, size_t *left)
{
	size_t		ulen;
	size_t		outlen;

	if (snappy_uncompressed_length((const char *) src, len, &ulen) != SNAPPY_OK)
		return "invalid snappy data";
	if (ulen > *left)
		return sl_err_decompressed_too_large;
	if (ulen == 0)
	{
		/* must still be a well-formed empty block */
		if (snappy_validate_compressed_buffer((const char *) src, len) != SNAPPY_OK)
			return "invalid snappy data";
		return NULL;
	}
	if ((size_t) (dst->maxlen - dst->len - 1) < ulen)
		enlargeStringInfo(dst, (int) ulen);
	outlen = ulen;
	if (snappy_uncompress((const char *) src, len,
						  dst->data + dst->len, &outlen) != SNAPPY_OK ||
		outlen != ulen)
		return "invalid snappy data";
	dst->len += (int) ulen;
	*left -= ulen;
	return NULL;
}

static inline bool
is_xerial_header(const uint8 *p, size_t len)
{
	return len >= XERIAL_HEADER_SIZE &&
		memcmp(p, xerial_magic, sizeof(xerial_magic)) == 0;
}

static const char *
snappy_decompress(const uint8 *src, size_t len, StringInfo dst, size_t max_out)
{
	size_t		left = Min(max_out, stringinfo_room(dst));
	const uint8 *p = src;
	const uint8 *end = src + len;
	const char *err = NULL;

	if (!is_xerial_header(src, len))
	{
		err = snappy_block(src, len, dst, &left);
		terminate(dst);
		return err;
	}

	while (p < end)
	{
		uint32		blen;

		/* concatenated xerial streams repeat the header */
		if (is_xerial_header(p, (size_t) (end - p)))
		{
			p += XERIAL_HEADER_SIZE;
			continue;
		}
		if (end - p < 4)
		{
			err = "truncated snappy data";
			break;
		}
		blen = get_be32(p);
		p += 4;
		if (blen > (size_t) (end - p))
		{
			err = "truncated snappy data";
			break;
		}
		err = snappy_block(p, blen, dst, &left);
		if (err)
			break;
		p += blen;
	}
	terminate(dst);
	return err;
}

/* ---- lz4 ---- */

static const char *
lz4_compress(const uint8 *src, size_t len, StringInfo dst)
{
	LZ4F_preferences_t prefs;
	size_t		bound;
	size_t		n;

	/*
	 * Default preferences except for independent blocks: Kafka's Java
	 * decoder decompresses every block on its own.
	 */
	memset(&prefs, 0, sizeof(prefs));
	prefs.frameInfo.blockMode = LZ4F_blockIndependent;

	if (len > stringinfo_room(dst))
		return err_out_too_large;
	bound = LZ4F_compressFrameBound(len, &prefs);
	if (bound > stringinfo_room(dst))
		return err_out_too_large;
	enlargeStringInfo(dst, (int) bound);
	n = LZ4F_compressFrame(dst->data + dst->len, bound, src, len, &prefs);
	if (LZ4F_isError(n))
		return "lz4 compression failed";
	dst->len += (int) n;
	terminate(dst);
	return NULL;
}

static const char *
lz4_decompress(const uint8 *src, size_t len, StringInfo dst, size_t max_out)
{
	LZ4F_dctx  *dctx;
	OutWindow	w;
	size_t		produced = 0;
	size_t		pos = 0;
	size_t		hint = 1;
	const char *err = NULL;

	if (lz4_dctx == NULL &&
		LZ4F_isError(LZ4F_createDecompressionContext(&lz4_dctx, LZ4F_VERSION)))
	{
		lz4_dctx = NULL;
		return "could not initialize lz4 decompression";
	}
	dctx = lz4_dctx;
	LZ4F_resetDecompressionContext(dctx);
	outwin_init(&w, dst, max_out, len);

	/*
	 * liblz4 decodes a block straight into the output only when a whole
	 * block fits; offer that much room.  Use the content size, if the frame
	 * header has one, as the first allocation.
	 */
	if (len >= 7 && src[0] == 0x04 && src[1] == 0x22 && src[2] == 0x4d &&
		src[3] == 0x18)
	{
		int			bsid = (src[5] >> 4) & 0x07;

		if (bsid >= 4)
			w.min_free = (size_t) 1 << (2 * bsid + 8);
		if ((src[4] & 0x08) && len >= 14)
		{
			uint64		csize = 0;
			int			i;

			for (i = 7; i >= 0; i--)
				csize = (csize << 8) | src[6 + i];
			if (csize > w.limit)
				return sl_err_decompressed_too_large;
			if (csize > 0)
				w.hint = (size_t) csize;
		}
	}

	while (!(hint == 0 && pos == len))
	{
		size_t		avail;
		uint8	   *out = outwin_next(&w, produced, &avail);
		size_t		dst_size = avail;
		size_t		src_size = len - pos;

		hint = LZ4F_decompress(dctx, out, &dst_size, src + pos, &src_size, NULL);
		if (LZ4F_isError(hint))
		{
			err = "invalid lz4 data";
			break;
		}
		pos += src_size;
		if (!outwin_commit(&w, dst_size))
		{
			err = sl_err_decompressed_too_large;
			break;
		}
		produced += dst_size;
		if (hint != 0 && src_size == 0 && dst_size == 0)
		{
			err = "truncated lz4 data";
			break;
		}
	}
	/*
	 * After an error liblz4 leaves the context in an undefined state, which
	 * LZ4F_resetDecompressionContext() does not always undo (a truncated
	 * frame with a dictionary id made the next, valid frame fail): start
	 * the next frame with a new one.  Errors are rare; valid frames keep
	 * reusing the context.
	 */
	if (err != NULL)
	{
		LZ4F_freeDecompressionContext(lz4_dctx);
		lz4_dctx = NULL;
	}
	terminate(dst);
	return err;
}

/* ---- zstd ---- */

static const char *
zstd_compress(const uint8 *src, size_t len, StringInfo dst)
{
	size_t		bound;
	size_t		n;

	if (len > stringinfo_room(dst))
		return err_out_too_large;
	bound = ZSTD_compressBound(len);
	if (ZSTD_isError(bound) || bound > stringinfo_room(dst))
		return err_out_too_large;
	enlargeStringInfo(dst, (int) bound);
	if (zstd_cctx == NULL)
	{
		zstd_cctx = ZSTD_createCCtx();
		if (zstd_cctx == NULL)
			return "could not initialize zstd compression";
	}
	n = ZSTD_compressCCtx(zstd_cctx, dst->data + dst->len, bound, src, len,
						  SL_ZSTD_LEVEL);
	if (ZSTD_isError(n))
		return "zstd compression failed";
	dst->len += (int) n;
	terminate(dst);
	return NULL;
}

static bool
zstd_frames_are_current(const uint8 *src, size_t len)
{
	size_t		pos = 0;

	/*
	 * libzstd also decodes the pre-1.0 formats, with older code that does
	 * not check a frame's declared size; network input gets the current
	 * format (and skippable frames) only.
	 */
	while (pos < len)
	{
		uint32		magic;
		size_t		size;

		if (len - pos < 4)
			return false;
		magic = (uint32) src[pos] | ((uint32) src[pos + 1] << 8) |
			((uint32) src[pos + 2] << 16) | ((uint32) src[pos + 3] << 24);
		if (magic != ZSTD_MAGICNUMBER &&
			(magic & ZSTD_MAGIC_SKIPPABLE_MASK) != ZSTD_MAGIC_SKIPPABLE_START)
			return false;
		size = ZSTD_findFrameCompressedSize(src + pos, len - pos);
		if (ZSTD_isError(size) || size == 0 || size > len - pos)
			return false;
		pos += size;
	}
	return true;
}

static const char *
zstd_decompress(const uint8 *src, size_t len, StringInfo dst, size_t max_out)
{
	ZSTD_DCtx  *dctx;
	OutWindow	w;
	ZSTD_inBuffer in;
	size_t		produced = 0;
	size_t		ret = 1;
	unsigned long long content_size;
	int			window_log = 23;
	const char *err = NULL;

	if (!zstd_frames_are_current(src, len))
		return "invalid zstd data";
	if (zstd_dctx == NULL)
	{
		zstd_dctx = ZSTD_createDCtx();
		if (zstd_dctx == NULL)
			return "could not initialize zstd decompression";
	}
	dctx = zstd_dctx;
	ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
	outwin_init(&w, dst, max_out, len);

	/*
	 * Bound the window the decoder allocates by the output we accept, but
	 * never below what common encoders use without a pledged size.
	 */
	while (window_log < 27 && ((size_t) 1 << window_log) < w.limit)
		window_log++;
	ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, window_log);

	content_size = ZSTD_getFrameContentSize(src, len);
	if (content_size != ZSTD_CONTENTSIZE_UNKNOWN &&
		content_size != ZSTD_CONTENTSIZE_ERROR)
	{
		if (content_size > w.limit)
			return sl_err_decompressed_too_large;
		if (content_size > 0)
			w.hint = (size_t) content_size;
	}

	in.src = src;
	in.size = len;
	in.pos = 0;
	while (!(ret == 0 && in.pos == in.size))
	{
		size_t		avail;
		uint8	   *outp = outwin_next(&w, produced, &avail);
		ZSTD_outBuffer out;
		size_t		before = in.pos;

		out.dst = outp;
		out.size = avail;
		out.pos = 0;
		ret = ZSTD_decompressStream(dctx, &out, &in);
		if (ZSTD_isError(ret))
		{
			err = "invalid zstd data";
			break;
		}
		if (!outwin_commit(&w, out.pos))
		{
			err = sl_err_decompressed_too_large;
			break;
		}
		produced += out.pos;
		if (ret != 0 && out.pos == 0 && in.pos == before)
		{
			err = "truncated zstd data";
			break;
		}
	}
	terminate(dst);
	return err;
}

/* ---- entry points ---- */

const char *
SlCompress(SlCompression codec, const uint8 *src, size_t len, StringInfo dst)
{
	switch (codec)
	{
		case SL_COMPRESSION_NONE:
			if (len > stringinfo_room(dst))
				return err_out_too_large;
			appendBinaryStringInfo(dst, (const char *) src, (int) len);
			return NULL;
		case SL_COMPRESSION_GZIP:
			return gzip_compress(src, len, dst);
		case SL_COMPRESSION_SNAPPY:
			return snappy_compress_xerial(src, len, dst);
		case SL_COMPRESSION_LZ4:
			return lz4_compress(src, len, dst);
		case SL_COMPRESSION_ZSTD:
			return zstd_compress(src, len, dst);
	}
	return "unknown compression codec";
}

const char *
SlDecompress(SlCompression codec, const uint8 *src, size_t len,
			 StringInfo dst, size_t max_out)
{
	switch (codec)
	{
		case SL_COMPRESSION_NONE:
			return none_decompress(src, len, dst, max_out);
		case SL_COMPRESSION_GZIP:
			return gzip_decompress(src, len, dst, max_out);
		case SL_COMPRESSION_SNAPPY:
			return snappy_decompress(src, len, dst, max_out);
		case SL_COMPRESSION_LZ4:
			return lz4_decompress(src, len, dst, max_out);
		case SL_COMPRESSION_ZSTD:
			return zstd_decompress(src, len, dst, max_out);
	}
	return "unknown compression codec";
}
