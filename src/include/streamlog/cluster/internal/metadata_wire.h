/*
 * The primitive encoding shared by the cluster layer's formats (record
 * batches, image snapshots, controller requests): big-endian integers,
 * strings and int32 arrays prefixed by an int32 length (-1 for a NULL
 * string, or for an array left unchanged).
 *
 * A writer grows a malloc'd buffer and remembers a failed allocation, so
 * that callers check once at the end.  A reader never reads past its end:
 * the first short or malformed field sets failed and every later read
 * returns zeros, so decoders check once per record.
 */
#ifndef SL_CLUSTER_INTERNAL_METADATA_WIRE_H
#define SL_CLUSTER_INTERNAL_METADATA_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest string any format carries (a topic's configs as JSON) */
#define SL_WIRE_MAX_STRING (1024 * 1024)
/* Most elements of an int32 array (replicas, ISR, election pairs) */
#define SL_WIRE_MAX_ARRAY 65536

typedef struct SlWireWriter
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
	bool		failed;			/* out of memory */
} SlWireWriter;

typedef struct SlWireReader
{
	const uint8_t *p;
	const uint8_t *end;
	bool		failed;
} SlWireReader;

extern void SlWireWriterInit(SlWireWriter *w);
/* Hand the bytes over (false if any write failed; buffer freed then) */
extern bool SlWireWriterFinish(SlWireWriter *w, void **data, size_t *len);
extern void SlWireWriterFree(SlWireWriter *w);
extern void SlWirePutU8(SlWireWriter *w, uint8_t v);
extern void SlWirePutU32(SlWireWriter *w, uint32_t v);
extern void SlWirePutI32(SlWireWriter *w, int32_t v);
extern void SlWirePutU64(SlWireWriter *w, uint64_t v);
extern void SlWirePutI64(SlWireWriter *w, int64_t v);
extern void SlWirePutBytes(SlWireWriter *w, const void *p, size_t n);
/* NULL is written as length -1 */
extern void SlWirePutString(SlWireWriter *w, const char *s);
/* n < 0 is written as -1 (no array) */
extern void SlWirePutI32Array(SlWireWriter *w, const int32_t *a, int32_t n);

extern void SlWireReaderInit(SlWireReader *r, const void *data, size_t len);
extern uint8_t SlWireGetU8(SlWireReader *r);
extern uint32_t SlWireGetU32(SlWireReader *r);
extern int32_t SlWireGetI32(SlWireReader *r);
extern uint64_t SlWireGetU64(SlWireReader *r);
extern int64_t SlWireGetI64(SlWireReader *r);
extern void SlWireGetBytes(SlWireReader *r, void *p, size_t n);

/*
 * A string as a malloc'd C string: *s NULL for length -1 when nullable,
 * else a failure, as are an embedded NUL and a length over the cap.
 */
extern void SlWireGetString(SlWireReader *r, char **s, bool nullable);

/*
 * An int32 array as malloc'd elements (NULL when empty); *n = -1 for an
 * absent array when allow_absent, else a failure.  A count larger than the
 * bytes left or the cap fails before allocating.
 */
extern void SlWireGetI32Array(SlWireReader *r, int32_t **a, int32_t *n, bool allow_absent);

/* Bytes not read yet */
static inline size_t
SlWireRemaining(const SlWireReader *r)
{
	return r->failed ? 0 : (size_t) (r->end - r->p);
}

/* Out-of-memory-safe strdup of a possibly NULL string: false on failure */
extern bool SlWireStrdup(char **dst, const char *src);

#endif							/* SL_CLUSTER_INTERNAL_METADATA_WIRE_H */
