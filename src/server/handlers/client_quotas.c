/*
 * DescribeClientQuotas (API key 48) and AlterClientQuotas (API key 49),
 * versions 0-1 (v1 is flexible): the quotas of streamlog.client_quota, the
 * same that streamlog.alter_client_quota() writes and the view
 * streamlog.client_quotas shows.  Entity types "user" and "client-id"; a
 * null name is the <default> entity.  Reading needs Kafka's
 * DESCRIBE_CONFIGS on the cluster and writing ALTER_CONFIGS, as in Kafka
 * (storage/acl.h).
 */
#include "postgres.h"

#include "miscadmin.h"

#include "streamlog/server/handlers.h"
#include "streamlog/server/subtransaction.h"
#include "streamlog/storage/acl.h"
#include "streamlog/storage/client_quotas.h"

#define MATCH_EXACT 0
#define MATCH_DEFAULT 1
#define MATCH_ANY 2

#define ENTITY_USER "user"
#define ENTITY_CLIENT_ID "client-id"
#define ENTITY_IP "ip"

/* May the role the request runs as do op on the cluster? */
static bool
allowed_on_cluster(SlAclOperation op)
{
	return SlAclAllowed(GetUserId(), SL_RESOURCE_CLUSTER, SL_CLUSTER_RESOURCE_NAME, op);
}

static char *
str_or_null(SlStr s)
{
	return s.len < 0 ? NULL : pnstrdup(s.data, s.len);
}

/* Does the part of q of one entity type pass component c? */
static bool
component_matches(const SlDescribeClientQuotasRequestComponentData *c, bool has,
				  const char *name)
{
	if (!has)
		return false;
	switch (c->match_type)
	{
		case MATCH_EXACT:
			return name != NULL && SlStrEqualCString(c->match, name);
		case MATCH_DEFAULT:
			return name == NULL;
		default:
			return true;
	}
}

/* Does the entity of q pass the filter? */
static bool
entity_matches(const SlDescribeClientQuotasRequest *r, const SlClientQuota *q)
{
	bool		user_named = false;
	bool		client_named = false;

	for (int i = 0; i < r->components.n; i++)
	{
		const SlDescribeClientQuotasRequestComponentData *c = &r->components.items[i];

		if (SlStrEqualCString(c->entity_type, ENTITY_USER))
		{
			user_named = true;
			if (!component_matches(c, q->has_user, q->user))
				return false;
		}
		else if (SlStrEqualCString(c->entity_type, ENTITY_CLIENT_ID))
		{
			client_named = true;
			if (!component_matches(c, q->has_client_id, q->client_id))
				return false;
		}
		else
			return false;		/* "ip": no quotas of that type here */
	}
	/* strict: no part of a type the filter does not name */
	return !r->strict || ((!q->has_user || user_named) && (!q->has_client_id || client_named));
}

static bool
same_entity(const SlClientQuota *a, const SlClientQuota *b)
{
	return a->has_user == b->has_user && a->has_client_id == b->has_client_id &&
		((a->user == NULL) == (b->user == NULL)) &&
		(a->user == NULL || strcmp(a->user, b->user) == 0) &&
		((a->client_id == NULL) == (b->client_id == NULL)) &&
		(a->client_id == NULL || strcmp(a->client_id, b->client_id) == 0);
}

/* What is wrong with the filter, or NULL */
static const char *
filter_error(const SlDescribeClientQuotasRequest *r)
{
	for (int i = 0; i < r->components.n; i++)
	{
		const SlDescribeClientQuotasRequestComponentData *c = &r->components.items[i];

		if (!SlStrEqualCString(c->entity_type, ENTITY_USER) &&
			!SlStrEqualCString(c->entity_type, ENTITY_CLIENT_ID) &&
			!SlStrEqualCString(c->entity_type, ENTITY_IP))
			return psprintf("Custom entity type '%.*s' not supported",
							Max(c->entity_type.len, 0), c->entity_type.data);
		if (c->match_type < MATCH_EXACT || c->match_type > MATCH_ANY)
			return psprintf("Unexpected match type %d", c->match_type);
		if (c->match_type == MATCH_EXACT && c->match.len < 0)
			return "A match of type EXACT needs an entity name";
		for (int j = 0; j < i; j++)
			if (SlStrEqual(c->entity_type, r->components.items[j].entity_type))
				return psprintf("Duplicate entity type '%.*s' in the filter",
								Max(c->entity_type.len, 0), c->entity_type.data);
	}
	return NULL;
}

