/*
 * Handing an accepted connection to another broker worker.
 *
 * The workers share the Kafka ports with SO_REUSEPORT, and the kernel sends
 * each connection to a worker by a hash of its addresses: four producers
 * may all land on one worker while the other core idles.  A worker that
 * accepts a connection while it serves more than another worker passes the
 * socket to that one (SCM_RIGHTS over a datagram socket of each worker),
 * before anything is read from it; the receiver admits it as if it had
 * accepted it itself.
 */
#ifndef SL_CONN_HANDOFF_H
#define SL_CONN_HANDOFF_H

#include "postgres.h"

/*
 * Open worker_index's socket to receive connections on; PGINVALID_SOCKET
 * where the platform has none (connections then stay where they land)
 */
extern pgsocket SlConnHandoffOpen(int worker_index);

/*
 * Pass s, accepted on listener listener_index, to worker target; true if
 * it went (the caller closes its own descriptor of it)
 */
extern bool SlConnHandoffSend(int target, pgsocket s, int listener_index);

/*
 * A connection another worker passed to this one, and its listener; or
 * PGINVALID_SOCKET when none is waiting
 */
extern pgsocket SlConnHandoffReceive(int *listener_index);

#endif							/* SL_CONN_HANDOFF_H */
