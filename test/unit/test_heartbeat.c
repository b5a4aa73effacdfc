/*
 * The heartbeat datagrams' codec: both kinds round-trip, every truncation
 * and trailing byte is refused, strings that do not fit or hold a NUL are
 * refused, another version or magic is not ours, and random corruption
 * never crashes (what decodes re-encodes to the same bytes).
 */
#include "streamlog/cluster/heartbeat.h"
#include "unit.h"

static SlHeartbeatMsg
sample_heartbeat(void)
{
	SlHeartbeatMsg m;

	memset(&m, 0, sizeof(m));
	strcpy(m.cluster_id, "V9Xpl3YtSDSKPk7J-aUEtw");
	m.node_id = 3;
	m.incarnation = 0xfedcba9876543210ULL;
	m.want_shutdown = true;
	strcpy(m.kafka_host, "broker3.example.com");
	m.kafka_port = 9092;
	strcpy(m.sql_conninfo, "host=10.0.0.3 port=5432 dbname=postgres");
	strcpy(m.raft_address, "10.0.0.3:9093");
	strcpy(m.rack, "rack-b");
	return m;
}

static SlHeartbeatReply
sample_reply(void)
{
	SlHeartbeatReply r;

	memset(&r, 0, sizeof(r));
	strcpy(r.cluster_id, "c1");
	r.controller_id = 1;
	r.node_id = 2;
	r.incarnation = 42;
	r.status = SL_HB_REFUSED;
	strcpy(r.message, "node id 2 is alive with another incarnation");
	return r;
}

static void
test_round_trip(void)
{
	SlHeartbeatMsg m = sample_heartbeat();
	SlHeartbeatMsg back;
	SlHeartbeatReply r = sample_reply();
	SlHeartbeatReply rback;
	uint8_t		buf[SL_HEARTBEAT_MAX_SIZE];
	size_t		len;

	len = SlHeartbeatEncode(&m, buf, sizeof(buf));
	CHECK(len > 6);
	CHECK_EQ_INT(SlHeartbeatKindOf(buf, len), SL_HB_HEARTBEAT);
	CHECK(SlHeartbeatDecode(buf, len, &back));
	CHECK(memcmp(&m, &back, sizeof(m)) == 0);
	CHECK(!SlHeartbeatReplyDecode(buf, len, &rback));

	len = SlHeartbeatReplyEncode(&r, buf, sizeof(buf));
	CHECK(len > 6);
	CHECK_EQ_INT(SlHeartbeatKindOf(buf, len), SL_HB_REPLY);
	CHECK(SlHeartbeatReplyDecode(buf, len, &rback));
	CHECK(memcmp(&r, &rback, sizeof(r)) == 0);
	CHECK(!SlHeartbeatDecode(buf, len, &back));
}

/* The largest fields fit the largest datagram */
static void
test_largest_fits(void)
{
	SlHeartbeatMsg m;
	SlHeartbeatMsg back;
	uint8_t		buf[SL_HEARTBEAT_MAX_SIZE];
	size_t		len;

	memset(&m, 'x', sizeof(m));
	m.cluster_id[sizeof(m.cluster_id) - 1] = '\0';
	m.kafka_host[sizeof(m.kafka_host) - 1] = '\0';
	m.sql_conninfo[sizeof(m.sql_conninfo) - 1] = '\0';
	m.raft_address[sizeof(m.raft_address) - 1] = '\0';
	m.rack[sizeof(m.rack) - 1] = '\0';
	m.node_id = 1;
	m.kafka_port = 1;
	m.want_shutdown = false;
	len = SlHeartbeatEncode(&m, buf, sizeof(buf));
	CHECK(len > 0 && len <= SL_HEARTBEAT_MAX_SIZE);
	CHECK(SlHeartbeatDecode(buf, len, &back));
	CHECK(strcmp(back.sql_conninfo, m.sql_conninfo) == 0);
	/* A buffer too small: nothing encoded */
	CHECK_EQ_INT(SlHeartbeatEncode(&m, buf, len - 1), 0);
}

static void
test_truncations_and_trailing(void)
{
	SlHeartbeatMsg m = sample_heartbeat();
	SlHeartbeatMsg back;
	SlHeartbeatReply r = sample_reply();
	SlHeartbeatReply rback;
	uint8_t		buf[SL_HEARTBEAT_MAX_SIZE + 1];
	size_t		len = SlHeartbeatEncode(&m, buf, sizeof(buf) - 1);
	int			refused = 0;

	for (size_t n = 0; n < len; n++)
		refused += !SlHeartbeatDecode(buf, n, &back);
	CHECK_EQ_INT(refused, len);
	buf[len] = 0;
	CHECK(!SlHeartbeatDecode(buf, len + 1, &back));

	len = SlHeartbeatReplyEncode(&r, buf, sizeof(buf) - 1);
	refused = 0;
	for (size_t n = 0; n < len; n++)
		refused += !SlHeartbeatReplyDecode(buf, n, &rback);
	CHECK_EQ_INT(refused, len);
	CHECK(!SlHeartbeatReplyDecode(buf, len + 1, &rback));
}

