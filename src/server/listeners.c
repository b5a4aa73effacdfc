/*
 * Kafka-style listeners, see listeners.h.
 *
 * The settings are parsed as Kafka parses listeners, advertised.listeners
 * and listener.security.protocol.map: entries NAME://host:port separated by
 * commas, names compared in upper case, an IPv6 address in brackets, an
 * empty host for every interface.  Whatever Kafka refuses is refused here
 * too (a name twice, two listeners on one port, a name without a security
 * protocol, an unknown protocol, a port out of range), and the postmaster
 * refuses to start rather than listen somewhere the operator did not mean.
 */
#include "postgres.h"

#include <ctype.h>

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "streamlog/guc.h"
#include "streamlog/server/listeners.h"

static SlListener listeners[SL_MAX_LISTENERS];
static int	nlisteners = 0;

static const char *const protocol_names[] = {
	[SL_PROTOCOL_PLAINTEXT] = "PLAINTEXT",
	[SL_PROTOCOL_SSL] = "SSL",
	[SL_PROTOCOL_SASL_PLAINTEXT] = "SASL_PLAINTEXT",
	[SL_PROTOCOL_SASL_SSL] = "SASL_SSL",
};

/* One NAME://host:port entry */
typedef struct Endpoint
{
	char		name[64];
	char		host[SL_LISTENER_HOST_MAX];
	int			port;
} Endpoint;

/* A problem with one of the settings: which, and what is wrong */
typedef struct ListenerError
{
	const char *guc;
	const char *value;
	char	   *detail;
} ListenerError;

static bool
fail(ListenerError *err, const char *guc, const char *value, char *detail)
{
	err->guc = guc;
	err->value = value;
	err->detail = detail;
	return false;
}

/* The non-empty comma-separated items of value, trimmed (palloc'd) */
static List *
split_items(const char *value)
{
	List	   *items = NIL;
	char	   *copy = pstrdup(value ? value : "");
	char	   *saveptr = NULL;

	for (char *tok = strtok_r(copy, ",", &saveptr); tok != NULL;
		 tok = strtok_r(NULL, ",", &saveptr))
	{
		char	   *end;

		while (isspace((unsigned char) *tok))
			tok++;
		end = tok + strlen(tok);
		while (end > tok && isspace((unsigned char) end[-1]))
			*--end = '\0';
		if (*tok != '\0')
			items = lappend(items, tok);
	}
	return items;
}

/* A listener name, upper-cased into out; NULL if fine, else why not */
static char *
parse_name(const char *name, size_t len, char *out, size_t outlen)
{
	if (len == 0)
		return pstrdup("a listener name is empty");
	if (len >= outlen)
		return psprintf("listener name \"%.*s\" is longer than %d characters",
						(int) len, name, (int) outlen - 1);
	for (size_t i = 0; i < len; i++)
	{
		if (!isalnum((unsigned char) name[i]) && name[i] != '_' && name[i] != '-')
			return psprintf("listener name \"%.*s\" has characters other than letters, digits, _ and -",
							(int) len, name);
		out[i] = pg_toupper((unsigned char) name[i]);
	}
	out[len] = '\0';
	return NULL;
}

/* A TCP port, 1 to 65535, all digits; -1 if it is not one */
static int
parse_port(const char *s)
{
	long		port = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s; s++)
	{
		if (!isdigit((unsigned char) *s))
			return -1;
		port = port * 10 + (*s - '0');
	}
	return port >= 1 && port <= 65535 ? (int) port : -1;
}

/* Parse NAME://host:port; NULL if fine, else why not */
static char *
parse_endpoint(const char *entry, Endpoint *ep)
{
	const char *sep = strstr(entry, "://");
	const char *rest;
	const char *host;
	size_t		hostlen;
	const char *port;
	char	   *why;

	if (sep == NULL)
		return psprintf("\"%s\" is not of the form NAME://host:port", entry);
	if ((why = parse_name(entry, sep - entry, ep->name, sizeof(ep->name))) != NULL)
		return why;
	rest = sep + 3;
	if (rest[0] == '[')
	{
		const char *close = strchr(rest, ']');

		if (close == NULL || close[1] != ':')
			return psprintf("\"%s\" is not of the form NAME://[IPv6 address]:port", entry);
		host = rest + 1;
		hostlen = close - host;
		port = close + 2;
	}
	else
	{
		const char *colon = strrchr(rest, ':');

		if (colon == NULL)
			return psprintf("\"%s\" has no port (NAME://host:port)", entry);
		host = rest;
		hostlen = colon - rest;
		if (memchr(host, ':', hostlen) != NULL)
			return psprintf("\"%s\": an IPv6 address goes in brackets, as in NAME://[::1]:9092",
							entry);
		port = colon + 1;
	}
	if (hostlen >= sizeof(ep->host))
		return psprintf("the host of \"%s\" is too long", entry);
	memcpy(ep->host, host, hostlen);
	ep->host[hostlen] = '\0';
	ep->port = parse_port(port);
	if (ep->port < 0)
		return psprintf("\"%s\" has no valid port (1 to 65535)", entry);
	return NULL;
}

