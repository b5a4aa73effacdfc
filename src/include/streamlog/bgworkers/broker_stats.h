/*
 * What each broker worker is doing, in shared memory, for the
 * streamlog.broker_stats view: its connections, the bytes their input
 * buffers hold, its parked requests, the memory they hold and how often it
 * looked at them again.
 * Each worker writes only its own slot, but for the connections another
 * worker hands it (conn_handoff.h), counted at once by the giver so that a
 * burst of connections is not all sent to the same worker.
 */
#ifndef SL_BROKER_STATS_H
#define SL_BROKER_STATS_H

#include "postgres.h"

extern Size SlBrokerStatsShmemSize(void);
extern void SlBrokerStatsShmemInit(void);

/* This process is broker worker worker_index; its counters start at zero */
extern void SlBrokerStatsStart(int worker_index);

/* A parked request was looked at again */
extern void SlBrokerStatsCountParkedAttempt(void);

/*
 * The worker's connections, their input buffers' bytes, its parked
 * requests and the memory they hold, the bytes of answers not yet sent and
 * the connections muted for them
 */
extern void SlBrokerStatsReport(int connections, uint64 input_buffer_bytes,
								int parked_requests, uint64 parked_request_bytes,
								uint64 unsent_bytes, int muted_connections);

/*
 * The running broker worker other than me that serves the fewest
 * connections, and their number; -1 if there is no other
 */
extern int	SlBrokerStatsFewestConnections(int me, uint32 *connections);

/*
 * n connections (1, or -1 when it did not go) are handed to worker: count
 * them there until it reports
 */
extern void SlBrokerStatsAddConnection(int worker, int n);

#endif							/* SL_BROKER_STATS_H */
