/*
 * Kafka-style listeners: named endpoints, each with a security protocol and
 * the address clients are told to connect to.
 *
 *	 streamlog.listeners = 'PLAINTEXT://127.0.0.1:9092,CLIENT://:9094'
 *	 streamlog.listener_security_protocol_map = 'PLAINTEXT:PLAINTEXT,CLIENT:SASL_SSL'
 *	 streamlog.advertised_listeners = 'CLIENT://kafka.example.com:9094'
 *
 * Without streamlog.listeners, streamlog.listen_addresses and streamlog.port
 * make one PLAINTEXT listener, as before listeners existed (port 0: none).
 * The table is read once per process (the postmaster refuses to start on a
 * bad setting) and only the advertised addresses change on a reload.
 */
#ifndef SL_LISTENERS_H
#define SL_LISTENERS_H

#include "postgres.h"

#include "streamlog/server/session.h"

#define SL_MAX_LISTENERS 16
#define SL_LISTENER_HOST_MAX 256

typedef struct SlListener
{
	char		name[64];		/* upper case, as Kafka normalises it */
	SlSecurityProtocol protocol;
	/* addresses to bind, comma-separated; "" for every interface */
	char		bind_hosts[SL_LISTENER_HOST_MAX];
	int			port;
	/* what Metadata, FindCoordinator and DescribeCluster answer */
	char		advertised_host[SL_LISTENER_HOST_MAX];
	int			advertised_port;
} SlListener;

/* Read the listener settings; ERROR (naming the setting) if one is invalid */
extern void SlListenersLoad(void);

/*
 * After a reload: take the new advertised addresses.  False, with a LOG
 * line and the old addresses kept, if the new settings are invalid.
 */
extern bool SlListenersReload(void);

/* The listeners, 0 when the Kafka door is off */
extern int	SlListenerCount(void);
extern const SlListener *SlListenerAt(int i);

/* "PLAINTEXT", "SSL", ... */
extern const char *SlSecurityProtocolName(SlSecurityProtocol protocol);

/* Is the protocol one of the TLS ones (SSL, SASL_SSL)? */
extern bool SlSecurityProtocolUsesTls(SlSecurityProtocol protocol);

/*
 * Kafka's listeners and advertised.listeners as DescribeConfigs shows them:
 * "NAME://host:port,..." (palloc'd)
 */
extern char *SlListenersDescribe(bool advertised);

#endif							/* SL_LISTENERS_H */
