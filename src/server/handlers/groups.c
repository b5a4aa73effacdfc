/*-------------------------------------------------------------------------
 * groups.c
 *	  Kafka consumer-group membership APIs: FindCoordinator (10, v0-6),
 *	  JoinGroup (11, v0-9), Heartbeat (12, v0-4), LeaveGroup (13, v0-5),
 *	  SyncGroup (14, v0-5), DescribeGroups (15, v0-5), ListGroups (16,
 *	  v0-5) and DeleteGroups (42, v0-2).  The state machine is the group
 *	  coordinator (server/groups/); this file decodes, checks the wire
 *	  values and encodes.
 *
 * Version notes.  FindCoordinator v4+ batches keys; key type 1
 * (transactions) gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which every
 * client takes as final (librdkafka shows the error message), and other
 * key types INVALID_REQUEST: a retriable error would make a transactional
 * producer wait for a coordinator that never comes.  JoinGroup v4+ answers a member without an id with
 * MEMBER_ID_REQUIRED and the id to rejoin with (KIP-394); v5+ carries
 * group.instance.id (static membership, KIP-345); v7+ returns the protocol
 * type; v9 says when a static leader rejoined without a rebalance
 * (SkipAssignment).  LeaveGroup v3+ removes a batch of members.  SyncGroup
 * v5+ checks the protocol type and name.  ListGroups v4+ filters by state,
 * v5+ by type (every group here is "classic").
 *
 * JoinGroup and SyncGroup requests that wait (for the other members to
 * rejoin, for the leader's assignment) are parked; a parked JoinGroup
 * remembers the member id it was given in a note that lives in the
 * request's memory context.
 *
 * Authorization, as Kafka's: FindCoordinator and DescribeGroups take
 * DESCRIBE on the group, JoinGroup, SyncGroup, Heartbeat and LeaveGroup
 * READ, DeleteGroups DELETE (GROUP_AUTHORIZATION_FAILED); ListGroups lists
 * every group to a role with DESCRIBE on the cluster, else those it may
 * DESCRIBE.
 *
 * IDENTIFICATION
 *	  src/server/handlers/groups.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/ilist.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/group_placement.h"
#include "streamlog/server/authorize.h"
#include "streamlog/server/group_coordinator.h"
#include "streamlog/server/group_metadata.h"
#include "streamlog/server/handlers.h"
#include "streamlog/server/kafka_errors.h"
#include "streamlog/server/subtransaction.h"
#include "streamlog/server/txn/coordinator.h"
#include "streamlog/server/txn/coordinator_cluster.h"
#include "streamlog/storage/txn_state.h"

#define KEY_TYPE_GROUP 0
#define KEY_TYPE_TRANSACTION 1

/* The operations Kafka defines for a group: READ, DELETE, DESCRIBE */
static const SlAclOperation group_operations[] = {SL_ACL_READ, SL_ACL_DELETE, SL_ACL_DESCRIBE};

/* Kafka's authorized operations of a group for the role (KIP-430) */
static int32
group_authorized_operations(const char *group_id)
{
	int32		bits = 0;

	for (int i = 0; i < lengthof(group_operations); i++)
		if (SlMayGroup(group_id, group_operations[i]))
			bits |= 1 << group_operations[i];
	return bits;
}

/* Shortest wait of a parked request */
#define MIN_PARK_MS 10

char *
SlGroupIdFromWire(SlStr id)
{
	if (id.len <= 0 || id.len >= SL_GROUP_ID_LEN ||
		memchr(id.data, '\0', id.len) != NULL ||
		!pg_verifymbstr(id.data, id.len, true))
		return NULL;
	return pnstrdup(id.data, id.len);
}

/*
 * A member or instance id from the wire, as a C string: "" for null or
 * empty; NULL if it cannot be one of ours (too long, NUL bytes).
 */
static char *
member_id_from_wire(SlStr id)
{
	if (id.len <= 0)
		return pstrdup("");
	if (id.len >= SL_GROUP_ID_LEN || memchr(id.data, '\0', id.len) != NULL)
		return NULL;
	return pnstrdup(id.data, id.len);
}

/* A group.instance.id: NULL for null; *bad if not usable */
static char *
instance_id_from_wire(SlStr id, bool *bad)
{
	*bad = false;
	if (SlStrIsNull(id))
		return NULL;
	if (id.len == 0 || id.len >= SL_GROUP_ID_LEN || memchr(id.data, '\0', id.len) != NULL)
	{
		*bad = true;
		return NULL;
	}
	return pnstrdup(id.data, id.len);
}

static SlStr
str_or_empty(const char *s)
{
	return SlStrFromCString(s ? s : "");
}

/* "/host" of a peer "host:port", as Kafka shows client hosts */
static char *
request_client_host(const SlRequest *req)
{
	const char *peer = req->peer ? req->peer : "";
	const char *colon = strrchr(peer, ':');

	return psprintf("/%.*s", colon ? (int) (colon - peer) : (int) strlen(peer), peer);
}

