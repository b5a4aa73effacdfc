/*
 * The Raft membership of the metadata quorum as the doors see it
 * (metadata/membership.c): what DescribeQuorum and streamlog.add_voter /
 * remove_voter need, both Kafka's AddRaftVoter and RemoveRaftVoter
 * (KIP-853) and the SQL functions.
 */
#ifndef SL_METADATA_MEMBERSHIP_H
#define SL_METADATA_MEMBERSHIP_H

#include "streamlog/metadata/cluster_state.h"

/* Kafka error codes of membership changes (Kafka 3.9's Errors) */
#define SL_CLUSTER_ERR_DUPLICATE_VOTER 126
#define SL_CLUSTER_ERR_VOTER_NOT_FOUND 127

/*
 * The quorum as this node sees it.  Standalone: one voter, this node, its
 * own leader, at term 0.  In cluster mode, the status the Raft worker last
 * published (members' progress is known only on the leader).
 */
extern void SlClusterGetQuorumStatus(SlQuorumStatus *status);

/*
 * Add node_id as a voter (SL_SLOT_ADD_VOTER, at the Raft address of its
 * registration) or remove it from the quorum (SL_SLOT_REMOVE_MEMBER),
 * through the controller, one change at a time; refused when this node is
 * standalone or the change makes no sense in the view (DUPLICATE_VOTER,
 * VOTER_NOT_FOUND).  Returns a Kafka error code; *message palloc'd.
 */
extern int16 SlClusterChangeMembership(SlClusterSlotKind kind, int32 node_id,
									   int timeout_ms, char **message);

#endif							/* SL_METADATA_MEMBERSHIP_H */
