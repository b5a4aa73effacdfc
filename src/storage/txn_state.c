/*-------------------------------------------------------------------------
 * txn_state.c
 *	  The transaction coordinator's durable state (txn_state.h):
 *	  streamlog.txn_state for lookups, __transaction_state for Kafka's
 *	  tools, both changed in the caller's transaction.
 *
 * As streamlog.group_offset and __consumer_offsets (offsets_topic.c): the
 * table is what the coordinator reads; every change buffers the matching
 * TransactionLog record (protocol/txn_log_records.h) with
 * SlLogBufferRecord, appended at commit or gone with a rollback, so the
 * two never disagree.  A removed id leaves a tombstone.
 *
 * __transaction_state is created at first use, in the caller's
 * transaction, under a lock that serializes its creators: a request that
 * races the first one waits for that one's commit, which is short (one
 * request), and then finds the topic.
 *
 * IDENTIFICATION
 *	  src/storage/txn_state.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/txn_log_records.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/txn_state.h"

/* Kafka's configs of the topic (besides the partition count) */
#define TXN_STATE_TOPIC_CONFIG \
	"{\"cleanup.policy\": \"compact\", \"compression.type\": \"uncompressed\", " \
	"\"segment.bytes\": \"104857600\"}"

/*
 * Locks of the class of the topic locks (storage/topics.c), with objids no
 * topic has: one serializes creating the topic, the others are the
 * transition locks of ids (by hash: two ids that collide only share a
 * lock, and the second one's requester retries).
 */
#define TXN_TOPIC_CREATE_LOCK_SUBID	0x0f75
#define TXN_ID_LOCK_SUBID			0x0f76

typedef enum TxnQueryId
{
	Q_READ,
	Q_DELETE,
	Q_DUE,
	Q_HOLDS,
	Q_IDS
} TxnQueryId;

static const SlNamedQuery txn_queries[] = {
	[Q_READ] = {
		"SELECT producer_id, last_producer_id, producer_epoch, last_producer_epoch, "
		"timeout_ms, state, topic_ids, partitions, groups, started_at, updated_at "
		"FROM streamlog.txn_state WHERE transactional_id = $1",
		1, {TEXTOID}
	},
	[Q_DELETE] = {
		"DELETE FROM streamlog.txn_state WHERE transactional_id = $1",
		1, {TEXTOID}
	},
	[Q_DUE] = {
		"SELECT transactional_id FROM streamlog.txn_state "
		"WHERE (state = 1 AND started_at + timeout_ms * interval '1 ms' < $1) "
		"   OR state IN (2, 3) "
		"   OR (state IN (0, 4, 5) AND updated_at + $2 * interval '1 ms' < $1) "
		"ORDER BY transactional_id",
		2, {TIMESTAMPTZOID, INT8OID}
	},
	/*
	 * FOR SHARE: the row stays as it was seen until the caller's
	 * transaction ends (see SlTxnStateProducerHolds)
	 */
	[Q_HOLDS] = {
		"SELECT 1 FROM streamlog.txn_state s WHERE producer_id = $1 AND producer_epoch = $2 "
		"AND state = $3 AND EXISTS (SELECT 1 FROM unnest(s.topic_ids, s.partitions) AS u(t, p) "
		"                           WHERE u.t = $4 AND u.p = $5) FOR SHARE OF s",
		5, {INT8OID, INT2OID, INT2OID, INT4OID, INT4OID}
	},
	[Q_IDS] = {
		"SELECT transactional_id FROM streamlog.txn_state ORDER BY transactional_id",
		0, {InvalidOid}
	},
};

/* More arguments than a named query takes: run through SlCatalogQuery */
#define UPSERT_NARGS 12
static const char upsert_sql[] =
	"INSERT INTO streamlog.txn_state AS s (transactional_id, producer_id, "
	"  last_producer_id, producer_epoch, last_producer_epoch, timeout_ms, state, "
	"  topic_ids, partitions, groups, started_at, updated_at) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
	"ON CONFLICT (transactional_id) DO UPDATE SET producer_id = excluded.producer_id, "
	"  last_producer_id = excluded.last_producer_id, "
	"  producer_epoch = excluded.producer_epoch, "
	"  last_producer_epoch = excluded.last_producer_epoch, "
	"  timeout_ms = excluded.timeout_ms, state = excluded.state, "
	"  topic_ids = excluded.topic_ids, partitions = excluded.partitions, "
	"  groups = excluded.groups, started_at = excluded.started_at, "
	"  updated_at = excluded.updated_at";
