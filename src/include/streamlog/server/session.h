/*
 * What the server layer knows of a client connection for as long as it
 * lasts: the listener it came in on (name, security protocol, advertised
 * address), whether it is local, the TLS peer, and who it is once
 * authenticated.  The connection layer (bgworkers/conn.c) creates one per
 * connection and hands it to every request it reads; the server layer
 * (authentication, authorization, quotas) reads and updates it.  No socket
 * here, no TLS library either.
 */
#ifndef SL_SESSION_H
#define SL_SESSION_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* Kafka's security protocols, as listeners name them */
typedef enum SlSecurityProtocol
{
	SL_PROTOCOL_PLAINTEXT,
	SL_PROTOCOL_SSL,
	SL_PROTOCOL_SASL_PLAINTEXT,
	SL_PROTOCOL_SASL_SSL
} SlSecurityProtocol;

typedef struct SlSession
{
	/* the listener: "PLAINTEXT", "CLIENT", ... as listeners names it */
	const char *listener_name;
	SlSecurityProtocol protocol;
	/* what Metadata, FindCoordinator and DescribeCluster answer for it */
	const char *advertised_host;
	int			advertised_port;

	const char *peer;			/* "host:port", for log lines */
	bool		peer_is_loopback;
	/* the subject of a verified client certificate, NULL without one */
	const char *tls_subject;

	/*
	 * The role requests run as; InvalidOid until authenticated (or, on a
	 * listener without SASL, until the server layer decided who an
	 * unauthenticated client is)
	 */
	Oid			role;
	/* KIP-368: when the authentication expires, 0 for never */
	TimestampTz auth_expiry;
	/* the server layer's own state of a SASL exchange under way */
	void	   *sasl_state;

	/*
	 * For the metrics (metrics/counters.h, metrics/connections.h): the
	 * listener's index in the listener table, and the connection's slot in
	 * streamlog.stat_connections (-1: not shown)
	 */
	int			listener_index;
	int			activity_slot;
} SlSession;

#endif							/* SL_SESSION_H */
