/*
 * The transaction APIs of the coordinator: AddPartitionsToTxn (24),
 * AddOffsetsToTxn (25), EndTxn (26) and TxnOffsetCommit (28), served by
 * server/txn/coordinator.c while streamlog.transaction_coordinator is on
 * (on a cluster, for the ids this node coordinates:
 * server/txn/coordinator_cluster.h).  The first three are answered once
 * their change is replicated (txn_answer.c).
 *
 * AddPartitionsToTxn v0-3 is what producers send; v4+ (KIP-890, batched
 * by brokers, verify_only) is a broker's call and gets
 * CLUSTER_AUTHORIZATION_FAILED, as Kafka answers a client.  PRODUCER_FENCED
 * (90) exists from v2 of these APIs: older versions get
 * INVALID_PRODUCER_EPOCH, as Kafka maps it.
 *
 * TxnOffsetCommit (28) goes to the group's coordinator: this node
 * standalone, on a cluster the leader of the group's partition of
 * __consumer_offsets, which need not be the transaction's coordinator
 * (server/txn/coordinator_cluster.h).
 *
 * Each needs WRITE on the transactional id, as in Kafka
 * (TRANSACTIONAL_ID_AUTHORIZATION_FAILED without it), before the group's
 * and the topics' privileges are asked.
 *
 * Otherwise (the door closed, and always for WriteTxnMarkers, which no
 * coordinator here sends: markers to other nodes go over the SQL side
 * channel) a final error in every partition
 * of the request rather than a closed connection.
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED is what librdkafka and kafkajs
 * give up on at once; WriteTxnMarkers, which only brokers send, gets
 * CLUSTER_AUTHORIZATION_FAILED, as Kafka answers a non-broker.
 */
#include "postgres.h"

#include "streamlog/metadata/group_placement.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/group_coordinator.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/kafka_errors.h"
#include "streamlog/server/txn/coordinator.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/txn_offsets.h"
#include "streamlog/storage/txn_state.h"

bool
SlHandleTransactionApi(SlRequest *req, SlReader *body, SlWriter *out)
{
	int16		error = req->api_key == SL_API_WRITE_TXN_MARKERS ?
		SL_ERR_CLUSTER_AUTHORIZATION_FAILED : SL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;

	return SlErrorResponseEncode(body, req->api_key, req->api_version, error,
								 SlStrFromCString(SL_TRANSACTIONS_UNSUPPORTED), out);
}

/* PRODUCER_FENCED as the request's version knows it */
static int16
fenced_for_version(int16 error, int16 version)
{
	return error == SL_ERR_PRODUCER_FENCED && version < 2 ? SL_ERR_INVALID_PRODUCER_EPOCH : error;
}

/* A transactional id from the wire, or NULL if empty or too long */
static char *
transactional_id_from_wire(SlStr s)
{
	if (s.len <= 0 || s.len > SL_TRANSACTIONAL_ID_MAX)
		return NULL;
	return pnstrdup(s.data, s.len);
}

/*
 * AddPartitionsToTxn v0-3: every partition is checked first (it exists,
 * the producer may WRITE its topic); if one fails, it says why and the
 * others get OPERATION_NOT_ATTEMPTED, as in Kafka.  Then the coordinator's
 * answer goes to every partition.
 */