static Oid	upsert_types[UPSERT_NARGS] = {
	TEXTOID, INT8OID, INT8OID, INT2OID, INT2OID, INT4OID, INT2OID,
	INT4ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID
};

static Oid
catalog_oid(void)
{
	return SlMakePartitionKey(0, 0).catalog;
}

bool
SlTxnStateTryLock(const char *transactional_id)
{
	LOCKTAG		tag;
	uint32		h = hash_bytes((const unsigned char *) transactional_id,
							   strlen(transactional_id));

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, catalog_oid(), h, TXN_ID_LOCK_SUBID);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

int32
SlTxnStatePartition(const char *transactional_id)
{
	const SlTopic *topic = SlTopicLookup(SL_TRANSACTION_STATE_TOPIC_NAME, true);
	int32		n = topic ? topic->partition_count : sl_transaction_state_topic_num_partitions;

	return SlTxnLogPartitionFor(transactional_id, n);
}

/* __transaction_state, created if missing, locked to append */
static const SlTopic *
open_topic(void)
{
	const SlTopic *topic;
	LOCKTAG		tag;

	topic = SlTopicTryLookupAndLock(SL_TRANSACTION_STATE_TOPIC_NAME, AccessShareLock);
	if (topic != NULL)
		return topic;

	/*
	 * On a cluster the controller creates it, replicated, before any node
	 * coordinates an id (FindCoordinator asks for it): a topic of this
	 * node's own would hold state no other node could take over
	 */
	if (SlQuorumVotersGet()->n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s does not exist on this node yet", SL_TRANSACTION_STATE_TOPIC_NAME),
				 errhint("Transactional producers find their coordinator first, which creates it.")));
	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, catalog_oid(), 0, TXN_TOPIC_CREATE_LOCK_SUBID);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	/* Whoever held the lock may have created it meanwhile */
	if (SlTopicLookup(SL_TRANSACTION_STATE_TOPIC_NAME, true) == NULL)
	{
		SlTopicCreateInternal(SL_TRANSACTION_STATE_TOPIC_NAME,
							  sl_transaction_state_topic_num_partitions,
							  DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																 CStringGetDatum(TXN_STATE_TOPIC_CONFIG))));
		CommandCounterIncrement();
	}
	return SlTopicLookupAndLock(SL_TRANSACTION_STATE_TOPIC_NAME, AccessShareLock);
}

static void
check_encoded(const char *error, const char *transactional_id)
{
	if (error)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cannot write the state of transactional id \"%s\" to %s: %s",
						transactional_id, SL_TRANSACTION_STATE_TOPIC_NAME, error),
				 errhint("Kafka's record layouts limit transactional ids and topic names to 32767 bytes.")));
}

/* Buffer the id's record (value NULL: a tombstone) */
static void
write_record(const char *transactional_id, StringInfo value, TimestampTz at)
{
	const SlTopic *topic = open_topic();
	StringInfoData key;
	SlProduceRecord record;

	initStringInfo(&key);
	check_encoded(SlEncodeTxnLogKey(&key, transactional_id), transactional_id);
	memset(&record, 0, sizeof(record));
	record.timestamp = SlTimestampToKafka(at);
	record.key = (const uint8 *) key.data;
	record.key_len = key.len;
	record.value = value ? (const uint8 *) value->data : NULL;
	record.value_len = value ? value->len : -1;
	SlLogBufferRecord(topic, SlTxnLogPartitionFor(transactional_id, topic->partition_count),
					  &record);
	pfree(key.data);
}

/*
 * The record's partitions, grouped by topic as Kafka writes them; a
 * partition of a topic dropped since is left out (Kafka names topics).
 */
