#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/varint.h"
#include "unit.h"

static void
check_varint_bytes(int32 v, const char *hex)
{
	StringInfoData buf;
	char		got[64];
	int			i;

	initStringInfo(&buf);
	SlPutVarint(&buf, v);
	got[0] = '\0';
	for (i = 0; i < buf.len; i++)
		snprintf(got + 2 * i, sizeof(got) - 2 * i, "%02x", (uint8) buf.data[i]);
	CHECK_MSG(strcmp(got, hex) == 0, "varint %d: got %s, want %s", v, got, hex);
	CHECK_EQ_INT(SlVarintSize(v), buf.len);
	pfree(buf.data);
}

static void
check_varlong_bytes(int64 v, const char *hex)
{
	StringInfoData buf;
	char		got[64];
	int			i;

	initStringInfo(&buf);
	SlPutVarlong(&buf, v);
	got[0] = '\0';
	for (i = 0; i < buf.len; i++)
		snprintf(got + 2 * i, sizeof(got) - 2 * i, "%02x", (uint8) buf.data[i]);
	CHECK_MSG(strcmp(got, hex) == 0, "varlong %lld: got %s, want %s",
			  (long long) v, got, hex);
	pfree(buf.data);
}

static void
roundtrip_varint(int32 v)
{
	StringInfoData buf;
	const uint8 *p;
	int32		out = 0;
	int			cut;

	initStringInfo(&buf);
	SlPutVarint(&buf, v);
	p = (const uint8 *) buf.data;
	CHECK(SlGetVarint(&p, p + buf.len, &out));
	CHECK_EQ_INT(out, v);
	CHECK(p == (const uint8 *) buf.data + buf.len);
	CHECK(buf.len <= SL_VARINT_MAX_BYTES);

	/* every truncation fails and leaves the position alone */
	for (cut = 0; cut < buf.len; cut++)
	{
		p = (const uint8 *) buf.data;
		CHECK(!SlGetVarint(&p, p + cut, &out));
		CHECK(p == (const uint8 *) buf.data);
	}
	pfree(buf.data);
}

static void
roundtrip_varlong(int64 v)
{
	StringInfoData buf;
	const uint8 *p;
	int64		out = 0;
	int			cut;

	initStringInfo(&buf);
	SlPutVarlong(&buf, v);
	p = (const uint8 *) buf.data;
	CHECK(SlGetVarlong(&p, p + buf.len, &out));
	CHECK_EQ_INT(out, v);
	CHECK(p == (const uint8 *) buf.data + buf.len);
	CHECK(buf.len <= SL_VARLONG_MAX_BYTES);
	for (cut = 0; cut < buf.len; cut++)
	{
		p = (const uint8 *) buf.data;
		CHECK(!SlGetVarlong(&p, p + cut, &out));
		CHECK(p == (const uint8 *) buf.data);
	}
	pfree(buf.data);
}

static void
roundtrip_uvarint(uint32 v)
{
	StringInfoData buf;
	const uint8 *p;
	uint32		out = 0;

	initStringInfo(&buf);
	SlPutUvarint(&buf, v);
	p = (const uint8 *) buf.data;
	CHECK(SlGetUvarint(&p, p + buf.len, &out));
	CHECK_EQ_UINT(out, v);
	CHECK(p == (const uint8 *) buf.data + buf.len);
	pfree(buf.data);
}

