/*-------------------------------------------------------------------------
 * apply_worker.c
 *	  A follower's apply worker for one leader: streams the leader's
 *	  appends from the slot kept for this follower and writes them here
 *	  at the leader's offsets (CLUSTER.md section 3).
 *
 * A session with the leader goes:
 *
 * 1. The replication origin streamlog_leader_<L> is this worker's (so its
 *	  commits record how far the stream was applied, and this node's own
 *	  walsenders skip what it wrote); the slot streamlog_follower_<me> is
 *	  created on the leader over the replication connection if missing.
 * 2. Each partition this node follows from L is brought in step through
 *	  the side channel (a plain SQL connection to L) whenever its leader
 *	  epoch is new to the worker: truncated to where the leader says its
 *	  last epoch ended (_epoch_end_offset, KIP-279), then read up to the
 *	  leader's log end (_replica_read) for whatever is older than the slot.
 * 3. START_REPLICATION from the origin's position.  Batches of one leader
 *	  transaction are applied in one local transaction that commits with
 *	  the origin's progress, durably (synchronous_commit on); only then is
 *	  the flush position reported to the walsender and the partitions' log
 *	  ends to the leader (_replica_progress), whose answer sets the local
 *	  high watermark.  Idle, progress is still reported every
 *	  replica_lag_time_max_ms / 3.
 *
 * A batch is applied only if the catalog says L leads its partition in the
 * batch's epoch and this node is a replica.  A batch of a newer epoch than
 * the catalog knows waits for the catalog (the stream stops and resumes
 * from the origin); one of an older epoch was decoded from the WAL of L's
 * earlier term, which L may have truncated since, so it is never applied
 * from the stream: what L holds now is read through the side channel.  A batch below the log end is held
 * already; one above it is a gap, caught up through the side channel, never
 * appended.  A message that fails validation stops the stream with a log
 * line and nothing of it applied; the session is retried from the origin.
 *
 * An ERROR in a session (a lost connection, a dropped topic) ends the
 * session, not the worker: it is reported and the session retried after
 * SL_APPLY_RETRY_MS.
 *
 * IDENTIFICATION
 *	  src/replication/apply_worker.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlogdefs.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/origin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/protocol/records.h"
#include "streamlog/replication/apply_worker.h"
#include "streamlog/replication/leader_link.h"
#include "streamlog/replication/stream_message.h"
#include "streamlog/storage/replica_followed.h"
#include "streamlog/storage/replica_log.h"
#include "streamlog/storage/replica_progress.h"
#include "streamlog/storage/storage.h"
#include "streamlog/worker.h"

#define SL_APPLY_RETRY_MS 1000
#define SL_APPLY_CONNECT_TIMEOUT_MS 10000
#define SL_APPLY_QUERY_TIMEOUT_MS 30000
#define SL_APPLY_REFRESH_MS 1000
#define SL_APPLY_FEEDBACK_MS 10000
#define SL_APPLY_CATCH_UP_BYTES (1024 * 1024)
#define SL_APPLY_LOG_START_MS 2000
/*
 * Batches appended per catch-up transaction: each holds one of the
 * partition's in-flight reservations (64, partition_state.c) until the
 * transaction ends, and a transaction waiting for a free one would wait on
 * itself.
 */
#define SL_APPLY_CATCH_UP_BATCHES 32

/* How a session ended */
typedef enum SessionEnd
{
	SESSION_RETRY,				/* the stream stopped: start again later */
	SESSION_DONE				/* nothing to follow from this leader */
} SessionEnd;

/* A partition followed from this leader */
typedef struct FollowedKey
{
	int32		topic_id;
	int32		partition;
} FollowedKey;

typedef struct Followed
{
	FollowedKey key;
	int32		leader_epoch;	/* as the catalog last said */
	int32		synced_epoch;	/* truncated and caught up in; -1 not yet */
	bool		present;		/* in the last refresh */
} Followed;

/* A decoded batch of the leader transaction being received */
typedef struct PendingBatch
{
	SlStreamBatch batch;		/* data copied into txn_context */
	bool		skip;			/* of an earlier term, replaced by a catch-up */
} PendingBatch;

static int32 leader_id = -1;
static char slot_name[NAMEDATALEN];
static char origin_name[NAMEDATALEN];
static RepOriginId origin_id = InvalidRepOriginId;

static PGconn *repl_conn = NULL;
static PGconn *side_conn = NULL;

static MemoryContext session_context = NULL;	/* reset per session */
static MemoryContext txn_context = NULL;	/* reset per leader transaction */
static MemoryContext work_context = NULL;	/* reset after each periodic task */
static HTAB *followed = NULL;	/* FollowedKey -> Followed, in session_context */
static List *pending = NIL;		/* of PendingBatch, in txn_context */

static XLogRecPtr last_received = InvalidXLogRecPtr;
static XLogRecPtr last_flushed = InvalidXLogRecPtr;
static TimestampTz last_feedback = 0;
static TimestampTz last_progress = 0;
static TimestampTz last_refresh = 0;
/* the catalog's index at the last refresh: a newer one may move leaderships */
static uint64 refreshed_catalog = 0;
static TimestampTz last_log_start = 0;
static bool progress_missing_logged = false;
static bool progress_due = false;	/* applied since the last report */

/* ---- transactions ------------------------------------------------------ */

/*
 * Transactions leave the caller's memory context current when they end
 * (CommitTransactionCommand would leave TopMemoryContext, where whatever
 * follows would leak)
 */
static MemoryContext txn_caller_context = NULL;

static void
begin_txn(void)
{
	txn_caller_context = CurrentMemoryContext;
	SlWorkerBeginTransaction();
}

static void
commit_txn(void)
{
	SlWorkerCommitTransaction();
	MemoryContextSwitchTo(txn_caller_context);
}