static void
park(SlRequest *req, TimestampTz deadline)
{
	TimestampTz soonest = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), MIN_PARK_MS);

	req->state = SL_REQUEST_PARKED;
	req->deadline = Max(deadline, soonest);
}

/* Member ids of parked JoinGroups, freed with their requests */

typedef struct JoinNote
{
	dlist_node	node;
	SlRequest  *req;
	char	   *member_id;
	MemoryContextCallback callback;
} JoinNote;

static dlist_head join_notes = DLIST_STATIC_INIT(join_notes);

static void
join_note_forget(void *arg)
{
	JoinNote   *note = arg;

	dlist_delete(&note->node);
}

static JoinNote *
join_note_find(SlRequest *req)
{
	dlist_iter	iter;

	dlist_foreach(iter, &join_notes)
	{
		JoinNote   *note = dlist_container(JoinNote, node, iter.cur);

		if (note->req == req)
			return note;
	}
	return NULL;
}

static void
join_note_remember(SlRequest *req, const char *member_id)
{
	JoinNote   *note = join_note_find(req);

	if (note == NULL)
	{
		note = MemoryContextAllocZero(req->context, sizeof(JoinNote));
		note->req = req;
		note->callback.func = join_note_forget;
		note->callback.arg = note;
		MemoryContextRegisterResetCallback(req->context, &note->callback);
		dlist_push_tail(&join_notes, &note->node);
	}
	note->member_id = MemoryContextStrdup(req->context, member_id);
}

/* FindCoordinator */

/*
 * Kafka creates __consumer_offsets at the first FindCoordinator, so that
 * the coordinator it names stays.  Without it, a group's first coordinator
 * was the node at its hash over the live nodes, and the group moved as
 * soon as its first generation, stored, created the topic: its members saw
 * NOT_COORDINATOR in the middle of their first rebalance (librdkafka tells
 * the application, for its OffsetFetch).  As Kafka, the creation runs in
 * the background (a creator worker has the controller create it) and the
 * client is told COORDINATOR_NOT_AVAILABLE meanwhile, which it retries:
 * waiting for it here would hold up every connection of this broker
 * worker.  Also COORDINATOR_NOT_AVAILABLE while no controller is known.
 */
static bool
offsets_topic_ready(void)
{
	if (!SlClusterEnabled() || !sl_offsets_topic ||
		SlTopicLookup(SL_OFFSETS_TOPIC_NAME, true) != NULL)
		return true;
	/* No controller to create it: not worth a worker */
	if (SlClusterControllerId() < 0)
		return false;
	return SlOffsetsTopicCreateInBackground();
}

/*
 * The coordinator of a group on a cluster: this node (its endpoint as the
 * client sees it, already in *host and *port), another node with its
 * advertised Kafka endpoint, or COORDINATOR_NOT_AVAILABLE while none is
 * (the group's partition of __consumer_offsets is offline, or the topic
 * is being created), which clients retry.
 */
static void
coordinator_of(const char *group_id, int16 *error, const char **message,
			   int32 *node_id, const char **host, int32 *port)
{
	int32		coordinator = offsets_topic_ready() ? SlGroupCoordinatorNode(group_id) : -1;
	SlClusterNode node;

	if (coordinator == sl_node_id)
		return;
	if (coordinator >= 0 && SlClusterGetNode(coordinator, &node) && !node.fenced)
	{
		*node_id = coordinator;
		*host = pstrdup(node.kafka_host);
		*port = node.kafka_port;
		return;
	}
	*error = SL_ERR_COORDINATOR_NOT_AVAILABLE;
	*message = "The coordinator is not available.";
	*node_id = -1;
	*host = "";
	*port = -1;
}

/*
 * The coordinator of a transactional id on a cluster, as coordinator_of
 * for a group: COORDINATOR_NOT_AVAILABLE while __transaction_state is
 * being created (in the background, as Kafka) or the id's partition has
 * no leader
 */
static void
transaction_coordinator_of(const char *transactional_id, int16 *error, const char **message,
						   int32 *node_id, const char **host, int32 *port)
{
	int32		coordinator = SlTxnStateTopicReady() ?
		SlTxnCoordinatorNode(transactional_id) : -1;
	SlClusterNode node;

	if (coordinator == sl_node_id)
		return;
	if (coordinator >= 0 && SlClusterGetNode(coordinator, &node) && !node.fenced)
	{
		*node_id = coordinator;
		*host = pstrdup(node.kafka_host);
		*port = node.kafka_port;
		return;
	}
	*error = SL_ERR_COORDINATOR_NOT_AVAILABLE;
	*message = "The coordinator is not available.";
	*node_id = -1;
	*host = "";
	*port = -1;
}