int
main(void)
{
	static const int32 i32s[] = {
		0, 1, -1, 2, -2, 63, -64, 64, -65, 127, 128, 300, -300, 8191, 8192,
		-8193, 1048575, 1048576, PG_INT32_MAX, PG_INT32_MIN, PG_INT32_MAX - 1,
		PG_INT32_MIN + 1, 0x0fffffff, -0x10000000
	};
	static const int64 i64s[] = {
		0, 1, -1, 63, -64, 64, 300, PG_INT32_MAX, PG_INT32_MIN,
		(int64) PG_INT32_MAX + 1, (int64) PG_INT32_MIN - 1, PG_INT64_MAX,
		PG_INT64_MIN, PG_INT64_MAX - 1, PG_INT64_MIN + 1,
		INT64CONST(1) << 62, -(INT64CONST(1) << 62), INT64CONST(1700000000000)
	};
	static const uint32 u32s[] = {0, 1, 127, 128, 16383, 16384, 0xffffffffU, 0x80000000U};
	uint64_t	seed = unit_seed(UINT64CONST(0x1234567887654321));
	int			i;

	/* known encodings */
	check_varint_bytes(0, "00");
	check_varint_bytes(-1, "01");
	check_varint_bytes(1, "02");
	check_varint_bytes(-2, "03");
	check_varint_bytes(63, "7e");
	check_varint_bytes(-64, "7f");
	check_varint_bytes(64, "8001");
	check_varint_bytes(-65, "8101");
	check_varint_bytes(300, "d804");
	check_varint_bytes(PG_INT32_MAX, "feffffff0f");
	check_varint_bytes(PG_INT32_MIN, "ffffffff0f");
	check_varlong_bytes(0, "00");
	check_varlong_bytes(-1, "01");
	check_varlong_bytes(300, "d804");
	check_varlong_bytes(PG_INT64_MAX, "feffffffffffffffff01");
	check_varlong_bytes(PG_INT64_MIN, "ffffffffffffffffff01");

	for (i = 0; i < (int) lengthof(i32s); i++)
		roundtrip_varint(i32s[i]);
	for (i = 0; i < (int) lengthof(i64s); i++)
		roundtrip_varlong(i64s[i]);
	for (i = 0; i < (int) lengthof(u32s); i++)
		roundtrip_uvarint(u32s[i]);
	for (i = 0; i < 2000; i++)
	{
		uint64_t	r = unit_rand(&seed);

		roundtrip_varint((int32) (uint32) (r >> (r & 31)));
		roundtrip_varlong((int64) (r >> (r & 63)));
	}

	/* uvarint has no zig-zag */
	{
		StringInfoData buf;

		initStringInfo(&buf);
		SlPutUvarint(&buf, 300);
		CHECK_EQ_INT(buf.len, 2);
		CHECK_EQ_UINT((uint8) buf.data[0], 0xac);
		CHECK_EQ_UINT((uint8) buf.data[1], 0x02);
		pfree(buf.data);
	}

	/* over-long encodings */
	{
		static const uint8 long6[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
		static const uint8 long11[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
		0x80, 0x80, 0x80, 0x80, 0x00};
		static const uint8 ff[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
		const uint8 *p;
		int32		v32;
		int64		v64;
		uint32		u32;

		p = long6;
		CHECK(!SlGetVarint(&p, long6 + sizeof(long6), &v32));
		CHECK(p == long6);
		p = long6;
		CHECK(!SlGetUvarint(&p, long6 + sizeof(long6), &u32));
		CHECK(p == long6);
		/* six bytes are fine for a varlong */
		p = long6;
		CHECK(SlGetVarlong(&p, long6 + sizeof(long6), &v64));
		CHECK_EQ_INT(v64, 0);
		p = long11;
		CHECK(!SlGetVarlong(&p, long11 + sizeof(long11), &v64));
		CHECK(p == long11);
		p = ff;
		CHECK(!SlGetVarint(&p, ff + sizeof(ff), &v32));
		p = ff;
		CHECK(!SlGetVarlong(&p, ff + sizeof(ff), &v64));
		/* empty input */
		p = ff;
		CHECK(!SlGetVarint(&p, ff, &v32));
		CHECK(!SlGetVarlong(&p, ff, &v64));
		CHECK(!SlGetUvarint(&p, ff, &u32));
	}

	/* a sequence of values decodes in order */
	{
		StringInfoData buf;
		const uint8 *p;
		const uint8 *end;
		int32		v;
		int64		l;

		initStringInfo(&buf);
		for (i = -1000; i < 1000; i++)
		{
			SlPutVarint(&buf, i * 1000);
			SlPutVarlong(&buf, (int64) i * 1000000000);
		}
		p = (const uint8 *) buf.data;
		end = p + buf.len;
		for (i = -1000; i < 1000; i++)
		{
			CHECK(SlGetVarint(&p, end, &v) && v == i * 1000);
			CHECK(SlGetVarlong(&p, end, &l) && l == (int64) i * 1000000000);
		}
		CHECK(p == end);
		pfree(buf.data);
	}

	return UNIT_DONE();
}
