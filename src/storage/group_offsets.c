/*
 * Committed offsets of consumer groups, shared by Kafka groups (the group
 * coordinator's OffsetCommit/OffsetFetch) and SQL consumers
 * (streamlog.consume()), in the relation streamlog.group_offset: one row
 * per (group, topic, partition), holding the next offset the group will
 * consume.
 *
 * Claims.  A SQL consumer owns a partition of its group for the rest of its
 * transaction by holding the partition's row lock; it takes the lock with
 * SKIP LOCKED, so consumers of one group spread over the partitions and
 * never wait on each other.  A row that does not exist yet is created under
 * a per-(group, topic, partition) object lock taken without waiting: the
 * insert then cannot meet another transaction's uncommitted insert of the
 * same key (which it would have to wait for), because every code path here
 * that creates rows takes that lock first.  The lock is held until the
 * transaction ends, like the row.
 *
 * Every query runs with the latest snapshot, so that a REPEATABLE READ
 * transaction claims rows as they are now instead of failing on rows other
 * consumers advanced since its snapshot was taken.
 *
 * __consumer_offsets.  Every change of a row here buffers its record in
 * Kafka's internal topic in the same transaction (offsets_topic.c): the
 * queries that change rows return what they changed, and each returned row
 * becomes an OffsetCommit record, each deleted one a tombstone.
 *
 * Waiting.  A consumer that finds nothing to read may wait for a high
 * watermark of the topic to move.  Waiting backends register in a small
 * shared array (one slot per PGPROC) that SlGroupWakeConsumers() scans
 * when a high watermark advances (SlPartitionStateRelease calls it).
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "streamlog/shmem.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/group_wait.h"
#include "streamlog/storage/internal/offsets_topic.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/storage_init.h"

/* The queries, by name; their plans are kept by catalog_query.c */
typedef enum GroupQueryId
{
	Q_POSITIONS,
	Q_CLAIM,
	Q_CREATE,
	Q_ADVANCE,
	Q_LOCK_TARGETS,
	Q_UPSERT,
	Q_FETCH,
	Q_LOCK_FOR_DELETE,
	Q_DELETE,
	Q_EXPIRE,
	Q_DELETE_TOPIC,
	Q_GROUPS,
	Q_GROUP_EXISTS,
	Q_SETTLE_LOCK,
	NUM_GROUP_QUERIES
} GroupQueryId;

