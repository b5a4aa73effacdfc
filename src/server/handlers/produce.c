/*
 * Produce.  Requests read in the same loop iteration are committed in one
 * transaction (the handler is "batchable", see dispatch.c): every valid
 * batch is buffered through the storage API, each request in its own
 * subtransaction, so that an ERROR of one request (a
 * topic it cannot lock in time, anything it alone causes) fails that
 * request alone, answered with the Kafka error of its SQLSTATE, and the
 * others commit.  Offsets are assigned at commit, and the responses go
 * out only after the commit is durable (synchronous_commit as configured), so an acknowledged
 * record survives a crash (P5).  acks=0 requests are committed the same way
 * and get no response.
 *
 * An ERROR at commit fails the whole group: every request is answered with
 * the (retriable) Kafka error of that SQLSTATE, and clients retry.  The
 * requests are not retried one by one: their content was checked and
 * buffered already, so a failing commit is the storage's fault (disk
 * full, lock timeout), which a retry alone would meet again; idempotent
 * producers' retries are stored once.
 *
 * Each batch is checked before it is buffered: magic 2, CRC, size within
 * max.message.bytes, every record well formed, offset deltas 0..n-1; zstd
 * only from v7 on (as Kafka).  A bad batch fails its partition alone.
 * Versions 0-2 carry legacy message sets (magic 0 and 1), converted to one
 * v2 batch first.
 *
 * Timestamps are computed, never taken from the batch header: as Kafka's
 * log validator, the log stores the largest record timestamp as the batch's
 * maxTimestamp whatever the header says (-1 and 0 are common).  On a
 * CreateTime topic every record timestamp must lie within
 * message.timestamp.before.max.ms / after.max.ms of the broker's clock,
 * else the batch fails with INVALID_TIMESTAMP; records without a timestamp
 * (-1) are exempt, as in Kafka.  On a compacted topic every record needs a
 * key: a batch with keyless records fails with INVALID_RECORD, each of them
 * named in record_errors (v8+), as Kafka's log validator does.
 *
 * Each topic needs WRITE, asked before whether the topic exists (Kafka's
 * TOPIC_AUTHORIZATION_FAILED for each of its partitions), and a topic
 * created on the fly (streamlog.auto_create_topics) CREATE on the cluster
 * or on its name.
 *
 * Replicated partitions (CLUSTER.md section 4).  With acks=all, a
 * partition whose committed ISR is smaller than its min.insync.replicas
 * is refused with NOT_ENOUGH_REPLICAS before anything of it is buffered.
 * After the commit, an acks=all request with a batch in a partition that
 * has other replicas is parked (Kafka's DelayedProduce) until the high
 * watermark of each such partition passes the request's last batch there:
 * the dispatcher looks again (SlRecheckProduce) whenever one of those high
 * watermarks moves (NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR then has
 * fewer than min.insync.replicas), and at the request's timeout_ms the partitions still
 * waiting answer REQUEST_TIMED_OUT (the records stay: an idempotent
 * producer's retry is answered as a duplicate, and waits the same way).
 * A partition whose leadership moved meanwhile answers
 * NOT_LEADER_OR_FOLLOWER.  A node of its own and partitions without other
 * replicas answer right after the commit, as before.
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/protocol/legacy_records.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/partition_leader.h"
#include "streamlog/server/kafka_errors.h"
#include "streamlog/server/request_metrics.h"
#include "streamlog/server/server.h"
#include "streamlog/server/topic_admin.h"
#include "streamlog/server/txn/coordinator.h"
#include "streamlog/storage/isr_changes.h"
#include "streamlog/storage/partition_metrics.h"
#include "streamlog/storage/replica_log.h"
#include "streamlog/storage/replica_progress.h"
#include "streamlog/storage/transactions.h"
#include "streamlog/storage/wakeups.h"

/*
 * Most bytes a compressed batch may decompress to: no more than a request
 * could carry uncompressed, so that a small hostile batch cannot make the
 * worker allocate a gigabyte.
 */