static void
entity_part(SlDescribeClientQuotasResponseEntityData *e, const char *type, const char *name)
{
	SlDescribeClientQuotasResponseEntityDataInit(e);
	e->entity_type = SlStrFromCString(type);
	e->entity_name = name ? SlStrFromCString(name) : SL_STR_NULL;
}

bool
SlHandleDescribeClientQuotas(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeClientQuotasRequest request;
	SlDescribeClientQuotasResponse resp;
	const char *error;
	List	   *quotas;
	int			nentries = 0;
	SlClientQuota *prev = NULL;
	ListCell   *lc;

	if (!SlDescribeClientQuotasRequestDecode(body, req->api_version, &request))
		return false;
	SlDescribeClientQuotasResponseInit(&resp);
	resp.throttle_time_ms = 0;
	resp.error_message = SL_STR_NULL;
	resp.entries.n = -1;
	resp.entries.items = NULL;

	if (!allowed_on_cluster(SL_ACL_DESCRIBE_CONFIGS))
	{
		resp.error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		resp.error_message = SlStrFromCString("Describing client quotas needs DESCRIBE_CONFIGS on the cluster.");
		SlDescribeClientQuotasResponseEncode(out, req->api_version, &resp);
		return true;
	}
	if ((error = filter_error(&request)) != NULL)
	{
		resp.error_code = SL_ERR_INVALID_REQUEST;
		resp.error_message = SlStrFromCString(error);
		SlDescribeClientQuotasResponseEncode(out, req->api_version, &resp);
		return true;
	}

	/* quotas come sorted by entity: one entry per run of the same entity */
	quotas = SlClientQuotasList();
	SL_ARRAY_ALLOC(resp.entries, list_length(quotas));
	foreach(lc, quotas)
	{
		SlClientQuota *q = lfirst(lc);
		SlDescribeClientQuotasResponseEntryData *entry;
		SlDescribeClientQuotasResponseValueData *value;

		if (!entity_matches(&request, q))
			continue;
		if (prev == NULL || !same_entity(prev, q))
		{
			int			nparts = (q->has_user ? 1 : 0) + (q->has_client_id ? 1 : 0);
			int			part = 0;

			entry = &resp.entries.items[nentries++];
			SlDescribeClientQuotasResponseEntryDataInit(entry);
			SL_ARRAY_ALLOC(entry->entity, nparts);
			if (q->has_user)
				entity_part(&entry->entity.items[part++], ENTITY_USER, q->user);
			if (q->has_client_id)
				entity_part(&entry->entity.items[part++], ENTITY_CLIENT_ID, q->client_id);
			SL_ARRAY_ALLOC(entry->values, list_length(quotas));
			entry->values.n = 0;
		}
		entry = &resp.entries.items[nentries - 1];
		value = &entry->values.items[entry->values.n++];
		SlDescribeClientQuotasResponseValueDataInit(value);
		value->key = SlStrFromCString(q->key);
		value->value = q->value;
		prev = q;
	}
	resp.entries.n = nentries;
	resp.error_code = SL_ERR_NONE;
	SlDescribeClientQuotasResponseEncode(out, req->api_version, &resp);
	return true;
}

/* One entry of an AlterClientQuotas: its ops, in a subtransaction */
typedef struct AlterEntry
{
	SlClientQuota entity;
	SlAlterClientQuotasRequestEntryData *data;
	bool		validate_only;
} AlterEntry;