static void
abort_txn(void)
{
	AbortCurrentTransaction();
	MemoryContextSwitchTo(txn_caller_context);
}

/*
 * The topic of a followed partition, locked for the transaction, if L still
 * leads the partition and this node is one of its replicas; else NULL.
 * *leadership is set when the topic exists.
 */
static const SlTopic *
lock_followed(int32 topic_id, int32 partition, const SlPartitionLeadership **leadership)
{
	const SlTopic *topic = SlTopicLookupById(topic_id);
	const SlPartitionLeadership *l;
	bool		replica = false;

	*leadership = NULL;
	if (topic == NULL)
		return NULL;
	topic = SlTopicTryLookupAndLock(topic->name, AccessShareLock);
	if (topic == NULL || topic->topic_id != topic_id || partition >= topic->partition_count ||
		topic->partitions == NULL)
		return NULL;
	l = SlTopicPartitionLeadership(topic, partition);
	*leadership = l;
	for (int i = 0; i < l->nreplicas; i++)
		if (l->replicas[i] == sl_node_id)
			replica = true;
	if (!replica || l->leader != leader_id)
		return NULL;
	return topic;
}

/*
 * This node leads a partition since the leadership this worker followed:
 * the stream stops (it starts again from the catalog it then reads)
 */
static void
log_fenced(int32 topic_id, int32 partition)
{
	ereport(LOG,
			(errmsg("stopping the stream from leader %d: this node now leads topic id %d partition %d",
					leader_id, topic_id, partition)));
}

/* ---- the side channel ---------------------------------------------------- */

/* The side channel, connected now if needed; ERROR if it cannot be */
static PGconn *
side_channel(const char *conninfo)
{
	char	   *why = NULL;

	if (side_conn != NULL && PQstatus(side_conn) == CONNECTION_OK &&
		PQtransactionStatus(side_conn) == PQTRANS_IDLE)
		return side_conn;
	SlLeaderDisconnect(side_conn);
	side_conn = SlLeaderConnect(conninfo, false, "streamlog apply side channel",
								SL_APPLY_CONNECT_TIMEOUT_MS, &why);
	if (side_conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not connect to the side channel of leader %d: %s",
						leader_id, why)));
	return side_conn;
}

/* Run a side-channel query; ERROR unless it answered rows */
static PGresult *
side_query(const char *conninfo, const char *query, int nparams, const char *const *values)
{
	char	   *why = NULL;
	PGresult   *res = SlLeaderQuery(side_channel(conninfo), query, nparams, values,
									true, SL_APPLY_QUERY_TIMEOUT_MS, &why);

	if (res == NULL)
	{
		SlLeaderDisconnect(side_conn);
		side_conn = NULL;
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("side channel to leader %d failed: %s", leader_id, why)));
	}
	return res;
}

/* The SQLSTATE of a failed result, "" if none */
static const char *
result_sqlstate(const PGresult *res)
{
	const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return s ? s : "";
}

/*
 * KIP-279: truncate what this log holds beyond the point where its last
 * epoch ended on the leader.  One round: the answer for the last epoch E
 * is (E', end); if E' < E the leader never had E, and this log's E' run
 * ends at min(end, where E' ends here).
 */
static void
truncate_to_leader(const char *conninfo, const Followed *f)
{
	const SlPartitionLeadership *l;
	const SlTopic *topic;
	int32		last_epoch;
	int64		log_end;
	int64		target;
	int64		end_epoch;
	int64		end_offset;
	char		args[3][16];
	const char *values[3];
	PGresult   *res;

	begin_txn();
	topic = lock_followed(f->key.topic_id, f->key.partition, &l);
	if (topic == NULL)
	{
		commit_txn();
		return;
	}
	last_epoch = SlPartitionLastEpoch(topic, f->key.partition);
	log_end = SlPartitionLogEnd(topic, f->key.partition);
	commit_txn();
	if (last_epoch < 0)
		return;					/* an empty log has nothing to truncate */

	snprintf(args[0], sizeof(args[0]), "%d", f->key.topic_id);
	snprintf(args[1], sizeof(args[1]), "%d", f->key.partition);
	snprintf(args[2], sizeof(args[2]), "%d", last_epoch);
	for (int i = 0; i < 3; i++)
		values[i] = args[i];
	res = side_query(conninfo,
					 "SELECT end_epoch, end_offset FROM streamlog._epoch_end_offset($1, $2, $3)",
					 3, values);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
		!SlLeaderResultInt(res, 0, 0, 4, &end_epoch) ||
		!SlLeaderResultInt(res, 0, 1, 8, &end_offset))
	{
		char	   *msg = pchomp(PQresultErrorMessage(res));

		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("leader %d gave no usable end offset of epoch %d of topic id %d partition %d%s%s",
						leader_id, last_epoch, f->key.topic_id, f->key.partition,
						*msg ? ": " : "", msg)));
	}
	PQclear(res);

	begin_txn();
	topic = lock_followed(f->key.topic_id, f->key.partition, &l);
	if (topic == NULL)
	{
		commit_txn();
		return;
	}
	log_end = SlPartitionLogEnd(topic, f->key.partition);
	if (end_epoch < 0 || end_offset < 0)
	{
		/* The leader holds no epoch <= ours: keep what it has acknowledged */
		SlPartitionOffsets offsets;

		SlPartitionGetOffsets(topic->topic_id, f->key.partition, &offsets);
		target = offsets.high_watermark;
	}
	else
	{
		target = end_offset;
		if (end_epoch < last_epoch)
		{
			int32		here_epoch;
			int64		here_end;

			SlPartitionEpochEndOffset(topic, f->key.partition, (int32) end_epoch,
									  l->leader_epoch, &here_epoch, &here_end);
			if (here_end >= 0)
				target = Min(target, here_end);
		}
	}
	if (target < log_end)
	{
		int64		removed = SlPartitionTruncate(topic, f->key.partition, target);

		ereport(LOG,
				(errmsg("truncated partition %d of topic \"%s\" to offset " INT64_FORMAT
						" (" INT64_FORMAT " batches) where its epoch %d ended on leader %d",
						f->key.partition, topic->name, target, removed, last_epoch,
						leader_id)));
	}
	commit_txn();
}