/*
 * Kafka's answer to a group request sent to a node that does not
 * coordinate the group (NOT_COORDINATOR: the client finds the coordinator
 * again), left in coordinator_error.  A new coordinator still loading the
 * group's committed offsets (group_placement.h) serves the membership
 * APIs all the same: a group's members and generation are not loaded from
 * the log (members rejoin a new coordinator), only its offsets, which the
 * APIs that read or delete them wait for (COORDINATOR_LOAD_IN_PROGRESS:
 * OffsetCommit, OffsetFetch, OffsetDelete, DeleteGroups).  Asking starts
 * the load, so that the members' first commit finds it done or under way.
 */
static int16 coordinator_error;
#define NOT_COORDINATOR(group_id) \
	((coordinator_error = membership_coordinator_error(group_id)) != SL_ERR_NONE)
#define NOT_COORDINATOR_OR_LOADING(group_id) \
	((coordinator_error = SlGroupCoordinatorError(group_id)) != SL_ERR_NONE)

static int16
membership_coordinator_error(const char *group_id)
{
	int16		error = SlGroupCoordinatorError(group_id);

	return error == SL_ERR_COORDINATOR_LOAD_IN_PROGRESS ? SL_ERR_NONE : error;
}

/*
 * A request that may park says so before it asks NOT_COORDINATOR, so that a
 * move of its group while it is parked makes it look again
 * (group_placement.h)
 */
static void
wait_on_group_placement(SlRequest *req)
{
	if (SlClusterEnabled())
		SlRequestWaitOn(req, SlGroupPlacementWaitKey());
}

static void
find_key(const SlSession *session, int8 key_type, SlStr key, int16 *error,
		 const char **message, int32 *node_id, const char **host, int32 *port)
{
	char	   *group_id = key_type == KEY_TYPE_GROUP ? SlGroupIdFromWire(key) : NULL;

	SlAdvertisedEndpoint(session, host, port);
	*node_id = sl_node_id;
	*error = SL_ERR_NONE;
	*message = NULL;
	if (key_type == KEY_TYPE_GROUP && group_id != NULL &&
		SlMayGroup(group_id, SL_ACL_DESCRIBE))
	{
		coordinator_of(group_id, error, message, node_id, host, port);
		return;
	}
	if (key_type == KEY_TYPE_GROUP && group_id == NULL)
		return;
	if (key_type == KEY_TYPE_GROUP)
	{
		*error = SL_ERR_GROUP_AUTHORIZATION_FAILED;
		*message = "Authorization failed: finding a group's coordinator takes DESCRIBE on the group.";
		*node_id = -1;
		*host = "";
		*port = -1;
		return;
	}
	/*
	 * A transactional id: standalone this node coordinates them all; on a
	 * cluster the leader of the id's partition of __transaction_state
	 * (server/txn/coordinator_cluster.h)
	 */
	if (key_type == KEY_TYPE_TRANSACTION && SlTxnCoordinatorEnabled())
	{
		if (key.len <= 0 || key.len > SL_TRANSACTIONAL_ID_MAX)
		{
			*error = SL_ERR_INVALID_REQUEST;
			*message = "A transactional id must not be empty.";
			*node_id = -1;
			*host = "";
			*port = -1;
		}
		else if (SlClusterEnabled())
			transaction_coordinator_of(pnstrdup(key.data, key.len), error, message,
									   node_id, host, port);
		return;
	}
	*error = key_type == KEY_TYPE_TRANSACTION ? SL_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED :
		SL_ERR_INVALID_REQUEST;
	*message = key_type == KEY_TYPE_TRANSACTION ?
		SL_TRANSACTIONS_UNSUPPORTED : "unknown coordinator key type";
	*node_id = -1;
	*host = "";
	*port = -1;
}

bool
SlHandleFindCoordinator(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlFindCoordinatorRequest request;
	SlFindCoordinatorResponse resp;

	if (!SlFindCoordinatorRequestDecode(body, req->api_version, &request))
		return false;
	SlFindCoordinatorResponseInit(&resp);
	resp.throttle_time_ms = 0;
	if (req->api_version < 4)
	{
		const char *message;
		const char *host;

		find_key(req->session, req->api_version >= 1 ? request.key_type : KEY_TYPE_GROUP,
				 request.key,
				 &resp.error_code, &message, &resp.node_id, &host, &resp.port);
		resp.host = SlStrFromCString(host);
		resp.error_message = message ? SlStrFromCString(message) : SL_STR_NULL;
		SL_ARRAY_ALLOC(resp.coordinators, 0);
	}
	else
	{
		resp.host = SlStrFromCString("");
		resp.error_message = SL_STR_NULL;
		SL_ARRAY_ALLOC(resp.coordinators, Max(request.coordinator_keys.n, 0));
		for (int i = 0; i < request.coordinator_keys.n; i++)
		{
			SlFindCoordinatorResponseCoordinator *c = &resp.coordinators.items[i];
			const char *message;
			const char *host;

			SlFindCoordinatorResponseCoordinatorInit(c);
			c->key = request.coordinator_keys.items[i];
			find_key(req->session, request.key_type, c->key, &c->error_code, &message,
					 &c->node_id, &host, &c->port);
			c->host = SlStrFromCString(host);
			c->error_message = message ? SlStrFromCString(message) : SL_STR_NULL;
		}
	}
	SlFindCoordinatorResponseEncode(out, req->api_version, &resp);
	return true;
}