#define MAX_DECOMPRESSED ((size_t) sl_max_request_size)

/*
 * Why a batch whose records decompress past MAX_DECOMPRESSED is refused:
 * not corrupt, too large, and the setting that would let it in.
 */
static const char *
decompressed_too_large(void)
{
	return psprintf("Records decompress to more than %d bytes, the limit set by "
					"streamlog.max_request_size; raise that setting or send smaller batches.",
					sl_max_request_size);
}

/*
 * A partition of an acks=all request that waits, after the commit, for
 * its replicas: acknowledged once the high watermark reaches the end of
 * the request's batches there
 */
typedef struct AckWait
{
	const SlTopic *topic;		/* as locked for the produce */
	int32		partition;
	int32		leader_epoch;	/* this node led the partition in it */
	int64		records;		/* offsets the request's batches take */
	SlProduceResponsePartitionProduceResponse *pr;	/* its answer */
	bool		done;
} AckWait;

/* One produce request of the group, decoded */
typedef struct ProduceJob
{
	SlRequest  *req;
	SlProduceRequest request;
	SlProduceResponse resp;
	bool		decoded;
	List	   *ack_waits;		/* of AckWait, acks=all on replicated partitions */
} ProduceJob;

/* What validate_batch found out about a batch's timestamps */
typedef struct BatchTimestamps
{
	int64		min_timestamp;	/* smallest record timestamp >= 0, or -1 */
	int64		max_timestamp;	/* largest record timestamp, -1 if none */
	int32		bad_record;		/* index of a record out of range, or -1 */
} BatchTimestamps;

/*
 * Records of a batch refused one by one (Kafka's RecordError): their
 * indexes in the batch and the message each gets
 */
typedef struct RecordErrors
{
	int32		count;
	int32		capacity;
	int32	   *indexes;
	const char *message;
} RecordErrors;

static void
record_errors_add(RecordErrors *errors, int32 index)
{
	if (errors->count == errors->capacity)
	{
		errors->capacity = Max(8, errors->capacity * 2);
		errors->indexes = errors->indexes ?
			repalloc(errors->indexes, sizeof(int32) * errors->capacity) :
			palloc(sizeof(int32) * errors->capacity);
	}
	errors->indexes[errors->count++] = index;
}

/*
 * Kafka's error message for a batch with refused records
 * (LogValidator.processRecordErrors): how many, and the first three
 */
static const char *
record_errors_summary(const RecordErrors *errors)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "One or more records have been rejected due to %d record errors "
					 "in total, and only showing the first three errors at most: [",
					 errors->count);
	for (int i = 0; i < Min(errors->count, 3); i++)
		appendStringInfo(&buf, "%sRecordError(batchIndex=%d, message='%s')",
						 i > 0 ? ", " : "", errors->indexes[i], errors->message);
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

/*
 * Check one record's timestamp against the topic's bounds (CreateTime) and
 * note it in *ts.  Returns SL_ERR_NONE or INVALID_TIMESTAMP with *why.
 */
static int16
check_record_timestamp(const SlRecord *rec, int32 index, const SlTopic *topic,
					   int64 now_ms, BatchTimestamps *ts, const char **why)
{
	int64		lower;
	int64		upper;

	if (!topic->config.log_append_time && rec->timestamp != -1 &&
		!SlTopicTimestampInRange(&topic->config, rec->timestamp, now_ms, &lower, &upper))
	{
		*why = psprintf("timestamp %lld of record %d of the batch is out of range: "
						"it must be within [%lld, %lld] (message.timestamp.before.max.ms "
						"and message.timestamp.after.max.ms around the broker's clock)",
						(long long) rec->timestamp, index, (long long) lower, (long long) upper);
		ts->bad_record = index;
		return SL_ERR_INVALID_TIMESTAMP;
	}
	if (rec->timestamp > ts->max_timestamp)
		ts->max_timestamp = rec->timestamp;
	if (rec->timestamp >= 0 && (ts->min_timestamp < 0 || rec->timestamp < ts->min_timestamp))
		ts->min_timestamp = rec->timestamp;
	return SL_ERR_NONE;
}

