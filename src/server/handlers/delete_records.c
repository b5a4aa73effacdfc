/*
 * DeleteRecords: move the log start offset of partitions up to an offset
 * (-1: the high watermark), see SlPartitionDeleteRecords.  Each partition
 * is its own subtransaction; an offset past the high watermark is
 * OFFSET_OUT_OF_RANGE, and the answer is the new low watermark.  A topic
 * needs DELETE (TOPIC_AUTHORIZATION_FAILED for its partitions otherwise).
 */
#include "postgres.h"

#include "streamlog/server/authorize.h"
#include "streamlog/server/handlers/admin.h"
#include "streamlog/server/partition_leader.h"

typedef struct DeleteArgs
{
	const SlTopic *topic;
	int32		partition;
	int64		offset;
	int64		low_watermark;
} DeleteArgs;

static void
delete_records(void *arg)
{
	DeleteArgs *args = arg;

	args->low_watermark = SlPartitionDeleteRecords(args->topic, args->partition, args->offset);
}

bool
SlHandleDeleteRecords(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDeleteRecordsRequest request;
	SlDeleteRecordsResponse resp;

	if (!SlDeleteRecordsRequestDecode(body, req->api_version, &request))
		return false;
	SlDeleteRecordsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.topics, request.topics.n);
	for (int t = 0; t < request.topics.n; t++)
	{
		SlDeleteRecordsRequestDeleteRecordsTopic *rt = &request.topics.items[t];
		SlDeleteRecordsResponseDeleteRecordsTopicResult *tr = &resp.topics.items[t];
		char	   *name = SlTopicNameFromWire(rt->name);
		bool		allowed = name != NULL && SlMayTopic(name, SL_ACL_DELETE);

		SlDeleteRecordsResponseDeleteRecordsTopicResultInit(tr);
		tr->name = rt->name;
		SL_ARRAY_ALLOC(tr->partitions, rt->partitions.n);
		for (int p = 0; p < rt->partitions.n; p++)
		{
			SlDeleteRecordsRequestDeleteRecordsPartition *rp = &rt->partitions.items[p];
			SlDeleteRecordsResponseDeleteRecordsPartitionResult *pr = &tr->partitions.items[p];
			const SlTopic *found = allowed ? SlTopicLookup(name, true) : NULL;
			SlTopic		topic;
			DeleteArgs	args;

			SlDeleteRecordsResponseDeleteRecordsPartitionResultInit(pr);
			pr->partition_index = rp->partition_index;
			pr->low_watermark = -1;
			if (name != NULL && !allowed)
			{
				pr->error_code = SL_ERR_TOPIC_AUTHORIZATION_FAILED;
				continue;
			}
			if (found == NULL || rp->partition_index < 0 ||
				rp->partition_index >= found->partition_count)
			{
				pr->error_code = SL_ERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			if ((pr->error_code = SlPartitionLeaderError(found, rp->partition_index)) != SL_ERR_NONE)
				continue;
			topic = *found;
			args.topic = &topic;
			args.partition = rp->partition_index;
			args.offset = rp->offset;
			args.low_watermark = -1;
			pr->error_code = SlTopicAdminRun(delete_records, &args, false,
										SL_ERR_OFFSET_OUT_OF_RANGE, NULL);
			if (pr->error_code == SL_ERR_NONE)
				pr->low_watermark = args.low_watermark;
		}
	}
	SlDeleteRecordsResponseEncode(out, req->api_version, &resp);
	return true;
}