static const SlNamedQuery group_queries[NUM_GROUP_QUERIES] = {
	[Q_POSITIONS] = {
		"SELECT partition, committed_offset, committed_at "
		"FROM streamlog.group_offset WHERE group_id = $1 AND topic_id = $2",
		2, {TEXTOID, INT4OID}
	},
	[Q_CLAIM] = {
		"SELECT partition, committed_offset FROM streamlog.group_offset "
		"WHERE group_id = $1 AND topic_id = $2 AND partition = ANY ($3) "
		"FOR UPDATE SKIP LOCKED",
		3, {TEXTOID, INT4OID, INT4ARRAYOID}
	},
	[Q_CREATE] = {
		"INSERT INTO streamlog.group_offset (group_id, topic_id, partition, committed_offset) "
		"SELECT $1, $2, u.p, u.o FROM unnest($3::int4[], $4::int8[]) AS u(p, o) "
		"ON CONFLICT DO NOTHING RETURNING partition, committed_offset, committed_at",
		4, {TEXTOID, INT4OID, INT4ARRAYOID, INT8ARRAYOID}
	},
	[Q_ADVANCE] = {
		"UPDATE streamlog.group_offset o SET committed_offset = u.o, leader_epoch = -1, "
		"metadata = NULL, committed_at = clock_timestamp() "
		"FROM unnest($3::int4[], $4::int8[]) AS u(p, o) "
		"WHERE o.group_id = $1 AND o.topic_id = $2 AND o.partition = u.p "
		"RETURNING o.partition, o.committed_offset, o.committed_at",
		4, {TEXTOID, INT4OID, INT4ARRAYOID, INT8ARRAYOID}
	},
	[Q_LOCK_TARGETS] = {
		"WITH t AS (SELECT * FROM unnest($2::int4[], $3::int4[]) AS t(topic_id, partition)), "
		"l AS (SELECT 1 FROM streamlog.group_offset o JOIN t USING (topic_id, partition) "
		"      WHERE o.group_id = $1 FOR UPDATE OF o SKIP LOCKED) "
		"SELECT (SELECT count(*) FROM l), "
		"       (SELECT count(*) FROM streamlog.group_offset o JOIN t USING (topic_id, partition) "
		"         WHERE o.group_id = $1)",
		3, {TEXTOID, INT4ARRAYOID, INT4ARRAYOID}
	},
	[Q_UPSERT] = {
		"INSERT INTO streamlog.group_offset AS o "
		"  (group_id, topic_id, partition, committed_offset, leader_epoch, metadata, committed_at) "
		"SELECT $1, u.t, u.p, u.o, u.e, u.m, clock_timestamp() "
		"  FROM unnest($2::int4[], $3::int4[], $4::int8[], $5::int4[], $6::text[]) AS u(t, p, o, e, m) "
		"ON CONFLICT (group_id, topic_id, partition) DO UPDATE SET "
		"  committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch, "
		"  metadata = excluded.metadata, committed_at = excluded.committed_at "
		"RETURNING topic_id, partition, committed_offset, leader_epoch, metadata, committed_at",
		6, {TEXTOID, INT4ARRAYOID, INT4ARRAYOID, INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID}
	},
	[Q_FETCH] = {
		"SELECT topic_id, partition, committed_offset, leader_epoch, metadata, committed_at "
		"FROM streamlog.group_offset WHERE group_id = $1 AND ($2 < 0 OR topic_id = $2) "
		"ORDER BY topic_id, partition",
		2, {TEXTOID, INT4OID}
	},
	[Q_LOCK_FOR_DELETE] = {
		"WITH l AS (SELECT 1 FROM streamlog.group_offset WHERE group_id = $1 "
		"           AND ($2 < 0 OR topic_id = $2) AND ($3 < 0 OR partition = $3) "
		"           FOR UPDATE SKIP LOCKED) "
		"SELECT (SELECT count(*) FROM l), "
		"       (SELECT count(*) FROM streamlog.group_offset WHERE group_id = $1 "
		"         AND ($2 < 0 OR topic_id = $2) AND ($3 < 0 OR partition = $3))",
		3, {TEXTOID, INT4OID, INT4OID}
	},
	[Q_DELETE] = {
		"DELETE FROM streamlog.group_offset WHERE group_id = $1 "
		"AND ($2 < 0 OR topic_id = $2) AND ($3 < 0 OR partition = $3) "
		"RETURNING topic_id, partition",
		3, {TEXTOID, INT4OID, INT4OID}
	},
	[Q_EXPIRE] = {
		"DELETE FROM streamlog.group_offset o USING ("
		"  SELECT group_id, topic_id, partition FROM streamlog.group_offset "
		"   WHERE (committed_at < $1 AND group_id <> ALL ($2)) OR group_id = ANY ($3) "
		"   FOR UPDATE SKIP LOCKED) e "
		"WHERE (o.group_id, o.topic_id, o.partition) = (e.group_id, e.topic_id, e.partition) "
		"RETURNING o.group_id, o.topic_id, o.partition",
		3, {TIMESTAMPTZOID, TEXTARRAYOID, TEXTARRAYOID}
	},
	[Q_DELETE_TOPIC] = {
		"DELETE FROM streamlog.group_offset WHERE topic_id = $1 RETURNING group_id, partition",
		1, {INT4OID}
	},
	[Q_GROUPS] = {
		"SELECT DISTINCT group_id FROM streamlog.group_offset ORDER BY group_id",
		0, {0}
	},
	[Q_GROUP_EXISTS] = {
		"SELECT 1 FROM streamlog.group_offset WHERE group_id = $1 LIMIT 1",
		1, {TEXTOID}
	},
	[Q_SETTLE_LOCK] = {
		"SELECT partition, committed_offset, committed_at FROM streamlog.group_offset "
		"WHERE group_id = $1 AND topic_id = $2 AND partition = ANY ($3) "
		"ORDER BY partition FOR UPDATE",
		3, {TEXTOID, INT4OID, INT4ARRAYOID}
	},
};

