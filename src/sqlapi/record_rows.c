/*
 * Records as SQL rows, see record_rows.h.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "streamlog/sqlapi/record_rows.h"

#define RECORD_COLUMNS 6

static const TupleTableSlotOps record_slot_ops;

/* Types of the row's columns, in order (the last one, headers, an array) */
static const Oid record_column_types[RECORD_COLUMNS - 1] = {
	INT4OID, INT8OID, TIMESTAMPTZOID, BYTEAOID, BYTEAOID
};

/*
 * Can rows be formed by form_record_tuple?  Only for the result type it
 * was written for: any other (a changed function definition, say) goes
 * through heap_form_tuple's general path.
 */
static bool
desc_is_record_row(TupleDesc desc)
{
	if (desc->natts != RECORD_COLUMNS)
		return false;
	for (int i = 0; i < RECORD_COLUMNS; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			return false;
		if (i < RECORD_COLUMNS - 1 ? att->atttypid != record_column_types[i] : att->attlen != -1)
			return false;
	}
	return true;
}

void
SlRecordRowsInit(SlRecordRows *rows, FunctionCallInfo fcinfo)
{
	Oid			header_array_type;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bits32		flags = 0;

	/*
	 * The executor describes the result it expects once per query (from
	 * the function's OUT parameters, as get_call_result_type would): taken
	 * as it is, a call does not build it again from pg_proc, which cost a
	 * read() of 100 records 6% of its time
	 */
	if (rsinfo != NULL && IsA(rsinfo, ReturnSetInfo) && rsinfo->expectedDesc != NULL)
		flags |= MAT_SRF_USE_EXPECTED_DESC;
	InitMaterializedSRF(fcinfo, flags);
	rows->rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	/*
	 * Reset after every row: its first block stays, so it should hold a
	 * row's values (1 KiB ones included) without a malloc each time
	 */
	rows->row_context = AllocSetContextCreate(CurrentMemoryContext,
											  "streamlog record row",
											  ALLOCSET_DEFAULT_SIZES);
	header_array_type = TupleDescAttr(rows->rsinfo->setDesc, RECORD_COLUMNS - 1)->atttypid;
	rows->header_type = get_element_type(header_array_type);
	rows->header_desc = lookup_rowtype_tupdesc_copy(rows->header_type, -1);
	get_typlenbyvalalign(rows->header_type, &rows->header_typlen,
						 &rows->header_typbyval, &rows->header_typalign);
	rows->key_buf = NULL;
	rows->value_buf = NULL;
	rows->key_cap = 0;
	rows->value_cap = 0;
	rows->direct = desc_is_record_row(rows->rsinfo->setDesc);
	rows->headers_align = TupleDescAttr(rows->rsinfo->setDesc, RECORD_COLUMNS - 1)->attalign;
	rows->record_slot = rows->direct ?
		MakeSingleTupleTableSlot(rows->rsinfo->setDesc, &record_slot_ops) : NULL;
}

/*
 * The bytes as a bytea in *buf, grown as needed in the caller's memory,
 * not the row context: a row then allocates nothing, and its reset is
 * free.  tuplestore_putvalues copies it into the row.
 */
static bytea *
reuse_bytea(bytea **buf, size_t *cap, MemoryContext cxt, const uint8 *data, int32 len)
{
	if (*buf == NULL || *cap < VARHDRSZ + (size_t) len)
	{
		size_t		want = Max(VARHDRSZ + (size_t) len, 1024);

		if (*buf != NULL)
			pfree(*buf);
		*buf = MemoryContextAlloc(cxt, want);
		*cap = want;
	}
	SET_VARSIZE(*buf, VARHDRSZ + len);
	memcpy(VARDATA(*buf), data, len);
	return *buf;
}

static bytea *
make_bytea(const uint8 *data, int32 len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

text *
SlUtf8ToText(const char *data, int len)
{
	char	   *converted = pg_any_to_server(data, len, PG_UTF8);

	return cstring_to_text_with_len(converted,
									converted == data ? len : (int) strlen(converted));
}

static Datum
headers_array(SlRecordRows *rows, const SlRecord *rec)
{
	Datum	   *elems = palloc(sizeof(Datum) * rec->header_count);
	const uint8 *pos = rec->headers;
	SlRecordHeader h;

	for (int i = 0; i < rec->header_count; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		if (!SlRecordHeaderNext(&pos, rec->headers_end, &h))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("corrupt header in record at offset %lld", (long long) rec->offset)));
		values[0] = PointerGetDatum(SlUtf8ToText(h.key, h.key_len));
		if (h.value_len < 0)
			nulls[1] = true;
		else
			values[1] = PointerGetDatum(make_bytea(h.value, h.value_len));
		elems[i] = HeapTupleGetDatum(heap_form_tuple(rows->header_desc, values, nulls));
	}
	return PointerGetDatum(construct_array(elems, rec->header_count, rows->header_type,
										   rows->header_typlen, rows->header_typbyval,
										   rows->header_typalign));
}

