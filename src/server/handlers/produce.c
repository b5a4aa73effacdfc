/*
 * Produce.  Requests read in the same loop iteration are committed in one
 * transaction: every valid batch is buffered through the storage API,
 * offsets are assigned at commit, and the responses go out only after the
 * commit is durable (synchronous_commit as configured), so an acknowledged
 * record survives a crash (P5).  acks=0 requests are committed the same way
 * and get no response.
 *
 * Each batch is checked before it is buffered: magic 2, CRC, size within
 * max.message.bytes, every record well formed, offset deltas 0..n-1; zstd
 * only from v7 on (as Kafka).  A bad batch fails its partition alone.
 * Versions 0-2 carry legacy message sets (magic 0 and 1), converted to one
 * v2 batch first.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "guc.h"
#include "protocol/legacy_records.h"
#include "server/handlers.h"
#include "server/topic_admin.h"

/*
 * Most bytes a compressed batch may decompress to: no more than a request
 * could carry uncompressed, so that a small hostile batch cannot make the
 * worker allocate a gigabyte.
 */
#define MAX_DECOMPRESSED ((size_t) sl_max_request_size)

/* One produce request of the group, decoded */
typedef struct ProduceJob
{
	SlRequest  *req;
	SlProduceRequest request;
	SlProduceResponse resp;
	bool		decoded;
} ProduceJob;

/*
 * Check one batch; returns SL_ERR_NONE and its smallest record timestamp,
 * or the Kafka error for it.
 */
static int16
validate_batch(const uint8 *data, size_t len, const SlTopic *topic, int16 version,
			   SlBatchHeader *hdr, int64 *min_ts, const char **why)
{
	SlRecordIter it;
	SlRecord	rec;
	const char *error;
	int32		expected = 0;

	*why = sl_batch_parse_header(data, len, hdr, true);
	if (*why)
		return SL_ERR_CORRUPT_MESSAGE;
	if (sl_batch_size(hdr) > (size_t) topic->config.max_message_bytes)
	{
		*why = "batch larger than max.message.bytes";
		return SL_ERR_MESSAGE_TOO_LARGE;
	}
	if (sl_batch_compression(hdr) > SL_COMPRESSION_MAX)
	{
		*why = "unknown compression codec";
		return SL_ERR_CORRUPT_MESSAGE;
	}
	if (sl_batch_compression(hdr) == SL_COMPRESSION_ZSTD && version < 7)
	{
		*why = "zstd needs Produce v7 or later";
		return SL_ERR_UNSUPPORTED_COMPRESSION_TYPE;
	}
	if (hdr->attributes & (SL_BATCH_ATTR_TRANSACTIONAL | SL_BATCH_ATTR_CONTROL))
	{
		*why = "transactional batches are not supported";
		return SL_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
	}

	error = sl_record_iter_init(&it, data, len, false, MAX_DECOMPRESSED);
	if (error)
	{
		*why = error;
		return SL_ERR_CORRUPT_MESSAGE;
	}
	*min_ts = PG_INT64_MAX;
	while (sl_record_iter_next(&it, &rec))
	{
		if (rec.offset - hdr->base_offset != expected++)
		{
			sl_record_iter_free(&it);
			*why = "record offset deltas are not consecutive";
			return SL_ERR_INVALID_RECORD;
		}
		if (rec.timestamp < *min_ts)
			*min_ts = rec.timestamp;
	}
	if (it.error || expected != hdr->last_offset_delta + 1)
	{
		*why = it.error ? it.error : "lastOffsetDelta does not match the records";
		sl_record_iter_free(&it);
		return SL_ERR_CORRUPT_MESSAGE;
	}
	sl_record_iter_free(&it);
	if (expected == 0)
	{
		*why = "empty batch";
		return SL_ERR_INVALID_RECORD;
	}
	if (*min_ts == PG_INT64_MAX)
		*min_ts = hdr->base_timestamp;
	return SL_ERR_NONE;
}

