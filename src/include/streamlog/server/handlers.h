/*
 * The Kafka API handlers, one file per API family under handlers/, and the
 * table that says which versions of which API streamlog serves.  That
 * table is also what ApiVersions advertises, so it cannot claim more than
 * is implemented.
 */
#ifndef SL_HANDLERS_H
#define SL_HANDLERS_H

#include "streamlog/protocol/generated/kapi.h"
#include "streamlog/protocol/generated/kmsg.h"
#include "streamlog/protocol/wire.h"
#include "streamlog/server/request.h"
#include "streamlog/storage/storage.h"

/*
 * Decode the body, do the work, encode the response body into out.  Runs
 * inside a transaction.  Returns false if the body cannot be decoded: the
 * connection is then closed.
 */
typedef bool (*SlHandlerFn) (SlRequest *req, SlReader *body, SlWriter *out);

/*
 * A batchable handler's second half, after the commit: encode the response
 * into out (or decide that none is due).  error is NULL if the request's
 * work committed; else the error of the request alone (own_error) or of
 * the commit of the whole batch.
 */
typedef void (*SlHandlerRespondFn) (SlRequest *req, SlWriter *out,
									ErrorData *error, bool own_error);

typedef struct SlHandler
{
	int16		min_version;
	int16		max_version;
	SlHandlerFn handle;
	/* answered (with an error) but not advertised: not implemented */
	bool		unadvertised;
	/*
	 * A transaction API: advertised only while the transaction coordinator
	 * serves them (streamlog.transaction_coordinator, server/txn/)
	 */
	bool		transactional;

	/*
	 * Batchable (Produce): the requests of this API read in one loop of the
	 * worker run in one transaction, each in its own subtransaction so that
	 * an ERROR fails that request alone, and are answered after the one
	 * commit (one WAL flush for all).  handle does the work and keeps what
	 * the answer needs in req->handler_state; respond writes the answer.
	 */
	bool		batchable;
	SlHandlerRespondFn respond;

	/*
	 * A batchable request that respond parked after the commit (an
	 * acks=all Produce waiting for its replicas): look again, in a
	 * transaction of its own, when what it waits on changed or its
	 * deadline passed.  It writes the answer into out and becomes DONE,
	 * or stays PARKED.
	 */
	void		(*recheck) (SlRequest *req, SlWriter *out);

	/*
	 * Served before authentication (ApiVersions, SaslHandshake,
	 * SaslAuthenticate), as the worker itself: these need no principal and
	 * are how a client gets one.  Every other API runs as the session's
	 * role.
	 */
	bool		before_auth;
} SlHandler;

/* The handler of api_key, or NULL if streamlog does not serve it */
extern const SlHandler *SlHandlerFor(int16 api_key);

