/*-------------------------------------------------------------------------
 * group_metadata.h
 *	  Storing the Kafka group coordinator's group metadata in
 *	  __consumer_offsets (GroupMetadataKey/Value records), as Kafka's
 *	  coordinator does after a rebalance completes and when a group
 *	  empties.
 *
 * IDENTIFICATION
 *	  src/include/streamlog/server/group_metadata.h
 *-------------------------------------------------------------------------
 */
#ifndef SL_GROUP_METADATA_H
#define SL_GROUP_METADATA_H

/*
 * In a request's transaction, after the coordinator handled a request of
 * group_id: store the group's metadata if it changed.  Never waits.
 */
extern void SlGroupMetadataStore(const char *group_id);

/*
 * Broker worker 0, outside any transaction, each time round its loop: at
 * most every SL_GROUP_TIMER_MS, store the metadata of every group that
 * changed without a request (its members' sessions expired), in a
 * transaction of its own.  An error is logged, never thrown.
 */
extern void SlGroupMetadataStoreChanged(void);

#endif							/* SL_GROUP_METADATA_H */
