/*
 * Compresses stdin to stdout with the project's own codecs, for
 * make_corpus.py:
 *
 *   compress_tool none|gzip|snappy|lz4|zstd     SlCompress()
 *   compress_tool snappy-raw                    one raw snappy block
 */
#include "streamlog/protocol/codec_base.h"

#include <stdio.h>
#include <string.h>

#include <snappy-c.h>

#include "streamlog/protocol/compression.h"

int
main(int argc, char **argv)
{
	StringInfoData in;
	StringInfoData out;
	char		buf[65536];
	size_t		n;

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s none|gzip|snappy|lz4|zstd|snappy-raw < in > out\n", argv[0]);
		return 2;
	}
	initStringInfo(&in);
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
		appendBinaryStringInfo(&in, buf, (int) n);
	if (ferror(stdin))
	{
		perror("compress_tool: stdin");
		return 1;
	}

	initStringInfo(&out);
	if (strcmp(argv[1], "snappy-raw") == 0)
	{
		size_t		len = snappy_max_compressed_length(in.len);

		enlargeStringInfo(&out, (int) len);
		if (snappy_compress(in.data, in.len, out.data, &len) != SNAPPY_OK)
		{
			fprintf(stderr, "compress_tool: snappy_compress failed\n");
			return 1;
		}
		out.len = (int) len;
	}
	else
	{
		int			codec = SlCompressionFromName(argv[1]);
		const char *err;

		if (codec < 0)
		{
			fprintf(stderr, "compress_tool: unknown codec \"%s\"\n", argv[1]);
			return 2;
		}
		err = SlCompress((SlCompression) codec, (const uint8 *) in.data,
						 in.len, &out);
		if (err)
		{
			fprintf(stderr, "compress_tool: %s\n", err);
			return 1;
		}
	}
	if (fwrite(out.data, 1, out.len, stdout) != (size_t) out.len ||
		fflush(stdout) != 0)
	{
		perror("compress_tool: stdout");
		return 1;
	}
	return 0;
}
