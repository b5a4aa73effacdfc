/*
 * Reading a partition through its leader (sqlapi/remote_read.h), for SQL
 * read(), consume(), history() and offset_for_time() on a node that holds
 * no replica of it.
 *
 * The leader runs its own streamlog.partition_state(), read(), history()
 * and offset_for_time() for us, as the node role of its advertised SQL
 * conninfo (a superuser): its read() and history() stop at its high
 * watermark and, under read_committed, at its last stable offset and skip
 * its aborted transactions, so what comes
 * back is what a reader on the leader would see.  The caller's privilege
 * on the topic was checked on this node before: that check is the gate,
 * as for every other read here.  The consumer's claim and advance stay as
 * they are (consume_sql.c); only where the records come from changes.
 *
 * One connection per leader and backend, kept idle between calls
 * (metadata/node_link.h) and dropped after any failure.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/node_link.h"
#include "streamlog/sqlapi/remote_read.h"

/* How long one call to a leader may take, and connecting to it */
#define REMOTE_READ_TIMEOUT_MS 30000
#define REMOTE_CONNECT_TIMEOUT_MS 5000

/* Offsets of a partition one call to the leader's history() spans */
#define REMOTE_HISTORY_CHUNK 10000

/* One kept link per leader this backend read from */
static SlNodeLink links[SL_MAX_NODES];
static int	nlinks = 0;

bool
SlSqlPartitionReadRemotely(const SlTopic *topic, int32 partition)
{
	const SlPartitionLeadership *l;

	if (!SlClusterEnabled() || topic->partitions == NULL ||
		partition < 0 || partition >= topic->partition_count)
		return false;
	l = SlTopicPartitionLeadership(topic, partition);
	/* Offline or led here: the local checks say what to do */
	if (l->leader == SL_NO_LEADER || l->leader == sl_node_id)
		return false;
	for (int32 i = 0; i < l->nreplicas; i++)
		if (l->replicas[i] == sl_node_id)
			return false;
	return true;
}

static int32
leader_of(const SlTopic *topic, int32 partition)
{
	return SlTopicPartitionLeadership(topic, partition)->leader;
}

/* The connection to node leader, kept or new; ERROR (08006) if none */
static SlNodeLink *
open_link(int32 leader, const SlTopic *topic, int32 partition)
{
	SlNodeLink *link = NULL;
	SlClusterNode node;
	char	   *why = NULL;

	for (int i = 0; i < nlinks; i++)
		if (links[i].node_id == leader)
			link = &links[i];
	if (link == NULL)
	{
		if (nlinks == SL_MAX_NODES)
		{
			/* More leaders than nodes ever were: reuse the first slot */
			SlNodeLinkDrop(&links[0]);
			links[0].node_id = -1;
			link = &links[0];
		}
		else
		{
			link = &links[nlinks++];
			link->node_id = -1;
			link->conninfo[0] = '\0';
			link->conn = NULL;
		}
	}
	if (!SlClusterGetNode(leader, &node) || node.sql_conninfo[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("partition %d of topic \"%s\" is led by node %d, which has no known SQL address",
						partition, topic->name, leader),
				 errhint("Set streamlog.advertised_sql_conninfo on node %d, or read on a node with a replica.",
						 leader)));
	if (SlNodeLinkOpen(link, leader, node.sql_conninfo,
					   psprintf("streamlog read of node %d", sl_node_id), NULL, NULL,
					   TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   REMOTE_CONNECT_TIMEOUT_MS),
					   &why) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not reach node %d, the leader of partition %d of topic \"%s\": %s",
						leader, partition, topic->name, why ? why : "no answer"),
				 errdetail("This node holds no replica of the partition and reads it through its leader."),
				 errhint("Retry once node %d is reachable, or read on it: %s.",
						 leader, node.sql_conninfo)));
	return link;
}

/*
 * Run sql with text parameters on partition's leader; the result holds
 * tuples, else ERROR: the leader's own error with its SQLSTATE, or 08006
 * when it did not answer
 */