/*
 * The leader's log start offset of a followed partition (what retention
 * and DeleteRecords left it); ERROR if it gives none
 */
static int64
leader_log_start(const char *conninfo, const Followed *f)
{
	char		args[2][16];
	const char *values[2];
	PGresult   *res;
	int64		start;

	snprintf(args[0], sizeof(args[0]), "%d", f->key.topic_id);
	snprintf(args[1], sizeof(args[1]), "%d", f->key.partition);
	values[0] = args[0];
	values[1] = args[1];
	res = side_query(conninfo,
					 "SELECT log_start_offset FROM streamlog.partition_state($1, $2)",
					 2, values);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
		!SlLeaderResultInt(res, 0, 0, 8, &start) || start < 0)
	{
		char	   *msg = pchomp(PQresultErrorMessage(res));

		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("leader %d gave no usable log start offset of topic id %d partition %d%s%s",
						leader_id, f->key.topic_id, f->key.partition,
						*msg ? ": " : "", msg)));
	}
	PQclear(res);
	return start;
}

/*
 * Kafka's truncateFullyAndStartAt, in the caller's transaction before it
 * appends to the partition: the leader's log starts at leader_start, above
 * this log's end, so what this log lacks is gone there.  This log is
 * emptied to take next the leader's first batch, at next_offset (which
 * holds leader_start, or is where the leader's log ends), and starts at
 * leader_start, within that batch.
 */
static void
start_at_leader_log_start(const SlTopic *topic, const Followed *f, int64 log_end,
						  int64 next_offset, int64 leader_start)
{
	int64		removed = SlPartitionTruncateFullyAndStartAt(topic, f->key.partition,
															 next_offset, leader_start);

	ereport(LOG,
			(errmsg("emptied partition %d of topic \"%s\" (" INT64_FORMAT " batches) to go on at offset "
					INT64_FORMAT " with log start offset " INT64_FORMAT
					": the log of leader %d starts above this log's end " INT64_FORMAT,
					f->key.partition, topic->name, removed, next_offset, leader_start,
					leader_id, log_end)));
}

/*
 * Read the leader's log from this log's end until it has nothing more,
 * appending what it sends in transactions of at most SL_APPLY_CATCH_UP_BATCHES
 * batches (reads of SL_APPLY_CATCH_UP_BYTES): what is older than
 * the slot, or a gap the stream showed.  Returns false if a batch was
 * invalid (nothing of it applied).
 */
static bool
catch_up(const char *conninfo, const Followed *f)
{
	/*
	 * What lies below the leader's log start is deleted there, even while
	 * its rows are still stored: a log that ends below it starts over at
	 * the leader's batch holding it
	 */
	int64		leader_start = leader_log_start(conninfo, f);

	for (;;)
	{
		const SlPartitionLeadership *l;
		const SlTopic *topic;
		int64		log_end;
		char		args[4][24];
		const char *values[4];
		PGresult   *res;
		int			nrows;
		int64		appended = 0;

		begin_txn();
		topic = lock_followed(f->key.topic_id, f->key.partition, &l);
		if (topic == NULL)
		{
			commit_txn();
			return true;
		}
		log_end = SlPartitionLogEnd(topic, f->key.partition);
		commit_txn();

		snprintf(args[0], sizeof(args[0]), "%d", f->key.topic_id);
		snprintf(args[1], sizeof(args[1]), "%d", f->key.partition);
		snprintf(args[2], sizeof(args[2]), INT64_FORMAT, Max(log_end, leader_start));
		snprintf(args[3], sizeof(args[3]), "%d", SL_APPLY_CATCH_UP_BYTES);
		for (int i = 0; i < 4; i++)
			values[i] = args[i];
		res = side_query(conninfo,
						 "SELECT base_offset, last_offset, leader_epoch, append_time, batch "
						 "FROM streamlog._replica_read($1, $2, $3, $4)", 4, values);
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 5)
		{
			char	   *msg = pchomp(PQresultErrorMessage(res));

			PQclear(res);
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("leader %d could not be read from offset " INT64_FORMAT
							" of topic id %d partition %d: %s",
							leader_id, log_end, f->key.topic_id, f->key.partition, msg)));
		}
		nrows = PQntuples(res);
		if (nrows == 0)
		{
			PQclear(res);
			/* Nothing from there on: held, or every record is deleted there */
			if (leader_start <= log_end)
				return true;
			begin_txn();
			topic = lock_followed(f->key.topic_id, f->key.partition, &l);
			if (topic != NULL && SlPartitionLogEnd(topic, f->key.partition) == log_end)
				start_at_leader_log_start(topic, f, log_end, leader_start, leader_start);
			commit_txn();
			return true;
		}

		begin_txn();
		topic = lock_followed(f->key.topic_id, f->key.partition, &l);
		for (int i = 0; topic != NULL && i < nrows; i++)
		{
			SlReplicaBatch b;
			int64		epoch;
			SlReplicaAppendResult r;

			if (!SlLeaderResultInt(res, i, 0, 8, &b.base_offset) ||
				!SlLeaderResultInt(res, i, 1, 8, &b.last_offset) ||
				!SlLeaderResultInt(res, i, 2, 4, &epoch) ||
				!SlLeaderResultInt(res, i, 3, 8, &b.append_time) ||
				PQgetisnull(res, i, 4))
			{
				PQclear(res);
				abort_txn();
				ereport(LOG,
						(errmsg("leader %d sent a malformed catch-up row for topic id %d partition %d",
								leader_id, f->key.topic_id, f->key.partition)));
				return false;
			}
			b.leader_epoch = (int32) epoch;
			b.data = (const uint8 *) PQgetvalue(res, i, 4);
			b.len = PQgetlength(res, i, 4);
			r = SlReplicaAppend(topic, f->key.partition, &b);
			if (r == SL_REPLICA_GAP && i == 0)
			{
				/*
				 * The first batch the leader has from log_end on starts
				 * above it: if its log starts above log_end (now), what
				 * this log lacks was deleted there, and this log starts
				 * over at that batch (nothing appended yet in this
				 * transaction)
				 */
				if (leader_start <= log_end)
					leader_start = leader_log_start(conninfo, f);
				if (leader_start > log_end &&
					SlPartitionLogEnd(topic, f->key.partition) == log_end)
				{
					start_at_leader_log_start(topic, f, log_end, b.base_offset,
											  Max(b.base_offset,
												  Min(leader_start, b.last_offset + 1)));
					r = SlReplicaAppend(topic, f->key.partition, &b);
				}
			}
			if (r == SL_REPLICA_INVALID || r == SL_REPLICA_FENCED)
			{
				PQclear(res);
				abort_txn();
				if (r == SL_REPLICA_FENCED)
					log_fenced(f->key.topic_id, f->key.partition);
				return false;
			}
			if (r == SL_REPLICA_GAP)
			{
				/* A hole in the leader's log above its start: not ours to bridge */
				PQclear(res);
				abort_txn();
				ereport(WARNING,
						(errmsg("leader %d's log of topic id %d partition %d resumes at offset "
								INT64_FORMAT ", above this log's end " INT64_FORMAT,
								leader_id, f->key.topic_id, f->key.partition,
								b.base_offset, log_end),
						 errhint("The leader's log has no batch there above its log start offset; this replica cannot take a batch that does not start at its log end.")));
				return false;
			}
			if (r == SL_REPLICA_APPENDED && ++appended % SL_APPLY_CATCH_UP_BATCHES == 0)
			{
				commit_txn();
				begin_txn();
				topic = lock_followed(f->key.topic_id, f->key.partition, &l);
			}
		}
		PQclear(res);
		commit_txn();
		if (topic == NULL || appended == 0)
			return true;
	}
}

