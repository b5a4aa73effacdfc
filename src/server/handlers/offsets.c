/*-------------------------------------------------------------------------
 * offsets.c
 *	  Committed offsets of consumer groups over Kafka: OffsetCommit (8,
 *	  v0-9), OffsetFetch (9, v0-9) and OffsetDelete (47, v0).  The offsets
 *	  are rows of streamlog.group_offset (storage/group_offsets.c), the same
 *	  ones SQL consumers commit and the lag view reads; this file checks the
 *	  committer against the group coordinator and maps the wire to them.
 *
 * OffsetCommit.  A commit with generation -1 and no member id comes from
 * outside the group's membership (manual assignment, admin tools) and is
 * accepted while the group has no members; any other is checked against
 * the coordinator (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
 * FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS while the group completes a
 * rebalance), and then nothing is stored.  Unknown topics and partitions
 * get UNKNOWN_TOPIC_OR_PARTITION, metadata over 4096 bytes
 * OFFSET_METADATA_TOO_LARGE, each for its own partition; a negative offset
 * clears the partition's committed offset (Kafka then answers -1 for it, as
 * for one never committed).  The rows are written without waiting: if an
 * SQL consumer's open transaction holds one, the partitions get the
 * retriable COORDINATOR_LOAD_IN_PROGRESS.  v1 CommitTimestamp and v2-4
 * RetentionTimeMs are accepted and ignored (offsets are kept until deleted,
 * or until their topic is).  v9 answers GROUP_ID_NOT_FOUND for a member's
 * commit to a group the coordinator does not know.
 *
 * OffsetFetch.  v0-7 ask for one group, v8+ for several; a null topic list
 * (v2+) means every partition the group committed.  Partitions without a
 * committed offset, and unknown topics, answer offset -1.  There are no
 * pending transactional commits, so RequireStable (v7+) changes nothing.
 *
 * OffsetDelete.  Deletes committed offsets of a group without members, or
 * of the topics no member of a "consumer" group subscribes to
 * (GROUP_SUBSCRIBED_TO_TOPIC otherwise).
 *
 * Authorization, as Kafka's, asked before anything else about the group or
 * the topic: OffsetCommit takes READ on the group and on each topic,
 * OffsetFetch DESCRIBE on the group and on each topic asked for (a listing
 * of every committed topic leaves out those the role may not DESCRIBE),
 * OffsetDelete DELETE on the group and READ on each topic.  The group's
 * refusal is GROUP_AUTHORIZATION_FAILED, a topic's
 * TOPIC_AUTHORIZATION_FAILED for each of its partitions.
 *
 * IDENTIFICATION
 *	  src/server/handlers/offsets.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/group_placement.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/group_coordinator.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/kafka_errors.h"
#include "streamlog/storage/isr_changes.h"
#include "streamlog/storage/replica_log.h"
#include "streamlog/storage/replica_progress.h"
#include "streamlog/storage/txn_offsets.h"
#include "streamlog/storage/wakeups.h"

/*
 * NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS, when the group's
 * coordinator is asked and this node cannot answer for it (group_placement.h)
 */
static int16 coordinator_error;

/* Kafka's offset.metadata.max.bytes default */
#define MAX_METADATA_BYTES 4096

/*
 * A topic of a request, looked up and locked against drops; NULL if
 * unknown.  *error is TOPIC_AUTHORIZATION_FAILED (and the result NULL) if
 * the role may not do op on it, else UNKNOWN_TOPIC_OR_PARTITION.
 */
static const SlTopic *
topic_from_wire(SlStr name, SlAclOperation op, int16 *error)
{
	char	   *n = SlTopicNameFromWire(name);
	const SlTopic *topic;

	*error = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
	if (n != NULL && !SlMayTopic(n, op))
	{
		*error = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
		return NULL;
	}
	topic = n ? SlTopicLookup(n, true) : NULL;

	if (topic == NULL)
		return NULL;
	/* NULL if dropped while we waited for its lock */
	return SlTopicTryLookupAndLock(topic->name, AccessShareLock);
}

