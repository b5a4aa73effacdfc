/*
 * Queries on streamlog's catalog tables through SPI, always with the latest
 * snapshot: the log's shape (topics, segments) must be read as it is now,
 * even inside a REPEATABLE READ transaction whose snapshot is older, or a
 * reader could miss a segment created since and skip its records.
 *
 * They run as the owner of the catalogue with search_path pg_catalog,
 * pg_temp, whatever the caller's role and table privileges: the tables
 * grant nothing to anyone, and who may do what to a topic is checked
 * before storage is called (storage/acl.h).
 */
#ifndef SL_STORAGE_INTERNAL_CATALOG_QUERY_H
#define SL_STORAGE_INTERNAL_CATALOG_QUERY_H

#include "postgres.h"

#include "executor/spi.h"

/*
 * Run sql ($1..$n with the given types and values; nulls as in SPI, NULL
 * for none) and return SPI_processed.  The caller is connected to SPI.
 */
extern uint64 SlCatalogQuery(const char *sql, int nargs, Oid *types,
							 Datum *values, const char *nulls);

/*
 * A query a module names and runs often: a static table of these (see
 * group_offsets.c) keeps the text, the argument types and the name
 * together.  Run through SlCatalogQuery, so it shares its plan cache.
 */
#define SL_CATALOG_QUERY_MAX_ARGS 10

typedef struct SlNamedQuery
{
	const char *sql;
	int			nargs;
	Oid			types[SL_CATALOG_QUERY_MAX_ARGS];
} SlNamedQuery;

/* Run q as SlCatalogQuery does; the caller is connected to SPI */
extern uint64 SlCatalogRun(const SlNamedQuery *q, Datum *values, const char *nulls);

/* Column col (1-based) of result row row, as int64/int32/bool; NULL -> dflt */
extern int64 SlCatalogInt64(uint64 row, int col, int64 dflt);
extern int32 SlCatalogInt32(uint64 row, int col, int32 dflt);

/* Column col of the first n result rows as a List of strings, made in cxt */
extern List *SlCatalogTexts(uint64 n, int col, MemoryContext cxt);

/*
 * OID of the catalogue table streamlog.<name>; an ERROR that says to run
 * CREATE EXTENSION if there is none.  Looked up each time (a syscache
 * probe or two), so a dropped and re-created extension is followed.
 */
extern Oid	SlCatalogRelid(const char *name);

/* Run a utility statement (DDL) built by the caller */
extern void SlCatalogExec(const char *sql);

#endif							/* SL_STORAGE_INTERNAL_CATALOG_QUERY_H */
