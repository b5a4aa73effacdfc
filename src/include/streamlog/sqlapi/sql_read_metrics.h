/*
 * What the SQL door hands out, for the shared counters (metrics/counters.h):
 * records and their bytes (key, value and headers as stored: SQL returns
 * no batches) per partition read, counted once per partition and call.
 * Reads served by another node (through its leader) are counted there.
 */
#ifndef SL_SQL_READ_METRICS_H
#define SL_SQL_READ_METRICS_H

#include "streamlog/protocol/records.h"
#include "streamlog/storage/storage.h"

typedef struct SlSqlReadCount
{
	uint64		records;
	uint64		bytes;
} SlSqlReadCount;

/* One more record handed out */
static inline void
SlSqlReadCountAdd(SlSqlReadCount *count, const SlRecord *rec)
{
	count->records++;
	count->bytes += (uint64) Max(rec->key_len, 0) + (uint64) Max(rec->value_len, 0) +
		(uint64) (rec->headers_end - rec->headers);
}

/* The read of topic's partition is over: count it (a fetch) and its records */
extern void SlSqlReadCountDone(const SlTopic *topic, int32 partition,
							   const SlSqlReadCount *count);

#endif							/* SL_SQL_READ_METRICS_H */