static void
alter_entry(void *arg)
{
	AlterEntry *a = arg;

	for (int i = 0; i < a->data->ops.n; i++)
	{
		SlAlterClientQuotasRequestOpData *op = &a->data->ops.items[i];
		SlClientQuota q = a->entity;

		q.key = str_or_null(op->key);
		q.value = op->value;
		SlClientQuotaAlter(&q, op->remove, a->validate_only);
	}
}

/* The entity of an entry, or what is wrong with it */
static const char *
parse_entity(SlAlterClientQuotasRequestEntryData *e, SlClientQuota *entity)
{
	memset(entity, 0, sizeof(*entity));
	if (e->entity.n <= 0)
		return "Invalid empty client quota entity";
	for (int i = 0; i < e->entity.n; i++)
	{
		SlAlterClientQuotasRequestEntityData *part = &e->entity.items[i];

		if (SlStrEqualCString(part->entity_type, ENTITY_USER) && !entity->has_user)
		{
			entity->has_user = true;
			entity->user = str_or_null(part->entity_name);
		}
		else if (SlStrEqualCString(part->entity_type, ENTITY_CLIENT_ID) &&
				 !entity->has_client_id)
		{
			entity->has_client_id = true;
			entity->client_id = str_or_null(part->entity_name);
		}
		else if (SlStrEqualCString(part->entity_type, ENTITY_USER) ||
				 SlStrEqualCString(part->entity_type, ENTITY_CLIENT_ID))
			return "Duplicate entity type in the client quota entity";
		else
			return psprintf("Entity type '%.*s' is not supported: quotas are set per user and client-id",
							Max(part->entity_type.len, 0), part->entity_type.data);
	}
	return NULL;
}

bool
SlHandleAlterClientQuotas(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlAlterClientQuotasRequest request;
	SlAlterClientQuotasResponse resp;
	bool		allowed = allowed_on_cluster(SL_ACL_ALTER_CONFIGS);

	if (!SlAlterClientQuotasRequestDecode(body, req->api_version, &request))
		return false;
	SlAlterClientQuotasResponseInit(&resp);
	resp.throttle_time_ms = 0;
	SL_ARRAY_ALLOC(resp.entries, request.entries.n);
	for (int i = 0; i < request.entries.n; i++)
	{
		SlAlterClientQuotasRequestEntryData *e = &request.entries.items[i];
		SlAlterClientQuotasResponseEntryData *r = &resp.entries.items[i];
		AlterEntry	a;
		const char *error;

		SlAlterClientQuotasResponseEntryDataInit(r);
		r->error_code = SL_ERR_NONE;
		r->error_message = SL_STR_NULL;
		SL_ARRAY_ALLOC(r->entity, Max(e->entity.n, 0));
		for (int j = 0; j < e->entity.n; j++)
		{
			SlAlterClientQuotasResponseEntityDataInit(&r->entity.items[j]);
			r->entity.items[j].entity_type = e->entity.items[j].entity_type;
			r->entity.items[j].entity_name = e->entity.items[j].entity_name;
		}
		if (!allowed)
		{
			r->error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
			r->error_message = SlStrFromCString("Altering client quotas needs ALTER_CONFIGS on the cluster.");
			continue;
		}
		if ((error = parse_entity(e, &a.entity)) != NULL)
		{
			r->error_code = SL_ERR_INVALID_REQUEST;
			r->error_message = SlStrFromCString(error);
			continue;
		}
		a.data = e;
		a.validate_only = request.validate_only;
		{
			/* all of an entry's ops, or none */
			ErrorData  *edata = SlRunInSubtransaction(alter_entry, &a, true);

			if (edata != NULL)
			{
				r->error_code = SL_ERR_INVALID_REQUEST;
				r->error_message = SlStrFromCString(edata->message);
			}
		}
	}
	SlAlterClientQuotasResponseEncode(out, req->api_version, &resp);
	return true;
}
