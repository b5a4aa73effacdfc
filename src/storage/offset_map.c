/*
 * The log cleaner's offset map (see offset_map.h).
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/storage/offset_map.h"

/* offset -1 marks a free slot: offsets in the log are never negative */
typedef struct SlOffsetMapEntry
{
	SlKeyHash	hash;
	int64		offset;
} SlOffsetMapEntry;

StaticAssertDecl(sizeof(SlOffsetMapEntry) == SL_OFFSET_MAP_ENTRY_BYTES,
				 "an offset map entry is a 128-bit hash and an offset");

void
SlOffsetMapInit(SlOffsetMap *map, size_t memory_bytes)
{
	size_t		nslots = memory_bytes / sizeof(SlOffsetMapEntry);

	/* One key always fits, so that a pass always makes progress */
	nslots = Max(nslots, 2);
	map->nslots = nslots;
	map->max_entries = Max((size_t) (nslots * SL_OFFSET_MAP_LOAD_FACTOR), 1);
	if (map->max_entries >= nslots)
		map->max_entries = nslots - 1;
	map->slots = palloc(nslots * sizeof(SlOffsetMapEntry));
	SlOffsetMapClear(map);
}

void
SlOffsetMapFree(SlOffsetMap *map)
{
	if (map->slots)
		pfree(map->slots);
	map->slots = NULL;
	map->nslots = 0;
	map->count = 0;
}

void
SlOffsetMapClear(SlOffsetMap *map)
{
	for (size_t i = 0; i < map->nslots; i++)
		map->slots[i].offset = -1;
	map->count = 0;
	map->probes = 0;
	map->lookups = 0;
}

/* ---- MurmurHash3, x64 128-bit variant (Austin Appleby, public domain) ---- */

static inline uint64
rotl64(uint64 x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64
fmix64(uint64 k)
{
	k ^= k >> 33;
	k *= UINT64CONST(0xff51afd7ed558ccd);
	k ^= k >> 33;
	k *= UINT64CONST(0xc4ceb9fe1a85ec53);
	k ^= k >> 33;
	return k;
}

/* Little-endian load, whatever the machine */
static inline uint64
load_le64(const uint8 *p)
{
	uint64		v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

SlKeyHash
SlOffsetMapHash(const uint8 *key, size_t len)
{
	const uint64 c1 = UINT64CONST(0x87c37b91114253d5);
	const uint64 c2 = UINT64CONST(0x4cf5ad432745937f);
	size_t		nblocks = len / 16;
	uint64		h1 = 0;
	uint64		h2 = 0;
	uint64		k1;
	uint64		k2;
	const uint8 *tail;
	SlKeyHash	out;

	for (size_t i = 0; i < nblocks; i++)
	{
		k1 = load_le64(key + i * 16);
		k2 = load_le64(key + i * 16 + 8);

		k1 *= c1;
		k1 = rotl64(k1, 31);
		k1 *= c2;
		h1 ^= k1;
		h1 = rotl64(h1, 27);
		h1 += h2;
		h1 = h1 * 5 + 0x52dce729;

		k2 *= c2;
		k2 = rotl64(k2, 33);
		k2 *= c1;
		h2 ^= k2;
		h2 = rotl64(h2, 31);
		h2 += h1;
		h2 = h2 * 5 + 0x38495ab5;
	}

	tail = key + nblocks * 16;
	k1 = 0;
	k2 = 0;
	switch (len & 15)
	{
		case 15:
			k2 ^= (uint64) tail[14] << 48;
			/* FALLTHROUGH */
		case 14:
			k2 ^= (uint64) tail[13] << 40;
			/* FALLTHROUGH */
		case 13:
			k2 ^= (uint64) tail[12] << 32;
			/* FALLTHROUGH */
		case 12:
			k2 ^= (uint64) tail[11] << 24;
			/* FALLTHROUGH */
		case 11:
			k2 ^= (uint64) tail[10] << 16;
			/* FALLTHROUGH */
		case 10:
			k2 ^= (uint64) tail[9] << 8;
			/* FALLTHROUGH */
		case 9:
			k2 ^= (uint64) tail[8];
			k2 *= c2;
			k2 = rotl64(k2, 33);
			k2 *= c1;
			h2 ^= k2;
			/* FALLTHROUGH */
		case 8:
			k1 ^= (uint64) tail[7] << 56;
			/* FALLTHROUGH */
		case 7:
			k1 ^= (uint64) tail[6] << 48;
			/* FALLTHROUGH */
		case 6:
			k1 ^= (uint64) tail[5] << 40;
			/* FALLTHROUGH */
		case 5:
			k1 ^= (uint64) tail[4] << 32;
			/* FALLTHROUGH */
		case 4:
			k1 ^= (uint64) tail[3] << 24;
			/* FALLTHROUGH */
		case 3:
			k1 ^= (uint64) tail[2] << 16;
			/* FALLTHROUGH */
		case 2:
			k1 ^= (uint64) tail[1] << 8;
			/* FALLTHROUGH */
		case 1:
			k1 ^= (uint64) tail[0];
			k1 *= c1;
			k1 = rotl64(k1, 31);
			k1 *= c2;
			h1 ^= k1;
	}

	h1 ^= (uint64) len;
	h2 ^= (uint64) len;
	h1 += h2;
	h2 += h1;
	h1 = fmix64(h1);
	h2 = fmix64(h2);
	h1 += h2;
	h2 += h1;

	out.h1 = h1;
	out.h2 = h2;
	return out;
}

/* The slot holding hash, or the free slot where it would go */
static inline SlOffsetMapEntry *
find_slot(SlOffsetMap *map, SlKeyHash hash)
{
	size_t		pos = (size_t) (hash.h1 % map->nslots);

	map->lookups++;
	for (;;)
	{
		SlOffsetMapEntry *e = &map->slots[pos];

		map->probes++;
		if (e->offset < 0 || (e->hash.h1 == hash.h1 && e->hash.h2 == hash.h2))
			return e;
		/* never loops for ever: a free slot always remains */
		if (++pos == map->nslots)
			pos = 0;
	}
}

bool
SlOffsetMapPut(SlOffsetMap *map, SlKeyHash hash, int64 offset)
{
	SlOffsetMapEntry *e = find_slot(map, hash);

	Assert(offset >= 0);
	if (e->offset < 0)
	{
		if (map->count >= map->max_entries)
			return false;
		e->hash = hash;
		map->count++;
	}
	e->offset = offset;
	return true;
}

int64
SlOffsetMapGet(SlOffsetMap *map, SlKeyHash hash)
{
	SlOffsetMapEntry *e = find_slot(map, hash);

	return e->offset;
}
