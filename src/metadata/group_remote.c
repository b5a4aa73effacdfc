/*
 * SQL consume() on a node that does not coordinate the group (README, "SQL
 * consume() on any node").
 *
 * The group's committed offsets live on its coordinator.  A consumer on
 * another node opens (once per backend, then reused) a libpq connection to
 * the coordinator, BEGINs a transaction there and claims partitions with
 * streamlog._group_claim(): the same selection as a local consume()
 * (storage/group_claim.c), the row locks held by that remote transaction.
 * It reads the records from its own replica, then advances the offsets
 * with streamlog._group_advance() in the same remote transaction.
 *
 * Two-phase commit ties the remote transaction to the caller's:
 * - PRE_COMMIT: the caller's transaction records its intents (group,
 *   topic, partition, from and to offset, storage/group_remote_claims.c),
 *   then PREPARE TRANSACTION on the coordinator; a failure there aborts
 *   the caller's transaction, so neither side commits.
 * - COMMIT: COMMIT PREPARED, then streamlog._group_settle() writes the
 *   advance's __consumer_offsets records (a prepared transaction cannot
 *   carry records: log offsets are assigned at commit) and waits for their
 *   replication.  Nothing here may raise an ERROR: a failure is logged and
 *   left to the resolver.
 * - ABORT: ROLLBACK (or ROLLBACK PREPARED); failures are left to the
 *   resolver, or to the coordinator, which rolls back a transaction whose
 *   connection closed.
 *
 * The gid names this node (id and system identifier) and the caller's full
 * transaction id, so that the resolver (SlRemoteGroupResolve, in the
 * forwarder worker) decides a prepared transaction found on any node by
 * its local transaction alone: committed, it is committed; aborted (also
 * by a crash), rolled back; in progress, left alone.
 *
 * A savepoint rolled back after it consumed through a remote transaction
 * cannot undo the remote claim alone: the caller's transaction can then
 * only roll back (an ERROR at commit says so).
 */
#include "postgres.h"

#include <ctype.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/node_link.h"
#include "streamlog/metadata/group_placement.h"
#include "streamlog/metadata/group_remote.h"

/* How long one call to a coordinator may take */
#define REMOTE_CALL_TIMEOUT_MS 30000
/* How long connecting may take */
#define REMOTE_CONNECT_TIMEOUT_MS 5000
/* The gid's prefix: this node's id and system identifier */
#define GID_PREFIX "sl_consume"

/* One partition advanced in the current transaction */
typedef struct Advance
{
	char	   *group_id;
	int32		topic_id;
	int32		partition;
	int64		from_offset;	/* before the transaction's first advance */
	int64		to_offset;		/* after its last */
	int			nesting;		/* the deepest subtransaction level that moved it */
} Advance;

/* A connection to one coordinator, and the transaction open there */
typedef struct RemoteLink
{
	int32		node_id;
	char		conninfo[sizeof(((SlClusterNode *) 0)->sql_conninfo)];
	PGconn	   *conn;
	bool		in_xact;		/* BEGIN sent in the current local transaction */
	bool		prepared;		/* PREPARE TRANSACTION done */
	int			nesting;		/* the subtransaction level that began it */
	List	   *advances;		/* of Advance, in TopTransactionContext */
	char		gid[200];
} RemoteLink;

static RemoteLink links[SL_MAX_NODES];
static int	nlinks = 0;
static bool callbacks_registered = false;
/* a savepoint that used a remote transaction was rolled back */
static bool poisoned = false;

static void
close_link(RemoteLink *l)
{
	if (l->conn != NULL)
	{
		SlNodeLinkClose(l->conn);
		l->conn = NULL;
	}
	l->in_xact = false;
	l->prepared = false;
}

/* Open a connection to node_id (metadata/node_link.h); NULL and *why if not */
PGconn *
SlRemoteConnect(int32 node_id, const char *conninfo, const char *appname,
				TimestampTz deadline, char **why)
{
	/* the coordinator's answers must mean "stored durably" */
	return SlNodeLinkConnect(conninfo, appname, "options", "-c synchronous_commit=on",
							 deadline, why);
}

/*
 * Run sql on conn and return its last result (the caller PQclears it), or
 * NULL with *why when there was no answer by deadline (the connection is
 * then unusable)
 */
PGresult *
SlRemoteRun(PGconn *conn, const char *sql, int nparams, const char *const *params,
			TimestampTz deadline, char **why)
{
	PGresult   *res = NULL;

	if (SlNodeLinkQuery(conn, sql, nparams, NULL, params, NULL, NULL, 0, deadline,
						&res, why) != SL_NODE_LINK_ANSWERED)
	{
		PQclear(res);
		return NULL;
	}
	return res;
}

