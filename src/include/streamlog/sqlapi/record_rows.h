/*
 * Records as rows of (partition, "offset", ts, key, value, headers), the
 * result of streamlog.read(), history() and consume().
 */
#ifndef SL_RECORD_ROWS_H
#define SL_RECORD_ROWS_H

#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"

#include "streamlog/storage/storage.h"

typedef struct SlRecordRows
{
	ReturnSetInfo *rsinfo;
	MemoryContext row_context;	/* reset per record */
	Oid			header_type;
	TupleDesc	header_desc;
	int16		header_typlen;
	bool		header_typbyval;
	char		header_typalign;
	/* the key's and value's bytea of the row being put, reused */
	bytea	   *key_buf;
	bytea	   *value_buf;
	size_t		key_cap;		/* bytes allocated at key_buf */
	size_t		value_cap;
	/* rows formed straight from the records (the usual result type) */
	bool		direct;
	char		headers_align;	/* of the headers column */
	/* hands the row being put to the result (record_rows.c) */
	struct TupleTableSlot *record_slot;
} SlRecordRows;

/* Set up fcinfo's materialized result for records */
extern void SlRecordRowsInit(SlRecordRows *rows, FunctionCallInfo fcinfo);

/* Add one record of partition as a row */
extern void SlRecordRowsPut(SlRecordRows *rows, int32 partition, const SlRecord *rec);

/* Text from UTF-8 bytes, in the database encoding */
extern text *SlUtf8ToText(const char *data, int len);

#endif							/* SL_RECORD_ROWS_H */
