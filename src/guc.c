/*
 * Definitions of the streamlog.* settings, sorted by name.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>

#include "utils/guc.h"
#include "utils/memutils.h"

#include "streamlog/guc.h"
#include "streamlog/shmem.h"

char	   *sl_advertised_host = NULL;
char	   *sl_anonymous_role = NULL;
char	   *sl_advertised_listeners = NULL;
int			sl_advertised_port = 0;
bool		sl_auto_create_topics = true;
int			sl_batch_bytes = 256 * 1024;
bool		sl_page_writes = true;
char	   *sl_advertised_sql_conninfo = NULL;
int			sl_broker_heartbeat_interval_ms = 500;
char	   *sl_broker_rack = NULL;
int			sl_broker_session_timeout_ms = 6000;
char	   *sl_cluster_id = NULL;
char	   *sl_controller_quorum_voters = NULL;
static const SlQuorumVoters *quorum_voters = NULL;
int			sl_produce_memory = 64 * 1024;	/* kB */
int			sl_broker_workers = 2;
char	   *sl_database = NULL;
int			sl_default_partitions = 1;
/* replicated partitions, the controller's side */
int			sl_default_replication_factor = 1;
int			sl_connections_max_idle = 600000;
int			sl_connections_max_reauth = 0;
int			sl_fetch_max_bytes = 55 * 1024 * 1024;
int			sl_fetch_session_cache_slots = 1000;
int			sl_fetch_session_eviction_ms = 120000;
int			sl_group_initial_rebalance_delay = 3000;
int			sl_group_max_session_timeout = 1800000;
int			sl_group_min_session_timeout = 6000;
char	   *sl_listen_addresses = NULL;
char	   *sl_listener_security_protocol_map = NULL;
char	   *sl_listeners = NULL;
int			sl_max_connections = 1000;
int			sl_max_connections_per_ip = INT_MAX;
char	   *sl_max_connections_per_ip_overrides = NULL;
const SlConnectionsPerIpOverrides *sl_connections_per_ip_overrides = NULL;
char	   *sl_listener_max_connections = NULL;
static const SlListenerLimits *listener_limits = NULL;
int			sl_max_group_members = 4096;
int			sl_max_groups = 1024;
int			sl_max_partitions = 4096;
int			sl_max_partitions_per_role = 0;
int			sl_max_unauthenticated_connections = 0;
int			sl_max_groups_per_role = 0;
int			sl_max_producer_states = 16384;
int			sl_producer_id_expiration_ms = 86400000;
int			sl_max_request_size = 100 * 1024 * 1024;
int			sl_max_unsent_bytes_per_worker = 256 * 1024 * 1024;
int			sl_metadata_snapshot_entries = 1024;

/* Observability: the counters, their views and the slow request log */
int			sl_log_min_request_duration = -1;
int			sl_metrics_max_connections = 1000;
int			sl_metrics_max_partitions = 4096;
bool		sl_track_metrics = true;
int			sl_node_id = 1;
bool		sl_offsets_topic = true;
int			sl_offsets_topic_num_partitions = 50;

/* Kafka transactions, the coordinator */
bool		sl_transaction_coordinator = true;
int			sl_transaction_max_timeout_ms = 900000;
int			sl_transactional_id_expiration_ms = 604800000;
int			sl_transaction_state_topic_num_partitions = 50;
bool		sl_transaction_markers_hold = false;
bool		sl_group_load_hold = false;
int			sl_offsets_retention_minutes = 10080;
int			sl_offsets_retention_check_interval = 600000;
int			sl_port = 9092;
int			sl_raft_election_timeout_ms = 1000;
int			sl_raft_heartbeat_interval_ms = 100;
char	   *sl_raft_listen_address = NULL;
int			sl_retention_check_interval = 30000;
bool		sl_log_cleaner_enable = true;
int			sl_log_cleaner_dedupe_buffer_size = 128 * 1024;
int			sl_log_cleaner_io_max_bytes_per_second = 0;
int			sl_log_cleaner_threads = 1;
bool		sl_sasl_plain_without_tls = false;
char	   *sl_ssl_principal_mapping_rules = NULL;
char	   *sl_ssl_ca_file = NULL;
char	   *sl_ssl_cert_file = NULL;
char	   *sl_ssl_ciphers = NULL;
int			sl_ssl_client_auth = SL_SSL_CLIENT_AUTH_NONE;
char	   *sl_ssl_key_file = NULL;
int			sl_ssl_min_protocol_version = SL_TLS_VERSION_1_2;
/* Replicated partitions, the leader's side */
int			sl_min_insync_replicas = 1;
int			sl_replica_lag_time_max_ms = 10000;
/* SQL consume() on any node (issue 13): offsets.commit.timeout.ms */
int			sl_offsets_commit_timeout_ms = 5000;

/* Replicated partitions, the follower's side */
bool		sl_replica_apply = true;

