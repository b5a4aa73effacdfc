/*-------------------------------------------------------------------------
 * wire.c
 *	  Sticky-error reader and growable writer for the Kafka wire protocol.
 *
 * Every length or count read from the input is checked against the bytes
 * that remain before it is used, so a decoder never reads past the end and
 * never allocates more than the input could describe.
 *
 * IDENTIFICATION
 *	  src/protocol/wire.c
 *-------------------------------------------------------------------------
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/varint.h"
#include "streamlog/protocol/wire.h"

void
SlReaderInit(SlReader *r, const uint8 *buf, size_t len)
{
	r->buf = buf;
	r->len = buf ? len : 0;
	r->pos = 0;
	r->error = NULL;
	r->where = NULL;
}

/* Set the error unless one is already set; the first one wins */
void
SlReaderFail(SlReader *r, const char *error)
{
	if (r->error == NULL)
		r->error = error;
}

/*
 * Return a pointer to the next n bytes and advance past them, or NULL (and
 * fail with the given message) if fewer remain.
 */
static inline const uint8 *
take(SlReader *r, size_t n, const char *error)
{
	const uint8 *p;

	if (r->error != NULL)
		return NULL;
	if (n > r->len - r->pos)
	{
		SlReaderFail(r, error);
		return NULL;
	}
	p = r->buf + r->pos;
	r->pos += n;
	return p;
}

int8
SlReadInt8(SlReader *r)
{
	const uint8 *p = take(r, 1, "truncated int8");

	return p ? (int8) p[0] : 0;
}

int16
SlReadInt16(SlReader *r)
{
	const uint8 *p = take(r, 2, "truncated int16");

	return p ? (int16) (((uint16) p[0] << 8) | p[1]) : 0;
}

static inline uint32
get_uint32(const uint8 *p)
{
	return ((uint32) p[0] << 24) | ((uint32) p[1] << 16) |
		((uint32) p[2] << 8) | p[3];
}

int32
SlReadInt32(SlReader *r)
{
	const uint8 *p = take(r, 4, "truncated int32");

	return p ? (int32) get_uint32(p) : 0;
}

int64
SlReadInt64(SlReader *r)
{
	const uint8 *p = take(r, 8, "truncated int64");

	return p ? (int64) (((uint64) get_uint32(p) << 32) | get_uint32(p + 4)) : 0;
}

uint16
SlReadUint16(SlReader *r)
{
	const uint8 *p = take(r, 2, "truncated uint16");

	return p ? (uint16) (((uint16) p[0] << 8) | p[1]) : 0;
}

uint32
SlReadUint32(SlReader *r)
{
	const uint8 *p = take(r, 4, "truncated uint32");

	return p ? get_uint32(p) : 0;
}

double
SlReadFloat64(SlReader *r)
{
	const uint8 *p = take(r, 8, "truncated float64");
	uint64		bits;
	double		v;

	if (p == NULL)
		return 0.0;
	bits = ((uint64) get_uint32(p) << 32) | get_uint32(p + 4);
	memcpy(&v, &bits, sizeof(v));
	return v;
}

bool
SlReadBool(SlReader *r)
{
	const uint8 *p = take(r, 1, "truncated bool");

	return p ? p[0] != 0 : false;
}

SlUuid
SlReadUuid(SlReader *r)
{
	const uint8 *p = take(r, 16, "truncated uuid");
	SlUuid		u;

	if (p)
		memcpy(u.data, p, 16);
	else
		memset(u.data, 0, 16);
	return u;
}

uint32
SlReadUvarint(SlReader *r)
{
	const uint8 *p;
	uint32		v;

	if (r->error != NULL)
		return 0;
	p = r->buf + r->pos;
	if (!SlGetUvarint(&p, r->buf + r->len, &v))
	{
		SlReaderFail(r, "truncated or overlong unsigned varint");
		return 0;
	}
	r->pos = p - r->buf;
	return v;
}

int32
SlReadVarint(SlReader *r)
{
	const uint8 *p;
	int32		v;

	if (r->error != NULL)
		return 0;
	p = r->buf + r->pos;
	if (!SlGetVarint(&p, r->buf + r->len, &v))
	{
		SlReaderFail(r, "truncated or overlong varint");
		return 0;
	}
	r->pos = p - r->buf;
	return v;
}

