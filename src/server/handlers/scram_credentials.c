/*
 * DescribeUserScramCredentials (API key 50, v0) and
 * AlterUserScramCredentials (API key 51, v0); both flexible from v0.
 *
 * Kafka's users are PostgreSQL roles, and their SCRAM credentials are
 * those that log them in: SCRAM-SHA-256 is the role's own pg_authid
 * verifier (an upsertion sets it as ALTER ROLE ... PASSWORD would, so the
 * SQL login changes too; a deletion removes the password), SCRAM-SHA-512
 * is streamlog's verifier of the role.  Credentials are for existing roles
 * only (RESOURCE_NOT_FOUND otherwise).  The rules are Kafka's: iterations
 * 4096 to 16384, one change per user and mechanism in a request, a user
 * described once; describing needs DESCRIBE on the cluster, altering
 * ALTER on the cluster or what ALTER ROLE ... PASSWORD allows (a role its
 * own; never a superuser's but by a superuser).  Nothing secret is ever
 * answered.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/acl.h"

#include "streamlog/protocol/scram.h"
#include "streamlog/server/handlers.h"
#include "streamlog/storage/scram_credentials.h"

/* Kafka's ScramMechanism numbers */
#define MECHANISM_UNKNOWN 0
#define MECHANISM_SCRAM_SHA_256 1
#define MECHANISM_SCRAM_SHA_512 2

static int8
mechanism_number(SlScramHash hash)
{
	return hash == SL_SCRAM_SHA_512 ? MECHANISM_SCRAM_SHA_512 : MECHANISM_SCRAM_SHA_256;
}

static bool
hash_of_number(int8 mechanism, SlScramHash *hash)
{
	if (mechanism == MECHANISM_SCRAM_SHA_256)
		*hash = SL_SCRAM_SHA_256;
	else if (mechanism == MECHANISM_SCRAM_SHA_512)
		*hash = SL_SCRAM_SHA_512;
	else
		return false;
	return true;
}

static char *
wire_name(SlStr s)
{
	return s.len > 0 ? pnstrdup(s.data, s.len) : pstrdup("");
}

bool
SlHandleDescribeUserScramCredentials(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlDescribeUserScramCredentialsRequest request;
	SlDescribeUserScramCredentialsResponse resp;
	List	   *users = NIL;
	int			nresults;

	if (!SlDescribeUserScramCredentialsRequestDecode(body, req->api_version, &request))
		return false;
	SlDescribeUserScramCredentialsResponseInit(&resp);
	resp.error_message = SL_STR_NULL;
	SL_ARRAY_ALLOC(resp.results, 0);

	if (!SlScramCredentialMayDescribe(GetUserId()))
	{
		resp.error_code = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		resp.error_message = SlStrFromCString("Describing SCRAM credentials needs DESCRIBE on the cluster");
		SlDescribeUserScramCredentialsResponseEncode(out, req->api_version, &resp);
		return true;
	}

	/* All users: one result per user that has credentials */
	if (request.users.n < 0)
	{
		List	   *all = SlScramCredentialList(NULL);
		ListCell   *lc;

		foreach(lc, all)
		{
			SlScramCredentialInfo *info = lfirst(lc);

			if (users == NIL || strcmp(llast(users), info->user) != 0)
				users = lappend(users, info->user);
		}
	}
	else
		for (int i = 0; i < request.users.n; i++)
			users = lappend(users, wire_name(request.users.items[i].name));

	nresults = list_length(users);
	SL_ARRAY_ALLOC(resp.results, nresults);
	for (int i = 0; i < nresults; i++)
	{
		SlDescribeUserScramCredentialsResponseDescribeUserScramCredentialsResult *r =
			&resp.results.items[i];
		const char *user = list_nth(users, i);
		bool		twice = false;

		SlDescribeUserScramCredentialsResponseDescribeUserScramCredentialsResultInit(r);
		r->user = SlStrFromCString(user);
		r->error_message = SL_STR_NULL;
		SL_ARRAY_ALLOC(r->credential_infos, 0);
		for (int j = 0; j < nresults; j++)
			if (j != i && strcmp(list_nth(users, j), user) == 0)
				twice = true;
		if (twice)
		{
			r->error_code = SL_ERR_DUPLICATE_RESOURCE;
			r->error_message = SlStrFromCString("Cannot describe SCRAM credentials for the same user twice in a single request");
			continue;
		}
		{
			List	   *infos = SlScramCredentialList(user);
			ListCell   *lc;
			int			k = 0;

			if (infos == NIL)
			{
				r->error_code = SL_ERR_RESOURCE_NOT_FOUND;
				r->error_message = SlStrFromCString("Attempt to describe a user credential that does not exist");
				continue;
			}
			SL_ARRAY_ALLOC(r->credential_infos, list_length(infos));
			foreach(lc, infos)
			{
				SlScramCredentialInfo *info = lfirst(lc);

				r->credential_infos.items[k].mechanism = mechanism_number(info->hash);
				r->credential_infos.items[k].iterations = info->iterations;
				k++;
			}
		}
	}
	resp.error_code = SL_ERR_NONE;
	SlDescribeUserScramCredentialsResponseEncode(out, req->api_version, &resp);
	return true;
}