/* JoinGroup */

static void
encode_join(SlRequest *req, SlWriter *out, const SlGroupJoinResult *res)
{
	SlJoinGroupResponse resp;
	bool		v7 = req->api_version >= 7;

	SlJoinGroupResponseInit(&resp);
	resp.throttle_time_ms = 0;
	resp.error_code = res->error;
	resp.generation_id = res->error == SL_ERR_NONE ? res->generation : -1;
	resp.protocol_type = v7 && res->error == SL_ERR_NONE && res->protocol_type ?
		SlStrFromCString(res->protocol_type) : SL_STR_NULL;
	if (res->error == SL_ERR_NONE && res->protocol_name)
		resp.protocol_name = SlStrFromCString(res->protocol_name);
	else
		resp.protocol_name = v7 ? SL_STR_NULL : SlStrFromCString("");
	resp.leader = str_or_empty(res->error == SL_ERR_NONE ? res->leader : "");
	resp.skip_assignment = req->api_version >= 9 && res->skip_assignment;
	resp.member_id = str_or_empty(res->member_id);
	SL_ARRAY_ALLOC(resp.members, res->error == SL_ERR_NONE ? res->nmembers : 0);
	for (int i = 0; i < resp.members.n; i++)
	{
		SlJoinGroupResponseJoinGroupResponseMember *m = &resp.members.items[i];

		SlJoinGroupResponseJoinGroupResponseMemberInit(m);
		m->member_id = SlStrFromCString(res->members[i].member_id);
		m->group_instance_id = req->api_version >= 5 && res->members[i].instance_id ?
			SlStrFromCString(res->members[i].instance_id) : SL_STR_NULL;
		m->metadata = (SlBytes) {res->members[i].metadata, res->members[i].metadata_len};
	}
	SlJoinGroupResponseEncode(out, req->api_version, &resp);
}

bool
SlHandleJoinGroup(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlJoinGroupRequest request;
	SlGroupJoinArgs args;
	SlGroupJoinResult res;
	SlGroupProtocol *protocols;
	char	   *group_id;
	char	   *member_id;
	char	   *instance_id;
	bool		bad_instance;
	JoinNote   *note;

	if (!SlJoinGroupRequestDecode(body, req->api_version, &request))
		return false;
	memset(&res, 0, sizeof(res));
	res.member_id = "";
	res.leader = "";

	group_id = SlGroupIdFromWire(request.group_id);
	member_id = member_id_from_wire(request.member_id);
	instance_id = instance_id_from_wire(request.group_instance_id, &bad_instance);
	if (group_id == NULL)
	{
		res.error = SL_ERR_INVALID_GROUP_ID;
		res.member_id = member_id ? member_id : "";
		encode_join(req, out, &res);
		return true;
	}
	if (!SlMayGroup(group_id, SL_ACL_READ))
	{
		res.error = SL_ERR_GROUP_AUTHORIZATION_FAILED;
		res.member_id = member_id ? member_id : "";
		encode_join(req, out, &res);
		return true;
	}
	wait_on_group_placement(req);
	if (NOT_COORDINATOR(group_id))
	{
		res.error = coordinator_error;
		res.member_id = member_id ? member_id : "";
		encode_join(req, out, &res);
		return true;
	}
	if (member_id == NULL)
	{
		res.error = SL_ERR_UNKNOWN_MEMBER_ID;
		encode_join(req, out, &res);
		return true;
	}
	if (bad_instance)
	{
		res.error = SL_ERR_INVALID_REQUEST;
		res.member_id = member_id;
		encode_join(req, out, &res);
		return true;
	}

	/* Woken by the group's transitions, if we park */
	SlRequestWaitOn(req, SlWaitKeyForGroup(group_id));

	/* A parked join looks again */
	note = req->deadline != 0 ? join_note_find(req) : NULL;
	if (note != NULL)
		SlGroupJoinPoll(group_id, note->member_id, instance_id, &res);
	else
	{
		bool		bad_protocol = false;

		protocols = palloc0(sizeof(SlGroupProtocol) * Max(request.protocols.n, 1));
		for (int i = 0; i < request.protocols.n; i++)
		{
			SlStr		name = request.protocols.items[i].name;

			if (name.len <= 0 || name.len >= SL_GROUP_ID_LEN ||
				memchr(name.data, '\0', name.len) != NULL)
				bad_protocol = true;
			protocols[i].name = name.len > 0 ? pnstrdup(name.data, name.len) : "";
			protocols[i].metadata = request.protocols.items[i].metadata.data;
			protocols[i].metadata_len = request.protocols.items[i].metadata.len;
		}
		if (bad_protocol || request.protocol_type.len >= SL_GROUP_ID_LEN ||
			(request.protocol_type.len > 0 &&
			 memchr(request.protocol_type.data, '\0', request.protocol_type.len) != NULL))
		{
			res.error = SL_ERR_INCONSISTENT_GROUP_PROTOCOL;
			res.member_id = member_id;
			encode_join(req, out, &res);
			return true;
		}
		memset(&args, 0, sizeof(args));
		args.group_id = group_id;
		args.member_id = member_id;
		args.instance_id = req->api_version >= 5 ? instance_id : NULL;
		args.client_id = req->client_id;
		args.client_host = request_client_host(req);
		args.session_timeout_ms = request.session_timeout_ms;
		args.rebalance_timeout_ms = req->api_version >= 1 && request.rebalance_timeout_ms > 0 ?
			request.rebalance_timeout_ms : request.session_timeout_ms;
		args.protocol_type = request.protocol_type.len > 0 ?
			pnstrdup(request.protocol_type.data, request.protocol_type.len) : "";
		args.nprotocols = request.protocols.n;
		args.protocols = protocols;
		args.require_known_member_id = req->api_version >= 4;
		/* the role the request runs as */
		args.role = GetUserId();
		args.role_capped = !superuser_arg(args.role);
		SlGroupJoin(&args, &res);
	}
	SlGroupMetadataStore(group_id);

	if (res.wait)
	{
		join_note_remember(req, res.member_id);
		park(req, res.deadline);
		return true;
	}
	encode_join(req, out, &res);
	return true;
}

