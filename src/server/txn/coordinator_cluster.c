/*-------------------------------------------------------------------------
 * coordinator_cluster.c
 *	  The transaction coordinator on a cluster (coordinator_cluster.h).
 *
 * Markers to partitions led by other nodes go over the SQL side channel
 * the cluster already has (metadata/node_link.h), not Kafka's
 * WriteTxnMarkers (27): the coordinator's worker calls
 * streamlog._txn_write_marker() on the partition's leader, as the node
 * role of its advertised SQL conninfo, then
 * streamlog._txn_marker_replicated() there, which answers once the
 * partition's high watermark passed the marker.  Why: every node already
 * reaches every other one that way (SQL produce forwarding, the replicas'
 * side channel, remote reads), with its authentication and its bounded,
 * interruptible waits; WriteTxnMarkers would need a Kafka client in a
 * worker (connections, SASL/TLS to the other node's listener, a codec of
 * the request and its response) for the same two steps, and nothing but
 * brokers may send it anyway.  The waiting for replicas is the one thing
 * WriteTxnMarkers does not say; Kafka's leader answers it after its acks=-1
 * append, which is what the second call is.
 *
 * IDENTIFICATION
 *	  src/server/txn/coordinator_cluster.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/node_link.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/protocol/txn_log_records.h"
#include "streamlog/server/txn/coordinator_cluster.h"
#include "streamlog/server/txn/txn_machine.h"
#include "streamlog/storage/replica_log.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/txn_cluster.h"
#include "streamlog/storage/txn_state.h"
#include "streamlog/worker.h"

/*
 * How long a marker's leader may take to have its in-sync replicas hold
 * it (an ISR member that stopped is dropped after
 * streamlog.replica_lag_time_max_ms), and to connect to it
 */
#define MARKER_REPLICATED_TIMEOUT_MS 30000
#define MARKER_CONNECT_TIMEOUT_MS 5000
#define MARKER_QUERY_SLACK_MS 5000

/* Idle ids past this are not the worker's business (SlTxnStateDue) */
#define DUE_EXPIRATION_MS ((int64) 365 * 24 * 3600 * 1000)

/* Not more often than this per process: a failing creation logs each time */
#define CREATOR_INTERVAL_MS 1000

/*
 * A transaction of the worker's own, the caller's memory context staying
 * current across it (what is palloc'd between begin and commit outlives
 * the commit)
 */
static MemoryContext
begin(void)
{
	MemoryContext caller = CurrentMemoryContext;

	SlWorkerBeginTransaction();
	MemoryContextSwitchTo(caller);
	return caller;
}

static void
commit(MemoryContext caller)
{
	SlWorkerCommitTransaction();
	MemoryContextSwitchTo(caller);
}

int32
SlTxnCoordinatorNode(const char *transactional_id)
{
	const SlTopic *topic;

	if (!SlClusterEnabled())
		return sl_node_id;
	topic = SlTopicLookup(SL_TRANSACTION_STATE_TOPIC_NAME, true);
	if (topic == NULL || topic->partition_count <= 0 || topic->partitions == NULL)
		return -1;
	return SlTopicPartitionLeadership(topic,
									  SlTxnLogPartitionFor(transactional_id,
														   topic->partition_count))->leader;
}

int16
SlTxnCoordinatorError(const char *transactional_id)
{
	const SlTopic *topic;
	const SlPartitionLeadership *l;
	int32		p;

	if (!SlClusterEnabled())
		return SL_ERR_NONE;
	topic = SlTopicLookup(SL_TRANSACTION_STATE_TOPIC_NAME, true);
	if (topic == NULL || topic->partition_count <= 0 || topic->partitions == NULL)
		return SL_ERR_COORDINATOR_NOT_AVAILABLE;
	p = SlTxnLogPartitionFor(transactional_id, topic->partition_count);
	l = SlTopicPartitionLeadership(topic, p);
	if (l->leader != sl_node_id)
		return SL_ERR_NOT_COORDINATOR;
	return SlTxnStateLoaded(topic->topic_id, p, l->leader_epoch) ?
		SL_ERR_NONE : SL_ERR_COORDINATOR_LOAD_IN_PROGRESS;
}

