/*
 * SQL: consumer groups.  streamlog.consume() returns the next records of a
 * topic for a group and advances the group's committed offsets in the
 * caller's transaction: when it commits the records are consumed, when it
 * rolls back they will be returned again.  seek(), reset_offsets() and
 * delete_group() move or remove a group's offsets.
 *
 * consume() claims partitions one batch at a time, taking only as many as
 * the records it is asked for need (storage/group_claim.c), so that
 * concurrent consumers of a group find the other partitions free.  It
 * reads the records from this node's copy of each partition, below its
 * high watermark.  On a cluster, a group coordinated by another node is
 * claimed and advanced there, in a remote transaction tied to the
 * caller's by two-phase commit (metadata/group_remote.c); the functions
 * the coordinator runs for it are at the end of this file.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/twophase.h"
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

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/group_placement.h"
#include "streamlog/metadata/group_remote.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/sqlapi/record_rows.h"
#include "streamlog/sqlapi/cluster_sql.h"
#include "streamlog/sqlapi/remote_read.h"
#include "streamlog/sqlapi/isolation_arg.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/sqlapi/sql_read_metrics.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog_consume);
PG_FUNCTION_INFO_V1(streamlog_seek);
PG_FUNCTION_INFO_V1(streamlog_reset_offsets);
PG_FUNCTION_INFO_V1(streamlog_reset_offsets_to_time);
PG_FUNCTION_INFO_V1(streamlog_delete_group);
PG_FUNCTION_INFO_V1(streamlog__group_claim);
PG_FUNCTION_INFO_V1(streamlog__group_advance);
PG_FUNCTION_INFO_V1(streamlog__group_settle);

/*
 * How often consume() with a timeout asks again the leaders of partitions
 * it reads through them (no wake-up comes from another node)
 */
#define REMOTE_POLL_MS 100

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
static int32
check_coordinator(const char *group_id, bool remote_ok)
{
	int32		coordinator;
	SlClusterNode node;

	if (SlGroupCoordinatedHere(group_id) && wait_for_group_load(group_id))
		return sl_node_id;
	coordinator = SlGroupCoordinatorNode(group_id);
	if (coordinator < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("consumer group \"%s\" has no coordinator available", group_id),
				 errdetail("The partition of %s that holds the group has no leader.",
						   SL_OFFSETS_TOPIC_NAME),
				 errhint("Retry once the node that leads it is back (streamlog.nodes).")));
	/* consume() claims on the coordinator: see group_remote.c */
	if (remote_ok && coordinator != sl_node_id)
		return coordinator;
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
 * Kafka's group APIs: READ to consume and commit, DELETE to delete);
 * *coordinator gets the node that coordinates it, when the caller can
 * work with another node's (else NULL: this node must coordinate it)
 */
static char *
group_arg(FunctionCallInfo fcinfo, int argno, SlAclOperation op, int32 *coordinator)
{
	char	   *group_id;
	int32		node;

	SlRequireArg(fcinfo, argno, "group");
	group_id = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	SlGroupValidateId(group_id);
	SlAclCheck(SL_RESOURCE_GROUP, group_id, op);
	node = check_coordinator(group_id, coordinator != NULL);
	if (coordinator != NULL)
		*coordinator = node;
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
	SlSqlReadCount count = {0, 0};

	if (SlSqlPartitionReadRemotely(topic, partition))
	{
		int64		log_start;
		int64		hwm;
		int64		lso;
		int64		limit;
		int64		n;

		/* The same rule through the leader: its bounds, then its records */
		SlRemotePartitionState(topic, partition, &log_start, &hwm, &lso);
		limit = read_committed ? lso : hwm;
		next = Max(committed, log_start);
		n = SlRemoteReadRecords(rows, topic, partition, next, *remaining, read_committed,
								limit, &next);
		*remaining -= n;
		/* Fewer than asked for: everything below the bound was read */
		if (*remaining > 0)
			next = Max(next, limit);
		return next;
	}
	SlSqlCheckPartitionReplica(topic, partition);
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
		SlSqlReadCountAdd(&count, &rec);
		next = rec.offset + 1;
		(*remaining)--;
		CHECK_FOR_INTERRUPTS();
	}
	/* Read_committed stops at the last stable offset: so does the group */
	if (exhausted)
		next = Max(next, SlLogScanReadLimit(scan));
	SlLogScanEnd(scan);
	SlSqlReadCountDone(topic, partition, &count);
	return next;
}

/*
 * consume_once claims partitions with records for the group (on
 * coordinator, this node or another), emits up to max_records of them and
 * advances the claimed partitions' committed offsets.  Returns how many
 * records it emitted; wait_hwms[] gets this node's high watermarks it
 * started from, *any_remote whether it read a partition through its leader.
 */