static void
encode_value(StringInfo buf, const char *transactional_id, const SlTxnStateRow *row)
{
	SlTxnLogValue v;
	SlTxnLogTopic *topics = palloc0(sizeof(SlTxnLogTopic) * Max(row->npartitions, 1));
	int32	   *parts = palloc(sizeof(int32) * Max(row->npartitions, 1));
	bool	   *done = palloc0(sizeof(bool) * Max(row->npartitions, 1));
	int			ntopics = 0;
	int			nparts = 0;

	for (int i = 0; i < row->npartitions; i++)
	{
		const SlTopic *topic;

		if (done[i])
			continue;
		topic = SlTopicLookupById(row->topic_ids[i]);
		if (topic == NULL)
			continue;
		topics[ntopics].topic = pstrdup(topic->name);
		topics[ntopics].partitions = &parts[nparts];
		for (int j = i; j < row->npartitions; j++)
			if (!done[j] && row->topic_ids[j] == row->topic_ids[i])
			{
				parts[nparts++] = row->partitions[j];
				topics[ntopics].npartitions++;
				done[j] = true;
			}
		ntopics++;
	}
	v.producer_id = row->producer_id;
	v.producer_epoch = row->producer_epoch;
	v.timeout_ms = row->timeout_ms;
	v.status = row->state;
	v.ntopics = ntopics;
	v.topics = topics;
	v.last_update_ms = SlTimestampToKafka(row->updated_at);
	v.start_ms = row->started_at != 0 ? SlTimestampToKafka(row->started_at) : -1;
	check_encoded(SlEncodeTxnLogValue(buf, &v), transactional_id);
}

static Datum
int32_array(const int32 *values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = Int32GetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, n, INT4OID, 4, true, TYPALIGN_INT));
}

static Datum
text_array(char **values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(values[i]);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* An int4[] column as a palloc'd array in cxt; *n its length */
static int32 *
int32_column(uint64 row, int col, int32 *n)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
	Datum	   *elems;
	int			count;
	int32	   *out;

	*n = 0;
	if (isnull)
		return NULL;
	deconstruct_array(DatumGetArrayTypeP(d), INT4OID, 4, true, TYPALIGN_INT,
					  &elems, NULL, &count);
	out = palloc(sizeof(int32) * Max(count, 1));
	for (int i = 0; i < count; i++)
		out[i] = DatumGetInt32(elems[i]);
	*n = count;
	return out;
}

bool
SlTxnStateRead(const char *transactional_id, SlTxnStateRow *row)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		values[1];
	bool		found = false;

	memset(row, 0, sizeof(*row));
	values[0] = CStringGetTextDatum(transactional_id);
	SPI_connect();
	if (SlCatalogRun(&txn_queries[Q_READ], values, NULL) > 0)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);
		int32		n;
		bool		isnull;
		Datum		d;

		found = true;
		row->producer_id = SlCatalogInt64(0, 1, -1);
		row->last_producer_id = SlCatalogInt64(0, 2, -1);
		row->producer_epoch = (int16) SlCatalogInt32(0, 3, -1);
		row->last_producer_epoch = (int16) SlCatalogInt32(0, 4, -1);
		row->timeout_ms = SlCatalogInt32(0, 5, 0);
		row->state = (int8) SlCatalogInt32(0, 6, 0);
		row->topic_ids = int32_column(0, 7, &row->npartitions);
		row->partitions = int32_column(0, 8, &n);
		if (n != row->npartitions)
			elog(ERROR, "streamlog.txn_state of \"%s\": topic_ids and partitions differ",
				 transactional_id);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 9, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			int			count;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, NULL, &count);
			row->groups = palloc(sizeof(char *) * Max(count, 1));
			for (int i = 0; i < count; i++)
				row->groups[i] = TextDatumGetCString(elems[i]);
			row->ngroups = count;
		}
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 10, &isnull);
		row->started_at = isnull ? 0 : DatumGetTimestampTz(d);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 11, &isnull);
		row->updated_at = isnull ? 0 : DatumGetTimestampTz(d);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return found;
}

/*
 * SlCatalogRun runs as the catalogue's owner, with SPI's read-write
 * snapshot: the row written is the one the next read sees.
 */
static void
upsert_row(const char *transactional_id, const SlTxnStateRow *row)
{
	Datum		values[UPSERT_NARGS];
	char		nulls[UPSERT_NARGS];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(transactional_id);
	values[1] = Int64GetDatum(row->producer_id);
	values[2] = Int64GetDatum(row->last_producer_id);
	values[3] = Int16GetDatum(row->producer_epoch);
	values[4] = Int16GetDatum(row->last_producer_epoch);
	values[5] = Int32GetDatum(row->timeout_ms);
	values[6] = Int16GetDatum(row->state);
	values[7] = int32_array(row->topic_ids, row->npartitions);
	values[8] = int32_array(row->partitions, row->npartitions);
	values[9] = text_array(row->groups, row->ngroups);
	values[10] = TimestampTzGetDatum(row->started_at);
	if (row->started_at == 0)
		nulls[10] = 'n';
	values[11] = TimestampTzGetDatum(row->updated_at);
	SPI_connect();
	(void) SlCatalogQuery(upsert_sql, UPSERT_NARGS, upsert_types, values, nulls);
	SPI_finish();
}

