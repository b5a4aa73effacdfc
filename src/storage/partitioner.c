/*
 * Key hashing compatible with the Kafka clients' partitioners.
 */
#include "streamlog/protocol/codec_base.h"

#include <zlib.h>

#include "streamlog/storage/partitioner.h"

int32
SlMurmur2(const uint8 *data, size_t len)
{
	const uint32 m = 0x5bd1e995;
	const int	r = 24;
	uint32		h = 0x9747b28cU ^ (uint32) len;
	size_t		nblocks = len / 4;
	size_t		i;
	const uint8 *tail;

	for (i = 0; i < nblocks; i++)
	{
		const uint8 *b = data + i * 4;
		uint32		k = (uint32) b[0] | ((uint32) b[1] << 8) |
			((uint32) b[2] << 16) | ((uint32) b[3] << 24);

		k *= m;
		k ^= k >> r;
		k *= m;
		h *= m;
		h ^= k;
	}

	tail = data + nblocks * 4;
	switch (len & 3)
	{
		case 3:
			h ^= (uint32) tail[2] << 16;
			/* FALLTHROUGH */
		case 2:
			h ^= (uint32) tail[1] << 8;
			/* FALLTHROUGH */
		case 1:
			h ^= (uint32) tail[0];
			h *= m;
	}

	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;
	return (int32) h;
}

uint32
SlCrc32(const uint8 *data, size_t len)
{
	uLong		crc = crc32(0L, Z_NULL, 0);

	while (len > 0)
	{
		uInt		chunk = len > (size_t) 0x40000000 ? 0x40000000 : (uInt) len;

		crc = crc32(crc, data, chunk);
		data += chunk;
		len -= chunk;
	}
	return (uint32) crc;
}

uint32
SlFnv1a(const uint8 *data, size_t len)
{
	uint32		h = 2166136261U;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		h ^= data[i];
		h *= 16777619U;
	}
	return h;
}

int32
SlPartitionForKey(SlPartitioner partitioner, const uint8 *key, size_t len,
				  int32 npartitions)
{
	if (npartitions <= 0)
		return -1;

	switch (partitioner)
	{
		case SL_PARTITIONER_MURMUR2:
			return (int32) (((uint32) SlMurmur2(key, len) & 0x7fffffff) %
							(uint32) npartitions);
		case SL_PARTITIONER_CRC32:
			return (int32) (SlCrc32(key, len) % (uint32) npartitions);
		case SL_PARTITIONER_FNV1A:
			{
				int32		p = (int32) SlFnv1a(key, len) % npartitions;

				return p < 0 ? -p : p;
			}
	}
	return -1;
}

int
SlPartitionerFromName(const char *name)
{
	if (name == NULL)
		return -1;
	if (pg_strcasecmp(name, "murmur2") == 0)
		return SL_PARTITIONER_MURMUR2;
	if (pg_strcasecmp(name, "crc32") == 0)
		return SL_PARTITIONER_CRC32;
	if (pg_strcasecmp(name, "fnv1a") == 0)
		return SL_PARTITIONER_FNV1A;
	return -1;
}