static int64
consume_once(SlRecordRows *rows, const char *group_id, const SlTopic *topic,
			 int32 coordinator, int64 max_records, int64 *wait_hwms, bool *any_remote,
			 bool read_committed)
{
	int64	   *hwms = palloc(sizeof(int64) * topic->partition_count);
	int32		nparts = topic->partition_count;
	bool		remote = coordinator != sl_node_id;
	int64	   *log_starts = palloc(sizeof(int64) * nparts);
	bool	   *tried = palloc0(sizeof(bool) * nparts);
	int32	   *claimed_parts = palloc(sizeof(int32) * nparts);
	int64	   *claimed_offsets = palloc(sizeof(int64) * nparts);
	int32	   *advance_parts = palloc(sizeof(int32) * nparts);
	int64	   *advance_from = palloc(sizeof(int64) * nparts);
	int64	   *advance_to = palloc(sizeof(int64) * nparts);
	int			nadvance = 0;
	int64		remaining = max_records;
	bool		exhausted = false;

	/*
	 * The high watermarks before the positions: see SlGroupWaitForRecords.
	 * Every partition is read here, from this node's copy, or through its
	 * leader when this node holds none (remote_read.h).  wait_hwms[] gets
	 * this node's own, which are what SlGroupWaitForRecords watches;
	 * *any_remote whether a partition is read through its leader.
	 */
	*any_remote = false;
	for (int32 p = 0; p < nparts; p++)
	{
		SlPartitionOffsets snap;

		SlPartitionGetOffsets(topic->topic_id, p, &snap);
		wait_hwms[p] = snap.high_watermark;
		if (SlSqlPartitionReadRemotely(topic, p))
		{
			int64		lso;

			SlRemotePartitionState(topic, p, &log_starts[p], &hwms[p], &lso);
			*any_remote = true;
			continue;
		}
		SlSqlCheckPartitionReplica(topic, p);
		hwms[p] = snap.high_watermark;
		log_starts[p] = snap.log_start_offset;
	}

	/* Claim the fewest partitions that can fill max_records, then more if short */
	while (remaining > 0 && !exhausted)
	{
		int			nclaimed;

		if (remote)
			nclaimed = SlRemoteGroupClaimNext(coordinator, group_id, topic, hwms, log_starts,
											  remaining, tried, claimed_parts,
											  claimed_offsets, &exhausted);
		else
			nclaimed = SlGroupClaimNext(group_id, topic, hwms, log_starts, remaining, tried,
										true, claimed_parts, claimed_offsets, &exhausted);
		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < nclaimed; i++)
		{
			int64		next_offset = read_claimed(rows, topic, claimed_parts[i],
												   claimed_offsets[i], &remaining,
												   read_committed);

			if (next_offset != claimed_offsets[i])
			{
				advance_parts[nadvance] = claimed_parts[i];
				advance_from[nadvance] = claimed_offsets[i];
				advance_to[nadvance++] = next_offset;
			}
		}
	}
	if (remote)
		SlRemoteGroupAdvance(coordinator, group_id, topic, advance_parts, advance_from,
							 advance_to, nadvance);
	else
		SlGroupAdvance(group_id, topic->topic_id, advance_parts, advance_to, nadvance, true);
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
	int32		coordinator;
	char	   *group_id = group_arg(fcinfo, 0, SL_ACL_READ, &coordinator);
	SlTopic		topic;
	int32		max_records;
	int64		timeout_us;
	bool		read_committed;
	TimestampTz deadline;
	int64	   *hwms;
	bool		any_remote = false;
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
		n = consume_once(&rows, group_id, &topic, coordinator, max_records, hwms,
						 &any_remote, read_committed);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(round_context);
		if (n > 0 || timeout_us == 0)
			break;
		if (any_remote)
		{
			/* No wake-up from a leader: ask it again after a while */
			TimestampTz poll = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   REMOTE_POLL_MS);

			(void) SlGroupWaitForRecords(&topic, hwms, Min(poll, deadline));
			if (GetCurrentTimestamp() >= deadline)
				break;
			continue;
		}
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
	char	   *group_id = group_arg(fcinfo, 0, SL_ACL_READ, NULL);
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
	char	   *group_id = group_arg(fcinfo, 0, SL_ACL_READ, NULL);
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
	char	   *group_id = group_arg(fcinfo, 0, SL_ACL_READ, NULL);
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
	char	   *group_id = group_arg(fcinfo, 0, SL_ACL_DELETE, NULL);
	bool		if_exists;

	SlRequireArg(fcinfo, 1, "if_exists");
	if_exists = PG_GETARG_BOOL(1);
	if (SlGroupOffsetsDelete(group_id, -1, -1, false) == 0 && !if_exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("consumer group \"%s\" does not exist", group_id)));
	PG_RETURN_VOID();
}

