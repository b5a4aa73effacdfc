/*-------------------------------------------------------------------------
 * replica_progress_sql.c
 *	  A follower's progress reports to its leader, over the side channel
 *	  (CLUSTER.md section 3): streamlog._replica_progress(follower_id,
 *	  topic_ids[], partitions[], leader_epochs[], log_ends[]), one row per
 *	  partition reported (topic_id, partition, error, high_watermark), so
 *	  that one call reports every partition a follower holds of this
 *	  leader.  And the leader's view of its replicas, streamlog.replicas.
 *
 * The arguments are hostile (a node sent them): a partition that does not
 * exist or a negative log end is answered with an error code in its row,
 * never applied.  Only superusers may report (EXECUTE is revoked from
 * PUBLIC): a report moves the high watermark, which acknowledges records.
 *
 * IDENTIFICATION
 *	  src/sqlapi/replica_progress_sql.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/shmem.h"
#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/replica_progress.h"
#include "streamlog/storage/storage.h"

PG_FUNCTION_INFO_V1(streamlog__replica_progress);
PG_FUNCTION_INFO_V1(streamlog_replica_states);

/* Kafka's codes of the answers the storage layer does not give */
#define ERR_UNKNOWN_TOPIC_OR_PARTITION 3
#define ERR_INVALID_REQUEST 42

/*
 * Topics by id, as reports name them, kept by this backend (a follower's
 * side channel calls again and again) until the catalog generation moves:
 * a leadership change moves it too, so a cached topic is never staler than
 * a lookup would be.
 */
typedef struct CachedTopic
{
	int32		topic_id;		/* hash key */
	SlTopic    *topic;			/* NULL: no such topic */
} CachedTopic;

static HTAB *topic_cache = NULL;
static MemoryContext topic_cache_context = NULL;
static uint64 topic_cache_generation = 0;
static Oid	topic_cache_catalog = InvalidOid;	/* of this installation */

