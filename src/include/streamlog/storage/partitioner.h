/*
 * Key partitioners compatible with the common Kafka clients, so that a key
 * lands on the same partition whether it is produced by SQL or by a client.
 */
#ifndef SL_PARTITIONER_H
#define SL_PARTITIONER_H

#include "streamlog/protocol/codec_base.h"

typedef enum SlPartitioner
{
	SL_PARTITIONER_MURMUR2 = 0,	/* Java client default; librdkafka murmur2 */
	SL_PARTITIONER_CRC32 = 1,	/* librdkafka "consistent" */
	SL_PARTITIONER_FNV1A = 2	/* Sarama's hash partitioner; librdkafka fnv1a */
} SlPartitioner;

/* Kafka's murmur2 (seed 0x9747b28c), as org.apache.kafka.common.utils.Utils */
extern int32 SlMurmur2(const uint8 *data, size_t len);

/* zlib's CRC-32 (IEEE) */
extern uint32 SlCrc32(const uint8 *data, size_t len);

/* 32-bit FNV-1a */
extern uint32 SlFnv1a(const uint8 *data, size_t len);

/*
 * Partition for a non-null key among npartitions (> 0):
 * murmur2: (murmur2 & 0x7fffffff) % n; crc32: crc32 % n;
 * fnv1a: abs((int32) fnv1a % n), as Sarama computes it.
 */
extern int32 SlPartitionForKey(SlPartitioner partitioner,
							   const uint8 *key, size_t len,
							   int32 npartitions);

/* Partitioner by config name ("murmur2", "crc32", "fnv1a"); -1 if unknown */
extern int	SlPartitionerFromName(const char *name);

#endif							/* SL_PARTITIONER_H */
