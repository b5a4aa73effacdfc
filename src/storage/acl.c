/*
 * The privilege store (storage/acl.h): Kafka's ACL bindings kept as
 * PostgreSQL aclitem[] arrays in streamlog.acl.
 *
 * One row per resource pattern (resource type, pattern type, name) holds an
 * array of ALLOW entries and one of DENY entries.  Each Kafka operation is
 * one privilege bit, so that aclmask() answers "does this role, or a role it
 * has the privileges of, or PUBLIC, hold the bit" exactly as it does for
 * PostgreSQL's own objects, and the arrays print as \dp shows them:
 *
 *	 READ r (SELECT)			 WRITE a (INSERT)			ALTER w (UPDATE)
 *	 DELETE d (DELETE)			 CREATE C (CREATE)			DESCRIBE U (USAGE)
 *	 DESCRIBE_CONFIGS x (REFERENCES)		ALTER_CONFIGS t (TRIGGER)
 *	 CLUSTER_ACTION D (TRUNCATE)			IDEMPOTENT_WRITE X (EXECUTE)
 *	 ALL A (ALTER SYSTEM)
 *
 * ALL has a bit of its own rather than every bit, so that a binding for ALL
 * reads back as one binding for ALL, as Kafka's does.  The grantor of every
 * entry is the bootstrap superuser: Kafka's bindings have no grantor, and
 * one grantor keeps one entry per grantee.
 *
 * The table is read and written directly, not through SPI, so that checks
 * and the owner's grants work whatever the caller's privileges on the
 * table.  Writers take ShareRowExclusiveLock on it, one at a time.  Checks
 * read a copy of the whole table kept per backend, dropped by a relcache
 * invalidation of streamlog.acl, which every change sends (at commit to the
 * other backends, at once to its own).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/formatting.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "streamlog/storage/acl.h"
#include "streamlog/storage/internal/catalog_query.h"
#include "streamlog/storage/storage.h"

/* Columns of streamlog.acl */
#define Natts_acl 5
#define Anum_acl_resource_type 1
#define Anum_acl_pattern_type 2
#define Anum_acl_name 3
#define Anum_acl_allow 4
#define Anum_acl_deny 5

/* The bit of each operation (see the file header); 0 for ANY */
static const AclMode operation_bits[] = {
	[SL_ACL_ALL] = ACL_ALTER_SYSTEM,
	[SL_ACL_READ] = ACL_SELECT,
	[SL_ACL_WRITE] = ACL_INSERT,
	[SL_ACL_CREATE] = ACL_CREATE,
	[SL_ACL_DELETE] = ACL_DELETE,
	[SL_ACL_ALTER] = ACL_UPDATE,
	[SL_ACL_DESCRIBE] = ACL_USAGE,
	[SL_ACL_CLUSTER_ACTION] = ACL_TRUNCATE,
	[SL_ACL_DESCRIBE_CONFIGS] = ACL_REFERENCES,
	[SL_ACL_ALTER_CONFIGS] = ACL_TRIGGER,
	[SL_ACL_IDEMPOTENT_WRITE] = ACL_EXECUTE,
};

#define SL_ACL_OPERATION_MAX SL_ACL_IDEMPOTENT_WRITE

/* One row of streamlog.acl, as the backend cache keeps it */
typedef struct AclRow
{
	SlResourceType resource_type;
	SlPatternType pattern_type;
	char	   *name;
	Acl		   *allow;			/* never NULL: empty arrays for none */
	Acl		   *deny;
} AclRow;

static MemoryContext acl_cache_cxt = NULL;
static List *acl_cache = NIL;	/* of AclRow *, in acl_cache_cxt */
static bool acl_cache_valid = false;
static uint64 acl_invalidations = 0;	/* counted by the callback */
static bool acl_callback_registered = false;
static Oid	acl_relid = InvalidOid;