/* A creator this process started, and when */
static BackgroundWorkerHandle *creator = NULL;
static TimestampTz creator_started = 0;

bool
SlTxnStateTopicReady(void)
{
	BackgroundWorker worker;
	pid_t		pid;
	TimestampTz now;
	MemoryContext oldcxt;
	bool		started;

	if (!SlClusterEnabled() || SlTopicLookup(SL_TRANSACTION_STATE_TOPIC_NAME, true) != NULL)
		return true;
	/* No controller to create it: not worth a worker */
	if (SlClusterControllerId() < 0)
		return false;
	if (creator != NULL)
	{
		if (GetBackgroundWorkerPid(creator, &pid) != BGWH_STOPPED)
			return false;
		pfree(creator);
		creator = NULL;
	}
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(creator_started, now, CREATOR_INTERVAL_MS))
		return false;
	creator_started = now;
	SlWorkerDescribe(&worker, "SlTxnStateTopicCreatorMain", "streamlog topic creator",
					 BGW_NEVER_RESTART);
	snprintf(worker.bgw_name, BGW_MAXLEN, "streamlog %s creator",
			 SL_TRANSACTION_STATE_TOPIC_NAME);
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	worker.bgw_notify_pid = 0;
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	started = RegisterDynamicBackgroundWorker(&worker, &creator);
	MemoryContextSwitchTo(oldcxt);
	if (!started)
	{
		creator = NULL;
		ereport(LOG,
				(errmsg("could not start a worker to create %s", SL_TRANSACTION_STATE_TOPIC_NAME),
				 errhint("Raise max_worker_processes.")));
	}
	return false;
}

/* Does this node coordinate the id, loaded?  *epoch: its coordinator epoch */
static bool
coordinated_here(const char *transactional_id, int32 *epoch)
{
	const SlTopic *topic = SlTopicLookup(SL_TRANSACTION_STATE_TOPIC_NAME, true);
	const SlPartitionLeadership *l;
	int32		p;

	*epoch = 0;
	if (topic == NULL || topic->partitions == NULL || topic->partition_count <= 0)
		return false;
	p = SlTxnLogPartitionFor(transactional_id, topic->partition_count);
	l = SlTopicPartitionLeadership(topic, p);
	*epoch = l->leader_epoch;
	return l->leader == sl_node_id &&
		SlTxnStateLoadedEpoch(topic->topic_id, p) == l->leader_epoch;
}

List *
SlTxnCompletionsDue(void)
{
	List	   *due = SlTxnStateDue(GetCurrentTimestamp(), DUE_EXPIRATION_MS);
	List	   *out = NIL;
	ListCell   *lc;

	foreach(lc, due)
	{
		const char *id = lfirst(lc);
		SlTxnStateRow row;
		int32		epoch;

		if (!coordinated_here(id, &epoch) || !SlTxnStateRead(id, &row))
			continue;
		if (row.state == SL_TXN_PREPARE_COMMIT || row.state == SL_TXN_PREPARE_ABORT)
			out = lappend(out, pstrdup(id));
	}
	return out;
}

/*
 * The partitions of __consumer_offsets of the groups of AddOffsetsToTxn
 * that were not added with them (the topic did not exist yet: see
 * coordinator.c, add_offsets_partition)
 */
static void
add_group_partitions(SlTxnCompletion *plan, const SlTxnStateRow *row)
{
	const SlTopic *offsets = row->ngroups > 0 ?
		SlTopicLookup(SL_OFFSETS_TOPIC_NAME, true) : NULL;
	int32	   *topic_ids;
	int32	   *partitions;

	if (offsets == NULL || offsets->partition_count <= 0)
		return;
	topic_ids = palloc(sizeof(int32) * (plan->npartitions + row->ngroups));
	partitions = palloc(sizeof(int32) * (plan->npartitions + row->ngroups));
	if (plan->npartitions > 0)
	{
		memcpy(topic_ids, plan->topic_ids, sizeof(int32) * plan->npartitions);
		memcpy(partitions, plan->partitions, sizeof(int32) * plan->npartitions);
	}
	plan->topic_ids = topic_ids;
	plan->partitions = partitions;
	for (int g = 0; g < row->ngroups; g++)
	{
		int32		p = SlOffsetsGroupPartition(row->groups[g], offsets->partition_count);
		bool		have = false;

		for (int i = 0; i < plan->npartitions && !have; i++)
			have = topic_ids[i] == offsets->topic_id && partitions[i] == p;
		if (have)
			continue;
		topic_ids[plan->npartitions] = offsets->topic_id;
		partitions[plan->npartitions++] = p;
	}
}