/* Run one of the queries with the latest snapshot; connected to SPI */
static uint64
run_group_query(GroupQueryId id, Datum *values, const char *nulls)
{
	return SlCatalogRun(&group_queries[id], values, nulls);
}

static Datum
int32_array_datum(const int32 *values, int count)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(count, 1));

	for (int i = 0; i < count; i++)
		elems[i] = Int32GetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, count, INT4OID, 4, true, TYPALIGN_INT));
}

static Datum
int64_array_datum(const int64 *values, int count)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(count, 1));

	for (int i = 0; i < count; i++)
		elems[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, count, INT8OID, 8, FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/*
 * A standby's group offsets change only by replaying the primary's: say so,
 * rather than let PostgreSQL refuse a lock or a row lock in its own words.
 */
static void
refuse_on_standby(const char *group_id)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot move the offsets of group \"%s\" on a standby", group_id),
				 errhint("Consume, seek and commit on the primary: a standby replays its groups' offsets.")));
}

/*
 * lock_row_creation takes the lock that guards creating the row of (group,
 * topic, partition), until the transaction ends.  Without wait, returns
 * false if another transaction holds it.
 */
static bool
lock_row_creation(Oid relid, const char *group_id, int32 topic_id, int32 partition,
				  bool wait)
{
	LOCKTAG		tag;
	uint32		h = hash_bytes((const unsigned char *) group_id, strlen(group_id));

	h = hash_combine(h, hash_bytes_uint32((uint32) topic_id));
	h = hash_combine(h, hash_bytes_uint32((uint32) partition));
	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, relid, h, (uint16) partition);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

void
SlGroupValidateId(const char *group_id)
{
	if (group_id[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("consumer group name must not be empty")));
}

SlGroupPosition *
SlGroupPositions(const char *group_id, const SlTopic *topic)
{
	SlGroupPosition *positions = palloc0(sizeof(SlGroupPosition) * topic->partition_count);
	Datum		values[2];
	uint64		n;

	values[0] = CStringGetTextDatum(group_id);
	values[1] = Int32GetDatum(topic->topic_id);
	SPI_connect();
	n = run_group_query(Q_POSITIONS, values, NULL);
	for (uint64 i = 0; i < n; i++)
	{
		int32		partition = SlCatalogInt32(i, 1, -1);
		bool		isnull;

		if (partition < 0 || partition >= topic->partition_count)
			continue;
		positions[partition].exists = true;
		positions[partition].committed_offset = SlCatalogInt64(i, 2, -1);
		positions[partition].committed_at =
			DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
											  3, &isnull));
	}
	SPI_finish();
	return positions;
}

/*
 * Mark the partitions that the n (partition, offset) rows SPI returned
 * claim, with their offsets; returns how many.
 */
static int
take_claimed_rows(uint64 n, const int32 *partitions, int count, bool *claimed, int64 *offsets)
{
	int			taken = 0;

	for (uint64 r = 0; r < n; r++)
	{
		int32		partition = SlCatalogInt32(r, 1, -1);

		for (int i = 0; i < count; i++)
			if (partitions[i] == partition && !claimed[i])
			{
				claimed[i] = true;
				offsets[i] = SlCatalogInt64(r, 2, -1);
				taken++;
				break;
			}
	}
	return taken;
}

/*
 * Write the OffsetCommit records of the n (partition, committed_offset,
 * committed_at) rows SPI returned for one topic of a group.
 */
static void
write_topic_commits(const SlTopic *offsets_topic, const char *group_id, int32 topic_id,
					uint64 n)
{
	if (offsets_topic == NULL)
		return;
	if (n > 0)
		SlGroupOffsetsNoteWrite(offsets_topic, group_id);
	for (uint64 r = 0; r < n; r++)
	{
		bool		isnull;
		TimestampTz at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[r],
														   SPI_tuptable->tupdesc,
														   3, &isnull));

		SlOffsetsTopicWriteCommit(offsets_topic, group_id, topic_id,
								  SlCatalogInt32(r, 1, -1), SlCatalogInt64(r, 2, -1),
								  -1, NULL, at);
	}
}

