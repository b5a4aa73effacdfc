/*
 * A partition leader asks the controller to change the partition's ISR
 * (Kafka's AlterPartition, KIP-497): forwarded to the controller like the
 * topic requests (cluster_submit.c) and answered once committed and applied
 * here.  The controller accepts it only if the caller leads the partition
 * in leader_epoch and partition_epoch is the current one, every new member
 * is a replica and unfenced, and the leader stays in it; the answer is a
 * Kafka error code (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION = stale
 * partition epoch, INELIGIBLE_REPLICA, NOT_CONTROLLER after retries...).
 * Owner: controller.
 */
#ifndef SL_METADATA_PARTITION_CHANGE_H
#define SL_METADATA_PARTITION_CHANGE_H

extern int16 SlClusterAlterPartition(int32 topic_id, int32 partition,
									 int32 leader_epoch, int32 partition_epoch,
									 const int32 *isr, int nisr,
									 int timeout_ms, char **message);

#endif							/* SL_METADATA_PARTITION_CHANGE_H */
