/*
 * SQL: the partition side of transactions for users and operators: the
 * last stable offset of a partition, and aborting a hanging transaction
 * (Kafka's kafka-transactions.sh abort, KIP-664).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "streamlog/sqlapi/cluster_sql.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/transactions.h"
#include "streamlog/storage/txn_cluster.h"
#include "streamlog/storage/txn_offsets.h"
#include "streamlog/storage/txn_state.h"

PG_FUNCTION_INFO_V1(streamlog_last_stable_offset);
PG_FUNCTION_INFO_V1(streamlog_abort_transaction);

Datum
streamlog_last_stable_offset(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		partition = PG_GETARG_INT32(1);
	const SlTopic *topic;

	SlAclCheck(SL_RESOURCE_TOPIC, name, SL_ACL_DESCRIBE);
	topic = SlTopicLookupAndLock(name, AccessShareLock);
	SlTopicCheckPartition(topic, partition);
	PG_RETURN_INT64(SlPartitionLastStableOffset(topic->topic_id, partition));
}

/*
 * A hanging transaction of __consumer_offsets holds offsets of
 * TxnOffsetCommit pending on this node, the group's coordinator: its ABORT
 * drops them, as one the transaction coordinator writes does
 * (txn_cluster.h), or they would wait for a marker that never comes
 */
static void
discard_pending_offsets(const SlTopic *topic, int32 partition, int64 producer_id)
{
	ListCell   *lc;

	foreach(lc, SlTxnOffsetsGroupsOf(producer_id, partition, topic->partition_count))
		SlTxnOffsetsDiscard(producer_id, lfirst(lc));
}

/*
 * Abort the open transaction that starts at start_offset of a partition
 * (streamlog.open_transactions lists them): write its producer's ABORT
 * marker, as Kafka's WriteTxnMarkers does for kafka-transactions.sh abort,
 * for a transaction its coordinator lost track of.  Returns the marker's
 * offset.  CLUSTER_ACTION on the cluster, as Kafka asks for it.
 */
Datum
streamlog_abort_transaction(PG_FUNCTION_ARGS)
{
	char	   *name;
	int32		partition;
	int64		start_offset;
	const SlTopic *topic;
	SlOpenTxn  *open;
	int			nopen;

	SlRequireArg(fcinfo, 0, "topic");
	SlRequireArg(fcinfo, 1, "partition");
	SlRequireArg(fcinfo, 2, "start_offset");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	partition = PG_GETARG_INT32(1);
	start_offset = PG_GETARG_INT64(2);
	SlAclCheck(SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME, SL_ACL_CLUSTER_ACTION);
	topic = SlTopicLookupAndLock(name, AccessShareLock);
	SlTopicCheckPartition(topic, partition);
	SlSqlCheckPartitionLeader(topic, partition);

	open = SlTxnOpenList(topic->topic_id, partition, &nopen);
	for (int i = 0; i < nopen; i++)
		if (open[i].first_offset == start_offset)
		{
			char	   *holder = SlTxnStateCoordinatorHolds(open[i].producer_id,
															topic->topic_id, partition);

			if (holder != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the transaction starting at offset %lld of partition %d of topic \"%s\" is not hanging",
								(long long) start_offset, partition, topic->name),
						 errdetail("The transaction coordinator holds it for transactional id \"%s\" and ends it on every partition at once.",
								   holder),
						 errhint("It ends with its producer's EndTxn, or is aborted once transaction.timeout.ms passes; abort_transaction() is for transactions no coordinator tracks.")));
			/* The coordinator may have ended it while we waited */
			open = SlTxnOpenList(topic->topic_id, partition, &nopen);
			for (int j = 0; j < nopen; j++)
				if (open[j].first_offset == start_offset)
				{
					if (strcmp(topic->name, SL_OFFSETS_TOPIC_NAME) == 0)
						discard_pending_offsets(topic, partition, open[j].producer_id);
					PG_RETURN_INT64(SlTxnWriteMarker(topic, partition, open[j].producer_id,
													 open[j].producer_epoch, false, -1));
				}
			break;
		}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("no open transaction starts at offset %lld of partition %d of topic \"%s\"",
					(long long) start_offset, partition, topic->name),
			 errhint("streamlog.open_transactions lists the open transactions and where each starts.")));
	PG_RETURN_NULL();
}
