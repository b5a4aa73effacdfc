/*-------------------------------------------------------------------------
 * metadata_wire.c
 *	  Big-endian integers, strings and arrays for the cluster layer's
 *	  formats, written into a growing buffer and read back without ever
 *	  trusting a length.
 *
 * IDENTIFICATION
 *	  src/cluster/metadata_wire.c
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "streamlog/cluster/internal/metadata_wire.h"

void
SlWireWriterInit(SlWireWriter *w)
{
	w->data = NULL;
	w->len = 0;
	w->cap = 0;
	w->failed = false;
}

void
SlWireWriterFree(SlWireWriter *w)
{
	free(w->data);
	SlWireWriterInit(w);
}

bool
SlWireWriterFinish(SlWireWriter *w, void **data, size_t *len)
{
	if (w->failed)
	{
		SlWireWriterFree(w);
		*data = NULL;
		*len = 0;
		return false;
	}
	/* an empty result is still a buffer the caller may free */
	if (w->data == NULL)
	{
		w->data = malloc(1);
		if (w->data == NULL)
		{
			*data = NULL;
			*len = 0;
			return false;
		}
	}
	*data = w->data;
	*len = w->len;
	w->data = NULL;
	w->len = w->cap = 0;
	return true;
}

/* Room for n more bytes; false (and failed set) if it cannot be had */
static bool
reserve(SlWireWriter *w, size_t n)
{
	size_t		cap;
	uint8_t    *grown;

	if (w->failed)
		return false;
	if (n <= w->cap - w->len)
		return true;
	if (n > SIZE_MAX / 2 - w->len)
	{
		w->failed = true;
		return false;
	}
	cap = w->cap < 256 ? 256 : w->cap;
	while (cap - w->len < n)
		cap *= 2;
	grown = realloc(w->data, cap);
	if (grown == NULL)
	{
		w->failed = true;
		return false;
	}
	w->data = grown;
	w->cap = cap;
	return true;
}

void
SlWirePutBytes(SlWireWriter *w, const void *p, size_t n)
{
	if (n == 0 || !reserve(w, n))
		return;
	memcpy(w->data + w->len, p, n);
	w->len += n;
}

void
SlWirePutU8(SlWireWriter *w, uint8_t v)
{
	SlWirePutBytes(w, &v, 1);
}

void
SlWirePutU32(SlWireWriter *w, uint32_t v)
{
	uint8_t		b[4];

	b[0] = (uint8_t) (v >> 24);
	b[1] = (uint8_t) (v >> 16);
	b[2] = (uint8_t) (v >> 8);
	b[3] = (uint8_t) v;
	SlWirePutBytes(w, b, 4);
}

void
SlWirePutI32(SlWireWriter *w, int32_t v)
{
	SlWirePutU32(w, (uint32_t) v);
}

void
SlWirePutU64(SlWireWriter *w, uint64_t v)
{
	SlWirePutU32(w, (uint32_t) (v >> 32));
	SlWirePutU32(w, (uint32_t) v);
}

void
SlWirePutI64(SlWireWriter *w, int64_t v)
{
	SlWirePutU64(w, (uint64_t) v);
}

void
SlWirePutString(SlWireWriter *w, const char *s)
{
	size_t		n;

	if (s == NULL)
	{
		SlWirePutI32(w, -1);
		return;
	}
	n = strlen(s);
	/* a string no reader would accept is a bug of the writer's caller */
	if (n > SL_WIRE_MAX_STRING)
	{
		w->failed = true;
		return;
	}
	SlWirePutI32(w, (int32_t) n);
	SlWirePutBytes(w, s, n);
}

void
SlWirePutI32Array(SlWireWriter *w, const int32_t *a, int32_t n)
{
	if (n < 0)
	{
		SlWirePutI32(w, -1);
		return;
	}
	if (n > SL_WIRE_MAX_ARRAY || (n > 0 && a == NULL))
	{
		w->failed = true;
		return;
	}
	SlWirePutI32(w, n);
	for (int32_t i = 0; i < n; i++)
		SlWirePutI32(w, a[i]);
}

void
SlWireReaderInit(SlWireReader *r, const void *data, size_t len)
{
	r->p = data;
	r->end = r->p + len;
	r->failed = (data == NULL && len != 0);
}

/* The next n bytes, or NULL (and failed set) if there are not that many */
static const uint8_t *
take(SlWireReader *r, size_t n)
{
	const uint8_t *p;

	if (r->failed || (size_t) (r->end - r->p) < n)
	{
		r->failed = true;
		return NULL;
	}
	p = r->p;
	r->p += n;
	return p;
}

void
SlWireGetBytes(SlWireReader *r, void *out, size_t n)
{
	const uint8_t *p = take(r, n);

	if (p == NULL)
		memset(out, 0, n);
	else if (n > 0)
		memcpy(out, p, n);
}

uint8_t
SlWireGetU8(SlWireReader *r)
{
	const uint8_t *p = take(r, 1);

	return p == NULL ? 0 : p[0];
}

uint32_t
SlWireGetU32(SlWireReader *r)
{
	const uint8_t *p = take(r, 4);

	if (p == NULL)
		return 0;
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

int32_t
SlWireGetI32(SlWireReader *r)
{
	return (int32_t) SlWireGetU32(r);
}

uint64_t
SlWireGetU64(SlWireReader *r)
{
	uint64_t	hi = SlWireGetU32(r);

	return (hi << 32) | SlWireGetU32(r);
}

int64_t
SlWireGetI64(SlWireReader *r)
{
	return (int64_t) SlWireGetU64(r);
}

void
SlWireGetString(SlWireReader *r, char **s, bool nullable)
{
	int32_t		n = SlWireGetI32(r);
	const uint8_t *p;

	*s = NULL;
	if (r->failed)
		return;
	if (n == -1 && nullable)
		return;
	if (n < 0 || n > SL_WIRE_MAX_STRING)
	{
		r->failed = true;
		return;
	}
	p = take(r, (size_t) n);
	if (p == NULL)
		return;
	if (memchr(p, '\0', (size_t) n) != NULL)
	{
		r->failed = true;
		return;
	}
	*s = malloc((size_t) n + 1);
	if (*s == NULL)
	{
		r->failed = true;
		return;
	}
	memcpy(*s, p, (size_t) n);
	(*s)[n] = '\0';
}

void
SlWireGetI32Array(SlWireReader *r, int32_t **a, int32_t *n, bool allow_absent)
{
	int32_t		count = SlWireGetI32(r);

	*a = NULL;
	*n = 0;
	if (r->failed)
		return;
	if (count == -1 && allow_absent)
	{
		*n = -1;
		return;
	}
	if (count < 0 || count > SL_WIRE_MAX_ARRAY ||
		(size_t) count > SlWireRemaining(r) / 4)
	{
		r->failed = true;
		return;
	}
	if (count == 0)
		return;
	*a = malloc(sizeof(int32_t) * (size_t) count);
	if (*a == NULL)
	{
		r->failed = true;
		return;
	}
	for (int32_t i = 0; i < count; i++)
		(*a)[i] = SlWireGetI32(r);
	*n = count;
}

bool
SlWireStrdup(char **dst, const char *src)
{
	size_t		n;

	*dst = NULL;
	if (src == NULL)
		return true;
	n = strlen(src) + 1;
	*dst = malloc(n);
	if (*dst == NULL)
		return false;
	memcpy(*dst, src, n);
	return true;
}
