/*
 * The in-doubt resolver of consume() on other nodes (README, "SQL consume()
 * on any node"; metadata/group_remote.c prepares what it resolves).  It
 * runs in the forwarder worker, at its start and then every few seconds:
 *
 * 1. On every other node, the transactions this node prepared (their gid
 *    starts with this node's prefix and ends with the full id of the local
 *    transaction that prepared them): committed if that transaction
 *    committed here, rolled back if it aborted (a crash counts), left alone
 *    while it is in progress.
 * 2. This node's intents (committed consume()s): each (gid, group, topic) is
 *    settled on the group's coordinator (streamlog._group_settle: the
 *    __consumer_offsets records of the advance, if the consumer's own
 *    settle did not get through), then forgotten.  If the group's
 *    coordinator is no longer the node that prepared it, the advance is
 *    applied there only where the group is still at the from offset; a
 *    WARNING names each partition where it is not.
 */
#include "postgres.h"

#include "access/xact.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/group_placement.h"
#include "streamlog/metadata/group_remote.h"
#include "streamlog/metadata/node_link.h"

#define RESOLVE_CALL_TIMEOUT_MS 10000
#define RESOLVE_CONNECT_TIMEOUT_MS 3000

typedef struct ResolverConn
{
	int32		node_id;
	char		conninfo[sizeof(((SlClusterNode *) 0)->sql_conninfo)];
	PGconn	   *conn;
} ResolverConn;

static ResolverConn conns[SL_MAX_NODES];
static int	nconns = 0;

void
SlRemoteGroupResolverDisconnect(void)
{
	for (int i = 0; i < nconns; i++)
		if (conns[i].conn != NULL)
		{
			SlNodeLinkClose(conns[i].conn);
			conns[i].conn = NULL;
		}
	nconns = 0;
}

/* The connection to node_id, made if needed; NULL (logged) if it cannot be had */
static PGconn *
node_conn(int32 node_id)
{
	SlClusterNode node;
	ResolverConn *rc = NULL;
	char	   *why = NULL;

	if (!SlClusterGetNode(node_id, &node) || node.sql_conninfo[0] == '\0')
		return NULL;
	for (int i = 0; i < nconns; i++)
		if (conns[i].node_id == node_id)
			rc = &conns[i];
	if (rc == NULL)
	{
		if (nconns == SL_MAX_NODES)
			SlRemoteGroupResolverDisconnect();
		rc = &conns[nconns++];
		memset(rc, 0, sizeof(*rc));
		rc->node_id = node_id;
	}
	if (rc->conn != NULL && (strcmp(rc->conninfo, node.sql_conninfo) != 0 ||
							 PQstatus(rc->conn) != CONNECTION_OK ||
							 PQtransactionStatus(rc->conn) != PQTRANS_IDLE))
	{
		SlNodeLinkClose(rc->conn);
		rc->conn = NULL;
	}
	if (rc->conn == NULL)
	{
		rc->conn = SlRemoteConnect(node_id, node.sql_conninfo,
								   psprintf("streamlog consume resolver of node %d", sl_node_id),
								   TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															   RESOLVE_CONNECT_TIMEOUT_MS),
								   &why);
		if (rc->conn == NULL)
		{
			ereport(DEBUG1,
					(errmsg("streamlog consume resolver: cannot reach node %d: %s", node_id, why)));
			return NULL;
		}
		strlcpy(rc->conninfo, node.sql_conninfo, sizeof(rc->conninfo));
	}
	return rc->conn;
}

/* Run sql on node_id; its result if it succeeded, else NULL (logged) */
static PGresult *
run_on(int32 node_id, const char *sql, int nparams, const char *const *params)
{
	PGconn	   *conn = node_conn(node_id);
	char	   *why = NULL;
	PGresult   *res;

	if (conn == NULL)
		return NULL;
	res = SlRemoteRun(conn, sql, nparams, params,
					  TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RESOLVE_CALL_TIMEOUT_MS),
					  &why);
	if (res != NULL && (PQresultStatus(res) == PGRES_TUPLES_OK ||
						PQresultStatus(res) == PGRES_COMMAND_OK))
		return res;
	ereport(LOG,
			(errmsg("streamlog consume resolver: \"%s\" failed on node %d: %s", sql, node_id,
					res ? pchomp(PQresultErrorMessage(res)) : why)));
	PQclear(res);
	if (res == NULL)
		SlRemoteGroupResolverDisconnect();
	return NULL;
}

/* The status of this node's transaction fxid, in a transaction of its own */
static char *
local_status(uint64 fxid)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *status;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	status = SlXactStatus(fxid);
	if (status != NULL)
		status = MemoryContextStrdup(caller, status);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	return status;
}

/* Step 1: finish this node's prepared transactions on node_id */
static void
finish_prepared_on(int32 node_id, const char *prefix)
{
	const char *params[1] = {prefix};
	PGresult   *res = run_on(node_id,
							 "SELECT gid FROM pg_catalog.pg_prepared_xacts "
							 "WHERE starts_with(gid, $1) AND database = current_database()",
							 1, params);

	if (res == NULL)
		return;
	for (int r = 0; r < PQntuples(res); r++)
	{
		char	   *gid = pstrdup(PQgetvalue(res, r, 0));
		const char *tail = gid + strlen(prefix);
		char	   *end;
		uint64		fxid;
		char	   *status;
		const char *sql;
		PGresult   *done;

		errno = 0;
		fxid = strtou64(tail, &end, 10);
		if (errno != 0 || *tail == '\0' || *end != '\0')
			continue;
		status = local_status(fxid);
		if (status == NULL)
		{
			ereport(WARNING,
					(errmsg("streamlog consume resolver: prepared transaction \"%s\" on node %d is too old to resolve",
							gid, node_id),
					 errhint("COMMIT PREPARED or ROLLBACK PREPARED it by hand on node %d.", node_id)));
			continue;
		}
		if (strcmp(status, "committed") == 0)
			sql = psprintf("COMMIT PREPARED %s", quote_literal_cstr(gid));
		else if (strcmp(status, "aborted") == 0)
			sql = psprintf("ROLLBACK PREPARED %s", quote_literal_cstr(gid));
		else
			continue;			/* its consumer is still deciding */
		done = run_on(node_id, sql, 0, NULL);
		if (done != NULL)
			ereport(LOG,
					(errmsg("streamlog consume resolver: %s on node %d", sql, node_id)));
		PQclear(done);
	}
	PQclear(res);
}