/* ---- the partitions followed ---------------------------------------------- */

static Followed *
followed_entry(int32 topic_id, int32 partition, bool create)
{
	FollowedKey key = {topic_id, partition};
	bool		found;
	Followed   *f = hash_search(followed, &key, create ? HASH_ENTER : HASH_FIND, &found);

	if (f != NULL && !found)
	{
		f->leader_epoch = -1;
		f->synced_epoch = -1;
		f->present = true;
	}
	return f;
}

/* Bring one partition in step with the leader for its current epoch */
static bool
sync_partition(const char *conninfo, Followed *f)
{
	if (f->synced_epoch == f->leader_epoch)
		return true;
	truncate_to_leader(conninfo, f);
	if (!catch_up(conninfo, f))
		return false;
	f->synced_epoch = f->leader_epoch;
	return true;
}

/*
 * Read which partitions this node follows from L, and sync those whose
 * epoch is new.  Returns false if a sync found an invalid batch.
 */
static bool
refresh_followed(const char *conninfo, int *count)
{
	HASH_SEQ_STATUS status;
	Followed   *f;
	List	   *list;
	ListCell   *lc;
	bool		ok = true;

	uint64		catalog_seen = SlClusterCatalogIndex();

	hash_seq_init(&status, followed);
	while ((f = hash_seq_search(&status)) != NULL)
		f->present = false;

	begin_txn();
	list = SlFollowedPartitions(sl_node_id, leader_id);
	foreach(lc, list)
	{
		SlFollowedPartition *p = lfirst(lc);
		MemoryContext oldcxt = MemoryContextSwitchTo(session_context);

		f = followed_entry(p->topic_id, p->partition, true);
		MemoryContextSwitchTo(oldcxt);
		f->present = true;
		f->leader_epoch = p->leader_epoch;
	}
	*count = list_length(list);
	commit_txn();
	refreshed_catalog = catalog_seen;

	/*
	 * Syncing runs transactions, which a hash scan may not span: take the
	 * entries out of the table first (their addresses are stable)
	 */
	{
		Followed  **todo = palloc(sizeof(Followed *) * Max(hash_get_num_entries(followed), 1));
		int			ntodo = 0;

		hash_seq_init(&status, followed);
		while ((f = hash_seq_search(&status)) != NULL)
		{
			if (!f->present)
				hash_search(followed, &f->key, HASH_REMOVE, NULL);
			else if (f->synced_epoch != f->leader_epoch)
				todo[ntodo++] = f;
		}
		for (int i = 0; ok && i < ntodo; i++)
			if (!sync_partition(conninfo, todo[i]))
				ok = false;
		pfree(todo);
	}
	last_refresh = GetCurrentTimestamp();
	return ok;
}

/* ---- progress to the leader ---------------------------------------------- */

/*
 * Tell the leader how far each followed partition is durable here, and
 * take the high watermark it answers.
 */