static PGresult *
leader_query(const SlTopic *topic, int32 partition, const char *sql, int nparams,
			 const char *const *params)
{
	int32		leader = leader_of(topic, partition);
	SlNodeLink *link = open_link(leader, topic, partition);
	PGresult   *res = NULL;
	char	   *why = NULL;
	SlNodeLinkOutcome outcome;
	const char *sqlstate;
	char	   *message;
	char	   *hint;
	int			code;

	outcome = SlNodeLinkQuery(link->conn, sql, nparams, NULL, params, NULL, NULL, 0,
							  TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														  REMOTE_READ_TIMEOUT_MS),
							  &res, &why);
	if (outcome == SL_NODE_LINK_ANSWERED && PQresultStatus(res) == PGRES_TUPLES_OK)
		return res;
	if (outcome != SL_NODE_LINK_ANSWERED)
	{
		PQclear(res);
		SlNodeLinkDrop(link);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("node %d, the leader of partition %d of topic \"%s\", did not answer: %s",
						leader, partition, topic->name, why ? why : "no answer"),
				 errdetail("This node holds no replica of the partition and reads it through its leader."),
				 errhint("Retry once node %d is reachable.", leader)));
	}
	sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	message = pstrdup(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?
					  PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) :
					  PQresultErrorMessage(res));
	hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) ?
		pstrdup(PQresultErrorField(res, PG_DIAG_MESSAGE_HINT)) : NULL;
	code = ERRCODE_CONNECTION_FAILURE;
	if (sqlstate != NULL && strlen(sqlstate) == 5)
		code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4]);
	else
		SlNodeLinkDrop(link);
	PQclear(res);
	ereport(ERROR,
			(errcode(code),
			 errmsg("node %d, the leader of partition %d of topic \"%s\", refused the read: %s",
					leader, partition, topic->name, message),
			 hint ? errhint("%s", hint) : errhint("Retry; node %d's server log says more.", leader)));
	return NULL;				/* keep the compiler quiet */
}

/*
 * A non-NULL, non-negative int8 text column of a leader's answer, checked
 * (answers from other nodes are as hostile as any input); else ERROR,
 * after clearing res
 */
static int64
result_int8(PGresult *res, int row, int col, const SlTopic *topic, int32 partition)
{
	const char *s = PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
	char	   *end = NULL;
	long long	v;

	errno = 0;
	v = s ? strtoll(s, &end, 10) : 0;
	if (s == NULL || errno != 0 || *end != '\0' || end == s || v < 0)
	{
		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the leader of partition %d of topic \"%s\" answered an invalid offset",
						partition, topic->name)));
	}
	return (int64) v;
}

void
SlRemotePartitionState(const SlTopic *topic, int32 partition, int64 *log_start,
					   int64 *high_watermark, int64 *last_stable)
{
	const char *params[2] = {psprintf("%d", topic->topic_id), psprintf("%d", partition)};
	PGresult   *res;

	res = leader_query(topic, partition,
					   "SELECT log_start_offset, high_watermark, last_stable_offset "
					   "FROM streamlog.partition_state($1::integer, $2::integer)",
					   2, params);
	if (PQntuples(res) != 1 || PQnfields(res) != 3)
	{
		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the leader of partition %d of topic \"%s\" does not know the partition yet",
						partition, topic->name),
				 errhint("Retry once the topic reached every node.")));
	}
	*log_start = result_int8(res, 0, 0, topic, partition);
	*high_watermark = result_int8(res, 0, 1, topic, partition);
	*last_stable = Min(*high_watermark, result_int8(res, 0, 2, topic, partition));
	PQclear(res);
}

/*
 * Copy the rows of res (a leader's read() or history(), the columns of
 * rows' result) into rows: up to max_records, none at or above limit;
 * *next_offset is the offset after the last copied.  Clears res.
 */
static int64
put_leader_rows(SlRecordRows *rows, PGresult *res, const SlTopic *topic, int32 partition,
				int64 max_records, int64 limit, int64 *next_offset)
{
	ReturnSetInfo *rsinfo = rows->rsinfo;
	AttInMetadata *attinmeta;
	int			ncols = rsinfo->setDesc->natts;
	char	  **values;
	int64		n = 0;

	if (PQnfields(res) != ncols)
	{
		int			nfields = PQnfields(res);

		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the leader of partition %d of topic \"%s\" answered %d columns, not %d",
						partition, topic->name, nfields, ncols),
				 errhint("Every node must run the same version of streamlog.")));
	}
	attinmeta = TupleDescGetAttInMetadata(rsinfo->setDesc);
	values = palloc(sizeof(char *) * ncols);
	for (int r = 0; r < PQntuples(res) && n < max_records; r++)
	{
		MemoryContext oldcxt;
		HeapTuple	tuple;
		int64		offset = result_int8(res, r, 1, topic, partition);

		/* Nothing at or above the caller's bound */
		if (offset >= limit)
			break;
		*next_offset = offset + 1;
		for (int c = 0; c < ncols; c++)
			values[c] = PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
		oldcxt = MemoryContextSwitchTo(rows->row_context);
		PG_TRY();
		{
			tuple = BuildTupleFromCStrings(attinmeta, values);
			tuplestore_puttuple(rsinfo->setResult, tuple);
		}
		PG_CATCH();
		{
			PQclear(res);
			PG_RE_THROW();
		}
		PG_END_TRY();
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rows->row_context);
		n++;
		CHECK_FOR_INTERRUPTS();
	}
	PQclear(res);
	return n;
}

