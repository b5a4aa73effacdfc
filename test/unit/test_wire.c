/*
 * Unit tests of the wire primitives (src/protocol/wire.c): exact bytes of
 * every encoding, classic and compact, nulls, and the reader's refusal of
 * truncated input and of lengths or counts the input cannot hold.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/wire.h"
#include "unit.h"

/* Bytes written so far, as lower-case hex */
static const char *
hex(const StringInfo buf)
{
	static char out[2048];
	int			i;

	out[0] = '\0';
	for (i = 0; i < buf->len && 2 * i + 2 < (int) sizeof(out); i++)
		snprintf(out + 2 * i, sizeof(out) - 2 * i, "%02x", (uint8) buf->data[i]);
	return out;
}

#define CHECK_HEX(buf, want) \
	do { \
		const char *got_ = hex(buf); \
		CHECK_MSG(strcmp(got_, (want)) == 0, "got %s, want %s", got_, (want)); \
	} while (0)

static void
reader_on(SlReader *r, const StringInfo buf)
{
	SlReaderInit(r, (const uint8 *) buf->data, buf->len);
}

static void
test_fixed_width(void)
{
	StringInfoData buf;
	SlWriter	w;
	SlReader	r;
	SlUuid		u;
	SlUuid		u2;

	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	for (int i = 0; i < 16; i++)
		u.data[i] = (uint8) (0xa0 + i);

	SlWriteInt8(&w, -2);
	SlWriteInt16(&w, 0x1234);
	SlWriteInt16(&w, -1);
	SlWriteInt32(&w, -2);
	SlWriteInt64(&w, INT64CONST(0x0102030405060708));
	SlWriteUint16(&w, 0xfffe);
	SlWriteUint32(&w, 0xfffffffeU);
	SlWriteFloat64(&w, 1.5);
	SlWriteBool(&w, true);
	SlWriteBool(&w, false);
	SlWriteUuid(&w, u);
	CHECK_HEX(&buf,
			  "fe" "1234" "ffff" "fffffffe" "0102030405060708" "fffe"
			  "fffffffe" "3ff8000000000000" "01" "00"
			  "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
	CHECK(w.error == NULL);

	reader_on(&r, &buf);
	CHECK_EQ_INT(SlReadInt8(&r), -2);
	CHECK_EQ_INT(SlReadInt16(&r), 0x1234);
	CHECK_EQ_INT(SlReadInt16(&r), -1);
	CHECK_EQ_INT(SlReadInt32(&r), -2);
	CHECK_EQ_INT(SlReadInt64(&r), INT64CONST(0x0102030405060708));
	CHECK_EQ_UINT(SlReadUint16(&r), 0xfffe);
	CHECK_EQ_UINT(SlReadUint32(&r), 0xfffffffeU);
	CHECK(SlReadFloat64(&r) == 1.5);
	CHECK(SlReadBool(&r) == true);
	CHECK(SlReadBool(&r) == false);
	u2 = SlReadUuid(&r);
	CHECK_MEM(u2.data, u.data, 16);
	CHECK(SlReaderOk(&r));
	CHECK_EQ_INT(SlReaderRemaining(&r), 0);

	/* any non-zero byte is true */
	{
		const uint8 b[] = {0x02};

		SlReaderInit(&r, b, 1);
		CHECK(SlReadBool(&r) == true);
	}
	CHECK(SlUuidIsZero((SlUuid) {{0}}));
	CHECK(!SlUuidIsZero(u));
	pfree(buf.data);
}

static void
test_varints(void)
{
	StringInfoData buf;
	SlWriter	w;
	SlReader	r;

	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	SlWriteUvarint(&w, 0);
	SlWriteUvarint(&w, 127);
	SlWriteUvarint(&w, 300);
	SlWriteUvarint(&w, 0xffffffffU);
	SlWriteVarint(&w, -1);
	SlWriteVarint(&w, 64);
	SlWriteVarlong(&w, -(INT64CONST(1) << 40));
	CHECK_HEX(&buf, "00" "7f" "ac02" "ffffffff0f" "01" "8001" "ffffffffff3f");

	reader_on(&r, &buf);
	CHECK_EQ_UINT(SlReadUvarint(&r), 0);
	CHECK_EQ_UINT(SlReadUvarint(&r), 127);
	CHECK_EQ_UINT(SlReadUvarint(&r), 300);
	CHECK_EQ_UINT(SlReadUvarint(&r), 0xffffffffU);
	CHECK_EQ_INT(SlReadVarint(&r), -1);
	CHECK_EQ_INT(SlReadVarint(&r), 64);
	CHECK_EQ_INT(SlReadVarlong(&r), -(INT64CONST(1) << 40));
	CHECK(SlReaderOk(&r));
	CHECK_EQ_INT(SlReaderRemaining(&r), 0);

	/* a sixth continuation byte is too long for a uvarint */
	{
		const uint8 b[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};

		SlReaderInit(&r, b, sizeof(b));
		CHECK_EQ_UINT(SlReadUvarint(&r), 0);
		CHECK(!SlReaderOk(&r));
		CHECK_EQ_INT(r.pos, 0);
	}
	pfree(buf.data);
}

static void
test_strings(void)
{
	StringInfoData buf;
	SlWriter	w;
	SlReader	r;
	SlStr		s;
	char		longstr[300];

	memset(longstr, 'x', sizeof(longstr));

	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	SlWriteString(&w, false, false, SlStrFromCString("abc"));
	SlWriteString(&w, false, true, SL_STR_NULL);
	SlWriteString(&w, false, false, SlStrFromCString(""));
	SlWriteString(&w, true, false, SlStrFromCString("abc"));
	SlWriteString(&w, true, true, SL_STR_NULL);
	SlWriteString(&w, true, false, SlStrFromCString(""));
	CHECK_HEX(&buf, "0003616263" "ffff" "0000" "04616263" "00" "01");
	CHECK(w.error == NULL);

	reader_on(&r, &buf);
	s = SlReadString(&r, false, false);
	CHECK(SlStrEqualCString(s, "abc"));
	CHECK(s.data == buf.data + 2);	/* a view, not a copy */
	s = SlReadString(&r, false, true);
	CHECK(SlStrIsNull(s));
	CHECK(s.data == NULL);
	s = SlReadString(&r, false, false);
	CHECK(!SlStrIsNull(s) && s.len == 0);
	s = SlReadString(&r, true, false);
	CHECK(SlStrEqualCString(s, "abc"));
	CHECK(s.data == buf.data + 10);
	s = SlReadString(&r, true, true);
	CHECK(SlStrIsNull(s));
	s = SlReadString(&r, true, false);
	CHECK(!SlStrIsNull(s) && s.len == 0);
	CHECK(SlReaderOk(&r));
	CHECK_EQ_INT(SlReaderRemaining(&r), 0);

	/* a compact length of 300 + 1 takes two bytes */
	resetStringInfo(&buf);
	SlWriteString(&w, true, false, (SlStr) {longstr, 300});
	CHECK_EQ_INT(buf.len, 302);
	CHECK_EQ_UINT((uint8) buf.data[0], 0xad);
	CHECK_EQ_UINT((uint8) buf.data[1], 0x02);
	reader_on(&r, &buf);
	s = SlReadString(&r, true, false);
	CHECK_EQ_INT(s.len, 300);
	CHECK(SlReaderOk(&r));

	/* null where the field is not nullable: read error, write empty */
	{
		const uint8 classic_null[] = {0xff, 0xff};
		const uint8 compact_null[] = {0x00};

		SlReaderInit(&r, classic_null, 2);
		s = SlReadString(&r, false, false);
		CHECK(!SlReaderOk(&r));
		CHECK(s.len == 0);
		SlReaderInit(&r, compact_null, 1);
		(void) SlReadString(&r, true, false);
		CHECK(!SlReaderOk(&r));
	}
	resetStringInfo(&buf);
	SlWriterInit(&w, &buf);
	SlWriteString(&w, true, false, SL_STR_NULL);
	SlWriteString(&w, false, false, SL_STR_NULL);
	CHECK_HEX(&buf, "01" "0000");
	CHECK(w.error != NULL);

	/* negative lengths other than -1 are malformed */
	{
		const uint8 b[] = {0xff, 0xfe, 'a', 'b'};

		SlReaderInit(&r, b, sizeof(b));
		(void) SlReadString(&r, false, true);
		CHECK(!SlReaderOk(&r));
	}

	/* SlStr helpers */
	CHECK(SlStrEqual(SL_STR_NULL, SL_STR_NULL));
	CHECK(!SlStrEqual(SL_STR_NULL, SlStrFromCString("")));
	CHECK(SlStrEqual(SlStrFromCString(""), (SlStr) {NULL, 0}));
	CHECK(!SlStrEqualCString(SlStrFromCString("ab"), "abc"));
	CHECK(SlStrIsNull(SlStrFromCString(NULL)));
	pfree(buf.data);
}

static void
test_bytes(void)
{
	StringInfoData buf;
	SlWriter	w;
	SlReader	r;
	SlBytes		b;
	const uint8 data[] = {0xde, 0xad, 0xbe, 0xef};

	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	SlWriteBytes(&w, false, false, (SlBytes) {data, 4});
	SlWriteBytes(&w, false, true, SL_BYTES_NULL);
	SlWriteBytes(&w, true, false, (SlBytes) {data, 4});
	SlWriteBytes(&w, true, true, SL_BYTES_NULL);
	SlWriteBytes(&w, true, false, (SlBytes) {NULL, 0});
	CHECK_HEX(&buf, "00000004deadbeef" "ffffffff" "05deadbeef" "00" "01");
	CHECK(w.error == NULL);

	reader_on(&r, &buf);
	b = SlReadBytes(&r, false, false);
	CHECK(b.len == 4 && b.data == (const uint8 *) buf.data + 4);
	CHECK_MEM(b.data, data, 4);
	b = SlReadBytes(&r, false, true);
	CHECK(b.len == -1 && b.data == NULL);
	b = SlReadBytes(&r, true, false);
	CHECK(b.len == 4);
	CHECK_MEM(b.data, data, 4);
	b = SlReadBytes(&r, true, true);
	CHECK(b.len == -1);
	b = SlReadBytes(&r, true, false);
	CHECK(b.len == 0);
	CHECK(SlReaderOk(&r));
	CHECK_EQ_INT(SlReaderRemaining(&r), 0);

	resetStringInfo(&buf);
	SlWriteBytes(&w, false, false, SL_BYTES_NULL);
	CHECK_HEX(&buf, "00000000");
	CHECK(w.error != NULL);
	pfree(buf.data);
}

static void
test_raw_and_skip(void)
{
	const uint8 b[] = {1, 2, 3, 4, 5};
	SlReader	r;
	const uint8 *p;

	SlReaderInit(&r, b, sizeof(b));
	p = SlReadRaw(&r, 2);
	CHECK(p == b);
	SlReadSkip(&r, 2);
	CHECK_EQ_INT(SlReadInt8(&r), 5);
	CHECK(SlReadRaw(&r, 1) == NULL);
	CHECK(!SlReaderOk(&r));

	SlReaderInit(&r, NULL, 0);
	CHECK_EQ_INT(SlReadInt8(&r), 0);
	CHECK(!SlReaderOk(&r));
}

static void
test_arrays(void)
{
	StringInfoData buf;
	SlWriter	w;
	SlReader	r;
	int32		n;
	void	   *items;

	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	SlWriteArrayLen(&w, false, false, 3);
	SlWriteArrayLen(&w, false, true, -1);
	SlWriteArrayLen(&w, true, false, 3);
	SlWriteArrayLen(&w, true, true, -1);
	SlWriteArrayLen(&w, true, false, 0);
	CHECK_HEX(&buf, "00000003" "ffffffff" "04" "00" "01");
	CHECK(w.error == NULL);

	/* counts are checked against the bytes that follow them */
	reader_on(&r, &buf);
	CHECK_EQ_INT(SlReadArrayLen(&r, false, false, 1), 3);
	CHECK_EQ_INT(SlReadArrayLen(&r, false, true, 1), -1);
	/* the compact count claims 3 elements with 2 bytes left */
	CHECK_EQ_INT(SlReadArrayLen(&r, true, false, 1), 0);
	CHECK(!SlReaderOk(&r));
	CHECK_EQ_INT(r.pos, 9);
	{
		const uint8 tail[] = {0x00, 0x01};

		SlReaderInit(&r, tail, sizeof(tail));
		CHECK_EQ_INT(SlReadArrayLen(&r, true, true, 1), -1);
		CHECK_EQ_INT(SlReadArrayLen(&r, true, false, 1), 0);
		CHECK(SlReaderOk(&r));
	}

	/* with enough bytes after it, the count is accepted */
	{
		const uint8 ok[] = {0x04, 1, 2, 3};
		const uint8 tight[] = {0x04, 1, 2, 3};

		SlReaderInit(&r, ok, sizeof(ok));
		CHECK_EQ_INT(SlReadArrayLen(&r, true, false, 1), 3);
		CHECK(SlReaderOk(&r));
		/* but not if each element needs 2 bytes */
		SlReaderInit(&r, tight, sizeof(tight));
		CHECK_EQ_INT(SlReadArrayLen(&r, true, false, 2), 0);
		CHECK(!SlReaderOk(&r));
	}

	/* null where not nullable, and negative counts */
	{
		const uint8 null_classic[] = {0xff, 0xff, 0xff, 0xff};
		const uint8 minus_two[] = {0xff, 0xff, 0xff, 0xfe};
		const uint8 null_compact[] = {0x00};

		SlReaderInit(&r, null_classic, 4);
		CHECK_EQ_INT(SlReadArrayLen(&r, false, false, 1), 0);
		CHECK(!SlReaderOk(&r));
		SlReaderInit(&r, minus_two, 4);
		CHECK_EQ_INT(SlReadArrayLen(&r, false, true, 1), 0);
		CHECK(!SlReaderOk(&r));
		SlReaderInit(&r, null_compact, 1);
		CHECK_EQ_INT(SlReadArrayLen(&r, true, false, 1), 0);
		CHECK(!SlReaderOk(&r));
	}

	/* huge claimed counts fail before any allocation */
	{
		const uint8 huge_classic[] = {0x7f, 0xff, 0xff, 0xff, 0, 0};
		const uint8 huge_compact[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0};

		SlReaderInit(&r, huge_classic, sizeof(huge_classic));
		items = SlReadArray(&r, false, false, 1, 1024, &n);
		CHECK(items == NULL && n == 0 && !SlReaderOk(&r));
		SlReaderInit(&r, huge_compact, sizeof(huge_compact));
		items = SlReadArray(&r, true, true, 1, 1024, &n);
		CHECK(items == NULL && n == 0 && !SlReaderOk(&r));
	}

	/* SlReadArray allocates zeroed elements; null gives -1 and no memory */
	{
		const uint8 two[] = {0x03, 0xaa, 0xbb};
		const uint8 null_compact[] = {0x00};
		int64	   *elems;

		SlReaderInit(&r, two, sizeof(two));
		elems = SlReadArray(&r, true, false, 1, sizeof(int64), &n);
		CHECK(elems != NULL && n == 2 && elems[0] == 0 && elems[1] == 0);
		if (elems)
			pfree(elems);
		SlReaderInit(&r, null_compact, 1);
		items = SlReadArray(&r, true, true, 1, sizeof(int64), &n);
		CHECK(items == NULL && n == -1 && SlReaderOk(&r));
	}

	/* a null array where not nullable is written empty and flagged */
	resetStringInfo(&buf);
	SlWriteArrayLen(&w, true, false, -1);
	CHECK_HEX(&buf, "01");
	CHECK(w.error != NULL);
	pfree(buf.data);
}

static void
test_huge_lengths(void)
{
	SlReader	r;

	/* each claims far more than is there */
	{
		const uint8 s16[] = {0x7f, 0xff, 'a'};
		const uint8 b32[] = {0x7f, 0xff, 0xff, 0xff, 'a'};
		const uint8 compact[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 'a'};

		SlReaderInit(&r, s16, sizeof(s16));
		CHECK(SlReadString(&r, false, false).len == 0 && !SlReaderOk(&r));
		CHECK_EQ_INT(r.pos, 2);
		SlReaderInit(&r, b32, sizeof(b32));
		CHECK(SlReadBytes(&r, false, false).len == 0 && !SlReaderOk(&r));
		SlReaderInit(&r, compact, sizeof(compact));
		CHECK(SlReadString(&r, true, false).len == 0 && !SlReaderOk(&r));
		SlReaderInit(&r, compact, sizeof(compact));
		CHECK(SlReadBytes(&r, true, true).len == 0 && !SlReaderOk(&r));
	}

	/* exactly as long as what is left is fine */
	{
		const uint8 exact[] = {0x00, 0x02, 'h', 'i'};

		SlReaderInit(&r, exact, sizeof(exact));
		CHECK(SlReadString(&r, false, false).len == 2 && SlReaderOk(&r));
	}
}

static void
test_tagged_fields(void)
{
	StringInfoData buf;
	SlWriter	w;
	SlReader	r;
	size_t		start;
	uint32		tag;
	size_t		end;
	uint8		big[200];

	memset(big, 0x5a, sizeof(big));
	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	SlWriteUvarint(&w, 3);
	start = SlWriteTagBegin(&w, 0);
	SlWriteInt32(&w, 7);
	SlWriteTagEnd(&w, start);
	start = SlWriteTagBegin(&w, 5);
	SlWriteRaw(&w, big, sizeof(big));	/* size needs a 2-byte uvarint */
	SlWriteTagEnd(&w, start);
	start = SlWriteTagBegin(&w, 300);
	SlWriteTagEnd(&w, start);
	SlWriteInt8(&w, 0x42);
	CHECK_EQ_INT(buf.len, 1 + (1 + 1 + 4) + (1 + 2 + 200) + (2 + 1) + 1);
	CHECK_EQ_UINT((uint8) buf.data[7], 0x05);
	CHECK_EQ_UINT((uint8) buf.data[8], 0xc8);
	CHECK_EQ_UINT((uint8) buf.data[9], 0x01);
	CHECK_EQ_UINT((uint8) buf.data[10], 0x5a);
	CHECK_EQ_UINT((uint8) buf.data[buf.len], 0);

	/* read tag 0, skip the others */
	reader_on(&r, &buf);
	CHECK_EQ_UINT(SlReadTagCount(&r), 3);
	end = SlReadTagHeader(&r, &tag);
	CHECK_EQ_UINT(tag, 0);
	CHECK_EQ_INT(SlReadInt32(&r), 7);
	SlReadTagEnd(&r, end);
	end = SlReadTagHeader(&r, &tag);
	CHECK_EQ_UINT(tag, 5);
	SlReadSkipTo(&r, end);
	end = SlReadTagHeader(&r, &tag);
	CHECK_EQ_UINT(tag, 300);
	SlReadSkipTo(&r, end);
	CHECK_EQ_INT(SlReadInt8(&r), 0x42);
	CHECK(SlReaderOk(&r));

	/* skip the whole section */
	reader_on(&r, &buf);
	SlReadTaggedFields(&r);
	CHECK_EQ_INT(SlReadInt8(&r), 0x42);
	CHECK(SlReaderOk(&r));
	CHECK_EQ_INT(SlReaderRemaining(&r), 0);

	/* a known tag whose value does not use its size */
	reader_on(&r, &buf);
	(void) SlReadTagCount(&r);
	end = SlReadTagHeader(&r, &tag);
	(void) SlReadInt16(&r);
	SlReadTagEnd(&r, end);
	CHECK(!SlReaderOk(&r));

	/* more tags than bytes could hold, sizes past the end */
	{
		const uint8 many[] = {0x05, 0x00, 0x00};
		const uint8 far[] = {0x01, 0x00, 0x10, 0x00};

		SlReaderInit(&r, many, sizeof(many));
		CHECK_EQ_UINT(SlReadTagCount(&r), 0);
		CHECK(!SlReaderOk(&r));
		SlReaderInit(&r, far, sizeof(far));
		SlReadTaggedFields(&r);
		CHECK(!SlReaderOk(&r));
	}
	pfree(buf.data);
}

static void
test_length_prefix(void)
{
	StringInfoData buf;
	SlWriter	w;
	size_t		pos;

	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	SlWriteInt8(&w, 9);
	pos = SlWriteLengthBegin(&w);
	CHECK_EQ_INT(pos, 1);
	SlWriteInt32(&w, 0x01020304);
	SlWriteInt16(&w, 5);
	SlWriteLengthEnd(&w, pos);
	CHECK_HEX(&buf, "09" "00000006" "01020304" "0005");
	SlWriterPatchInt32(&w, 5, -1);
	CHECK_HEX(&buf, "09" "00000006" "ffffffff" "0005");
	pfree(buf.data);
}

/* Reads one of everything; used to cut the input at every length */
static void
read_everything(SlReader *r)
{
	(void) SlReadInt8(r);
	(void) SlReadInt16(r);
	(void) SlReadInt32(r);
	(void) SlReadInt64(r);
	(void) SlReadUint16(r);
	(void) SlReadUint32(r);
	(void) SlReadFloat64(r);
	(void) SlReadBool(r);
	(void) SlReadUuid(r);
	(void) SlReadUvarint(r);
	(void) SlReadVarint(r);
	(void) SlReadVarlong(r);
	(void) SlReadString(r, false, true);
	(void) SlReadString(r, true, true);
	(void) SlReadString(r, false, true);
	(void) SlReadBytes(r, false, true);
	(void) SlReadBytes(r, true, true);
	(void) SlReadArrayLen(r, false, false, 1);
	(void) SlReadInt8(r);
	(void) SlReadArrayLen(r, true, false, 1);
	(void) SlReadInt8(r);
	SlReadTaggedFields(r);
	(void) SlReadInt8(r);
}

static void
test_truncation(void)
{
	StringInfoData buf;
	SlWriter	w;
	SlReader	r;
	SlUuid		u;
	size_t		start;
	int			cut;

	memset(u.data, 0x11, 16);
	initStringInfo(&buf);
	SlWriterInit(&w, &buf);
	SlWriteInt8(&w, 1);
	SlWriteInt16(&w, 2);
	SlWriteInt32(&w, 3);
	SlWriteInt64(&w, 4);
	SlWriteUint16(&w, 5);
	SlWriteUint32(&w, 6);
	SlWriteFloat64(&w, 7.0);
	SlWriteBool(&w, true);
	SlWriteUuid(&w, u);
	SlWriteUvarint(&w, 100000);
	SlWriteVarint(&w, -100000);
	SlWriteVarlong(&w, INT64CONST(-10000000000));
	SlWriteString(&w, false, true, SlStrFromCString("classic"));
	SlWriteString(&w, true, true, SlStrFromCString("compact"));
	SlWriteString(&w, false, true, SL_STR_NULL);
	SlWriteBytes(&w, false, true, (SlBytes) {(const uint8 *) "xyz", 3});
	SlWriteBytes(&w, true, true, (SlBytes) {(const uint8 *) "xyz", 3});
	SlWriteArrayLen(&w, false, false, 1);
	SlWriteInt8(&w, 8);
	SlWriteArrayLen(&w, true, false, 1);
	SlWriteInt8(&w, 9);
	SlWriteUvarint(&w, 1);
	start = SlWriteTagBegin(&w, 2);
	SlWriteInt32(&w, 10);
	SlWriteTagEnd(&w, start);
	SlWriteInt8(&w, 11);

	reader_on(&r, &buf);
	read_everything(&r);
	CHECK(SlReaderOk(&r));
	CHECK_EQ_INT(SlReaderRemaining(&r), 0);

	for (cut = 0; cut < buf.len; cut++)
	{
		char	   *copy = palloc(cut + 1);	/* exact size: overreads show */

		memcpy(copy, buf.data, cut);
		SlReaderInit(&r, (const uint8 *) copy, cut);
		read_everything(&r);
		CHECK_MSG(!SlReaderOk(&r), "prefix of %d bytes accepted", cut);
		CHECK(r.pos <= (size_t) cut);
		pfree(copy);
	}
	pfree(buf.data);
}

static void
test_sticky_error(void)
{
	const uint8 b[] = {0x00, 0x01, 0x02};
	SlReader	r;

	SlReaderInit(&r, b, sizeof(b));
	CHECK_EQ_INT(SlReadInt16(&r), 1);
	CHECK_EQ_INT(SlReadInt32(&r), 0);	/* fails: 1 byte left */
	CHECK(!SlReaderOk(&r));
	CHECK_EQ_INT(r.pos, 2);
	/* later reads do nothing, even ones that would fit */
	CHECK_EQ_INT(SlReadInt8(&r), 0);
	CHECK_EQ_INT(r.pos, 2);
	CHECK(SlReadString(&r, true, true).len == 0);
	CHECK(strcmp(r.error, "truncated int32") == 0);

	/* the innermost struct name is kept, and only after an error */
	SlReaderInit(&r, b, sizeof(b));
	SlReaderNoteWhere(&r, "Outer.Inner");
	CHECK(r.where == NULL);
	SlReaderFail(&r, "first");
	SlReaderFail(&r, "second");
	SlReaderNoteWhere(&r, "Outer.Inner");
	SlReaderNoteWhere(&r, "Outer");
	CHECK(strcmp(r.error, "first") == 0);
	CHECK(strcmp(r.where, "Outer.Inner") == 0);
}

/*
 * Records fields: copied like bytes unless the writer allows references and
 * the field is large; then only the length is written and the field is
 * recorded at its offset, and buf with it inserted there equals the copy.
 */
static void
test_records_left_in_place(void)
{
	static uint8 big[SL_WRITER_REF_MIN + 3];
	StringInfoData copied;
	StringInfoData ref_buf;
	StringInfoData joined;
	SlWriter	w;
	SlWriter	r;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8) (i * 7);
	for (int compact = 0; compact <= 1; compact++)
	{
		initStringInfo(&copied);
		initStringInfo(&ref_buf);
		SlWriterInit(&w, &copied);
		SlWriterInit(&r, &ref_buf);
		SlWriterAllowRefs(&r);
		for (SlWriter *x = &w; x != NULL; x = x == &w ? &r : NULL)
		{
			SlWriteInt16(x, 7);
			SlWriteRecords(x, compact, true, (SlBytes) {(const uint8 *) "small", 5});
			SlWriteRecords(x, compact, true, (SlBytes) {big, (int32) sizeof(big)});
			SlWriteRecords(x, compact, true, (SlBytes) {NULL, -1});
			SlWriteInt32(x, 9);
		}
		CHECK_NULL_ERR(w.error);
		CHECK_NULL_ERR(r.error);
		CHECK_EQ_INT(w.nrefs, 0);
		CHECK_EQ_INT(r.nrefs, 1);
		CHECK(r.refs[0].data == big);
		CHECK_EQ_UINT(r.refs[0].len, sizeof(big));
		CHECK_EQ_UINT(r.ref_bytes, sizeof(big));
		CHECK_EQ_UINT((size_t) ref_buf.len + r.ref_bytes, (size_t) copied.len);

		initStringInfo(&joined);
		appendBinaryStringInfo(&joined, ref_buf.data, (int) r.refs[0].offset);
		appendBinaryStringInfo(&joined, (const char *) big, (int) sizeof(big));
		appendBinaryStringInfo(&joined, ref_buf.data + r.refs[0].offset,
							   ref_buf.len - (int) r.refs[0].offset);
		CHECK_EQ_INT(joined.len, copied.len);
		CHECK_MEM(joined.data, copied.data, copied.len);
	}
}

int
main(void)
{
	test_fixed_width();
	test_varints();
	test_strings();
	test_bytes();
	test_raw_and_skip();
	test_arrays();
	test_huge_lengths();
	test_tagged_fields();
	test_length_prefix();
	test_truncation();
	test_sticky_error();
	test_records_left_in_place();
	return UNIT_DONE();
}