const char *
SlAclOperationName(SlAclOperation op)
{
	switch (op)
	{
		case SL_ACL_ANY:
			return "ANY";
		case SL_ACL_ALL:
			return "ALL";
		case SL_ACL_READ:
			return "READ";
		case SL_ACL_WRITE:
			return "WRITE";
		case SL_ACL_CREATE:
			return "CREATE";
		case SL_ACL_DELETE:
			return "DELETE";
		case SL_ACL_ALTER:
			return "ALTER";
		case SL_ACL_DESCRIBE:
			return "DESCRIBE";
		case SL_ACL_CLUSTER_ACTION:
			return "CLUSTER_ACTION";
		case SL_ACL_DESCRIBE_CONFIGS:
			return "DESCRIBE_CONFIGS";
		case SL_ACL_ALTER_CONFIGS:
			return "ALTER_CONFIGS";
		case SL_ACL_IDEMPOTENT_WRITE:
			return "IDEMPOTENT_WRITE";
	}
	return "UNKNOWN";
}

const char *
SlResourceTypeName(SlResourceType type)
{
	switch (type)
	{
		case SL_RESOURCE_ANY:
			return "ANY";
		case SL_RESOURCE_TOPIC:
			return "TOPIC";
		case SL_RESOURCE_GROUP:
			return "GROUP";
		case SL_RESOURCE_CLUSTER:
			return "CLUSTER";
		case SL_RESOURCE_TRANSACTIONAL_ID:
			return "TRANSACTIONAL_ID";
	}
	return "UNKNOWN";
}

const char *
SlPatternTypeName(SlPatternType pattern)
{
	switch (pattern)
	{
		case SL_PATTERN_ANY:
			return "ANY";
		case SL_PATTERN_MATCH:
			return "MATCH";
		case SL_PATTERN_LITERAL:
			return "LITERAL";
		case SL_PATTERN_PREFIXED:
			return "PREFIXED";
	}
	return "UNKNOWN";
}

/* The bit of a concrete operation; 0 for ANY or an unknown code */
static AclMode
operation_bit(SlAclOperation op)
{
	if (op < SL_ACL_ALL || op > SL_ACL_OPERATION_MAX)
		return 0;
	return operation_bits[op];
}

/* The bits an ALLOW entry may carry to allow op: op, ALL, and what implies op */
static AclMode
allow_mask(SlAclOperation op)
{
	AclMode		mask = operation_bit(op) | operation_bits[SL_ACL_ALL];

	if (op == SL_ACL_DESCRIBE)
		mask |= operation_bits[SL_ACL_READ] | operation_bits[SL_ACL_WRITE] |
			operation_bits[SL_ACL_DELETE] | operation_bits[SL_ACL_ALTER];
	else if (op == SL_ACL_DESCRIBE_CONFIGS)
		mask |= operation_bits[SL_ACL_ALTER_CONFIGS];
	return mask;
}

/* The bits a DENY entry may carry to deny op: op and ALL, as Kafka's */
static AclMode
deny_mask(SlAclOperation op)
{
	return operation_bit(op) | operation_bits[SL_ACL_ALL];
}

/* Drop the backend's copy of streamlog.acl when the table changes */
static void
acl_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == acl_relid)
	{
		acl_cache_valid = false;
		acl_invalidations++;
		acl_relid = InvalidOid;
	}
}

/* OID of streamlog.acl; ERROR if the extension is not installed */
static Oid
acl_table(void)
{
	if (!acl_callback_registered)
	{
		CacheRegisterRelcacheCallback(acl_relcache_callback, (Datum) 0);
		acl_callback_registered = true;
	}
	if (!OidIsValid(acl_relid))
		acl_relid = SlCatalogRelid("acl");
	return acl_relid;
}

/* Tell every backend, this one included, that streamlog.acl changed */
static void
acl_changed(Oid relid)
{
	CacheInvalidateRelcacheByRelid(relid);
	acl_cache_valid = false;
	/* Our own later reads in this transaction see the change */
	CommandCounterIncrement();
}

/*
 * An array column as a detoasted Acl in the current memory context.  An
 * empty array read from text ('{}', as COPY restores a dump) has no
 * dimension at all, which the acl functions refuse: it becomes the
 * one-dimensional empty array they expect.
 */
static Acl *
acl_column(Datum *values, bool *nulls, int attnum)
{
	Acl		   *acl;

	if (nulls[attnum - 1])
		return make_empty_acl();
	acl = DatumGetAclPCopy(values[attnum - 1]);
	if (ARR_NDIM(acl) == 0)
		return make_empty_acl();
	return acl;
}