/*
 * Check one batch; returns SL_ERR_NONE and its records' timestamps, or the
 * Kafka error for it.
 */
static int16
validate_batch(const uint8 *data, size_t len, const SlTopic *topic, int32 partition,
			   int16 version, int64 now_ms, SlBatchHeader *hdr, BatchTimestamps *ts,
			   RecordErrors *record_errors, const char **why)
{
	SlRecordIter it;
	SlRecord	rec;
	const char *error;
	int32		expected = 0;
	int16		err;

	ts->min_timestamp = -1;
	ts->max_timestamp = -1;
	ts->bad_record = -1;
	*why = SlBatchParseHeader(data, len, hdr, true);
	if (*why)
		return SL_ERR_CORRUPT_MESSAGE;
	if (SlBatchSize(hdr) > (size_t) topic->config.max_message_bytes)
	{
		*why = "batch larger than max.message.bytes";
		return SL_ERR_MESSAGE_TOO_LARGE;
	}
	if (SlBatchCompression(hdr) > SL_COMPRESSION_MAX)
	{
		*why = "unknown compression codec";
		return SL_ERR_CORRUPT_MESSAGE;
	}
	if (SlBatchCompression(hdr) == SL_COMPRESSION_ZSTD && version < 7)
	{
		*why = "zstd needs Produce v7 or later";
		return SL_ERR_UNSUPPORTED_COMPRESSION_TYPE;
	}
	/* Control batches (transaction markers) are written by brokers only */
	if (hdr->attributes & SL_BATCH_ATTR_CONTROL)
	{
		*why = "clients must not write control batches; transaction markers are the broker's";
		return SL_ERR_INVALID_RECORD;
	}
	if (hdr->attributes & SL_BATCH_ATTR_TRANSACTIONAL)
	{
		/*
		 * A final error, the one transactional clients get everywhere else,
		 * until the transaction coordinator opens the door
		 * (storage/transactions.h)
		 */
		if (!SL_TXN_PRODUCE_ACCEPTED || !SlTxnCoordinatorEnabled())
		{
			*why = SL_TRANSACTIONS_UNSUPPORTED;
			return SL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
		}
		/* Its transaction is its producer's: it must have one */
		if (hdr->producer_id < 0 || hdr->producer_epoch < 0)
		{
			*why = "a transactional batch needs a producer id and epoch";
			return SL_ERR_INVALID_RECORD;
		}
		/*
		 * ... and the coordinator must have added the partition to it
		 * (KIP-890's verification): a batch outside any transaction would
		 * hold the last stable offset until no marker ever comes
		 */
		if (!SlTxnPartitionInTransaction(hdr->producer_id, hdr->producer_epoch,
										 topic->topic_id, partition))
		{
			*why = "the partition is not in an open transaction of this producer id and epoch "
				"(AddPartitionsToTxn first)";
			return SL_ERR_INVALID_TXN_STATE;
		}
	}
	/* Its records would all take the header's maxTimestamp, unchecked */
	if (hdr->attributes & SL_BATCH_ATTR_LOG_APPEND_TIME)
	{
		*why = "producers must not set the timestamp type to LogAppendTime";
		return SL_ERR_INVALID_TIMESTAMP;
	}

	error = SlRecordIterInit(&it, data, len, false, MAX_DECOMPRESSED);
	if (error == sl_err_decompressed_too_large)
	{
		*why = decompressed_too_large();
		return SL_ERR_MESSAGE_TOO_LARGE;
	}
	if (error)
	{
		*why = error;
		return SL_ERR_CORRUPT_MESSAGE;
	}
	while (SlRecordIterNext(&it, &rec))
	{
		if (rec.offset - hdr->base_offset != expected)
		{
			SlRecordIterFree(&it);
			*why = "record offset deltas are not consecutive";
			return SL_ERR_INVALID_RECORD;
		}
		err = check_record_timestamp(&rec, expected, topic, now_ms, ts, why);
		if (err != SL_ERR_NONE)
		{
			SlRecordIterFree(&it);
			return err;
		}
		/* As Kafka, every keyless record of the batch is named */
		if (rec.key_len < 0 && SlTopicRequiresKeys(&topic->config))
			record_errors_add(record_errors, expected);
		expected++;
	}
	if (it.error || expected != hdr->last_offset_delta + 1)
	{
		*why = it.error ? it.error : "lastOffsetDelta does not match the records";
		SlRecordIterFree(&it);
		return SL_ERR_CORRUPT_MESSAGE;
	}
	SlRecordIterFree(&it);
	if (expected == 0)
	{
		*why = "empty batch";
		return SL_ERR_INVALID_RECORD;
	}
	if (record_errors->count > 0)
	{
		record_errors->message =
			psprintf("Compacted topic cannot accept message without key in topic partition %s-%d.",
					 topic->name, partition);
		*why = record_errors_summary(record_errors);
		return SL_ERR_INVALID_RECORD;
	}
	return SL_ERR_NONE;
}

