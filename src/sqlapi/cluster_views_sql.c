/*
 * The cluster as SQL sees it: streamlog.nodes, streamlog.raft_status and
 * streamlog.raft_members read what the Raft worker last published in
 * shared memory (metadata/cluster_state.h).  A standalone node shows
 * itself: one node, its own controller, one voter.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/shmem.h"
#include "streamlog/metadata/cluster_state.h"
#include "streamlog/metadata/membership.h"

/* Unix ms as a timestamptz */
static Datum
unix_ms_to_timestamptz(int64 ms)
{
	TimestampTz ts = (ms - (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000) * 1000;

	return TimestampTzGetDatum(ts);
}

static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = s == NULL || s[0] == '\0';
	return *isnull ? (Datum) 0 : CStringGetTextDatum(s);
}

PG_FUNCTION_INFO_V1(streamlog_cluster_nodes);

/* streamlog.cluster_nodes(): the nodes this node knows, by node id */
Datum
streamlog_cluster_nodes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlClusterNode *nodes = palloc(sizeof(SlClusterNode) * SL_MAX_NODES);
	int			n;
	int32		controller_id;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	n = SlClusterGetNodes(nodes, SL_MAX_NODES);
	controller_id = SlClusterControllerId();
	for (int i = 0; i < n; i++)
	{
		const SlClusterNode *node = &nodes[i];
		Datum		values[12];
		bool		nulls[12] = {0};

		values[0] = Int32GetDatum(node->node_id);
		values[1] = text_or_null(node->kafka_host, &nulls[1]);
		values[2] = Int32GetDatum(node->kafka_port);
		nulls[2] = node->kafka_port <= 0;
		values[3] = text_or_null(node->sql_conninfo, &nulls[3]);
		values[4] = text_or_null(node->raft_address, &nulls[4]);
		values[5] = text_or_null(node->rack, &nulls[5]);
		values[6] = CStringGetTextDatum(node->shutting_down ? "shutting_down" :
										node->fenced ? "fenced" : "running");
		if (node->last_heartbeat_ms > 0)
			values[7] = unix_ms_to_timestamptz(node->last_heartbeat_ms);
		else
			nulls[7] = true;
		values[8] = BoolGetDatum(node->node_id == controller_id);
		values[9] = BoolGetDatum(node->voter);
		values[10] = BoolGetDatum(node->observer);
		values[11] = Int64GetDatum((int64) node->incarnation);
		nulls[11] = node->incarnation == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* This node's Raft status as published, or a standalone node's */
static void
read_status(SlQuorumStatus *st, uint64 *synced, int32 *controller_id,
			uint64 *controller_epoch, char **refused)
{
	SlClusterGetQuorumStatus(st);
	st->node_id = sl_node_id;
	*refused = NULL;
	*synced = 0;
	*controller_id = sl_node_id;
	*controller_epoch = 0;
	if (!SlClusterEnabled() || sl_cluster == NULL)
		return;
	LWLockAcquire(&sl_cluster->lock, LW_SHARED);
	*synced = sl_cluster->catalog_synced_index;
	*controller_id = sl_cluster->controller_id;
	*controller_epoch = sl_cluster->controller_epoch;
	if (sl_cluster->refused[0])
		*refused = pstrdup(sl_cluster->refused);
	LWLockRelease(&sl_cluster->lock);
}

/* This node's part in the quorum, in KIP-595's words */
static const char *
role_name(const SlQuorumStatus *st, const char *refused)
{
	if (!SlClusterEnabled())
		return "standalone";
	if (refused)
		return "refused";
	if (st->is_leader)
		return "leader";
	for (int i = 0; i < st->nmembers; i++)
		if (st->members[i].node_id == st->node_id)
			return st->members[i].role == SL_QUORUM_VOTER ? "follower" : "observer";
	return "none";
}

PG_FUNCTION_INFO_V1(streamlog_raft_status);

/* streamlog.raft_status(): one row, this node's Raft state */
Datum
streamlog_raft_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlQuorumStatus st;
	uint64		synced;
	int32		controller_id;
	uint64		controller_epoch;
	char	   *refused;
	Datum		values[12];
	bool		nulls[12] = {0};

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	read_status(&st, &synced, &controller_id, &controller_epoch, &refused);
	values[0] = Int32GetDatum(st.node_id);
	values[1] = CStringGetTextDatum(role_name(&st, refused));
	values[2] = Int64GetDatum((int64) st.term);
	values[3] = Int32GetDatum(st.leader_id);
	nulls[3] = st.leader_id < 0;
	values[4] = Int64GetDatum((int64) st.commit_index);
	values[5] = Int64GetDatum((int64) st.applied_index);
	values[6] = Int64GetDatum((int64) st.last_index);
	values[7] = Int64GetDatum((int64) synced);
	values[8] = Int32GetDatum(controller_id);
	nulls[8] = controller_id < 0;
	values[9] = Int64GetDatum((int64) controller_epoch);
	values[10] = text_or_null(SlClusterEnabled() ? sl_cluster_id : NULL, &nulls[10]);
	values[11] = text_or_null(refused, &nulls[11]);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(streamlog_raft_members);

/*
 * streamlog.raft_members(): the members of the quorum; their progress is
 * known on the leader only (NULL elsewhere)
 */
Datum
streamlog_raft_members(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlQuorumStatus st;
	uint64		synced;
	int32		controller_id;
	uint64		controller_epoch;
	char	   *refused;

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	read_status(&st, &synced, &controller_id, &controller_epoch, &refused);
	for (int i = 0; i < st.nmembers && i < (int) lengthof(st.members); i++)
	{
		Datum		values[5];
		bool		nulls[5] = {0};
		bool		known = st.is_leader || st.members[i].node_id == st.node_id;

		values[0] = Int32GetDatum(st.members[i].node_id);
		values[1] = text_or_null(st.members[i].address, &nulls[1]);
		values[2] = CStringGetTextDatum(st.members[i].role == SL_QUORUM_VOTER ? "voter" : "observer");
		values[3] = Int64GetDatum((int64) st.match_index[i]);
		nulls[3] = !known || !SlClusterEnabled();
		values[4] = Int64GetDatum(st.last_contact_ms[i]);
		nulls[4] = !known || st.last_contact_ms[i] < 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
