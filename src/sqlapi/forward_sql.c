/*-------------------------------------------------------------------------
 * forward_sql.c
 *	  streamlog._forward_append(source_node, topic_id, partition, VARIADIC
 *	  batches bytea[]): on a partition's leader, the batches another node's
 *	  SQL producers committed there, which its forwarder sends
 *	  (replication/produce_forward.c).
 *
 * Each batch is stamped with the sending node's producer id, an epoch and
 * sequences, and goes through the idempotent producer's check as a Kafka
 * producer's batch does (SlProducerCheckBatch): a batch resent after a
 * crash of either node is a duplicate and is not stored again; a gap or
 * an older epoch is refused.  The batches are stored at the commit of the
 * caller's transaction, so the answer counts only once that commit is
 * done (the forwarder commits before it takes the answer).
 *
 * streamlog._forward_acked(source_node, topic_id, partition, producer_id,
 * producer_epoch, base_sequence, record_count, timeout_ms) then waits, as
 * an acks=all Produce does, until the partition's high watermark passes
 * that batch (stored by an earlier call): on a replicated partition, until
 * the in-sync replicas hold it; with one replica, at once.
 *
 * Like an acks=all Produce, a partition with other replicas whose ISR is
 * smaller than its min.insync.replicas takes nothing (NOT_ENOUGH_REPLICAS).
 *
 * Kafka's refusals come back as errors with SQLSTATE "SL" followed by the
 * three digits of the Kafka error code (SL006: NOT_LEADER_OR_FOLLOWER,
 * SL045: OUT_OF_ORDER_SEQUENCE_NUMBER, ...): the whole call is undone, and
 * the forwarder decides by the code.  The bytes are hostile (they came
 * over the network): a batch that does not validate is CORRUPT_MESSAGE,
 * nothing stored.
 *
 * Security: it acts without the authorization of the producing role,
 * which its node checked; EXECUTE is revoked from PUBLIC (superusers and
 * streamlog_admin, the role nodes connect as, may call it).
 *
 * IDENTIFICATION
 *	  src/sqlapi/forward_sql.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/protocol/records.h"
#include "streamlog/storage/replica_log.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog__forward_append);
PG_FUNCTION_INFO_V1(streamlog__forward_acked);

/* SQLSTATE SLnnn for Kafka error code nnn */
#define SL_KAFKA_SQLSTATE(code) \
	MAKE_SQLSTATE('S', 'L', '0' + ((code) / 100) % 10, '0' + ((code) / 10) % 10, \
				  '0' + (code) % 10)

static void
refuse(int16 code, const char *what, int32 source_node, int32 topic_id, int32 partition)
{
	ereport(ERROR,
			(errcode(SL_KAFKA_SQLSTATE(code)),
			 errmsg("batches forwarded by node %d to partition %d of topic %d refused: %s",
					source_node, partition, topic_id, what),
			 errdetail("Kafka error code %d.", code)));
}

/*
 * Check a forwarded batch as the Produce handler checks a client's:
 * returns NULL and the records' timestamps, or what is wrong with it
 */
static const char *
validate_forwarded(const uint8 *data, size_t len, const SlTopic *topic,
				   SlBatchHeader *hdr, int64 *min_ts, int64 *max_ts, int16 *code)
{
	SlRecordIter it;
	SlRecord	rec;
	const char *why;
	int32		expected = 0;

	*code = SL_ERR_CORRUPT_MESSAGE;
	*min_ts = -1;
	*max_ts = -1;
	why = SlBatchParseHeader(data, len, hdr, true);
	if (why)
		return why;
	if (SlBatchSize(hdr) != len)
		return "bytes after the batch";
	if (SlBatchCompression(hdr) > SL_COMPRESSION_MAX)
		return "unknown compression codec";
	if (hdr->attributes & (SL_BATCH_ATTR_CONTROL | SL_BATCH_ATTR_TRANSACTIONAL |
						   SL_BATCH_ATTR_LOG_APPEND_TIME))
		return "a forwarded batch is neither a control nor a transactional batch and has CreateTime";
	if (hdr->producer_id < 0 || hdr->producer_epoch < 0 || hdr->base_sequence < 0)
		return "a forwarded batch carries its node's producer id, epoch and sequence";
	if (SlBatchSize(hdr) > (size_t) topic->config.max_message_bytes)
	{
		*code = SL_ERR_MESSAGE_TOO_LARGE;
		return "batch larger than max.message.bytes";
	}
	why = SlRecordIterInit(&it, data, len, false, (size_t) sl_max_request_size);
	if (why)
		return why;
	while (SlRecordIterNext(&it, &rec))
	{
		if (rec.offset - hdr->base_offset != expected)
		{
			SlRecordIterFree(&it);
			return "record offset deltas are not consecutive";
		}
		if (rec.key_len < 0 && SlTopicRequiresKeys(&topic->config))
		{
			SlRecordIterFree(&it);
			*code = SL_ERR_INVALID_RECORD;
			return "a record without a key for a compacted topic";
		}
		if (rec.timestamp >= 0)
		{
			if (*min_ts < 0 || rec.timestamp < *min_ts)
				*min_ts = rec.timestamp;
			if (rec.timestamp > *max_ts)
				*max_ts = rec.timestamp;
		}
		expected++;
	}
	why = it.error;
	SlRecordIterFree(&it);
	if (why)
		return why;
	if (expected != hdr->last_offset_delta + 1 || expected == 0)
		return "lastOffsetDelta does not match the records";
	*code = SL_ERR_NONE;
	return NULL;
}

