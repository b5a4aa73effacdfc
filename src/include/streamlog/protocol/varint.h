/*
 * Kafka's variable-length integers: zig-zag encoded, base-128 little endian
 * (protobuf style).  Used inside RecordBatch v2 records and by the flexible
 * versions of the wire protocol.
 */
#ifndef SL_VARINT_H
#define SL_VARINT_H

#include "streamlog/protocol/codec_base.h"

#define SL_VARINT_MAX_BYTES 5
#define SL_VARLONG_MAX_BYTES 10

/* Append a zig-zag varint (int32) to buf */
extern void SlPutVarint(StringInfo buf, int32 value);

/* Append a zig-zag varlong (int64) to buf */
extern void SlPutVarlong(StringInfo buf, int64 value);

/* Append an unsigned varint (no zig-zag) to buf */
extern void SlPutUvarint(StringInfo buf, uint32 value);

/* Number of bytes SlPutVarint would write */
extern int	SlVarintSize(int32 value);

/*
 * Read a zig-zag varint from *pos, not reading at or past end.  Advances *pos
 * and returns true; returns false (leaving *pos alone) when the input is
 * truncated or the encoding is longer than an int32 allows.
 */
extern bool SlGetVarint(const uint8 **pos, const uint8 *end, int32 *value);
extern bool SlGetVarlong(const uint8 **pos, const uint8 *end, int64 *value);
extern bool SlGetUvarint(const uint8 **pos, const uint8 *end, uint32 *value);

#endif							/* SL_VARINT_H */
