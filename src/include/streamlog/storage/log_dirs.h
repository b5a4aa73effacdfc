/*
 * The one log directory of a node, as Kafka's DescribeLogDirs shows it
 * (storage/log_dirs.c): the data directory, the volume it is on, and the
 * bytes each partition with a replica here takes (its segment relations).
 */
#ifndef SL_STORAGE_LOG_DIRS_H
#define SL_STORAGE_LOG_DIRS_H

#include "postgres.h"

typedef struct SlLogDirPartition
{
	char	   *topic;
	int32		partition;
	int64		size_bytes;		/* segments with their indexes and TOAST */
} SlLogDirPartition;

/*
 * The partitions with a replica on node node_id (all on a node of its
 * own), ordered by topic and partition; palloc'd in the current memory
 * context, *count rows.  Runs in the caller's transaction.
 */
extern SlLogDirPartition *SlLogDirPartitions(int32 node_id, int *count);

/* The log directory: the data directory's absolute path */
extern const char *SlLogDirPath(void);

/* Total and usable bytes of its volume (statvfs); false, -1 if unknown */
extern bool SlLogDirSpace(int64 *total_bytes, int64 *usable_bytes);

#endif							/* SL_STORAGE_LOG_DIRS_H */
