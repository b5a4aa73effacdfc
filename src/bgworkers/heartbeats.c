/*
 * Heartbeats of the nodes of a cluster (CLUSTER.md section 2; Kafka's
 * BrokerHeartbeat): every node sends a datagram (cluster/heartbeat.h) each
 * streamlog.broker_heartbeat_interval_ms from its Raft address to the Raft
 * address of every voter, UDP on the same port as Raft's TCP.  Every voter
 * keeps what it hears, one entry per (node, incarnation), so that a new
 * controller knows at once who is alive; the controller answers each, and
 * a node logs the answers that refuse it.  Every datagram is hostile until
 * it decodes and names this cluster.
 *
 * Death where it is certain: a node killed with kill -9 is not silent, its
 * ports refuse.  The controller probes each registered node whose heartbeat
 * is late (a TCP connect to its Raft address, where its Raft worker
 * listens while it lives); a connection refused after the last heartbeat
 * marks that incarnation gone, and the controller fences it at once.  A
 * paused node's kernel still accepts the connection, and a node cut off
 * by the network does not answer: both wait for the session timeout.
 */
#include "postgres.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "storage/fd.h"

#include "streamlog/guc.h"
#include "streamlog/cluster/heartbeat.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/server/listeners.h"
#include "streamlog/bgworkers/heartbeats.h"

#define MAX_HEARTBEATS SL_MAX_HEARD_HEARTBEATS

/*
 * A probe that neither connects nor is refused within this long (a node
 * cut off by the network) tells nothing; it is given up
 */
#define PROBE_TIMEOUT_MS 1000

/* A heartbeat as heard, and from where (for the answer) */
typedef struct HeardHeartbeat
{
	bool		used;
	SlHeartbeatMsg msg;
	int64		received_ms;
	struct sockaddr_storage from;
	socklen_t	fromlen;
	/* the probe of a late node (controller only) */
	pgsocket	probe_sock;		/* connect under way, or PGINVALID_SOCKET */
	int64		probe_started_ms;	/* of the last probe, 0 none yet */
	bool		gone;			/* refused after received_ms */
} HeardHeartbeat;

static pgsocket udp_sock = PGINVALID_SOCKET;
static struct sockaddr_storage voter_addrs[SL_MAX_QUORUM_VOTERS];
static socklen_t voter_addrlens[SL_MAX_QUORUM_VOTERS];
static int	nvoter_addrs = 0;
static SlHeartbeatMsg my_heartbeat;
static HeardHeartbeat heard[MAX_HEARTBEATS];
static char last_refusal_logged[256];
static int64 last_refusal_logged_ms = 0;

/* Split host:port (host may be [IPv6]); false if it is not that */
static bool
split_address(const char *address, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon = strrchr(address, ':');
	size_t		n;

	if (colon == NULL || colon == address)
		return false;
	n = colon - address;
	if (address[0] == '[' && n >= 2 && address[n - 1] == ']')
	{
		address++;
		n -= 2;
	}
	if (n >= hostlen || strlen(colon + 1) >= portlen)
		return false;
	memcpy(host, address, n);
	host[n] = '\0';
	strlcpy(port, colon + 1, portlen);
	return true;
}

static bool
resolve(const char *address, struct sockaddr_storage *addr, socklen_t *len)
{
	char		host[256];
	char		port[16];
	struct addrinfo hints;
	struct addrinfo *res = NULL;

	if (!split_address(address, host, sizeof(host), port, sizeof(port)))
		return false;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
		return false;
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return true;
}

