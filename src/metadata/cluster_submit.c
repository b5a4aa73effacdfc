/*-------------------------------------------------------------------------
 * cluster_submit.c
 *	  Requests to the controller from any node: SlClusterSubmit and the
 *	  membership changes (cluster_submit.h).
 *
 * Only the controller's Raft worker proposes entries (CLUSTER.md section 2,
 * rule 4: libraft does not forward).  On the controller a request goes into
 * a slot of the local Raft worker's queue; elsewhere it goes over libpq to
 * the SQL entry point the controller's node serves, with the conninfo its
 * registration advertised.  A refusal because that node is not the
 * controller any more (NOT_CONTROLLER), or a connection that fails, is
 * retried against whichever node the view names next, until the deadline;
 * then the caller gets REQUEST_TIMED_OUT naming the controller tried, as
 * Kafka's forwarding manager answers.
 *
 * Waiting is always on the latch (WaitLatchOrSocket for the socket, the
 * cluster state's condition variable for a new controller), so a cancel
 * or a shutdown interrupts it, and every wait is bounded by the deadline.
 * The libpq connection is kept per process (backend or broker worker) for
 * the next request to the same node, and dropped on any error: a
 * connection in an unknown state is never reused.
 *
 * A request that timed out may still be committed by the controller
 * afterwards (as in Kafka): each controller request is a whole record batch,
 * so it is carried out entirely or not at all, never in part.  A creation
 * retried after its answer was lost finds its own topic already there:
 * recognised by the topic id the door chose, it is answered as done.
 *
 * IDENTIFICATION
 *	  src/metadata/cluster_submit.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_submit.h"
#include "streamlog/metadata/node_link.h"
#include "streamlog/storage/storage.h"

/* How long to wait for a new controller before trying the same one again */
#define RETRY_PAUSE_MS 200

static const char *const submit_query =
"SELECT error_code, message, raft_index FROM streamlog._cluster_submit($1::bytea, $2::integer)";
static const char *const membership_query =
"SELECT error_code, message, raft_index FROM streamlog._cluster_membership($1::text, $2::integer, $3::integer)";

/* The connection kept to the controller node */
static SlNodeLink fwd_link = SL_NODE_LINK_INIT;

/* Result of one attempt against one node */
typedef enum AttemptOutcome
{
	ATTEMPT_ANSWERED,			/* the node answered: error_code is final */
	ATTEMPT_RETRY,				/* not the controller, or unreachable */
	ATTEMPT_TIMED_OUT			/* the deadline passed */
} AttemptOutcome;

static const struct
{
	SlClusterSlotKind kind;
	const char *name;
}			membership_actions[] =
{
	{SL_SLOT_ADD_VOTER, "add_voter"},
	{SL_SLOT_ADD_OBSERVER, "add_observer"},
	{SL_SLOT_REMOVE_MEMBER, "remove"},
	{SL_SLOT_TRANSFER_LEADERSHIP, "transfer_leadership"},
};

const char *
SlClusterMembershipActionName(SlClusterSlotKind kind)
{
	for (int i = 0; i < lengthof(membership_actions); i++)
		if (membership_actions[i].kind == kind)
			return membership_actions[i].name;
	return NULL;
}

bool
SlClusterMembershipActionFromName(const char *name, SlClusterSlotKind *kind)
{
	for (int i = 0; i < lengthof(membership_actions); i++)
		if (strcmp(membership_actions[i].name, name) == 0)
		{
			*kind = membership_actions[i].kind;
			return true;
		}
	return false;
}

void
SlClusterForwardingDisconnect(void)
{
	SlNodeLinkDrop(&fwd_link);
}

/* Milliseconds left until deadline, 0 once it passed */
static long
ms_left(TimestampTz deadline)
{
	return TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
}

/*
 * The connection to node (conninfo), made now if the cached one is for
 * another node or broken.  NULL and *why on failure.
 */
static PGconn *
connect_node(int32 node_id, const char *conninfo, TimestampTz deadline, char **why)
{
	return SlNodeLinkOpen(&fwd_link, node_id, conninfo,
						  psprintf("streamlog node %d", sl_node_id), NULL, NULL,
						  deadline, why);
}