/* The Prometheus endpoint (bgworkers/metrics_http.c) */
char	   *sl_metrics_listen = NULL;
int			sl_metrics_request_timeout_ms = 10000;

/* streamlog.replica_selector (reads from the nearest replica) */
static const struct config_enum_entry replica_selector_options[] = {
	{"none", SL_REPLICA_SELECTOR_NONE, false},
	{"rack-aware", SL_REPLICA_SELECTOR_RACK_AWARE, false},
	{NULL, 0, false}
};

int			sl_replica_selector = SL_REPLICA_SELECTOR_NONE;

static const struct config_enum_entry ssl_client_auth_options[] = {
	{"none", SL_SSL_CLIENT_AUTH_NONE, false},
	{"requested", SL_SSL_CLIENT_AUTH_REQUESTED, false},
	{"required", SL_SSL_CLIENT_AUTH_REQUIRED, false},
	{NULL, 0, false}
};

/* PostgreSQL's spellings; nothing older than TLS 1.2 */
static const struct config_enum_entry ssl_protocol_options[] = {
	{"TLSv1.2", SL_TLS_VERSION_1_2, false},
	{"TLSv1.3", SL_TLS_VERSION_1_3, false},
	{NULL, 0, false}
};

/*
 * Parse one address of streamlog.max_connections_per_ip_overrides, an IPv4
 * or IPv6 address ("[...]" allowed around the latter), as IPv6, IPv4
 * addresses mapped (::ffff:a.b.c.d), as the broker compares them
 */
static bool
parse_override_address(char *text, uint8 *addr)
{
	struct in_addr v4;
	size_t		len = strlen(text);

	if (len >= 2 && text[0] == '[' && text[len - 1] == ']')
	{
		text[len - 1] = '\0';
		text++;
	}
	if (inet_pton(AF_INET, text, &v4) == 1)
	{
		memset(addr, 0, 10);
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &v4, 4);
		return true;
	}
	return inet_pton(AF_INET6, text, addr) == 1;
}

/*
 * A setting written "key:count, key:count, ...", cut into its entries; the
 * keys point into text, a copy of the setting
 */
typedef struct CountList
{
	char	   *text;
	int			n;
	struct
	{
		char	   *key;
		int			count;
	}		   *entries;
} CountList;

