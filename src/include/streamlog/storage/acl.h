/*
 * The privilege store: who may do what on topics, groups, transactional
 * ids and the cluster, shared by the Kafka door and the SQL door.
 *
 * Entries are Kafka's ACL bindings (resource type, pattern type, resource
 * name, principal, operation, ALLOW or DENY), kept in streamlog.acl as
 * PostgreSQL aclitem[] arrays: one row per resource pattern, one array of
 * ALLOW and one of DENY entries, each Kafka operation one privilege bit
 * (see acl.c), so that role membership works as for PostgreSQL's own
 * objects and the arrays print as \dp does.  A grantee InvalidOid is PUBLIC,
 * Kafka's User:*.
 */
#ifndef SL_STORAGE_ACL_H
#define SL_STORAGE_ACL_H

#include "postgres.h"

#include "nodes/pg_list.h"

/*
 * Kafka's codes (org.apache.kafka.common.resource.ResourceType /
 * acl.AclOperation / resource.PatternType / acl.AclPermissionType), so the
 * wire values need no mapping
 */
typedef enum SlResourceType
{
	SL_RESOURCE_ANY = 1,
	SL_RESOURCE_TOPIC = 2,
	SL_RESOURCE_GROUP = 3,
	SL_RESOURCE_CLUSTER = 4,
	SL_RESOURCE_TRANSACTIONAL_ID = 5
} SlResourceType;

typedef enum SlAclOperation
{
	SL_ACL_ANY = 1,
	SL_ACL_ALL = 2,
	SL_ACL_READ = 3,
	SL_ACL_WRITE = 4,
	SL_ACL_CREATE = 5,
	SL_ACL_DELETE = 6,
	SL_ACL_ALTER = 7,
	SL_ACL_DESCRIBE = 8,
	SL_ACL_CLUSTER_ACTION = 9,
	SL_ACL_DESCRIBE_CONFIGS = 10,
	SL_ACL_ALTER_CONFIGS = 11,
	SL_ACL_IDEMPOTENT_WRITE = 12
} SlAclOperation;

typedef enum SlPatternType
{
	SL_PATTERN_ANY = 1,
	SL_PATTERN_MATCH = 2,
	SL_PATTERN_LITERAL = 3,
	SL_PATTERN_PREFIXED = 4
} SlPatternType;

/* Kafka's AclPermissionType codes, as SlAclFilter.permission takes them */
#define SL_ACL_PERMISSION_ANY 1
#define SL_ACL_PERMISSION_DENY 2
#define SL_ACL_PERMISSION_ALLOW 3

/* The name of the one cluster resource, as Kafka's */
#define SL_CLUSTER_RESOURCE_NAME "kafka-cluster"

/* The literal resource name that matches every name of its type */
#define SL_ACL_WILDCARD "*"

/* The predefined role that may do everything, as superusers */
#define SL_ADMIN_ROLE_NAME "streamlog_admin"

/*
 * May role do op on the resource?  true for superusers and members of
 * streamlog_admin, and for the owner of a topic on that topic; else: any
 * DENY entry matching the resource (literal name, a prefix, or the wildcard
 * "*") for the role or a role it has the privileges of (has_privs_of_role,
 * PUBLIC = Kafka's User:*) -> false; else an ALLOW entry for op or for one
 * implying it -> true.  Implications as Kafka's: READ, WRITE, DELETE, ALTER
 * imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALL implies all.
 * Reads the catalogue whatever the caller's table privileges; cheap enough
 * to call per topic of a request (a backend cache, dropped when the store
 * changes).  A NULL name (a null string from the wire) is allowed to
 * superusers and streamlog_admin only.
 */
extern bool SlAclAllowed(Oid role, SlResourceType type, const char *name,
						 SlAclOperation op);

/*
 * SlAclAllowed for GetUserId(), or ERROR 42501 insufficient_privilege
 * naming the operation, the resource and how to get the privilege
 * (streamlog.grant(...))
 */
extern void SlAclCheck(SlResourceType type, const char *name, SlAclOperation op);

/* One ACL entry, as Kafka's AclBinding; grantee InvalidOid is PUBLIC (User:*) */
typedef struct SlAclBinding
{
	SlResourceType resource_type;
	const char *resource_name;
	SlPatternType pattern_type;
	Oid			grantee;
	SlAclOperation operation;
	bool		deny;
} SlAclBinding;

/*
 * Kafka's AclBindingFilter: ANY / NULL fields match everything; pattern
 * MATCH matches the literal, the wildcard and every prefix of a name
 */
typedef struct SlAclFilter
{
	SlResourceType resource_type;
	const char *resource_name;
	SlPatternType pattern_type;
	bool		any_grantee;
	Oid			grantee;
	SlAclOperation operation;
	int			permission;		/* 1 ANY, 2 DENY, 3 ALLOW */
} SlAclFilter;

/* Store a binding; storing one already there changes nothing */
extern void SlAclAdd(const SlAclBinding *b);

/* The stored bindings the filter matches, as a List of SlAclBinding * */
extern List *SlAclMatching(const SlAclFilter *f);

/* Remove the bindings the filter matches; returns the removed ones */
extern List *SlAclRemoveMatching(const SlAclFilter *f);

/*
 * May the current user grant and revoke privileges on this resource
 * pattern?  Superusers, streamlog_admin, roles with ALTER on the cluster,
 * and the owner of a topic for that topic's literal name.  ERROR 42501 if
 * not, saying who may.
 */
extern void SlAclCheckManage(SlResourceType type, const char *name,
							 SlPatternType pattern);

/* Kafka's names (READ, TOPIC, LITERAL, ...), for messages and the views */
extern const char *SlAclOperationName(SlAclOperation op);
extern const char *SlResourceTypeName(SlResourceType type);
extern const char *SlPatternTypeName(SlPatternType pattern);

#endif							/* SL_STORAGE_ACL_H */
