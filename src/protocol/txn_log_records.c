/*-------------------------------------------------------------------------
 * txn_log_records.c
 *	  Key and value of Kafka's __transaction_state records
 *	  (txn_log_records.h has the layouts).
 *
 * Written by hand as offsets_records.c is: two small messages whose
 * versions are fixed by what Kafka's coordinator writes.
 *
 * IDENTIFICATION
 *	  src/protocol/txn_log_records.c
 *-------------------------------------------------------------------------
 */
#include "streamlog/protocol/codec_base.h"

#include "streamlog/protocol/offsets_records.h"
#include "streamlog/protocol/txn_log_records.h"
#include "streamlog/protocol/wire.h"

const char *
SlEncodeTxnLogKey(StringInfo buf, const char *transactional_id)
{
	SlWriter	w;

	SlWriterInit(&w, buf);
	SlWriteInt16(&w, SL_TXN_LOG_KEY_VERSION);
	SlWriteString(&w, false, false, SlStrFromCString(transactional_id));
	return w.error;
}

const char *
SlEncodeTxnLogValue(StringInfo buf, const SlTxnLogValue *value)
{
	SlWriter	w;

	SlWriterInit(&w, buf);
	SlWriteInt16(&w, SL_TXN_LOG_VALUE_VERSION);
	SlWriteInt64(&w, value->producer_id);
	SlWriteInt16(&w, value->producer_epoch);
	SlWriteInt32(&w, value->timeout_ms);
	SlWriteInt8(&w, value->status);
	SlWriteArrayLen(&w, false, true, value->ntopics);
	for (int i = 0; i < value->ntopics; i++)
	{
		const SlTxnLogTopic *t = &value->topics[i];

		SlWriteString(&w, false, false, SlStrFromCString(t->topic));
		SlWriteArrayLen(&w, false, false, t->npartitions);
		for (int j = 0; j < t->npartitions; j++)
			SlWriteInt32(&w, t->partitions[j]);
	}
	SlWriteInt64(&w, value->last_update_ms);
	SlWriteInt64(&w, value->start_ms);
	return w.error;
}

const char *
SlDecodeTxnLogKey(const uint8 *buf, size_t len, SlStr *transactional_id)
{
	SlReader	r;
	int16		version;

	*transactional_id = SL_STR_NULL;
	if (buf == NULL)
		return "no key";
	SlReaderInit(&r, buf, len);
	version = SlReadInt16(&r);
	if (SlReaderOk(&r) && version != SL_TXN_LOG_KEY_VERSION)
		return "unknown key version";
	*transactional_id = SlReadString(&r, false, false);
	if (!SlReaderOk(&r))
		return r.error;
	if (SlReaderRemaining(&r) != 0)
		return "bytes after the key";
	return NULL;
}

const char *
SlDecodeTxnLogValue(const uint8 *buf, size_t len, SlTxnLogValue *value)
{
	SlReader	r;
	int16		version;
	int32		ntopics;
	SlTxnLogTopic *topics = NULL;

	memset(value, 0, sizeof(*value));
	if (buf == NULL)
		return "no value";
	SlReaderInit(&r, buf, len);
	version = SlReadInt16(&r);
	if (SlReaderOk(&r) && version != SL_TXN_LOG_VALUE_VERSION)
		return "unknown value version";
	value->producer_id = SlReadInt64(&r);
	value->producer_epoch = SlReadInt16(&r);
	value->timeout_ms = SlReadInt32(&r);
	value->status = SlReadInt8(&r);
	/* A topic takes at least a string length and an array length */
	ntopics = SlReadArrayLen(&r, false, true, 6);
	if (ntopics > 0 && SlReaderOk(&r))
		topics = palloc0(sizeof(SlTxnLogTopic) * ntopics);
	for (int i = 0; i < ntopics && SlReaderOk(&r); i++)
	{
		SlStr		name = SlReadString(&r, false, false);
		int32		n = SlReadArrayLen(&r, false, false, 4);
		int32	   *parts = NULL;

		if (!SlReaderOk(&r))
			break;
		topics[i].topic = pnstrdup(name.data, name.len);
		if (n > 0)
			parts = palloc(sizeof(int32) * n);
		for (int j = 0; j < n && SlReaderOk(&r); j++)
			parts[j] = SlReadInt32(&r);
		topics[i].npartitions = Max(n, 0);
		topics[i].partitions = parts;
	}
	value->ntopics = Max(ntopics, 0);
	value->topics = topics;
	value->last_update_ms = SlReadInt64(&r);
	value->start_ms = SlReadInt64(&r);
	if (!SlReaderOk(&r))
		return r.error;
	if (SlReaderRemaining(&r) != 0)
		return "bytes after the value";
	return NULL;
}

int32
SlTxnLogPartitionFor(const char *transactional_id, int32 partitions)
{
	/* The same hash and the same abs as a group's __consumer_offsets partition */
	return SlOffsetsPartitionFor(transactional_id, partitions);
}
