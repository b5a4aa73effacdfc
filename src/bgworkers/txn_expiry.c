/*
 * The transaction coordinator's periodic pass in a background worker
 * (txn_expiry.h): one transaction per pass; an error is logged and the
 * next pass tries again, never taking the worker down.  Nothing runs while
 * the coordinator is off, on a standby, or while the extension is not
 * installed.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "streamlog/bgworkers/txn_expiry.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/server/txn/coordinator.h"

void
SlTransactionsExpire(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext pass;

	/*
	 * A standby's coordinator state changes only by replaying the primary's;
	 * on a cluster the coordinator's worker runs this pass
	 * (txn_coordinator_worker.c)
	 */
	if (!SlTxnCoordinatorEnabled() || RecoveryInProgress() || SlClusterEnabled())
		return;
	pass = AllocSetContextCreate(TopMemoryContext, "streamlog transactions expiry",
								 ALLOCSET_DEFAULT_SIZES);
	PG_TRY();
	{
		int			changed = 0;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		MemoryContextSwitchTo(pass);
		if (OidIsValid(get_extension_oid("streamlog", true)))
			changed = SlTxnExpire();
		PopActiveSnapshot();
		CommitTransactionCommand();
		if (changed > 0)
			elog(DEBUG1, "streamlog transaction coordinator: the periodic pass changed %d transactional ids",
				 changed);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(pass);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(pass);
}
