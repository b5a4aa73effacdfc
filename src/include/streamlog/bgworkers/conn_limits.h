/*
 * Connections per client address and per listener, counted over all
 * broker workers in shared memory, for streamlog.max_connections_per_ip and
 * its overrides (Kafka's max.connections.per.ip and
 * max.connections.per.ip.overrides) and streamlog.listener_max_connections
 * (listener.name.NAME.max.connections).
 */
#ifndef SL_CONN_LIMITS_H
#define SL_CONN_LIMITS_H

#include "postgres.h"

#include <sys/socket.h>

extern Size SlConnLimitsShmemSize(void);
extern void SlConnLimitsShmemInit(void);

/* This worker starts: what an earlier run of it counted is forgotten */
extern void SlConnLimitsStart(int worker_index);

/*
 * Count a new connection from addr, or refuse it: false, with *count set
 * to the connections that address has and *limit to its limit, if it has
 * as many as it may (or the table of addresses is full: *limit is -1).
 */
extern bool SlConnLimitsAdmit(const struct sockaddr_storage *addr, int *count, int *limit);

/* A connection SlConnLimitsAdmit admitted is closed */
extern void SlConnLimitsRelease(const struct sockaddr_storage *addr);

/*
 * Count a new connection on listener (its index in SlListenerAt), or
 * refuse it: false, with *count the listener's connections, if it has
 * limit already (streamlog.listener_max_connections)
 */
extern bool SlConnLimitsAdmitListener(int listener, int limit, int *count);

/* A connection SlConnLimitsAdmitListener admitted is closed */
extern void SlConnLimitsReleaseListener(int listener);

#endif							/* SL_CONN_LIMITS_H */
