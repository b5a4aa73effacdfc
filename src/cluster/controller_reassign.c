/*-------------------------------------------------------------------------
 * controller_reassign.c
 *	  Moving a partition's replicas (Kafka's AlterPartitionReassignments,
 *	  KIP-455): the controller's decision for SL_CTRL_REASSIGN_PARTITIONS.
 *
 * A reassignment to target replicas T of a partition whose replicas are C
 * writes replicas T followed by C - T (the removing ones), adding T - C:
 * the new replicas follow the leader and catch up while the old ones still
 * count.  Once every adding replica is in the ISR (the leader asked for it
 * with an AlterPartition), the change that put it there also completes the
 * reassignment: the removing replicas leave the replicas and the ISR, and
 * a leader among them gives way to an ISR member of T
 * (partition_change_builder.c).  A target that adds nobody completes at
 * once.  A new target while one is under way replaces it: it starts from
 * the replicas before that one (KIP-455); cancelling (an empty target)
 * goes back to them, keeping their ISR members.
 *
 * The request is all or nothing: the first partition refused refuses it.
 *
 * IDENTIFICATION
 *	  src/cluster/controller_reassign.c
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "streamlog/cluster/controller.h"
#include "streamlog/cluster/internal/controller_parts.h"
#include "streamlog/cluster/internal/metadata_parts.h"

/* Check target replicas: some, few enough, no node twice, all registered */
static int16_t
check_target(const SlMetaImage *image, const SlMetaTopic *topic, int32_t partition,
			 const int32_t *target, int32_t n, char *errbuf, size_t errbuf_len)
{
	if (n > SL_CTRL_MAX_REPLICAS)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
								"the target of %s-%d has %d replicas, more than the %d a partition may have",
								topic->name, (int) partition, (int) n, SL_CTRL_MAX_REPLICAS);
	for (int32_t i = 0; i < n; i++)
	{
		if (SlMetaIntsContain(target, i, target[i]))
			return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
									"the target of %s-%d names node %d twice",
									topic->name, (int) partition, (int) target[i]);
		if (SlMetaImageNode(image, target[i]) == NULL)
			return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
									"the target of %s-%d names node %d, which is not registered",
									topic->name, (int) partition, (int) target[i]);
	}
	return 0;
}

/*
 * The state that reassigning part to target[0..n) starts, from the
 * replicas the partition had before any reassignment under way (those
 * that reassignment was adding and the new target drops leave the ISR
 * too, as KIP-455 cancels it first); false if that would leave the ISR
 * empty
 */
static bool
start_reassignment(SlPartitionTarget *t, const SlMetaPartition *part,
				   const int32_t *target, int32_t n)
{
	int32_t		orig[SL_CTRL_MAX_TARGET];
	int32_t		norig = 0;
	int32_t		kept = 0;

	for (int32_t i = 0; i < part->nreplicas; i++)
		if (!SlMetaIntsContain(part->adding, part->nadding, part->replicas[i]))
			orig[norig++] = part->replicas[i];
	for (int32_t i = 0; i < t->nisr; i++)
		if (!SlMetaIntsContain(part->adding, part->nadding, t->isr[i]) ||
			SlMetaIntsContain(target, n, t->isr[i]))
			t->isr[kept++] = t->isr[i];
	t->nisr = kept;
	t->nreplicas = 0;
	t->nadding = 0;
	t->nremoving = 0;
	for (int32_t i = 0; i < n; i++)
	{
		t->replicas[t->nreplicas++] = target[i];
		if (!SlMetaIntsContain(orig, norig, target[i]))
			t->adding[t->nadding++] = target[i];
	}
	for (int32_t i = 0; i < norig; i++)
		if (!SlMetaIntsContain(target, n, orig[i]))
		{
			t->replicas[t->nreplicas++] = orig[i];
			t->removing[t->nremoving++] = orig[i];
		}
	return kept > 0;
}

/* The state that cancelling part's reassignment goes back to; false if none */
static bool
revert_reassignment(SlPartitionTarget *t, const SlMetaPartition *part)
{
	int32_t		kept = 0;

	for (int32_t i = 0; i < t->nreplicas; i++)
		if (!SlMetaIntsContain(part->adding, part->nadding, t->replicas[i]))
			t->replicas[kept++] = t->replicas[i];
	t->nreplicas = kept;
	kept = 0;
	for (int32_t i = 0; i < t->nisr; i++)
		if (!SlMetaIntsContain(part->adding, part->nadding, t->isr[i]))
			t->isr[kept++] = t->isr[i];
	t->nisr = kept;
	t->nadding = 0;
	t->nremoving = 0;
	return kept > 0;
}

int16_t
SlControllerReassignPartitions(const SlMetaImage *image, const SlControllerRequest *req,
							   SlMetaBatch *out, char *errbuf, size_t errbuf_len)
{
	if (req->npartitions <= 0 || req->nassignments != req->npartitions ||
		req->election_topic_ids == NULL || req->election_partitions == NULL ||
		req->assignment_sizes == NULL || req->assignments == NULL)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REQUEST,
								"a reassignment names partitions and a target for each");
	for (int32_t i = 0; i < req->npartitions; i++)
	{
		const SlMetaTopic *topic = SlMetaImageTopicById(image, req->election_topic_ids[i]);
		int32_t		p = req->election_partitions[i];
		const int32_t *target = req->assignments[i];
		int32_t		n = req->assignment_sizes[i];
		const SlMetaPartition *part;
		SlPartitionTarget t;
		int16_t		err;

		if (topic == NULL || p < 0 || p >= topic->partition_count)
			return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
									"partition %d of topic id %d does not exist",
									(int) p, (int) req->election_topic_ids[i]);
		for (int32_t k = 0; k < i; k++)
			if (req->election_topic_ids[k] == topic->topic_id && req->election_partitions[k] == p)
				return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REQUEST,
										"%s-%d is named twice", topic->name, (int) p);
		part = &topic->partitions[p];
		if (!SlPartitionTargetInit(&t, part))
			return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
									"%s-%d has more replicas than a partition may have",
									topic->name, (int) p);
		if (n <= 0 || target == NULL)
		{
			if (part->nadding == 0 && part->nremoving == 0)
				return SlControllerFail(errbuf, errbuf_len, KAFKA_NO_REASSIGNMENT_IN_PROGRESS,
										"%s-%d has no reassignment to cancel",
										topic->name, (int) p);
			if (!revert_reassignment(&t, part))
				return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
										"cancelling the reassignment of %s-%d would leave its ISR empty",
										topic->name, (int) p);
		}
		else
		{
			err = check_target(image, topic, p, target, n, errbuf, errbuf_len);
			if (err != 0)
				return err;
			if (!start_reassignment(&t, part, target, n))
				return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REPLICA_ASSIGNMENT,
										"the new target of %s-%d would leave its ISR empty",
										topic->name, (int) p);
			(void) SlPartitionTargetCompleteReassignment(&t);
		}
		SlPartitionTargetElect(&t, SlControllerImageNodeUsable, (void *) image);
		if (!SlPartitionTargetRecord(&t, topic->topic_id, part, out))
			return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
	}
	return 0;
}