int
SlGroupClaim(const char *group_id, int32 topic_id, const int32 *partitions,
			 const int64 *create_at, int count, bool write_records, bool *claimed,
			 int64 *offsets)
{
	int32	   *existing = palloc(sizeof(int32) * Max(count, 1));
	int32	   *missing = palloc(sizeof(int32) * Max(count, 1));
	int64	   *missing_at = palloc(sizeof(int64) * Max(count, 1));
	int			nexisting = 0;
	int			nmissing = 0;
	int			nclaimed = 0;
	Oid			relid = InvalidOid;
	Datum		values[4];
	uint64		n;
	const SlTopic *offsets_topic = NULL;

	refuse_on_standby(group_id);
	for (int i = 0; i < count; i++)
	{
		claimed[i] = false;
		offsets[i] = -1;
		if (create_at[i] < 0)
			existing[nexisting++] = partitions[i];
		else
		{
			if (!OidIsValid(relid))
				relid = SlCatalogRelid("group_offset");
			/* Someone else is creating it: theirs for now */
			if (lock_row_creation(relid, group_id, topic_id, partitions[i], false))
			{
				missing[nmissing] = partitions[i];
				missing_at[nmissing++] = create_at[i];
			}
		}
	}

	/* Rows created here are commits of their first offset */
	if (nmissing > 0 && write_records)
		offsets_topic = SlOffsetsTopicOpen();

	values[0] = CStringGetTextDatum(group_id);
	values[1] = Int32GetDatum(topic_id);
	SPI_connect();
	if (nexisting > 0)
	{
		values[2] = int32_array_datum(existing, nexisting);
		n = run_group_query(Q_CLAIM, values, NULL);
		nclaimed += take_claimed_rows(n, partitions, count, claimed, offsets);
	}
	if (nmissing > 0)
	{
		values[2] = int32_array_datum(missing, nmissing);
		values[3] = int64_array_datum(missing_at, nmissing);
		/* A row created and committed since the caller looked is skipped */
		n = run_group_query(Q_CREATE, values, NULL);
		nclaimed += take_claimed_rows(n, partitions, count, claimed, offsets);
		write_topic_commits(offsets_topic, group_id, topic_id, n);
	}
	SPI_finish();
	return nclaimed;
}

void
SlGroupAdvance(const char *group_id, int32 topic_id, const int32 *partitions,
			   const int64 *offsets, int count, bool write_records)
{
	Datum		values[4];
	const SlTopic *offsets_topic;
	uint64		n;

	refuse_on_standby(group_id);
	if (count == 0)
		return;
	offsets_topic = write_records ? SlOffsetsTopicOpen() : NULL;
	values[0] = CStringGetTextDatum(group_id);
	values[1] = Int32GetDatum(topic_id);
	values[2] = int32_array_datum(partitions, count);
	values[3] = int64_array_datum(offsets, count);
	SPI_connect();
	n = run_group_query(Q_ADVANCE, values, NULL);
	write_topic_commits(offsets_topic, group_id, topic_id, n);
	SPI_finish();
}

