/*
 * The controller's decisions (CLUSTER.md section 2), as pure functions of
 * the image: what records to propose for a request, and what liveness asks
 * for.  The Raft worker of the node whose committed CONTROLLER record names
 * it (P10: being Raft leader is not enough) calls them and proposes their
 * records; everything here is deterministic, so the unit tests drive it
 * with seeds.
 *
 * A decision holds for the image it was made on.  The controller decides
 * on an image that includes everything proposed before: it proposes one
 * batch at a time and decides the next once that one is applied (or
 * failed), as KRaft's controller decides on its state with the records in
 * flight already in it.  Applying refuses the decisions that went stale
 * anyway where it matters (a leadership given to a node fenced meanwhile,
 * a producer-id block handed out twice): the batch changes nothing and the
 * request fails, to be retried.
 */
#ifndef SL_CLUSTER_CONTROLLER_H
#define SL_CLUSTER_CONTROLLER_H

#include "streamlog/cluster/metadata_records.h"

/* What the doors ask the controller for (forwarded from any node) */
typedef enum SlControllerRequestType
{
	SL_CTRL_CREATE_TOPIC = 1,
	SL_CTRL_DELETE_TOPIC = 2,
	SL_CTRL_CREATE_PARTITIONS = 3,
	SL_CTRL_ALTER_TOPIC_CONFIG = 4,
	SL_CTRL_ELECT_LEADERS = 5,	/* preferred-leader election */
	SL_CTRL_ALLOCATE_PRODUCER_IDS = 6,
	SL_CTRL_UNREGISTER_NODE = 7,
	SL_CTRL_ALTER_PARTITION = 8,	/* a leader's ISR change (KIP-497) */
	SL_CTRL_REASSIGN_PARTITIONS = 9 /* move replicas (KIP-455) */
} SlControllerRequestType;

#define SL_CTRL_REQUEST_TYPE_MAX SL_CTRL_REASSIGN_PARTITIONS

/*
 * Kinds of leader election (Kafka's ElectionType): the preferred replica
 * if it is in sync and alive; or, for a partition without a leader, an
 * ISR member, else any live replica (unclean: alone in the ISR)
 */
#define SL_ELECTION_PREFERRED 0
#define SL_ELECTION_UNCLEAN 1

typedef struct SlControllerRequest
{
	SlControllerRequestType type;
	char	   *topic_name;		/* CREATE_TOPIC, DELETE_TOPIC,
								 * CREATE_PARTITIONS, ALTER_TOPIC_CONFIG */
	int32_t		partition_count;	/* CREATE_TOPIC: count; CREATE_PARTITIONS:
									 * the new total */
	int32_t		replication_factor; /* CREATE_TOPIC, CREATE_PARTITIONS; 1 today */
	char	   *config_json;	/* CREATE_TOPIC, ALTER_TOPIC_CONFIG: the whole
								 * explicit set, validated by the door */
	char	   *owner;			/* CREATE_TOPIC: role name */
	bool		internal;		/* CREATE_TOPIC of a "__" topic */
	int32_t		nassignments;	/* CREATE_TOPIC, CREATE_PARTITIONS: manual
								 * replica assignment of the new partitions,
								 * or 0 to let the controller spread them */
	int32_t	   *assignment_sizes;	/* [nassignments] replicas each */
	int32_t   **assignments;	/* [nassignments][size] node ids */
	int8_t		election_type;	/* ELECT_LEADERS: SL_ELECTION_PREFERRED or
								 * SL_ELECTION_UNCLEAN (Kafka's, KIP-460) */
	int32_t		npartitions;	/* ELECT_LEADERS, REASSIGN_PARTITIONS:
								 * (topic_id, partition) */
	int32_t    *election_topic_ids; /* pairs, or 0 = every partition */
	int32_t    *election_partitions;
	int32_t		node_id;		/* ALLOCATE_PRODUCER_IDS, UNREGISTER_NODE;
								 * ALTER_PARTITION: the leader asking */
	uint8_t		topic_uuid[16]; /* CREATE_TOPIC: chosen by the door (random) */

	/*
	 * ALTER_PARTITION: the partition, the epochs its leader knows, the ISR
	 * it asks for.  REASSIGN_PARTITIONS uses the pairs above, with the
	 * target replicas of pair i in assignments[i] (assignment_sizes[i]
	 * nodes; 0 cancels the partition's reassignment).
	 */
	int32_t		topic_id;
	int32_t		partition;
	int32_t		leader_epoch;
	int32_t		partition_epoch;
	int32_t		nisr;
	int32_t    *isr;
} SlControllerRequest;

