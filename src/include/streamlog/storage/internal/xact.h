/*
 * One pair of transaction callbacks for all of storage, see xact.c.
 *
 * Internal to storage: the modules that keep state until their transaction
 * ends expose their end-of-transaction handlers here, and xact.c calls them
 * in the order written there.  Nothing outside storage includes this.
 */
#ifndef SL_STORAGE_XACT_H
#define SL_STORAGE_XACT_H

#include "postgres.h"

#include "access/xact.h"
#include "nodes/pg_list.h"

/*
 * Work to do when the transaction ends, made in some subtransaction: a
 * struct that starts with an SlPendingWork, kept in a List in
 * TopTransactionContext.  A subtransaction that aborts takes its own work
 * and its children's with it; one that commits hands it to its parent,
 * which needs no bookkeeping, as the test below only compares ids.
 */
typedef struct SlPendingWork
{
	SubTransactionId subid;		/* made in this subtransaction */
} SlPendingWork;

/* Append a zeroed work item of size bytes, made in the current subtransaction */
extern void *SlPendingWorkAdd(List **list, Size size);

/*
 * Subtransaction subid aborted: remove the items made in it or in its
 * children, calling undo (if not NULL) on each before it goes.
 */
extern void SlPendingWorkAbortSub(List **list, SubTransactionId subid,
								  void (*undo) (SlPendingWork *work));

/* The modules' handlers, called by xact.c only */
extern void SlTopicsXactEvent(XactEvent event);
extern void SlTopicsSubXactAbort(SubTransactionId subid);
extern void SlLogAppendXactEvent(XactEvent event);
extern void SlLogAppendSubXactAbort(SubTransactionId subid);
extern void SlProducersXactEvent(XactEvent event);
extern void SlProducersSubXactAbort(SubTransactionId subid);
extern void SlReplicaTruncateXactEvent(XactEvent event);
extern void SlReplicaTruncateSubXactAbort(SubTransactionId subid);
extern void SlDeleteRecordsXactEvent(XactEvent event);
extern void SlDeleteRecordsSubXactAbort(SubTransactionId subid);
extern void SlReplicaAppendXactEvent(XactEvent event);
extern void SlReplicaAppendSubXactAbort(SubTransactionId subid);
extern void SlTxnIndexXactEvent(XactEvent event);
extern void SlTxnIndexSubXactAbort(SubTransactionId subid);

#endif							/* SL_STORAGE_XACT_H */
