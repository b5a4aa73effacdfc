/*-------------------------------------------------------------------------
 * topic_config_flag.c
 *	  A boolean topic config as the controller reads it from a topic's
 *	  config_json (SlMetaTopicConfigFlag).
 *
 * The controller decides on the image alone, and a topic's configs are
 * there only as the JSON text the door normalized: a flat object of
 * string values ({"unclean.leader.election.enable": "true", ...}).  The
 * text came through the Raft log, so it is read as hostile: anything that
 * is not such an object answers "not set", never a crash.  Strings with
 * escapes are compared as written (no config name has one).
 *
 * IDENTIFICATION
 *	  src/cluster/topic_config_flag.c
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <string.h>

#include "streamlog/cluster/metadata_image.h"

static const char *
skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/*
 * A JSON string at p (at its opening quote): *start and *len its content
 * as written; returns the byte after the closing quote, NULL if malformed
 */
static const char *
scan_string(const char *p, const char **start, size_t *len)
{
	if (*p != '"')
		return NULL;
	*start = ++p;
	while (*p != '"')
	{
		if (*p == '\0')
			return NULL;
		if (*p == '\\')
		{
			p++;
			if (*p == '\0')
				return NULL;
		}
		p++;
	}
	*len = (size_t) (p - *start);
	return p + 1;
}

/* A bare JSON value (number, true, false, null) at p */
static const char *
scan_bare(const char *p, const char **start, size_t *len)
{
	*start = p;
	while (*p != '\0' && *p != ',' && *p != '}' && *p != ' ' && *p != '\t' &&
		   *p != '\n' && *p != '\r')
	{
		if (*p == '{' || *p == '[' || *p == '"' || *p == ':')
			return NULL;
		p++;
	}
	*len = (size_t) (p - *start);
	return *len > 0 ? p : NULL;
}

bool
SlMetaTopicConfigFlag(const SlMetaTopic *topic, const char *name)
{
	const char *p = topic->config_json;
	size_t		namelen = strlen(name);
	bool		found = false;

	if (p == NULL)
		return false;
	p = skip_space(p);
	if (*p++ != '{')
		return false;
	p = skip_space(p);
	if (*p == '}')
		return false;
	for (;;)
	{
		const char *key,
				   *value;
		size_t		keylen,
					valuelen;

		p = scan_string(skip_space(p), &key, &keylen);
		if (p == NULL)
			return false;
		p = skip_space(p);
		if (*p++ != ':')
			return false;
		p = skip_space(p);
		p = *p == '"' ? scan_string(p, &value, &valuelen) : scan_bare(p, &value, &valuelen);
		if (p == NULL)
			return false;
		/* the last of a name given twice counts, as in Kafka's parsing */
		if (keylen == namelen && memcmp(key, name, namelen) == 0)
			found = valuelen == 4 && (memcmp(value, "true", 4) == 0 ||
									  memcmp(value, "TRUE", 4) == 0 ||
									  memcmp(value, "True", 4) == 0);
		p = skip_space(p);
		if (*p == '}')
			return found;
		if (*p++ != ',')
			return false;
	}
}