/* Does partition have other replicas, which an acks=all produce waits for? */
static bool
replicated(const SlTopic *topic, int32 partition)
{
	return topic->partitions != NULL && SlQuorumVotersGet()->n > 0 &&
		SlTopicPartitionLeadership(topic, partition)->nreplicas > 1;
}

/*
 * Kafka's check before an acks=all append: the committed ISR has at least
 * min.insync.replicas members, else NOT_ENOUGH_REPLICAS and nothing is
 * written.  A node of its own has no ISR to speak of: it takes them all.
 */
static bool
enough_replicas(const SlTopic *topic, int32 partition,
				SlProduceResponsePartitionProduceResponse *pr)
{
	const SlPartitionLeadership *l;
	int32		min_isr = SlTopicMinInsyncReplicas(&topic->config);

	if (topic->partitions == NULL || SlQuorumVotersGet()->n == 0)
		return true;
	l = SlTopicPartitionLeadership(topic, partition);
	if (l->nisr >= min_isr)
		return true;
	pr->error_code = SL_ERR_NOT_ENOUGH_REPLICAS;
	pr->error_message = SlStrFromCString(psprintf("The size of the current ISR [%d] is "
												  "insufficient to satisfy the min.isr requirement of %d "
												  "for partition %s-%d",
												  l->nisr, min_isr, topic->name, partition));
	return false;
}