pgsocket
SlHeartbeatsOpen(const char *address, char *why, size_t whylen)
{
	struct sockaddr_storage addr;
	socklen_t	len;
	const SlQuorumVoters *voters = SlQuorumVotersGet();

	if (!resolve(address, &addr, &len))
	{
		snprintf(why, whylen, "cannot resolve this node's Raft address \"%s\"", address);
		return PGINVALID_SOCKET;
	}
	udp_sock = socket(addr.ss_family, SOCK_DGRAM, 0);
	if (udp_sock == PGINVALID_SOCKET)
	{
		snprintf(why, whylen, "could not create the heartbeat socket: %m");
		return PGINVALID_SOCKET;
	}
	if (bind(udp_sock, (struct sockaddr *) &addr, len) != 0 || !pg_set_noblock(udp_sock))
	{
		snprintf(why, whylen, "could not bind the heartbeat socket to %s (UDP): %m", address);
		closesocket(udp_sock);
		udp_sock = PGINVALID_SOCKET;
		return PGINVALID_SOCKET;
	}
	ReserveExternalFD();

	for (int i = 0; i < voters->n; i++)
	{
		if (!resolve(voters->items[i].address, &voter_addrs[nvoter_addrs],
					 &voter_addrlens[nvoter_addrs]))
		{
			ereport(LOG,
					(errmsg("streamlog cannot resolve the Raft address \"%s\" of voter %d; no heartbeats go there",
							voters->items[i].address, voters->items[i].node_id)));
			continue;
		}
		nvoter_addrs++;
	}
	return udp_sock;
}

void
SlHeartbeatsDescribeSelf(const char *raft_address)
{
	memset(&my_heartbeat, 0, sizeof(my_heartbeat));
	strlcpy(my_heartbeat.cluster_id, sl_cluster_id, sizeof(my_heartbeat.cluster_id));
	my_heartbeat.node_id = sl_node_id;
	my_heartbeat.incarnation = sl_cluster->incarnation;
	PG_TRY();
	{
		SlListenersLoad();
		if (SlListenerCount() > 0)
		{
			strlcpy(my_heartbeat.kafka_host, SlListenerAt(0)->advertised_host,
					sizeof(my_heartbeat.kafka_host));
			my_heartbeat.kafka_port = SlListenerAt(0)->advertised_port;
		}
	}
	PG_CATCH();
	{
		/* The broker reports bad listener settings; heartbeats go on without */
		EmitErrorReport();
		FlushErrorState();
	}
	PG_END_TRY();
	SlClusterSqlConninfo(my_heartbeat.sql_conninfo, sizeof(my_heartbeat.sql_conninfo));
	strlcpy(my_heartbeat.raft_address, raft_address, sizeof(my_heartbeat.raft_address));
	strlcpy(my_heartbeat.rack, sl_broker_rack ? sl_broker_rack : "", sizeof(my_heartbeat.rack));
}

void
SlHeartbeatsSend(bool want_shutdown)
{
	uint8		buf[SL_HEARTBEAT_MAX_SIZE];
	size_t		len;

	my_heartbeat.want_shutdown = want_shutdown;
	len = SlHeartbeatEncode(&my_heartbeat, buf, sizeof(buf));
	if (len == 0)
		return;
	for (int i = 0; i < nvoter_addrs; i++)
		(void) sendto(udp_sock, buf, len, 0, (struct sockaddr *) &voter_addrs[i], voter_addrlens[i]);
}

/* Forget an entry, closing its probe */
static void
drop_entry(HeardHeartbeat *e)
{
	if (e->used && e->probe_sock != PGINVALID_SOCKET)
	{
		closesocket(e->probe_sock);
		ReleaseExternalFD();
	}
	e->probe_sock = PGINVALID_SOCKET;
	e->used = false;
}

/* Keep a heartbeat heard: one entry per (node, incarnation) */
static HeardHeartbeat *
keep_heartbeat(const SlHeartbeatMsg *msg, int64 at)
{
	HeardHeartbeat *free_entry = NULL;
	HeardHeartbeat *oldest = NULL;
	HeardHeartbeat *e;

	for (int i = 0; i < MAX_HEARTBEATS; i++)
	{
		e = &heard[i];
		if (!e->used)
		{
			if (free_entry == NULL)
				free_entry = e;
			continue;
		}
		if (e->msg.node_id == msg->node_id && e->msg.incarnation == msg->incarnation)
		{
			e->msg = *msg;
			e->received_ms = Max(e->received_ms, at);
			/* it speaks: whatever refused a probe was not this incarnation */
			e->gone = false;
			return e;
		}
		if (oldest == NULL || e->received_ms < oldest->received_ms)
			oldest = e;
	}
	e = free_entry ? free_entry : oldest;
	drop_entry(e);
	memset(e, 0, sizeof(*e));
	e->probe_sock = PGINVALID_SOCKET;
	e->used = true;
	e->msg = *msg;
	e->received_ms = at;
	return e;
}

