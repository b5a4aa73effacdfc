/*
 * Queries on streamlog's catalog tables through SPI, always with the latest
 * snapshot: the log's shape (topics, segments) must be read as it is now,
 * even inside a REPEATABLE READ transaction whose snapshot is older, or a
 * reader could miss a segment created since and skip its records.
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

/* Column col (1-based) of result row row, as int64/int32/bool; NULL -> dflt */
extern int64 SlCatalogInt64(uint64 row, int col, int64 dflt);
extern int32 SlCatalogInt32(uint64 row, int col, int32 dflt);

/* Run a utility statement (DDL) built by the caller */
extern void SlCatalogExec(const char *sql);

#endif							/* SL_STORAGE_INTERNAL_CATALOG_QUERY_H */
