/*-------------------------------------------------------------------------
 * acls.c
 *	  Kafka DescribeAcls (API key 29), CreateAcls (30) and DeleteAcls (31),
 *	  versions 0-3 (v1 adds pattern types, v2 is the first flexible one),
 *	  on the privilege store the SQL door shares (storage/acl.h).
 *
 *	  Answered as Kafka 3.9 does: CreateAcls and DeleteAcls need ALTER on
 *	  the cluster, DescribeAcls DESCRIBE on it (CLUSTER_AUTHORIZATION_FAILED
 *	  otherwise); each creation and each filter has its own result, and
 *	  DeleteAcls matches every filter against the bindings as they were
 *	  before the request, as Kafka's (KRaft) controller does.
 *	  Principals are PostgreSQL roles: User:<role>, or User:* for every
 *	  role (PUBLIC).  Bindings have no host: creations must say "*" (any
 *	  other host is INVALID_REQUEST), and a filter naming another host
 *	  matches nothing, as Kafka's filter would match no binding of host "*".
 *
 * IDENTIFICATION
 *	  src/server/handlers/acls.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"

#include "streamlog/server/handlers.h"
#include "streamlog/server/subtransaction.h"
#include "streamlog/storage/acl.h"

#define ACL_HOST_ANY "*"
#define USER_PRINCIPAL_PREFIX "User:"
#define PUBLIC_PRINCIPAL "User:*"

/* May the request's role do op on the cluster? */
static bool
cluster_allowed(SlAclOperation op)
{
	return SlAclAllowed(GetUserId(), SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME, op);
}

/* NUL-terminated copy of a wire string; NULL for null */
static char *
wire_cstring(SlStr s)
{
	return SlStrIsNull(s) ? NULL : pnstrdup(s.data, s.len);
}

/*
 * May a wire string be stored as text?  Not with a NUL inside (a C string
 * would end there and name something else) nor in another encoding than
 * the database's: the store is written directly, past the checks of the
 * text type's input.  Null is fine.
 */
static bool
wire_text_valid(SlStr s)
{
	if (SlStrIsNull(s))
		return true;
	return memchr(s.data, '\0', s.len) == NULL && pg_verifymbstr(s.data, s.len, true);
}

/* Kafka's principal of a grantee */
static char *
principal_of(Oid grantee)
{
	char	   *name;

	if (!OidIsValid(grantee))
		return pstrdup(PUBLIC_PRINCIPAL);
	name = GetUserNameFromId(grantee, true);
	/* A role dropped since it was granted: shown by its OID */
	if (name == NULL)
		return psprintf(USER_PRINCIPAL_PREFIX "%u", grantee);
	return psprintf(USER_PRINCIPAL_PREFIX "%s", name);
}

typedef enum PrincipalMatch
{
	PRINCIPAL_ROLE,				/* *grantee is the role (InvalidOid: PUBLIC) */
	PRINCIPAL_NOT_A_USER,		/* not of the form User:<name> */
	PRINCIPAL_NO_SUCH_ROLE		/* User:<name> but no such role */
} PrincipalMatch;

/* The role of a principal User:<role> or User:* */
static PrincipalMatch
parse_principal(const char *principal, Oid *grantee)
{
	const char *name;

	if (strncmp(principal, USER_PRINCIPAL_PREFIX, strlen(USER_PRINCIPAL_PREFIX)) != 0)
		return PRINCIPAL_NOT_A_USER;
	name = principal + strlen(USER_PRINCIPAL_PREFIX);
	if (strcmp(name, "*") == 0)
	{
		*grantee = InvalidOid;
		return PRINCIPAL_ROLE;
	}
	*grantee = get_role_oid(name, true);
	return OidIsValid(*grantee) ? PRINCIPAL_ROLE : PRINCIPAL_NO_SUCH_ROLE;
}

static bool
resource_type_valid(int8 code, bool filter)
{
	return (filter && code == SL_RESOURCE_ANY) ||
		(code >= SL_RESOURCE_TOPIC && code <= SL_RESOURCE_TRANSACTIONAL_ID);
}

static bool
pattern_type_valid(int8 code, bool filter)
{
	return (filter && (code == SL_PATTERN_ANY || code == SL_PATTERN_MATCH)) ||
		code == SL_PATTERN_LITERAL || code == SL_PATTERN_PREFIXED;
}

static bool
operation_valid(int8 code, bool filter)
{
	return (filter && code == SL_ACL_ANY) ||
		(code >= SL_ACL_ALL && code <= SL_ACL_IDEMPOTENT_WRITE);
}

