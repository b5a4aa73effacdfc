/*
 * The metadata log's record codec: every record type round-trips, every
 * truncation and every trailing byte is refused, lengths and counts that
 * lie are refused before allocating, and random corruption never crashes
 * (what decodes re-encodes to the same bytes).
 */
#include "streamlog/cluster/metadata_records.h"
#include "meta_testlib.h"
#include "unit.h"

static int32_t replicas3[] = {1, 2, 3};
static int32_t isr2[] = {2, 1};

/* A batch with one record of every type */
static void
every_record(SlMetaBatch *batch)
{
	SlMetaRecord rec;

	SlMetaBatchInit(batch);
	rec = meta_register(1, 0x1122334455667788ULL, "rack-a");
	SlMetaBatchAdd(batch, &rec);
	rec = meta_register(2, 7, NULL);
	SlMetaBatchAdd(batch, &rec);
	rec = meta_node_state(SL_META_FENCE_NODE, 1, 9);
	SlMetaBatchAdd(batch, &rec);
	rec = meta_node_state(SL_META_UNFENCE_NODE, 2, 7);
	SlMetaBatchAdd(batch, &rec);
	rec = meta_node_state(SL_META_UNREGISTER_NODE, 3, 0);
	SlMetaBatchAdd(batch, &rec);
	rec = meta_node_state(SL_META_SHUTDOWN_NODE, 2, 7);
	SlMetaBatchAdd(batch, &rec);
	rec = meta_topic(5, "orders");
	rec.topic.owner = NULL;
	SlMetaBatchAdd(batch, &rec);
	rec = meta_partition(5, 0, replicas3, 3, isr2, 2, 2);
	rec.partition.leader_epoch = 4;
	rec.partition.partition_epoch = 6;
	SlMetaBatchAdd(batch, &rec);
	rec = meta_change(5, 0, SL_META_UNCHANGED, isr2, 2);
	SlMetaBatchAdd(batch, &rec);
	rec = meta_change(5, 0, SL_META_NO_LEADER, NULL, -1);
	SlMetaBatchAdd(batch, &rec);
	rec = meta_rec(SL_META_TOPIC_CONFIG);
	rec.topic.topic_id = 5;
	rec.topic.config_json = (char *) "{\"retention.ms\": \"1000\"}";
	SlMetaBatchAdd(batch, &rec);
	rec = meta_rec(SL_META_REMOVE_TOPIC);
	rec.topic.topic_id = 5;
	SlMetaBatchAdd(batch, &rec);
	rec = meta_rec(SL_META_PRODUCER_IDS);
	rec.node_id = 2;
	rec.first_producer_id = 5000000000LL;
	rec.producer_id_count = 1000;
	SlMetaBatchAdd(batch, &rec);
	rec = meta_rec(SL_META_CONTROLLER);
	rec.node_id = 3;
	rec.controller_epoch = 0x100000001ULL;
	SlMetaBatchAdd(batch, &rec);
}

