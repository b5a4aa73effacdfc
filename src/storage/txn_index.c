/*
 * The transaction state of partitions (transactions.h): open transactions
 * (streamlog.txn_open), the aborted-transaction index
 * (streamlog.txn_aborted), and the last stable offset they give.
 *
 * Both are tables written in the transaction that appends (the first
 * batch of a transaction opens it) or writes the marker (which closes it),
 * so they are exactly as durable and as visible as the log they describe:
 * a kill -9 between a transactional append and its marker leaves the
 * transaction open after restart, and the LSO stops at it.  Kafka instead
 * rebuilds this state from the log tail and keeps .txnindex files beside
 * its segments; a table needs no rebuild and no scan.
 *
 * The LSO reads the high watermark first, then the open transactions with
 * the latest snapshot: the high watermark moves past an append only once
 * its transaction is visible, so every transaction below the high
 * watermark read is seen.
 *
 * Most partitions have no open transaction most of the time (and most
 * topics never see one), while read_committed is what Kafka consumers
 * read by default: so the partition's shared state keeps an upper bound
 * of its open transactions (partition_state.c), and with none the LSO is
 * the high watermark, without a query.  The bound is counted from
 * streamlog.txn_open when the state is loaded, raised by an append that
 * inserts a row there (before its commit makes the row visible, and
 * before it releases the reservation that lets the high watermark past
 * the row's first offset), lowered again if that append aborts, and
 * lowered by a marker that deleted a row only once it has committed.
 * Anything that goes wrong leaves it too high, which costs a query.  The
 * same state knows whether the partition ever indexed an aborted
 * transaction (raised before the marker commits, never lowered until the
 * next load), which spares a read_committed fetch the range query.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/memutils.h"

#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/internal/partition_state.h"
#include "streamlog/storage/internal/txn.h"
#include "streamlog/storage/internal/xact.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/transactions.h"

enum
{
	Q_OPEN_NOTE,
	Q_OPEN_MIN,
	Q_OPEN_CLOSE,
	Q_ABORTED_ADD,
	Q_ABORTED_RANGE,
	Q_OPEN_LIST,
	Q_ABORTED_PRUNE,
	Q_COUNT_FOR_LOAD,
	Q_ABORTED_FORGET,
	NUM_TXN_QUERIES
};

static const SlNamedQuery txn_queries[NUM_TXN_QUERIES] = {
	/*
	 * Two appends of one producer may commit out of offset order: the
	 * first offset is the smaller, whichever committed first
	 */
	[Q_OPEN_NOTE] = {
		"INSERT INTO streamlog.txn_open AS t "
		"(topic_id, partition, producer_id, producer_epoch, first_offset) "
		"VALUES ($1, $2, $3, $4, $5) "
		"ON CONFLICT (topic_id, partition, producer_id) DO UPDATE "
		"SET first_offset = least(t.first_offset, excluded.first_offset), "
		"producer_epoch = greatest(t.producer_epoch, excluded.producer_epoch) "
		"WHERE excluded.first_offset < t.first_offset "
		"OR excluded.producer_epoch > t.producer_epoch "
		"RETURNING xmax = 0",		/* inserted, not updated */
		5, {INT4OID, INT4OID, INT8OID, INT2OID, INT8OID}
	},
	[Q_OPEN_MIN] = {
		"SELECT min(first_offset) FROM streamlog.txn_open "
		"WHERE topic_id = $1 AND partition = $2",
		2, {INT4OID, INT4OID}
	},
	[Q_OPEN_CLOSE] = {
		"DELETE FROM streamlog.txn_open "
		"WHERE topic_id = $1 AND partition = $2 AND producer_id = $3 "
		"RETURNING first_offset",
		3, {INT4OID, INT4OID, INT8OID}
	},
	[Q_ABORTED_ADD] = {
		"INSERT INTO streamlog.txn_aborted "
		"(topic_id, partition, producer_id, first_offset, last_offset) "
		"VALUES ($1, $2, $3, $4, $5)",
		5, {INT4OID, INT4OID, INT8OID, INT8OID, INT8OID}
	},
	[Q_ABORTED_RANGE] = {
		"SELECT producer_id, first_offset, last_offset FROM streamlog.txn_aborted "
		"WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3 "
		"AND first_offset < $4 ORDER BY first_offset, last_offset",
		4, {INT4OID, INT4OID, INT8OID, INT8OID}
	},
	[Q_OPEN_LIST] = {
		"SELECT producer_id, producer_epoch, first_offset FROM streamlog.txn_open "
		"WHERE topic_id = $1 AND partition = $2 ORDER BY first_offset",
		2, {INT4OID, INT4OID}
	},
	[Q_ABORTED_PRUNE] = {
		"DELETE FROM streamlog.txn_aborted "
		"WHERE topic_id = $1 AND partition = $2 AND last_offset < $3",
		3, {INT4OID, INT4OID, INT8OID}
	},
	[Q_COUNT_FOR_LOAD] = {
		"SELECT (SELECT count(*)::int4 FROM streamlog.txn_open "
		"        WHERE topic_id = $1 AND partition = $2), "
		"       EXISTS (SELECT 1 FROM streamlog.txn_aborted "
		"               WHERE topic_id = $1 AND partition = $2)",
		2, {INT4OID, INT4OID}
	},
	[Q_ABORTED_FORGET] = {
		"DELETE FROM streamlog.txn_aborted "
		"WHERE topic_id = $1 AND partition = $2 AND last_offset = ANY ($3)",
		3, {INT4OID, INT4OID, INT8ARRAYOID}
	},
};

