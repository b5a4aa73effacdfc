/*
 * Handing work to the controller from any node (metadata/cluster_submit.c):
 * through the local Raft worker's queue when this node is the controller,
 * else over libpq to the controller's SQL entry points,
 * streamlog._cluster_submit() for controller requests and
 * streamlog._cluster_membership() for changes of the Raft membership.
 * SlClusterSubmit (cluster_state.h) is the controller-request case of it,
 * waited on until this node's catalog applied the result.
 */
#ifndef SL_METADATA_CLUSTER_SUBMIT_H
#define SL_METADATA_CLUSTER_SUBMIT_H

#include "streamlog/metadata/cluster_state.h"

/* Kafka error codes the forwarding answers with itself */
#define SL_CLUSTER_ERR_UNKNOWN_SERVER_ERROR (-1)
#define SL_CLUSTER_ERR_REQUEST_TIMED_OUT 7
#define SL_CLUSTER_ERR_TOPIC_ALREADY_EXISTS 36
#define SL_CLUSTER_ERR_NOT_CONTROLLER 41
#define SL_CLUSTER_ERR_INVALID_REQUEST 42

/* The default bound of a forwarded request, as Kafka's request.timeout.ms */
#define SL_CLUSTER_SUBMIT_TIMEOUT_MS 30000

/*
 * Hand a slot's work (kind, node_id, request bytes) to whichever node is the
 * controller, retrying against a new controller when the one tried refuses
 * (NOT_CONTROLLER) or cannot be reached, until timeout_ms.  Returns a Kafka
 * error code (0: done, *index the Raft index that carried it out);
 * *message palloc'd or NULL.  Does not wait for this node's catalog.
 */
extern int16 SlClusterSubmitToController(SlClusterSlotKind kind, int32 node_id,
										 const void *request, int32 request_len,
										 int timeout_ms, char **message,
										 uint64 *index);

/*
 * The name of a membership change on the wire between nodes
 * ("add_voter", "add_observer", "remove", "transfer_leadership"), and
 * back; false for anything else.
 */
extern const char *SlClusterMembershipActionName(SlClusterSlotKind kind);
extern bool SlClusterMembershipActionFromName(const char *name, SlClusterSlotKind *kind);

/*
 * The quorum as its Raft leader leader_id sees it (the members' progress is
 * known only there), read over libpq from its streamlog.raft_status and
 * raft_members, as Kafka's brokers forward DescribeQuorum to the active
 * controller.  false (status untouched) if it cannot be had in timeout_ms.
 */
extern bool SlClusterLeaderQuorumStatus(int32 leader_id, SlQuorumStatus *status,
										int timeout_ms);

/* Drop the cached connection to the controller, if any */
extern void SlClusterForwardingDisconnect(void);

#endif							/* SL_METADATA_CLUSTER_SUBMIT_H */
