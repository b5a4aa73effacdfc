/*-------------------------------------------------------------------------
 * metric_table.c
 *	  Every metric the Prometheus endpoint exports, with its HELP text: the
 *	  one list of them (README.md shows it as a table).  Indexed by
 *	  SlMetricId with designated initializers, so that an entry cannot
 *	  land under another's id.
 *
 * IDENTIFICATION
 *	  src/protocol/metric_table.c
 *-------------------------------------------------------------------------
 */
#include "streamlog/protocol/metric_table.h"

#define M(id, n, t, l, h) [id] = {n, t, l, h}

const SlMetricDef sl_metric_defs[SL_M_COUNT] = {
	M(SL_M_BROKER_STATE, "kafka_server_kafkaserver_brokerstate", SL_METRIC_GAUGE, "",
	  "State of the broker as Kafka numbers it: 3 running (the endpoint answers only then)."),

	M(SL_M_LOG_SIZE, "kafka_log_log_size", SL_METRIC_GAUGE, "topic,partition",
	  "Bytes the partition's log takes on disk: the sizes of its segment relations with their indexes and TOAST."),
	M(SL_M_LOG_END_OFFSET, "kafka_log_log_logendoffset", SL_METRIC_GAUGE, "topic,partition",
	  "Offset of the next record of the partition, as consumers see it (its high watermark)."),
	M(SL_M_LOG_START_OFFSET, "kafka_log_log_logstartoffset", SL_METRIC_GAUGE, "topic,partition",
	  "First offset of the partition still kept (retention and DeleteRecords move it)."),
	M(SL_M_LOG_SEGMENTS, "kafka_log_log_numlogsegments", SL_METRIC_GAUGE, "topic,partition",
	  "Segment relations of the partition."),
	M(SL_M_PARTITION_UNDER_REPLICATED, "kafka_cluster_partition_underreplicated", SL_METRIC_GAUGE,
	  "topic,partition",
	  "1 if the partition has fewer in-sync replicas than replicas, else 0."),
	M(SL_M_PARTITION_REPLICAS, "kafka_cluster_partition_replicascount", SL_METRIC_GAUGE,
	  "topic,partition", "Replicas the partition is assigned."),
	M(SL_M_PARTITION_IN_SYNC_REPLICAS, "kafka_cluster_partition_insyncreplicascount",
	  SL_METRIC_GAUGE, "topic,partition", "In-sync replicas of the partition (its ISR)."),
	M(SL_M_REPLICA_PARTITIONS, "kafka_server_replicamanager_partitioncount", SL_METRIC_GAUGE, "",
	  "Partitions with a replica on this node."),
	M(SL_M_REPLICA_LEADERS, "kafka_server_replicamanager_leadercount", SL_METRIC_GAUGE, "",
	  "Partitions this node leads."),
	M(SL_M_REPLICA_UNDER_REPLICATED, "kafka_server_replicamanager_underreplicatedpartitions",
	  SL_METRIC_GAUGE, "",
	  "Partitions this node leads whose ISR is smaller than their replica set."),

	M(SL_M_ACTIVE_CONTROLLER, "kafka_controller_kafkacontroller_activecontrollercount",
	  SL_METRIC_GAUGE, "",
	  "1 on the node that is the active controller (a node of its own is its own), else 0. Summed over the cluster it must be 1."),
	M(SL_M_OFFLINE_PARTITIONS, "kafka_controller_kafkacontroller_offlinepartitionscount",
	  SL_METRIC_GAUGE, "",
	  "Partitions without a leader; reported by the active controller, 0 on the other nodes."),
	M(SL_M_GLOBAL_TOPICS, "kafka_controller_kafkacontroller_globaltopiccount", SL_METRIC_GAUGE, "",
	  "Topics in the cluster; reported by the active controller, 0 on the other nodes."),
	M(SL_M_GLOBAL_PARTITIONS, "kafka_controller_kafkacontroller_globalpartitioncount",
	  SL_METRIC_GAUGE, "",
	  "Partitions in the cluster; reported by the active controller, 0 on the other nodes."),

	M(SL_M_RAFT_STATE, "kafka_server_raftmetrics_current_state", SL_METRIC_GAUGE, "state",
	  "1 for this node's role in the metadata quorum (leader, follower, observer, standalone, refused, none)."),
	M(SL_M_RAFT_LEADER, "kafka_server_raftmetrics_current_leader", SL_METRIC_GAUGE, "",
	  "Node id of the quorum's leader as this node knows it, -1 if none."),
	M(SL_M_RAFT_EPOCH, "kafka_server_raftmetrics_current_epoch", SL_METRIC_GAUGE, "",
	  "The quorum's term (KRaft's epoch) as this node knows it."),
	M(SL_M_RAFT_HIGH_WATERMARK, "kafka_server_raftmetrics_high_watermark", SL_METRIC_GAUGE, "",
	  "Index of the last metadata entry the quorum committed, as this node knows it."),
	M(SL_M_RAFT_LOG_END_OFFSET, "kafka_server_raftmetrics_log_end_offset", SL_METRIC_GAUGE, "",
	  "Index of the last metadata entry in this node's Raft log."),
	M(SL_M_RAFT_APPLIED_OFFSET, "kafka_server_raftmetrics_applied_offset", SL_METRIC_GAUGE, "",
	  "Index of the last metadata entry this node applied."),

	M(SL_M_GROUP_LAG, "kafka_consumergroup_lag", SL_METRIC_GAUGE, "consumergroup,topic,partition",
	  "Records between the group's committed offset and the partition's last stable offset."),
	M(SL_M_GROUP_OFFSET, "kafka_consumergroup_current_offset", SL_METRIC_GAUGE,
	  "consumergroup,topic,partition", "The group's committed offset on the partition."),

	M(SL_M_CLEANER_MAX_DIRTY, "kafka_log_logcleanermanager_max_dirty_percent", SL_METRIC_GAUGE, "",
	  "Largest share of a compacted partition's bytes not compacted yet, in percent."),
	M(SL_M_CLEANER_UNCLEANABLE, "kafka_log_logcleanermanager_uncleanable_partitions",
	  SL_METRIC_GAUGE, "",
	  "Compacted partitions whose last compaction failed (Kafka's uncleanable-partitions-count; a gauge may not end in _count)."),
	M(SL_M_CLEANER_CLEANED_OFFSET, "kafka_log_logcleaner_cleaned_offset", SL_METRIC_GAUGE,
	  "topic,partition",
	  "Offset up to which the cleaner compacted the partition (compacted topics)."),

	M(SL_M_BYTES_IN, "kafka_server_brokertopicmetrics_bytesin", SL_METRIC_COUNTER, "topic,door",
	  "Bytes of record batches appended to the topic, by door (kafka: Produce, sql: streamlog.produce)."),
	M(SL_M_BYTES_OUT, "kafka_server_brokertopicmetrics_bytesout", SL_METRIC_COUNTER, "topic,door",
	  "Bytes of record batches read from the topic and handed out, by door (kafka: Fetch, sql: read and consume)."),
	M(SL_M_MESSAGES_IN, "kafka_server_brokertopicmetrics_messagesin", SL_METRIC_COUNTER,
	  "topic,door", "Records appended to the topic, by door."),
	M(SL_M_MESSAGES_OUT, "kafka_server_brokertopicmetrics_messagesout", SL_METRIC_COUNTER,
	  "topic,door", "Records read from the topic and handed out, by door (not in Kafka)."),
	M(SL_M_PRODUCE_REQUESTS, "kafka_server_brokertopicmetrics_totalproducerequests",
	  SL_METRIC_COUNTER, "topic,door", "Produce requests' parts for the topic (one per partition)."),
	M(SL_M_PRODUCE_FAILED, "kafka_server_brokertopicmetrics_failedproducerequests",
	  SL_METRIC_COUNTER, "topic,door", "Produce requests' parts for the topic that failed."),
	M(SL_M_FETCH_REQUESTS, "kafka_server_brokertopicmetrics_totalfetchrequests", SL_METRIC_COUNTER,
	  "topic,door", "Fetch requests' parts for the topic (one per partition)."),
	M(SL_M_FETCH_FAILED, "kafka_server_brokertopicmetrics_failedfetchrequests", SL_METRIC_COUNTER,
	  "topic,door", "Fetch requests' parts for the topic that failed."),

	M(SL_M_REQUESTS, "kafka_network_requestmetrics_requests", SL_METRIC_COUNTER, "request,version",
	  "Kafka requests answered, by API and version."),
	M(SL_M_REQUEST_ERRORS, "kafka_network_requestmetrics_errors", SL_METRIC_COUNTER, "request,error",
	  "Error codes in Kafka responses, by API and Kafka's name of the error (one per error field: a partition's, a topic's, a group's, the response's)."),
	M(SL_M_TOTAL_TIME, "kafka_network_requestmetrics_totaltimems", SL_METRIC_HISTOGRAM, "request",
	  "Time from a request received to its response sent, in milliseconds."),
	M(SL_M_QUEUE_TIME, "kafka_network_requestmetrics_requestqueuetimems", SL_METRIC_HISTOGRAM,
	  "request", "Time from a request received to its handler starting, in milliseconds."),
	M(SL_M_LOCAL_TIME, "kafka_network_requestmetrics_localtimems", SL_METRIC_HISTOGRAM, "request",
	  "Time a request's handler worked on it, in milliseconds."),
	M(SL_M_REMOTE_TIME, "kafka_network_requestmetrics_remotetimems", SL_METRIC_HISTOGRAM, "request",
	  "Time a request waited: parked (Fetch, JoinGroup, acks=all) or on another node, in milliseconds."),
	M(SL_M_SEND_TIME, "kafka_network_requestmetrics_responsesendtimems", SL_METRIC_HISTOGRAM,
	  "request", "Time from a response ready to its last byte sent, in milliseconds."),
	M(SL_M_THROTTLE_TIME, "kafka_network_requestmetrics_throttletimems", SL_METRIC_COUNTER,
	  "request", "Throttle time told to clients in responses (quotas), summed, in milliseconds."),

	M(SL_M_CONNECTIONS, "kafka_server_socketservermetrics_connections", SL_METRIC_GAUGE,
	  "listener",
	  "Kafka client connections open on the listener (Kafka's connection-count; a gauge may not end in _count)."),
	M(SL_M_CONNECTIONS_OPENED, "kafka_server_socketservermetrics_connection_creation",
	  SL_METRIC_COUNTER, "listener", "Kafka client connections accepted on the listener."),
	M(SL_M_CONNECTIONS_CLOSED, "kafka_server_socketservermetrics_connection_close",
	  SL_METRIC_COUNTER, "listener", "Kafka client connections closed on the listener."),
	M(SL_M_CONNECTIONS_REFUSED, "kafka_server_socketservermetrics_connection_refused",
	  SL_METRIC_COUNTER, "listener",
	  "Kafka client connections refused on the listener for a connection limit (not in Kafka)."),
	M(SL_M_AUTH_SUCCEEDED, "kafka_server_socketservermetrics_successful_authentication",
	  SL_METRIC_COUNTER, "listener", "SASL logins that succeeded on the listener."),
	M(SL_M_AUTH_FAILED, "kafka_server_socketservermetrics_failed_authentication", SL_METRIC_COUNTER,
	  "listener", "SASL logins that failed on the listener."),
	M(SL_M_CONNECTIONS_BY_PRINCIPAL, "streamlog_connections", SL_METRIC_GAUGE,
	  "listener,principal",
	  "Kafka client connections open now, by listener and principal (empty before login)."),

	M(SL_M_WORKER_PARKED, "streamlog_broker_parked_requests", SL_METRIC_GAUGE, "worker",
	  "Requests a broker worker holds parked now: Fetch waiting for data, JoinGroup and SyncGroup waiting for their group, acks=all produces waiting for followers (Kafka's purgatories)."),
	M(SL_M_WORKER_PARKED_BYTES, "streamlog_broker_parked_request_bytes", SL_METRIC_GAUGE, "worker",
	  "Memory the parked requests of a broker worker hold, in bytes."),
	M(SL_M_WORKER_UNSENT_BYTES, "streamlog_broker_unsent_bytes", SL_METRIC_GAUGE, "worker",
	  "Bytes of answers a broker worker wrote that its clients have not taken yet."),
	M(SL_M_WORKER_MUTED, "streamlog_broker_muted_connections", SL_METRIC_GAUGE, "worker",
	  "Connections a broker worker stopped reading for holding too many unsent answers (streamlog.max_unsent_bytes_per_worker)."),

	M(SL_M_ISR_SHRINKS, "kafka_server_replicamanager_isrshrinks", SL_METRIC_COUNTER, "",
	  "Times a partition's ISR lost a replica."),
	M(SL_M_ISR_EXPANDS, "kafka_server_replicamanager_isrexpands", SL_METRIC_COUNTER, "",
	  "Times a replica joined a partition's ISR."),
	M(SL_M_CLEANER_RUNS, "kafka_log_logcleaner_runs", SL_METRIC_COUNTER, "",
	  "Passes of the cleaner (retention and compaction)."),
	M(SL_M_CLEANER_SEGMENTS_DELETED, "kafka_log_logcleaner_deleted_segments", SL_METRIC_COUNTER, "",
	  "Segments retention dropped."),
	M(SL_M_SLOW_REQUESTS, "streamlog_slow_requests", SL_METRIC_COUNTER, "",
	  "Kafka requests logged as slow (streamlog.log_min_request_duration)."),

	M(SL_M_FETCH_SESSIONS, "kafka_server_fetchsessioncache_numincrementalfetchsessions",
	  SL_METRIC_GAUGE, "",
	  "Incremental fetch sessions (KIP-227) the broker workers hold now."),
	M(SL_M_FETCH_SESSION_PARTITIONS,
	  "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached", SL_METRIC_GAUGE, "",
	  "Partitions the incremental fetch sessions hold now, summed over the sessions."),
	M(SL_M_FETCH_SESSION_EVICTIONS,
	  "kafka_server_fetchsessioncache_incrementalfetchsessionevictions", SL_METRIC_COUNTER, "",
	  "Incremental fetch sessions evicted to make room for another (streamlog.fetch_session_cache_slots)."),

	M(SL_M_SCRAPE_SECONDS, "streamlog_metrics_scrape_duration_seconds", SL_METRIC_GAUGE, "",
	  "Time the endpoint took to read the metrics it served last."),
	M(SL_M_HTTP_REQUESTS, "streamlog_metrics_http_requests", SL_METRIC_COUNTER, "code",
	  "HTTP requests the metrics endpoint answered since it started, by status code."),
	M(SL_M_HTTP_REFUSED, "streamlog_metrics_http_closed", SL_METRIC_COUNTER, "reason",
	  "Connections the metrics endpoint closed on a client since it started: timeout, malformed, too_many, error."),
};

const char *
SlMetricTypeName(SlMetricType type)
{
	switch (type)
	{
		case SL_METRIC_COUNTER:
			return "counter";
		case SL_METRIC_GAUGE:
			return "gauge";
		case SL_METRIC_HISTOGRAM:
			return "histogram";
	}
	return "unknown";
}
