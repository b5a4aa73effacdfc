/*
 * Expiry of committed offsets (Kafka's offsets.retention.minutes, KIP-211),
 * run by the cleaner worker.
 */
#ifndef SL_OFFSETS_EXPIRY_H
#define SL_OFFSETS_EXPIRY_H

/*
 * At most every streamlog.offsets_retention_check_interval: expire the
 * committed offsets of groups without members, in a transaction of its
 * own.  Call outside any transaction; errors are logged, never thrown.
 */
extern void SlOffsetsExpire(void);

#endif							/* SL_OFFSETS_EXPIRY_H */