static bool
permission_valid(int8 code, bool filter)
{
	return (filter && code == SL_ACL_PERMISSION_ANY) ||
		code == SL_ACL_PERMISSION_DENY || code == SL_ACL_PERMISSION_ALLOW;
}

/*
 * A filter of DescribeAcls or DeleteAcls as the store takes it.  Returns
 * SL_ERR_NONE, or INVALID_REQUEST with *message; *matches_nothing is set
 * for a valid filter no binding can match (another host, a principal that
 * is no role).
 */
static int16
make_filter(int8 resource_type, SlStr resource_name, int8 pattern_type,
			SlStr principal, SlStr host, int8 operation, int8 permission,
			SlAclFilter *f, bool *matches_nothing, char **message)
{
	*matches_nothing = false;
	if (!resource_type_valid(resource_type, true) || !pattern_type_valid(pattern_type, true))
	{
		*message = pstrdup("Unknown patternFilter.");
		return SL_ERR_INVALID_REQUEST;
	}
	if (!operation_valid(operation, true) || !permission_valid(permission, true))
	{
		*message = pstrdup("Unknown entryFilter.");
		return SL_ERR_INVALID_REQUEST;
	}
	/* Nothing stored has such a name or principal */
	if (!wire_text_valid(resource_name) || !wire_text_valid(principal))
	{
		*matches_nothing = true;
		return SL_ERR_NONE;
	}
	f->resource_type = resource_type;
	f->resource_name = wire_cstring(resource_name);
	f->pattern_type = pattern_type;
	f->operation = operation;
	f->permission = permission;
	f->any_grantee = SlStrIsNull(principal);
	f->grantee = InvalidOid;
	if (!f->any_grantee &&
		parse_principal(wire_cstring(principal), &f->grantee) != PRINCIPAL_ROLE)
		*matches_nothing = true;
	if (!SlStrIsNull(host) && !SlStrEqualCString(host, ACL_HOST_ANY))
		*matches_nothing = true;
	return SL_ERR_NONE;
}

/* DescribeAcls */

bool
SlHandleDescribeAcls(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeAclsRequest request;
	SlDescribeAclsResponse resp;
	SlAclFilter filter;
	bool		matches_nothing;
	char	   *message = NULL;
	List	   *found = NIL;
	ListCell   *lc;
	int			nresources = 0;

	if (!SlDescribeAclsRequestDecode(body, req->api_version, &request))
		return false;
	SlDescribeAclsResponseInit(&resp);
	resp.error_message = SL_STR_NULL;
	SL_ARRAY_ALLOC(resp.resources, 0);

	if (!cluster_allowed(SL_ACL_DESCRIBE))
	{
		resp.error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		resp.error_message = SlStrFromCString("Cluster authorization failed: "
											  "DescribeAcls needs DESCRIBE on the cluster.");
		SlDescribeAclsResponseEncode(out, req->api_version, &resp);
		return true;
	}
	resp.error_code = make_filter(request.resource_type_filter, request.resource_name_filter,
								  request.pattern_type_filter, request.principal_filter,
								  request.host_filter, request.operation,
								  request.permission_type, &filter, &matches_nothing,
								  &message);
	if (resp.error_code != SL_ERR_NONE)
	{
		resp.error_message = SlStrFromCString(message);
		SlDescribeAclsResponseEncode(out, req->api_version, &resp);
		return true;
	}
	if (!matches_nothing)
		found = SlAclMatching(&filter);

	/* One resource per stored pattern: the store returns a pattern's bindings together */
	SL_ARRAY_ALLOC(resp.resources, list_length(found));
	foreach(lc, found)
	{
		SlAclBinding *b = lfirst(lc);
		SlDescribeAclsResponseDescribeAclsResource *res =
			nresources > 0 ? &resp.resources.items[nresources - 1] : NULL;
		SlDescribeAclsResponseAclDescription *d;

		if (res == NULL || res->resource_type != b->resource_type ||
			res->pattern_type != b->pattern_type ||
			!SlStrEqualCString(res->resource_name, b->resource_name))
		{
			res = &resp.resources.items[nresources++];
			SlDescribeAclsResponseDescribeAclsResourceInit(res);
			res->resource_type = b->resource_type;
			res->resource_name = SlStrFromCString(b->resource_name);
			res->pattern_type = b->pattern_type;
			/* at most every binding found belongs to it */
			res->acls.items = palloc0(sizeof(*res->acls.items) * list_length(found));
			res->acls.n = 0;
		}
		d = &res->acls.items[res->acls.n++];
		SlDescribeAclsResponseAclDescriptionInit(d);
		d->principal = SlStrFromCString(principal_of(b->grantee));
		d->host = SlStrFromCString(ACL_HOST_ANY);
		d->operation = b->operation;
		d->permission_type = b->deny ? SL_ACL_PERMISSION_DENY : SL_ACL_PERMISSION_ALLOW;
	}
	resp.resources.n = nresources;
	SlDescribeAclsResponseEncode(out, req->api_version, &resp);
	return true;
}

