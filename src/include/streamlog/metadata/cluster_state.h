/*
 * The cluster as this node sees it, in shared memory: published by the
 * Raft worker after each round (bgworkers/raft_worker.c), read by the
 * broker workers and SQL backends; and the queue through which they hand
 * requests to the Raft worker.
 *
 * Standalone (streamlog.controller_quorum_voters empty) there is no Raft
 * worker: the node is a cluster of one, its own controller, and every
 * reader below answers that without waiting.
 */
#ifndef SL_METADATA_CLUSTER_STATE_H
#define SL_METADATA_CLUSTER_STATE_H

#include "storage/lwlock.h"
#include "storage/condition_variable.h"

#include "streamlog/cluster/controller.h"
#include "streamlog/cluster/quorum.h"

#define SL_MAX_NODES 64
#define SL_CLUSTER_QUEUE_SLOTS 16
#define SL_CLUSTER_REQUEST_MAX (64 * 1024)	/* an encoded SlControllerRequest */

/* A node as the cluster view shows it (streamlog.nodes) */
typedef struct SlClusterNode
{
	int32		node_id;
	uint64		incarnation;
	char		kafka_host[256];
	int32		kafka_port;
	char		sql_conninfo[512];
	char		raft_address[128];
	char		rack[64];		/* "" if none */
	bool		fenced;
	bool		shutting_down;
	bool		voter;
	bool		observer;
	int64		last_heartbeat_ms;	/* unix ms when the controller last heard
									 * it; 0 when not known here */
} SlClusterNode;

typedef enum SlClusterSlotState
{
	SL_SLOT_FREE = 0,
	SL_SLOT_QUEUED,				/* filled by a backend, for the Raft worker */
	SL_SLOT_WORKING,			/* taken by the Raft worker */
	SL_SLOT_DONE				/* result filled in, for the backend */
} SlClusterSlotState;

typedef enum SlClusterSlotKind
{
	SL_SLOT_CONTROLLER_REQUEST = 1, /* request: an encoded SlControllerRequest */
	SL_SLOT_ADD_VOTER,			/* node_id (address from its registration) */
	SL_SLOT_ADD_OBSERVER,
	SL_SLOT_REMOVE_MEMBER,
	SL_SLOT_TRANSFER_LEADERSHIP /* node_id, 0 = any */
} SlClusterSlotKind;

typedef struct SlClusterSlot
{
	SlClusterSlotState state;
	SlClusterSlotKind kind;
	int			requester_procno;
	int32		node_id;
	int32		request_len;
	char		request[SL_CLUSTER_REQUEST_MAX];
	bool		abandoned;		/* its requester gave up waiting: the Raft
								 * worker frees it when done */
	/* result */
	int16		error_code;		/* Kafka error code, 0 = done */
	char		message[512];
	uint64		index;			/* Raft index that carried it out */
} SlClusterSlot;

/* Processes that may watch the catalog (SlClusterWatchCatalog) */
#define SL_CLUSTER_CATALOG_WATCHERS 32

typedef struct SlClusterShared
{
	LWLock		lock;			/* guards everything below but the slots'
								 * request bytes, owned by their state */
	ConditionVariable changed;	/* broadcast after each publish and result */
	bool		enabled;		/* the Raft worker runs (cluster mode) */
	int			raft_worker_procno; /* -1 when not running */
	uint64		generation;		/* bumped by each publish */
	int32		controller_id;	/* -1 unknown */
	uint64		controller_epoch;
	SlQuorumStatus raft;		/* as of the last publish */
	uint64		applied_index;	/* image applied in memory */
	uint64		catalog_synced_index;	/* image written to the catalog */
	char		cluster_id[64];
	uint64		incarnation;	/* this node's, random per start of its Raft
								 * worker */
	int64		started_ms;		/* when the Raft worker opened the quorum */
	char		refused[512];	/* why the Raft worker refused to start, "" if
								 * it did not (the node then runs alone) */
	int			nnodes;
	SlClusterNode nodes[SL_MAX_NODES];
	SlClusterSlot slots[SL_CLUSTER_QUEUE_SLOTS];
	/* processes whose latch is set when the catalog changes: procno + 1, 0 free */
	int			catalog_watchers[SL_CLUSTER_CATALOG_WATCHERS];
} SlClusterShared;

extern SlClusterShared *sl_cluster;

extern Size SlClusterShmemSize(void);
extern void SlClusterShmemInit(void);

/* Cluster mode: streamlog.controller_quorum_voters is set */
extern bool SlClusterEnabled(void);

/* Copy of the nodes (up to max); returns how many */
extern int	SlClusterGetNodes(SlClusterNode *out, int max);
/* One node; false if unknown */
extern bool SlClusterGetNode(int32 node_id, SlClusterNode *out);
/* Controller id (this node when standalone), -1 if none yet */
extern int32 SlClusterControllerId(void);

/*
 * Hand a request to the controller and wait until it is committed and
 * applied to this node's catalog: through the local Raft worker's queue
 * when this node is the controller, else over libpq to the controller's
 * streamlog._cluster_submit().  Retries on a controller change until
 * timeout_ms.  Returns a Kafka error code (0 done), *message palloc'd or
 * NULL.  Not for standalone nodes, which change their catalog directly.
 */
extern int16 SlClusterSubmit(const SlControllerRequest *req, int timeout_ms,
							 char **message);

/* Queue a slot of kind for the local Raft worker and wait for its result */
extern int16 SlClusterSubmitLocal(SlClusterSlotKind kind, int32 node_id,
								  const void *request, int32 request_len,
								  int timeout_ms, char **message, uint64 *index);

/*
 * This node's Raft address (streamlog.raft_listen_address, or its entry in
 * the voters), "" if it has none
 */
extern const char *SlClusterRaftAddress(void);
/*
 * How other nodes reach this node's SQL: streamlog.advertised_sql_conninfo
 * or host=<first of listen_addresses or 127.0.0.1> port=<port>
 * dbname=<streamlog.database>
 */
extern void SlClusterSqlConninfo(char *out, size_t size);
/* Why the Raft worker refused to start (palloc'd), NULL if it did not */
extern char *SlClusterRefusal(void);

/* Wait until this node's catalog has applied index; false at timeout */
extern bool SlClusterWaitSynced(uint64 index, int timeout_ms);

/*
 * Have this process's latch set each time the Raft worker writes a new
 * image to the catalog (until the process exits), for workers that act
 * on leaderships and would otherwise notice them only at their next poll;
 * false if every watcher slot is taken (then they poll as before)
 */
extern bool SlClusterWatchCatalog(void);

/* The Raft worker: set the latches of the catalog's watchers */
extern void SlClusterWakeCatalogWatchers(void);

/* The Raft index this node's catalog covers (0 before any) */
extern uint64 SlClusterCatalogIndex(void);

#endif							/* SL_METADATA_CLUSTER_STATE_H */
