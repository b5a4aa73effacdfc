/*
 * Fetch: stored batches, byte for byte, from the batch holding the fetch
 * offset up to the high watermark, within partition_max_bytes and
 * max_bytes, and within streamlog.fetch_max_bytes whatever the client asks
 * for (the first batch is returned whole even if larger, KIP-74).
 * With fewer than min_bytes ready the request is parked until a high
 * watermark moves or max_wait_ms passes.  Versions 0-3 get the records
 * down-converted to the legacy message format they read.
 *
 * A read_committed consumer (v4+, isolation_level 1) reads up to the last
 * stable offset instead, and gets the aborted transactions that overlap
 * the batches returned (storage/transactions.h): Kafka clients drop the
 * records of those themselves, and every client skips control batches.
 * Every fetch reports the partition's last stable offset, as Kafka's
 * leader does, read_uncommitted ones too: it costs a query only while the
 * partition has open transactions (storage/transactions.h).
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metrics/record_counts.h"
#include "streamlog/protocol/legacy_records.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/partition_leader.h"
#include "streamlog/server/request_metrics.h"
#include "streamlog/server/subtransaction.h"
#include "streamlog/storage/partition_metrics.h"
#include "streamlog/storage/read_replica.h"
#include "streamlog/storage/replica_log.h"
#include "streamlog/storage/replica_progress.h"
#include "streamlog/storage/transactions.h"

/* Where a fetch reads one partition's stored batches to */
typedef struct ReadBatchesArgs
{
	const SlTopic *topic;
	int32		partition;
	int64		fetch_offset;
	int64		limit;			/* bytes at most, but the first batch of the response whole */
	bool		first;			/* the first batch of the response, KIP-74 */
	StringInfo	records;		/* appended to */
	bool		read_committed; /* stop at the LSO */
	int64		high_watermark; /* that the read saw */
	int64		last_stable_offset; /* that it stopped at if read_committed */
	SlAbortedTxn *aborted;		/* read_committed: over the batches read */
	int			naborted;
} ReadBatchesArgs;

static void
read_batches(void *arg)
{
	ReadBatchesArgs *a = arg;
	SlLogScanBounds bounds;
	SlLogScan  *scan;
	size_t		len;
	int64		base;
	int64		last;

	int64		end = a->fetch_offset;

	SlLogScanBoundsInit(&bounds);
	bounds.from_offset = a->fetch_offset;
	bounds.read_committed = a->read_committed;
	scan = SlLogScanBegin(a->topic, a->partition, &bounds);
	a->high_watermark = SlLogScanHighWatermark(scan);
	a->last_stable_offset = SlLogScanReadLimit(scan);
	while (SlLogScanPeekBatch(scan, &len, &base, &last))
	{
		if ((int64) (a->records->len + len) > a->limit && !(a->first && a->records->len == 0))
			break;
		/* Stored pieces go straight into the response's records */
		enlargeStringInfo(a->records, len);
		SlLogScanCopyBatch(scan, (uint8 *) a->records->data + a->records->len);
		a->records->len += len;
		a->records->data[a->records->len] = '\0';
		end = last + 1;
		if ((int64) a->records->len >= a->limit)
			break;
	}
	SlLogScanEnd(scan);
	/* Kafka's collectAbortedTxns(fetchOffset, upperBoundOffset) */
	a->naborted = 0;
	a->aborted = NULL;
	if (a->read_committed)
		a->aborted = SlTxnAbortedInRange(a->topic->topic_id, a->partition, a->fetch_offset,
										 end, &a->naborted);
}

/*
 * Fetch v12+ with the epoch of the last batch the client fetched (KIP-320,
 * KIP-595; Kafka's Partition.fetchRecords): if this log's epoch ended
 * before the fetch offset, or that epoch is unknown here, the client's log
 * diverged from this one.  The answer then carries no records but the
 * diverging epoch, (largest epoch <= it here, where that ended), for the
 * client to truncate to.  An epoch this log cannot place is
 * OFFSET_OUT_OF_RANGE.  Returns true if pr is the answer.
 */
