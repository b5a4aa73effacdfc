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
#include "catalog/pg_collation.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "streamlog/guc.h"
#include "streamlog/metrics/connections.h"
#include "streamlog/server/auth.h"

/* Why a client from another machine without credentials is refused */
#define REMOTE_WITHOUT_CREDENTIALS \
	"a client from another machine without a certificate, and " \
	"streamlog.anonymous_role is not set: set it to the role such clients " \
	"act as, or give them a SASL listener"

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
SlPeerMayConnect(SlSecurityProtocol protocol, bool peer_is_loopback, const char **why)
{
	if (protocol != SL_PROTOCOL_PLAINTEXT || peer_is_loopback ||
		(sl_anonymous_role != NULL && sl_anonymous_role[0] != '\0'))
		return true;
	*why = REMOTE_WITHOUT_CREDENTIALS;
	return false;
}

int32
SlSessionMaxFrameSize(const SlSession *session)
{
	if (SlSessionUsesSasl(session) && !OidIsValid(session->role))
		return Min(sl_max_request_size, SL_UNAUTHENTICATED_MAX_FRAME);
	return sl_max_request_size;
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
 * One rule of streamlog.ssl_principal_mapping_rules, Kafka's
 * ssl.principal.mapping.rules: "RULE:pattern/replacement/[LU]" or
 * "DEFAULT".  Parse the rule at *p (moving *p past it and the comma after
 * it); false if it is not one.
 */
typedef struct MappingRule
{
	bool		is_default;
	char	   *pattern;
	char	   *replacement;
	char		casing;			/* 'L', 'U' or 0 */
} MappingRule;

/* Read up to an unescaped '/', keeping the escapes; NULL if none */
static char *
rule_part(const char **p)
{
	StringInfoData part;

	initStringInfo(&part);
	for (; **p && **p != '/'; (*p)++)
	{
		if (**p == '\\' && (*p)[1])
			appendStringInfoChar(&part, *(*p)++);
		appendStringInfoChar(&part, **p);
	}
	if (**p != '/')
		return NULL;
	(*p)++;
	return part.data;
}

static bool
parse_rule(const char **p, MappingRule *rule)
{
	memset(rule, 0, sizeof(*rule));
	while (**p == ' ' || **p == ',')
		(*p)++;
	if (strncmp(*p, "DEFAULT", 7) == 0)
	{
		rule->is_default = true;
		*p += 7;
	}
	else if (strncmp(*p, "RULE:", 5) == 0)
	{
		*p += 5;
		if ((rule->pattern = rule_part(p)) == NULL ||
			(rule->replacement = rule_part(p)) == NULL)
			return false;
		if (**p == 'L' || **p == 'U')
			rule->casing = *(*p)++;
	}
	else
		return false;
	while (**p == ' ')
		(*p)++;
	if (**p != ',' && **p != '\0')
		return false;
	return true;
}

/*
 * Java's replacement syntax ($1, \$) in PostgreSQL's regexp_replace()
 * syntax (\1, and & and \ taken literally)
 */
static char *
pg_replacement(const char *java)
{
	StringInfoData out;

	initStringInfo(&out);
	for (const char *c = java; *c; c++)
	{
		if (*c == '$' && isdigit((unsigned char) c[1]))
			appendStringInfo(&out, "\\%c", *++c);
		else if (*c == '\\' && c[1])
		{
			c++;
			if (*c == '\\' || *c == '&')
				appendStringInfoChar(&out, '\\');
			appendStringInfoChar(&out, *c);
		}
		else
		{
			if (*c == '&')
				appendStringInfoChar(&out, '\\');
			appendStringInfoChar(&out, *c);
		}
	}
	return out.data;
}

/*
 * The principal streamlog.ssl_principal_mapping_rules makes of a
 * certificate subject (RFC 2253), as Kafka's SslPrincipalMapper: the first
 * rule whose pattern matches the whole subject gives it (DEFAULT: the
 * subject itself); NULL, with *why, if none does.
 */
static char *
mapped_principal(const char *subject, const char **why)
{
	const char *p = sl_ssl_principal_mapping_rules;
	MappingRule rule;

	while (*p)
	{
		text	   *anchored;
		text	   *dn = cstring_to_text(subject);

		if (!parse_rule(&p, &rule))
		{
			*why = "streamlog.ssl_principal_mapping_rules cannot be parsed: each rule is "
				"RULE:pattern/replacement/[LU] or DEFAULT, separated by commas";
			return NULL;
		}
		if (rule.is_default)
			return pstrdup(subject);
		anchored = cstring_to_text(psprintf("^(?:%s)$", rule.pattern));
		if (DatumGetBool(DirectFunctionCall2Coll(textregexeq, C_COLLATION_OID,
												 PointerGetDatum(dn),
												 PointerGetDatum(anchored))))
		{
			char	   *name = TextDatumGetCString(
				DirectFunctionCall3Coll(textregexreplace_noopt, C_COLLATION_OID,
										PointerGetDatum(dn), PointerGetDatum(anchored),
										PointerGetDatum(cstring_to_text(pg_replacement(rule.replacement)))));

			for (char *c = name; *c; c++)
				*c = rule.casing == 'L' ? pg_ascii_tolower(*c) :
					rule.casing == 'U' ? pg_ascii_toupper(*c) : *c;
			return name;
		}
		while (*p == ' ' || *p == ',')
			p++;
	}
	*why = psprintf("no rule of streamlog.ssl_principal_mapping_rules matches the client certificate's subject \"%s\"",
					subject);
	return NULL;
}

/*
 * The role a verified client certificate stands for: its subject's CN, as
 * PostgreSQL's cert authentication maps it, or what
 * streamlog.ssl_principal_mapping_rules makes of the subject.  InvalidOid,
 * with *why, if no role of that name may log in.
 */
static Oid
certificate_role(const SlSession *session, const char **why)
{
	char	   *name;
	Oid			role;
	const char *login_why;

	if (sl_ssl_principal_mapping_rules && sl_ssl_principal_mapping_rules[0])
	{
		name = mapped_principal(session->tls_subject, why);
		if (name == NULL)
			return InvalidOid;
	}
	else if ((name = subject_attribute(session->tls_subject, "CN")) == NULL)
	{
		*why = psprintf("the client certificate's subject \"%s\" has no CN to name a role",
						session->tls_subject);
		return InvalidOid;
	}
	if (strlen(name) >= NAMEDATALEN)
	{
		*why = psprintf("no role \"%s\" for the client certificate", name);
		return InvalidOid;
	}
	role = get_role_oid(name, true);
	if (!OidIsValid(role))
	{
		*why = psprintf("no role \"%s\" for the client certificate", name);
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
	*why = REMOTE_WITHOUT_CREDENTIALS;
	return InvalidOid;
}

Oid
SlSessionRole(SlRequest *req, const char **why)
{
	SlSession  *session = req->session;

	/*
	 * On a SASL listener only a login gives a role.  Checked again here, not
	 * only before the request was taken up: a Produce waits for the end of
	 * the worker's loop to run with the others, and a failed
	 * re-authentication pipelined before it may have ended the login since.
	 */
	if (SlSessionUsesSasl(session))
	{
		if (!SlSessionMayServe(session, why))
			return InvalidOid;
	}
	else if (!OidIsValid(session->role))
	{
		Oid			role;

		role = unauthenticated_role(session, why);
		/* a certificate's or the anonymous role: a login, counted as one */
		if (OidIsValid(role) && role != BOOTSTRAP_SUPERUSERID &&
			!SlSessionCountRole(req, role))
		{
			*why = psprintf("too many connections for role \"%s\"",
							GetUserNameFromId(role, false));
			return InvalidOid;
		}
		session->role = role;
		if (OidIsValid(role) && session->activity_slot >= 0)
		{
			char	   *name = GetUserNameFromId(role, true);

			SlConnActivitySetPrincipal(session->activity_slot,
									   psprintf("User:%s", name ? name : "?"));
		}
		return session->role;
	}

	/*
	 * A role dropped since the session began has no rights at all; the
	 * session keeps its oid, so that every request after this one is
	 * refused the same way
	 */
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(session->role)))
	{
		*why = psprintf("its role (oid %u) was dropped", session->role);
		return InvalidOid;
	}
	return session->role;
}