/* A row of streamlog.acl, copied into the current memory context */
static AclRow *
acl_row_from_tuple(HeapTuple tuple, TupleDesc desc)
{
	Datum		values[Natts_acl];
	bool		nulls[Natts_acl];
	AclRow	   *row = palloc(sizeof(AclRow));

	heap_deform_tuple(tuple, desc, values, nulls);
	row->resource_type = DatumGetInt16(values[Anum_acl_resource_type - 1]);
	row->pattern_type = DatumGetInt16(values[Anum_acl_pattern_type - 1]);
	row->name = TextDatumGetCString(values[Anum_acl_name - 1]);
	row->allow = acl_column(values, nulls, Anum_acl_allow);
	row->deny = acl_column(values, nulls, Anum_acl_deny);
	return row;
}

/*
 * Every row of streamlog.acl as it is now (the latest snapshot), in the
 * current memory context.  rel is open.
 */
static List *
acl_read_all(Relation rel)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	HeapTuple	tuple;
	List	   *rows = NIL;

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
		rows = lappend(rows, acl_row_from_tuple(tuple, RelationGetDescr(rel)));
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	return rows;
}

/* The backend's copy of streamlog.acl, read again if it changed */
static List *
acl_cached_rows(void)
{
	Relation	rel;
	MemoryContext oldcxt;
	uint64		invalidations;

	rel = table_open(acl_table(), AccessShareLock);
	/* table_open took in invalidations: valid now means current */
	if (acl_cache_valid)
	{
		table_close(rel, AccessShareLock);
		return acl_cache;
	}
	if (acl_cache_cxt == NULL)
		acl_cache_cxt = AllocSetContextCreate(CacheMemoryContext,
											  "streamlog acl cache",
											  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(acl_cache_cxt);
	acl_cache = NIL;
	invalidations = acl_invalidations;
	oldcxt = MemoryContextSwitchTo(acl_cache_cxt);
	acl_cache = acl_read_all(rel);
	MemoryContextSwitchTo(oldcxt);
	table_close(rel, AccessShareLock);

	/*
	 * Valid unless a change arrived while we read (then the next call reads
	 * again); an ERROR while reading leaves it invalid too.
	 */
	acl_cache_valid = (invalidations == acl_invalidations);
	return acl_cache;
}

/* Does a stored pattern cover the resource name (Kafka's matching)? */
static bool
pattern_covers(const AclRow *row, const char *name)
{
	if (row->pattern_type == SL_PATTERN_LITERAL)
		return strcmp(row->name, name) == 0 ||
			strcmp(row->name, SL_ACL_WILDCARD) == 0;
	if (row->pattern_type == SL_PATTERN_PREFIXED)
		return strncmp(row->name, name, strlen(row->name)) == 0;
	return false;
}

/* Is role a superuser or a member of streamlog_admin? */
static bool
is_streamlog_admin(Oid role)
{
	Oid			admin;

	if (superuser_arg(role))
		return true;
	admin = get_role_oid(SL_ADMIN_ROLE_NAME, true);
	return OidIsValid(admin) && has_privs_of_role(role, admin);
}

/*
 * Does role own the topic (or have the privileges of its owner)?  The topic
 * is looked up as the owner of the catalogue, so that the check works
 * whatever the caller may read (as the SQL functions' own lookups must
 * not depend on SELECT on streamlog.topic).
 */
static bool
owns_topic(Oid role, const char *name)
{
	const SlTopic *topic;

	if (strlen(name) > SL_TOPIC_NAME_MAX)
		return false;
	topic = SlTopicLookup(name, true);

	return topic != NULL && OidIsValid(topic->owner) &&
		has_privs_of_role(role, topic->owner);
}

bool
SlAclAllowed(Oid role, SlResourceType type, const char *name, SlAclOperation op)
{
	List	   *rows;
	ListCell   *lc;
	bool		allowed = false;

	if (is_streamlog_admin(role))
		return true;
	/* A null name (from the wire) is no resource anyone was granted */
	if (name == NULL)
		return false;
	if (type == SL_RESOURCE_TOPIC && owns_topic(role, name))
		return true;
	if (operation_bit(op) == 0)
		return false;
	rows = acl_cached_rows();
	foreach(lc, rows)
	{
		AclRow	   *row = lfirst(lc);

		if (row->resource_type != type || !pattern_covers(row, name))
			continue;
		if (aclmask(row->deny, role, BOOTSTRAP_SUPERUSERID, deny_mask(op),
					ACLMASK_ANY) != 0)
			return false;
		if (!allowed &&
			aclmask(row->allow, role, BOOTSTRAP_SUPERUSERID, allow_mask(op),
					ACLMASK_ANY) != 0)
			allowed = true;
	}
	return allowed;
}

/* Lower-case name of a resource type, as streamlog.grant() takes it */
static const char *
resource_type_sql_name(SlResourceType type)
{
	switch (type)
	{
		case SL_RESOURCE_TOPIC:
			return "topic";
		case SL_RESOURCE_GROUP:
			return "group";
		case SL_RESOURCE_CLUSTER:
			return "cluster";
		case SL_RESOURCE_TRANSACTIONAL_ID:
			return "transactional_id";
		default:
			return "resource";
	}
}

void
SlAclCheck(SlResourceType type, const char *name, SlAclOperation op)
{
	const char *type_name = resource_type_sql_name(type);
	char	   *op_name;

	if (SlAclAllowed(GetUserId(), type, name, op))
		return;
	if (name == NULL)
		name = "";
	op_name = asc_tolower(SlAclOperationName(op), strlen(SlAclOperationName(op)));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for %s \"%s\"", type_name, name),
			 errdetail("Role \"%s\" lacks the %s privilege on it.",
					   GetUserNameFromId(GetUserId(), false), SlAclOperationName(op)),
			 errhint("A superuser, a member of %s, %sa role with ALTER on the cluster "
					 "may grant it: SELECT streamlog.grant('%s', '%s', %s, %s);",
					 SL_ADMIN_ROLE_NAME,
					 type == SL_RESOURCE_TOPIC ? "the topic's owner or " : "or ",
					 op_name, type_name, quote_literal_cstr(name),
					 quote_literal_cstr(GetUserNameFromId(GetUserId(), false)))));
}