/* An item of a comma-separated setting without its surrounding blanks */
static char *
trim_list_item(char *item)
{
	char	   *end;

	while (*item == ' ' || *item == '\t')
		item++;
	end = item + strlen(item);
	while (end > item && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return item;
}

static void
free_count_list(CountList *list)
{
	pfree(list->text);
	pfree(list->entries);
}

/*
 * Cut value into its entries (what is empty is skipped); the count is
 * after the last colon, since an IPv6 address has colons of its own.
 * key_name names a key in the messages ("address", "listener").  false,
 * with GUC_check_errdetail set, if an entry is not key:count.
 */
static bool
parse_count_list(const char *value, const char *key_name, CountList *list)
{
	char	   *saveptr = NULL;
	int			max_items = 1;

	list->text = pstrdup(value ? value : "");
	for (const char *c = list->text; *c; c++)
		max_items += *c == ',';
	list->entries = palloc(sizeof(*list->entries) * max_items);
	list->n = 0;
	for (char *item = strtok_r(list->text, ",", &saveptr); item != NULL;
		 item = strtok_r(NULL, ",", &saveptr))
	{
		char	   *colon;
		char	   *end;
		long		count;

		item = trim_list_item(item);
		if (*item == '\0')
			continue;
		colon = strrchr(item, ':');
		if (colon == NULL || colon == item)
		{
			GUC_check_errdetail("Entry \"%s\" is not %s:count.", item, key_name);
			free_count_list(list);
			return false;
		}
		*colon = '\0';
		errno = 0;
		count = strtol(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || errno != 0 || count < 0 || count > INT_MAX)
		{
			GUC_check_errdetail("The count of %s \"%s\" must be an integer from 0 to %d.",
								key_name, item, INT_MAX);
			free_count_list(list);
			return false;
		}
		list->entries[list->n].key = item;
		list->entries[list->n].count = (int) count;
		list->n++;
	}
	return true;
}

/*
 * streamlog.max_connections_per_ip_overrides: "address:count, ..." as
 * Kafka's max.connections.per.ip.overrides, but addresses only (a host name
 * would be resolved at each reload, and what it resolves to may change
 * under the counts).  The parsed list is the setting's extra.
 */
static bool
check_connections_per_ip_overrides(char **newval, void **extra, GucSource source)
{
	CountList	list;
	SlConnectionsPerIpOverrides *parsed;

	if (!parse_count_list(*newval, "address", &list))
		return false;
	parsed = malloc(offsetof(SlConnectionsPerIpOverrides, items) +
					sizeof(SlConnectionsPerIpOverride) * Max(list.n, 1));
	if (parsed == NULL)
	{
		free_count_list(&list);
		return false;
	}
	parsed->n = list.n;
	for (int i = 0; i < list.n; i++)
	{
		if (!parse_override_address(list.entries[i].key, parsed->items[i].addr))
		{
			GUC_check_errdetail("\"%s\" is not an IPv4 or IPv6 address.", list.entries[i].key);
			free_count_list(&list);
			free(parsed);
			return false;
		}
		parsed->items[i].max_connections = list.entries[i].count;
	}
	free_count_list(&list);
	*extra = parsed;
	return true;
}

static void
assign_connections_per_ip_overrides(const char *newval, void *extra)
{
	sl_connections_per_ip_overrides = extra;
}

int
SlMaxConnectionsForAddress(const uint8 *addr)
{
	const SlConnectionsPerIpOverrides *o = sl_connections_per_ip_overrides;

	for (int i = 0; o != NULL && i < o->n; i++)
		if (memcmp(o->items[i].addr, addr, 16) == 0)
			return o->items[i].max_connections;
	return sl_max_connections_per_ip;
}

/*
 * streamlog.listener_max_connections: "NAME:count, ..." as Kafka's
 * listener.name.NAME.max.connections; names compared in upper case, as
 * listeners are named.  The parsed list is the setting's extra.
 */
static bool
check_listener_max_connections(char **newval, void **extra, GucSource source)
{
	CountList	list;
	SlListenerLimits *parsed;

	if (!parse_count_list(*newval, "listener", &list))
		return false;
	parsed = malloc(offsetof(SlListenerLimits, items) + sizeof(SlListenerLimit) * Max(list.n, 1));
	if (parsed == NULL)
	{
		free_count_list(&list);
		return false;
	}
	parsed->n = list.n;
	for (int i = 0; i < list.n; i++)
	{
		SlListenerLimit *limit = &parsed->items[i];
		const char *key = list.entries[i].key;
		size_t		len = strlen(key);

		if (len >= sizeof(limit->name))
		{
			GUC_check_errdetail("Listener name \"%s\" is too long.", key);
			free_count_list(&list);
			free(parsed);
			return false;
		}
		for (size_t k = 0; k < len; k++)
			limit->name[k] = pg_toupper((unsigned char) key[k]);
		limit->name[len] = '\0';
		limit->max_connections = list.entries[i].count;
	}
	free_count_list(&list);
	*extra = parsed;
	return true;
}

static void
assign_listener_max_connections(const char *newval, void *extra)
{
	listener_limits = extra;
}

int
SlListenerMaxConnections(const char *listener)
{
	for (int i = 0; listener_limits != NULL && i < listener_limits->n; i++)
		if (strcmp(listener_limits->items[i].name, listener) == 0)
			return listener_limits->items[i].max_connections;
	return -1;
}

/*
 * Is text a Raft address, host:port with a port from 1 to 65535?  (An IPv6
 * host is written in brackets.)
 */
static bool
valid_raft_address(const char *text)
{
	const char *colon = strrchr(text, ':');
	char	   *end;
	long		port;

	if (colon == NULL || colon == text || strlen(text) >= SL_RAFT_ADDRESS_MAX)
		return false;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	return colon[1] != '\0' && *end == '\0' && errno == 0 && port >= 1 && port <= 65535;
}

/*
 * streamlog.controller_quorum_voters: "id@host:port, ..." as Kafka's
 * controller.quorum.voters; the parsed list is the setting's extra.  Ids
 * unique, at most SL_MAX_QUORUM_VOTERS.
 */
static bool
check_quorum_voters(char **newval, void **extra, GucSource source)
{
	SlQuorumVoters *parsed = calloc(1, sizeof(SlQuorumVoters));
	char	   *text;
	char	   *saveptr = NULL;

	if (parsed == NULL)
		return false;
	text = pstrdup(*newval ? *newval : "");
	for (char *item = strtok_r(text, ",", &saveptr); item != NULL;
		 item = strtok_r(NULL, ",", &saveptr))
	{
		char	   *at;
		char	   *end;
		long		id;

		item = trim_list_item(item);
		if (*item == '\0')
			continue;
		at = strchr(item, '@');
		if (at == NULL)
		{
			GUC_check_errdetail("Voter \"%s\" is not id@host:port.", item);
			goto fail;
		}
		*at = '\0';
		errno = 0;
		id = strtol(item, &end, 10);
		if (item[0] == '\0' || *end != '\0' || errno != 0 || id < 0 || id > INT_MAX)
		{
			GUC_check_errdetail("Voter id \"%s\" is not an integer from 0 to %d.", item, INT_MAX);
			goto fail;
		}
		if (!valid_raft_address(at + 1))
		{
			GUC_check_errdetail("Address \"%s\" of voter %ld is not host:port.", at + 1, id);
			goto fail;
		}
		for (int i = 0; i < parsed->n; i++)
			if (parsed->items[i].node_id == (int32) id)
			{
				GUC_check_errdetail("Voter %ld is named twice.", id);
				goto fail;
			}
		if (parsed->n == SL_MAX_QUORUM_VOTERS)
		{
			GUC_check_errdetail("At most %d voters are allowed.", SL_MAX_QUORUM_VOTERS);
			goto fail;
		}
		parsed->items[parsed->n].node_id = (int32) id;
		strlcpy(parsed->items[parsed->n].address, at + 1, SL_RAFT_ADDRESS_MAX);
		parsed->n++;
	}
	pfree(text);
	*extra = parsed;
	return true;

fail:
	pfree(text);
	free(parsed);
	return false;
}

static void
assign_quorum_voters(const char *newval, void *extra)
{
	quorum_voters = extra;
}

const SlQuorumVoters *
SlQuorumVotersGet(void)
{
	static const SlQuorumVoters none = {0};

	return quorum_voters ? quorum_voters : &none;
}

/* streamlog.raft_listen_address: empty or host:port */
static bool
check_raft_listen_address(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' || valid_raft_address(*newval))
		return true;
	GUC_check_errdetail("\"%s\" is not host:port.", *newval);
	return false;
}

/* streamlog.cluster_id: what fits the Raft directory's identity file */
static bool
check_cluster_id(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL)
		return true;
	if (strlen(*newval) >= 64)
	{
		GUC_check_errdetail("A cluster id has at most 63 characters.");
		return false;
	}
	for (const char *c = *newval; *c; c++)
		if (!(isalnum((unsigned char) *c) || *c == '-' || *c == '_'))
		{
			GUC_check_errdetail("A cluster id is made of letters, digits, '-' and '_'.");
			return false;
		}
	return true;
}

