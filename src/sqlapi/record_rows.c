/*
 * Records as SQL rows, see record_rows.h.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "streamlog/sqlapi/record_rows.h"

#define RECORD_COLUMNS 6

void
SlRecordRowsInit(SlRecordRows *rows, FunctionCallInfo fcinfo)
{
	Oid			header_array_type;

	InitMaterializedSRF(fcinfo, 0);
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

void
SlRecordRowsPut(SlRecordRows *rows, int32 partition, const SlRecord *rec)
{
	Datum		values[RECORD_COLUMNS];
	bool		nulls[RECORD_COLUMNS] = {0};
	MemoryContext oldcxt = MemoryContextSwitchTo(rows->row_context);

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