static bool
fetch_diverged(const SlTopic *topic, const SlFetchRequestFetchPartition *fp,
			   SlFetchResponsePartitionData *pr)
{
	int32		end_epoch;
	int64		end_offset;

	SlPartitionEpochEndOffset(topic, fp->partition, fp->last_fetched_epoch,
							  SlPartitionLeaderEpoch(topic, fp->partition),
							  &end_epoch, &end_offset);
	if (end_epoch < 0 || end_offset < 0)
	{
		pr->error_code = SL_ERR_OFFSET_OUT_OF_RANGE;
		return true;
	}
	if (end_epoch < fp->last_fetched_epoch || end_offset < fp->fetch_offset)
	{
		pr->error_code = SL_ERR_NONE;
		pr->diverging_epoch.epoch = end_epoch;
		pr->diverging_epoch.end_offset = end_offset;
		return true;
	}
	return false;
}

/*
 * Reads from the nearest replica (KIP-392): a follower serves a consumer's
 * Fetch v11+ (the first with client metadata) from its own copy, below its
 * own high watermark, as Kafka's followers do; older versions and other
 * followers' fetches go to the leader.
 */
static bool
served_by_follower(const SlTopic *topic, int32 partition, bool from_consumer, int16 version)
{
	const SlPartitionLeadership *l;

	if (!from_consumer || version < 11 || topic->partitions == NULL)
		return false;
	l = SlTopicPartitionLeadership(topic, partition);
	if (l->leader == SL_NO_LEADER)
		return false;
	for (int32 i = 0; i < l->nreplicas; i++)
		if (l->replicas[i] == sl_node_id)
			return true;
	return false;
}

/*
 * On the leader, with streamlog.replica_selector = rack-aware: the follower
 * a consumer in client_rack should fetch from instead (KIP-392), or -1.
 */
static int32
preferred_read_replica(const SlTopic *topic, int32 partition, const char *client_rack,
					   int64 fetch_offset)
{
	SlReplicaState states[SL_MAX_REPLICAS];
	SlReadReplicaCandidate candidates[SL_MAX_REPLICAS];
	SlClusterNode nodes[SL_MAX_REPLICAS];
	int			n;
	int			ncandidates = 0;

	if (sl_replica_selector != SL_REPLICA_SELECTOR_RACK_AWARE ||
		client_rack == NULL || client_rack[0] == '\0' || !SlClusterEnabled())
		return -1;
	n = SlReplicaStates(topic, partition, states, SL_MAX_REPLICAS);
	for (int i = 0; i < n; i++)
	{
		if (states[i].node_id == sl_node_id ||
			!SlClusterGetNode(states[i].node_id, &nodes[ncandidates]) ||
			nodes[ncandidates].fenced)
			continue;
		candidates[ncandidates] = (SlReadReplicaCandidate) {
			states[i].node_id, nodes[ncandidates].rack, states[i].in_maximal_isr,
			states[i].log_end, states[i].last_caught_up_ms
		};
		ncandidates++;
	}
	return SlPreferredReadReplica(client_rack, sl_broker_rack ? sl_broker_rack : "",
								  candidates, ncandidates, fetch_offset);
}