/* The newest heartbeat heard of node (any incarnation), NULL if none */
static HeardHeartbeat *
newest_heartbeat(int32 node_id, uint64 incarnation, bool any_incarnation)
{
	HeardHeartbeat *best = NULL;

	for (int i = 0; i < MAX_HEARTBEATS; i++)
	{
		HeardHeartbeat *e = &heard[i];

		if (e->used && e->msg.node_id == node_id &&
			(any_incarnation || e->msg.incarnation == incarnation) &&
			(best == NULL || e->received_ms > best->received_ms))
			best = e;
	}
	return best;
}

/*
 * A node back with a new incarnation after a controlled shutdown: the old
 * incarnation said it was going and the controller let it go, so its
 * session is over (as Kafka fences a broker whose controlled shutdown is
 * done) and the new one registers at once, not a session timeout later.
 */
static void
forget_shut_down_incarnations(const SlHeartbeatMsg *msg, const SlMetaImage *image)
{
	if (!SlControllerShutdownDone(image, msg->node_id))
		return;
	for (int i = 0; i < MAX_HEARTBEATS; i++)
	{
		HeardHeartbeat *e = &heard[i];

		if (e->used && e->msg.node_id == msg->node_id &&
			e->msg.incarnation != msg->incarnation && e->msg.want_shutdown)
			drop_entry(e);
	}
}

/* The controller's answer to a heartbeat */
static void
answer_heartbeat(const HeardHeartbeat *e, const SlMetaImage *image, int64 now)
{
	SlHeartbeatReply reply;
	const SlMetaNode *node = SlMetaImageNode(image, e->msg.node_id);
	uint8		buf[SL_HEARTBEAT_MAX_SIZE];
	size_t		len;

	memset(&reply, 0, sizeof(reply));
	strlcpy(reply.cluster_id, sl_cluster_id, sizeof(reply.cluster_id));
	reply.controller_id = sl_node_id;
	reply.node_id = e->msg.node_id;
	reply.incarnation = e->msg.incarnation;
	reply.status = SL_HB_PENDING;
	if (node && node->incarnation == e->msg.incarnation)
	{
		reply.status = SL_HB_REGISTERED;
		snprintf(reply.message, sizeof(reply.message), "%s",
				 node->fenced ? "registered, fenced" : "registered");
	}
	else if (node && !node->fenced)
	{
		HeardHeartbeat *other = newest_heartbeat(node->node_id, node->incarnation, false);

		if (other && now - other->received_ms <= sl_broker_session_timeout_ms)
		{
			reply.status = SL_HB_REFUSED;
			snprintf(reply.message, sizeof(reply.message),
					 "node id %d is alive with another incarnation (heard from %s): "
					 "give this node another streamlog.node_id",
					 node->node_id, node->raft_address ? node->raft_address : "?");
		}
	}
	len = SlHeartbeatReplyEncode(&reply, buf, sizeof(buf));
	if (len > 0 && e->fromlen > 0)
		(void) sendto(udp_sock, buf, len, 0, (const struct sockaddr *) &e->from, e->fromlen);
}

/* A reply to our heartbeat: log it when it refuses us */
static void
take_reply(const SlHeartbeatReply *reply, int64 now)
{
	if (reply->node_id != sl_node_id || reply->incarnation != my_heartbeat.incarnation)
		return;
	if (reply->status == SL_HB_REGISTERED)
		last_refusal_logged[0] = '\0';
	if (reply->status != SL_HB_REFUSED)
		return;
	/* Once per message, then every 30 s while it lasts */
	if (strcmp(last_refusal_logged, reply->message) != 0 ||
		now - last_refusal_logged_ms >= 30000)
	{
		ereport(LOG,
				(errmsg("streamlog controller %d refuses this node: %s",
						reply->controller_id, reply->message)));
		strlcpy(last_refusal_logged, reply->message, sizeof(last_refusal_logged));
		last_refusal_logged_ms = now;
	}
}