void
SlGroupSettle(const char *group_id, int32 topic_id, const int32 *partitions,
			  const int64 *from_offsets, const int64 *to_offsets, int count,
			  int64 *found)
{
	const SlTopic *offsets_topic;
	int32	   *advance_parts = palloc(sizeof(int32) * Max(count, 1));
	int64	   *advance_offsets = palloc(sizeof(int64) * Max(count, 1));
	int			nadvance = 0;
	Datum		values[4];
	uint64		n;

	refuse_on_standby(group_id);
	for (int i = 0; i < count; i++)
		found[i] = -1;
	if (count == 0)
		return;
	offsets_topic = SlOffsetsTopicOpen();
	values[0] = CStringGetTextDatum(group_id);
	values[1] = Int32GetDatum(topic_id);
	values[2] = int32_array_datum(partitions, count);
	SPI_connect();
	/* Waits for a consumer's claim: what it commits decides */
	n = run_group_query(Q_SETTLE_LOCK, values, NULL);
	for (uint64 r = 0; r < n; r++)
	{
		int32		partition = SlCatalogInt32(r, 1, -1);
		int64		committed = SlCatalogInt64(r, 2, -1);

		for (int i = 0; i < count; i++)
		{
			if (partitions[i] != partition)
				continue;
			found[i] = committed;
			if (committed == from_offsets[i] && committed != to_offsets[i])
			{
				advance_parts[nadvance] = partition;
				advance_offsets[nadvance++] = to_offsets[i];
			}
			else if (committed == to_offsets[i] && offsets_topic != NULL)
			{
				bool		isnull;
				TimestampTz at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[r],
																   SPI_tuptable->tupdesc,
																   3, &isnull));

				/* Already there: its record again, which may be missing */
				SlGroupOffsetsNoteWrite(offsets_topic, group_id);
				SlOffsetsTopicWriteCommit(offsets_topic, group_id, topic_id, partition,
										  committed, -1, NULL, at);
			}
		}
	}
	if (nadvance > 0)
	{
		values[2] = int32_array_datum(advance_parts, nadvance);
		values[3] = int64_array_datum(advance_offsets, nadvance);
		n = run_group_query(Q_ADVANCE, values, NULL);
		write_topic_commits(offsets_topic, group_id, topic_id, n);
		for (int i = 0; i < count; i++)
			for (int j = 0; j < nadvance; j++)
				if (advance_parts[j] == partitions[i])
					found[i] = to_offsets[i];
	}
	SPI_finish();
}

/* Order of commits: by topic and partition, then as passed */
typedef struct CommitItem
{
	const SlGroupOffset *offset;
	int			index;
} CommitItem;

static int
compare_commit_items(const void *a, const void *b)
{
	const CommitItem *x = a;
	const CommitItem *y = b;

	if (x->offset->topic_id != y->offset->topic_id)
		return x->offset->topic_id < y->offset->topic_id ? -1 : 1;
	if (x->offset->partition != y->offset->partition)
		return x->offset->partition < y->offset->partition ? -1 : 1;
	return x->index - y->index;
}

bool
SlGroupOffsetsCommit(const char *group_id, const SlGroupOffset *offsets, int count,
					 bool nowait)
{
	CommitItem *items;
	int			n = 0;
	int32	   *topics;
	int32	   *parts;
	int64	   *offs;
	int32	   *epochs;
	Datum	   *metas;
	bool	   *meta_nulls;
	Datum		values[6];
	Oid			relid;
	int			dims[1];
	int			lbs[1] = {1};
	const SlTopic *offsets_topic;
	uint64		stored;

	refuse_on_standby(group_id);
	SlGroupValidateId(group_id);
	if (count == 0)
		return true;
	for (int i = 0; i < count; i++)
		if (offsets[i].committed_offset < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("offset %lld to commit for partition %d is negative",
							(long long) offsets[i].committed_offset, offsets[i].partition)));

	/* Sorted, so that locks are taken in one order; of duplicates the last wins */
	items = palloc(sizeof(CommitItem) * count);
	for (int i = 0; i < count; i++)
	{
		items[i].offset = &offsets[i];
		items[i].index = i;
	}
	qsort(items, count, sizeof(CommitItem), compare_commit_items);
	for (int i = 0; i < count; i++)
	{
		if (n > 0 && items[n - 1].offset->topic_id == items[i].offset->topic_id &&
			items[n - 1].offset->partition == items[i].offset->partition)
			items[n - 1] = items[i];
		else
			items[n++] = items[i];
	}

	topics = palloc(sizeof(int32) * n);
	parts = palloc(sizeof(int32) * n);
	offs = palloc(sizeof(int64) * n);
	epochs = palloc(sizeof(int32) * n);
	metas = palloc(sizeof(Datum) * n);
	meta_nulls = palloc(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
	{
		const SlGroupOffset *o = items[i].offset;

		topics[i] = o->topic_id;
		parts[i] = o->partition;
		offs[i] = o->committed_offset;
		epochs[i] = o->leader_epoch;
		meta_nulls[i] = o->metadata == NULL;
		metas[i] = meta_nulls[i] ? (Datum) 0 : CStringGetTextDatum(o->metadata);
	}

	/* First, holding no row lock yet: it may have to create the topic */
	offsets_topic = SlOffsetsTopicOpen();

	/*
	 * No row of these partitions can be created by anyone else from here on,
	 * so the upsert below never waits on another transaction's insert.
	 */
	relid = SlCatalogRelid("group_offset");
	for (int i = 0; i < n; i++)
		if (!lock_row_creation(relid, group_id, topics[i], parts[i], !nowait))
			return false;

	values[0] = CStringGetTextDatum(group_id);
	values[1] = int32_array_datum(topics, n);
	values[2] = int32_array_datum(parts, n);
	SPI_connect();
	if (nowait)
	{
		run_group_query(Q_LOCK_TARGETS, values, NULL);
		if (SlCatalogInt64(0, 1, -1) != SlCatalogInt64(0, 2, -1))
		{
			SPI_finish();
			return false;
		}
	}
	values[3] = int64_array_datum(offs, n);
	values[4] = int32_array_datum(epochs, n);
	dims[0] = n;
	values[5] = PointerGetDatum(construct_md_array(metas, meta_nulls, 1, dims, lbs,
												   TEXTOID, -1, false, TYPALIGN_INT));
	stored = run_group_query(Q_UPSERT, values, NULL);
	if (stored > 0)
		SlGroupOffsetsNoteWrite(offsets_topic, group_id);
	for (uint64 r = 0; offsets_topic != NULL && r < stored; r++)
	{
		bool		isnull;
		Datum		meta = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 5, &isnull);
		char	   *metadata = isnull ? NULL : TextDatumGetCString(meta);
		TimestampTz at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[r],
														   SPI_tuptable->tupdesc, 6,
														   &isnull));

		SlOffsetsTopicWriteCommit(offsets_topic, group_id, SlCatalogInt32(r, 1, -1),
								  SlCatalogInt32(r, 2, -1), SlCatalogInt64(r, 3, -1),
								  SlCatalogInt32(r, 4, -1), metadata, at);
	}
	SPI_finish();
	return true;
}

