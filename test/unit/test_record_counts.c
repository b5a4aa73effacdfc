/*
 * Records of stored batches as the records-out counters read them
 * (metrics/record_counts.c), from headers alone.
 */
#include "c.h"

#include "streamlog/metrics/record_counts.h"
#include "unit.h"

/* A v2 batch of the given size (>= 61) saying it holds count records */
static void
put_batch(uint8 *p, size_t size, int32 count, uint16 attributes)
{
	uint32		length = (uint32) (size - 12);

	memset(p, 0, size);
	p[8] = (uint8) (length >> 24);
	p[9] = (uint8) (length >> 16);
	p[10] = (uint8) (length >> 8);
	p[11] = (uint8) length;
	p[16] = 2;
	p[21] = (uint8) (attributes >> 8);
	p[22] = (uint8) attributes;
	p[57] = (uint8) ((uint32) count >> 24);
	p[58] = (uint8) ((uint32) count >> 16);
	p[59] = (uint8) ((uint32) count >> 8);
	p[60] = (uint8) count;
}

int
main(void)
{
	static uint8 buf[1024];

	CHECK_EQ_UINT(SlRecordCountOfBatches(buf, 0), 0);

	put_batch(buf, 100, 7, 0);
	CHECK_EQ_UINT(SlRecordCountOfBatches(buf, 100), 7);
	/* two batches, then a control batch (a transaction marker): not counted */
	put_batch(buf + 100, 61, 3, 0);
	put_batch(buf + 161, 80, 1, 0x20);
	CHECK_EQ_UINT(SlRecordCountOfBatches(buf, 241), 10);
	/* a batch cut short (a fetch's last one may be) stops the count */
	CHECK_EQ_UINT(SlRecordCountOfBatches(buf, 150), 7);
	CHECK_EQ_UINT(SlRecordCountOfBatches(buf, 99), 0);
	/* a legacy message set entry counts as one record */
	put_batch(buf, 40 + 12, 0, 0);
	buf[16] = 1;
	CHECK_EQ_UINT(SlRecordCountOfBatches(buf, 52), 1);
	/* a length out of range or a header too short stops it, no overread */
	put_batch(buf, 100, 5, 0);
	buf[8] = 0x80;
	CHECK_EQ_UINT(SlRecordCountOfBatches(buf, 100), 0);
	put_batch(buf, 61, 5, 0);
	buf[11] = 20;				/* a v2 batch of 32 bytes: no record count */
	CHECK_EQ_UINT(SlRecordCountOfBatches(buf, 61), 0);
	/* a negative count counts nothing */
	put_batch(buf, 61, -1, 0);
	CHECK_EQ_UINT(SlRecordCountOfBatches(buf, 61), 0);
	return UNIT_DONE();
}
