/*
 * SQL: consumer groups.  streamlog.consume() returns the next records of a
 * topic for a group and advances the group's committed offsets in the
 * caller's transaction: when it commits the records are consumed, when it
 * rolls back they will be returned again.  seek(), reset_offsets() and
 * delete_group() move or remove a group's offsets.
 *
 * consume() claims partitions one batch at a time, taking only as many as
 * the records it is asked for need (judged from the committed offsets and
 * high watermarks), so that concurrent consumers of a group find the other
 * partitions free.  Partitions are tried least recently served first
 * (never served, then by the time of their last commit), so a busy
 * partition does not starve the others.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lockdefs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/wait_event.h"

#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/group_placement.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/sqlapi/record_rows.h"
#include "streamlog/sqlapi/cluster_sql.h"
#include "streamlog/sqlapi/isolation_arg.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog_consume);
PG_FUNCTION_INFO_V1(streamlog_seek);
PG_FUNCTION_INFO_V1(streamlog_reset_offsets);
PG_FUNCTION_INFO_V1(streamlog_reset_offsets_to_time);
PG_FUNCTION_INFO_V1(streamlog_delete_group);

/* A partition consume() may read from */
typedef struct Candidate
{
	int32		partition;
	int64		estimate;		/* records below the high watermark */
	int64		create_at;		/* no row yet: create it here; else -1 */
	bool		served;			/* the group has a row */
	TimestampTz served_at;		/* its last commit */
} Candidate;

/* How long a SQL consumer waits for its new coordinator to load the group */
#define GROUP_LOAD_WAIT_MS 30000
#define GROUP_LOAD_POLL_MS 10

/*
 * This node coordinates group_id: wait while it loads the group's
 * committed offsets (a new leader of its partition of __consumer_offsets,
 * group_placement.h); false if it stopped coordinating meanwhile
 */
static bool
wait_for_group_load(const char *group_id)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   GROUP_LOAD_WAIT_MS);
	int16		error;

	while ((error = SlGroupCoordinatorError(group_id)) == SL_ERR_COORDINATOR_LOAD_IN_PROGRESS)
	{
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the committed offsets of consumer group \"%s\" are still being loaded on this node",
							group_id),
					 errdetail("This node became the leader of the group's partition of %s and loads it.",
							   SL_OFFSETS_TOPIC_NAME),
					 errhint("Retry; the server log says why if the load failed.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 GROUP_LOAD_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return error == SL_ERR_NONE;
}

/*
 * On a cluster, a group's offsets live on the node that coordinates it
 * (metadata/group_placement.h), for both doors: elsewhere, an error that
 * names that node and how to reach it.  A new coordinator answers once it
 * loaded them.
 */
static void
check_coordinator(const char *group_id)
{
	int32		coordinator;
	SlClusterNode node;

	if (SlGroupCoordinatedHere(group_id) && wait_for_group_load(group_id))
		return;
	coordinator = SlGroupCoordinatorNode(group_id);
	if (coordinator < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("consumer group \"%s\" has no coordinator available", group_id),
				 errdetail("The partition of %s that holds the group has no leader.",
						   SL_OFFSETS_TOPIC_NAME),
				 errhint("Retry once the node that leads it is back (streamlog.nodes).")));
	if (!SlClusterGetNode(coordinator, &node))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("consumer group \"%s\" is coordinated by node %d", group_id, coordinator),
				 errhint("Connect to node %d to use this group.", coordinator)));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("consumer group \"%s\" is coordinated by node %d", group_id, coordinator),
			 errhint("Connect to node %d to use this group: %s (Kafka %s:%d).",
					 coordinator, node.sql_conninfo, node.kafka_host, node.kafka_port)));
}

/*
 * The group named by argument argno, once the caller may do op on it (as
 * Kafka's group APIs: READ to consume and commit, DELETE to delete)
 */
static char *
group_arg(FunctionCallInfo fcinfo, int argno, SlAclOperation op)
{
	char	   *group_id;

	SlRequireArg(fcinfo, argno, "group");
	group_id = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	SlGroupValidateId(group_id);
	SlAclCheck(SL_RESOURCE_GROUP, group_id, op);
	check_coordinator(group_id);
	return group_id;
}

/*
 * The topic named by argument argno, once the caller may do op on it,
 * locked for reading; checked before the lookup, so that a role without
 * the privilege cannot tell whether the topic exists
 */