static bool
result_ok(PGresult *res)
{
	return res != NULL && (PQresultStatus(res) == PGRES_TUPLES_OK ||
						   PQresultStatus(res) == PGRES_COMMAND_OK);
}

/* Raise the coordinator's error as ours, with its SQLSTATE */
static void
raise_remote_error(RemoteLink *l, PGresult *res, const char *why)
{
	const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *message = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	int			code = ERRCODE_CONNECTION_FAILURE;
	char	   *msg;

	if (sqlstate != NULL && strlen(sqlstate) == 5)
		code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4]);
	msg = message ? pstrdup(message) : pstrdup(why ? why : "no answer");
	PQclear(res);
	if (sqlstate == NULL)
		close_link(l);
	ereport(ERROR,
			(errcode(code),
			 errmsg("the group's coordinator, node %d, refused: %s", l->node_id, msg),
			 hint ? errhint("%s", hint) :
			 errhint("Retry; the coordinator's server log says more.")));
}

/* Run sql on the link's connection; ERROR when it fails */
static PGresult *
call_or_error(RemoteLink *l, const char *sql, int nparams, const char *const *params)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   REMOTE_CALL_TIMEOUT_MS);
	char	   *why = NULL;
	PGresult   *res = SlRemoteRun(l->conn, sql, nparams, params, deadline, &why);

	if (!result_ok(res))
		raise_remote_error(l, res, why);
	return res;
}

/* Run sql in a callback that must not fail: false (logged) when it did */
static bool
call_quietly(RemoteLink *l, const char *sql, int nparams, const char *const *params)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   REMOTE_CALL_TIMEOUT_MS);
	char	   *why = NULL;
	PGresult   *res;
	bool		ok;

	if (l->conn == NULL)
		return false;
	res = SlRemoteRun(l->conn, sql, nparams, params, deadline, &why);
	ok = result_ok(res);
	if (!ok)
		ereport(LOG,
				(errmsg("streamlog: \"%s\" on node %d failed, left to the resolver: %s",
						sql, l->node_id,
						res ? pchomp(PQresultErrorMessage(res)) : why)));
	if (res == NULL)
		close_link(l);
	PQclear(res);
	return ok;
}

/* This node's prefix of the gids it prepares: "sl_consume_<node>_<sysid>_" */
char *
SlRemoteGroupGidPrefix(void)
{
	return psprintf(GID_PREFIX "_%d_" UINT64_FORMAT "_", sl_node_id, GetSystemIdentifier());
}

static char *int64_array_text(const int64 *values, int count);
static char *int32_array_text(const int32 *values, int count);
static void remote_xact_callback(XactEvent event, void *arg);
static void remote_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									SubTransactionId parentSubid, void *arg);

/*
 * The link to coordinator with a transaction open there for the current
 * local transaction: connect and BEGIN as needed
 */
/*
 * Before claiming on a coordinator: this node's committed advances of the
 * group that another node prepared, and that this one may not have seen
 * (the group failed over while they were in doubt), are applied here first
 * where the group is still at their from offset (streamlog._group_settle
 * without gid), so that this node does not read those records again.  The
 * caller's transaction forgets them; the resolver would do the same later.
 */
static void
settle_moved_intents(RemoteLink *l, const char *group_id, int32 topic_id)
{
	List	   *intents = SlConsumeIntentList();
	List	   *set = NIL;
	ListCell   *lc;

	for (int i = 0; i <= list_length(intents); i++)
	{
		SlConsumeIntent *in = i < list_length(intents) ? list_nth(intents, i) : NULL;
		SlConsumeIntent *first = set != NIL ? linitial(set) : NULL;

		if (in != NULL && (in->coordinator == l->node_id || in->topic_id != topic_id ||
						   strcmp(in->group_id, group_id) != 0))
			in = NULL;
		if (first != NULL && (in == NULL || strcmp(in->gid, first->gid) != 0))
		{
			int			n = list_length(set);
			int32	   *parts = palloc(sizeof(int32) * n);
			int64	   *from = palloc(sizeof(int64) * n);
			int64	   *to = palloc(sizeof(int64) * n);
			const char *params[6];
			int			k = 0;

			foreach(lc, set)
			{
				SlConsumeIntent *x = lfirst(lc);

				parts[k] = x->partition;
				from[k] = x->from_offset;
				to[k++] = x->to_offset;
			}
			params[0] = NULL;
			params[1] = group_id;
			params[2] = psprintf("%d", topic_id);
			params[3] = int32_array_text(parts, n);
			params[4] = int64_array_text(from, n);
			params[5] = int64_array_text(to, n);
			PQclear(call_or_error(l, "SELECT streamlog._group_settle($1, $2, $3, $4, $5, $6)",
								  6, params));
			SlConsumeIntentForgetSet(first->gid, group_id, topic_id);
			set = NIL;
		}
		if (in != NULL)
			set = lappend(set, in);
	}
}

