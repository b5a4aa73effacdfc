/*
 * Column numbers of the tables that sql/streamlog--*.sql creates, for the
 * code that reads them directly.  Keep in step with the SQL script.
 */
#ifndef SL_STORAGE_INTERNAL_CATALOG_H
#define SL_STORAGE_INTERNAL_CATALOG_H

#include "access/htup_details.h"
#include "utils/rel.h"

/* A segment table (LIKE streamlog.segment_template) */
#define Natts_segment 11
#define Anum_segment_base_offset 1
#define Anum_segment_last_offset 2
#define Anum_segment_min_timestamp 3
#define Anum_segment_max_timestamp 4
#define Anum_segment_append_time 5
#define Anum_segment_record_count 6
#define Anum_segment_producer_id 7
#define Anum_segment_producer_epoch 8
#define Anum_segment_base_sequence 9
#define Anum_segment_chunk 10
#define Anum_segment_batch 11

/* streamlog.partition, as far as it is read directly */
#define Anum_catalog_partition_topic_id 1
#define Anum_catalog_partition_partition 2
#define Anum_catalog_partition_log_start_offset 3

/* streamlog.segment, the catalogue of segment tables */
#define Anum_catalog_segment_topic_id 1
#define Anum_catalog_segment_partition 2
#define Anum_catalog_segment_seq 3
#define Anum_catalog_segment_relid 4
#define Anum_catalog_segment_base_offset 5
#define Anum_catalog_segment_max_timestamp 6

/*
 * The bytes of a batch one segment row holds at most: what is left of the
 * largest heap tuple after the row's other columns, so that no piece is
 * ever TOASTed (the batch column is STORAGE PLAIN).
 */
#define SL_SEGMENT_ROW_OVERHEAD 128
#define SL_SEGMENT_CHUNK_BYTES (MaxHeapTupleSize - SL_SEGMENT_ROW_OVERHEAD)

/* The unique index on (last_offset, chunk), a segment's only index */
extern Oid	SlSegmentIndexOid(Relation rel);

#endif							/* SL_STORAGE_INTERNAL_CATALOG_H */
