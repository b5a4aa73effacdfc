/*-------------------------------------------------------------------------
 * controller_alter_partition.c
 *	  The controller's answer to a partition leader asking for a new ISR
 *	  (Kafka's AlterPartition, KIP-497).
 *
 * The leader names the leader epoch and partition epoch it knows; the
 * change is made only if both are the image's, so that a deposed leader,
 * or one that has not seen the last change of its partition, cannot undo
 * what the controller decided since (the leader then learns the new state
 * from the metadata and asks again).  The checks and their order are
 * KRaft's ReplicationControlManager.validateAlterPartitionData, with its
 * error codes; the request carries no broker epoch, so a member is judged
 * by its registration as the image has it.
 *
 * IDENTIFICATION
 *	  src/cluster/controller_alter_partition.c
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "streamlog/cluster/controller.h"
#include "streamlog/cluster/internal/controller_parts.h"
#include "streamlog/cluster/internal/metadata_parts.h"

/* Do a and b hold the same node ids (each without duplicates)? */
static bool
same_members(const int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
	if (na != nb)
		return false;
	for (int32_t i = 0; i < na; i++)
		if (!SlMetaIntsContain(b, nb, a[i]))
			return false;
	return true;
}

int16_t
SlControllerAlterPartition(const SlMetaImage *image, const SlControllerRequest *req,
						   SlMetaBatch *out, char *errbuf, size_t errbuf_len)
{
	const SlMetaTopic *topic = SlMetaImageTopicById(image, req->topic_id);
	const SlMetaPartition *part;
	SlPartitionTarget target;

	if (topic == NULL || req->partition < 0 || req->partition >= topic->partition_count)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
								"partition %d of topic id %d does not exist",
								(int) req->partition, (int) req->topic_id);
	part = &topic->partitions[req->partition];

	/* epochs ahead of the image: this controller has not applied them yet */
	if (req->leader_epoch > part->leader_epoch || req->partition_epoch > part->partition_epoch)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_NOT_CONTROLLER,
								"the controller has not caught up with leader epoch %d, partition epoch %d of %s-%d (it has %d, %d)",
								(int) req->leader_epoch, (int) req->partition_epoch,
								topic->name, (int) req->partition,
								(int) part->leader_epoch, (int) part->partition_epoch);
	if (part->leader != req->node_id)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REQUEST,
								"node %d does not lead %s-%d (its leader is %d)",
								(int) req->node_id, topic->name, (int) req->partition,
								(int) part->leader);
	if (req->leader_epoch != part->leader_epoch)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_FENCED_LEADER_EPOCH,
								"leader epoch %d of %s-%d is stale: it is %d",
								(int) req->leader_epoch, topic->name, (int) req->partition,
								(int) part->leader_epoch);
	if (req->partition_epoch != part->partition_epoch)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_UPDATE_VERSION,
								"partition epoch %d of %s-%d is stale: it is %d",
								(int) req->partition_epoch, topic->name, (int) req->partition,
								(int) part->partition_epoch);
	if (req->nisr <= 0 || req->isr == NULL)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REQUEST,
								"the new ISR of %s-%d is empty", topic->name, (int) req->partition);
	for (int32_t i = 0; i < req->nisr; i++)
	{
		if (!SlMetaIntsContain(part->replicas, part->nreplicas, req->isr[i]))
			return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REQUEST,
									"node %d of the new ISR is not a replica of %s-%d",
									(int) req->isr[i], topic->name, (int) req->partition);
		if (SlMetaIntsContain(req->isr, i, req->isr[i]))
			return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REQUEST,
									"the new ISR of %s-%d names node %d twice",
									topic->name, (int) req->partition, (int) req->isr[i]);
	}
	if (!SlMetaIntsContain(req->isr, req->nisr, part->leader))
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REQUEST,
								"the new ISR of %s-%d leaves out its leader %d",
								topic->name, (int) req->partition, (int) part->leader);
	for (int32_t i = 0; i < req->nisr; i++)
		if (!SlControllerNodeUsable(SlMetaImageNode(image, req->isr[i])))
			return SlControllerFail(errbuf, errbuf_len, KAFKA_INELIGIBLE_REPLICA,
									"node %d cannot join the ISR of %s-%d: it is %s",
									(int) req->isr[i], topic->name, (int) req->partition,
									SlMetaImageNode(image, req->isr[i]) == NULL ? "not registered" :
									"fenced or shutting down");

	if (same_members(req->isr, req->nisr, part->isr, part->nisr))
		return 0;

	/*
	 * The new ISR, and what follows from it: a reassignment whose new
	 * replicas are now all in sync completes, and if that removes the
	 * leader, an ISR member of the target leads
	 */
	if (!SlPartitionTargetInit(&target, part) || req->nisr > SL_CTRL_MAX_TARGET)
		return SlControllerFail(errbuf, errbuf_len, KAFKA_INVALID_REQUEST,
								"%s-%d has more replicas than a partition may have",
								topic->name, (int) req->partition);
	memcpy(target.isr, req->isr, sizeof(int32_t) * (size_t) req->nisr);
	target.nisr = req->nisr;
	if (SlPartitionTargetCompleteReassignment(&target))
		SlPartitionTargetElect(&target, SlControllerImageNodeUsable, (void *) image);
	if (!SlPartitionTargetRecord(&target, topic->topic_id, part, out))
		return SlControllerFail(errbuf, errbuf_len, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
	return 0;
}
