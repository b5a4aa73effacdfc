/*
 * CRC32C of record batches (crc32c.c): the CRC that Kafka's RecordBatch v2
 * carries, computed as PostgreSQL's COMP_CRC32C does, only faster on long
 * inputs.
 */
#ifndef SL_PROTOCOL_CRC32C_H
#define SL_PROTOCOL_CRC32C_H

#include "streamlog/protocol/codec_base.h"

/*
 * crc updated with len bytes at data: the running value, as
 * COMP_CRC32C(crc, data, len) takes and leaves it (start from
 * INIT_CRC32C, finish with FIN_CRC32C)
 */
extern uint32 SlCrc32cUpdate(uint32 crc, const void *data, size_t len);

#endif							/* SL_PROTOCOL_CRC32C_H */
