/*
 * How many records the stored batches a Fetch returns hold, for the
 * records-out counters: read from each batch's header, without decoding a
 * record.  Pure code (unit-tested as frontend code).
 */
#ifndef SL_METRICS_RECORD_COUNTS_H
#define SL_METRICS_RECORD_COUNTS_H

#include "c.h"

/*
 * Records of the RecordBatch v2 batches in data (len bytes, batches one
 * after the other), control batches (transaction markers) left out, as
 * clients do not see them.  A batch of another magic (a legacy message set
 * entry) counts as one record.  Stops at the first batch not wholly in
 * data, or whose header is out of range.
 */
extern uint64 SlRecordCountOfBatches(const uint8 *data, size_t len);

#endif							/* SL_METRICS_RECORD_COUNTS_H */
