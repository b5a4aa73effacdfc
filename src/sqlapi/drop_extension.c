/*
 * DROP EXTENSION streamlog: every segment is a table, and dropping a table
 * locks it (and its TOAST table and indexes) until the transaction ends, so
 * an installation with thousands of partitions needs more locks than one
 * transaction may hold.  That limit cannot be lifted from here; what we add
 * is the way out: streamlog.drop_all_topics() drops the topics a few per
 * transaction, after which the extension drops with few locks.
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "tcop/utility.h"

#include "streamlog/sqlapi/drop_extension.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

/* Whether stmt is DROP EXTENSION naming streamlog */
static bool
drops_streamlog(Node *stmt)
{
	DropStmt   *drop;
	ListCell   *lc;

	if (!IsA(stmt, DropStmt))
		return false;
	drop = (DropStmt *) stmt;
	if (drop->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, drop->objects)
	{
		Node	   *name = lfirst(lc);

		if (IsA(name, String) && strcmp(strVal(name), "streamlog") == 0)
			return true;
	}
	return false;
}

static void
streamlog_process_utility(PlannedStmt *pstmt, const char *queryString,
						  bool readOnlyTree, ProcessUtilityContext context,
						  ParamListInfo params, QueryEnvironment *queryEnv,
						  DestReceiver *dest, QueryCompletion *qc)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	if (!drops_streamlog(pstmt->utilityStmt))
	{
		(prev_process_utility ? prev_process_utility : standard_ProcessUtility)
			(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		return;
	}

	PG_TRY();
	{
		(prev_process_utility ? prev_process_utility : standard_ProcessUtility)
			(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		/* The lock table is full: say how to drop with fewer locks */
		if (edata->sqlerrcode != ERRCODE_OUT_OF_MEMORY)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("%s", edata->message),
				 errdetail("Dropping streamlog drops every segment table of every topic in one transaction, which locks each of them."),
				 errhint("Drop the topics first, a few per transaction, with CALL streamlog.drop_all_topics(); then drop the extension. Or raise max_locks_per_transaction and restart the server.")));
	}
	PG_END_TRY();
}

void
SlDropExtensionInit(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = streamlog_process_utility;
}
