/*
 * Topic administration on behalf of Kafka requests: each operation runs in
 * its own subtransaction, and a failure becomes a Kafka error code (with
 * the PostgreSQL message) for that topic alone.
 */
#ifndef SL_TOPIC_ADMIN_H
#define SL_TOPIC_ADMIN_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "streamlog/metadata/cluster_topics.h"

/*
 * Run fn(arg) in a subtransaction, rolled back at the end when
 * validate_only (Kafka's validateOnly: check everything, keep nothing).
 * Returns SL_ERR_NONE, or the Kafka error for the SQLSTATE it failed with
 * (invalid_value_error for invalid_parameter_value, which means different
 * things per API), with *message set if message is not NULL.
 */
extern int16 SlTopicAdminRun(void (*fn) (void *arg), void *arg, bool validate_only,
							 int16 invalid_value_error, char **message);

/*
 * Create a topic (or only check that it could be, validate_only); configs
 * as a jsonb object of Kafka config names, or NULL
 */
extern int16 SlTopicAdminCreate(const char *name, int32 partitions, Jsonb *config,
								bool validate_only, char **message);

/*
 * The same with the replicas a client asked for, which only a cluster's
 * controller takes (standalone: replication factor 1 and no assignment
 * only).  On a cluster the topic is checked here, then created by the
 * controller within timeout_ms, outside the caller's transaction.
 */
extern int16 SlTopicAdminCreateReplicas(const char *name, int32 partitions,
										int32 replication_factor,
										const SlReplicaAssignment *assignment,
										Jsonb *config, bool validate_only,
										int timeout_ms, char **message);

/* The cluster id given to clients: stable for this database */
extern const char *SlClusterId(void);

#endif							/* SL_TOPIC_ADMIN_H */
