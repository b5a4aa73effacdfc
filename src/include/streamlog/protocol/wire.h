/*-------------------------------------------------------------------------
 * wire.h
 *	  Primitives of the Kafka wire protocol: a bounds-checked reader and a
 *	  growable writer for the types the message schemas use.
 *
 * All integers are big endian.  Classic (non-flexible) encodings use an
 * int16 length for strings, an int32 length for bytes and an int32 count
 * for arrays, -1 meaning null.  Compact (flexible) encodings use an
 * unsigned varint holding length + 1, 0 meaning null.  A tagged-field
 * section is an unsigned varint count followed by (tag uvarint, size
 * uvarint, value) triples.
 *
 * SlReader has a sticky error: the first read that would run past the end
 * of the input, or that finds a malformed length, sets r->error to a static
 * message and leaves r->pos at the offending byte.  It and every later read
 * return zero values and do not move.  Decoders therefore read straight
 * through and check SlReaderOk() once at the end.
 *
 * Strings, bytes and records are views into the input buffer (no copy):
 * the buffer must outlive the decoded message.  Arrays are palloc'd in the
 * current memory context; their counts are checked against the bytes left
 * before anything is allocated.
 *
 * SlWriter appends to a StringInfo.  Writes cannot fail, but a value the
 * chosen version cannot carry (a null in a non-nullable field, a
 * non-default value in a field the version lacks) is recorded in w->error
 * (first problem only) and the closest legal encoding is written.
 *
 * IDENTIFICATION
 *	  src/protocol/wire.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_WIRE_H
#define SL_WIRE_H

#include "streamlog/protocol/codec_base.h"

/* A string view; len -1 = null (data is then NULL) */
typedef struct SlStr
{
	const char *data;
	int32		len;
} SlStr;

/* A bytes (or records) view; len -1 = null (data is then NULL) */
typedef struct SlBytes
{
	const uint8 *data;
	int32		len;
} SlBytes;

typedef struct SlUuid
{
	uint8		data[16];
} SlUuid;

#define SL_STR_NULL ((SlStr) {NULL, -1})
#define SL_BYTES_NULL ((SlBytes) {NULL, -1})

/* Largest single array the decoders will allocate, in bytes */
#define SL_WIRE_MAX_ALLOC ((size_t) 0x3fffffff)

typedef struct SlReader
{
	const uint8 *buf;
	size_t		len;
	size_t		pos;			/* next byte to read */
	const char *error;			/* NULL while all reads succeeded */
	const char *where;			/* innermost message/struct being decoded
								 * when the error happened, if known */
} SlReader;

/*
 * A records field a writer left where it was instead of copying it into
 * its buffer (see SlWriterAllowRefs): its bytes belong in the output at
 * offset of the buffer, and are to be sent from data.
 */
typedef struct SlWriterRef
{
	size_t		offset;
	const uint8 *data;
	size_t		len;
} SlWriterRef;

typedef struct SlWriter
{
	StringInfo	buf;
	const char *error;			/* first value that could not be encoded */

	/* records fields left in place, in output order, when allowed */
	bool		allow_refs;
	SlWriterRef *refs;
	int			nrefs;
	int			maxrefs;
	size_t		ref_bytes;		/* their total length */
} SlWriter;

/* Records fields of at least this many bytes are left in place */
#define SL_WRITER_REF_MIN 4096

/* Reader */
extern void SlReaderInit(SlReader *r, const uint8 *buf, size_t len);
extern void SlReaderFail(SlReader *r, const char *error);

static inline bool
SlReaderOk(const SlReader *r)
{
	return r->error == NULL;
}

static inline size_t
SlReaderRemaining(const SlReader *r)
{
	return r->len - r->pos;
}

/* Record the struct being decoded if an error happened inside it */
static inline void
SlReaderNoteWhere(SlReader *r, const char *where)
{
	if (r->error != NULL && r->where == NULL)
		r->where = where;
}

extern int8 SlReadInt8(SlReader *r);
extern int16 SlReadInt16(SlReader *r);
extern int32 SlReadInt32(SlReader *r);
extern int64 SlReadInt64(SlReader *r);
extern uint16 SlReadUint16(SlReader *r);
extern uint32 SlReadUint32(SlReader *r);
extern double SlReadFloat64(SlReader *r);
extern bool SlReadBool(SlReader *r);
extern SlUuid SlReadUuid(SlReader *r);
extern uint32 SlReadUvarint(SlReader *r);
extern int32 SlReadVarint(SlReader *r);
extern int64 SlReadVarlong(SlReader *r);

/* n raw bytes as a view into the input; NULL on error */
extern const uint8 *SlReadRaw(SlReader *r, size_t n);
extern void SlReadSkip(SlReader *r, size_t n);

/*
 * Strings and bytes, classic (compact = false) or compact.  A null on the
 * wire is an error unless nullable.
 */
extern SlStr SlReadString(SlReader *r, bool compact, bool nullable);
extern SlBytes SlReadBytes(SlReader *r, bool compact, bool nullable);