/*
 * The coordinator's side of consume() on another node
 * (metadata/group_remote.c).  Superuser only: the consuming node checked
 * the caller's privileges, and calls these as streamlog's node role.
 */

static void
require_superuser(const char *function)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", function),
				 errdetail("It claims and moves a group's offsets for a consumer on another node."),
				 errhint("Nodes call it on each other as a superuser; use streamlog.consume().")));
}

/* The elements of a one-dimensional int4[]/int8[] argument, checked */
static Datum *
array_arg(FunctionCallInfo fcinfo, int argno, Oid type, int *count)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(argno);
	Datum	   *elems;
	bool	   *nulls;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("argument %d must be a one-dimensional array", argno + 1)));
	deconstruct_array(a, type, type == INT4OID ? 4 : 8, type == INT4OID ? true : FLOAT8PASSBYVAL,
					  type == INT4OID ? TYPALIGN_INT : TYPALIGN_DOUBLE, &elems, &nulls, count);
	for (int i = 0; i < *count; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument %d must not hold NULLs", argno + 1)));
	return elems;
}

/* This node coordinates group_id: else an error a consuming node relays */
static void
require_coordinator(const char *group_id)
{
	if (check_coordinator(group_id, true) != sl_node_id)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node %d no longer coordinates consumer group \"%s\"", sl_node_id,
						group_id),
				 errhint("Retry: the group's coordinator moved (streamlog.nodes).")));
}

