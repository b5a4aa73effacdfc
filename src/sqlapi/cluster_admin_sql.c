/*-------------------------------------------------------------------------
 * cluster_admin_sql.c
 *	  SQL doors to the cluster's administration, the same operations as
 *	  Kafka's AddRaftVoter, RemoveRaftVoter and ElectLeaders:
 *	  streamlog.add_voter(node_id), streamlog.remove_voter(node_id) and
 *	  streamlog.elect_leaders(topic, partition).  As there, they need ALTER
 *	  on the cluster, and go to the controller from any node.
 *
 * IDENTIFICATION
 *	  src/sqlapi/cluster_admin_sql.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "streamlog/cluster/controller.h"
#include "streamlog/metadata/cluster_submit.h"
#include "streamlog/metadata/leader_election.h"
#include "streamlog/metadata/membership.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog_add_voter);
PG_FUNCTION_INFO_V1(streamlog_remove_voter);
PG_FUNCTION_INFO_V1(streamlog_elect_leaders);

/* Raise the Kafka error of a membership change as an SQL error */
static void
membership_error(int16 error_code, const char *message)
{
	int			sqlstate;
	const char *hint = NULL;

	switch (error_code)
	{
		case SL_CLUSTER_ERR_REQUEST_TIMED_OUT:
			sqlstate = ERRCODE_CONNECTION_FAILURE;
			hint = "Check that a controller is elected (streamlog.nodes) and try again.";
			break;
		case SL_CLUSTER_ERR_DUPLICATE_VOTER:
			sqlstate = ERRCODE_DUPLICATE_OBJECT;
			break;
		case SL_CLUSTER_ERR_VOTER_NOT_FOUND:
			sqlstate = ERRCODE_UNDEFINED_OBJECT;
			hint = "streamlog.raft_members lists the members of the quorum.";
			break;
		default:
			sqlstate = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
			break;
	}
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("could not change the metadata quorum: %s",
					message ? message : "unknown error"),
			 errdetail("Kafka error code %d.", error_code),
			 hint ? errhint("%s", hint) : 0));
}

static void
change_membership(FunctionCallInfo fcinfo, SlClusterSlotKind kind)
{
	int16		error_code;
	char	   *message;

	SlRequireArg(fcinfo, 0, "node_id");
	SlAclCheck(SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME, SL_ACL_ALTER);
	if (!SlClusterEnabled())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no metadata quorum is configured: this node runs standalone"),
				 errhint("Set streamlog.controller_quorum_voters on every node to run a cluster.")));
	error_code = SlClusterChangeMembership(kind, PG_GETARG_INT32(0),
										   SL_CLUSTER_SUBMIT_TIMEOUT_MS, &message);
	if (error_code != 0)
		membership_error(error_code, message);
}

Datum
streamlog_add_voter(PG_FUNCTION_ARGS)
{
	change_membership(fcinfo, SL_SLOT_ADD_VOTER);
	PG_RETURN_VOID();
}

Datum
streamlog_remove_voter(PG_FUNCTION_ARGS)
{
	change_membership(fcinfo, SL_SLOT_REMOVE_MEMBER);
	PG_RETURN_VOID();
}

/*
 * streamlog.elect_leaders(topic, partition, unclean): preferred leader
 * election of one partition, of every partition of a topic (partition
 * NULL), or of every partition (topic NULL); one row per partition, as
 * Kafka's ElectLeaders answers each: error_code 0 (its preferred replica
 * leads now), ELECTION_NOT_NEEDED (84) or PREFERRED_LEADER_NOT_AVAILABLE
 * (80), with Kafka's message.  unclean: Kafka's unclean election instead,
 * for partitions without a leader (0, 84, or ELIGIBLE_LEADERS_NOT_AVAILABLE
 * (83) when no replica is alive).
 */
Datum
streamlog_elect_leaders(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *elections = NIL;
	ListCell   *lc;

	SlAclCheck(SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME, SL_ACL_ALTER);
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
	{
		if (!PG_ARGISNULL(1))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a partition needs its topic"),
					 errhint("Name the topic, or leave both NULL to elect for every partition.")));
		elections = SlElectionsForAllPartitions();
	}
	else
	{
		char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
		const SlTopic *topic = SlTopicLookup(name, false);

		for (int32 p = 0; p < topic->partition_count; p++)
		{
			SlElection *e;

			if (!PG_ARGISNULL(1) && PG_GETARG_INT32(1) != p)
				continue;
			e = palloc0(sizeof(SlElection));
			e->topic = name;
			e->partition = p;
			elections = lappend(elections, e);
		}
		if (elections == NIL)
			SlTopicCheckPartition(topic, PG_GETARG_INT32(1));
	}
	/* unclean (Kafka's election type 1): for partitions without a leader */
	SlElectLeaders(elections,
				   PG_NARGS() > 2 && !PG_ARGISNULL(2) && PG_GETARG_BOOL(2) ?
				   SL_ELECTION_UNCLEAN : SL_ELECTION_PREFERRED,
				   SL_CLUSTER_SUBMIT_TIMEOUT_MS);

	foreach(lc, elections)
	{
		SlElection *e = lfirst(lc);
		Datum		values[4];
		bool		nulls[4] = {false, false, false, e->message == NULL};

		values[0] = CStringGetTextDatum(e->topic);
		values[1] = Int32GetDatum(e->partition);
		values[2] = Int32GetDatum(e->error_code);
		values[3] = e->message ? CStringGetTextDatum(e->message) : (Datum) 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