int64
SlReadVarlong(SlReader *r)
{
	const uint8 *p;
	int64		v;

	if (r->error != NULL)
		return 0;
	p = r->buf + r->pos;
	if (!SlGetVarlong(&p, r->buf + r->len, &v))
	{
		SlReaderFail(r, "truncated or overlong varlong");
		return 0;
	}
	r->pos = p - r->buf;
	return v;
}

const uint8 *
SlReadRaw(SlReader *r, size_t n)
{
	return take(r, n, "truncated data");
}

void
SlReadSkip(SlReader *r, size_t n)
{
	(void) take(r, n, "truncated data");
}

/*
 * Read a length prefix: classic int16 (strings) or int32 (bytes), or a
 * compact uvarint holding length + 1.  Returns -1 for null, else a length
 * that fits in the remaining input, or -2 after an error.
 */
static int64
read_length(SlReader *r, bool compact, bool wide, bool nullable,
			const char *what_null, const char *what_long)
{
	int64		len;

	if (compact)
		len = (int64) SlReadUvarint(r) - 1;
	else if (wide)
		len = SlReadInt32(r);
	else
		len = SlReadInt16(r);
	if (r->error != NULL)
		return -2;
	if (len == -1)
	{
		if (!nullable)
		{
			SlReaderFail(r, what_null);
			return -2;
		}
		return -1;
	}
	if (len < 0)
	{
		SlReaderFail(r, "negative length");
		return -2;
	}
	if ((uint64) len > r->len - r->pos)
	{
		SlReaderFail(r, what_long);
		return -2;
	}
	return len;
}

SlStr
SlReadString(SlReader *r, bool compact, bool nullable)
{
	SlStr		s = {"", 0};
	int64		len = read_length(r, compact, false, nullable,
								  "null in a non-nullable string",
								  "string length exceeds the input");

	if (len == -1)
		return SL_STR_NULL;
	if (len > 0)
	{
		s.data = (const char *) r->buf + r->pos;
		s.len = (int32) len;
		r->pos += len;
	}
	return s;
}

SlBytes
SlReadBytes(SlReader *r, bool compact, bool nullable)
{
	SlBytes		b = {NULL, 0};
	int64		len = read_length(r, compact, true, nullable,
								  "null in non-nullable bytes",
								  "bytes length exceeds the input");

	if (len == -1)
		return SL_BYTES_NULL;
	if (len > 0)
	{
		b.data = r->buf + r->pos;
		b.len = (int32) len;
		r->pos += len;
	}
	return b;
}

int32
SlReadArrayLen(SlReader *r, bool compact, bool nullable, size_t min_elem_size)
{
	int64		n;

	if (compact)
		n = (int64) SlReadUvarint(r) - 1;
	else
		n = SlReadInt32(r);
	if (r->error != NULL)
		return 0;
	if (n == -1)
	{
		if (!nullable)
		{
			SlReaderFail(r, "null in a non-nullable array");
			return 0;
		}
		return -1;
	}
	if (n < 0)
	{
		SlReaderFail(r, "negative array count");
		return 0;
	}
	if (min_elem_size == 0)
		min_elem_size = 1;
	if ((uint64) n > (r->len - r->pos) / min_elem_size || n > PG_INT32_MAX)
	{
		SlReaderFail(r, "array count exceeds the input");
		return 0;
	}
	return (int32) n;
}

void *
SlReadArray(SlReader *r, bool compact, bool nullable, size_t min_elem_size,
			size_t elem_size, int32 *count)
{
	int32		n = SlReadArrayLen(r, compact, nullable, min_elem_size);

	*count = n;
	if (n <= 0)
		return NULL;
	if ((size_t) n > SL_WIRE_MAX_ALLOC / elem_size)
	{
		SlReaderFail(r, "array too large");
		*count = 0;
		return NULL;
	}
	return palloc0((size_t) n * elem_size);
}

