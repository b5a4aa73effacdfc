/*
 * The five compression codecs Kafka uses inside record batches.
 *
 * The numbering is the one of the three low bits of a batch's attributes.
 * gzip is the gzip container (RFC 1952); snappy output uses the xerial
 * framing that the Java client writes (and every client reads), and input may
 * be raw snappy or xerial-framed; lz4 is the LZ4 frame format; zstd is a
 * standard zstd frame.
 */
#ifndef SL_COMPRESSION_H
#define SL_COMPRESSION_H

#include "streamlog/protocol/codec_base.h"

typedef enum SlCompression
{
	SL_COMPRESSION_NONE = 0,
	SL_COMPRESSION_GZIP = 1,
	SL_COMPRESSION_SNAPPY = 2,
	SL_COMPRESSION_LZ4 = 3,
	SL_COMPRESSION_ZSTD = 4
} SlCompression;

#define SL_COMPRESSION_MAX SL_COMPRESSION_ZSTD

/* Kafka's name for a codec ("none", "gzip", ...), or NULL if out of range */
extern const char *SlCompressionName(int codec);

/* Codec for a Kafka name ("none"/"uncompressed", "gzip", ...); -1 if unknown */
extern int	SlCompressionFromName(const char *name);

/*
 * Compress len bytes at src and append the result to dst.  Returns NULL on
 * success, else a static error message (dst is then left in an unspecified
 * state).
 */
extern const char *SlCompress(SlCompression codec, const uint8 *src,
							  size_t len, StringInfo dst);

/*
 * Decompress len bytes at src and append the result to dst.  Fails, rather
 * than allocating, when the output would exceed max_out bytes: compressed
 * input comes from the network and must not be able to claim memory at will.
 * Returns NULL on success, else a static error message.
 */
extern const char *SlDecompress(SlCompression codec, const uint8 *src,
								size_t len, StringInfo dst, size_t max_out);

/*
 * The error SlDecompress returns when the output would exceed max_out
 * (compare pointers): input that is not corrupt but too large, which the
 * caller reports naming the limit it passed and what sets it.
 */
extern const char sl_err_decompressed_too_large[];

#endif							/* SL_COMPRESSION_H */