bool
SlHandleAddPartitionsToTxn(SlRequest *req, SlReader *body, SlWriter *reply)
{
	/* answered after the commit, once replicated (txn_answer.c) */
	SlWriter   *out = SlTxnAnswerStart(req, body);
	SlAddPartitionsToTxnRequest request;
	SlAddPartitionsToTxnResponse resp;
	char	   *tid;
	SlTxnPartitionRef *parts;
	int16	  **errors;
	int			nparts = 0;
	int			total = 0;
	bool		failed = false;
	int16		answer = SL_ERR_NONE;

	if (!SlTxnCoordinatorEnabled() || req->api_version >= 4)
	{
		if (req->api_version >= 4)
			return SlErrorResponseEncode(body, req->api_key, req->api_version,
										 SL_ERR_CLUSTER_AUTHORIZATION_FAILED,
										 SlStrFromCString("AddPartitionsToTxn v4+ is for brokers"),
										 out);
		return SlHandleTransactionApi(req, body, out);
	}
	if (!SlAddPartitionsToTxnRequestDecode(body, req->api_version, &request))
		return false;
	SlAddPartitionsToTxnResponseInit(&resp);
	tid = transactional_id_from_wire(request.v3_and_below_transactional_id);
	SL_ARRAY_ALLOC(resp.results_by_topic_v3_and_below, Max(request.v3_and_below_topics.n, 0));
	errors = palloc0(sizeof(int16 *) * Max(request.v3_and_below_topics.n, 1));
	for (int i = 0; i < request.v3_and_below_topics.n; i++)
		total += Max(request.v3_and_below_topics.items[i].partitions.n, 0);
	parts = palloc(sizeof(SlTxnPartitionRef) * Max(total, 1));

	for (int i = 0; i < request.v3_and_below_topics.n; i++)
	{
		SlAddPartitionsToTxnRequestAddPartitionsToTxnTopic *t = &request.v3_and_below_topics.items[i];
		SlAddPartitionsToTxnResponseAddPartitionsToTxnTopicResult *r =
			&resp.results_by_topic_v3_and_below.items[i];
		char	   *name = SlTopicNameFromWire(t->name);
		const SlTopic *topic = name ? SlTopicLookup(name, true) : NULL;
		bool		allowed = name != NULL && SlMayTopic(name, SL_ACL_WRITE);

		SlAddPartitionsToTxnResponseAddPartitionsToTxnTopicResultInit(r);
		r->name = t->name;
		SL_ARRAY_ALLOC(r->results_by_partition, Max(t->partitions.n, 0));
		errors[i] = palloc0(sizeof(int16) * Max(t->partitions.n, 1));
		for (int j = 0; j < t->partitions.n; j++)
		{
			int32		p = t->partitions.items[j];

			if (!allowed)
				errors[i][j] = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
			else if (topic == NULL || p < 0 || p >= topic->partition_count)
				errors[i][j] = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			else
			{
				parts[nparts].topic_id = topic->topic_id;
				parts[nparts].partition = p;
				nparts++;
				continue;
			}
			failed = true;
		}
	}

	/*
	 * As Kafka: without WRITE on the transactional id every partition is
	 * refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED
	 */
	if (tid != NULL && !SlMayTransactionalId(tid, SL_ACL_WRITE))
	{
		failed = false;
		answer = SL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
	}
	/* One answer for every partition */
	else if (!failed)
		answer = tid == NULL ? SL_ERR_INVALID_REQUEST :
			fenced_for_version(SlTxnAddPartitions(tid, request.v3_and_below_producer_id,
												  request.v3_and_below_producer_epoch,
												  parts, nparts),
							   req->api_version);
	for (int i = 0; i < request.v3_and_below_topics.n; i++)
	{
		SlAddPartitionsToTxnResponseAddPartitionsToTxnTopicResult *r =
			&resp.results_by_topic_v3_and_below.items[i];

		for (int j = 0; j < r->results_by_partition.n; j++)
		{
			SlAddPartitionsToTxnResponseAddPartitionsToTxnPartitionResult *pr =
				&r->results_by_partition.items[j];

			SlAddPartitionsToTxnResponseAddPartitionsToTxnPartitionResultInit(pr);
			pr->partition_index = request.v3_and_below_topics.items[i].partitions.items[j];
			if (failed)
				pr->partition_error_code = errors[i][j] != SL_ERR_NONE ? errors[i][j] :
					SL_ERR_OPERATION_NOT_ATTEMPTED;
			else
				pr->partition_error_code = answer;
		}
	}
	if (!failed && answer == SL_ERR_NONE)
		SlTxnAnswerWaitFor(req, tid);
	SlAddPartitionsToTxnResponseEncode(out, req->api_version, &resp);
	return true;
}

bool
SlHandleAddOffsetsToTxn(SlRequest *req, SlReader *body, SlWriter *reply)
{
	/* answered after the commit, once replicated (txn_answer.c) */
	SlWriter   *out = SlTxnAnswerStart(req, body);
	SlAddOffsetsToTxnRequest request;
	SlAddOffsetsToTxnResponse resp;
	char	   *tid;
	char	   *group_id;

	if (!SlTxnCoordinatorEnabled())
		return SlHandleTransactionApi(req, body, out);
	if (!SlAddOffsetsToTxnRequestDecode(body, req->api_version, &request))
		return false;
	SlAddOffsetsToTxnResponseInit(&resp);
	tid = transactional_id_from_wire(request.transactional_id);
	group_id = SlGroupIdFromWire(request.group_id);
	if (tid == NULL || group_id == NULL)
		resp.error_code = SL_ERR_INVALID_REQUEST;
	else if (!SlMayTransactionalId(tid, SL_ACL_WRITE))
		resp.error_code = SL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
	else if (!SlMayGroup(group_id, SL_ACL_READ))
		resp.error_code = SL_ERR_GROUP_AUTHORIZATION_FAILED;
	else
		resp.error_code = fenced_for_version(SlTxnAddOffsets(tid, request.producer_id,
															 request.producer_epoch, group_id),
											 req->api_version);
	if (resp.error_code == SL_ERR_NONE)
		SlTxnAnswerWaitFor(req, tid);
	SlAddOffsetsToTxnResponseEncode(out, req->api_version, &resp);
	return true;
}

