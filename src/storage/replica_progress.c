/*
 * Followers' durable progress on the leader, the replicated high watermark
 * and acks=all, see replica_progress.h.
 *
 * Everything is in the partition's shared state (partition_state.c, under
 * its spinlock), in its replication view (replica_view.c has the rules):
 * a report is a few stores and a recomputation of the high watermark, no
 * table write.  Each function first hands the caller's topic to the view,
 * so that a leadership the caller already sees (a newer leader epoch, an
 * ISR change) counts before the report does.
 *
 * The ISR manager (bgworkers/isr_manager.c) is woken here when a follower
 * outside the ISR reached the high watermark, so that it asks the
 * controller to add it without waiting for its next round.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/shmem.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/replica_view.h"
#include "streamlog/storage/isr_changes.h"
#include "streamlog/storage/replica_progress.h"
#include "streamlog/storage/storage.h"

StaticAssertDecl(SL_REPLICA_VIEW_MAX == SL_MAX_REPLICAS,
				 "the view tracks as many replicas as a partition may have");
StaticAssertDecl(SL_MAX_REPLICAS_GUC == SL_MAX_REPLICAS,
				 "streamlog.min_insync_replicas goes up to the most replicas");

#define NO_PROCNO ((uint32) -1)

/* Who to wake when the ISR may grow */
typedef struct SlReplicaShared
{
	pg_atomic_uint32 isr_manager_procno;
} SlReplicaShared;

static SlReplicaShared *replica_shared = NULL;

Size
SlReplicaProgressShmemSize(void)
{
	return MAXALIGN(sizeof(SlReplicaShared));
}

void
SlReplicaProgressShmemInit(void)
{
	bool		found;

	replica_shared = ShmemInitStruct("streamlog replica progress",
									 SlReplicaProgressShmemSize(), &found);
	if (!found)
		pg_atomic_init_u32(&replica_shared->isr_manager_procno, NO_PROCNO);
}

void
SlIsrManagerSetProcno(int procno)
{
	if (replica_shared != NULL)
		pg_atomic_write_u32(&replica_shared->isr_manager_procno,
							procno < 0 ? NO_PROCNO : (uint32) procno);
}