void
SlAclCheckManage(SlResourceType type, const char *name, SlPatternType pattern)
{
	Oid			role = GetUserId();

	if (SlAclAllowed(role, SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME, SL_ACL_ALTER))
		return;
	if (type == SL_RESOURCE_TOPIC && pattern == SL_PATTERN_LITERAL &&
		strcmp(name, SL_ACL_WILDCARD) != 0 && owns_topic(role, name))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to change privileges on %s %s \"%s\"",
					asc_tolower(SlPatternTypeName(pattern), strlen(SlPatternTypeName(pattern))),
					resource_type_sql_name(type), name),
			 errdetail("Privileges may be granted and revoked by superusers, members of %s, "
					   "roles with ALTER on the cluster, and the owner of a topic on that topic's own name.",
					   SL_ADMIN_ROLE_NAME),
			 errhint("Ask one of them, or to be granted ALTER on the cluster: "
					 "SELECT streamlog.grant('alter', 'cluster', '%s', %s);",
					 SL_CLUSTER_RESOURCE_NAME,
					 quote_literal_cstr(GetUserNameFromId(role, false)))));
}

/* Error out unless b is a binding that may be stored */
static void
validate_binding(const SlAclBinding *b)
{
	if (b->resource_type < SL_RESOURCE_TOPIC || b->resource_type > SL_RESOURCE_TRANSACTIONAL_ID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid resource type %d for a privilege", (int) b->resource_type),
				 errhint("Use topic, group, cluster or transactional_id.")));
	if (b->pattern_type != SL_PATTERN_LITERAL && b->pattern_type != SL_PATTERN_PREFIXED)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid pattern type %s for a privilege", SlPatternTypeName(b->pattern_type)),
				 errhint("Use literal or prefixed.")));
	if (operation_bit(b->operation) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid operation %s for a privilege", SlAclOperationName(b->operation))));
	if (b->resource_name == NULL || b->resource_name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("resource name of a privilege must not be empty")));
	if (b->resource_type == SL_RESOURCE_CLUSTER &&
		(b->pattern_type != SL_PATTERN_LITERAL ||
		 strcmp(b->resource_name, SL_CLUSTER_RESOURCE_NAME) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the only cluster resource is the literal name \"%s\"",
						SL_CLUSTER_RESOURCE_NAME)));
	if (OidIsValid(b->grantee) &&
		!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(b->grantee)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", b->grantee)));
}

/* One entry of the bootstrap superuser's granting privs to grantee */
static AclItem
make_item(Oid grantee, AclMode privs)
{
	AclItem		item;

	item.ai_grantee = grantee;
	item.ai_grantor = BOOTSTRAP_SUPERUSERID;
	item.ai_privs = 0;
	ACLITEM_SET_PRIVS(item, privs);
	return item;
}