SlGroupOffset *
SlGroupOffsetsFetch(const char *group_id, int32 topic_id, int *count)
{
	MemoryContext caller = CurrentMemoryContext;
	SlGroupOffset *result = NULL;
	Datum		values[2];
	uint64		n;

	values[0] = CStringGetTextDatum(group_id);
	values[1] = Int32GetDatum(topic_id);
	SPI_connect();
	n = run_group_query(Q_FETCH, values, NULL);
	result = MemoryContextAllocZero(caller, sizeof(SlGroupOffset) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		SlGroupOffset *o = &result[i];
		bool		isnull;
		Datum		d;

		o->topic_id = SlCatalogInt32(i, 1, -1);
		o->partition = SlCatalogInt32(i, 2, -1);
		o->committed_offset = SlCatalogInt64(i, 3, -1);
		o->leader_epoch = SlCatalogInt32(i, 4, -1);
		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 5, &isnull);
		o->metadata = isnull ? NULL : MemoryContextStrdup(caller, TextDatumGetCString(d));
		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 6, &isnull);
		o->committed_at = DatumGetTimestampTz(d);
	}
	SPI_finish();
	*count = (int) n;
	return result;
}

int64
SlGroupOffsetsDelete(const char *group_id, int32 topic_id, int32 partition, bool nowait)
{
	Datum		values[3];
	int64		deleted;
	const SlTopic *offsets_topic;

	refuse_on_standby(group_id);
	offsets_topic = SlOffsetsTopicOpen();
	values[0] = CStringGetTextDatum(group_id);
	values[1] = Int32GetDatum(topic_id);
	values[2] = Int32GetDatum(partition);
	SPI_connect();
	if (nowait)
	{
		run_group_query(Q_LOCK_FOR_DELETE, values, NULL);
		if (SlCatalogInt64(0, 1, -1) != SlCatalogInt64(0, 2, -1))
		{
			SPI_finish();
			return -1;
		}
	}
	deleted = (int64) run_group_query(Q_DELETE, values, NULL);
	if (deleted > 0)
		SlGroupOffsetsNoteWrite(offsets_topic, group_id);
	for (int64 r = 0; offsets_topic != NULL && r < deleted; r++)
		SlOffsetsTopicWriteOffsetTombstone(offsets_topic, group_id, SlCatalogInt32(r, 1, -1),
										   SlCatalogInt32(r, 2, -1));
	/* The whole group goes: so does its metadata, as DeleteGroups does in Kafka */
	if (offsets_topic != NULL && deleted > 0 && topic_id < 0 && partition < 0)
		SlOffsetsTopicWriteGroupTombstone(offsets_topic, group_id);
	SPI_finish();
	return deleted;
}

