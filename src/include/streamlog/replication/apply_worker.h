/*
 * The follower side of partition replication (CLUSTER.md section 3): a
 * launcher that keeps one apply worker per leader this node follows
 * partitions of, and the apply worker that streams that leader's appends
 * from its slot and writes them here.
 */
#ifndef SL_REPLICATION_APPLY_WORKER_H
#define SL_REPLICATION_APPLY_WORKER_H

#include "fmgr.h"

/* Register the launcher (a node of a cluster only); from _PG_init */
extern void SlReplicationLauncherRegister(void);

extern PGDLLEXPORT void SlReplicationLauncherMain(Datum arg);

/* arg: the leader's node id */
extern PGDLLEXPORT void SlApplyWorkerMain(Datum arg);

/*
 * Names, shared by both ends: the slot a leader keeps for follower_id, and
 * the replication origin a follower tracks leader_id's stream with.
 */
#define SL_REPLICATION_SLOT_FORMAT "streamlog_follower_%d"
#define SL_REPLICATION_ORIGIN_FORMAT "streamlog_leader_%d"

#endif							/* SL_REPLICATION_APPLY_WORKER_H */