static void
test_round_trip(void)
{
	SlMetaBatch batch,
				back;
	void	   *data,
			   *again;
	size_t		len,
				againlen;
	const SlMetaRecord *r;

	every_record(&batch);
	CHECK_EQ_INT(batch.nrecords, 14);
	CHECK(SlMetaBatchEncode(&batch, &data, &len));
	CHECK(SlMetaBatchDecode(&back, data, len));
	CHECK_EQ_INT(back.nrecords, batch.nrecords);
	for (int i = 0; i < back.nrecords; i++)
		CHECK_EQ_INT(back.records[i].type, batch.records[i].type);

	r = &back.records[0];
	CHECK_EQ_INT(r->node.node_id, 1);
	CHECK_EQ_UINT(r->node.incarnation, 0x1122334455667788ULL);
	CHECK(strcmp(r->node.kafka_host, "127.0.0.1") == 0);
	CHECK_EQ_INT(r->node.kafka_port, 9093);
	CHECK(strcmp(r->node.rack, "rack-a") == 0);
	CHECK(strcmp(r->node.raft_address, "127.0.0.1:7000") == 0);
	CHECK(back.records[1].node.rack == NULL);
	CHECK_EQ_UINT(back.records[2].node.incarnation, 9);
	CHECK_EQ_INT(back.records[4].node.node_id, 3);
	r = &back.records[6];
	CHECK_EQ_INT(r->topic.topic_id, 5);
	CHECK(strcmp(r->topic.name, "orders") == 0);
	CHECK(r->topic.owner == NULL);
	CHECK_EQ_INT(r->topic.uuid[15], 5 * 16 + 15);
	r = &back.records[7];
	CHECK_EQ_INT(r->topic_id, 5);
	CHECK_EQ_INT(r->partition.nreplicas, 3);
	CHECK_EQ_INT(r->partition.replicas[2], 3);
	CHECK_EQ_INT(r->partition.nisr, 2);
	CHECK_EQ_INT(r->partition.isr[0], 2);
	CHECK_EQ_INT(r->partition.leader, 2);
	CHECK_EQ_INT(r->partition.leader_epoch, 4);
	CHECK_EQ_INT(r->partition.partition_epoch, 6);
	CHECK_EQ_INT(back.records[8].partition.leader, SL_META_UNCHANGED);
	CHECK_EQ_INT(back.records[8].partition.nisr, 2);
	CHECK_EQ_INT(back.records[9].partition.leader, SL_META_NO_LEADER);
	CHECK_EQ_INT(back.records[9].partition.nisr, -1);
	CHECK(strcmp(back.records[10].topic.config_json, "{\"retention.ms\": \"1000\"}") == 0);
	CHECK_EQ_INT(back.records[12].first_producer_id, 5000000000LL);
	CHECK_EQ_INT(back.records[12].producer_id_count, 1000);
	CHECK_EQ_UINT(back.records[13].controller_epoch, 0x100000001ULL);

	/* the encoding is canonical */
	CHECK(SlMetaBatchEncode(&back, &again, &againlen));
	CHECK(againlen == len && memcmp(again, data, len) == 0);

	free(again);
	free(data);
	SlMetaBatchFree(&back);
	SlMetaBatchFree(&batch);
}

static void
test_empty_batch(void)
{
	SlMetaBatch batch,
				back;
	void	   *data;
	size_t		len;

	SlMetaBatchInit(&batch);
	CHECK(SlMetaBatchEncode(&batch, &data, &len));
	CHECK_EQ_INT(len, 9);
	CHECK(SlMetaBatchDecode(&back, data, len));
	CHECK_EQ_INT(back.nrecords, 0);
	free(data);
	CHECK(!SlMetaBatchDecode(&back, NULL, 0));
	CHECK(!SlMetaBatchDecode(&back, "", 0));
}

/* Every prefix fails, and so does one byte more */
static void
test_truncations(void)
{
	SlMetaBatch batch,
				back;
	void	   *data;
	size_t		len;
	uint8_t    *longer;
	int			refused = 0;

	every_record(&batch);
	CHECK(SlMetaBatchEncode(&batch, &data, &len));
	for (size_t n = 0; n < len; n++)
	{
		/* a copy of exactly n bytes, so that ASan sees any overread */
		uint8_t    *cut = malloc(n > 0 ? n : 1);

		memcpy(cut, data, n);
		if (!SlMetaBatchDecode(&back, cut, n))
			refused++;
		else
			SlMetaBatchFree(&back);
		CHECK_EQ_INT(back.nrecords, 0);
		free(cut);
	}
	CHECK_EQ_INT(refused, (int) len);
	longer = malloc(len + 1);
	memcpy(longer, data, len);
	longer[len] = 0;
	CHECK(!SlMetaBatchDecode(&back, longer, len + 1));
	free(longer);
	free(data);
	SlMetaBatchFree(&batch);
}

