/*
 * streamlog.producers: what DescribeProducers (KIP-664) answers, for every
 * partition at once.  streamlog._partition_producers() lists the
 * producers each partition's sequence checks know (storage/producers.c);
 * the view adds where each one's open transaction starts
 * (streamlog.txn_open) and keeps the topics the caller may READ, as the
 * Kafka API does.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "nodes/pg_list.h"

#include "streamlog/shmem.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog_partition_producers);

/*
 * (topic_id, partition, producer_id, producer_epoch, last_sequence,
 * last_timestamp, coordinator_epoch); unknown ones NULL
 */
Datum
streamlog_partition_producers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *ids;
	ListCell   *lc;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	ids = SlTopicListIds();
	foreach(lc, ids)
	{
		const SlTopic *topic = SlTopicLookupById(lfirst_int(lc));

		if (topic == NULL)
			continue;
		for (int32 p = 0; p < topic->partition_count; p++)
		{
			int			n;
			SlProducerState *producers = SlProducersOfPartition(topic, p, &n);

			for (int i = 0; i < n; i++)
			{
				Datum		values[7];
				bool		nulls[7] = {0};

				values[0] = Int32GetDatum(topic->topic_id);
				values[1] = Int32GetDatum(p);
				values[2] = Int64GetDatum(producers[i].producer_id);
				values[3] = Int16GetDatum(producers[i].producer_epoch);
				values[4] = Int32GetDatum(producers[i].last_sequence);
				values[5] = TimestampTzGetDatum(SlKafkaToTimestamp(producers[i].last_timestamp));
				nulls[5] = producers[i].last_timestamp < 0;
				values[6] = Int32GetDatum(producers[i].coordinator_epoch);
				nulls[6] = producers[i].coordinator_epoch < 0;
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
			pfree(producers);
		}
	}
	return (Datum) 0;
}
