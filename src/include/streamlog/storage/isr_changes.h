/*
 * The ISR changes a partition leader asks for (Kafka's maybeShrinkIsr and
 * maybeExpandIsr), as the leader's replication view (replica_progress.c)
 * says: a follower not caught up for streamlog.replica_lag_time_max_ms
 * leaves the ISR, one that reached the high watermark in the current
 * leader epoch joins it.  The ISR manager (bgworkers/isr_manager.c) asks
 * the controller for them (metadata/partition_change.h), one partition at
 * a time, from a process that may wait.  Everything here needs a
 * transaction (the leaderships come from the catalog).
 */
#ifndef SL_STORAGE_ISR_CHANGES_H
#define SL_STORAGE_ISR_CHANGES_H

#include "streamlog/storage/replica_progress.h"

typedef struct SlIsrChange
{
	int32		topic_id;
	int32		partition;
	int32		leader_epoch;	/* the leadership it was computed in */
	int32		partition_epoch;
	int32		nisr;
	int32		isr[SL_MAX_REPLICAS];	/* the ISR to ask for, leader included */
	int32		nisr_before;	/* the ISR's size when it was computed */
} SlIsrChange;

/*
 * The changes this node's leaderships need now, up to max, of the
 * partitions whose state is loaded
 */
extern int	SlIsrChangesNeeded(int64 lag_ms, SlIsrChange *out, int max);

/*
 * About to ask for change: the followers it adds count in the high
 * watermark from now on (KIP-497's maximal ISR), until the metadata has
 * them in the ISR or the controller refused them (refused: a definite
 * no; after a timeout they keep counting, the change may have been taken)
 */
extern void SlIsrChangeAsking(const SlIsrChange *change);
extern void SlIsrChangeAnswered(const SlIsrChange *change, bool refused);

/*
 * Load the state of every partition this node leads with other replicas,
 * so that their followers are watched even before anyone touched them
 */
extern void SlIsrLoadLeaderships(void);

/*
 * Members of the partition's maximal ISR as this node's view has it (1 on
 * a node of its own), for Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND
 */
extern int	SlReplicaMaximalIsrSize(const SlTopic *topic, int32 partition);

/* The ISR manager's latch, woken when a follower may join (-1: none) */
extern void SlIsrManagerSetProcno(int procno);

extern Size SlReplicaProgressShmemSize(void);
extern void SlReplicaProgressShmemInit(void);

#endif							/* SL_STORAGE_ISR_CHANGES_H */