/*
 * Where the id's Prepare state is in its partition of __transaction_state:
 * below the log end now, as it is committed
 */
static void
state_position(const char *transactional_id, SlTxnCompletion *plan)
{
	const SlTopic *topic = SlTopicLookup(SL_TRANSACTION_STATE_TOPIC_NAME, true);

	plan->state_topic_id = topic->topic_id;
	plan->state_partition = SlTxnLogPartitionFor(transactional_id, topic->partition_count);
	plan->state_log_end = SlPartitionLogEnd(topic, plan->state_partition);
}

bool
SlTxnCompletionPlan(const char *transactional_id, SlTxnCompletion *plan)
{
	SlTxnStateRow row;
	int32		epoch;

	memset(plan, 0, sizeof(*plan));
	if (!coordinated_here(transactional_id, &epoch) ||
		!SlTxnStateRead(transactional_id, &row) ||
		(row.state != SL_TXN_PREPARE_COMMIT && row.state != SL_TXN_PREPARE_ABORT))
		return false;
	plan->producer_id = row.producer_id;
	plan->producer_epoch = row.producer_epoch;
	plan->state = row.state;
	plan->coordinator_epoch = epoch;
	plan->npartitions = row.npartitions;
	plan->topic_ids = row.topic_ids;
	plan->partitions = row.partitions;
	add_group_partitions(plan, &row);
	state_position(transactional_id, plan);
	return true;
}

bool
SlTxnCompletionFinish(const char *transactional_id, const SlTxnCompletion *plan)
{
	SlTxnStateRow row;
	int32		epoch;

	if (!coordinated_here(transactional_id, &epoch) || epoch != plan->coordinator_epoch ||
		!SlTxnStateTryLock(transactional_id) || !SlTxnStateRead(transactional_id, &row) ||
		row.state != plan->state || row.producer_id != plan->producer_id ||
		row.producer_epoch != plan->producer_epoch)
		return false;
	row.state = plan->state == SL_TXN_PREPARE_COMMIT ?
		SL_TXN_COMPLETE_COMMIT : SL_TXN_COMPLETE_ABORT;
	row.npartitions = 0;
	row.ngroups = 0;
	SlTxnStateWrite(transactional_id, &row);
	return true;
}

/* The links of this process to the leaders it wrote markers on */
static SlNodeLink links[SL_MAX_NODES];
static int	nlinks = 0;

void
SlTxnCoordinatorDisconnect(void)
{
	for (int i = 0; i < nlinks; i++)
		SlNodeLinkDrop(&links[i]);
}

static SlNodeLink *
link_of(int32 node_id)
{
	for (int i = 0; i < nlinks; i++)
		if (links[i].node_id == node_id)
			return &links[i];
	if (nlinks == SL_MAX_NODES)
	{
		SlNodeLinkDrop(&links[0]);
		links[0].node_id = -1;
		return &links[0];
	}
	links[nlinks].node_id = -1;
	links[nlinks].conninfo[0] = '\0';
	links[nlinks].conn = NULL;
	return &links[nlinks++];
}

/* A text column of a remote answer as an int8, checked; false if not one */
static bool
result_int(PGresult *res, int col, int64 *out)
{
	const char *s;
	char	   *end = NULL;
	long long	v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
		PQnfields(res) <= col || PQgetisnull(res, 0, col))
		return false;
	s = PQgetvalue(res, 0, col);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	*out = v;
	return true;
}

/*
 * Run query on node_id's SQL; its one row, or NULL with *why (the link is
 * dropped after anything but an answer)
 */