static char *
int_list_text(List *intents, int what)
{
	StringInfoData buf;
	ListCell   *lc;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	foreach(lc, intents)
	{
		SlConsumeIntent *in = lfirst(lc);
		int64		v = what == 0 ? in->partition : what == 1 ? in->from_offset : in->to_offset;

		appendStringInfo(&buf, "%s" INT64_FORMAT, first ? "" : ",", v);
		first = false;
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Step 2 for one (gid, group, topic): settle it; true when it may be
 * forgotten
 */
static bool
settle_intents(List *set)
{
	SlConsumeIntent *first = linitial(set);
	int32		coordinator = SlGroupCoordinatorNode(first->group_id);
	const char *params[6];
	PGresult   *res;
	char	   *outcome;

	if (coordinator < 0)
		return false;
	params[0] = first->gid;
	params[1] = first->group_id;
	params[2] = psprintf("%d", first->topic_id);
	params[3] = int_list_text(set, 0);
	params[4] = int_list_text(set, 1);
	params[5] = int_list_text(set, 2);
	if (coordinator == first->coordinator)
	{
		res = run_on(coordinator, "SELECT streamlog._group_settle($1, $2, $3, $4, $5, $6)",
					 6, params);
		if (res == NULL || PQntuples(res) != 1)
		{
			PQclear(res);
			return false;
		}
		outcome = pstrdup(PQgetvalue(res, 0, 0));
		PQclear(res);
		if (strcmp(outcome, "settled") == 0 || strcmp(outcome, "done") == 0)
			return true;
		if (strcmp(outcome, "prepared") == 0)
			return false;		/* step 1 commits it first */
		/* "moved": the coordinator changed under us; settle on the new one */
		coordinator = SlGroupCoordinatorNode(first->group_id);
		if (coordinator < 0 || coordinator == first->coordinator)
			return false;
	}
	/* The prepared transaction stays with a node that no longer coordinates */
	params[0] = NULL;
	res = run_on(coordinator, "SELECT streamlog._group_settle($1, $2, $3, $4, $5, $6)",
				 6, params);
	if (res == NULL || PQntuples(res) != 1)
	{
		PQclear(res);
		return false;
	}
	outcome = pstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (strcmp(outcome, "conflict") == 0)
		ereport(WARNING,
				(errmsg("streamlog consume resolver: consumer group \"%s\", topic id %d: the offsets committed by transaction \"%s\" were not applied on node %d, the group's new coordinator: the group had moved on there",
						first->group_id, first->topic_id, first->gid, coordinator),
				 errdetail("The coordinator failed over while the commit was in doubt; records may have been consumed twice (node %d's log names the partitions).",
						   coordinator)));
	return strcmp(outcome, "settled") == 0 || strcmp(outcome, "conflict") == 0;
}

static void
forget(const char *gid)
{
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SlConsumeIntentForget(gid);
	PopActiveSnapshot();
	CommitTransactionCommand();
}

void
SlRemoteGroupResolve(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	SlClusterNode *nodes;
	int			nnodes;
	char	   *prefix;
	List	   *intents;
	List	   *set = NIL;
	List	   *forgettable = NIL;
	bool		set_ok = true;
	ListCell   *lc;

	if (!SlClusterEnabled())
		return;
	nodes = palloc(sizeof(SlClusterNode) * SL_MAX_NODES);
	nnodes = SlClusterGetNodes(nodes, SL_MAX_NODES);
	prefix = SlRemoteGroupGidPrefix();
	for (int i = 0; i < nnodes; i++)
		if (nodes[i].node_id != sl_node_id)
			finish_prepared_on(nodes[i].node_id, prefix);

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(cxt);
	intents = SlConsumeIntentList();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	/* By gid: all of a gid's sets settled, it is forgotten */
	for (int i = 0; i <= list_length(intents); i++)
	{
		SlConsumeIntent *in = i < list_length(intents) ? list_nth(intents, i) : NULL;
		SlConsumeIntent *prev = set != NIL ? linitial(set) : NULL;

		if (prev != NULL && (in == NULL || strcmp(in->gid, prev->gid) != 0 ||
							 strcmp(in->group_id, prev->group_id) != 0 ||
							 in->topic_id != prev->topic_id))
		{
			bool		settled;

			/* the group's placement is read from the catalog */
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			MemoryContextSwitchTo(cxt);
			settled = settle_intents(set);
			PopActiveSnapshot();
			CommitTransactionCommand();
			MemoryContextSwitchTo(cxt);
			set_ok = settled && set_ok;
			set = NIL;
			if (in == NULL || strcmp(in->gid, prev->gid) != 0)
			{
				if (set_ok)
					forgettable = lappend(forgettable, prev->gid);
				set_ok = true;
			}
		}
		if (in != NULL)
			set = lappend(set, in);
	}
	foreach(lc, forgettable)
		forget((const char *) lfirst(lc));
}