/* Buffer the batches of one partition, or set its error */
static void
produce_partition(ProduceJob *job, const SlTopic *topic,
				  SlProduceRequestPartitionProduceData *pd,
				  SlProduceResponsePartitionProduceResponse *pr)
{
	const uint8 *data = pd->records.data;
	size_t		len = pd->records.len > 0 ? pd->records.len : 0;
	size_t		pos = 0;
	int			nbatches = 0;
	const char *why = NULL;
	SlBatchHeader hdr;
	int64		min_ts;
	int64	   *min_timestamps = NULL;
	int			capacity = 0;
	SlPartitionKey key;

	pr->index = pd->index;
	pr->base_offset = -1;
	pr->log_append_time_ms = -1;
	if (pd->index < 0 || pd->index >= topic->partition_count)
	{
		pr->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		return;
	}
	if (len == 0)
	{
		pr->error_code = SL_ERR_CORRUPT_MESSAGE;
		pr->error_message = SlStrFromCString("no records");
		return;
	}

	/* v0-2 carry a legacy message set: store it as one v2 batch */
	if (job->req->api_version < 3)
	{
		StringInfoData converted;
		int32		count;

		initStringInfo(&converted);
		why = sl_message_set_to_batch(data, len, MAX_DECOMPRESSED, &converted, &count);
		if (why)
		{
			pr->error_code = SL_ERR_CORRUPT_MESSAGE;
			pr->error_message = SlStrFromCString(why);
			return;
		}
		sl_batch_seal((uint8 *) converted.data, converted.len, 0, -1);
		data = (const uint8 *) converted.data;
		len = converted.len;
	}

	/* Validate every batch before buffering any */
	while (pos < len)
	{
		int16		err = validate_batch(data + pos, len - pos, topic,
										 job->req->api_version, &hdr, &min_ts, &why);

		if (err != SL_ERR_NONE)
		{
			pr->error_code = err;
			pr->error_message = SlStrFromCString(why);
			ereport(DEBUG1,
					(errmsg("streamlog broker: rejected batch for %s-%d from %s: %s",
							topic->name, pd->index, job->req->peer, why)));
			return;
		}
		if (nbatches == capacity)
		{
			capacity = Max(4, capacity * 2);
			min_timestamps = min_timestamps ? repalloc(min_timestamps, sizeof(int64) * capacity) :
				palloc(sizeof(int64) * capacity);
		}
		min_timestamps[nbatches++] = min_ts;
		pos += sl_batch_size(&hdr);
	}

	/* Idempotent producers: retries are stored once, gaps refused */
	key = SlMakePartitionKey(topic->topic_id, pd->index);
	pos = 0;
	for (int i = 0; i < nbatches; i++)
	{
		int64		duplicate_offset = -1;

		sl_batch_parse_header(data + pos, len - pos, &hdr, false);
		pos += sl_batch_size(&hdr);
		if (hdr.producer_id < 0)
			continue;
		switch (SlProducerCheck(key, hdr.producer_id, hdr.producer_epoch, hdr.base_sequence,
								hdr.base_sequence + hdr.last_offset_delta, &duplicate_offset))
		{
			case SL_SEQUENCE_OK:
				break;
			case SL_SEQUENCE_DUPLICATE:
				if (nbatches == 1)
				{
					/* Kafka answers a retry with the first attempt's offset */
					pr->error_code = duplicate_offset >= 0 ? SL_ERR_NONE :
						SL_ERR_DUPLICATE_SEQUENCE_NUMBER;
					pr->base_offset = duplicate_offset;
					return;
				}
				pr->error_code = SL_ERR_DUPLICATE_SEQUENCE_NUMBER;
				return;
			case SL_SEQUENCE_OUT_OF_ORDER:
				pr->error_code = SL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
				return;
			case SL_SEQUENCE_FENCED:
				pr->error_code = SL_ERR_INVALID_PRODUCER_EPOCH;
				return;
		}
	}

	pos = 0;
	for (int i = 0; i < nbatches; i++)
	{
		int64	   *offset_out = i == 0 ? &pr->base_offset : palloc(sizeof(int64));

		sl_batch_parse_header(data + pos, len - pos, &hdr, false);
		SlLogBufferBatch(topic, pd->index, data + pos, sl_batch_size(&hdr), &hdr,
						 min_timestamps[i], offset_out);
		if (hdr.producer_id >= 0)
			SlProducerNoteBatch(key, hdr.producer_id, hdr.producer_epoch, hdr.base_sequence,
								hdr.base_sequence + hdr.last_offset_delta, offset_out);
		pos += sl_batch_size(&hdr);
	}
	if (topic->config.log_append_time)
		pr->log_append_time_ms = SlTimestampToKafka(GetCurrentTransactionStartTimestamp());
	pr->error_code = SL_ERR_NONE;
}