static void
report_progress(const char *conninfo)
{
	HASH_SEQ_STATUS status;
	Followed   *f;
	StringInfoData topics,
				partitions,
				epochs,
				ends;
	char		me[16];
	const char *values[5];
	PGresult   *res;
	int			n = 0;
	MemoryContext oldcxt;

	last_progress = GetCurrentTimestamp();
	oldcxt = MemoryContextSwitchTo(work_context);
	initStringInfo(&topics);
	initStringInfo(&partitions);
	initStringInfo(&epochs);
	initStringInfo(&ends);
	begin_txn();
	hash_seq_init(&status, followed);
	while ((f = hash_seq_search(&status)) != NULL)
	{
		const SlPartitionLeadership *l;
		const SlTopic *topic = lock_followed(f->key.topic_id, f->key.partition, &l);

		if (topic == NULL || f->synced_epoch != f->leader_epoch)
			continue;
		appendStringInfo(&topics, "%s%d", n ? "," : "{", f->key.topic_id);
		appendStringInfo(&partitions, "%s%d", n ? "," : "{", f->key.partition);
		appendStringInfo(&epochs, "%s%d", n ? "," : "{", l->leader_epoch);
		appendStringInfo(&ends, "%s" INT64_FORMAT, n ? "," : "{",
						 SlPartitionLogEnd(topic, f->key.partition));
		n++;
	}
	commit_txn();
	if (n == 0)
		goto done;
	appendStringInfoChar(&topics, '}');
	appendStringInfoChar(&partitions, '}');
	appendStringInfoChar(&epochs, '}');
	appendStringInfoChar(&ends, '}');
	snprintf(me, sizeof(me), "%d", sl_node_id);
	values[0] = me;
	values[1] = topics.data;
	values[2] = partitions.data;
	values[3] = epochs.data;
	values[4] = ends.data;
	res = side_query(conninfo,
					 "SELECT topic_id, partition, error, high_watermark "
					 "FROM streamlog._replica_progress($1, $2, $3, $4, $5)", 5, values);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 4)
	{
		/* A leader of an older streamlog: the stream works without it */
		if (strcmp(result_sqlstate(res), "42883") == 0)
		{
			if (!progress_missing_logged)
				ereport(LOG,
						(errmsg("leader %d has no streamlog._replica_progress: its high watermark is not reported here",
								leader_id)));
			progress_missing_logged = true;
			PQclear(res);
			goto done;
		}
		ereport(LOG,
				(errmsg("progress report to leader %d failed: %s",
						leader_id, pchomp(PQresultErrorMessage(res)))));
		PQclear(res);
		goto done;
	}

	begin_txn();
	for (int i = 0; i < PQntuples(res); i++)
	{
		int64		topic_id,
					partition,
					error,
					hw;
		const SlPartitionLeadership *l;
		const SlTopic *topic;

		if (!SlLeaderResultInt(res, i, 0, 4, &topic_id) ||
			!SlLeaderResultInt(res, i, 1, 4, &partition) ||
			!SlLeaderResultInt(res, i, 2, 2, &error) ||
			!SlLeaderResultInt(res, i, 3, 8, &hw))
			continue;
		if (error != SL_REPLICA_OK || hw < 0)
		{
			ereport(DEBUG1,
					(errmsg("leader %d refused progress of topic id %d partition %d: error %d",
							leader_id, (int) topic_id, (int) partition, (int) error)));
			continue;
		}
		topic = lock_followed((int32) topic_id, (int32) partition, &l);
		if (topic != NULL)
			SlReplicaSetHighWatermark(topic, (int32) partition, hw);
	}
	commit_txn();
	PQclear(res);
done:
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(work_context);
}

/* ---- the leader's log start ---------------------------------------------- */

/*
 * Move this log's start up to the leader's where it is past it: records
 * the leader deleted (DeleteRecords, its retention) must not come back
 * from this replica, were it to lead (Kafka's follower takes the log
 * start offset of each fetch response).  Up to the local high watermark
 * only, as DeleteRecords; internal topics are left to their own
 * retention and compaction.  A failure is logged and tried again later.
 */
static void
follow_leader_log_start(const char *conninfo)
{
	HASH_SEQ_STATUS status;
	Followed   *f;
	StringInfoData topics,
				partitions;
	const char *values[2];
	PGresult   *res;
	int			n = 0;
	MemoryContext oldcxt;

	last_log_start = GetCurrentTimestamp();
	oldcxt = MemoryContextSwitchTo(work_context);
	initStringInfo(&topics);
	initStringInfo(&partitions);
	hash_seq_init(&status, followed);
	while ((f = hash_seq_search(&status)) != NULL)
	{
		if (f->synced_epoch != f->leader_epoch)
			continue;
		appendStringInfo(&topics, "%s%d", n ? "," : "{", f->key.topic_id);
		appendStringInfo(&partitions, "%s%d", n ? "," : "{", f->key.partition);
		n++;
	}
	if (n == 0)
		goto done;
	appendStringInfoChar(&topics, '}');
	appendStringInfoChar(&partitions, '}');
	values[0] = topics.data;
	values[1] = partitions.data;
	res = side_query(conninfo,
					 "SELECT u.t, u.p, s.log_start_offset "
					 "FROM unnest($1::integer[], $2::integer[]) AS u(t, p), "
					 "LATERAL streamlog.partition_state(u.t, u.p) s", 2, values);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 3)
	{
		/* A topic dropped on the leader meanwhile: the next round */
		ereport(DEBUG1,
				(errmsg("could not read the log start offsets of leader %d: %s",
						leader_id, pchomp(PQresultErrorMessage(res)))));
		PQclear(res);
		goto done;
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		int64		topic_id,
					partition,
					leader_start;
		MemoryContext loopcxt = CurrentMemoryContext;

		if (!SlLeaderResultInt(res, i, 0, 4, &topic_id) ||
			!SlLeaderResultInt(res, i, 1, 4, &partition) ||
			!SlLeaderResultInt(res, i, 2, 8, &leader_start))
			continue;
		begin_txn();
		PG_TRY();
		{
			const SlTopic *topic = SlTopicLookupById((int32) topic_id);
			SlPartitionOffsets offsets;
			int64		target;

			if (topic != NULL && !SlTopicNameIsInternal(topic->name) &&
				partition >= 0 && partition < topic->partition_count)
			{
				SlPartitionGetOffsets((int32) topic_id, (int32) partition, &offsets);
				target = Min(leader_start, offsets.high_watermark);
				if (target > offsets.log_start_offset)
				{
					int64		start = SlPartitionDeleteRecords(topic, (int32) partition,
																 target);

					ereport(DEBUG1,
							(errmsg("log start offset of partition %d of topic id %d moved to "
									INT64_FORMAT " as on leader %d",
									(int) partition, (int) topic_id, start, leader_id)));
				}
			}
			commit_txn();
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(loopcxt);
			EmitErrorReport();
			FlushErrorState();
			abort_txn();
		}
		PG_END_TRY();
		MemoryContextSwitchTo(loopcxt);
	}
	PQclear(res);