static char *
cstring_from_wire(SlStr s)
{
	return s.len > 0 ? pnstrdup(s.data, s.len) : pstrdup("");
}

/* OffsetCommit */

/*
 * Kafka's offsets.commit.timeout.ms: how long a commit waits for the
 * in-sync replicas of its offsets partition
 */
#define OFFSET_COMMIT_TIMEOUT_MS 5000

/*
 * A commit between its handler and its answer (batchable, as Produce): on
 * a replicated __consumer_offsets it waits after the commit until the
 * partition's high watermark passed the records it wrote (Kafka's
 * acks=all append of the coordinator), so that an answered commit
 * survives the loss of min.insync.replicas - 1 nodes.
 */
typedef struct CommitJob
{
	SlOffsetCommitResponse resp;
	int16		api_version;
	bool		decoded;
	int			nwritten;		/* partitions whose offset this commit wrote */
	SlOffsetCommitResponseOffsetCommitResponsePartition **written;
	/* the group's offsets partition, when replicated (else partition -1) */
	int32		offsets_topic_id;
	int32		offsets_partition;
	int32		leader_epoch;
	int64		target;			/* acknowledged once the high watermark is here;
								 * -1 until the first look after the commit */
} CommitJob;

/* Kafka's answers for a commit whose append failed (GroupMetadataManager) */
static void
fail_written(CommitJob *job, int16 error)
{
	for (int i = 0; i < job->nwritten; i++)
		job->written[i]->error_code = error;
}

/*
 * The group's partition of __consumer_offsets when it is replicated
 * (more than one replica), else NULL
 */
static const SlTopic *
replicated_offsets_partition(const char *group_id, int32 *partition)
{
	const SlTopic *topic;

	if (!SlClusterEnabled())
		return NULL;
	topic = SlTopicLookup(SL_OFFSETS_TOPIC_NAME, true);
	if (topic == NULL || topic->partition_count <= 0)
		return NULL;
	*partition = SlOffsetsGroupPartition(group_id, topic->partition_count);
	if (SlTopicPartitionLeadership(topic, *partition)->nreplicas <= 1)
		return NULL;
	return topic;
}

/*
 * Fewer in-sync replicas of the group's offsets partition than its
 * min.insync.replicas: Kafka's coordinator gets NOT_ENOUGH_REPLICAS for its
 * append and answers COORDINATOR_NOT_AVAILABLE; nothing is written
 */
static bool
offsets_isr_too_small(const char *group_id)
{
	int32		p;
	const SlTopic *topic = replicated_offsets_partition(group_id, &p);

	return topic != NULL &&
		SlReplicaMaximalIsrSize(topic, p) < SlTopicMinInsyncReplicas(&topic->config);
}

