/*
 * Server settings of streamlog, all named streamlog.*.
 */
#ifndef SL_GUC_H
#define SL_GUC_H

#include "utils/memutils.h"

/*
 * Upper bounds of streamlog.max_request_size and streamlog.fetch_max_bytes.
 * A request is read into one allocation, and a Fetch response holds up to
 * fetch_max_bytes of records plus one whole first batch (KIP-74), itself no
 * larger than a request: with each bound at half of what one allocation may
 * hold, the response fits in one too.
 */
#define SL_MAX_REQUEST_SIZE_LIMIT	((int) (MaxAllocSize / 2))
#define SL_FETCH_MAX_BYTES_LIMIT	((int) (MaxAllocSize / 2))

StaticAssertDecl((Size) SL_MAX_REQUEST_SIZE_LIMIT + (Size) SL_FETCH_MAX_BYTES_LIMIT <= MaxAllocSize,
				 "a Fetch response of fetch_max_bytes plus one request-sized batch must fit in one allocation");

extern char *sl_advertised_host;
extern char *sl_advertised_listeners;
extern int	sl_advertised_port;
extern char *sl_anonymous_role;
extern bool sl_auto_create_topics;
extern int	sl_batch_bytes;
extern bool sl_page_writes;
extern char *sl_advertised_sql_conninfo;
extern int	sl_broker_heartbeat_interval_ms;
extern char *sl_broker_rack;
extern int	sl_broker_session_timeout_ms;
extern char *sl_cluster_id;
extern char *sl_controller_quorum_voters;
extern int	sl_produce_memory;
extern int	sl_broker_workers;
extern char *sl_database;
extern int	sl_connections_max_idle;
extern int	sl_connections_max_reauth;
extern int	sl_fetch_max_bytes;
extern int	sl_fetch_session_cache_slots;
extern int	sl_fetch_session_eviction_ms;
extern int	sl_default_partitions;
extern int	sl_default_replication_factor;
extern int	sl_group_initial_rebalance_delay;
extern int	sl_group_max_session_timeout;
extern int	sl_group_min_session_timeout;
extern char *sl_listen_addresses;
extern char *sl_listener_security_protocol_map;
extern char *sl_listeners;
extern int	sl_max_connections;
extern int	sl_max_connections_per_ip;
extern char *sl_max_connections_per_ip_overrides;
extern int	sl_max_group_members;
extern int	sl_max_groups;
extern int	sl_max_partitions;
extern int	sl_max_partitions_per_role;
extern int	sl_max_unauthenticated_connections;
extern int	sl_max_groups_per_role;
extern int	sl_max_producer_states;
extern int	sl_producer_id_expiration_ms;
extern int	sl_max_request_size;
extern int	sl_max_unsent_bytes_per_worker;
extern int	sl_metadata_snapshot_entries;
/* Observability: the counters, their views and the slow request log */
extern int	sl_log_min_request_duration;	/* ms, -1 off */
extern int	sl_metrics_max_connections;
extern int	sl_metrics_max_partitions;
extern bool sl_track_metrics;
extern int	sl_node_id;
extern bool sl_offsets_topic;
extern int	sl_offsets_topic_num_partitions;
extern int	sl_offsets_retention_minutes;
extern int	sl_offsets_retention_check_interval;
extern int	sl_port;
extern int	sl_raft_election_timeout_ms;
extern int	sl_raft_heartbeat_interval_ms;
extern char *sl_raft_listen_address;
extern int	sl_retention_check_interval;
extern bool sl_log_cleaner_enable;
extern int	sl_log_cleaner_dedupe_buffer_size;	/* kB */
extern int	sl_log_cleaner_io_max_bytes_per_second;	/* 0 = unlimited */
extern int	sl_log_cleaner_threads;
extern bool sl_sasl_plain_without_tls;
extern char *sl_ssl_principal_mapping_rules;