static const SlTopic *
topic_by_id(int32 topic_id)
{
	uint64		generation = pg_atomic_read_u64(&sl_shared->catalog_generation);
	Oid			catalog = SlMakePartitionKey(topic_id, 0).catalog;
	CachedTopic *entry;
	bool		found;

	/* the extension dropped and made again restarts topic ids */
	if (topic_cache == NULL || generation != topic_cache_generation ||
		catalog != topic_cache_catalog)
	{
		HASHCTL		info;

		if (topic_cache_context == NULL)
			topic_cache_context = AllocSetContextCreate(CacheMemoryContext,
														"streamlog replica progress topics",
														ALLOCSET_SMALL_SIZES);
		MemoryContextReset(topic_cache_context);
		info.keysize = sizeof(int32);
		info.entrysize = sizeof(CachedTopic);
		info.hcxt = topic_cache_context;
		topic_cache = hash_create("streamlog replica progress topics", 16, &info,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		topic_cache_generation = generation;
		topic_cache_catalog = catalog;
	}
	entry = hash_search(topic_cache, &topic_id, HASH_FIND, NULL);
	if (entry == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(topic_cache_context);
		/* looked up first: an error leaves no half-made entry */
		SlTopic    *topic = (SlTopic *) SlTopicLookupById(topic_id);

		MemoryContextSwitchTo(oldcxt);
		entry = hash_search(topic_cache, &topic_id, HASH_ENTER, &found);
		entry->topic = topic;
	}
	return entry->topic;
}

/* The items of a one-dimensional array argument without NULLs */
static Datum *
array_items(FunctionCallInfo fcinfo, int argno, const char *name, Oid type, int *n)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(argno);
	Datum	   *items;
	bool	   *nulls;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", name)));
	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	deconstruct_array(array, type, typlen, typbyval, typalign, &items, &nulls, n);
	for (int i = 0; i < *n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL", name)));
	return items;
}

/*
 * streamlog._replica_progress(follower_id int, topic_ids int[],
 * partitions int[], leader_epochs int[], log_ends bigint[])
 */
Datum
streamlog__replica_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int32		follower_id;
	Datum	   *topic_ids;
	Datum	   *partitions;
	Datum	   *epochs;
	Datum	   *log_ends;
	int			n,
				n2,
				n3,
				n4;
	const SlTopic *topic = NULL;

	SlCheckPreloaded();
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to report replica progress"),
				 errdetail("A report moves the high watermark, which acknowledges records."),
				 errhint("Nodes call it as a superuser, the role of their streamlog.advertised_sql_conninfo.")));
	for (int i = 0; i < 5; i++)
		SlRequireArg(fcinfo, i, ((const char *[]) {"follower_id", "topic_ids", "partitions",
					"leader_epochs", "log_ends"})[i]);
	follower_id = PG_GETARG_INT32(0);
	topic_ids = array_items(fcinfo, 1, "topic_ids", INT4OID, &n);
	partitions = array_items(fcinfo, 2, "partitions", INT4OID, &n2);
	epochs = array_items(fcinfo, 3, "leader_epochs", INT4OID, &n3);
	log_ends = array_items(fcinfo, 4, "log_ends", INT8OID, &n4);
	if (n2 != n || n3 != n || n4 != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("topic_ids, partitions, leader_epochs and log_ends must have the same length"),
				 errdetail("They have %d, %d, %d and %d items.", n, n2, n3, n4),
				 errhint("Item i of each describes the same partition.")));

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < n; i++)
	{
		int32		topic_id = DatumGetInt32(topic_ids[i]);
		int32		partition = DatumGetInt32(partitions[i]);
		int64		log_end = DatumGetInt64(log_ends[i]);
		int64		hw = -1;
		int16		error;
		Datum		values[4];
		bool		nulls[4] = {0};

		if (topic == NULL || topic->topic_id != topic_id)
			topic = topic_by_id(topic_id);
		if (topic == NULL || partition < 0 || partition >= topic->partition_count)
			error = ERR_UNKNOWN_TOPIC_OR_PARTITION;
		else if (log_end < 0)
			error = ERR_INVALID_REQUEST;
		else
			error = SlReplicaProgressReport(topic, partition, follower_id,
											DatumGetInt32(epochs[i]), log_end, &hw);
		values[0] = Int32GetDatum(topic_id);
		values[1] = Int32GetDatum(partition);
		values[2] = Int16GetDatum(error);
		values[3] = Int64GetDatum(hw);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static Datum
unix_ms_to_timestamptz(int64 ms)
{
	return TimestampTzGetDatum(SlKafkaToTimestamp(ms));
}

/*
 * streamlog.replica_states(): for each partition this node leads (every
 * partition, on a node of its own) of the topics the caller may describe,
 * a row per replica as the leader sees it.  Behind the view
 * streamlog.replicas.
 */
Datum
streamlog_replica_states(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;
	SlReplicaState states[SL_MAX_REPLICAS];

	SlCheckPreloaded();
	InitMaterializedSRF(fcinfo, 0);
	foreach(lc, SlTopicListNames())
	{
		const SlTopic *topic;

		/* only the topics the caller may describe, as the view says */
		if (!SlAclAllowed(GetUserId(), SL_RESOURCE_TOPIC, lfirst(lc), SL_ACL_DESCRIBE))
			continue;
		topic = SlTopicTryLookupAndLock(lfirst(lc), AccessShareLock);
		if (topic == NULL)
			continue;
		for (int32 p = 0; p < topic->partition_count; p++)
		{
			const SlPartitionLeadership *l = topic->partitions ?
				SlTopicPartitionLeadership(topic, p) : NULL;
			SlPartitionOffsets offsets;
			int			n;

			if (l != NULL && SlQuorumVotersGet()->n > 0 && l->leader != sl_node_id)
				continue;
			n = SlReplicaStates(topic, p, states, SL_MAX_REPLICAS);
			SlPartitionGetOffsets(topic->topic_id, p, &offsets);
			for (int i = 0; i < n; i++)
			{
				const SlReplicaState *s = &states[i];
				bool		in_isr = l == NULL || SlQuorumVotersGet()->n == 0;
				Datum		values[9];
				bool		nulls[9] = {0};

				for (int j = 0; l != NULL && j < l->nisr; j++)
					in_isr |= l->isr[j] == s->node_id;
				values[0] = CStringGetTextDatum(topic->name);
				values[1] = Int32GetDatum(p);
				values[2] = Int32GetDatum(s->node_id);
				values[3] = BoolGetDatum(s->node_id == sl_node_id);
				values[4] = Int64GetDatum(s->log_end);
				nulls[4] = s->log_end < 0;
				values[5] = Int64GetDatum(offsets.log_end_offset - s->log_end);
				nulls[5] = s->log_end < 0;
				if (s->last_caught_up_ms >= 0)
					values[6] = unix_ms_to_timestamptz(s->last_caught_up_ms);
				else
					nulls[6] = true;
				values[7] = BoolGetDatum(in_isr);
				values[8] = BoolGetDatum(s->in_maximal_isr);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
		}
	}
	return (Datum) 0;
}