static const SlTopic *
topic_arg(FunctionCallInfo fcinfo, int argno, SlAclOperation op)
{
	char	   *name;

	SlRequireArg(fcinfo, argno, "topic");
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	SlAclCheck(SL_RESOURCE_TOPIC, name, op);
	return SlTopicLookupAndLock(name, AccessShareLock);
}

/* Least recently served first: never served, then oldest commit, then partition */
static int
compare_candidates(const void *a, const void *b)
{
	const Candidate *x = a;
	const Candidate *y = b;

	if (x->served != y->served)
		return x->served ? 1 : -1;
	if (x->served && x->served_at != y->served_at)
		return x->served_at < y->served_at ? -1 : 1;
	return x->partition < y->partition ? -1 : (x->partition > y->partition ? 1 : 0);
}

/*
 * read_claimed emits up to *remaining records of a claimed partition from
 * its committed offset and returns the offset to commit next: after the
 * last record emitted, at least the log start offset, and the high
 * watermark the scan saw if it read everything below it (records a scan
 * passes over are not for consumers, and must not hold the group back).
 */
static int64
read_claimed(SlRecordRows *rows, const SlTopic *topic, int32 partition, int64 committed,
			 int64 *remaining, bool read_committed)
{
	SlLogScanBounds bounds;
	SlLogScan  *scan;
	SlRecord	rec;
	int64		next;
	bool		exhausted = false;

	SlSqlCheckPartitionLeader(topic, partition);
	SlLogScanBoundsInit(&bounds);
	bounds.from_offset = committed;
	bounds.read_committed = read_committed;
	scan = SlLogScanBegin(topic, partition, &bounds);
	next = Max(committed, SlLogScanLogStart(scan));
	for (;;)
	{
		if (*remaining <= 0)
			break;
		if (!SlLogScanNext(scan, &rec))
		{
			exhausted = true;
			break;
		}
		SlRecordRowsPut(rows, partition, &rec);
		next = rec.offset + 1;
		(*remaining)--;
		CHECK_FOR_INTERRUPTS();
	}
	/* Read_committed stops at the last stable offset: so does the group */
	if (exhausted)
		next = Max(next, SlLogScanReadLimit(scan));
	SlLogScanEnd(scan);
	return next;
}

/*
 * consume_once claims partitions with records for the group, emits up to
 * max_records of them and advances the claimed partitions' committed
 * offsets.  Returns how many records it emitted; hwms[] gets the high
 * watermarks it started from.
 */
static int64
consume_once(SlRecordRows *rows, const char *group_id, const SlTopic *topic,
			 int64 max_records, int64 *hwms, bool read_committed)
{
	int32		nparts = topic->partition_count;
	int64	   *log_starts = palloc(sizeof(int64) * nparts);
	SlGroupPosition *positions;
	Candidate  *candidates = palloc(sizeof(Candidate) * nparts);
	int			ncandidates = 0;
	int32	   *batch_parts = palloc(sizeof(int32) * nparts);
	int64	   *batch_create = palloc(sizeof(int64) * nparts);
	bool	   *batch_claimed = palloc(sizeof(bool) * nparts);
	int64	   *batch_offsets = palloc(sizeof(int64) * nparts);
	int32	   *advance_parts = palloc(sizeof(int32) * nparts);
	int64	   *advance_offsets = palloc(sizeof(int64) * nparts);
	int			nadvance = 0;
	int64		remaining = max_records;
	int			next = 0;

	/* The high watermarks before the positions: see SlGroupWaitForRecords */
	for (int32 p = 0; p < nparts; p++)
	{
		SlPartitionOffsets snap;

		SlPartitionGetOffsets(topic->topic_id, p, &snap);
		hwms[p] = snap.high_watermark;
		log_starts[p] = snap.log_start_offset;
	}
	positions = SlGroupPositions(group_id, topic);

	for (int32 p = 0; p < nparts; p++)
	{
		SlGroupPosition *pos = &positions[p];
		int64		from = pos->exists ? Max(pos->committed_offset, log_starts[p]) : log_starts[p];

		/* Records to read, or an offset that retention left behind */
		if (hwms[p] > from || (pos->exists && pos->committed_offset < log_starts[p]))
		{
			Candidate  *c = &candidates[ncandidates++];

			c->partition = p;
			c->estimate = Max(hwms[p] - from, 0);
			c->create_at = pos->exists ? -1 : log_starts[p];
			c->served = pos->exists;
			c->served_at = pos->committed_at;
		}
	}
	if (ncandidates == 0)
		return 0;
	qsort(candidates, ncandidates, sizeof(Candidate), compare_candidates);

	/* Claim the fewest partitions that can fill max_records, then more if short */
	while (remaining > 0 && next < ncandidates)
	{
		int			nbatch = 0;
		int64		expected = 0;

		do
		{
			Candidate  *c = &candidates[next++];

			batch_parts[nbatch] = c->partition;
			batch_create[nbatch++] = c->create_at;
			expected += c->estimate;
		} while (next < ncandidates && expected < remaining);

		SlGroupClaim(group_id, topic->topic_id, batch_parts, batch_create, nbatch,
					 batch_claimed, batch_offsets);
		for (int i = 0; i < nbatch; i++)
		{
			int64		next_offset;

			if (!batch_claimed[i])
				continue;
			next_offset = read_claimed(rows, topic, batch_parts[i], batch_offsets[i], &remaining,
									   read_committed);
			if (next_offset != batch_offsets[i])
			{
				advance_parts[nadvance] = batch_parts[i];
				advance_offsets[nadvance++] = next_offset;
			}
		}
	}
	SlGroupAdvance(group_id, topic->topic_id, advance_parts, advance_offsets, nadvance);
	return max_records - remaining;
}