bool
SlHandleOffsetCommit(SlRequest *req, SlReader *body, SlWriter *out)
{
	CommitJob  *job = palloc0(sizeof(CommitJob));
	SlOffsetCommitRequest request;
	SlOffsetCommitResponse resp;
	SlGroupOffset *offsets;
	SlOffsetCommitResponseOffsetCommitResponsePartition **slots;
	char	   *group_id;
	int16		group_error = SL_ERR_NONE;
	int			total = 0;
	int			n = 0;

	job->api_version = req->api_version;
	req->handler_state = job;
	if (!SlOffsetCommitRequestDecode(body, req->api_version, &request))
		return false;
	job->decoded = true;
	SlOffsetCommitResponseInit(&resp);
	resp.throttle_time_ms = 0;

	group_id = SlGroupIdFromWire(request.group_id);
	if (group_id == NULL)
		group_error = SL_ERR_INVALID_GROUP_ID;
	else if (!SlMayGroup(group_id, SL_ACL_READ))
		group_error = SL_ERR_GROUP_AUTHORIZATION_FAILED;
	else if ((coordinator_error = SlGroupCoordinatorError(group_id)) != SL_ERR_NONE)
		group_error = coordinator_error;
	else if (offsets_isr_too_small(group_id))
		group_error = SL_ERR_COORDINATOR_NOT_AVAILABLE;
	else
	{
		char	   *member_id = cstring_from_wire(request.member_id);
		char	   *instance_id = NULL;

		if (req->api_version >= 7 && !SlStrIsNull(request.group_instance_id))
			instance_id = cstring_from_wire(request.group_instance_id);
		if (strlen(member_id) != (size_t) Max(request.member_id.len, 0) ||
			strlen(member_id) >= SL_GROUP_ID_LEN ||
			(instance_id && strlen(instance_id) >= SL_GROUP_ID_LEN))
			group_error = SL_ERR_UNKNOWN_MEMBER_ID;
		else
			group_error = SlGroupCheckCommit(group_id, member_id, instance_id,
											 req->api_version >= 1 ?
											 request.generation_id_or_member_epoch : -1,
											 req->api_version);
	}

	for (int t = 0; t < request.topics.n; t++)
		total += request.topics.items[t].partitions.n;
	offsets = palloc0(sizeof(SlGroupOffset) * Max(total, 1));
	slots = palloc0(sizeof(*slots) * Max(total, 1));

	SL_ARRAY_ALLOC(resp.topics, Max(request.topics.n, 0));
	for (int t = 0; t < request.topics.n; t++)
	{
		SlOffsetCommitRequestOffsetCommitRequestTopic *rt = &request.topics.items[t];
		SlOffsetCommitResponseOffsetCommitResponseTopic *tr = &resp.topics.items[t];
		int16		topic_error = SL_ERR_NONE;
		const SlTopic *topic = group_error == SL_ERR_NONE ?
			topic_from_wire(rt->name, SL_ACL_READ, &topic_error) : NULL;

		SlOffsetCommitResponseOffsetCommitResponseTopicInit(tr);
		tr->name = rt->name;
		SL_ARRAY_ALLOC(tr->partitions, Max(rt->partitions.n, 0));
		for (int p = 0; p < rt->partitions.n; p++)
		{
			SlOffsetCommitRequestOffsetCommitRequestPartition *rp = &rt->partitions.items[p];
			SlOffsetCommitResponseOffsetCommitResponsePartition *pr = &tr->partitions.items[p];
			SlStr		meta = rp->committed_metadata;

			SlOffsetCommitResponseOffsetCommitResponsePartitionInit(pr);
			pr->partition_index = rp->partition_index;
			if (group_error != SL_ERR_NONE)
				pr->error_code = group_error;
			else if (topic == NULL)
				pr->error_code = topic_error;
			else if (rp->partition_index < 0 ||
					 rp->partition_index >= topic->partition_count)
				pr->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			else if (meta.len > MAX_METADATA_BYTES)
				pr->error_code = SL_ERR_OFFSET_METADATA_TOO_LARGE;
			else if (meta.len > 0 && (memchr(meta.data, '\0', meta.len) != NULL ||
									  !pg_verifymbstr(meta.data, meta.len, true)))
				pr->error_code = SL_ERR_INVALID_COMMIT_OFFSET_SIZE;
			else if (rp->committed_offset < 0)
			{
				/* No committed offset, as Kafka answers for -1 */
				if (SlGroupOffsetsDelete(group_id, topic->topic_id, rp->partition_index, true) < 0)
					pr->error_code = SL_ERR_COORDINATOR_LOAD_IN_PROGRESS;
				else
					pr->error_code = SL_ERR_NONE;
			}
			else
			{
				SlGroupOffset *o = &offsets[n];

				o->topic_id = topic->topic_id;
				o->partition = rp->partition_index;
				o->committed_offset = rp->committed_offset;
				o->leader_epoch = req->api_version >= 6 ? rp->committed_leader_epoch : -1;
				o->metadata = SlStrIsNull(meta) ? NULL : cstring_from_wire(meta);
				slots[n++] = pr;
				pr->error_code = SL_ERR_NONE;
			}
		}
	}

	if (n > 0 && !SlGroupOffsetsCommit(group_id, offsets, n, true))
	{
		/* An SQL consumer's transaction holds a row: try again soon */
		for (int i = 0; i < n; i++)
			slots[i]->error_code = SL_ERR_COORDINATOR_LOAD_IN_PROGRESS;
	}
	else if (n > 0)
	{
		job->nwritten = n;
		job->written = slots;
		job->offsets_partition = -1;
		if (group_id != NULL)
		{
			int32		p;
			const SlTopic *topic = replicated_offsets_partition(group_id, &p);

			if (topic != NULL)
			{
				job->offsets_topic_id = topic->topic_id;
				job->offsets_partition = p;
				job->leader_epoch = SlTopicPartitionLeadership(topic, p)->leader_epoch;
				job->target = -1;
			}
		}
	}
	job->resp = resp;
	return true;
}