static PGresult *
remote_query(int32 node_id, const char *conninfo, const char *query, int nparams,
			 const char *const *params, int timeout_ms, char **why)
{
	SlNodeLink *link = link_of(node_id);
	PGresult   *res = NULL;
	PGconn	   *conn;

	conn = SlNodeLinkOpen(link, node_id, conninfo,
						  psprintf("streamlog transaction coordinator of node %d", sl_node_id),
						  NULL, NULL,
						  TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  MARKER_CONNECT_TIMEOUT_MS),
						  why);
	if (conn == NULL)
		return NULL;
	if (SlNodeLinkQuery(conn, query, nparams, NULL, params, NULL, NULL, 0,
						TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms),
						&res, why) != SL_NODE_LINK_ANSWERED)
	{
		PQclear(res);
		SlNodeLinkDrop(link);
		return NULL;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		*why = pstrdup(PQresultErrorMessage(res));
		PQclear(res);
		return NULL;
	}
	return res;
}

/* One partition's marker on its way */
typedef struct MarkerTrip
{
	int32		topic_id;
	int32		partition;
	int32		leader;			/* -1: nothing to do (topic dropped) */
	int32		leader_epoch;	/* the epoch it was written in */
	int64		offset;			/* -1: not written yet */
} MarkerTrip;

/* node's SQL conninfo, or NULL (logged) */
static const char *
conninfo_of(int32 node_id)
{
	SlClusterNode node;

	if (!SlClusterGetNode(node_id, &node) || node.sql_conninfo[0] == '\0')
	{
		ereport(LOG,
				(errmsg("streamlog transaction coordinator: node %d, leader of a partition of a transaction, has no known SQL address",
						node_id)));
		return NULL;
	}
	return pstrdup(node.sql_conninfo);
}

/* The marker of trip written by its leader, another node */
static bool
write_remote(const SlTxnCompletion *plan, MarkerTrip *trip)
{
	const char *conninfo = conninfo_of(trip->leader);
	char		args[6][32];
	const char *params[6];
	PGresult   *res;
	char	   *why = NULL;
	int64		offset;
	int64		epoch;

	if (conninfo == NULL)
		return false;
	snprintf(args[0], 32, "%d", trip->topic_id);
	snprintf(args[1], 32, "%d", trip->partition);
	snprintf(args[2], 32, INT64_FORMAT, plan->producer_id);
	snprintf(args[3], 32, "%d", plan->producer_epoch);
	snprintf(args[4], 32, "%s", plan->state == SL_TXN_PREPARE_COMMIT ? "true" : "false");
	snprintf(args[5], 32, "%d", plan->coordinator_epoch);
	for (int i = 0; i < 6; i++)
		params[i] = args[i];
	res = remote_query(trip->leader, conninfo,
					   "SELECT marker_offset, leader_epoch FROM "
					   "streamlog._txn_write_marker($1::integer, $2::integer, $3::bigint, "
					   "$4::smallint, $5::boolean, $6::integer)",
					   6, params, MARKER_REPLICATED_TIMEOUT_MS, &why);
	if (res == NULL || !result_int(res, 0, &offset) || !result_int(res, 1, &epoch) ||
		offset < 0 || epoch < 0 || epoch > PG_INT32_MAX)
	{
		PQclear(res);
		ereport(LOG,
				(errmsg("streamlog transaction coordinator: node %d did not write the marker of producer %lld on partition %d of topic %d: %s",
						trip->leader, (long long) plan->producer_id, trip->partition,
						trip->topic_id,
						why ? why : "an answer that is not a marker's offset and epoch")));
		return false;
	}
	PQclear(res);
	trip->offset = offset;
	trip->leader_epoch = (int32) epoch;
	return true;
}