/* SyncGroup */

bool
SlHandleSyncGroup(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlSyncGroupRequest request;
	SlSyncGroupResponse resp;
	SlGroupSyncArgs args;
	SlGroupSyncResult res;
	SlGroupAssignment *assignments;
	char	   *group_id;
	char	   *member_id;
	char	   *instance_id;
	bool		bad_instance;
	int			n = 0;

	if (!SlSyncGroupRequestDecode(body, req->api_version, &request))
		return false;
	SlSyncGroupResponseInit(&resp);
	resp.throttle_time_ms = 0;
	resp.protocol_type = SL_STR_NULL;
	resp.protocol_name = SL_STR_NULL;
	resp.assignment = (SlBytes) {(const uint8 *) "", 0};

	group_id = SlGroupIdFromWire(request.group_id);
	member_id = member_id_from_wire(request.member_id);
	instance_id = instance_id_from_wire(request.group_instance_id, &bad_instance);
	if (group_id == NULL || member_id == NULL || member_id[0] == '\0' || bad_instance)
	{
		resp.error_code = group_id == NULL ? SL_ERR_INVALID_GROUP_ID :
			bad_instance ? SL_ERR_INVALID_REQUEST : SL_ERR_UNKNOWN_MEMBER_ID;
		SlSyncGroupResponseEncode(out, req->api_version, &resp);
		return true;
	}
	if (!SlMayGroup(group_id, SL_ACL_READ))
	{
		resp.error_code = SL_ERR_GROUP_AUTHORIZATION_FAILED;
		SlSyncGroupResponseEncode(out, req->api_version, &resp);
		return true;
	}
	wait_on_group_placement(req);
	if (NOT_COORDINATOR(group_id))
	{
		resp.error_code = coordinator_error;
		SlSyncGroupResponseEncode(out, req->api_version, &resp);
		return true;
	}

	assignments = palloc0(sizeof(SlGroupAssignment) * Max(request.assignments.n, 1));
	for (int i = 0; i < request.assignments.n; i++)
	{
		char	   *id = member_id_from_wire(request.assignments.items[i].member_id);

		if (id == NULL || id[0] == '\0')
			continue;
		assignments[n].member_id = id;
		assignments[n].data = request.assignments.items[i].assignment.data;
		assignments[n].len = Max(request.assignments.items[i].assignment.len, 0);
		n++;
	}

	memset(&args, 0, sizeof(args));
	args.group_id = group_id;
	args.member_id = member_id;
	args.instance_id = req->api_version >= 3 ? instance_id : NULL;
	args.generation = request.generation_id;
	if (req->api_version >= 5 && !SlStrIsNull(request.protocol_type))
		args.protocol_type = pnstrdup(request.protocol_type.data, request.protocol_type.len);
	if (req->api_version >= 5 && !SlStrIsNull(request.protocol_name))
		args.protocol_name = pnstrdup(request.protocol_name.data, request.protocol_name.len);
	args.nassignments = n;
	args.assignments = assignments;
	args.poll = req->deadline != 0;
	/* Woken by the group's transitions, if we park */
	SlRequestWaitOn(req, SlWaitKeyForGroup(group_id));
	SlGroupSync(&args, &res);
	SlGroupMetadataStore(group_id);

	if (res.wait)
	{
		park(req, res.deadline);
		return true;
	}
	resp.error_code = res.error;
	if (res.error == SL_ERR_NONE)
	{
		if (req->api_version >= 5)
		{
			resp.protocol_type = res.protocol_type ? SlStrFromCString(res.protocol_type) : SL_STR_NULL;
			resp.protocol_name = res.protocol_name ? SlStrFromCString(res.protocol_name) : SL_STR_NULL;
		}
		resp.assignment = (SlBytes) {res.assignment, res.assignment_len};
	}
	SlSyncGroupResponseEncode(out, req->api_version, &resp);
	return true;
}

