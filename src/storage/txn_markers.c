/*
 * Transaction markers (transactions.h): the control batch the coordinator
 * writes to every partition of a transaction when it ends.
 *
 * A marker is a batch like any other (one offset, the leader's epoch,
 * replicated by the stream as every stored batch is) with the control and
 * transactional attributes, the producer's id and epoch, no sequence, and
 * one record: key ControlRecordType (ABORT 0, COMMIT 1), value
 * EndTransactionMarker (the coordinator's epoch).  Writing it closes the
 * producer's open transaction on the partition (txn_index.c).
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "streamlog/protocol/control_records.h"
#include "streamlog/protocol/records.h"
#include "streamlog/storage/internal/log_append.h"
#include "streamlog/storage/internal/producers.h"
#include "streamlog/storage/internal/txn.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/transactions.h"

int64
SlTxnWriteMarker(const SlTopic *topic, int32 partition, int64 producer_id,
				 int16 producer_epoch, bool commit, int32 coordinator_epoch)
{
	SlBatchBuilder builder;
	StringInfoData data;
	uint8		key[SL_CONTROL_KEY_SIZE];
	uint8		value[SL_CONTROL_VALUE_SIZE];
	int64		now_ms = SlTimestampToKafka(GetCurrentTimestamp());
	int64		offset;
	const char *error;
	int16		known_epoch;
	int32		known_coordinator_epoch;

	if (producer_id < 0 || producer_epoch < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a transaction marker needs a producer id and epoch, not %lld and %d",
						(long long) producer_id, producer_epoch)));
	SlTopicCheckPartition(topic, partition);
	if (SlProducerMarkerFenced(topic, partition, producer_id, producer_epoch,
							   coordinator_epoch, &known_epoch, &known_coordinator_epoch))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a transaction marker of producer %lld epoch %d from coordinator epoch %d is older than partition %d of topic \"%s\"",
						(long long) producer_id, producer_epoch, coordinator_epoch,
						partition, topic->name),
				 errdetail("The partition holds producer epoch %d and markers of coordinator epoch %d.",
						   known_epoch, known_coordinator_epoch),
				 errhint("The coordinator that sent it was replaced; the current one ends the transaction.")));

	SlControlKeyEncode(key, commit ? SL_CONTROL_TYPE_COMMIT : SL_CONTROL_TYPE_ABORT);
	SlControlValueEncode(value, coordinator_epoch);
	SlBatchBuilderInit(&builder, SL_COMPRESSION_NONE);
	builder.producer_id = producer_id;
	builder.producer_epoch = producer_epoch;
	builder.base_sequence = SL_NO_SEQUENCE;
	SlBatchBuilderSetBase(&builder, SL_BATCH_ATTR_CONTROL | SL_BATCH_ATTR_TRANSACTIONAL,
						  false, 0);
	SlBatchBuilderAdd(&builder, now_ms, key, SL_CONTROL_KEY_SIZE,
					  value, SL_CONTROL_VALUE_SIZE, NULL, 0);
	initStringInfo(&data);
	error = SlBatchBuilderFinish(&builder, &data);
	if (error)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not build a transaction marker: %s", error)));
	SlBatchBuilderFree(&builder);

	offset = SlLogAppendControlBatch(topic, partition, (const uint8 *) data.data,
									 (size_t) data.len, producer_id, producer_epoch,
									 now_ms);
	SlTxnNoteMarker(topic->topic_id, partition, producer_id, commit, offset);
	SlProducerNoteMarker(SlMakePartitionKey(topic->topic_id, partition), producer_id,
						 producer_epoch, coordinator_epoch, now_ms);
	pfree(data.data);
	return offset;
}