/* Fill pr with what partition has from fetch_offset; returns bytes added */
static int64
fetch_partition(SlRequest *req, const SlTopic *topic, SlFetchRequestFetchPartition *fp,
				SlFetchResponsePartitionData *pr, int64 budget, bool first, int16 version,
				bool from_consumer, const char *client_rack, bool read_committed)
{
	SlPartitionOffsets state;
	StringInfoData records;
	ReadBatchesArgs args;
	ErrorData  *edata;
	int64		limit = Min(budget, (int64) fp->partition_max_bytes);

	pr->partition_index = fp->partition;
	pr->last_stable_offset = -1;
	pr->log_start_offset = -1;
	pr->preferred_read_replica = -1;
	SL_ARRAY_ALLOC(pr->aborted_transactions, 0);
	pr->records = (SlBytes) {(const uint8 *) "", 0};

	if (fp->partition < 0 || fp->partition >= topic->partition_count)
	{
		pr->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		pr->high_watermark = -1;
		return 0;
	}
	if ((pr->error_code = SlPartitionLeaderError(topic, fp->partition)) != SL_ERR_NONE &&
		!served_by_follower(topic, fp->partition, from_consumer, version))
	{
		const SlPartitionLeadership *l = SlTopicPartitionLeadership(topic, fp->partition);

		/* v12+: where the partition is now, so the client needs no Metadata */
		if (version >= 12)
		{
			pr->current_leader.leader_id = l->leader;
			pr->current_leader.leader_epoch = l->leader_epoch;
		}
		pr->high_watermark = -1;
		return 0;
	}
	if (version >= 9 &&
		(pr->error_code = SlPartitionLeaderEpochError(topic, fp->partition,
													  fp->current_leader_epoch)) != SL_ERR_NONE)
	{
		pr->high_watermark = -1;
		return 0;
	}
	/* Woken when this partition grows, if we park */
	SlRequestWaitOn(req, SlWaitKeyForPartition(SlMakePartitionKey(topic->topic_id,
																 fp->partition)));
	SlPartitionGetOffsets(topic->topic_id, fp->partition, &state);
	pr->high_watermark = state.high_watermark;
	/* After the high watermark: never above it */
	pr->last_stable_offset = Min(state.high_watermark,
								 SlPartitionLastStableOffset(topic->topic_id, fp->partition));
	pr->log_start_offset = state.log_start_offset;
	if (version >= 12 && fp->last_fetched_epoch >= 0 &&
		fp->fetch_offset >= state.log_start_offset &&
		fetch_diverged(topic, fp, pr))
		return 0;
	/*
	 * As a Kafka leader: out of range past the log end; between the high
	 * watermark and the log end (records not yet on every in-sync replica)
	 * there is nothing to read yet
	 */
	if (fp->fetch_offset < state.log_start_offset || fp->fetch_offset > state.log_end_offset)
	{
		pr->error_code = SL_ERR_OFFSET_OUT_OF_RANGE;
		return 0;
	}
	pr->error_code = SL_ERR_NONE;
	/* A leader may send a consumer to a follower in its rack (KIP-392) */
	if (from_consumer && version >= 11 &&
		SlPartitionLeaderError(topic, fp->partition) == SL_ERR_NONE &&
		(pr->preferred_read_replica = preferred_read_replica(topic, fp->partition, client_rack,
															 fp->fetch_offset)) >= 0)
		return 0;
	if (fp->fetch_offset >= state.high_watermark || limit <= 0)
		return 0;

	/*
	 * A stored batch that cannot be read (a piece missing, a length out of
	 * range) fails only its partition, with KAFKA_STORAGE_ERROR as a Kafka
	 * broker answers for a log it cannot read, and a log line.
	 */
	initStringInfo(&records);
	args.topic = topic;
	args.partition = fp->partition;
	args.fetch_offset = fp->fetch_offset;
	args.limit = limit;
	args.first = first;
	args.records = &records;
	args.read_committed = read_committed;
	args.high_watermark = pr->high_watermark;
	args.last_stable_offset = pr->high_watermark;
	args.aborted = NULL;
	args.naborted = 0;
	edata = SlRunInSubtransaction(read_batches, &args, true);
	if (edata != NULL)
	{
		ereport(LOG,
				(errmsg("streamlog broker: fetch from partition %d of topic \"%s\" failed: %s",
						fp->partition, topic->name, edata->message)));
		pr->error_code = SL_ERR_KAFKA_STORAGE_ERROR;
		records.len = 0;
	}
	pr->high_watermark = args.high_watermark;
	if (read_committed)
		pr->last_stable_offset = args.last_stable_offset;
	if (args.naborted > 0 && edata == NULL)
	{
		SL_ARRAY_ALLOC(pr->aborted_transactions, args.naborted);
		for (int i = 0; i < args.naborted; i++)
		{
			pr->aborted_transactions.items[i].producer_id = args.aborted[i].producer_id;
			pr->aborted_transactions.items[i].first_offset = args.aborted[i].first_offset;
		}
	}

	/* v0-3 readers take magic 0 (v0-1) or magic 1 (v2-3) message sets */
	if (version < 4 && records.len > 0)
	{
		StringInfoData converted;
		const char *error;

		initStringInfo(&converted);
		error = SlBatchesToMessageSetFrom((const uint8 *) records.data, records.len,
										  version < 2 ? 0 : 1, fp->fetch_offset,
										  limit, &converted);
		if (error)
		{
			pr->error_code = SL_ERR_CORRUPT_MESSAGE;
			converted.len = 0;
		}
		records = converted;
	}
	pr->records = (SlBytes) {(const uint8 *) records.data, records.len};
	return records.len;
}

