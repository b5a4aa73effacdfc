/*
 * A transaction's marker on a partition this node leads, as the
 * coordinator has it written on a cluster (txn_cluster.h): the marker
 * itself, the offsets of TxnOffsetCommit that the marker of a
 * __consumer_offsets partition makes visible on the group's coordinator
 * (this node, its leader), and the wait for the partition's in-sync
 * replicas.
 *
 * A marker of an older coordinator epoch than the producer's newest one
 * here is refused (Kafka's coordinator fencing, in SlTxnWriteMarker: the
 * offsets it would have made visible roll back with it).  A marker
 * written twice (the coordinator retries after a timeout or a change of
 * leader) closes nothing the second time: the producer has no open
 * transaction on the partition any more (txn_index.c), and its pending
 * offsets were taken by the first.  Readers skip control batches.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/offsets_records.h"
#include "streamlog/storage/group_load.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/replica_progress.h"
#include "streamlog/storage/transactions.h"
#include "streamlog/storage/txn_cluster.h"
#include "streamlog/storage/txn_offsets.h"

/* How often a wait looks at the high watermark */
#define REPLICATED_POLL_MS 2

static const SlNamedQuery groups_query = {
	"SELECT DISTINCT group_id FROM streamlog.txn_pending_offset WHERE producer_id = $1 "
	"ORDER BY group_id",
	1, {INT8OID}
};

List *
SlTxnOffsetsGroupsOf(int64 producer_id, int32 partition, int32 partitions)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		values[1];
	uint64		n;
	List	   *all;
	List	   *mine = NIL;
	ListCell   *lc;

	values[0] = Int64GetDatum(producer_id);
	SPI_connect();
	n = SlCatalogRun(&groups_query, values, NULL);
	all = SlCatalogTexts(n, 1, caller);
	SPI_finish();
	foreach(lc, all)
		if (SlOffsetsPartitionFor(lfirst(lc), partitions) == partition)
			mine = lappend(mine, lfirst(lc));
	return mine;
}

int64
SlTxnApplyMarker(const SlTopic *topic, int32 partition, int64 producer_id,
				 int16 producer_epoch, bool commit, int32 coordinator_epoch,
				 int32 *leader_epoch)
{
	const SlPartitionLeadership *l;

	SlTopicCheckPartition(topic, partition);
	l = topic->partitions != NULL ? SlTopicPartitionLeadership(topic, partition) : NULL;
	if (l != NULL && l->leader != sl_node_id)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node %d does not lead partition %d of topic \"%s\"",
						sl_node_id, partition, topic->name),
				 errdetail("Its leader is node %d.", l->leader),
				 errhint("The transaction coordinator writes the marker on the partition's leader; it retries there.")));
	*leader_epoch = l != NULL ? l->leader_epoch : 0;
	if (strcmp(topic->name, SL_OFFSETS_TOPIC_NAME) == 0)
	{
		/*
		 * The committed offsets this makes must not be overwritten by a load
		 * of the partition that read its log before them (group_load.h)
		 */
		if (l != NULL && !SlGroupOffsetsLoaded(topic, partition, l->leader_epoch))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("node %d still loads partition %d of %s", sl_node_id, partition,
							SL_OFFSETS_TOPIC_NAME),
					 errhint("The transaction coordinator retries the marker once it is loaded.")));

		List	   *groups = SlTxnOffsetsGroupsOf(producer_id, partition,
												  topic->partition_count);
		ListCell   *lc;

		foreach(lc, groups)
		{
			if (commit)
				(void) SlTxnOffsetsCommit(producer_id, lfirst(lc), false);
			else
				SlTxnOffsetsDiscard(producer_id, lfirst(lc));
		}
	}
	return SlTxnWriteMarker(topic, partition, producer_id, producer_epoch, commit,
							coordinator_epoch);
}

bool
SlTxnWaitReplicated(int32 topic_id, int32 partition, int32 leader_epoch, int64 offset,
					int timeout_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	for (;;)
	{
		const SlTopic *topic = SlTopicLookupById(topic_id);
		bool		still_leader = false;

		if (topic == NULL || partition < 0 || partition >= topic->partition_count)
			return false;
		/* Standalone, or a partition of one replica: the commit was enough */
		if (topic->partitions == NULL)
			return true;
		if (SlReplicaAcked(topic, partition, leader_epoch, offset + 1, &still_leader))
			return true;
		if (!still_leader || GetCurrentTimestamp() >= deadline)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 REPLICATED_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