/* Hand-written hostile batches */
static void
test_hostile(void)
{
	SlMetaBatch back;
	/* magic, format 1, one record: Topic v1 with a name claiming 2^31-1 bytes */
	static const uint8_t long_name[] = {
		'S', 'L', 'M', 'B', 1, 0, 0, 0, 1,
		5, 1, 0, 0, 0, 1,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x7f, 0xff, 0xff, 0xff, 'x'
	};
	/* a record count of 2^32-1 with nothing behind it */
	static const uint8_t many[] = {'S', 'L', 'M', 'B', 1, 0xff, 0xff, 0xff, 0xff, 11, 1};
	/* a partition whose replica array claims 1,000,000 elements */
	static const uint8_t big_array[] = {
		'S', 'L', 'M', 'B', 1, 0, 0, 0, 1,
		7, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, 0, 0, 0, 1
	};
	/* a name with a NUL inside */
	static const uint8_t nul_name[] = {
		'S', 'L', 'M', 'B', 1, 0, 0, 0, 1,
		5, 1, 0, 0, 0, 1,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 3, 'a', 0, 'b', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
	};
	/* Controller v2: a version this code does not know */
	static const uint8_t new_version[] = {
		'S', 'L', 'M', 'B', 1, 0, 0, 0, 1, 11, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1
	};
	/* the same at v1 decodes: the test above fails for its version only */
	static const uint8_t good_version[] = {
		'S', 'L', 'M', 'B', 1, 0, 0, 0, 1, 11, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1
	};
	/* an unknown record type */
	static const uint8_t unknown_type[] = {'S', 'L', 'M', 'B', 1, 0, 0, 0, 1, 99, 1};
	/* a batch format of the future */
	static const uint8_t new_format[] = {'S', 'L', 'M', 'B', 2, 0, 0, 0, 0};
	/* a string length of -2 */
	static const uint8_t negative[] = {
		'S', 'L', 'M', 'B', 1, 0, 0, 0, 1,
		6 - 1, 1, 0, 0, 0, 1,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff, 0xff, 0xfe
	};

	CHECK(!SlMetaBatchDecode(&back, long_name, sizeof(long_name)));
	CHECK(!SlMetaBatchDecode(&back, many, sizeof(many)));
	CHECK(!SlMetaBatchDecode(&back, big_array, sizeof(big_array)));
	CHECK(!SlMetaBatchDecode(&back, nul_name, sizeof(nul_name)));
	CHECK(!SlMetaBatchDecode(&back, new_version, sizeof(new_version)));
	CHECK(SlMetaBatchDecode(&back, good_version, sizeof(good_version)));
	CHECK_EQ_INT(back.nrecords, 1);
	CHECK_EQ_INT(back.records[0].node_id, 1);
	SlMetaBatchFree(&back);
	CHECK(!SlMetaBatchDecode(&back, unknown_type, sizeof(unknown_type)));
	CHECK(!SlMetaBatchDecode(&back, new_format, sizeof(new_format)));
	CHECK(!SlMetaBatchDecode(&back, negative, sizeof(negative)));
}

/*
 * Random corruption: flip, insert, delete bytes of a valid batch.  No
 * crash (ASan), and whatever still decodes re-encodes to the same bytes.
 */
static void
test_random_corruption(uint64_t *rng)
{
	SlMetaBatch batch;
	void	   *data;
	size_t		len;
	int			decoded = 0,
				canonical = 0;

	every_record(&batch);
	CHECK(SlMetaBatchEncode(&batch, &data, &len));
	SlMetaBatchFree(&batch);
	for (int iter = 0; iter < 20000; iter++)
	{
		size_t		n = len;
		uint8_t    *buf = malloc(len + 8);
		int			edits = 1 + (int) (unit_rand(rng) % 4);
		SlMetaBatch back;

		memcpy(buf, data, len);
		for (int e = 0; e < edits && n > 0; e++)
		{
			size_t		at = (size_t) (unit_rand(rng) % n);

			switch (unit_rand(rng) % 3)
			{
				case 0:
					buf[at] ^= (uint8_t) (1 + unit_rand(rng) % 255);
					break;
				case 1:
					memmove(buf + at, buf + at + 1, n - at - 1);
					n--;
					break;
				case 2:
					memmove(buf + at + 1, buf + at, n - at);
					buf[at] = (uint8_t) unit_rand(rng);
					n++;
					break;
			}
		}
		if (SlMetaBatchDecode(&back, buf, n))
		{
			void	   *again;
			size_t		againlen;

			decoded++;
			if (SlMetaBatchEncode(&back, &again, &againlen))
			{
				if (againlen == n && memcmp(again, buf, n) == 0)
					canonical++;
				free(again);
			}
			SlMetaBatchFree(&back);
		}
		free(buf);
	}
	CHECK_EQ_INT(canonical, decoded);
	free(data);
}