static uint64
run_txn_query(int q, Datum *values)
{
	return SlCatalogRun(&txn_queries[q], values, NULL);
}

/* A boolean column of the first row of the last query; NULL as true */
static bool
column_bool(int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);

	return isnull || DatumGetBool(d);
}

/*
 * Changes of the count of open transactions (partition_state.c) that wait
 * for the end of the transaction: a raise to take back if it aborts, a
 * close to apply once it commits
 */
typedef struct TxnCountChange
{
	SlPendingWork work;
	SlPartitionKey key;
	bool		raised;			/* else closed */
} TxnCountChange;

static List *count_changes = NIL;

static void
change_count(SlPartitionKey key, int32 delta)
{
	SlPartitionState *state = SlPartitionStateFind(key);

	/* Not loaded (forgotten since): its next load counts afresh */
	if (state != NULL)
		SlPartitionStateTxnOpened(state, delta);
}

static void
undo_change(SlPendingWork *work)
{
	TxnCountChange *c = (TxnCountChange *) work;

	if (c->raised)
		change_count(c->key, -1);
}

void
SlTxnIndexXactEvent(XactEvent event)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			foreach(lc, count_changes)
			{
				TxnCountChange *c = lfirst(lc);

				if (!c->raised)
					change_count(c->key, -1);
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			foreach(lc, count_changes)
				undo_change(lfirst(lc));
			break;
		case XACT_EVENT_PREPARE:
			/* Committed or not later, elsewhere: the count stays high */
			break;
		default:
			return;
	}
	/* The list lived in TopTransactionContext, gone with it */
	count_changes = NIL;
}

void
SlTxnIndexSubXactAbort(SubTransactionId subid)
{
	SlPendingWorkAbortSub(&count_changes, subid, undo_change);
}

static void
note_count_change(SlPartitionKey key, bool raised)
{
	TxnCountChange *c = SlPendingWorkAdd(&count_changes, sizeof(TxnCountChange));

	c->key = key;
	c->raised = raised;
}

void
SlTxnCountForLoad(int32 topic_id, int32 partition, int32 *open_txns, bool *any_aborted)
{
	Datum		values[2];

	values[0] = Int32GetDatum(topic_id);
	values[1] = Int32GetDatum(partition);
	SPI_connect();
	run_txn_query(Q_COUNT_FOR_LOAD, values);
	*open_txns = SlCatalogInt32(0, 1, 0);
	*any_aborted = column_bool(2);
	SPI_finish();
}

void
SlPartitionTxnStatsGet(int32 topic_id, int32 partition, SlPartitionTxnStats *stats)
{
	SlPartitionStateTxnStats(SlPartitionStateGet(SlMakePartitionKey(topic_id, partition)),
							 stats);
}


void
SlTxnNoteAppend(int32 topic_id, int32 partition, int64 producer_id, int16 producer_epoch,
				int64 first_offset)
{
	Datum		values[5];
	bool		inserted;

	values[0] = Int32GetDatum(topic_id);
	values[1] = Int32GetDatum(partition);
	values[2] = Int64GetDatum(producer_id);
	values[3] = Int16GetDatum(producer_epoch);
	values[4] = Int64GetDatum(first_offset);
	SPI_connect();
	inserted = run_txn_query(Q_OPEN_NOTE, values) > 0 && column_bool(1);
	SPI_finish();
	/* Before the commit that makes the row visible: see the head comment */
	if (inserted)
	{
		SlPartitionKey key = SlMakePartitionKey(topic_id, partition);

		SlPartitionStateTxnOpened(SlPartitionStateGet(key), 1);
		note_count_change(key, true);
	}
}

void
SlTxnNoteMarker(int32 topic_id, int32 partition, int64 producer_id, bool commit,
				int64 marker_offset)
{
	Datum		values[5];
	uint64		n;

	values[0] = Int32GetDatum(topic_id);
	values[1] = Int32GetDatum(partition);
	values[2] = Int64GetDatum(producer_id);
	SPI_connect();
	n = run_txn_query(Q_OPEN_CLOSE, values);
	if (n > 0)
		note_count_change(SlMakePartitionKey(topic_id, partition), false);
	/* An abort of a transaction that wrote nothing here aborts nothing */
	if (n > 0 && !commit)
	{
		/* Before the commit that makes the index row visible */
		SlPartitionStateTxnAborted(SlPartitionStateGet(SlMakePartitionKey(topic_id,
																		  partition)));
		values[3] = Int64GetDatum(SlCatalogInt64(0, 1, marker_offset));
		values[4] = Int64GetDatum(marker_offset);
		run_txn_query(Q_ABORTED_ADD, values);
	}
	SPI_finish();
}

