/*
 * The answers of the transaction coordinator's APIs that change an id's
 * state (InitProducerId with a transactional id, AddPartitionsToTxn,
 * AddOffsetsToTxn, EndTxn) on a cluster: sent only once the id's partition
 * of __transaction_state holds the change on its in-sync replicas, as
 * Kafka's coordinator answers after its acks=all append
 * (transaction.state.log.min.isr).  TxnOffsetCommit, on the group's
 * coordinator, waits the same way for the group's partition of
 * __consumer_offsets, which holds the pending offsets (txn_offsets.h).  Otherwise a coordinator killed right
 * after answering EndTxn could leave its successor a transaction still
 * Ongoing, which its timeout would abort: a commit acknowledged, then
 * lost.
 *
 * These handlers are batchable (handlers.h) for that: each encodes its
 * answer into a buffer of its own (SlTxnAnswerStart) and names the id it
 * changed (SlTxnAnswerWaitFor); after the commit SlRespondTxnAnswer sends
 * it, or parks the request until the high watermark of the partition
 * passes the log end it had right after the commit (SlRecheckTxnAnswer).
 * This node no longer leading the partition: NOT_COORDINATOR, whose
 * client finds the new coordinator, which loaded whatever its replica
 * holds; no replicas in time: COORDINATOR_NOT_AVAILABLE, which clients
 * retry (a retried EndTxn finds its Prepare or Complete state).
 * Standalone nothing waits.
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/protocol/txn_log_records.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/kafka_errors.h"
#include "streamlog/storage/replica_log.h"
#include "streamlog/storage/replica_progress.h"
#include "streamlog/storage/txn_cluster.h"
#include "streamlog/storage/txn_state.h"
#include "streamlog/storage/wakeups.h"

/* How long an answer may wait for the in-sync replicas */
#define TXN_ANSWER_TIMEOUT_MS 5000

typedef struct TxnAnswer
{
	SlReader	body;			/* the request's body, unread: for an error */
	StringInfoData buf;
	SlWriter	out;
	bool		wait;
	int32		topic_id;
	int32		partition;
	int32		leader_epoch;
	int64		target;			/* -1 until the first look after the commit */
} TxnAnswer;

SlWriter *
SlTxnAnswerStart(SlRequest *req, const SlReader *body)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(req->context);
	TxnAnswer  *a = palloc0(sizeof(TxnAnswer));

	a->body = *body;
	initStringInfo(&a->buf);
	SlWriterInit(&a->out, &a->buf);
	a->target = -1;
	req->handler_state = a;
	MemoryContextSwitchTo(oldcxt);
	return &a->out;
}

/* Wait for the in-sync replicas of a partition this node leads, if it has others */
static void
wait_for_partition(SlRequest *req, const SlTopic *topic, int32 partition)
{
	TxnAnswer  *a = req->handler_state;
	const SlPartitionLeadership *l = SlTopicPartitionLeadership(topic, partition);

	if (l->leader != sl_node_id || l->nreplicas <= 1)
		return;
	a->wait = true;
	a->topic_id = topic->topic_id;
	a->partition = partition;
	a->leader_epoch = l->leader_epoch;
}

void
SlTxnAnswerWaitFor(SlRequest *req, const char *transactional_id)
{
	const SlTopic *topic;

	if (req->handler_state == NULL || !SlClusterEnabled())
		return;
	topic = SlTopicLookup(SL_TRANSACTION_STATE_TOPIC_NAME, true);
	if (topic == NULL || topic->partitions == NULL || topic->partition_count <= 0)
		return;
	wait_for_partition(req, topic,
					   SlTxnLogPartitionFor(transactional_id, topic->partition_count));
}

void
SlTxnAnswerWaitForGroup(SlRequest *req, const char *group_id)
{
	const SlTopic *topic;

	if (req->handler_state == NULL || !SlClusterEnabled())
		return;
	topic = SlTopicLookup(SL_OFFSETS_TOPIC_NAME, true);
	if (topic == NULL || topic->partitions == NULL || topic->partition_count <= 0)
		return;
	wait_for_partition(req, topic, SlOffsetsGroupPartition(group_id, topic->partition_count));
}

static void
answer_error(SlRequest *req, SlWriter *out, int16 error, const char *message)
{
	TxnAnswer  *a = req->handler_state;
	SlReader	body = a->body;

	if (!SlErrorResponseEncode(&body, req->api_key, req->api_version, error,
							   SlStrFromCString(message), out))
		out->error = "could not encode the error response";
}

void
SlRespondTxnAnswer(SlRequest *req, SlWriter *out, ErrorData *error, bool own_error)
{
	TxnAnswer  *a = req->handler_state;

	if (a == NULL)
	{
		req->send_response = false;
		req->close_after = true;
		return;
	}
	if (error)
	{
		answer_error(req, out, SlKafkaErrorForSqlstate(error->sqlerrcode, req->api_key),
					 error->message);
		return;
	}
	/*
	 * A Prepare state stored (EndTxn, or InitProducerId fencing a zombie):
	 * the coordinator's worker writes the markers, woken now that it can see
	 * the state (before the commit it would find nothing, and sleep)
	 */
	if (req->api_key == SL_API_END_TXN || req->api_key == SL_API_INIT_PRODUCER_ID)
		SlTxnCoordinatorWake();
	if (a->wait)
	{
		req->state = SL_REQUEST_PARKED;
		req->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													TXN_ANSWER_TIMEOUT_MS);
		return;
	}
	SlWriteRaw(out, a->buf.data, a->buf.len);
}

void
SlRecheckTxnAnswer(SlRequest *req, SlWriter *out)
{
	TxnAnswer  *a = req->handler_state;
	const SlTopic *topic = SlTopicLookupById(a->topic_id);
	bool		still_leader = false;

	if (topic != NULL && a->partition >= topic->partition_count)
		topic = NULL;
	if (topic != NULL)
	{
		/* the first look, right after the commit: the log end holds its record */
		if (a->target < 0)
			a->target = SlPartitionLogEnd(topic, a->partition);
		SlRequestWaitOn(req, SlWaitKeyForPartition(SlMakePartitionKey(topic->topic_id,
																	  a->partition)));
		if (SlReplicaAcked(topic, a->partition, a->leader_epoch, a->target, &still_leader))
		{
			SlWaitSetClear(&req->waiting_on);
			req->state = SL_REQUEST_DONE;
			SlWriteRaw(out, a->buf.data, a->buf.len);
			return;
		}
	}
	if (topic != NULL && still_leader && !req->final_attempt)
	{
		req->state = SL_REQUEST_PARKED;
		return;
	}
	SlWaitSetClear(&req->waiting_on);
	req->state = SL_REQUEST_DONE;
	answer_error(req, out,
				 still_leader ? SL_ERR_COORDINATOR_NOT_AVAILABLE : SL_ERR_NOT_COORDINATOR,
				 still_leader ?
				 "The change was not replicated in time." :
				 "This node stopped leading the partition that holds the change.");
}
