/*
 * Heartbeats of the nodes of a cluster (bgworkers/heartbeats.c), for the
 * Raft worker: a UDP socket on this node's Raft address, what this node
 * says of itself, and what it heard from the others.
 */
#ifndef SL_BGWORKERS_HEARTBEATS_H
#define SL_BGWORKERS_HEARTBEATS_H

#include "postgres.h"

#include "streamlog/cluster/controller.h"
#include "streamlog/cluster/metadata_image.h"
#include "streamlog/metadata/cluster_state.h"

/* Heartbeats kept per (node, incarnation): twice the nodes there can be */
#define SL_MAX_HEARD_HEARTBEATS (2 * SL_MAX_NODES)

/*
 * Bind the heartbeat socket (UDP, non-blocking) to this node's Raft
 * address and resolve the voters' addresses; PGINVALID_SOCKET and why on
 * failure
 */
extern pgsocket SlHeartbeatsOpen(const char *raft_address, char *why, size_t whylen);

/* What this node says of itself (again after a reload) */
extern void SlHeartbeatsDescribeSelf(const char *raft_address);

/* Send this node's heartbeat to every voter */
extern void SlHeartbeatsSend(bool want_shutdown);

/*
 * Read every datagram waiting: heartbeats are kept (and answered when this
 * node is the controller), answers that refuse this node are logged;
 * anything malformed or of another cluster is dropped
 */
extern void SlHeartbeatsReceive(bool controller, const SlMetaImage *image, int64 now);

/*
 * A controller taking office counts every unfenced registered node as heard
 * now (as Kafka's controller does on activation), so that it does not
 * fence at once the nodes it has not heard from yet
 */
extern void SlHeartbeatsTouchRegistered(const SlMetaImage *image, int64 now);

/* Forget heartbeats far older than the session timeout */
extern void SlHeartbeatsExpire(int64 now);

/* The heartbeats heard, for SlControllerTick (strings valid until the next receive) */
extern int	SlHeartbeatsCollect(SlHeartbeat *out, int max);

/*
 * The controller's probes of late nodes (cluster/controller.h,
 * SlHeartbeat.gone): every registered, unfenced node whose heartbeat is
 * late by a quarter of an interval is probed, with a TCP connect to its
 * Raft address, once per interval; probes under way are polled.  True if
 * a node was found gone in this call (its connect refused).  only_node
 * restricts the new probes to one node (a follower watching its Raft
 * leader), -1 probes every late node (the controller).
 */
extern bool SlHeartbeatsProbe(const SlMetaImage *image, int64 now, int32 only_node);

/* Is a probe under way (to be polled again soon)? */
extern bool SlHeartbeatsProbing(void);

/* Was a node's incarnation found gone (its Raft address refused)? */
extern bool SlHeartbeatsGone(int32 node_id, uint64 incarnation);

/* When a node's incarnation was last heard (unix ms), 0 if never */
extern int64 SlHeartbeatsLastHeard(int32 node_id, uint64 incarnation);

#endif							/* SL_BGWORKERS_HEARTBEATS_H */
