/*
 * libpq links between nodes (metadata/node_link.c): connecting to another
 * node's SQL, running a statement there and collecting its answer, every
 * wait on the process latch and bounded by a deadline, so that a backend
 * or a worker serves its interrupts and never hangs on a node that stopped
 * answering.  Used by forwarding to the controller (cluster_submit.c), SQL
 * produce forwarded to a leader and a follower's side channel to its
 * leader (replication/).
 *
 * A link that failed in any way is closed, never reused: a connection in
 * an unknown state could answer the next request with the last one's
 * result.
 */
#ifndef SL_METADATA_NODE_LINK_H
#define SL_METADATA_NODE_LINK_H

#include "datatype/timestamp.h"
#include "libpq-fe.h"

/* As SlClusterNode's sql_conninfo */
#define SL_NODE_LINK_CONNINFO_MAX 512

/*
 * Wait until sock is ready for events (WL_SOCKET_*) or deadline passes
 * (false), serving interrupts on the latch meanwhile: the one wait of every
 * libpq link between nodes.
 */
extern bool SlWaitSocketUntil(pgsocket sock, int events, TimestampTz deadline);

/*
 * Connect to conninfo (a conninfo string or a database name) as
 * application_name, with one more connection keyword (extra_keyword and
 * extra_value, or NULL for none), waiting until deadline.  The connection
 * holds one of the process's external file descriptors until
 * SlNodeLinkClose.  NULL and *why (palloc'd) on failure.
 */
extern PGconn *SlNodeLinkConnect(const char *conninfo, const char *application_name,
								 const char *extra_keyword, const char *extra_value,
								 TimestampTz deadline, char **why);

/* Close a connection of SlNodeLinkConnect (NULL: nothing) */
extern void SlNodeLinkClose(PGconn *conn);

/*
 * A connection kept to one node for the next request: reused only while it
 * is idle, healthy and for the same conninfo.
 */
typedef struct SlNodeLink
{
	int32		node_id;		/* whose link it is; -1: nobody's yet */
	char		conninfo[SL_NODE_LINK_CONNINFO_MAX];
	PGconn	   *conn;			/* NULL: not connected */
} SlNodeLink;

#define SL_NODE_LINK_INIT {-1, "", NULL}

/*
 * link's connection to node_id at conninfo: the kept one if it may be
 * reused, else a new one made by SlNodeLinkConnect (the old one closed).
 * The link is node_id's from then on.  NULL and *why on failure.
 */
extern PGconn *SlNodeLinkOpen(SlNodeLink *link, int32 node_id, const char *conninfo,
							  const char *application_name,
							  const char *extra_keyword, const char *extra_value,
							  TimestampTz deadline, char **why);

/*
 * Close link's connection, if any (after any failure on it); the link
 * stays node_id's
 */
extern void SlNodeLinkDrop(SlNodeLink *link);

/* What sending a statement over a link came to */
typedef enum SlNodeLinkOutcome
{
	SL_NODE_LINK_ANSWERED,		/* *result holds the last result, whatever its
								 * status */
	SL_NODE_LINK_BROKEN,		/* the connection failed: *why */
	SL_NODE_LINK_TIMED_OUT		/* the deadline passed: *why */
} SlNodeLinkOutcome;

/*
 * Send query with nparams parameters (types, lengths and formats may be
 * NULL: text) and collect its last result into *result, for the caller to
 * PQclear, waiting until deadline.  Without parameters and with text
 * results it goes by the simple query protocol, the only one a walsender
 * takes; a COPY BOTH result (START_REPLICATION) is returned as soon as it
 * comes.  After anything but SL_NODE_LINK_ANSWERED the connection is
 * unusable: close it.
 */
extern SlNodeLinkOutcome SlNodeLinkQuery(PGconn *conn, const char *query, int nparams,
										 const Oid *types, const char *const *values,
										 const int *lengths, const int *formats,
										 int result_format, TimestampTz deadline,
										 PGresult **result, char **why);

/*
 * A binary int2 / int4 / int8 (width 2, 4 or 8) column of a result; false
 * if it is NULL or not of that width.  Answers from other nodes are as
 * hostile as any input.
 */
extern bool SlNodeLinkResultInt(const PGresult *res, int row, int col, int width,
								int64 *out);

#endif							/* SL_METADATA_NODE_LINK_H */
