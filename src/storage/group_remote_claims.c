/*
 * What a SQL consume() that crosses nodes leaves behind (README, "SQL
 * consume() on any node"), on both sides:
 *
 * - On the consuming node, streamlog.consume_intent: in the caller's
 *   transaction, one row per partition it advanced (group, topic,
 *   partition, from and to offset) under the gid of the coordinator's
 *   prepared transaction.  A row exists exactly when the caller committed;
 *   the resolver settles it on the group's coordinator and deletes it.
 * - On the coordinator, streamlog.remote_claim: the gid, inserted by the
 *   prepared transaction itself, so it exists exactly when that
 *   transaction committed here, and deleted when its __consumer_offsets
 *   records were written (SlGroupSettle).  A gid with no row was settled,
 *   or never committed on this node.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/storage.h"

typedef enum RemoteClaimQueryId
{
	Q_INTENT_ADD,
	Q_INTENT_LIST,
	Q_INTENT_FORGET,
	Q_INTENT_FORGET_SET,
	Q_CLAIM_MARK,
	Q_CLAIM_UNMARK,
	Q_PREPARED,
	NUM_REMOTE_CLAIM_QUERIES
} RemoteClaimQueryId;

static const SlNamedQuery remote_claim_queries[NUM_REMOTE_CLAIM_QUERIES] = {
	[Q_INTENT_ADD] = {
		"INSERT INTO streamlog.consume_intent "
		"  (gid, coordinator, group_id, topic_id, partition, from_offset, to_offset) "
		"SELECT $1, $2, $3, $4, u.p, u.f, u.t "
		"  FROM unnest($5::int4[], $6::int8[], $7::int8[]) AS u(p, f, t)",
		7, {TEXTOID, INT4OID, TEXTOID, INT4OID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID}
	},
	[Q_INTENT_LIST] = {
		"SELECT gid, coordinator, group_id, topic_id, partition, from_offset, to_offset "
		"FROM streamlog.consume_intent ORDER BY gid, topic_id, partition",
		0, {0}
	},
	[Q_INTENT_FORGET] = {
		"DELETE FROM streamlog.consume_intent WHERE gid = $1",
		1, {TEXTOID}
	},
	[Q_INTENT_FORGET_SET] = {
		"DELETE FROM streamlog.consume_intent WHERE gid = $1 AND group_id = $2 AND topic_id = $3",
		3, {TEXTOID, TEXTOID, INT4OID}
	},
	[Q_CLAIM_MARK] = {
		"INSERT INTO streamlog.remote_claim (gid, group_id, topic_id) VALUES ($1, $2, $3) "
		"ON CONFLICT DO NOTHING",
		3, {TEXTOID, TEXTOID, INT4OID}
	},
	[Q_CLAIM_UNMARK] = {
		"DELETE FROM streamlog.remote_claim WHERE gid = $1 AND group_id = $2 AND topic_id = $3",
		3, {TEXTOID, TEXTOID, INT4OID}
	},
	[Q_PREPARED] = {
		"SELECT 1 FROM pg_catalog.pg_prepared_xacts WHERE gid = $1",
		1, {TEXTOID}
	},
};

static Datum
int32_array(const int32 *values, int count)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(count, 1));

	for (int i = 0; i < count; i++)
		elems[i] = Int32GetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, count, INT4OID, 4, true, TYPALIGN_INT));
}

static Datum
int64_array(const int64 *values, int count)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(count, 1));

	for (int i = 0; i < count; i++)
		elems[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, count, INT8OID, 8, FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

void
SlConsumeIntentAdd(const char *gid, int32 coordinator, const char *group_id, int32 topic_id,
				   const int32 *partitions, const int64 *from_offsets,
				   const int64 *to_offsets, int count)
{
	Datum		values[7];

	if (count == 0)
		return;
	values[0] = CStringGetTextDatum(gid);
	values[1] = Int32GetDatum(coordinator);
	values[2] = CStringGetTextDatum(group_id);
	values[3] = Int32GetDatum(topic_id);
	values[4] = int32_array(partitions, count);
	values[5] = int64_array(from_offsets, count);
	values[6] = int64_array(to_offsets, count);
	SPI_connect();
	SlCatalogRun(&remote_claim_queries[Q_INTENT_ADD], values, NULL);
	SPI_finish();
}

List *
SlConsumeIntentList(void)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *intents = NIL;
	uint64		n;

	SPI_connect();
	n = SlCatalogRun(&remote_claim_queries[Q_INTENT_LIST], NULL, NULL);
	for (uint64 r = 0; r < n; r++)
	{
		SlConsumeIntent *in = MemoryContextAllocZero(caller, sizeof(SlConsumeIntent));
		MemoryContext oldcxt;

		in->gid = MemoryContextStrdup(caller, SPI_getvalue(SPI_tuptable->vals[r],
														   SPI_tuptable->tupdesc, 1));
		in->coordinator = SlCatalogInt32(r, 2, -1);
		in->group_id = MemoryContextStrdup(caller, SPI_getvalue(SPI_tuptable->vals[r],
																SPI_tuptable->tupdesc, 3));
		in->topic_id = SlCatalogInt32(r, 4, -1);
		in->partition = SlCatalogInt32(r, 5, -1);
		in->from_offset = SlCatalogInt64(r, 6, -1);
		in->to_offset = SlCatalogInt64(r, 7, -1);
		oldcxt = MemoryContextSwitchTo(caller);
		intents = lappend(intents, in);
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();
	return intents;
}

void
SlConsumeIntentForget(const char *gid)
{
	Datum		values[1];

	values[0] = CStringGetTextDatum(gid);
	SPI_connect();
	SlCatalogRun(&remote_claim_queries[Q_INTENT_FORGET], values, NULL);
	SPI_finish();
}

void
SlRemoteClaimMark(const char *gid, const char *group_id, int32 topic_id)
{
	Datum		values[3];

	values[0] = CStringGetTextDatum(gid);
	values[1] = CStringGetTextDatum(group_id);
	values[2] = Int32GetDatum(topic_id);
	SPI_connect();
	SlCatalogRun(&remote_claim_queries[Q_CLAIM_MARK], values, NULL);
	SPI_finish();
}

bool
SlRemoteClaimUnmark(const char *gid, const char *group_id, int32 topic_id)
{
	Datum		values[3];
	bool		found;

	values[0] = CStringGetTextDatum(gid);
	values[1] = CStringGetTextDatum(group_id);
	values[2] = Int32GetDatum(topic_id);
	SPI_connect();
	found = SlCatalogRun(&remote_claim_queries[Q_CLAIM_UNMARK], values, NULL) > 0;
	SPI_finish();
	return found;
}

bool
SlPreparedXactExists(const char *gid)
{
	Datum		values[1];
	bool		found;

	values[0] = CStringGetTextDatum(gid);
	SPI_connect();
	found = SlCatalogRun(&remote_claim_queries[Q_PREPARED], values, NULL) > 0;
	SPI_finish();
	return found;
}

char *
SlXactStatus(uint64 full_xid)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		values[1];
	char	   *status = NULL;

	values[0] = CStringGetTextDatum(psprintf(UINT64_FORMAT, full_xid));
	SPI_connect();
	if (SlCatalogQuery("SELECT pg_catalog.pg_xact_status($1::text::xid8)", 1,
					   (Oid[]) {TEXTOID}, values, NULL) == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (v != NULL)
			status = MemoryContextStrdup(caller, v);
	}
	SPI_finish();
	return status;
}

void
SlConsumeIntentForgetSet(const char *gid, const char *group_id, int32 topic_id)
{
	Datum		values[3];

	values[0] = CStringGetTextDatum(gid);
	values[1] = CStringGetTextDatum(group_id);
	values[2] = Int32GetDatum(topic_id);
	SPI_connect();
	SlCatalogRun(&remote_claim_queries[Q_INTENT_FORGET_SET], values, NULL);
	SPI_finish();
}