List *
SlGroupListIds(void)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *groups;
	uint64		n;

	SPI_connect();
	n = run_group_query(Q_GROUPS, NULL, NULL);
	groups = SlCatalogTexts(n, 1, caller);
	SPI_finish();
	return groups;
}

bool
SlGroupExists(const char *group_id)
{
	Datum		values[1];
	bool		exists;

	values[0] = CStringGetTextDatum(group_id);
	SPI_connect();
	exists = run_group_query(Q_GROUP_EXISTS, values, NULL) > 0;
	SPI_finish();
	return exists;
}

void
SlGroupOffsetsForgetTopic(int32 topic_id)
{
	Datum		values[1];
	const SlTopic *offsets_topic;
	uint64		n;

	values[0] = Int32GetDatum(topic_id);
	SPI_connect();
	n = run_group_query(Q_DELETE_TOPIC, values, NULL);
	/* Only if there were offsets: dropping a topic creates no topic */
	offsets_topic = n > 0 ? SlOffsetsTopicOpen() : NULL;
	for (uint64 r = 0; offsets_topic != NULL && r < n; r++)
		SlOffsetsTopicWriteOffsetTombstone(offsets_topic,
										   SPI_getvalue(SPI_tuptable->vals[r],
														SPI_tuptable->tupdesc, 1),
										   topic_id, SlCatalogInt32(r, 2, -1));
	SPI_finish();
}

static Datum
text_array_datum(List *texts)
{
	int			n = list_length(texts);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, texts)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

int64
SlGroupOffsetsExpire(TimestampTz cutoff, List *keep_groups, List *expire_groups)
{
	Datum		values[3];
	const SlTopic *offsets_topic;
	int64		deleted;
	List	   *emptied = NIL;
	ListCell   *lc;
	MemoryContext caller = CurrentMemoryContext;

	char	  **group_ids;
	int32	   *topic_ids;
	int32	   *partitions;

	values[0] = TimestampTzGetDatum(cutoff);
	values[1] = text_array_datum(keep_groups);
	values[2] = text_array_datum(expire_groups);
	SPI_connect();
	deleted = (int64) run_group_query(Q_EXPIRE, values, NULL);
	group_ids = MemoryContextAlloc(caller, sizeof(char *) * Max(deleted, 1));
	topic_ids = MemoryContextAlloc(caller, sizeof(int32) * Max(deleted, 1));
	partitions = MemoryContextAlloc(caller, sizeof(int32) * Max(deleted, 1));
	for (int64 r = 0; r < deleted; r++)
	{
		group_ids[r] = MemoryContextStrdup(caller,
										   SPI_getvalue(SPI_tuptable->vals[r],
														SPI_tuptable->tupdesc, 1));
		topic_ids[r] = SlCatalogInt32(r, 2, -1);
		partitions[r] = SlCatalogInt32(r, 3, -1);
	}
	SPI_finish();

	/*
	 * The topic only when there is something to write in it: opening it
	 * creates it, and an installation whose groups never committed anything
	 * has no __consumer_offsets, as in Kafka (drop_all_topics() leaves the
	 * internal topics to DROP EXTENSION)
	 */
	offsets_topic = deleted > 0 ? SlOffsetsTopicOpen() : NULL;
	for (int64 r = 0; r < deleted; r++)
	{
		MemoryContext oldcxt;

		if (offsets_topic != NULL)
			SlOffsetsTopicWriteOffsetTombstone(offsets_topic, group_ids[r],
											   topic_ids[r], partitions[r]);
		oldcxt = MemoryContextSwitchTo(caller);
		if (!list_member(emptied, makeString(group_ids[r])))
			emptied = lappend(emptied, makeString(group_ids[r]));
		MemoryContextSwitchTo(oldcxt);
	}

	/* A group whose last offsets expired is gone: its metadata too */
	foreach(lc, emptied)
	{
		const char *group_id = strVal(lfirst(lc));

		if (offsets_topic != NULL && !SlGroupExists(group_id))
			SlOffsetsTopicWriteGroupTombstone(offsets_topic, group_id);
	}
	return deleted;
}

