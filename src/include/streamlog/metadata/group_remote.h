/*
 * SQL consume() on a node that does not coordinate the group
 * (metadata/group_remote.c; README, "SQL consume() on any node"): the
 * partitions are claimed and advanced in a transaction on the coordinator
 * over libpq, tied to the caller's transaction by two-phase commit, and an
 * in-doubt resolver finishes what a crash left prepared.
 */
#ifndef SL_METADATA_GROUP_REMOTE_H
#define SL_METADATA_GROUP_REMOTE_H

#include "datatype/timestamp.h"
#include "libpq-fe.h"
#include "streamlog/storage/storage.h"

/*
 * SlGroupClaimNext (storage.h) run on coordinator, in this transaction's
 * remote transaction there (begun now if needed)
 */
extern int	SlRemoteGroupClaimNext(int32 coordinator, const char *group_id,
								   const SlTopic *topic, const int64 *hwms,
								   const int64 *log_starts, int64 wanted, bool *tried,
								   int32 *partitions, int64 *offsets, bool *exhausted);

/*
 * Advance partitions claimed by SlRemoteGroupClaimNext from from_offsets to
 * to_offsets; it takes effect when the caller's transaction commits
 */
extern void SlRemoteGroupAdvance(int32 coordinator, const char *group_id,
								 const SlTopic *topic, const int32 *partitions,
								 const int64 *from_offsets, const int64 *to_offsets,
								 int count);

/* This node's prefix of the gids it prepares on coordinators */
extern char *SlRemoteGroupGidPrefix(void);

/*
 * The libpq link both use, over metadata/node_link.h: connect to node_id by
 * deadline (NULL and *why if not), run one statement and return its last
 * result (NULL and *why when there was no answer: the connection is then
 * unusable; close it with SlNodeLinkClose)
 */
extern PGconn *SlRemoteConnect(int32 node_id, const char *conninfo, const char *appname,
							   TimestampTz deadline, char **why);
extern PGresult *SlRemoteRun(PGconn *conn, const char *sql, int nparams,
							 const char *const *params, TimestampTz deadline, char **why);

/*
 * group_resolver.c, the resolver: finish this node's prepared transactions on every node (by
 * whether their local transaction committed) and settle its committed
 * intents on the groups' coordinators.  Runs in a worker, in no
 * transaction; ERRORs are the caller's to catch.
 */
extern void SlRemoteGroupResolve(void);

/* Close the resolver's connections */
extern void SlRemoteGroupResolverDisconnect(void);

#endif							/* SL_METADATA_GROUP_REMOTE_H */