/*
 * After the commit: answer, or wait for the in-sync replicas of the
 * group's offsets partition (SlRecheckOffsetCommit)
 */
void
SlRespondOffsetCommit(SlRequest *req, SlWriter *out, ErrorData *error, bool own_error)
{
	CommitJob  *job = req->handler_state;

	if (job == NULL || !job->decoded)
	{
		req->send_response = false;
		req->close_after = true;
		return;
	}
	if (error)
	{
		int16		code = SlKafkaErrorForSqlstate(error->sqlerrcode, SL_API_OFFSET_COMMIT);

		for (int t = 0; t < job->resp.topics.n; t++)
			for (int p = 0; p < job->resp.topics.items[t].partitions.n; p++)
				job->resp.topics.items[t].partitions.items[p].error_code = code;
		SlOffsetCommitResponseEncode(out, job->api_version, &job->resp);
		return;
	}
	if (job->nwritten > 0 && job->offsets_partition >= 0)
	{
		/* outside a transaction here: SlRecheckOffsetCommit looks at once */
		req->state = SL_REQUEST_PARKED;
		req->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													OFFSET_COMMIT_TIMEOUT_MS);
		return;
	}
	SlOffsetCommitResponseEncode(out, job->api_version, &job->resp);
}

/*
 * A parked commit: answered once the high watermark of its offsets
 * partition reached the records it wrote; NOT_COORDINATOR if this node
 * stopped leading the partition meanwhile, COORDINATOR_NOT_AVAILABLE at
 * the timeout, as Kafka maps NOT_LEADER_OR_FOLLOWER and REQUEST_TIMED_OUT
 * of the coordinator's append
 */
void
SlRecheckOffsetCommit(SlRequest *req, SlWriter *out)
{
	CommitJob  *job = req->handler_state;
	const SlTopic *topic = SlTopicLookupById(job->offsets_topic_id);
	bool		still_leader = false;

	if (topic != NULL && job->offsets_partition >= topic->partition_count)
		topic = NULL;
	if (topic != NULL)
	{
		/* the first look, right after the commit: the log end holds its records */
		if (job->target < 0)
			job->target = SlPartitionLogEnd(topic, job->offsets_partition);
		SlRequestWaitOn(req, SlWaitKeyForPartition(SlMakePartitionKey(topic->topic_id,
																	  job->offsets_partition)));
		if (SlReplicaAcked(topic, job->offsets_partition, job->leader_epoch, job->target,
						   &still_leader))
		{
			SlWaitSetClear(&req->waiting_on);
			req->state = SL_REQUEST_DONE;
			SlOffsetCommitResponseEncode(out, job->api_version, &job->resp);
			return;
		}
	}
	if (topic != NULL && still_leader && !req->final_attempt)
	{
		req->state = SL_REQUEST_PARKED;
		return;
	}
	fail_written(job, still_leader ? SL_ERR_COORDINATOR_NOT_AVAILABLE : SL_ERR_NOT_COORDINATOR);
	SlWaitSetClear(&req->waiting_on);
	req->state = SL_REQUEST_DONE;
	SlOffsetCommitResponseEncode(out, job->api_version, &job->resp);
}