/* One change of a request, deletion or upsertion, and its outcome */
typedef struct Change
{
	char	   *user;
	int8		mechanism;
	const SlAlterUserScramCredentialsRequestScramCredentialUpsertion *upsertion;	/* NULL: deletion */
	int16		error;
	const char *message;
} Change;

/* Check a change as Kafka does, before anything is changed */
static void
check_change(Change *c, Change *all, int n)
{
	SlScramHash hash;
	Oid			role;

	for (int j = 0; j < n; j++)
		if (&all[j] != c && strcmp(all[j].user, c->user) == 0 &&
			all[j].mechanism == c->mechanism)
		{
			c->error = SL_ERR_DUPLICATE_RESOURCE;
			c->message = "A user credential cannot be altered twice in the same request";
			return;
		}
	if (c->user[0] == '\0')
	{
		c->error = SL_ERR_UNACCEPTABLE_CREDENTIAL;
		c->message = "Username must not be empty";
		return;
	}
	if (!hash_of_number(c->mechanism, &hash))
	{
		c->error = SL_ERR_UNSUPPORTED_SASL_MECHANISM;
		c->message = "Unknown SCRAM mechanism";
		return;
	}
	role = strlen(c->user) < NAMEDATALEN ? get_role_oid(c->user, true) : InvalidOid;
	if (!OidIsValid(role))
	{
		c->error = SL_ERR_RESOURCE_NOT_FOUND;
		c->message = psprintf("No role \"%s\": SCRAM credentials are for existing PostgreSQL roles", c->user);
		return;
	}
	if (!SlScramCredentialMayManage(GetUserId(), role))
	{
		c->error = SL_ERR_CLUSTER_AUTHORIZATION_FAILED;
		c->message = "Altering SCRAM credentials needs ALTER on the cluster";
		return;
	}
	if (c->upsertion)
	{
		if (c->upsertion->iterations < SL_SCRAM_MIN_ITERATIONS)
			c->message = "Too few iterations";
		else if (c->upsertion->iterations > SL_SCRAM_MAX_ITERATIONS)
			c->message = "Too many iterations";
		else if (c->upsertion->salt.len <= 0)
			c->message = "Salt must not be empty";
		else if (c->upsertion->salted_password.len != SlScramKeyLength(hash))
			c->message = "Salted password has the wrong length for the mechanism";
		if (c->message)
			c->error = SL_ERR_UNACCEPTABLE_CREDENTIAL;
	}
}