void
SlHeartbeatsReceive(bool controller, const SlMetaImage *image, int64 now)
{
	for (int n = 0; n < 1000; n++)
	{
		uint8		buf[SL_HEARTBEAT_MAX_SIZE + 1];
		struct sockaddr_storage from;
		socklen_t	fromlen = sizeof(from);
		ssize_t		len = recvfrom(udp_sock, buf, sizeof(buf), 0,
								   (struct sockaddr *) &from, &fromlen);

		if (len < 0)
			break;
		switch (SlHeartbeatKindOf(buf, len))
		{
			case SL_HB_HEARTBEAT:
				{
					SlHeartbeatMsg msg;
					HeardHeartbeat *e;

					if (!SlHeartbeatDecode(buf, len, &msg) ||
						strcmp(msg.cluster_id, sl_cluster_id) != 0)
					{
						elog(DEBUG1, "streamlog dropped a heartbeat of %zd bytes that is malformed or of another cluster",
							 len);
						break;
					}
					e = keep_heartbeat(&msg, now);
					forget_shut_down_incarnations(&msg, image);
					memcpy(&e->from, &from, fromlen);
					e->fromlen = fromlen;
					if (controller)
						answer_heartbeat(e, image, now);
					break;
				}
			case SL_HB_REPLY:
				{
					SlHeartbeatReply reply;

					if (SlHeartbeatReplyDecode(buf, len, &reply) &&
						strcmp(reply.cluster_id, sl_cluster_id) == 0)
						take_reply(&reply, now);
					break;
				}
			default:
				elog(DEBUG1, "streamlog dropped a datagram of %zd bytes that is not a heartbeat", len);
				break;
		}
	}
}

void
SlHeartbeatsTouchRegistered(const SlMetaImage *image, int64 now)
{
	for (int i = 0; i < image->nnodes; i++)
	{
		const SlMetaNode *node = &image->nodes[i];
		SlHeartbeatMsg msg;

		if (node->fenced || newest_heartbeat(node->node_id, node->incarnation, false) != NULL)
			continue;
		memset(&msg, 0, sizeof(msg));
		strlcpy(msg.cluster_id, sl_cluster_id, sizeof(msg.cluster_id));
		msg.node_id = node->node_id;
		msg.incarnation = node->incarnation;
		strlcpy(msg.kafka_host, node->kafka_host ? node->kafka_host : "", sizeof(msg.kafka_host));
		msg.kafka_port = node->kafka_port;
		strlcpy(msg.sql_conninfo, node->sql_conninfo ? node->sql_conninfo : "", sizeof(msg.sql_conninfo));
		strlcpy(msg.raft_address, node->raft_address ? node->raft_address : "", sizeof(msg.raft_address));
		strlcpy(msg.rack, node->rack ? node->rack : "", sizeof(msg.rack));
		(void) keep_heartbeat(&msg, now);
	}
}

void
SlHeartbeatsExpire(int64 now)
{
	int64		horizon = now - 10 * (int64) sl_broker_session_timeout_ms;

	for (int i = 0; i < MAX_HEARTBEATS; i++)
		if (heard[i].used && heard[i].received_ms < horizon)
			drop_entry(&heard[i]);
}

int
SlHeartbeatsCollect(SlHeartbeat *out, int max)
{
	int			n = 0;

	for (int i = 0; i < MAX_HEARTBEATS && n < max; i++)
	{
		HeardHeartbeat *e = &heard[i];
		SlHeartbeat *h;

		if (!e->used)
			continue;
		h = &out[n++];
		memset(h, 0, sizeof(*h));
		h->node.node_id = e->msg.node_id;
		h->node.incarnation = e->msg.incarnation;
		h->node.kafka_host = e->msg.kafka_host;
		h->node.kafka_port = e->msg.kafka_port;
		h->node.sql_conninfo = e->msg.sql_conninfo;
		h->node.raft_address = e->msg.raft_address;
		h->node.rack = e->msg.rack[0] ? e->msg.rack : NULL;
		h->received_ms = e->received_ms;
		h->want_shutdown = e->msg.want_shutdown;
		h->gone = e->gone;
	}
	return n;
}