done:
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(work_context);
}

/* ---- the stream ---------------------------------------------------------- */

static void
store_int64(char *p, int64 v)
{
	for (int i = 7; i >= 0; i--)
	{
		p[i] = (char) (v & 0xff);
		v = (int64) ((uint64) v >> 8);
	}
}

static int64
load_int64(const char *p)
{
	uint64		v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | (uint8) p[i];
	return (int64) v;
}

/* Standby status update: written, flushed and applied up to last_flushed */
static bool
send_feedback(bool reply_requested)
{
	char		msg[1 + 8 + 8 + 8 + 8 + 1];
	XLogRecPtr	pos = last_flushed;

	msg[0] = 'r';
	store_int64(msg + 1, (int64) pos);
	store_int64(msg + 9, (int64) pos);
	store_int64(msg + 17, (int64) pos);
	store_int64(msg + 25, GetCurrentTimestamp());
	msg[33] = reply_requested ? 1 : 0;
	last_feedback = GetCurrentTimestamp();
	if (PQputCopyData(repl_conn, msg, sizeof(msg)) <= 0 || PQflush(repl_conn) < 0)
	{
		ereport(LOG,
				(errmsg("could not send feedback to leader %d: %s",
						leader_id, pchomp(PQerrorMessage(repl_conn)))));
		return false;
	}
	return true;
}

/*
 * Apply the pending batches of one leader transaction in one local
 * transaction.  Returns false if the stream must stop (an invalid batch, a
 * catalog behind the stream).
 */