/*
 * An array count: -1 for null (an error unless nullable), else 0..n where
 * n * min_elem_size must fit in the bytes left (min_elem_size >= 1).
 * Returns 0 on error.
 */
extern int32 SlReadArrayLen(SlReader *r, bool compact, bool nullable,
							size_t min_elem_size);

/*
 * SlReadArrayLen, then a zeroed palloc of count * elem_size bytes.  Sets
 * *count (-1 for null, 0 on error) and returns the elements, or NULL for
 * an empty, null or failed array.
 */
extern void *SlReadArray(SlReader *r, bool compact, bool nullable,
						 size_t min_elem_size, size_t elem_size,
						 int32 *count);

/*
 * Tagged fields.  SlReadTagCount reads the count of a section (each entry
 * takes at least two bytes, more is an error).  SlReadTagHeader reads the
 * tag and size of one entry, checks the size against the input and
 * returns the offset where the value ends.  After decoding a known tag,
 * SlReadTagEnd checks that the value used exactly its size; an unknown tag
 * is passed over with SlReadSkipTo.  SlReadTaggedFields skips a whole
 * section.
 */
extern uint32 SlReadTagCount(SlReader *r);
extern size_t SlReadTagHeader(SlReader *r, uint32 *tag);
extern void SlReadTagEnd(SlReader *r, size_t end);
extern void SlReadSkipTo(SlReader *r, size_t end);
extern void SlReadTaggedFields(SlReader *r);

/* Writer */
extern void SlWriterInit(SlWriter *w, StringInfo buf);

/*
 * Let the writer leave large records fields in place (SlWriteRecords): the
 * output is then buf with each of refs inserted at its offset, and the
 * caller keeps the records' memory until that has been sent.
 */
extern void SlWriterAllowRefs(SlWriter *w);
extern void SlWriterFail(SlWriter *w, const char *error);

/* Bytes written so far (the position of the next write) */
static inline size_t
SlWriterPos(const SlWriter *w)
{
	return (size_t) w->buf->len;
}

extern void SlWriteInt8(SlWriter *w, int8 v);
extern void SlWriteInt16(SlWriter *w, int16 v);
extern void SlWriteInt32(SlWriter *w, int32 v);
extern void SlWriteInt64(SlWriter *w, int64 v);
extern void SlWriteUint16(SlWriter *w, uint16 v);
extern void SlWriteUint32(SlWriter *w, uint32 v);
extern void SlWriteFloat64(SlWriter *w, double v);
extern void SlWriteBool(SlWriter *w, bool v);
extern void SlWriteUuid(SlWriter *w, SlUuid v);
extern void SlWriteUvarint(SlWriter *w, uint32 v);
extern void SlWriteVarint(SlWriter *w, int32 v);
extern void SlWriteVarlong(SlWriter *w, int64 v);
extern void SlWriteRaw(SlWriter *w, const void *data, size_t n);

/*
 * Strings and bytes.  A null value where !nullable is written as empty and
 * recorded in w->error.
 */
extern void SlWriteString(SlWriter *w, bool compact, bool nullable, SlStr s);
extern void SlWriteBytes(SlWriter *w, bool compact, bool nullable, SlBytes b);
/* A records field: as bytes, but left in place if the writer allows it */
extern void SlWriteRecords(SlWriter *w, bool compact, bool nullable, SlBytes b);

/* An array count; n = -1 is null (written as empty if !nullable) */
extern void SlWriteArrayLen(SlWriter *w, bool compact, bool nullable, int32 n);

/*
 * One tagged field: SlWriteTagBegin writes the tag and returns where the
 * value starts; after writing the value, SlWriteTagEnd inserts its size.
 */
extern size_t SlWriteTagBegin(SlWriter *w, uint32 tag);
extern void SlWriteTagEnd(SlWriter *w, size_t start);

/* Overwrite 4 bytes at pos (a length prefix written earlier) with v */
extern void SlWriterPatchInt32(SlWriter *w, size_t pos, int32 v);

/*
 * Frame helpers: SlWriteLengthBegin writes a 4-byte placeholder and
 * returns its position; SlWriteLengthEnd fills it with the number of bytes
 * written after it.
 */
extern size_t SlWriteLengthBegin(SlWriter *w);
extern void SlWriteLengthEnd(SlWriter *w, size_t pos);

/* SlStr helpers */
static inline SlStr
SlStrFromCString(const char *s)
{
	SlStr		r;

	r.data = s;
	r.len = s ? (int32) strlen(s) : -1;
	return r;
}

static inline bool
SlStrIsNull(SlStr s)
{
	return s.len < 0;
}

static inline bool
SlStrEqual(SlStr a, SlStr b)
{
	if (a.len != b.len)
		return false;
	return a.len <= 0 || memcmp(a.data, b.data, a.len) == 0;
}

static inline bool
SlStrEqualCString(SlStr a, const char *s)
{
	return SlStrEqual(a, SlStrFromCString(s));
}

static inline bool
SlUuidIsZero(SlUuid u)
{
	for (int i = 0; i < 16; i++)
	{
		if (u.data[i] != 0)
			return false;
	}
	return true;
}

#endif							/* SL_WIRE_H */
