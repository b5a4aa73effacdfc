/*-------------------------------------------------------------------------
 * txn_offsets.c
 *	  Pending transactional offsets (txn_offsets.h).
 *
 * Kafka keeps them in the group coordinator's memory and in
 * __consumer_offsets as transactional records the marker settles; here
 * they wait in a table of their own, and the commit goes through the
 * group offsets' own path (SlGroupOffsetsCommit), which writes the
 * __consumer_offsets records, so that readers of group_offset and of the
 * topic never see an offset of a transaction that has not committed.
 *
 * IDENTIFICATION
 *	  src/storage/txn_offsets.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/txn_offsets.h"

typedef enum PendingQueryId
{
	Q_STAGE,
	Q_TAKE,
	Q_DISCARD,
	Q_PENDING
} PendingQueryId;

static const SlNamedQuery pending_queries[] = {
	[Q_STAGE] = {
		"INSERT INTO streamlog.txn_pending_offset AS o (producer_id, group_id, topic_id, "
		"  partition, committed_offset, leader_epoch, metadata) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7) "
		"ON CONFLICT (producer_id, group_id, topic_id, partition) DO UPDATE SET "
		"  committed_offset = excluded.committed_offset, "
		"  leader_epoch = excluded.leader_epoch, metadata = excluded.metadata",
		7, {INT8OID, TEXTOID, INT4OID, INT4OID, INT8OID, INT4OID, TEXTOID}
	},
	[Q_TAKE] = {
		"SELECT topic_id, partition, committed_offset, leader_epoch, metadata "
		"FROM streamlog.txn_pending_offset WHERE producer_id = $1 AND group_id = $2 "
		"ORDER BY topic_id, partition",
		2, {INT8OID, TEXTOID}
	},
	[Q_DISCARD] = {
		"DELETE FROM streamlog.txn_pending_offset WHERE producer_id = $1 AND group_id = $2",
		2, {INT8OID, TEXTOID}
	},
	[Q_PENDING] = {
		"SELECT 1 FROM streamlog.txn_pending_offset "
		"WHERE group_id = $1 AND topic_id = $2 AND partition = $3 LIMIT 1",
		3, {TEXTOID, INT4OID, INT4OID}
	},
};

void
SlTxnOffsetsStage(int64 producer_id, const char *group_id, const SlGroupOffset *offsets,
				  int count)
{
	Datum		values[7];
	char		nulls[7];

	SPI_connect();
	for (int i = 0; i < count; i++)
	{
		memset(nulls, ' ', sizeof(nulls));
		values[0] = Int64GetDatum(producer_id);
		values[1] = CStringGetTextDatum(group_id);
		values[2] = Int32GetDatum(offsets[i].topic_id);
		values[3] = Int32GetDatum(offsets[i].partition);
		values[4] = Int64GetDatum(offsets[i].committed_offset);
		values[5] = Int32GetDatum(offsets[i].leader_epoch);
		if (offsets[i].metadata != NULL)
			values[6] = CStringGetTextDatum(offsets[i].metadata);
		else
		{
			values[6] = (Datum) 0;
			nulls[6] = 'n';
		}
		(void) SlCatalogRun(&pending_queries[Q_STAGE], values, nulls);
	}
	SPI_finish();
}

bool
SlTxnOffsetsCommit(int64 producer_id, const char *group_id, bool nowait)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		values[2];
	SlGroupOffset *offsets = NULL;
	uint64		n;

	values[0] = Int64GetDatum(producer_id);
	values[1] = CStringGetTextDatum(group_id);
	SPI_connect();
	n = SlCatalogRun(&pending_queries[Q_TAKE], values, NULL);
	if (n > 0)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);

		offsets = palloc0(sizeof(SlGroupOffset) * n);
		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;
			Datum		d;

			offsets[i].topic_id = SlCatalogInt32(i, 1, -1);
			offsets[i].partition = SlCatalogInt32(i, 2, -1);
			offsets[i].committed_offset = SlCatalogInt64(i, 3, 0);
			offsets[i].leader_epoch = SlCatalogInt32(i, 4, -1);
			d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 5, &isnull);
			offsets[i].metadata = isnull ? NULL : TextDatumGetCString(d);
		}
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	if (n == 0)
		return true;
	if (!SlGroupOffsetsCommit(group_id, offsets, (int) n, nowait))
		return false;
	SlTxnOffsetsDiscard(producer_id, group_id);
	return true;
}

void
SlTxnOffsetsDiscard(int64 producer_id, const char *group_id)
{
	Datum		values[2];

	values[0] = Int64GetDatum(producer_id);
	values[1] = CStringGetTextDatum(group_id);
	SPI_connect();
	(void) SlCatalogRun(&pending_queries[Q_DISCARD], values, NULL);
	SPI_finish();
}

bool
SlTxnOffsetsPending(const char *group_id, int32 topic_id, int32 partition)
{
	Datum		values[3];
	uint64		n;

	values[0] = CStringGetTextDatum(group_id);
	values[1] = Int32GetDatum(topic_id);
	values[2] = Int32GetDatum(partition);
	SPI_connect();
	n = SlCatalogRun(&pending_queries[Q_PENDING], values, NULL);
	SPI_finish();
	return n > 0;
}
