/*
 * The key index of a topic (key_index.c), as the rest of storage uses it:
 * writing entries as batches are appended, and walking the entries of one
 * key.  Internal to storage.
 */
#ifndef SL_STORAGE_INTERNAL_KEY_INDEX_H
#define SL_STORAGE_INTERNAL_KEY_INDEX_H

#include "nodes/execnodes.h"
#include "utils/relcache.h"

#include "streamlog/storage/storage.h"

/* The key index table of a topic; InvalidOid if it has none */
extern Oid	SlKeyIndexRelid(int32 topic_id);

/*
 * An open key index, to add the entries of appended batches.  Entries are
 * gathered and written sorted by key hash, many rows at a time (see
 * key_index.c); SlKeyIndexClose writes what is left.
 */
typedef struct SlKeyIndexEntry
{
	int64		key_hash;
	int64		offset;
	int32		partition;
} SlKeyIndexEntry;

typedef struct SlKeyIndexWriter
{
	Relation	rel;
	Relation	index;
	IndexInfo  *index_info;
	SlKeyIndexEntry *entries;
	int			nentries;
	struct TupleTableSlot **slots;	/* made as needed */
	int			nslots;
	MemoryContext context;		/* of entries and slots */
} SlKeyIndexWriter;

/* Open (RowExclusiveLock) and close a topic's key index table, relid */
extern void SlKeyIndexOpen(SlKeyIndexWriter *writer, Oid relid);
extern void SlKeyIndexClose(SlKeyIndexWriter *writer);

/*
 * Add an entry for every keyed record of a stored batch (its base offset
 * already assigned) of partition.  Records without a key get none.
 */
extern void SlKeyIndexAddBatch(SlKeyIndexWriter *writer, int32 partition,
							   const uint8 *batch, size_t len);

/*
 * The candidates of a key: entries with its hash, of one partition or of
 * every one (partition -1), newest first within each partition and the
 * partitions from the highest down.  Entries may be stale (their record
 * compacted or past retention) or another key's (a hash collision): the
 * caller reads the record at the offset and checks its key.
 */
typedef struct SlKeyIndexCandidates SlKeyIndexCandidates;

extern SlKeyIndexCandidates *SlKeyIndexCandidatesBegin(Oid relid, const uint8 *key,
														int32 key_len, int32 partition);
extern bool SlKeyIndexCandidatesNext(SlKeyIndexCandidates *c, int32 *partition,
									 int64 *offset);

/*
 * Go on below partition: its current record is found, and its older
 * entries (a hot key may have millions) need not be walked
 */
extern void SlKeyIndexCandidatesSkipPartition(SlKeyIndexCandidates *c, int32 partition);
extern void SlKeyIndexCandidatesEnd(SlKeyIndexCandidates *c);

/*
 * Create a topic's key index: empty for a new topic (fill_from NULL), else
 * filled from the log of fill_from as it is now.  Drop it (if it exists).
 */
extern void SlKeyIndexCreate(int32 topic_id, const SlTopic *fill_from);
extern void SlKeyIndexDrop(int32 topic_id);

#endif							/* SL_STORAGE_INTERNAL_KEY_INDEX_H */