/*
 * Send query on the connection and collect its last result (*result, for
 * the caller to PQclear): ATTEMPT_ANSWERED when there is one, whatever its
 * status; ATTEMPT_RETRY (with *why) when the connection failed.
 */
static AttemptOutcome
collect_result(PGconn *conn, const char *query, int nparams, const char *const *values,
			   const int *lengths, const int *formats, int result_format,
			   TimestampTz deadline, PGresult **result, char **why)
{
	char	   *reason = NULL;

	switch (SlNodeLinkQuery(conn, query, nparams, NULL, values, lengths, formats,
							result_format, deadline, result, &reason))
	{
		case SL_NODE_LINK_ANSWERED:
			return ATTEMPT_ANSWERED;
		case SL_NODE_LINK_BROKEN:
			*why = reason;
			return ATTEMPT_RETRY;
		case SL_NODE_LINK_TIMED_OUT:
			break;
	}
	return ATTEMPT_TIMED_OUT;
}

/*
 * Run the entry point on the connection and read its one row (error_code,
 * message, raft_index), the answer in binary.  The answer is treated as
 * hostile: anything but one row of the three expected columns is a failed
 * attempt.
 */
static AttemptOutcome
run_remote(PGconn *conn, const char *query, int nparams, const char *const *values,
		   const int *lengths, const int *formats, TimestampTz deadline,
		   int16 *error_code, char **message, uint64 *index, char **why)
{
	PGresult   *last;
	AttemptOutcome outcome;

	outcome = collect_result(conn, query, nparams, values, lengths, formats, 1, deadline,
							 &last, why);
	if (outcome != ATTEMPT_ANSWERED)
		return outcome;
	if (PQresultStatus(last) != PGRES_TUPLES_OK)
	{
		const char *sqlstate = PQresultErrorField(last, PG_DIAG_SQLSTATE);
		char	   *msg = pchomp(PQresultErrorMessage(last));

		PQclear(last);
		/* A server shutting down or starting up: another node may take over */
		if (sqlstate != NULL &&
			(strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57", 2) == 0))
		{
			*why = msg;
			return ATTEMPT_RETRY;
		}
		*error_code = SL_CLUSTER_ERR_UNKNOWN_SERVER_ERROR;
		*message = msg;
		return ATTEMPT_ANSWERED;
	}
	{
		int64		code;
		int64		idx = 0;

		if (PQntuples(last) != 1 || PQnfields(last) != 3 ||
			!SlNodeLinkResultInt(last, 0, 0, 4, &code) || code < PG_INT16_MIN || code > PG_INT16_MAX ||
			(!PQgetisnull(last, 0, 2) && !SlNodeLinkResultInt(last, 0, 2, 8, &idx)))
		{
			PQclear(last);
			*why = pstrdup("malformed answer");
			return ATTEMPT_RETRY;
		}
		*error_code = (int16) code;
		*index = (uint64) idx;
		*message = PQgetisnull(last, 0, 1) ? NULL :
			pnstrdup(PQgetvalue(last, 0, 1), PQgetlength(last, 0, 1));
		PQclear(last);
	}
	return *error_code == SL_CLUSTER_ERR_NOT_CONTROLLER ? ATTEMPT_RETRY : ATTEMPT_ANSWERED;
}

/* One attempt against node, the controller as this node's view has it */
static AttemptOutcome
attempt_remote(const SlClusterNode *node, SlClusterSlotKind kind, int32 node_id,
			   const void *request, int32 request_len, TimestampTz deadline,
			   int16 *error_code, char **message, uint64 *index, char **why)
{
	PGconn	   *conn;
	char		timeout_text[16];
	char		node_text[16];
	AttemptOutcome outcome;

	if (node->sql_conninfo[0] == '\0')
	{
		*why = psprintf("node %d advertised no SQL conninfo", node->node_id);
		return ATTEMPT_RETRY;
	}
	conn = connect_node(node->node_id, node->sql_conninfo, deadline, why);
	if (conn == NULL)
		return ms_left(deadline) > 0 ? ATTEMPT_RETRY : ATTEMPT_TIMED_OUT;

	/* The controller waits a little less than we do, to answer in time */
	snprintf(timeout_text, sizeof(timeout_text), "%ld",
			 Max(ms_left(deadline) - 100, 1));
	if (kind == SL_SLOT_CONTROLLER_REQUEST)
	{
		const char *values[2] = {request, timeout_text};
		int			lengths[2] = {request_len, 0};
		int			formats[2] = {1, 0};

		outcome = run_remote(conn, submit_query, 2, values, lengths, formats, deadline,
							 error_code, message, index, why);
	}
	else
	{
		const char *values[3] = {SlClusterMembershipActionName(kind), node_text, timeout_text};
		int			lengths[3] = {0, 0, 0};
		int			formats[3] = {0, 0, 0};

		snprintf(node_text, sizeof(node_text), "%d", node_id);
		outcome = run_remote(conn, membership_query, 3, values, lengths, formats, deadline,
							 error_code, message, index, why);
	}
	if (outcome != ATTEMPT_ANSWERED)
		SlClusterForwardingDisconnect();
	else if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		SlClusterForwardingDisconnect();
	return outcome;
}

/*
 * Wait (at most RETRY_PAUSE_MS, never past deadline) for the view to name
 * a controller other than tried
 */
static void
wait_for_new_controller(int32 tried, TimestampTz deadline)
{
	TimestampTz until = Min(deadline,
							TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RETRY_PAUSE_MS));

	ConditionVariablePrepareToSleep(&sl_cluster->changed);
	while (SlClusterControllerId() == tried)
	{
		long		left = ms_left(until);

		if (left <= 0)
			break;
		(void) ConditionVariableTimedSleep(&sl_cluster->changed, left, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/*
 * SlClusterSubmitToController; *attempts says how many times the request
 * was handed to a controller (more than one: an earlier attempt may have
 * been carried out although its answer was lost)
 */
static int16
submit_to_controller(SlClusterSlotKind kind, int32 node_id,
					 const void *request, int32 request_len,
					 int timeout_ms, char **message, uint64 *index, int *attempts)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	int32		tried = -1;
	char	   *why = NULL;

	*message = NULL;
	*index = 0;
	*attempts = 0;
	for (;;)
	{
		int32		controller = SlClusterControllerId();
		int16		error_code = 0;
		char	   *answer = NULL;
		AttemptOutcome outcome;

		CHECK_FOR_INTERRUPTS();
		if (ms_left(deadline) <= 0)
			break;
		if (controller < 0)
		{
			why = pstrdup("no controller is known yet");
			wait_for_new_controller(controller, deadline);
			continue;
		}
		tried = controller;
		(*attempts)++;
		if (controller == sl_node_id)
		{
			error_code = SlClusterSubmitLocal(kind, node_id, request, request_len,
											  (int) Max(ms_left(deadline), 1),
											  &answer, index);
			if (error_code == SL_CLUSTER_ERR_NOT_CONTROLLER)
				outcome = ATTEMPT_RETRY;
			else if (error_code == SL_CLUSTER_ERR_REQUEST_TIMED_OUT && ms_left(deadline) <= 0)
				outcome = ATTEMPT_TIMED_OUT;
			else
				outcome = ATTEMPT_ANSWERED;
			if (outcome != ATTEMPT_ANSWERED)
				why = answer;
		}
		else
		{
			SlClusterNode node;

			if (!SlClusterGetNode(controller, &node))
			{
				why = psprintf("controller node %d is not registered here yet", controller);
				outcome = ATTEMPT_RETRY;
			}
			else
				outcome = attempt_remote(&node, kind, node_id, request, request_len,
										 deadline, &error_code, &answer, index, &why);
		}
		if (outcome == ATTEMPT_ANSWERED)
		{
			*message = answer;
			return error_code;
		}
		if (outcome == ATTEMPT_TIMED_OUT)
			break;
		ereport(DEBUG1,
				(errmsg("streamlog: retrying a request to the controller (node %d): %s",
						controller, why ? why : "not the controller")));
		wait_for_new_controller(controller, deadline);
	}
	if (tried < 0)
		*message = psprintf("timed out after %d ms waiting for a controller: %s",
							timeout_ms, why ? why : "none elected");
	else
		*message = psprintf("timed out after %d ms waiting for the controller (last tried node %d%s%s)",
							timeout_ms, tried, why ? ": " : "", why ? why : "");
	return SL_CLUSTER_ERR_REQUEST_TIMED_OUT;
}

/*
 * The waits above reset the process latch, which may have been set for the
 * caller's own loop (a broker worker's wakeups): set it again, as core's
 * WaitForReplicationWorkerAttach does, so that no wakeup is lost.  A
 * spurious wakeup costs one turn of that loop.
 */
static void
rearm_latch(void)
{
	SetLatch(MyLatch);
}

int16
SlClusterSubmitToController(SlClusterSlotKind kind, int32 node_id,
							const void *request, int32 request_len,
							int timeout_ms, char **message, uint64 *index)
{
	int			attempts;
	int16		error_code;

	error_code = submit_to_controller(kind, node_id, request, request_len, timeout_ms,
									  message, index, &attempts);
	rearm_latch();
	return error_code;
}

/*
 * After a creation was retried and answered TOPIC_ALREADY_EXISTS: is the
 * topic there the one this request asked for (the same topic id, which the
 * door chose at random), created by an earlier attempt whose answer was
 * lost?  Waits until this node's catalog holds what its image applied.
 */
static bool
created_by_earlier_attempt(const SlControllerRequest *req, TimestampTz deadline)
{
	const SlTopic *topic;
	uint64		applied;
	bool		synced;

	LWLockAcquire(&sl_cluster->lock, LW_SHARED);
	applied = sl_cluster->applied_index;
	LWLockRelease(&sl_cluster->lock);
	synced = SlClusterWaitSynced(applied, (int) Max(ms_left(deadline), 1));
	rearm_latch();
	if (!synced)
		return false;
	topic = SlTopicLookup(req->topic_name, true);
	return topic != NULL && memcmp(topic->uuid, req->topic_uuid, sizeof(topic->uuid)) == 0;
}

/*
 * A change of a topic this transaction holds (it produced to, read or
 * changed it) would be committed by the cluster and then wait for this
 * transaction's end to be applied here, which the caller waits for: refuse
 * it before anything is asked of the controller.
 */
static bool
topic_held_here(const SlControllerRequest *req, char **message)
{
	const SlTopic *topic;

	if (req->type != SL_CTRL_DELETE_TOPIC && req->type != SL_CTRL_CREATE_PARTITIONS &&
		req->type != SL_CTRL_ALTER_TOPIC_CONFIG)
		return false;
	if (req->topic_name == NULL ||
		(topic = SlTopicLookup(req->topic_name, true)) == NULL ||
		!SlTopicLockedByMe(topic->topic_id))
		return false;
	*message = psprintf("this transaction holds topic \"%s\" (it produced to, read or changed it): "
						"the cluster's change of the topic could not be applied on this node "
						"before the transaction ends; change the topic in a transaction of its own",
						req->topic_name);
	return true;
}

int16
SlClusterSubmit(const SlControllerRequest *req, int timeout_ms, char **message)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	void	   *data;
	size_t		len;
	char	   *copy;
	uint64		index;
	int16		error_code;
	int			attempts;

	*message = NULL;
	if (topic_held_here(req, message))
		return SL_CLUSTER_ERR_INVALID_REQUEST;
	if (!SlControllerRequestEncode(req, &data, &len))
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory encoding a request to the controller")));
	if (len > SL_CLUSTER_REQUEST_MAX)
	{
		free(data);
		*message = psprintf("the request takes %zu bytes, more than the %d a controller request may",
							len, SL_CLUSTER_REQUEST_MAX);
		return SL_CLUSTER_ERR_INVALID_REQUEST;
	}
	/* into palloc'd memory, so that an ERROR while waiting leaks nothing */
	copy = palloc(len);
	memcpy(copy, data, len);
	free(data);

	error_code = submit_to_controller(SL_SLOT_CONTROLLER_REQUEST, 0, copy, (int32) len,
									  timeout_ms, message, &index, &attempts);
	pfree(copy);
	rearm_latch();
	if (error_code == SL_CLUSTER_ERR_TOPIC_ALREADY_EXISTS && attempts > 1 &&
		req->type == SL_CTRL_CREATE_TOPIC && created_by_earlier_attempt(req, deadline))
	{
		*message = NULL;
		return 0;
	}
	if (error_code != 0)
		return error_code;
	if (!SlClusterWaitSynced(index, (int) Max(ms_left(deadline), 1)))
	{
		rearm_latch();
		*message = psprintf("committed at Raft index " UINT64_FORMAT
							" but not yet applied to this node's catalog within %d ms",
							index, timeout_ms);
		return SL_CLUSTER_ERR_REQUEST_TIMED_OUT;
	}
	rearm_latch();
	return 0;
}

/* A text column as a non-negative int64, or -1 for NULL; false if neither */
static bool
text_int64(const PGresult *res, int row, int col, int64 *out)
{
	const char *s;
	char	   *end;
	long long	v;

	if (PQgetisnull(res, row, col))
	{
		*out = -1;
		return true;
	}
	s = PQgetvalue(res, row, col);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		return false;
	*out = (int64) v;
	return true;
}

bool
SlClusterLeaderQuorumStatus(int32 leader_id, SlQuorumStatus *status, int timeout_ms)
{
	static const char *const query =
		"SELECT s.term, s.commit_index, s.last_index, m.node_id, m.address, m.role, "
		"m.match_index, m.last_contact_ms "
		"FROM streamlog.raft_status s, streamlog.raft_members m "
		"WHERE s.role = 'leader' AND s.node_id = $1::integer ORDER BY m.node_id";
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	SlClusterNode node;
	SlQuorumStatus got;
	PGconn	   *conn;
	PGresult   *res;
	char	   *why = NULL;
	char		leader_text[16];
	const char *values[1] = {leader_text};
	bool		ok = true;

	if (leader_id <= 0 || !SlClusterGetNode(leader_id, &node) || node.sql_conninfo[0] == '\0')
		return false;
	conn = connect_node(node.node_id, node.sql_conninfo, deadline, &why);
	if (conn == NULL)
		return false;
	snprintf(leader_text, sizeof(leader_text), "%d", leader_id);
	if (collect_result(conn, query, 1, values, NULL, NULL, 0, deadline, &res, &why) !=
		ATTEMPT_ANSWERED)
	{
		SlClusterForwardingDisconnect();
		rearm_latch();
		return false;
	}
	rearm_latch();

	/* What the leader says is as hostile as any answer: check every field */
	memset(&got, 0, sizeof(got));
	got.node_id = leader_id;
	got.is_leader = true;
	got.leader_id = leader_id;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 8 ||
		PQntuples(res) < 1 || PQntuples(res) > (int) lengthof(got.members))
		ok = false;
	for (int i = 0; ok && i < PQntuples(res); i++)
	{
		int64		term,
					commit,
					last,
					id,
					match,
					contact;
		const char *role = PQgetvalue(res, i, 5);

		if (!text_int64(res, i, 0, &term) || !text_int64(res, i, 1, &commit) ||
			!text_int64(res, i, 2, &last) || !text_int64(res, i, 3, &id) ||
			!text_int64(res, i, 6, &match) || !text_int64(res, i, 7, &contact) ||
			id <= 0 || id > PG_INT32_MAX || PQgetisnull(res, i, 4) ||
			(strcmp(role, "voter") != 0 && strcmp(role, "observer") != 0))
		{
			ok = false;
			break;
		}
		got.term = (uint64) Max(term, 0);
		got.commit_index = (uint64) Max(commit, 0);
		got.last_index = (uint64) Max(last, 0);
		got.applied_index = got.commit_index;
		got.members[i].node_id = (int32) id;
		strlcpy(got.members[i].address, PQgetvalue(res, i, 4), sizeof(got.members[i].address));
		got.members[i].role = strcmp(role, "voter") == 0 ? SL_QUORUM_VOTER : SL_QUORUM_OBSERVER;
		got.match_index[i] = (uint64) Max(match, 0);
		got.last_contact_ms[i] = contact;
		got.nmembers = i + 1;
	}
	PQclear(res);
	if (ok)
		*status = got;
	return ok;
}