static bool
protocol_from_name(const char *name, SlSecurityProtocol *protocol)
{
	for (int p = 0; p < lengthof(protocol_names); p++)
		if (pg_strcasecmp(name, protocol_names[p]) == 0)
		{
			*protocol = (SlSecurityProtocol) p;
			return true;
		}
	return false;
}

/*
 * Find name's protocol in streamlog.listener_security_protocol_map, which
 * is checked whole on the way
 */
static bool
map_lookup(const char *name, SlSecurityProtocol *protocol, bool *found, ListenerError *err)
{
	const char *guc = "streamlog.listener_security_protocol_map";
	List	   *items = split_items(sl_listener_security_protocol_map);
	List	   *seen = NIL;
	ListCell   *lc;

	*found = false;
	foreach(lc, items)
	{
		char	   *item = lfirst(lc);
		char	   *colon = strchr(item, ':');
		char		key[64];
		char	   *why;
		SlSecurityProtocol p;
		ListCell   *lc2;

		if (colon == NULL)
			return fail(err, guc, sl_listener_security_protocol_map,
						psprintf("\"%s\" is not of the form NAME:PROTOCOL", item));
		if ((why = parse_name(item, colon - item, key, sizeof(key))) != NULL)
			return fail(err, guc, sl_listener_security_protocol_map, why);
		if (!protocol_from_name(colon + 1, &p))
			return fail(err, guc, sl_listener_security_protocol_map,
						psprintf("\"%s\" is not a security protocol; they are PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL",
								 colon + 1));
		foreach(lc2, seen)
			if (strcmp(lfirst(lc2), key) == 0)
				return fail(err, guc, sl_listener_security_protocol_map,
							psprintf("listener name %s is mapped twice", key));
		seen = lappend(seen, pstrdup(key));
		if (strcmp(key, name) == 0)
		{
			*protocol = p;
			*found = true;
		}
	}
	return true;
}

static bool
is_wildcard(const char *host)
{
	return host[0] == '\0' || strcmp(host, "*") == 0 ||
		strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

/* The address a listener gives clients by default: its own, or localhost */
static void
default_advertised(SlListener *l)
{
	char		first[SL_LISTENER_HOST_MAX];

	strlcpy(first, l->bind_hosts, sizeof(first));
	first[strcspn(first, ", ")] = '\0';
	strlcpy(l->advertised_host, is_wildcard(first) ? "localhost" : first,
			sizeof(l->advertised_host));
	l->advertised_port = l->port;
}

/* The listeners of streamlog.listeners, or of the older settings */
static bool
build_listeners(SlListener *out, int *n, ListenerError *err)
{
	const char *guc = "streamlog.listeners";
	List	   *items = split_items(sl_listeners);
	ListCell   *lc;
	bool		found;
	SlSecurityProtocol protocol;

	*n = 0;
	/* checked even when unused, so that a mistake shows at once */
	if (!map_lookup("", &protocol, &found, err))
		return false;

	if (items == NIL)
	{
		if (sl_port == 0)
			return true;		/* the Kafka door is off */
		if (strlen(sl_listen_addresses) >= SL_LISTENER_HOST_MAX)
			return fail(err, "streamlog.listen_addresses", sl_listen_addresses,
						pstrdup("it is too long"));
		memset(&out[0], 0, sizeof(SlListener));
		strlcpy(out[0].name, "PLAINTEXT", sizeof(out[0].name));
		out[0].protocol = SL_PROTOCOL_PLAINTEXT;
		strlcpy(out[0].bind_hosts, sl_listen_addresses, sizeof(out[0].bind_hosts));
		out[0].port = sl_port;
		*n = 1;
		return true;
	}

	foreach(lc, items)
	{
		Endpoint	ep;
		char	   *why = parse_endpoint(lfirst(lc), &ep);
		SlListener *l = &out[*n];

		if (why != NULL)
			return fail(err, guc, sl_listeners, why);
		if (*n == SL_MAX_LISTENERS)
			return fail(err, guc, sl_listeners,
						psprintf("there are more than %d listeners", SL_MAX_LISTENERS));
		for (int i = 0; i < *n; i++)
		{
			if (strcmp(out[i].name, ep.name) == 0)
				return fail(err, guc, sl_listeners,
							psprintf("listener name %s is used twice", ep.name));
			if (out[i].port == ep.port)
				return fail(err, guc, sl_listeners,
							psprintf("listeners %s and %s both use port %d; each listener needs a port of its own",
									 out[i].name, ep.name, ep.port));
		}
		if (!map_lookup(ep.name, &protocol, &found, err))
			return false;
		if (!found)
			return fail(err, guc, sl_listeners,
						psprintf("listener %s has no security protocol: name it after one (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) or map it in streamlog.listener_security_protocol_map",
								 ep.name));
		memset(l, 0, sizeof(SlListener));
		strlcpy(l->name, ep.name, sizeof(l->name));
		l->protocol = protocol;
		strlcpy(l->bind_hosts, ep.host, sizeof(l->bind_hosts));
		l->port = ep.port;
		(*n)++;
	}
	return true;
}

/* Fill in the advertised addresses of the n listeners */
static bool
build_advertised(SlListener *out, int n, ListenerError *err)
{
	const char *guc = "streamlog.advertised_listeners";
	List	   *items = split_items(sl_advertised_listeners);
	bool		given[SL_MAX_LISTENERS] = {0};
	ListCell   *lc;

	for (int i = 0; i < n; i++)
		default_advertised(&out[i]);

	/* The older settings, for the one PLAINTEXT listener they described */
	if (n == 1 && out[0].protocol == SL_PROTOCOL_PLAINTEXT)
	{
		if (sl_advertised_host && sl_advertised_host[0])
			strlcpy(out[0].advertised_host, sl_advertised_host,
					sizeof(out[0].advertised_host));
		if (sl_advertised_port > 0)
			out[0].advertised_port = sl_advertised_port;
	}

	foreach(lc, items)
	{
		Endpoint	ep;
		char	   *why = parse_endpoint(lfirst(lc), &ep);
		int			i;

		if (why != NULL)
			return fail(err, guc, sl_advertised_listeners, why);
		for (i = 0; i < n; i++)
			if (strcmp(out[i].name, ep.name) == 0)
				break;
		if (i == n)
			return fail(err, guc, sl_advertised_listeners,
						psprintf("%s is not the name of a listener in streamlog.listeners", ep.name));
		if (given[i])
			return fail(err, guc, sl_advertised_listeners,
						psprintf("listener %s is advertised twice", ep.name));
		given[i] = true;
		if (ep.host[0] != '\0')
			strlcpy(out[i].advertised_host, ep.host, sizeof(out[i].advertised_host));
		out[i].advertised_port = ep.port;
	}
	return true;
}

void
SlListenersLoad(void)
{
	SlListener	table[SL_MAX_LISTENERS];
	int			n;
	ListenerError err;

	if (!build_listeners(table, &n, &err) || !build_advertised(table, n, &err))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for parameter \"%s\": \"%s\"", err.guc, err.value),
				 errdetail("%s.", err.detail),
				 errhint("Listeners are written as in Kafka: NAME://host:port, separated by commas.")));
	memcpy(listeners, table, sizeof(SlListener) * n);
	nlisteners = n;
}

