/*-------------------------------------------------------------------------
 * produce_forward.c
 *	  The forwarder's pass: deliver the forward queue to partition leaders
 *	  (storage/forward_queue.h), exactly once and in queue order.
 *
 * Per partition with final batches at the head of its queue:
 *
 *	1. stamp them (this node's producer id, the partition's epoch and next
 *	   sequences) in a transaction of their own, committed before anything
 *	   is sent: a resend carries the same stamp;
 *	2. look up the leader in the local catalog (the metadata as applied
 *	   here) and call streamlog._forward_append() on it over libpq, up to
 *	   SL_FORWARD_MAX_BATCHES batches or SL_FORWARD_MAX_BYTES at a time, in
 *	   one statement that commits there before it answers;
 *	3. on a partition with other replicas, wait there until its high
 *	   watermark passes them (streamlog._forward_acked(), acks=all);
 *	4. then remove them from the queue.
 *
 * A crash of either node anywhere in between leaves the batches queued and
 * stamped: the next pass sends them again, and the leader's idempotent-
 * producer check takes what it already stored for a duplicate.  A leader
 * that moved answers NOT_LEADER_OR_FOLLOWER and the next pass asks the
 * new one (which rebuilt the producer's state from its log).  A leader
 * with no state for the producer (its batches aged out of the newest ones
 * it rebuilds from) takes any sequence, as Kafka does; one whose state
 * disagrees with the queue (OUT_OF_ORDER) gets the partition's queue again
 * from sequence 0 of the next epoch, as a Kafka producer bumps its epoch.
 *
 * All waiting on sockets goes through the latch (WaitLatchOrSocket), with
 * a deadline per call.
 *
 * IDENTIFICATION
 *	  src/replication/produce_forward.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/node_link.h"
#include "streamlog/metadata/producer_id_blocks.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/replication/produce_forward.h"
#include "streamlog/storage/forward_queue.h"
#include "streamlog/storage/storage.h"
#include "streamlog/worker.h"

/* How long one call to a leader may take, connecting included */
#define FORWARD_CALL_TIMEOUT_MS 30000
/* How long connecting may take (a paused node holds the whole pass) */
#define FORWARD_CONNECT_TIMEOUT_MS 5000

/* The connections kept to leaders' SQL, one per node */
static SlNodeLink conns[SL_MAX_NODES];
static int	nconns = 0;

/* The pass's memory, where the work between transactions allocates */
static MemoryContext pass_cxt = NULL;

/* What a call to a leader came to */
typedef enum CallOutcome
{
	CALL_STORED,				/* the leader committed them */
	CALL_REFUSED,				/* the leader answered a Kafka error */
	CALL_FAILED					/* no answer (connection, timeout, other error) */
} CallOutcome;

void
SlForwardDisconnect(void)
{
	for (int i = 0; i < nconns; i++)
		SlNodeLinkDrop(&conns[i]);
	nconns = 0;
}

static void
end_step(void)
{
	SlWorkerCommitTransaction();
	/* not TopMemoryContext, where a commit leaves us */
	MemoryContextSwitchTo(pass_cxt);
}

/* The connection to node_id at conninfo, made now if needed; NULL on failure */
static PGconn *
connect_leader(int32 node_id, const char *conninfo, TimestampTz deadline)
{
	SlNodeLink *link = NULL;
	PGconn	   *conn;
	char	   *why = NULL;

	for (int i = 0; i < nconns; i++)
		if (conns[i].node_id == node_id)
			link = &conns[i];
	if (link == NULL)
	{
		if (nconns == SL_MAX_NODES)
			SlForwardDisconnect();
		link = &conns[nconns++];
		*link = (SlNodeLink) SL_NODE_LINK_INIT;
	}
	/* the leader's answer must mean "stored durably" */
	conn = SlNodeLinkOpen(link, node_id, conninfo,
						  psprintf("streamlog forwarder of node %d", sl_node_id),
						  "options", "-c synchronous_commit=on", deadline, &why);
	if (conn == NULL)
		ereport(LOG,
				(errmsg("streamlog forwarder: could not connect to node %d: %s",
						node_id, why)));
	return conn;
}

static void
drop_conn(int32 node_id)
{
	for (int i = 0; i < nconns; i++)
		if (conns[i].node_id == node_id)
			SlNodeLinkDrop(&conns[i]);
}

/*
 * Run one statement on leader and wait for its answer: CALL_STORED when it
 * succeeded, CALL_REFUSED with the Kafka error code of an SLnnn SQLSTATE
 * in *code, or CALL_FAILED (logged; the connection is dropped if it broke)
 */