/* Wait until the in-sync replicas of trip's leader, another node, hold it */
static bool
replicated_remote(const SlTxnCompletion *plan, const MarkerTrip *trip)
{
	const char *conninfo = conninfo_of(trip->leader);
	char		args[5][32];
	const char *params[5];
	PGresult   *res;
	char	   *why = NULL;
	int64		replicated;

	if (conninfo == NULL)
		return false;
	snprintf(args[0], 32, "%d", trip->topic_id);
	snprintf(args[1], 32, "%d", trip->partition);
	snprintf(args[2], 32, "%d", trip->leader_epoch);
	snprintf(args[3], 32, INT64_FORMAT, trip->offset);
	snprintf(args[4], 32, "%d", MARKER_REPLICATED_TIMEOUT_MS);
	for (int i = 0; i < 5; i++)
		params[i] = args[i];
	res = remote_query(trip->leader, conninfo,
					   "SELECT streamlog._txn_marker_replicated($1::integer, $2::integer, "
					   "$3::integer, $4::bigint, $5::integer)::integer",
					   5, params, MARKER_REPLICATED_TIMEOUT_MS + MARKER_QUERY_SLACK_MS, &why);
	if (res == NULL || !result_int(res, 0, &replicated) || replicated != 1)
	{
		PQclear(res);
		ereport(LOG,
				(errmsg("streamlog transaction coordinator: the marker of producer %lld at offset %lld of partition %d of topic %d is not on node %d's in-sync replicas yet%s%s",
						(long long) plan->producer_id, (long long) trip->offset,
						trip->partition, trip->topic_id, trip->leader,
						why ? ": " : "", why ? why : "")));
		return false;
	}
	PQclear(res);
	return true;
}

/*
 * Three steps, so that the replication of the markers overlaps: the
 * markers of the partitions led here, in one transaction; then those of
 * other nodes, one call each; then the waits for their in-sync replicas,
 * which by then have mostly been at it meanwhile (the total is about the
 * slowest partition's, not their sum)
 */
bool
SlTxnDeliverMarkers(const SlTxnCompletion *plan)
{
	MarkerTrip *trips = palloc0(sizeof(MarkerTrip) * Max(plan->npartitions, 1));
	MemoryContext cxt;
	bool		decided;

	/*
	 * Not one marker before the decision is on the in-sync replicas of
	 * __transaction_state, as Kafka writes markers only once PrepareCommit
	 * is appended with acks=all: a coordinator killed after a marker but
	 * before that would leave a successor that finds the transaction
	 * Ongoing, aborts it at its timeout, and the partition that got the
	 * COMMIT marker committed alone
	 */
	cxt = begin();
	decided = plan->state_log_end <= 0 ||
		SlTxnWaitReplicated(plan->state_topic_id, plan->state_partition,
							plan->coordinator_epoch, plan->state_log_end - 1,
							MARKER_REPLICATED_TIMEOUT_MS);
	commit(cxt);
	if (!decided)
	{
		ereport(LOG,
				(errmsg("streamlog transaction coordinator: the end of producer %lld's transaction is not on the in-sync replicas of %s-%d yet",
						(long long) plan->producer_id, SL_TRANSACTION_STATE_TOPIC_NAME,
						plan->state_partition)));
		return false;
	}

	cxt = begin();
	for (int i = 0; i < plan->npartitions; i++)
	{
		MarkerTrip *trip = &trips[i];
		const SlTopic *topic;

		trip->topic_id = plan->topic_ids[i];
		trip->partition = plan->partitions[i];
		trip->leader = -1;
		trip->offset = -1;
		topic = SlTopicLookupById(trip->topic_id);
		if (topic != NULL)
			topic = SlTopicTryLookupAndLock(topic->name, AccessShareLock);
		/* A topic dropped since: nothing left to mark */
		if (topic == NULL || topic->topic_id != trip->topic_id ||
			trip->partition >= topic->partition_count)
			continue;
		trip->leader = topic->partitions != NULL ?
			SlTopicPartitionLeadership(topic, trip->partition)->leader : sl_node_id;
		if (trip->leader < 0)
		{
			commit(cxt);
			return false;		/* offline: the next pass looks again */
		}
		if (trip->leader == sl_node_id)
			trip->offset = SlTxnApplyMarker(topic, trip->partition, plan->producer_id,
											plan->producer_epoch,
											plan->state == SL_TXN_PREPARE_COMMIT,
											plan->coordinator_epoch, &trip->leader_epoch);
	}
	commit(cxt);

	for (int i = 0; i < plan->npartitions; i++)
		if (trips[i].leader >= 0 && trips[i].leader != sl_node_id &&
			!write_remote(plan, &trips[i]))
			return false;

	for (int i = 0; i < plan->npartitions; i++)
	{
		MarkerTrip *trip = &trips[i];
		bool		ok;

		if (trip->leader < 0)
			continue;
		if (trip->leader != sl_node_id)
		{
			if (!replicated_remote(plan, trip))
				return false;
			continue;
		}
		cxt = begin();
		ok = SlTxnWaitReplicated(trip->topic_id, trip->partition, trip->leader_epoch,
								 trip->offset, MARKER_REPLICATED_TIMEOUT_MS);
		commit(cxt);
		if (!ok)
		{
			ereport(LOG,
					(errmsg("streamlog transaction coordinator: the marker of producer %lld at offset %lld of partition %d of topic %d is not on its in-sync replicas yet",
							(long long) plan->producer_id, (long long) trip->offset,
							trip->partition, trip->topic_id)));
			return false;
		}
	}
	return true;
}