/* Buffer everything of one request; errors go into its response */
static void
produce_request(ProduceJob *job)
{
	SlProduceRequest *request = &job->request;
	SlProduceResponse *resp = &job->resp;

	SL_ARRAY_ALLOC(resp->responses, request->topic_data.n);
	for (int t = 0; t < request->topic_data.n; t++)
	{
		SlProduceRequestTopicProduceData *td = &request->topic_data.items[t];
		SlProduceResponseTopicProduceResponse *tr = &resp->responses.items[t];
		char	   *name = SlTopicNameFromWire(td->name);
		const SlTopic *topic = name ? SlTopicLookup(name, true) : NULL;
		int16		topic_error = SL_ERR_NONE;

		tr->name = td->name;
		if (name == NULL)
			topic_error = SL_ERR_INVALID_TOPIC_EXCEPTION;
		else if (topic == NULL && sl_auto_create_topics)
		{
			topic_error = SlTopicAdminCreate(name, sl_default_partitions, NULL, false, NULL);
			if (topic_error == SL_ERR_TOPIC_ALREADY_EXISTS)
				topic_error = SL_ERR_NONE;	/* created by someone else meanwhile */
			if (topic_error == SL_ERR_NONE)
				topic = SlTopicLookup(name, true);
		}
		if (topic_error == SL_ERR_NONE && topic == NULL)
			topic_error = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		if (topic != NULL)
		{
			/* NULL if dropped while we waited for its lock */
			topic = SlTopicTryLookupAndLock(name, AccessShareLock);
			if (topic == NULL)
				topic_error = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		}

		SL_ARRAY_ALLOC(tr->partition_responses, td->partition_data.n);
		for (int p = 0; p < td->partition_data.n; p++)
		{
			SlProduceResponsePartitionProduceResponse *pr = &tr->partition_responses.items[p];

			SlProduceResponsePartitionProduceResponseInit(pr);
			if (topic_error != SL_ERR_NONE)
			{
				pr->index = td->partition_data.items[p].index;
				pr->error_code = topic_error;
				pr->base_offset = -1;
				continue;
			}
			produce_partition(job, topic, &td->partition_data.items[p], pr);
		}
	}
}

/* After a failed commit: every partition that had no error of its own fails */
static void
fail_job(ProduceJob *job)
{
	for (int t = 0; t < job->resp.responses.n; t++)
	{
		SlProduceResponseTopicProduceResponse *tr = &job->resp.responses.items[t];

		for (int p = 0; p < tr->partition_responses.n; p++)
			if (tr->partition_responses.items[p].error_code == SL_ERR_NONE)
			{
				tr->partition_responses.items[p].error_code = SL_ERR_KAFKA_STORAGE_ERROR;
				tr->partition_responses.items[p].base_offset = -1;
			}
	}
}

void
SlHandleProduceGroup(SlRequest **reqs, int n)
{
	ProduceJob *jobs = palloc0(sizeof(ProduceJob) * n);
	MemoryContext context = CurrentMemoryContext;

	/* Decode outside the transaction: it needs none */
	for (int i = 0; i < n; i++)
	{
		SlReader	body;
		MemoryContext oldcxt = MemoryContextSwitchTo(reqs[i]->context);

		jobs[i].req = reqs[i];
		SlReaderInit(&body, reqs[i]->frame + reqs[i]->header_len,
					 reqs[i]->frame_len - reqs[i]->header_len);
		jobs[i].decoded = SlProduceRequestDecode(&body, reqs[i]->api_version, &jobs[i].request);
		SlProduceResponseInit(&jobs[i].resp);
		if (!jobs[i].decoded)
			ereport(LOG,
					(errmsg("streamlog broker: closing connection from %s: malformed Produce v%d request: %s",
							reqs[i]->peer, reqs[i]->api_version, body.error ? body.error : "?")));
		MemoryContextSwitchTo(oldcxt);
	}

	/* now() of the transaction: a worker has no statements to set it */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		for (int i = 0; i < n; i++)
		{
			if (!jobs[i].decoded)
				continue;
			MemoryContextSwitchTo(jobs[i].req->context);
			produce_request(&jobs[i]);
		}
		MemoryContextSwitchTo(context);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(context);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG,
				(errmsg("streamlog broker: could not commit %d produce requests: %s",
						n, edata->message)));
		for (int i = 0; i < n; i++)
			fail_job(&jobs[i]);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);

	for (int i = 0; i < n; i++)
	{
		SlRequest  *req = reqs[i];
		SlWriter	out;
		MemoryContext oldcxt = MemoryContextSwitchTo(req->context);

		req->state = SL_REQUEST_DONE;
		if (!jobs[i].decoded)
		{
			req->send_response = false;
			req->close_after = true;
		}
		else if (jobs[i].request.acks == 0)
		{
			/* No answer is due; as Kafka, an error closes the connection */
			req->send_response = false;
			for (int t = 0; t < jobs[i].resp.responses.n; t++)
				for (int p = 0; p < jobs[i].resp.responses.items[t].partition_responses.n; p++)
					if (jobs[i].resp.responses.items[t].partition_responses.items[p].error_code != SL_ERR_NONE)
						req->close_after = true;
			if (req->close_after)
				ereport(LOG,
						(errmsg("streamlog broker: closing connection from %s: an acks=0 Produce request failed",
								req->peer)));
		}
		else
		{
			resetStringInfo(&req->response);
			SlWriterInit(&out, &req->response);
			SlWriteResponseHeader(req, &out);
			SlProduceResponseEncode(&out, req->api_version, &jobs[i].resp);
		}
		MemoryContextSwitchTo(oldcxt);
	}
	pfree(jobs);
}