void
SlTxnStateWrite(const char *transactional_id, SlTxnStateRow *row)
{
	StringInfoData value;

	row->updated_at = GetCurrentTimestamp();
	upsert_row(transactional_id, row);
	initStringInfo(&value);
	encode_value(&value, transactional_id, row);
	write_record(transactional_id, &value, row->updated_at);
	pfree(value.data);
}

void
SlTxnStateRestore(const char *transactional_id, const SlTxnStateRow *row)
{
	upsert_row(transactional_id, row);
}

void
SlTxnStateForget(const char *transactional_id)
{
	Datum		values[1];

	values[0] = CStringGetTextDatum(transactional_id);
	SPI_connect();
	(void) SlCatalogRun(&txn_queries[Q_DELETE], values, NULL);
	SPI_finish();
}

void
SlTxnStateRemove(const char *transactional_id)
{
	Datum		values[1];

	values[0] = CStringGetTextDatum(transactional_id);
	SPI_connect();
	(void) SlCatalogRun(&txn_queries[Q_DELETE], values, NULL);
	SPI_finish();
	write_record(transactional_id, NULL, GetCurrentTimestamp());
}

List *
SlTxnStateDue(TimestampTz now, int64 expiration_ms)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		values[2];
	uint64		n;
	List	   *ids;

	values[0] = TimestampTzGetDatum(now);
	values[1] = Int64GetDatum(expiration_ms);
	SPI_connect();
	n = SlCatalogRun(&txn_queries[Q_DUE], values, NULL);
	ids = SlCatalogTexts(n, 1, caller);
	SPI_finish();
	return ids;
}

bool
SlTxnStateProducerHolds(int64 producer_id, int16 producer_epoch, int8 state,
						int32 topic_id, int32 partition)
{
	Datum		values[5];
	uint64		n;

	values[0] = Int64GetDatum(producer_id);
	values[1] = Int16GetDatum(producer_epoch);
	values[2] = Int16GetDatum(state);
	values[3] = Int32GetDatum(topic_id);
	values[4] = Int32GetDatum(partition);
	SPI_connect();
	n = SlCatalogRun(&txn_queries[Q_HOLDS], values, NULL);
	SPI_finish();
	return n > 0;
}

List *
SlTxnStateIds(void)
{
	MemoryContext caller = CurrentMemoryContext;
	uint64		n;
	List	   *ids;

	SPI_connect();
	n = SlCatalogRun(&txn_queries[Q_IDS], NULL, NULL);
	ids = SlCatalogTexts(n, 1, caller);
	SPI_finish();
	return ids;
}

/*
 * Rows of a producer id, locked FOR SHARE, with whether each holds the
 * partition in a transaction still open or being ended.  The lock waits
 * for a coordinator call changing the row, and the flag is computed on the
 * version it left (READ COMMITTED rechecks a locked row's latest version).
 */
static const SlNamedQuery coordinator_holds_query = {
	"SELECT transactional_id, state IN (1, 2, 3) AND EXISTS ("
	"         SELECT 1 FROM unnest(s.topic_ids, s.partitions) AS u(t, p) "
	"          WHERE u.t = $2 AND u.p = $3) "
	"  FROM streamlog.txn_state s WHERE producer_id = $1 FOR SHARE",
	3, {INT8OID, INT4OID, INT4OID}
};

char *
SlTxnStateCoordinatorHolds(int64 producer_id, int32 topic_id, int32 partition)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		values[3];
	char	   *holder = NULL;
	uint64		n;

	values[0] = Int64GetDatum(producer_id);
	values[1] = Int32GetDatum(topic_id);
	values[2] = Int32GetDatum(partition);
	SPI_connect();
	n = SlCatalogRun(&coordinator_holds_query, values, NULL);
	for (uint64 i = 0; i < n && holder == NULL; i++)
	{
		bool		isnull;
		Datum		held = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2,
										 &isnull);

		if (!isnull && DatumGetBool(held))
		{
			char	   *id = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

			holder = MemoryContextStrdup(caller, id);
		}
	}
	SPI_finish();
	return holder;
}