extern bool SlHandleApiVersions(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleMetadata(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleFetch(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleListOffsets(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleOffsetForLeaderEpoch(SlRequest *req, SlReader *body, SlWriter *out);

/* Admin: handlers/admin_topics.c, admin_configs.c, delete_records.c, describe_cluster.c */
extern bool SlHandleCreateTopics(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleDeleteTopics(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleCreatePartitions(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleDescribeConfigs(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleAlterConfigs(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleIncrementalAlterConfigs(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleDeleteRecords(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleDescribeCluster(SlRequest *req, SlReader *body, SlWriter *out);
/* handlers/elect_leaders.c: preferred leader election (KIP-460) */
extern bool SlHandleElectLeaders(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleAlterPartitionReassignments(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleListPartitionReassignments(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleDescribeTopicPartitions(SlRequest *req, SlReader *body, SlWriter *out);
/* handlers/quorum.c: the metadata quorum (KIP-595, KIP-853) */
extern bool SlHandleDescribeQuorum(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleAddRaftVoter(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleRemoveRaftVoter(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleInitProducerId(SlRequest *req, SlReader *body, SlWriter *out);

/* Privileges, on the store the SQL door shares: handlers/acls.c */
extern bool SlHandleDescribeAcls(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleCreateAcls(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleDeleteAcls(SlRequest *req, SlReader *body, SlWriter *out);

/* The transaction APIs, answered with a final error: handlers/transactions.c */
extern bool SlHandleTransactionApi(SlRequest *req, SlReader *body, SlWriter *out);
/* ... and served by the transaction coordinator when it is on (server/txn/) */
extern bool SlHandleAddPartitionsToTxn(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleAddOffsetsToTxn(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleEndTxn(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleDescribeTransactions(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleDescribeProducers(SlRequest *req, SlReader *body, SlWriter *out);
/* DescribeLogDirs: the data directory and the partitions' sizes (describe_log_dirs.c) */
extern bool SlHandleDescribeLogDirs(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleListTransactions(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleTxnOffsetCommit(SlRequest *req, SlReader *body, SlWriter *out);

/*
 * handlers/txn_answer.c: the coordinator's state-changing APIs (and
 * TxnOffsetCommit) are batchable, answered once the id's partition of
 * __transaction_state holds the change on its in-sync replicas.  A handler encodes its answer into
 * the writer SlTxnAnswerStart gives, and names the id it changed with
 * SlTxnAnswerWaitFor.
 */
extern SlWriter *SlTxnAnswerStart(SlRequest *req, const SlReader *body);
extern void SlTxnAnswerWaitFor(SlRequest *req, const char *transactional_id);
/* TxnOffsetCommit: the group's partition of __consumer_offsets instead */
extern void SlTxnAnswerWaitForGroup(SlRequest *req, const char *group_id);
extern void SlRespondTxnAnswer(SlRequest *req, SlWriter *out, ErrorData *error,
							   bool own_error);
extern void SlRecheckTxnAnswer(SlRequest *req, SlWriter *out);

/* Consumer groups: handlers/groups.c, handlers/offsets.c */
extern bool SlHandleFindCoordinator(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleJoinGroup(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleSyncGroup(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleHeartbeat(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleLeaveGroup(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleListGroups(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleDescribeGroups(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleDeleteGroups(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleOffsetCommit(SlRequest *req, SlReader *body, SlWriter *out);
/* batchable: answered once its offsets are on the in-sync replicas */
extern void SlRespondOffsetCommit(SlRequest *req, SlWriter *out, ErrorData *error,
								  bool own_error);
extern void SlRecheckOffsetCommit(SlRequest *req, SlWriter *out);
extern bool SlHandleOffsetFetch(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleOffsetDelete(SlRequest *req, SlReader *body, SlWriter *out);

/* handlers/client_quotas.c */
extern bool SlHandleDescribeClientQuotas(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleAlterClientQuotas(SlRequest *req, SlReader *body, SlWriter *out);

/*
 * A group id from the wire as a C string; NULL if Kafka would call it
 * invalid (empty), or it is too long, holds NUL bytes or is not UTF-8.
 */
extern char *SlGroupIdFromWire(SlStr id);

/* SASL: auth/sasl.c */
extern bool SlHandleSaslHandshake(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleSaslAuthenticate(SlRequest *req, SlReader *body, SlWriter *out);

/* SCRAM credentials of roles: handlers/scram_credentials.c */
extern bool SlHandleDescribeUserScramCredentials(SlRequest *req, SlReader *body, SlWriter *out);
extern bool SlHandleAlterUserScramCredentials(SlRequest *req, SlReader *body, SlWriter *out);

/* Produce, batchable: handlers/produce.c */
extern bool SlHandleProduce(SlRequest *req, SlReader *body, SlWriter *out);
extern void SlRespondProduce(SlRequest *req, SlWriter *out, ErrorData *error,
							 bool own_error);
extern void SlRecheckProduce(SlRequest *req, SlWriter *out);

/* ApiVersions' answer to a version it does not know: v0 body, error 35 */
extern void SlApiVersionsUnsupported(SlRequest *req, SlWriter *out);

/* Host and port clients of this session's listener should connect to */
extern void SlAdvertisedEndpoint(const SlSession *session, const char **host, int32 *port);

/* Topic name of a wire string; NULL if not a valid name (too long) */
extern char *SlTopicNameFromWire(SlStr name);

/* Allocate count zeroed items of a generated array field */
#define SL_ARRAY_ALLOC(array, count) \
	((array).n = (count), \
	 (array).items = palloc0(sizeof(*(array).items) * Max((count), 1)))

/* Write the response header for req (correlation id, tagged fields) */
extern void SlWriteResponseHeader(SlRequest *req, SlWriter *out);

#endif							/* SL_HANDLERS_H */
