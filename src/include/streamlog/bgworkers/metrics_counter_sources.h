/*
 * Sources of the Prometheus endpoint that read only the shared counters
 * (metrics/counters.h, metrics/connections.h), no catalog: Kafka requests
 * per API (metrics_requests.c) and the connections, logins and broker-wide
 * counters (metrics_connections.c).
 */
#ifndef SL_METRICS_COUNTER_SOURCES_H
#define SL_METRICS_COUNTER_SOURCES_H

#include "postgres.h"

#include "streamlog/protocol/metrics_exposition.h"

extern void SlMetricsAddRequests(SlExposition *e);
extern void SlMetricsAddConnections(SlExposition *e);

#endif							/* SL_METRICS_COUNTER_SOURCES_H */