static void
test_not_ours(void)
{
	SlHeartbeatMsg m = sample_heartbeat();
	SlHeartbeatMsg back;
	uint8_t		buf[SL_HEARTBEAT_MAX_SIZE];
	size_t		len = SlHeartbeatEncode(&m, buf, sizeof(buf));

	buf[4] = SL_HEARTBEAT_VERSION + 1;
	CHECK_EQ_INT(SlHeartbeatKindOf(buf, len), 0);
	CHECK(!SlHeartbeatDecode(buf, len, &back));
	buf[4] = SL_HEARTBEAT_VERSION;
	buf[0] = 'X';
	CHECK_EQ_INT(SlHeartbeatKindOf(buf, len), 0);
	buf[0] = 'S';
	buf[5] = 9;
	CHECK_EQ_INT(SlHeartbeatKindOf(buf, len), 0);
	CHECK_EQ_INT(SlHeartbeatKindOf(NULL, 0), 0);
	CHECK_EQ_INT(SlHeartbeatKindOf(buf, 5), 0);
}

/* A string that does not fit its field, or holds a NUL, is refused */
static void
test_bad_strings(void)
{
	SlHeartbeatMsg m = sample_heartbeat();
	SlHeartbeatMsg back;
	uint8_t		buf[SL_HEARTBEAT_MAX_SIZE];
	size_t		len = SlHeartbeatEncode(&m, buf, sizeof(buf));
	size_t		id_len = strlen(m.cluster_id);

	/* cluster id's length, at bytes 6-7: claim 64, its field holds 63 */
	buf[6] = 0;
	buf[7] = 64;
	CHECK(!SlHeartbeatDecode(buf, len, &back));
	buf[7] = (uint8_t) id_len;
	buf[8 + 2] = '\0';
	CHECK(!SlHeartbeatDecode(buf, len, &back));
	/* the want_shutdown flag is 0 or 1 */
	len = SlHeartbeatEncode(&m, buf, sizeof(buf));
	buf[8 + id_len + 4 + 8] = 2;
	CHECK(!SlHeartbeatDecode(buf, len, &back));
}

/* Random corruption: never a crash; what decodes re-encodes the same */
static void
test_random_corruption(void)
{
	uint64_t	state = unit_seed(0x4842484248424842ULL);
	SlHeartbeatMsg m = sample_heartbeat();
	SlHeartbeatReply r = sample_reply();
	uint8_t		orig[2][SL_HEARTBEAT_MAX_SIZE];
	size_t		olen[2];
	int			mismatches = 0;

	olen[0] = SlHeartbeatEncode(&m, orig[0], SL_HEARTBEAT_MAX_SIZE);
	olen[1] = SlHeartbeatReplyEncode(&r, orig[1], SL_HEARTBEAT_MAX_SIZE);
	for (int iter = 0; iter < 200000; iter++)
	{
		int			k = iter & 1;
		uint8_t		buf[SL_HEARTBEAT_MAX_SIZE];
		uint8_t		again[SL_HEARTBEAT_MAX_SIZE];
		size_t		len = olen[k];
		int			flips = 1 + unit_rand(&state) % 4;

		memcpy(buf, orig[k], len);
		for (int f = 0; f < flips; f++)
			buf[unit_rand(&state) % len] = (uint8_t) unit_rand(&state);
		if (unit_rand(&state) % 8 == 0)
			len = unit_rand(&state) % (len + 1);
		if (k == 0)
		{
			SlHeartbeatMsg back;

			if (SlHeartbeatDecode(buf, len, &back))
				mismatches += SlHeartbeatEncode(&back, again, sizeof(again)) != len ||
					memcmp(again, buf, len) != 0;
		}
		else
		{
			SlHeartbeatReply back;

			if (SlHeartbeatReplyDecode(buf, len, &back))
				mismatches += SlHeartbeatReplyEncode(&back, again, sizeof(again)) != len ||
					memcmp(again, buf, len) != 0;
		}
	}
	CHECK_EQ_INT(mismatches, 0);
}

int
main(void)
{
	test_round_trip();
	test_largest_fits();
	test_truncations_and_trailing();
	test_not_ours();
	test_bad_strings();
	test_random_corruption();
	return UNIT_DONE();
}