/* Request encoding, for forwarding between nodes (hostile bytes) */
extern bool SlControllerRequestEncode(const SlControllerRequest *req, void **data, size_t *len);
extern bool SlControllerRequestDecode(SlControllerRequest *req, const void *data, size_t len);
extern void SlControllerRequestFree(SlControllerRequest *req);

/*
 * Records that carry out req on image, added to out; or a Kafka error code
 * (protocol/generated kafka error numbers: TOPIC_ALREADY_EXISTS,
 * UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR,
 * INVALID_REPLICA_ASSIGNMENT, BROKER_NOT_AVAILABLE...) with a message in
 * errbuf.  Returns 0 on success.
 *
 * ALTER_PARTITION is KRaft's AlterPartition with KIP-497's checks, in
 * Kafka's order: an unknown partition is UNKNOWN_TOPIC_OR_PARTITION;
 * epochs newer than the image's NOT_CONTROLLER (this controller is
 * behind); an asker that does not lead the partition INVALID_REQUEST; an
 * older leader epoch FENCED_LEADER_EPOCH; an older partition epoch
 * INVALID_UPDATE_VERSION; an ISR that is not a subset of the replicas
 * without duplicates, or leaves the leader out, INVALID_REQUEST; a member
 * that is not registered, fenced or shutting down INELIGIBLE_REPLICA.  An
 * accepted change that changes nothing adds no record.
 */
extern int16_t SlControllerHandleRequest(const SlMetaImage *image,
										 const SlControllerRequest *req,
										 SlMetaBatch *out,
										 char *errbuf, size_t errbuf_len);

/* A node's heartbeat as the controller last received it */
typedef struct SlHeartbeat
{
	SlMetaNode	node;			/* id, incarnation, endpoints, rack */
	int64_t		received_ms;	/* controller's clock */
	bool		want_shutdown;	/* controlled shutdown asked */

	/*
	 * The incarnation is gone for certain, not merely silent: after this
	 * heartbeat, a connection to its Raft address was refused (nothing
	 * listens there: its process is gone).  Such a node is fenced at once;
	 * silence alone waits for the session timeout.
	 */
	bool		gone;
} SlHeartbeat;

/*
 * Liveness, once per controller tick: register nodes heard from with a new
 * incarnation (refusing a second live claimant of a node id: it is not
 * registered while the registered incarnation still heartbeats), unfence
 * registered nodes that heartbeat, fence those silent for longer than
 * session_timeout_ms or known gone (SlHeartbeat.gone) at once, move leaderships off fenced and shutting-down nodes
 * (elect only from the ISR; with no other replica in the ISR the partition
 * goes offline, leader -1), and give back leaderships to nodes that
 * returned (a partition offline whose ISR member is back).
 *
 * heartbeats may hold several entries of one node id (a second claimant
 * besides the registered incarnation).  A registered node with no entry at
 * all is left as it is: a controller taking office knows no heartbeat yet,
 * so it starts with one entry per registered node of the image (node_id and
 * incarnation, received_ms = the time it took office), which gives every
 * node a fresh session as KRaft's BrokerHeartbeatManager does on
 * activation; a node that stays silent is then fenced a session later.
 * A new incarnation is registered and unfenced in one batch (fenced if it
 * asks to shut down).  All records of one tick are one batch.
 */
extern void SlControllerTick(const SlMetaImage *image,
							 const SlHeartbeat *heartbeats, int nheartbeats,
							 int64_t now_ms, int64_t session_timeout_ms,
							 SlMetaBatch *out);

/* Has a node's controlled shutdown finished (it leads nothing any more)? */
extern bool SlControllerShutdownDone(const SlMetaImage *image, int32_t node_id);

/*
 * Rack-aware spread of new partitions over the usable nodes (unfenced, not
 * shutting down), as Kafka's AdminUtils.assignReplicasToBrokers: a start
 * index and shift from seed (its low and high halves; seed 0 is Kafka's
 * fixed start 0), replicas of a partition on different racks when there
 * are enough (racks count only when every usable node has one).
 * assignment must hold count * replication_factor entries.  false if fewer
 * usable nodes than replication_factor.
 */
extern bool SlControllerAssign(const SlMetaImage *image, int32_t count,
							   int32_t replication_factor, int32_t first_partition,
							   uint64_t seed, int32_t *assignment);

#endif							/* SL_CLUSTER_CONTROLLER_H */