/* An acks=all request waits for the replicas of partition after its commit */
static void
wait_for_replicas(ProduceJob *job, const SlTopic *topic, int32 partition,
				  SlProduceResponsePartitionProduceResponse *pr, int64 records)
{
	AckWait    *w;

	if (job->request.acks != -1 || !replicated(topic, partition))
		return;
	w = palloc0(sizeof(AckWait));
	w->topic = topic;
	w->partition = partition;
	w->leader_epoch = SlPartitionLeaderEpoch(topic, partition);
	w->records = records;
	w->pr = pr;
	job->ack_waits = lappend(job->ack_waits, w);
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
	BatchTimestamps ts;
	BatchTimestamps *timestamps = NULL;
	int			capacity = 0;
	int64		records;
	int64		now_ms = SlTimestampToKafka(GetCurrentTimestamp());

	pr->index = pd->index;
	pr->base_offset = -1;
	pr->log_append_time_ms = -1;
	SlRequestNotePartition(job->req, topic->name, pd->index);
	if (pd->index < 0 || pd->index >= topic->partition_count)
	{
		pr->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		return;
	}
	if ((pr->error_code = SlPartitionLeaderError(topic, pd->index)) != SL_ERR_NONE)
		return;
	/* Leading since moments ago: the last follower appends come first */
	if (!SlPartitionLeaderReady(topic, pd->index))
	{
		pr->error_code = SL_ERR_NOT_LEADER_OR_FOLLOWER;
		pr->error_message = SlStrFromCString("this broker is becoming the partition's leader; retry");
		return;
	}
	if (job->request.acks == -1 && !enough_replicas(topic, pd->index, pr))
		return;
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
		why = SlMessageSetToBatch(data, len, MAX_DECOMPRESSED, &converted, &count);
		if (why == sl_err_decompressed_too_large)
		{
			pr->error_code = SL_ERR_MESSAGE_TOO_LARGE;
			pr->error_message = SlStrFromCString(decompressed_too_large());
			return;
		}
		if (why)
		{
			pr->error_code = SL_ERR_CORRUPT_MESSAGE;
			pr->error_message = SlStrFromCString(why);
			return;
		}
		SlBatchSeal((uint8 *) converted.data, converted.len, 0, -1);
		data = (const uint8 *) converted.data;
		len = converted.len;
	}

	/* Validate every batch before buffering any */
	while (pos < len)
	{
		RecordErrors record_errors = {0};
		int16		err = validate_batch(data + pos, len - pos, topic, pd->index,
										 job->req->api_version, now_ms, &hdr, &ts,
										 &record_errors, &why);

		if (err != SL_ERR_NONE)
		{
			pr->error_code = err;
			pr->error_message = SlStrFromCString(why);
			if (record_errors.count > 0)
			{
				SlStr		message = SlStrFromCString(record_errors.message);

				SL_ARRAY_ALLOC(pr->record_errors, record_errors.count);
				for (int i = 0; i < record_errors.count; i++)
				{
					pr->record_errors.items[i].batch_index = record_errors.indexes[i];
					pr->record_errors.items[i].batch_index_error_message = message;
				}
			}
			else if (ts.bad_record >= 0)
			{
				/* Kafka names the record that failed the batch (v8+) */
				SL_ARRAY_ALLOC(pr->record_errors, 1);
				pr->record_errors.items[0].batch_index = ts.bad_record;
				pr->record_errors.items[0].batch_index_error_message = pr->error_message;
			}
			ereport(DEBUG1,
					(errmsg("streamlog broker: rejected batch for %s-%d from %s: %s",
							topic->name, pd->index, job->req->peer, why)));
			return;
		}
		if (nbatches == capacity)
		{
			capacity = Max(4, capacity * 2);
			timestamps = timestamps ? repalloc(timestamps, sizeof(BatchTimestamps) * capacity) :
				palloc(sizeof(BatchTimestamps) * capacity);
		}
		timestamps[nbatches++] = ts;
		pos += SlBatchSize(&hdr);
	}

	/* Idempotent producers: retries are stored once, gaps refused */
	pos = 0;
	for (int i = 0; i < nbatches; i++)
	{
		int64		duplicate_offset = -1;

		SlBatchParseHeader(data + pos, len - pos, &hdr, false);
		pos += SlBatchSize(&hdr);
		switch (SlProducerCheckBatch(topic, pd->index, &hdr, &duplicate_offset))
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
					/* acknowledged as the first attempt would have been */
					if (duplicate_offset >= 0)
						wait_for_replicas(job, topic, pd->index, pr,
										  (int64) hdr.last_offset_delta + 1);
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
	records = 0;
	for (int i = 0; i < nbatches; i++)
	{
		int64	   *offset_out = i == 0 ? &pr->base_offset : palloc(sizeof(int64));

		/*
		 * Every batch of the commit is stamped with the same append time; a
		 * retry of an idempotent one finds its offset in offset_out
		 */
		SlBatchParseHeader(data + pos, len - pos, &hdr, false);

		/*
		 * Left in the request's frame (or the converted message set), ours
		 * until the request is answered, after the commit: its offsets are
		 * written there rather than into a copy
		 */
		SlLogBufferBatchInPlace(topic, pd->index, unconstify(uint8 *, data + pos),
								SlBatchSize(&hdr), &hdr,
								timestamps[i].min_timestamp, timestamps[i].max_timestamp,
								offset_out, i == 0 ? &pr->log_append_time_ms : NULL);
		pos += SlBatchSize(&hdr);
		records += (int64) hdr.last_offset_delta + 1;
	}
	pr->error_code = SL_ERR_NONE;
	/*
	 * The batches of one request to one partition are buffered together,
	 * so they get consecutive offsets from pr->base_offset on
	 */
	wait_for_replicas(job, topic, pd->index, pr, records);
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
		bool		allowed = name != NULL && SlMayTopic(name, SL_ACL_WRITE);
		bool		internal = name && SlTopicNameIsInternal(name);
		const SlTopic *topic = allowed && !internal ? SlTopicLookup(name, true) : NULL;
		int16		topic_error = SL_ERR_NONE;
		char	   *topic_message = NULL;

		tr->name = td->name;
		if (name == NULL)
			topic_error = SL_ERR_INVALID_TOPIC_EXCEPTION;
		else if (!allowed)
			topic_error = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
		else if (internal)
		{
			/* Only streamlog writes its internal topics, as in Kafka */
			topic_error = SL_ERR_INVALID_TOPIC_EXCEPTION;
			topic_message = psprintf("Cannot append to internal topic %s.", name);
		}
		else if (topic == NULL && sl_auto_create_topics && !SlMayCreateTopic(name))
			topic_error = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
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
				if (topic_message)
					pr->error_message = SlStrFromCString(topic_message);
				continue;
			}
			produce_partition(job, topic, &td->partition_data.items[p], pr);
			/* Kafka's per-topic produce requests, failed or not */
			{
				SlMetricsPartition key = SlPartitionMetricsKey(topic->topic_id, pr->index);

				SlMetricsCountProduce(&key, SL_DOOR_KAFKA, pr->error_code != SL_ERR_NONE);
			}
		}
	}
}