/* OffsetFetch */

/* What a group committed, for the partitions asked (or all if topics < 0) */
typedef struct FetchedTopic
{
	SlStr		name;
	int16		error;			/* of every partition: SL_ERR_NONE or TOPIC_AUTHORIZATION_FAILED */
	int			npartitions;
	int32	   *partitions;
	int64	   *offsets;
	int32	   *epochs;
	char	  **metadata;
	int16	   *errors;			/* per partition, or NULL: see mark_unstable */
} FetchedTopic;

/* The committed offsets of one topic's partitions (asked: NULL = all committed) */
static FetchedTopic *
fetch_topic(const char *group_id, SlStr name, const int32 *asked, int nasked)
{
	int16		error;
	const SlTopic *topic = topic_from_wire(name, SL_ACL_DESCRIBE, &error);
	FetchedTopic *ft = palloc0(sizeof(FetchedTopic));
	SlGroupOffset *rows = NULL;
	int			nrows = 0;

	ft->name = name;
	ft->error = error == SL_ERR_TOPIC_AUTHORIZATION_FAILED ? error : SL_ERR_NONE;
	if (topic != NULL && group_id != NULL)
		rows = SlGroupOffsetsFetch(group_id, topic->topic_id, &nrows);
	if (asked == NULL)
		nasked = nrows;
	ft->npartitions = nasked;
	ft->partitions = palloc0(sizeof(int32) * Max(nasked, 1));
	ft->offsets = palloc0(sizeof(int64) * Max(nasked, 1));
	ft->epochs = palloc0(sizeof(int32) * Max(nasked, 1));
	ft->metadata = palloc0(sizeof(char *) * Max(nasked, 1));
	for (int i = 0; i < nasked; i++)
	{
		ft->partitions[i] = asked ? asked[i] : rows[i].partition;
		ft->offsets[i] = -1;
		ft->epochs[i] = -1;
		ft->metadata[i] = "";
		for (int r = 0; r < nrows; r++)
		{
			if (rows[r].partition == ft->partitions[i])
			{
				ft->offsets[i] = rows[r].committed_offset;
				ft->epochs[i] = rows[r].leader_epoch;
				ft->metadata[i] = rows[r].metadata ? rows[r].metadata : "";
				break;
			}
		}
	}
	return ft;
}

/* Every partition a group committed, grouped by topic (List of FetchedTopic *) */
static List *
fetch_all(const char *group_id)
{
	List	   *result = NIL;
	SlGroupOffset *rows;
	int			nrows;
	int			i = 0;

	rows = SlGroupOffsetsFetch(group_id, -1, &nrows);
	while (i < nrows)
	{
		int32		topic_id = rows[i].topic_id;
		int			j = i;
		const SlTopic *topic;
		FetchedTopic *ft;

		while (j < nrows && rows[j].topic_id == topic_id)
			j++;
		topic = SlTopicLookupById(topic_id);
		if (topic != NULL && SlMayTopic(topic->name, SL_ACL_DESCRIBE))
		{
			ft = palloc0(sizeof(FetchedTopic));
			ft->name = SlStrFromCString(pstrdup(topic->name));
			ft->npartitions = j - i;
			ft->partitions = palloc(sizeof(int32) * (j - i));
			ft->offsets = palloc(sizeof(int64) * (j - i));
			ft->epochs = palloc(sizeof(int32) * (j - i));
			ft->metadata = palloc(sizeof(char *) * (j - i));
			for (int k = i; k < j; k++)
			{
				ft->partitions[k - i] = rows[k].partition;
				ft->offsets[k - i] = rows[k].committed_offset;
				ft->epochs[k - i] = rows[k].leader_epoch;
				ft->metadata[k - i] = rows[k].metadata ? rows[k].metadata : "";
			}
			result = lappend(result, ft);
		}
		i = j;
	}
	return result;
}

