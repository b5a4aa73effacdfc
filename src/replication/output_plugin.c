/*-------------------------------------------------------------------------
 * output_plugin.c
 *	  streamlog's logical decoding output plugin (plugin name "streamlog"):
 *	  the stream of appended batches a leader's walsender sends a
 *	  follower's apply worker (CLUSTER.md section 3).
 *
 * It decodes inserts into segment tables, streamlog_data.t<topic>_p<
 * partition>_s<seq>, and nothing else: no update or delete, no other
 * table, no rewrite by compaction (its tables have another name), no
 * change that carries a replication origin (a follower's own appends: its
 * walsenders must not send them on).  A batch larger than a row is stored
 * as several chunk rows (log_append.c); they are decoded in order within
 * the transaction and sent as one message once whole.  Each committed
 * transaction that held batches ends with a commit message, so that the
 * follower applies a leader's transaction as one.  Messages are binary
 * (stream_message.h).
 *
 * Decoding sees only committed transactions: a produce that rolled back
 * never appears.
 *
 * IDENTIFICATION
 *	  src/replication/output_plugin.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "replication/logical.h"
#include "replication/origin.h"
#include "replication/output_plugin.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "streamlog/protocol/records.h"
#include "streamlog/replication/stream_message.h"

/* Columns of a segment table (storage/internal/catalog.h, not ours to include) */
#define SEGMENT_NATTS 11
#define SEGMENT_ATT_BASE_OFFSET 1
#define SEGMENT_ATT_LAST_OFFSET 2
#define SEGMENT_ATT_APPEND_TIME 5
#define SEGMENT_ATT_CHUNK 10
#define SEGMENT_ATT_BATCH 11

#define SEGMENT_SCHEMA "streamlog_data"

extern PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);

/* A batch whose chunk rows are being put together */
typedef struct Assembly
{
	bool		active;
	int32		topic_id;
	int32		partition;
	int64		base_offset;
	int64		last_offset;
	int64		append_time;
	int32		next_chunk;
	size_t		total;			/* the batch's length, from its header */
	StringInfoData buf;
} Assembly;

typedef struct PluginState
{
	MemoryContext context;		/* reset after each batch sent */
	Oid			schema;			/* streamlog_data, InvalidOid until found */
	bool		txn_has_batches;
	Assembly	assembly;
} PluginState;

static void
plugin_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt,
			   bool is_init)
{
	PluginState *state = palloc0(sizeof(PluginState));
	ListCell   *lc;

	foreach(lc, ctx->output_plugin_options)
	{
		DefElem    *elem = lfirst(lc);

		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("output plugin \"streamlog\" has no option \"%s\"", elem->defname),
				 errhint("Start replication without options.")));
	}
	state->context = AllocSetContextCreate(ctx->context, "streamlog output plugin",
										   ALLOCSET_DEFAULT_SIZES);
	state->schema = InvalidOid;
	ctx->output_plugin_private = state;
	opt->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
	opt->receive_rewrites = false;
}

static void
plugin_shutdown(LogicalDecodingContext *ctx)
{
	PluginState *state = ctx->output_plugin_private;

	if (state != NULL)
		MemoryContextDelete(state->context);
}

static void
assembly_drop(PluginState *state, const char *why)
{
	Assembly   *a = &state->assembly;

	if (a->active)
		ereport(WARNING,
				(errmsg("streamlog output plugin dropped an incomplete batch at offset "
						INT64_FORMAT " of topic id %d partition %d: %s",
						a->base_offset, a->topic_id, a->partition, why)));
	a->active = false;
	MemoryContextReset(state->context);
}

static void
plugin_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	PluginState *state = ctx->output_plugin_private;

	state->txn_has_batches = false;
	state->assembly.active = false;
}