/* The request is answered: its partitions' errors, for the request metrics */
static void
note_errors(ProduceJob *job)
{
	for (int t = 0; t < job->resp.responses.n; t++)
		for (int p = 0; p < job->resp.responses.items[t].partition_responses.n; p++)
			SlRequestMetricsNoteError(job->req,
									  job->resp.responses.items[t].partition_responses.items[p].error_code);
}

/*
 * A request that failed with edata: every partition of it carries the Kafka
 * error of that SQLSTATE, or keeps the error of its own it already had
 * (after a failed commit, when keep_own_errors)
 */
static void
fail_job(ProduceJob *job, ErrorData *edata, bool keep_own_errors)
{
	int16		error = SlKafkaErrorForSqlstate(edata->sqlerrcode, SL_API_PRODUCE);
	SlProduceResponse failed;

	SlProduceErrorResponse(&job->request, job->req->api_version, error,
						   SlStrFromCString(edata->message), &failed);
	for (int t = 0; t < failed.responses.n; t++)
	{
		SlProduceResponseTopicProduceResponse *tr = &failed.responses.items[t];

		for (int p = 0; p < tr->partition_responses.n; p++)
		{
			SlProduceResponsePartitionProduceResponse *pr = &tr->partition_responses.items[p];

			pr->base_offset = -1;
			pr->log_append_time_ms = -1;
			if (keep_own_errors && t < job->resp.responses.n &&
				p < job->resp.responses.items[t].partition_responses.n &&
				job->resp.responses.items[t].partition_responses.items[p].error_code != SL_ERR_NONE)
				*pr = job->resp.responses.items[t].partition_responses.items[p];
		}
	}
	job->resp = failed;
}

/*
 * Decode and buffer one request, in the batch's transaction (dispatch.c
 * runs it in a subtransaction of its own); SlRespondProduce answers it
 * after the commit, which fills in the base offsets.
 */