bool
SlHandleEndTxn(SlRequest *req, SlReader *body, SlWriter *reply)
{
	/* answered after the commit, once replicated (txn_answer.c) */
	SlWriter   *out = SlTxnAnswerStart(req, body);
	SlEndTxnRequest request;
	SlEndTxnResponse resp;
	char	   *tid;

	if (!SlTxnCoordinatorEnabled())
		return SlHandleTransactionApi(req, body, out);
	if (!SlEndTxnRequestDecode(body, req->api_version, &request))
		return false;
	SlEndTxnResponseInit(&resp);
	tid = transactional_id_from_wire(request.transactional_id);
	if (tid == NULL)
		resp.error_code = SL_ERR_INVALID_REQUEST;
	else if (!SlMayTransactionalId(tid, SL_ACL_WRITE))
		resp.error_code = SL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
	else
		resp.error_code = fenced_for_version(SlTxnEnd(tid, request.producer_id,
													  request.producer_epoch,
													  request.committed),
											 req->api_version);
	if (resp.error_code == SL_ERR_NONE)
		SlTxnAnswerWaitFor(req, tid);
	SlEndTxnResponseEncode(out, req->api_version, &resp);
	return true;
}

/*
 * KIP-447's fencing of TxnOffsetCommit v3+: a producer that names its
 * consumer's member id and generation commits only while that member is
 * in that generation of the group (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
 * FENCED_INSTANCE_ID), so that a zombie of a rebalance cannot commit
 * offsets of partitions now someone else's.  Without them (member id "",
 * generation -1) nothing is checked, as in Kafka.  A rebalance in progress
 * does not stop it (Kafka checks no more).
 */
static int16
check_group_member(const char *group_id, const SlTxnOffsetCommitRequest *request)
{
	char	   *member_id = pnstrdup(request->member_id.data, Max(request->member_id.len, 0));
	char	   *instance_id = SlStrIsNull(request->group_instance_id) ? NULL :
		pnstrdup(request->group_instance_id.data, request->group_instance_id.len);
	int16		error;

	if (member_id[0] == '\0' && request->generation_id < 0 && instance_id == NULL)
		return SL_ERR_NONE;
	error = SlGroupCheckCommit(group_id, member_id, instance_id, request->generation_id, 0);
	return error == SL_ERR_REBALANCE_IN_PROGRESS ? SL_ERR_NONE : error;
}

/* An offset to stage and where it was in the request */
typedef struct StagedRef
{
	int32		topic_id;
	int32		partition;
	int			index;
} StagedRef;

