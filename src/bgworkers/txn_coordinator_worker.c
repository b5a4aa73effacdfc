/*
 * The transaction coordinator's worker on a cluster
 * (txn_coordinator_worker.h; server/txn/coordinator_cluster.h).  Each
 * pass, woken by a request that stored a Prepare state or found its
 * partition not loaded, and at least every TXN_WORKER_IDLE_MS:
 *
 *	1. loads the partitions of __transaction_state this node started
 *	   leading (requests for their ids get COORDINATOR_LOAD_IN_PROGRESS
 *	   until then), and unloads those it stopped leading;
 *	2. completes each transaction in a Prepare state it coordinates: every
 *	   partition's marker written by its leader and held by its in-sync
 *	   replicas, then Complete; one that does not get there stays in
 *	   Prepare for the next pass (markers are retried, on whoever leads
 *	   the partition then);
 *	3. every TXN_EXPIRE_MS, Kafka's abort of timed-out transactions and the
 *	   expiry of idle ids (coordinator.h).
 *
 * An error is logged, its transaction aborted and its links closed; the
 * worker goes on (an ERROR reaching the top would restart the server).
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/bgworkers/txn_coordinator_worker.h"
#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/cluster_topics.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/server/txn/coordinator.h"
#include "streamlog/server/txn/coordinator_cluster.h"
#include "streamlog/storage/storage.h"
#include "streamlog/storage/txn_cluster.h"
#include "streamlog/storage/txn_state.h"
#include "streamlog/worker.h"

/* Longest wait between passes while nothing wakes the worker */
#define TXN_WORKER_IDLE_MS 250
/* How often timed-out transactions and idle ids are looked for */
#define TXN_EXPIRE_MS 1000

/* Kafka's transaction.state.log.min.isr default */
#define TXN_STATE_MIN_ISR 2

void
SlTxnCoordinatorWorkerRegister(void)
{
	SlWorkerRegister("SlTxnCoordinatorWorkerMain", "streamlog transaction coordinator");
}

static void
worker_detach(int code, Datum arg)
{
	SlTxnCoordinatorSetWorkerLatch(NULL);
	SlTxnCoordinatorDisconnect();
}

static bool
installed(MemoryContext pass)
{
	bool		yes;

	SlWorkerBeginTransaction();
	yes = OidIsValid(get_extension_oid("streamlog", true));
	SlWorkerCommitTransaction();
	MemoryContextSwitchTo(pass);
	return yes;
}

/* Step 2 of the pass: complete what waits in a Prepare state */
static int
complete_due(MemoryContext pass)
{
	List	   *due;
	ListCell   *lc;
	int			done = 0;

	SlWorkerBeginTransaction();
	MemoryContextSwitchTo(pass);
	due = SlTxnCompletionsDue();
	SlWorkerCommitTransaction();
	MemoryContextSwitchTo(pass);

	foreach(lc, due)
	{
		const char *id = lfirst(lc);
		SlTxnCompletion plan;
		bool		planned;
		bool		delivered;
		bool		finished = false;

		SlWorkerBeginTransaction();
		MemoryContextSwitchTo(pass);
		planned = SlTxnCompletionPlan(id, &plan);
		SlWorkerCommitTransaction();
		MemoryContextSwitchTo(pass);
		/* The test hook: a transaction stays in its Prepare state */
		if (!planned || sl_transaction_markers_hold)
			continue;
		delivered = SlTxnDeliverMarkers(&plan);
		if (!delivered)
			continue;
		SlWorkerBeginTransaction();
		MemoryContextSwitchTo(pass);
		finished = SlTxnCompletionFinish(id, &plan);
		SlWorkerCommitTransaction();
		MemoryContextSwitchTo(pass);
		if (finished)
			done++;
	}
	return done;
}

static void
expire(MemoryContext pass)
{
	SlWorkerBeginTransaction();
	MemoryContextSwitchTo(pass);
	(void) SlTxnExpire();
	SlWorkerCommitTransaction();
	MemoryContextSwitchTo(pass);
}