static bool
apply_transaction(const char *conninfo, const SlStreamCommit *commit)
{
	for (int attempt = 0;; attempt++)
	{
		ListCell   *lc;
		bool		redo = false;

		CHECK_FOR_INTERRUPTS();
		if (attempt > 16)
		{
			ereport(LOG,
					(errmsg("transaction at %X/%X of leader %d did not apply after %d attempts",
							LSN_FORMAT_ARGS(commit->commit_lsn), leader_id, attempt)));
			return false;
		}
		begin_txn();
		foreach(lc, pending)
		{
			PendingBatch *pb = lfirst(lc);
			const SlStreamBatch *b = &pb->batch;
			const SlPartitionLeadership *l;
			const SlTopic *topic = lock_followed(b->topic_id, b->partition, &l);
			Followed   *f;
			SlReplicaBatch rb;
			SlReplicaAppendResult r;

			if (topic == NULL)
			{
				/*
				 * Not ours, or L no longer leads it: a deposed leader's
				 * batch is never applied.  A catalog that has not yet seen
				 * this node added as a replica catches up later.
				 */
				continue;
			}
			if (b->leader_epoch > l->leader_epoch)
			{
				ereport(LOG,
						(errmsg("batch of epoch %d from leader %d is newer than this node's metadata (epoch %d) of topic \"%s\" partition %d: waiting for the metadata",
								b->leader_epoch, leader_id, l->leader_epoch, topic->name,
								b->partition)));
				abort_txn();
				return false;
			}
			f = followed_entry(b->topic_id, b->partition, false);
			if (f == NULL || f->leader_epoch != l->leader_epoch ||
				f->synced_epoch != l->leader_epoch)
			{
				MemoryContext oldcxt;
				int32		epoch = l->leader_epoch;

				abort_txn();
				oldcxt = MemoryContextSwitchTo(session_context);
				f = followed_entry(b->topic_id, b->partition, true);
				MemoryContextSwitchTo(oldcxt);
				f->leader_epoch = epoch;
				if (!sync_partition(conninfo, f))
					return false;
				redo = true;
				break;
			}
			if (pb->skip)
				continue;
			if (b->leader_epoch < l->leader_epoch)
			{
				/*
				 * Decoded from the WAL of the leader's earlier term: it may
				 * have truncated that batch away since (it led, lost the
				 * lead, truncated, and leads again).  Only its log as it is
				 * now counts: held already, or read through the side
				 * channel instead of this copy.
				 */
				if (b->base_offset < SlPartitionLogEnd(topic, b->partition))
					continue;
				abort_txn();
				if (!catch_up(conninfo, f))
					return false;
				pb->skip = true;
				redo = true;
				break;
			}
			rb.base_offset = b->base_offset;
			rb.last_offset = b->last_offset;
			rb.leader_epoch = b->leader_epoch;
			rb.append_time = b->append_time;
			rb.data = b->data;
			rb.len = b->len;
			r = SlReplicaAppend(topic, b->partition, &rb);
			if (r == SL_REPLICA_FENCED)
			{
				abort_txn();
				log_fenced(topic->topic_id, b->partition);
				return false;
			}
			if (r == SL_REPLICA_INVALID)
			{
				ereport(LOG,
						(errmsg("stopping the stream from leader %d: its batch at offset " INT64_FORMAT
								" of topic \"%s\" partition %d is invalid",
								leader_id, b->base_offset, topic->name, b->partition)));
				abort_txn();
				return false;
			}
			if (r == SL_REPLICA_GAP)
			{
				abort_txn();
				if (!catch_up(conninfo, f))
					return false;
				redo = true;
				break;
			}
		}
		if (redo)
			continue;
		replorigin_session_origin_lsn = commit->end_lsn;
		replorigin_session_origin_timestamp = (TimestampTz)
			((commit->commit_time -
			  (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000) * 1000);
		commit_txn();
		replorigin_session_origin_lsn = InvalidXLogRecPtr;
		replorigin_session_origin_timestamp = 0;
		return true;
	}
}

/* One message of the stream; false if the stream must stop */
static bool
handle_message(const char *conninfo, const uint8 *data, size_t len)
{
	SlStreamMessage msg;
	const char *err = SlStreamMessageDecode(data, len, &msg);
	MemoryContext oldcxt;
	PendingBatch *pb;
	uint8	   *copy;

	if (err)
	{
		ereport(LOG,
				(errmsg("stopping the stream from leader %d: invalid message: %s",
						leader_id, err)));
		return false;
	}
	if (msg.type == SL_STREAM_MSG_BATCH)
	{
		oldcxt = MemoryContextSwitchTo(txn_context);
		copy = palloc(msg.u.batch.len);
		memcpy(copy, msg.u.batch.data, msg.u.batch.len);
		pb = palloc(sizeof(PendingBatch));
		pb->batch = msg.u.batch;
		pb->skip = false;
		pb->batch.data = copy;
		pending = lappend(pending, pb);
		MemoryContextSwitchTo(oldcxt);
		return true;
	}
	/* SL_STREAM_MSG_COMMIT */
	if (!apply_transaction(conninfo, &msg.u.commit))
		return false;
	pending = NIL;
	MemoryContextReset(txn_context);
	last_flushed = Max(last_flushed, msg.u.commit.end_lsn);
	last_received = Max(last_received, msg.u.commit.end_lsn);
	/* Told once the stream has nothing more ready: one report for many */
	progress_due = true;
	return true;
}

/* One CopyData of the stream; false if the stream must stop */
static bool
handle_copy_data(const char *conninfo, const char *buf, int len)
{
	if (len < 1)
		return false;
	if (buf[0] == 'w')
	{
		if (len < 25)
		{
			ereport(LOG, (errmsg("stopping the stream from leader %d: truncated XLogData", leader_id)));
			return false;
		}
		return handle_message(conninfo, (const uint8 *) buf + 25, (size_t) len - 25);
	}
	if (buf[0] == 'k')
	{
		XLogRecPtr	end;

		if (len < 18)
		{
			ereport(LOG, (errmsg("stopping the stream from leader %d: truncated keepalive", leader_id)));
			return false;
		}
		end = (XLogRecPtr) load_int64(buf + 1);
		/*
		 * Between transactions everything sent was applied (or had nothing
		 * for us): the slot may move on, or it would pin the leader's WAL
		 */
		if (pending == NIL && end > last_flushed)
		{
			last_received = Max(last_received, end);
			last_flushed = last_received;
		}
		if (buf[17])
			return send_feedback(false);
		return true;
	}
	ereport(LOG, (errmsg("stopping the stream from leader %d: unknown message '%c'", leader_id, buf[0])));
	return false;
}

static void
disconnect_all(void)
{
	SlLeaderDisconnect(repl_conn);
	repl_conn = NULL;
	SlLeaderDisconnect(side_conn);
	side_conn = NULL;
}

/* Make this worker the replication origin's user (once per process) */
static void
setup_origin(void)
{
	XLogRecPtr	start;

	if (origin_id != InvalidRepOriginId)
		return;
	begin_txn();
	origin_id = replorigin_by_name(origin_name, true);
	if (origin_id == InvalidRepOriginId)
		origin_id = replorigin_create(origin_name);
	commit_txn();
#if PG_VERSION_NUM >= 160000
	replorigin_session_setup(origin_id, 0);
#else
	replorigin_session_setup(origin_id);
#endif
	replorigin_session_origin = origin_id;
	start = replorigin_session_get_progress(false);
	last_flushed = last_received = start;
}

static SessionEnd
run_session(void)
{
	SlClusterNode node;
	char	   *why = NULL;
	char	   *conninfo;
	PGresult   *res;
	char	   *cmd;
	int			count = 0;
	HASH_SEQ_STATUS status;
	Followed   *f;

	if (!SlClusterGetNode(leader_id, &node) || node.fenced || node.sql_conninfo[0] == '\0')
		return SESSION_RETRY;
	conninfo = pstrdup(node.sql_conninfo);

	setup_origin();

	/* The partitions to follow, in step through the side channel first */
	if (!refresh_followed(conninfo, &count))
		return SESSION_RETRY;
	if (count == 0)
		return SESSION_DONE;

	repl_conn = SlLeaderConnect(conninfo, true, "streamlog apply",
								SL_APPLY_CONNECT_TIMEOUT_MS, &why);
	if (repl_conn == NULL)
	{
		ereport(LOG,
				(errmsg("could not open a replication connection to leader %d: %s",
						leader_id, why)));
		return SESSION_RETRY;
	}
	cmd = psprintf("CREATE_REPLICATION_SLOT %s LOGICAL streamlog NOEXPORT_SNAPSHOT",
				   quote_identifier(slot_name));
	res = SlLeaderQuery(repl_conn, cmd, 0, NULL, false, SL_APPLY_QUERY_TIMEOUT_MS, &why);
	if (res == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not create slot \"%s\" on leader %d: %s", slot_name, leader_id, why)));
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		ereport(LOG,
				(errmsg("created replication slot \"%s\" on leader %d", slot_name, leader_id)));
		/* Whatever is older than the slot comes through the side channel */
		PQclear(res);
		/* What was appended since the sync above and before the slot */
		hash_seq_init(&status, followed);
		while ((f = hash_seq_search(&status)) != NULL)
			f->synced_epoch = -1;
		if (!refresh_followed(conninfo, &count))
			return SESSION_RETRY;
	}
	else if (strcmp(result_sqlstate(res), "42710") != 0)	/* duplicate_object */
	{
		char	   *msg = pchomp(PQresultErrorMessage(res));

		PQclear(res);
		ereport(LOG,
				(errmsg("could not create slot \"%s\" on leader %d: %s", slot_name, leader_id, msg)));
		return SESSION_RETRY;
	}
	else
		PQclear(res);

	cmd = psprintf("START_REPLICATION SLOT %s LOGICAL %X/%X",
				   quote_identifier(slot_name), LSN_FORMAT_ARGS(last_flushed));
	res = SlLeaderQuery(repl_conn, cmd, 0, NULL, false, SL_APPLY_QUERY_TIMEOUT_MS, &why);
	if (res == NULL || PQresultStatus(res) != PGRES_COPY_BOTH)
	{
		ereport(LOG,
				(errmsg("could not start streaming from leader %d: %s", leader_id,
						res ? pchomp(PQresultErrorMessage(res)) : why)));
		PQclear(res);
		return SESSION_RETRY;
	}
	PQclear(res);
	ereport(DEBUG1,
			(errmsg("streaming from leader %d at %X/%X", leader_id, LSN_FORMAT_ARGS(last_flushed))));

	for (;;)
	{
		char	   *buf = NULL;
		int			len;
		TimestampTz now;
		/* An idle follower still reports, well within the ISR's patience */
		long		progress_ms = Max(sl_replica_lag_time_max_ms / 3, 10);

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		len = PQgetCopyData(repl_conn, &buf, 1);
		if (len > 0)
		{
			bool		ok = handle_copy_data(conninfo, buf, len);

			PQfreemem(buf);
			if (!ok)
				return SESSION_RETRY;
			continue;
		}
		if (len == -1)
		{
			ereport(LOG, (errmsg("leader %d ended the stream", leader_id)));
			return SESSION_RETRY;
		}
		if (len < -1)
		{
			ereport(LOG,
					(errmsg("stream from leader %d broke: %s", leader_id,
							pchomp(PQerrorMessage(repl_conn)))));
			return SESSION_RETRY;
		}

		/* The stream is drained: tell the leader what is durable here */
		if (progress_due && pending == NIL)
		{
			progress_due = false;
			if (!send_feedback(false))
				return SESSION_RETRY;
			report_progress(conninfo);
		}

		/* Nothing buffered: the periodic work, then wait */
		now = GetCurrentTimestamp();
		if (pending == NIL &&
			(TimestampDifferenceExceeds(last_refresh, now, SL_APPLY_REFRESH_MS) ||
			 SlClusterCatalogIndex() != refreshed_catalog))
		{
			if (!refresh_followed(conninfo, &count))
				return SESSION_RETRY;
			if (count == 0)
				return SESSION_DONE;
		}
		if (TimestampDifferenceExceeds(last_feedback, now, SL_APPLY_FEEDBACK_MS) &&
			!send_feedback(false))
			return SESSION_RETRY;
		if (pending == NIL && TimestampDifferenceExceeds(last_progress, now, progress_ms))
			report_progress(conninfo);
		if (pending == NIL &&
			TimestampDifferenceExceeds(last_log_start, now, SL_APPLY_LOG_START_MS))
			follow_leader_log_start(conninfo);

		(void) SlLeaderWait(repl_conn, WL_SOCKET_READABLE, Min(progress_ms, SL_APPLY_REFRESH_MS));
		if (!PQconsumeInput(repl_conn))
		{
			ereport(LOG,
					(errmsg("stream from leader %d broke: %s", leader_id,
							pchomp(PQerrorMessage(repl_conn)))));
			return SESSION_RETRY;
		}
	}
}

