/*
 * The log cleaner's offset map: the hash, last offset per key, the fill
 * limit, and agreement with a plain model over random keys.
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/storage/offset_map.h"
#include "unit.h"

static SlKeyHash
hs(const char *s)
{
	return SlOffsetMapHash((const uint8 *) s, strlen(s));
}

/* MurmurHash3_x64_128 with seed 0, as the mmh3 package gives it */
static void
test_hash_vectors(void)
{
	SlKeyHash	h = hs("foo");
	SlKeyHash	empty = SlOffsetMapHash((const uint8 *) "", 0);

	CHECK_EQ_UINT(h.h1, UINT64CONST(0xe271865701f54561));
	CHECK_EQ_UINT(h.h2, UINT64CONST(0x7eaf87e42bba7d87));
	CHECK_EQ_UINT(empty.h1, 0);
	CHECK_EQ_UINT(empty.h2, 0);
	/* every tail length differs from its neighbours */
	{
		const char *s = "0123456789abcdefghijklmnopqrstuvwxyz";

		for (size_t n = 1; n < strlen(s); n++)
		{
			SlKeyHash	a = SlOffsetMapHash((const uint8 *) s, n);
			SlKeyHash	b = SlOffsetMapHash((const uint8 *) s, n - 1);

			CHECK(a.h1 != b.h1 || a.h2 != b.h2);
		}
	}
}

static void
test_last_offset_wins(void)
{
	SlOffsetMap map;

	SlOffsetMapInit(&map, 1024);
	CHECK_EQ_INT(SlOffsetMapGet(&map, hs("a")), -1);
	CHECK(SlOffsetMapPut(&map, hs("a"), 0));
	CHECK(SlOffsetMapPut(&map, hs("b"), 1));
	CHECK(SlOffsetMapPut(&map, hs("a"), 2));
	CHECK_EQ_INT(SlOffsetMapGet(&map, hs("a")), 2);
	CHECK_EQ_INT(SlOffsetMapGet(&map, hs("b")), 1);
	CHECK_EQ_INT(SlOffsetMapGet(&map, hs("c")), -1);
	CHECK_EQ_INT(map.count, 2);
	SlOffsetMapClear(&map);
	CHECK_EQ_INT(SlOffsetMapGet(&map, hs("a")), -1);
	CHECK_EQ_INT(map.count, 0);
	SlOffsetMapFree(&map);
}

/* A full map takes no new key, but still updates the ones it has */
static void
test_full(void)
{
	SlOffsetMap map;
	char		key[32];
	size_t		n = 0;

	SlOffsetMapInit(&map, 10 * SL_OFFSET_MAP_ENTRY_BYTES);
	CHECK_EQ_INT(map.nslots, 10);
	CHECK_EQ_INT(map.max_entries, 9);
	for (;;)
	{
		snprintf(key, sizeof(key), "key-%zu", n);
		if (!SlOffsetMapPut(&map, hs(key), (int64) n))
			break;
		n++;
	}
	CHECK_EQ_INT(n, 9);
	CHECK(SlOffsetMapPut(&map, hs("key-3"), 100));
	CHECK_EQ_INT(SlOffsetMapGet(&map, hs("key-3")), 100);
	CHECK(!SlOffsetMapPut(&map, hs("another"), 101));
	CHECK_EQ_INT(SlOffsetMapGet(&map, hs("another")), -1);
	SlOffsetMapFree(&map);

	/* even the smallest map takes a key */
	SlOffsetMapInit(&map, 0);
	CHECK(SlOffsetMapPut(&map, hs("x"), 5));
	CHECK(!SlOffsetMapPut(&map, hs("y"), 6));
	CHECK_EQ_INT(SlOffsetMapGet(&map, hs("x")), 5);
	SlOffsetMapFree(&map);
}

/* Random keys against an array model: last offset of each key */
static void
test_model(void)
{
	uint64_t	state = unit_seed(0x5eed0ff5e7);
	enum
	{
		NKEYS = 5000, NOPS = 60000
	};
	int64	   *model = malloc(sizeof(int64) * NKEYS);
	SlOffsetMap map;
	char		key[32];
	bool		ok = true;

	for (int i = 0; i < NKEYS; i++)
		model[i] = -1;
	SlOffsetMapInit(&map, (size_t) NKEYS * 2 * SL_OFFSET_MAP_ENTRY_BYTES);
	for (int64 off = 0; off < NOPS; off++)
	{
		int			k = (int) (unit_rand(&state) % NKEYS);

		snprintf(key, sizeof(key), "k%d", k);
		ok &= SlOffsetMapPut(&map, hs(key), off);
		model[k] = off;
	}
	CHECK(ok);
	for (int k = 0; k < NKEYS; k++)
	{
		snprintf(key, sizeof(key), "k%d", k);
		if (SlOffsetMapGet(&map, hs(key)) != model[k])
			ok = false;
	}
	CHECK(ok);
	CHECK(map.probes >= map.lookups);
	SlOffsetMapFree(&map);
	free(model);
}

int
main(void)
{
	test_hash_vectors();
	test_last_offset_wins();
	test_full();
	test_model();
	return UNIT_DONE();
}
