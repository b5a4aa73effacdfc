/*-------------------------------------------------------------------------
 * partition_change_builder.c
 *	  A partition's next state, as the controller decides it, and the
 *	  PARTITION_CHANGE record that gets it there (SlPartitionTarget, as
 *	  KRaft's PartitionChangeBuilder).
 *
 * The decisions that change a partition (an AlterPartition, a
 * reassignment, a tick that fences a node) set what they change; the rules
 * every change obeys follow here, so that each decision keeps them the
 * same way: a reassignment completes as soon as its adding replicas are
 * in the ISR (KIP-455), and a leader left outside the ISR or the replicas
 * gives way to the first usable ISR member in replica order.
 *
 * IDENTIFICATION
 *	  src/cluster/partition_change_builder.c
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "streamlog/cluster/controller.h"
#include "streamlog/cluster/internal/controller_parts.h"
#include "streamlog/cluster/internal/metadata_parts.h"

bool
SlPartitionTargetInit(SlPartitionTarget *t, const SlMetaPartition *part)
{
	memset(t, 0, sizeof(*t));
	if (part->nreplicas > SL_CTRL_MAX_TARGET || part->nisr > SL_CTRL_MAX_TARGET ||
		part->nadding > SL_CTRL_MAX_TARGET || part->nremoving > SL_CTRL_MAX_TARGET ||
		part->nreplicas < 0 || part->nisr < 0 || part->nadding < 0 || part->nremoving < 0)
		return false;
	t->nreplicas = part->nreplicas;
	if (part->nreplicas > 0)
		memcpy(t->replicas, part->replicas, sizeof(int32_t) * (size_t) part->nreplicas);
	t->nisr = part->nisr;
	if (part->nisr > 0)
		memcpy(t->isr, part->isr, sizeof(int32_t) * (size_t) part->nisr);
	t->nadding = part->nadding;
	if (part->nadding > 0)
		memcpy(t->adding, part->adding, sizeof(int32_t) * (size_t) part->nadding);
	t->nremoving = part->nremoving;
	if (part->nremoving > 0)
		memcpy(t->removing, part->removing, sizeof(int32_t) * (size_t) part->nremoving);
	t->leader = part->leader;
	return true;
}

/* Remove from ids[0..*n) every id in drop[0..ndrop), keeping the order */
static void
remove_ids(int32_t *ids, int32_t *n, const int32_t *drop, int32_t ndrop)
{
	int32_t		kept = 0;

	for (int32_t i = 0; i < *n; i++)
		if (!SlMetaIntsContain(drop, ndrop, ids[i]))
			ids[kept++] = ids[i];
	*n = kept;
}

bool
SlPartitionTargetCompleteReassignment(SlPartitionTarget *t)
{
	int32_t		isr[SL_CTRL_MAX_TARGET];
	int32_t		nisr = t->nisr;

	if (t->nadding == 0 && t->nremoving == 0)
		return false;
	memcpy(isr, t->isr, sizeof(int32_t) * (size_t) nisr);
	remove_ids(isr, &nisr, t->removing, t->nremoving);
	if (nisr == 0)
		return false;
	for (int32_t i = 0; i < t->nadding; i++)
		if (!SlMetaIntsContain(isr, nisr, t->adding[i]))
			return false;
	memcpy(t->isr, isr, sizeof(int32_t) * (size_t) nisr);
	t->nisr = nisr;
	remove_ids(t->replicas, &t->nreplicas, t->removing, t->nremoving);
	t->nadding = 0;
	t->nremoving = 0;
	return true;
}

void
SlPartitionTargetElect(SlPartitionTarget *t, SlNodeUsableFn usable, void *arg)
{
	if (t->leader != SL_META_NO_LEADER &&
		SlMetaIntsContain(t->isr, t->nisr, t->leader) &&
		SlMetaIntsContain(t->replicas, t->nreplicas, t->leader) &&
		usable(arg, t->leader))
		return;
	t->leader = SL_META_NO_LEADER;
	for (int32_t r = 0; r < t->nreplicas; r++)
		if (SlMetaIntsContain(t->isr, t->nisr, t->replicas[r]) && usable(arg, t->replicas[r]))
		{
			t->leader = t->replicas[r];
			return;
		}
}

/* Do a and b hold the same ids in the same order? */
static bool
same_list(const int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, sizeof(int32_t) * (size_t) na) == 0);
}

/* Do a and b hold the same ids in any order (each without duplicates)? */
static bool
same_set(const int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
	if (na != nb)
		return false;
	for (int32_t i = 0; i < na; i++)
		if (!SlMetaIntsContain(b, nb, a[i]))
			return false;
	return true;
}

bool
SlPartitionTargetRecord(const SlPartitionTarget *t, int32_t topic_id,
						const SlMetaPartition *part, SlMetaBatch *out)
{
	SlMetaRecord rec = SlControllerNewRecord(SL_META_PARTITION_CHANGE);
	bool		changed = false;

	rec.topic_id = topic_id;
	rec.partition.partition = part->partition;
	if (t->leader != part->leader)
	{
		rec.partition.leader = t->leader;
		changed = true;
	}
	if (!same_set(t->isr, t->nisr, part->isr, part->nisr))
	{
		rec.partition.isr = (int32_t *) t->isr;
		rec.partition.nisr = t->nisr;
		changed = true;
	}
	if (!same_list(t->replicas, t->nreplicas, part->replicas, part->nreplicas))
	{
		rec.partition.replicas = (int32_t *) t->replicas;
		rec.partition.nreplicas = t->nreplicas;
		changed = true;
	}
	if (!same_list(t->adding, t->nadding, part->adding, part->nadding) ||
		!same_list(t->removing, t->nremoving, part->removing, part->nremoving))
	{
		rec.partition.adding = (int32_t *) t->adding;
		rec.partition.nadding = t->nadding;
		rec.partition.removing = (int32_t *) t->removing;
		rec.partition.nremoving = t->nremoving;
		changed = true;
	}
	return !changed || SlMetaBatchAdd(out, &rec);
}

bool
SlControllerImageNodeUsable(void *arg, int32_t node_id)
{
	return SlControllerNodeUsable(SlMetaImageNode((const SlMetaImage *) arg, node_id));
}