static RemoteLink *
open_link(int32 coordinator, const char *group_id, int32 topic_id)
{
	RemoteLink *l = NULL;
	SlClusterNode node;
	char	   *why = NULL;

	if (!callbacks_registered)
	{
		RegisterXactCallback(remote_xact_callback, NULL);
		RegisterSubXactCallback(remote_subxact_callback, NULL);
		callbacks_registered = true;
	}
	for (int i = 0; i < nlinks; i++)
		if (links[i].node_id == coordinator)
			l = &links[i];
	if (l != NULL && l->in_xact)
		return l;
	if (!SlClusterGetNode(coordinator, &node) || node.sql_conninfo[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the group's coordinator, node %d, has no known SQL address", coordinator),
				 errhint("Set streamlog.advertised_sql_conninfo on node %d.", coordinator)));
	if (l == NULL)
	{
		if (nlinks == SL_MAX_NODES)
			elog(ERROR, "too many coordinators in one transaction");
		l = &links[nlinks++];
		memset(l, 0, sizeof(*l));
		l->node_id = coordinator;
	}
	if (l->conn != NULL && (strcmp(l->conninfo, node.sql_conninfo) != 0 ||
							PQstatus(l->conn) != CONNECTION_OK ||
							PQtransactionStatus(l->conn) != PQTRANS_IDLE))
		close_link(l);
	if (l->conn == NULL)
	{
		TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   REMOTE_CONNECT_TIMEOUT_MS);

		l->conn = SlRemoteConnect(coordinator, node.sql_conninfo,
							   psprintf("streamlog consume() of node %d", sl_node_id),
							   deadline, &why);
		if (l->conn == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not connect to node %d, the group's coordinator: %s",
							coordinator, why),
					 errhint("Retry once node %d is reachable, or consume on it: %s.",
							 coordinator, node.sql_conninfo)));
		strlcpy(l->conninfo, node.sql_conninfo, sizeof(l->conninfo));
	}
	settle_moved_intents(l, group_id, topic_id);
	PQclear(call_or_error(l, "BEGIN", 0, NULL));
	l->in_xact = true;
	l->prepared = false;
	l->advances = NIL;
	l->nesting = GetCurrentTransactionNestLevel();
	l->gid[0] = '\0';
	return l;
}

static char *
int64_array_text(const int64 *values, int count)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < count; i++)
		appendStringInfo(&buf, "%s" INT64_FORMAT, i ? "," : "", values[i]);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

static char *
int32_array_text(const int32 *values, int count)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < count; i++)
		appendStringInfo(&buf, "%s%d", i ? "," : "", values[i]);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

int
SlRemoteGroupClaimNext(int32 coordinator, const char *group_id, const SlTopic *topic,
					   const int64 *hwms, const int64 *log_starts, int64 wanted, bool *tried,
					   int32 *partitions, int64 *offsets, bool *exhausted)
{
	RemoteLink *l = open_link(coordinator, group_id, topic->topic_id);
	int32	   *tried_list = palloc(sizeof(int32) * Max(topic->partition_count, 1));
	int			ntried = 0;
	const char *params[6];
	PGresult   *res;
	int			nclaimed = 0;
	int			candidates_left = 0;

	for (int32 p = 0; p < topic->partition_count; p++)
		if (tried[p])
			tried_list[ntried++] = p;
	params[0] = group_id;
	params[1] = psprintf("%d", topic->topic_id);
	params[2] = int64_array_text(hwms, topic->partition_count);
	params[3] = int64_array_text(log_starts, topic->partition_count);
	params[4] = psprintf(INT64_FORMAT, wanted);
	params[5] = int32_array_text(tried_list, ntried);
	res = call_or_error(l, "SELECT partition, committed_offset "
						"FROM streamlog._group_claim($1, $2, $3, $4, $5, $6)",
						6, params);
	for (int r = 0; r < PQntuples(res); r++)
	{
		int32		p = (int32) strtol(PQgetvalue(res, r, 0), NULL, 10);
		int64		offset = strtoi64(PQgetvalue(res, r, 1), NULL, 10);

		/* a coordinator's answer, but checked all the same */
		if (p < 0 || p >= topic->partition_count || tried[p])
			continue;
		tried[p] = true;
		if (offset < 0)
			continue;
		partitions[nclaimed] = p;
		offsets[nclaimed++] = offset;
	}
	/*
	 * The coordinator tried nothing: it has no candidate left.  Otherwise
	 * another step finds more only if some partition was not tried.
	 */
	if (PQntuples(res) > 0)
		for (int32 p = 0; p < topic->partition_count; p++)
			if (!tried[p])
				candidates_left++;
	PQclear(res);
	*exhausted = candidates_left == 0;
	return nclaimed;
}