/* Microseconds of a non-negative interval (a month is 30 days) */
static int64
timeout_micros(const Interval *timeout)
{
	int64		us;

	if (pg_mul_s64_overflow((int64) timeout->month * DAYS_PER_MONTH + timeout->day,
							USECS_PER_DAY, &us) ||
		pg_add_s64_overflow(us, timeout->time, &us))
		us = timeout->time < 0 ? -1 : PG_INT64_MAX;
	if (us < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	return us;
}

Datum
streamlog_consume(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg(fcinfo, 0, SL_ACL_READ);
	SlTopic		topic;
	int32		max_records;
	int64		timeout_us;
	bool		read_committed;
	TimestampTz deadline;
	int64	   *hwms;
	SlRecordRows	rows;
	MemoryContext round_context;
	MemoryContext oldcxt;

	SlRequireArg(fcinfo, 1, "topic");
	SlRequireArg(fcinfo, 2, "max_records");
	SlRequireArg(fcinfo, 3, "timeout");
	max_records = PG_GETARG_INT32(2);
	if (max_records < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_records must be positive, not %d", max_records)));
	timeout_us = timeout_micros(PG_GETARG_INTERVAL_P(3));
	read_committed = SlIsolationArgReadCommitted(fcinfo, 4);
	topic = *topic_arg(fcinfo, 1, SL_ACL_READ);

	deadline = GetCurrentTimestamp();
	if (pg_add_s64_overflow(deadline, timeout_us, &deadline))
		deadline = DT_NOEND;
	SlRecordRowsInit(&rows, fcinfo);
	hwms = palloc(sizeof(int64) * topic.partition_count);
	round_context = AllocSetContextCreate(CurrentMemoryContext, "streamlog consume",
										  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		int64		n;

		oldcxt = MemoryContextSwitchTo(round_context);
		n = consume_once(&rows, group_id, &topic, max_records, hwms, read_committed);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(round_context);
		if (n > 0 || timeout_us == 0)
			break;
		if (!SlGroupWaitForRecords(&topic, hwms, deadline))
			break;
	}
	MemoryContextDelete(round_context);
	return (Datum) 0;
}

static int64
checked_offset_arg(FunctionCallInfo fcinfo, int argno)
{
	SlRequireArg(fcinfo, argno, "offset");
	return PG_GETARG_INT64(argno);
}

Datum
streamlog_seek(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg(fcinfo, 0, SL_ACL_READ);
	const SlTopic *topic;
	int32		partition;
	int64		offset;
	SlPartitionOffsets snap;
	SlGroupOffset commit;

	SlRequireArg(fcinfo, 1, "topic");
	SlRequireArg(fcinfo, 2, "partition");
	offset = checked_offset_arg(fcinfo, 3);
	topic = topic_arg(fcinfo, 1, SL_ACL_DESCRIBE);
	partition = PG_GETARG_INT32(2);
	SlTopicCheckPartition(topic, partition);

	SlPartitionGetOffsets(topic->topic_id, partition, &snap);
	if (offset < snap.log_start_offset || offset > snap.log_end_offset)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset %lld is out of range for partition %d of topic \"%s\": valid offsets are %lld to %lld",
						(long long) offset, partition, topic->name,
						(long long) snap.log_start_offset, (long long) snap.high_watermark),
				 errdetail("The log start offset is %lld and the high watermark is %lld; seeking to the high watermark waits for the next record.",
						   (long long) snap.log_start_offset, (long long) snap.high_watermark)));

	commit.topic_id = topic->topic_id;
	commit.partition = partition;
	commit.committed_offset = offset;
	commit.leader_epoch = -1;
	commit.metadata = NULL;
	commit.committed_at = 0;
	SlGroupOffsetsCommit(group_id, &commit, 1, false);
	PG_RETURN_VOID();
}