/* Open the pattern's row of streamlog.acl (under the writers' lock) */
static HeapTuple
acl_find_row(Relation rel, SlResourceType type, SlPatternType pattern,
			 const char *name)
{
	ScanKeyData keys[3];
	SysScanDesc scan;
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	HeapTuple	tuple;

	ScanKeyInit(&keys[0], Anum_acl_resource_type, BTEqualStrategyNumber,
				F_INT2EQ, Int16GetDatum((int16) type));
	ScanKeyInit(&keys[1], Anum_acl_pattern_type, BTEqualStrategyNumber,
				F_INT2EQ, Int16GetDatum((int16) pattern));
	ScanKeyInit(&keys[2], Anum_acl_name, BTEqualStrategyNumber,
				F_TEXTEQ, CStringGetTextDatum(name));
	scan = systable_beginscan(rel, RelationGetPrimaryKeyIndex(rel), true,
							  snapshot, 3, keys);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		tuple = heap_copytuple(tuple);
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	return tuple;
}

/* Write a row's arrays back: update it, insert it (old NULL), or delete it if empty */
static void
acl_write_row(Relation rel, HeapTuple old, const AclRow *row)
{
	Datum		values[Natts_acl];
	bool		nulls[Natts_acl] = {false};
	HeapTuple	tuple;

	if (ACL_NUM(row->allow) == 0 && ACL_NUM(row->deny) == 0)
	{
		if (old != NULL)
			CatalogTupleDelete(rel, &old->t_self);
		return;
	}
	values[Anum_acl_resource_type - 1] = Int16GetDatum((int16) row->resource_type);
	values[Anum_acl_pattern_type - 1] = Int16GetDatum((int16) row->pattern_type);
	values[Anum_acl_name - 1] = CStringGetTextDatum(row->name);
	values[Anum_acl_allow - 1] = PointerGetDatum(row->allow);
	values[Anum_acl_deny - 1] = PointerGetDatum(row->deny);
	tuple = heap_form_tuple(RelationGetDescr(rel), values, nulls);
	if (old != NULL)
		CatalogTupleUpdate(rel, &old->t_self, tuple);
	else
		CatalogTupleInsert(rel, tuple);
	heap_freetuple(tuple);
}

void
SlAclAdd(const SlAclBinding *b)
{
	Relation	rel;
	HeapTuple	old;
	AclRow		row;
	AclItem		item;
	Acl		   *target;

	validate_binding(b);
	rel = table_open(acl_table(), ShareRowExclusiveLock);
	old = acl_find_row(rel, b->resource_type, b->pattern_type, b->resource_name);
	if (old != NULL)
		row = *acl_row_from_tuple(old, RelationGetDescr(rel));
	else
	{
		row.resource_type = b->resource_type;
		row.pattern_type = b->pattern_type;
		row.name = pstrdup(b->resource_name);
		row.allow = make_empty_acl();
		row.deny = make_empty_acl();
	}
	target = b->deny ? row.deny : row.allow;
	/* Already there: change nothing, not even the row's version */
	for (int i = 0; i < ACL_NUM(target); i++)
	{
		AclItem    *existing = &ACL_DAT(target)[i];

		if (existing->ai_grantee == b->grantee &&
			(ACLITEM_GET_PRIVS(*existing) & operation_bit(b->operation)) != 0)
		{
			table_close(rel, NoLock);
			return;
		}
	}
	item = make_item(b->grantee, operation_bit(b->operation));
	target = aclupdate(target, &item, ACL_MODECHG_ADD, BOOTSTRAP_SUPERUSERID,
					   DROP_RESTRICT);
	if (b->deny)
		row.deny = target;
	else
		row.allow = target;
	acl_write_row(rel, old, &row);
	acl_changed(RelationGetRelid(rel));
	table_close(rel, NoLock);
}