void
SlRemoteGroupAdvance(int32 coordinator, const char *group_id, const SlTopic *topic,
					 const int32 *partitions, const int64 *from_offsets,
					 const int64 *to_offsets, int count)
{
	RemoteLink *l = open_link(coordinator, group_id, topic->topic_id);
	const char *params[5];
	MemoryContext oldcxt;

	if (count == 0)
		return;
	if (l->gid[0] == '\0')
	{
		/* the caller's transaction id names the prepared transaction */
		FullTransactionId fxid = GetTopFullTransactionId();

		snprintf(l->gid, sizeof(l->gid), "%s" UINT64_FORMAT, SlRemoteGroupGidPrefix(),
				 U64FromFullTransactionId(fxid));
	}
	params[0] = l->gid;
	params[1] = group_id;
	params[2] = psprintf("%d", topic->topic_id);
	params[3] = int32_array_text(partitions, count);
	params[4] = int64_array_text(to_offsets, count);
	PQclear(call_or_error(l, "SELECT streamlog._group_advance($1, $2, $3, $4, $5)",
						  5, params));

	oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	for (int i = 0; i < count; i++)
	{
		Advance    *a = NULL;
		ListCell   *lc;

		foreach(lc, l->advances)
		{
			Advance    *b = lfirst(lc);

			if (b->topic_id == topic->topic_id && b->partition == partitions[i] &&
				strcmp(b->group_id, group_id) == 0)
				a = b;
		}
		if (a == NULL)
		{
			a = palloc(sizeof(Advance));
			a->group_id = pstrdup(group_id);
			a->topic_id = topic->topic_id;
			a->partition = partitions[i];
			a->from_offset = from_offsets[i];
			l->advances = lappend(l->advances, a);
		}
		a->to_offset = to_offsets[i];
		a->nesting = GetCurrentTransactionNestLevel();
	}
	MemoryContextSwitchTo(oldcxt);
}

/* The advances of l for one (group, topic), as arrays */
typedef struct AdvanceSet
{
	const char *group_id;
	int32		topic_id;
	int			count;
	int32	   *partitions;
	int64	   *from_offsets;
	int64	   *to_offsets;
} AdvanceSet;

/* Split l's advances by (group, topic); returns how many sets */
static int
advance_sets(RemoteLink *l, AdvanceSet **out)
{
	int			n = list_length(l->advances);
	AdvanceSet *sets = palloc0(sizeof(AdvanceSet) * Max(n, 1));
	int			nsets = 0;
	ListCell   *lc;

	foreach(lc, l->advances)
	{
		Advance    *a = lfirst(lc);
		AdvanceSet *s = NULL;

		for (int i = 0; i < nsets; i++)
			if (sets[i].topic_id == a->topic_id && strcmp(sets[i].group_id, a->group_id) == 0)
				s = &sets[i];
		if (s == NULL)
		{
			s = &sets[nsets++];
			s->group_id = a->group_id;
			s->topic_id = a->topic_id;
			s->partitions = palloc(sizeof(int32) * n);
			s->from_offsets = palloc(sizeof(int64) * n);
			s->to_offsets = palloc(sizeof(int64) * n);
		}
		s->partitions[s->count] = a->partition;
		s->from_offsets[s->count] = a->from_offset;
		s->to_offsets[s->count++] = a->to_offset;
	}
	*out = sets;
	return nsets;
}

