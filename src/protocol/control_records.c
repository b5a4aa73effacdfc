/*
 * Control records (control_records.h): the key and value of a
 * transaction marker.
 */
#include "streamlog/protocol/control_records.h"
#include "streamlog/protocol/records.h"

#define CONTROL_VERSION 0

void
SlControlKeyEncode(uint8 *out, int16 type)
{
	SlStoreInt16(out, CONTROL_VERSION);
	SlStoreInt16(out + 2, type);
}

void
SlControlValueEncode(uint8 *out, int32 coordinator_epoch)
{
	SlStoreInt16(out, CONTROL_VERSION);
	SlStoreInt32(out + 2, coordinator_epoch);
}

bool
SlControlKeyDecode(const uint8 *key, int32 len, int16 *type)
{
	if (key == NULL || len < SL_CONTROL_KEY_SIZE || SlLoadInt16(key) < 0)
		return false;
	*type = SlLoadInt16(key + 2);
	return *type == SL_CONTROL_TYPE_ABORT || *type == SL_CONTROL_TYPE_COMMIT;
}

bool
SlControlValueDecode(const uint8 *value, int32 len, int32 *coordinator_epoch)
{
	if (value == NULL || len < SL_CONTROL_VALUE_SIZE || SlLoadInt16(value) < 0)
		return false;
	*coordinator_epoch = SlLoadInt32(value + 2);
	return true;
}
