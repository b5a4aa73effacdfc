/*
 * A listening TCP socket of a background worker (listen_socket.c): what the
 * Kafka broker and the metrics endpoint open alike.
 */
#ifndef STREAMLOG_BGWORKERS_LISTEN_SOCKET_H
#define STREAMLOG_BGWORKERS_LISTEN_SOCKET_H

#include <netdb.h>

/*
 * A non-blocking socket listening on ai, or PGINVALID_SOCKET with errno set
 * (the caller logs which address failed).  reuse_port lets several workers
 * listen on one port, the kernel sharing out the connections.
 */
extern pgsocket SlListenSocketOpen(const struct addrinfo *ai, bool reuse_port, int backlog);

#endif							/* STREAMLOG_BGWORKERS_LISTEN_SOCKET_H */