typedef struct LoadAction
{
	int32		partition;
	int32		epoch;			/* to load for; -1: unload */
} LoadAction;

/*
 * Whether this process dropped, once since it started, the rows of every
 * partition this node does not lead: rows a node kept from before a
 * restart, when it led partitions that moved meanwhile (the loads in
 * shared memory start empty, so they look never loaded)
 */
static bool swept = false;

int
SlTxnCoordinatorSyncLoads(void)
{
	const SlTopic *topic;
	LoadAction *actions;
	int			nactions = 0;
	int32		topic_id;
	int			changed = 0;
	MemoryContext cxt;

	cxt = begin();
	topic = SlTopicLookup(SL_TRANSACTION_STATE_TOPIC_NAME, true);
	if (topic == NULL || topic->partitions == NULL || topic->partition_count <= 0)
	{
		commit(cxt);
		return 0;
	}
	topic_id = topic->topic_id;
	actions = palloc(sizeof(LoadAction) * topic->partition_count);
	for (int32 p = 0; p < topic->partition_count; p++)
	{
		const SlPartitionLeadership *l = SlTopicPartitionLeadership(topic, p);
		int32		loaded = SlTxnStateLoadedEpoch(topic_id, p);

		if (l->leader == sl_node_id && loaded != l->leader_epoch)
			actions[nactions++] = (LoadAction) {p, l->leader_epoch};
		else if (l->leader != sl_node_id && (loaded != -1 || !swept))
			actions[nactions++] = (LoadAction) {p, -1};
	}
	commit(cxt);
	swept = true;

	for (int i = 0; i < nactions; i++)
	{
		int32		p = actions[i].partition;
		const SlPartitionLeadership *l;
		int64		n;

		cxt = begin();
		topic = SlTopicTryLookupAndLock(SL_TRANSACTION_STATE_TOPIC_NAME, AccessShareLock);
		if (topic == NULL || topic->topic_id != topic_id || p >= topic->partition_count)
		{
			commit(cxt);
			break;
		}
		l = SlTopicPartitionLeadership(topic, p);
		if (actions[i].epoch >= 0 &&
			(l->leader != sl_node_id || l->leader_epoch != actions[i].epoch))
		{
			commit(cxt);
			continue;
		}
		/* Unload first: from now on this node answers NOT_COORDINATOR */
		if (actions[i].epoch < 0)
			SlTxnStateUnload(topic_id, p);
		n = actions[i].epoch >= 0 ? SlTxnStateLoadPartition(topic, p) :
			SlTxnStateDropPartition(topic, p);
		commit(cxt);
		if (actions[i].epoch >= 0)
		{
			SlTxnStateMarkLoaded(topic_id, p, actions[i].epoch);
			ereport(LOG,
					(errmsg("streamlog: loaded %lld transactional ids of %s-%d as its leader in epoch %d",
							(long long) n, SL_TRANSACTION_STATE_TOPIC_NAME, p,
							actions[i].epoch)));
		}
		changed++;
	}
	return changed;
}