/*
 * A consumer's fetch is answered: count what each partition gave (bytes as
 * sent, records of the batches), and the errors.  topic_ids[t] is the id of
 * the request's t-th topic, -1 if unknown.
 */
static void
count_fetch(SlRequest *req, const SlFetchResponse *resp, const int32 *topic_ids,
			bool from_consumer)
{
	for (int t = 0; t < resp->responses.n; t++)
	{
		const SlFetchResponseFetchableTopicResponse *tr = &resp->responses.items[t];

		for (int p = 0; p < tr->partitions.n; p++)
		{
			const SlFetchResponsePartitionData *pr = &tr->partitions.items[p];
			SlMetricsPartition key;

			SlRequestMetricsNoteError(req, pr->error_code);
			if (topic_ids[t] < 0 || !from_consumer)
				continue;
			key = SlPartitionMetricsKey(topic_ids[t], pr->partition_index);
			SlMetricsCountFetch(&key, SL_DOOR_KAFKA, pr->error_code != SL_ERR_NONE);
			if (pr->records.len > 0)
				SlMetricsCountOut(&key, SL_DOOR_KAFKA, (uint64) pr->records.len,
								  SlRecordCountOfBatches(pr->records.data, pr->records.len));
		}
	}
}

/*
 * The request, decoded on the first look and kept with the request (its
 * strings point into the frame): a parked Fetch looked at again only reads.
 */
static SlFetchRequest *
decoded_request(SlRequest *req, SlReader *body)
{
	SlFetchRequest *request = req->handler_state;

	if (request == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(req->context);
		bool		ok;

		request = palloc(sizeof(SlFetchRequest));
		ok = SlFetchRequestDecode(body, req->api_version, request);
		MemoryContextSwitchTo(oldcxt);
		if (!ok)
			return NULL;
		req->handler_state = request;
	}
	return request;
}