/*
 * v0-7 and v8+ answer the same way in different generated types (v8+
 * nests topics in groups): these two macros are the one copy of the loops
 * that go from those types to FetchedTopic and back.
 *
 * FETCH_ASKED_TOPICS sets result to the topics a request's array asked
 * (each a FetchedTopic), or to all the group committed if the array is
 * null (n < 0).
 */
#define FETCH_ASKED_TOPICS(result, group_id, asked) \
	do { \
		(result) = NIL; \
		if ((group_id) != NULL && (asked).n < 0) \
			(result) = fetch_all(group_id); \
		else \
			for (int i_ = 0; i_ < Max((asked).n, 0); i_++) \
				(result) = lappend((result), \
								   fetch_topic((group_id), (asked).items[i_].name, \
											   (asked).items[i_].partition_indexes.items, \
											   Max((asked).items[i_].partition_indexes.n, 0))); \
	} while (0)

/*
 * FILL_FETCHED_TOPICS fills a response's topics array from topics (List of
 * FetchedTopic), with the generated Init functions of its topic and
 * partition types; with_epoch says whether the version has leader epochs,
 * partition_error is the error of every partition (SL_ERR_NONE: each
 * topic's own).
 */
#define FILL_FETCHED_TOPICS(array, topics, TopicInit, PartitionInit, with_epoch, partition_error) \
	do { \
		ListCell   *lc_; \
		int			t_ = 0; \
\
		SL_ARRAY_ALLOC((array), list_length(topics)); \
		foreach(lc_, (topics)) \
		{ \
			FetchedTopic *ft_ = lfirst(lc_); \
\
			TopicInit(&(array).items[t_]); \
			(array).items[t_].name = ft_->name; \
			SL_ARRAY_ALLOC((array).items[t_].partitions, ft_->npartitions); \
			for (int p_ = 0; p_ < ft_->npartitions; p_++) \
			{ \
				PartitionInit(&(array).items[t_].partitions.items[p_]); \
				(array).items[t_].partitions.items[p_].partition_index = ft_->partitions[p_]; \
				(array).items[t_].partitions.items[p_].committed_offset = ft_->offsets[p_]; \
				(array).items[t_].partitions.items[p_].committed_leader_epoch = \
					(with_epoch) ? ft_->epochs[p_] : -1; \
				(array).items[t_].partitions.items[p_].metadata = \
					SlStrFromCString(ft_->metadata[p_]); \
				(array).items[t_].partitions.items[p_].error_code = \
					(partition_error) != SL_ERR_NONE ? (partition_error) : \
					ft_->errors != NULL && ft_->errors[p_] != SL_ERR_NONE ? ft_->errors[p_] : \
					ft_->error; \
			} \
			t_++; \
		} \
	} while (0)

/*
 * OffsetFetch v7+ with require_stable, as Kafka: a partition with an
 * offset pending in an open transaction (TxnOffsetCommit, KIP-447) answers
 * UNSTABLE_OFFSET_COMMIT and no offset, so that a consumer of a
 * read_committed group waits for the transaction rather than starting
 * from an offset about to change.
 */
static void
mark_unstable(const char *group_id, List *topics)
{
	ListCell   *lc;

	foreach(lc, topics)
	{
		FetchedTopic *ft = lfirst(lc);
		char	   *name = ft->error == SL_ERR_NONE ? SlTopicNameFromWire(ft->name) : NULL;
		const SlTopic *topic = name ? SlTopicLookup(name, true) : NULL;

		if (topic == NULL)
			continue;
		for (int i = 0; i < ft->npartitions; i++)
		{
			if (!SlTxnOffsetsPending(group_id, topic->topic_id, ft->partitions[i]))
				continue;
			if (ft->errors == NULL)
				ft->errors = palloc0(sizeof(int16) * ft->npartitions);
			ft->errors[i] = SL_ERR_UNSTABLE_OFFSET_COMMIT;
			ft->offsets[i] = -1;
			ft->epochs[i] = -1;
			ft->metadata[i] = "";
		}
	}
}