void
SlApplyWorkerMain(Datum arg)
{
	leader_id = DatumGetInt32(arg);
	snprintf(slot_name, sizeof(slot_name), SL_REPLICATION_SLOT_FORMAT, sl_node_id);
	snprintf(origin_name, sizeof(origin_name), SL_REPLICATION_ORIGIN_FORMAT, leader_id);

	SlWorkerStart("streamlog apply");
	/* An acknowledgement to the leader means durable here */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	/* a leadership that moves to or from our leader is followed at once */
	(void) SlClusterWatchCatalog();

	session_context = AllocSetContextCreate(TopMemoryContext, "streamlog apply session",
											ALLOCSET_DEFAULT_SIZES);
	txn_context = AllocSetContextCreate(TopMemoryContext, "streamlog apply transaction",
										ALLOCSET_DEFAULT_SIZES);
	work_context = AllocSetContextCreate(TopMemoryContext, "streamlog apply work",
										 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		SessionEnd end = SESSION_RETRY;
		HASHCTL		info;

		MemoryContextReset(session_context);
		MemoryContextReset(txn_context);
		MemoryContextReset(work_context);
		pending = NIL;
		info.keysize = sizeof(FollowedKey);
		info.entrysize = sizeof(Followed);
		info.hcxt = session_context;
		followed = hash_create("streamlog followed partitions", 64, &info,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		last_refresh = last_progress = last_feedback = last_log_start = 0;
		progress_due = false;

		PG_TRY();
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(session_context);

			end = run_session();
			MemoryContextSwitchTo(oldcxt);
		}
		PG_CATCH();
		{
			SlWorkerRecover(TopMemoryContext);
			replorigin_session_origin_lsn = InvalidXLogRecPtr;
			replorigin_session_origin_timestamp = 0;
			/* Say whose stream failed (a local failure, disk full, says not) */
			ereport(LOG,
					(errmsg("the stream from leader %d stopped on the error above; retrying in %d ms",
							leader_id, SL_APPLY_RETRY_MS)));
		}
		PG_END_TRY();
		disconnect_all();
		if (end == SESSION_DONE)
		{
			ereport(DEBUG1, (errmsg("nothing left to follow from leader %d", leader_id)));
			proc_exit(0);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 SL_APPLY_RETRY_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
