/*
 * The log cleaner's offset map: for each key of a partition's dirty
 * section, the offset of its last record, in a fixed amount of memory
 * (Kafka's SkimpyOffsetMap, sized by log.cleaner.dedupe.buffer.size).
 *
 * Keys are not stored, only a 128-bit hash of them (MurmurHash3 x64/128),
 * so an entry takes 24 bytes whatever the key's size; two keys sharing a
 * 128-bit hash would be taken for one, which at 2^-64 collision odds for
 * billions of keys is the trade Kafka makes with MD5.  Open addressing with
 * linear probing; the map is full at SL_OFFSET_MAP_LOAD_FACTOR of its
 * slots, and then takes no new key (a pass stops there, the next goes on).
 *
 * Pure C over bytes: compiled as frontend code for the unit tests.
 */
#ifndef SL_STORAGE_OFFSET_MAP_H
#define SL_STORAGE_OFFSET_MAP_H

#include "streamlog/protocol/codec_base.h"

#define SL_OFFSET_MAP_HASH_BYTES 16
#define SL_OFFSET_MAP_ENTRY_BYTES 24
/* Kafka's log.cleaner.io.buffer.load.factor */
#define SL_OFFSET_MAP_LOAD_FACTOR 0.9

typedef struct SlKeyHash
{
	uint64		h1;
	uint64		h2;
} SlKeyHash;

typedef struct SlOffsetMap
{
	struct SlOffsetMapEntry *slots;
	size_t		nslots;
	size_t		max_entries;	/* full beyond this many keys */
	size_t		count;			/* keys in the map */
	uint64		probes;			/* slots looked at, for statistics */
	uint64		lookups;
} SlOffsetMap;

/*
 * Make a map taking at most memory_bytes (palloc'd in the current context;
 * at least one key always fits).
 */
extern void SlOffsetMapInit(SlOffsetMap *map, size_t memory_bytes);
extern void SlOffsetMapFree(SlOffsetMap *map);

/* Forget every key, keeping the memory */
extern void SlOffsetMapClear(SlOffsetMap *map);

/* The 128-bit hash of a key */
extern SlKeyHash SlOffsetMapHash(const uint8 *key, size_t len);

/*
 * Note offset as the last offset of the key hashed to hash.  Returns false,
 * changing nothing, when the key is new and the map is full.
 */
extern bool SlOffsetMapPut(SlOffsetMap *map, SlKeyHash hash, int64 offset);

/* The offset noted for hash, or -1 if none */
extern int64 SlOffsetMapGet(SlOffsetMap *map, SlKeyHash hash);

#endif							/* SL_STORAGE_OFFSET_MAP_H */