/* CreateAcls */

static void
add_binding(void *arg)
{
	SlAclAdd((const SlAclBinding *) arg);
}

/* Check one creation and turn it into a binding; SL_ERR_NONE or the error and *message */
static int16
creation_binding(const SlCreateAclsRequestAclCreation *c, SlAclBinding *b, char **message)
{
	char	   *principal = wire_cstring(c->principal);
	char	   *host = wire_cstring(c->host);

	/* In Kafka's order: the broker's checks, then the controller's */
	if (!wire_text_valid(c->resource_name) || !wire_text_valid(c->principal) ||
		!wire_text_valid(c->host))
		*message = pstrdup("Resource names, principals and hosts must be text in the "
						   "database's encoding, without NUL characters");
	else if (c->resource_type == SL_RESOURCE_CLUSTER &&
		!SlStrEqualCString(c->resource_name, SL_CLUSTER_RESOURCE_NAME))
		*message = pstrdup("The only valid name for the CLUSTER resource is " SL_CLUSTER_RESOURCE_NAME);
	else if (SlStrIsNull(c->resource_name) || c->resource_name.len == 0)
		*message = pstrdup("Invalid empty resource name specified");
	else if (!resource_type_valid(c->resource_type, false))
		*message = psprintf("Invalid resourceType %s", SlResourceTypeName(c->resource_type));
	else if (!pattern_type_valid(c->resource_pattern_type, false))
		*message = psprintf("Invalid patternType %s", SlPatternTypeName(c->resource_pattern_type));
	else if (!operation_valid(c->operation, false))
		*message = psprintf("Invalid operation %s", SlAclOperationName(c->operation));
	else if (!permission_valid(c->permission_type, false) ||
			 c->permission_type == SL_ACL_PERMISSION_ANY)
		*message = psprintf("Invalid permissionType %s",
							c->permission_type == SL_ACL_PERMISSION_ANY ? "ANY" : "UNKNOWN");
	else if (c->resource_type == SL_RESOURCE_CLUSTER &&
			 c->resource_pattern_type != SL_PATTERN_LITERAL)
		*message = pstrdup("The CLUSTER resource can only be named literally");
	else if (principal == NULL ||
			 parse_principal(principal, &b->grantee) == PRINCIPAL_NOT_A_USER)
		*message = psprintf("Could not parse principal from `%s`: principals are "
							"User:<PostgreSQL role> or User:*",
							principal ? principal : "null");
	else if (parse_principal(principal, &b->grantee) == PRINCIPAL_NO_SUCH_ROLE)
		*message = psprintf("Principal %s is not a PostgreSQL role: principals are "
							"User:<role> for an existing role, or User:*.", principal);
	else if (host == NULL || strcmp(host, ACL_HOST_ANY) != 0)
		*message = psprintf("Host-based ACLs are not supported (host `%s`): "
							"use host \"*\".", host ? host : "null");
	else
	{
		b->resource_type = c->resource_type;
		b->resource_name = wire_cstring(c->resource_name);
		b->pattern_type = c->resource_pattern_type;
		b->operation = c->operation;
		b->deny = c->permission_type == SL_ACL_PERMISSION_DENY;
		return SL_ERR_NONE;
	}
	return SL_ERR_INVALID_REQUEST;
}

bool
SlHandleCreateAcls(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlCreateAclsRequest request;
	SlCreateAclsResponse resp;
	bool		authorized;

	if (!SlCreateAclsRequestDecode(body, req->api_version, &request))
		return false;
	SlCreateAclsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.results, request.creations.n);
	authorized = cluster_allowed(SL_ACL_ALTER);

	for (int i = 0; i < request.creations.n; i++)
	{
		SlCreateAclsResponseAclCreationResult *r = &resp.results.items[i];
		SlAclBinding binding;
		char	   *message = NULL;
		ErrorData  *error;

		SlCreateAclsResponseAclCreationResultInit(r);
		r->error_message = SL_STR_NULL;
		if (!authorized)
		{
			r->error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
			r->error_message = SlStrFromCString("Cluster authorization failed: "
												"CreateAcls needs ALTER on the cluster.");
			continue;
		}
		r->error_code = creation_binding(&request.creations.items[i], &binding, &message);
		if (r->error_code != SL_ERR_NONE)
		{
			r->error_message = SlStrFromCString(message);
			continue;
		}
		error = SlRunInSubtransaction(add_binding, &binding, true);
		if (error != NULL)
		{
			r->error_code = SL_ERR_UNKNOWN_SERVER_ERROR;
			r->error_message = SlStrFromCString(error->message);
		}
	}
	SlCreateAclsResponseEncode(out, req->api_version, &resp);
	return true;
}

