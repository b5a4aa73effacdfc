/*
 * What the rest of storage needs of the log cleaner (compaction.c).
 * Internal to storage.
 */
#ifndef SL_STORAGE_INTERNAL_COMPACTION_H
#define SL_STORAGE_INTERNAL_COMPACTION_H

#include "streamlog/storage/storage.h"

/*
 * Take the lock that one transaction at a time holds to change a
 * partition's closed segments (compaction, retention), until the
 * transaction ends.  With nowait, false if another holds it.
 */
extern bool SlCompactionLockPartition(SlPartitionKey key, bool nowait);

#endif							/* SL_STORAGE_INTERNAL_COMPACTION_H */