static void
plugin_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			  XLogRecPtr commit_lsn)
{
	PluginState *state = ctx->output_plugin_private;
	SlStreamCommit commit;
	uint8		buf[SL_STREAM_COMMIT_SIZE];

	assembly_drop(state, "its transaction ended first");
	if (!state->txn_has_batches)
		return;
	commit.commit_lsn = commit_lsn;
	commit.end_lsn = txn->end_lsn;
	commit.commit_time = (txn->xact_time.commit_time / 1000) +
		((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000);
	SlStreamCommitEncode(&commit, buf);
	OutputPluginPrepareWrite(ctx, true);
	appendBinaryStringInfo(ctx->out, (const char *) buf, sizeof(buf));
	OutputPluginWrite(ctx, true);
	state->txn_has_batches = false;
}

/* Send one whole batch */
static void
send_batch(LogicalDecodingContext *ctx, const Assembly *a, const uint8 *data,
		   size_t len)
{
	PluginState *state = ctx->output_plugin_private;
	SlStreamBatch batch;
	uint8		header[SL_STREAM_BATCH_HEADER_SIZE];

	batch.topic_id = a->topic_id;
	batch.partition = a->partition;
	batch.base_offset = a->base_offset;
	batch.last_offset = a->last_offset;
	batch.leader_epoch = SlLoadInt32(data + SL_BATCH_OFFSET_LEADER_EPOCH);
	batch.append_time = a->append_time;
	batch.data = data;
	batch.len = len;
	SlStreamBatchHeaderEncode(&batch, header);
	OutputPluginPrepareWrite(ctx, true);
	enlargeStringInfo(ctx->out, (int) SlStreamBatchMessageSize(len));
	appendBinaryStringInfo(ctx->out, (const char *) header, sizeof(header));
	appendBinaryStringInfo(ctx->out, (const char *) data, (int) len);
	OutputPluginWrite(ctx, true);
	state->txn_has_batches = true;
}

/*
 * Is rel a segment table?  Its topic id and partition if so.  Compaction's
 * tables (t<t>_p<p>_s<seq>_c<n>) and key indexes do not match.
 */
static bool
segment_table(PluginState *state, Relation rel, int32 *topic_id, int32 *partition)
{
	const char *name = RelationGetRelationName(rel);
	int			t,
				p,
				s,
				end = -1;

	if (!OidIsValid(state->schema))
	{
		state->schema = get_namespace_oid(SEGMENT_SCHEMA, true);
		if (!OidIsValid(state->schema))
			return false;
	}
	if (RelationGetNamespace(rel) != state->schema)
		return false;
	if (sscanf(name, "t%d_p%d_s%d%n", &t, &p, &s, &end) != 3 ||
		end < 0 || name[end] != '\0' || t <= 0 || p < 0)
		return false;
	if (RelationGetDescr(rel)->natts != SEGMENT_NATTS)
		return false;
	*topic_id = t;
	*partition = p;
	return true;
}

static void
plugin_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			  Relation rel, ReorderBufferChange *change)
{
	PluginState *state = ctx->output_plugin_private;
	Assembly   *a = &state->assembly;
	HeapTuple	tuple;
	TupleDesc	desc;
	int32		topic_id;
	int32		partition;
	int64		base_offset;
	int64		last_offset;
	int64		append_time;
	int32		chunk;
	bytea	   *piece;
	const uint8 *bytes;
	size_t		len;
	bool		isnull[5];
	MemoryContext oldcxt;

	if (change->action != REORDER_BUFFER_CHANGE_INSERT ||
		change->data.tp.newtuple == NULL ||
		!segment_table(state, rel, &topic_id, &partition))
		return;
#if PG_VERSION_NUM >= 170000
	tuple = change->data.tp.newtuple;
#else
	tuple = &change->data.tp.newtuple->tuple;
#endif
	desc = RelationGetDescr(rel);
	base_offset = DatumGetInt64(heap_getattr(tuple, SEGMENT_ATT_BASE_OFFSET, desc, &isnull[0]));
	last_offset = DatumGetInt64(heap_getattr(tuple, SEGMENT_ATT_LAST_OFFSET, desc, &isnull[1]));
	append_time = DatumGetInt64(heap_getattr(tuple, SEGMENT_ATT_APPEND_TIME, desc, &isnull[2]));
	chunk = DatumGetInt32(heap_getattr(tuple, SEGMENT_ATT_CHUNK, desc, &isnull[3]));
	piece = (bytea *) DatumGetPointer(heap_getattr(tuple, SEGMENT_ATT_BATCH, desc, &isnull[4]));
	if (isnull[0] || isnull[1] || isnull[2] || isnull[3] || isnull[4])
	{
		assembly_drop(state, "a row with a null column");
		return;
	}

	if (chunk == 0)
		assembly_drop(state, "the next batch began");
	oldcxt = MemoryContextSwitchTo(state->context);
	piece = DatumGetByteaPP(PointerGetDatum(piece));
	bytes = (const uint8 *) VARDATA_ANY(piece);
	len = VARSIZE_ANY_EXHDR(piece);

	if (chunk == 0)
	{
		size_t		total;

		if (len < SL_BATCH_HEADER_SIZE)
		{
			MemoryContextSwitchTo(oldcxt);
			ereport(WARNING,
					(errmsg("streamlog output plugin skipped a stored batch of %zu bytes at offset "
							INT64_FORMAT " of topic id %d partition %d: shorter than a batch header",
							len, base_offset, topic_id, partition)));
			return;
		}
		total = (size_t) (uint32) SlLoadInt32(bytes + SL_BATCH_OFFSET_LENGTH) +
			SL_BATCH_LOG_OVERHEAD;
		a->topic_id = topic_id;
		a->partition = partition;
		a->base_offset = base_offset;
		a->last_offset = last_offset;
		a->append_time = append_time;
		a->total = total;
		a->next_chunk = 1;
		if (len == total)
		{
			/* The common case: the batch is one row, sent as it is */
			send_batch(ctx, a, bytes, len);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(state->context);
			return;
		}
		if (len > total || total > SL_STREAM_MAX_BATCH)
		{
			MemoryContextSwitchTo(oldcxt);
			ereport(WARNING,
					(errmsg("streamlog output plugin skipped a stored batch at offset "
							INT64_FORMAT " of topic id %d partition %d: its length does not match its rows",
							base_offset, topic_id, partition)));
			return;
		}
		initStringInfo(&a->buf);
		enlargeStringInfo(&a->buf, (int) total);
		appendBinaryStringInfo(&a->buf, (const char *) bytes, (int) len);
		a->active = true;
		MemoryContextSwitchTo(oldcxt);
		return;
	}

	if (!a->active || a->topic_id != topic_id || a->partition != partition ||
		a->last_offset != last_offset || a->next_chunk != chunk ||
		a->buf.len + len > a->total)
	{
		MemoryContextSwitchTo(oldcxt);
		assembly_drop(state, "a chunk row out of order");
		return;
	}
	appendBinaryStringInfo(&a->buf, (const char *) bytes, (int) len);
	a->next_chunk++;
	MemoryContextSwitchTo(oldcxt);
	if ((size_t) a->buf.len == a->total)
	{
		send_batch(ctx, a, (const uint8 *) a->buf.data, a->total);
		a->active = false;
		MemoryContextReset(state->context);
	}
}

/* A follower's own appends carry its apply worker's origin: never sent on */
static bool
plugin_filter_by_origin(LogicalDecodingContext *ctx, RepOriginId origin_id)
{
	return origin_id != InvalidRepOriginId;
}

void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = plugin_startup;
	cb->begin_cb = plugin_begin;
	cb->change_cb = plugin_change;
	cb->commit_cb = plugin_commit;
	cb->filter_by_origin_cb = plugin_filter_by_origin;
	cb->shutdown_cb = plugin_shutdown;
}
