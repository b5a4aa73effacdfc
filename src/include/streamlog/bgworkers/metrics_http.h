/*
 * The Prometheus endpoint: a background worker serving HTTP/1.1 GET
 * /metrics on streamlog.metrics_listen (bgworkers/metrics_http.c).
 */
#ifndef SL_METRICS_HTTP_H
#define SL_METRICS_HTTP_H

#include "postgres.h"

/*
 * From _PG_init: register the worker if streamlog.metrics_listen is set;
 * a value that does not parse stops the server with its reason
 */
extern void SlMetricsHttpRegister(void);

extern PGDLLEXPORT void SlMetricsHttpMain(Datum arg);

#endif							/* SL_METRICS_HTTP_H */
