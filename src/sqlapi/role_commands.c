/*
 * Roles and the privilege store, as PostgreSQL treats roles and the
 * objects that mention them: DROP ROLE refuses a role that still has
 * streamlog privileges or owns topics (as it refuses one that owns
 * tables), DROP OWNED BY revokes its privileges, and REASSIGN OWNED BY
 * gives its topics to another role.  Without this a dropped role's entries
 * would stay, naming an OID that a role created later may get.
 *
 * PostgreSQL records such dependencies in pg_shdepend, which only knows
 * its own catalogues, so the commands are followed here instead, for the
 * database the command runs in: a role dropped from another database is
 * not seen (the limits in README's Privileges say so).  Topics are never
 * dropped by DROP OWNED: it would drop their records; they are reassigned.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "streamlog/sqlapi/role_commands.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/storage.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

/* Is the extension installed in this database (its privilege store there)? */
static bool
streamlog_installed(void)
{
	Oid			nsp;

	if (!IsTransactionState())
		return false;
	nsp = get_namespace_oid("streamlog", true);
	return OidIsValid(nsp) && OidIsValid(get_relname_relid("acl", nsp));
}

/* Every binding of one grantee */
static SlAclFilter
grantee_filter(Oid role)
{
	SlAclFilter f;

	f.resource_type = SL_RESOURCE_ANY;
	f.resource_name = NULL;
	f.pattern_type = SL_PATTERN_ANY;
	f.any_grantee = false;
	f.grantee = role;
	f.operation = SL_ACL_ANY;
	f.permission = SL_ACL_PERMISSION_ANY;
	return f;
}

/* The roles a statement names, skipping those that do not exist */
static List *
role_oids(List *rolespecs)
{
	List	   *oids = NIL;
	ListCell   *lc;

	foreach(lc, rolespecs)
	{
		Oid			oid = get_rolespec_oid(lfirst(lc), true);

		if (OidIsValid(oid))
			oids = lappend_oid(oids, oid);
	}
	return oids;
}

/* ERROR if a role to be dropped still has privileges or topics */
static void
check_droppable(Oid role)
{
	SlAclFilter f = grantee_filter(role);
	int			bindings = list_length(SlAclMatching(&f));
	List	   *topics = SlTopicListOwnedBy(role);
	char	   *name = GetUserNameFromId(role, false);

	StringInfoData detail;

	if (bindings == 0 && topics == NIL)
		return;
	initStringInfo(&detail);
	if (bindings > 0)
		appendStringInfo(&detail, "It holds %d streamlog privilege%s.", bindings,
						 bindings == 1 ? "" : "s");
	if (list_length(topics) == 1)
		appendStringInfo(&detail, "%sIt owns topic \"%s\".", bindings > 0 ? " " : "",
						 (char *) linitial(topics));
	else if (topics != NIL)
		appendStringInfo(&detail, "%sIt owns %d topics, among them \"%s\".",
						 bindings > 0 ? " " : "", list_length(topics), (char *) linitial(topics));
	ereport(ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 errmsg("role \"%s\" cannot be dropped because some streamlog objects depend on it", name),
			 errdetail_internal("%s", detail.data),
			 errhint("Give its topics to another role with REASSIGN OWNED BY %s TO <role>, "
					 "and revoke its privileges with DROP OWNED BY %s.",
					 quote_identifier(name), quote_identifier(name))));
}

static void
run_standard(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			 ProcessUtilityContext context, ParamListInfo params,
			 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	(prev_process_utility ? prev_process_utility : standard_ProcessUtility)
		(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

static void
streamlog_role_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	ListCell   *lc;

	if (!IsA(stmt, DropRoleStmt) && !IsA(stmt, DropOwnedStmt) &&
		!IsA(stmt, ReassignOwnedStmt))
	{
		run_standard(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		return;
	}

	if (IsA(stmt, DropRoleStmt) && streamlog_installed())
	{
		foreach(lc, role_oids(((DropRoleStmt *) stmt)->roles))
			check_droppable(lfirst_oid(lc));
	}

	/* PostgreSQL's own checks (may the user do this to these roles?) first */
	run_standard(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);

	if (IsA(stmt, DropOwnedStmt) && streamlog_installed())
	{
		foreach(lc, role_oids(((DropOwnedStmt *) stmt)->roles))
		{
			SlAclFilter f = grantee_filter(lfirst_oid(lc));

			(void) SlAclRemoveMatching(&f);
		}
	}
	else if (IsA(stmt, ReassignOwnedStmt) && streamlog_installed())
	{
		ReassignOwnedStmt *reassign = (ReassignOwnedStmt *) stmt;
		Oid			to = get_rolespec_oid(reassign->newrole, false);

		foreach(lc, role_oids(reassign->roles))
			(void) SlTopicReassignOwner(lfirst_oid(lc), to);
	}
}

void
SlRoleCommandsInit(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = streamlog_role_utility;
}