/*
 * Room for a varlena of len data bytes at offset off of a tuple's data:
 * returns the offset after it.  A short one (that fits a 1-byte header)
 * takes no alignment, as heap_fill_tuple stores it; a longer one is
 * aligned by align.
 */
static inline size_t
varlena_room(size_t off, size_t len, char align)
{
	if (len + VARHDRSZ_SHORT <= VARATT_SHORT_MAX)
		return off + VARHDRSZ_SHORT + len;
	return att_align_nominal(off, align) + VARHDRSZ + len;
}

/*
 * Write the varlena at offset off of data (padding before it zeroed, as a
 * reader finds a short varlena by a nonzero first byte); returns the
 * offset after it.
 */
static inline size_t
varlena_put(char *data, size_t off, const void *bytes, size_t len, char align)
{
	if (len + VARHDRSZ_SHORT <= VARATT_SHORT_MAX)
	{
		SET_VARSIZE_SHORT(data + off, VARHDRSZ_SHORT + len);
		memcpy(data + off + VARHDRSZ_SHORT, bytes, len);
		return off + VARHDRSZ_SHORT + len;
	}
	else
	{
		size_t		start = att_align_nominal(off, align);

		memset(data + off, 0, start - off);
		SET_VARSIZE(data + start, VARHDRSZ + len);
		memcpy(data + start + VARHDRSZ, bytes, len);
		return start + VARHDRSZ + len;
	}
}

/*
 * The row of a record as a minimal tuple, formed straight from the
 * record's bytes in the current memory context: the general path
 * (heap_form_tuple through tuplestore_putvalues) first copies key and
 * value into datums, then walks the tuple descriptor twice for every row,
 * which cost as much as decoding the record.  The layout is
 * heap_fill_tuple's for these column types (desc_is_record_row): int4,
 * int8 and timestamptz aligned, bytea short when they fit a 1-byte header,
 * an all-nonzero null bitmap left out.
 */
static MinimalTuple
form_record_tuple(SlRecordRows *rows, int32 partition, const SlRecord *rec)
{
	bool		has_ts = rec->timestamp >= 0;
	bool		has_key = rec->key_len >= 0;
	bool		has_value = rec->value_len >= 0;
	bool		has_headers = rec->header_count > 0;
	struct varlena *headers = NULL;
	size_t		headers_len = 0;
	bool		hasnull = !has_ts || !has_key || !has_value || !has_headers;
	size_t		hoff;
	size_t		off;
	size_t		len;
	MinimalTuple tuple;
	char	   *data;

	if (has_headers)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(rows->row_context);

		headers = (struct varlena *) DatumGetPointer(headers_array(rows, rec));
		MemoryContextSwitchTo(oldcxt);
		headers_len = VARSIZE(headers) - VARHDRSZ;
	}

	/* The size first: int4 at 0, int8 at 8, timestamptz at 16 */
	hoff = MAXALIGN(SizeofMinimalTupleHeader + (hasnull ? BITMAPLEN(RECORD_COLUMNS) : 0));
	off = has_ts ? 24 : 16;
	if (has_key)
		off = varlena_room(off, rec->key_len, TYPALIGN_INT);
	if (has_value)
		off = varlena_room(off, rec->value_len, TYPALIGN_INT);
	if (has_headers)
		off = varlena_room(off, headers_len, rows->headers_align);
	len = hoff + off;

	tuple = (MinimalTuple) palloc(len);
	memset(tuple, 0, hoff);
	tuple->t_len = len;
	HeapTupleHeaderSetNatts(tuple, RECORD_COLUMNS);
	tuple->t_hoff = hoff + MINIMAL_TUPLE_OFFSET;
	if (hasnull)
	{
		tuple->t_infomask |= HEAP_HASNULL;
		tuple->t_bits[0] = 0x03 | (has_ts ? 0x04 : 0) | (has_key ? 0x08 : 0) |
			(has_value ? 0x10 : 0) | (has_headers ? 0x20 : 0);
	}
	if (has_key || has_value || has_headers)
		tuple->t_infomask |= HEAP_HASVARWIDTH;

	data = (char *) tuple + hoff;
	*(int32 *) data = partition;
	memset(data + 4, 0, 4);
	*(int64 *) (data + 8) = rec->offset;
	off = 16;
	if (has_ts)
	{
		*(TimestampTz *) (data + 16) = SlKafkaToTimestamp(rec->timestamp);
		off = 24;
	}
	if (has_key)
		off = varlena_put(data, off, rec->key, rec->key_len, TYPALIGN_INT);
	if (has_value)
		off = varlena_put(data, off, rec->value, rec->value_len, TYPALIGN_INT);
	if (has_headers)
	{
		off = varlena_put(data, off, VARDATA(headers), headers_len, rows->headers_align);
		MemoryContextReset(rows->row_context);
	}
	Assert(hoff + off == len);
	return tuple;
}

