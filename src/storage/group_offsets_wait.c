/*
 * A SQL offset commit on a cluster is answered once replicated (README,
 * "SQL consume() on any node"): when a backend's transaction wrote records
 * to a replicated partition of __consumer_offsets (consume(), seek(),
 * reset_offsets(), delete_group(), and a remote consumer's settle), its
 * COMMIT returns only once the partition's high watermark passed them, as
 * Kafka's coordinator answers OffsetCommit after its acks=all append and as
 * PostgreSQL's synchronous replication waits after the local commit.  The
 * wait is bounded by streamlog.offsets_commit_timeout_ms (Kafka's
 * offsets.commit.timeout.ms); at the timeout, on cancel, or when this node
 * stops leading the partition, a WARNING says the commit is durable here
 * but might not have been replicated.
 *
 * Background workers do not wait here: the broker answers Kafka's
 * OffsetCommit by parking the request (handlers/offsets.c), and the other
 * workers write offsets of their own.
 *
 * Interrupts are held while a commit releases its resources, so cancel and
 * termination are looked at by hand, as in SyncRepWaitForLSN.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/offsets_records.h"
#include "streamlog/storage/internal/offsets_topic.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/replica_view.h"
#include "streamlog/storage/storage.h"

/* How often a waiting commit looks at the high watermark */
#define COMMIT_WAIT_POLL_MS 2
/* The partitions of __consumer_offsets one transaction waits for */
#define MAX_WAITED_PARTITIONS 64

typedef struct WaitedPartition
{
	int32		topic_id;
	int32		partition;
	int32		leader_epoch;	/* this node led it in this epoch when writing */
} WaitedPartition;

static WaitedPartition waited[MAX_WAITED_PARTITIONS];
static int	nwaited = 0;
static bool callback_registered = false;

/* True once the high watermark of w reached target, or w cannot get there */
static bool
replicated_or_lost(const WaitedPartition *w, int64 target, bool *lost)
{
	SlPartitionState *state = SlPartitionStateGet(SlMakePartitionKey(w->topic_id, w->partition));
	SlReplicaView view;
	SlPartitionSnapshot snap;

	SlPartitionStateReadView(state, &view, &snap);
	*lost = !(view.role == SL_ROLE_ALONE ||
			  (view.role == SL_ROLE_LEADER && view.leader_epoch == w->leader_epoch));
	return *lost || snap.high_watermark >= target;
}

static void
wait_for_replication(void)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   sl_offsets_commit_timeout_ms);

	for (int i = 0; i < nwaited; i++)
	{
		WaitedPartition *w = &waited[i];
		int64		target = SlPartitionStateLogEnd(SlPartitionStateGet(
			SlMakePartitionKey(w->topic_id, w->partition)));
		bool		lost = false;
		const char *why = NULL;

		while (!replicated_or_lost(w, target, &lost))
		{
			if (ProcDiePending)
			{
				why = "canceling the wait for the replication of the offset commit and terminating connection due to administrator command";
				break;
			}
			if (QueryCancelPending)
			{
				QueryCancelPending = false;
				why = "canceling the wait for the replication of the offset commit due to user request";
				break;
			}
			if (GetCurrentTimestamp() >= deadline)
			{
				why = "the offset commit was not replicated within streamlog.offsets_commit_timeout_ms";
				break;
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 COMMIT_WAIT_POLL_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		if (lost)
			why = "this node stopped leading the group's partition of __consumer_offsets";
		if (why != NULL)
		{
			ereport(WARNING,
					(errmsg("%s", why),
					 errdetail("The transaction has already committed locally, but might not have been replicated.")));
			break;
		}
	}
}

/*
 * After the commit's xact callbacks, once storage released the append's
 * reservation (xact.c: the log end then covers the records), and after the
 * locks are released: wait there.  Any other end forgets the partitions.
 */
static void
offsets_wait_release_callback(ResourceReleasePhase phase, bool isCommit, bool isTopLevel,
							  void *arg)
{
	/* once, for the transaction's own owner (its children come first) */
	if (phase != RESOURCE_RELEASE_AFTER_LOCKS || !isTopLevel ||
		CurrentResourceOwner != TopTransactionResourceOwner)
		return;
	if (isCommit && nwaited > 0 && !IsTransactionState())
		wait_for_replication();
	nwaited = 0;
}

void
SlGroupOffsetsNoteWrite(const SlTopic *offsets_topic, const char *group_id)
{
	int32		partition;
	const SlPartitionLeadership *l;

	if (offsets_topic == NULL || IsBackgroundWorker || offsets_topic->partitions == NULL ||
		offsets_topic->partition_count <= 0)
		return;
	partition = SlOffsetsPartitionFor(group_id, offsets_topic->partition_count);
	l = SlTopicPartitionLeadership(offsets_topic, partition);
	if (l->nreplicas <= 1)
		return;
	for (int i = 0; i < nwaited; i++)
		if (waited[i].topic_id == offsets_topic->topic_id && waited[i].partition == partition)
			return;
	if (nwaited == MAX_WAITED_PARTITIONS)
		return;
	if (!callback_registered)
	{
		RegisterResourceReleaseCallback(offsets_wait_release_callback, NULL);
		callback_registered = true;
	}
	waited[nwaited].topic_id = offsets_topic->topic_id;
	waited[nwaited].partition = partition;
	waited[nwaited++].leader_epoch = l->leader_epoch;
}