int64
SlPartitionLastStableOffset(int32 topic_id, int32 partition)
{
	SlPartitionState *state = SlPartitionStateGet(SlMakePartitionKey(topic_id, partition));
	SlPartitionTxnSnapshot offsets;
	Datum		values[2];
	int64		first_open;

	/* The high watermark first: see the head comment */
	SlPartitionStateReadTxn(state, &offsets);
	SlPartitionStateCountLso(state, offsets.none_open);
	if (offsets.none_open)
		return offsets.high_watermark;
	values[0] = Int32GetDatum(topic_id);
	values[1] = Int32GetDatum(partition);
	SPI_connect();
	run_txn_query(Q_OPEN_MIN, values);
	first_open = SlCatalogInt64(0, 1, PG_INT64_MAX);
	SPI_finish();
	/*
	 * As Kafka (UnifiedLog.updateFirstUnstableOffset): an open transaction
	 * whose start retention or DeleteRecords removed holds readers at the
	 * log start, not below it
	 */
	return Min(Max(first_open, offsets.log_start_offset), offsets.high_watermark);
}

SlAbortedTxn *
SlTxnAbortedInRange(int32 topic_id, int32 partition, int64 from_offset, int64 to_offset,
					int *count)
{
	MemoryContext cxt = CurrentMemoryContext;
	SlAbortedTxn *txns = NULL;
	SlPartitionTxnSnapshot snap;
	Datum		values[4];
	uint64		n;

	*count = 0;
	if (from_offset >= to_offset)
		return NULL;
	/*
	 * The caller read the LSO before: a marker that aborted below it had
	 * marked the partition before it committed
	 */
	SlPartitionStateReadTxn(SlPartitionStateGet(SlMakePartitionKey(topic_id, partition)),
							&snap);
	if (snap.none_aborted)
		return NULL;
	values[0] = Int32GetDatum(topic_id);
	values[1] = Int32GetDatum(partition);
	values[2] = Int64GetDatum(from_offset);
	values[3] = Int64GetDatum(to_offset);
	SPI_connect();
	n = run_txn_query(Q_ABORTED_RANGE, values);
	if (n > 0)
	{
		txns = MemoryContextAlloc(cxt, sizeof(SlAbortedTxn) * n);
		for (uint64 i = 0; i < n; i++)
		{
			txns[i].producer_id = SlCatalogInt64(i, 1, -1);
			txns[i].first_offset = SlCatalogInt64(i, 2, -1);
			txns[i].last_offset = SlCatalogInt64(i, 3, -1);
		}
	}
	SPI_finish();
	*count = (int) n;
	return txns;
}

SlOpenTxn *
SlTxnOpenList(int32 topic_id, int32 partition, int *count)
{
	MemoryContext cxt = CurrentMemoryContext;
	SlOpenTxn  *txns = NULL;
	Datum		values[2];
	uint64		n;

	values[0] = Int32GetDatum(topic_id);
	values[1] = Int32GetDatum(partition);
	SPI_connect();
	n = run_txn_query(Q_OPEN_LIST, values);
	if (n > 0)
	{
		txns = MemoryContextAlloc(cxt, sizeof(SlOpenTxn) * n);
		for (uint64 i = 0; i < n; i++)
		{
			txns[i].producer_id = SlCatalogInt64(i, 1, -1);
			txns[i].producer_epoch = (int16) SlCatalogInt32(i, 2, -1);
			txns[i].first_offset = SlCatalogInt64(i, 3, -1);
		}
	}
	SPI_finish();
	*count = (int) n;
	return txns;
}

void
SlTxnPruneBelow(int32 topic_id, int32 partition, int64 log_start)
{
	Datum		values[3];

	values[0] = Int32GetDatum(topic_id);
	values[1] = Int32GetDatum(partition);
	values[2] = Int64GetDatum(log_start);
	SPI_connect();
	run_txn_query(Q_ABORTED_PRUNE, values);
	SPI_finish();
}

void
SlTxnAbortedForget(int32 topic_id, int32 partition, const int64 *last_offsets, int count)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(count, 1));
	Datum		values[3];

	for (int i = 0; i < count; i++)
		elems[i] = Int64GetDatum(last_offsets[i]);
	values[0] = Int32GetDatum(topic_id);
	values[1] = Int32GetDatum(partition);
	values[2] = PointerGetDatum(construct_array(elems, count, INT8OID, sizeof(int64),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	SPI_connect();
	run_txn_query(Q_ABORTED_FORGET, values);
	SPI_finish();
	pfree(elems);
}