uint32
SlReadTagCount(SlReader *r)
{
	uint32		n = SlReadUvarint(r);

	if (r->error != NULL)
		return 0;
	if (n > (r->len - r->pos) / 2)
	{
		SlReaderFail(r, "tagged field count exceeds the input");
		return 0;
	}
	return n;
}

size_t
SlReadTagHeader(SlReader *r, uint32 *tag)
{
	uint32		size;

	*tag = SlReadUvarint(r);
	size = SlReadUvarint(r);
	if (r->error != NULL)
		return r->pos;
	if (size > r->len - r->pos)
	{
		SlReaderFail(r, "tagged field size exceeds the input");
		return r->pos;
	}
	return r->pos + size;
}

void
SlReadTagEnd(SlReader *r, size_t end)
{
	if (r->error == NULL && r->pos != end)
		SlReaderFail(r, "tagged field size does not match its value");
}

void
SlReadSkipTo(SlReader *r, size_t end)
{
	if (r->error != NULL)
		return;
	if (end < r->pos || end > r->len)
	{
		SlReaderFail(r, "tagged field size does not match its value");
		return;
	}
	r->pos = end;
}

void
SlReadTaggedFields(SlReader *r)
{
	uint32		n = SlReadTagCount(r);

	for (uint32 i = 0; i < n && r->error == NULL; i++)
	{
		uint32		tag;
		size_t		end = SlReadTagHeader(r, &tag);

		SlReadSkipTo(r, end);
	}
}

void
SlWriterInit(SlWriter *w, StringInfo buf)
{
	w->buf = buf;
	w->error = NULL;
	w->allow_refs = false;
	w->refs = NULL;
	w->nrefs = 0;
	w->maxrefs = 0;
	w->ref_bytes = 0;
}

void
SlWriterAllowRefs(SlWriter *w)
{
	w->allow_refs = true;
}

void
SlWriterFail(SlWriter *w, const char *error)
{
	if (w->error == NULL)
		w->error = error;
}

void
SlWriteRaw(SlWriter *w, const void *data, size_t n)
{
	if (n > 0)
		appendBinaryStringInfo(w->buf, data, (int) n);
}

static inline void
put_uint32(uint8 *p, uint32 v)
{
	p[0] = (uint8) (v >> 24);
	p[1] = (uint8) (v >> 16);
	p[2] = (uint8) (v >> 8);
	p[3] = (uint8) v;
}

void
SlWriteInt8(SlWriter *w, int8 v)
{
	appendStringInfoCharMacro(w->buf, (char) v);
}

void
SlWriteInt16(SlWriter *w, int16 v)
{
	uint8		b[2] = {(uint8) ((uint16) v >> 8), (uint8) v};

	SlWriteRaw(w, b, 2);
}

void
SlWriteInt32(SlWriter *w, int32 v)
{
	uint8		b[4];

	put_uint32(b, (uint32) v);
	SlWriteRaw(w, b, 4);
}

void
SlWriteInt64(SlWriter *w, int64 v)
{
	uint8		b[8];

	put_uint32(b, (uint32) ((uint64) v >> 32));
	put_uint32(b + 4, (uint32) v);
	SlWriteRaw(w, b, 8);
}

void
SlWriteUint16(SlWriter *w, uint16 v)
{
	SlWriteInt16(w, (int16) v);
}

void
SlWriteUint32(SlWriter *w, uint32 v)
{
	SlWriteInt32(w, (int32) v);
}

void
SlWriteFloat64(SlWriter *w, double v)
{
	uint64		bits;

	memcpy(&bits, &v, sizeof(bits));
	SlWriteInt64(w, (int64) bits);
}

void
SlWriteBool(SlWriter *w, bool v)
{
	SlWriteInt8(w, v ? 1 : 0);
}

void
SlWriteUuid(SlWriter *w, SlUuid v)
{
	SlWriteRaw(w, v.data, 16);
}

void
SlWriteUvarint(SlWriter *w, uint32 v)
{
	SlPutUvarint(w->buf, v);
}

void
SlWriteVarint(SlWriter *w, int32 v)
{
	SlPutVarint(w->buf, v);
}

void
SlWriteVarlong(SlWriter *w, int64 v)
{
	SlPutVarlong(w->buf, v);
}

