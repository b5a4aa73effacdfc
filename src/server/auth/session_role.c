/*
 * Who a Kafka session is, on a listener without SASL, and the checks that
 * PostgreSQL makes of a role at login; see auth.h.
 *
 * The decision follows PostgreSQL's own for its SQL door: a verified
 * client certificate names its role as cert authentication does (the
 * subject's CN); without one, the operator's streamlog.anonymous_role;
 * without that, a client on this machine is the bootstrap superuser, as
 * initdb's trust for local connections (so the quick start and local tools
 * keep working), and anyone else is refused.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/server/auth.h"

bool
SlSessionUsesSasl(const SlSession *session)
{
	return session->protocol == SL_PROTOCOL_SASL_PLAINTEXT ||
		session->protocol == SL_PROTOCOL_SASL_SSL;
}

bool
SlSessionUsesTls(const SlSession *session)
{
	return session->protocol == SL_PROTOCOL_SSL ||
		session->protocol == SL_PROTOCOL_SASL_SSL;
}

bool
SlSessionMayServe(const SlSession *session, const char **why)
{
	if (!SlSessionUsesSasl(session))
		return true;
	if (!OidIsValid(session->role))
	{
		*why = "not authenticated: a SASL listener serves only ApiVersions, "
			"SaslHandshake and SaslAuthenticate before authentication";
		return false;
	}
	if (session->auth_expiry != 0 && GetCurrentTimestamp() >= session->auth_expiry)
	{
		*why = "authentication expired (streamlog.connections_max_reauth) and the "
			"client did not re-authenticate";
		return false;
	}
	return true;
}

bool
SlRoleMayLogIn(Oid role, const char **why)
{
	HeapTuple	tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(role));
	Form_pg_authid form;
	Datum		datum;
	bool		isnull;
	bool		ok = true;

	if (!HeapTupleIsValid(tuple))
	{
		*why = "the role does not exist";
		return false;
	}
	form = (Form_pg_authid) GETSTRUCT(tuple);
	if (!form->rolcanlogin)
	{
		*why = psprintf("role \"%s\" is not permitted to log in", NameStr(form->rolname));
		ok = false;
	}
	else
	{
		datum = SysCacheGetAttr(AUTHOID, tuple, Anum_pg_authid_rolvaliduntil, &isnull);
		if (!isnull && DatumGetTimestampTz(datum) < GetCurrentTimestamp())
		{
			*why = psprintf("role \"%s\" is past its VALID UNTIL time",
							NameStr(form->rolname));
			ok = false;
		}
	}
	ReleaseSysCache(tuple);
	return ok;
}

/*
 * The value of the attribute named attr ("CN") in a certificate subject,
 * written either as RFC 2253 ("CN=alice,O=Example") or as OpenSSL's one
 * line ("/O=Example/CN=alice"); NULL if it has none
 */
static char *
subject_attribute(const char *subject, const char *attr)
{
	size_t		attrlen = strlen(attr);
	const char *p = subject;

	while (*p)
	{
		/* at the start of a component */
		while (*p == '/' || *p == ',' || *p == ' ' || *p == '+')
			p++;
		if (pg_strncasecmp(p, attr, attrlen) == 0 && p[attrlen] == '=')
		{
			StringInfoData value;

			p += attrlen + 1;
			initStringInfo(&value);
			while (*p && *p != '/' && *p != ',' && *p != '+')
			{
				if (*p == '\\' && p[1])
					p++;
				appendStringInfoChar(&value, *p++);
			}
			return value.data;
		}
		while (*p && *p != '/' && *p != ',' && *p != '+')
		{
			if (*p == '\\' && p[1])
				p++;
			p++;
		}
	}
	return NULL;
}

/*
 * The role a verified client certificate stands for: its subject's CN, as
 * PostgreSQL's cert authentication maps it.  InvalidOid, with *why, if the
 * subject has no CN or no role of that name may log in.
 */
static Oid
certificate_role(const SlSession *session, const char **why)
{
	char	   *name = subject_attribute(session->tls_subject, "CN");
	Oid			role;
	const char *login_why;

	if (name == NULL)
	{
		*why = psprintf("the client certificate's subject \"%s\" has no CN to name a role",
						session->tls_subject);
		return InvalidOid;
	}
	role = get_role_oid(name, true);
	if (!OidIsValid(role))
	{
		*why = psprintf("no role \"%s\" for the client certificate's CN", name);
		return InvalidOid;
	}
	if (!SlRoleMayLogIn(role, &login_why))
	{
		*why = psprintf("client certificate of role \"%s\": %s", name, login_why);
		return InvalidOid;
	}
	return role;
}

/* Decide who a session of a listener without SASL is; see auth.h */
static Oid
unauthenticated_role(const SlSession *session, const char **why)
{
	const char *login_why;
	Oid			role;

	if (session->tls_subject != NULL)
		return certificate_role(session, why);
	if (sl_anonymous_role != NULL && sl_anonymous_role[0] != '\0')
	{
		role = get_role_oid(sl_anonymous_role, true);
		if (!OidIsValid(role))
		{
			*why = psprintf("streamlog.anonymous_role names role \"%s\", which does not exist",
							sl_anonymous_role);
			return InvalidOid;
		}
		if (!SlRoleMayLogIn(role, &login_why))
		{
			*why = psprintf("streamlog.anonymous_role: %s", login_why);
			return InvalidOid;
		}
		return role;
	}
	if (session->peer_is_loopback)
		return BOOTSTRAP_SUPERUSERID;
	*why = "a client from another machine without a certificate, and "
		"streamlog.anonymous_role is not set: set it to the role such clients "
		"act as, or give them a SASL listener";
	return InvalidOid;
}

Oid
SlSessionRole(SlRequest *req, const char **why)
{
	SlSession  *session = req->session;

	if (!OidIsValid(session->role))
	{
		/* On a SASL listener, SlSessionMayServe let nobody through */
		Assert(!SlSessionUsesSasl(session));
		session->role = unauthenticated_role(session, why);
		return session->role;
	}

	/* A role dropped since the session began has no rights at all */
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(session->role)))
	{
		*why = psprintf("its role (oid %u) was dropped", session->role);
		session->role = InvalidOid;
		return InvalidOid;
	}
	return session->role;
}
