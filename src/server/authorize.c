/*
 * Kafka's authorized operations (KIP-430), as DescribeCluster and Metadata
 * report them when asked; see authorize.h.
 */
#include "postgres.h"

#include "streamlog/server/authorize.h"

/* The operations Kafka defines for each resource type (AclEntry.supportedOperations) */
static const SlAclOperation cluster_operations[] = {
	SL_ACL_CREATE, SL_ACL_CLUSTER_ACTION, SL_ACL_DESCRIBE_CONFIGS, SL_ACL_ALTER_CONFIGS,
	SL_ACL_IDEMPOTENT_WRITE, SL_ACL_ALTER, SL_ACL_DESCRIBE,
};

static const SlAclOperation topic_operations[] = {
	SL_ACL_READ, SL_ACL_WRITE, SL_ACL_CREATE, SL_ACL_DESCRIBE, SL_ACL_DELETE,
	SL_ACL_ALTER, SL_ACL_DESCRIBE_CONFIGS, SL_ACL_ALTER_CONFIGS,
};

static int32
authorized_operations(SlResourceType type, const char *name,
					  const SlAclOperation *ops, int nops)
{
	int32		bits = 0;
	Oid			role = GetUserId();

	if (!SlAclAllowed(role, type, name, SL_ACL_DESCRIBE))
		return 0;
	for (int i = 0; i < nops; i++)
		if (SlAclAllowed(role, type, name, ops[i]))
			bits |= 1 << ops[i];
	return bits;
}

int32
SlClusterAuthorizedOperations(void)
{
	return authorized_operations(SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME,
								 cluster_operations, lengthof(cluster_operations));
}

int32
SlTopicAuthorizedOperations(const char *name)
{
	return authorized_operations(SL_RESOURCE_TOPIC, name,
								 topic_operations, lengthof(topic_operations));
}