/*
 * A batch older than the newest of its producer that this node stored: a
 * forwarder never skips a sequence and the check takes none out of order,
 * so it was stored, longer ago than the last few batches the check
 * remembers (a resend of a long run of batches)
 */
static bool
stored_before(const SlTopic *topic, int32 partition, const SlBatchHeader *hdr)
{
	int16		epoch;
	int32		last_seq;
	int64		end_offset;

	return SlProducerNewestBatch(topic, partition, hdr->producer_id, &epoch, &last_seq,
								 &end_offset) &&
		epoch == hdr->producer_epoch &&
		(int64) hdr->base_sequence + hdr->last_offset_delta <= last_seq;
}

/* The error for a partition this node does not lead, or none */
static int16
leader_error(const SlTopic *topic, int32 partition)
{
	const SlPartitionLeadership *l;

	if (!SlClusterEnabled() || topic->partitions == NULL)
		return SL_ERR_NONE;
	l = SlTopicPartitionLeadership(topic, partition);
	if (l->leader == sl_node_id)
		return SL_ERR_NONE;
	return l->leader == SL_NO_LEADER ? SL_ERR_LEADER_NOT_AVAILABLE :
		SL_ERR_NOT_LEADER_OR_FOLLOWER;
}

/* Returns how many of the batches this call stored (the rest were duplicates) */
Datum
streamlog__forward_append(PG_FUNCTION_ARGS)
{
	int32		source_node = PG_GETARG_INT32(0);
	int32		topic_id = PG_GETARG_INT32(1);
	int32		partition = PG_GETARG_INT32(2);
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(3);
	const SlTopic *topic;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			stored = 0;
	int16		code;

	PreventCommandIfReadOnly("_forward_append()");
	topic = SlTopicLookupById(topic_id);
	if (topic != NULL)
		topic = SlTopicTryLookupAndLock(topic->name, AccessShareLock);
	if (topic == NULL || topic->topic_id != topic_id ||
		partition < 0 || partition >= topic->partition_count)
		refuse(SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, "no such partition here",
			   source_node, topic_id, partition);
	if ((code = leader_error(topic, partition)) != SL_ERR_NONE)
		refuse(code, "this node does not lead it", source_node, topic_id, partition);
	/* Leading since moments ago: the last follower appends come first */
	if (!SlPartitionLeaderReady(topic, partition))
		refuse(SL_ERR_NOT_LEADER_OR_FOLLOWER, "this node is becoming its leader",
			   source_node, topic_id, partition);
	/*
	 * As an acks=all Produce: too few in-sync replicas, nothing written
	 * (the batches wait in the sending node's queue)
	 */
	if (SlClusterEnabled() && topic->partitions != NULL &&
		SlTopicPartitionLeadership(topic, partition)->nreplicas > 1 &&
		SlTopicPartitionLeadership(topic, partition)->nisr <
		SlTopicMinInsyncReplicas(&topic->config))
		refuse(SL_ERR_NOT_ENOUGH_REPLICAS,
			   psprintf("%d in-sync replicas, min.insync.replicas is %d",
						SlTopicPartitionLeadership(topic, partition)->nisr,
						SlTopicMinInsyncReplicas(&topic->config)),
			   source_node, topic_id, partition);

	deconstruct_array(array, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	for (int i = 0; i < nelems; i++)
	{
		bytea	   *b;
		const uint8 *data;
		size_t		len;
		SlBatchHeader hdr;
		int64		min_ts;
		int64		max_ts;
		int64		duplicate_offset = -1;
		const char *why;

		if (nulls[i])
			refuse(SL_ERR_CORRUPT_MESSAGE, "a batch is NULL", source_node, topic_id, partition);
		b = DatumGetByteaPP(elems[i]);
		data = (const uint8 *) VARDATA_ANY(b);
		len = VARSIZE_ANY_EXHDR(b);
		why = validate_forwarded(data, len, topic, &hdr, &min_ts, &max_ts, &code);
		if (why)
			refuse(code, why, source_node, topic_id, partition);
		/*
		 * One at a time: SlLogBufferBatch notes each batch for the check of
		 * the next, which follows it in sequence
		 */
		switch (SlProducerCheckBatch(topic, partition, &hdr, &duplicate_offset))
		{
			case SL_SEQUENCE_OK:
				/*
				 * Where the batch lands, filled in at commit: the producer
				 * state keeps it for _forward_acked and for duplicates
				 */
				SlLogBufferBatch(topic, partition, data, len, &hdr, min_ts, max_ts,
								 MemoryContextAllocZero(TopTransactionContext, sizeof(int64)),
								 NULL);
				stored++;
				break;
			case SL_SEQUENCE_DUPLICATE:
				break;
			case SL_SEQUENCE_OUT_OF_ORDER:
				if (stored_before(topic, partition, &hdr))
					break;
				refuse(SL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
					   psprintf("sequence %d of producer %lld (epoch %d) does not follow",
								hdr.base_sequence, (long long) hdr.producer_id,
								hdr.producer_epoch),
					   source_node, topic_id, partition);
				break;
			case SL_SEQUENCE_FENCED:
				refuse(SL_ERR_INVALID_PRODUCER_EPOCH,
					   psprintf("epoch %d of producer %lld is older than the one stored",
								hdr.producer_epoch, (long long) hdr.producer_id),
					   source_node, topic_id, partition);
				break;
		}
	}
	PG_RETURN_INT32(stored);
}

/*
 * Returns the offset after the batch once the high watermark reached it.
 * REQUEST_TIMED_OUT (SL007) at timeout_ms, NOT_LEADER_OR_FOLLOWER if this
 * node stopped leading meanwhile, OUT_OF_ORDER_SEQUENCE_NUMBER if it does
 * not remember the batch (the forwarder sends it again).
 */
Datum
streamlog__forward_acked(PG_FUNCTION_ARGS)
{
	int32		source_node = PG_GETARG_INT32(0);
	int32		topic_id = PG_GETARG_INT32(1);
	int32		partition = PG_GETARG_INT32(2);
	SlBatchHeader hdr;
	int32		record_count = PG_GETARG_INT32(6);
	int32		timeout_ms = PG_GETARG_INT32(7);
	TimestampTz deadline;
	const SlTopic *topic;
	int64		base_offset = -1;
	int64		end;
	int64	   *hwms;
	int16		code;

	memset(&hdr, 0, sizeof(hdr));
	hdr.producer_id = PG_GETARG_INT64(3);
	hdr.producer_epoch = PG_GETARG_INT16(4);
	hdr.base_sequence = PG_GETARG_INT32(5);
	if (record_count <= 0 || hdr.producer_id < 0 || hdr.base_sequence < 0 ||
		(int64) hdr.base_sequence + record_count - 1 > PG_INT32_MAX)
		refuse(SL_ERR_INVALID_REQUEST, "no such batch", source_node, topic_id, partition);
	hdr.last_offset_delta = record_count - 1;
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), Max(timeout_ms, 0));

	topic = SlTopicLookupById(topic_id);
	if (topic != NULL)
		topic = SlTopicTryLookupAndLock(topic->name, AccessShareLock);
	if (topic == NULL || topic->topic_id != topic_id ||
		partition < 0 || partition >= topic->partition_count)
		refuse(SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, "no such partition here",
			   source_node, topic_id, partition);
	if (SlProducerCheckBatch(topic, partition, &hdr, &base_offset) == SL_SEQUENCE_DUPLICATE &&
		base_offset >= 0)
		end = base_offset + record_count;
	else
	{
		int16		epoch;
		int32		last_seq;

		/* stored longer ago: the newest batch's end is past it */
		if (!stored_before(topic, partition, &hdr) ||
			!SlProducerNewestBatch(topic, partition, hdr.producer_id, &epoch, &last_seq,
								   &end) || end < 0)
			refuse(SL_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "this node does not remember the batch",
				   source_node, topic_id, partition);
	}

	hwms = palloc(sizeof(int64) * topic->partition_count);
	for (int32 p = 0; p < topic->partition_count; p++)
		hwms[p] = PG_INT64_MAX;
	for (;;)
	{
		SlPartitionOffsets offsets;
		const SlTopic *now;

		/* the leadership as the metadata says now */
		now = SlTopicLookupById(topic_id);
		if (now == NULL || partition >= now->partition_count)
			refuse(SL_ERR_UNKNOWN_TOPIC_OR_PARTITION, "the topic is gone",
				   source_node, topic_id, partition);
		if ((code = leader_error(now, partition)) != SL_ERR_NONE)
			refuse(code, "this node no longer leads it", source_node, topic_id, partition);
		SlPartitionGetOffsets(topic_id, partition, &offsets);
		if (offsets.high_watermark >= end)
			break;
		if (GetCurrentTimestamp() >= deadline)
			refuse(SL_ERR_REQUEST_TIMED_OUT, "the in-sync replicas did not get it in time",
				   source_node, topic_id, partition);
		hwms[partition] = offsets.high_watermark;
		/* at least once a second: a change of leader wakes no one */
		(void) SlGroupWaitForRecords(topic, hwms,
									 Min(deadline, TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 1000)));
	}
	PG_RETURN_INT64(end);
}