/* Does the filter's resource part match a stored pattern (Kafka's ResourcePatternFilter)? */
static bool
filter_matches_row(const SlAclFilter *f, const AclRow *row)
{
	if (f->resource_type != SL_RESOURCE_ANY && f->resource_type != row->resource_type)
		return false;
	if (f->pattern_type != SL_PATTERN_ANY && f->pattern_type != SL_PATTERN_MATCH &&
		f->pattern_type != row->pattern_type)
		return false;
	if (f->resource_name == NULL)
		return true;
	if (f->pattern_type == SL_PATTERN_ANY || f->pattern_type == row->pattern_type)
		return strcmp(f->resource_name, row->name) == 0;
	/* MATCH: the patterns that would apply to that name */
	return pattern_covers(row, f->resource_name);
}

/* The grantees of an array with the privileges each holds, whatever the grantor */
typedef struct GranteePrivs
{
	Oid			grantee;
	AclMode		privs;
} GranteePrivs;

static int
grantee_privs(const Acl *acl, GranteePrivs *out)
{
	AclItem    *items = ACL_DAT(acl);
	int			n = 0;

	for (int i = 0; i < ACL_NUM(acl); i++)
	{
		int			j;

		for (j = 0; j < n; j++)
			if (out[j].grantee == items[i].ai_grantee)
				break;
		if (j == n)
		{
			out[n].grantee = items[i].ai_grantee;
			out[n].privs = 0;
			n++;
		}
		out[j].privs |= ACLITEM_GET_PRIVS(items[i]);
	}
	return n;
}

/*
 * The bindings of one array of a row that the filter matches, appended to
 * *found; with remove, the array without them is returned (else the array
 * itself).
 */
static Acl *
collect_bindings(const SlAclFilter *f, const AclRow *row, Acl *acl, bool deny,
				 bool remove, List **found)
{
	GranteePrivs *grantees;
	int			n;
	Acl		   *kept;

	if (f->permission == (deny ? SL_ACL_PERMISSION_ALLOW : SL_ACL_PERMISSION_DENY))
		return acl;
	grantees = palloc(sizeof(GranteePrivs) * Max(ACL_NUM(acl), 1));
	n = grantee_privs(acl, grantees);
	kept = make_empty_acl();
	for (int i = 0; i < n; i++)
	{
		AclMode		keep = grantees[i].privs;

		if (f->any_grantee || f->grantee == grantees[i].grantee)
		{
			for (int op = SL_ACL_ALL; op <= SL_ACL_OPERATION_MAX; op++)
			{
				SlAclBinding *b;

				if (!(grantees[i].privs & operation_bits[op]) ||
					(f->operation != SL_ACL_ANY && f->operation != op))
					continue;
				b = palloc(sizeof(SlAclBinding));
				b->resource_type = row->resource_type;
				b->resource_name = pstrdup(row->name);
				b->pattern_type = row->pattern_type;
				b->grantee = grantees[i].grantee;
				b->operation = op;
				b->deny = deny;
				*found = lappend(*found, b);
				keep &= ~operation_bits[op];
			}
		}
		if (keep != 0)
		{
			AclItem		item = make_item(grantees[i].grantee, keep);

			kept = aclupdate(kept, &item, ACL_MODECHG_ADD, BOOTSTRAP_SUPERUSERID,
							 DROP_RESTRICT);
		}
	}
	return remove ? kept : acl;
}

List *
SlAclMatching(const SlAclFilter *f)
{
	List	   *found = NIL;
	List	   *rows;
	ListCell   *lc;

	rows = acl_cached_rows();
	foreach(lc, rows)
	{
		AclRow	   *row = lfirst(lc);

		if (!filter_matches_row(f, row))
			continue;
		(void) collect_bindings(f, row, row->allow, false, false, &found);
		(void) collect_bindings(f, row, row->deny, true, false, &found);
	}
	return found;
}

List *
SlAclRemoveMatching(const SlAclFilter *f)
{
	Relation	rel;
	Snapshot	snapshot;
	TableScanDesc scan;
	HeapTuple	tuple;
	List	   *removed = NIL;

	rel = table_open(acl_table(), ShareRowExclusiveLock);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		AclRow	   *row = acl_row_from_tuple(tuple, RelationGetDescr(rel));
		int			before = list_length(removed);

		if (!filter_matches_row(f, row))
			continue;
		row->allow = collect_bindings(f, row, row->allow, false, true, &removed);
		row->deny = collect_bindings(f, row, row->deny, true, true, &removed);
		if (list_length(removed) != before)
			acl_write_row(rel, tuple, row);
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	if (removed != NIL)
		acl_changed(RelationGetRelid(rel));
	table_close(rel, NoLock);
	return removed;
}