/* The answer for one group in the v0-7 layout */
static void
fetch_group_v0(const char *group_id, SlOffsetFetchRequest *request, int16 version,
			   SlOffsetFetchResponse *resp)
{
	List	   *topics = NIL;
	int16		group_error = SL_ERR_NONE;

	if (group_id == NULL)
		group_error = SL_ERR_INVALID_GROUP_ID;
	else if (!SlMayGroup(group_id, SL_ACL_DESCRIBE))
		group_error = SL_ERR_GROUP_AUTHORIZATION_FAILED;
	else if ((coordinator_error = SlGroupCoordinatorError(group_id)) != SL_ERR_NONE)
		group_error = coordinator_error;
	/* Nothing of a group the role may not describe, not even its topics */
	if (group_error != SL_ERR_GROUP_AUTHORIZATION_FAILED || version < 2)
		FETCH_ASKED_TOPICS(topics, group_error == SL_ERR_NONE ? group_id : NULL,
						   request->topics);
	if (group_error == SL_ERR_NONE && version >= 7 && request->require_stable)
		mark_unstable(group_id, topics);
	/* v0-1 have no group-level error: each partition carries it */
	FILL_FETCHED_TOPICS(resp->topics, topics,
						SlOffsetFetchResponseOffsetFetchResponseTopicInit,
						SlOffsetFetchResponseOffsetFetchResponsePartitionInit,
						version >= 5,
						version < 2 ? group_error : SL_ERR_NONE);
	resp->error_code = version < 2 ? SL_ERR_NONE : group_error;
}

/* The answer for one group of a v8+ request */
static void
fetch_group_v8(SlOffsetFetchRequestOffsetFetchRequestGroup *rg,
			   SlOffsetFetchResponseOffsetFetchResponseGroup *gr, bool require_stable)
{
	char	   *group_id = SlGroupIdFromWire(rg->group_id);
	List	   *topics = NIL;

	SlOffsetFetchResponseOffsetFetchResponseGroupInit(gr);
	gr->group_id = rg->group_id;
	gr->error_code = group_id == NULL ? SL_ERR_INVALID_GROUP_ID : SL_ERR_NONE;
	if (group_id != NULL && !SlMayGroup(group_id, SL_ACL_DESCRIBE))
		gr->error_code = SL_ERR_GROUP_AUTHORIZATION_FAILED;
	else if (group_id != NULL && (coordinator_error = SlGroupCoordinatorError(group_id)) != SL_ERR_NONE)
		gr->error_code = coordinator_error;
	if (gr->error_code == SL_ERR_NONE)
		FETCH_ASKED_TOPICS(topics, group_id, rg->topics);
	if (gr->error_code == SL_ERR_NONE && require_stable)
		mark_unstable(group_id, topics);
	FILL_FETCHED_TOPICS(gr->topics, topics,
						SlOffsetFetchResponseOffsetFetchResponseTopicsInit,
						SlOffsetFetchResponseOffsetFetchResponsePartitionsInit,
						true, SL_ERR_NONE);
}

bool
SlHandleOffsetFetch(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlOffsetFetchRequest request;
	SlOffsetFetchResponse resp;

	if (!SlOffsetFetchRequestDecode(body, req->api_version, &request))
		return false;
	SlOffsetFetchResponseInit(&resp);
	resp.throttle_time_ms = 0;
	if (req->api_version < 8)
	{
		SL_ARRAY_ALLOC(resp.groups, 0);
		fetch_group_v0(SlGroupIdFromWire(request.group_id), &request, req->api_version, &resp);
	}
	else
	{
		SL_ARRAY_ALLOC(resp.topics, 0);
		resp.error_code = SL_ERR_NONE;
		SL_ARRAY_ALLOC(resp.groups, Max(request.groups.n, 0));
		for (int g = 0; g < request.groups.n; g++)
			fetch_group_v8(&request.groups.items[g], &resp.groups.items[g],
						   request.require_stable);
	}
	SlOffsetFetchResponseEncode(out, req->api_version, &resp);
	return true;
}