/*
 * A slot that holds a record, not a tuple: a tuplestore copies what it is
 * given into its own memory (tuplestore_puttuple, _putvalues and
 * _puttupleslot all do), and this slot's copy is the row formed straight
 * into that memory, so that each row is written once instead of formed in
 * a buffer of ours and copied again.  Nothing else is asked of it.
 */
typedef struct RecordSlot
{
	TupleTableSlot base;
	SlRecordRows *rows;
	int32		partition;
	const SlRecord *rec;
} RecordSlot;

static void
record_slot_init(TupleTableSlot *slot)
{
}

static void
record_slot_release(TupleTableSlot *slot)
{
}

static void
record_slot_clear(TupleTableSlot *slot)
{
	slot->tts_flags |= TTS_FLAG_EMPTY;
	slot->tts_nvalid = 0;
	((RecordSlot *) slot)->rec = NULL;
}

static void
record_slot_getsomeattrs(TupleTableSlot *slot, int natts)
{
	elog(ERROR, "a record slot has no attributes to read");
}

static Datum
record_slot_getsysattr(TupleTableSlot *slot, int attnum, bool *isnull)
{
	elog(ERROR, "a record slot has no system attributes");
	return (Datum) 0;
}

static void
record_slot_materialize(TupleTableSlot *slot)
{
	elog(ERROR, "a record slot cannot be materialized");
}

static void
record_slot_copyslot(TupleTableSlot *dst, TupleTableSlot *src)
{
	elog(ERROR, "a record slot cannot be copied into");
}

static HeapTuple
record_slot_copy_heap_tuple(TupleTableSlot *slot)
{
	elog(ERROR, "a record slot gives minimal tuples only");
	return NULL;
}

static MinimalTuple
record_slot_copy_minimal_tuple(TupleTableSlot *slot)
{
	RecordSlot *rs = (RecordSlot *) slot;

	return form_record_tuple(rs->rows, rs->partition, rs->rec);
}

static const TupleTableSlotOps record_slot_ops = {
	.base_slot_size = sizeof(RecordSlot),
	.init = record_slot_init,
	.release = record_slot_release,
	.clear = record_slot_clear,
	.getsomeattrs = record_slot_getsomeattrs,
	.getsysattr = record_slot_getsysattr,
	.materialize = record_slot_materialize,
	.copyslot = record_slot_copyslot,
	.get_heap_tuple = NULL,
	.get_minimal_tuple = NULL,
	.copy_heap_tuple = record_slot_copy_heap_tuple,
	.copy_minimal_tuple = record_slot_copy_minimal_tuple
};

/* Add the row of a record to the result, formed in the result's memory */
static void
put_record_tuple(SlRecordRows *rows, int32 partition, const SlRecord *rec)
{
	RecordSlot *rs = (RecordSlot *) rows->record_slot;

	rs->rows = rows;
	rs->partition = partition;
	rs->rec = rec;
	rs->base.tts_flags &= ~TTS_FLAG_EMPTY;
	tuplestore_puttupleslot(rows->rsinfo->setResult, &rs->base);
	rs->rec = NULL;
}

void
SlRecordRowsPut(SlRecordRows *rows, int32 partition, const SlRecord *rec)
{
	Datum		values[RECORD_COLUMNS];
	bool		nulls[RECORD_COLUMNS] = {0};
	MemoryContext oldcxt;

	if (rows->direct)
	{
		put_record_tuple(rows, partition, rec);
		return;
	}
	oldcxt = MemoryContextSwitchTo(rows->row_context);
	values[0] = Int32GetDatum(partition);
	values[1] = Int64GetDatum(rec->offset);
	/* A record without a timestamp (-1: a v0 message, say) has none */
	if (rec->timestamp < 0)
		nulls[2] = true;
	else
		values[2] = TimestampTzGetDatum(SlKafkaToTimestamp(rec->timestamp));
	if (rec->key_len < 0)
		nulls[3] = true;
	else
		values[3] = PointerGetDatum(reuse_bytea(&rows->key_buf, &rows->key_cap,
												MemoryContextGetParent(rows->row_context),
												rec->key, rec->key_len));
	if (rec->value_len < 0)
		nulls[4] = true;
	else
		values[4] = PointerGetDatum(reuse_bytea(&rows->value_buf, &rows->value_cap,
												MemoryContextGetParent(rows->row_context),
												rec->value, rec->value_len));
	if (rec->header_count == 0)
		nulls[5] = true;
	else
		values[5] = headers_array(rows, rec);

	tuplestore_putvalues(rows->rsinfo->setResult, rows->rsinfo->setDesc, values, nulls);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(rows->row_context);
}
