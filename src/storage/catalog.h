/*
 * Column numbers of the tables that sql/streamlog--*.sql creates, for the
 * code that reads them directly.  Keep in step with the SQL script.
 */
#ifndef SL_CATALOG_H
#define SL_CATALOG_H

#include "utils/rel.h"

/* A segment table (LIKE streamlog.segment_template) */
#define Natts_segment 9
#define Anum_segment_base_offset 1
#define Anum_segment_last_offset 2
#define Anum_segment_min_timestamp 3
#define Anum_segment_max_timestamp 4
#define Anum_segment_record_count 5
#define Anum_segment_producer_id 6
#define Anum_segment_producer_epoch 7
#define Anum_segment_base_sequence 8
#define Anum_segment_batch 9

/* The unique index on last_offset, a segment's only index */
extern Oid	SlSegmentIndexOid(Relation rel);

#endif							/* SL_CATALOG_H */