/* Heartbeat */

bool
SlHandleHeartbeat(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlHeartbeatRequest request;
	SlHeartbeatResponse resp;
	char	   *group_id;
	char	   *member_id;
	char	   *instance_id;
	bool		bad_instance;

	if (!SlHeartbeatRequestDecode(body, req->api_version, &request))
		return false;
	SlHeartbeatResponseInit(&resp);
	resp.throttle_time_ms = 0;
	group_id = SlGroupIdFromWire(request.group_id);
	member_id = member_id_from_wire(request.member_id);
	instance_id = instance_id_from_wire(request.group_instance_id, &bad_instance);
	if (group_id == NULL)
		resp.error_code = SL_ERR_INVALID_GROUP_ID;
	else if (!SlMayGroup(group_id, SL_ACL_READ))
		resp.error_code = SL_ERR_GROUP_AUTHORIZATION_FAILED;
	else if (NOT_COORDINATOR(group_id))
		resp.error_code = coordinator_error;
	else if (member_id == NULL || member_id[0] == '\0')
		resp.error_code = SL_ERR_UNKNOWN_MEMBER_ID;
	else if (bad_instance)
		resp.error_code = SL_ERR_INVALID_REQUEST;
	else
	{
		resp.error_code = SlGroupHeartbeat(group_id, member_id,
										   req->api_version >= 3 ? instance_id : NULL,
										   request.generation_id);
		SlGroupMetadataStore(group_id);
	}
	SlHeartbeatResponseEncode(out, req->api_version, &resp);
	return true;
}

/* LeaveGroup */

bool
SlHandleLeaveGroup(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlLeaveGroupRequest request;
	SlLeaveGroupResponse resp;
	char	   *group_id;
	bool		found;

	if (!SlLeaveGroupRequestDecode(body, req->api_version, &request))
		return false;
	SlLeaveGroupResponseInit(&resp);
	resp.throttle_time_ms = 0;
	resp.error_code = SL_ERR_NONE;
	group_id = SlGroupIdFromWire(request.group_id);
	if (group_id != NULL && !SlMayGroup(group_id, SL_ACL_READ))
	{
		resp.error_code = SL_ERR_GROUP_AUTHORIZATION_FAILED;
		SL_ARRAY_ALLOC(resp.members, 0);
		SlLeaveGroupResponseEncode(out, req->api_version, &resp);
		return true;
	}
	if (group_id != NULL && NOT_COORDINATOR(group_id))
	{
		resp.error_code = coordinator_error;
		SL_ARRAY_ALLOC(resp.members, 0);
		SlLeaveGroupResponseEncode(out, req->api_version, &resp);
		return true;
	}

	if (req->api_version < 3)
	{
		char	   *member_id = member_id_from_wire(request.member_id);

		SL_ARRAY_ALLOC(resp.members, 0);
		if (group_id == NULL)
			resp.error_code = SL_ERR_INVALID_GROUP_ID;
		else if (member_id == NULL || member_id[0] == '\0')
			resp.error_code = SL_ERR_UNKNOWN_MEMBER_ID;
		else
		{
			resp.error_code = SlGroupLeave(group_id, member_id, NULL, &found);
			SlGroupMetadataStore(group_id);
		}
		SlLeaveGroupResponseEncode(out, req->api_version, &resp);
		return true;
	}

	if (group_id == NULL)
	{
		resp.error_code = SL_ERR_INVALID_GROUP_ID;
		SL_ARRAY_ALLOC(resp.members, 0);
		SlLeaveGroupResponseEncode(out, req->api_version, &resp);
		return true;
	}
	SL_ARRAY_ALLOC(resp.members, Max(request.members.n, 0));
	for (int i = 0; i < request.members.n; i++)
	{
		SlLeaveGroupRequestMemberIdentity *who = &request.members.items[i];
		SlLeaveGroupResponseMemberResponse *r = &resp.members.items[i];
		char	   *member_id = member_id_from_wire(who->member_id);
		bool		bad_instance;
		char	   *instance_id = instance_id_from_wire(who->group_instance_id, &bad_instance);

		SlLeaveGroupResponseMemberResponseInit(r);
		r->member_id = who->member_id;
		r->group_instance_id = who->group_instance_id;
		if (member_id == NULL || bad_instance ||
			(member_id[0] == '\0' && instance_id == NULL))
			r->error_code = SL_ERR_UNKNOWN_MEMBER_ID;
		else
			r->error_code = SlGroupLeave(group_id, member_id, instance_id, &found);
	}
	SlGroupMetadataStore(group_id);
	SlLeaveGroupResponseEncode(out, req->api_version, &resp);
	return true;
}

