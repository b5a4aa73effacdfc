/*
 * What the Kafka handlers ask before serving a topic, a group or the
 * cluster: storage/acl.h's SlAclAllowed for the role the request runs as
 * (GetUserId(): dispatch.c switches to the session's role), in the words of
 * Kafka's AuthHelper.  A refusal is answered with Kafka's
 * TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED or
 * CLUSTER_AUTHORIZATION_FAILED, per item where Kafka answers per item; the
 * connection stays open.  The SQL functions ask the same questions (the
 * README's table lists both doors).
 */
#ifndef SL_SERVER_AUTHORIZE_H
#define SL_SERVER_AUTHORIZE_H

#include "postgres.h"

#include "miscadmin.h"

#include "streamlog/storage/acl.h"
#include "streamlog/storage/authorize.h"

static inline bool
SlMayTopic(const char *name, SlAclOperation op)
{
	return SlAclAllowed(GetUserId(), SL_RESOURCE_TOPIC, name, op);
}

static inline bool
SlMayGroup(const char *group_id, SlAclOperation op)
{
	return SlAclAllowed(GetUserId(), SL_RESOURCE_GROUP, group_id, op);
}

static inline bool
SlMayTransactionalId(const char *transactional_id, SlAclOperation op)
{
	return SlAclAllowed(GetUserId(), SL_RESOURCE_TRANSACTIONAL_ID, transactional_id, op);
}

static inline bool
SlMayCluster(SlAclOperation op)
{
	return SlAclAllowed(GetUserId(), SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME, op);
}

/*
 * Kafka's authorized operations (KIP-430) of the cluster / of a topic, for
 * the role: a bit (1 << operation code) per operation it may do; 0 without
 * DESCRIBE, as Kafka.
 */
extern int32 SlClusterAuthorizedOperations(void);
extern int32 SlTopicAuthorizedOperations(const char *name);

#endif							/* SL_SERVER_AUTHORIZE_H */