/* Waiting for records */

typedef struct SlGroupWaiter
{
	pg_atomic_uint32 waiting;	/* 1 while the backend waits */
	Oid			database;		/* the topic waited on, as in SlPartitionKey */
	Oid			catalog;
	int32		topic_id;
} SlGroupWaiter;

typedef struct SlGroupWaiters
{
	pg_atomic_uint32 count;		/* backends waiting: none lets wakers skip the scan */
	int			nslots;
	SlGroupWaiter slots[FLEXIBLE_ARRAY_MEMBER];	/* by pgprocno */
} SlGroupWaiters;

static SlGroupWaiters *group_waiters = NULL;

static int
group_waiter_slots(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

Size
SlGroupWaitShmemSize(void)
{
	return add_size(offsetof(SlGroupWaiters, slots),
					mul_size(group_waiter_slots(), sizeof(SlGroupWaiter)));
}

void
SlGroupWaitShmemInit(void)
{
	bool		found;

	group_waiters = ShmemInitStruct("streamlog group waiters", SlGroupWaitShmemSize(), &found);
	if (!found)
	{
		pg_atomic_init_u32(&group_waiters->count, 0);
		group_waiters->nslots = group_waiter_slots();
		for (int i = 0; i < group_waiters->nslots; i++)
			pg_atomic_init_u32(&group_waiters->slots[i].waiting, 0);
	}
}

void
SlGroupWakeConsumers(SlPartitionKey key)
{
	if (group_waiters == NULL)
		return;
	/* Pairs with the barrier between registering and re-reading the HWMs */
	pg_memory_barrier();
	if (pg_atomic_read_u32(&group_waiters->count) == 0)
		return;
	for (int i = 0; i < group_waiters->nslots; i++)
	{
		SlGroupWaiter *w = &group_waiters->slots[i];

		if (pg_atomic_read_u32(&w->waiting) == 0)
			continue;
		pg_read_barrier();
		if (w->topic_id == key.topic_id && w->database == key.database &&
			w->catalog == key.catalog)
			SetLatch(&ProcGlobal->allProcs[i].procLatch);
	}
}

/* True if a partition's HWM moved past hwms[] */
static bool
high_watermarks_moved(const SlTopic *topic, const int64 *hwms)
{
	for (int32 p = 0; p < topic->partition_count; p++)
	{
		SlPartitionSnapshot snap;

		SlPartitionStateRead(SlPartitionStateGet(SlMakePartitionKey(topic->topic_id, p)), &snap);
		if (snap.high_watermark > hwms[p])
			return true;
	}
	return false;
}

bool
SlGroupWaitForRecords(const SlTopic *topic, const int64 *hwms, TimestampTz deadline)
{
	SlGroupWaiter *volatile slot = NULL;
	bool		moved = false;

	SlCheckPreloaded();
	Assert(SL_MY_PROCNO < group_waiters->nslots);
	{
		SlPartitionKey key = SlMakePartitionKey(topic->topic_id, 0);

		slot = &group_waiters->slots[SL_MY_PROCNO];
		slot->database = key.database;
		slot->catalog = key.catalog;
		slot->topic_id = key.topic_id;
		pg_write_barrier();
		pg_atomic_write_u32(&slot->waiting, 1);
		/* A full barrier: a waker sees us, or we see its HWM below */
		pg_atomic_fetch_add_u32(&group_waiters->count, 1);
	}

	PG_TRY();
	{
		for (;;)
		{
			long		timeout_ms;

			ResetLatch(MyLatch);
			if (high_watermarks_moved(topic, hwms))
			{
				moved = true;
				break;
			}
			timeout_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (timeout_ms <= 0)
				break;
			timeout_ms = Min(timeout_ms, PG_INT32_MAX);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 timeout_ms, PG_WAIT_EXTENSION);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		pg_atomic_write_u32(&slot->waiting, 0);
		pg_atomic_fetch_sub_u32(&group_waiters->count, 1);
	}
	PG_END_TRY();
	return moved;
}
