/*
 * What a node knows of the replication of one of its partitions, kept in
 * the partition's shared state (partition_state.c) under its spinlock: its
 * role as the metadata last said (leader, follower or neither, in which
 * epochs), and as leader the progress each follower reported.  From it
 * follow the high watermark (Kafka's rules, CLUSTER.md section 4) and the
 * ISR changes the leader should ask for.
 *
 * Pure code over a struct: no locks, no ereport, no palloc, so that the
 * rules are unit-tested (test/unit/test_replica_view.c) and can run under
 * a spinlock.  The callers hold the partition's lock.
 */
#ifndef SL_STORAGE_INTERNAL_REPLICA_VIEW_H
#define SL_STORAGE_INTERNAL_REPLICA_VIEW_H

#include "streamlog/protocol/codec_base.h"

/* As SL_MAX_REPLICAS of replica_progress.h (checked there) */
#define SL_REPLICA_VIEW_MAX 8

typedef enum SlReplicaRole
{
	SL_ROLE_ALONE = 0,			/* no cluster, or not known yet: HW = log end */
	SL_ROLE_LEADER,
	SL_ROLE_FOLLOWER,
	SL_ROLE_NONE				/* a cluster partition this node neither leads
								 * nor follows (offline, or not a replica) */
} SlReplicaRole;

/* The leader's record of one replica (itself included, unused there) */
typedef struct SlReplicaProgress
{
	int32		node_id;
	bool		in_isr;			/* in the ISR the metadata committed */
	bool		pending_add;	/* the leader asked to add it (maximal ISR) */
	int64		log_end;		/* durable log end it reported; -1 none yet */
	int64		last_caught_up_ms;	/* Kafka's lastCaughtUpTimeMs; -1 never */
	int64		last_report_ms; /* when it last reported; -1 never */
	int64		last_report_leader_end; /* the leader's log end then */
} SlReplicaProgress;

typedef struct SlReplicaView
{
	SlReplicaRole role;
	int32		leader;			/* node id, -1 none */
	int32		leader_epoch;	/* -1 until the metadata was seen */
	int32		partition_epoch;
	/* as leader: the log end when it took office in leader_epoch */
	int64		epoch_start_offset;
	/* as follower: the leader's high watermark as last told; -1 unknown */
	int64		leader_high_watermark;
	int32		nreplicas;
	SlReplicaProgress replicas[SL_REPLICA_VIEW_MAX];
} SlReplicaView;

/* The leadership the metadata gives a partition, as the view takes it */
typedef struct SlReplicaLeadership
{
	int32		leader;
	int32		leader_epoch;
	int32		partition_epoch;
	int32		nreplicas;
	const int32 *replicas;
	int32		nisr;
	const int32 *isr;
} SlReplicaLeadership;

/* A view of a node on its own (SL_ROLE_ALONE) */
extern void SlReplicaViewInit(SlReplicaView *view);

/*
 * Take the leadership l as seen by node self_id (log_end: the committed
 * log end now, now_ms the clock).  An older one (smaller leader epoch, or
 * the same with a smaller partition epoch) is ignored: returns false.  A
 * new leader epoch led by self_id starts afresh, as Kafka's
 * makeLeader: every follower's log end unknown, the ISR members caught up
 * now, the epoch starting at log_end.  A new partition epoch alone keeps
 * what the followers reported and forgets pending additions (the
 * committed ISR says what became of them).  Replicas past
 * SL_REPLICA_VIEW_MAX are not tracked (they never count as caught up).
 */
extern bool SlReplicaViewSetLeadership(SlReplicaView *view, int32 self_id,
									   const SlReplicaLeadership *l,
									   int64 log_end, int64 now_ms);

/*
 * The high watermark that follows from the view, the committed log end
 * and the current high watermark, which it never goes below (P9): alone,
 * the log end; leader, the smallest log end over the maximal ISR (its own
 * included; a member that has not reported holds it where it is);
 * follower, the leader's high watermark within the local log end;
 * otherwise where it is, within the log end.
 */
extern int64 SlReplicaViewHighWatermark(const SlReplicaView *view, int64 log_end,
										int64 current_hw);

/*
 * A follower's report to its leader: follower_id holds the log durably up
 * to follower_end in leader_epoch.  Returns SL_REPLICA_OK (0) and records
 * it, or a Kafka error code and changes nothing: NOT_LEADER_OR_FOLLOWER
 * (6) if this node does not lead or follower_id is not a replica,
 * FENCED_LEADER_EPOCH (74) for an older epoch, UNKNOWN_LEADER_EPOCH (75)
 * for a newer one.  Caught-up time as Kafka's Replica: caught up now if at
 * the leader's log end, else as of its previous report if it reached the
 * leader's log end of then.
 */
extern int16 SlReplicaViewReport(SlReplicaView *view, int32 self_id, int32 follower_id,
								 int32 leader_epoch, int64 follower_end,
								 int64 log_end, int64 now_ms);

/*
 * The ISR this leader should ask for now (Kafka's maybeShrinkIsr and
 * maybeExpandIsr in one): the committed ISR without the followers that
 * were not caught up for lag_ms (a follower at the log end never lags),
 * with the followers that are not in it but reached the high watermark
 * and the start of this leader epoch.  Returns false if that is the
 * committed ISR (nothing to ask), or this node does not lead.  isr has
 * room for SL_REPLICA_VIEW_MAX; the leader stays in it.
 */
extern bool SlReplicaViewIsrProposal(const SlReplicaView *view, int32 self_id,
									 int64 log_end, int64 high_watermark,
									 int64 now_ms, int64 lag_ms,
									 int32 *isr, int32 *nisr);

/*
 * The leader asked for isr: members it adds count in the maximal ISR
 * until the answer (SlReplicaViewAskDone) or the next partition epoch
 */
extern void SlReplicaViewAsked(SlReplicaView *view, const int32 *isr, int32 nisr);
extern void SlReplicaViewAskDone(SlReplicaView *view);

/* Is node_id in the maximal ISR? (for streamlog.replicas) */
extern bool SlReplicaViewInMaximalIsr(const SlReplicaView *view, int32 self_id,
									  int32 node_id);

#endif							/* SL_STORAGE_INTERNAL_REPLICA_VIEW_H */
