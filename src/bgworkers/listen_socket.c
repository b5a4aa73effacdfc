/*
 * Listening sockets of background workers, see listen_socket.h.
 *
 * IPv6 sockets are IPv6 only: a wildcard address resolves to both
 * families, each bound on its own, as PostgreSQL's postmaster does.
 */
#include "postgres.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "streamlog/bgworkers/listen_socket.h"

pgsocket
SlListenSocketOpen(const struct addrinfo *ai, bool reuse_port, int backlog)
{
	pgsocket	s = socket(ai->ai_family, SOCK_STREAM, 0);
	int			one = 1;

	if (s == PGINVALID_SOCKET)
		return PGINVALID_SOCKET;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuse_port)
		setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(s, ai->ai_addr, ai->ai_addrlen) < 0 || listen(s, backlog) < 0 ||
		!pg_set_noblock(s))
	{
		int			save_errno = errno;

		close(s);
		errno = save_errno;
		return PGINVALID_SOCKET;
	}
	return s;
}