int64
SlRemoteReadRecords(SlRecordRows *rows, const SlTopic *topic, int32 partition,
					int64 from_offset, int64 max_records, bool read_committed, int64 limit,
					int64 *next_offset)
{
	const char *params[5];
	PGresult   *res;

	*next_offset = from_offset;
	if (max_records <= 0 || from_offset >= limit)
		return 0;
	params[0] = topic->name;
	params[1] = psprintf("%d", partition);
	params[2] = psprintf(INT64_FORMAT, from_offset);
	params[3] = psprintf("%d", (int) Min(max_records, (int64) PG_INT32_MAX));
	params[4] = read_committed ? "read_committed" : "read_uncommitted";
	res = leader_query(topic, partition,
					   "SELECT * FROM streamlog.read($1::text, $2::integer, $3::bigint, "
					   "$4::integer, $5::text)", 5, params);
	return put_leader_rows(rows, res, topic, partition, max_records, limit, next_offset);
}

/*
 * Kafka timestamps (ms since 1970) passed to a leader are clamped to years
 * about 1200 BC .. 33600 AD, inside PostgreSQL's timestamptz range, so
 * that neither node overflows turning them back; a bound beyond that range
 * (such as 'infinity') matches the same records as the clamped one unless
 * a record's own timestamp lies out there.
 */
#define REMOTE_TS_MIN_MS INT64CONST(-100000000000000)
#define REMOTE_TS_MAX_MS INT64CONST(1000000000000000)

/*
 * A Kafka timestamp as a parameter the leader turns back into the same
 * timestamptz whatever its session's DateStyle and TimeZone: whole
 * microseconds since the Unix epoch; NULL for none (no bound)
 */
static const char *
ts_param(int64 kafka_ms, int64 none)
{
	if (kafka_ms == none)
		return NULL;
	kafka_ms = Max(Min(kafka_ms, REMOTE_TS_MAX_MS), REMOTE_TS_MIN_MS);
	return psprintf(INT64_FORMAT, kafka_ms * 1000);
}

#define LEADER_TS(n) "(timestamptz 'epoch' + $" #n "::bigint * interval '1 microsecond')"

int64
SlRemoteHistoryRecords(SlRecordRows *rows, const SlTopic *topic, int32 partition,
					   const SlLogScanBounds *bounds)
{
	int64		log_start;
	int64		high_watermark;
	int64		last_stable;
	int64		end;
	int64		from;
	int64		n = 0;
	const char *params[7];

	/*
	 * One bound for the whole call, taken before the first chunk: the
	 * leader's high watermark (LSO under read_committed), so that chunks
	 * asked later do not reach records that came after this call began
	 */
	SlRemotePartitionState(topic, partition, &log_start, &high_watermark, &last_stable);
	end = bounds->read_committed ? last_stable : high_watermark;
	if (bounds->to_offset < end)
		end = bounds->to_offset + 1;	/* to_offset is inclusive */
	from = Max(bounds->from_offset, log_start);
	params[0] = topic->name;
	params[1] = psprintf("{%d}", partition);
	params[4] = ts_param(bounds->from_ts, PG_INT64_MIN);
	params[5] = ts_param(bounds->to_ts, PG_INT64_MAX);
	params[6] = bounds->read_committed ? "read_committed" : "read_uncommitted";

	/*
	 * The leader's history() in ranges of offsets, so that neither node
	 * holds more than one range's rows in memory at once
	 */
	while (from < end)
	{
		int64		to = end - 1;
		int64		next = from;
		PGresult   *res;

		if (to - from >= REMOTE_HISTORY_CHUNK)
			to = from + REMOTE_HISTORY_CHUNK - 1;
		params[2] = psprintf(INT64_FORMAT, from);
		params[3] = psprintf(INT64_FORMAT, to);
		res = leader_query(topic, partition,
						   "SELECT * FROM streamlog.history($1::text, $2::integer[], "
						   "$3::bigint, $4::bigint, " LEADER_TS(5) ", " LEADER_TS(6) ", $7::text)",
						   7, params);
		n += put_leader_rows(rows, res, topic, partition, PG_INT64_MAX, to + 1, &next);
		from = to + 1;
		CHECK_FOR_INTERRUPTS();
	}
	return n;
}

bool
SlRemoteOffsetForTime(const SlTopic *topic, int32 partition, int64 ts_ms, int64 *offset)
{
	const char *params[3];
	PGresult   *res;
	bool		found;

	params[0] = topic->name;
	params[1] = psprintf("%d", partition);
	params[2] = ts_param(ts_ms, PG_INT64_MIN);
	res = leader_query(topic, partition,
					   "SELECT streamlog.offset_for_time($1::text, $2::integer, " LEADER_TS(3) ")",
					   3, params);
	if (PQntuples(res) != 1 || PQnfields(res) != 1)
	{
		int			ntuples = PQntuples(res);

		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the leader of partition %d of topic \"%s\" answered offset_for_time() with %d rows",
						partition, topic->name, ntuples),
				 errhint("Every node must run the same version of streamlog.")));
	}
	found = !PQgetisnull(res, 0, 0);
	if (found)
		*offset = result_int8(res, 0, 0, topic, partition);
	PQclear(res);
	return found;
}
