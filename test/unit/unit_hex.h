/*
 * Unit tests of encoders: compare a buffer's bytes with the hex string
 * written by hand from the format's documentation.
 */
#ifndef SL_UNIT_HEX_H
#define SL_UNIT_HEX_H

#include "lib/stringinfo.h"
#include "unit.h"

/* buf as lower-case hex */
static char *
hex_of(StringInfo buf)
{
	char	   *out = palloc(buf->len * 2 + 1);

	for (int i = 0; i < buf->len; i++)
		snprintf(out + 2 * i, 3, "%02x", (uint8) buf->data[i]);
	out[buf->len * 2] = '\0';
	return out;
}

#define CHECK_HEX(buf, want) \
	do { \
		char	   *got_ = hex_of(buf); \
		CHECK_MSG(strcmp(got_, (want)) == 0, "got %s, want %s", got_, (want)); \
		pfree(got_); \
	} while (0)

#endif							/* SL_UNIT_HEX_H */