bool
SlHandleFetch(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlFetchRequest *decoded = decoded_request(req, body);
	SlFetchRequest request;
	SlFetchResponse resp;
	int64		total = 0;
	int64		budget;
	bool		errored = false;	/* a partition answered with an error */
	int32	   *topic_ids;		/* of each topic of the request, -1 unknown */
	bool		from_consumer;
	bool		read_committed;
	char	   *client_rack;

	if (decoded == NULL)
		return false;
	request = *decoded;
	/* what the client asks, within what the broker gives (fetch.max.bytes) */
	budget = request.max_bytes > 0 ? Min(request.max_bytes, sl_fetch_max_bytes) : sl_fetch_max_bytes;
	/* and within the room the worker has for answers not yet sent */
	if (req->response_room >= 0)
		budget = Min(budget, req->response_room);

	/* a consumer's fetch: no replica id (v15+: in the replica state) */
	from_consumer = (req->api_version >= 15 ? request.replica_state.replica_id :
					 request.replica_id) < 0;
	client_rack = req->api_version >= 11 ? SlTopicNameFromWire(request.rack_id) : NULL;
	/* Kafka's READ_COMMITTED; replicas read to the high watermark */
	read_committed = from_consumer && req->api_version >= 4 && request.isolation_level == 1;
	SlFetchResponseInit(&resp);
	resp.error_code = SL_ERR_NONE;
	resp.session_id = 0;		/* sessionless (KIP-227 sessions not offered) */
	SL_ARRAY_ALLOC(resp.responses, request.topics.n);
	topic_ids = palloc(sizeof(int32) * Max(request.topics.n, 1));
	for (int t = 0; t < request.topics.n; t++)
	{
		SlFetchRequestFetchTopic *ft = &request.topics.items[t];
		SlFetchResponseFetchableTopicResponse *tr = &resp.responses.items[t];
		const SlTopic *topic;
		int16		topic_error = SL_ERR_NONE;

		tr->topic = ft->topic;
		tr->topic_id = ft->topic_id;
		/* READ on the topic, asked before whether it exists, as Kafka */
		if (req->api_version >= 13)
		{
			topic = SlTopicLookupByUuid(ft->topic_id.data);
			if (topic == NULL)
				topic_error = SL_ERR_UNKNOWN_TOPIC_ID;
			else if (!SlMayTopic(topic->name, SL_ACL_READ))
			{
				topic_error = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
				topic = NULL;
			}
		}
		else
		{
			char	   *name = SlTopicNameFromWire(ft->topic);

			if (name && !SlMayTopic(name, SL_ACL_READ))
			{
				topic = NULL;
				topic_error = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
			}
			else
			{
				topic = name ? SlTopicLookup(name, true) : NULL;
				if (topic == NULL)
					topic_error = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			}
		}
		if (topic != NULL)
		{
			/* NULL if dropped while we waited for its lock */
			topic = SlTopicTryLookupAndLock(topic->name, AccessShareLock);
			if (topic == NULL)
				topic_error = req->api_version >= 13 ?
					SL_ERR_UNKNOWN_TOPIC_ID : SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		}

		topic_ids[t] = topic != NULL ? topic->topic_id : -1;
		if (topic != NULL)
			SlRequestMetricsNoteTopic(req, topic->name);
		SL_ARRAY_ALLOC(tr->partitions, ft->partitions.n);
		for (int p = 0; p < ft->partitions.n; p++)
		{
			SlFetchResponsePartitionData *pr = &tr->partitions.items[p];

			SlFetchResponsePartitionDataInit(pr);
			if (topic_error != SL_ERR_NONE)
			{
				pr->partition_index = ft->partitions.items[p].partition;
				pr->error_code = topic_error;
				pr->high_watermark = -1;
				SL_ARRAY_ALLOC(pr->aborted_transactions, 0);
				pr->records = (SlBytes) {(const uint8 *) "", 0};
				errored = true;
				continue;
			}
			total += fetch_partition(req, topic, &ft->partitions.items[p], pr,
									 budget - total, total == 0, req->api_version,
									 from_consumer, client_rack, read_committed);
			errored |= pr->error_code != SL_ERR_NONE;
		}
	}

	/*
	 * Not enough yet: wait for more, unless this is the last look, or a
	 * partition has an error to report (an unknown partition, an offset out
	 * of range), which Kafka answers at once: waiting would only delay what
	 * the client must act on.
	 */
	if (total < Max(request.min_bytes, 1) && request.max_wait_ms > 0 && !errored &&
		!req->final_attempt)
	{
		if (req->state != SL_REQUEST_PARKED && req->deadline == 0)
			req->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														request.max_wait_ms);
		if (GetCurrentTimestamp() < req->deadline)
		{
			req->state = SL_REQUEST_PARKED;
			return true;
		}
	}
	count_fetch(req, &resp, topic_ids, from_consumer);
	SlFetchResponseEncode(out, req->api_version, &resp);
	return true;
}