Datum
streamlog__group_claim(PG_FUNCTION_ARGS)
{
	char	   *group_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		topic_id = PG_GETARG_INT32(1);
	int64		wanted = PG_GETARG_INT64(4);
	const SlTopic *topic;
	Datum	   *hwm_elems;
	Datum	   *start_elems;
	Datum	   *tried_elems;
	int			nhwms;
	int			nstarts;
	int			ntried;
	int64	   *hwms;
	int64	   *log_starts;
	bool	   *tried;
	bool	   *tried_before;
	int32	   *parts;
	int64	   *offsets;
	int			nclaimed;
	bool		exhausted;
	ReturnSetInfo *rsinfo;

	require_superuser("_group_claim");
	if (max_prepared_xacts <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node %d cannot coordinate consume() on other nodes: max_prepared_transactions is 0",
						sl_node_id),
				 errdetail("A consumer on another node prepares its claim here and commits it with its own transaction."),
				 errhint("Set max_prepared_transactions (for instance to 64) on every node and restart it, or consume on node %d.",
						 sl_node_id)));
	SlGroupValidateId(group_id);
	require_coordinator(group_id);
	topic = SlSqlTopicByIdLocked(topic_id, AccessShareLock);
	hwm_elems = array_arg(fcinfo, 2, INT8OID, &nhwms);
	start_elems = array_arg(fcinfo, 3, INT8OID, &nstarts);
	tried_elems = array_arg(fcinfo, 5, INT4OID, &ntried);
	if (nhwms != topic->partition_count || nstarts != topic->partition_count)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hwms and log_starts must have one element per partition of topic \"%s\" (%d)",
						topic->name, topic->partition_count)));
	hwms = palloc(sizeof(int64) * Max(nhwms, 1));
	log_starts = palloc(sizeof(int64) * Max(nhwms, 1));
	tried = palloc0(sizeof(bool) * Max(nhwms, 1));
	tried_before = palloc0(sizeof(bool) * Max(nhwms, 1));
	for (int i = 0; i < nhwms; i++)
	{
		hwms[i] = DatumGetInt64(hwm_elems[i]);
		log_starts[i] = DatumGetInt64(start_elems[i]);
	}
	for (int i = 0; i < ntried; i++)
	{
		int32		p = DatumGetInt32(tried_elems[i]);

		if (p >= 0 && p < topic->partition_count)
			tried[p] = tried_before[p] = true;
	}
	parts = palloc(sizeof(int32) * Max(nhwms, 1));
	offsets = palloc(sizeof(int64) * Max(nhwms, 1));
	/* No __consumer_offsets records: this transaction will be prepared */
	nclaimed = SlGroupClaimNext(group_id, topic, hwms, log_starts, wanted, tried, false,
								parts, offsets, &exhausted);

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	for (int32 p = 0; p < topic->partition_count; p++)
	{
		Datum		values[2] = {Int32GetDatum(p), Int64GetDatum(-1)};
		bool		nulls[2] = {false, false};

		if (!tried[p] || tried_before[p])
			continue;
		for (int i = 0; i < nclaimed; i++)
			if (parts[i] == p)
				values[1] = Int64GetDatum(offsets[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
streamlog__group_advance(PG_FUNCTION_ARGS)
{
	char	   *gid = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *group_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		topic_id = PG_GETARG_INT32(2);
	const SlTopic *topic;
	Datum	   *part_elems;
	Datum	   *offset_elems;
	int			nparts;
	int			noffsets;
	int32	   *parts;
	int64	   *offsets;

	require_superuser("_group_advance");
	SlGroupValidateId(group_id);
	require_coordinator(group_id);
	topic = SlSqlTopicByIdLocked(topic_id, AccessShareLock);
	part_elems = array_arg(fcinfo, 3, INT4OID, &nparts);
	offset_elems = array_arg(fcinfo, 4, INT8OID, &noffsets);
	if (nparts != noffsets)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partitions and offsets must have as many elements")));
	parts = palloc(sizeof(int32) * Max(nparts, 1));
	offsets = palloc(sizeof(int64) * Max(nparts, 1));
	for (int i = 0; i < nparts; i++)
	{
		parts[i] = DatumGetInt32(part_elems[i]);
		offsets[i] = DatumGetInt64(offset_elems[i]);
		SlTopicCheckPartition(topic, parts[i]);
		if (offsets[i] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("offset %lld to commit for partition %d is negative",
							(long long) offsets[i], parts[i])));
	}
	SlRemoteClaimMark(gid, group_id, topic_id);
	SlGroupAdvance(group_id, topic_id, parts, offsets, nparts, false);
	PG_RETURN_VOID();
}

Datum
streamlog__group_settle(PG_FUNCTION_ARGS)
{
	char	   *gid;
	char	   *group_id;
	int32		topic_id;
	const SlTopic *topic;
	Datum	   *part_elems;
	Datum	   *from_elems;
	Datum	   *to_elems;
	int			nparts;
	int			nfrom;
	int			nto;
	int32	   *parts;
	int64	   *from;
	int64	   *to;
	int64	   *found;
	bool		conflict = false;

	require_superuser("_group_settle");
	for (int i = 1; i < 6; i++)
		if (PG_ARGISNULL(i))
			PG_RETURN_NULL();
	gid = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	group_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	topic_id = PG_GETARG_INT32(2);
	SlGroupValidateId(group_id);
	if (!(SlGroupCoordinatedHere(group_id) && wait_for_group_load(group_id)))
		PG_RETURN_TEXT_P(cstring_to_text("moved"));
	if (gid != NULL && SlPreparedXactExists(gid))
		PG_RETURN_TEXT_P(cstring_to_text("prepared"));
	if (gid != NULL && !SlRemoteClaimUnmark(gid, group_id, topic_id))
		PG_RETURN_TEXT_P(cstring_to_text("done"));
	topic = SlSqlTopicByIdLocked(topic_id, AccessShareLock);
	part_elems = array_arg(fcinfo, 3, INT4OID, &nparts);
	from_elems = array_arg(fcinfo, 4, INT8OID, &nfrom);
	to_elems = array_arg(fcinfo, 5, INT8OID, &nto);
	if (nparts != nfrom || nparts != nto)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partitions, from_offsets and to_offsets must have as many elements")));
	parts = palloc(sizeof(int32) * Max(nparts, 1));
	from = palloc(sizeof(int64) * Max(nparts, 1));
	to = palloc(sizeof(int64) * Max(nparts, 1));
	found = palloc(sizeof(int64) * Max(nparts, 1));
	for (int i = 0; i < nparts; i++)
	{
		parts[i] = DatumGetInt32(part_elems[i]);
		from[i] = DatumGetInt64(from_elems[i]);
		to[i] = DatumGetInt64(to_elems[i]);
		SlTopicCheckPartition(topic, parts[i]);
	}
	SlGroupSettle(group_id, topic_id, parts, from, to, nparts, found);

	/*
	 * Settling what a lost coordinator had prepared: a partition at neither
	 * offset was consumed here meanwhile, from the old offset
	 */
	for (int i = 0; gid == NULL && i < nparts; i++)
		if (found[i] != to[i])
		{
			conflict = true;
			ereport(WARNING,
					(errmsg("consumer group \"%s\", partition %d of topic \"%s\": a consume() on another node committed offsets %lld to %lld, but the group is at %lld",
							group_id, parts[i], topic->name, (long long) from[i],
							(long long) to[i], (long long) found[i]),
					 errdetail("Its coordinator failed over while the commit was in doubt; a consumer here may have read those records again.")));
		}
	PG_RETURN_TEXT_P(cstring_to_text(conflict ? "conflict" : "settled"));
}
