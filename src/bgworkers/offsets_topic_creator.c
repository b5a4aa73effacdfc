/*
 * The short-lived worker that creates __consumer_offsets on first use (see
 * storage/offsets_topic.c): the topic is created and committed in the
 * worker's own transaction, so that the commit that first needs it does not
 * make others wait on its transaction, nor take the topic with it if it
 * rolls back.  Started by the backend that needs the topic, for its
 * database (bgw_main_arg); an error is logged and the worker exits.
 *
 * On a cluster the controller creates it, for every node (the creators of
 * several nodes may ask at once: one wins, the others find it exists),
 * replicated as Kafka replicates it (offsets.topic.replication.factor):
 * the cluster's default replication factor, capped by the live nodes so
 * that a young cluster can still coordinate groups, and the broker default
 * min.insync.replicas, capped by that factor.  Committed offsets then
 * survive the loss of min.insync.replicas - 1 nodes (README, "Consumer
 * groups on a cluster").
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/cluster_topics.h"
#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/storage/storage.h"

extern PGDLLEXPORT void SlOffsetsTopicCreatorMain(Datum arg);

/* How often a creator looks for a topic another node's creator made */
#define CREATOR_POLL_MS 20

/*
 * Wait until this node's catalog has the topic, which another node's
 * creator had the controller create: the one that asked for it here looks
 * it up as soon as this worker exits
 */
static void
wait_for_topic(void)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   SL_CLUSTER_TOPIC_TIMEOUT_MS);

	while (SlTopicLookup(SL_OFFSETS_TOPIC_NAME, true) == NULL)
	{
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("%s exists on the cluster but not yet on this node",
							SL_OFFSETS_TOPIC_NAME),
					 errhint("See streamlog.raft_status: this node's catalog_synced_index lags.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 CREATOR_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
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
 * The topic's configs on a cluster: Kafka's, and min.insync.replicas at
 * most the replication factor (more could never take a commit)
 */
static Jsonb *
cluster_offsets_config(int replication_factor)
{
	Jsonb	   *base = SlOffsetsTopicConfig();
	char	   *text = JsonbToCString(NULL, &base->root, VARSIZE(base));
	int			min_insync = Min(sl_min_insync_replicas, replication_factor);

	Assert(text[strlen(text) - 1] == '}');
	text[strlen(text) - 1] = '\0';
	text = psprintf("%s, \"min.insync.replicas\": \"%d\"}", text, Max(min_insync, 1));
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

/* Have the cluster's controller create the topic unless it exists */
static void
create_on_cluster(void)
{
	Jsonb	   *config;
	char	   *message = NULL;
	int16		error;
	int			replication_factor;

	if (SlTopicLookup(SL_OFFSETS_TOPIC_NAME, true) != NULL)
		return;
	replication_factor = Max(Min(sl_default_replication_factor, live_node_count()), 1);
	config = SlTopicCheckCreate(SL_OFFSETS_TOPIC_NAME, sl_offsets_topic_num_partitions,
								cluster_offsets_config(replication_factor), true);
	error = SlClusterCreateTopic(SL_OFFSETS_TOPIC_NAME, sl_offsets_topic_num_partitions,
								 replication_factor, config, true, NULL,
								 SL_CLUSTER_TOPIC_TIMEOUT_MS, &message);
	if (error == SL_ERR_TOPIC_ALREADY_EXISTS)
		wait_for_topic();
	else if (error != SL_ERR_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the cluster's controller did not create %s: Kafka error %d",
						SL_OFFSETS_TOPIC_NAME, error),
				 message ? errdetail("%s", message) : 0));
}

void
SlOffsetsTopicCreatorMain(Datum arg)
{
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
	pgstat_report_appname("streamlog topic creator");

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SlClusterEnabled())
		create_on_cluster();
	else
		SlOffsetsTopicCreate();
	PopActiveSnapshot();
	CommitTransactionCommand();
}