/* ListGroups */

static bool
in_filter(const SlListGroupsRequest *request, int16 version, const char *state)
{
	bool		type_ok = true;
	bool		state_ok = true;

	if (version >= 4 && request->states_filter.n > 0)
	{
		state_ok = false;
		for (int i = 0; i < request->states_filter.n && !state_ok; i++)
		{
			SlStr		s = request->states_filter.items[i];

			state_ok = s.len == (int32) strlen(state) &&
				pg_strncasecmp(s.data, state, s.len) == 0;
		}
	}
	if (version >= 5 && request->types_filter.n > 0)
	{
		type_ok = false;
		for (int i = 0; i < request->types_filter.n && !type_ok; i++)
		{
			SlStr		s = request->types_filter.items[i];

			type_ok = s.len == 7 && pg_strncasecmp(s.data, "classic", 7) == 0;
		}
	}
	return state_ok && type_ok;
}

/*
 * ListGroups: the groups this node coordinates, as Kafka's broker lists
 * its own (clients ask every broker and merge): on a cluster, a group
 * another node coordinates is left out, both one with state here not yet
 * unloaded (server/groups/resign.c) and one with offsets left in this
 * node's table from when it led the group's partition.
 */
bool
SlHandleListGroups(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlListGroupsRequest request;
	SlListGroupsResponse resp;
	List	   *known;
	List	   *with_offsets;
	ListCell   *lc;
	int			n = 0;
	bool		all;

	if (!SlListGroupsRequestDecode(body, req->api_version, &request))
		return false;
	SlListGroupsResponseInit(&resp);
	resp.throttle_time_ms = 0;
	resp.error_code = SL_ERR_NONE;

	/* DESCRIBE on the cluster shows every group, else those the role may see */
	all = SlMayCluster(SL_ACL_DESCRIBE);
	known = SlGroupList();
	with_offsets = SlGroupListIds();
	SL_ARRAY_ALLOC(resp.groups, list_length(known) + list_length(with_offsets));
	foreach(lc, known)
	{
		SlGroupListing *l = lfirst(lc);
		SlListGroupsResponseListedGroup *g = &resp.groups.items[n];

		if (!in_filter(&request, req->api_version, SlGroupStateName(l->state)) ||
			(!all && !SlMayGroup(l->group_id, SL_ACL_DESCRIBE)) ||
			!SlGroupCoordinatedHere(l->group_id))
			continue;
		SlListGroupsResponseListedGroupInit(g);
		g->group_id = SlStrFromCString(l->group_id);
		g->protocol_type = SlStrFromCString(l->protocol_type);
		g->group_state = SlStrFromCString(SlGroupStateName(l->state));
		g->group_type = SlStrFromCString("classic");
		n++;
	}
	/* Groups that only have committed offsets are Empty ones */
	foreach(lc, with_offsets)
	{
		const char *id = lfirst(lc);
		SlListGroupsResponseListedGroup *g = &resp.groups.items[n];
		ListCell   *k;
		bool		dup = false;

		foreach(k, known)
			dup = dup || strcmp(((SlGroupListing *) lfirst(k))->group_id, id) == 0;
		if (dup || !in_filter(&request, req->api_version, SlGroupStateName(SL_GROUP_EMPTY)) ||
			(!all && !SlMayGroup(id, SL_ACL_DESCRIBE)) ||
			!SlGroupCoordinatedHere(id))
			continue;
		SlListGroupsResponseListedGroupInit(g);
		g->group_id = SlStrFromCString(id);
		g->protocol_type = SlStrFromCString("");
		g->group_state = SlStrFromCString(SlGroupStateName(SL_GROUP_EMPTY));
		g->group_type = SlStrFromCString("classic");
		n++;
	}
	resp.groups.n = n;
	SlListGroupsResponseEncode(out, req->api_version, &resp);
	return true;
}

/* DescribeGroups */

