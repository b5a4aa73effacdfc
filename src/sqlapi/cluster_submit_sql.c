/*-------------------------------------------------------------------------
 * cluster_submit_sql.c
 *	  The controller's SQL entry points, which other nodes call over libpq
 *	  (metadata/cluster_submit.c): streamlog._cluster_submit(request bytea,
 *	  timeout_ms integer) for an encoded controller request and
 *	  streamlog._cluster_membership(action text, node_id integer,
 *	  timeout_ms integer) for a change of the Raft membership.
 *
 * Both answer one row (error_code integer, message text, raft_index
 * bigint): NOT_CONTROLLER (41) when this node is not the controller, so
 * that the caller tries the new one, else the result of the local Raft
 * worker.  The bytes are hostile (they came over the network): a request
 * that does not decode is refused with an ERROR before anything is queued.
 *
 * Security: they act for the cluster without asking for the Kafka
 * authorization of the request (the node that forwards it checked it at
 * its door), so only superusers and members of streamlog_admin may call
 * them (EXECUTE is revoked from PUBLIC); nodes connect as the role their
 * streamlog.advertised_sql_conninfo names.
 *
 * IDENTIFICATION
 *	  src/sqlapi/cluster_submit_sql.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_submit.h"
#include "streamlog/sqlapi/sql_args.h"

PG_FUNCTION_INFO_V1(streamlog__cluster_submit);
PG_FUNCTION_INFO_V1(streamlog__cluster_membership);

/* The one row of the answer */
static Datum
answer_row(FunctionCallInfo fcinfo, int16 error_code, const char *message, uint64 index)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, message == NULL, error_code != 0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int32GetDatum(error_code);
	values[1] = message ? CStringGetTextDatum(message) : (Datum) 0;
	values[2] = Int64GetDatum((int64) index);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}

/* NOT_CONTROLLER's message, naming the controller this node knows of */
static char *
not_controller_message(void)
{
	int32		controller = SlClusterControllerId();

	if (controller < 0)
		return psprintf("node %d is not the controller, and no controller is known to it",
						sl_node_id);
	return psprintf("node %d is not the controller; the controller is node %d",
					sl_node_id, controller);
}

static void
require_cluster_mode(void)
{
	if (!SlClusterEnabled())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node %d is not part of a cluster", sl_node_id),
				 errhint("Set streamlog.controller_quorum_voters on every node of the cluster.")));
}

static int
timeout_arg(FunctionCallInfo fcinfo, int argno)
{
	int			timeout_ms = PG_ARGISNULL(argno) ? SL_CLUSTER_SUBMIT_TIMEOUT_MS :
		PG_GETARG_INT32(argno);

	if (timeout_ms <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must be positive, not %d", timeout_ms)));
	return timeout_ms;
}

Datum
streamlog__cluster_submit(PG_FUNCTION_ARGS)
{
	bytea	   *request;
	SlControllerRequest decoded;
	int			timeout_ms;
	int16		error_code;
	char	   *message = NULL;
	uint64		index = 0;

	SlRequireArg(fcinfo, 0, "request");
	require_cluster_mode();
	request = PG_GETARG_BYTEA_PP(0);
	timeout_ms = timeout_arg(fcinfo, 1);
	if (VARSIZE_ANY_EXHDR(request) > SL_CLUSTER_REQUEST_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("controller request of %zu bytes is larger than the %d bytes allowed",
						VARSIZE_ANY_EXHDR(request), SL_CLUSTER_REQUEST_MAX)));
	memset(&decoded, 0, sizeof(decoded));
	if (!SlControllerRequestDecode(&decoded, VARDATA_ANY(request), VARSIZE_ANY_EXHDR(request)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("malformed controller request (%zu bytes)",
						VARSIZE_ANY_EXHDR(request)),
				 errdetail("The request does not decode as a request of this version of streamlog."),
				 errhint("Run the same version of streamlog on every node of the cluster.")));
	SlControllerRequestFree(&decoded);

	if (SlClusterControllerId() != sl_node_id)
		return answer_row(fcinfo, SL_CLUSTER_ERR_NOT_CONTROLLER, not_controller_message(), 0);
	error_code = SlClusterSubmitLocal(SL_SLOT_CONTROLLER_REQUEST, 0,
									  VARDATA_ANY(request), VARSIZE_ANY_EXHDR(request),
									  timeout_ms, &message, &index);
	return answer_row(fcinfo, error_code, message, index);
}

Datum
streamlog__cluster_membership(PG_FUNCTION_ARGS)
{
	char	   *action;
	SlClusterSlotKind kind;
	int32		node_id;
	int			timeout_ms;
	int16		error_code;
	char	   *message = NULL;
	uint64		index = 0;

	SlRequireArg(fcinfo, 0, "action");
	SlRequireArg(fcinfo, 1, "node_id");
	require_cluster_mode();
	action = text_to_cstring(PG_GETARG_TEXT_PP(0));
	node_id = PG_GETARG_INT32(1);
	timeout_ms = timeout_arg(fcinfo, 2);
	if (!SlClusterMembershipActionFromName(action, &kind))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown membership action \"%s\"", action),
				 errhint("The actions are add_voter, add_observer, remove and transfer_leadership.")));
	if (node_id < 0 || (node_id == 0 && kind != SL_SLOT_TRANSFER_LEADERSHIP))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid node id %d", node_id)));

	if (SlClusterControllerId() != sl_node_id)
		return answer_row(fcinfo, SL_CLUSTER_ERR_NOT_CONTROLLER, not_controller_message(), 0);
	error_code = SlClusterSubmitLocal(kind, node_id, NULL, 0, timeout_ms, &message, &index);
	return answer_row(fcinfo, error_code, message, index);
}