/* streamlog.replica_selector: Kafka's replica.selector.class (KIP-392) */
typedef enum SlReplicaSelector
{
	SL_REPLICA_SELECTOR_NONE,
	SL_REPLICA_SELECTOR_RACK_AWARE
} SlReplicaSelector;

extern int	sl_replica_selector;

/* streamlog.ssl_client_auth: Kafka's ssl.client.auth */
typedef enum SlSslClientAuth
{
	SL_SSL_CLIENT_AUTH_NONE,
	SL_SSL_CLIENT_AUTH_REQUESTED,
	SL_SSL_CLIENT_AUTH_REQUIRED
} SlSslClientAuth;

/* streamlog.ssl_min_protocol_version */
typedef enum SlTlsVersion
{
	SL_TLS_VERSION_1_2,
	SL_TLS_VERSION_1_3
} SlSslProtocolVersion;

extern char *sl_ssl_ca_file;
extern char *sl_ssl_cert_file;
extern char *sl_ssl_ciphers;
extern int	sl_ssl_client_auth;
extern char *sl_ssl_key_file;
extern int	sl_ssl_min_protocol_version;

/* streamlog.max_connections_per_ip_overrides, parsed */
typedef struct SlConnectionsPerIpOverride
{
	uint8		addr[16];		/* IPv6; IPv4 mapped (::ffff:a.b.c.d) */
	int			max_connections;
} SlConnectionsPerIpOverride;

typedef struct SlConnectionsPerIpOverrides
{
	int			n;
	SlConnectionsPerIpOverride items[FLEXIBLE_ARRAY_MEMBER];
} SlConnectionsPerIpOverrides;

/* streamlog.listener_max_connections, parsed */
typedef struct SlListenerLimit
{
	char		name[64];		/* upper case */
	int			max_connections;
} SlListenerLimit;

typedef struct SlListenerLimits
{
	int			n;
	SlListenerLimit items[FLEXIBLE_ARRAY_MEMBER];
} SlListenerLimits;

extern char *sl_listener_max_connections;

/* Most connections on the listener of this name, or -1 for no limit */
extern int	SlListenerMaxConnections(const char *listener);

/*
 * Most connections from addr (16 bytes, IPv4 mapped): its override, or
 * streamlog.max_connections_per_ip
 */
extern int	SlMaxConnectionsForAddress(const uint8 *addr);

/*
 * streamlog.controller_quorum_voters, parsed: "id@host:port, ..." as
 * Kafka's controller.quorum.voters (empty: standalone)
 */
#define SL_MAX_QUORUM_VOTERS 16
#define SL_RAFT_ADDRESS_MAX 128

typedef struct SlQuorumVoter
{
	int32		node_id;
	char		address[SL_RAFT_ADDRESS_MAX];	/* host:port */
} SlQuorumVoter;

typedef struct SlQuorumVoters
{
	int			n;
	SlQuorumVoter items[SL_MAX_QUORUM_VOTERS];
} SlQuorumVoters;

/* The parsed voters (n = 0 when standalone) */
extern const SlQuorumVoters *SlQuorumVotersGet(void);

/* Replicated partitions, the leader's side (replica_progress.h) */
#define SL_MAX_REPLICAS_GUC 8	/* SL_MAX_REPLICAS */
extern int	sl_min_insync_replicas;
extern int	sl_replica_lag_time_max_ms;
extern int	sl_offsets_commit_timeout_ms;

/* Replicated partitions, the follower's side (replstream) */
extern bool sl_replica_apply;

/* Kafka transactions, the coordinator (server/txn/coordinator.c) */
extern bool sl_transaction_coordinator;
extern int	sl_transaction_max_timeout_ms;
extern int	sl_transactional_id_expiration_ms;
extern int	sl_transaction_state_topic_num_partitions;
extern bool sl_transaction_markers_hold;
extern bool sl_group_load_hold;

/* The Prometheus endpoint (bgworkers/metrics_http.c) */
extern char *sl_metrics_listen;
extern int	sl_metrics_request_timeout_ms;

extern void SlDefineGucs(void);

#endif							/* SL_GUC_H */