void
SlWriteString(SlWriter *w, bool compact, bool nullable, SlStr s)
{
	if (s.len < 0 && !nullable)
	{
		SlWriterFail(w, "null in a non-nullable string");
		s.len = 0;
	}
	if (!compact && s.len > PG_INT16_MAX)
	{
		SlWriterFail(w, "string too long for an int16 length");
		s.len = PG_INT16_MAX;
	}
	if (compact)
		SlWriteUvarint(w, s.len < 0 ? 0 : (uint32) s.len + 1);
	else
		SlWriteInt16(w, s.len < 0 ? -1 : (int16) s.len);
	if (s.len > 0)
		SlWriteRaw(w, s.data, s.len);
}

void
SlWriteBytes(SlWriter *w, bool compact, bool nullable, SlBytes b)
{
	if (b.len < 0 && !nullable)
	{
		SlWriterFail(w, "null in non-nullable bytes");
		b.len = 0;
	}
	if (compact)
		SlWriteUvarint(w, b.len < 0 ? 0 : (uint32) b.len + 1);
	else
		SlWriteInt32(w, b.len < 0 ? -1 : b.len);
	if (b.len > 0)
		SlWriteRaw(w, b.data, b.len);
}

void
SlWriteRecords(SlWriter *w, bool compact, bool nullable, SlBytes b)
{
	if (!w->allow_refs || b.len < SL_WRITER_REF_MIN)
	{
		SlWriteBytes(w, compact, nullable, b);
		return;
	}
	/* The length here; the bytes stay where they are (SlWriterAllowRefs) */
	if (compact)
		SlWriteUvarint(w, (uint32) b.len + 1);
	else
		SlWriteInt32(w, b.len);
	if (w->nrefs == w->maxrefs)
	{
		w->maxrefs = Max(8, w->maxrefs * 2);
		w->refs = w->refs == NULL ? palloc(sizeof(SlWriterRef) * w->maxrefs) :
			repalloc(w->refs, sizeof(SlWriterRef) * w->maxrefs);
	}
	w->refs[w->nrefs].offset = (size_t) w->buf->len;
	w->refs[w->nrefs].data = b.data;
	w->refs[w->nrefs].len = (size_t) b.len;
	w->nrefs++;
	w->ref_bytes += (size_t) b.len;
}

void
SlWriteArrayLen(SlWriter *w, bool compact, bool nullable, int32 n)
{
	if (n < 0 && !nullable)
	{
		SlWriterFail(w, "null in a non-nullable array");
		n = 0;
	}
	if (compact)
		SlWriteUvarint(w, n < 0 ? 0 : (uint32) n + 1);
	else
		SlWriteInt32(w, n < 0 ? -1 : n);
}

size_t
SlWriteTagBegin(SlWriter *w, uint32 tag)
{
	SlWriteUvarint(w, tag);
	return SlWriterPos(w);
}

void
SlWriteTagEnd(SlWriter *w, size_t start)
{
	StringInfo	buf = w->buf;
	size_t		size = (size_t) buf->len - start;
	uint8		prefix[SL_VARINT_MAX_BYTES];
	int			n = 0;
	uint32		u = (uint32) size;

	while (u >= 0x80)
	{
		prefix[n++] = (uint8) (u | 0x80);
		u >>= 7;
	}
	prefix[n++] = (uint8) u;

	enlargeStringInfo(buf, n);
	memmove(buf->data + start + n, buf->data + start, size);
	memcpy(buf->data + start, prefix, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
}

void
SlWriterPatchInt32(SlWriter *w, size_t pos, int32 v)
{
	Assert(pos + 4 <= (size_t) w->buf->len);
	put_uint32((uint8 *) w->buf->data + pos, (uint32) v);
}

size_t
SlWriteLengthBegin(SlWriter *w)
{
	size_t		pos = SlWriterPos(w);

	SlWriteInt32(w, 0);
	return pos;
}

void
SlWriteLengthEnd(SlWriter *w, size_t pos)
{
	SlWriterPatchInt32(w, pos, (int32) (SlWriterPos(w) - pos - 4));
}