int64
SlHeartbeatsLastHeard(int32 node_id, uint64 incarnation)
{
	HeardHeartbeat *e = newest_heartbeat(node_id, incarnation, false);

	return e ? e->received_ms : 0;
}

/* A probe's end: gone if refused with no heartbeat heard since it began */
static bool
finish_probe(HeardHeartbeat *e, int error)
{
	bool		found_gone = false;

	closesocket(e->probe_sock);
	ReleaseExternalFD();
	e->probe_sock = PGINVALID_SOCKET;
	if (error == ECONNREFUSED && e->received_ms <= e->probe_started_ms)
	{
		e->gone = true;
		found_gone = true;
	}
	return found_gone;
}

/* Begin a connect to the Raft address of e; true if the node was found gone already */
static bool
start_probe(HeardHeartbeat *e, int64 now)
{
	struct sockaddr_storage addr;
	socklen_t	len;
	pgsocket	sock;

	e->probe_started_ms = now;
	if (!resolve(e->msg.raft_address, &addr, &len) || !AcquireExternalFD())
		return false;
	sock = socket(addr.ss_family, SOCK_STREAM, 0);
	if (sock == PGINVALID_SOCKET)
	{
		ReleaseExternalFD();
		return false;
	}
	e->probe_sock = sock;
	if (!pg_set_noblock(sock))
		return finish_probe(e, 0);
	if (connect(sock, (struct sockaddr *) &addr, len) == 0)
		return finish_probe(e, 0);
	if (errno == EINPROGRESS || errno == EINTR)
		return false;			/* SlHeartbeatsProbe polls it */
	return finish_probe(e, errno);
}

bool
SlHeartbeatsProbe(const SlMetaImage *image, int64 now, int32 only_node)
{
	int64		late_ms = sl_broker_heartbeat_interval_ms + sl_broker_heartbeat_interval_ms / 4;
	bool		found_gone = false;

	for (int i = 0; i < MAX_HEARTBEATS; i++)
	{
		HeardHeartbeat *e = &heard[i];
		const SlMetaNode *node;

		if (!e->used)
			continue;
		if (e->probe_sock != PGINVALID_SOCKET)
		{
			struct pollfd pfd;

			pfd.fd = e->probe_sock;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			if (poll(&pfd, 1, 0) > 0)
			{
				int			error = 0;
				socklen_t	errlen = sizeof(error);

				if (getsockopt(e->probe_sock, SOL_SOCKET, SO_ERROR, &error, &errlen) != 0)
					error = errno;
				found_gone |= finish_probe(e, error);
			}
			else if (now - e->probe_started_ms >= PROBE_TIMEOUT_MS)
				(void) finish_probe(e, 0);
			continue;
		}

		/*
		 * Only the registered, unfenced incarnation of another node matters:
		 * a late one is probed, once per heartbeat interval
		 */
		if (e->gone || e->msg.node_id == sl_node_id ||
			(only_node >= 0 && e->msg.node_id != only_node) ||
			now - e->received_ms <= late_ms ||
			now - e->probe_started_ms < sl_broker_heartbeat_interval_ms)
			continue;
		node = SlMetaImageNode(image, e->msg.node_id);
		if (node == NULL || node->fenced || node->incarnation != e->msg.incarnation ||
			e->msg.raft_address[0] == '\0')
			continue;
		found_gone |= start_probe(e, now);
	}
	return found_gone;
}

bool
SlHeartbeatsProbing(void)
{
	for (int i = 0; i < MAX_HEARTBEATS; i++)
		if (heard[i].used && heard[i].probe_sock != PGINVALID_SOCKET)
			return true;
	return false;
}

bool
SlHeartbeatsGone(int32 node_id, uint64 incarnation)
{
	HeardHeartbeat *e = newest_heartbeat(node_id, incarnation, false);

	return e != NULL && e->gone;
}