bool
SlListenersReload(void)
{
	SlListener	table[SL_MAX_LISTENERS];
	ListenerError err;

	/* Which listeners there are takes a restart; the addresses they give do not */
	memcpy(table, listeners, sizeof(SlListener) * nlisteners);
	if (!build_advertised(table, nlisteners, &err))
	{
		ereport(LOG,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for parameter \"%s\": \"%s\"", err.guc, err.value),
				 errdetail("%s; the advertised listeners stay as they were.", err.detail)));
		return false;
	}
	memcpy(listeners, table, sizeof(SlListener) * nlisteners);
	return true;
}

int
SlListenerCount(void)
{
	return nlisteners;
}

const SlListener *
SlListenerAt(int i)
{
	Assert(i >= 0 && i < nlisteners);
	return &listeners[i];
}

const char *
SlSecurityProtocolName(SlSecurityProtocol protocol)
{
	if ((int) protocol < 0 || (int) protocol >= lengthof(protocol_names))
		return "?";
	return protocol_names[protocol];
}

bool
SlSecurityProtocolUsesTls(SlSecurityProtocol protocol)
{
	return protocol == SL_PROTOCOL_SSL || protocol == SL_PROTOCOL_SASL_SSL;
}

static void
append_endpoint(StringInfo s, const char *name, const char *host, int port)
{
	if (s->len > 0)
		appendStringInfoChar(s, ',');
	if (strchr(host, ':') != NULL)
		appendStringInfo(s, "%s://[%s]:%d", name, host, port);
	else
		appendStringInfo(s, "%s://%s:%d", name, host, port);
}

char *
SlListenersDescribe(bool advertised)
{
	StringInfoData s;

	initStringInfo(&s);
	for (int i = 0; i < nlisteners; i++)
	{
		const SlListener *l = &listeners[i];
		char	   *hosts;
		char	   *saveptr = NULL;
		bool		any = false;

		if (advertised)
		{
			append_endpoint(&s, l->name, l->advertised_host, l->advertised_port);
			continue;
		}
		/* One entry per bound address, as Kafka writes them */
		hosts = pstrdup(l->bind_hosts);
		for (char *h = strtok_r(hosts, ", ", &saveptr); h != NULL;
			 h = strtok_r(NULL, ", ", &saveptr))
		{
			append_endpoint(&s, l->name, strcmp(h, "*") == 0 ? "" : h, l->port);
			any = true;
		}
		if (!any)
			append_endpoint(&s, l->name, "", l->port);
	}
	return s.data;
}
