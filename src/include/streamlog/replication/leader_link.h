/*
 * A follower's connections to a partition leader (leader_link.c): the
 * replication connection its apply worker streams from, and the side
 * channel (a plain SQL connection) for catch-up reads, epoch end offsets
 * and progress reports (CLUSTER.md section 3).  Every wait is on the
 * process latch with a deadline, so that a worker serves its signals and
 * never hangs on a leader that stopped answering.
 */
#ifndef SL_REPLICATION_LEADER_LINK_H
#define SL_REPLICATION_LEADER_LINK_H

#include "datatype/timestamp.h"
#include "libpq-fe.h"

/*
 * Connect to conninfo; replication makes it a logical replication
 * connection (replication=database).  NULL and *why on failure.
 */
extern PGconn *SlLeaderConnect(const char *conninfo, bool replication,
							   const char *application_name, int timeout_ms,
							   char **why);

extern void SlLeaderDisconnect(PGconn *conn);

/*
 * Run a query (text parameters, results in binary if binary_results) and
 * return its last result, which the caller PQclears; NULL and *why if it
 * could not be sent or answered before the deadline (the connection is
 * then unusable: disconnect).  Without parameters and binary results it
 * goes by the simple query protocol, the only one a walsender takes; a
 * COPY BOTH result (START_REPLICATION) is returned as soon as it comes.
 */
extern PGresult *SlLeaderQuery(PGconn *conn, const char *query, int nparams,
							   const char *const *values, bool binary_results,
							   int timeout_ms, char **why);

/*
 * Wait until conn's socket is ready for events, the latch is set, or
 * timeout_ms passes; returns the WaitLatchOrSocket events.
 */
extern int	SlLeaderWait(PGconn *conn, int events, long timeout_ms);

/* A binary int4 / int8 / int2 column of a result, false if malformed */
extern bool SlLeaderResultInt(const PGresult *res, int row, int col, int width,
							  int64 *out);

#endif							/* SL_REPLICATION_LEADER_LINK_H */