static CallOutcome
run_on_leader(int32 leader, const char *conninfo, const SlForwardPartition *part,
			  const char *sql, int nparams, const Oid *types, const char *const *values,
			  const int *lengths, const int *formats, int16 *code)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   FORWARD_CALL_TIMEOUT_MS);
	PGconn	   *conn;
	PGresult   *last;
	char	   *why = NULL;
	CallOutcome outcome;

	conn = connect_leader(leader, conninfo,
						  Min(deadline, TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																	FORWARD_CONNECT_TIMEOUT_MS)));
	if (conn == NULL)
		return CALL_FAILED;
	if (SlNodeLinkQuery(conn, sql, nparams, types, values, lengths, formats, 0, deadline,
						&last, &why) != SL_NODE_LINK_ANSWERED)
	{
		ereport(LOG,
				(errmsg("streamlog forwarder: no answer from node %d for partition %d of topic %d: %s",
						leader, part->partition, part->topic_id, why)));
		/* whatever it did, the stamp makes the resend safe */
		drop_conn(leader);
		return CALL_FAILED;
	}
	if (PQresultStatus(last) == PGRES_TUPLES_OK)
		outcome = CALL_STORED;
	else
	{
		const char *sqlstate = PQresultErrorField(last, PG_DIAG_SQLSTATE);

		outcome = CALL_FAILED;
		if (sqlstate != NULL && strlen(sqlstate) == 5 && sqlstate[0] == 'S' &&
			sqlstate[1] == 'L' && isdigit((unsigned char) sqlstate[2]) &&
			isdigit((unsigned char) sqlstate[3]) && isdigit((unsigned char) sqlstate[4]))
		{
			*code = (int16) atoi(sqlstate + 2);
			outcome = CALL_REFUSED;
		}
		else
			ereport(LOG,
					(errmsg("streamlog forwarder: node %d failed a call for partition %d of topic %d: %s",
							leader, part->partition, part->topic_id,
							pchomp(PQresultErrorMessage(last)))));
	}
	PQclear(last);
	return outcome;
}

/* Send part's batches to leader, which stores them when it commits */
static CallOutcome
append_on_leader(int32 leader, const char *conninfo, const SlForwardPartition *part,
				 int16 *code)
{
	StringInfoData sql;
	const char *values[3 + SL_FORWARD_MAX_BATCHES];
	int			lengths[3 + SL_FORWARD_MAX_BATCHES];
	int			formats[3 + SL_FORWARD_MAX_BATCHES];
	Oid			types[3 + SL_FORWARD_MAX_BATCHES];

	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "SELECT streamlog._forward_append($1, $2, $3, VARIADIC ARRAY[");
	values[0] = psprintf("%d", sl_node_id);
	values[1] = psprintf("%d", part->topic_id);
	values[2] = psprintf("%d", part->partition);
	for (int i = 0; i < 3; i++)
	{
		lengths[i] = 0;
		formats[i] = 0;
		types[i] = INT4OID;
	}
	for (int i = 0; i < part->nbatches; i++)
	{
		bytea	   *b = part->batches[i].batch;

		appendStringInfo(&sql, "%s$%d", i ? ", " : "", 4 + i);
		values[3 + i] = VARDATA(b);
		lengths[3 + i] = VARSIZE(b) - VARHDRSZ;
		formats[3 + i] = 1;
		types[3 + i] = BYTEAOID;
	}
	appendStringInfoString(&sql, "]::bytea[])");
	return run_on_leader(leader, conninfo, part, sql.data, 3 + part->nbatches, types,
						 values, lengths, formats, code);
}

/*
 * Wait on leader until the high watermark passes part's batches (the last
 * one: offsets grow), as an acks=all produce is answered
 */
static CallOutcome
acked_on_leader(int32 leader, const char *conninfo, const SlForwardPartition *part,
				int64 producer_id, int16 *code)
{
	const SlForwardBatch *last = &part->batches[part->nbatches - 1];
	const char *values[8];
	Oid			types[8] = {INT4OID, INT4OID, INT4OID, INT8OID, INT2OID, INT4OID, INT4OID,
		INT4OID};

	values[0] = psprintf("%d", sl_node_id);
	values[1] = psprintf("%d", part->topic_id);
	values[2] = psprintf("%d", part->partition);
	values[3] = psprintf(INT64_FORMAT, producer_id);
	values[4] = psprintf("%d", last->producer_epoch);
	values[5] = psprintf("%d", last->base_sequence);
	values[6] = psprintf("%d", last->record_count);
	values[7] = psprintf("%d", FORWARD_CALL_TIMEOUT_MS - 5000);
	return run_on_leader(leader, conninfo, part,
						 "SELECT streamlog._forward_acked($1, $2, $3, $4, $5, $6, $7, $8)",
						 8, types, values, NULL, NULL, code);
}