void
SlTxnCoordinatorWorkerMain(Datum arg)
{
	MemoryContext pass;
	TimestampTz last_expire = 0;
	bool		again = false;

	SlWorkerStart(NULL);
	SlTxnCoordinatorSetWorkerLatch(MyLatch);
	before_shmem_exit(worker_detach, 0);
	pass = AllocSetContextCreate(TopMemoryContext, "streamlog transaction coordinator pass",
								 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		SlWorkerWait(again ? 0 : TXN_WORKER_IDLE_MS);
		again = false;
		if (!sl_transaction_coordinator)
			continue;
		pgstat_report_activity(STATE_RUNNING, "coordinating transactions");
		MemoryContextSwitchTo(pass);
		PG_TRY();
		{
			if (installed(pass))
			{
				again = SlTxnCoordinatorSyncLoads() > 0;
				MemoryContextSwitchTo(pass);
				(void) complete_due(pass);
				if (TimestampDifferenceExceeds(last_expire, GetCurrentTimestamp(),
											   TXN_EXPIRE_MS))
				{
					last_expire = GetCurrentTimestamp();
					expire(pass);
				}
			}
		}
		PG_CATCH();
		{
			SlWorkerRecover(pass);
			SlTxnCoordinatorDisconnect();
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(pass);
		pgstat_report_activity(STATE_IDLE, NULL);
	}
}

/* Nodes that can take a replica now: registered, not fenced, not leaving */
static int
live_node_count(void)
{
	SlClusterNode *nodes = palloc(sizeof(SlClusterNode) * SL_MAX_NODES);
	int			nnodes = SlClusterGetNodes(nodes, SL_MAX_NODES);
	int			nlive = 0;

	for (int i = 0; i < nnodes; i++)
		if (!nodes[i].fenced && !nodes[i].shutting_down)
			nlive++;
	pfree(nodes);
	return nlive;
}

/*
 * The short-lived worker that has the controller create
 * __transaction_state (coordinator_cluster.h, SlTxnStateTopicReady), as
 * bgworkers/offsets_topic_creator.c does __consumer_offsets: replicated as
 * Kafka's transaction.state.log.replication.factor says, here the
 * cluster's default replication factor capped by the live nodes (a young
 * cluster can still coordinate), and min.insync.replicas Kafka's
 * transaction.state.log.min.isr (2) capped by that factor.  Another node's
 * creator may win: then the topic reaches this node's catalog shortly.
 */
void
SlTxnStateTopicCreatorMain(Datum arg)
{
	int			replication_factor;
	char	   *config;
	char	   *message = NULL;
	int16		error;
	Jsonb	   *checked;

	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
	pgstat_report_appname("streamlog topic creator");

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SlClusterEnabled() && SlTopicLookup(SL_TRANSACTION_STATE_TOPIC_NAME, true) == NULL)
	{
		replication_factor = Max(Min(sl_default_replication_factor, live_node_count()), 1);
		config = psprintf("{\"cleanup.policy\": \"compact\", \"compression.type\": \"uncompressed\", "
						  "\"segment.bytes\": \"104857600\", \"min.insync.replicas\": \"%d\"}",
						  Max(Min(TXN_STATE_MIN_ISR, replication_factor), 1));
		checked = SlTopicCheckCreate(SL_TRANSACTION_STATE_TOPIC_NAME,
									 sl_transaction_state_topic_num_partitions,
									 DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																		CStringGetDatum(config))),
									 true);
		error = SlClusterCreateTopic(SL_TRANSACTION_STATE_TOPIC_NAME,
									 sl_transaction_state_topic_num_partitions,
									 replication_factor, checked, true, NULL,
									 SL_CLUSTER_TOPIC_TIMEOUT_MS, &message);
		if (error != SL_ERR_NONE && error != SL_ERR_TOPIC_ALREADY_EXISTS)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the cluster's controller did not create %s: Kafka error %d",
							SL_TRANSACTION_STATE_TOPIC_NAME, error),
					 message ? errdetail("%s", message) : 0));
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
}