bool
SlHandleDescribeGroups(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeGroupsRequest request;
	SlDescribeGroupsResponse resp;

	if (!SlDescribeGroupsRequestDecode(body, req->api_version, &request))
		return false;
	SlDescribeGroupsResponseInit(&resp);
	resp.throttle_time_ms = 0;
	SL_ARRAY_ALLOC(resp.groups, Max(request.groups.n, 0));
	for (int i = 0; i < request.groups.n; i++)
	{
		SlDescribeGroupsResponseDescribedGroup *d = &resp.groups.items[i];
		char	   *group_id = SlGroupIdFromWire(request.groups.items[i]);
		SlGroupDescription desc;

		SlDescribeGroupsResponseDescribedGroupInit(d);
		d->group_id = request.groups.items[i];
		d->error_code = SL_ERR_NONE;
		d->group_state = SlStrFromCString(SlGroupStateName(SL_GROUP_DEAD));
		d->protocol_type = SlStrFromCString("");
		d->protocol_data = SlStrFromCString("");
		d->authorized_operations = PG_INT32_MIN;
		SL_ARRAY_ALLOC(d->members, 0);
		if (group_id == NULL)
		{
			d->error_code = SL_ERR_INVALID_GROUP_ID;
			continue;
		}
		if (!SlMayGroup(group_id, SL_ACL_DESCRIBE))
		{
			d->error_code = SL_ERR_GROUP_AUTHORIZATION_FAILED;
			continue;
		}
		if (NOT_COORDINATOR(group_id))
		{
			d->error_code = coordinator_error;
			continue;
		}
		if (req->api_version >= 3 && request.include_authorized_operations)
			d->authorized_operations = group_authorized_operations(group_id);
		if (!SlGroupDescribe(group_id, false, &desc))
		{
			/* Kafka: a group with only offsets is Empty, else Dead */
			if (SlGroupExists(group_id))
				d->group_state = SlStrFromCString(SlGroupStateName(SL_GROUP_EMPTY));
			continue;
		}
		d->group_state = SlStrFromCString(SlGroupStateName(desc.state));
		d->protocol_type = SlStrFromCString(desc.protocol_type);
		d->protocol_data = SlStrFromCString(desc.protocol_name);
		SL_ARRAY_ALLOC(d->members, desc.nmembers);
		for (int j = 0; j < desc.nmembers; j++)
		{
			SlDescribeGroupsResponseDescribedGroupMember *m = &d->members.items[j];
			SlGroupMemberInfo *info = &desc.members[j];

			SlDescribeGroupsResponseDescribedGroupMemberInit(m);
			m->member_id = SlStrFromCString(info->member_id);
			m->group_instance_id = req->api_version >= 4 && info->instance_id ?
				SlStrFromCString(info->instance_id) : SL_STR_NULL;
			m->client_id = SlStrFromCString(info->client_id);
			m->client_host = SlStrFromCString(info->client_host);
			m->member_metadata = (SlBytes) {info->metadata, info->metadata_len};
			m->member_assignment = (SlBytes) {info->assignment, info->assignment_len};
		}
	}
	SlDescribeGroupsResponseEncode(out, req->api_version, &resp);
	return true;
}

/* DeleteGroups */

bool
SlHandleDeleteGroups(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDeleteGroupsRequest request;
	SlDeleteGroupsResponse resp;

	if (!SlDeleteGroupsRequestDecode(body, req->api_version, &request))
		return false;
	SlDeleteGroupsResponseInit(&resp);
	resp.throttle_time_ms = 0;
	SL_ARRAY_ALLOC(resp.results, Max(request.groups_names.n, 0));
	for (int i = 0; i < request.groups_names.n; i++)
	{
		SlDeleteGroupsResponseDeletableGroupResult *r = &resp.results.items[i];
		char	   *group_id = SlGroupIdFromWire(request.groups_names.items[i]);
		bool		known;
		bool		has_offsets;

		SlDeleteGroupsResponseDeletableGroupResultInit(r);
		r->group_id = request.groups_names.items[i];
		if (group_id == NULL)
		{
			r->error_code = SL_ERR_INVALID_GROUP_ID;
			continue;
		}
		if (!SlMayGroup(group_id, SL_ACL_DELETE))
		{
			r->error_code = SL_ERR_GROUP_AUTHORIZATION_FAILED;
			continue;
		}
		if (NOT_COORDINATOR_OR_LOADING(group_id))
		{
			r->error_code = coordinator_error;
			continue;
		}
		/* Members first: a group with members keeps its offsets */
		r->error_code = SlGroupForget(group_id, &known);
		if (r->error_code != SL_ERR_NONE)
			continue;
		has_offsets = SlGroupExists(group_id);
		if (!known && !has_offsets)
			r->error_code = SL_ERR_GROUP_ID_NOT_FOUND;
		else if (has_offsets && SlGroupOffsetsDelete(group_id, -1, -1, true) < 0)
			r->error_code = SL_ERR_NON_EMPTY_GROUP;	/* an SQL consumer holds rows */
		else if (!has_offsets)
			/* Its metadata goes too (with offsets, their deletion wrote this) */
			SlOffsetsTopicStoreGroup(group_id, NULL);
	}
	SlDeleteGroupsResponseEncode(out, req->api_version, &resp);
	return true;
}