/* PRE_COMMIT: record the intents, then prepare; any failure aborts the caller */
static void
prepare_links(void)
{
	if (poisoned)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("cannot commit a transaction that rolled back a savepoint after consume() ran on another node's group"),
				 errdetail("The claim on the group's coordinator cannot be undone for the savepoint alone."),
				 errhint("Roll back the whole transaction, or consume outside savepoints that may roll back.")));
	for (int i = 0; i < nlinks; i++)
	{
		RemoteLink *l = &links[i];
		AdvanceSet *sets;
		int			nsets;
		char	   *sql;

		if (!l->in_xact)
			continue;
		if (l->advances == NIL)
		{
			/* claimed but read nothing: nothing to commit there */
			call_quietly(l, "ROLLBACK", 0, NULL);
			l->in_xact = false;
			continue;
		}
		nsets = advance_sets(l, &sets);
		for (int s = 0; s < nsets; s++)
			SlConsumeIntentAdd(l->gid, l->node_id, sets[s].group_id, sets[s].topic_id,
							   sets[s].partitions, sets[s].from_offsets,
							   sets[s].to_offsets, sets[s].count);
		sql = psprintf("PREPARE TRANSACTION %s", quote_literal_cstr(l->gid));
		PQclear(call_or_error(l, sql, 0, NULL));
		l->prepared = true;
	}
}

/* COMMIT: commit the prepared transactions and write their records; never fails */
static void
commit_links(void)
{
	for (int i = 0; i < nlinks; i++)
	{
		RemoteLink *l = &links[i];
		AdvanceSet *sets;
		int			nsets;

		if (!l->in_xact)
			continue;
		l->in_xact = false;
		if (!l->prepared)
			continue;
		l->prepared = false;
		if (!call_quietly(l, psprintf("COMMIT PREPARED %s", quote_literal_cstr(l->gid)),
						  0, NULL))
			continue;
		nsets = advance_sets(l, &sets);
		for (int s = 0; s < nsets; s++)
		{
			const char *params[6];

			params[0] = l->gid;
			params[1] = sets[s].group_id;
			params[2] = psprintf("%d", sets[s].topic_id);
			params[3] = int32_array_text(sets[s].partitions, sets[s].count);
			params[4] = int64_array_text(sets[s].from_offsets, sets[s].count);
			params[5] = int64_array_text(sets[s].to_offsets, sets[s].count);
			if (!call_quietly(l, "SELECT streamlog._group_settle($1, $2, $3, $4, $5, $6)",
							  6, params))
				break;
		}
	}
}

/* ABORT: roll the remote transactions back; never fails */
static void
abort_links(void)
{
	for (int i = 0; i < nlinks; i++)
	{
		RemoteLink *l = &links[i];

		if (!l->in_xact)
			continue;
		l->in_xact = false;
		if (l->conn == NULL)
			continue;
		if (l->prepared)
		{
			l->prepared = false;
			call_quietly(l, psprintf("ROLLBACK PREPARED %s", quote_literal_cstr(l->gid)),
						 0, NULL);
		}
		else if (PQtransactionStatus(l->conn) == PQTRANS_ACTIVE)
			close_link(l);		/* interrupted mid-call: closing rolls it back */
		else
			call_quietly(l, "ROLLBACK", 0, NULL);
	}
}

/* The transaction's memory goes: so do the lists in it */
static void
forget_advances(void)
{
	for (int i = 0; i < nlinks; i++)
		links[i].advances = NIL;
	poisoned = false;
}

static void
remote_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			prepare_links();
			break;
		case XACT_EVENT_PRE_PREPARE:
			for (int i = 0; i < nlinks; i++)
				if (links[i].in_xact)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cannot prepare a transaction that consumed a group coordinated by another node")));
			break;
		case XACT_EVENT_COMMIT:
			commit_links();
			forget_advances();
			break;
		case XACT_EVENT_ABORT:
			abort_links();
			forget_advances();
			break;
		default:
			break;
	}
}

static void
remote_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	for (int i = 0; i < nlinks; i++)
	{
		RemoteLink *l = &links[i];
		ListCell   *lc;
		bool		advanced_here = false;

		foreach(lc, l->advances)
			if (((Advance *) lfirst(lc))->nesting >= GetCurrentTransactionNestLevel())
				advanced_here = true;
		/* an advance made inside the savepoint cannot be undone alone */
		if (l->in_xact && advanced_here)
			poisoned = true;
		else if (l->in_xact && l->advances == NIL &&
				 l->nesting >= GetCurrentTransactionNestLevel())
		{
			/* begun in the savepoint and nothing advanced: just drop it */
			if (l->conn != NULL && PQtransactionStatus(l->conn) == PQTRANS_ACTIVE)
				close_link(l);
			else
				call_quietly(l, "ROLLBACK", 0, NULL);
			l->in_xact = false;
		}
	}
}