/*
 * commit_reset_offsets commits offsets[] for every partition of topic and returns
 * them as rows of (partition, committed_offset).
 */
static void
commit_reset_offsets(FunctionCallInfo fcinfo, const char *group_id, const SlTopic *topic,
					 const int64 *offsets)
{
	ReturnSetInfo *rsinfo;
	SlGroupOffset *commits = palloc(sizeof(SlGroupOffset) * topic->partition_count);

	for (int32 p = 0; p < topic->partition_count; p++)
	{
		commits[p].topic_id = topic->topic_id;
		commits[p].partition = p;
		commits[p].committed_offset = offsets[p];
		commits[p].leader_epoch = -1;
		commits[p].metadata = NULL;
		commits[p].committed_at = 0;
	}
	SlGroupOffsetsCommit(group_id, commits, topic->partition_count, false);

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	for (int32 p = 0; p < topic->partition_count; p++)
	{
		Datum		values[2] = {Int32GetDatum(p), Int64GetDatum(offsets[p])};
		bool		nulls[2] = {false, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

Datum
streamlog_reset_offsets(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg(fcinfo, 0, SL_ACL_READ);
	const SlTopic *topic;
	char	   *reset_to;
	bool		earliest;
	int64	   *offsets;

	SlRequireArg(fcinfo, 1, "topic");
	SlRequireArg(fcinfo, 2, "reset_to");
	reset_to = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strcmp(reset_to, "earliest") == 0)
		earliest = true;
	else if (strcmp(reset_to, "latest") == 0)
		earliest = false;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid reset_to \"%s\": expected 'earliest', 'latest' or a timestamp",
						reset_to),
				 errhint("Pass a timestamp as timestamptz, e.g. reset_to => now() - interval '1 hour'.")));
	topic = topic_arg(fcinfo, 1, SL_ACL_DESCRIBE);

	offsets = palloc(sizeof(int64) * topic->partition_count);
	for (int32 p = 0; p < topic->partition_count; p++)
	{
		SlPartitionOffsets snap;

		SlPartitionGetOffsets(topic->topic_id, p, &snap);
		offsets[p] = earliest ? snap.log_start_offset : snap.high_watermark;
	}
	commit_reset_offsets(fcinfo, group_id, topic, offsets);
	return (Datum) 0;
}

Datum
streamlog_reset_offsets_to_time(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg(fcinfo, 0, SL_ACL_READ);
	SlTopic		topic;
	SlLogScanBounds bounds;
	int64	   *offsets;

	SlRequireArg(fcinfo, 1, "topic");
	SlRequireArg(fcinfo, 2, "reset_to");
	topic = *topic_arg(fcinfo, 1, SL_ACL_DESCRIBE);
	SlLogScanBoundsInit(&bounds);
	bounds.from_ts = SlTimestampToKafka(PG_GETARG_TIMESTAMPTZ(2));

	/* The first offset at or after the time, else the end (as Kafka) */
	offsets = palloc(sizeof(int64) * topic.partition_count);
	for (int32 p = 0; p < topic.partition_count; p++)
	{
		SlLogScan  *scan = SlLogScanBegin(&topic, p, &bounds);
		SlRecord	rec;

		offsets[p] = SlLogScanNext(scan, &rec) ? rec.offset : SlLogScanHighWatermark(scan);
		SlLogScanEnd(scan);
	}
	commit_reset_offsets(fcinfo, group_id, &topic, offsets);
	return (Datum) 0;
}

Datum
streamlog_delete_group(PG_FUNCTION_ARGS)
{
	char	   *group_id = group_arg(fcinfo, 0, SL_ACL_DELETE);
	bool		if_exists;

	SlRequireArg(fcinfo, 1, "if_exists");
	if_exists = PG_GETARG_BOOL(1);
	if (SlGroupOffsetsDelete(group_id, -1, -1, false) == 0 && !if_exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("consumer group \"%s\" does not exist", group_id)));
	PG_RETURN_VOID();
}
