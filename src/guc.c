/*
 * Definitions of the streamlog.* settings, sorted by name.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <limits.h>

#include "utils/guc.h"
#include "utils/memutils.h"

#include "streamlog/guc.h"
#include "streamlog/shmem.h"

char	   *sl_advertised_host = NULL;
int			sl_advertised_port = 0;
bool		sl_auto_create_topics = true;
int			sl_batch_bytes = 256 * 1024;
int			sl_produce_memory = 64 * 1024;	/* kB */
int			sl_broker_workers = 2;
char	   *sl_database = NULL;
int			sl_default_partitions = 1;
int			sl_connections_max_idle = 600000;
int			sl_fetch_max_bytes = 55 * 1024 * 1024;
int			sl_group_initial_rebalance_delay = 3000;
int			sl_group_max_session_timeout = 1800000;
int			sl_group_min_session_timeout = 6000;
char	   *sl_listen_addresses = NULL;
int			sl_max_connections = 1000;
int			sl_max_connections_per_ip = INT_MAX;
char	   *sl_max_connections_per_ip_overrides = NULL;
const SlConnectionsPerIpOverrides *sl_connections_per_ip_overrides = NULL;
int			sl_max_group_members = 4096;
int			sl_max_groups = 1024;
int			sl_max_partitions = 4096;
int			sl_max_partitions_per_role = 0;
int			sl_max_unauthenticated_connections = 0;
int			sl_max_groups_per_role = 0;
int			sl_max_producer_states = 16384;
int			sl_max_request_size = 100 * 1024 * 1024;
int			sl_max_unsent_bytes_per_worker = 256 * 1024 * 1024;
int			sl_node_id = 1;
int			sl_port = 9092;
int			sl_retention_check_interval = 30000;

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
 * streamlog.max_connections_per_ip_overrides: "address:count, ..." as
 * Kafka's max.connections.per.ip.overrides, but addresses only (a host name
 * would be resolved at each reload, and what it resolves to may change
 * under the counts).  The parsed list is the setting's extra.
 */
static bool
check_connections_per_ip_overrides(char **newval, void **extra, GucSource source)
{
	char	   *copy = pstrdup(*newval ? *newval : "");
	int			max_items = 1;
	SlConnectionsPerIpOverrides *parsed;
	char	   *saveptr = NULL;

	for (const char *c = copy; *c; c++)
		max_items += *c == ',';
	parsed = malloc(offsetof(SlConnectionsPerIpOverrides, items) +
					sizeof(SlConnectionsPerIpOverride) * max_items);
	if (parsed == NULL)
		return false;
	parsed->n = 0;
	for (char *item = strtok_r(copy, ",", &saveptr); item != NULL;
		 item = strtok_r(NULL, ",", &saveptr))
	{
		char	   *colon;
		char	   *end;
		long		count;

		while (*item == ' ' || *item == '\t')
			item++;
		end = item + strlen(item);
		while (end > item && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*item == '\0')
			continue;
		colon = strrchr(item, ':');
		if (colon == NULL)
		{
			GUC_check_errdetail("Entry \"%s\" has no count: write address:count.", item);
			goto fail;
		}
		*colon = '\0';
		errno = 0;
		count = strtol(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || errno != 0 || count < 0 || count > INT_MAX)
		{
			GUC_check_errdetail("The count of \"%s\" must be an integer from 0 to %d.",
								item, INT_MAX);
			goto fail;
		}
		if (!parse_override_address(item, parsed->items[parsed->n].addr))
		{
			GUC_check_errdetail("\"%s\" is not an IPv4 or IPv6 address.", item);
			goto fail;
		}
		parsed->items[parsed->n].max_connections = (int) count;
		parsed->n++;
	}
	pfree(copy);
	*extra = parsed;
	return true;

fail:
	pfree(copy);
	free(parsed);
	return false;
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

	DefineCustomIntVariable("streamlog.advertised_port",
							"Port the broker gives Kafka clients to connect to; 0 = streamlog.port.",
							NULL,
							&sl_advertised_port,
							0, 0, 65535,
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

	DefineCustomIntVariable("streamlog.connections_max_idle",
							"Close Kafka client connections idle this long (connections.max.idle.ms); 0 = never.",
							"Idle: nothing received or sent and no request waiting for its answer.",
							&sl_connections_max_idle,
							600000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

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

	DefineCustomIntVariable("streamlog.node_id",
							"Broker id of this server in Kafka metadata.",
							NULL,
							&sl_node_id,
							1, 0, INT_MAX,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.port",
							"TCP port of the Kafka listener; 0 turns it off.",
							NULL,
							&sl_port,
							9092, 0, 65535,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streamlog.retention_check_interval",
							"Time between two retention passes of the cleaner (log.retention.check.interval.ms).",
							NULL,
							&sl_retention_check_interval,
							30000, 100, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("streamlog");
}
