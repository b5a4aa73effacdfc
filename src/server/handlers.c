/*
 * Which APIs and versions streamlog serves, and small helpers shared by the
 * handlers.  Every API is served from version 0 up: clients detect features
 * with old versions (librdkafka) and some ignore the advertised minimum
 * (KafkaJS).
 */
#include "postgres.h"

#include "streamlog/server/handlers.h"

static const SlHandler handlers[SL_API_KEY_MAX + 1] = {
	[SL_API_PRODUCE] = {0, 9, SlHandleProduce, .batchable = true,
	.respond = SlRespondProduce, .recheck = SlRecheckProduce},
	[SL_API_FETCH] = {0, 13, SlHandleFetch},
	[SL_API_LIST_OFFSETS] = {0, 6, SlHandleListOffsets},
	[SL_API_OFFSET_FOR_LEADER_EPOCH] = {0, 4, SlHandleOffsetForLeaderEpoch},
	[SL_API_METADATA] = {0, 12, SlHandleMetadata},
	[SL_API_API_VERSIONS] = {0, 3, SlHandleApiVersions, .before_auth = true},
	[SL_API_SASL_HANDSHAKE] = {0, 1, SlHandleSaslHandshake, .before_auth = true},
	[SL_API_SASL_AUTHENTICATE] = {0, 2, SlHandleSaslAuthenticate, .before_auth = true},
	[SL_API_CREATE_TOPICS] = {0, 7, SlHandleCreateTopics},
	[SL_API_DELETE_TOPICS] = {0, 6, SlHandleDeleteTopics},
	[SL_API_DELETE_RECORDS] = {0, 2, SlHandleDeleteRecords},
	[SL_API_DESCRIBE_CONFIGS] = {0, 4, SlHandleDescribeConfigs},
	[SL_API_ALTER_CONFIGS] = {0, 2, SlHandleAlterConfigs},
	[SL_API_CREATE_PARTITIONS] = {0, 3, SlHandleCreatePartitions},
	[SL_API_INCREMENTAL_ALTER_CONFIGS] = {0, 1, SlHandleIncrementalAlterConfigs},
	[SL_API_DESCRIBE_CLUSTER] = {0, 1, SlHandleDescribeCluster},
	[SL_API_ELECT_LEADERS] = {0, 2, SlHandleElectLeaders},
	[SL_API_ALTER_PARTITION_REASSIGNMENTS] = {0, 0, SlHandleAlterPartitionReassignments},
	[SL_API_LIST_PARTITION_REASSIGNMENTS] = {0, 0, SlHandleListPartitionReassignments},
	[SL_API_DESCRIBE_TOPIC_PARTITIONS] = {0, 0, SlHandleDescribeTopicPartitions},
	[SL_API_DESCRIBE_QUORUM] = {0, 2, SlHandleDescribeQuorum},
	[SL_API_ADD_RAFT_VOTER] = {0, 0, SlHandleAddRaftVoter},
	[SL_API_REMOVE_RAFT_VOTER] = {0, 0, SlHandleRemoveRaftVoter},
	[SL_API_INIT_PRODUCER_ID] = {0, 5, SlHandleInitProducerId, .batchable = true,
	.respond = SlRespondTxnAnswer, .recheck = SlRecheckTxnAnswer},
	[SL_API_DESCRIBE_ACLS] = {0, 3, SlHandleDescribeAcls},
	[SL_API_CREATE_ACLS] = {0, 3, SlHandleCreateAcls},
	[SL_API_DELETE_ACLS] = {0, 3, SlHandleDeleteAcls},
	/*
	 * Kafka transactions: a final error, not a hang, until the coordinator
	 * is on (streamlog.transaction_coordinator; handlers/transactions.c)
	 */
	[SL_API_ADD_PARTITIONS_TO_TXN] = {0, 5, SlHandleAddPartitionsToTxn, .transactional = true, .batchable = true,
	.respond = SlRespondTxnAnswer, .recheck = SlRecheckTxnAnswer},
	[SL_API_ADD_OFFSETS_TO_TXN] = {0, 4, SlHandleAddOffsetsToTxn, .transactional = true, .batchable = true,
	.respond = SlRespondTxnAnswer, .recheck = SlRecheckTxnAnswer},
	[SL_API_END_TXN] = {0, 4, SlHandleEndTxn, .transactional = true, .batchable = true,
	.respond = SlRespondTxnAnswer, .recheck = SlRecheckTxnAnswer},
	[SL_API_WRITE_TXN_MARKERS] = {0, 1, SlHandleTransactionApi, true},
	[SL_API_TXN_OFFSET_COMMIT] = {0, 4, SlHandleTxnOffsetCommit, .transactional = true, .batchable = true,
	.respond = SlRespondTxnAnswer, .recheck = SlRecheckTxnAnswer},
	[SL_API_DESCRIBE_TRANSACTIONS] = {0, 0, SlHandleDescribeTransactions, .transactional = true},
	[SL_API_DESCRIBE_PRODUCERS] = {0, 0, SlHandleDescribeProducers},
	[SL_API_DESCRIBE_LOG_DIRS] = {0, 4, SlHandleDescribeLogDirs},
	[SL_API_LIST_TRANSACTIONS] = {0, 1, SlHandleListTransactions, .transactional = true},
	[SL_API_OFFSET_COMMIT] = {0, 9, SlHandleOffsetCommit, .batchable = true,
	.respond = SlRespondOffsetCommit, .recheck = SlRecheckOffsetCommit},
	[SL_API_OFFSET_FETCH] = {0, 9, SlHandleOffsetFetch},
	[SL_API_FIND_COORDINATOR] = {0, 6, SlHandleFindCoordinator},
	[SL_API_JOIN_GROUP] = {0, 9, SlHandleJoinGroup},
	[SL_API_HEARTBEAT] = {0, 4, SlHandleHeartbeat},
	[SL_API_LEAVE_GROUP] = {0, 5, SlHandleLeaveGroup},
	[SL_API_SYNC_GROUP] = {0, 5, SlHandleSyncGroup},
	[SL_API_DESCRIBE_GROUPS] = {0, 5, SlHandleDescribeGroups},
	[SL_API_LIST_GROUPS] = {0, 5, SlHandleListGroups},
	[SL_API_DELETE_GROUPS] = {0, 2, SlHandleDeleteGroups},
	[SL_API_OFFSET_DELETE] = {0, 0, SlHandleOffsetDelete},
	[SL_API_DESCRIBE_USER_SCRAM_CREDENTIALS] = {0, 0, SlHandleDescribeUserScramCredentials},
	[SL_API_ALTER_USER_SCRAM_CREDENTIALS] = {0, 0, SlHandleAlterUserScramCredentials},
	[SL_API_DESCRIBE_CLIENT_QUOTAS] = {0, 1, SlHandleDescribeClientQuotas},
	[SL_API_ALTER_CLIENT_QUOTAS] = {0, 1, SlHandleAlterClientQuotas},
};

const SlHandler *
SlHandlerFor(int16 api_key)
{
	if (api_key < 0 || api_key > SL_API_KEY_MAX)
		return NULL;
	if (handlers[api_key].handle == NULL)
		return NULL;
	return &handlers[api_key];
}

/*
 * The endpoint of the listener the session came in on: as Kafka, a client
 * is told the address of its own listener
 */
void
SlAdvertisedEndpoint(const SlSession *session, const char **host, int32 *port)
{
	*host = session->advertised_host;
	*port = session->advertised_port;
}

char *
SlTopicNameFromWire(SlStr name)
{
	if (name.len <= 0 || name.len > SL_TOPIC_NAME_MAX)
		return NULL;
	return pnstrdup(name.data, name.len);
}