static void
test_type_names(void)
{
	CHECK(strcmp(SlMetaRecordTypeName(SL_META_REGISTER_NODE), "RegisterNode") == 0);
	CHECK(strcmp(SlMetaRecordTypeName(SL_META_PARTITION_CHANGE), "PartitionChange") == 0);
	CHECK(strcmp(SlMetaRecordTypeName(SL_META_SHUTDOWN_NODE), "ShutdownNode") == 0);
	CHECK(strcmp(SlMetaRecordTypeName((SlMetaRecordType) 99), "Unknown") == 0);
}

/*
 * A PARTITION_CHANGE that moves replicas (a reassignment) is at version 2
 * with the replicas, adding and removing; one that does not stays at
 * version 1; either way one encoding per change
 */
static void
test_partition_change_versions(void)
{
	SlMetaBatch batch,
				back;
	SlMetaRecord rec;
	int32_t		replicas[] = {2, 3, 4, 1};
	int32_t		adding[] = {4};
	int32_t		removing[] = {1};
	void	   *data,
			   *again;
	size_t		len,
				againlen;
	const SlMetaRecord *r;

	SlMetaBatchInit(&batch);
	rec = meta_change(5, 0, SL_META_UNCHANGED, NULL, -1);
	rec.partition.replicas = replicas;
	rec.partition.nreplicas = 4;
	rec.partition.adding = adding;
	rec.partition.nadding = 1;
	rec.partition.removing = removing;
	rec.partition.nremoving = 1;
	CHECK(SlMetaBatchAdd(&batch, &rec));
	rec = meta_change(5, 0, 3, isr2, 2);
	CHECK(SlMetaBatchAdd(&batch, &rec));
	CHECK(SlMetaBatchEncode(&batch, &data, &len));
	/* magic, format, count, then the first record's type and version */
	CHECK_EQ_INT(((uint8_t *) data)[9], SL_META_PARTITION_CHANGE);
	CHECK_EQ_INT(((uint8_t *) data)[10], 2);
	CHECK(SlMetaBatchDecode(&back, data, len));
	r = &back.records[0];
	CHECK_EQ_INT(r->partition.nreplicas, 4);
	CHECK_EQ_INT(r->partition.replicas[3], 1);
	CHECK_EQ_INT(r->partition.nadding, 1);
	CHECK_EQ_INT(r->partition.adding[0], 4);
	CHECK_EQ_INT(r->partition.nremoving, 1);
	CHECK_EQ_INT(r->partition.nisr, -1);
	r = &back.records[1];
	CHECK_EQ_INT(r->partition.nreplicas, 0);
	CHECK_EQ_INT(r->partition.nadding, -1);
	CHECK_EQ_INT(r->partition.nremoving, -1);
	CHECK_EQ_INT(r->partition.leader, 3);
	CHECK(SlMetaBatchEncode(&back, &again, &againlen));
	CHECK(againlen == len && memcmp(again, data, len) == 0);
	free(again);
	SlMetaBatchFree(&back);
	SlMetaBatchFree(&batch);
	free(data);

	/* version 2 that moves nothing is not how a change is written */
	{
		static const uint8_t v2_nothing[] = {
			'S', 'L', 'M', 'B', 1, 0, 0, 0, 1, SL_META_PARTITION_CHANGE, 2,
			0, 0, 0, 5, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff,
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
		};

		CHECK(!SlMetaBatchDecode(&back, v2_nothing, sizeof(v2_nothing)));
	}
}

int
main(void)
{
	uint64_t	rng = unit_seed(0x5eedc0de12);

	test_round_trip();
	test_empty_batch();
	test_truncations();
	test_hostile();
	test_random_corruption(&rng);
	test_type_names();
	test_partition_change_versions();
	return UNIT_DONE();
}
