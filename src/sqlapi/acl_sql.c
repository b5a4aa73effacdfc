/*
 * SQL: privileges on topics, groups, transactional ids and the cluster
 * (grant, deny, revoke, has_privilege), on the store both doors check
 * (storage/acl.h).  NULL arguments: see sql_args.h; a NULL name means the
 * cluster, which has only one.
 *
 * Names are read as a PostgreSQL user writes them and as Kafka spells
 * them: case, spaces, '_' and '-' do not matter, so 'describe_configs',
 * 'DESCRIBE_CONFIGS' and 'DescribeConfigs' are one privilege.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "streamlog/sqlapi/sql_args.h"
#include "streamlog/storage/acl.h"

PG_FUNCTION_INFO_V1(streamlog_grant);
PG_FUNCTION_INFO_V1(streamlog_deny);
PG_FUNCTION_INFO_V1(streamlog_revoke);
PG_FUNCTION_INFO_V1(streamlog_has_privilege);
PG_FUNCTION_INFO_V1(streamlog_acl_check);

#define PRIVILEGE_NAMES "read, write, create, delete, alter, describe, describe_configs, " \
	"alter_configs, cluster_action, idempotent_write, or all"

/* The operations granted by name, indexed by SlAclOperation */
typedef struct OperationSet
{
	bool		ops[SL_ACL_IDEMPOTENT_WRITE + 1];
} OperationSet;

static const struct
{
	const char *name;			/* as normalized() makes it */
	SlAclOperation op;
}			operation_names[] = {
	{"all", SL_ACL_ALL},
	{"read", SL_ACL_READ},
	{"write", SL_ACL_WRITE},
	{"create", SL_ACL_CREATE},
	{"delete", SL_ACL_DELETE},
	{"alter", SL_ACL_ALTER},
	{"describe", SL_ACL_DESCRIBE},
	{"clusteraction", SL_ACL_CLUSTER_ACTION},
	{"describeconfigs", SL_ACL_DESCRIBE_CONFIGS},
	{"alterconfigs", SL_ACL_ALTER_CONFIGS},
	{"idempotentwrite", SL_ACL_IDEMPOTENT_WRITE},
};

/* A name lower-cased, without spaces, '_' and '-' */
static char *
normalized(const char *name)
{
	char	   *out = palloc(strlen(name) + 1);
	char	   *o = out;

	for (const char *p = name; *p; p++)
	{
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '_' || *p == '-')
			continue;
		*o++ = pg_ascii_tolower((unsigned char) *p);
	}
	*o = '\0';
	return out;
}

/* The operations of a list like 'read, write' */
static OperationSet
parse_privileges(const char *list)
{
	OperationSet set;
	char	   *copy = pstrdup(list);
	char	   *word;
	char	   *save = NULL;
	bool		any = false;

	memset(&set, 0, sizeof(set));
	for (word = strtok_r(copy, ",", &save); word; word = strtok_r(NULL, ",", &save))
	{
		char	   *key = normalized(word);
		int			i;

		if (key[0] == '\0')
			continue;
		for (i = 0; i < lengthof(operation_names); i++)
			if (strcmp(operation_names[i].name, key) == 0)
				break;
		if (i == lengthof(operation_names))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized privilege \"%s\"", word),
					 errhint("Privileges are " PRIVILEGE_NAMES
							 ", separated by commas, as in 'read, write'.")));
		set.ops[operation_names[i].op] = true;
		any = true;
	}
	if (!any)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no privilege named in \"%s\"", list),
				 errhint("Privileges are " PRIVILEGE_NAMES ".")));
	return set;
}

/* One privilege, for has_privilege() */
static SlAclOperation
parse_one_privilege(const char *name)
{
	OperationSet set = parse_privileges(name);
	int			found = 0;
	SlAclOperation op = SL_ACL_ANY;

	for (int i = SL_ACL_ALL; i <= SL_ACL_IDEMPOTENT_WRITE; i++)
		if (set.ops[i])
		{
			found++;
			op = i;
		}
	if (found != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("has_privilege() checks one privilege, not \"%s\"", name)));
	return op;
}

static SlResourceType
parse_resource_type(const char *name)
{
	char	   *key = normalized(name);

	if (strcmp(key, "topic") == 0)
		return SL_RESOURCE_TOPIC;
	if (strcmp(key, "group") == 0)
		return SL_RESOURCE_GROUP;
	if (strcmp(key, "cluster") == 0)
		return SL_RESOURCE_CLUSTER;
	if (strcmp(key, "transactionalid") == 0)
		return SL_RESOURCE_TRANSACTIONAL_ID;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unrecognized resource type \"%s\"", name),
			 errhint("Privileges are on a topic, group, transactional_id or the cluster.")));
	return SL_RESOURCE_ANY;		/* keep the compiler quiet */
}

static SlPatternType
parse_pattern(const char *name)
{
	char	   *key = normalized(name);

	if (strcmp(key, "literal") == 0)
		return SL_PATTERN_LITERAL;
	if (strcmp(key, "prefixed") == 0)
		return SL_PATTERN_PREFIXED;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unrecognized resource pattern \"%s\"", name),
			 errhint("A pattern is literal (the name itself, or '*' for every name) "
					 "or prefixed (every name beginning with it).")));
	return SL_PATTERN_ANY;		/* keep the compiler quiet */
}

/*
 * A role as grant() takes it: a name, 'public', or Kafka's User:<name> /
 * User:*.  revoke() also takes User:<OID> for a role dropped from another
 * database, as the acls view shows its leftover bindings.
 */