/* OffsetDelete */

bool
SlHandleOffsetDelete(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlOffsetDeleteRequest request;
	SlOffsetDeleteResponse resp;
	char	   *group_id;
	SlGroupState state = SL_GROUP_EMPTY;
	bool		consumer = false;
	bool		known = false;
	List	   *subscribed = NIL;

	if (!SlOffsetDeleteRequestDecode(body, req->api_version, &request))
		return false;
	SlOffsetDeleteResponseInit(&resp);
	resp.throttle_time_ms = 0;
	resp.error_code = SL_ERR_NONE;
	SL_ARRAY_ALLOC(resp.topics, 0);

	group_id = SlGroupIdFromWire(request.group_id);
	if (group_id == NULL)
		resp.error_code = SL_ERR_INVALID_GROUP_ID;
	else if (!SlMayGroup(group_id, SL_ACL_DELETE))
		resp.error_code = SL_ERR_GROUP_AUTHORIZATION_FAILED;
	else if ((coordinator_error = SlGroupCoordinatorError(group_id)) != SL_ERR_NONE)
		resp.error_code = coordinator_error;
	else
	{
		known = SlGroupSubscriptions(group_id, &state, &consumer, &subscribed);
		if (!known && !SlGroupExists(group_id))
			resp.error_code = SL_ERR_GROUP_ID_NOT_FOUND;
		else if (known && state != SL_GROUP_EMPTY && !consumer)
			resp.error_code = SL_ERR_NON_EMPTY_GROUP;
	}
	if (resp.error_code != SL_ERR_NONE)
	{
		SlOffsetDeleteResponseEncode(out, req->api_version, &resp);
		return true;
	}

	SL_ARRAY_ALLOC(resp.topics, Max(request.topics.n, 0));
	for (int t = 0; t < request.topics.n; t++)
	{
		SlOffsetDeleteRequestOffsetDeleteRequestTopic *rt = &request.topics.items[t];
		SlOffsetDeleteResponseOffsetDeleteResponseTopic *tr = &resp.topics.items[t];
		int16		topic_error;
		const SlTopic *topic = topic_from_wire(rt->name, SL_ACL_READ, &topic_error);
		bool		in_use = false;
		ListCell   *lc;

		SlOffsetDeleteResponseOffsetDeleteResponseTopicInit(tr);
		tr->name = rt->name;
		if (known && state != SL_GROUP_EMPTY)
			foreach(lc, subscribed)
				in_use = in_use || SlStrEqualCString(rt->name, lfirst(lc));
		SL_ARRAY_ALLOC(tr->partitions, Max(rt->partitions.n, 0));
		for (int p = 0; p < rt->partitions.n; p++)
		{
			SlOffsetDeleteResponseOffsetDeleteResponsePartition *pr = &tr->partitions.items[p];
			int32		partition = rt->partitions.items[p].partition_index;

			SlOffsetDeleteResponseOffsetDeleteResponsePartitionInit(pr);
			pr->partition_index = partition;
			if (topic == NULL)
				pr->error_code = topic_error;
			else if (partition < 0 || partition >= topic->partition_count)
				pr->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			else if (in_use)
				pr->error_code = SL_ERR_GROUP_SUBSCRIBED_TO_TOPIC;
			else if (SlGroupOffsetsDelete(group_id, topic->topic_id, partition, true) < 0)
				pr->error_code = SL_ERR_COORDINATOR_LOAD_IN_PROGRESS;
			else
				pr->error_code = SL_ERR_NONE;
		}
	}
	SlOffsetDeleteResponseEncode(out, req->api_version, &resp);
	return true;
}