bool
SlHandleProduce(SlRequest *req, SlReader *body, SlWriter *out)
{
	ProduceJob *job = palloc0(sizeof(ProduceJob));

	job->req = req;
	SlProduceResponseInit(&job->resp);
	req->handler_state = job;
	if (!SlProduceRequestDecode(body, req->api_version, &job->request))
		return false;
	job->decoded = true;
	produce_request(job);
	return true;
}

void
SlRespondProduce(SlRequest *req, SlWriter *out, ErrorData *error, bool own_error)
{
	ProduceJob *job = req->handler_state;

	if (job == NULL || !job->decoded)
	{
		/* failed before its body was decoded: nothing to answer */
		req->send_response = false;
		req->close_after = true;
		return;
	}
	if (error)
	{
		fail_job(job, error, !own_error);
		job->ack_waits = NIL;
	}
	if (job->ack_waits != NIL)
	{
		/* SlRecheckProduce looks, in a transaction of its own */
		req->state = SL_REQUEST_PARKED;
		req->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													Max(job->request.timeout_ms, 0));
		return;
	}
	note_errors(job);
	if (job->request.acks == 0)
	{
		/* No answer is due; as Kafka, an error closes the connection */
		req->send_response = false;
		for (int t = 0; t < job->resp.responses.n; t++)
			for (int p = 0; p < job->resp.responses.items[t].partition_responses.n; p++)
				if (job->resp.responses.items[t].partition_responses.items[p].error_code != SL_ERR_NONE)
					req->close_after = true;
		if (req->close_after)
			ereport(LOG,
					(errmsg("streamlog broker: closing connection from %s: an acks=0 Produce request failed",
							req->peer)));
	}
	else
		SlProduceResponseEncode(out, req->api_version, &job->resp);
}

/*
 * Kafka's DelayedProduce.tryComplete: each waiting partition is done once
 * the high watermark passed the request's batches, or once this node no
 * longer leads it in the epoch it appended in (NOT_LEADER_OR_FOLLOWER);
 * at the deadline, what still waits answers REQUEST_TIMED_OUT.  Says what
 * it waits on before it looks (SlRequestWaitOn), so that a high watermark
 * moving after the look wakes it.
 */
void
SlRecheckProduce(SlRequest *req, SlWriter *out)
{
	ProduceJob *job = req->handler_state;
	ListCell   *lc;
	bool		waiting = false;

	foreach(lc, job->ack_waits)
	{
		AckWait    *w = lfirst(lc);
		bool		still_leader;

		if (w->done)
			continue;
		SlRequestWaitOn(req, SlWaitKeyForPartition(SlMakePartitionKey(w->topic->topic_id,
																	  w->partition)));
		if (SlReplicaAcked(w->topic, w->partition, w->leader_epoch,
						   w->pr->base_offset + w->records, &still_leader))
		{
			/* replicated, but the ISR shrank below min.insync.replicas */
			if (SlReplicaMaximalIsrSize(w->topic, w->partition) <
				SlTopicMinInsyncReplicas(&w->topic->config))
			{
				w->pr->error_code = SL_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
				w->pr->base_offset = -1;
			}
			w->done = true;
		}
		else if (!still_leader)
		{
			w->pr->error_code = SL_ERR_NOT_LEADER_OR_FOLLOWER;
			w->pr->base_offset = -1;
			w->done = true;
		}
		else if (req->final_attempt)
		{
			w->pr->error_code = SL_ERR_REQUEST_TIMED_OUT;
			w->pr->error_message =
				SlStrFromCString("The in-sync replicas did not all hold the records "
								 "within the request's timeout.");
			w->pr->base_offset = -1;
			w->done = true;
		}
		else
			waiting = true;
	}
	if (waiting && !req->final_attempt)
	{
		req->state = SL_REQUEST_PARKED;
		return;
	}
	SlWaitSetClear(&req->waiting_on);
	req->state = SL_REQUEST_DONE;
	note_errors(job);
	SlProduceResponseEncode(out, req->api_version, &job->resp);
}
