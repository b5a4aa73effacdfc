/*
 * What each Kafka client connection is doing, in shared memory, for the
 * streamlog.stat_connections view (pg_stat_activity for Kafka clients) and
 * the connection gauges of the metrics endpoint (counted per listener and
 * principal from the same rows).
 *
 * Each connection has a slot, written only by the broker worker serving it,
 * read by anyone without a lock: as PostgreSQL's PgBackendStatus does, the
 * writer bumps a change count before and after each change, and a reader
 * copies the slot again until it saw the same even count on both sides.
 * The slots are as many as streamlog.metrics_max_connections; a connection
 * that finds none is served all the same, only not shown (and counted in
 * SL_METRIC_CONNECTION_SLOTS_FULL).
 */
#ifndef SL_METRICS_CONNECTIONS_H
#define SL_METRICS_CONNECTIONS_H

#include "postgres.h"

#include "datatype/timestamp.h"

#define SL_CONN_ADDRESS_LEN 64
#define SL_CONN_NAME_LEN 64
#define SL_CONN_CLIENT_ID_LEN 128
#define SL_CONN_PRINCIPAL_LEN 128

extern Size SlConnActivityShmemSize(void);
extern void SlConnActivityShmemInit(void);

/*
 * A new connection of this process on listener (index and name), from
 * address ("host:port"): its slot, or -1 when all are taken.  The slots of
 * a process are given back when it exits.  Every function below takes -1
 * and then does nothing.  Strings too long are cut.
 */
extern int	SlConnActivityOpen(int listener, const char *listener_name,
							   const char *address);
extern void SlConnActivityClose(int slot);

/* The client id of its latest request header */
extern void SlConnActivitySetClientId(int slot, const char *client_id);

/* ClientSoftwareName and ClientSoftwareVersion of ApiVersions v3+ */
extern void SlConnActivitySetSoftware(int slot, const char *name, const char *version);

/* The principal once authenticated ("User:alice") */
extern void SlConnActivitySetPrincipal(int slot, const char *principal);

/* A request started (received) at since; and it was answered */
extern void SlConnActivityRequestStart(int slot, int16 api_key, int16 api_version,
									   TimestampTz since);
extern void SlConnActivityRequestEnd(int slot);

typedef struct SlConnActivity
{
	int			pid;			/* the broker worker serving it */
	int			listener;
	char		listener_name[SL_CONN_NAME_LEN];
	char		address[SL_CONN_ADDRESS_LEN];
	char		client_id[SL_CONN_CLIENT_ID_LEN];
	char		software_name[SL_CONN_NAME_LEN];
	char		software_version[SL_CONN_NAME_LEN];
	char		principal[SL_CONN_PRINCIPAL_LEN];	/* "" before authentication */
	TimestampTz connected_since;
	int16		api_key;		/* -1 when no request is under way */
	int16		api_version;
	TimestampTz request_since;
} SlConnActivity;

/* Snapshot of the connections open now; palloc'd, *count rows */
extern SlConnActivity *SlConnActivitySnapshot(int *count);

#endif							/* SL_METRICS_CONNECTIONS_H */