static void
wake_isr_manager(void)
{
	uint32		procno;

	if (replica_shared == NULL)
		return;
	procno = pg_atomic_read_u32(&replica_shared->isr_manager_procno);
	if (procno != NO_PROCNO)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

static int64
now_ms(void)
{
	return SlTimestampToKafka(GetCurrentTimestamp());
}

/* The partition's shared state, told the leadership the caller sees */
static SlPartitionState *
partition_state(const SlTopic *topic, int32 partition)
{
	SlPartitionState *state;

	SlTopicCheckPartition(topic, partition);
	state = SlPartitionStateGet(SlMakePartitionKey(topic->topic_id, partition));
	if (topic->partitions != NULL)
		SlPartitionStateNoteLeadership(state, SlTopicPartitionLeadership(topic, partition));
	return state;
}

typedef struct ReportArg
{
	int32		follower_id;
	int32		leader_epoch;
	int64		log_end;
	int64		now_ms;
	int16		error;
	bool		outside_isr;	/* the follower is not in the maximal ISR */
} ReportArg;

static void
report_update(SlReplicaView *view, int64 log_end, void *arg)
{
	ReportArg  *a = arg;

	a->error = SlReplicaViewReport(view, sl_node_id, a->follower_id, a->leader_epoch,
								   a->log_end, log_end, a->now_ms);
	a->outside_isr = a->error == SL_REPLICA_OK &&
		!SlReplicaViewInMaximalIsr(view, sl_node_id, a->follower_id);
}

int16
SlReplicaProgressReport(const SlTopic *topic, int32 partition, int32 follower_id,
						int32 leader_epoch, int64 log_end, int64 *high_watermark)
{
	SlPartitionState *state = partition_state(topic, partition);
	ReportArg	arg = {follower_id, leader_epoch, log_end, now_ms(), 0, false};
	int64		hw = SlPartitionStateUpdateView(state, report_update, &arg);

	*high_watermark = arg.error == SL_REPLICA_NOT_LEADER ? -1 : hw;
	/* Kafka's maybeExpandIsr: at the HW, it may join (the manager checks) */
	if (arg.outside_isr && log_end >= hw)
		wake_isr_manager();
	return arg.error;
}

static void
set_leader_hw(SlReplicaView *view, int64 log_end, void *arg)
{
	int64		hw = *(int64 *) arg;

	if (hw > view->leader_high_watermark)
		view->leader_high_watermark = hw;
}

void
SlReplicaSetHighWatermark(const SlTopic *topic, int32 partition, int64 high_watermark)
{
	SlPartitionState *state = partition_state(topic, partition);

	SlPartitionStateUpdateView(state, set_leader_hw, &high_watermark);
}

bool
SlReplicaAcked(const SlTopic *topic, int32 partition, int32 leader_epoch, int64 offset,
			   bool *still_leader)
{
	SlPartitionState *state = partition_state(topic, partition);
	SlReplicaView view;
	SlPartitionSnapshot snap;

	SlPartitionStateReadView(state, &view, &snap);
	/* A node of its own leads everything, in epoch 0 */
	*still_leader = view.role == SL_ROLE_ALONE ||
		(view.role == SL_ROLE_LEADER && view.leader_epoch == leader_epoch);
	return *still_leader && snap.high_watermark >= offset;
}

int
SlReplicaMaximalIsrSize(const SlTopic *topic, int32 partition)
{
	SlPartitionState *state = partition_state(topic, partition);
	SlReplicaView view;
	SlPartitionSnapshot snap;
	int			n = 0;

	SlPartitionStateReadView(state, &view, &snap);
	if (view.role == SL_ROLE_ALONE)
		return 1;
	for (int32 i = 0; i < view.nreplicas; i++)
		if (SlReplicaViewInMaximalIsr(&view, sl_node_id, view.replicas[i].node_id))
			n++;
	return n;
}

int
SlReplicaStates(const SlTopic *topic, int32 partition, SlReplicaState *out, int max)
{
	SlPartitionState *state = partition_state(topic, partition);
	SlReplicaView view;
	SlPartitionSnapshot snap;
	int64		now = now_ms();
	int			n = 0;

	SlPartitionStateReadView(state, &view, &snap);
	if (view.role == SL_ROLE_ALONE)
	{
		if (max > 0)
		{
			out[0].node_id = sl_node_id;
			out[0].log_end = snap.log_end;
			out[0].last_caught_up_ms = now;
			out[0].in_maximal_isr = true;
			n = 1;
		}
		return n;
	}
	for (int32 i = 0; i < view.nreplicas && n < max; i++)
	{
		const SlReplicaProgress *r = &view.replicas[i];
		SlReplicaState *s = &out[n++];

		s->node_id = r->node_id;
		s->in_maximal_isr = SlReplicaViewInMaximalIsr(&view, sl_node_id, r->node_id);
		if (view.role == SL_ROLE_LEADER && r->node_id == sl_node_id)
		{
			s->log_end = snap.log_end;
			s->last_caught_up_ms = now;
		}
		else if (view.role == SL_ROLE_LEADER)
		{
			s->log_end = r->log_end;
			s->last_caught_up_ms = r->last_caught_up_ms;
		}
		else
		{
			/* only the leader knows the followers' progress */
			s->log_end = r->node_id == sl_node_id ? snap.log_end : -1;
			s->last_caught_up_ms = -1;
		}
	}
	return n;
}

/* The ISR manager's side */

int
SlIsrChangesNeeded(int64 lag_ms, SlIsrChange *out, int max)
{
	SlPartitionKey *keys = palloc(sizeof(SlPartitionKey) * Max(sl_max_partitions, 1));
	int			nkeys = SlPartitionStateListLoaded(keys, sl_max_partitions);
	int64		now = now_ms();
	int			n = 0;

	for (int i = 0; i < nkeys && n < max; i++)
	{
		SlPartitionState *state = SlPartitionStateFind(keys[i]);
		SlReplicaView view;
		SlPartitionSnapshot snap;
		SlIsrChange *c = &out[n];

		/*
		 * Only what this node leads with others, as the catalog says now:
		 * reading it also tells a deposed leader's waiting produces
		 */
		if (state == NULL)
			continue;
		SlPartitionStateReadView(state, &view, &snap);
		if (view.role != SL_ROLE_LEADER || view.nreplicas < 2)
			continue;
		state = SlPartitionStateGet(keys[i]);
		SlPartitionStateReadView(state, &view, &snap);
		if (view.role != SL_ROLE_LEADER || view.nreplicas < 2)
			continue;
		if (!SlReplicaViewIsrProposal(&view, sl_node_id, snap.log_end, snap.high_watermark,
									  now, lag_ms, c->isr, &c->nisr))
			continue;
		c->topic_id = keys[i].topic_id;
		c->partition = keys[i].partition;
		c->leader_epoch = view.leader_epoch;
		c->partition_epoch = view.partition_epoch;
		c->nisr_before = 0;
		for (int r = 0; r < view.nreplicas && r < SL_REPLICA_VIEW_MAX; r++)
			c->nisr_before += view.replicas[r].in_isr ? 1 : 0;
		n++;
	}
	pfree(keys);
	return n;
}

typedef struct AskArg
{
	const SlIsrChange *change;
	bool		done;
} AskArg;

static void
ask_update(SlReplicaView *view, int64 log_end, void *arg)
{
	AskArg	   *a = arg;

	/* only for the leadership the change was made for */
	if (view->leader_epoch != a->change->leader_epoch ||
		view->partition_epoch != a->change->partition_epoch)
		return;
	if (a->done)
		SlReplicaViewAskDone(view);
	else
		SlReplicaViewAsked(view, a->change->isr, a->change->nisr);
}

void
SlIsrChangeAsking(const SlIsrChange *change)
{
	AskArg		arg = {change, false};

	SlPartitionStateUpdateView(SlPartitionStateGet(SlMakePartitionKey(change->topic_id,
																	   change->partition)),
							   ask_update, &arg);
}

void
SlIsrChangeAnswered(const SlIsrChange *change, bool refused)
{
	AskArg		arg = {change, true};
	SlPartitionState *state;

	/*
	 * Taken: the committed ISR has the additions, and the new partition
	 * epoch, read here if the catalog has it, forgets the pending ones.
	 * Refused: they are not in the ISR.  Otherwise (no answer in time) they
	 * may be: they keep counting until the catalog says.
	 */
	state = SlPartitionStateGet(SlMakePartitionKey(change->topic_id, change->partition));
	if (refused)
		SlPartitionStateUpdateView(state, ask_update, &arg);
}

void
SlIsrLoadLeaderships(void)
{
	static const SlNamedQuery q = {
		"SELECT topic_id, partition FROM streamlog.partition "
		"WHERE leader_id = $1 AND cardinality(replicas) > 1",
		1, {INT4OID}
	};
	Datum		values[1] = {Int32GetDatum(sl_node_id)};
	SlPartitionKey *keys;
	uint64		n;

	SPI_connect();
	n = SlCatalogRun(&q, values, NULL);
	keys = MemoryContextAlloc(TopTransactionContext, sizeof(SlPartitionKey) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
		keys[i] = SlMakePartitionKey(SlCatalogInt32(i, 1, 0), SlCatalogInt32(i, 2, 0));
	SPI_finish();
	/* loaded with the leadership the catalog gives, or refreshed from it */
	for (uint64 i = 0; i < n; i++)
		(void) SlPartitionStateGet(keys[i]);
	pfree(keys);
}
