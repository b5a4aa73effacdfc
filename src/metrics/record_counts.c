/*
 * Records of stored batches, see record_counts.h.
 *
 * The v2 batch header (Kafka's DefaultRecordBatch): baseOffset int64,
 * batchLength int32 (bytes after itself), partitionLeaderEpoch int32,
 * magic int8 at 16, crc, attributes int16 at 21 (0x20: control batch), ...
 * recordsCount int32 at 57, 61 bytes in all.  A legacy message set entry
 * has the same offset and size first, its magic at 16 too.
 */
#include "c.h"

#include "streamlog/metrics/record_counts.h"

#define LOG_OVERHEAD 12			/* baseOffset + batchLength */
#define V2_HEADER_SIZE 61
#define MAGIC_AT 16
#define ATTRIBUTES_AT 21
#define RECORDS_COUNT_AT 57
#define CONTROL_BATCH 0x20

static uint32
load_u32(const uint8 *p)
{
	return ((uint32) p[0] << 24) | ((uint32) p[1] << 16) | ((uint32) p[2] << 8) | p[3];
}

uint64
SlRecordCountOfBatches(const uint8 *data, size_t len)
{
	uint64		records = 0;
	size_t		pos = 0;

	/* the size and the magic byte at least */
	while (len - pos > MAGIC_AT)
	{
		int32		batch_length = (int32) load_u32(data + pos + 8);
		size_t		size;

		if (batch_length < 0 || (size_t) batch_length > len - pos - LOG_OVERHEAD)
			break;
		size = LOG_OVERHEAD + (size_t) batch_length;
		if (data[pos + MAGIC_AT] != 2)
			records++;
		else if (size >= V2_HEADER_SIZE)
		{
			uint16		attributes = (uint16) ((data[pos + ATTRIBUTES_AT] << 8) |
											   data[pos + ATTRIBUTES_AT + 1]);
			int32		count = (int32) load_u32(data + pos + RECORDS_COUNT_AT);

			if (!(attributes & CONTROL_BATCH) && count > 0)
				records += (uint64) count;
		}
		else
			break;
		pos += size;
	}
	return records;
}