/* This node's producer id for forwarding, obtained once and kept */
static int64
forward_producer_id(void)
{
	int64		id;
	int16		error = 0;
	char	   *message = NULL;

	int32		node_id;

	SlWorkerBeginTransaction();
	id = SlForwardProducerGet(&node_id);
	if (id >= 0 && node_id != sl_node_id)
	{
		/*
		 * This data was node node_id's (a copy of it started as another
		 * node): its queue is that node's to deliver, and its producer id
		 * that node's to use; sending either would duplicate records, or
		 * have new ones taken for that node's duplicates
		 */
		int64		discarded = SlForwardProducerForget();

		ereport(WARNING,
				(errmsg("streamlog forwarder: the forward queue was node %d's, this is node %d: %lld queued batches left to node %d",
						node_id, sl_node_id, (long long) discarded, node_id)));
		end_step();
		/* what this pass read of the queue is gone: the next reads again */
		return -1;
	}
	if (id < 0)
	{
		id = SlProducerIdNext(&error, &message);
		if (id >= 0)
		{
			/* the one step that must be durable (see SlForwardPass) */
			ForceSyncCommit();
			SlForwardProducerSet(id, sl_node_id);
			/* someone else's if two raced: the stored one counts */
			CommandCounterIncrement();
			id = SlForwardProducerGet(&node_id);
		}
		else
			ereport(LOG,
					(errmsg("streamlog forwarder: no producer id yet (Kafka error %d%s%s)",
							error, message ? ": " : "", message ? message : "")));
	}
	end_step();
	return id;
}

/* Where a partition's leader is: its node id and SQL conninfo */
typedef struct LeaderAddress
{
	bool		topic_exists;
	bool		replicated;		/* other replicas: wait for acks=all */
	int32		leader;
	char		conninfo[sizeof(((SlClusterNode *) 0)->sql_conninfo)];
} LeaderAddress;

static LeaderAddress
leader_of(int32 topic_id, int32 partition)
{
	LeaderAddress addr = {false, false, SL_NO_LEADER, ""};
	const SlTopic *topic = SlTopicLookupById(topic_id);
	SlClusterNode node;

	if (topic == NULL)
		return addr;
	addr.topic_exists = true;
	if (partition >= topic->partition_count || topic->partitions == NULL)
		return addr;
	addr.leader = SlTopicPartitionLeadership(topic, partition)->leader;
	addr.replicated = SlTopicPartitionLeadership(topic, partition)->nreplicas > 1;
	if (addr.leader != SL_NO_LEADER)
	{
		if (SlClusterGetNode(addr.leader, &node) && !node.fenced)
			strlcpy(addr.conninfo, node.sql_conninfo, sizeof(addr.conninfo));
		else
			addr.leader = SL_NO_LEADER;
	}
	return addr;
}

/* Leaders that gave no answer in this pass: not asked again until the next */
static int32 failed_leaders[SL_MAX_NODES];
static int	nfailed_leaders = 0;

static bool
leader_failed(int32 leader)
{
	for (int i = 0; i < nfailed_leaders; i++)
		if (failed_leaders[i] == leader)
			return true;
	return false;
}

