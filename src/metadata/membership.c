/*-------------------------------------------------------------------------
 * membership.c
 *	  The metadata quorum's membership for the doors: its status, and
 *	  adding or removing a voter through the controller (membership.h).
 *
 * Changes go one at a time, as KIP-853 (and libraft) require: the
 * controller's Raft worker refuses a change while another is under way.
 * The checks here use this node's view and only spare the controller an
 * obviously wrong request; the controller's Raft worker decides.
 *
 * IDENTIFICATION
 *	  src/metadata/membership.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/lwlock.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_submit.h"
#include "streamlog/metadata/membership.h"

void
SlClusterGetQuorumStatus(SlQuorumStatus *status)
{
	memset(status, 0, sizeof(*status));
	if (!SlClusterEnabled())
	{
		status->node_id = sl_node_id;
		status->is_leader = true;
		status->leader_id = sl_node_id;
		status->nmembers = 1;
		status->members[0].node_id = sl_node_id;
		status->members[0].role = SL_QUORUM_VOTER;
		status->last_contact_ms[0] = 0;
		return;
	}
	LWLockAcquire(&sl_cluster->lock, LW_SHARED);
	*status = sl_cluster->raft;
	LWLockRelease(&sl_cluster->lock);
}

/* The member node_id of status, or NULL */
static const SlQuorumMember *
find_member(const SlQuorumStatus *status, int32 node_id)
{
	for (int i = 0; i < status->nmembers && i < lengthof(status->members); i++)
		if (status->members[i].node_id == node_id)
			return &status->members[i];
	return NULL;
}

int16
SlClusterChangeMembership(SlClusterSlotKind kind, int32 node_id, int timeout_ms,
						  char **message)
{
	SlQuorumStatus status;
	const SlQuorumMember *member;
	SlClusterNode node;
	uint64		index;

	*message = NULL;
	Assert(kind == SL_SLOT_ADD_VOTER || kind == SL_SLOT_REMOVE_MEMBER);
	if (!SlClusterEnabled())
	{
		*message = psprintf("node %d runs standalone: no metadata quorum is configured "
							"(streamlog.controller_quorum_voters is empty)", sl_node_id);
		return SL_CLUSTER_ERR_INVALID_REQUEST;
	}
	if (node_id <= 0)
	{
		*message = psprintf("invalid node id %d", node_id);
		return SL_CLUSTER_ERR_INVALID_REQUEST;
	}
	SlClusterGetQuorumStatus(&status);
	member = find_member(&status, node_id);
	if (kind == SL_SLOT_ADD_VOTER)
	{
		if (member != NULL && member->role == SL_QUORUM_VOTER)
		{
			*message = psprintf("node %d is already a voter", node_id);
			return SL_CLUSTER_ERR_DUPLICATE_VOTER;
		}
		if (!SlClusterGetNode(node_id, &node))
		{
			*message = psprintf("node %d is not registered: start it with the cluster's "
								"settings and wait until streamlog.nodes shows it", node_id);
			return SL_CLUSTER_ERR_INVALID_REQUEST;
		}
	}
	else if (member == NULL || member->role != SL_QUORUM_VOTER)
	{
		*message = psprintf("node %d is not a voter of the metadata quorum", node_id);
		return SL_CLUSTER_ERR_VOTER_NOT_FOUND;
	}
	return SlClusterSubmitToController(kind, node_id, NULL, 0, timeout_ms, message, &index);
}
