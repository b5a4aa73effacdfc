/*
 * Rules of Kafka's authorizer made of more than one privilege, shared by
 * the SQL functions and the Kafka handlers; see authorize.h.
 */
#include "postgres.h"

#include "miscadmin.h"

#include "streamlog/storage/acl.h"
#include "streamlog/storage/authorize.h"
#include "streamlog/storage/storage.h"

bool
SlMayCreateTopic(const char *name)
{
	Oid			role = GetUserId();

	return SlAclAllowed(role, SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME, SL_ACL_CREATE) ||
		SlAclAllowed(role, SL_RESOURCE_TOPIC, name, SL_ACL_CREATE);
}

void
SlCheckCreateTopic(const char *name)
{
	if (SlMayCreateTopic(name))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to create topic \"%s\"", name),
			 errdetail("Creating a topic takes the CREATE privilege on the cluster or on the topic's name."),
			 errhint("Ask an administrator for it: SELECT streamlog.grant('create', 'topic', '%s', '%s'); "
					 "or, for any name, SELECT streamlog.grant('create', 'cluster', NULL, '%s');",
					 name, GetUserNameFromId(GetUserId(), false),
					 GetUserNameFromId(GetUserId(), false))));
}

bool
SlMayWriteIdempotently(void)
{
	Oid			role = GetUserId();
	ListCell   *lc;

	if (SlAclAllowed(role, SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME,
					 SL_ACL_IDEMPOTENT_WRITE))
		return true;
	foreach(lc, SlTopicListNames())
	{
		if (SlAclAllowed(role, SL_RESOURCE_TOPIC, lfirst(lc), SL_ACL_WRITE))
			return true;
	}
	return false;
}
