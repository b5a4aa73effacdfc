/*-------------------------------------------------------------------------
 * reassignment_sql.c
 *	  streamlog.reassign_partition(topic, partition, replicas): Kafka's
 *	  AlterPartitionReassignments from SQL, one partition at a time.
 *
 * As there, it needs ALTER on the cluster and returns once the
 * reassignment started (streamlog.reassignments shows it until the new
 * replicas joined the ISR); replicas NULL cancels the one under way.  The
 * controller's refusals become SQL errors with Kafka's code in the detail.
 *
 * IDENTIFICATION
 *	  src/sqlapi/reassignment_sql.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "streamlog/metadata/cluster_submit.h"
#include "streamlog/metadata/cluster_topics.h"
#include "streamlog/metadata/partition_reassignment.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/acl.h"

PG_FUNCTION_INFO_V1(streamlog_reassign_partition);

/* The node ids of an int[] without NULLs */
static int32 *
target_replicas(ArrayType *array, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	int32	   *ids;

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("replicas must be a one-dimensional array of node ids")));
	deconstruct_array(array, INT4OID, 4, true, TYPALIGN_INT, &elems, &nulls, n);
	if (*n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("replicas must name at least one node"),
				 errhint("Pass NULL to cancel the reassignment under way.")));
	ids = palloc(sizeof(int32) * *n);
	for (int i = 0; i < *n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("replicas must not hold NULL")));
		ids[i] = DatumGetInt32(elems[i]);
	}
	return ids;
}

Datum
streamlog_reassign_partition(PG_FUNCTION_ARGS)
{
	char	   *topic;
	int32		partition;
	int32	   *replicas = NULL;
	int			nreplicas = -1;
	int16		error_code;
	char	   *message;
	int			sqlstate;
	const char *hint = NULL;

	SlRequireArg(fcinfo, 0, "topic");
	SlRequireArg(fcinfo, 1, "partition");
	SlAclCheck(SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME, SL_ACL_ALTER);
	topic = text_to_cstring(PG_GETARG_TEXT_PP(0));
	partition = PG_GETARG_INT32(1);
	if (!PG_ARGISNULL(2))
		replicas = target_replicas(PG_GETARG_ARRAYTYPE_P(2), &nreplicas);

	error_code = SlReassignPartition(topic, partition, replicas, nreplicas,
									 SL_CLUSTER_TOPIC_TIMEOUT_MS, &message);
	if (error_code == 0)
		PG_RETURN_VOID();
	switch (error_code)
	{
		case SL_REASSIGN_ERR_UNKNOWN_TOPIC_OR_PARTITION:
			sqlstate = ERRCODE_UNDEFINED_OBJECT;
			break;
		case SL_REASSIGN_ERR_INVALID_REPLICA_ASSIGNMENT:
			sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
			hint = "The target names each node once, every one registered (streamlog.nodes).";
			break;
		case SL_REASSIGN_ERR_NO_REASSIGNMENT_IN_PROGRESS:
			sqlstate = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
			hint = "streamlog.reassignments lists the reassignments under way.";
			break;
		default:
			sqlstate = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
			hint = "See streamlog.nodes and streamlog.raft_status for the state of the cluster, and try again.";
			break;
	}
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("cannot reassign partition %d of topic \"%s\": %s", partition, topic,
					message ? message : "the controller refused it"),
			 errdetail("Kafka error code %d.", error_code),
			 hint ? errhint("%s", hint) : 0));
	PG_RETURN_VOID();
}
