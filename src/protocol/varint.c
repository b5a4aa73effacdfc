/*
 * Zig-zag and unsigned base-128 varints, as used by Kafka's RecordBatch v2
 * and by the flexible versions of the wire protocol.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/varint.h"

static inline uint32
zigzag32(int32 v)
{
	return ((uint32) v << 1) ^ (uint32) (v >> 31);
}

static inline uint64
zigzag64(int64 v)
{
	return ((uint64) v << 1) ^ (uint64) (v >> 63);
}

static inline int32
unzigzag32(uint32 u)
{
	return (int32) ((u >> 1) ^ (~(u & 1) + 1));
}

static inline int64
unzigzag64(uint64 u)
{
	return (int64) ((u >> 1) ^ (~(u & 1) + 1));
}

/* Write u, unsigned base-128, at p; returns the bytes written (32 or 64 bits) */
static inline int
put_u64(uint8 *p, uint64 u)
{
	int			n = 0;

	while (u >= 0x80)
	{
		p[n++] = (uint8) (u | 0x80);
		u >>= 7;
	}
	p[n++] = (uint8) u;
	return n;
}

void
SlPutUvarint(StringInfo buf, uint32 value)
{
	if (buf->maxlen - buf->len <= SL_VARINT_MAX_BYTES)
		enlargeStringInfo(buf, SL_VARINT_MAX_BYTES);
	buf->len += put_u64((uint8 *) buf->data + buf->len, value);
	buf->data[buf->len] = '\0';
}

void
SlPutVarint(StringInfo buf, int32 value)
{
	SlPutUvarint(buf, zigzag32(value));
}

void
SlPutVarlong(StringInfo buf, int64 value)
{
	if (buf->maxlen - buf->len <= SL_VARLONG_MAX_BYTES)
		enlargeStringInfo(buf, SL_VARLONG_MAX_BYTES);
	buf->len += put_u64((uint8 *) buf->data + buf->len, zigzag64(value));
	buf->data[buf->len] = '\0';
}

int
SlVarintSize(int32 value)
{
	uint32		u = zigzag32(value);
	int			n = 1;

	while (u >= 0x80)
	{
		u >>= 7;
		n++;
	}
	return n;
}

/*
 * Read an unsigned base-128 value of at most max_bytes bytes: the one loop
 * of varints (5 bytes) and varlongs (10), which differed only in width.
 * Bits past 32 of a varint are dropped by the caller's cast, as they were
 * by a 32-bit shift.
 */
static inline bool
get_u64(const uint8 **pos, const uint8 *end, int max_bytes, uint64 *value)
{
	const uint8 *p = *pos;
	uint64		result = 0;

	for (int shift = 0; shift < 7 * max_bytes; shift += 7)
	{
		uint8		b;

		if (p >= end)
			return false;
		b = *p++;
		result |= (uint64) (b & 0x7f) << shift;
		if ((b & 0x80) == 0)
		{
			*pos = p;
			*value = result;
			return true;
		}
	}
	return false;
}

bool
SlGetUvarint(const uint8 **pos, const uint8 *end, uint32 *value)
{
	uint64		u;

	if (!get_u64(pos, end, SL_VARINT_MAX_BYTES, &u))
		return false;
	*value = (uint32) u;
	return true;
}

bool
SlGetVarint(const uint8 **pos, const uint8 *end, int32 *value)
{
	uint32		u;

	if (*pos < end && (**pos & 0x80) == 0)
	{
		*value = unzigzag32(**pos);
		(*pos)++;
		return true;
	}
	if (!SlGetUvarint(pos, end, &u))
		return false;
	*value = unzigzag32(u);
	return true;
}

bool
SlGetVarlong(const uint8 **pos, const uint8 *end, int64 *value)
{
	uint64		u;

	if (!get_u64(pos, end, SL_VARLONG_MAX_BYTES, &u))
		return false;
	*value = unzigzag64(u);
	return true;
}