static int
staged_ref_cmp(const void *a, const void *b)
{
	const StagedRef *x = a;
	const StagedRef *y = b;

	if (x->topic_id != y->topic_id)
		return x->topic_id < y->topic_id ? -1 : 1;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Keep one offset per partition, the last the request names (Kafka reads
 * the request into a map): a request naming one partition a million times
 * stages one row, not a million.  Returns how many are left in offsets.
 */
static int
last_offset_per_partition(SlGroupOffset *offsets, int n)
{
	StagedRef  *refs = palloc(sizeof(StagedRef) * Max(n, 1));
	SlGroupOffset *kept = palloc(sizeof(SlGroupOffset) * Max(n, 1));
	int			nkept = 0;

	for (int i = 0; i < n; i++)
	{
		refs[i].topic_id = offsets[i].topic_id;
		refs[i].partition = offsets[i].partition;
		refs[i].index = i;
	}
	qsort(refs, n, sizeof(StagedRef), staged_ref_cmp);
	for (int i = 0; i < n; i++)
		if (i + 1 == n || refs[i + 1].topic_id != refs[i].topic_id ||
			refs[i + 1].partition != refs[i].partition)
			kept[nkept++] = offsets[refs[i].index];
	memcpy(offsets, kept, sizeof(SlGroupOffset) * nkept);
	pfree(kept);
	pfree(refs);
	return nkept;
}

/*
 * Is this node the group's coordinator?  NOT_COORDINATOR if not.  A
 * coordinator still loading the group's committed offsets takes the
 * offsets all the same: they wait in streamlog.txn_pending_offset, apart
 * from what the load rebuilds, and the marker that makes them committed
 * offsets waits for the load (storage/txn_cluster.h).  Kafka loads a
 * partition as soon as it leads it, so that clients hardly ever see
 * COORDINATOR_LOAD_IN_PROGRESS here, and kafkajs does not retry it.
 */
static int16
txn_offset_commit_coordinator_error(const char *group_id)
{
	int16		error = SlGroupCoordinatorError(group_id);

	return error == SL_ERR_COORDINATOR_LOAD_IN_PROGRESS ? SL_ERR_NONE : error;
}

/*
 * TxnOffsetCommit v0-4, to the group's coordinator (this node): the
 * offsets wait in the producer's transaction until EndTxn
 * (storage/txn_offsets.h); on a cluster the answer waits until the
 * group's partition of __consumer_offsets holds them on its in-sync
 * replicas, as Kafka's coordinator answers after its acks=all append.  A partition of an unknown topic, or of one
 * the producer may not READ, fails alone; the coordinator's check (the
 * producer's epoch, the group added with AddOffsetsToTxn) goes to every
 * partition, then the group's fencing of v3+ (check_group_member).
 */
bool
SlHandleTxnOffsetCommit(SlRequest *req, SlReader *body, SlWriter *reply)
{
	/* answered after the commit, once replicated (txn_answer.c) */
	SlWriter   *out = SlTxnAnswerStart(req, body);
	SlTxnOffsetCommitRequest request;
	SlTxnOffsetCommitResponse resp;
	char	   *tid;
	char	   *group_id;
	int16		error;
	SlGroupOffset *offsets;
	int			noffsets = 0;
	int			total = 0;

	if (!SlTxnCoordinatorEnabled())
		return SlHandleTransactionApi(req, body, out);
	if (!SlTxnOffsetCommitRequestDecode(body, req->api_version, &request))
		return false;
	SlTxnOffsetCommitResponseInit(&resp);
	tid = transactional_id_from_wire(request.transactional_id);
	group_id = SlGroupIdFromWire(request.group_id);
	if (tid == NULL || group_id == NULL)
		error = SL_ERR_INVALID_REQUEST;
	else if (!SlMayTransactionalId(tid, SL_ACL_WRITE))
		error = SL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
	else if (!SlMayGroup(group_id, SL_ACL_READ))
		error = SL_ERR_GROUP_AUTHORIZATION_FAILED;
	/* On a cluster: to the group's coordinator (group_placement.h) */
	else if ((error = txn_offset_commit_coordinator_error(group_id)) != SL_ERR_NONE)
		;
	else
		error = SlTxnCheckOffsetCommit(tid, request.producer_id, request.producer_epoch,
									   group_id);
	if (error == SL_ERR_NONE && req->api_version >= 3)
		error = check_group_member(group_id, &request);
	if (error == SL_ERR_PRODUCER_FENCED && req->api_version < 3)
		error = SL_ERR_INVALID_PRODUCER_EPOCH;

	for (int i = 0; i < request.topics.n; i++)
		total += Max(request.topics.items[i].partitions.n, 0);
	offsets = palloc0(sizeof(SlGroupOffset) * Max(total, 1));
	SL_ARRAY_ALLOC(resp.topics, Max(request.topics.n, 0));
	for (int i = 0; i < request.topics.n; i++)
	{
		SlTxnOffsetCommitRequestTxnOffsetCommitRequestTopic *t = &request.topics.items[i];
		SlTxnOffsetCommitResponseTxnOffsetCommitResponseTopic *r = &resp.topics.items[i];
		char	   *name = SlTopicNameFromWire(t->name);
		const SlTopic *topic = name ? SlTopicLookup(name, true) : NULL;
		bool		allowed = name != NULL && SlMayTopic(name, SL_ACL_READ);

		SlTxnOffsetCommitResponseTxnOffsetCommitResponseTopicInit(r);
		r->name = t->name;
		SL_ARRAY_ALLOC(r->partitions, Max(t->partitions.n, 0));
		for (int j = 0; j < t->partitions.n; j++)
		{
			SlTxnOffsetCommitRequestTxnOffsetCommitRequestPartition *p = &t->partitions.items[j];
			SlTxnOffsetCommitResponseTxnOffsetCommitResponsePartition *pr = &r->partitions.items[j];

			SlTxnOffsetCommitResponseTxnOffsetCommitResponsePartitionInit(pr);
			pr->partition_index = p->partition_index;
			if (error != SL_ERR_NONE)
				pr->error_code = error;
			else if (!allowed)
				pr->error_code = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
			else if (topic == NULL || p->partition_index < 0 ||
					 p->partition_index >= topic->partition_count)
				pr->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			else if (p->committed_offset < 0)
				pr->error_code = SL_ERR_INVALID_REQUEST;
			else
			{
				SlGroupOffset *o = &offsets[noffsets++];

				o->topic_id = topic->topic_id;
				o->partition = p->partition_index;
				o->committed_offset = p->committed_offset;
				o->leader_epoch = p->committed_leader_epoch;
				o->metadata = SlStrIsNull(p->committed_metadata) ? NULL :
					pnstrdup(p->committed_metadata.data, p->committed_metadata.len);
			}
		}
	}
	noffsets = last_offset_per_partition(offsets, noffsets);
	if (noffsets > 0 &&
		SlTxnOffsetsStage(request.producer_id, request.producer_epoch, group_id, offsets,
						  noffsets))
		SlTxnAnswerWaitForGroup(req, group_id);
	SlTxnOffsetCommitResponseEncode(out, req->api_version, &resp);
	return true;
}