/* Deliver one partition's head; true if the leader stored it */
static bool
forward_partition(SlForwardPartition *part, int64 producer_id, MemoryContext pass_context)
{
	LeaderAddress addr;
	bool		unstamped = false;
	int16		code = 0;
	int64		positions[SL_FORWARD_MAX_BATCHES];
	CallOutcome outcome;

	for (int i = 0; i < part->nbatches; i++)
		if (part->batches[i].producer_epoch < 0)
			unstamped = true;

	SlWorkerBeginTransaction();
	addr = leader_of(part->topic_id, part->partition);
	if (!addr.topic_exists)
	{
		int64		removed = SlForwardQueueRemoveTopic(part->topic_id);

		end_step();
		ereport(WARNING,
				(errmsg("streamlog forwarder: topic %d was dropped: %lld queued batches for it are discarded",
						part->topic_id, (long long) removed)));
		return false;
	}
	if (unstamped)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(pass_context);

		SlForwardQueueStamp(part, producer_id);
		MemoryContextSwitchTo(oldcxt);
	}
	/* the stamp is durable before it goes out */
	end_step();

	if (addr.leader == SL_NO_LEADER || leader_failed(addr.leader))
		return false;			/* offline, or away: the next pass looks again */

	outcome = append_on_leader(addr.leader, addr.conninfo, part, &code);
	/*
	 * Delivered once the in-sync replicas hold it, as acks=all.  Any
	 * refusal of the wait (timed out, leader moved, batch forgotten) only
	 * means: send again, which the leader takes as a duplicate.
	 */
	if (outcome == CALL_STORED && addr.replicated)
	{
		outcome = acked_on_leader(addr.leader, addr.conninfo, part, producer_id, &code);
		if (outcome == CALL_REFUSED)
		{
			ereport(LOG,
					(errmsg("streamlog forwarder: node %d stored batches for partition %d of topic %d but did not see them replicated (Kafka error %d); they are sent again",
							addr.leader, part->partition, part->topic_id, code)));
			return false;
		}
	}
	switch (outcome)
	{
		case CALL_STORED:
			for (int i = 0; i < part->nbatches; i++)
				positions[i] = part->batches[i].position;
			SlWorkerBeginTransaction();
			SlForwardQueueRemove(positions, part->nbatches);
			end_step();
			return true;
		case CALL_REFUSED:
			if (code == SL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER ||
				code == SL_ERR_INVALID_PRODUCER_EPOCH)
			{
				ereport(WARNING,
						(errmsg("streamlog forwarder: node %d does not know where this node's producer is in partition %d of topic %d (Kafka error %d): the queue starts over in a new producer epoch",
								addr.leader, part->partition, part->topic_id, code)));
				SlWorkerBeginTransaction();
				SlForwardQueueNewEpoch(part->topic_id, part->partition);
				end_step();
			}
			else if (code == SL_ERR_NOT_ENOUGH_REPLICAS)
				ereport(LOG,
						(errmsg("streamlog forwarder: partition %d of topic %d has too few in-sync replicas on node %d; its batches wait",
								part->partition, part->topic_id, addr.leader)));
			else if (code != SL_ERR_NOT_LEADER_OR_FOLLOWER &&
					 code != SL_ERR_LEADER_NOT_AVAILABLE &&
					 code != SL_ERR_REQUEST_TIMED_OUT &&
					 code != SL_ERR_UNKNOWN_TOPIC_OR_PARTITION)
				ereport(WARNING,
						(errmsg("streamlog forwarder: node %d refused batches for partition %d of topic %d with Kafka error %d; they stay queued",
								addr.leader, part->partition, part->topic_id, code)));
			return false;
		case CALL_FAILED:
			if (nfailed_leaders < SL_MAX_NODES)
				failed_leaders[nfailed_leaders++] = addr.leader;
			return false;
	}
	return false;
}

/*
 * The forwarder's own transactions (stamping, removing delivered batches)
 * need not wait for their WAL flush: stamping is a function of the queue
 * and of streamlog.forward_sequence, so a stamp lost in a crash is made
 * again the same, and a removal lost makes a resend the leader takes as a
 * duplicate (a crash loses a suffix of such commits, never one in the
 * middle).  Only the producer id must be durable before it is used: a new
 * one would make resends new batches.  The leader's commit is durable
 * (its connection sets synchronous_commit = on).
 */
bool
SlForwardPass(MemoryContext pass_context)
{
	int64		horizon;
	int64		next_position;
	List	   *heads = NIL;
	int64		producer_id;
	bool		delivered = false;
	ListCell   *lc;
	MemoryContext oldcxt;

	pass_cxt = pass_context;
	MemoryContextSwitchTo(pass_context);
	nfailed_leaders = 0;
	horizon = -1;
	next_position = 0;
	SlWorkerBeginTransaction();
	if (OidIsValid(get_extension_oid("streamlog", true)))
	{
		/*
		 * Before the queue is read (with a snapshot of its own, taken
		 * later): every batch below it is visible by then, or gone
		 */
		horizon = SlForwardQueueHorizon(&next_position);
		oldcxt = MemoryContextSwitchTo(pass_context);
		heads = SlForwardQueueHeads(horizon);
		MemoryContextSwitchTo(oldcxt);
	}
	end_step();
	if (heads == NIL)
	{
		/* nothing in flight, nothing committed: the queue is empty */
		if (horizon >= next_position)
			SlForwardQueueFoundEmpty(next_position);
		return false;
	}

	producer_id = forward_producer_id();
	if (producer_id < 0)
		return false;

	foreach(lc, heads)
	{
		CHECK_FOR_INTERRUPTS();
		if (forward_partition(lfirst(lc), producer_id, pass_context))
			delivered = true;
	}
	return delivered;
}