static Oid
parse_grantee(const char *name, bool dropped_oid_ok)
{
	const char *role = name;
	Oid			oid;

	if (strncmp(name, "User:", 5) == 0)
	{
		role = name + 5;
		if (strcmp(role, "*") == 0)
			return InvalidOid;
	}
	else if (pg_strcasecmp(name, "public") == 0)
		return InvalidOid;
	oid = get_role_oid(role, true);
	if (!OidIsValid(oid) && dropped_oid_ok && role != name &&
		role[0] != '\0' && strspn(role, "0123456789") == strlen(role))
	{
		unsigned long value;

		errno = 0;
		value = strtoul(role, NULL, 10);
		if (errno == 0 && value <= PG_UINT32_MAX && value != InvalidOid &&
			!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum((Oid) value)))
			return (Oid) value;
	}
	if (!OidIsValid(oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" does not exist", role),
				 errhint("Name an existing role as it is spelled in pg_roles, or 'public' for every role.")));
	return oid;
}

/* The resource name argument; NULL stands for the cluster's one name */
static char *
resource_name_arg(FunctionCallInfo fcinfo, int argno, SlResourceType type)
{
	if (PG_ARGISNULL(argno))
	{
		if (type == SL_RESOURCE_CLUSTER)
			return pstrdup(SL_CLUSTER_RESOURCE_NAME);
		SlRequireArg(fcinfo, argno, "name");
	}
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* grant() and deny(): store a binding per operation named */
static void
add_bindings(FunctionCallInfo fcinfo, bool deny)
{
	OperationSet ops;
	SlAclBinding b;

	SlRequireArg(fcinfo, 0, "privileges");
	SlRequireArg(fcinfo, 1, "on_type");
	SlRequireArg(fcinfo, 3, "to_role");
	SlRequireArg(fcinfo, 4, "pattern");
	ops = parse_privileges(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	b.resource_type = parse_resource_type(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	b.resource_name = resource_name_arg(fcinfo, 2, b.resource_type);
	b.grantee = parse_grantee(text_to_cstring(PG_GETARG_TEXT_PP(3)), false);
	b.pattern_type = parse_pattern(text_to_cstring(PG_GETARG_TEXT_PP(4)));
	b.deny = deny;
	SlAclCheckManage(b.resource_type, b.resource_name, b.pattern_type);
	for (int op = SL_ACL_ALL; op <= SL_ACL_IDEMPOTENT_WRITE; op++)
	{
		if (!ops.ops[op])
			continue;
		b.operation = op;
		SlAclAdd(&b);
	}
}

Datum
streamlog_grant(PG_FUNCTION_ARGS)
{
	add_bindings(fcinfo, false);
	PG_RETURN_VOID();
}

Datum
streamlog_deny(PG_FUNCTION_ARGS)
{
	add_bindings(fcinfo, true);
	PG_RETURN_VOID();
}

/*
 * revoke(): remove the role's ALLOW and DENY bindings of the operations
 * named on exactly that pattern; 'all' removes every one of them, as
 * PostgreSQL's REVOKE ALL does.
 */
Datum
streamlog_revoke(PG_FUNCTION_ARGS)
{
	OperationSet ops;
	SlAclFilter f;

	SlRequireArg(fcinfo, 0, "privileges");
	SlRequireArg(fcinfo, 1, "on_type");
	SlRequireArg(fcinfo, 3, "from_role");
	SlRequireArg(fcinfo, 4, "pattern");
	ops = parse_privileges(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	f.resource_type = parse_resource_type(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	f.resource_name = resource_name_arg(fcinfo, 2, f.resource_type);
	f.any_grantee = false;
	f.grantee = parse_grantee(text_to_cstring(PG_GETARG_TEXT_PP(3)), true);
	f.pattern_type = parse_pattern(text_to_cstring(PG_GETARG_TEXT_PP(4)));
	f.permission = SL_ACL_PERMISSION_ANY;
	SlAclCheckManage(f.resource_type, f.resource_name, f.pattern_type);
	if (ops.ops[SL_ACL_ALL])
	{
		f.operation = SL_ACL_ANY;
		(void) SlAclRemoveMatching(&f);
		PG_RETURN_VOID();
	}
	for (int op = SL_ACL_READ; op <= SL_ACL_IDEMPOTENT_WRITE; op++)
	{
		if (!ops.ops[op])
			continue;
		f.operation = op;
		(void) SlAclRemoveMatching(&f);
	}
	PG_RETURN_VOID();
}

Datum
streamlog_has_privilege(PG_FUNCTION_ARGS)
{
	SlAclOperation op;
	SlResourceType type;
	char	   *name;
	Oid			role;

	SlRequireArg(fcinfo, 0, "privilege");
	SlRequireArg(fcinfo, 1, "on_type");
	op = parse_one_privilege(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	type = parse_resource_type(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	name = resource_name_arg(fcinfo, 2, type);
	role = PG_ARGISNULL(3) ? GetUserId() : PG_GETARG_OID(3);
	PG_RETURN_BOOL(SlAclAllowed(role, type, name, op));
}

/*
 * SlAclCheck for the current user, so that tests see the error the
 * functions of both doors raise.  The extension script does not declare
 * it; tests bind it as superusers with CREATE FUNCTION ... (privilege text,
 * on_type text, name text) RETURNS void AS 'streamlog', 'streamlog_acl_check'
 * LANGUAGE C.
 */
Datum
streamlog_acl_check(PG_FUNCTION_ARGS)
{
	SlAclOperation op;
	SlResourceType type;

	SlRequireArg(fcinfo, 0, "privilege");
	SlRequireArg(fcinfo, 1, "on_type");
	op = parse_one_privilege(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	type = parse_resource_type(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	SlAclCheck(type, resource_name_arg(fcinfo, 2, type), op);
	PG_RETURN_VOID();
}
