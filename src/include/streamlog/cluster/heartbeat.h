/*
 * Node heartbeats: the UDP datagrams every node of a cluster sends to the
 * Raft address of every voter, and the controller's answers (CLUSTER.md
 * section 2; Kafka's BrokerHeartbeat and BrokerRegistration in one).  Only
 * the controller acts on them: it registers, unfences and fences nodes from
 * what it heard (controller.h, SlControllerTick).
 *
 * A datagram is: magic "SLHB" (4 bytes), format version (u8), kind (u8),
 * then the kind's fields, integers big-endian, strings as u16 length and
 * bytes.  Decoding treats the bytes as hostile (anyone can send a
 * datagram): every length is checked, anything malformed or of another
 * version is refused as a whole.
 *
 * Pure code: no ereport, no palloc; strings are copied into the fixed
 * buffers below.
 */
#ifndef SL_CLUSTER_HEARTBEAT_H
#define SL_CLUSTER_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_HEARTBEAT_MAGIC "SLHB"
#define SL_HEARTBEAT_VERSION 1
/* Largest datagram either kind encodes to */
#define SL_HEARTBEAT_MAX_SIZE 1400

typedef enum SlHeartbeatKind
{
	SL_HB_HEARTBEAT = 1,		/* node -> voters */
	SL_HB_REPLY = 2				/* controller -> node */
} SlHeartbeatKind;

/* What a node says about itself */
typedef struct SlHeartbeatMsg
{
	char		cluster_id[64];
	int32_t		node_id;
	uint64_t	incarnation;	/* random per start of the node */
	bool		want_shutdown;	/* controlled shutdown asked */
	char		kafka_host[256];
	int32_t		kafka_port;
	char		sql_conninfo[512];
	char		raft_address[128];
	char		rack[64];		/* "" if none */
} SlHeartbeatMsg;

typedef enum SlHeartbeatStatus
{
	SL_HB_REGISTERED = 0,		/* registered with this incarnation */
	SL_HB_PENDING = 1,			/* heard; registration not committed yet */
	SL_HB_REFUSED = 2			/* refused; message says why */
} SlHeartbeatStatus;

/* The controller's answer to one heartbeat */
typedef struct SlHeartbeatReply
{
	char		cluster_id[64];
	int32_t		controller_id;
	int32_t		node_id;		/* whom it answers */
	uint64_t	incarnation;
	SlHeartbeatStatus status;
	char		message[256];
} SlHeartbeatReply;

/*
 * Encode into buf (of size SL_HEARTBEAT_MAX_SIZE at least); returns the
 * length, or 0 if a string does not fit its field.
 */
extern size_t SlHeartbeatEncode(const SlHeartbeatMsg *msg, uint8_t *buf, size_t size);
extern size_t SlHeartbeatReplyEncode(const SlHeartbeatReply *reply, uint8_t *buf, size_t size);

/*
 * Kind of a datagram (SL_HB_HEARTBEAT, SL_HB_REPLY), or 0 if it is not one
 * of ours in this format version
 */
extern int	SlHeartbeatKindOf(const uint8_t *data, size_t len);

/* Decode; false (out zeroed) on anything malformed */
extern bool SlHeartbeatDecode(const uint8_t *data, size_t len, SlHeartbeatMsg *msg);
extern bool SlHeartbeatReplyDecode(const uint8_t *data, size_t len, SlHeartbeatReply *reply);

#endif							/* SL_CLUSTER_HEARTBEAT_H */
