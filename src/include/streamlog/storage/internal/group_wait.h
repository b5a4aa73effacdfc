/*
 * The wake-up of SQL consumers waiting for records (group_offsets.c), to
 * call wherever a partition's high watermark advances.  Internal to
 * storage.
 */
#ifndef SL_STORAGE_INTERNAL_GROUP_WAIT_H
#define SL_STORAGE_INTERNAL_GROUP_WAIT_H

#include "streamlog/storage/storage.h"

extern void SlGroupWakeConsumers(SlPartitionKey key);

#endif							/* SL_STORAGE_INTERNAL_GROUP_WAIT_H */