void
SlDefineGucs(void)
{
	DefineCustomStringVariable("streamlog.advertised_host",
							   "Host name the broker gives Kafka clients to connect to.",
							   "Empty: the first of streamlog.listen_addresses, or localhost "
							   "if that is a wildcard.",
							   &sl_advertised_host,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.advertised_listeners",
							   "Addresses Kafka clients are told to connect to, per listener "
							   "(advertised.listeners): NAME://host:port, comma-separated.",
							   "A listener not named here advertises its own address "
							   "(localhost if it binds every interface).",
							   &sl_advertised_listeners,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.advertised_port",
							"Port the broker gives Kafka clients to connect to; 0 = streamlog.port.",
							NULL,
							&sl_advertised_port,
							0, 0, 65535,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.advertised_sql_conninfo",
							   "How other nodes of a cluster reach this node's SQL (libpq conninfo).",
							   "Empty: host=<first of listen_addresses or 127.0.0.1> port=<port> "
							   "dbname=<streamlog.database>.",
							   &sl_advertised_sql_conninfo,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.anonymous_role",
							   "Role that Kafka clients without credentials act as, on listeners without SASL.",
							   "Empty: clients on this machine act as the bootstrap superuser "
							   "and others are refused. A client with a verified TLS "
							   "certificate acts as the role its certificate names instead.",
							   &sl_anonymous_role,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("streamlog.auto_create_topics",
							 "Create unknown topics on Metadata and Produce requests (auto.create.topics.enable).",
							 NULL,
							 &sl_auto_create_topics,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.batch_bytes",
							"Target size of the record batches that SQL produce() writes.",
							"Records produced by SQL in one transaction are packed into "
							"batches of about this many bytes (before compression), "
							"capped by the topic's max.message.bytes.",
							&sl_batch_bytes,
							256 * 1024, 1024, 64 * 1024 * 1024,
							PGC_USERSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("streamlog.page_writes",
							 "Writes the pieces of batches that fill a page as whole pages.",
							 "Appended batches are built into pages in memory, WAL-logged "
							 "as page images and added to the segment in one extension, "
							 "instead of one heap insert per piece. Never with "
							 "wal_level = logical, whose decoding needs heap inserts.",
							 &sl_page_writes,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.broker_heartbeat_interval_ms",
							"Time between two heartbeats of this node to the controller (broker.heartbeat.interval.ms).",
							NULL,
							&sl_broker_heartbeat_interval_ms,
							500, 10, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.broker_rack",
							   "Rack of this node (broker.rack), for the rack-aware spread of replicas.",
							   NULL,
							   &sl_broker_rack,
							   "",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.broker_session_timeout_ms",
							"A node the controller has not heard from for this long is fenced (broker.session.timeout.ms).",
							NULL,
							&sl_broker_session_timeout_ms,
							6000, 100, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.produce_memory",
							"Memory a transaction's produced records may take before they go to a temporary file.",
							"Records produced by SQL are encoded into batches and kept "
							"until commit; past this much, further batches wait in a "
							"temporary file, so a transaction of any size stays within "
							"bounded memory.",
							&sl_produce_memory,
							64 * 1024, 1024, MAX_KILOBYTES,
							PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.broker_workers",
							"Number of background workers serving the Kafka protocol; they share the port.",
							NULL,
							&sl_broker_workers,
							2, 1, SL_MAX_BROKERS,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.producer_id_expiration_ms",
							"How long the log cleaner keeps an idle idempotent producer's last batch "
							"(producer.id.expiration.ms).",
							"Compaction keeps each producer's last batch, emptied if its records go, "
							"so that its sequence state outlives them, unless it was appended longer "
							"ago than this; 0 keeps none.",
							&sl_producer_id_expiration_ms,
							86400000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.connections_max_idle",
							"Close Kafka client connections idle this long (connections.max.idle.ms); 0 = never.",
							"Idle: nothing received or sent and no request waiting for its answer.",
							&sl_connections_max_idle,
							600000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.connections_max_reauth",
							"Lifetime of a SASL login before the client must re-authenticate "
							"(connections.max.reauth.ms, KIP-368); 0 = no limit.",
							"Clients learn it from SaslAuthenticate v1 and re-authenticate on "
							"the open connection; a request after it ends closes the connection.",
							&sl_connections_max_reauth,
							0, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.cluster_id",
							   "Id of the cluster this node belongs to; required with "
							   "streamlog.controller_quorum_voters.",
							   "Stored in the Raft directory on first start; a node whose "
							   "directory names another cluster refuses to join.",
							   &sl_cluster_id,
							   "",
							   PGC_POSTMASTER, 0,
							   check_cluster_id, NULL, NULL);

	DefineCustomStringVariable("streamlog.controller_quorum_voters",
							   "Raft voters of the metadata quorum, as 'id@host:port, ...' "
							   "(controller.quorum.voters); empty: a standalone node.",
							   "Every node of a cluster sets the same list.",
							   &sl_controller_quorum_voters,
							   "",
							   PGC_POSTMASTER, 0,
							   check_quorum_voters, assign_quorum_voters, NULL);

	DefineCustomStringVariable("streamlog.database",
							   "Database whose topics the background workers serve.",
							   NULL,
							   &sl_database,
							   "postgres",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.default_partitions",
							"Partitions of automatically created topics (num.partitions).",
							NULL,
							&sl_default_partitions,
							1, 1, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.group_initial_rebalance_delay",
							"Time the first rebalance of an empty consumer group waits for more members "
							"(group.initial.rebalance.delay.ms).",
							NULL,
							&sl_group_initial_rebalance_delay,
							3000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.group_max_session_timeout",
							"Longest session timeout a consumer group member may ask for "
							"(group.max.session.timeout.ms).",
							NULL,
							&sl_group_max_session_timeout,
							1800000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.group_min_session_timeout",
							"Shortest session timeout a consumer group member may ask for "
							"(group.min.session.timeout.ms).",
							NULL,
							&sl_group_min_session_timeout,
							6000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.listen_addresses",
							   "Addresses the Kafka listener binds to (comma-separated; * for all).",
							   NULL,
							   &sl_listen_addresses,
							   "localhost",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.listener_security_protocol_map",
							   "Security protocol of each listener name (listener.security.protocol.map): "
							   "NAME:PROTOCOL, comma-separated.",
							   "Protocols: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL.",
							   &sl_listener_security_protocol_map,
							   "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.listeners",
							   "Kafka listeners (listeners): NAME://host:port, comma-separated; "
							   "an empty host binds every interface.",
							   "Empty: one PLAINTEXT listener on streamlog.listen_addresses and "
							   "streamlog.port.",
							   &sl_listeners,
							   "",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.listener_max_connections",
							   "Most Kafka connections on a listener, over all broker workers, as 'NAME:count, ...' (listener.name.NAME.max.connections).",
							   NULL,
							   &sl_listener_max_connections,
							   "",
							   PGC_SIGHUP, 0,
							   check_listener_max_connections,
							   assign_listener_max_connections, NULL);

	DefineCustomIntVariable("streamlog.log_cleaner_dedupe_buffer_size",
							"Memory of the log cleaner's offset map of keys (log.cleaner.dedupe.buffer.size).",
							"Keys of a compacted partition's dirty part beyond what it holds are cleaned by later passes.",
							&sl_log_cleaner_dedupe_buffer_size,
							128 * 1024, 1, (int) ((MaxAllocSize - 1) / 1024),
							PGC_SIGHUP, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("streamlog.log_cleaner_enable",
							 "Whether the cleaner compacts topics whose cleanup.policy has compact (log.cleaner.enable).",
							 "Off, compacted topics are only cleaned by streamlog.clean(); retention runs either way.",
							 &sl_log_cleaner_enable,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.log_cleaner_io_max_bytes_per_second",
							"Bytes per second the log cleaner reads and writes at most (log.cleaner.io.max.bytes.per.second); 0 is unlimited.",
							NULL,
							&sl_log_cleaner_io_max_bytes_per_second,
							0, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.log_cleaner_threads",
							"Background workers that compact topics (log.cleaner.threads), each one partition at a time.",
							NULL,
							&sl_log_cleaner_threads,
							1, 1, 32,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.max_connections",
							"Most Kafka client connections per broker worker.",
							NULL,
							&sl_max_connections,
							1000, 1, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.max_connections_per_ip",
							"Most Kafka connections from one client address, over all broker workers (max.connections.per.ip).",
							NULL,
							&sl_max_connections_per_ip,
							INT_MAX, 0, INT_MAX,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.max_connections_per_ip_overrides",
							   "Per-address exceptions to streamlog.max_connections_per_ip, as 'address:count, ...' (max.connections.per.ip.overrides).",
							   NULL,
							   &sl_max_connections_per_ip_overrides,
							   "",
							   PGC_SIGHUP, 0,
							   check_connections_per_ip_overrides,
							   assign_connections_per_ip_overrides, NULL);

	DefineCustomIntVariable("streamlog.max_group_members",
							"Most members of Kafka consumer groups, over all groups, kept in shared memory.",
							NULL,
							&sl_max_group_members,
							4096, 16, 1000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.max_groups",
							"Most Kafka consumer groups whose membership is kept in shared memory.",
							"Groups without members are forgotten first when it is full; "
							"their committed offsets stay.",
							&sl_max_groups,
							1024, 1, 1000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.max_groups_per_role",
							"Most Kafka consumer groups with members that one role created; 0 for no limit.",
							"Superusers are not counted.",
							&sl_max_groups_per_role,
							0, 0, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.max_partitions",
							"Most partitions, over all topics, whose state is kept in shared memory.",
							NULL,
							&sl_max_partitions,
							4096, 16, 1000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.max_partitions_per_role",
							"Most partitions of the topics one role owns; 0 for no limit.",
							"Superusers are not counted.",
							&sl_max_partitions_per_role,
							0, 0, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.max_producer_states",
							"Most (partition, idempotent producer) sequence states kept in shared memory.",
							NULL,
							&sl_max_producer_states,
							16384, 16, 10000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	/* bounded so that a response fits in one allocation: see guc.h */
	DefineCustomIntVariable("streamlog.fetch_max_bytes",
							"Most record bytes one Fetch response carries (Kafka's fetch.max.bytes).",
							"A client asking for more gets this much; the first batch of a "
							"response is returned whole even if larger.",
							&sl_fetch_max_bytes,
							55 * 1024 * 1024, 1024, SL_FETCH_MAX_BYTES_LIMIT,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.fetch_session_cache_slots",
							"Incremental fetch sessions the broker keeps "
							"(max.incremental.fetch.session.cache.slots, KIP-227); 0 = none.",
							"Split evenly over the broker workers, each of which keeps the "
							"sessions of its own connections; a full cache evicts as Kafka's does.",
							&sl_fetch_session_cache_slots,
							1000, 0, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.fetch_session_eviction_ms",
							"A fetch session unused this long may be evicted for a new one; "
							"consumers' sessions younger than this are kept.",
							"Kafka's fixed minimum incremental fetch session eviction time.",
							&sl_fetch_session_eviction_ms,
							120000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.max_request_size",
							"Largest Kafka request accepted (socket.request.max.bytes).",
							NULL,
							&sl_max_request_size,
							100 * 1024 * 1024, 1024, SL_MAX_REQUEST_SIZE_LIMIT,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.max_unauthenticated_connections",
							"Most connections on SASL listeners that have not authenticated yet, per broker worker; 0 for no limit.",
							NULL,
							&sl_max_unauthenticated_connections,
							0, 0, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.max_unsent_bytes_per_worker",
							"Most bytes of answers a broker worker holds for clients that do not read them.",
							"Past it, the connections holding unsent answers are muted until they "
							"drain; the others are still served, with smaller fetches.",
							&sl_max_unsent_bytes_per_worker,
							256 * 1024 * 1024, 1024 * 1024, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.metadata_snapshot_entries",
							"Entries of the metadata log between two snapshots of the metadata image.",
							NULL,
							&sl_metadata_snapshot_entries,
							1024, 16, INT_MAX,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	/* Observability (metrics/counters.c, metrics/connections.c) */
	DefineCustomIntVariable("streamlog.log_min_request_duration",
							"Log Kafka requests that took at least this long, with their client, "
							"topics and time split (like log_min_duration_statement).",
							"-1 logs none, 0 logs every request.",
							&sl_log_min_request_duration,
							-1, -1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.metrics_max_connections",
							"Kafka connections streamlog.stat_connections can show, over all broker workers.",
							"Connections beyond are served all the same, only not shown.",
							&sl_metrics_max_connections,
							1000, 16, 1000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.metrics_max_partitions",
							"Partitions, over all databases, that the shared counters count one by one.",
							"What is counted for partitions beyond goes to one overflow row of streamlog.stat_topics.",
							&sl_metrics_max_partitions,
							4096, 16, 1000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("streamlog.track_metrics",
							 "Count requests, bytes, records and connections in shared memory "
							 "(streamlog.stat_* views, metrics endpoint).",
							 NULL,
							 &sl_track_metrics,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	/* __consumer_offsets (storage/offsets_topic.c) */
	DefineCustomBoolVariable("streamlog.offsets_topic",
							 "Write committed offsets and group metadata to the internal topic __consumer_offsets.",
							 "Off, commits only update streamlog.group_offset: Kafka tools that "
							 "read __consumer_offsets miss the changes made meanwhile.",
							 &sl_offsets_topic,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.offsets_topic_num_partitions",
							"Partitions of __consumer_offsets when it is created (offsets.topic.num.partitions).",
							"Read once, when the first commit creates the topic.",
							&sl_offsets_topic_num_partitions,
							50, 1, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.offsets_retention_minutes",
							"How long committed offsets of a group without members are kept (offsets.retention.minutes).",
							NULL,
							&sl_offsets_retention_minutes,
							10080, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.offsets_retention_check_interval",
							"Time between two passes that expire committed offsets (offsets.retention.check.interval.ms).",
							NULL,
							&sl_offsets_retention_check_interval,
							600000, 100, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.node_id",
							"Broker id of this server in Kafka metadata.",
							NULL,
							&sl_node_id,
							1, 0, INT_MAX,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.port",
							"TCP port of the Kafka listener when streamlog.listeners is empty; 0 turns it off.",
							NULL,
							&sl_port,
							9092, 0, 65535,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.raft_election_timeout_ms",
							"Time a Raft follower waits for the leader before it starts an election, on average.",
							"Each wait is drawn between 2/3 and 4/3 of this, so that a dead leader "
							"is replaced within about 4/3 of it.",
							&sl_raft_election_timeout_ms,
							1000, 50, 600000,
							PGC_POSTMASTER, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.raft_heartbeat_interval_ms",
							"Time between two heartbeats of the Raft leader to its followers.",
							NULL,
							&sl_raft_heartbeat_interval_ms,
							100, 10, 600000,
							PGC_POSTMASTER, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.raft_listen_address",
							   "host:port of this node's Raft listener (TCP for Raft, UDP for heartbeats).",
							   "Empty: this node's entry in streamlog.controller_quorum_voters; "
							   "required for a node that is not a voter.",
							   &sl_raft_listen_address,
							   "",
							   PGC_POSTMASTER, 0,
							   check_raft_listen_address, NULL, NULL);

	DefineCustomIntVariable("streamlog.retention_check_interval",
							"Time between two retention passes of the cleaner (log.retention.check.interval.ms).",
							NULL,
							&sl_retention_check_interval,
							30000, 100, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("streamlog.sasl_plain_without_tls",
							 "Allow SASL PLAIN on listeners without TLS (SASL_PLAINTEXT).",
							 "PLAIN sends the password itself: off, only SCRAM is offered "
							 "there.",
							 &sl_sasl_plain_without_tls,
							 false,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.ssl_ca_file",
							   "CA certificates that client certificates of the Kafka TLS listeners are checked against.",
							   "Empty: PostgreSQL's ssl_ca_file.",
							   &sl_ssl_ca_file,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.ssl_cert_file",
							   "Certificate of the Kafka TLS listeners (SSL, SASL_SSL).",
							   "Empty: PostgreSQL's ssl_cert_file, one certificate for both doors.",
							   &sl_ssl_cert_file,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.ssl_ciphers",
							   "TLS 1.2 cipher suites the Kafka TLS listeners allow (OpenSSL syntax).",
							   "Empty: PostgreSQL's ssl_ciphers.",
							   &sl_ssl_ciphers,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomEnumVariable("streamlog.ssl_client_auth",
							 "Whether Kafka TLS clients must present a certificate (ssl.client.auth).",
							 "none, requested (checked if presented) or required.",
							 &sl_ssl_client_auth,
							 SL_SSL_CLIENT_AUTH_NONE,
							 ssl_client_auth_options,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.ssl_principal_mapping_rules",
							   "How a client certificate's subject names its role (ssl.principal.mapping.rules).",
							   "Kafka's syntax: RULE:pattern/replacement/[LU] or DEFAULT (the whole "
							   "subject), comma-separated, the first match wins. Empty: the subject's CN, "
							   "as PostgreSQL's cert authentication.",
							   &sl_ssl_principal_mapping_rules,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("streamlog.ssl_key_file",
							   "Private key of the Kafka TLS listeners' certificate.",
							   "Empty: PostgreSQL's ssl_key_file.",
							   &sl_ssl_key_file,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomEnumVariable("streamlog.ssl_min_protocol_version",
							 "Oldest TLS version the Kafka TLS listeners accept.",
							 NULL,
							 &sl_ssl_min_protocol_version,
							 SL_TLS_VERSION_1_2,
							 ssl_protocol_options,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	/* Replicated partitions, the leader's side (issue 13) */
	DefineCustomIntVariable("streamlog.min_insync_replicas",
							"Fewest in-sync replicas an acks=all produce needs (min.insync.replicas).",
							"The default of topics that do not set min.insync.replicas; with fewer "
							"replicas in sync, acks=all produces are refused with NOT_ENOUGH_REPLICAS "
							"and nothing is written.",
							&sl_min_insync_replicas,
							1, 1, SL_MAX_REPLICAS_GUC,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.replica_lag_time_max_ms",
							"How long a follower may stay behind before it leaves the ISR (replica.lag.time.max.ms).",
							"A follower that has not caught up with the leader's log end for this "
							"long is removed from the in-sync replicas.",
							&sl_replica_lag_time_max_ms,
							10000, 100, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	/* SQL consume() on any node (issue 13) */
	DefineCustomIntVariable("streamlog.offsets_commit_timeout_ms",
							"How long a SQL offset commit waits for its replication (offsets.commit.timeout.ms).",
							"On a cluster, COMMIT of a transaction that moved a group's offsets returns "
							"once the group's partition of __consumer_offsets holds them on its in-sync "
							"replicas, or after this long with a WARNING.",
							&sl_offsets_commit_timeout_ms,
							5000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	/* Replicated partitions, the follower's side (issue 13) */
	DefineCustomBoolVariable("streamlog.replica_apply",
							 "Follow the leaders of this node's replicas: stream and apply their appends.",
							 "Off stops this node's apply workers: it falls behind its leaders and "
							 "leaves their ISRs; on again, it catches up.",
							 &sl_replica_apply,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	/* Replicated partitions, reads from the nearest replica (KIP-392) */
	DefineCustomEnumVariable("streamlog.replica_selector",
							 "How a leader points consumers to a follower (replica.selector.class).",
							 "none: every consumer reads from the leader unless it fetches from a "
							 "follower itself; rack-aware: a consumer whose client.rack holds an "
							 "in-sync follower and not the leader is told to fetch from it "
							 "(Kafka's RackAwareReplicaSelector).",
							 &sl_replica_selector,
							 SL_REPLICA_SELECTOR_NONE,
							 replica_selector_options,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	/* Replicated partitions, the controller's side */
	DefineCustomIntVariable("streamlog.default_replication_factor",
							"Replicas of each partition of a topic created without a replication "
							"factor (default.replication.factor).",
							"CreateTopics with replication_factor -1 and create_topic() without one "
							"take it; set it alike on every node of a cluster.",
							&sl_default_replication_factor,
							1, 1, 8,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	/* Kafka transactions, the coordinator (server/txn/coordinator.c) */
	DefineCustomBoolVariable("streamlog.transaction_coordinator",
							 "Serve transactional producers: FindCoordinator for transactional ids, "
							 "InitProducerId with a transactional.id, AddPartitionsToTxn, "
							 "AddOffsetsToTxn and EndTxn.",
							 "Off, transactional producers are refused with "
							 "TRANSACTIONAL_ID_AUTHORIZATION_FAILED.",
							 &sl_transaction_coordinator,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("streamlog.transaction_markers_hold",
							 "For tests of faults: the transaction coordinator writes no "
							 "markers, so that transactions stay in PrepareCommit or "
							 "PrepareAbort.",
							 "A test hook (README, \"Transactions on a cluster\"): a node "
							 "killed meanwhile leaves the ends of its transactions to the next "
							 "coordinator.  Never set it in production.",
							 &sl_transaction_markers_hold,
							 false,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("streamlog.group_load_hold",
							 "For tests of races: a loader of a partition of __consumer_offsets "
							 "waits after reading the partition, before writing what it read.",
							 "A test hook (README, \"Transactions on a cluster\"): what is "
							 "committed meanwhile comes after the point the load read.  Never "
							 "set it in production.",
							 &sl_group_load_hold,
							 false,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.transaction_max_timeout",
							"The longest transaction.timeout.ms a producer may ask for (transaction.max.timeout.ms).",
							"A longer one is refused with INVALID_TRANSACTION_TIMEOUT.",
							&sl_transaction_max_timeout_ms,
							900000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.transactional_id_expiration",
							"How long a transactional id without a transaction is kept "
							"(transactional.id.expiration.ms).",
							NULL,
							&sl_transactional_id_expiration_ms,
							604800000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.transaction_state_topic_num_partitions",
							"Partitions of __transaction_state when it is created "
							"(transaction.state.log.num.partitions).",
							"Read once, when the first transactional producer creates the topic.",
							&sl_transaction_state_topic_num_partitions,
							50, 1, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	/* The Prometheus endpoint (issue 15) */
	DefineCustomStringVariable("streamlog.metrics_listen",
							   "Address and port of the Prometheus endpoint (HTTP GET /metrics), "
							   "as host:port, [ipv6]:port or *:port.",
							   "Empty: no endpoint.",
							   &sl_metrics_listen,
							   "",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.metrics_request_timeout",
							"How long the Prometheus endpoint waits for a whole request, or for "
							"a client to take a whole answer, before it closes the connection.",
							NULL,
							&sl_metrics_request_timeout_ms,
							10000, 100, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("streamlog");
}