/* Make the change c, checked */
static void
apply_change(Change *c)
{
	SlScramHash hash = SL_SCRAM_SHA_256;
	Oid			role = get_role_oid(c->user, false);

	/* checked: one of the two */
	(void) hash_of_number(c->mechanism, &hash);
	if (c->upsertion)
	{
		SlScramSecret secret;
		const char *err = SlScramSecretFromSaltedPassword(hash, c->upsertion->salted_password.data,
														  c->upsertion->salt.data,
														  c->upsertion->salt.len,
														  c->upsertion->iterations, &secret);

		if (err)
		{
			c->error = SL_ERR_UNACCEPTABLE_CREDENTIAL;
			c->message = err;
		}
		else if (hash == SL_SCRAM_SHA_256)
			SlRolePasswordSet(role, &secret);
		else
			SlScramCredentialSet(role, &secret);
		return;
	}
	if (!(hash == SL_SCRAM_SHA_256 ? SlRolePasswordDrop(role) : SlScramCredentialDelete(role)))
	{
		c->error = SL_ERR_RESOURCE_NOT_FOUND;
		c->message = "Attempt to delete a user credential that does not exist";
	}
}

bool
SlHandleAlterUserScramCredentials(SlRequest *req, SlReader *body, SlWriter *out)
{
	SlAlterUserScramCredentialsRequest request;
	SlAlterUserScramCredentialsResponse resp;
	Change	   *changes;
	int			n;
	List	   *users = NIL;
	int			k = 0;

	if (!SlAlterUserScramCredentialsRequestDecode(body, req->api_version, &request))
		return false;
	n = Max(request.deletions.n, 0) + Max(request.upsertions.n, 0);
	changes = palloc0(sizeof(Change) * Max(n, 1));
	for (int i = 0; i < request.deletions.n; i++, k++)
	{
		changes[k].user = wire_name(request.deletions.items[i].name);
		changes[k].mechanism = request.deletions.items[i].mechanism;
	}
	for (int i = 0; i < request.upsertions.n; i++, k++)
	{
		changes[k].user = wire_name(request.upsertions.items[i].name);
		changes[k].mechanism = request.upsertions.items[i].mechanism;
		changes[k].upsertion = &request.upsertions.items[i];
	}

	/* Kafka alters none of a user's credentials if one change of it is bad */
	for (int i = 0; i < n; i++)
		check_change(&changes[i], changes, n);
	for (int i = 0; i < n; i++)
	{
		bool		user_ok = true;

		for (int j = 0; j < n; j++)
			if (strcmp(changes[j].user, changes[i].user) == 0 && changes[j].error != SL_ERR_NONE)
				user_ok = false;
		if (user_ok)
			apply_change(&changes[i]);
	}

	/* One result per user, with the first error of its changes */
	SlAlterUserScramCredentialsResponseInit(&resp);
	SL_ARRAY_ALLOC(resp.results, n);
	resp.results.n = 0;
	for (int i = 0; i < n; i++)
	{
		SlAlterUserScramCredentialsResponseAlterUserScramCredentialsResult *r;
		bool		seen = false;
		ListCell   *lc;

		foreach(lc, users)
			if (strcmp(lfirst(lc), changes[i].user) == 0)
				seen = true;
		if (seen)
			continue;
		users = lappend(users, changes[i].user);
		r = &resp.results.items[resp.results.n++];
		SlAlterUserScramCredentialsResponseAlterUserScramCredentialsResultInit(r);
		r->user = SlStrFromCString(changes[i].user);
		r->error_code = SL_ERR_NONE;
		r->error_message = SL_STR_NULL;
		for (int j = 0; j < n; j++)
			if (strcmp(changes[j].user, changes[i].user) == 0 && changes[j].error != SL_ERR_NONE)
			{
				r->error_code = changes[j].error;
				r->error_message = SlStrFromCString(changes[j].message);
				break;
			}
	}
	SlAlterUserScramCredentialsResponseEncode(out, req->api_version, &resp);
	return true;
}
