/*
 * The SQL door on a cluster: topic DDL answered by the controller, and
 * partitions that another node leads.
 */
#ifndef SL_SQLAPI_CLUSTER_SQL_H
#define SL_SQLAPI_CLUSTER_SQL_H

#include "postgres.h"

#include "streamlog/storage/storage.h"

/*
 * Error out for a Kafka error code the controller answered a change of
 * topic name with (0: return), message being what it said
 */
extern void SlSqlClusterTopicResult(int16 error, const char *message, const char *name);

/*
 * Error out (object_not_in_prerequisite_state) unless this node leads
 * partition of topic, naming its leader and how to reach it.  Standalone,
 * every partition is this node's.
 */
extern void SlSqlCheckPartitionLeader(const SlTopic *topic, int32 partition);

/*
 * Error out the same way unless this node holds a replica of partition
 * (leads or follows it): reads go to the nearest copy
 */
extern void SlSqlCheckPartitionReplica(const SlTopic *topic, int32 partition);

/*
 * Is partition of topic led by another node, or by none (offline)?  Never
 * on a standalone node.  SQL produce forwards such a partition's records.
 */
extern bool SlSqlPartitionLedElsewhere(const SlTopic *topic, int32 partition);

/* The same for every partition of topic, for calls that read them all */
extern void SlSqlCheckTopicLeader(const SlTopic *topic);

/*
 * The topic with id topic_id, locked in mode: the functions nodes call on
 * each other name topics by id.  An unknown id is an error.
 */
extern const SlTopic *SlSqlTopicByIdLocked(int32 topic_id, LOCKMODE mode);

#endif							/* SL_SQLAPI_CLUSTER_SQL_H */
