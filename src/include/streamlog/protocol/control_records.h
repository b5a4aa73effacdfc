/*
 * The record of a control batch (a transaction marker, KIP-98): key and
 * value of its one record, as Kafka's ControlRecordType and
 * EndTransactionMarker encode them.
 *
 *   key:   version int16 (0), type int16 (0 = ABORT, 1 = COMMIT)
 *   value: version int16 (0), coordinatorEpoch int32
 *
 * A key of a later version still starts with the type (Kafka reads it and
 * warns); fewer bytes than that are malformed.
 */
#ifndef SL_CONTROL_RECORDS_H
#define SL_CONTROL_RECORDS_H

#include "streamlog/protocol/codec_base.h"

#define SL_CONTROL_TYPE_ABORT 0
#define SL_CONTROL_TYPE_COMMIT 1

#define SL_CONTROL_KEY_SIZE 4
#define SL_CONTROL_VALUE_SIZE 6

/* Encode the key (SL_CONTROL_KEY_SIZE bytes) and value of a marker */
extern void SlControlKeyEncode(uint8 *out, int16 type);
extern void SlControlValueEncode(uint8 *out, int32 coordinator_epoch);

/*
 * Decode a control record's key / value (len -1 = null); false if it is
 * malformed
 */
extern bool SlControlKeyDecode(const uint8 *key, int32 len, int16 *type);
extern bool SlControlValueDecode(const uint8 *value, int32 len, int32 *coordinator_epoch);

#endif							/* SL_CONTROL_RECORDS_H */