/* DeleteAcls */

static void
remove_matching(void *arg)
{
	(void) SlAclRemoveMatching((const SlAclFilter *) arg);
}

/* Fill a filter's result with the bindings it matched */
static void
delete_result_matches(SlDeleteAclsResponseDeleteAclsFilterResult *fr, List *matched)
{
	ListCell   *lc;
	int			i = 0;

	SL_ARRAY_ALLOC(fr->matching_acls, list_length(matched));
	foreach(lc, matched)
	{
		SlAclBinding *b = lfirst(lc);
		SlDeleteAclsResponseDeleteAclsMatchingAcl *m = &fr->matching_acls.items[i++];

		SlDeleteAclsResponseDeleteAclsMatchingAclInit(m);
		m->error_code = SL_ERR_NONE;
		m->error_message = SL_STR_NULL;
		m->resource_type = b->resource_type;
		m->resource_name = SlStrFromCString(b->resource_name);
		m->pattern_type = b->pattern_type;
		m->principal = SlStrFromCString(principal_of(b->grantee));
		m->host = SlStrFromCString(ACL_HOST_ANY);
		m->operation = b->operation;
		m->permission_type = b->deny ? SL_ACL_PERMISSION_DENY : SL_ACL_PERMISSION_ALLOW;
	}
}

/*
 * As Kafka's controller does, every filter is matched against the
 * bindings as they were before the request, so a binding two filters match
 * is listed in both results; then what they matched is removed.
 */
bool
SlHandleDeleteAcls(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDeleteAclsRequest request;
	SlDeleteAclsResponse resp;
	SlAclFilter *filters;
	bool	   *valid;
	bool		authorized;

	if (!SlDeleteAclsRequestDecode(body, req->api_version, &request))
		return false;
	SlDeleteAclsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.filter_results, request.filters.n);
	filters = palloc0(sizeof(SlAclFilter) * Max(request.filters.n, 1));
	valid = palloc0(sizeof(bool) * Max(request.filters.n, 1));
	authorized = cluster_allowed(SL_ACL_ALTER);

	for (int i = 0; i < request.filters.n; i++)
	{
		SlDeleteAclsRequestDeleteAclsFilter *rf = &request.filters.items[i];
		SlDeleteAclsResponseDeleteAclsFilterResult *fr = &resp.filter_results.items[i];
		bool		matches_nothing;
		char	   *message = NULL;

		SlDeleteAclsResponseDeleteAclsFilterResultInit(fr);
		fr->error_message = SL_STR_NULL;
		SL_ARRAY_ALLOC(fr->matching_acls, 0);
		if (!authorized)
		{
			fr->error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
			fr->error_message = SlStrFromCString("Cluster authorization failed: "
												 "DeleteAcls needs ALTER on the cluster.");
			continue;
		}
		fr->error_code = make_filter(rf->resource_type_filter, rf->resource_name_filter,
									 rf->pattern_type_filter, rf->principal_filter,
									 rf->host_filter, rf->operation, rf->permission_type,
									 &filters[i], &matches_nothing, &message);
		if (fr->error_code != SL_ERR_NONE)
		{
			fr->error_message = SlStrFromCString(message);
			continue;
		}
		if (matches_nothing)
			continue;
		valid[i] = true;
		delete_result_matches(fr, SlAclMatching(&filters[i]));
	}

	for (int i = 0; i < request.filters.n; i++)
	{
		SlDeleteAclsResponseDeleteAclsFilterResult *fr = &resp.filter_results.items[i];
		ErrorData  *error;

		if (!valid[i] || fr->matching_acls.n == 0)
			continue;
		error = SlRunInSubtransaction(remove_matching, &filters[i], true);
		if (error != NULL)
		{
			fr->error_code = SL_ERR_UNKNOWN_SERVER_ERROR;
			fr->error_message = SlStrFromCString(error->message);
			SL_ARRAY_ALLOC(fr->matching_acls, 0);
		}
	}
	SlDeleteAclsResponseEncode(out, req->api_version, &resp);
	return true;
}
